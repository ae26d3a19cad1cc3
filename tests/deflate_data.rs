//! permessage-deflate (RFC 7692) data through the public API: round trips over handshaken
//! pairs under every split, compression thresholds and context takeover, fragmented and
//! streamed compressed messages, the RFC's §7.2.3 examples as raw frames, the RSV1 rules,
//! decompression bombs stopped at exactly the message size limit, corrupt deflate data and
//! UTF-8 validation of inflated text. Every test asserts exact outcomes. (Negotiation:
//! `deflate_negotiation.rs`.)

#![cfg(feature = "deflate")]

mod harness;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use harness::deflate::{DEFAULT_PARAMS, params, upgrade, wire_messages, with_deflate};
use harness::{
    Pipe, Rng, Split, binary, close_code_in, drain_events, feed_all, feed_split, handshake_pair, masked, ping,
    reassemble, text, text_of_len, unmasked,
};
use wscore::{
    Config, Connection, DeflateConfig, Error, Event, MessageKind, OpCode, ProtocolError, ReceiveMode, SeededRandom,
    State,
};

// ----- shared pieces -----

/// The empty stored block a sync flush ends with (RFC 7692 §7.2.1).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// A server that negotiated the default parameters elsewhere.
fn deflate_server() -> Connection {
    Connection::server(Config::default()).with_deflate(DEFAULT_PARAMS)
}

/// A client that negotiated the default parameters elsewhere.
fn deflate_client() -> Connection {
    Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(3))).with_deflate(DEFAULT_PARAMS)
}

/// A peer's compressor, built on flate2 directly rather than the crate's: each message is
/// sync-flushed and, as RFC 7692 §7.2.1 says, its trailing `00 00 ff ff` removed.
struct PeerCompressor(Compress);

impl PeerCompressor {
    fn new(level: u32) -> Self {
        Self(Compress::new(Compression::new(level), false))
    }

    /// Compresses `data` with a sync flush; the output ends with [`TRAILER`].
    fn flush(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
        let start = self.0.total_in();
        loop {
            let done = (self.0.total_in() - start) as usize;
            self.0.compress_vec(&data[done..], &mut out, FlushCompress::Sync).unwrap();
            if (self.0.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(1024));
        }
        assert!(out.ends_with(&TRAILER));
        out
    }

    /// One message's payload.
    fn message(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = self.flush(data);
        out.truncate(out.len() - TRAILER.len());
        out
    }
}

/// `payload` compressed in one go by a fresh peer.
fn compressed(data: &[u8]) -> Vec<u8> {
    PeerCompressor::new(6).message(data)
}

/// A compressed message (`opcode` 1 or 2) as frames of at most `size` payload bytes, RSV1 on
/// the first only, encoded by `frame` (`masked` or `unmasked`).
fn compressed_frames(opcode: u8, payload: &[u8], size: usize, frame: fn(u8, &[u8]) -> Vec<u8>) -> Vec<u8> {
    let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(size).collect() };
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let first = if i == 0 { opcode | 0x40 } else { 0 };
        let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
        out.extend(frame(first | fin, chunk));
    }
    out
}

/// Low-entropy bytes: compressible, but not trivially.
fn compressible(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len).into_iter().map(|b| b % 16).collect()
}
/// Feeds a fresh connection from `make` `bytes` under every split and checks it fails with
/// `expected`, sending a close frame with `code`, with `events` before the failure, and that
/// the error is sticky.
fn assert_fails(make: impl Fn() -> Connection, bytes: &[u8], expected: ProtocolError, code: u16, events: &[Event]) {
    assert_eq!(expected.close_code().0, code);
    let expected = Error::Protocol(expected);
    for split in Split::all() {
        let (result, got, out, mut conn) = feed_all(make(), bytes, split);
        assert_eq!(result, Err(expected.clone()), "{split:?}");
        assert_eq!(got, events, "{split:?}");
        assert_eq!(close_code_in(&out), Some(Some(code)), "{split:?}");
        assert_eq!(conn.state(), State::Failed);
        assert_eq!(conn.error(), Some(&expected));
        assert_eq!(conn.buffered_received(), 0, "input dropped");
        // Sticky: any later input returns the same error and changes nothing.
        assert_eq!(conn.receive(&masked(0x81, b"more")), Err(expected.clone()));
        assert_eq!(drain_events(&mut conn), []);
        assert!(conn.take_transmit().is_empty());
    }
}
// ----- round trips over a handshaken pair -----

const SIZES: [usize; 12] = [0, 1, 63, 64, 65, 125, 126, 1000, 65535, 65536, 65537, 200_000];

