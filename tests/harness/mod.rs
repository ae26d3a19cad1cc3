//! The pair harness shared by the integration tests: a client and a server [`Connection`]
//! joined by an in-memory pipe that splits the byte stream at seeded pseudo-random points (or
//! one byte at a time), driven by the crate's drive loop on a fake clock.
//!
//! Everything is deterministic: the same seed gives the same split points, the same masking
//! keys and therefore the same bytes on the wire.

#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "deflate")]
pub mod deflate;
pub mod raw_peer;

use bytes::Bytes;
use wscore::{
    Accept, ClientHandshake, ClientRequest, CloseCode, CloseFrame, Config, Connection, Error, Event, FrameHeader,
    Instant, Message, MessageKind, OpCode, ProtocolError, Role, SeededRandom, ServerHandshake, State, apply_mask,
};

/// The fake clock starts here, so [`Instant::ZERO`] ("call me now") is clearly in the past.
pub const START_MS: u64 = 1_000;
/// The seed of the client's masking keys (and `Sec-WebSocket-Key`).
pub const CLIENT_SEED: u64 = 0x5eed;
/// Rounds of the drive loop before the harness declares a livelock.
const MAX_ROUNDS: usize = 1_000_000;

/// A tiny deterministic generator (SplitMix64) for split points and test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0xD1B5_4A32_D192_ED03)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `true` with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64() % n == 0
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Where the pipe cuts the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every write moves everything the connection has to write.
    Whole,
    /// Every write moves exactly one byte.
    OneByte,
    /// Writes of pseudo-random sizes from this seed (tiny, small and large ones mixed), and a
    /// pseudo-random choice between the copying and the zero-copy receive path.
    Random(u64),
}

impl Split {
    /// The three kinds of split most tests run under.
    pub fn all() -> [Split; 3] {
        [Split::Whole, Split::OneByte, Split::Random(7)]
    }
}

/// Decides how bytes move between the two ends.
#[derive(Debug, Clone)]
pub struct Pipe {
    split: Split,
    rng: Rng,
}

impl Pipe {
    /// A pipe cutting as `split` says.
    pub fn new(split: Split) -> Self {
        let seed = match split {
            Split::Random(seed) => seed,
            _ => 0,
        };
        Self { split, rng: Rng::new(seed) }
    }

    /// How many of `available` (> 0) bytes the next write moves.
    pub fn next_len(&mut self, available: usize) -> usize {
        match self.split {
            Split::Whole => available,
            Split::OneByte => 1,
            Split::Random(_) => {
                let max = match self.rng.next_u64() % 4 {
                    0 => 3,
                    1 => 32,
                    2 => 1024,
                    _ => available,
                };
                self.rng.range(1, max.min(available))
            }
        }
    }

    /// Whether the next read uses `receive_buffer`/`commit_received` instead of `receive`.
    pub fn zero_copy(&mut self) -> bool {
        match self.split {
            Split::Random(_) => self.rng.one_in(2),
            _ => false,
        }
    }

    /// Cuts `bytes` into consecutive pieces as this pipe would.
    pub fn pieces<'a>(&mut self, mut bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let n = self.next_len(bytes.len());
            out.push(&bytes[..n]);
            bytes = &bytes[n..];
        }
        out
    }
}

/// Feeds `data` to `conn` through `receive` or, with `zero_copy`, through
/// `receive_buffer`/`commit_received` (several reads if the buffer offered is smaller).
pub fn feed(conn: &mut Connection, mut data: &[u8], zero_copy: bool) -> Result<(), Error> {
    if !zero_copy {
        return conn.receive(data);
    }
    loop {
        let buf = conn.receive_buffer();
        assert!(!buf.is_empty(), "receive_buffer offered no room");
        let n = buf.len().min(data.len());
        buf[..n].copy_from_slice(&data[..n]);
        conn.commit_received(n)?;
        data = &data[n..];
        if data.is_empty() {
            return Ok(());
        }
    }
}

