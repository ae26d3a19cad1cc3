//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1, RFC 7692 §5-§7): `parse_extensions`,
//! `DeflateConfig::negotiate`, and a whole client/server negotiation with the fuzzed header in
//! the request.
//!
//! Input: a 15-byte plan (see `Plan`; all zero = default configs on both sides, no pair run),
//! then the header value verbatim (invalid UTF-8 replaced); `\n` separates several header
//! values for `negotiate`.
//!
//! Invariants: no panic; a parsed list printed with `Display` and parsed again is the same list
//! (per extension and joined with ", "), and negotiates the same; an error points inside the
//! input; a negotiated response is itself a valid, single permessage-deflate extension and its
//! parameters respect the server's configuration; in a real handshake, whatever offer the
//! server picks, a response the client accepts is one both ends can compress and inflate with
//! (checked by exchanging messages both ways).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wscore::{
    Accept, ClientHandshake, ClientRequest, Config, DeflateConfig, DeflateParams, Event, Message, SeededRandom,
    ServerHandshake, parse_extensions,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Knobs {
    off: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// 15 - (b % 8).
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    level: u8,
    /// 64 + b.
    threshold: u8,
}

impl Knobs {
    fn config(self) -> Option<DeflateConfig> {
        (!self.off).then(|| {
            DeflateConfig::default()
                .server_no_context_takeover(self.server_no_context_takeover)
                .client_no_context_takeover(self.client_no_context_takeover)
                .server_max_window_bits(15 - self.server_max_window_bits % 8)
                .client_max_window_bits(15 - self.client_max_window_bits % 8)
                .level(u32::from(self.level % 10))
                .threshold(64 + usize::from(self.threshold))
        })
    }
}

#[derive(Arbitrary, Debug)]
struct Plan {
    server: Knobs,
    client: Knobs,
    /// Bit 0: run a client/server handshake; bit 1: put the fuzzed header value before the
    /// client's own offer (else after it).
    pair: u8,
}

fn check_parse(value: &str) {
    match parse_extensions(value) {
        Ok(list) => {
            for ext in &list {
                assert!(!ext.name.is_empty());
                assert_eq!(parse_extensions(&ext.to_string()), Ok(vec![ext.clone()]), "Display roundtrip of {ext:?}");
            }
            let joined = list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            assert_eq!(parse_extensions(&joined), Ok(list), "Display roundtrip of the list");
        }
        Err(err) => assert!(err.at <= value.len(), "error position {} past the end", err.at),
    }
}

fn check_negotiate(knobs: Knobs, values: &[&str]) {
    let config = knobs.config().unwrap_or_default();
    let result = config.negotiate(values);
    // Printing the parsed offers and negotiating again must agree.
    let printed: Vec<String> = values
        .iter()
        .filter_map(|v| parse_extensions(v).ok())
        .map(|list| list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        .collect();
    let printed: Vec<&str> = printed.iter().map(String::as_str).collect();
    assert_eq!(config.negotiate(&printed), result, "negotiation changed after a Display roundtrip");
    let Some((params, response)) = result else { return };
    let list = parse_extensions(&response).expect("the negotiated response does not parse");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "permessage-deflate");
    let (server_bits, client_bits) = if knobs.off {
        (15, 15)
    } else {
        (15 - knobs.server_max_window_bits % 8, 15 - knobs.client_max_window_bits % 8)
    };
    assert!((9..=server_bits.max(9)).contains(&params.server_max_window_bits), "{params:?}");
    assert!((8..=15).contains(&params.client_max_window_bits), "{params:?}");
    assert!(params.client_max_window_bits <= client_bits || params.client_max_window_bits == 15, "{params:?}");
    if !knobs.off {
        assert!(params.server_no_context_takeover || !knobs.server_no_context_takeover);
        assert!(params.client_no_context_takeover || !knobs.client_no_context_takeover);
    }
}