/// Sends text and binary messages of `sizes` both ways over a handshaken pair and checks they
/// arrive, compressed on the wire from the default 64-byte threshold up.
fn round_trip(split: Split, sizes: &[usize]) {
    let mut pair = handshake_pair(Config::default(), Config::default(), split);
    let mut expected = Vec::new();
    let mut compressed_on_wire = Vec::new();
    for &n in sizes {
        let t = text_of_len(n, n as u64);
        let b = compressible(n, n as u64);
        for conn in [&mut pair.client.conn, &mut pair.server.conn] {
            conn.send_text(t.clone()).unwrap();
            conn.send_binary(b.clone()).unwrap();
        }
        expected.extend([text(&t), binary(&b)]);
        compressed_on_wire.extend([(OpCode::Text, n >= 64), (OpCode::Binary, n >= 64)]);
    }
    pair.run();
    assert_eq!(pair.server.take_events(), expected, "{split:?}");
    assert_eq!(pair.client.take_events(), expected, "{split:?}");
    for side in [&pair.client, &pair.server] {
        let wire: Vec<(OpCode, bool)> = wire_messages(side).iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(wire, compressed_on_wire, "{split:?}");
    }
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    assert_eq!((pair.server().buffered_received(), pair.client().buffered_received()), (0, 0));
}

#[test]
fn round_trips_of_many_sizes_both_ways() {
    round_trip(Split::Whole, &SIZES);
    round_trip(Split::Random(7), &SIZES);
    // One byte at a time is slow in debug builds: up to just past 64 KiB.
    round_trip(Split::OneByte, &SIZES[..SIZES.len() - 1]);
}

#[test]
fn round_trip_of_a_mebibyte() {
    let split = Split::Random(8);
    let mut pair = handshake_pair(Config::default(), Config::default(), split);
    let t = text_of_len(1 << 20, 1);
    let b = compressible(1 << 20, 2);
    pair.client().send_text(t.clone()).unwrap();
    pair.server().send_binary(b.clone()).unwrap();
    pair.run();
    assert!(pair.server.take_events() == [text(&t)], "1 MiB of text");
    assert!(pair.client.take_events() == [binary(&b)], "1 MiB of binary");
    assert_eq!(wire_messages(&pair.client)[0].0, OpCode::Text);
    assert!(wire_messages(&pair.client)[0].1 && wire_messages(&pair.server)[0].1, "compressed");
}

