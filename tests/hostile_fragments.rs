//! Hostile input, family 3: fragmentation (RFC 6455 §5.4).
//!
//! Guards against the WebSocket forms of CVE-2024-27316 and the 2024 HTTP/2 "CONTINUATION
//! flood" family (endless continuation frames, each cheap to send, accumulated without bound),
//! CVE-2019-9518 (HTTP/2 "empty frames flood": zero-length frames that cost the receiver work
//! and bookkeeping but carry nothing), CVE-2026-42786 (Bandit: unbounded reassembly of a
//! fragmented WebSocket message) and the `ws` advisory on memory exhaustion from tiny fragments
//! (per-fragment bookkeeping far larger than the bytes received):
//!
//! - a continuation with no message in progress, and a new data frame in the middle of a
//!   message, are protocol errors (1002), in both receive modes and both roles;
//! - a message may have at most [`Config::max_fragments`] frames (default 131 072): 1M one-byte
//!   fragments fail with 1008 as soon as the 131 073rd header arrives, and with the limit raised
//!   they assemble into a message whose memory is its size (no per-fragment overhead visible in
//!   `buffered_received`);
//! - endless zero-length fragments fail with 1008 too, while holding no bytes at all;
//! - control frames interleaved with fragments are fine and do not count as fragments.
//!
//! Basic cases covered in `tests/connection.rs` (`fragment_sequencing_violations`,
//! `fragmented_message_with_interleaved_pings`) and `tests/peer_violations.rs` (`max_fragments`
//! with a limit of 3) are not repeated.

mod harness;

use harness::{MASK, assert_fails, binary, drain_events, masked, ping, pong, text, unmasked};
use wscore::{
    Config, Connection, Error, Event, Fragment, MessageKind, ProtocolError, ReceiveMode, SeededRandom, State,
};

const DEFAULT_MAX_FRAGMENTS: usize = 131_072;

fn stream_server() -> Connection {
    Connection::server(Config::default().receive_mode(ReceiveMode::Stream))
}

fn stream_client() -> Connection {
    Connection::client_with_random(Config::default().receive_mode(ReceiveMode::Stream), Box::new(SeededRandom::new(5)))
}

fn fragment(data: &[u8], first: bool, last: bool) -> Event {
    Event::Fragment(Fragment { kind: MessageKind::Text, data: data.to_vec().into(), first, last })
}

#[test]
fn orphan_continuations() {
    let expected = ProtocolError::UnexpectedContinuation;
    // With and without FIN, empty or not, as the first frame, in both modes and roles.
    for b0 in [0x00, 0x80] {
        for payload in [&b""[..], b"x"] {
            for make in [harness::server as fn() -> Connection, stream_server] {
                assert_fails(make, &masked(b0, payload), expected.clone(), 1002, &[]);
            }
            for make in [harness::client as fn() -> Connection, stream_client] {
                assert_fails(make, &unmasked(b0, payload), expected.clone(), 1002, &[]);
            }
        }
    }
    // After a fragmented message completed, its continuation cannot be resumed.
    let mut bytes = masked(0x01, b"a");
    bytes.extend(masked(0x80, b"b"));
    bytes.extend(masked(0x80, b"c"));
    assert_fails(harness::server, &bytes, expected.clone(), 1002, &[text("ab")]);
    assert_fails(
        stream_server,
        &bytes,
        expected.clone(),
        1002,
        &[fragment(b"a", true, false), fragment(b"b", false, true)],
    );
    // After the peer's close, anything it sends is ignored rather than judged.
    let mut bytes = masked(0x88, &[]);
    bytes.extend(masked(0x80, b"late"));
    let mut conn = harness::server();
    conn.receive(&bytes).unwrap();
    assert_eq!(drain_events(&mut conn), [Event::Close(None)]);
}

