//! Hostile input, family 1: frame payload lengths (RFC 6455 §5.2).
//!
//! Guards against the bugs behind CVE-2020-27813 (gorilla/websocket: an integer overflow in the
//! frame length bypassed the read limit), CVE-2018-21035 (Qt WebSockets: 2 GB frames and
//! messages accepted, no smaller limit configurable) and CVE-2016-10542 (`ws`: an overly long
//! payload crashed the process), and the "allocate what the header declares" bug class:
//!
//! - a 64-bit length with its most significant bit set (including 2^64 − 1) is a protocol error
//!   (1002) decided from the header alone;
//! - a huge *legal* declared length with only a few payload bytes behind it allocates nothing
//!   from the declaration: with default limits it fails with 1009 from the header alone, and
//!   with no limits at all the buffered bytes are exactly the bytes that arrived;
//! - the frame and message size limits hold exactly at the limit and fail at limit + 1, at each
//!   of the three length encodings, from the header that crosses them;
//! - **our policy on non-minimal length encodings**: RFC 6455 §5.2 says the minimal number of
//!   bytes MUST be used to encode the length. A length that fits the 7-bit form but is sent in
//!   the 16-bit form, or fits the 16-bit form but is sent in the 64-bit form, is rejected with
//!   [`ProtocolError::NonMinimalLength`] and close code 1002 (some libraries accept them; we do
//!   not, so that one length has one encoding and a length-smuggling parser differential between
//!   a proxy and this endpoint cannot exist).
//!
//! What `tests/peer_violations.rs` already checks is not repeated: the 1000/1001-byte message
//! limit through a pair, the 100/101-byte frame limit, and single examples of each bad length
//! encoding.

mod harness;

use harness::{assert_client_fails, assert_server_fails, binary, close_code_in, drain_events, masked};
use wscore::{Config, Connection, Error, Event, ProtocolError, ReceiveMode, State};

/// A zero masking key: legal (the mask bit is what matters), and it leaves the payload as is,
/// so large masked payloads cost nothing to build.
const ZERO_KEY: [u8; 4] = [0; 4];

/// A frame header with the length encoded exactly as given: `len7` is the 7-bit field (126 and
/// 127 select the 16- and 64-bit forms), `ext` the extended length bytes.
fn header(b0: u8, mask: Option<[u8; 4]>, len7: u8, ext: &[u8]) -> Vec<u8> {
    let mut out = vec![b0, len7 | if mask.is_some() { 0x80 } else { 0 }];
    out.extend_from_slice(ext);
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// The minimal header for a `len`-byte payload, as a client sends it (zero key).
fn client_header(b0: u8, len: u64) -> Vec<u8> {
    match len {
        0..=125 => header(b0, Some(ZERO_KEY), len as u8, &[]),
        126..=0xFFFF => header(b0, Some(ZERO_KEY), 126, &(len as u16).to_be_bytes()),
        _ => header(b0, Some(ZERO_KEY), 127, &len.to_be_bytes()),
    }
}

#[test]
fn lengths_with_the_top_bit_set_are_protocol_errors_from_the_header() {
    for len in [1u64 << 63, (1 << 63) + 1, 0xC000_0000_0000_0000, u64::MAX - 1, u64::MAX] {
        let ext = len.to_be_bytes();
        assert_server_fails(&header(0x82, Some(ZERO_KEY), 127, &ext), ProtocolError::LengthTopBit, 1002, &[]);
        assert_client_fails(&header(0x81, None, 127, &ext), ProtocolError::LengthTopBit, 1002, &[]);
        // Not a limit: no configuration makes such a length acceptable, and nothing is kept.
        let mut conn = Connection::server(Config::unlimited());
        let err = conn.receive(&header(0x82, Some(ZERO_KEY), 127, &ext)).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::LengthTopBit), "{len:#x}");
        assert_eq!(conn.buffered_received(), 0);
        assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1002)));
    }
}

#[test]
fn largest_legal_length_fails_with_1009_from_the_header_alone_under_default_limits() {
    let huge = (1u64 << 63) - 1;
    for (len, expected) in [
        (huge, ProtocolError::FrameTooLarge { size: huge, limit: 16 << 20 }),
        ((16 << 20) + 1, ProtocolError::FrameTooLarge { size: (16 << 20) + 1, limit: 16 << 20 }),
        (1 << 32, ProtocolError::FrameTooLarge { size: 1 << 32, limit: 16 << 20 }),
    ] {
        // The 14 header bytes and nothing else: the verdict cannot wait for payload.
        assert_server_fails(&client_header(0x82, len), expected.clone(), 1009, &[]);
        assert_client_fails(&header(0x82, None, 127, &len.to_be_bytes()), expected, 1009, &[]);
    }
    // With the frame limit lifted, the message limit still answers from the same header.
    let mut conn = Connection::server(Config::default().max_frame_size(usize::MAX));
    let err = conn.receive(&client_header(0x81, huge)).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::MessageTooLarge { limit: 16 << 20 }));
    assert_eq!(conn.buffered_received(), 0);
    assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
}

