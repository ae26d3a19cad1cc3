//! Hostile input, family 7: the local application misusing the send API.
//!
//! This family has no CVE of its own: it is the local half of the others. A library that lets
//! its own user put an over-long close reason, a reserved close code (1005, 1006, 1015), a
//! 126-byte ping, data after the close, or a message in the middle of another onto the wire
//! makes its *peer* see exactly the violations the other families refuse; and a write queue
//! without a limit is the sender-side memory exhaustion of the `ws` back-pressure reports
//! (a slow reader making the writer buffer without bound). Every misuse must return a
//! [`SendError`], queue nothing and leave the connection usable.
//!
//! Already covered in `tests/connection.rs` (`send_errors_leave_the_connection_usable`,
//! `send_fragment_refuses_to_mix_messages`, `max_write_buffer`): a 124-byte reason, a sample of
//! invalid codes, 126- and 200-byte control payloads, every send after our close, whole
//! messages while a stream is open, and a first `BufferFull`. Here: reasons measured in bytes,
//! not characters; the scan of all 65 536 codes; sends after the peer's close and after a
//! failure; a close in the middle of a streamed message; and back-pressure through to an intact
//! delivery.

mod harness;

use bytes::Bytes;
use harness::{Pair, Split, binary, decode_frames, drain_events, text};
use wscore::{
    CloseCode, Config, Connection, Error, Event, Fragment, MAX_CLOSE_REASON, MessageKind, OpCode, ProtocolError,
    SendError, State,
};

#[test]
fn close_reasons_are_limited_in_bytes_not_characters() {
    // 123 bytes of two-, three- and four-byte characters are fine; one byte more is not.
    let fits = ["é".repeat(61) + "a", "€".repeat(41), "😀".repeat(30) + "abc"];
    let too_long = ["é".repeat(62), "€".repeat(41) + "a", "😀".repeat(31), "a".repeat(10_000)];
    for reason in &fits {
        assert_eq!(reason.len(), MAX_CLOSE_REASON);
        let mut conn = harness::server();
        conn.close(CloseCode::NORMAL, reason).unwrap();
        let frames = decode_frames(&conn.take_transmit());
        assert_eq!(frames[0].payload.len(), 125, "the largest control payload");
        assert_eq!(&frames[0].payload[2..], reason.as_bytes());
    }
    for reason in &too_long {
        let mut conn = harness::server();
        assert_eq!(conn.close(CloseCode::NORMAL, reason), Err(SendError::ReasonTooLong(reason.len())));
        assert_eq!((conn.state(), conn.buffered_amount()), (State::Open, 0), "nothing queued");
    }
}

#[test]
fn every_close_code_the_application_may_send() {
    let mut conn = harness::client();
    for code in 0..=u16::MAX {
        let valid = (1000..=1003).contains(&code) || (1007..=1014).contains(&code) || (3000..=4999).contains(&code);
        if valid {
            let mut fresh = harness::client();
            fresh.close(CloseCode(code), "").unwrap();
            assert_eq!(decode_frames(&fresh.take_transmit())[0].close_code(), Some(code));
        } else {
            // Refused without a trace, on one connection that stays open throughout.
            assert_eq!(conn.close(CloseCode(code), "why"), Err(SendError::InvalidCloseCode(code)));
        }
    }
    assert_eq!((conn.state(), conn.buffered_amount()), (State::Open, 0));
    // The three codes reserved for reporting, by name.
    for code in [CloseCode::NO_STATUS, CloseCode::ABNORMAL, CloseCode::TLS_HANDSHAKE] {
        assert_eq!(conn.close(code, ""), Err(SendError::InvalidCloseCode(code.0)));
    }
    conn.send_text("still open").unwrap();
}

#[test]
fn sending_after_the_peers_close_and_after_a_failure() {
    // The peer closed; until the application takes the close event it may still send (RFC 6455
    // §5.5.1), and what it sent goes out before the reply.
    let mut conn = harness::server();
    conn.receive(&harness::masked(0x88, &harness::close_body(1001, b"bye"))).unwrap();
    assert_eq!(conn.state(), State::CloseReceived);
    conn.send_text("last words").unwrap();
    assert_eq!(conn.poll_event(), Some(harness::close(1001, "bye")));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.send_text("too late"), Err(SendError::Closed));
    assert_eq!(conn.ping("p"), Err(SendError::Closed));
    assert_eq!(conn.close_normal(), Err(SendError::Closed));
    let frames = decode_frames(&conn.take_transmit());
    let shape: Vec<_> = frames.iter().map(|f| (f.opcode(), f.payload.clone())).collect();
    assert_eq!(shape, [(OpCode::Text, b"last words".to_vec()), (OpCode::Close, 1001u16.to_be_bytes().to_vec())]);
    // After a failure, once the events before it are taken, nothing can be sent.
    let mut conn = harness::server();
    let mut bytes = harness::masked(0x82, b"ok");
    bytes.extend(harness::unmasked(0x82, b"bad"));
    assert_eq!(conn.receive(&bytes), Err(Error::Protocol(ProtocolError::UnmaskedFrame)));
    // The message before the failure can still be answered...
    assert_eq!(conn.poll_event(), Some(binary(b"ok")));
    conn.send_binary(Bytes::from_static(b"answer")).unwrap();
    assert_eq!(conn.poll_event(), None);
    // ...but not after the events are taken and the close is queued.
    assert_eq!(conn.send_binary(Bytes::from_static(b"more")), Err(SendError::Closed));
    assert_eq!(conn.send_fragment(MessageKind::Text, "x", true), Err(SendError::Closed));
    assert_eq!(conn.pong("p"), Err(SendError::Closed));
    let frames = decode_frames(&conn.take_transmit());
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].opcode(), frames[1].close_code()), (OpCode::Binary, Some(1002)));
}

