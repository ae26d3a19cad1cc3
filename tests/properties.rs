//! Property tests (proptest, fixed seeds): the frame header codec round-trips; any split of a
//! byte stream yields the same events; fragmented messages, valid or not, yield the same
//! events and error whole and in pieces; random operation sequences on a pair never panic and
//! only ever put valid frames on the wire; arbitrary bytes never make any parser panic.

mod harness;

use harness::{Pair, Pipe, Side, Split, binary, close, drain_events, feed, ping, pong, raw_frame, text};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use std::time::Duration;
use wscore::{
    Accept, ClientHandshake, ClientRequest, CloseCode, Config, Connection, Error, Event, FrameHeader, Instant, Message,
    MessageKind, OpCode, ProtocolError, ReceiveMode, SeededRandom, SendError, ServerHandshake,
};

/// A fixed seed per property, so every run checks the same cases.
fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..ProptestConfig::default() }
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn unicode(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(|chars| chars.into_iter().collect())
}

fn valid_close_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000..=1003u16, 1007..=1014u16, 3000..=4999u16]
}

// ----- the frame header codec -----

fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![0..=125u64, 126..=0xFFFFu64, 0x1_0000..=(u64::MAX >> 1), Just(126), Just(0xFFFF), Just(0x1_0000)]
}

proptest! {
    #![proptest_config(config(512, 1))]

    #[test]
    fn frame_header_roundtrip(
        opcode in opcode(),
        fin in any::<bool>(),
        rsv in any::<[bool; 3]>(),
        mask in any::<Option<[u8; 4]>>(),
        len in payload_len(),
    ) {
        // Control frames are never fragmented and carry at most 125 bytes.
        let (fin, len) = if opcode.is_control() { (true, len % 126) } else { (fin, len) };
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len: len };
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut out);
        prop_assert_eq!(n, header.encoded_len());
        prop_assert_eq!(FrameHeader::parse(&out[..n]), Ok(Some((header, n))));
        // Trailing bytes are not part of the header.
        let mut longer = out[..n].to_vec();
        longer.extend_from_slice(&[0xAA; 20]);
        prop_assert_eq!(FrameHeader::parse(&longer), Ok(Some((header, n))));
        for cut in 0..n {
            prop_assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None), "prefix of {}", cut);
        }
    }

    #[test]
    fn frame_header_parse_never_panics(bytes in payload(16)) {
        if let Ok(Some((header, n))) = FrameHeader::parse(&bytes) {
            prop_assert!(n <= bytes.len());
            let mut out = [0u8; FrameHeader::MAX_LEN];
            let len = header.encode(&mut out);
            prop_assert_eq!(&out[..len], &bytes[..n], "only minimal encodings parse");
        }
    }
}

// ----- any split of a byte stream yields the same events -----

#[derive(Debug, Clone)]
enum ClientOp {
    Text(String),
    Binary(Vec<u8>),
    /// A message sent with `send_fragment`, cut at these points (text may be cut anywhere,
    /// even inside a code point).
    Streamed {
        text: bool,
        data: Vec<u8>,
        cuts: Vec<Index>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        unicode(40).prop_map(ClientOp::Text),
        payload(300).prop_map(ClientOp::Binary),
        (unicode(40), payload(200), any::<bool>(), prop::collection::vec(any::<Index>(), 0..4)).prop_map(
            |(s, b, text, cuts)| ClientOp::Streamed { text, data: if text { s.into_bytes() } else { b }, cuts }
        ),
        payload(125).prop_map(ClientOp::Ping),
        payload(125).prop_map(ClientOp::Pong),
    ]
}

/// The message a whole or streamed data op produces, as an event.
fn message_event(is_text: bool, data: &[u8]) -> Event {
    if is_text { text(std::str::from_utf8(data).expect("valid text")) } else { binary(data) }
}

