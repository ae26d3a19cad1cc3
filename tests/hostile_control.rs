//! Hostile input, family 2: control frames (RFC 6455 §5.5, §7.4).
//!
//! Guards against the WebSocket forms of CVE-2019-9512 (HTTP/2 "ping flood": a peer that sends
//! pings and never reads makes the victim queue one answer per ping without bound) and of the
//! control-frame parsing bugs libraries keep shipping: oversized or fragmented control frames
//! accepted, close codes not validated (an invalid code echoed back to the peer), 1-byte close
//! bodies read past their end, and close reasons passed on as text without UTF-8 validation.
//!
//! Every status code 0..=65535 is scanned; the valid set on the wire is 1000–1003, 1007–1014 and
//! 3000–4999. Already covered elsewhere and not repeated: one 126-byte ping and one fragmented
//! ping/pong (`tests/connection.rs::control_frame_limits`), a flood of 50 pings behind a backed-up
//! message (`ping_flood_keeps_only_the_newest_pong_when_the_peer_does_not_read`), a sample of
//! invalid and valid codes and two bad reasons (`tests/close_and_timers.rs`).

mod harness;

use harness::{
    MASK, assert_client_fails, assert_server_fails, client, close_body, decode_frames, drain_events, feed_all, masked,
    ping, server, text, unmasked,
};
use wscore::{CloseCode, Config, Connection, Error, Event, OpCode, ProtocolError, State};

const CONTROL: [u8; 3] = [0x8, 0x9, 0xA];

#[test]
fn oversized_control_frames_fail_from_the_second_byte() {
    for op in CONTROL {
        for len7 in [126u8, 127] {
            // Two bytes tell: the 16- and 64-bit forms can only carry more than 125 bytes.
            assert_server_fails(&[0x80 | op, 0x80 | len7], ProtocolError::ControlFrameTooLong, 1002, &[]);
            assert_client_fails(&[0x80 | op, len7], ProtocolError::ControlFrameTooLong, 1002, &[]);
            // No limit setting lifts it.
            let mut conn = Connection::server(Config::unlimited());
            let err = conn.receive(&[0x80 | op, 0x80 | len7, 0, 126]).unwrap_err();
            assert_eq!(err, Error::Protocol(ProtocolError::ControlFrameTooLong));
            assert_eq!(conn.buffered_received(), 0);
        }
        // 125 bytes is the largest control payload; the same frame with a full 126-byte body
        // behind it fails before the body matters.
        let mut big = masked(0x80 | op, &[b'x'; 126]);
        assert_server_fails(&big, ProtocolError::ControlFrameTooLong, 1002, &[]);
        big = unmasked(0x80 | op, &[b'x'; 126]);
        assert_client_fails(&big, ProtocolError::ControlFrameTooLong, 1002, &[]);
    }
    let (result, events, _, _) = feed_all(server(), &masked(0x8A, &[b'p'; 125]), harness::Split::OneByte);
    assert_eq!((result, events), (Ok(()), vec![Event::Pong(vec![b'p'; 125].into())]));
}

#[test]
fn fragmented_control_frames_are_protocol_errors() {
    for op in CONTROL {
        for payload in [&b""[..], b"ab"] {
            assert_server_fails(&masked(op, payload), ProtocolError::FragmentedControlFrame, 1002, &[]);
            assert_client_fails(&unmasked(op, payload), ProtocolError::FragmentedControlFrame, 1002, &[]);
        }
        // Inside a fragmented data message, after a legitimate interleaved ping.
        let mut bytes = masked(0x01, b"par");
        bytes.extend(masked(0x89, b"ok"));
        bytes.extend(masked(op, b""));
        assert_server_fails(&bytes, ProtocolError::FragmentedControlFrame, 1002, &[ping(b"ok")]);
        // One byte (FIN clear, control opcode) plus the length byte is enough to tell.
        assert_client_fails(&[op, 0x00], ProtocolError::FragmentedControlFrame, 1002, &[]);
    }
}

#[test]
fn close_bodies_of_one_byte_both_ways() {
    // `tests/close_and_timers.rs` checks one such body sent to a server; here every byte value,
    // both ways.
    for byte in 0..=255u8 {
        let mut conn = server();
        assert_eq!(conn.receive(&masked(0x88, &[byte])), Err(Error::Protocol(ProtocolError::CloseBodyTooShort)));
        assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1002)));
        let mut conn = client();
        assert_eq!(conn.receive(&unmasked(0x88, &[byte])), Err(Error::Protocol(ProtocolError::CloseBodyTooShort)));
        assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1002)));
        assert_eq!(conn.state(), State::Failed);
    }
}

/// The codes a close frame may carry, written out independently of the crate's own table.
fn valid_on_the_wire(code: u16) -> bool {
    (1000..=1003).contains(&code) || (1007..=1014).contains(&code) || (3000..=4999).contains(&code)
}