#[test]
fn threshold_decides_which_messages_are_compressed() {
    for split in Split::all() {
        let config = with_deflate(DeflateConfig::default().threshold(100)).write_fragment_size(40);
        let mut pair = handshake_pair(config.clone(), config, split);
        let sizes = [0, 99, 100, 101, 5000];
        for &n in &sizes {
            pair.client().send_binary(vec![7; n]).unwrap();
            pair.server().send_binary(vec![7; n]).unwrap();
        }
        pair.run();
        let expected: Vec<Event> = sizes.iter().map(|&n| binary(&vec![7; n])).collect();
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
        for side in [&pair.client, &pair.server] {
            let wire: Vec<bool> = wire_messages(side).iter().map(|m| m.1).collect();
            assert_eq!(wire, [false, false, true, true, true], "{split:?}");
            // 99 bytes uncompressed in frames of 40: RSV1 clear on all three.
            let frames = side.frames();
            let data: Vec<_> = frames.iter().filter(|f| !f.opcode().is_control()).collect();
            assert_eq!(data[1].header.rsv, [false; 3]);
            assert_eq!((data[1].opcode(), data[1].payload.len()), (OpCode::Binary, 40));
        }
    }
    // Threshold 0 compresses even empty messages: the payload is the header byte of an empty
    // stored block, completed by the trailer the receiver appends.
    let mut server =
        Connection::server(with_deflate(DeflateConfig::default().threshold(0))).with_deflate(DEFAULT_PARAMS);
    server.send_text("").unwrap();
    server.send_text("").unwrap();
    server.send_text("Hello").unwrap();
    let wire = server.take_transmit();
    // The RFC 7692 §7.2.3.1 bytes for "Hello".
    assert_eq!(&wire[..], [0xc1, 0x01, 0x00, 0xc1, 0x01, 0x00, 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    let (result, events, _, _) = feed_all(deflate_client(), &wire, Split::OneByte);
    assert_eq!((result, events), (Ok(()), vec![text(""), text(""), text("Hello")]));
}

#[test]
fn context_takeover_on_and_off_in_each_direction() {
    let message = text_of_len(2000, 77);
    for (server_nct, client_nct) in [(false, false), (true, false), (false, true), (true, true)] {
        let deflate =
            DeflateConfig::default().server_no_context_takeover(server_nct).client_no_context_takeover(client_nct);
        for split in Split::all() {
            let mut pair = handshake_pair(with_deflate(deflate.clone()), with_deflate(deflate.clone()), split);
            let agreed = params(server_nct, client_nct, 15, 15);
            assert_eq!((pair.client().deflate_params(), pair.server().deflate_params()), (Some(agreed), Some(agreed)));
            let mut expected = Vec::new();
            for i in 0..30 {
                // The same message again and again, with a different one now and then.
                let m = if i % 7 == 3 { text_of_len(500 + i, i as u64) } else { message.clone() };
                pair.client().send_text(m.clone()).unwrap();
                pair.server().send_text(m.clone()).unwrap();
                expected.push(text(&m));
            }
            pair.run();
            assert_eq!(pair.server.take_events(), expected, "{server_nct} {client_nct} {split:?}");
            assert_eq!(pair.client.take_events(), expected, "{server_nct} {client_nct} {split:?}");
            for (side, nct) in [(&pair.server, server_nct), (&pair.client, client_nct)] {
                let payloads: Vec<Vec<u8>> = wire_messages(side).into_iter().map(|m| m.2).collect();
                let repeats: Vec<&Vec<u8>> = payloads.iter().step_by(7).collect();
                if nct {
                    // Each message compressed on its own: the same bytes every time.
                    assert!(repeats.iter().all(|p| *p == repeats[0]), "{server_nct} {client_nct}");
                } else {
                    // Later copies refer back to earlier ones.
                    assert!(repeats[1..].iter().all(|p| p.len() * 10 < repeats[0].len()), "{server_nct} {client_nct}");
                }
            }
        }
    }
}

#[test]
fn fragmented_compressed_messages_with_interleaved_pings() {
    // Through the pair: an incompressible message larger than what is encoded ahead, so the
    // ping queued after it goes out between its frames.
    for split in Split::all() {
        let config = Config::default().write_fragment_size(1000);
        let mut pair = handshake_pair(config.clone(), config, split);
        let message = Rng::new(5).bytes(600_000);
        pair.client().send_binary(message.clone()).unwrap();
        pair.client().ping("p").unwrap();
        pair.run();
        assert_eq!(pair.server.take_events(), [ping(b"p"), binary(&message)], "{split:?}");
        let frames = pair.client.frames();
        let at = frames.iter().position(|f| f.opcode() == OpCode::Ping).unwrap();
        assert!(at > 0 && at + 1 < frames.len(), "ping between data frames");
        assert_eq!(frames[0].header.rsv, [true, false, false]);
        assert!(frames[1..].iter().all(|f| f.header.rsv == [false; 3]));
        assert_eq!(wire_messages(&pair.client).len(), 1);
    }
    // Raw frames: a compressed text message cut into 10-byte frames with a ping after each.
    let message = "Hello wörld! ".repeat(200);
    let payload = compressed(message.as_bytes());
    let mut bytes = Vec::new();
    let chunks: Vec<&[u8]> = payload.chunks(10).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let b0 = if i == 0 { 0x41 } else { 0x00 } | if i + 1 == chunks.len() { 0x80 } else { 0 };
        bytes.extend(masked(b0, chunk));
        bytes.extend(masked(0x89, &[i as u8]));
    }
    for split in Split::all() {
        let (result, events, out, conn) = feed_all(deflate_server(), &bytes, split);
        assert_eq!(result, Ok(()));
        let mut expected: Vec<Event> = (0..chunks.len() - 1).map(|i| ping(&[i as u8])).collect();
        expected.push(text(&message));
        expected.push(ping(&[chunks.len() as u8 - 1]));
        assert_eq!(events, expected, "{split:?}");
        // Pings are answered; only the newest unanswered one when several came in one read.
        let pongs: Vec<Vec<u8>> = harness::decode_frames(&out).into_iter().map(|f| f.payload).collect();
        assert_eq!(pongs.last(), Some(&vec![chunks.len() as u8 - 1]), "{split:?}");
        assert!(pongs.windows(2).all(|w| w[0] < w[1]), "{split:?}: answered in order");
        assert_eq!(conn.state(), State::Open);
    }
}

#[test]
fn streamed_compressed_messages_with_send_fragment() {
    let message = text_of_len(5000, 21);
    let cuts = [0, 1, 1, 2, 700, 701, 3000, 4999, 5000];
    let pieces: Vec<Bytes> = cuts.windows(2).map(|w| Bytes::copy_from_slice(&message.as_bytes()[w[0]..w[1]])).collect();
    let data = compressible(30_000, 4);
    for split in Split::all() {
        let config = Config::default().write_fragment_size(100);
        let mut pair = handshake_pair(config.clone(), config, split);
        for conn in [&mut pair.client.conn, &mut pair.server.conn] {
            // Text cut anywhere (inside code points too), with empty pieces and an empty last.
            for piece in &pieces {
                conn.send_fragment(MessageKind::Text, piece.clone(), false).unwrap();
            }
            conn.send_fragment(MessageKind::Text, "", true).unwrap();
            // Binary whose last piece carries data; then an empty first piece.
            conn.send_fragment(MessageKind::Binary, data[..10_000].to_vec(), false).unwrap();
            conn.send_fragment(MessageKind::Binary, data[10_000..].to_vec(), true).unwrap();
            conn.send_fragment(MessageKind::Binary, Bytes::new(), false).unwrap();
            conn.send_fragment(MessageKind::Binary, b"tail".to_vec(), true).unwrap();
            conn.send_text("after").unwrap();
        }
        pair.run();
        let expected = [text(&message), binary(&data), binary(b"tail"), text("after")];
        assert_eq!(pair.server.take_events(), expected, "{split:?}");
        assert_eq!(pair.client.take_events(), expected, "{split:?}");
        for side in [&pair.client, &pair.server] {
            let wire: Vec<(OpCode, bool)> = wire_messages(side).iter().map(|m| (m.0, m.1)).collect();
            // A streamed message is compressed whatever its size; "after" is under the threshold.
            let expected =
                [(OpCode::Text, true), (OpCode::Binary, true), (OpCode::Binary, true), (OpCode::Text, false)];
            assert_eq!(wire, expected, "{split:?}");
        }
    }
}

#[test]
fn stream_mode_delivers_inflated_pieces() {
    for split in Split::all() {
        let config = Config::default().receive_mode(ReceiveMode::Stream).write_fragment_size(3000);
        let mut pair = handshake_pair(config.clone(), config, split);
        let mut expected = Vec::new();
        for (i, n) in [0, 64, 1000, 70_000, 150_000].into_iter().enumerate() {
            let t = text_of_len(n, i as u64 + 40);
            let b = vec![i as u8; n];
            for conn in [&mut pair.client.conn, &mut pair.server.conn] {
                conn.send_text(t.clone()).unwrap();
                conn.send_binary(b.clone()).unwrap();
            }
            expected.extend([text(&t), binary(&b)]);
        }
        pair.run();
        for side in [&mut pair.server, &mut pair.client] {
            let events = side.take_events();
            assert!(events.len() > expected.len() + 5, "pieces, not whole messages");
            assert_eq!(reassemble(&events), expected, "{split:?}");
        }
    }
}

#[test]
fn stream_mode_memory_stays_bounded_for_a_large_compressed_message() {
    let size = 4 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut client = deflate_client();
    client.send_binary(data.clone()).unwrap();
    let wire = client.take_transmit();
    assert!(wire.len() < size / 50, "compressible: {} bytes", wire.len());
    let config = Config::default().receive_mode(ReceiveMode::Stream).max_message_size(size);
    let mut server = Connection::server(config).with_deflate(DEFAULT_PARAMS);
    let mut received = Vec::new();
    let mut pieces = 0;
    let mut last = false;
    for chunk in wire.chunks(1024) {
        server.receive(chunk).unwrap();
        assert!(server.buffered_received() <= 1024, "buffered {}", server.buffered_received());
        while let Some(event) = server.poll_event() {
            let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
            assert_eq!((f.kind, f.first, last), (MessageKind::Binary, pieces == 0, false));
            assert!(f.data.len() <= size / 16, "a piece of {} bytes", f.data.len());
            last = f.last;
            received.extend_from_slice(&f.data);
            pieces += 1;
        }
    }
    assert!(last);
    assert!(received == data, "reassembled message differs");
    // All at once, without taking events: inflating pauses until the application catches up.
    let mut server =
        Connection::server(Config::default().receive_mode(ReceiveMode::Stream)).with_deflate(DEFAULT_PARAMS);
    server.receive(&wire).unwrap();
    assert!(server.buffered_received() <= wire.len());
    let events = drain_events(&mut server);
    assert_eq!(reassemble(&events), [binary(&data)]);
    assert_eq!(server.buffered_received(), 0);
}

/// Parses a deflate stream made only of stored blocks (after appending the trailer) and
/// returns its content, or `None` if any block is not a stored block.
fn stored_blocks(payload: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&TRAILER);
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        // BFINAL=0, BTYPE=00, then padding to the byte boundary.
        if bytes[at] != 0x00 || at + 5 > bytes.len() {
            return None;
        }
        let len = u16::from_le_bytes([bytes[at + 1], bytes[at + 2]]);
        let nlen = u16::from_le_bytes([bytes[at + 3], bytes[at + 4]]);
        if nlen != !len || at + 5 + len as usize > bytes.len() {
            return None;
        }
        out.extend_from_slice(&bytes[at + 5..at + 5 + len as usize]);
        at += 5 + len as usize;
    }
    Some(out)
}