/// Sends `ops` (and the close) from a fresh client; returns its bytes and the events a server
/// must report for them.
fn client_transcript(
    ops: &[ClientOp],
    close_frame: &Option<(u16, String)>,
    fragment_size: usize,
    seed: u64,
) -> (Vec<u8>, Vec<Event>) {
    let config = Config::default().write_fragment_size(fragment_size);
    #[cfg(feature = "deflate")]
    let config = config.deflate(None);
    let mut client = Connection::client_with_random(config, Box::new(SeededRandom::new(seed)));
    let mut expected = Vec::new();
    // Each op's frames are taken before the next op: a ping may otherwise go out ahead of a
    // message still queued behind a large one, and arrive before it.
    let mut bytes = Vec::new();
    for op in ops {
        bytes.extend_from_slice(&client.take_transmit());
        match op {
            ClientOp::Text(s) => {
                client.send_text(s.clone()).unwrap();
                expected.push(text(s));
            }
            ClientOp::Binary(b) => {
                client.send_binary(b.clone()).unwrap();
                expected.push(binary(b));
            }
            ClientOp::Streamed { text, data, cuts } => {
                let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
                points.sort_unstable();
                points.push(data.len());
                let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
                let mut from = 0;
                for (i, &to) in points.iter().enumerate() {
                    let last = i == points.len() - 1;
                    client.send_fragment(kind, data[from..to].to_vec(), last).unwrap();
                    from = to;
                }
                expected.push(message_event(*text, data));
            }
            ClientOp::Ping(p) => {
                client.ping(p.clone()).unwrap();
                expected.push(ping(p));
            }
            ClientOp::Pong(p) => {
                client.pong(p.clone()).unwrap();
                expected.push(pong(p));
            }
        }
    }
    if let Some((code, reason)) = close_frame {
        client.close(CloseCode(*code), reason).unwrap();
        expected.push(close(*code, reason));
    }
    bytes.extend_from_slice(&client.take_transmit());
    (bytes, expected)
}

/// Feeds `bytes` to a fresh server cut into `sizes` (cycled), alternating the copying and the
/// zero-copy receive path as `zero_copy` (cycled) says.
fn server_events(bytes: &[u8], mode: ReceiveMode, sizes: &[usize], zero_copy: &[bool]) -> Vec<Event> {
    let mut server = Connection::server(Config::default().receive_mode(mode));
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        feed(&mut server, &rest[..n], zero_copy[i % zero_copy.len()]).expect("valid stream");
        rest = &rest[n..];
        i += 1;
    }
    drain_events(&mut server)
}

/// Like [`server_events`], but takes the events after every read, each one either handed over
/// (`poll_event`) or lent (`poll_event_ref`, then copied) as `lend` (cycled) says, and stops
/// taking at a read after one in `stop` (cycled, `false` = go on), so that lent and queued
/// events wait across later reads.
fn server_events_lent(
    bytes: &[u8],
    mode: ReceiveMode,
    sizes: &[usize],
    zero_copy: &[bool],
    lend: &[bool],
    stop: &[bool],
) -> Vec<Event> {
    let mut server = Connection::server(Config::default().receive_mode(mode));
    let mut events = Vec::new();
    let mut rest = bytes;
    let (mut read, mut poll) = (0, 0);
    let mut take = |server: &mut Connection, events: &mut Vec<Event>, all: bool| loop {
        poll += 1;
        let event =
            if lend[poll % lend.len()] { server.poll_event_ref().map(|e| e.to_event()) } else { server.poll_event() };
        match event {
            Some(event) => events.push(event),
            None => break,
        }
        if !all && stop[poll % stop.len()] {
            break;
        }
    };
    while !rest.is_empty() {
        let n = sizes[read % sizes.len()].min(rest.len());
        feed(&mut server, &rest[..n], zero_copy[read % zero_copy.len()]).expect("valid stream");
        rest = &rest[n..];
        read += 1;
        take(&mut server, &mut events, false);
    }
    take(&mut server, &mut events, true);
    events
}

/// Reassembles streamed pieces into whole-message events.
fn reassemble(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Fragment(f) => {
                assert_eq!(f.first, current.is_none());
                let (_, data) = current.get_or_insert_with(|| (f.kind, Vec::new()));
                data.extend_from_slice(&f.data);
                if f.last {
                    let (kind, data) = current.take().unwrap();
                    out.push(message_event(kind == MessageKind::Text, &data));
                }
            }
            other => out.push(other),
        }
    }
    assert!(current.is_none());
    out
}

