//! permessage-deflate (RFC 7692) negotiation through the public API: what a client offers and a
//! server answers in the real handshakes for both roles, every parameter, declined and invalid
//! offers, responses a client cannot honour, and `DeflateConfig::negotiate` for upgrades done
//! elsewhere. Every test asserts exact outcomes; the agreed parameters are checked on the wire
//! by exchanging a message each way. (Compressed data itself: `deflate_data.rs`.)

#![cfg(feature = "deflate")]

mod harness;

use harness::deflate::{DEFAULT_PARAMS, extensions_in, params, upgrade, wire_messages, with_deflate};
use harness::{CLIENT_SEED, Pair, Pipe, Rng, Split, binary, handshake_pair, text, text_of_len};
use wscore::{
    Accept, AcceptKey, ClientHandshake, ClientRequest, Config, Connection, DeflateConfig, DeflateParams,
    HandshakeError, OpCode, SeededRandom, ServerHandshake,
};

// ----- negotiation through the handshakes -----

/// A server's answer to a request carrying these `Sec-WebSocket-Extensions` lines.
fn server_answer(config: Config, lines: &[&str]) -> (Option<String>, Option<DeflateParams>) {
    let mut request = String::from(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for line in lines {
        request.push_str(&format!("Sec-WebSocket-Extensions: {line}\r\n"));
    }
    request.push_str("\r\n");
    let mut handshake = ServerHandshake::new(config);
    assert!(handshake.receive(request.as_bytes()).unwrap().is_some());
    let mut conn = handshake.accept(Accept::new()).unwrap();
    let response = conn.take_transmit();
    assert!(response.starts_with(b"HTTP/1.1 101 "));
    (extensions_in(&response), conn.deflate_params())
}

/// What a client makes of a hand-built 101 response carrying these extension lines.
fn client_answer(config: Config, lines: &[&str]) -> Result<Option<DeflateParams>, HandshakeError> {
    let request = ClientRequest::from_url("ws://example.com/chat").unwrap();
    let mut client = ClientHandshake::with_random(request, config, Box::new(SeededRandom::new(CLIENT_SEED)));
    let request = String::from_utf8(client.request_bytes().to_vec()).unwrap();
    let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        AcceptKey::from_key(key.as_bytes()).as_str()
    );
    for line in lines {
        response.push_str(&format!("Sec-WebSocket-Extensions: {line}\r\n"));
    }
    response.push_str("\r\n");
    client.receive(response.as_bytes()).map(|conn| conn.expect("complete response").deflate_params())
}

/// Exchanges a message each way over a handshaken pair and checks it arrived, compressed on
/// the wire within the agreed window sizes: the message is 3000 random bytes twice, so the
/// repeat shrinks it only for a sender whose window reaches 3000 bytes back (12 bits or more).
fn exchange(client_config: Config, server_config: Config, agreed: DeflateParams) {
    let mut pair = handshake_pair(client_config, server_config, Split::Random(3));
    let message = Rng::new(5).bytes(3000).repeat(2);
    pair.client().send_binary(message.clone()).unwrap();
    pair.server().send_binary(message.clone()).unwrap();
    pair.run();
    assert_eq!(pair.server.take_events(), [binary(&message)]);
    assert_eq!(pair.client.take_events(), [binary(&message)]);
    for (side, bits) in [(&pair.client, agreed.client_max_window_bits), (&pair.server, agreed.server_max_window_bits)] {
        let wire = wire_messages(side);
        assert_eq!((wire.len(), wire[0].1), (1, true), "one compressed message");
        let size = wire[0].2.len();
        assert_eq!(size < 4500, bits >= 12, "{bits} bits: {size} bytes");
    }
}

#[test]
fn default_offer_is_accepted() {
    let up = upgrade(Config::default(), Config::default());
    assert_eq!(up.offer.as_deref(), Some("permessage-deflate; client_max_window_bits"));
    assert_eq!(up.answer.as_deref(), Some("permessage-deflate"));
    assert_eq!(up.client.unwrap().deflate_params(), Some(DEFAULT_PARAMS));
    assert_eq!(up.server.deflate_params(), Some(DEFAULT_PARAMS));
    assert_eq!(Connection::server(Config::default()).deflate_params(), None, "only negotiation enables it");
}