/// Feeds `data` to `conn` in the pieces `pipe` cuts, stopping at the first error.
pub fn feed_split(conn: &mut Connection, data: &[u8], pipe: &mut Pipe) -> Result<(), Error> {
    for piece in pipe.pieces(data) {
        let zero_copy = pipe.zero_copy();
        feed(conn, piece, zero_copy)?;
    }
    Ok(())
}

/// Feeds `bytes` to `conn` through `receive` in reads of `read` bytes, taking the events after
/// each, up to the first error; returns the last result and the events.
pub fn receive_in_reads(conn: &mut Connection, bytes: &[u8], read: usize) -> (Result<(), Error>, Vec<Event>) {
    let mut result = Ok(());
    let mut events = Vec::new();
    for piece in bytes.chunks(read) {
        result = conn.receive(piece);
        events.extend(drain_events(conn));
        if result.is_err() {
            break;
        }
    }
    (result, events)
}

/// Takes every pending event: every other one lent (`poll_event_ref`) and copied rather than
/// handed over, so every test sees the two ways give the same events with the same effects.
pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    let mut lend = false;
    std::iter::from_fn(|| {
        lend = !lend;
        if lend { conn.poll_event_ref().map(|event| event.to_event()) } else { conn.poll_event() }
    })
    .collect()
}

/// Reassembles stream-mode fragments into message events, checking the first/last markers.
pub fn reassemble(events: &[Event]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Fragment(f) => {
                assert_eq!(f.first, current.is_none(), "first marker");
                let (kind, data) = current.get_or_insert_with(|| (f.kind, Vec::new()));
                assert_eq!(*kind, f.kind, "same kind for every piece");
                assert!(f.last || !f.data.is_empty(), "no empty non-final piece");
                data.extend_from_slice(&f.data);
                if f.last {
                    let (kind, data) = current.take().unwrap();
                    out.push(match kind {
                        MessageKind::Text => text(std::str::from_utf8(&data).unwrap()),
                        MessageKind::Binary => binary(&data),
                    });
                }
            }
            other => out.push(other.clone()),
        }
    }
    assert!(current.is_none(), "unfinished message");
    out
}

/// One end of the pair and everything the harness observed about it.
#[derive(Debug)]
pub struct Side {
    /// The connection.
    pub conn: Connection,
    /// Events pulled so far, in order.
    pub events: Vec<Event>,
    /// The first error an input returned (later errors must equal it: errors are sticky).
    pub error: Option<Error>,
    /// Every byte this end wrote to the transport.
    pub wire: Vec<u8>,
    /// This end shut its transport down (`should_close_transport` said so).
    pub transport_closed: bool,
    /// This end was told about end of stream.
    pub eof_received: bool,
    /// Whether this end reads from the transport. When `false`, the peer's output stays
    /// buffered in the peer (a stalled TCP connection).
    pub reading: bool,
}

impl Side {
    /// A side around `conn`.
    pub fn new(conn: Connection) -> Self {
        Self {
            conn,
            events: Vec::new(),
            error: None,
            wire: Vec::new(),
            transport_closed: false,
            eof_received: false,
            reading: true,
        }
    }

    /// Records the result of an input, checking that errors are sticky.
    pub fn record(&mut self, result: Result<(), Error>) {
        if let Err(err) = result {
            match &self.error {
                None => self.error = Some(err),
                Some(first) => assert_eq!(first, &err, "a later input returned another error"),
            }
        }
    }

    /// Takes the events pulled so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The frames this end wrote (it must have written only whole, valid frames).
    pub fn frames(&self) -> Vec<RawFrame> {
        decode_frames(&self.wire)
    }

    /// The close code in the last close frame this end wrote (`None` if it wrote no close
    /// frame; `Some(None)` for a close frame without a body).
    pub fn close_sent(&self) -> Option<Option<u16>> {
        close_code_in(&self.wire)
    }
}

/// A client and a server joined by a [`Pipe`], with a fake clock.
#[derive(Debug)]
pub struct Pair {
    /// The client end.
    pub client: Side,
    /// The server end.
    pub server: Side,
    /// How bytes are cut on their way.
    pub pipe: Pipe,
    /// Deliver end of stream to one end once the other shut its transport down (default on).
    pub auto_eof: bool,
    now_ms: u64,
}