/// Runs a whole handshake with `fuzzed` as an extra `Sec-WebSocket-Extensions` line in the
/// request, then exchanges messages both ways with whatever was agreed.
fn check_pair(plan: &Plan, fuzzed: &str) {
    let client_config = Config::default().deflate(plan.client.config());
    let server_config = Config::default().deflate(plan.server.config());
    let mut client = ClientHandshake::with_random(
        ClientRequest::new("example.com", "/"),
        client_config.clone(),
        Box::new(SeededRandom::new(1)),
    );
    let mut request = client.request_bytes().to_vec();
    let inject = !fuzzed.is_empty() && !fuzzed.contains(['\r', '\n']);
    if inject {
        let line = format!("Sec-WebSocket-Extensions: {fuzzed}\r\n");
        let at = if plan.pair & 2 != 0 {
            // Just after the request line: before the client's own offer.
            request.iter().position(|&b| b == b'\n').unwrap() + 1
        } else {
            request.len() - 2
        };
        request.splice(at..at, line.bytes());
    }
    let mut server = ServerHandshake::new(server_config);
    let Ok(Some(_)) = server.receive(&request) else {
        // A fuzzed line httparse rejects (e.g. a control character) fails the request.
        assert!(inject, "the client's own request was refused");
        return;
    };
    let mut server = server.accept(Accept::new()).expect("accept");
    let response = server.take_transmit();
    let mut client = match client.receive(&response) {
        Ok(Some(conn)) => conn,
        Ok(None) => panic!("the 101 response is incomplete"),
        Err(err) => {
            // The server may pick a fuzzed offer the client did not make.
            assert!(inject, "the client refused the answer to its own offer: {err:?}");
            return;
        }
    };
    let (c, s) = (client.deflate_params(), server.deflate_params());
    wscore_fuzz::debug(|| format!("negotiated: client {c:?}, server {s:?}"));
    match (c, s) {
        (Some(c), Some(s)) => check_compatible(c, s),
        (None, None) => {}
        _ => panic!("only one end compresses: client {c:?}, server {s:?}"),
    }
    if !inject {
        // Answering the client's own offer: both ends agree on every parameter, and
        // compression is on whenever both want it and the client did not demand an 8-bit
        // server window (which zlib cannot produce).
        assert_eq!(c, s);
        let wanted = !plan.client.off && !plan.server.off;
        let declined = plan.client.server_max_window_bits % 8 == 7;
        assert_eq!(c.is_some(), wanted && !declined, "negotiation result {c:?}");
    }
    let text = "permessage-deflate ".repeat(30);
    let binary: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for _ in 0..2 {
        client.send_text(text.clone()).unwrap();
        client.send_binary(binary.clone()).unwrap();
        server.receive(&client.take_transmit()).expect("the server cannot read the client's messages");
        assert_eq!(server.poll_event(), Some(Event::Message(Message::Text(text.clone().into()))));
        assert_eq!(server.poll_event(), Some(Event::Message(Message::Binary(binary.clone().into()))));
        server.send_text(text.clone()).unwrap();
        server.send_binary(binary.clone()).unwrap();
        client.receive(&server.take_transmit()).expect("the client cannot read the server's messages");
        assert_eq!(client.poll_event(), Some(Event::Message(Message::Text(text.clone().into()))));
        assert_eq!(client.poll_event(), Some(Event::Message(Message::Binary(binary.clone().into()))));
    }
}

/// The windows and context resets each end compresses with are ones the other end inflates.
fn check_compatible(client: DeflateParams, server: DeflateParams) {
    assert!(client.client_max_window_bits <= server.client_max_window_bits, "client {client:?} server {server:?}");
    assert!(server.server_max_window_bits <= client.server_max_window_bits, "client {client:?} server {server:?}");
    assert!(!server.client_no_context_takeover || client.client_no_context_takeover, "{client:?} {server:?}");
    assert!(!client.server_no_context_takeover || server.server_no_context_takeover, "{client:?} {server:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let text = String::from_utf8_lossy(u.take_rest()).into_owned();
    check_parse(&text);
    let values: Vec<&str> = text.split('\n').collect();
    for value in &values {
        check_parse(value);
    }
    check_negotiate(plan.server, &values);
    if plan.pair & 1 != 0 {
        check_pair(&plan, values[0]);
    }
});