#[test]
fn every_parameter_is_negotiated_in_both_roles() {
    let d = DeflateConfig::default;
    let check = |client: DeflateConfig, server: DeflateConfig, offer: &str, answer: &str, agreed: DeflateParams| {
        let up = upgrade(with_deflate(client.clone()), with_deflate(server.clone()));
        let context = format!("{client:?} / {server:?}");
        assert_eq!(up.offer.as_deref(), Some(offer), "{context}");
        assert_eq!(up.answer.as_deref(), Some(answer), "{context}");
        assert_eq!(up.client.unwrap().deflate_params(), Some(agreed), "{context}");
        assert_eq!(up.server.deflate_params(), Some(agreed), "{context}");
        exchange(with_deflate(client), with_deflate(server), agreed);
    };
    let base = "permessage-deflate; client_max_window_bits";
    // The no_context_takeover parameters, asked for by the client or imposed by the server.
    let snct = "permessage-deflate; server_no_context_takeover";
    let cnct = "permessage-deflate; client_no_context_takeover";
    check(
        d().server_no_context_takeover(true),
        d(),
        "permessage-deflate; server_no_context_takeover; client_max_window_bits",
        snct,
        params(true, false, 15, 15),
    );
    check(
        d().client_no_context_takeover(true),
        d(),
        "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        cnct,
        params(false, true, 15, 15),
    );
    check(
        d().server_no_context_takeover(true).client_no_context_takeover(true),
        d(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        params(true, true, 15, 15),
    );
    check(d(), d().server_no_context_takeover(true), base, snct, params(true, false, 15, 15));
    check(d(), d().client_no_context_takeover(true), base, cnct, params(false, true, 15, 15));
    // server_max_window_bits 9..=15, requested by the client or chosen by the server.
    for bits in 9..=15u8 {
        let (offer, answer) = if bits < 15 {
            (
                format!("permessage-deflate; server_max_window_bits={bits}; client_max_window_bits"),
                format!("permessage-deflate; server_max_window_bits={bits}"),
            )
        } else {
            (base.to_string(), "permessage-deflate".to_string())
        };
        check(d().server_max_window_bits(bits), d(), &offer, &answer, params(false, false, bits, 15));
        check(d(), d().server_max_window_bits(bits), base, &answer, params(false, false, bits, 15));
    }
    // Both limit it: the smaller wins. A server told 8 uses 9 (zlib's smallest).
    let sb = |bits| format!("permessage-deflate; server_max_window_bits={bits}");
    let offer12 = "permessage-deflate; server_max_window_bits=12; client_max_window_bits";
    check(
        d().server_max_window_bits(12),
        d().server_max_window_bits(10),
        offer12,
        &sb(10),
        params(false, false, 10, 15),
    );
    let offer10 = "permessage-deflate; server_max_window_bits=10; client_max_window_bits";
    check(
        d().server_max_window_bits(10),
        d().server_max_window_bits(12),
        offer10,
        &sb(10),
        params(false, false, 10, 15),
    );
    check(d(), d().server_max_window_bits(8), base, &sb(9), params(false, false, 9, 15));
    // client_max_window_bits 8..=15 with a value, offered by the client; and without a value,
    // answered with the server's choice.
    for bits in 8..=15u8 {
        let (offer, answer) = if bits < 15 {
            (
                format!("permessage-deflate; client_max_window_bits={bits}"),
                format!("permessage-deflate; client_max_window_bits={bits}"),
            )
        } else {
            (base.to_string(), "permessage-deflate".to_string())
        };
        check(d().client_max_window_bits(bits), d(), &offer, &answer, params(false, false, 15, bits));
        check(d(), d().client_max_window_bits(bits), base, &answer, params(false, false, 15, bits));
    }
    let cb10 = "permessage-deflate; client_max_window_bits=10";
    let offer12 = "permessage-deflate; client_max_window_bits=12";
    check(d().client_max_window_bits(12), d().client_max_window_bits(10), offer12, cb10, params(false, false, 15, 10));
    check(d().client_max_window_bits(10), d().client_max_window_bits(12), cb10, cb10, params(false, false, 15, 10));
}

#[test]
fn server_max_window_bits_8_is_declined_and_a_later_offer_taken() {
    // Through the real handshake: the only offer asks for 8 bits, so no compression at all.
    let up = upgrade(with_deflate(DeflateConfig::default().server_max_window_bits(8)), Config::default());
    assert_eq!(up.offer.as_deref(), Some("permessage-deflate; server_max_window_bits=8; client_max_window_bits"));
    assert_eq!(up.answer, None);
    assert_eq!(up.client.unwrap().deflate_params(), None);
    assert_eq!(up.server.deflate_params(), None);
    // A later offer in the same header, or in a later header line, is taken.
    let cases: [(&[&str], &str, DeflateParams); 3] = [
        (
            &["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits=10"],
            "permessage-deflate; client_max_window_bits=10",
            params(false, false, 15, 10),
        ),
        (
            &["permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_no_context_takeover"],
            "permessage-deflate; server_no_context_takeover",
            params(true, false, 15, 15),
        ),
        (
            &["x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate; \
               server_max_window_bits=9"],
            "permessage-deflate; server_max_window_bits=9",
            params(false, false, 9, 15),
        ),
    ];
    for (lines, answer, agreed) in cases {
        assert_eq!(server_answer(Config::default(), lines), (Some(answer.to_string()), Some(agreed)), "{lines:?}");
    }
}

#[test]
fn invalid_offers_are_declined() {
    let declined = [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=ten",
        "permessage-deflate; server_max_window_bits=\"16\"",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=09",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"true\"",
        "permessage-deflate; unknown",
        "permessage-deflate; x=1",
        "permessage-deflate;",
        "permessage-deflate; server_max_window_bits=10 10",
        "x-unknown-extension",
    ];
    for value in declined {
        assert_eq!(server_answer(Config::default(), &[value]), (None, None), "{value}");
    }
    // Quoted values are unescaped; a malformed header line does not hide a later one.
    assert_eq!(
        server_answer(Config::default(), &["permessage-deflate; server_max_window_bits=\"1\\0\""]),
        (Some("permessage-deflate; server_max_window_bits=10".into()), Some(params(false, false, 10, 15)))
    );
    assert_eq!(
        server_answer(Config::default(), &["permessage-deflate; ;", "permessage-deflate"]),
        (Some("permessage-deflate".into()), Some(DEFAULT_PARAMS))
    );
    assert_eq!(server_answer(Config::default(), &[]), (None, None));
}

/// A client configuration, the response's extension lines and what the client makes of them.
type ClientCase = (Config, &'static [&'static str], Result<Option<DeflateParams>, HandshakeError>);