proptest! {
    #![proptest_config(config(96, 2))]

    #[test]
    fn any_split_yields_the_same_events(
        ops in prop::collection::vec(client_op(), 0..10),
        close_frame in prop::option::of((valid_close_code(), unicode(30))),
        fragment_size in prop_oneof![1..=8usize, 9..=300usize, Just(64 << 10)],
        seed in any::<u64>(),
        sizes in prop::collection::vec(1..=40usize, 1..20),
        zero_copy in prop::collection::vec(any::<bool>(), 1..8),
        lend in prop::collection::vec(any::<bool>(), 1..8),
        stop in prop::collection::vec(prop::bool::weighted(0.3), 1..8),
    ) {
        let (bytes, expected) = client_transcript(&ops, &close_frame, fragment_size, seed);
        let whole = server_events(&bytes, ReceiveMode::Message, &[bytes.len().max(1)], &[false]);
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(&server_events(&bytes, ReceiveMode::Message, &[1], &[false]), &expected);
        prop_assert_eq!(&server_events(&bytes, ReceiveMode::Message, &sizes, &zero_copy), &expected);
        let streamed = server_events(&bytes, ReceiveMode::Stream, &sizes, &zero_copy);
        prop_assert_eq!(&reassemble(streamed), &expected);
        // Events lent or taken, as they come or left waiting across reads.
        let lent = |mode, sizes: &[usize]| server_events_lent(&bytes, mode, sizes, &zero_copy, &lend, &stop);
        prop_assert_eq!(&lent(ReceiveMode::Message, &[bytes.len().max(1)]), &expected);
        prop_assert_eq!(&lent(ReceiveMode::Message, &sizes), &expected);
        prop_assert_eq!(&reassemble(lent(ReceiveMode::Stream, &sizes)), &expected);
    }
}