impl Pair {
    /// A pair of directly created connections (no HTTP handshake).
    pub fn new(client_config: Config, server_config: Config, split: Split) -> Self {
        let client = Connection::client_with_random(client_config, Box::new(SeededRandom::new(CLIENT_SEED)));
        let server = Connection::server(server_config);
        Self::from_connections(client, server, Pipe::new(split))
    }

    /// A pair with default configurations.
    pub fn default_with(split: Split) -> Self {
        Self::new(Config::default(), Config::default(), split)
    }

    /// A pair around existing connections.
    pub fn from_connections(client: Connection, server: Connection, pipe: Pipe) -> Self {
        assert_eq!(client.role(), Role::Client);
        assert_eq!(server.role(), Role::Server);
        Self { client: Side::new(client), server: Side::new(server), pipe, auto_eof: true, now_ms: START_MS }
    }

    /// The fake clock's current time.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    /// The fake clock's current time, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// One end.
    pub fn side(&mut self, role: Role) -> &mut Side {
        match role {
            Role::Client => &mut self.client,
            Role::Server => &mut self.server,
        }
    }

    /// The client's connection.
    pub fn client(&mut self) -> &mut Connection {
        &mut self.client.conn
    }

    /// The server's connection.
    pub fn server(&mut self) -> &mut Connection {
        &mut self.server.conn
    }

    fn ends(&mut self, from: Role) -> (&mut Side, &mut Side, &mut Pipe) {
        match from {
            Role::Client => (&mut self.client, &mut self.server, &mut self.pipe),
            Role::Server => (&mut self.server, &mut self.client, &mut self.pipe),
        }
    }

    /// Moves everything `from` has to write to the other end (unless that end does not read),
    /// in pipe-sized writes, then delivers end of stream if `from` shut its transport down.
    /// Returns whether anything happened.
    pub fn deliver(&mut self, from: Role) -> bool {
        let auto_eof = self.auto_eof;
        let (a, b, pipe) = self.ends(from);
        let mut moved = false;
        if !a.transport_closed && b.reading && !b.transport_closed {
            loop {
                let chunk = a.conn.transmit();
                if chunk.is_empty() {
                    break;
                }
                let n = pipe.next_len(chunk.len());
                let data = chunk[..n].to_vec();
                a.conn.advance_transmit(n);
                a.wire.extend_from_slice(&data);
                let zero_copy = pipe.zero_copy();
                let result = feed(&mut b.conn, &data, zero_copy);
                b.record(result);
                moved = true;
            }
        }
        if a.transport_closed && auto_eof && b.reading && !b.eof_received && !b.transport_closed {
            b.eof_received = true;
            let result = b.conn.receive_eof();
            b.record(result);
            moved = true;
        }
        moved
    }

    /// Pulls every pending event of one end. Returns whether there was any.
    pub fn pull_events(&mut self, role: Role) -> bool {
        let side = self.side(role);
        let events = drain_events(&mut side.conn);
        let any = !events.is_empty();
        side.events.extend(events);
        any
    }

    /// Shuts one end's transport down if it asks for it. Returns whether it did.
    pub fn check_shutdown(&mut self, role: Role) -> bool {
        let side = self.side(role);
        if !side.transport_closed && side.conn.should_close_transport() {
            side.transport_closed = true;
            return true;
        }
        false
    }

    /// Calls `handle_timeout` on one end if its deadline is due on the fake clock. Returns
    /// whether it did.
    pub fn fire_timers(&mut self, role: Role) -> bool {
        let now = self.now();
        let side = self.side(role);
        if side.transport_closed {
            return false;
        }
        match side.conn.poll_timeout() {
            Some(at) if at <= now => {
                let result = side.conn.handle_timeout(now);
                side.record(result);
                if let Some(at) = side.conn.poll_timeout() {
                    assert!(
                        at > now || side.conn.should_close_transport(),
                        "{role:?}: handle_timeout({now:?}) left a due deadline {at:?}"
                    );
                }
                true
            }
            _ => false,
        }
    }

