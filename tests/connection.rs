//! Behaviour of a `Connection` through the public API: messages of every size, fragmentation,
//! streaming in both directions, control frames, API misuse and the output and input paths.
//! Every test asserts exact outcomes: events, error variants, bytes on the wire and states.

mod harness;

use bytes::Bytes;
use harness::{
    Pair, Rng, Split, assert_server_fails, binary, close, close_code_in, decode_frames, drain_events, feed_all, masked,
    ping, pong, reassemble, server, text, text_of_len, unmasked,
};
use wscore::{
    CloseCode, CloseFrame, Config, Connection, Error, Event, FrameHeader, Message, MessageKind, OpCode, ProtocolError,
    ReceiveMode, SendError, State,
};

// ----- data messages -----

const SIZES: [usize; 12] = [0, 1, 2, 125, 126, 127, 1000, 4096, 65535, 65536, 65537, 200_000];

#[test]
fn binary_messages_of_many_sizes_both_ways() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        let mut rng = Rng::new(1);
        let messages: Vec<Vec<u8>> = SIZES.iter().map(|&n| rng.bytes(n)).collect();
        for m in &messages {
            pair.client().send_binary(m.clone()).unwrap();
            pair.server().send_binary(m.clone()).unwrap();
        }
        pair.run();
        let expected: Vec<Event> = messages.iter().map(|m| binary(m)).collect();
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.error, None);
        assert_eq!(pair.server.error, None);
        assert_eq!(pair.client().state(), State::Open);
        assert_eq!(pair.server().buffered_received(), 0);
    }
}

#[test]
fn text_messages_of_many_sizes_both_ways() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        let messages: Vec<String> = SIZES.iter().map(|&n| text_of_len(n, n as u64)).collect();
        for (m, &n) in messages.iter().zip(&SIZES) {
            assert_eq!(m.len(), n);
            pair.client().send_text(m.clone()).unwrap();
            pair.server().send(Message::Text(m.clone().into())).unwrap();
        }
        pair.run();
        let expected: Vec<Event> = messages.iter().map(|m| text(m)).collect();
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
    }
}

#[test]
fn length_encodings_on_the_wire() {
    // 7-bit, 16-bit and 64-bit lengths at their boundaries, as a server writes them.
    for (len, header) in [
        (0, vec![0x82, 0x00]),
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0, 126]),
        (65535, vec![0x82, 126, 0xff, 0xff]),
        (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut server = server();
        server.send_binary(vec![0xAB; len]).unwrap();
        let out = server.take_transmit();
        assert_eq!(&out[..header.len()], &header[..], "{len}");
        assert_eq!(out.len(), header.len() + len);
    }
}

#[test]
fn message_accessors() {
    let m = Message::Text("héllo".into());
    assert_eq!((m.kind(), m.len(), m.is_empty()), (MessageKind::Text, 6, false));
    assert_eq!(m.as_bytes(), "héllo".as_bytes());
    let m = Message::Binary(Bytes::new());
    assert_eq!((m.kind(), m.is_empty()), (MessageKind::Binary, true));
    assert_eq!(m.into_bytes(), Bytes::new());
}

// ----- fragmentation -----

#[test]
fn fragmented_message_with_interleaved_pings() {
    let mut bytes = masked(0x01, b"Hel");
    bytes.extend(masked(0x89, b"p1"));
    bytes.extend(masked(0x00, "lo wö".as_bytes()));
    bytes.extend(masked(0x89, b"p2"));
    bytes.extend(masked(0x00, b""));
    bytes.extend(masked(0x80, "rld".as_bytes()));
    for split in Split::all() {
        let (result, events, out, conn) = feed_all(server(), &bytes, split);
        assert_eq!(result, Ok(()));
        assert_eq!(events, [ping(b"p1"), ping(b"p2"), text("Hello wörld")]);
        let frames = decode_frames(&out);
        let pongs: Vec<_> = frames.iter().map(|f| (f.opcode(), &f.payload[..])).collect();
        assert_eq!(
            pongs,
            [(OpCode::Pong, &b"p1"[..]), (OpCode::Pong, &b"p2"[..])],
            "each ping answered as it came, nothing backed up"
        );
        assert_eq!(conn.state(), State::Open);
    }
}

#[test]
fn fragmented_binary_and_empty_fragments() {
    // An empty first fragment, data only in the last one, then a message of empty fragments.
    let mut bytes = masked(0x02, b"");
    bytes.extend(masked(0x00, b""));
    bytes.extend(masked(0x80, b"\x00\x01"));
    bytes.extend(masked(0x01, b""));
    bytes.extend(masked(0x80, b""));
    for split in Split::all() {
        let (result, events, _, _) = feed_all(server(), &bytes, split);
        assert_eq!(result, Ok(()));
        assert_eq!(events, [binary(&[0, 1]), text("")]);
    }
}

#[test]
fn fragment_sequencing_violations() {
    assert_server_fails(&masked(0x80, b"x"), ProtocolError::UnexpectedContinuation, 1002, &[]);
    let mut bytes = masked(0x01, b"a");
    bytes.extend(masked(0x81, b"b"));
    assert_server_fails(&bytes, ProtocolError::ExpectedContinuation, 1002, &[]);
    let mut bytes = masked(0x82, b"whole");
    bytes.extend(masked(0x00, b"more"));
    assert_server_fails(&bytes, ProtocolError::UnexpectedContinuation, 1002, &[binary(b"whole")]);
}