#[test]
fn every_close_code_is_checked() {
    let mut valid = 0;
    for code in 0..=u16::MAX {
        let body = close_body(code, b"r");
        // A server receiving it.
        let mut conn = server();
        let result = conn.receive(&masked(0x88, &body));
        let events = drain_events(&mut conn);
        let out = conn.take_transmit();
        if valid_on_the_wire(code) {
            valid += 1;
            assert_eq!(result, Ok(()), "{code}");
            assert_eq!(events, [harness::close(code, "r")]);
            // Echoed with the same code (RFC 6455 §5.5.1), and the handshake is done.
            assert_eq!(&out[..], &unmasked(0x88, &close_body(code, b""))[..], "{code}");
            assert_eq!(conn.state(), State::Closed);
        } else {
            assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidCloseCode(code))), "{code}");
            assert!(events.is_empty());
            // Never echoed: the answer is 1002.
            let frames = decode_frames(&out);
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].close_code(), Some(1002), "{code}");
            assert_eq!(conn.state(), State::Failed);
        }
        // A client receiving it (from the server, unmasked) decides the same way.
        let mut conn = client();
        let result = conn.receive(&unmasked(0x88, &body));
        assert_eq!(result.is_ok(), valid_on_the_wire(code), "{code}");
        assert_eq!(CloseCode(code).is_valid_on_wire(), valid_on_the_wire(code));
    }
    assert_eq!(valid, 4 + 8 + 2000);
}

#[test]
fn invalid_utf8_in_close_reasons() {
    let bad_reasons: [&[u8]; 10] = [
        b"\xff",
        b"\x80",                 // lone continuation byte
        b"\xc0\xaf",             // overlong '/'
        b"\xe0\x80\xaf",         // overlong '/', 3 bytes
        b"\xed\xa0\x80",         // UTF-16 surrogate U+D800
        b"\xf4\x90\x80\x80",     // above U+10FFFF
        b"\xf8\x88\x80\x80\x80", // 5-byte form
        b"bye \xe2\x82",         // truncated at the end of the body
        b"\xe2\x82 bye",         // truncated in the middle
        b"\xef\xbb\xbf\xfe\xff", // a BOM, then bytes never valid in UTF-8
    ];
    for reason in bad_reasons {
        assert_server_fails(&masked(0x88, &close_body(1000, reason)), ProtocolError::InvalidCloseReason, 1007, &[]);
        assert_client_fails(&unmasked(0x88, &close_body(4000, reason)), ProtocolError::InvalidCloseReason, 1007, &[]);
    }
    // The longest reason, valid until its last byte.
    let mut reason = vec![b'a'; 122];
    reason.push(0xC3);
    assert_server_fails(&masked(0x88, &close_body(1001, &reason)), ProtocolError::InvalidCloseReason, 1007, &[]);
    // Non-characters and the highest code point are valid UTF-8, and accepted.
    let fine = "\u{FFFE}\u{FFFF}\u{10FFFF}\u{FDD0}";
    let (result, events, _, _) =
        feed_all(server(), &masked(0x88, &close_body(1000, fine.as_bytes())), harness::Split::OneByte);
    assert_eq!((result, events), (Ok(()), vec![harness::close(1000, fine)]));
}

/// `count` pings of 8 bytes (their index), masked, back to back.
fn ping_stream(count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(count as usize * 14);
    for i in 0..count {
        out.extend_from_slice(&[0x89, 0x88]);
        out.extend_from_slice(&MASK);
        let mut payload = i.to_be_bytes();
        for (j, b) in payload.iter_mut().enumerate() {
            *b ^= MASK[j % 4];
        }
        out.extend_from_slice(&payload);
    }
    out
}

#[test]
fn ping_flood_against_a_connection_whose_output_is_never_drained() {
    const PINGS: u64 = 100_000;
    let stream = ping_stream(PINGS);
    let mut conn = server();
    let mut seen = 0u64;
    let mut fed = 0;
    for chunk in stream.chunks(64 << 10) {
        conn.receive(chunk).unwrap();
        fed += chunk.len();
        // The application reads its events but the transport never takes a byte.
        for event in drain_events(&mut conn) {
            assert_eq!(event, Event::Ping(seen.to_be_bytes().to_vec().into()));
            seen += 1;
        }
        // At most about 1 KiB of pongs (the backlog answered one by one) and the newest one.
        assert!(conn.buffered_amount() <= 1024 + 20, "{} bytes queued after {seen} pings", conn.buffered_amount());
        // Only a partial ping is held (its header is consumed once whole).
        let partial = fed % 14;
        assert_eq!(conn.buffered_received(), if partial >= 6 { partial - 6 } else { partial });
    }
    assert_eq!(seen, PINGS, "the application saw every ping");
    // When the transport finally drains: the first pings answered one by one until 1 KiB was
    // waiting, then only the newest.
    let frames = decode_frames(&conn.take_transmit());
    let pongs: Vec<_> = frames.iter().map(|f| (f.opcode(), f.payload.clone())).collect();
    let backlog = 1024usize.div_ceil(10) as u64;
    let mut expected: Vec<_> = (0..backlog).map(|i| (OpCode::Pong, i.to_be_bytes().to_vec())).collect();
    expected.push((OpCode::Pong, (PINGS - 1).to_be_bytes().to_vec()));
    assert_eq!(pongs, expected);
    // The connection is healthy afterwards.
    conn.send_text("still here").unwrap();
    let mut reader = client();
    reader.receive(&conn.take_transmit()).unwrap();
    assert_eq!(drain_events(&mut reader), [text("still here")]);

    // With automatic pongs off, a flood queues nothing at all; unsolicited pongs neither.
    let mut conn = Connection::server(Config::default().auto_pong(false));
    for chunk in stream.chunks(64 << 10) {
        conn.receive(chunk).unwrap();
        drain_events(&mut conn);
        assert_eq!(conn.buffered_amount(), 0);
    }
    let mut pongs = stream.clone();
    for frame in pongs.chunks_mut(14) {
        frame[0] = 0x8A;
    }
    let mut conn = server();
    for chunk in pongs.chunks(64 << 10) {
        conn.receive(chunk).unwrap();
        drain_events(&mut conn);
        assert_eq!(conn.buffered_amount(), 0);
    }
}