/// A message op of about `len` bytes: binary, or text of multi-byte characters (so UTF-8
/// sequences straddle every cut).
fn sized_op(len: usize, is_text: bool, seed: u8) -> ClientOp {
    if is_text {
        let chars = ['a', 'é', '€', '😀'];
        let mut s = String::new();
        let mut i = usize::from(seed);
        while s.len() < len {
            s.push(chars[i % chars.len()]);
            i += 1;
        }
        ClientOp::Text(s)
    } else {
        ClientOp::Binary((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect())
    }
}

proptest! {
    #![proptest_config(config(32, 5))]

    /// Large inputs handed to `receive` at once are taken a few whole frames at a time; the
    /// events are the same as for any other split, whatever the frame sizes around the cuts.
    #[test]
    fn large_inputs_yield_the_same_events(
        messages in prop::collection::vec(
            (prop_oneof![0..400usize, 900..1100usize, 15_000..17_500usize, 60_000..70_000usize], any::<bool>(), any::<u8>()),
            1..10,
        ),
        pings in prop::collection::vec(any::<bool>(), 1..10),
        fragment_size in prop_oneof![Just(64 << 10), 500..20_000usize],
        seed in any::<u64>(),
        sizes in prop::collection::vec(1..=3000usize, 1..8),
        zero_copy in prop::collection::vec(any::<bool>(), 1..4),
        lend in prop::collection::vec(any::<bool>(), 1..8),
        stop in prop::collection::vec(prop::bool::weighted(0.3), 1..8),
    ) {
        let mut ops = Vec::new();
        for (i, &(len, is_text, byte)) in messages.iter().enumerate() {
            ops.push(sized_op(len, is_text, byte));
            if pings[i % pings.len()] {
                ops.push(ClientOp::Ping(vec![byte; 3]));
            }
        }
        let (bytes, expected) = client_transcript(&ops, &None, fragment_size, seed);
        let whole = server_events(&bytes, ReceiveMode::Message, &[bytes.len().max(1)], &[false]);
        prop_assert_eq!(&whole, &expected);
        // Large inputs that start mid-frame, and mixed with zero-copy reads.
        let halves = [bytes.len() / 2 + 1, bytes.len()];
        prop_assert_eq!(&server_events(&bytes, ReceiveMode::Message, &halves, &[false]), &expected);
        prop_assert_eq!(&server_events(&bytes, ReceiveMode::Message, &sizes, &zero_copy), &expected);
        let streamed = server_events(&bytes, ReceiveMode::Stream, &[bytes.len().max(1)], &[false]);
        prop_assert_eq!(&reassemble(streamed), &expected);
        // Reads that go on with a frame's payload are unmasked as they are copied in, in
        // both modes.
        let streamed = server_events(&bytes, ReceiveMode::Stream, &sizes, &zero_copy);
        prop_assert_eq!(&reassemble(streamed), &expected);
        // Events lent or taken, as they come or left waiting across reads.
        let whole = [bytes.len().max(1)];
        prop_assert_eq!(&server_events_lent(&bytes, ReceiveMode::Message, &whole, &[false], &lend, &stop), &expected);
        prop_assert_eq!(&server_events_lent(&bytes, ReceiveMode::Message, &sizes, &zero_copy, &lend, &stop), &expected);
    }
}

// ----- fragmented messages, valid or not: whole frames and frames in pieces agree -----

/// A fragmented message as frames: text (cut anywhere, so code points straddle fragments) or
/// binary, 1-9 fragments of 0-300 bytes, pings between them; and maybe one fault — a frame's
/// first byte replaced (RSV bits, reserved or data opcodes), its mask dropped, its length
/// given in 16 bits where 7 would do, a code point cut short or a byte made invalid.
fn fragmented_message() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        (unicode(60), prop::collection::vec(any::<Index>(), 0..8)).prop_map(|(text, cuts)| {
            let bytes = text.into_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            points.push(bytes.len());
            let mut from = 0;
            let pieces = points.iter().map(|&to| std::mem::replace(&mut from, to)..to).map(|r| bytes[r].to_vec());
            (true, pieces.collect::<Vec<_>>())
        }),
        prop::collection::vec(prop_oneof![3 => payload(20), 1 => payload(300)], 1..9).prop_map(|p| (false, p)),
    ];
    let fault = prop::option::weighted(0.4, (any::<Index>(), 0..5u8, any::<u8>()));
    (pieces, fault, prop::collection::vec(any::<Index>(), 0..3)).prop_map(|((is_text, pieces), fault, pings)| {
        let count = pieces.len();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for (i, mut piece) in pieces.into_iter().enumerate() {
            let opcode = if i > 0 {
                0x00
            } else if is_text {
                0x01
            } else {
                0x02
            };
            let fin = if i + 1 == count { 0x80 } else { 0 };
            let mut b0 = fin | opcode;
            let (mut masked, mut long) = (true, false);
            if let Some((at, kind, byte)) = fault.filter(|(at, ..)| at.index(count) == i) {
                match kind {
                    0 => b0 = byte,
                    1 => masked = false,
                    2 => long = piece.len() < 126,
                    // A code point cut short: what follows, in this fragment or the next, is
                    // not its continuation.
                    3 => piece.push(0xE2),
                    _ => match piece.len() {
                        0 => piece.push(0xFF),
                        n => piece[at.index(n)] = 0xFF,
                    },
                }
            }
            let frame = raw_frame(b0, masked.then_some(harness::MASK), &piece);
            frames.push(if long {
                // The same frame with its length in 16 bits: not minimal, a protocol error.
                let mut frame16 = vec![b0, (frame[1] & 0x80) | 126, 0, piece.len() as u8];
                frame16.extend_from_slice(&frame[2..]);
                frame16
            } else {
                frame
            });
        }
        for at in pings {
            let at = at.index(frames.len() + 1);
            frames.insert(at, raw_frame(0x89, Some(harness::MASK), b"ping"));
        }
        frames.concat()
    })
}

/// The events a server reports for `bytes` read `read` bytes at a time (copied in, or read
/// into its buffer with `zero_copy`), up to the first error, and that error.
fn fragments_outcome(bytes: &[u8], read: usize, zero_copy: bool) -> (Vec<Event>, Option<String>) {
    let config = Config::default().max_fragments(6).max_message_size(500).max_frame_size(250);
    let mut server = Connection::server(config);
    let mut events = Vec::new();
    for piece in bytes.chunks(read) {
        let result = feed(&mut server, piece, zero_copy);
        events.extend(drain_events(&mut server));
        if let Err(e) = result {
            return (events, Some(format!("{e:?} (close code {})", e.close_code().0)));
        }
    }
    (events, None)
}

