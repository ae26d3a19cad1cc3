//! A client and a server `Connection` talking through an in-memory transport, driven by an
//! arbitrary sequence of operations (RFC 6455 §5-§7, RFC 7692 when deflate is on).
//!
//! Input: a 21-byte plan (see `Plan`; all zero = no compression, default settings, events
//! polled after every step), then operations until the input ends. Each operation is one byte
//! (bit 0: 0 = client, 1 = server; `(b >> 1) % 16` = which, see `Harness::op`) followed by its
//! operands. Besides the API calls, operations send bursts of small messages (so that one
//! delivery carries many whole frames: the receive path's batched fast path), messages at the
//! frame-length boundaries (125/126, 65535/65536), and inject batches of whole frames with
//! invalid UTF-8 after valid ones, and call `release_buffers`.
//!
//! Invariants: no panic; buffered output stays within `max_write_buffer` plus one operation's
//! worth (plus what the peer provokes, encoded at most 64 KiB ahead); buffered input stays
//! within what was received plus the message being inflated; a side whose incoming stream
//! carried only its peer's output (no injected bytes) never reports a `ProtocolError`, and
//! receives exactly the messages its peer sent, in order; when both ends are healthy at the
//! end, delivering everything delivers every message sent; when the server closes the
//! transport after a clean close handshake, the client's end of stream is clean. An injected
//! batch arriving at a message boundary yields exactly the messages and pings before the first
//! invalid frame, in order, then fails with `InvalidUtf8` (1007). `release_buffers` changes
//! nothing observable: right away (output, buffered amounts, state, deadline), and over the
//! whole run, whose transcript (every byte delivered, every event, every input's result) is
//! the same when the input is run again with those calls left out — but for where the pieces
//! of a streamed message end, which follows the room offered for zero-copy reads.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::io::IoSlice;
use wscore::{
    CloseCode, Config, Connection, DeflateConfig, DeflateParams, Error, Event, Instant, Message, MessageKind, OpCode,
    ProtocolError, ReceiveMode, Role, SeededRandom, State,
};
use wscore_fuzz::{byte, frame, take, u16_le};