#[test]
fn send_fragment_streams_a_message() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        // Pieces cut inside the two-byte 'é' and the four-byte emoji.
        let whole = "stréamed 😀 text";
        let bytes = whole.as_bytes();
        let cuts = [0, 4, 11, 13, bytes.len()];
        let client = pair.client();
        for w in cuts.windows(2) {
            let last = w[1] == bytes.len();
            let piece = Bytes::copy_from_slice(&bytes[w[0]..w[1]]);
            client.send_fragment(MessageKind::Text, piece, last).unwrap();
        }
        client.send_fragment(MessageKind::Binary, vec![1, 2], false).unwrap();
        client.send_fragment(MessageKind::Binary, vec![], false).unwrap();
        client.send_fragment(MessageKind::Binary, vec![3], true).unwrap();
        pair.run();
        assert_eq!(pair.server.take_events(), [text(whole), binary(&[1, 2, 3])]);
        let frames = pair.client.frames();
        let shape: Vec<_> = frames.iter().map(|f| (f.opcode(), f.header.fin)).collect();
        assert_eq!(
            shape,
            [
                (OpCode::Text, false),
                (OpCode::Continuation, false),
                (OpCode::Continuation, false),
                (OpCode::Continuation, true),
                (OpCode::Binary, false),
                (OpCode::Continuation, false),
                (OpCode::Continuation, true),
            ]
        );
    }
}

#[test]
fn send_fragment_refuses_to_mix_messages() {
    let mut server = server();
    server.send_fragment(MessageKind::Text, "a", false).unwrap();
    assert_eq!(server.send_text("b"), Err(SendError::MessageInProgress));
    assert_eq!(server.send_binary(vec![1]), Err(SendError::MessageInProgress));
    assert_eq!(server.send_fragment(MessageKind::Binary, vec![1], true), Err(SendError::MessageInProgress));
    // Control frames still go out; the message can be finished, then others sent.
    server.ping("p").unwrap();
    server.send_fragment(MessageKind::Text, "c", true).unwrap();
    server.send_text("d").unwrap();
    assert_eq!(&server.take_transmit()[..], b"\x01\x01a\x89\x01p\x80\x01c\x81\x01d");
}

#[test]
fn automatic_fragmentation_by_write_fragment_size() {
    for split in Split::all() {
        let config = Config::default().write_fragment_size(1000);
        let mut pair = Pair::new(config.clone(), config, split);
        let data = Rng::new(5).bytes(3500);
        pair.client().send_binary(data.clone()).unwrap();
        pair.server().send_binary(data.clone()).unwrap();
        pair.run();
        assert_eq!(pair.server.take_events(), [binary(&data)]);
        assert_eq!(pair.client.take_events(), [binary(&data)]);
        for side in [&pair.client, &pair.server] {
            let frames = side.frames();
            let shape: Vec<_> = frames.iter().map(|f| (f.opcode(), f.header.fin, f.payload.len())).collect();
            assert_eq!(
                shape,
                [
                    (OpCode::Binary, false, 1000),
                    (OpCode::Continuation, false, 1000),
                    (OpCode::Continuation, false, 1000),
                    (OpCode::Continuation, true, 500),
                ]
            );
        }
    }
}

#[test]
fn control_frame_gets_out_between_fragments_of_a_large_message() {
    for split in Split::all() {
        let config = Config::default().write_fragment_size(16 << 10);
        let mut pair = Pair::new(config.clone(), config, split);
        let data = Rng::new(9).bytes(1 << 20);
        pair.server().send_binary(data.clone()).unwrap();
        // Queued after the message, but the message is framed lazily: the ping jumps ahead of
        // the frames not yet encoded.
        pair.server().ping("urgent").unwrap();
        pair.run();
        assert_eq!(pair.client.take_events(), [ping(b"urgent"), binary(&data)], "{split:?}");
        let frames = pair.server.frames();
        let at = frames.iter().position(|f| f.opcode() == OpCode::Ping).expect("ping sent");
        assert!(at > 0 && at < frames.len() - 1, "ping at {at} of {}", frames.len());
        assert_eq!(frames.len(), 64 + 1);
        // The client's pong came back.
        assert_eq!(pair.server.take_events(), [pong(b"urgent")]);
    }
}

// ----- streaming receive -----

fn stream_config() -> Config {
    Config::default().receive_mode(ReceiveMode::Stream)
}

#[test]
fn stream_mode_delivers_pieces_with_markers() {
    let mut bytes = masked(0x81, b"single");
    bytes.extend(masked(0x01, "fra".as_bytes()));
    bytes.extend(masked(0x89, b"ping"));
    bytes.extend(masked(0x80, "gmenté".as_bytes()));
    bytes.extend(masked(0x82, b""));
    let make = || Connection::server(stream_config());
    // Whole: one piece per frame.
    let (result, events, _, _) = feed_all(make(), &bytes, Split::Whole);
    assert_eq!(result, Ok(()));
    let piece = |kind, data: &'static [u8], first, last| {
        Event::Fragment(wscore::Fragment { kind, data: Bytes::from_static(data), first, last })
    };
    assert_eq!(
        events,
        [
            piece(MessageKind::Text, b"single", true, true),
            piece(MessageKind::Text, b"fra", true, false),
            ping(b"ping"),
            piece(MessageKind::Text, "gmenté".as_bytes(), false, true),
            piece(MessageKind::Binary, b"", true, true),
        ]
    );
    // Any split: more pieces, the same messages.
    for split in Split::all() {
        let (result, events, _, _) = feed_all(make(), &bytes, split);
        assert_eq!(result, Ok(()));
        assert_eq!(reassemble(&events), [text("single"), ping(b"ping"), text("fragmenté"), binary(b"")], "{split:?}");
    }
}