#[test]
fn client_rejects_responses_it_cannot_honour() {
    let invalid = |reason: &'static str| Err(HandshakeError::InvalidResponse(reason));
    let default = Config::default;
    let cases: Vec<ClientCase> = vec![
        (default(), &[], Ok(None)),
        (default(), &["permessage-deflate"], Ok(Some(DEFAULT_PARAMS))),
        (default(), &["permessage-deflate; server_max_window_bits=8"], Ok(Some(params(false, false, 8, 15)))),
        (default(), &["permessage-deflate; client_max_window_bits=8"], Ok(Some(params(false, false, 15, 8)))),
        (default(), &["x-foo"], invalid("server selected an extension that was not offered")),
        (default(), &["permessage-deflate; foo"], invalid("unknown permessage-deflate parameter")),
        (
            default(),
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            invalid("duplicate permessage-deflate parameter"),
        ),
        (
            default(),
            &["permessage-deflate; client_no_context_takeover=1"],
            invalid("no_context_takeover takes no value"),
        ),
        (default(), &["permessage-deflate; server_max_window_bits=16"], invalid("window bits must be 8 to 15")),
        (default(), &["permessage-deflate; server_max_window_bits"], invalid("window bits parameter without a value")),
        (
            default(),
            &["permessage-deflate; client_max_window_bits"],
            invalid("client_max_window_bits without a value in a response"),
        ),
        (default(), &["permessage-deflate, permessage-deflate"], invalid("server selected several extensions")),
        (default(), &["permessage-deflate", "permessage-deflate"], invalid("server selected several extensions")),
        (default(), &["permessage-deflate;"], invalid("malformed Sec-WebSocket-Extensions")),
    ];
    // Window bits larger than offered, and ignored requests.
    let server10 = with_deflate(DeflateConfig::default().server_max_window_bits(10));
    let client12 = with_deflate(DeflateConfig::default().client_max_window_bits(12));
    let snct = with_deflate(DeflateConfig::default().server_no_context_takeover(true));
    let strict: Vec<ClientCase> = vec![
        (
            server10.clone(),
            &["permessage-deflate; server_max_window_bits=11"],
            invalid("server_max_window_bits larger than requested"),
        ),
        (server10.clone(), &["permessage-deflate"], invalid("server ignored the requested server_max_window_bits")),
        (server10.clone(), &["permessage-deflate; server_max_window_bits=10"], Ok(Some(params(false, false, 10, 15)))),
        (server10, &["permessage-deflate; server_max_window_bits=9"], Ok(Some(params(false, false, 9, 15)))),
        (
            client12.clone(),
            &["permessage-deflate; client_max_window_bits=13"],
            invalid("client_max_window_bits larger than offered"),
        ),
        (client12.clone(), &["permessage-deflate; client_max_window_bits=12"], Ok(Some(params(false, false, 15, 12)))),
        // No answer to client_max_window_bits: the client keeps to what it offered.
        (client12, &["permessage-deflate"], Ok(Some(params(false, false, 15, 12)))),
        (snct.clone(), &["permessage-deflate"], invalid("server ignored the requested server_no_context_takeover")),
        (snct, &["permessage-deflate; server_no_context_takeover"], Ok(Some(params(true, false, 15, 15)))),
    ];
    for (config, lines, expected) in cases.into_iter().chain(strict) {
        assert_eq!(client_answer(config, lines), expected, "{lines:?}");
    }
}

