//! `ClientHandshake::receive` / `receive_eof` on arbitrary response bytes split at arbitrary
//! points (RFC 6455 §4.1).
//!
//! The key comes from `SeededRandom::new(0)`, so it is fixed and seeds can carry the matching
//! `Sec-WebSocket-Accept` (see `fuzz/corpus/client_handshake/101-*`).
//!
//! Input: a 14-byte plan (see `Plan`; all zero = default config, deflate offered, no
//! subprotocol, the response in one chunk after six empty ones), then the response verbatim.
//!
//! Invariants: no panic; the outcome (after `receive_eof` when the handshake is still open)
//! does not depend on how the bytes were split; errors are sticky; a rejection carries a non-101
//! status and at most `MAX_REJECT_BODY` bytes of body, never more than its `Content-Length`; an
//! accepted upgrade yields a client connection with an offered subprotocol and compression only
//! if offered, whose events from the bytes after the head do not depend on the split either.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wscore::{
    ClientHandshake, ClientRequest, Config, Connection, DeflateConfig, HandshakeError, Instant, MAX_REJECT_BODY, Role,
    SeededRandom,
};
use wscore_fuzz::chunks;

const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.example"];

#[derive(Arbitrary, Debug)]
struct Plan {
    chunk_lens: [u8; 6],
    /// Bit i: offer `PROTOCOLS[i]`.
    protocols: u8,
    no_deflate: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// 15 - (b % 8).
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    /// `max_handshake_size` 512 and `max_headers` 8.
    small_limits: bool,
    _reserved: u8,
}

fn handshake(plan: &Plan) -> ClientHandshake {
    let mut request = ClientRequest::new("example.com", "/chat");
    for (i, p) in PROTOCOLS.iter().enumerate() {
        if plan.protocols & (1 << i) != 0 {
            request = request.protocol(*p);
        }
    }
    let mut config = Config::default();
    if plan.small_limits {
        config = config.max_handshake_size(512).max_headers(8);
    }
    let deflate = DeflateConfig::default()
        .server_no_context_takeover(plan.server_no_context_takeover)
        .client_no_context_takeover(plan.client_no_context_takeover)
        .server_max_window_bits(15 - plan.server_max_window_bits % 8)
        .client_max_window_bits(15 - plan.client_max_window_bits % 8);
    config = config.deflate(if plan.no_deflate { None } else { Some(deflate) });
    ClientHandshake::with_random(request, config, Box::new(SeededRandom::new(0)))
}

/// What a handshake run ends with, comparable across splits.
#[derive(Debug, PartialEq)]
enum Outcome {
    Failed(HandshakeError),
    Upgraded { events: Vec<String>, state: String, protocol: Option<String> },
}

fn finish_connection(plan: &Plan, mut conn: Connection) -> Outcome {
    assert_eq!(conn.role(), Role::Client);
    if let Some(p) = conn.protocol() {
        let offered = PROTOCOLS.iter().enumerate().any(|(i, o)| *o == p && plan.protocols & (1 << i) != 0);
        assert!(offered, "the connection took a subprotocol that was not offered: {p}");
    }
    if conn.deflate_params().is_some() {
        assert!(!plan.no_deflate, "compression without an offer");
    }
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event() {
        events.push(format!("{event:?}"));
    }
    let state = format!("{:?} {:?}", conn.state(), conn.error());
    let protocol = conn.protocol().map(String::from);
    // Exercise the rest of the lifecycle: timers, then the end of the stream.
    let _ = conn.handle_timeout(Instant::from_millis(1));
    let _ = conn.handle_timeout(Instant::from_millis(60_000));
    let _ = conn.receive_eof();
    assert!(conn.should_close_transport());
    Outcome::Upgraded { events, state, protocol }
}

fn check_error(hs: &mut ClientHandshake, err: &HandshakeError) {
    if let HandshakeError::Rejected(response) = err {
        assert_ne!(response.status, 101);
        assert!(response.body.len() <= MAX_REJECT_BODY);
        let declared = response.headers.get_str("Content-Length").and_then(|v| v.trim().parse::<usize>().ok());
        let chunked = response
            .headers
            .get_all("Transfer-Encoding")
            .any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked")));
        if let (Some(n), false) = (declared, chunked) {
            assert!(response.body.len() <= n, "kept more body than Content-Length");
        }
        assert_eq!(hs.response(), Some(&**response));
    }
    assert_eq!(hs.receive(b"HTTP/1.1 101 OK\r\n\r\n").unwrap_err(), *err, "handshake errors are sticky");
    assert_eq!(hs.receive_eof().unwrap_err(), *err, "handshake errors are sticky");
}

fn run(plan: &Plan, pieces: &[&[u8]]) -> Outcome {
    let mut hs = handshake(plan);
    let request = hs.request_bytes();
    assert!(request.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n") && request.ends_with(b"\r\n\r\n"));
    let mut conn: Option<Connection> = None;
    for piece in pieces {
        if let Some(conn) = conn.as_mut() {
            let _ = conn.receive(piece);
            continue;
        }
        match hs.receive(piece) {
            Ok(Some(c)) => {
                let response = hs.response().expect("upgraded without a response");
                assert_eq!(response.status, 101);
                conn = Some(c);
            }
            Ok(None) => {}
            Err(err) => {
                check_error(&mut hs, &err);
                return Outcome::Failed(err);
            }
        }
    }
    if let Some(conn) = conn {
        return finish_connection(plan, conn);
    }
    match hs.receive_eof() {
        Ok(()) => panic!("receive_eof succeeded without an upgrade"),
        Err(err) => {
            check_error(&mut hs, &err);
            Outcome::Failed(err)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let bytes = u.take_rest();
    let split = run(&plan, &chunks(bytes, plan.chunk_lens.map(usize::from)));
    let whole = run(&plan, &[bytes]);
    wscore_fuzz::debug(|| format!("{plan:?}\n{split:?}"));
    assert_eq!(split, whole, "the outcome depends on how the response was split");
});