#[test]
fn new_message_in_the_middle_of_a_message() {
    let expected = ProtocolError::ExpectedContinuation;
    for (first, second) in [(0x01, 0x81), (0x01, 0x02), (0x02, 0x82), (0x02, 0x01)] {
        let mut bytes = masked(first, b"ab");
        bytes.extend(masked(second, b"cd"));
        assert_fails(harness::server, &bytes, expected.clone(), 1002, &[]);
        // In stream mode the first piece was already delivered, before the failure.
        let kind = if first == 0x01 { MessageKind::Text } else { MessageKind::Binary };
        let piece = Event::Fragment(Fragment { kind, data: b"ab".to_vec().into(), first: true, last: false });
        let (result, events, out, _) = harness::feed_all(stream_server(), &bytes, harness::Split::Whole);
        assert_eq!((result, events), (Err(Error::Protocol(expected.clone())), vec![piece]));
        assert_eq!(harness::close_code_in(&out), Some(Some(1002)));
        let mut bytes = unmasked(first, b"ab");
        bytes.extend(unmasked(second, b"cd"));
        assert_fails(harness::client, &bytes, expected.clone(), 1002, &[]);
    }
    // Also after interleaved control frames and empty continuations.
    let mut bytes = masked(0x01, b"");
    bytes.extend(masked(0x89, b"1"));
    bytes.extend(masked(0x00, b""));
    bytes.extend(masked(0x8A, b"2"));
    bytes.extend(masked(0x81, b"new"));
    assert_fails(harness::server, &bytes, expected, 1002, &[ping(b"1"), pong(b"2")]);
}

/// A binary message of `count` fragments of one byte each (`byte(i)`), masked with [`MASK`],
/// built in one buffer: 7 bytes per fragment.
fn one_byte_fragments(count: usize, byte: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 7);
    for i in 0..count {
        let b0 = match i {
            0 => 0x02,
            _ if i == count - 1 => 0x80,
            _ => 0x00,
        };
        out.extend_from_slice(&[b0, 0x81, MASK[0], MASK[1], MASK[2], MASK[3], byte(i) ^ MASK[0]]);
    }
    out
}

#[test]
fn a_million_one_byte_fragments_hit_the_default_fragment_limit() {
    let stream = one_byte_fragments(1_000_000, |i| i as u8);
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        let mut conn = Connection::server(Config::default().receive_mode(mode));
        let mut fed = 0;
        let mut result = Ok(());
        for chunk in stream.chunks(64 << 10) {
            result = conn.receive(chunk);
            fed += chunk.len();
            if result.is_err() {
                break;
            }
            drain_events(&mut conn);
            // What is held is what arrived: one byte per fragment in message mode (plus a
            // partial frame), nothing in stream mode.
            let fragments = fed / 7;
            let bound = if mode == ReceiveMode::Message { fragments + 6 } else { 6 };
            assert!(conn.buffered_received() <= bound, "{} held after {fragments} fragments", conn.buffered_received());
        }
        assert_eq!(result, Err(Error::Protocol(ProtocolError::TooManyFragments { limit: DEFAULT_MAX_FRAGMENTS })));
        // The failure came with the chunk holding the 131 073rd header, not later.
        let at = (DEFAULT_MAX_FRAGMENTS + 1) * 7;
        assert!(fed >= at && fed - (64 << 10) < at, "{fed}");
        assert_eq!(conn.buffered_received(), 0, "the partial message is dropped");
        drain_events(&mut conn);
        assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1008)));
        assert_eq!(conn.state(), State::Failed);
    }
}

#[test]
fn a_million_one_byte_fragments_assemble_with_a_raised_limit() {
    const COUNT: usize = 1_000_000;
    let stream = one_byte_fragments(COUNT, |i| (i % 251) as u8);
    let mut conn = Connection::server(Config::default().max_fragments(COUNT));
    let mut fed = 0;
    for chunk in stream.chunks(1 << 20) {
        conn.receive(chunk).unwrap();
        fed += chunk.len();
        if fed < stream.len() {
            // Memory is the message so far: one byte per fragment received, plus a partial frame.
            let held = conn.buffered_received();
            assert!(held >= fed / 7 && held <= fed / 7 + 6, "{held} held after {} fragments", fed / 7);
        }
    }
    let expected: Vec<u8> = (0..COUNT).map(|i| (i % 251) as u8).collect();
    assert_eq!(drain_events(&mut conn), [binary(&expected)]);
    assert_eq!(conn.buffered_received(), 0);
    // One more fragment than the raised limit still fails.
    let mut conn = Connection::server(Config::default().max_fragments(COUNT - 1));
    assert_eq!(conn.receive(&stream), Err(Error::Protocol(ProtocolError::TooManyFragments { limit: COUNT - 1 })));
}