#[test]
fn client_max_window_bits_8_is_honoured_with_stored_blocks() {
    let eight = params(false, false, 15, 8);
    let client_asks = (with_deflate(DeflateConfig::default().client_max_window_bits(8)), Config::default());
    let server_asks = (Config::default(), with_deflate(DeflateConfig::default().client_max_window_bits(8)));
    for (client_config, server_config) in [client_asks, server_asks] {
        for split in Split::all() {
            let mut pair = handshake_pair(client_config.clone(), server_config.clone(), split);
            assert_eq!((pair.client().deflate_params(), pair.server().deflate_params()), (Some(eight), Some(eight)));
            let messages = [vec![b'a'; 1000], compressible(30_000, 8), vec![b'a'; 1000]];
            for m in &messages {
                pair.client().send_binary(m.clone()).unwrap();
                pair.server().send_binary(m.clone()).unwrap();
            }
            pair.run();
            let expected: Vec<Event> = messages.iter().map(|m| binary(m)).collect();
            assert_eq!(pair.server.take_events(), expected, "{split:?}");
            assert_eq!(pair.client.take_events(), expected, "{split:?}");
            // The client sends stored blocks only (no window at all) and says so with RSV1;
            // the server still compresses with its 15-bit window.
            for ((opcode, rsv1, payload), m) in wire_messages(&pair.client).into_iter().zip(&messages) {
                assert_eq!((opcode, rsv1), (OpCode::Binary, true));
                assert_eq!(stored_blocks(&payload).as_ref(), Some(m));
            }
            let server_wire = wire_messages(&pair.server);
            assert!(server_wire[0].1 && server_wire[0].2.len() < 50);
            assert_eq!(stored_blocks(&server_wire[0].2), None);
        }
    }
}

