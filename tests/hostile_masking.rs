//! Hostile input, family 5: masking direction, reserved bits and reserved opcodes (RFC 6455
//! §5.2, §5.3, §10.3).
//!
//! Masking is what keeps a script in a browser from writing bytes of its choice onto a
//! connection that a transparent proxy may read as HTTP (the cache-poisoning attack of Huang et
//! al., "Talking to Yourself for Fun and Profit", 2011, which RFC 6455 §10.3 answers); a server
//! that accepts unmasked client frames re-opens it. Reserved bits and opcodes have no CVE of
//! their own, but accepting them is how parser differentials start: an extension bit ignored by
//! one hop and honoured by the next (the same class as HTTP request smuggling, e.g.
//! CVE-2019-18277) — so every one of them fails the connection with 1002.
//!
//! `tests/peer_violations.rs` checks single examples (unmasked text and ping to a server,
//! masked text and pong to a client, four RSV patterns, the ten reserved opcodes after a valid
//! message). Here **every first header byte** (all 256: FIN, three RSV bits, sixteen opcodes) is
//! fed to both roles, correctly masked and with the wrong masking, and the exact outcome is
//! compared with a table written from the RFC; then masking and RSV violations in the middle of
//! a fragmented message, and what negotiating permessage-deflate does and does not allow.

mod harness;

use harness::{
    assert_client_fails, assert_server_fails, binary, close_code_in, drain_events, feed_all, masked, unmasked,
};
use wscore::{Config, Connection, Error, Event, Message, ProtocolError, Role, SeededRandom, State};

/// What a fresh connection must do with a frame whose first byte is `b0` and whose payload is
/// empty, correctly masked for `role` unless `wrong_mask`. The checks are listed in the order
/// the first header bytes reveal them: opcode, then control-frame FIN, then RSV bits, then the
/// mask bit, then message sequencing.
fn expected(b0: u8, role: Role, wrong_mask: bool) -> Result<Vec<Event>, ProtocolError> {
    let fin = b0 & 0x80 != 0;
    let rsv = b0 & 0x70;
    let opcode = b0 & 0x0F;
    let control = opcode >= 0x8;
    if matches!(opcode, 0x3..=0x7 | 0xB..=0xF) {
        return Err(ProtocolError::ReservedOpcode(opcode));
    }
    if control && !fin {
        return Err(ProtocolError::FragmentedControlFrame);
    }
    if rsv != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    if wrong_mask {
        return Err(match role {
            Role::Server => ProtocolError::UnmaskedFrame,
            Role::Client => ProtocolError::MaskedFrame,
        });
    }
    Ok(match (opcode, fin) {
        (0x0, _) => return Err(ProtocolError::UnexpectedContinuation),
        (0x1, true) => vec![Event::Message(Message::Text("".into()))],
        (0x2, true) => vec![binary(b"")],
        (0x1 | 0x2, false) => vec![],
        (0x8, _) => vec![Event::Close(None)],
        (0x9, _) => vec![Event::Ping(Default::default())],
        _ => vec![Event::Pong(Default::default())],
    })
}

fn fresh(role: Role) -> Connection {
    match role {
        Role::Server => Connection::server(Config::default()),
        Role::Client => Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(4))),
    }
}