/// Stop sending once this much payload was queued in one run (keeps executions fast).
const SEND_BUDGET: usize = 256 << 10;
/// Close codes to pick from: valid ones, and a few an application may not send.
const CLOSE_CODES: [u16; 18] =
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999, 1005, 1006, 999, 5000];
/// Payload lengths around the frame header's length encodings (7-bit, 16-bit, 64-bit) and the
/// default read and fragment sizes.
const BOUNDARIES: [usize; 8] = [0, 125, 126, 4096, 16384, 65535, 65536, 1 << 17];
/// Ways for text to be invalid UTF-8: a stray continuation byte, a truncated sequence followed
/// by ASCII, an overlong encoding, a surrogate, a code point past U+10FFFF, 0xFF.
const INVALID_UTF8: [&[u8]; 6] = [b"\x80", b"\xe2\x82a", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff"];

/// What a run did, in order: compared between a run and its replay without `release_buffers`.
#[derive(Debug, PartialEq)]
enum Record {
    Event(usize, Event),
    Delivered(usize, Vec<u8>),
    Result(usize, Result<(), Error>),
    Step { buffered: [usize; 2], received: [usize; 2], states: [State; 2] },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct SideKnobs {
    stream_mode: bool,
    /// 0: default (64 KiB); else this many bytes per frame.
    write_fragment_size: u8,
    no_auto_pong: bool,
    /// 0: off; else a keepalive ping every b × 100 ms.
    keepalive: u8,
    /// 0: default (16 MiB); else b × 64 bytes.
    max_write_buffer: u8,
    /// Poll events only on `PollEvents` operations (else after every step).
    lazy_events: bool,
    /// `read_buffer_size` b + 1 (0: default).
    read_buffer: u8,
}

#[derive(Arbitrary, Debug)]
struct Plan {
    deflate: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// See `window_bits`.
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    /// b % 10.
    level: u8,
    threshold: u8,
    client: SideKnobs,
    server: SideKnobs,
}

impl SideKnobs {
    fn config(self, plan: &Plan) -> Config {
        let mut config = Config::default()
            // Fragment counts are the sender's choice here (1-byte frames are allowed).
            .max_fragments(usize::MAX)
            .receive_mode(if self.stream_mode { ReceiveMode::Stream } else { ReceiveMode::Message })
            .auto_pong(!self.no_auto_pong)
            .deflate(Some(
                DeflateConfig::default().level(u32::from(plan.level % 10)).threshold(usize::from(plan.threshold)),
            ));
        if self.write_fragment_size != 0 {
            config = config.write_fragment_size(usize::from(self.write_fragment_size));
        }
        if self.keepalive != 0 {
            config = config.keepalive_interval(Some(std::time::Duration::from_millis(u64::from(self.keepalive) * 100)));
        }
        if self.max_write_buffer != 0 {
            config = config.max_write_buffer(usize::from(self.max_write_buffer) * 64);
        }
        if self.read_buffer != 0 {
            config = config.read_buffer_size(usize::from(self.read_buffer) + 1);
        }
        config
    }

    fn max_write_buffer(self) -> usize {
        if self.max_write_buffer == 0 { 16 << 20 } else { usize::from(self.max_write_buffer) * 64 }
    }
}

/// One end: the connection and what the harness knows about it.
struct Side {
    conn: Connection,
    knobs: SideKnobs,
    /// Raw bytes were injected into this side's incoming stream.
    dirty: bool,
    /// Bytes this side received (delivered or injected).
    received: usize,
    /// Messages this side sent, not yet seen by the peer.
    sent: VecDeque<Message>,
    /// Payload bytes this side queued in total.
    sent_bytes: usize,
    /// A streamed message this side is sending: its kind and bytes so far.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// Text bytes held back so streamed pieces can end inside a code point.
    carry: Vec<u8>,
    /// A streamed message this side is receiving.
    receiving: Option<(MessageKind, Vec<u8>)>,
    /// The most one operation added to the output.
    max_op_cost: usize,
    /// The next event taken is lent (`poll_event_ref`) rather than handed over: they alternate.
    lend_next: bool,
}

impl Side {
    /// The next event, lent and copied or handed over in turn (the two must agree).
    fn take_event(&mut self) -> Option<Event> {
        self.lend_next = !self.lend_next;
        if self.lend_next { self.conn.poll_event_ref().map(|event| event.to_event()) } else { self.conn.poll_event() }
    }

    fn new(conn: Connection, knobs: SideKnobs) -> Self {
        Self {
            conn,
            knobs,
            dirty: false,
            received: 0,
            sent: VecDeque::new(),
            sent_bytes: 0,
            sending: None,
            lend_next: false,
            carry: Vec::new(),
            receiving: None,
            max_op_cost: 0,
        }
    }
}

struct Harness {
    sides: [Side; 2],
    now: Instant,
    /// The transport was shut down: nothing is delivered any more.
    closed: bool,
    /// Call `release_buffers` on its operations (else they do nothing: the replay).
    honor_release: bool,
    /// How many `release_buffers` operations the input has.
    release_ops: usize,
    transcript: Vec<Record>,
}

/// 15 - (b % 8) (the valid range, 15 for 0), or with the top bit set b & 0x1F: values outside
/// 8..=15 that an application may put in the public `DeflateParams` fields.
fn window_bits(b: u8) -> u8 {
    if b & 0x80 != 0 { b & 0x1F } else { 15 - b % 8 }
}

fn name(i: usize) -> &'static str {
    if i == 0 { "client" } else { "server" }
}

impl Harness {
    /// Checks an input's result: a clean side never blames its peer for a protocol violation.
    fn check_result(&mut self, i: usize, result: &Result<(), Error>) {
        if let Err(Error::Protocol(p)) = result {
            assert!(self.sides[i].dirty, "{}: protocol error on its peer's own output: {p:?}", name(i));
        }
        self.transcript.push(Record::Result(i, result.clone()));
    }

    /// Takes events from side `i` and checks messages against what the peer sent.
    fn drain(&mut self, i: usize) {
        while let Some(event) = self.sides[i].take_event() {
            wscore_fuzz::debug(|| format!("{} event {event:?}", name(i)));
            self.transcript.push(Record::Event(i, event.clone()));
            let message = match event {
                Event::Message(m) => Some(m),
                Event::Fragment(f) => {
                    let side = &mut self.sides[i];
                    assert_eq!(f.first, side.receiving.is_none(), "{}: `first` on the wrong piece", name(i));
                    let (kind, data) = side.receiving.get_or_insert_with(|| (f.kind, Vec::new()));
                    assert_eq!(*kind, f.kind, "a message changed kind");
                    data.extend_from_slice(&f.data);
                    if f.last {
                        let (kind, data) = side.receiving.take().unwrap();
                        Some(match kind {
                            MessageKind::Text => {
                                Message::Text(String::from_utf8(data).expect("streamed text is not UTF-8").into())
                            }
                            MessageKind::Binary => Message::Binary(data.into()),
                        })
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let (Some(message), false) = (message, self.sides[i].dirty) {
                let expected = self.sides[1 - i].sent.pop_front();
                assert_eq!(Some(&message), expected.as_ref(), "{}: received a message its peer did not send", name(i));
            }
        }
    }

    fn check_side(&self, i: usize) {
        let side = &self.sides[i];
        if let Some(Error::Protocol(p)) = side.conn.error() {
            assert!(side.dirty, "{}: protocol error on its peer's own output: {p:?}", name(i));
        }
        let buffered = side.conn.buffered_amount();
        // Sends are refused over `max_write_buffer`, so one operation at most goes past it.
        // What the peer provokes (pongs, close replies) is encoded up to 64 KiB ahead.
        let bound = side.knobs.max_write_buffer() + side.max_op_cost + (64 << 10) + 1024;
        assert!(buffered <= bound, "{}: {buffered} bytes buffered for output (bound {bound})", name(i));
        let peer_sent = self.sides[1 - i].sent_bytes;
        let inflated = if side.dirty { side.received.saturating_mul(1100) } else { peer_sent };
        let bound = side.received + inflated + (128 << 10);
        let held = side.conn.buffered_received();
        assert!(held <= bound, "{}: {held} bytes of input held (bound {bound})", name(i));
    }

    /// Moves up to `limit` bytes (0: all) from side `from` to its peer.
    fn deliver(&mut self, from: usize, limit: usize, mode: u8) {
        if self.closed {
            return;
        }
        let to = 1 - from;
        let mut left = if limit == 0 { usize::MAX } else { limit };
        while left > 0 && self.sides[from].conn.wants_write() {
            let bytes: Vec<u8> = if mode & 2 != 0 {
                let conn = &self.sides[from].conn;
                let mut slots = [IoSlice::new(&[]); 4];
                let n = conn.transmit_vectored(&mut slots);
                assert!(n > 0, "transmit_vectored gave nothing while output is waiting");
                assert_eq!(&*slots[0], conn.transmit(), "transmit_vectored disagrees with transmit");
                slots[..n].iter().flat_map(|s| s.iter().copied()).take(left).collect()
            } else {
                let chunk = self.sides[from].conn.transmit();
                chunk[..chunk.len().min(left)].to_vec()
            };
            assert!(!bytes.is_empty(), "wants_write with nothing to transmit");
            self.transcript.push(Record::Delivered(from, bytes.clone()));
            self.sides[from].conn.advance_transmit(bytes.len());
            left -= bytes.len();
            self.receive(to, &bytes, mode & 1 != 0);
        }
    }

    fn receive(&mut self, to: usize, bytes: &[u8], zero_copy: bool) {
        let side = &mut self.sides[to];
        side.received += bytes.len();
        let result = if zero_copy {
            let mut rest = bytes;
            let mut result = Ok(());
            while !rest.is_empty() && result.is_ok() {
                let buf = side.conn.receive_buffer();
                assert!(!buf.is_empty());
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                result = side.conn.commit_received(n);
                rest = &rest[n..];
            }
            result
        } else {
            side.conn.receive(bytes)
        };
        self.check_result(to, &result);
    }

    /// Shuts the transport down when a side asks for it (after writing everything out).
    fn maybe_close_transport(&mut self) {
        for i in 0..2 {
            let side = &self.sides[i];
            if self.closed || !side.conn.should_close_transport() || side.conn.wants_write() {
                continue;
            }
            self.closed = true;
            // A server that completed the close handshake and delivered everything: a healthy,
            // attentive client with a clean stream has completed it too.
            let clean_close = side.conn.role() == Role::Server && side.conn.state() == State::Closed;
            let peer = &mut self.sides[1 - i];
            let result = peer.conn.receive_eof();
            if clean_close && !peer.dirty && !peer.knobs.lazy_events && peer.conn.error().is_none() {
                assert_eq!(result, Ok(()), "client: unclean end of stream after a clean close");
                assert_eq!(peer.conn.state(), State::Closed);
            }
            self.check_result(1 - i, &result);
        }
    }

    fn send_cost(side: &mut Side, before: usize) {
        let cost = side.conn.buffered_amount().saturating_sub(before);
        side.max_op_cost = side.max_op_cost.max(cost);
    }

    fn op(&mut self, u: &mut Unstructured<'_>) {
        let op = byte(u);
        let i = usize::from(op & 1);
        let budget_left = self.sides[0].sent_bytes + self.sides[1].sent_bytes < SEND_BUDGET;
        let before = self.sides[i].conn.buffered_amount();
        match (op >> 1) % 16 {
            // Send a text message.
            0 => {
                let len = usize::from(byte(u));
                let text = String::from_utf8_lossy(take(u, len)).into_owned();
                if budget_left {
                    self.send(i, Message::Text(text.into()));
                }
            }
            // Send a binary message.
            1 => {
                let len = usize::from(byte(u));
                let data = take(u, len).to_vec();
                if budget_left {
                    self.send(i, Message::Binary(data.into()));
                }
            }
            // Send a piece of a streamed message: flags bit 0 text, bit 1 last, bits 2.. cut.
            2 => {
                let flags = byte(u);
                let len = usize::from(byte(u));
                let data = take(u, len);
                if budget_left {
                    self.send_piece(i, flags, data);
                }
            }
            // Ping / pong (payloads over 125 bytes must be refused).
            3 | 4 => {
                let len = usize::from(byte(u));
                let payload = take(u, len).to_vec();
                let n = payload.len();
                let conn = &mut self.sides[i].conn;
                let result = if (op >> 1) % 16 == 3 { conn.ping(payload) } else { conn.pong(payload) };
                if n > 125 {
                    assert!(result.is_err());
                }
            }
            // Close with a code from the table and a reason.
            5 => {
                let code = CLOSE_CODES[usize::from(byte(u)) % CLOSE_CODES.len()];
                let len = usize::from(byte(u));
                let reason = String::from_utf8_lossy(take(u, len)).into_owned();
                let result = self.sides[i].conn.close(CloseCode(code), &reason);
                if !CloseCode(code).is_valid_on_wire() || reason.len() > 123 {
                    assert!(result.is_err(), "close({code}, {} bytes) was accepted", reason.len());
                }
            }
            // Deliver some bytes (0: all) from side i to its peer.
            6 => {
                let n = usize::from(u16_le(u));
                let mode = byte(u);
                self.deliver(i, n, mode);
            }
            // Inject raw bytes into side i's incoming stream.
            7 => {
                let len = usize::from(byte(u));
                let bytes = take(u, len).to_vec();
                self.sides[i].dirty = true;
                self.receive(i, &bytes, false);
            }
            // Advance the clock by b × 10 ms and tell both sides the time.
            8 => {
                let ms = u64::from(u16_le(u)) * 10;
                self.now = self.now + std::time::Duration::from_millis(ms);
                for j in 0..2 {
                    let result = self.sides[j].conn.handle_timeout(self.now);
                    self.check_result(j, &result);
                    if let Some(at) = self.sides[j].conn.poll_timeout() {
                        assert!(
                            at > self.now || at == Instant::ZERO || self.sides[j].conn.state() != State::Open,
                            "{}: a deadline already due after handle_timeout",
                            name(j)
                        );
                    }
                }
            }
            // The transport ends under side i.
            9 => {
                let result = self.sides[i].conn.receive_eof();
                self.check_result(i, &result);
                self.closed = true;
            }
            // Take side i's events.
            10 => self.drain(i),
            // A large message of b × 512 bytes (fragmentation, output buffering beyond what is
            // encoded ahead, compression of long input).
            11 => {
                let flags = byte(u);
                let len = usize::from(byte(u)) << 9;
                let data: Vec<u8> = (0..len).map(|k| (k.wrapping_mul(usize::from(flags) | 1) >> 3) as u8).collect();
                if budget_left {
                    let message = if flags & 1 != 0 {
                        Message::Text(String::from_utf8_lossy(&data).into_owned().into())
                    } else {
                        Message::Binary(data.into())
                    };
                    self.send(i, message);
                }
            }
            // Let go of idle buffers.
            12 => self.release(i),
            // A burst of b % 64 + 1 small messages (sizes from the next byte), which a delivery
            // then hands over as many whole frames at once.
            13 => {
                let count = usize::from(byte(u)) % 64 + 1;
                let sizes = byte(u);
                let kinds = byte(u);
                for k in 0..count {
                    if self.sides[0].sent_bytes + self.sides[1].sent_bytes >= SEND_BUDGET {
                        break;
                    }
                    let len = usize::from(sizes).wrapping_mul(k + 1) % (usize::from(sizes) + 1);
                    let data: Vec<u8> = (0..len).map(|n| b'a' + ((n + k) % 26) as u8).collect();
                    let message = if kinds >> (k % 8) & 1 == 0 {
                        Message::Text(String::from_utf8(data).expect("ASCII").into())
                    } else {
                        Message::Binary(data.into())
                    };
                    self.send(i, message);
                }
            }
            // A message whose length sits at a length-encoding boundary (± 1).
            14 => {
                let flags = byte(u);
                let len = (BOUNDARIES[usize::from(flags) % 8] + usize::from(flags >> 3 & 3)).saturating_sub(1);
                if budget_left {
                    let data: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
                    let message = if flags & 0x20 != 0 {
                        Message::Text(String::from_utf8_lossy(&data).into_owned().into())
                    } else {
                        Message::Binary(data.into())
                    };
                    self.send(i, message);
                }
            }
            // Inject a batch of whole frames, possibly with invalid UTF-8 after valid ones.
            _ => {
                let count = usize::from(byte(u)) % 40;
                let sizes = byte(u);
                let flags = byte(u);
                let key = [byte(u), byte(u), byte(u), byte(u)];
                self.inject_batch(i, count, sizes, flags, key);
            }
        }
        Self::send_cost(&mut self.sides[i], before);
    }

    /// `release_buffers`, which must change nothing anyone can observe.
    fn release(&mut self, i: usize) {
        self.release_ops += 1;
        if !self.honor_release {
            return;
        }
        let conn = &mut self.sides[i].conn;
        let observe = |c: &Connection| {
            (
                c.transmit().to_vec(),
                c.buffered_amount(),
                c.buffered_received(),
                c.wants_write(),
                c.state(),
                c.error().cloned(),
                c.poll_timeout(),
            )
        };
        let before = observe(conn);
        conn.release_buffers();
        assert_eq!(observe(conn), before, "{}: release_buffers changed the connection", name(i));
    }

    /// Injects `count` whole frames (text, binary, every fifth a ping when `flags` bit 1), then,
    /// when `flags` bit 0, a text frame that is invalid UTF-8 after a valid prefix, then a few
    /// more frames. At a message boundary on a healthy, open side in message mode, the events
    /// are exactly the frames before the invalid one, in order.
    fn inject_batch(&mut self, i: usize, count: usize, sizes: u8, flags: u8, key: [u8; 4]) {
        let peer = 1 - i;
        let side = &self.sides[i];
        let at_boundary = !side.dirty
            && !self.closed
            && side.conn.state() == State::Open
            && side.conn.error().is_none()
            && side.conn.buffered_received() == 0
            && side.receiving.is_none()
            && !side.knobs.stream_mode
            && self.sides[peer].conn.buffered_amount() == 0
            && self.sides[peer].sending.is_none();
        // Whatever the side had to say before the batch.
        self.drain(i);
        let mask = (self.sides[i].conn.role() == Role::Server).then_some(key);
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        let push = |bytes: &mut Vec<u8>, expected: &mut Vec<Event>, k: usize, len: usize| {
            let data: Vec<u8> = (0..len).map(|n| b'A' + ((n * 7 + k) % 26) as u8).collect();
            if flags & 2 != 0 && k % 5 == 4 {
                let data = data[..data.len().min(125)].to_vec();
                bytes.extend(frame(true, false, OpCode::Ping, &data, mask));
                expected.push(Event::Ping(data.into()));
            } else if (usize::from(sizes) + k).is_multiple_of(3) {
                bytes.extend(frame(true, false, OpCode::Binary, &data, mask));
                expected.push(Event::Message(Message::Binary(data.into())));
            } else {
                bytes.extend(frame(true, false, OpCode::Text, &data, mask));
                expected.push(Event::Message(Message::Text(String::from_utf8(data).expect("ASCII").into())));
            }
        };
        let len_of = |k: usize| match (usize::from(sizes) + k * 37) % 10 {
            0 => 125,
            1 => 126,
            2 => 0,
            3 => 1000,
            _ => (usize::from(sizes) * (k + 3)) % 120,
        };
        for k in 0..count {
            push(&mut bytes, &mut expected, k, len_of(k));
        }
        let invalid = flags & 1 != 0;
        if invalid {
            let mut text = "valid prefix é ".repeat(usize::from(flags >> 5)).into_bytes();
            text.extend_from_slice(INVALID_UTF8[usize::from(flags >> 2 & 7) % INVALID_UTF8.len()]);
            text.extend_from_slice(b" and a valid tail");
            bytes.extend(frame(true, false, OpCode::Text, &text, mask));
            for k in count..count + 3 {
                let mut unused = Vec::new();
                push(&mut bytes, &mut unused, k, len_of(k));
            }
        }
        self.sides[i].dirty = true;
        self.sides[i].received += bytes.len();
        let result = self.sides[i].conn.receive(&bytes);
        self.transcript.push(Record::Result(i, result.clone()));
        let mut events = Vec::new();
        while let Some(event) = self.sides[i].conn.poll_event() {
            self.transcript.push(Record::Event(i, event.clone()));
            events.push(event);
        }
        wscore_fuzz::debug(|| {
            format!("{}: injected {count} frames (invalid: {invalid}) -> {result:?}, {} events", name(i), events.len())
        });
        if !at_boundary {
            return;
        }
        assert_eq!(events, expected, "{}: the events of an injected batch", name(i));
        if invalid {
            assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)));
            assert_eq!(self.sides[i].conn.error().map(Error::close_code), Some(CloseCode(1007)));
        } else {
            assert_eq!(result, Ok(()));
        }
    }

    fn send(&mut self, i: usize, message: Message) {
        let side = &mut self.sides[i];
        let len = message.len();
        if side.conn.send(message.clone()).is_ok() {
            assert!(side.sending.is_none(), "a whole message was accepted inside a streamed one");
            side.sent.push_back(message);
            side.sent_bytes += len;
        }
    }

    fn send_piece(&mut self, i: usize, flags: u8, data: &[u8]) {
        let side = &mut self.sides[i];
        let kind = if flags & 1 != 0 { MessageKind::Text } else { MessageKind::Binary };
        let last = flags & 2 != 0;
        let (piece, carry) = match kind {
            MessageKind::Text => {
                // Valid text, cut anywhere (even inside a code point); the rest waits.
                let mut full = side.carry.clone();
                full.extend_from_slice(String::from_utf8_lossy(data).as_bytes());
                let cut = if last { full.len() } else { usize::from(flags >> 2) % (full.len() + 1) };
                let rest = full.split_off(cut);
                (full, rest)
            }
            MessageKind::Binary => (data.to_vec(), side.carry.clone()),
        };
        if side.conn.send_fragment(kind, piece.clone(), last).is_err() {
            return;
        }
        side.sent_bytes += piece.len();
        let (open_kind, bytes) = side.sending.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open_kind, kind, "a streamed message changed kind");
        bytes.extend_from_slice(&piece);
        if kind == MessageKind::Text {
            side.carry = carry;
        }
        if last {
            let (kind, bytes) = side.sending.take().unwrap();
            side.sent.push_back(match kind {
                MessageKind::Text => Message::Text(String::from_utf8(bytes).expect("harness text").into()),
                MessageKind::Binary => Message::Binary(bytes.into()),
            });
        }
    }

    fn after_step(&mut self) {
        for i in 0..2 {
            if !self.sides[i].knobs.lazy_events {
                self.drain(i);
            }
        }
        self.maybe_close_transport();
        for i in 0..2 {
            self.check_side(i);
        }
        let (a, b) = (&self.sides[0].conn, &self.sides[1].conn);
        self.transcript.push(Record::Step {
            buffered: [a.buffered_amount(), b.buffered_amount()],
            received: [a.buffered_received(), b.buffered_received()],
            states: [a.state(), b.state()],
        });
    }

    /// Delivers everything both ways until nothing moves, as a driver would at the end.
    fn settle(&mut self) {
        for _ in 0..64 {
            for i in 0..2 {
                self.drain(i);
                self.deliver(i, 0, 0);
                self.drain(1 - i);
                self.maybe_close_transport();
            }
            if self.closed || !(self.sides[0].conn.wants_write() || self.sides[1].conn.wants_write()) {
                break;
            }
        }
        for i in 0..2 {
            self.check_side(i);
        }
    }
}

