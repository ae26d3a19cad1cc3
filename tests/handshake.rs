//! The HTTP/1.1 upgrade through the public API: client requests built from URLs, server
//! parsing and validation, acceptance and rejection as the client sees them, limits, and the
//! hand-over of bytes that follow the head to the connection.

mod harness;

use bytes::Bytes;
use harness::{Pipe, Split, handshake_pair, handshake_pair_with, masked, text};
use std::time::Duration;
use wscore::{
    Accept, AcceptKey, ClientHandshake, ClientRequest, Config, Connection, Event, HandshakeError, Instant,
    MAX_REJECT_BODY, Reject, Request, Response, SeededRandom, ServerHandshake,
};

/// A configuration that offers/accepts no extension, so request and response bytes are
/// the same with every feature set.
fn plain() -> Config {
    let config = Config::default();
    #[cfg(feature = "deflate")]
    let config = config.deflate(None);
    config
}

fn client_handshake(request: ClientRequest, config: Config) -> ClientHandshake {
    ClientHandshake::with_random(request, config, Box::new(SeededRandom::new(99)))
}

/// The `Sec-WebSocket-Key` line of a request.
fn key_of(request: &[u8]) -> String {
    let text = std::str::from_utf8(request).unwrap();
    let line = text.lines().find(|l| l.starts_with("Sec-WebSocket-Key: ")).expect("key line");
    line["Sec-WebSocket-Key: ".len()..].to_string()
}