proptest! {
    #![proptest_config(config(512, 5))]

    /// Whole continuation frames take a shortcut (no per-frame state); frames in pieces go
    /// the general way. Both must see the same messages and fail at the same frame the same
    /// way: limits, bad bits, non-minimal lengths, invalid UTF-8 across fragments.
    #[test]
    fn fragments_whole_or_in_pieces_yield_the_same_outcome(
        messages in prop::collection::vec(fragmented_message(), 1..6),
        read in 2..=64usize,
    ) {
        let bytes = messages.concat();
        let whole = fragments_outcome(&bytes, bytes.len(), false);
        prop_assert_eq!(&fragments_outcome(&bytes, bytes.len(), true), &whole);
        prop_assert_eq!(&fragments_outcome(&bytes, 1, false), &whole);
        prop_assert_eq!(&fragments_outcome(&bytes, read, false), &whole);
        prop_assert_eq!(&fragments_outcome(&bytes, read, true), &whole);
    }
}

// ----- random operation sequences on a pair -----

#[derive(Debug, Clone)]
enum PairOp {
    Text(bool, String),
    Binary(bool, Vec<u8>),
    /// A large binary message of one repeated byte (to back the output up).
    Large(bool, usize, u8),
    /// A piece of a streamed message; text pieces are whole strings so the message stays valid.
    Piece(bool, bool, String, bool),
    Ping(bool, Vec<u8>),
    Pong(bool, Vec<u8>),
    Close(bool, u16, String),
    /// Move up to this many bytes from one end to the other.
    Deliver(bool, usize),
    Events(bool),
    Advance(u64),
    Timeout(bool),
    Eof(bool),
}

fn pair_op() -> impl Strategy<Value = PairOp> {
    let side = any::<bool>;
    prop_oneof![
        6 => (side(), unicode(20)).prop_map(|(c, s)| PairOp::Text(c, s)),
        6 => (side(), payload(200)).prop_map(|(c, b)| PairOp::Binary(c, b)),
        2 => (side(), 10_000..150_000usize, any::<u8>()).prop_map(|(c, n, b)| PairOp::Large(c, n, b)),
        6 => (side(), any::<bool>(), unicode(10), any::<bool>()).prop_map(|(c, t, s, l)| PairOp::Piece(c, t, s, l)),
        4 => (side(), payload(130)).prop_map(|(c, p)| PairOp::Ping(c, p)),
        2 => (side(), payload(130)).prop_map(|(c, p)| PairOp::Pong(c, p)),
        1 => (side(), prop_oneof![valid_close_code(), any::<u16>()], unicode(40))
            .prop_map(|(c, code, r)| PairOp::Close(c, code, r)),
        20 => (side(), prop_oneof![1..=16usize, 1..=70_000usize]).prop_map(|(c, n)| PairOp::Deliver(c, n)),
        8 => side().prop_map(PairOp::Events),
        4 => prop_oneof![0..=100u64, 0..=10_000u64].prop_map(PairOp::Advance),
        2 => side().prop_map(PairOp::Timeout),
        1 => side().prop_map(PairOp::Eof),
    ]
}

#[derive(Debug, Clone)]
struct PairSetup {
    keepalive: bool,
    fragment_size: usize,
    small_limits: bool,
    stream: bool,
    compressed: bool,
}

fn pair_setup() -> impl Strategy<Value = PairSetup> {
    (any::<bool>(), prop_oneof![1..=64usize, 65..=70_000usize], any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(keepalive, fragment_size, small_limits, stream, compressed)| PairSetup {
            keepalive,
            fragment_size,
            small_limits,
            stream,
            compressed,
        },
    )
}

/// One end of the random pair: the harness side, plus what the application queued.
struct End {
    side: Side,
    /// Whole messages queued successfully, as the peer should see them.
    sent: Vec<Event>,
    /// A streamed message being queued.
    streaming: Option<(MessageKind, Vec<u8>)>,
}

impl End {
    fn new(conn: Connection) -> Self {
        Self { side: Side::new(conn), sent: Vec::new(), streaming: None }
    }

