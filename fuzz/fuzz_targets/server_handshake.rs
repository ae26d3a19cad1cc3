//! `ServerHandshake::receive` on arbitrary bytes split at arbitrary points (RFC 6455 §4.2).
//!
//! Input: a 12-byte plan (see `Plan`; all zero = default config, the whole request in one
//! chunk after four empty ones, no clock), then the request bytes verbatim.
//!
//! Invariants: no panic; the outcome does not depend on how the bytes were split (compared with
//! one `receive` of everything, unless the deadline fired); errors are sticky and their
//! `response()` is a well-formed HTTP/1.1 error response; an accepted request yields a 101
//! whose head is well-formed, carries the right `Sec-WebSocket-Accept`, the chosen subprotocol
//! and a parsable extension response; the connection then behaves the same for both feeds.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wscore::{Accept, AcceptKey, Config, Connection, HandshakeError, Instant, Request, ServerHandshake};
use wscore_fuzz::{check_error_response, check_response_head, chunks, header};

#[derive(Arbitrary, Debug)]
struct Plan {
    /// Lengths of the first chunks; the rest is the last chunk.
    chunk_lens: [u8; 6],
    /// `max_handshake_size` 512 and `max_headers` 8 instead of the defaults.
    small_limits: bool,
    /// Non-zero: call `handle_timeout` after each chunk, the clock advancing by this many
    /// seconds per chunk (the handshake timeout is 10 s).
    clock_step_secs: u8,
    /// 0: accept without a subprotocol; k: the (k-1)th offered one (modulo), or one that was
    /// never offered when there is none.
    protocol: u8,
    /// Add a header to the 101 whose value tries to inject another header line.
    extra_header: bool,
    /// Refuse permessage-deflate.
    no_deflate: bool,
    _reserved: u8,
}

fn config(plan: &Plan) -> Config {
    let mut config = Config::default();
    if plan.small_limits {
        config = config.max_handshake_size(512).max_headers(8);
    }
    if plan.no_deflate {
        config = config.deflate(None);
    }
    config
}

fn accept_for(plan: &Plan, request: &Request) -> (Accept, Option<String>) {
    let mut accept = Accept::new();
    let offered = request.protocols();
    let protocol = match plan.protocol {
        0 => None,
        k if offered.is_empty() => Some(format!("never-offered-{k}")),
        k => Some(offered[usize::from(k - 1) % offered.len()].to_string()),
    };
    if let Some(p) = &protocol {
        accept = accept.protocol(p.clone());
    }
    if plan.extra_header {
        accept = accept.header("Set-Cookie", "id=1\r\nInjected: yes");
    }
    (accept, protocol)
}

/// Accepts, checks the 101 and returns the connection's whole output and events.
fn accept_and_check(hs: ServerHandshake, plan: &Plan, request: &Request) -> Option<(Vec<u8>, String)> {
    let (accept, protocol) = accept_for(plan, request);
    let offered_ok = protocol.as_ref().is_none_or(|p| request.protocols().contains(&p.as_str()));
    let mut conn: Connection = match hs.accept(accept) {
        Ok(conn) => conn,
        Err(err) => {
            assert!(!offered_ok, "accept failed: {err:?}");
            assert_eq!(err, HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"));
            return None;
        }
    };
    assert!(offered_ok, "accepted a subprotocol that was not offered");
    let out = conn.take_transmit();
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let (code, headers, _frames) = check_response_head(&out);
    assert_eq!(code, 101);
    assert!(header(&headers, "Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    assert!(header(&headers, "Connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade")));
    assert!(!headers.iter().any(|(n, _)| n == "Injected"), "header injection through Accept::header");
    let key = request.headers().get("Sec-WebSocket-Key").expect("accepted without a key").trim_ascii();
    assert_eq!(header(&headers, "Sec-WebSocket-Accept"), Some(AcceptKey::from_key(key).as_str()));
    assert_eq!(header(&headers, "Sec-WebSocket-Protocol"), protocol.as_deref());
    assert_eq!(conn.protocol(), protocol.as_deref());
    match header(&headers, "Sec-WebSocket-Extensions") {
        Some(value) => {
            let list = wscore::parse_extensions(value).expect("our extension response does not parse");
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].name, "permessage-deflate");
            assert!(!plan.no_deflate && conn.deflate_params().is_some());
        }
        None => assert!(conn.deflate_params().is_none()),
    }
    let _ = conn.handle_timeout(Instant::from_millis(1));
    let mut events = String::new();
    while let Some(event) = conn.poll_event() {
        events.push_str(&format!("{event:?}\n"));
    }
    events.push_str(&format!("{:?} {:?}", conn.state(), conn.error()));
    let mut all = out.to_vec();
    all.extend_from_slice(&conn.take_transmit());
    Some((all, events))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let bytes = u.take_rest();
    let config = config(&plan);

    let mut hs = ServerHandshake::new(config.clone());
    // The default handshake timeout is on: the deadline needs anchoring first.
    assert_eq!(hs.poll_timeout(), Some(Instant::ZERO));
    let mut outcome: Result<Option<Request>, HandshakeError> = Ok(None);
    let mut timed_out = false;
    for (i, chunk) in chunks(bytes, plan.chunk_lens.map(usize::from)).into_iter().enumerate() {
        match hs.receive(chunk) {
            Ok(Some(request)) => {
                assert_eq!(request.method(), "GET");
                outcome = Ok(Some(request.clone()));
                assert_eq!(hs.poll_timeout(), None, "no deadline once the request is complete");
            }
            Ok(None) => assert!(matches!(outcome, Ok(None)), "a complete request went back to incomplete"),
            Err(err) => {
                check_error_response(&err.response());
                assert_eq!(hs.receive(b"\r\n\r\n").unwrap_err(), err, "handshake errors are sticky");
                outcome = Err(err);
                break;
            }
        }
        if plan.clock_step_secs != 0 {
            let now = Instant::from_millis(i as u64 * u64::from(plan.clock_step_secs) * 1000);
            if let Err(err) = hs.handle_timeout(now) {
                assert_eq!(err, HandshakeError::Timeout);
                assert!(matches!(outcome, Ok(None)), "timed out after the request was complete");
                check_error_response(&err.response());
                assert_eq!(hs.receive(b"x").unwrap_err(), err);
                timed_out = true;
                break;
            }
        }
    }

    wscore_fuzz::debug(|| format!("{plan:?}\n{outcome:?} timed out: {timed_out}"));
    // Splitting must not matter: compare with everything in one call.
    let mut whole = ServerHandshake::new(config);
    let whole_outcome = whole.receive(bytes).map(|r| r.cloned());
    if !timed_out {
        assert_eq!(outcome, whole_outcome, "the outcome depends on how the request was split");
    }
    if let (Ok(Some(request)), false) = (outcome, timed_out) {
        let split_result = accept_and_check(hs, &plan, &request);
        let whole_result = accept_and_check(whole, &plan, &request);
        wscore_fuzz::debug(|| {
            let (out, events) = split_result.clone().unwrap_or_default();
            format!("{}\n{events}", String::from_utf8_lossy(&out))
        });
        assert_eq!(split_result, whole_result, "the connection depends on how the request was split");
    }
});