/// Runs the input; returns its transcript and how many `release_buffers` operations it has.
fn run(data: &[u8], honor_release: bool) -> Option<(Vec<Record>, usize)> {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return None };
    let mut client = Connection::client_with_random(plan.client.config(&plan), Box::new(SeededRandom::new(7)));
    let mut server = Connection::server(plan.server.config(&plan));
    if plan.deflate {
        let params = DeflateParams {
            server_no_context_takeover: plan.server_no_context_takeover,
            client_no_context_takeover: plan.client_no_context_takeover,
            server_max_window_bits: window_bits(plan.server_max_window_bits),
            client_max_window_bits: window_bits(plan.client_max_window_bits),
        };
        client = client.with_deflate(params);
        server = server.with_deflate(params);
    }
    let mut h = Harness {
        sides: [Side::new(client, plan.client), Side::new(server, plan.server)],
        now: Instant::from_millis(1),
        closed: false,
        honor_release,
        release_ops: 0,
        transcript: Vec::new(),
    };
    while !u.is_empty() {
        h.op(&mut u);
        wscore_fuzz::debug(|| {
            let s = |i: usize| {
                let side = &h.sides[i];
                format!(
                    "{:?} buffered {} in {} sent {}",
                    side.conn,
                    side.conn.buffered_amount(),
                    side.conn.buffered_received(),
                    side.sent.len()
                )
            };
            format!("client {}\nserver {}", s(0), s(1))
        });
        h.after_step();
    }
    h.settle();
    // Both ends healthy and the transport up: every message sent has arrived.
    let healthy = |s: &Side| s.conn.error().is_none() && !s.dirty;
    if !h.closed && healthy(&h.sides[0]) && healthy(&h.sides[1]) {
        for i in 0..2 {
            let peer_reading = matches!(h.sides[1 - i].conn.state(), State::Open | State::CloseSent);
            if peer_reading {
                assert!(h.sides[i].sent.is_empty(), "{}: {} messages never arrived", name(i), h.sides[i].sent.len());
            }
        }
    }
    Some((h.transcript, h.release_ops))
}