// ----- RFC 7692 §7.2.3 examples -----

/// §7.2.3.1: "Hello" compressed.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// The §7.2.3 examples for "Hello": each a list of (first header byte, payload) frames.
const HELLO_EXAMPLES: [&[(u8, &[u8])]; 5] = [
    // §7.2.3.1: compressed, in one frame...
    &[(0xc1, &HELLO)],
    // ...and fragmented (RSV1 on the first frame only).
    &[(0x41, &[0xf2, 0x48, 0xcd]), (0x80, &[0xc9, 0xc9, 0x07, 0x00])],
    // §7.2.3.3: a stored block.
    &[(0xc1, &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00])],
    // §7.2.3.4: a final (BFINAL) block; the trailer appended after it is ignored.
    &[(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])],
    // §7.2.3.5: two blocks, the first ending with a sync flush.
    &[(0xc1, &[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00])],
];

/// §7.2.3.2: "Hello" again, referring back to the first one.
const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];

#[test]
fn rfc7692_examples_to_a_client_and_a_server() {
    for example in HELLO_EXAMPLES {
        for (make, frame) in
            [(deflate_client as fn() -> Connection, unmasked as fn(u8, &[u8]) -> Vec<u8>), (deflate_server, masked)]
        {
            let mut bytes: Vec<u8> = example.iter().flat_map(|&(b0, payload)| frame(b0, payload)).collect();
            // Each example followed by the same message as §7.2.3.1, which must still inflate.
            bytes.extend(frame(0xc1, &HELLO));
            for split in Split::all() {
                let (result, events, out, conn) = feed_all(make(), &bytes, split);
                assert_eq!(result, Ok(()), "{example:02x?} {split:?}");
                assert_eq!(events, [text("Hello"), text("Hello")], "{example:02x?} {split:?}");
                assert!(out.is_empty());
                assert_eq!(conn.state(), State::Open);
            }
        }
    }
}

#[test]
fn rfc7692_shared_window_example() {
    let mut bytes = unmasked(0xc1, &HELLO);
    bytes.extend(unmasked(0xc1, &HELLO_AGAIN));
    for split in Split::all() {
        let (result, events, _, _) = feed_all(deflate_client(), &bytes, split);
        assert_eq!(result, Ok(()));
        assert_eq!(events, [text("Hello"), text("Hello")], "{split:?}");
    }
    // With server_no_context_takeover agreed, the back reference points at nothing.
    let no_takeover = || {
        Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(3)))
            .with_deflate(params(true, false, 15, 15))
    };
    assert_fails(no_takeover, &bytes, ProtocolError::InvalidCompressedData, 1007, &[text("Hello")]);
    // Our own compressor's second "Hello" refers back too, and inflates the same way.
    let config = with_deflate(DeflateConfig::default().threshold(0));
    let mut server = Connection::server(config).with_deflate(DEFAULT_PARAMS);
    server.send_text("Hello").unwrap();
    server.send_text("Hello").unwrap();
    let wire = server.take_transmit();
    let frames = harness::decode_frames(&wire);
    assert_eq!(frames[0].payload, &HELLO);
    assert!(frames[1].header.rsv[0] && frames[1].payload.len() < 7);
    let (result, events, _, _) = feed_all(deflate_client(), &wire, Split::OneByte);
    assert_eq!((result, events), (Ok(()), vec![text("Hello"), text("Hello")]));
}

#[test]
fn empty_compressed_payload_leaves_the_inflater_usable() {
    // Tolerated (the trailer skipped when the message carried no bytes at all), like the
    // crate's own sender avoids producing it. Failing at the empty message would also do.
    let mut bytes = unmasked(0xc1, &[]);
    bytes.extend(unmasked(0xc1, &HELLO));
    for split in Split::all() {
        let (result, events, _, _) = feed_all(deflate_client(), &bytes, split);
        assert_eq!((result, events), (Ok(()), vec![text(""), text("Hello")]), "{split:?}");
    }
}