#[test]
fn stream_mode_one_byte_at_a_time_gives_one_byte_pieces() {
    let bytes = masked(0x82, &[1, 2, 3]);
    let (result, events, _, _) = feed_all(Connection::server(stream_config()), &bytes, Split::OneByte);
    assert_eq!(result, Ok(()));
    let pieces: Vec<_> = events
        .iter()
        .map(|e| match e {
            Event::Fragment(f) => (f.data.to_vec(), f.first, f.last),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(pieces, [(vec![1], true, false), (vec![2], false, false), (vec![3], false, true)]);
}

#[test]
fn stream_mode_keeps_memory_bounded_for_a_big_message() {
    let size = 8 << 20;
    let server_config = stream_config().max_message_size(usize::MAX);
    let client_config = Config::default().write_fragment_size(1 << 20);
    let mut pair = Pair::new(client_config, server_config, Split::Whole);
    let mut rng = Rng::new(11);
    let data = rng.bytes(size);
    pair.client().send_binary(data.clone()).unwrap();
    let mut received = Vec::with_capacity(size);
    let mut pieces = 0;
    let mut last_seen = false;
    while pair.client().wants_write() {
        // Reads of up to 4 KiB, as from a socket.
        let chunk = pair.client().transmit();
        let n = chunk.len().min(rng.range(1, 4096));
        let data = chunk[..n].to_vec();
        pair.client().advance_transmit(n);
        pair.server().receive(&data).unwrap();
        assert!(
            pair.server().buffered_received() <= FrameHeader::MAX_LEN,
            "buffered {} bytes",
            pair.server().buffered_received()
        );
        while let Some(event) = pair.server().poll_event() {
            let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
            assert_eq!(f.kind, MessageKind::Binary);
            assert_eq!(f.first, pieces == 0);
            assert!(!last_seen);
            last_seen = f.last;
            pieces += 1;
            received.extend_from_slice(&f.data);
        }
    }
    assert!(last_seen);
    assert!(pieces > 8);
    assert!(received == data, "reassembled message differs");
}

#[test]
fn stream_mode_validates_utf8_across_pieces() {
    // "€" split over two frames and many reads is fine; a bad continuation byte fails.
    let mut ok = masked(0x01, b"\xe2");
    ok.extend(masked(0x80, b"\x82\xac"));
    for split in Split::all() {
        let (result, events, _, _) = feed_all(Connection::server(stream_config()), &ok, split);
        assert_eq!(result, Ok(()));
        assert_eq!(reassemble(&events), [text("€")]);
    }
    let mut bad = masked(0x01, b"\xe2");
    bad.extend(masked(0x80, b"\x28\xac"));
    let (result, events, out, _) = feed_all(Connection::server(stream_config()), &bad, Split::Whole);
    assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(events.len(), 1, "the first piece was valid so far");
    assert_eq!(close_code_in(&out), Some(Some(1007)));
}

// ----- pings and pongs -----

#[test]
fn ping_flood_keeps_only_the_newest_pong_when_the_peer_does_not_read() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        // The server has a large message backed up: the client does not read.
        let data = Rng::new(2).bytes(300_000);
        pair.server().send_binary(data.clone()).unwrap();
        pair.client.reading = false;
        for i in 0..50u8 {
            pair.client().ping(vec![i]).unwrap();
        }
        pair.run();
        assert_eq!(pair.server.events.len(), 50, "the app sees every ping");
        assert_eq!(pair.server.events[49], ping(&[49]));
        // Now the client reads.
        pair.client.reading = true;
        pair.run();
        assert_eq!(pair.client.take_events(), [pong(&[49]), binary(&data)], "{split:?}");
        let pongs = pair.server.frames().iter().filter(|f| f.opcode() == OpCode::Pong).count();
        assert_eq!(pongs, 1);
    }
}

#[test]
fn every_ping_is_answered_when_the_peer_reads() {
    let mut pair = Pair::default_with(Split::Random(3));
    for i in 0..5u8 {
        pair.client().ping(vec![i; usize::from(i)]).unwrap();
        pair.run();
    }
    let expected: Vec<Event> = (0..5u8).map(|i| pong(&vec![i; usize::from(i)])).collect();
    assert_eq!(pair.client.take_events(), expected);
}

#[test]
fn auto_pong_can_be_turned_off() {
    let server_config = Config::default().auto_pong(false);
    let mut pair = Pair::new(Config::default(), server_config, Split::Whole);
    pair.client().ping("hello?").unwrap();
    pair.run();
    assert_eq!(pair.server.take_events(), [ping(b"hello?")]);
    assert!(pair.server.wire.is_empty(), "no automatic pong");
    pair.server().pong("hello?").unwrap();
    pair.server().pong("unsolicited").unwrap();
    pair.run();
    assert_eq!(pair.client.take_events(), [pong(b"hello?"), pong(b"unsolicited")]);
}

