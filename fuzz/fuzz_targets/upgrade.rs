//! `ServerUpgrade::validate` / `PendingUpgrade::accept` on fuzzed header lists, for both
//! `HttpVersion`s (RFC 6455 §4.2 for HTTP/1.1, RFC 8441 §4–5 for HTTP/2), and
//! `ClientUpgrade::finish` on the answers (RFC 6455 §4.1).
//!
//! Input: a 16-byte plan (see `Plan`; all zero = HTTP/1.1, a complete valid request with two
//! subprotocols and a deflate offer, default configs, accepted without a subprotocol), then
//! length-prefixed fields (one length byte, then the bytes): the request target, `extra` request
//! fields and `accept_headers` response headers (each a name selector byte — an index into
//! `NAMES`, or past its end a literal name field — then a value field), and the text of the
//! message the pair exchanges.
//!
//! Two scenarios per input:
//!
//! - **Arbitrary request**: a template request (`drop` leaves fields out) with fuzzed fields
//!   added, any method and target, through `validate` and `accept` with a fuzzed `Accept`. No
//!   panic; a rejection's `reject` has a 4xx/5xx status, lower-case names and no
//!   connection-specific headers over HTTP/2, and a well-formed HTTP/1.1 form; over HTTP/1.1
//!   `ServerHandshake` reaches the same verdict on the request as bytes; a response is 101 with
//!   `Upgrade`, `Connection` and the right `Sec-WebSocket-Accept` first (HTTP/1.1), or 200 with
//!   lower-case names and no key, accept or connection-specific headers (HTTP/2); its
//!   subprotocol is the one chosen, and only if offered; its extension answer (at most one)
//!   parses, is `permessage-deflate` within the server's configuration and matches the
//!   connection's parameters; no name or value carries CR or LF.
//! - **Pair**: a `ClientUpgrade`'s request (fuzzed subprotocols and deflate offer) through
//!   `validate` and `accept`; the answer, possibly altered by `mutation` in a way a real server
//!   would not answer, to `finish`: accepted exactly when unaltered; then both ends exchange
//!   messages both ways (compressed when negotiated). Over HTTP/1.1, `ClientHandshake` (same seed)
//!   sends the same request and reaches the same verdict on the answer as bytes.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wscore::{
    Accept, AcceptKey, ClientHandshake, ClientRequest, ClientUpgrade, Config, Connection, DeflateConfig, Event,
    HandshakeError, Headers, HttpVersion, Message, OriginPolicy, Request, Response, Role, SeededRandom,
    ServerHandshake, ServerUpgrade,
};
use wscore_fuzz::{byte, check_error_response, field, is_token, text_field};