// ----- RSV1 rules -----

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_error() {
    let mut bytes = masked(0x41, &[0xf2, 0x48, 0xcd]);
    bytes.extend(masked(0xc0, &[0xc9, 0xc9, 0x07, 0x00]));
    assert_fails(deflate_server, &bytes, ProtocolError::ReservedBits, 1002, &[]);
    // An uncompressed message cannot turn compressed halfway either.
    let mut bytes = masked(0x01, b"Hel");
    bytes.extend(masked(0xc0, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    assert_fails(deflate_server, &bytes, ProtocolError::ReservedBits, 1002, &[]);
    let mut bytes = unmasked(0x41, &[0xf2, 0x48, 0xcd]);
    bytes.extend(unmasked(0xc0, &[0xc9, 0xc9, 0x07, 0x00]));
    assert_fails(deflate_client, &bytes, ProtocolError::ReservedBits, 1002, &[]);
}

#[test]
fn rsv1_on_a_control_frame_is_a_protocol_error() {
    for b0 in [0xc9, 0xca, 0xc8] {
        let mut bytes = masked(0xc1, &HELLO);
        bytes.extend(masked(b0, b""));
        assert_fails(deflate_server, &bytes, ProtocolError::ReservedBits, 1002, &[text("Hello")]);
        // Between the fragments of a compressed message.
        let mut bytes = masked(0x41, &[0xf2, 0x48, 0xcd]);
        bytes.extend(masked(b0, b""));
        assert_fails(deflate_server, &bytes, ProtocolError::ReservedBits, 1002, &[]);
        assert_fails(deflate_client, &unmasked(b0, b"x"), ProtocolError::ReservedBits, 1002, &[]);
    }
}

#[test]
fn rsv1_without_negotiated_deflate_is_a_protocol_error() {
    let hello = &HELLO[..];
    let plain_server = || Connection::server(Config::default());
    let plain_client = || Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(3)));
    assert_fails(plain_server, &masked(0xc1, hello), ProtocolError::ReservedBits, 1002, &[]);
    assert_fails(plain_server, &masked(0xc2, hello), ProtocolError::ReservedBits, 1002, &[]);
    assert_fails(plain_client, &unmasked(0xc1, hello), ProtocolError::ReservedBits, 1002, &[]);
    // After a handshake in which the server declined.
    let mut server = upgrade(Config::default(), Config::default().deflate(None)).server;
    assert_eq!(server.receive(&masked(0xc1, hello)), Err(Error::Protocol(ProtocolError::ReservedBits)));
    assert_eq!(drain_events(&mut server), []);
    assert_eq!(close_code_in(&server.take_transmit()), Some(Some(1002)));
    // RSV2 and RSV3 stay reserved with deflate.
    assert_fails(deflate_server, &masked(0xa1, hello), ProtocolError::ReservedBits, 1002, &[]);
    assert_fails(deflate_server, &masked(0x91, hello), ProtocolError::ReservedBits, 1002, &[]);
}

// ----- decompression bombs -----

/// A connection with deflate and a message size limit, message or stream mode.
fn limited(role_server: bool, limit: usize, mode: ReceiveMode) -> Connection {
    let config = Config::default().max_message_size(limit).receive_mode(mode);
    if role_server {
        Connection::server(config).with_deflate(DEFAULT_PARAMS)
    } else {
        Connection::client_with_random(config, Box::new(SeededRandom::new(3))).with_deflate(DEFAULT_PARAMS)
    }
}