    /// Runs a command; a refusal must leave the connection unchanged.
    fn command(&mut self, f: impl FnOnce(&mut Connection) -> Result<(), SendError>) -> bool {
        let before = (self.side.conn.buffered_amount(), self.side.conn.state());
        match f(&mut self.side.conn) {
            Ok(()) => true,
            Err(_) => {
                assert_eq!((self.side.conn.buffered_amount(), self.side.conn.state()), before, "refused, unchanged");
                false
            }
        }
    }

    fn pull(&mut self) {
        let events = drain_events(&mut self.side.conn);
        self.side.events.extend(events);
    }
}

fn end_config(setup: &PairSetup, stream: bool) -> Config {
    let mut config = Config::default()
        .write_fragment_size(setup.fragment_size)
        .close_timeout(Duration::from_secs(4))
        .receive_mode(if stream { ReceiveMode::Stream } else { ReceiveMode::Message });
    if setup.keepalive {
        config = config.keepalive_interval(Some(Duration::from_secs(5))).keepalive_timeout(Duration::from_secs(3));
    }
    if setup.small_limits {
        config = config.max_message_size(50_000).max_frame_size(30_000).max_fragments(200);
    }
    #[cfg(feature = "deflate")]
    let config = if setup.compressed { config } else { config.deflate(None) };
    config
}

/// A connection with no limits, of the role opposite to `writer`, to check what `writer`
/// wrote; it decodes with the extension parameters `reader` agreed on.
#[cfg_attr(not(feature = "deflate"), allow(unused_variables))]
fn checker_for(writer: &Connection, reader: &Connection) -> Connection {
    let config = Config::unlimited();
    let checker = match writer.role() {
        wscore::Role::Client => Connection::server(config),
        wscore::Role::Server => Connection::client_with_random(config, Box::new(SeededRandom::new(0))),
    };
    #[cfg(feature = "deflate")]
    let checker = match reader.deflate_params() {
        Some(params) => checker.with_deflate(params),
        None => checker,
    };
    checker
}