/// Header names the selectors pick from (past the end: a literal name from the input).
const NAMES: [&str; 24] = [
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
    "Content-Length",
    "Transfer-Encoding",
    ":authority",
    ":protocol",
    ":path",
    ":scheme",
    "host",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-accept",
    "Sec-WebSocket-Accept",
    "Set-Cookie",
    "Keep-Alive",
    "TE",
    "Proxy-Connection",
    "X-Custom",
];
const METHODS: [&str; 6] = ["GET", "CONNECT", "POST", "get", "", "OPTIONS"];
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.example"];
/// Fields a connection-specific HTTP/1.1 header may not travel in over HTTP/2 (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: [&str; 6] =
    ["connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "te"];

#[derive(Arbitrary, Debug)]
struct Plan {
    /// The HTTP/2 extended CONNECT instead of the HTTP/1.1 upgrade.
    http2: bool,
    /// Bit i: leave out template field i (see `template`); bit 7: keep an empty target empty.
    drop: u8,
    /// 0: the version's method; else `METHODS[b % 6]`.
    method: u8,
    /// b % 8 fuzzed request fields.
    extra: u8,
    /// b % 4: any origin, allow list, strict allow list, a check refusing `null`.
    origin: u8,
    /// Server deflate: bit 0 off, bit 1 server_no_context_takeover, bit 2
    /// client_no_context_takeover, bits 3-5 server_max_window_bits 15 - x, bits 6-7 level.
    server_deflate: u8,
    /// Server client_max_window_bits 15 - b % 8.
    server_client_bits: u8,
    /// 0: no subprotocol; k: the (k-1)th offered one (modulo), or one never offered.
    protocol: u8,
    /// b % 4 fuzzed `Accept` headers.
    accept_headers: u8,
    /// Client deflate, as `server_deflate`.
    client_deflate: u8,
    /// Client client_max_window_bits 15 - b % 8.
    client_client_bits: u8,
    /// Bit i: the client offers `PROTOCOLS[i]`; bit 3: it sends an `Origin`.
    client_protocols: u8,
    /// How to alter the answer before `finish` (see `mutate`; 0 = not at all).
    mutation: u8,
    /// A threshold for compressing (b, default 64 when 0), and the pair's message repeat count.
    threshold: u8,
    repeat: u8,
    _reserved: u8,
}

fn deflate(bits: u8, client_bits: u8, threshold: u8) -> Option<DeflateConfig> {
    if bits & 1 != 0 {
        return None;
    }
    Some(
        DeflateConfig::default()
            .server_no_context_takeover(bits & 2 != 0)
            .client_no_context_takeover(bits & 4 != 0)
            .server_max_window_bits(15 - (bits >> 3 & 7))
            .client_max_window_bits(15 - client_bits % 8)
            .level(u32::from(bits >> 6) * 3)
            .threshold(if threshold == 0 { 64 } else { usize::from(threshold) }),
    )
}

fn origin_policy(b: u8) -> OriginPolicy {
    match b % 4 {
        0 => OriginPolicy::Any,
        1 => OriginPolicy::allow_list(["https://app.example"]),
        2 => OriginPolicy::allow_list_strict(["https://app.example"]),
        _ => OriginPolicy::check(|origin| origin != Some("null")),
    }
}

/// A header name: one of `NAMES`, or a literal field.
fn name(u: &mut Unstructured<'_>) -> String {
    let selector = usize::from(byte(u));
    match NAMES.get(selector) {
        Some(name) => (*name).to_string(),
        None => text_field(u),
    }
}

/// The template request's fields for `version`.
fn template(http2: bool) -> Vec<(&'static str, &'static str)> {
    let offer = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
    if http2 {
        vec![
            (":authority", "example.com"),
            (":protocol", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat, superchat"),
            ("sec-websocket-extensions", offer.1),
            ("origin", "https://app.example"),
        ]
    } else {
        vec![
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            offer,
        ]
    }
}

fn version(http2: bool) -> HttpVersion {
    if http2 { HttpVersion::Http2 } else { HttpVersion::Http11 }
}

fn has_newline(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

/// The WebSocket fields of a response, which the negotiation owns: an application header with
/// one of these names makes the answer something else than what the negotiation decided.
fn websocket_owned(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name.starts_with("sec-websocket-") || name == "upgrade" || name == "connection"
}

fn check_reject(err: &HandshakeError, version: HttpVersion) {
    let reject = err.reject(version);
    assert!((400..600).contains(&reject.status()), "{err:?} rejected with {}", reject.status());
    for (name, value) in reject.headers() {
        assert!(!has_newline(name) && !has_newline(value));
        if version == HttpVersion::Http2 {
            assert_eq!(name, name.to_ascii_lowercase(), "upper case in an HTTP/2 field name");
            assert!(!CONNECTION_SPECIFIC.contains(&name), "connection-specific {name} over HTTP/2");
        }
    }
    if version == HttpVersion::Http11 {
        assert_eq!(err.reject(version).into_bytes(), err.response());
        check_error_response(&err.response());
    }
}

/// Checks an accepted answer against the request, the choice and the configuration.
fn check_response(
    version: HttpVersion,
    request: &Request,
    accept_headers: &[(String, String)],
    protocol: Option<&str>,
    config: &Config,
    deflate_config: Option<&DeflateConfig>,
    (response, conn): &(wscore::UpgradeResponse, Connection),
) {
    assert_eq!(conn.role(), Role::Server);
    assert_eq!(conn.protocol(), protocol);
    assert_eq!(conn.config().get_max_message_size(), config.get_max_message_size());
    let headers: Vec<(&str, &str)> = response.headers().collect();
    for (name, value) in &headers {
        assert!(!has_newline(name) && !has_newline(value), "CR or LF in {name:?}: {value:?}");
    }
    // The application's headers of a name, as they go out (CR and LF removed).
    let app_count =
        |n: &str| accept_headers.iter().filter(|(a, _)| a.replace(['\r', '\n'], "").eq_ignore_ascii_case(n)).count();
    let count = |n: &str| headers.iter().filter(|(a, _)| a.eq_ignore_ascii_case(n)).count();
    match version {
        HttpVersion::Http11 => {
            assert_eq!(response.status(), 101);
            let key = request.headers().get("Sec-WebSocket-Key").expect("accepted without a key").trim_ascii();
            let accept = AcceptKey::from_key(key);
            assert_eq!(
                &headers[..3],
                &[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept.as_str())]
            );
        }
        _ => {
            assert_eq!(response.status(), 200);
            for (name, _) in &headers {
                assert_eq!(*name, name.to_ascii_lowercase(), "upper case in an HTTP/2 field name");
                assert!(!CONNECTION_SPECIFIC.contains(name), "connection-specific {name} over HTTP/2");
            }
            for owned in ["sec-websocket-accept", "sec-websocket-key"] {
                assert_eq!(count(owned), app_count(owned), "{owned} over HTTP/2");
            }
        }
    }
    let protocols: Vec<&str> =
        headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol")).map(|(_, v)| *v).collect();
    match protocol {
        Some(p) => {
            assert!(request.protocols().contains(&p), "accepted a subprotocol that was not offered");
            assert_eq!(protocols.first().copied(), Some(p), "the answer names another subprotocol than the connection");
        }
        None => assert_eq!(protocols.len(), app_count("Sec-WebSocket-Protocol")),
    }
    let extensions: Vec<&str> =
        headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions")).map(|(_, v)| *v).collect();
    let ours = extensions.len() - app_count("Sec-WebSocket-Extensions");
    assert!(ours <= 1, "several extension answers");
    match (conn.deflate_params(), ours) {
        (None, 0) => {}
        (Some(params), 1) => {
            let config = deflate_config.expect("compression without a configuration");
            // The negotiation's answer comes after the application's headers.
            let answer = extensions.last().copied().unwrap_or_default();
            let list = wscore::parse_extensions(answer).expect("our extension answer does not parse");
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].name, "permessage-deflate");
            let ours = config_bits(config);
            assert!(params.server_max_window_bits >= 9 && params.server_max_window_bits <= ours.0.max(9), "{params:?}");
            // The client's window: 15 unless its offer let the server choose, then within ours.
            assert!(params.client_max_window_bits == 15 || params.client_max_window_bits <= ours.3, "{params:?}");
            assert!((8..=15).contains(&params.client_max_window_bits));
            if ours.1 {
                assert!(params.server_no_context_takeover);
            }
            if ours.2 {
                assert!(params.client_no_context_takeover);
            }
            assert!(
                request
                    .extensions()
                    .iter()
                    .any(|e| e.trim_start().to_ascii_lowercase().starts_with("permessage-deflate"))
            );
        }
        (params, n) => panic!("connection deflate {params:?} with {n} extension answers"),
    }
}