#[test]
fn inflated_size_stops_at_exactly_the_limit() {
    let limit = 100_000;
    let too_large = ProtocolError::MessageTooLarge { limit };
    let exact = compressible(limit, 12);
    let over = compressible(limit + 1, 12);
    // The limit is on the inflated size: incompressible data grows on the wire, and still
    // passes at exactly the limit.
    let random = Rng::new(12).bytes(limit);
    let payload = compressed(&random);
    assert!(payload.len() > limit);
    let (result, events, _, _) =
        feed_all(limited(true, limit, ReceiveMode::Message), &masked(0xc2, &payload), Split::Whole);
    assert!(result.is_ok() && events == [binary(&random)]);
    for server in [true, false] {
        let frame = if server { masked } else { unmasked };
        for frame_size in [usize::MAX, 997] {
            let ok = compressed_frames(0x2, &compressed(&exact), frame_size, frame);
            let bad = compressed_frames(0x2, &compressed(&over), frame_size, frame);
            let splits = if frame_size == usize::MAX { &Split::all()[..] } else { &[Split::Random(9)][..] };
            for &split in splits {
                // Message mode.
                let (result, events, _, _) = feed_all(limited(server, limit, ReceiveMode::Message), &ok, split);
                assert_eq!((result, events), (Ok(()), vec![binary(&exact)]), "{split:?}");
                let (result, events, out, conn) = feed_all(limited(server, limit, ReceiveMode::Message), &bad, split);
                assert_eq!(result, Err(Error::Protocol(too_large.clone())), "{split:?}");
                assert_eq!((events, close_code_in(&out)), (vec![], Some(Some(1009))));
                assert_eq!(conn.state(), State::Failed);
                // Stream mode: pieces up to the limit, then the failure.
                let (result, events, _, _) = feed_all(limited(server, limit, ReceiveMode::Stream), &ok, split);
                assert_eq!(result, Ok(()));
                assert_eq!(reassemble(&events), [binary(&exact)], "{split:?}");
                // Inflating pauses while pieces wait for the application, so the failure may
                // come while the events are taken; it is sticky and the close frame goes out.
                let (result, events, out, conn) = feed_all(limited(server, limit, ReceiveMode::Stream), &bad, split);
                let error = Error::Protocol(too_large.clone());
                assert!(result.is_ok() || result == Err(error.clone()), "{split:?}: {result:?}");
                assert_eq!((conn.state(), conn.error()), (State::Failed, Some(&error)), "{split:?}");
                assert_eq!(close_code_in(&out), Some(Some(1009)));
                let mut delivered = Vec::new();
                for event in events {
                    let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
                    assert!(!f.last);
                    delivered.extend_from_slice(&f.data);
                }
                assert!(delivered.len() <= limit && over.starts_with(&delivered), "{} bytes", delivered.len());
            }
        }
    }
}

/// A raw deflate stream that inflates to `mib` MiB of zeros, built from two compressed
/// chunks: the first MiB, then one MiB that refers only to the zeros before it, repeated.
fn zero_bomb(mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut compressor = PeerCompressor::new(9);
    let first = compressor.flush(&zeros);
    let next = compressor.flush(&zeros);
    let mut bomb = Vec::with_capacity(first.len() + next.len() * mib);
    bomb.extend_from_slice(&first);
    for _ in 1..mib {
        bomb.extend_from_slice(&next);
    }
    bomb.truncate(bomb.len() - TRAILER.len());
    bomb
}

#[test]
fn gigabyte_bomb_is_rejected_promptly_with_bounded_memory() {
    let bomb = zero_bomb(1024);
    assert!(bomb.len() < 2 << 20, "{} compressed bytes", bomb.len());
    // Check the construction on a small scale: 3 MiB of zeros.
    let small = zero_bomb(3);
    let mut inflated = Vec::with_capacity(4 << 20);
    let mut input = small.clone();
    input.extend_from_slice(&TRAILER);
    Decompress::new(false).decompress_vec(&input, &mut inflated, FlushDecompress::Sync).unwrap();
    assert!(inflated.len() == 3 << 20 && inflated.iter().all(|&b| b == 0));

    let frame = masked(0xc2, &bomb);
    let limit = 1 << 20;
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        let mut server = limited(true, limit, mode);
        let mut fed = 0;
        let mut delivered = 0;
        let error = loop {
            let chunk = &frame[fed..(fed + 256).min(frame.len())];
            fed += chunk.len();
            let result = server.receive(chunk);
            for event in drain_events(&mut server) {
                let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
                delivered += f.data.len();
            }
            match result {
                Ok(()) => assert!(server.buffered_received() <= limit + (64 << 10), "{}", server.buffered_received()),
                Err(e) => break e,
            }
        };
        assert_eq!(error, Error::Protocol(ProtocolError::MessageTooLarge { limit }), "{mode:?}");
        // Stopped within the first few KiB of a 1 GiB message.
        assert!(fed <= 4096, "{mode:?}: {fed} bytes fed");
        assert!(delivered <= limit);
        assert_eq!(close_code_in(&server.take_transmit()), Some(Some(1009)));
        assert_eq!((server.state(), server.buffered_received()), (State::Failed, 0));
    }
    // Stream mode with a larger limit: memory held stays small while many MiB inflate.
    let limit = 8 << 20;
    let mut client = limited(false, limit, ReceiveMode::Stream);
    let frame = unmasked(0xc2, &bomb);
    let mut delivered = 0;
    let mut result = Ok(());
    for chunk in frame.chunks(4096) {
        result = client.receive(chunk);
        for event in drain_events(&mut client) {
            let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
            assert!(f.data.iter().all(|&b| b == 0));
            delivered += f.data.len();
        }
        if result.is_err() {
            break;
        }
        assert!(client.buffered_received() <= 4096, "{}", client.buffered_received());
    }
    assert_eq!(result, Err(Error::Protocol(ProtocolError::MessageTooLarge { limit })));
    assert!(delivered <= limit && delivered > limit - (1 << 20), "{delivered}");
}