#[test]
fn server_with_deflate_disabled_ignores_the_offer() {
    let up = upgrade(Config::default(), Config::default().deflate(None));
    assert_eq!(up.offer.as_deref(), Some("permessage-deflate; client_max_window_bits"));
    assert_eq!(up.answer, None);
    assert_eq!(up.server.deflate_params(), None);
    assert_eq!(up.client.as_ref().unwrap().deflate_params(), None);
    // Messages flow uncompressed.
    let mut pair = Pair::from_connections(up.client.unwrap(), up.server, Pipe::new(Split::Whole));
    let message = vec![0u8; 5000];
    pair.client().send_binary(message.clone()).unwrap();
    pair.server().send_binary(message.clone()).unwrap();
    pair.run();
    assert_eq!(pair.server.take_events(), [binary(&message)]);
    assert_eq!(pair.client.take_events(), [binary(&message)]);
    assert_eq!(wire_messages(&pair.client), [(OpCode::Binary, false, message.clone())]);
    assert_eq!(wire_messages(&pair.server), [(OpCode::Binary, false, message)]);
}

#[test]
fn client_with_deflate_disabled_rejects_an_extension() {
    let up = upgrade(Config::default().deflate(None), Config::default());
    assert_eq!((up.offer, up.answer), (None, None));
    assert_eq!(up.client.unwrap().deflate_params(), None);
    assert_eq!(client_answer(Config::default().deflate(None), &[]), Ok(None));
    assert_eq!(
        client_answer(Config::default().deflate(None), &["permessage-deflate"]),
        Err(HandshakeError::InvalidResponse("server selected an extension that was not offered"))
    );
}

#[test]
fn negotiate_for_external_upgrades() {
    let config = DeflateConfig::default();
    assert_eq!(
        config.negotiate(&["permessage-deflate; client_max_window_bits"]),
        Some((DEFAULT_PARAMS, "permessage-deflate".to_string()))
    );
    assert_eq!(
        config.negotiate(&[
            "x-foo",
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; \
                                     server_no_context_takeover"
        ]),
        Some((params(true, false, 15, 15), "permessage-deflate; server_no_context_takeover".to_string()))
    );
    assert_eq!(
        config.negotiate(&["permessage-deflate;;", "permessage-deflate; client_max_window_bits=9"]),
        Some((params(false, false, 15, 9), "permessage-deflate; client_max_window_bits=9".to_string()))
    );
    assert_eq!(
        DeflateConfig::default()
            .server_max_window_bits(11)
            .client_no_context_takeover(true)
            .negotiate(&["permessage-deflate"]),
        Some((
            params(false, true, 11, 15),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=11".to_string()
        ))
    );
    assert_eq!(config.negotiate(&[]), None);
    assert_eq!(config.negotiate(&["permessage-deflate; foo", "x-foo"]), None);
    // The agreed parameters drive connections created directly.
    let (agreed, _) = config.negotiate(&["permessage-deflate; client_max_window_bits=9"]).unwrap();
    for split in Split::all() {
        let client = Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(CLIENT_SEED)));
        // Without `Config::deflate`, the default level and threshold apply.
        let server = Connection::server(Config::default().deflate(None));
        let mut pair =
            Pair::from_connections(client.with_deflate(agreed), server.with_deflate(agreed), Pipe::new(split));
        assert_eq!(pair.client().deflate_params(), Some(agreed));
        let (small, large) = ("x".repeat(63), text_of_len(70_000, 9));
        for m in [&small, &large] {
            pair.client().send_text(m.clone()).unwrap();
            pair.server().send_text(m.clone()).unwrap();
        }
        pair.run();
        assert_eq!(pair.server.take_events(), [text(&small), text(&large)], "{split:?}");
        assert_eq!(pair.client.take_events(), [text(&small), text(&large)], "{split:?}");
        for side in [&pair.client, &pair.server] {
            let rsv1: Vec<bool> = wire_messages(side).iter().map(|m| m.1).collect();
            assert_eq!(rsv1, [false, true], "threshold 64 by default");
        }
    }
}
