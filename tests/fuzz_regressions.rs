//! Inputs that once broke an invariant of a fuzz target (`fuzz/`), written out as the calls they
//! amount to. Each test names the target and the seed kept in `fuzz/corpus/<target>/`.

use wscore::{
    Accept, ClientRequest, ClientUpgrade, Config, HandshakeError, Headers, HttpVersion, Proxy, ProxyHandshake, Request,
    SeededRandom, ServerUpgrade,
};

fn upgrade_request(version: HttpVersion, protocols: &str) -> Request {
    let mut headers = Headers::new();
    let fields: &[(&str, &str)] = match version {
        HttpVersion::Http11 => &[
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        _ => &[(":authority", "example.com"), (":protocol", "websocket"), ("sec-websocket-version", "13")],
    };
    for (name, value) in fields {
        headers.push(*name, *value);
    }
    headers.push("Sec-WebSocket-Protocol", protocols.to_string());
    let method = if version == HttpVersion::Http11 { "GET" } else { "CONNECT" };
    Request::new(method, "/chat", headers)
}

/// `upgrade` (seed `regression-protocol-with-crlf`): a request built by another HTTP stack
/// offered a subprotocol holding CR LF; accepting it answered `Sec-WebSocket-Protocol: ab` while
/// the connection's protocol was `a\r\nb`. Such a subprotocol cannot be selected.
#[test]
fn a_subprotocol_with_cr_or_lf_cannot_be_selected() {
    let server = ServerUpgrade::new(Config::default());
    for version in [HttpVersion::Http11, HttpVersion::Http2] {
        let pending = server.validate(version, upgrade_request(version, "chat, a\r\nb")).unwrap();
        assert_eq!(pending.request().protocols(), ["chat", "a\r\nb"]);
        let err = pending.accept(Accept::new().protocol("a\r\nb")).unwrap_err();
        assert_eq!(err, HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"), "{version:?}");
        // The other offer is still fine.
        let pending = server.validate(version, upgrade_request(version, "chat, a\r\nb")).unwrap();
        let (response, conn) = pending.accept(Accept::new().protocol("chat")).unwrap();
        assert_eq!((response.header("Sec-WebSocket-Protocol"), conn.protocol()), (Some("chat"), Some("chat")));
    }
}

/// `upgrade` (seed `regression-h2-connection-name-with-cr`): an application header named
/// `Conn\rection` was checked for being connection-specific before CR and LF were removed, so an
/// HTTP/2 answer carried `connection: close`, which RFC 9113 §8.2.2 forbids.
#[test]
fn http2_answers_never_carry_connection_specific_headers() {
    let server = ServerUpgrade::new(Config::default());
    let pending = server.validate(HttpVersion::Http2, upgrade_request(HttpVersion::Http2, "chat")).unwrap();
    let accept = Accept::new().header("Conn\rection", "close").header("Up\ngrade", "h2c").header("X-Ok", "1");
    let (response, _conn) = pending.accept(accept).unwrap();
    let headers: Vec<(&str, &str)> = response.headers().collect();
    assert_eq!(headers, [("x-ok", "1")]);

    // The client's HTTP/2 request fields, likewise.
    let request = ClientRequest::new("example.com", "/chat").header("Kee\r\np-Alive", "5").header("X-Ok", "1");
    let upgrade = ClientUpgrade::with_random(
        request,
        HttpVersion::Http2,
        Config::default().deflate(None),
        Box::new(SeededRandom::new(1)),
    );
    let fields: Vec<(&str, &str)> = upgrade.headers().collect();
    assert_eq!(fields, [("sec-websocket-version", "13"), ("x-ok", "1")]);
}

/// `proxy_handshake` (seed `regression-many-interim-heads`): each interim response copied
/// everything after it out of the buffer and in again, so a read holding many `100 Continue`
/// heads cost time quadratic in its length (32,000 of them, 800 KB, took over four minutes in
/// the fuzz target).
/// Interim heads are now dropped in place; this answer in one piece, and in pieces that cut heads
/// anywhere, still opens the tunnel with exactly the bytes after the 200. Each head is still held
/// to `max_handshake_size` on its own, however long the whole read is.
#[test]
fn many_interim_responses_in_one_read() {
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut answer = interim.repeat(20_000);
    answer.extend_from_slice(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01");
    let proxy = Proxy::new("proxy", 3128);
    for config in [Config::default(), Config::default().max_handshake_size(64)] {
        let mut handshake = ProxyHandshake::new(&proxy, "example.com", 443, &config);
        let rest = handshake.receive(&answer).unwrap().expect("tunnel open");
        assert_eq!(&rest[..], b"\x16\x03\x01");

        let mut handshake = ProxyHandshake::new(&proxy, "example.com", 443, &config);
        let mut pieces = answer.chunks(1000).peekable();
        let mut rest = None;
        while let Some(piece) = pieces.next() {
            if let Some(r) = handshake.receive(piece).unwrap() {
                assert!(pieces.peek().is_none(), "opened before the 200");
                rest = Some(r);
            }
        }
        assert_eq!(&rest.expect("tunnel open")[..], b"\x16\x03\x01");
    }
    // A single head over the limit still fails, after any number of interim ones.
    let mut answer = interim.repeat(100);
    answer.extend_from_slice(format!("HTTP/1.1 200 OK\r\nVia: {}\r\n\r\n", "x".repeat(100)).as_bytes());
    let mut handshake = ProxyHandshake::new(&proxy, "example.com", 443, &Config::default().max_handshake_size(64));
    assert!(handshake.receive(&answer).is_err());
}
