//! Decode benchmarks: a server turning masked client frames (RFC 6455 §5.2, §5.3) into whole
//! messages, wscore next to tungstenite, fastwebsockets, tokio-websockets and a minimal
//! hand-written decoder, on the same bytes fed the same way. Time is per message (the group's
//! throughput counts messages); see `benches/README.md`.

mod clock;
mod corpus;
mod paired;
mod transport;

use clock::BenchClock;
use corpus::{BINARY, SIZES, TEXT};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group};
use futures_util::StreamExt;
use std::hint::black_box;
use std::rc::Rc;
use transport::SegmentReader;
use wscore::{Config, Connection, Event, EventRef};

/// How the input reaches the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// All of it in one read.
    Whole,
    /// 1460-byte reads: one TCP segment at an Ethernet MTU.
    Segments,
    /// One byte per read: the worst case for a resumable parser.
    Bytewise,
    /// 64 KiB reads, as a server draining a busy socket into a buffer of that size gets them:
    /// a large frame starts in a read that does not hold it whole.
    Large,
}

impl Feed {
    fn name(self) -> &'static str {
        match self {
            Self::Whole => "whole",
            Self::Segments => "1460",
            Self::Bytewise => "bytewise",
            Self::Large => "65536",
        }
    }

    fn segment(self) -> usize {
        match self {
            Self::Whole => usize::MAX,
            Self::Segments => 1460,
            Self::Bytewise => 1,
            Self::Large => 64 << 10,
        }
    }
}

/// What the messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Binary,
    /// Text, all ASCII.
    Ascii,
    /// Text, mostly multi-byte code points.
    Utf8,
}

impl Payload {
    fn name(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Ascii => "text-ascii",
            Self::Utf8 => "text-utf8",
        }
    }

    fn opcode(self) -> u8 {
        if self == Self::Binary { BINARY } else { TEXT }
    }

    fn bytes(self, len: usize) -> Vec<u8> {
        match self {
            Self::Binary => corpus::binary(len),
            Self::Ascii => corpus::ascii_text(len),
            Self::Utf8 => corpus::multibyte_text(len),
        }
    }
}

/// One benchmark input: `messages` messages, each `payload`, encoded into `input`.
struct Case {
    group: String,
    parameter: String,
    input: Rc<[u8]>,
    payload: Vec<u8>,
    messages: usize,
    feed: Feed,
    fragmented: bool,
}

fn whole_messages(kind: Payload, feed: Feed, len: usize) -> Case {
    let payload = kind.bytes(len);
    let messages = corpus::batch(len);
    Case {
        group: format!("decode/{}/{}", kind.name(), feed.name()),
        parameter: len.to_string(),
        input: corpus::masked_messages(kind.opcode(), &payload, messages).into(),
        payload,
        messages,
        feed,
        fragmented: false,
    }
}

fn fragmented_messages(kind: Payload, feed: Feed, fragments: usize, fragment_len: usize) -> Case {
    let payload = kind.bytes(fragments * fragment_len);
    let messages = corpus::batch(payload.len());
    Case {
        group: format!("decode/fragmented-{}/{}", kind.name(), feed.name()),
        parameter: format!("{fragments}x{fragment_len}"),
        input: corpus::fragmented_messages(kind.opcode(), &payload, fragments, messages).into(),
        payload,
        messages,
        feed,
        fragmented: true,
    }
}

/// Every case, in the order they run.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for kind in [Payload::Binary, Payload::Ascii, Payload::Utf8] {
        for feed in [Feed::Whole, Feed::Segments, Feed::Bytewise, Feed::Large] {
            for len in SIZES {
                // One byte at a time through a large payload says nothing new and takes long;
                // 64 KiB reads only for messages they cannot hold whole, the case they are
                // for: smaller messages mostly arrive whole in them, as in the whole feed.
                if (feed == Feed::Bytewise && len > 16 << 10) || (feed == Feed::Large && len < 64 << 10) {
                    continue;
                }
                cases.push(whole_messages(kind, feed, len));
            }
        }
    }
    for kind in [Payload::Binary, Payload::Utf8] {
        for feed in [Feed::Whole, Feed::Segments] {
            // Few large fragments (reassembly copies) and many tiny ones (per-frame cost).
            cases.push(fragmented_messages(kind, feed, 16, 4 << 10));
            cases.push(fragmented_messages(kind, feed, 64, 16));
        }
    }
    cases
}