#[test]
fn a_huge_declared_length_allocates_nothing_from_the_declaration() {
    // No limits at all, and a declared length no allocator could satisfy: anything sized from
    // the header would abort the test. What is buffered is exactly what arrived.
    for declared in [(1u64 << 63) - 1, 1 << 62, 1 << 40] {
        for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
            let mut conn = Connection::server(Config::unlimited().receive_mode(mode));
            conn.receive(&client_header(0x82, declared)).unwrap();
            assert_eq!(conn.buffered_received(), 0, "a header alone buffers nothing");
            // The zero-copy path offers at most `read_buffer_size`, not the declared length.
            assert!(conn.receive_buffer().len() <= 16 << 10);
            conn.commit_received(0).unwrap();
            let chunk = [0u8; 4096];
            let mut delivered = 0;
            for i in 1..=16 {
                conn.receive(&chunk).unwrap();
                delivered += drain_events(&mut conn)
                    .into_iter()
                    .map(|e| match e {
                        Event::Fragment(f) => f.data.len(),
                        other => panic!("unexpected {other:?}"),
                    })
                    .sum::<usize>();
                match mode {
                    ReceiveMode::Message => assert_eq!(conn.buffered_received(), i * chunk.len()),
                    _ => assert_eq!((conn.buffered_received(), delivered), (0, i * chunk.len())),
                }
            }
            // The peer goes away: everything held is dropped.
            assert_eq!(conn.receive_eof(), Err(Error::UnexpectedEof));
            assert_eq!(conn.buffered_received(), 0);
            assert_eq!(conn.state(), State::Failed);
        }
    }
}

#[test]
fn frame_size_limit_at_each_length_encoding() {
    // Limits on both sides of the 7-bit/16-bit and 16-bit/64-bit encoding boundaries.
    for limit in [0usize, 125, 126, 0xFFFF, 0x1_0000] {
        let config = Config::default().max_frame_size(limit);
        // Exactly at the limit: accepted.
        let mut conn = Connection::server(config.clone());
        let mut frame = client_header(0x82, limit as u64);
        frame.resize(frame.len() + limit, 0xAB);
        conn.receive(&frame).unwrap();
        assert_eq!(drain_events(&mut conn), [binary(&vec![0xAB; limit])], "limit {limit}");
        // One over: refused from the header, before any payload.
        let over = limit as u64 + 1;
        let expected = ProtocolError::FrameTooLarge { size: over, limit };
        let mut conn = Connection::server(config.clone());
        assert_eq!(conn.receive(&client_header(0x82, over)), Err(Error::Protocol(expected.clone())));
        assert_eq!(conn.buffered_received(), 0);
        assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
        // The same for a client reading server frames.
        let mut conn = Connection::client_with_random(config, Box::new(wscore::SeededRandom::new(1)));
        let unmasked = match over {
            0..=125 => header(0x82, None, over as u8, &[]),
            126..=0xFFFF => header(0x82, None, 126, &(over as u16).to_be_bytes()),
            _ => header(0x82, None, 127, &over.to_be_bytes()),
        };
        assert_eq!(conn.receive(&unmasked), Err(Error::Protocol(expected)));
        assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
    }
}

