//! A peer breaking the rules: limits (1009, 1008), invalid UTF-8 (1007), masking direction,
//! reserved bits and opcodes, bad length encodings (1002). Each test checks the error variant,
//! the close code in the bytes the failing side transmits, and the `Failed` state.

mod harness;

use harness::{
    Pair, Pipe, Split, assert_client_fails, assert_server_fails, binary, client, close_code_in, drain_events, feed_all,
    masked, server, text, unmasked,
};
use wscore::{CloseCode, Config, Connection, Error, Event, MessageKind, ProtocolError, State};

// ----- limits -----

#[test]
fn max_message_size_exactly_at_the_limit_and_one_over() {
    let server_config = Config::default().max_message_size(1000);
    for split in Split::all() {
        let mut pair = Pair::new(Config::default(), server_config.clone(), split);
        pair.client().send_binary(vec![7; 1000]).unwrap();
        pair.client().send_fragment(MessageKind::Text, "a".repeat(600), false).unwrap();
        pair.client().send_fragment(MessageKind::Text, "b".repeat(400), true).unwrap();
        pair.client().send_fragment(MessageKind::Text, "a".repeat(600), false).unwrap();
        pair.client().send_fragment(MessageKind::Text, "b".repeat(401), true).unwrap();
        pair.run();
        let expected_text = "a".repeat(600) + &"b".repeat(400);
        assert_eq!(pair.server.events[..2], [binary(&[7; 1000]), text(&expected_text)]);
        let err = Error::Protocol(ProtocolError::MessageTooLarge { limit: 1000 });
        assert_eq!(pair.server.error, Some(err.clone()), "{split:?}");
        assert_eq!(err.close_code(), CloseCode::TOO_BIG);
        assert_eq!(pair.server.close_sent(), Some(Some(1009)));
        assert!(matches!(
            &pair.client.events[..],
            [Event::Close(Some(f))] if f.code == CloseCode::TOO_BIG
        ));
    }
}

#[test]
fn max_message_size_fails_from_the_header() {
    // Only the header of a 1001-byte frame: the server fails before any payload arrives.
    let config = Config::default().max_message_size(1000);
    let frame = masked(0x82, &[0; 1001]);
    let mut conn = Connection::server(config);
    assert_eq!(conn.receive(&frame[..8]), Err(Error::Protocol(ProtocolError::MessageTooLarge { limit: 1000 })));
    assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
}

#[test]
fn max_frame_size() {
    let config = Config::default().max_frame_size(100);
    let mut conn = Connection::server(config.clone());
    conn.receive(&masked(0x82, &[1; 100])).unwrap();
    assert_eq!(drain_events(&mut conn), [binary(&[1; 100])]);
    // Frames up to the limit may make a larger message.
    let client_config = Config::default().write_fragment_size(100);
    let mut pair = Pair::new(client_config, config.clone(), Split::Random(6));
    pair.client().send_binary(vec![2; 250]).unwrap();
    pair.run();
    assert_eq!(pair.server.events, [binary(&[2; 250])]);
    assert_eq!(pair.server.error, None);
    // One over the limit fails from the header.
    let mut conn = Connection::server(config);
    let frame = masked(0x82, &[1; 101]);
    let expected = Error::Protocol(ProtocolError::FrameTooLarge { size: 101, limit: 100 });
    assert_eq!(conn.receive(&frame[..8]), Err(expected.clone()));
    assert_eq!(expected.close_code(), CloseCode::TOO_BIG);
    assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
}

#[test]
fn max_fragments() {
    let config = Config::default().max_fragments(3);
    let mut three = masked(0x01, b"a");
    three.extend(masked(0x00, b"b"));
    three.extend(masked(0x80, b"c"));
    let mut conn = Connection::server(config.clone());
    conn.receive(&three).unwrap();
    assert_eq!(drain_events(&mut conn), [text("abc")]);
    let mut four = masked(0x01, b"a");
    four.extend(masked(0x00, b"b"));
    four.extend(masked(0x00, b"c"));
    four.extend(masked(0x80, b"d"));
    for split in Split::all() {
        let (result, events, out, _) = feed_all(Connection::server(config.clone()), &four, split);
        assert_eq!(result, Err(Error::Protocol(ProtocolError::TooManyFragments { limit: 3 })));
        assert!(events.is_empty());
        assert_eq!(close_code_in(&out), Some(Some(1008)));
    }
}