/// A valid upgrade request with `extra` header lines (each ending in CRLF).
fn request_with(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A request built from header lines as given (to leave some out or repeat them).
fn request_lines(start: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

const HOST: &str = "Host: example.com";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";
const GET: &str = "GET /chat HTTP/1.1";

/// Feeds a request to a fresh server handshake under every split; returns the outcome.
fn server_outcome(config: &Config, bytes: &[u8]) -> Result<Option<Request>, HandshakeError> {
    let mut seen = None;
    for split in Split::all() {
        let mut handshake = ServerHandshake::new(config.clone());
        let mut outcome = Ok(None);
        for piece in Pipe::new(split).pieces(bytes) {
            outcome = handshake.receive(piece).map(|r| r.cloned());
            if outcome.is_err() {
                // Sticky: the same error again.
                assert_eq!(handshake.receive(b"more").map(|r| r.cloned()), outcome);
                break;
            }
        }
        if let Some(seen) = &seen {
            assert_eq!(seen, &outcome, "{split:?}");
        }
        seen = Some(outcome);
    }
    seen.unwrap()
}

fn server_error(bytes: &[u8]) -> HandshakeError {
    server_outcome(&plain(), bytes).expect_err("request must be refused")
}

/// Feeds a response to a fresh client handshake under every split (then EOF if still
/// undecided); returns the outcome.
fn client_outcome(request: &ClientRequest, config: &Config, response: &[u8]) -> Result<bool, HandshakeError> {
    let mut seen = None;
    for split in Split::all() {
        let mut handshake = client_handshake(request.clone(), config.clone());
        let mut outcome = Ok(false);
        for piece in Pipe::new(split).pieces(response) {
            outcome = handshake.receive(piece).map(|c| c.is_some());
            if outcome.is_err() {
                break;
            }
        }
        if outcome == Ok(false) {
            outcome = handshake.receive_eof().map(|()| false);
        }
        if let Some(seen) = &seen {
            assert_eq!(seen, &outcome, "{split:?}");
        }
        seen = Some(outcome);
    }
    seen.unwrap()
}

fn rejected(result: Result<bool, HandshakeError>) -> Response {
    match result {
        Err(HandshakeError::Rejected(response)) => *response,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// A 101 response for `request`'s key, with `extra` header lines.
fn accept_response(request: &[u8], extra: &str) -> Vec<u8> {
    let accept = AcceptKey::from_key(key_of(request).as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept.as_str()
    )
    .into_bytes()
}

// ----- client requests from URLs -----

#[test]
fn urls_are_parsed() {
    // url, host, port, target, secure, Host header
    let table = [
        ("ws://example.com", "example.com", 80, "/", false, "example.com"),
        ("ws://example.com/chat", "example.com", 80, "/chat", false, "example.com"),
        ("wss://example.com", "example.com", 443, "/", true, "example.com"),
        ("wss://example.com:443/", "example.com", 443, "/", true, "example.com"),
        ("ws://example.com:80/a", "example.com", 80, "/a", false, "example.com"),
        ("ws://example.com:443/a", "example.com", 443, "/a", false, "example.com:443"),
        ("wss://example.com:80/a", "example.com", 80, "/a", true, "example.com:80"),
        ("ws://localhost:9001/a/b?x=1&y=%20", "localhost", 9001, "/a/b?x=1&y=%20", false, "localhost:9001"),
        ("ws://example.com?q=1", "example.com", 80, "/?q=1", false, "example.com"),
        ("ws://127.0.0.1:8080", "127.0.0.1", 8080, "/", false, "127.0.0.1:8080"),
        ("ws://[::1]:9001/x", "::1", 9001, "/x", false, "[::1]:9001"),
        ("wss://[2001:db8::1]/", "2001:db8::1", 443, "/", true, "[2001:db8::1]"),
        ("WSS://Example.COM/Path", "Example.COM", 443, "/Path", true, "Example.COM"),
    ];
    for (url, host, port, target, secure, host_header) in table {
        let req = ClientRequest::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!((req.host(), req.port(), req.target(), req.is_secure()), (host, port, target, secure), "{url}");
        let bytes = client_handshake(req, plain()).request_bytes();
        let expected_start = format!("GET {target} HTTP/1.1\r\nHost: {host_header}\r\n");
        assert!(bytes.starts_with(expected_start.as_bytes()), "{url}: {:?}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn invalid_urls_are_refused() {
    for url in [
        "http://example.com",
        "example.com",
        "ws:/example.com",
        "ws://",
        "ws:///path",
        "ws://example.com/#frag",
        "ws://example.com:99999",
        "ws://example.com:port",
        "ws://example.com:",
        "ws://user@example.com",
        "ws://[::1",
        "ws://[::1]9001",
        "ws://example.com/pa th",
        "ws://exa mple.com",
    ] {
        let result = ClientRequest::from_url(url);
        assert!(matches!(result, Err(HandshakeError::InvalidUrl(_))), "{url}: {result:?}");
    }
}

#[test]
fn request_bytes_are_exact_and_reproducible() {
    let request = ClientRequest::from_url("ws://example.com:8080/chat?room=1")
        .unwrap()
        .protocol("chat")
        .protocol("superchat")
        .header("Cookie", "session=abc")
        .header("Authorization", "Bearer t0k3n")
        .header("Origin", "https://example.com");
    let bytes = client_handshake(request.clone(), plain()).request_bytes();
    let key = key_of(&bytes);
    let expected = format!(
        "GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
         Cookie: session=abc\r\nAuthorization: Bearer t0k3n\r\nOrigin: https://example.com\r\n\r\n"
    );
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), expected);
    // The key is 16 random bytes in base64; the same seed gives the same key.
    assert_eq!(key.len(), 24);
    assert!(key.ends_with("=="));
    assert_eq!(client_handshake(request.clone(), plain()).request_bytes(), bytes);
    let other = ClientHandshake::with_random(request, plain(), Box::new(SeededRandom::new(100)));
    assert_ne!(key_of(&other.request_bytes()), key);
}

#[test]
fn header_injection_is_prevented() {
    let request =
        ClientRequest::from_url("ws://example.com/").unwrap().header("X-Evil\r\nInjected", "a\r\nSet-Cookie: b");
    let bytes = client_handshake(request, plain()).request_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("\r\nX-EvilInjected: aSet-Cookie: b\r\n"), "{text}");
    assert_eq!(text.matches("\r\n\r\n").count(), 1);
}

/// A subprotocol with CR or LF in it goes out without them, and the server's choice of it, as
/// it was sent, is accepted.
#[test]
fn a_subprotocol_is_checked_as_it_was_sent() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap().protocol("chat\r\n");
    let mut client = client_handshake(request, plain());
    let bytes = client.request_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("\r\nSec-WebSocket-Protocol: chat\r\n"), "{text}");
    let response = accept_response(&bytes, "Sec-WebSocket-Protocol: chat\r\n");
    let conn = client.receive(&response).unwrap().expect("upgraded");
    assert_eq!(conn.protocol(), Some("chat"));
}

#[test]
fn request_for_a_preupgraded_transport_uses_the_host_value() {
    for (host, header) in [
        ("example.com", "example.com"),
        ("localhost:9001", "localhost:9001"),
        ("[::1]:9001", "[::1]:9001"),
        ("[::1]", "[::1]"),
    ] {
        let bytes = client_handshake(ClientRequest::new(host, "/path?q=1"), plain()).request_bytes();
        let expected = format!("GET /path?q=1 HTTP/1.1\r\nHost: {header}\r\n");
        assert!(bytes.starts_with(expected.as_bytes()), "{host}: {:?}", String::from_utf8_lossy(&bytes));
    }
}

// ----- the server side -----

#[test]
fn server_parses_the_request() {
    let request = ClientRequest::from_url("ws://example.com:8080/chat/room?id=7&x=y")
        .unwrap()
        .protocol("v2.chat")
        .protocol("v1.chat")
        .header("Cookie", "a=1; b=2")
        .header("Authorization", "Basic dTpw")
        .header("Origin", "https://example.com")
        .header("X-Multi", "one")
        .header("x-multi", "two");
    let bytes = client_handshake(request, plain()).request_bytes();
    let req = server_outcome(&plain(), &bytes).unwrap().expect("complete");
    assert_eq!(req.method(), "GET");
    assert_eq!(req.target(), "/chat/room?id=7&x=y");
    assert_eq!(req.path(), "/chat/room");
    assert_eq!(req.query(), Some("id=7&x=y"));
    assert_eq!(req.host(), Some("example.com:8080"));
    assert_eq!(req.origin(), Some("https://example.com"));
    assert_eq!(req.header("cookie"), Some("a=1; b=2"));
    assert_eq!(req.header("AUTHORIZATION"), Some("Basic dTpw"));
    assert_eq!(req.protocols(), ["v2.chat", "v1.chat"]);
    assert!(req.extensions().is_empty());
    let multi: Vec<&[u8]> = req.headers().get_all("X-Multi").collect();
    assert_eq!(multi, [&b"one"[..], b"two"]);
    assert_eq!(req.headers().count("x-multi"), 2);
    assert!(req.headers().iter().any(|(name, value)| name == "Cookie" && value == b"a=1; b=2"));
    assert!(!req.headers().is_empty());
    // No query, no protocols.
    let req = server_outcome(&plain(), &request_with("")).unwrap().unwrap();
    assert_eq!((req.path(), req.query(), req.origin()), ("/chat", None, None));
    assert!(req.protocols().is_empty());
}

#[test]
fn accept_with_subprotocol_and_headers() {
    for split in Split::all() {
        let request = ClientRequest::from_url("ws://example.com/chat").unwrap().protocol("chat").protocol("superchat");
        let accept = Accept::new().protocol("superchat").header("Set-Cookie", "id=42");
        let pair = handshake_pair_with(request, accept, plain(), plain(), split);
        assert_eq!(pair.client.conn.protocol(), Some("superchat"));
        assert_eq!(pair.server.conn.protocol(), Some("superchat"));
    }
    // The client sees the extra headers in the response.
    let request = ClientRequest::from_url("ws://example.com/chat").unwrap().protocol("chat");
    let mut client = client_handshake(request, plain());
    let mut server = ServerHandshake::new(plain());
    assert!(server.receive(&client.request_bytes()).unwrap().is_some());
    let mut conn = server.accept(Accept::new().protocol("chat").header("Set-Cookie", "id=42")).unwrap();
    let response = conn.take_transmit();
    assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let conn = client.receive(&response).unwrap().expect("accepted");
    assert_eq!(conn.protocol(), Some("chat"));
    let response = client.response().expect("response kept");
    assert_eq!(response.status, 101);
    assert_eq!(response.headers.get_str("set-cookie"), Some("id=42"));
    assert_eq!(response.headers.get_str("Sec-WebSocket-Protocol"), Some("chat"));
}

#[test]
fn accept_without_protocol_when_offered() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap().protocol("chat");
    let pair = handshake_pair_with(request, Accept::new(), plain(), plain(), Split::Whole);
    assert_eq!(pair.client.conn.protocol(), None);
    assert_eq!(pair.server.conn.protocol(), None);
}