#[test]
fn message_size_limit_fails_at_the_header_that_crosses_it() {
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        let config = Config::default().max_message_size(1000).receive_mode(mode);
        // 400 + 600 = 1000: accepted, in both modes.
        let mut ok = masked(0x02, &[1; 400]);
        ok.extend(masked(0x80, &[2; 600]));
        let mut conn = Connection::server(config.clone());
        conn.receive(&ok).unwrap();
        let total: usize = drain_events(&mut conn).iter().map(event_len).sum();
        assert_eq!(total, 1000);
        // 400 + 601: the second header alone fails, its payload never needed.
        let mut conn = Connection::server(config.clone());
        conn.receive(&masked(0x02, &[1; 400])).unwrap();
        let held = conn.buffered_received();
        assert_eq!(held, if mode == ReceiveMode::Message { 400 } else { 0 }, "{mode:?}");
        let err = conn.receive(&client_header(0x80, 601)).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::MessageTooLarge { limit: 1000 }));
        assert_eq!(conn.buffered_received(), 0, "the partial message is dropped on failure");
        // (In stream mode the first piece is an event the application takes before the close
        // frame is queued, so it can still answer it.)
        drain_events(&mut conn);
        assert_eq!(close_code_in(&conn.take_transmit()), Some(Some(1009)));
        // Many small fragments crossing the limit by one byte, across every header form.
        let mut conn = Connection::server(config);
        conn.receive(&masked(0x02, &[0; 999])).unwrap();
        conn.receive(&masked(0x00, &[])).unwrap();
        assert_eq!(
            conn.receive(&client_header(0x80, 2)),
            Err(Error::Protocol(ProtocolError::MessageTooLarge { limit: 1000 }))
        );
    }
}

fn event_len(event: &Event) -> usize {
    match event {
        Event::Message(m) => m.len(),
        Event::Fragment(f) => f.data.len(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn default_limits_exactly_at_and_one_over() {
    const LIMIT: usize = 16 << 20;
    // Exactly 16 MiB in one frame, fed in 1 MiB reads: accepted, and never more than what
    // arrived is held.
    let mut frame = client_header(0x82, LIMIT as u64);
    let header_len = frame.len();
    frame.resize(header_len + LIMIT, 0x5A);
    let mut conn = Connection::server(Config::default());
    let mut fed = 0;
    for chunk in frame.chunks(1 << 20) {
        conn.receive(chunk).unwrap();
        fed += chunk.len();
        assert!(conn.buffered_received() <= fed - header_len.min(fed));
    }
    match &drain_events(&mut conn)[..] {
        [Event::Message(m)] => assert!(m.len() == LIMIT && m.as_bytes().iter().all(|&b| b == 0x5A)),
        other => panic!("expected one message, got {} events", other.len()),
    }
    assert_eq!(conn.buffered_received(), 0);
    // One over, as one frame and as a second fragment: refused from the header.
    let expected = ProtocolError::FrameTooLarge { size: LIMIT as u64 + 1, limit: LIMIT };
    assert_server_fails(&client_header(0x82, LIMIT as u64 + 1), expected, 1009, &[]);
    let mut conn = Connection::server(Config::default());
    let mut first = client_header(0x02, LIMIT as u64 / 2);
    first.resize(first.len() + LIMIT / 2, 0);
    conn.receive(&first).unwrap();
    assert_eq!(
        conn.receive(&client_header(0x80, LIMIT as u64 / 2 + 1)),
        Err(Error::Protocol(ProtocolError::MessageTooLarge { limit: LIMIT }))
    );
    assert_eq!(conn.buffered_received(), 0);
}

#[test]
fn non_minimal_length_encodings_are_rejected_with_1002() {
    // Policy (see the module docs): every length that fits a shorter form is refused.
    for len in 0..=125u16 {
        let ext = len.to_be_bytes();
        assert_server_fails(
            &header(0x82, Some(ZERO_KEY), 126, &ext),
            ProtocolError::NonMinimalLength(u64::from(len)),
            1002,
            &[],
        );
        assert_client_fails(&header(0x81, None, 126, &ext), ProtocolError::NonMinimalLength(u64::from(len)), 1002, &[]);
    }
    for len in [0u64, 1, 125, 126, 0x7FFF, 0xFFFE, 0xFFFF] {
        let ext = len.to_be_bytes();
        assert_server_fails(&header(0x82, Some(ZERO_KEY), 127, &ext), ProtocolError::NonMinimalLength(len), 1002, &[]);
        assert_client_fails(&header(0x80, None, 127, &ext), ProtocolError::NonMinimalLength(len), 1002, &[]);
    }
    // The smallest length of each extended form is minimal and accepted.
    for len in [126u64, 0x1_0000] {
        let mut frame = client_header(0x82, len);
        frame.resize(frame.len() + len as usize, 7);
        let mut conn = Connection::server(Config::default());
        conn.receive(&frame).unwrap();
        assert_eq!(drain_events(&mut conn), [binary(&vec![7; len as usize])]);
    }
    // Also on control frames (a 16-bit form is already too long for a control frame).
    assert_server_fails(&header(0x89, Some(ZERO_KEY), 126, &[0, 5]), ProtocolError::ControlFrameTooLong, 1002, &[]);
}
