//! Hostile input, family 6: the HTTP/1.1 upgrade (RFC 6455 §4, RFC 9110/9112).
//!
//! Guards against CVE-2023-43669 (tungstenite: quadratic re-scanning of a head trickled in
//! small reads), CVE-2024-37890 (`ws`: a request with thousands of headers crashed the server),
//! CVE-2021-32640 and CVE-2020-7662 (`ws`, websocket-extensions: super-linear parsing of
//! `Sec-WebSocket-Protocol` / `Sec-WebSocket-Extensions`), CVE-2007-6750 (slowloris: a head
//! sent a byte at a time holds a connection forever) and CVE-2019-13209 (Rancher: cross-site
//! WebSocket hijacking through an unchecked `Origin`):
//!
//! - thousands of headers fail with `TooManyHeaders` (431), a head of any length fails with
//!   `HeadTooLarge` (431) as soon as it passes the cap, and the bytes fed before the failure are
//!   never more than the cap plus one read (so nothing beyond the cap is ever buffered; the
//!   head reader's scan is resumable, so trickling costs linear time — this test keeps the
//!   trickle to prove the bound, without timing anything);
//! - long subprotocol and extension lists within the cap are handled, beyond it refused (431);
//! - malformed and duplicate `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and `Origin` get the
//!   exact error and status; bodies (`Content-Length` > 0, `Transfer-Encoding`) get 400, other
//!   methods 405, other HTTP versions 505;
//! - the handshake deadline (408) is not extended by trickled bytes;
//! - the `Origin` policy: allow lists (lenient and strict about a missing `Origin`) refuse
//!   look-alike origins with 403, and a callback sees exactly what was sent.
//!
//! `tests/handshake.rs` covers the basic refusals (426 for a wrong version, 405 for POST, 505
//! for HTTP/1.0, missing headers, an 8-header cap and a 100-byte head cap, the timeout API); they
//! are not repeated.

mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use wscore::{
    Accept, ClientHandshake, ClientRequest, Config, HandshakeError, Instant, OriginPolicy, SeededRandom,
    ServerHandshake,
};

const CAP: usize = 16 << 10;

/// No extension negotiation unless a test asks for it, so outcomes do not depend on features.
fn plain() -> Config {
    let config = Config::default();
    #[cfg(feature = "deflate")]
    let config = config.deflate(None);
    config
}

/// A valid upgrade request with `extra` header lines (each ending in CRLF).
fn request_with(extra: &str) -> Vec<u8> {
    request_start("GET /chat HTTP/1.1", extra)
}