#[test]
fn control_frame_limits() {
    let mut big = masked(0x89, &[0; 125]);
    assert_eq!(feed_all(server(), &big, Split::Whole).0, Ok(()));
    // A 126-byte ping needs the 16-bit length form: rejected from the header.
    big = masked(0x89, &[0; 126]);
    assert_server_fails(&big[..2], ProtocolError::ControlFrameTooLong, 1002, &[]);
    assert_server_fails(&masked(0x09, b""), ProtocolError::FragmentedControlFrame, 1002, &[]);
    assert_server_fails(&masked(0x0A, b""), ProtocolError::FragmentedControlFrame, 1002, &[]);
}

// ----- API misuse -----

#[test]
fn send_errors_leave_the_connection_usable() {
    let mut pair = Pair::default_with(Split::Random(12));
    let c = pair.client();
    assert_eq!(c.ping(vec![0; 126]), Err(SendError::ControlPayloadTooLong(126)));
    assert_eq!(c.pong(vec![0; 200]), Err(SendError::ControlPayloadTooLong(200)));
    let long = "r".repeat(124);
    assert_eq!(c.close(CloseCode::NORMAL, &long), Err(SendError::ReasonTooLong(124)));
    for code in [1005, 1006, 1015, 0, 1004, 2000, 5000] {
        assert_eq!(c.close(CloseCode(code), ""), Err(SendError::InvalidCloseCode(code)));
    }
    assert_eq!(c.state(), State::Open);
    assert!(!c.wants_write(), "nothing was queued");
    c.ping(vec![1; 125]).unwrap();
    c.send_text("still works").unwrap();
    pair.run();
    assert_eq!(pair.server.events, [ping(&[1; 125]), text("still works")]);
    assert_eq!(pair.client.events, [pong(&[1; 125])]);
    // The longest reason is allowed.
    pair.client().close(CloseCode::NORMAL, &"r".repeat(123)).unwrap();
    // After closing, nothing else may be sent.
    let c = pair.client();
    assert_eq!(c.send_text("late"), Err(SendError::Closed));
    assert_eq!(c.send_binary(vec![1]), Err(SendError::Closed));
    assert_eq!(c.send_fragment(MessageKind::Binary, vec![1], true), Err(SendError::Closed));
    assert_eq!(c.ping("p"), Err(SendError::Closed));
    assert_eq!(c.pong("p"), Err(SendError::Closed));
    assert_eq!(c.close_normal(), Err(SendError::Closed));
    pair.run();
    assert_eq!(pair.server.events[2], close(1000, &"r".repeat(123)));
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
}

#[test]
fn max_write_buffer() {
    let config = Config::default().max_write_buffer(1000);
    let mut conn = Connection::server(config);
    conn.send_binary(vec![0; 1001]).unwrap();
    let err = conn.send_text("more").unwrap_err();
    assert!(matches!(err, SendError::BufferFull { limit: 1000, .. }), "{err:?}");
    assert!(matches!(conn.ping("p"), Err(SendError::BufferFull { .. })));
    // Writing out frees the buffer.
    let _ = conn.take_transmit();
    conn.send_text("more").unwrap();
}

// ----- UTF-8 -----

// ----- output and input paths -----

#[test]
fn take_transmit_and_partial_writes() {
    let mut conn = server();
    assert!(conn.transmit().is_empty());
    assert!(!conn.wants_write());
    conn.send_text("abc").unwrap();
    conn.send_binary(vec![9; 10_000]).unwrap();
    let expected_len = 5 + 4 + 10_000;
    assert_eq!(conn.buffered_amount(), expected_len);
    // A partial write, then the rest in one buffer.
    let first = conn.transmit()[..3].to_vec();
    conn.advance_transmit(3);
    assert_eq!(first, b"\x81\x03a");
    let rest = conn.take_transmit();
    assert_eq!(rest.len(), expected_len - 3);
    assert_eq!(&rest[..2], b"bc");
    assert!(conn.transmit().is_empty());
    assert!(!conn.wants_write());
    assert_eq!(conn.buffered_amount(), 0);
    assert_eq!(conn.take_transmit(), Bytes::new());
    // Advancing past the end is harmless.
    conn.advance_transmit(100);
    assert!(!conn.wants_write());
}

#[test]
fn zero_copy_receive_path() {
    let config = Config::default().read_buffer_size(8);
    let mut conn = Connection::server(config);
    let bytes = masked(0x81, "zero copy ✓".as_bytes());
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let buf = conn.receive_buffer();
        assert!(buf.len() >= 8);
        let n = buf.len().min(rest.len()).min(5);
        buf[..n].copy_from_slice(&rest[..n]);
        conn.commit_received(n).unwrap();
        rest = &rest[n..];
    }
    assert_eq!(drain_events(&mut conn), [text("zero copy ✓")]);
    // Room offered but not used is forgotten; committing zero is a no-op.
    let _ = conn.receive_buffer();
    conn.commit_received(0).unwrap();
    assert_eq!(conn.buffered_received(), 0);
    let buf = conn.receive_buffer();
    buf[0] = 0xFF; // never committed
    conn.receive(&masked(0x82, b"ok")).unwrap();
    assert_eq!(drain_events(&mut conn), [binary(b"ok")]);
    // Mixing both paths on the same frame: text is taken as it arrives (header parsed, the
    // payload so far validated); a short binary frame waits to be taken whole.
    let cases = [
        (masked(0x81, &[b'a'; 40]), 4, "payload bytes held, header parsed", text(&"a".repeat(40))),
        (masked(0x82, &[5; 40]), 10, "the whole frame held so far", binary(&[5; 40])),
    ];
    for (frame, held, what, event) in cases {
        conn.receive(&frame[..10]).unwrap();
        assert_eq!(conn.buffered_received(), held, "{what}");
        let buf = conn.receive_buffer();
        buf[..8].copy_from_slice(&frame[10..18]);
        conn.commit_received(8).unwrap();
        conn.receive(&frame[18..]).unwrap();
        assert_eq!(drain_events(&mut conn), [event]);
    }
}