#[test]
fn oversized_control_payloads_are_refused_in_any_state() {
    let mut conn = harness::server();
    for len in [126, 127, 1000, 65_536] {
        assert_eq!(conn.ping(vec![0; len]), Err(SendError::ControlPayloadTooLong(len)));
        assert_eq!(conn.pong(vec![0; len]), Err(SendError::ControlPayloadTooLong(len)));
    }
    // While a stream is open too, and nothing was queued by any of it.
    conn.send_fragment(MessageKind::Binary, vec![1], false).unwrap();
    let queued = conn.buffered_amount();
    assert_eq!(conn.ping(vec![0; 126]), Err(SendError::ControlPayloadTooLong(126)));
    assert_eq!(conn.buffered_amount(), queued);
    conn.ping(vec![7; 125]).unwrap();
}

#[test]
fn streamed_message_misuse_and_a_close_in_its_middle() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        let c = pair.client();
        c.send_fragment(MessageKind::Text, "stream", false).unwrap();
        // Whole messages and the other kind wait for the stream to end.
        assert_eq!(c.send_text("whole"), Err(SendError::MessageInProgress));
        assert_eq!(c.send_binary(vec![1]), Err(SendError::MessageInProgress));
        assert_eq!(c.send_fragment(MessageKind::Binary, vec![1], true), Err(SendError::MessageInProgress));
        c.send_fragment(MessageKind::Text, "ing", false).unwrap();
        // Closing in the middle of a streamed message is allowed (control frames may come
        // between fragments); the stream can then not be finished.
        c.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
        assert_eq!(c.send_fragment(MessageKind::Text, " done", true), Err(SendError::Closed));
        pair.run();
        // The peer drops the unfinished message and answers the close; nobody failed.
        assert_eq!(pair.server.events, [harness::close(1001, "shutting down")], "{split:?}");
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
        assert_eq!(pair.client().state(), State::Closed);
    }
}

#[test]
fn buffer_full_is_backpressure_and_the_connection_recovers() {
    const LIMIT: usize = 10_000;
    let config = Config::default().max_write_buffer(LIMIT).write_fragment_size(4096);
    let mut conn = Connection::server(config.clone());
    // The limit is checked before a send: one message may overshoot it, the next is refused.
    conn.send_binary(vec![1; 25_000]).unwrap();
    let buffered = conn.buffered_amount();
    assert!(buffered > LIMIT);
    assert_eq!(conn.send_text("x"), Err(SendError::BufferFull { buffered, limit: LIMIT }));
    assert_eq!(
        conn.send_fragment(MessageKind::Binary, vec![2], true),
        Err(SendError::BufferFull { buffered, limit: LIMIT })
    );
    assert_eq!(conn.ping("p"), Err(SendError::BufferFull { buffered, limit: LIMIT }));
    assert_eq!(conn.buffered_amount(), buffered, "refusals queue nothing");
    // Automatic answers and the close are not application data: a ping from the peer is still
    // answered, and the peer can still be told goodbye later.
    conn.receive(&harness::masked(0x89, b"are you there")).unwrap();
    assert_eq!(drain_events(&mut conn), [harness::ping(b"are you there")]);
    // Draining below the limit lifts the back-pressure; the connection works on.
    let mut reader = harness::client();
    let mut events = Vec::new();
    while conn.buffered_amount() > LIMIT {
        let n = conn.transmit().len().min(1000);
        reader.receive(&conn.transmit()[..n]).unwrap();
        conn.advance_transmit(n);
        events.extend(drain_events(&mut reader));
    }
    conn.send_text("after the pressure").unwrap();
    conn.close(CloseCode::NORMAL, "").unwrap();
    reader.receive(&conn.take_transmit()).unwrap();
    events.extend(drain_events(&mut reader));
    assert_eq!(
        events,
        [
            // The pong waited for the message already encoded ahead of it.
            binary(&[1; 25_000]),
            Event::Pong(Bytes::from_static(b"are you there")),
            text("after the pressure"),
            harness::close(1000, ""),
        ]
    );

    // A producer streaming 1 MiB in pieces, honouring BufferFull, never holds much more than
    // the limit, and the peer gets it intact.
    let mut pair = Pair::new(Config::default(), config, Split::Random(3));
    let data = harness::Rng::new(11).bytes(1 << 20);
    let mut sent = 0;
    let mut refusals = 0;
    let mut peak = 0;
    while sent < data.len() {
        let end = (sent + 3000).min(data.len());
        let piece = Bytes::copy_from_slice(&data[sent..end]);
        match pair.server().send_fragment(MessageKind::Binary, piece, end == data.len()) {
            Ok(()) => sent = end,
            Err(SendError::BufferFull { .. }) => {
                refusals += 1;
                pair.run();
            }
            Err(other) => panic!("{other}"),
        }
        peak = peak.max(pair.server().buffered_amount());
    }
    pair.run();
    assert!(refusals > 0, "the producer was pushed back");
    assert!(peak <= LIMIT + 3000 + 64, "peak {peak}");
    let received: Vec<u8> = pair
        .client
        .take_events()
        .into_iter()
        .flat_map(|e| match e {
            Event::Message(m) => m.into_bytes().to_vec(),
            Event::Fragment(Fragment { data, .. }) => data.to_vec(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(received == data, "intact");
}