#[test]
fn every_first_byte_for_both_roles_with_right_and_wrong_masking() {
    let mut outcomes = [0usize; 2];
    for b0 in 0..=255u8 {
        for role in [Role::Server, Role::Client] {
            for wrong_mask in [false, true] {
                let masked_frame = (role == Role::Server) != wrong_mask;
                let frame = if masked_frame { masked(b0, b"") } else { unmasked(b0, b"") };
                let mut conn = fresh(role);
                let result = conn.receive(&frame);
                let events = drain_events(&mut conn);
                let out = conn.take_transmit();
                match expected(b0, role, wrong_mask) {
                    Ok(expected_events) => {
                        outcomes[0] += 1;
                        assert_eq!(result, Ok(()), "{b0:#04x} {role:?} wrong mask {wrong_mask}");
                        assert_eq!(events, expected_events, "{b0:#04x} {role:?}");
                        assert_ne!(conn.state(), State::Failed);
                    }
                    Err(err) => {
                        outcomes[1] += 1;
                        let code = err.close_code().0;
                        assert_eq!(code, 1002);
                        assert_eq!(result, Err(Error::Protocol(err)), "{b0:#04x} {role:?} wrong mask {wrong_mask}");
                        assert!(events.is_empty());
                        assert_eq!(close_code_in(&out), Some(Some(code)), "{b0:#04x} {role:?}");
                        assert_eq!(conn.state(), State::Failed);
                    }
                }
            }
        }
    }
    // Sanity of the table itself: 2 roles × (FIN × {text, binary} + close, ping, pong with FIN)
    // are the only acceptable first bytes, and only when masked the right way.
    assert_eq!(outcomes[0], 2 * (2 * 2 + 3));
    assert_eq!(outcomes.iter().sum::<usize>(), 256 * 2 * 2);
}

#[test]
fn masking_violations_in_the_middle_of_a_message() {
    // A correctly masked first fragment, then the wrong masking on a continuation, a ping, a
    // close: the violation is caught on any frame, not only on a message's first.
    for b0 in [0x80, 0x00, 0x89, 0x8A, 0x88] {
        let mut bytes = masked(0x01, b"first");
        bytes.extend(unmasked(b0, b""));
        assert_server_fails(&bytes, ProtocolError::UnmaskedFrame, 1002, &[]);
        let mut bytes = unmasked(0x02, b"first");
        bytes.extend(masked(b0, b""));
        assert_client_fails(&bytes, ProtocolError::MaskedFrame, 1002, &[]);
    }
    // After several good messages the rule still holds, and the good ones were delivered.
    let mut bytes = masked(0x82, b"one");
    bytes.extend(masked(0x82, b"two"));
    bytes.extend(unmasked(0x82, b"three"));
    assert_server_fails(&bytes, ProtocolError::UnmaskedFrame, 1002, &[binary(b"one"), binary(b"two")]);
    // An all-zero masking key is still a masked frame (the bit is what counts).
    let frame = harness::raw_frame(0x82, Some([0; 4]), b"zero key");
    let (result, events, _, _) = feed_all(harness::server(), &frame, harness::Split::OneByte);
    assert_eq!((result, events), (Ok(()), vec![binary(b"zero key")]));
    // The verdict needs only the second header byte.
    let mut conn = harness::server();
    assert_eq!(conn.receive(&[0x82, 0x05]), Err(Error::Protocol(ProtocolError::UnmaskedFrame)));
}