// ----- the minimal decoder (baseline) -----

/// The least work a correct server decoder can do: append the read to a buffer, parse each
/// complete frame's header, unmask its payload in place, validate text with the standard
/// library, and copy fragments into one reused message buffer. No limits, no control frames,
/// no error reporting, no events: the floor wscore's ratio is measured against.
#[derive(Default)]
struct MinimalDecoder {
    buf: Vec<u8>,
    message: Vec<u8>,
    message_is_text: bool,
}

impl MinimalDecoder {
    fn feed(&mut self, data: &[u8], on_message: &mut impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while let Some((header_len, payload_len, fin, opcode, key)) = parse_header(&self.buf[at..]) {
            let end = at + header_len + payload_len;
            if self.buf.len() < end {
                break;
            }
            let payload = &mut self.buf[at + header_len..end];
            unmask(payload, key);
            let text = if opcode == corpus::CONTINUATION { self.message_is_text } else { opcode == TEXT };
            if fin && opcode != corpus::CONTINUATION {
                assert!(!text || std::str::from_utf8(payload).is_ok(), "invalid text");
                on_message(payload);
            } else {
                if opcode != corpus::CONTINUATION {
                    self.message.clear();
                    self.message_is_text = text;
                }
                self.message.extend_from_slice(payload);
                if fin {
                    assert!(!text || std::str::from_utf8(&self.message).is_ok(), "invalid text");
                    on_message(&self.message);
                }
            }
            at = end;
        }
        self.buf.drain(..at);
    }
}

/// (header length, payload length, FIN, opcode, masking key), once the whole header is there.
fn parse_header(buf: &[u8]) -> Option<(usize, usize, bool, u8, [u8; 4])> {
    let [b0, b1, ..] = *buf else { return None };
    let (len, at) = match b1 & 0x7F {
        126 => (usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        short => (usize::from(short), 2),
    };
    let key = buf.get(at..at + 4)?.try_into().ok()?;
    Some((at + 4, len, b0 & 0x80 != 0, b0 & 0x0F, key))
}

/// XOR with the key 32 bytes at a time (the compiler turns the inner loop into vector XORs).
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let mut pattern = [0u8; 32];
    for (i, byte) in pattern.iter_mut().enumerate() {
        *byte = key[i % 4];
    }
    let mut blocks = payload.chunks_exact_mut(32);
    for block in &mut blocks {
        for (byte, k) in block.iter_mut().zip(pattern) {
            *byte ^= k;
        }
    }
    for (byte, k) in blocks.into_remainder().iter_mut().zip(pattern) {
        *byte ^= k;
    }
}

// ----- drivers: each decodes all of `case.input`, reporting every message -----

fn drive_baseline(decoder: &mut MinimalDecoder, case: &Case, on_message: &mut impl FnMut(&[u8])) {
    for read in case.input.chunks(case.feed.segment()) {
        decoder.feed(read, on_message);
    }
}