/// `transcript` with each run of a message's pieces (stream mode) that follow one another
/// joined into one. Where a piece ends follows the room offered for each read into
/// `receive_buffer`, and `release_buffers` lets that room go (the next is offered afresh, 4 KiB
/// or `read_buffer_size`), so with zero-copy reads only what the pieces carry, in order, is the
/// same with and without it.
fn pieces_joined(transcript: Vec<Record>) -> Vec<Record> {
    let mut joined: Vec<Record> = Vec::with_capacity(transcript.len());
    // The bytes of the last record in `joined` once a piece was joined to it: gathered here and
    // put in place when the run of pieces ends, so that joining stays linear in their length.
    let mut open: Option<Vec<u8>> = None;
    for record in transcript {
        if let (Some(Record::Event(i, Event::Fragment(piece))), Record::Event(j, Event::Fragment(next))) =
            (joined.last_mut(), &record)
            && i == j
            && !piece.last
            && !next.first
            && piece.kind == next.kind
        {
            open.get_or_insert_with(|| piece.data.to_vec()).extend_from_slice(&next.data);
            piece.last = next.last;
            continue;
        }
        close_run(&mut joined, &mut open);
        joined.push(record);
    }
    close_run(&mut joined, &mut open);
    joined
}

/// Puts the bytes gathered for a run of pieces into its record (see `pieces_joined`).
fn close_run(joined: &mut [Record], open: &mut Option<Vec<u8>>) {
    if let (Some(data), Some(Record::Event(_, Event::Fragment(piece)))) = (open.take(), joined.last_mut()) {
        piece.data = data.into();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((transcript, release_ops)) = run(data, true) else { return };
    if release_ops > 0 {
        // The same operations without `release_buffers`: the same run, byte for byte, but for
        // where the pieces of a streamed message end (see `pieces_joined`).
        let transcript = pieces_joined(transcript);
        let replay = pieces_joined(run(data, false).expect("the plan parsed the first time").0);
        assert_eq!(transcript.len(), replay.len(), "release_buffers changed the number of records");
        for (n, (a, b)) in transcript.iter().zip(&replay).enumerate() {
            assert_eq!(a, b, "record {n} differs when release_buffers is left out");
        }
    }
});