#[test]
fn text_fails_at_the_first_invalid_byte_however_it_is_split() {
    let good = "κόσμε, ".repeat(20);
    let frame = masked(0x81, good.as_bytes());
    for split in [1, 6, 7, 8, 9, 71, 72, 100, frame.len() - 1] {
        let mut conn = server();
        conn.receive(&frame[..split]).unwrap();
        assert_eq!(drain_events(&mut conn), []);
        for byte in &frame[split..] {
            conn.receive(&[*byte]).unwrap();
        }
        assert_eq!(drain_events(&mut conn), [text(&good)]);
    }
    // The error comes with the byte that makes the text invalid, not with the frame's end.
    for at in [0, 50, 150] {
        let mut bad = good.clone().into_bytes();
        bad[at] = 0xFF;
        let frame = masked(0x81, &bad);
        let mut conn = server();
        conn.receive(&frame[..8 + at]).unwrap();
        let err = conn.receive(&frame[8 + at..8 + at + 1]).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8));
    }
    // So does an unfinished sequence's invalid continuation, once it is there.
    for pad in [0, 100] {
        let mut payload = vec![b'a'; pad];
        payload.extend_from_slice(b"ab\xE2\x82(cdefgh");
        let frame = masked(0x81, &payload);
        let header = frame.len() - payload.len();
        let mut conn = server();
        conn.receive(&frame[..header + pad + 4]).unwrap();
        let err = conn.receive(&frame[header + pad + 4..header + pad + 5]).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8));
    }
}

#[test]
fn large_text_reads_are_validated_across_ascii_and_unfinished_code_points() {
    // Reads of 256 bytes and more of a text frame are checked for ASCII while copied; an
    // all-ASCII read after an unfinished code point must still fail, one that finishes it or
    // carries valid multi-byte text must pass.
    let mut good = "a".repeat(300).into_bytes();
    good.extend_from_slice("€".as_bytes());
    good.extend_from_slice(&[b'b'; 600]);
    good.extend_from_slice("κόσμε".as_bytes());
    good.extend_from_slice(&[b'c'; 400]);
    let frame = masked(0x81, &good);
    let header = frame.len() - good.len();
    for split in [header + 301, header + 302, header + 303, header + 600] {
        let mut conn = server();
        conn.receive(&frame[..split]).unwrap();
        for read in frame[split..].chunks(300) {
            conn.receive(read).unwrap();
        }
        assert_eq!(drain_events(&mut conn), [text(std::str::from_utf8(&good).unwrap())], "split {split}");
    }
    // "€" cut short by ASCII: the read of ASCII after its first byte fails, before the frame
    // ends.
    let mut bad = "a".repeat(300).into_bytes();
    bad.push(0xE2);
    bad.extend_from_slice(&[b'b'; 600]);
    let frame = masked(0x81, &bad);
    let mut conn = server();
    conn.receive(&frame[..header + 301]).unwrap();
    let err = conn.receive(&frame[header + 301..header + 601]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8));
}

#[test]
fn text_fed_whole_is_validated_whatever_its_ascii_check_while_copied_found() {
    // Over 16 KiB fed at once is unmasked while copied, and text of 256 bytes and more checked
    // for ASCII on the way: frames found ASCII are not validated again, everything else is —
    // after multi-byte text, after an unfinished code point, with the peer's own zero key.
    let a = |n: usize| "a".repeat(n);
    let multi = format!("{}κόσμε{}", a(300), a(300));
    let valid = [a(300), multi.clone(), a(5000), a(70_000), a(20), a(17_000)];
    let input: Vec<u8> = valid.iter().flat_map(|m| masked(0x81, m.as_bytes())).collect();
    let mut conn = server();
    conn.receive(&input).unwrap();
    assert_eq!(drain_events(&mut conn), valid.iter().map(|m| text(m)).collect::<Vec<_>>());

    let with_byte = |n: usize, byte: u8| {
        let mut payload = a(n).into_bytes();
        payload[n / 2] = byte;
        payload
    };
    let before = masked(0x81, a(17_000).as_bytes());
    let mut zero_key = vec![0x81, 0x80 | 126, 0x01, 0x2C, 0, 0, 0, 0];
    zero_key.extend_from_slice(&with_byte(300, 0xFF));
    for (bad, events) in [
        (masked(0x81, &with_byte(300, 0xFF)), vec![text(&a(17_000))]),
        // Too short to be unmasked while copied, so never checked for ASCII.
        (masked(0x81, &with_byte(20, 0xFF)), vec![text(&a(17_000))]),
        (masked(0x81, &with_byte(70_000, 0xC0)), vec![text(&a(17_000))]),
        (zero_key, vec![text(&a(17_000))]),
    ] {
        assert_server_fails(&[before.clone(), bad].concat(), ProtocolError::InvalidUtf8, 1007, &events);
    }
    // A first fragment ending inside "€" (E2 82 AC): an ASCII continuation is invalid (even
    // if a later one brings the rest of it), one that finishes the code point is valid.
    let first = masked(0x01, &[b'x', 0xE2, 0x82]);
    let ascii_then_end = [masked(0x00, a(17_000).as_bytes()), masked(0x80, &[0xAC])].concat();
    assert_server_fails(&[first.clone(), ascii_then_end].concat(), ProtocolError::InvalidUtf8, 1007, &[]);
    let mut rest = vec![0xAC];
    rest.extend_from_slice(a(17_000).as_bytes());
    let mut conn = server();
    conn.receive(&[first, masked(0x80, &rest)].concat()).unwrap();
    assert_eq!(drain_events(&mut conn), [text(&format!("x€{}", a(17_000)))]);
}