fn request_start(start: &str, extra: &str) -> Vec<u8> {
    format!(
        "{start}\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A request without the key and version lines, plus `extra`.
fn request_without_key_and_version(extra: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n")
        .into_bytes()
}

/// Feeds `bytes` to a fresh server handshake under every split; checks the outcome is the
/// same for all, and that an error is sticky. Returns it.
fn outcome_with(config: &Config, policy: Option<&OriginPolicy>, bytes: &[u8]) -> Result<bool, HandshakeError> {
    let mut seen = None;
    for split in harness::Split::all() {
        let mut handshake = ServerHandshake::new(config.clone());
        if let Some(policy) = policy {
            handshake = handshake.origin_policy(policy.clone());
        }
        let mut outcome = Ok(false);
        for piece in harness::Pipe::new(split).pieces(bytes) {
            outcome = handshake.receive(piece).map(|r| r.is_some());
            if outcome.is_err() {
                assert_eq!(handshake.receive(b"\r\n\r\n").map(|r| r.is_some()), outcome, "sticky");
                break;
            }
        }
        if let Some(seen) = &seen {
            assert_eq!(seen, &outcome, "{split:?}");
        }
        seen = Some(outcome);
    }
    seen.expect("ran")
}

fn error_of(bytes: &[u8]) -> HandshakeError {
    outcome_with(&plain(), None, bytes).expect_err("must be refused")
}

fn assert_status(err: &HandshakeError, status: u16) {
    assert_eq!(err.status(), status, "{err:?}");
    let response = err.response();
    assert!(response.starts_with(format!("HTTP/1.1 {status} ").as_bytes()), "{response:?}");
}

// ----- header count and head size -----

#[test]
fn thousands_of_headers_get_431() {
    // 1500 short headers fit under the 16 KiB head cap, so the header count is what trips.
    let many: String = (0..1500).map(|i| format!("h{i:04}:1\r\n")).collect();
    let bytes = request_with(&many);
    assert!(bytes.len() < CAP);
    let err = error_of(&bytes);
    assert_eq!(err, HandshakeError::TooManyHeaders { limit: 64 });
    assert_status(&err, 431);
    // The verdict needs the whole head (it is counted once complete), never more.
    let mut server = ServerHandshake::new(plain());
    for (i, byte) in bytes.iter().enumerate() {
        let result = server.receive(std::slice::from_ref(byte)).map(|r| r.is_some());
        if i + 1 < bytes.len() {
            assert_eq!(result, Ok(false), "at {i}");
        } else {
            assert_eq!(result, Err(HandshakeError::TooManyHeaders { limit: 64 }));
        }
    }
    // 50 000 headers under a 1 MiB cap: still refused, by count.
    let many: String = (0..50_000).map(|i| format!("h{i}:1\r\n")).collect();
    let mut server = ServerHandshake::new(plain().max_handshake_size(1 << 20));
    let result = server.receive(&request_with(&many)).map(|r| r.is_some());
    assert_eq!(result, Err(HandshakeError::TooManyHeaders { limit: 64 }));
    // More headers than the head cap can hold: refused by size, as soon as it is passed.
    let many: String = (0..5000).map(|i| format!("h{i:04}:1\r\n")).collect();
    assert_eq!(error_of(&request_with(&many)), HandshakeError::HeadTooLarge { limit: CAP });
    // Raised limits accept them all.
    let many: String = (0..1500).map(|i| format!("h{i:04}:1\r\n")).collect();
    let mut server = ServerHandshake::new(plain().max_headers(2000));
    let request = server.receive(&request_with(&many)).unwrap().expect("complete");
    assert_eq!(request.headers().len(), 1505);
    assert_eq!(request.header("h1499"), Some("1"));
    // A client facing a response with thousands of headers.
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    response.extend((0..1500).flat_map(|i| format!("h{i:04}:1\r\n").into_bytes()));
    response.extend_from_slice(b"\r\n");
    let request = ClientRequest::from_url("ws://example.com/").unwrap();
    let mut client = ClientHandshake::with_random(request, plain(), Box::new(SeededRandom::new(1)));
    assert_eq!(client.receive(&response).map(|c| c.is_some()), Err(HandshakeError::TooManyHeaders { limit: 64 }));
}

/// Feeds an endless head (`prefix`, then `filler` repeated up to 20 MB) in reads of `read`
/// bytes until the handshake fails; returns the error and the bytes fed.
fn trickle(
    receive: &mut dyn FnMut(&[u8]) -> Result<(), HandshakeError>,
    prefix: &[u8],
    filler: &[u8],
    read: usize,
) -> (HandshakeError, usize) {
    const TOTAL: usize = 20 << 20;
    let mut fed = 0;
    let mut buf = Vec::with_capacity(read);
    while fed < TOTAL {
        buf.clear();
        while buf.len() < read {
            let at = fed + buf.len();
            buf.push(if at < prefix.len() { prefix[at] } else { filler[(at - prefix.len()) % filler.len()] });
        }
        fed += read;
        if let Err(err) = receive(&buf) {
            return (err, fed);
        }
    }
    panic!("20 MB accepted without a verdict");
}

#[test]
fn a_20_mb_header_trickled_in_fails_at_the_cap_without_buffering_more() {
    let prefix = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nX-Big: ";
    // One endless header value, and endless short header lines (every byte a newline check).
    for filler in [&b"a"[..], b"a:b\r\n", b"\r\r\n \n"] {
        for read in [1, 100] {
            let mut server = ServerHandshake::new(plain());
            let (err, fed) = trickle(&mut |d: &[u8]| server.receive(d).map(|_| ()), prefix, filler, read);
            // Short lines are headers too, but the count is only checked on a complete head,
            // and this one never completes: the size cap is what answers.
            let expected = HandshakeError::HeadTooLarge { limit: CAP };
            assert_eq!(err, expected, "{filler:?} in reads of {read}");
            assert_status(&err, 431);
            // Failed as soon as the cap was passed: never more than one read beyond it.
            assert!(fed > CAP && fed <= CAP + read, "{filler:?}/{read}: failed after {fed} bytes");
            // Sticky, and nothing more is taken in.
            assert_eq!(server.receive(&[b'a'; 100]).map(|_| ()), Err(expected));
        }
    }
    // The client side, reading an endless response head.
    for read in [1, 100] {
        let request = ClientRequest::from_url("ws://example.com/").unwrap();
        let mut client = ClientHandshake::with_random(request, plain(), Box::new(SeededRandom::new(2)));
        let (err, fed) = trickle(
            &mut |d: &[u8]| client.receive(d).map(|_| ()),
            b"HTTP/1.1 101 Switching Protocols\r\nX-Big: ",
            b"z",
            read,
        );
        assert_eq!(err, HandshakeError::HeadTooLarge { limit: CAP });
        assert!(fed > CAP && fed <= CAP + read, "client: failed after {fed} bytes");
    }
}

// ----- long lists -----

#[test]
fn long_subprotocol_and_extension_lists() {
    // 1000 subprotocols in one header, within the cap: all offered, any can be chosen.
    let protocols: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    let bytes = request_with(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", ")));
    assert!(bytes.len() < CAP);
    let mut server = ServerHandshake::new(plain());
    let request = server.receive(&bytes).unwrap().expect("complete");
    assert_eq!(request.protocols(), protocols);
    let mut conn = server.accept(Accept::new().protocol("p999")).unwrap();
    let response = conn.take_transmit();
    assert!(std::str::from_utf8(&response).unwrap().contains("\r\nSec-WebSocket-Protocol: p999\r\n"));
    assert_eq!(conn.protocol(), Some("p999"));
    // Spread over many header lines (up to the header count limit).
    let lines: String = (0..50).map(|i| format!("Sec-WebSocket-Protocol: a{i}, b{i}\r\n")).collect();
    let mut server = ServerHandshake::new(plain());
    assert_eq!(server.receive(&request_with(&lines)).unwrap().expect("complete").protocols().len(), 100);
    // Beyond the cap: refused by size.
    let protocols: Vec<String> = (0..3000).map(|i| format!("proto-{i}")).collect();
    let err = error_of(&request_with(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "))));
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: CAP });
    assert_status(&err, 431);
    // Hundreds of unknown and malformed extension offers: declined, the upgrade still works.
    let junk: Vec<String> = (0..300).map(|i| format!("x-ext-{i}; a={i}; b")).collect();
    let extra = format!("Sec-WebSocket-Extensions: {}\r\nSec-WebSocket-Extensions: ;;, ,=\"\r\n", junk.join(", "));
    let bytes = request_with(&extra);
    assert!(bytes.len() < CAP);
    let mut server = ServerHandshake::new(Config::default());
    assert_eq!(server.receive(&bytes).unwrap().expect("complete").extensions().len(), 300 + 2);
    let mut conn = server.accept(Accept::new()).unwrap();
    let response = String::from_utf8(conn.take_transmit().to_vec()).unwrap();
    assert!(!response.contains("Sec-WebSocket-Extensions"), "{response}");
    // With a real offer at the end of the junk, permessage-deflate is negotiated.
    #[cfg(feature = "deflate")]
    {
        let extra = format!("Sec-WebSocket-Extensions: {}, permessage-deflate\r\n", junk.join(", "));
        let mut server = ServerHandshake::new(Config::default());
        server.receive(&request_with(&extra)).unwrap().expect("complete");
        let conn = server.accept(Accept::new()).unwrap();
        assert!(conn.deflate_params().is_some());
    }
    // Beyond the cap: refused by size.
    let junk: Vec<String> = (0..2000).map(|i| format!("x-ext-{i}")).collect();
    let err = error_of(&request_with(&format!("Sec-WebSocket-Extensions: {}\r\n", junk.join(", "))));
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: CAP });
}