#[test]
fn endless_empty_fragments_fail_with_1008_holding_nothing() {
    // An empty text frame without FIN, then empty continuations forever (6 bytes each).
    let mut stream = masked(0x01, b"");
    let continuation = masked(0x00, b"");
    for _ in 0..DEFAULT_MAX_FRAGMENTS + 10_000 {
        stream.extend_from_slice(&continuation);
    }
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        let mut conn = Connection::server(Config::default().receive_mode(mode));
        let mut fed = 0;
        let mut result = Ok(());
        for chunk in stream.chunks(60_000) {
            result = conn.receive(chunk);
            fed += chunk.len();
            if result.is_err() {
                break;
            }
            assert_eq!(drain_events(&mut conn), [], "empty pieces make no events");
            assert!(conn.buffered_received() <= 5, "at most a partial header is held");
            assert_eq!(conn.buffered_amount(), 0);
        }
        assert_eq!(result, Err(Error::Protocol(ProtocolError::TooManyFragments { limit: DEFAULT_MAX_FRAGMENTS })));
        let at = (DEFAULT_MAX_FRAGMENTS + 1) * 6;
        assert!(fed >= at && fed - 60_000 < at, "{fed}");
        assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1008)));
    }
    // The smallest limit: a message of one frame only.
    let mut two = masked(0x02, b"a");
    two.extend(masked(0x80, b""));
    let mut conn = Connection::server(Config::default().max_fragments(1));
    assert_eq!(conn.receive(&two), Err(Error::Protocol(ProtocolError::TooManyFragments { limit: 1 })));
    let mut conn = Connection::server(Config::default().max_fragments(1));
    conn.receive(&masked(0x82, b"one frame")).unwrap();
    assert_eq!(drain_events(&mut conn), [binary(b"one frame")]);
}

#[test]
fn control_frames_between_fragments_are_fine_and_not_counted() {
    // Three fragments (the limit) with a hundred pings and pongs between each.
    let config = Config::default().max_fragments(3);
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (i, (b0, piece)) in [(0x01u8, "frag"), (0x00, "ment"), (0x80, "ed")].into_iter().enumerate() {
        bytes.extend(masked(b0, piece.as_bytes()));
        if i < 2 {
            for j in 0..100u8 {
                bytes.extend(masked(0x89, &[j]));
                bytes.extend(masked(0x8A, &[j]));
                expected.push(ping(&[j]));
                expected.push(pong(&[j]));
            }
        }
    }
    expected.push(text("fragmented"));
    for split in harness::Split::all() {
        let (result, events, out, conn) = harness::feed_all(Connection::server(config.clone()), &bytes, split);
        assert_eq!(result, Ok(()), "{split:?}");
        assert_eq!(events, expected);
        assert_eq!(conn.state(), State::Open);
        // Every pong is a valid frame; the newest ping is among those answered.
        let frames = harness::decode_frames(&out);
        assert_eq!(frames.last().map(|f| f.payload.clone()), Some(vec![99]));
    }
    // A close in the middle of a fragmented message ends it: the partial message is dropped
    // and never delivered, the close is answered.
    let mut bytes = masked(0x01, b"never ");
    bytes.extend(masked(0x89, b"p"));
    bytes.extend(masked(0x88, &harness::close_body(1000, b"")));
    bytes.extend(masked(0x80, b"finished"));
    let (result, events, out, conn) = harness::feed_all(harness::server(), &bytes, harness::Split::OneByte);
    assert_eq!(result, Ok(()));
    assert_eq!(events, [ping(b"p"), harness::close(1000, "")]);
    assert_eq!(conn.buffered_received(), 0);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(harness::close_code_in(&out), Some(Some(1000)));
}