#[test]
fn frames_checked_while_copied_fail_where_the_general_path_would() {
    // Over 16 KiB fed at once: whole frames of 256 bytes and more are unmasked and checked as
    // they are copied in, and a run of them that are simply messages is handed out without a
    // second look. Whatever follows such a run, valid or breaking a rule, comes out as it
    // would from any other split, with the run's messages before it.
    let run_len = 34;
    let run: Vec<u8> = (0..run_len).flat_map(|i| masked(0x82, &[i as u8; 500])).collect();
    let before: Vec<Event> = (0..run_len).map(|i| binary(&[i as u8; 500])).collect();
    let multi = format!("{}κόσμε", "a".repeat(400));
    let ascii = "a".repeat(300);
    let after = [
        masked(0x81, multi.as_bytes()),
        masked(0x81, ascii.as_bytes()),
        masked(0x02, &[1; 300]),
        masked(0x89, b"hi"),
        masked(0x80, &[2; 300]),
        masked(0x82, &[3; 300]),
    ];
    let mut expected = before.clone();
    expected.extend([
        text(&multi),
        text(&ascii),
        ping(b"hi"),
        binary(&[[1; 300], [2; 300]].concat()),
        binary(&[3; 300]),
    ]);
    let mut conn = server();
    conn.receive(&[run.clone(), after.concat()].concat()).unwrap();
    assert_eq!(drain_events(&mut conn), expected);

    // A 300-byte payload with a 64-bit length: not minimal.
    let mut non_minimal = vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0x01, 0x2C, 0, 0, 0, 0];
    non_minimal.extend_from_slice(&[0; 300]);
    let mut invalid_after_multibyte = masked(0x81, multi.as_bytes());
    invalid_after_multibyte.extend(masked(0x81, &[0xFF; 300]));
    let mut events_then_invalid = before.clone();
    events_then_invalid.push(text(&multi));
    for (bad, error, code, events) in [
        (masked(0x81, &[0xFF; 300]), ProtocolError::InvalidUtf8, 1007, &before),
        (invalid_after_multibyte, ProtocolError::InvalidUtf8, 1007, &events_then_invalid),
        (masked(0xC2, &[0; 300]), ProtocolError::ReservedBits, 1002, &before),
        (unmasked(0x82, &[0; 300]), ProtocolError::UnmaskedFrame, 1002, &before),
        (masked(0x80, &[0; 300]), ProtocolError::UnexpectedContinuation, 1002, &before),
        (
            masked(0x02, &[0; 300]).into_iter().chain(masked(0x82, &[0; 300])).collect(),
            ProtocolError::ExpectedContinuation,
            1002,
            &before,
        ),
        (non_minimal, ProtocolError::NonMinimalLength(300), 1002, &before),
    ] {
        assert_server_fails(&[run.clone(), bad].concat(), error, code, events);
    }
    // Over the frame size limit, right after a run within it.
    fn limited() -> Connection {
        Connection::server(Config::default().max_frame_size(600))
    }
    harness::assert_fails(
        limited,
        &[run.clone(), masked(0x82, &[0; 601])].concat(),
        ProtocolError::FrameTooLarge { size: 601, limit: 600 },
        1009,
        &before,
    );
}

