//! The examples of RFC 6455 byte for byte: the §1.2/§1.3 handshake and accept key, and every
//! §5.7 example frame, decoded by a `Connection` under every kind of split and produced by
//! `Connection` sends.

mod harness;

use bytes::Bytes;
use harness::{Pipe, Split, binary, drain_events, feed_split, ping, pong, text};
use wscore::{
    Accept, AcceptKey, ClientHandshake, ClientRequest, Config, Connection, Event, MessageKind, RandomSource,
    ServerHandshake,
};

/// RFC 6455 §5.7's masking key.
const RFC_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A random source that plays back `prefix` once, then repeats the RFC's masking key, so a
/// client produces the RFC's examples exactly.
#[derive(Debug)]
struct Scripted {
    prefix: Vec<u8>,
    pos: usize,
}

impl Scripted {
    fn new(prefix: &[u8]) -> Box<Self> {
        Box::new(Self { prefix: prefix.to_vec(), pos: 0 })
    }
}

impl RandomSource for Scripted {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = match self.prefix.get(self.pos) {
                Some(&b) => b,
                None => RFC_MASK[(self.pos - self.prefix.len()) % 4],
            };
            self.pos += 1;
        }
    }
}

fn rfc_client() -> Connection {
    Connection::client_with_random(Config::default(), Scripted::new(&[]))
}

/// Feeds `bytes` to a fresh connection (from `make`) under every split and returns the events,
/// checking they are the same for every split.
fn decode(make: fn() -> Connection, bytes: &[u8]) -> Vec<Event> {
    let mut seen: Option<Vec<Event>> = None;
    for split in Split::all() {
        let mut conn = make();
        feed_split(&mut conn, bytes, &mut Pipe::new(split)).expect("valid frames");
        let events = drain_events(&mut conn);
        if let Some(seen) = &seen {
            assert_eq!(seen, &events, "{split:?}");
        }
        seen = Some(events);
    }
    seen.unwrap_or_default()
}

fn server() -> Connection {
    Connection::server(Config::default())
}

// ----- §1.2 / §1.3: the opening handshake -----

const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

#[test]
fn section_1_3_accept_key() {
    let accept = AcceptKey::from_key(b"dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accept.as_bytes(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn section_1_2_server_answers_the_example_request() {
    for split in Split::all() {
        let mut handshake = ServerHandshake::new(Config::default());
        let mut request = None;
        for piece in Pipe::new(split).pieces(RFC_REQUEST) {
            request = handshake.receive(piece).unwrap().cloned();
        }
        let request = request.expect("complete request");
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.host(), Some("server.example.com"));
        assert_eq!(request.origin(), Some("http://example.com"));
        assert_eq!(request.protocols(), ["chat", "superchat"]);
        let mut conn = handshake.accept(Accept::new().protocol("chat")).unwrap();
        assert_eq!(&conn.take_transmit()[..], RFC_RESPONSE, "{split:?}");
        assert_eq!(conn.protocol(), Some("chat"));
    }
}