// ----- malformed and duplicate upgrade headers -----

#[test]
fn malformed_and_duplicate_keys() {
    let bad_keys = [
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",    // no padding
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",  // non-canonical last bits
        "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ==", // inner space
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==", // two in one line
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ-_", // URL-safe alphabet
        "Sec-WebSocket-Key: ========================",
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        // The same valid key twice is still two keys.
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    for key in bad_keys {
        let err = error_of(&request_without_key_and_version(&format!("{key}\r\nSec-WebSocket-Version: 13\r\n")));
        assert_eq!(err, HandshakeError::InvalidHeader("Sec-WebSocket-Key"), "{key}");
        assert_status(&err, 400);
    }
    // Optional whitespace around the value is not part of it.
    let ok = request_without_key_and_version(
        "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\nSec-WebSocket-Version: 13\r\n",
    );
    assert_eq!(outcome_with(&plain(), None, &ok), Ok(true));
}

#[test]
fn malformed_and_duplicate_versions() {
    let bad_versions = [
        "Sec-WebSocket-Version: 013",
        "Sec-WebSocket-Version: +13",
        "Sec-WebSocket-Version: 13.0",
        "Sec-WebSocket-Version: 1 3",
        "Sec-WebSocket-Version: 12",
        "Sec-WebSocket-Version: 14",
        "Sec-WebSocket-Version: 65549",
        "Sec-WebSocket-Version: 8, 13",
        "Sec-WebSocket-Version:",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8",
    ];
    for version in bad_versions {
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
        let err = error_of(&request_without_key_and_version(&format!("{key}\r\n{version}\r\n")));
        assert_eq!(err, HandshakeError::UnsupportedVersion, "{version}");
        assert_status(&err, 426);
        // RFC 6455 §4.4: the answer says which version we speak.
        assert!(String::from_utf8(err.response().to_vec()).unwrap().contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
}

#[test]
fn malformed_and_duplicate_origins() {
    let policy = OriginPolicy::allow_list(["https://app.example.com"]);
    // Two origins are refused as malformed (400) whatever the policy, even when one is allowed.
    for pair in ["Origin: https://app.example.com\r\nOrigin: https://evil.example\r\n", "Origin: a\r\norigin: a\r\n"] {
        for policy in [None, Some(&policy)] {
            let err = outcome_with(&plain(), policy, &request_with(pair)).unwrap_err();
            assert_eq!(err, HandshakeError::InvalidHeader("Origin"), "{pair}");
            assert_status(&err, 400);
        }
    }
    // Control characters cannot even be parsed.
    let err = error_of(&request_with("Origin: https://app.example.com\x00.evil\r\n"));
    assert!(matches!(err, HandshakeError::Malformed(_)), "{err:?}");
    // An origin that is not UTF-8 is present, so an allow list must not treat it as missing.
    let mut bytes = request_with("");
    let at = bytes.len() - 2;
    bytes.splice(at..at, b"Origin: https://app.example.com\xff\r\n".iter().copied());
    let err = outcome_with(&plain(), Some(&policy), &bytes).unwrap_err();
    assert_eq!(err, HandshakeError::ForbiddenOrigin);
    assert_status(&err, 403);
}

// ----- bodies, methods, versions -----

#[test]
fn requests_with_bodies_get_400() {
    for header in [
        "Content-Length: 1",
        "Content-Length: 100000",
        "Content-Length: 18446744073709551616",
        "Content-Length: -1",
        "Content-Length: 0, 5",
        "Content-Length: 0\r\nContent-Length: 7",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity",
        "Transfer-Encoding: gzip, chunked",
        "transfer-encoding: chunked\r\nContent-Length: 0",
    ] {
        let err = error_of(&request_with(&format!("{header}\r\n")));
        assert_eq!(err, HandshakeError::UnexpectedBody, "{header}");
        assert_status(&err, 400);
    }
    // A zero length is no body.
    for header in ["Content-Length: 0", "Content-Length:  0 ", "Content-Length: 0\r\nContent-Length: 0"] {
        assert_eq!(outcome_with(&plain(), None, &request_with(&format!("{header}\r\n"))), Ok(true), "{header}");
    }
}

#[test]
fn other_methods_get_405_and_other_versions_505() {
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "get", "Get", "X-GET"] {
        let err = error_of(&request_start(&format!("{method} /chat HTTP/1.1"), ""));
        assert_eq!(err, HandshakeError::MethodNotGet(method.into()));
        assert_status(&err, 405);
        assert!(String::from_utf8(err.response().to_vec()).unwrap().contains("\r\nAllow: GET\r\n"));
    }
    // Method first: a POST over HTTP/1.0 is a 405.
    assert_eq!(error_of(&request_start("POST /chat HTTP/1.0", "")), HandshakeError::MethodNotGet("POST".into()));
    let err = error_of(&request_start("GET /chat HTTP/1.0", ""));
    assert_eq!(err, HandshakeError::NotHttp11);
    assert_status(&err, 505);
    // Versions HTTP/1.1 parsing does not know are malformed requests.
    for start in
        ["GET /chat HTTP/2.0", "GET /chat HTTP/1.2", "GET /chat HTTP/11", "GET /chat", "GET /chat HTTP/1.1 extra"]
    {
        let err = error_of(&request_start(start, ""));
        assert!(matches!(err, HandshakeError::Malformed(_)), "{start}: {err:?}");
        assert_status(&err, 400);
    }
}

// ----- slowloris -----

#[test]
fn a_trickled_head_does_not_extend_the_deadline() {
    let config = plain().handshake_timeout(Some(Duration::from_secs(10)));
    let bytes = request_with("");
    let mut server = ServerHandshake::new(config.clone());
    let start = Instant::from_millis(1_000);
    server.handle_timeout(start).unwrap();
    let deadline = Instant::from_millis(11_000);
    // One byte a second: the deadline stays where it was.
    let mut fed = 0;
    for second in 0..10u64 {
        let now = Instant::from_millis(1_000 + second * 1_000);
        server.handle_timeout(now).unwrap();
        assert_eq!(server.receive(&bytes[fed..=fed]).map(|r| r.is_some()), Ok(false));
        fed += 1;
        assert_eq!(server.poll_timeout(), Some(deadline), "after {fed} bytes");
    }
    let err = server.handle_timeout(deadline).unwrap_err();
    assert_eq!(err, HandshakeError::Timeout);
    assert_status(&err, 408);
    // Sticky: the rest of the request arriving late changes nothing.
    assert_eq!(server.receive(&bytes[fed..]).map(|r| r.is_some()), Err(HandshakeError::Timeout));
    assert!(server.accept(Accept::new()).is_err());
    // The same request completed a millisecond before the deadline is accepted.
    let mut server = ServerHandshake::new(config);
    server.handle_timeout(start).unwrap();
    server.handle_timeout(Instant::from_millis(10_999)).unwrap();
    assert_eq!(server.receive(&bytes).map(|r| r.is_some()), Ok(true));
    server.handle_timeout(Instant::from_millis(20_000)).unwrap();
    assert!(server.accept(Accept::new()).is_ok());
}

// ----- origin policy -----

#[test]
fn origin_allow_list() {
    let policy = OriginPolicy::allow_list(["https://app.example.com", "http://localhost:8080"]);
    let with_origin = |origin: &str| request_with(&format!("Origin: {origin}\r\n"));
    // Allowed (ASCII case-insensitively), and no Origin at all (a non-browser client).
    for origin in ["https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "http://localhost:8080"] {
        assert_eq!(outcome_with(&plain(), Some(&policy), &with_origin(origin)), Ok(true), "{origin}");
    }
    assert_eq!(outcome_with(&plain(), Some(&policy), &request_with("")), Ok(true));
    // Look-alikes are refused with 403.
    for origin in [
        "https://app.example.com.evil.example",
        "https://evil.example/https://app.example.com",
        "https://app.example.com:443",
        "http://app.example.com",
        "https://app.example.co",
        "https://xapp.example.com",
        "http://localhost:8081",
        "null",
        "*",
        "https://app.example.com, https://evil.example",
    ] {
        let err = outcome_with(&plain(), Some(&policy), &with_origin(origin)).unwrap_err();
        assert_eq!(err, HandshakeError::ForbiddenOrigin, "{origin}");
        assert_status(&err, 403);
    }
    // Header validation comes first: a bad key with a bad origin is a 400.
    let bytes = request_without_key_and_version(
        "Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil\r\n",
    );
    assert_eq!(outcome_with(&plain(), Some(&policy), &bytes), Err(HandshakeError::InvalidHeader("Sec-WebSocket-Key")));
}

#[test]
fn origin_allow_list_strict_refuses_a_missing_origin() {
    let policy = OriginPolicy::allow_list_strict(["https://app.example.com"]);
    let err = outcome_with(&plain(), Some(&policy), &request_with("")).unwrap_err();
    assert_eq!(err, HandshakeError::ForbiddenOrigin);
    assert_status(&err, 403);
    assert_eq!(outcome_with(&plain(), Some(&policy), &request_with("Origin: https://app.example.com\r\n")), Ok(true));
    let err = outcome_with(&plain(), Some(&policy), &request_with("Origin: https://evil.example\r\n")).unwrap_err();
    assert_eq!(err, HandshakeError::ForbiddenOrigin);
    // An empty allow list refuses every browser.
    let nobody = OriginPolicy::allow_list(Vec::<String>::new());
    assert_eq!(
        outcome_with(&plain(), Some(&nobody), &request_with("Origin: https://app.example.com\r\n")),
        Err(HandshakeError::ForbiddenOrigin)
    );
    assert_eq!(outcome_with(&plain(), Some(&nobody), &request_with("")), Ok(true));
}

#[test]
fn origin_check_callback() {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    let policy = OriginPolicy::check(move |origin| {
        log.lock().unwrap().push(origin.map(String::from));
        origin.is_some_and(|o| o.ends_with(".trusted.example"))
    });
    let mut server = ServerHandshake::new(plain()).origin_policy(policy.clone());
    assert!(server.receive(&request_with("Origin: https://a.trusted.example\r\n")).unwrap().is_some());
    let mut server = ServerHandshake::new(plain()).origin_policy(policy.clone());
    let err = server.receive(&request_with("Origin: https://trusted.example.evil\r\n")).unwrap_err();
    assert_eq!(err, HandshakeError::ForbiddenOrigin);
    let mut server = ServerHandshake::new(plain()).origin_policy(policy.clone());
    assert_eq!(server.receive(&request_with("")).unwrap_err(), HandshakeError::ForbiddenOrigin);
    // A refused request before the origin check never reaches the callback.
    let mut server = ServerHandshake::new(plain()).origin_policy(policy);
    let bytes = request_start("POST / HTTP/1.1", "Origin: https://b.trusted.example\r\n");
    assert!(matches!(server.receive(&bytes), Err(HandshakeError::MethodNotGet(_))));
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("https://a.trusted.example".to_string()), Some("https://trusted.example.evil".to_string()), None]
    );
}