#[test]
fn text_unmasked_in_place_is_validated_whatever_its_ascii_check_found() {
    // Unmasking text in the buffer also checks it for ASCII, and ASCII after a complete code
    // point is not validated again: at every length around the word, tail and vector
    // boundaries, with one byte that is not ASCII (valid or not) at its start, middle or end,
    // however the input is cut.
    let lengths = (1..=140).chain([255, 256, 1000, 1460, 5000]);
    for len in lengths {
        let positions = if len < 3 { vec![0] } else { vec![0, len / 2, len - 2] };
        for at in positions {
            let mut valid = vec![b'a'; len];
            if len >= 2 {
                valid[at..at + 2].copy_from_slice("é".as_bytes());
            }
            let mut invalid = vec![b'a'; len];
            invalid[at] = 0xFF;
            let ok = String::from_utf8(valid.clone()).unwrap();
            let ascii = "a".repeat(len);
            let input = [masked(0x81, &valid), masked(0x81, ascii.as_bytes())].concat();
            for read in [1460, 100, 7] {
                let mut conn = server();
                for piece in input.chunks(read) {
                    conn.receive(piece).unwrap();
                }
                assert_eq!(drain_events(&mut conn), [text(&ok), text(&ascii)], "len {len} at {at} reads {read}");
            }
            let bad = [masked(0x81, ascii.as_bytes()), masked(0x81, &invalid)].concat();
            assert_server_fails(&bad, ProtocolError::InvalidUtf8, 1007, &[text(&ascii)]);
        }
    }
    // A piece ending inside "€" (E2 82 AC), then an ASCII piece, then the code point's last
    // byte, within one frame and across fragments: invalid, however it is cut.
    let mut payload = b"x\xE2\x82".to_vec();
    payload.extend_from_slice(&[b'a'; 3000]);
    payload.push(0xAC);
    assert_server_fails(&masked(0x81, &payload), ProtocolError::InvalidUtf8, 1007, &[]);
    let fragments = [masked(0x01, b"x\xE2\x82"), masked(0x00, &[b'a'; 3000]), masked(0x80, &[0xAC])].concat();
    assert_server_fails(&fragments, ProtocolError::InvalidUtf8, 1007, &[]);
}

#[test]
fn a_short_binary_frame_waits_whole_but_fails_at_its_header() {
    // Waiting: nothing of it is taken until all of it is there, however it is split.
    let frame = masked(0x82, &[7; 300]);
    for split in [1, 2, 6, 7, 100, 305] {
        let mut conn = server();
        conn.receive(&frame[..split]).unwrap();
        assert_eq!(conn.buffered_received(), split);
        assert_eq!(drain_events(&mut conn), []);
        conn.receive(&frame[split..]).unwrap();
        assert_eq!(drain_events(&mut conn), [binary(&[7; 300])]);
        assert_eq!(conn.buffered_received(), 0);
    }
    // A header that breaks a rule is an error as soon as it is there, not when the frame is.
    let too_large = masked(0x82, &[0; 300]);
    let mut conn = Connection::server(Config::default().max_message_size(200));
    let err = conn.receive(&too_large[..8]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::MessageTooLarge { limit: 200 }));
    let mut conn = server();
    let err = conn.receive(&unmasked(0x82, &[0; 300])[..4]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::UnmaskedFrame));
    let mut reserved = masked(0x82, &[0; 300]);
    reserved[0] |= 0x40;
    let mut conn = server();
    let err = conn.receive(&reserved[..8]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::ReservedBits));
}

#[test]
fn zero_copy_receive_after_failure_returns_the_error() {
    let mut conn = server();
    let err = conn.receive(&unmasked(0x81, b"x")).unwrap_err();
    let buf = conn.receive_buffer();
    buf[..2].copy_from_slice(&masked(0x81, b"")[..2]);
    assert_eq!(conn.commit_received(2), Err(err));
}

#[test]
fn errors_are_sticky() {
    let mut conn = server();
    let err = Error::Protocol(ProtocolError::UnmaskedFrame);
    assert_eq!(conn.receive(&unmasked(0x81, b"bad")), Err(err.clone()));
    let close_frame = conn.take_transmit();
    assert_eq!(close_code_in(&close_frame), Some(Some(1002)));
    // Every later input returns the same error; nothing more is written or reported.
    assert_eq!(conn.receive(&masked(0x81, b"good")), Err(err.clone()));
    assert_eq!(conn.receive(&[]), Err(err.clone()));
    assert_eq!(conn.commit_received(0), Err(err.clone()));
    assert_eq!(conn.receive_eof(), Err(err.clone()));
    assert_eq!(conn.error(), Some(&err));
    assert_eq!(conn.state(), State::Failed);
    assert_eq!(conn.poll_event(), None);
    assert!(!conn.wants_write());
    assert_eq!(conn.send_text("x"), Err(SendError::Closed));
    assert_eq!(conn.close_normal(), Err(SendError::Closed));
    assert!(conn.should_close_transport());
}

#[test]
fn failure_sends_the_close_frame_after_what_was_queued() {
    let mut conn = server();
    // Far more than is encoded ahead.
    let data = vec![3; 1 << 20];
    conn.send_binary(data.clone()).unwrap();
    let err = conn.receive(&unmasked(0x81, b"bad")).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::UnmaskedFrame));
    assert_eq!(conn.send_text("x"), Err(SendError::Closed));
    let frames = decode_frames(&conn.take_transmit());
    let (close_frame, data_frames) = frames.split_last().unwrap();
    assert_eq!(close_frame.close_code(), Some(1002));
    let sent: Vec<u8> = data_frames.iter().flat_map(|f| f.payload.clone()).collect();
    assert!(sent == data, "the queued message went out whole before the close frame");
    assert!(conn.should_close_transport());
}