fn run_pair_ops(setup: &PairSetup, ops: &[PairOp]) {
    let client_config = end_config(setup, false);
    let server_config = end_config(setup, setup.stream);
    let pair = if setup.compressed {
        harness::handshake_pair(client_config, server_config, Split::Whole)
    } else {
        Pair::new(client_config, server_config, Split::Whole)
    };
    #[cfg(feature = "deflate")]
    assert_eq!(pair.client.conn.deflate_params().is_some(), setup.compressed);
    let mut ends = [End::new(pair.client.conn), End::new(pair.server.conn)];
    // checkers[i] checks what ends[i] writes.
    let mut checkers =
        [checker_for(&ends[0].side.conn, &ends[1].side.conn), checker_for(&ends[1].side.conn, &ends[0].side.conn)];
    let mut now_ms = harness::START_MS;
    let index = |client: bool| usize::from(!client);
    for op in ops {
        match op.clone() {
            PairOp::Text(c, s) => {
                let end = &mut ends[index(c)];
                if end.command(|conn| conn.send_text(s.clone())) {
                    end.sent.push(text(&s));
                }
            }
            PairOp::Binary(c, b) => {
                let end = &mut ends[index(c)];
                if end.command(|conn| conn.send_binary(b.clone())) {
                    end.sent.push(binary(&b));
                }
            }
            PairOp::Large(c, n, byte) => {
                let end = &mut ends[index(c)];
                if end.command(|conn| conn.send(Message::Binary(vec![byte; n].into()))) {
                    end.sent.push(binary(&vec![byte; n]));
                }
            }
            PairOp::Piece(c, is_text, s, last) => {
                let end = &mut ends[index(c)];
                let kind = end
                    .streaming
                    .as_ref()
                    .map_or(if is_text { MessageKind::Text } else { MessageKind::Binary }, |(kind, _)| *kind);
                if end.command(|conn| conn.send_fragment(kind, s.clone().into_bytes(), last)) {
                    let (_, data) = end.streaming.get_or_insert_with(|| (kind, Vec::new()));
                    data.extend_from_slice(s.as_bytes());
                    if last {
                        let (kind, data) = end.streaming.take().unwrap();
                        end.sent.push(message_event(kind == MessageKind::Text, &data));
                    }
                }
            }
            PairOp::Ping(c, p) => {
                ends[index(c)].command(|conn| conn.ping(p.clone()));
            }
            PairOp::Pong(c, p) => {
                ends[index(c)].command(|conn| conn.pong(p.clone()));
            }
            PairOp::Close(c, code, reason) => {
                ends[index(c)].command(|conn| conn.close(CloseCode(code), &reason));
            }
            PairOp::Deliver(c, max) => {
                let [client, server] = &mut ends;
                let (from, to) = if c { (client, server) } else { (server, client) };
                deliver(&mut from.side, &mut to.side, max);
            }
            PairOp::Events(c) => ends[index(c)].pull(),
            PairOp::Advance(ms) => {
                now_ms += ms;
                let now = Instant::from_millis(now_ms);
                for end in &mut ends {
                    let side = &mut end.side;
                    if !side.transport_closed && side.conn.poll_timeout().is_some_and(|at| at <= now) {
                        let result = side.conn.handle_timeout(now);
                        side.record(result);
                    }
                }
            }
            PairOp::Timeout(c) => {
                let side = &mut ends[index(c)].side;
                if !side.transport_closed {
                    let result = side.conn.handle_timeout(Instant::from_millis(now_ms));
                    side.record(result);
                }
            }
            PairOp::Eof(c) => {
                let side = &mut ends[index(c)].side;
                if !side.transport_closed && !side.eof_received {
                    side.eof_received = true;
                    let result = side.conn.receive_eof();
                    side.record(result);
                }
            }
        }
        for end in &mut ends {
            if !end.side.transport_closed && end.side.conn.should_close_transport() {
                end.side.transport_closed = true;
            }
        }
    }
    for end in &mut ends {
        end.pull();
    }
    for (i, checker) in checkers.iter_mut().enumerate() {
        let (writer, reader) = (&ends[i], &ends[1 - i]);
        // Everything the writer wrote is a valid stream for its peer...
        let result = checker.receive(&writer.side.wire);
        assert_eq!(result, Ok(()), "{:?} wrote an invalid stream", writer.side.conn.role());
        let checked = drain_events(checker);
        // ...whose messages are a prefix of what the writer's application queued.
        let messages: Vec<&Event> = checked.iter().filter(|e| matches!(e, Event::Message(_))).collect();
        let sent: Vec<&Event> = writer.sent.iter().take(messages.len()).collect();
        assert_eq!(messages, sent, "{:?}'s messages", writer.side.conn.role());
        // The reader saw a prefix of the same events, unless its own limits stopped it.
        let seen = &reader.side.events;
        match &reader.side.error {
            Some(Error::Protocol(err)) => {
                assert!(setup.small_limits, "unexpected {err:?}");
                assert!(
                    matches!(
                        err,
                        ProtocolError::MessageTooLarge { .. }
                            | ProtocolError::FrameTooLarge { .. }
                            | ProtocolError::TooManyFragments { .. }
                    ),
                    "unexpected {err:?}"
                );
            }
            _ if reader.side.conn.config().get_receive_mode() == ReceiveMode::Message => {
                assert!(seen.len() <= checked.len(), "reader saw more than was written");
                assert_eq!(&checked[..seen.len()], &seen[..]);
            }
            _ => {}
        }
        // Nothing follows the peer's close.
        if let Some(at) = seen.iter().position(|e| matches!(e, Event::Close(_))) {
            assert_eq!(at, seen.len() - 1, "events after Close");
        }
    }
}

/// Moves up to `max` bytes from one end to the other, as a driver would.
fn deliver(from: &mut Side, to: &mut Side, max: usize) {
    if from.transport_closed || to.transport_closed || to.eof_received {
        return;
    }
    let mut left = max;
    while left > 0 {
        let chunk = from.conn.transmit();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len().min(left);
        let data = chunk[..n].to_vec();
        from.conn.advance_transmit(n);
        from.wire.extend_from_slice(&data);
        let result = feed(&mut to.conn, &data, n % 2 == 0);
        to.record(result);
        left -= n;
    }
}