#[test]
fn section_1_2_client_sends_the_example_key_and_accepts_the_example_response() {
    for split in Split::all() {
        let request = ClientRequest::from_url("ws://server.example.com/chat")
            .unwrap()
            .protocol("chat")
            .protocol("superchat")
            .header("Origin", "http://example.com");
        // The RFC's key is the base64 of the nonce "the sample nonce".
        let mut handshake =
            ClientHandshake::with_random(request, Config::default(), Scripted::new(b"the sample nonce"));
        let bytes = handshake.request_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Protocol: chat, superchat\r\n"));
        assert!(text.contains("\r\nOrigin: http://example.com\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let mut conn = None;
        for piece in Pipe::new(split).pieces(RFC_RESPONSE) {
            assert!(conn.is_none());
            conn = handshake.receive(piece).unwrap();
        }
        let mut conn = conn.expect("accepted");
        assert_eq!(conn.protocol(), Some("chat"));
        assert_eq!(handshake.response().map(|r| r.status), Some(101));
        // The masking keys continue with the RFC's key after the nonce.
        conn.send_text("Hello").unwrap();
        assert_eq!(&conn.take_transmit()[..], MASKED_HELLO);
    }
}

// ----- §5.7: example frames -----

const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const MASKED_HELLO: &[u8] = &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
const FRAGMENTED_HELLO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
const UNMASKED_PING: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const MASKED_PONG: &[u8] = &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
}

#[test]
fn single_frame_unmasked_text() {
    assert_eq!(decode(rfc_client, UNMASKED_HELLO), [text("Hello")]);
    let mut server = server();
    server.send_text("Hello").unwrap();
    assert_eq!(&server.take_transmit()[..], UNMASKED_HELLO);
}

#[test]
fn single_frame_masked_text() {
    assert_eq!(decode(server, MASKED_HELLO), [text("Hello")]);
    let mut client = rfc_client();
    client.send_text("Hello").unwrap();
    assert_eq!(&client.take_transmit()[..], MASKED_HELLO);
}

#[test]
fn fragmented_unmasked_text() {
    assert_eq!(decode(rfc_client, FRAGMENTED_HELLO), [text("Hello")]);
    let mut server = server();
    server.send_fragment(MessageKind::Text, "Hel", false).unwrap();
    server.send_fragment(MessageKind::Text, "lo", true).unwrap();
    assert_eq!(&server.take_transmit()[..], FRAGMENTED_HELLO);
}

#[test]
fn fragmented_masked_text() {
    // The same two frames as a client sends them, each masked with the RFC's key.
    let mut expected = vec![0x01, 0x83, 0x37, 0xfa, 0x21, 0x3d];
    expected.extend(b"Hel".iter().zip(RFC_MASK).map(|(b, m)| b ^ m));
    expected.extend([0x80, 0x82, 0x37, 0xfa, 0x21, 0x3d]);
    expected.extend(b"lo".iter().zip(RFC_MASK).map(|(b, m)| b ^ m));
    assert_eq!(decode(server, &expected), [text("Hello")]);
    let mut client = rfc_client();
    client.send_fragment(MessageKind::Text, "Hel", false).unwrap();
    client.send_fragment(MessageKind::Text, "lo", true).unwrap();
    assert_eq!(&client.take_transmit()[..], &expected[..]);
}

#[test]
fn unmasked_ping_is_answered_with_the_masked_pong() {
    // A client receiving the RFC's ping answers with exactly the RFC's masked pong.
    for split in Split::all() {
        let mut client = rfc_client();
        feed_split(&mut client, UNMASKED_PING, &mut Pipe::new(split)).unwrap();
        assert_eq!(drain_events(&mut client), [ping(b"Hello")]);
        assert_eq!(&client.take_transmit()[..], MASKED_PONG, "{split:?}");
    }
    let mut server = server();
    server.ping("Hello").unwrap();
    assert_eq!(&server.take_transmit()[..], UNMASKED_PING);
}

#[test]
fn masked_pong() {
    assert_eq!(decode(server, MASKED_PONG), [pong(b"Hello")]);
    let mut client = rfc_client();
    client.pong("Hello").unwrap();
    assert_eq!(&client.take_transmit()[..], MASKED_PONG);
}

#[test]
fn unmasked_ping_decoded_by_server_is_a_masking_error_but_masked_ping_is_fine() {
    // The same payload with the RFC's key, sent to a server.
    let masked_ping = [0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(decode(server, &masked_ping), [ping(b"Hello")]);
    let mut server = server();
    assert!(server.receive(UNMASKED_PING).is_err());
}

#[test]
fn binary_256_bytes_in_one_unmasked_frame() {
    let data = payload(256);
    let mut expected = vec![0x82, 0x7E, 0x01, 0x00];
    expected.extend_from_slice(&data);
    assert_eq!(decode(rfc_client, &expected), [binary(&data)]);
    let mut server = server();
    server.send_binary(data.clone()).unwrap();
    assert_eq!(&server.take_transmit()[..], &expected[..]);
}

#[test]
fn binary_64_kib_in_one_unmasked_frame() {
    let data = payload(65536);
    let mut expected = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    expected.extend_from_slice(&data);
    assert_eq!(decode(rfc_client, &expected), [binary(&data)]);

    let mut server = server();
    server.send_binary(data.clone()).unwrap();
    // The vectored form keeps the header and the large payload apart (no copy).
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    let n = server.transmit_vectored(&mut slices);
    assert!(n >= 2, "header and payload in separate slices");
    let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(joined, expected);
    assert_eq!(&server.take_transmit()[..], &expected[..]);
    assert!(!server.wants_write());
}

#[test]
fn binary_256_bytes_and_64_kib_masked() {
    for len in [256, 65536] {
        let data = payload(len);
        let mut client = rfc_client();
        client.send_binary(Bytes::from(data.clone())).unwrap();
        let wire = client.take_transmit();
        let header_len = if len == 256 { 8 } else { 14 };
        assert_eq!(wire.len(), header_len + len);
        assert_eq!(&wire[header_len - 4..header_len], RFC_MASK);
        assert_eq!(wire[1] & 0x80, 0x80, "mask bit");
        let unmasked: Vec<u8> = wire[header_len..].iter().enumerate().map(|(i, b)| b ^ RFC_MASK[i % 4]).collect();
        assert_eq!(unmasked, data);
        assert_eq!(decode(server, &wire), [binary(&data)]);
    }
}