    /// Runs the drive loop on both ends until nothing more happens at the current time:
    /// write and deliver, pull events, shut transports down, fire due timers.
    pub fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            for role in [Role::Client, Role::Server] {
                progress |= self.deliver(role);
            }
            for role in [Role::Client, Role::Server] {
                progress |= self.pull_events(role);
            }
            for role in [Role::Client, Role::Server] {
                progress |= self.check_shutdown(role);
            }
            for role in [Role::Client, Role::Server] {
                progress |= self.fire_timers(role);
            }
            if !progress {
                return;
            }
        }
        panic!("the pair did not become quiescent: {self:?}");
    }

    /// Moves the fake clock forward by `ms` and runs.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.run();
    }

    /// The earliest deadline of the ends whose transport is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        [&self.client, &self.server]
            .into_iter()
            .filter(|s| !s.transport_closed)
            .filter_map(|s| s.conn.poll_timeout())
            .min()
    }
}

/// Performs the HTTP upgrade in memory (request and response cut by `split`) for
/// `ws://example.com/chat` and returns the connected pair.
pub fn handshake_pair(client_config: Config, server_config: Config, split: Split) -> Pair {
    let request = ClientRequest::from_url("ws://example.com/chat").expect("valid URL");
    handshake_pair_with(request, Accept::new(), client_config, server_config, split)
}

/// Performs the HTTP upgrade in memory with a custom request and acceptance.
pub fn handshake_pair_with(
    request: ClientRequest,
    accept: Accept,
    client_config: Config,
    server_config: Config,
    split: Split,
) -> Pair {
    let mut pipe = Pipe::new(split);
    let mut client = ClientHandshake::with_random(request, client_config, Box::new(SeededRandom::new(CLIENT_SEED)));
    let mut server = ServerHandshake::new(server_config);
    let request_bytes = client.request_bytes();
    let mut complete = false;
    for piece in pipe.pieces(&request_bytes) {
        assert!(!complete, "request complete before its last byte");
        complete = server.receive(piece).expect("server accepts").is_some();
    }
    assert!(complete, "request incomplete after its last byte");
    let mut server_conn = server.accept(accept).expect("accept");
    let response = server_conn.take_transmit();
    let mut client_conn = None;
    for piece in pipe.pieces(&response) {
        assert!(client_conn.is_none(), "response complete before its last byte");
        client_conn = client.receive(piece).expect("client accepts");
    }
    let client_conn = client_conn.expect("response incomplete after its last byte");
    Pair::from_connections(client_conn, server_conn, pipe)
}

// ----- single connections fed raw bytes -----

/// A server connection with the default configuration.
pub fn server() -> Connection {
    Connection::server(Config::default())
}

/// A client connection with the default configuration and a fixed masking seed.
pub fn client() -> Connection {
    Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(3)))
}

/// Feeds `bytes` to `conn` under `split`; returns the result, the events and what `conn`
/// transmitted in answer.
pub fn feed_all(
    mut conn: Connection,
    bytes: &[u8],
    split: Split,
) -> (Result<(), Error>, Vec<Event>, Bytes, Connection) {
    let result = feed_split(&mut conn, bytes, &mut Pipe::new(split));
    let events = drain_events(&mut conn);
    let out = conn.take_transmit();
    (result, events, out, conn)
}

/// Feeds a server `bytes` under every split and checks it fails with `expected`, transmitting
/// a close frame with `code`, ending `Failed`, with the events before the failure.
pub fn assert_server_fails(bytes: &[u8], expected: ProtocolError, code: u16, events: &[Event]) {
    assert_fails(server, bytes, expected, code, events);
}

/// Like [`assert_server_fails`], for a client fed server frames.
pub fn assert_client_fails(bytes: &[u8], expected: ProtocolError, code: u16, events: &[Event]) {
    assert_fails(client, bytes, expected, code, events);
}