proptest! {
    #![proptest_config(config(256, 3))]

    #[test]
    fn random_operations_on_a_pair(setup in pair_setup(), ops in prop::collection::vec(pair_op(), 0..60)) {
        run_pair_ops(&setup, &ops);
    }
}

// ----- arbitrary input never panics -----

/// A frame with arbitrary first byte, mask bit and payload: more likely than random bytes to
/// get past the header checks.
fn random_frame() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), any::<bool>(), payload(140))
        .prop_map(|(b0, masked, p)| raw_frame(b0, masked.then_some(harness::MASK), &p))
}

fn random_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![payload(600), prop::collection::vec(random_frame(), 0..8).prop_map(|frames| frames.concat()),]
}

/// Feeds `bytes` in pieces cut by `seed`, checking errors are sticky; then EOF and a timeout.
fn survive(conn: Connection, bytes: &[u8], seed: u64) {
    let mut side = Side::new(conn);
    let mut pipe = Pipe::new(Split::Random(seed));
    for piece in pipe.pieces(bytes) {
        let zero_copy = pipe.zero_copy();
        let result = feed(&mut side.conn, piece, zero_copy);
        side.record(result);
        side.events.extend(drain_events(&mut side.conn));
    }
    let _ = side.conn.take_transmit();
    let result = side.conn.handle_timeout(Instant::from_millis(u64::MAX / 2_000_000));
    side.record(result);
    let result = side.conn.receive_eof();
    side.record(result);
    assert!(side.conn.should_close_transport());
}

proptest! {
    #![proptest_config(config(384, 4))]

    #[test]
    fn connections_survive_arbitrary_bytes(bytes in random_stream(), seed in any::<u64>(), stream in any::<bool>()) {
        let mode = if stream { ReceiveMode::Stream } else { ReceiveMode::Message };
        let config = Config::default().receive_mode(mode).max_message_size(300).max_fragments(4);
        survive(Connection::server(config.clone()), &bytes, seed);
        survive(Connection::client_with_random(config, Box::new(SeededRandom::new(seed))), &bytes, seed);
    }

    #[test]
    fn server_handshake_survives_arbitrary_bytes(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"GET / HTTP/1.1\r\n",
            b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        ]),
        bytes in payload(300),
        seed in any::<u64>(),
    ) {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        let config = Config::default().max_handshake_size(400).max_headers(8);
        let mut handshake = ServerHandshake::new(config);
        let _ = handshake.handle_timeout(Instant::from_millis(1));
        let mut pipe = Pipe::new(Split::Random(seed));
        let mut outcome = Ok(false);
        for piece in pipe.pieces(&input) {
            outcome = handshake.receive(piece).map(|r| r.is_some());
            if let Err(err) = &outcome {
                let _ = err.response();
                prop_assert_eq!(handshake.receive(b"x").map(|r| r.is_some()), outcome.clone());
                break;
            }
        }
        if outcome == Ok(true) {
            let accept = Accept::new().header("X-Test", "1");
            if let Ok(mut conn) = handshake.accept(accept) {
                let _ = conn.take_transmit();
                let _ = drain_events(&mut conn);
            }
        } else {
            let _ = handshake.handle_timeout(Instant::from_millis(60_000));
        }
    }

    #[test]
    fn client_handshake_survives_arbitrary_bytes(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"HTTP/1.1 101 Switching Protocols\r\n",
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
        ]),
        bytes in payload(300),
        seed in any::<u64>(),
    ) {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        let request = ClientRequest::from_url("ws://example.com/").unwrap().protocol("chat");
        let config = Config::default().max_handshake_size(400).max_headers(8);
        let mut handshake = ClientHandshake::with_random(request, config, Box::new(SeededRandom::new(seed)));
        let mut pipe = Pipe::new(Split::Random(seed));
        let mut done = false;
        for piece in pipe.pieces(&input) {
            match handshake.receive(piece) {
                Ok(Some(mut conn)) => {
                    let _ = drain_events(&mut conn);
                    done = true;
                    break;
                }
                Ok(None) => {}
                Err(_) => {
                    done = true;
                    break;
                }
            }
        }
        if !done {
            prop_assert!(handshake.receive_eof().is_err());
        }
    }
}