#[test]
fn bomb_spread_over_messages_is_judged_per_message() {
    let limit = 65_536;
    let mut peer = PeerCompressor::new(9);
    let zeros = vec![0u8; limit];
    let mut bytes = Vec::new();
    for _ in 0..20 {
        let payload = peer.message(&zeros);
        bytes.extend(masked(0xc2, &payload));
    }
    // With context takeover, the later messages are a few bytes each.
    assert!(bytes.len() < 20 * 200 + 1000, "{} bytes", bytes.len());
    let mut over = bytes.clone();
    over.extend(masked(0xc2, &peer.message(&vec![0u8; limit + 1])));
    let expected: Vec<Event> = (0..20).map(|_| binary(&zeros)).collect();
    for split in Split::all() {
        let (result, events, _, _) = feed_all(limited(true, limit, ReceiveMode::Message), &bytes, split);
        assert_eq!((result, events), (Ok(()), expected.clone()), "{split:?}");
    }
    let make = || limited(true, limit, ReceiveMode::Message);
    assert_fails(make, &over, ProtocolError::MessageTooLarge { limit }, 1009, &expected);
}

// ----- corrupt data -----

#[test]
fn corrupt_deflate_data_fails_with_1007() {
    let hello = &HELLO[..];
    let bad = ProtocolError::InvalidCompressedData;
    // A reserved block type.
    assert_fails(deflate_server, &masked(0xc1, &[0xff, 0xff, 0xff, 0xff]), bad.clone(), 1007, &[]);
    assert_fails(deflate_client, &unmasked(0xc2, &[0x07, 0x00]), bad.clone(), 1007, &[]);
    // A back reference with no history.
    assert_fails(deflate_server, &masked(0xc1, &HELLO_AGAIN), bad.clone(), 1007, &[]);
    // A stored block whose length check fails, in the second fragment, after a good message.
    let mut bytes = masked(0xc1, hello);
    bytes.extend(masked(0x42, &[0x00, 0x05]));
    bytes.extend(masked(0x89, b"p"));
    bytes.extend(masked(0x80, &[0x00, 0x00, 0x00, 0x48, 0x65, 0x6c, 0x6c, 0x6f]));
    assert_fails(deflate_server, &bytes, bad.clone(), 1007, &[text("Hello"), ping(b"p")]);
    // In stream mode too.
    let stream =
        || Connection::server(Config::default().receive_mode(ReceiveMode::Stream)).with_deflate(DEFAULT_PARAMS);
    assert_fails(stream, &masked(0xc1, &[0xff, 0xff]), bad, 1007, &[]);
}

// ----- UTF-8 of inflated text -----

#[test]
fn inflated_text_is_utf8_validated() {
    let invalid = ProtocolError::InvalidUtf8;
    assert_fails(deflate_server, &masked(0xc1, &compressed(b"ab\xffcd")), invalid.clone(), 1007, &[]);
    // A code point cut off at the end of the message.
    let truncated = &"abc€".as_bytes()[..5];
    assert_fails(deflate_server, &masked(0xc1, &compressed(truncated)), invalid.clone(), 1007, &[]);
    let stream =
        || Connection::server(Config::default().receive_mode(ReceiveMode::Stream)).with_deflate(DEFAULT_PARAMS);
    assert_fails(stream, &masked(0xc1, &compressed(b"\xffabcd")), invalid.clone(), 1007, &[]);
    // Binary messages are not validated.
    let (result, events, _, _) = feed_all(deflate_server(), &masked(0xc2, &compressed(b"ab\xffcd")), Split::Whole);
    assert_eq!((result, events), (Ok(()), vec![binary(b"ab\xffcd")]));
}

#[test]
fn invalid_utf8_fails_before_the_whole_message_is_inflated() {
    let mut message = text_of_len(1 << 20, 31).into_bytes();
    message[10] = 0xff;
    let payload = compressed(&message);
    let bytes = compressed_frames(0x1, &payload, 1024, masked);
    let frames = bytes.len() / 1024;
    assert!(frames > 100);
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        let mut server = Connection::server(Config::default().receive_mode(mode)).with_deflate(DEFAULT_PARAMS);
        let mut pipe = Pipe::new(Split::Random(13));
        let mut fed = 0;
        let result = loop {
            let piece = &bytes[fed..(fed + 1024).min(bytes.len())];
            fed += piece.len();
            let result = feed_split(&mut server, piece, &mut pipe);
            if result.is_err() || fed == bytes.len() {
                break result;
            }
        };
        assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)), "{mode:?}");
        // The first frame holds the bad byte: nothing after it was read.
        assert!(fed <= 2048, "{mode:?}: {fed} of {} bytes fed", bytes.len());
        // At most the valid bytes before the bad one were delivered.
        let mut delivered = Vec::new();
        for event in drain_events(&mut server) {
            let Event::Fragment(f) = event else { panic!("unexpected {event:?}") };
            delivered.extend_from_slice(&f.data);
        }
        assert!(message[..10].starts_with(&delivered), "{mode:?}: {} bytes delivered", delivered.len());
        assert_eq!(close_code_in(&server.take_transmit()), Some(Some(1007)));
    }
}