#[test]
fn server_refuses_to_select_an_unoffered_protocol() {
    let mut server = ServerHandshake::new(plain());
    server.receive(&request_with("Sec-WebSocket-Protocol: chat\r\n")).unwrap();
    assert_eq!(
        server.accept(Accept::new().protocol("other")).unwrap_err(),
        HandshakeError::InvalidHeader("Sec-WebSocket-Protocol")
    );
}

#[test]
fn accept_before_the_request_is_complete_fails() {
    let mut server = ServerHandshake::new(plain());
    assert_eq!(server.receive(b"GET / HTTP/1.1\r\n").unwrap(), None);
    assert!(server.request().is_none());
    assert!(matches!(server.accept(Accept::new()), Err(HandshakeError::Malformed(_))));
}

#[test]
fn request_fed_one_byte_at_a_time() {
    let bytes = request_with("Origin: http://example.com\r\n");
    let mut server = ServerHandshake::new(plain());
    for (i, byte) in bytes.iter().enumerate() {
        let done = server.receive(std::slice::from_ref(byte)).unwrap().is_some();
        assert_eq!(done, i == bytes.len() - 1, "complete only with the last byte (at {i})");
    }
    assert_eq!(server.request().unwrap().origin(), Some("http://example.com"));
    let mut conn = server.accept(Accept::new()).unwrap();
    let response = conn.take_transmit();
    assert!(response.windows(28).any(|w| w == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

#[test]
fn tolerant_header_values() {
    // Case-insensitive tokens, token lists, surrounding whitespace.
    let bytes = request_lines(
        GET,
        &[
            HOST,
            "Upgrade: WebSocket",
            "Connection: keep-alive, Upgrade",
            "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  ",
            VERSION,
            "Content-Length: 0",
        ],
    );
    assert!(server_outcome(&plain(), &bytes).unwrap().is_some());
}

// ----- refusals -----

#[test]
fn wrong_version_gets_426_with_the_supported_version() {
    for version in [&["Sec-WebSocket-Version: 8"][..], &[], &[VERSION, VERSION], &["Sec-WebSocket-Version: 13, 8"]] {
        let mut lines = vec![HOST, UPGRADE, CONNECTION, KEY];
        lines.extend_from_slice(version);
        let err = server_error(&request_lines(GET, &lines));
        assert_eq!(err, HandshakeError::UnsupportedVersion, "{version:?}");
        assert_eq!(err.status(), 426);
        let response = err.response();
        assert!(response.starts_with(b"HTTP/1.1 426 Upgrade Required\r\n"));
        // The client sees it as a rejection carrying the header and the body.
        let request = ClientRequest::from_url("ws://example.com/").unwrap();
        let seen = rejected(client_outcome(&request, &plain(), &response));
        assert_eq!(seen.status, 426);
        assert_eq!(seen.reason, "Upgrade Required");
        assert_eq!(seen.headers.get_str("Sec-WebSocket-Version"), Some("13"));
        assert_eq!(&seen.body[..], format!("{err}\n").as_bytes());
    }
}

#[test]
fn post_gets_405() {
    let bytes = request_lines("POST /chat HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]);
    let err = server_error(&bytes);
    assert_eq!(err, HandshakeError::MethodNotGet("POST".into()));
    assert_eq!(err.status(), 405);
    let response = err.response();
    assert!(response.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\n"));
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let seen = rejected(client_outcome(&request, &plain(), &response));
    assert_eq!(seen.headers.get_str("Allow"), Some("GET"));
}

#[test]
fn http_1_0_is_refused() {
    let err = server_error(&request_lines("GET /chat HTTP/1.0", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]));
    assert_eq!(err, HandshakeError::NotHttp11);
    assert_eq!(err.status(), 505);
}

#[test]
fn malformed_http_is_refused() {
    for bytes in [&b"NOT HTTP AT ALL\r\n\r\n"[..], b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"\x00\x01\x02\r\n\r\n"] {
        let err = server_error(bytes);
        assert!(matches!(err, HandshakeError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn key_must_be_present_once_and_16_bytes() {
    let bad_keys: [&[&str]; 6] = [
        &[],
        &[KEY, KEY],
        &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"],         // 15 bytes
        &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAA="], // 20 bytes
        &["Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!"],
        &["Sec-WebSocket-Key: "],
    ];
    for key in bad_keys {
        let mut lines = vec![HOST, UPGRADE, CONNECTION, VERSION];
        lines.extend_from_slice(key);
        let err = server_error(&request_lines(GET, &lines));
        assert_eq!(err, HandshakeError::InvalidHeader("Sec-WebSocket-Key"), "{key:?}");
        assert_eq!(err.status(), 400);
        assert!(err.response().starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    }
}

#[test]
fn required_headers() {
    let cases: [(&[&str], HandshakeError); 6] = [
        (&[UPGRADE, CONNECTION, KEY, VERSION], HandshakeError::InvalidHeader("Host")),
        (&[HOST, HOST, UPGRADE, CONNECTION, KEY, VERSION], HandshakeError::InvalidHeader("Host")),
        (&[HOST, CONNECTION, KEY, VERSION], HandshakeError::InvalidHeader("Upgrade")),
        (&[HOST, "Upgrade: h2c", CONNECTION, KEY, VERSION], HandshakeError::InvalidHeader("Upgrade")),
        (&[HOST, UPGRADE, "Connection: keep-alive", KEY, VERSION], HandshakeError::InvalidHeader("Connection")),
        (&[HOST, UPGRADE, CONNECTION, KEY, VERSION, "Content-Length: 5"], HandshakeError::UnexpectedBody),
    ];
    for (lines, expected) in cases {
        assert_eq!(server_error(&request_lines(GET, lines)), expected, "{lines:?}");
    }
    let chunked = request_lines(GET, &[HOST, UPGRADE, CONNECTION, KEY, VERSION, "Transfer-Encoding: chunked"]);
    assert_eq!(server_error(&chunked), HandshakeError::UnexpectedBody);
    let origins = request_lines(GET, &[HOST, UPGRADE, CONNECTION, KEY, VERSION, "Origin: a", "Origin: b"]);
    assert_eq!(server_error(&origins), HandshakeError::InvalidHeader("Origin"));
}

#[test]
fn reject_with_401_and_a_body() {
    let reject = Reject::new(401).header("WWW-Authenticate", "Basic realm=\"chat\"").body("who are you?");
    let response = ServerHandshake::new(plain()).reject(reject);
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    for split in Split::all() {
        let mut client = client_handshake(request.clone(), plain());
        let pieces = Pipe::new(split).pieces(&response);
        let (last, init) = pieces.split_last().unwrap();
        for piece in init {
            assert_eq!(client.receive(piece).map(|c| c.is_some()), Ok(false), "{split:?}");
        }
        let err = client.receive(last).unwrap_err();
        let HandshakeError::Rejected(seen) = &err else { panic!("{err:?}") };
        assert_eq!(seen.status, 401);
        assert_eq!(seen.reason, "Unauthorized");
        assert_eq!(seen.headers.get_str("www-authenticate"), Some("Basic realm=\"chat\""));
        assert_eq!(seen.headers.get_str("Content-Length"), Some("12"));
        assert_eq!(&seen.body[..], b"who are you?");
        assert_eq!(err.status(), 401);
        assert_eq!(err.to_string(), "upgrade rejected with HTTP 401 Unauthorized");
        assert_eq!(client.response().map(|r| r.status), Some(401));
        // Sticky.
        assert_eq!(client.receive(b"more").unwrap_err(), err);
        assert_eq!(client.receive_eof().unwrap_err(), err);
    }
}

#[test]
fn reject_with_an_empty_body_needs_no_eof() {
    let response = ServerHandshake::new(plain()).reject(Reject::new(404));
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut client = client_handshake(request, plain());
    let err = client.receive(&response).unwrap_err();
    let HandshakeError::Rejected(seen) = err else { panic!() };
    assert_eq!((seen.status, seen.reason.as_str(), seen.body.len()), (404, "Not Found", 0));
}

#[test]
fn rejection_body_until_eof() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut client = client_handshake(request.clone(), plain());
    assert_eq!(
        client.receive(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\npartial ").map(|c| c.is_some()),
        Ok(false)
    );
    assert_eq!(client.receive(b"body").map(|c| c.is_some()), Ok(false));
    assert_eq!(client.receive(b"").map(|c| c.is_some()), Ok(false));
    let HandshakeError::Rejected(seen) = client.receive_eof().unwrap_err() else { panic!() };
    assert_eq!((seen.status, &seen.body[..]), (403, &b"partial body"[..]));
    assert_eq!(seen.headers.get_str("Content-Type"), Some("text/plain"));
    // The same under every split, and with a chunked body kept raw.
    let chunked = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let seen = rejected(client_outcome(&request, &plain(), chunked));
    assert_eq!(seen.status, 500);
    assert_eq!(&seen.body[..], b"5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn rejection_body_is_capped() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut response = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100000\r\n\r\n".to_vec();
    response.extend(vec![b'x'; MAX_REJECT_BODY + 10]);
    let seen = rejected(client_outcome(&request, &plain(), &response));
    assert_eq!(seen.body.len(), MAX_REJECT_BODY);
    // Without a length, the cap also ends the wait for EOF.
    let mut response = b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec();
    response.extend(vec![b'y'; MAX_REJECT_BODY + 1]);
    let mut client = client_handshake(request, plain());
    let HandshakeError::Rejected(seen) = client.receive(&response).unwrap_err() else { panic!() };
    assert_eq!(seen.body.len(), MAX_REJECT_BODY);
}

#[test]
fn client_validates_the_101_response() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap().protocol("chat");
    let bytes = client_handshake(request.clone(), plain()).request_bytes();
    let good = accept_response(&bytes, "");
    assert_eq!(client_outcome(&request, &plain(), &good), Ok(true));
    let with_protocol = accept_response(&bytes, "Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(client_outcome(&request, &plain(), &with_protocol), Ok(true));

    let bad_accept = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_eq!(
        client_outcome(&request, &plain(), bad_accept),
        Err(HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key"))
    );
    let no_accept = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(
        client_outcome(&request, &plain(), no_accept),
        Err(HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key"))
    );
    let twice = accept_response(
        &bytes,
        &format!("Sec-WebSocket-Accept: {}\r\n", AcceptKey::from_key(key_of(&bytes).as_bytes()).as_str()),
    );
    assert!(matches!(client_outcome(&request, &plain(), &twice), Err(HandshakeError::InvalidResponse(_))));
    let unoffered = accept_response(&bytes, "Sec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(
        client_outcome(&request, &plain(), &unoffered),
        Err(HandshakeError::InvalidResponse("server selected a subprotocol that was not offered"))
    );
    let several = accept_response(&bytes, "Sec-WebSocket-Protocol: chat, chat\r\n");
    assert_eq!(
        client_outcome(&request, &plain(), &several),
        Err(HandshakeError::InvalidResponse("server selected several subprotocols"))
    );
    let extension = accept_response(&bytes, "Sec-WebSocket-Extensions: x-unknown\r\n");
    assert!(matches!(client_outcome(&request, &plain(), &extension), Err(HandshakeError::InvalidResponse(_))));
    let no_upgrade = String::from_utf8(good.clone()).unwrap().replace("Upgrade: websocket\r\n", "");
    assert_eq!(
        client_outcome(&request, &plain(), no_upgrade.as_bytes()),
        Err(HandshakeError::InvalidResponse("missing Upgrade: websocket"))
    );
    let no_connection = String::from_utf8(good.clone()).unwrap().replace("Connection: Upgrade\r\n", "");
    assert_eq!(
        client_outcome(&request, &plain(), no_connection.as_bytes()),
        Err(HandshakeError::InvalidResponse("missing Connection: Upgrade"))
    );
    let http10 = String::from_utf8(good).unwrap().replace("HTTP/1.1", "HTTP/1.0");
    assert_eq!(client_outcome(&request, &plain(), http10.as_bytes()), Err(HandshakeError::NotHttp11));
    assert!(matches!(client_outcome(&request, &plain(), b"garbage\r\n\r\n"), Err(HandshakeError::Malformed(_))));
}

#[test]
fn eof_during_the_response_head() {
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut client = client_handshake(request, plain());
    assert_eq!(client.receive(b"HTTP/1.1 101 Swi").map(|c| c.is_some()), Ok(false));
    assert_eq!(client.receive_eof(), Err(HandshakeError::UnexpectedEof));
}

// ----- limits -----

#[test]
fn header_count_cap() {
    let config = plain().max_headers(8);
    let mut lines = vec![HOST, UPGRADE, CONNECTION, KEY, VERSION, "A: 1", "B: 2", "C: 3"];
    assert!(server_outcome(&config, &request_lines(GET, &lines)).unwrap().is_some(), "8 headers are fine");
    lines.push("D: 4");
    let err = server_outcome(&config, &request_lines(GET, &lines)).unwrap_err();
    assert_eq!(err, HandshakeError::TooManyHeaders { limit: 8 });
    assert_eq!(err.status(), 431);
    assert!(err.response().starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    // The client applies the same cap to responses.
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    for i in 0..9 {
        response.extend(format!("X-{i}: v\r\n").as_bytes());
    }
    response.extend(b"\r\n");
    assert_eq!(client_outcome(&request, &config, &response), Err(HandshakeError::TooManyHeaders { limit: 8 }));
}

#[test]
fn head_size_cap() {
    let exact = request_with("");
    let config = plain().max_handshake_size(exact.len());
    assert!(server_outcome(&config, &exact).unwrap().is_some(), "a head of exactly the limit is fine");
    let bigger = request_with("X: 1\r\n");
    let err = server_outcome(&config, &bigger).unwrap_err();
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: exact.len() });
    assert_eq!(err.status(), 431);
    // A head that never ends fails as soon as it passes the limit, without waiting.
    let config = plain().max_handshake_size(100);
    let mut server = ServerHandshake::new(config);
    let endless = [b'a'; 101];
    for (i, byte) in endless.iter().enumerate() {
        let result = server.receive(std::slice::from_ref(byte)).map(|r| r.is_some());
        if i < 100 {
            assert_eq!(result, Ok(false), "at {i}");
        } else {
            assert_eq!(result, Err(HandshakeError::HeadTooLarge { limit: 100 }));
        }
    }
    // And the client's response head.
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut client = client_handshake(request, plain().max_handshake_size(64));
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    response.extend([b'X'; 64]);
    assert_eq!(client.receive(&response).unwrap_err(), HandshakeError::HeadTooLarge { limit: 64 });
}

#[test]
fn handshake_timeout() {
    let config = plain().handshake_timeout(Some(Duration::from_secs(10)));
    let mut server = ServerHandshake::new(config.clone());
    assert_eq!(server.poll_timeout(), Some(Instant::ZERO), "needs the time to start the deadline");
    let start = Instant::from_millis(5_000);
    server.handle_timeout(start).unwrap();
    assert_eq!(server.poll_timeout(), Some(Instant::from_millis(15_000)));
    assert_eq!(server.receive(b"GET / HT").ok().map(|r| r.is_some()), Some(false));
    server.handle_timeout(Instant::from_millis(14_999)).unwrap();
    let err = server.handle_timeout(Instant::from_millis(15_000)).unwrap_err();
    assert_eq!(err, HandshakeError::Timeout);
    assert_eq!(err.status(), 408);
    assert_eq!(server.receive(b"TP/1.1\r\n").unwrap_err(), HandshakeError::Timeout);
    // A complete request stops the clock.
    let mut server = ServerHandshake::new(config);
    server.handle_timeout(start).unwrap();
    server.receive(&request_with("")).unwrap();
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(Instant::from_millis(60_000)).unwrap();
    // No timeout configured: no timer.
    assert_eq!(ServerHandshake::new(plain().handshake_timeout(None)).poll_timeout(), None);
}

// ----- bytes after the head -----

#[test]
fn frame_in_the_same_read_as_the_request_reaches_the_server_connection() {
    for config in [plain(), Config::default()] {
        let mut bytes = request_with("");
        bytes.extend(masked(0x81, b"early"));
        bytes.extend(masked(0x89, b"ping"));
        let mut server = ServerHandshake::new(config.clone());
        assert!(server.receive(&bytes).unwrap().is_some());
        let mut conn = server.accept(Accept::new()).unwrap();
        assert_eq!(conn.poll_event(), Some(text("early")));
        assert_eq!(conn.poll_event(), Some(Event::Ping(Bytes::from_static(b"ping"))));
        let out = conn.take_transmit();
        assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(out.ends_with(b"\r\n\r\n\x8a\x04ping"), "the pong follows the 101 response");
    }
    // Bytes fed after the request was complete but before accepting are kept too.
    let mut server = ServerHandshake::new(plain());
    let bytes = request_with("");
    let (head, first) = bytes.split_at(bytes.len() - 1);
    assert!(server.receive(head).unwrap().is_none());
    let mut first = first.to_vec();
    first.extend(&masked(0x82, b"ab")[..3]);
    assert!(server.receive(&first).unwrap().is_some());
    assert!(server.receive(&masked(0x82, b"ab")[3..]).unwrap().is_some());
    let mut conn = server.accept(Accept::new()).unwrap();
    assert_eq!(drain(&mut conn), [harness::binary(b"ab")]);
}

#[test]
fn frame_in_the_same_read_as_the_response_reaches_the_client_connection() {
    for config in [plain(), Config::default()] {
        let request = ClientRequest::from_url("ws://example.com/").unwrap();
        let mut client = client_handshake(request, config.clone());
        let mut server = ServerHandshake::new(config.clone());
        assert!(server.receive(&client.request_bytes()).unwrap().is_some());
        let mut conn = server.accept(Accept::new()).unwrap();
        conn.send_text("welcome").unwrap();
        conn.ping("hb").unwrap();
        let all = conn.take_transmit();
        let mut client_conn = client.receive(&all).unwrap().expect("accepted");
        assert_eq!(drain(&mut client_conn), [text("welcome"), Event::Ping(Bytes::from_static(b"hb"))]);
        assert!(client_conn.wants_write(), "the pong is queued");
    }
}

#[test]
fn invalid_frame_after_the_head_fails_the_new_connection() {
    let mut bytes = request_with("");
    bytes.extend(harness::unmasked(0x81, b"unmasked"));
    let mut server = ServerHandshake::new(plain());
    assert!(server.receive(&bytes).unwrap().is_some());
    let mut conn = server.accept(Accept::new()).unwrap();
    let err = wscore::Error::Protocol(wscore::ProtocolError::UnmaskedFrame);
    assert_eq!(conn.error(), Some(&err));
    assert_eq!(conn.receive(b""), Err(err));
    let out = conn.take_transmit();
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(harness::close_code_in(&out[head_end..]), Some(Some(1002)));
}

#[test]
fn handshake_pair_talks_under_every_split() {
    for config in [plain(), Config::default()] {
        for split in Split::all() {
            let mut pair = handshake_pair(config.clone(), config.clone(), split);
            let big = harness::text_of_len(70_000, 1);
            pair.client().send_text(big.clone()).unwrap();
            pair.server().send_text("small").unwrap();
            pair.client().close_normal().unwrap();
            pair.run();
            assert_eq!(pair.server.events, [text(&big), harness::close(1000, "")]);
            assert_eq!(pair.client.events, [text("small"), harness::close(1000, "")]);
            assert!(pair.client.transport_closed && pair.server.transport_closed);
            assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
        }
    }
}

fn drain(conn: &mut Connection) -> Vec<Event> {
    harness::drain_events(conn)
}

/// Debug output of a client request and of the handshakes it starts shows no secrets: header
/// values (cookies, tokens) and the query are left out; the rest is there to debug with.
#[test]
fn debug_output_leaves_out_cookies_tokens_and_the_query() {
    let request = ClientRequest::from_url("wss://api.example.com/stream?access_token=s3cr3t-query")
        .unwrap()
        .header("Cookie", "session=s3cr3t-cookie")
        .header("Authorization", "Bearer s3cr3t-bearer")
        .protocol("chat");
    let handshake = ClientHandshake::new(request.clone(), Config::default());
    for debug in [format!("{request:?}"), format!("{handshake:?}")] {
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>") || debug.contains("request_len"), "{debug}");
    }
    let debug = format!("{request:?}");
    for shown in ["api.example.com", "/stream?<redacted>", "Cookie", "Authorization", "chat"] {
        assert!(debug.contains(shown), "{shown} missing from {debug}");
    }
}