/// (server_max_window_bits, server_no_context_takeover, client_no_context_takeover,
/// client_max_window_bits) of a configuration, read back through the offer a client with it
/// would make.
fn config_bits(config: &DeflateConfig) -> (u8, bool, bool, u8) {
    let upgrade = ClientUpgrade::with_random(
        ClientRequest::new("h", "/"),
        HttpVersion::Http11,
        Config::default().deflate(Some(config.clone())),
        Box::new(SeededRandom::new(0)),
    );
    let offer = upgrade.header("Sec-WebSocket-Extensions").unwrap_or_default().to_string();
    let list = wscore::parse_extensions(&offer).expect("our offer does not parse");
    let params = &list[0].params;
    let get = |n: &str| params.iter().find(|(k, _)| k == n);
    let bits = get("server_max_window_bits").and_then(|(_, v)| v.as_deref()).map_or(15, |v| v.parse().unwrap());
    let client_bits = get("client_max_window_bits").and_then(|(_, v)| v.as_deref()).map_or(15, |v| v.parse().unwrap());
    (bits, get("server_no_context_takeover").is_some(), get("client_no_context_takeover").is_some(), client_bits)
}

/// The request, as bytes, if every part of it can be written as HTTP/1.1 as it is.
fn http11_bytes(request: &Request) -> Option<Vec<u8>> {
    let method = request.method();
    let target = request.target();
    if !is_token(method) || target.is_empty() || target.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in request.headers().iter() {
        let clean = value.iter().all(|&b| b == b'\t' || b == b' ' || !b.is_ascii_control())
            && value.first().is_none_or(|b| !b" \t".contains(b))
            && value.last().is_none_or(|b| !b" \t".contains(b));
        if !is_token(name) || !clean {
            return None;
        }
        out.extend_from_slice(format!("{name}: ").as_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

fn accept_for(plan: &Plan, request: &Request, accept_headers: &[(String, String)]) -> (Accept, Option<String>) {
    let offered = request.protocols();
    let protocol = match plan.protocol {
        0 => None,
        k if offered.is_empty() => Some(format!("never-offered-{k}")),
        k => Some(offered[usize::from(k - 1) % offered.len()].to_string()),
    };
    let mut accept = Accept::new();
    if let Some(p) = &protocol {
        accept = accept.protocol(p.clone());
    }
    for (name, value) in accept_headers {
        accept = accept.header(name.clone(), value.clone());
    }
    (accept, protocol)
}

/// Scenario one: an arbitrary request.
fn arbitrary_request(
    plan: &Plan,
    target: String,
    extra: Vec<(String, Vec<u8>)>,
    server: &ServerUpgrade,
    server_deflate: Option<&DeflateConfig>,
    accept_headers: &[(String, String)],
) {
    let version = version(plan.http2);
    let mut headers = Headers::new();
    for (i, (name, value)) in template(plan.http2).into_iter().enumerate() {
        if plan.drop & (1 << i) == 0 {
            headers.push(name, value);
        }
    }
    let target = if target.is_empty() && plan.drop & 0x80 == 0 { "/chat".to_string() } else { target };
    for (name, value) in extra {
        headers.push(name, value);
    }
    let method = match plan.method {
        0 if plan.http2 => "CONNECT",
        0 => "GET",
        b => METHODS[usize::from(b) % METHODS.len()],
    };
    let request = Request::new(method, target, headers);
    let verdict = server.validate(version, request.clone());
    wscore_fuzz::debug(|| format!("{version:?} {request:?}\n-> {verdict:?}"));

    if version == HttpVersion::Http11
        && let Some(bytes) = http11_bytes(&request)
    {
        let mut hs = ServerHandshake::new(server.config().clone()).origin_policy(origin_policy(plan.origin));
        let parsed = hs.receive(&bytes);
        match (&verdict, parsed) {
            (Ok(pending), Ok(Some(parsed))) => assert_eq!(pending.request(), parsed),
            (Err(a), Err(b)) => assert_eq!(*a, b, "ServerHandshake disagrees"),
            (a, b) => panic!("validate says {a:?}, ServerHandshake {b:?} on {:?}", String::from_utf8_lossy(&bytes)),
        }
    }

    let pending = match verdict {
        Ok(pending) => pending,
        Err(err) => return check_reject(&err, version),
    };
    assert_eq!((pending.request(), pending.version()), (&request, version));
    let (accept, protocol) = accept_for(plan, &request, accept_headers);
    // A subprotocol with CR or LF is refused even if offered: no header could name it.
    let offered = protocol.as_ref().is_none_or(|p| request.protocols().contains(&p.as_str()) && !has_newline(p));
    match pending.accept(accept) {
        Ok(accepted) => {
            assert!(offered, "accepted a subprotocol that was not offered");
            check_response(
                version,
                &request,
                accept_headers,
                protocol.as_deref(),
                server.config(),
                server_deflate,
                &accepted,
            );
        }
        Err(err) => {
            assert!(!offered, "accept failed: {err:?}");
            assert_eq!(err, HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"));
            check_reject(&err, version);
        }
    }
}

/// How the pair's answer is altered; `Some(true)`: `finish` must refuse it, `Some(false)`: it
/// must accept it, `None`: either may be right.
fn mutate(plan: &Plan, response: &mut Response, offered: &[&str], client_offers_deflate: bool) -> Option<bool> {
    let http2 = plan.http2;
    let answered_extension = response.headers.count("Sec-WebSocket-Extensions") > 0;
    let answered_protocol = response.headers.count("Sec-WebSocket-Protocol") > 0;
    let mut rebuild = |keep: &dyn Fn(&str) -> bool, add: &[(&str, &str)]| {
        let mut headers = Headers::new();
        for (n, v) in response.headers.iter() {
            if keep(n) {
                headers.push(n.to_string(), v.to_vec());
            }
        }
        for (n, v) in add {
            headers.push(*n, v.to_string());
        }
        response.headers = headers;
    };
    match plan.mutation % 12 {
        0 => Some(false),
        1 => {
            response.status = if http2 { 101 } else { 200 };
            Some(true)
        }
        2 => {
            response.status = [100, 204, 301, 400, 403, 426, 500][usize::from(plan.mutation >> 4) % 7];
            Some(!(http2 && response.status == 204))
        }
        3 => {
            rebuild(&|n| !n.eq_ignore_ascii_case("Sec-WebSocket-Accept"), &[]);
            Some(!http2)
        }
        4 => {
            rebuild(
                &|n| !n.eq_ignore_ascii_case("Sec-WebSocket-Accept"),
                &[("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")],
            );
            Some(!http2)
        }
        5 => {
            rebuild(&|n| !n.eq_ignore_ascii_case("Upgrade"), &[]);
            Some(!http2)
        }
        6 => {
            rebuild(&|n| !n.eq_ignore_ascii_case("Connection"), &[]);
            Some(!http2)
        }
        7 => {
            rebuild(&|_| true, &[("Sec-WebSocket-Protocol", "never-offered")]);
            Some(true)
        }
        8 => {
            rebuild(&|_| true, &[("Sec-WebSocket-Extensions", "x-unknown-extension")]);
            Some(true)
        }
        9 => {
            rebuild(&|_| true, &[("Sec-WebSocket-Extensions", "permessage-deflate")]);
            if answered_extension || !client_offers_deflate { Some(true) } else { None }
        }
        10 => {
            // A second protocol: several, or one never offered.
            let p = offered.first().copied().unwrap_or("chat");
            rebuild(&|_| true, &[("Sec-WebSocket-Protocol", p)]);
            if answered_protocol || offered.is_empty() { Some(true) } else { Some(false) }
        }
        _ => {
            // Over HTTP/2 a key or accept field means nothing and is ignored (RFC 8441 §5);
            // over HTTP/1.1 a second accept is refused.
            rebuild(&|_| true, &[("Sec-WebSocket-Accept", "garbage")]);
            Some(!http2)
        }
    }
}

/// Delivers everything `from` has written to `to` and returns `to`'s events.
fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
    let bytes = from.take_transmit();
    to.receive(&bytes).expect("a peer's own output failed the connection");
    std::iter::from_fn(|| to.poll_event()).collect()
}

/// Scenario two: a matching client.
fn pair(plan: &Plan, server: &ServerUpgrade, accept_headers: &[(String, String)], text: &str) {
    let version = version(plan.http2);
    let mut request = ClientRequest::new("example.com", "/chat?room=1");
    let mut offered = Vec::new();
    for (i, p) in PROTOCOLS.iter().enumerate() {
        if plan.client_protocols & (1 << i) != 0 {
            request = request.protocol(*p);
            offered.push(*p);
        }
    }
    if plan.client_protocols & 8 != 0 {
        request = request.header("Origin", "https://app.example");
    }
    let client_deflate = deflate(plan.client_deflate, plan.client_client_bits, plan.threshold);
    let client_config = Config::default().deflate(client_deflate.clone());
    let upgrade =
        ClientUpgrade::with_random(request.clone(), version, client_config.clone(), Box::new(SeededRandom::new(3)));
    assert_eq!(upgrade.version(), version);
    let mut headers = Headers::new();
    if plan.http2 {
        headers.push(":authority", upgrade.authority().to_string());
        headers.push(":protocol", upgrade.connect_protocol().expect("no :protocol over HTTP/2"));
        headers.push(":scheme", upgrade.scheme());
    } else {
        assert_eq!(upgrade.connect_protocol(), None);
    }
    for (name, value) in upgrade.headers() {
        assert!(!has_newline(name) && !has_newline(value));
        headers.push(name.to_string(), value.to_string());
    }
    let server_request = Request::new(upgrade.method(), upgrade.target(), headers);

    // The byte-level client sends the same request.
    let mut client_hs =
        (!plan.http2).then(|| ClientHandshake::with_random(request, client_config, Box::new(SeededRandom::new(3))));
    if let Some(hs) = &client_hs {
        let expected = http11_bytes(&server_request).expect("the client's request is not valid HTTP/1.1");
        assert_eq!(&hs.request_bytes()[..], &expected[..], "ClientHandshake and ClientUpgrade send different requests");
    }

    let pending = match server.validate(version, server_request.clone()) {
        Ok(pending) => pending,
        Err(err) => {
            // A real client's request is refused only by the origin policy.
            assert_eq!(err, HandshakeError::ForbiddenOrigin, "a client's own request was refused");
            return;
        }
    };
    let (accept, protocol) = accept_for(plan, &server_request, accept_headers);
    let Ok((answer, mut server_conn)) = pending.accept(accept) else {
        assert!(protocol.is_some_and(|p| !offered.contains(&p.as_str())));
        return;
    };
    if accept_headers.iter().any(|(n, _)| websocket_owned(n)) {
        // The application rewrote the negotiation's answer: no longer what a real server sends.
        return;
    }
    let mut headers = Headers::new();
    for (name, value) in answer.headers() {
        headers.push(name.to_string(), value.to_string());
    }
    let mut response =
        Response { status: answer.status(), reason: "Switching Protocols".into(), headers, body: Default::default() };
    let must_fail = mutate(plan, &mut response, &offered, client_deflate.is_some());
    let bytes_response = http11_response(&response);
    let finished = upgrade.finish(&response);
    wscore_fuzz::debug(|| format!("pair {response:?}\n-> {finished:?} (must fail: {must_fail:?})"));
    // An interim 1xx answer as bytes is skipped by the byte-level client: not comparable.
    let interim = (100..200).contains(&response.status) && response.status != 101;
    if let (Some(hs), Some(bytes), false) = (client_hs.as_mut(), bytes_response, interim) {
        let by_bytes = match hs.receive(&bytes) {
            // A rejection without Content-Length: its body runs to the end of the stream.
            Ok(None) => hs.receive_eof().map(|()| None),
            other => other,
        };
        match (&finished, &by_bytes) {
            (Ok(_), Ok(Some(_))) => {}
            (Err(a), Err(b)) => assert_eq!(a, b, "ClientHandshake disagrees with ClientUpgrade"),
            (a, b) => panic!("ClientUpgrade says {a:?}, ClientHandshake {b:?}"),
        }
    }
    let mut client_conn = match (finished, must_fail) {
        (Ok(conn), Some(false) | None) => conn,
        (Err(_), Some(true) | None) => return,
        (Ok(_), Some(true)) => panic!("the client accepted an answer no real server gives: {response:?}"),
        (Err(err), Some(false)) => panic!("the client refused a real server's answer ({err:?}): {response:?}"),
    };
    assert_eq!(client_conn.role(), Role::Client);
    if plan.mutation.is_multiple_of(12) {
        assert_eq!(client_conn.protocol(), server_conn.protocol());
        assert_eq!(client_conn.deflate_params().is_some(), server_conn.deflate_params().is_some());
    }
    if client_conn.deflate_params().is_some() != server_conn.deflate_params().is_some() {
        return; // an altered answer the client could not tell from a real one
    }
    // Both ways, twice (context takeover), long enough to be compressed.
    let text = text.repeat(usize::from(plan.repeat % 16) + 1);
    for round in 0..2 {
        client_conn.send_text(text.clone()).expect("client send");
        let events = deliver(&mut client_conn, &mut server_conn);
        assert_eq!(events, [Event::Message(Message::Text(text.clone().into()))], "round {round}: server got");
        server_conn.send_binary(text.clone().into_bytes()).expect("server send");
        let events = deliver(&mut server_conn, &mut client_conn);
        assert_eq!(
            events,
            [Event::Message(Message::Binary(text.clone().into_bytes().into()))],
            "round {round}: client got"
        );
    }
}

/// The response as HTTP/1.1 bytes, if its names are tokens.
fn http11_response(response: &Response) -> Option<Vec<u8>> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason).into_bytes();
    for (name, value) in response.headers.iter() {
        let clean = value.iter().all(|&b| b == b'\t' || b == b' ' || !b.is_ascii_control())
            && value.first().is_none_or(|b| !b" \t".contains(b))
            && value.last().is_none_or(|b| !b" \t".contains(b));
        if !is_token(name) || !clean {
            return None;
        }
        out.extend_from_slice(format!("{name}: ").as_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let target = text_field(&mut u);
    let extra: Vec<(String, Vec<u8>)> = (0..plan.extra % 8).map(|_| (name(&mut u), field(&mut u).to_vec())).collect();
    let accept_headers: Vec<(String, String)> =
        (0..plan.accept_headers % 4).map(|_| (name(&mut u), text_field(&mut u))).collect();
    let text = text_field(&mut u);
    let text = if text.is_empty() { "Hello, WebSocket".to_string() } else { text };

    let server_deflate = deflate(plan.server_deflate, plan.server_client_bits, plan.threshold);
    let server_config = Config::default().deflate(server_deflate.clone());
    let server = ServerUpgrade::new(server_config).origin_policy(origin_policy(plan.origin));
    arbitrary_request(&plan, target, extra, &server, server_deflate.as_ref(), &accept_headers);
    pair(&plan, &server, &accept_headers, &text);
});