#[test]
fn events_before_a_failure_can_be_answered_before_the_close_frame() {
    let mut bytes = masked(0x81, b"echo me");
    bytes.extend(unmasked(0x81, b"bad"));
    let mut conn = server();
    let err = Error::Protocol(ProtocolError::UnmaskedFrame);
    assert_eq!(conn.receive(&bytes), Err(err.clone()));
    assert_eq!(conn.state(), State::Failed);
    assert!(!conn.should_close_transport(), "the close frame waits for the events");
    // An echo server answers the message it got before the failure.
    let Some(Event::Message(message)) = conn.poll_event() else { panic!("message expected") };
    conn.send(message).unwrap();
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.send_text("too late"), Err(SendError::Closed));
    let frames = decode_frames(&conn.take_transmit());
    let shape: Vec<_> = frames.iter().map(|f| (f.opcode(), f.payload.clone())).collect();
    assert_eq!(shape[0], (OpCode::Text, b"echo me".to_vec()));
    assert_eq!(frames[1].close_code(), Some(1002));
    assert_eq!(frames.len(), 2);
    assert!(conn.should_close_transport());
    assert_eq!(conn.receive(b""), Err(err));
}

#[test]
fn events_before_a_violation_are_delivered() {
    let mut bytes = masked(0x81, b"one");
    bytes.extend(masked(0x89, b"p"));
    bytes.extend(masked(0x82, b"two"));
    bytes.extend(unmasked(0x81, b"bad"));
    bytes.extend(masked(0x81, b"never"));
    assert_server_fails(&bytes, ProtocolError::UnmaskedFrame, 1002, &[text("one"), ping(b"p"), binary(b"two")]);
}

#[test]
fn close_frame_struct_and_codes() {
    let frame = CloseFrame::new(CloseCode::POLICY, "policy");
    assert_eq!(frame.code, CloseCode(1008));
    assert_eq!(frame.reason, "policy");
    assert_eq!(u16::from(CloseCode::TOO_BIG), 1009);
    assert_eq!(CloseCode::from(1011), CloseCode::INTERNAL);
}

#[test]
fn large_frames_arrive_intact_in_large_reads_that_cut_them() {
    // A read of more than 16 KiB that starts a frame it does not hold takes the frame's header
    // first, then copies the rest into the room the header reserved (unmasked as it is copied,
    // on a server). ASCII and multi-byte text (reads cut code points) and binary, each with a
    // small frame after it, both roles, both receive modes.
    let text = "wscore: é, €, 😀. ".repeat(20_000);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    for (b0, payload, event) in [(0x81, text.as_bytes(), harness::text(&text)), (0x82, &data[..], binary(&data))] {
        for role_is_server in [true, false] {
            for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
                for read in [20_000, 65_536, 100_003] {
                    let config = Config::default().receive_mode(mode);
                    let (mut conn, key) = if role_is_server {
                        (Connection::server(config), Some(harness::MASK))
                    } else {
                        (Connection::client(config), None)
                    };
                    let mut wire = harness::raw_frame(b0, key, payload);
                    wire.extend(harness::raw_frame(0x82, key, b"after"));
                    let (result, events) = harness::receive_in_reads(&mut conn, &wire, read);
                    let what = (b0, role_is_server, mode, read);
                    assert_eq!(result, Ok(()), "{what:?}");
                    assert!(reassemble(&events) == [event.clone(), binary(b"after")], "{what:?}");
                }
            }
        }
    }
}

#[test]
fn invalid_text_fails_on_the_large_read_that_starts_its_frame() {
    let mut payload = vec![b'a'; 1 << 20];
    payload[40_000] = 0xFF;
    for (mut conn, key) in [(server(), Some(harness::MASK)), (harness::client(), None)] {
        let wire = harness::raw_frame(0x81, key, &payload);
        let err = conn.receive(&wire[..64 << 10]).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8), "{:?}", conn.role());
        assert_eq!(err.close_code(), CloseCode(1007));
    }
}

// ----- permessage-deflate through the pair -----

#[cfg(feature = "deflate")]
#[test]
fn compressed_streamed_message_ending_with_an_empty_piece() {
    // The last piece adds nothing after a flushed one; the next message must still inflate
    // (context takeover carries the compressor's state across messages).
    for split in Split::all() {
        let config = Config::default().write_fragment_size(7);
        let mut pair = harness::handshake_pair(config.clone(), config, split);
        assert!(pair.server.conn.deflate_params().is_some());
        for conn in [&mut pair.client.conn, &mut pair.server.conn] {
            conn.send_fragment(MessageKind::Binary, vec![1; 100], false).unwrap();
            conn.send_fragment(MessageKind::Binary, vec![], true).unwrap();
            conn.send_fragment(MessageKind::Text, "", false).unwrap();
            conn.send_fragment(MessageKind::Text, "", true).unwrap();
            conn.send_binary(vec![0; 10_000]).unwrap();
        }
        pair.run();
        let expected = [binary(&[1; 100]), text(""), binary(&[0; 10_000])];
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    }
}

#[cfg(feature = "deflate")]
#[test]
fn compressed_messages_of_many_sizes() {
    for split in Split::all() {
        let mut pair = harness::handshake_pair(Config::default(), Config::default(), split);
        let messages: Vec<String> = SIZES.iter().map(|&n| text_of_len(n, n as u64 + 1)).collect();
        for m in &messages {
            pair.client().send_text(m.clone()).unwrap();
            pair.server().send_text(m.clone()).unwrap();
        }
        pair.run();
        let expected: Vec<Event> = messages.iter().map(|m| text(m)).collect();
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
        // Compression happened: the first frames of large messages carry RSV1.
        assert!(pair.client.frames().iter().any(|f| f.header.rsv[0]));
    }
}