#[test]
fn invalid_utf8_fails_fast_inside_a_frame() {
    // A 100-byte text frame whose 6th byte is invalid: the failure comes with the first bytes.
    let mut payload = b"hello\xffworld".to_vec();
    payload.resize(100, b'x');
    let frame = masked(0x81, &payload);
    for split in Split::all() {
        let mut conn = server();
        let mut pipe = Pipe::new(split);
        let mut fed = 0;
        let mut result = Ok(());
        for piece in pipe.pieces(&frame[..6 + 6]) {
            fed += piece.len();
            result = conn.receive(piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(fed, 12, "failed only with the invalid byte");
        assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)));
        assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1007)));
        assert_eq!(conn.state(), State::Failed);
    }
}

#[test]
fn invalid_utf8_across_fragments_and_at_the_end() {
    // An invalid sequence across two fragments fails with the second.
    let mut bytes = masked(0x01, b"ok\xe2\x82");
    bytes.extend(masked(0x80, b"\x28"));
    assert_server_fails(&bytes, ProtocolError::InvalidUtf8, 1007, &[]);
    // A message ending inside a code point fails at its end.
    assert_server_fails(&masked(0x81, b"ok\xe2\x82"), ProtocolError::InvalidUtf8, 1007, &[]);
    let mut bytes = masked(0x01, b"ok\xe2\x82");
    bytes.extend(masked(0x80, b""));
    assert_server_fails(&bytes, ProtocolError::InvalidUtf8, 1007, &[]);
    // Overlong encodings and surrogates are invalid.
    for bad in [&b"\xc0\xaf"[..], b"\xed\xa0\x80", b"\xf4\x90\x80\x80"] {
        assert_client_fails(&unmasked(0x81, bad), ProtocolError::InvalidUtf8, 1007, &[]);
    }
    // Binary messages are not checked.
    let (result, events, _, _) = feed_all(server(), &masked(0x82, b"\xff"), Split::Whole);
    assert_eq!(result, Ok(()));
    assert_eq!(events, [binary(b"\xff")]);
}

// ----- framing violations -----

#[test]
fn masking_direction_violations() {
    assert_server_fails(&unmasked(0x81, b"hi"), ProtocolError::UnmaskedFrame, 1002, &[]);
    assert_server_fails(&unmasked(0x89, b""), ProtocolError::UnmaskedFrame, 1002, &[]);
    assert_client_fails(&masked(0x81, b"hi"), ProtocolError::MaskedFrame, 1002, &[]);
    assert_client_fails(&masked(0x8A, b""), ProtocolError::MaskedFrame, 1002, &[]);
    // The server's close frame is unmasked, the client's masked.
    let (_, _, out, _) = feed_all(server(), &unmasked(0x81, b"hi"), Split::Whole);
    assert_eq!(out[1] & 0x80, 0);
    let (_, _, out, _) = feed_all(client(), &masked(0x81, b"hi"), Split::Whole);
    assert_eq!(out[1] & 0x80, 0x80);
}

#[test]
fn reserved_bits() {
    for rsv in [0x40, 0x20, 0x10, 0x70] {
        assert_server_fails(&masked(0x81 | rsv, b"x"), ProtocolError::ReservedBits, 1002, &[]);
        assert_client_fails(&unmasked(0x89 | rsv, b""), ProtocolError::ReservedBits, 1002, &[]);
    }
}

#[test]
fn reserved_opcodes() {
    for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let mut bytes = masked(0x82, b"ok");
        bytes.extend(masked(0x80 | op, b"x"));
        assert_server_fails(&bytes, ProtocolError::ReservedOpcode(op), 1002, &[binary(b"ok")]);
        // One byte is enough to tell.
        let mut conn = client();
        assert_eq!(conn.receive(&[0x80 | op]), Err(Error::Protocol(ProtocolError::ReservedOpcode(op))));
    }
}

#[test]
fn length_encoding_violations() {
    assert_server_fails(&[0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4], ProtocolError::NonMinimalLength(125), 1002, &[]);
    assert_server_fails(
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4],
        ProtocolError::NonMinimalLength(0xFFFF),
        1002,
        &[],
    );
    assert_client_fails(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], ProtocolError::LengthTopBit, 1002, &[]);
}