#[test]
fn reserved_opcodes_and_bits_mid_message_and_from_the_first_byte() {
    // A reserved opcode in the middle of a fragmented message, in both roles.
    for op in [0x3, 0x7, 0xB, 0xF] {
        let mut bytes = masked(0x01, b"par");
        bytes.extend(masked(0x80 | op, b"t"));
        assert_server_fails(&bytes, ProtocolError::ReservedOpcode(op), 1002, &[]);
        let mut bytes = unmasked(0x01, b"par");
        bytes.extend(unmasked(op, b"t"));
        assert_client_fails(&bytes, ProtocolError::ReservedOpcode(op), 1002, &[]);
        // The first byte alone is enough, for a server too, even under no limits.
        let mut conn = Connection::server(Config::unlimited());
        assert_eq!(conn.receive(&[op]), Err(Error::Protocol(ProtocolError::ReservedOpcode(op))));
    }
    // RSV bits on a continuation, on a control frame inside a message.
    for rsv in [0x40, 0x20, 0x10] {
        let mut bytes = masked(0x01, b"par");
        bytes.extend(masked(0x80 | rsv, b"t"));
        assert_server_fails(&bytes, ProtocolError::ReservedBits, 1002, &[]);
        let mut bytes = masked(0x01, b"par");
        bytes.extend(masked(0x89 | rsv, b""));
        assert_server_fails(&bytes, ProtocolError::ReservedBits, 1002, &[]);
    }
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_licenses_rsv1_on_first_data_frames_only() {
    let (params, _) = wscore::DeflateConfig::default().negotiate(&["permessage-deflate"]).expect("accepted");
    let deflate_server = || Connection::server(Config::default()).with_deflate(params);
    let check = |bytes: &[u8], events: &[Event]| {
        for split in harness::Split::all() {
            let (result, got, out, conn) = feed_all(deflate_server(), bytes, split);
            assert_eq!(result, Err(Error::Protocol(ProtocolError::ReservedBits)), "{split:?}");
            assert_eq!(got, events);
            assert_eq!(close_code_in(&out), Some(Some(1002)));
            assert_eq!(conn.state(), State::Failed);
        }
    };
    // RSV2 and RSV3 stay reserved, alone or with RSV1.
    for rsv in [0x20, 0x10, 0x60, 0x50, 0x70] {
        check(&masked(0x81 | rsv, b"x"), &[]);
        check(&masked(0x82 | rsv, b"x"), &[]);
    }
    // RSV1 on control frames.
    for op in [0x88, 0x89, 0x8A] {
        check(&masked(op | 0x40, b""), &[]);
    }
    // RSV1 on a continuation (only a message's first frame says "compressed"), whether the
    // message started compressed or not.
    let mut bytes = masked(0x01, b"plain ");
    bytes.extend(masked(0xC0, b"x"));
    check(&bytes, &[]);
    // An uncompressed message is still fine on a deflate connection, RSV1 clear.
    let (result, events, _, _) = feed_all(deflate_server(), &masked(0x82, b"raw"), harness::Split::Random(9));
    assert_eq!((result, events), (Ok(()), vec![binary(b"raw")]));
}

/// A large input handed to `receive` at once is unmasked while it is copied in (whole masked
/// frames, server role). The masking rules hold there too: a frame with the wrong masking in
/// the middle of such an input fails the connection after the messages before it, as in small
/// reads; a masked frame whose key is all zeros (legal) is its own plaintext.
#[test]
fn masking_rules_hold_inside_a_large_input() {
    let payload: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let run = |mut conn: Connection, wire: &[u8], read: usize| {
        let (result, events) = harness::receive_in_reads(&mut conn, wire, read);
        (result, events, conn.take_transmit())
    };
    // Server: ten masked messages, one unmasked, then more masked ones.
    let mut wire = Vec::new();
    for _ in 0..10 {
        wire.extend(masked(0x82, &payload));
    }
    wire.extend(unmasked(0x82, &payload));
    wire.extend(masked(0x82, &payload));
    // Client: ten unmasked messages, one masked.
    let mut to_client = Vec::new();
    for _ in 0..10 {
        to_client.extend(unmasked(0x82, &payload));
    }
    to_client.extend(masked(0x82, &payload));
    to_client.extend(unmasked(0x82, &payload));
    for read in [wire.len(), 1460, 1] {
        let (result, events, out) = run(harness::server(), &wire, read);
        assert_eq!(result, Err(Error::Protocol(ProtocolError::UnmaskedFrame)), "reads of {read}");
        assert_eq!(events, vec![binary(&payload); 10], "reads of {read}");
        assert_eq!(close_code_in(&out), Some(Some(1002)));
        let (result, events, out) = run(harness::client(), &to_client, read);
        assert_eq!(result, Err(Error::Protocol(ProtocolError::MaskedFrame)), "reads of {read}");
        assert_eq!(events, vec![binary(&payload); 10], "reads of {read}");
        assert_eq!(close_code_in(&out), Some(Some(1002)));
    }
    // A zero masking key, between frames with other keys, in a large input and in small reads.
    let mut zero_key = vec![0x82, 0xFE, 0x0F, 0xA0, 0, 0, 0, 0];
    zero_key.extend_from_slice(&payload);
    let mut wire = Vec::new();
    for _ in 0..5 {
        wire.extend(masked(0x82, &payload));
        wire.extend(&zero_key);
    }
    for read in [wire.len(), 1460] {
        let (result, events, _) = run(harness::server(), &wire, read);
        assert_eq!(result, Ok(()), "reads of {read}");
        assert_eq!(events, vec![binary(&payload); 10], "reads of {read}");
    }
}