fn take_events(conn: &mut Connection, on_message: &mut impl FnMut(&[u8])) {
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Message(message) => on_message(message.as_bytes()),
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// The same, events lent (`poll_event_ref`) rather than handed over.
fn lend_events(conn: &mut Connection, on_message: &mut impl FnMut(&[u8])) {
    while let Some(event) = conn.poll_event_ref() {
        match event {
            EventRef::Message(message) => on_message(message.as_bytes()),
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// wscore's copying input, events lent.
fn drive_wscore_ref(conn: &mut Connection, case: &Case, on_message: &mut impl FnMut(&[u8])) {
    for read in case.input.chunks(case.feed.segment()) {
        conn.receive(read).expect("wscore rejected valid input");
        lend_events(conn, on_message);
    }
}

/// wscore's copying input: `receive(&read)`.
fn drive_wscore(conn: &mut Connection, case: &Case, on_message: &mut impl FnMut(&[u8])) {
    for read in case.input.chunks(case.feed.segment()) {
        conn.receive(read).expect("wscore rejected valid input");
        take_events(conn, on_message);
    }
}

/// wscore's zero-copy input: read into `receive_buffer()`, then `commit_received(n)` — what a
/// driver reading a socket does. A read is at most the offered room.
fn drive_wscore_zero_copy(conn: &mut Connection, case: &Case, on_message: &mut impl FnMut(&[u8])) {
    for read in case.input.chunks(case.feed.segment()) {
        let mut rest = read;
        while !rest.is_empty() {
            let room = conn.receive_buffer();
            let n = room.len().min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            conn.commit_received(n).expect("wscore rejected valid input");
            take_events(conn, on_message);
            rest = &rest[n..];
        }
    }
}

fn drive_tungstenite(ws: &mut tungstenite::WebSocket<SegmentReader>, case: &Case, on_message: &mut impl FnMut(&[u8])) {
    ws.get_ref().rewind();
    for _ in 0..case.messages {
        match ws.read().expect("tungstenite rejected valid input") {
            tungstenite::Message::Text(text) => on_message(text.as_bytes()),
            tungstenite::Message::Binary(data) => on_message(&data),
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// fastwebsockets reads frames; only its `FragmentCollector` reassembles (and validates)
/// fragmented messages, so it is used for those cases only.
enum FastWebSockets {
    Frames(fastwebsockets::WebSocket<SegmentReader>),
    Messages(fastwebsockets::FragmentCollector<SegmentReader>),
}

async fn drive_fastwebsockets(
    ws: &mut FastWebSockets,
    reader: &SegmentReader,
    case: &Case,
    on_message: &mut impl FnMut(&[u8]),
) {
    reader.rewind();
    for _ in 0..case.messages {
        let frame = match ws {
            FastWebSockets::Frames(ws) => ws.read_frame().await,
            FastWebSockets::Messages(ws) => ws.read_frame().await,
        };
        on_message(&frame.expect("fastwebsockets rejected valid input").payload);
    }
}

async fn drive_tokio_websockets(
    ws: &mut tokio_websockets::WebSocketStream<SegmentReader>,
    case: &Case,
    on_message: &mut impl FnMut(&[u8]),
) {
    ws.get_ref().rewind();
    for _ in 0..case.messages {
        let message = ws.next().await.expect("a message").expect("tokio-websockets rejected valid input");
        on_message(message.as_payload());
    }
}

// ----- registration -----

/// Times `drive`, having first run it once outside the clock to check it decodes every message
/// intact (only for benchmarks the command-line filter selects).
fn bench(
    group: &mut BenchmarkGroup<'_, BenchClock>,
    name: &str,
    case: &Case,
    mut drive: impl FnMut(&mut dyn FnMut(&[u8])),
) {
    let mut checked = false;
    group.bench_function(BenchmarkId::new(name, &case.parameter), |b| {
        if !checked {
            check(case, name, &mut drive);
            checked = true;
        }
        b.iter(|| {
            drive(&mut |message| {
                black_box(message);
            });
        });
    });
}

/// One implementation of a case: its name and a driver that decodes all of the case's input
/// once, reporting every message.
type Driver<'a> = (&'static str, Box<Drive<'a>>);

/// Decodes all of a case's input once, passing every message to the callback.
type Drive<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) + 'a;

/// Every implementation of `case`, in the order they run (the floor first).
fn drivers<'a>(case: &'a Case, runtime: &'a tokio::runtime::Runtime) -> Vec<Driver<'a>> {
    let mut drivers: Vec<Driver<'a>> = Vec::new();

    let mut decoder = MinimalDecoder::default();
    drivers.push(("baseline", Box::new(move |on| drive_baseline(&mut decoder, case, &mut |m| on(m)))));

    let mut conn = Connection::server(Config::default());
    drivers.push(("wscore", Box::new(move |on| drive_wscore(&mut conn, case, &mut |m| on(m)))));

    let mut conn = Connection::server(Config::default());
    drivers.push(("wscore_ref", Box::new(move |on| drive_wscore_ref(&mut conn, case, &mut |m| on(m)))));

    // The zero-copy path only differs when reads are smaller than the message; one byte at a
    // time it re-offers its whole read buffer per byte, so only the small sizes are run.
    let zero_copy_worth_it = match case.feed {
        Feed::Whole => false,
        Feed::Segments | Feed::Large => true,
        Feed::Bytewise => case.payload.len() <= 125,
    };
    if zero_copy_worth_it {
        let mut conn = Connection::server(Config::default());
        drivers.push(("wscore_zc", Box::new(move |on| drive_wscore_zero_copy(&mut conn, case, &mut |m| on(m)))));
    }

    let segment = case.feed.segment();
    let reader = SegmentReader::new(case.input.clone(), segment);
    let mut ws = tungstenite::WebSocket::from_raw_socket(reader, tungstenite::protocol::Role::Server, None);
    drivers.push(("tungstenite", Box::new(move |on| drive_tungstenite(&mut ws, case, &mut |m| on(m)))));

    let reader = SegmentReader::new(case.input.clone(), segment);
    let plain = fastwebsockets::WebSocket::after_handshake(reader.clone(), fastwebsockets::Role::Server);
    let mut ws = if case.fragmented {
        FastWebSockets::Messages(fastwebsockets::FragmentCollector::new(plain))
    } else {
        FastWebSockets::Frames(plain)
    };
    drivers.push((
        "fastwebsockets",
        Box::new(move |on| runtime.block_on(drive_fastwebsockets(&mut ws, &reader, case, &mut |m| on(m)))),
    ));

    let reader = SegmentReader::new(case.input.clone(), segment);
    let mut ws = tokio_websockets::ServerBuilder::new().serve(reader);
    drivers.push((
        "tokio-websockets",
        Box::new(move |on| runtime.block_on(drive_tokio_websockets(&mut ws, case, &mut |m| on(m)))),
    ));

    drivers
}

fn run_case(c: &mut Criterion<BenchClock>, case: &Case) {
    let mut group = c.benchmark_group(&case.group);
    group.throughput(Throughput::Elements(case.messages as u64));
    let runtime = transport::runtime();
    for (name, mut drive) in drivers(case, &runtime) {
        bench(&mut group, name, case, |on| drive(on));
    }
    group.finish();
}

fn decode(c: &mut Criterion<BenchClock>) {
    for case in cases() {
        run_case(c, &case);
    }
}

criterion_group! {
    name = benches;
    config = clock::criterion();
    targets = decode
}
/// Decodes `case` once with `drive` (implementation `name`) and checks that it reports every
/// message intact.
fn check(case: &Case, name: &str, drive: &mut Drive<'_>) {
    let mut seen = 0;
    drive(&mut |message| {
        assert!(message == case.payload, "{name} decoded {} a different message", case.group);
        seen += 1;
    });
    assert_eq!(seen, case.messages, "{name} decoded {} {}: wrong message count", case.group, case.parameter);
}

/// The paired mode (`WSCORE_PAIRED`, see `benches/paired`): the selected cases' implementations
/// timed interleaved, and a table of ratios.
fn run_paired(settings: &paired::Settings) {
    let mut rows = Vec::new();
    for case in cases() {
        let id = format!("{}/{}", case.group, case.parameter);
        if !settings.selects(&id) {
            continue;
        }
        let runtime = transport::runtime();
        let mut drivers = drivers(&case, &runtime);
        let mut runs: Vec<paired::Run<'_>> = drivers
            .iter_mut()
            .map(|(name, drive)| {
                check(&case, name, &mut **drive);
                let run: Box<dyn FnMut() + '_> = Box::new(move || {
                    drive(&mut |message| {
                        black_box(message);
                    });
                });
                (*name, run)
            })
            .collect();
        eprintln!("{id}");
        rows.push(paired::measure(&id, case.messages, &mut runs, settings));
    }
    paired::print(&rows, settings);
}

fn main() {
    if let Some(settings) = paired::Settings::from_env() {
        run_paired(&settings);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