/// Feeds a fresh connection from `make` `bytes` under every split and checks the failure.
pub fn assert_fails(make: fn() -> Connection, bytes: &[u8], expected: ProtocolError, code: u16, events: &[Event]) {
    assert_eq!(expected.close_code(), CloseCode(code));
    for split in Split::all() {
        let (result, got, out, conn) = feed_all(make(), bytes, split);
        let expected_err = Error::Protocol(expected.clone());
        assert_eq!(result, Err(expected_err.clone()), "{split:?}");
        assert_eq!(got, events, "{split:?}");
        assert_eq!(close_code_in(&out), Some(Some(code)), "{split:?}");
        assert_eq!(conn.state(), State::Failed);
        assert_eq!(conn.error(), Some(&expected_err));
        assert!(conn.should_close_transport(), "drained, so shut down");
    }
}

/// A decoded frame: its header and unmasked payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The header as parsed.
    pub header: FrameHeader,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The frame's opcode.
    pub fn opcode(&self) -> OpCode {
        self.header.opcode
    }

    /// For a close frame, its status code (`None` for an empty body).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode(), OpCode::Close);
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Decodes whole frames from `bytes`; returns them and the length of an incomplete tail.
pub fn try_decode_frames(mut bytes: &[u8]) -> Result<(Vec<RawFrame>, usize), ProtocolError> {
    let mut frames = Vec::new();
    while let Some((header, len)) = FrameHeader::parse(bytes)? {
        let total = len as u64 + header.payload_len;
        if (bytes.len() as u64) < total {
            break;
        }
        let mut payload = bytes[len..total as usize].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push(RawFrame { header, payload });
        bytes = &bytes[total as usize..];
    }
    Ok((frames, bytes.len()))
}

/// Decodes `bytes`, which must be a sequence of whole, valid frames.
pub fn decode_frames(bytes: &[u8]) -> Vec<RawFrame> {
    let (frames, rest) = try_decode_frames(bytes).expect("valid frames");
    assert_eq!(rest, 0, "incomplete frame at the end");
    frames
}

/// The code of the last close frame in `bytes` (`Some(None)`: a close frame without a body).
pub fn close_code_in(bytes: &[u8]) -> Option<Option<u16>> {
    decode_frames(bytes).iter().rev().find(|f| f.opcode() == OpCode::Close).map(RawFrame::close_code)
}

/// The masking key used by [`masked`] frames (RFC 6455 §5.7's example key).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Encodes a frame byte by byte: `b0` is the first header byte as is (FIN, RSV bits and any
/// opcode, reserved ones included), `mask` the masking key, if any.
pub fn raw_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        out.splice(start..start, key);
        apply_mask(&mut out[start + 4..], key, 0);
    }
    out
}

/// A frame as a client sends it (masked with [`MASK`]).
pub fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, Some(MASK), payload)
}

/// A frame as a server sends it (unmasked).
pub fn unmasked(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, None, payload)
}

/// A close frame body: code then reason.
pub fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason);
    body
}

/// `Event::Message` with a text message.
pub fn text(s: &str) -> Event {
    Event::Message(Message::Text(String::from(s).into()))
}

/// `Event::Message` with a binary message.
pub fn binary(data: &[u8]) -> Event {
    Event::Message(Message::Binary(Bytes::copy_from_slice(data)))
}

/// `Event::Ping`.
pub fn ping(data: &[u8]) -> Event {
    Event::Ping(Bytes::copy_from_slice(data))
}

/// `Event::Pong`.
pub fn pong(data: &[u8]) -> Event {
    Event::Pong(Bytes::copy_from_slice(data))
}

/// `Event::Close` with a code and reason.
pub fn close(code: u16, reason: &str) -> Event {
    Event::Close(Some(CloseFrame::new(CloseCode(code), String::from(reason))))
}

/// Text of exactly `len` bytes mixing 1- to 4-byte characters, so that any cut is likely to
/// fall inside a code point.
pub fn text_of_len(len: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let room = len - out.len();
        let c = match rng.next_u64() % 4 {
            0 if room >= 4 => '😀',
            1 if room >= 3 => '€',
            2 if room >= 2 => 'é',
            _ => char::from(b'a' + (rng.next_u64() % 26) as u8),
        };
        out.push(c);
    }
    out
}
