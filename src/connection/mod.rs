//! [`Connection`]: the one place where a WebSocket connection's state changes.
//!
//! Inputs ([`receive`](Connection::receive), [`receive_eof`](Connection::receive_eof),
//! [`handle_timeout`](Connection::handle_timeout)) and commands ([`send`](Connection::send),
//! [`ping`](Connection::ping), [`close`](Connection::close)) change it; outputs
//! ([`transmit`](Connection::transmit), [`poll_event`](Connection::poll_event),
//! [`poll_timeout`](Connection::poll_timeout),
//! [`should_close_transport`](Connection::should_close_transport)) report what to do next.
//! The receive path lives in `recv.rs`, the send queue in `send.rs`, deadlines in `timers.rs`.

mod buffer;
mod events;
#[cfg(feature = "deflate")]
mod inflate;
mod recv;
mod send;
mod timers;

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::{Error, SendError};
use crate::random::RandomSource;
use crate::utf8::Utf8Bytes;
use alloc::boxed::Box;
use bytes::Bytes;

pub use events::{EventRef, MessageRef};
pub(crate) use send::SendQueue;

/// Which end of the connection this is. Clients mask what they send; servers must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that accepted it.
    Server,
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// A whole data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes (for text, the UTF-8 encoding).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The payload, sharing the receive buffer.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(t) => t.into_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The length of the payload in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

/// A piece of a data message, delivered in [`ReceiveMode::Stream`](crate::ReceiveMode::Stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The message's kind (the same for all its pieces).
    pub kind: MessageKind,
    /// The bytes, unmasked. For text, the pieces concatenate to valid UTF-8, but one piece may
    /// end inside a code point.
    pub data: Bytes,
    /// This is the message's first piece.
    pub first: bool,
    /// This is the message's last piece.
    pub last: bool,
}

/// Something the peer did, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A whole data message ([`ReceiveMode::Message`](crate::ReceiveMode::Message)).
    Message(Message),
    /// A piece of a data message ([`ReceiveMode::Stream`](crate::ReceiveMode::Stream)).
    Fragment(Fragment),
    /// A ping. With [`Config::auto_pong`] (the default) the pong is already queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame (`None`: it carried no status code). If the peer started the
    /// close handshake, taking this event queues the reply (echoing the peer's code) after
    /// everything the application sent before.
    Close(Option<CloseFrame>),
}

/// Where the connection is in its lifecycle (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// The peer sent a close frame; ours goes out when the application takes the
    /// [`Event::Close`] (or calls [`Connection::close`]).
    CloseReceived,
    /// Both close frames were exchanged; the transport is being shut down.
    Closed,
    /// The connection failed (see [`Connection::error`]); the transport is being shut down.
    Failed,
}

/// A WebSocket connection after the handshake: a sans-I/O state machine.
///
/// See the [crate documentation](crate) for the drive loop every driver follows.
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    recv: recv::Receiver,
    send: SendQueue,
    events: events::EventQueue,
    timers: timers::Timers,
    error: Option<Error>,
    /// The peer's close frame, echoed when the application takes its `Event::Close`.
    close_reply: Option<Option<CloseCode>>,
    /// The close frame of a failure, queued once the application has taken the events that
    /// came before the failure (so its answers to them still go out first).
    failure_close: Option<Box<CloseFrame>>,
    /// The transport reached end of stream.
    eof: bool,
    /// The close deadline passed: give up on the transport.
    timed_out: bool,
    protocol: Option<Box<str>>,
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::extensions::deflate::Deflate>>,
}

/// How much copied input [`Connection::receive`] takes at a time, in whole frames, when it is
/// handed more: well within a first-level data cache (32–48 KiB on current x86-64 and aarch64
/// cores), so unmasking and validating read what the copy just wrote from there.
const RECEIVE_STEP: usize = 16 << 10;

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered_amount", &self.buffered_amount())
            .field("events", &self.events.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection for a stream that is already upgraded (by this crate's
    /// [`ServerHandshake`](crate::ServerHandshake), or by hyper, axum, an HTTP/2 stack...).
    ///
    /// ```
    /// let conn = wscore::Connection::server(wscore::Config::default());
    /// assert_eq!(conn.role(), wscore::Role::Server);
    /// ```
    #[must_use]
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side connection for an already-upgraded stream, masking with the default
    /// cryptographically secure generator.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide entropy (see [`default_random`](crate::default_random)).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn client(config: Config) -> Self {
        Self::client_with_random(config, crate::random::default_random())
    }

    /// A client-side connection masking with keys from `random`.
    ///
    /// ```
    /// use wscore::{Config, Connection, SeededRandom};
    /// let conn = Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(7)));
    /// assert_eq!(conn.role(), wscore::Role::Client);
    /// ```
    #[must_use]
    pub fn client_with_random(config: Config, random: Box<dyn RandomSource>) -> Self {
        Self::new(Role::Client, config, Some(random))
    }

    pub(crate) fn new(role: Role, config: Config, random: Option<Box<dyn RandomSource>>) -> Self {
        let timers = timers::Timers::new();
        Self {
            role,
            recv: recv::Receiver::new(role, config.read_buffer_size),
            send: SendQueue::new(role, random),
            state: State::Open,
            events: events::EventQueue::default(),
            timers,
            error: None,
            close_reply: None,
            failure_close: None,
            eof: false,
            timed_out: false,
            protocol: None,
            #[cfg(feature = "deflate")]
            deflate: None,
            config,
        }
    }

    /// Queues bytes that precede all frames (the server's 101 response).
    pub(crate) fn push_raw_output(&mut self, bytes: Bytes) {
        self.send.push_raw(bytes);
    }

    /// Whether permessage-deflate was negotiated (RSV1 is then allowed on data frames).
    pub(crate) fn compression_negotiated(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        return false;
    }

    /// Enables permessage-deflate with parameters negotiated elsewhere (by this crate's
    /// handshakes, or by an HTTP stack that did the upgrade, see
    /// [`DeflateConfig::negotiate`](crate::DeflateConfig::negotiate)). Compression settings
    /// (level, threshold) come from the connection's [`Config::deflate`], or the defaults.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn with_deflate(mut self, params: crate::extensions::deflate::DeflateParams) -> Self {
        let settings = self.config.deflate.clone().unwrap_or_default();
        self.deflate = Some(Box::new(crate::extensions::deflate::Deflate::new(params, self.role, &settings)));
        self
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate_params(&self) -> Option<crate::extensions::deflate::DeflateParams> {
        self.deflate.as_ref().map(|d| d.params())
    }

    pub(crate) fn set_protocol(&mut self, protocol: Option<alloc::string::String>) {
        self.protocol = protocol.map(alloc::string::String::into_boxed_str);
    }

    // ----- getters -----

    /// Client or server.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The lifecycle state.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The subprotocol negotiated in the handshake, if any.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The fatal error that failed the connection, if any.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Bytes queued for the transport (encoded or not yet encoded).
    #[must_use]
    #[inline]
    pub fn buffered_amount(&self) -> usize {
        self.send.buffered_amount()
    }

    /// Received bytes held because they do not yet form a complete frame or message.
    #[must_use]
    pub fn buffered_received(&self) -> usize {
        self.recv.buffered()
    }

    /// Bytes of buffer the connection holds on the heap: the receive buffer (from the data
    /// on), the encoded output and the event queue. Zero after
    /// [`release_buffers`](Self::release_buffers) with nothing pending; messages already handed
    /// out share the receive buffer's allocation and are not counted.
    ///
    /// ```
    /// use wscore::{Config, Connection};
    /// let mut conn = Connection::server(Config::default());
    /// conn.receive_buffer();
    /// conn.commit_received(0).unwrap();
    /// assert!(conn.buffer_capacity() > 0);
    /// conn.release_buffers();
    /// assert_eq!(conn.buffer_capacity(), 0);
    /// ```
    #[must_use]
    pub fn buffer_capacity(&self) -> usize {
        self.recv.buf.capacity() + self.send.capacity() + self.events.allocated()
    }

    // ----- outputs -----

    /// The next event, if any. Taking the peer's [`Event::Close`] queues the close reply. In
    /// [`ReceiveMode::Stream`](crate::ReceiveMode::Stream), taking events resumes inflating a
    /// compressed message that paused for them, which can fail the connection (see there).
    ///
    /// [`poll_event_ref`](Self::poll_event_ref) lends the same events instead.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        // The end of the events, with nothing to let go or to queue: most calls of a drive
        // loop that reads in small pieces (every read that ends mid-frame), answered inline.
        if self.events.holds_nothing() && self.end_of_events_is_quiet() {
            return None;
        }
        self.take_event()
    }

    /// [`poll_event`](Self::poll_event) past its inline check.
    fn take_event(&mut self) -> Option<Event> {
        match self.events.pop_front() {
            Some(event @ Event::Close(_)) => {
                if let Some(reply) = self.close_reply.take() {
                    self.send_close_reply(reply);
                }
                Some(event)
            }
            Some(event) => Some(event),
            None if self.end_of_events_is_quiet() => None,
            None => {
                self.no_more_events();
                self.take_event()
            }
        }
    }

    /// The next event, if any, lent rather than handed over: the same events as
    /// [`poll_event`](Self::poll_event), in the same order (the two can be mixed), with the
    /// same effects, but with payloads borrowed from the connection until it is used again.
    ///
    /// An unfragmented, uncompressed message of less than 64 KiB that arrived whole is lent
    /// as a slice of the receive buffer: no reference count taken and dropped, as the
    /// [`Bytes`] of an owned [`Message`] needs — a good part of what a short message costs.
    /// For code that handles a message where it receives it (parses it, copies it into its
    /// own buffers) and does not keep it.
    ///
    /// ```
    /// use wscore::{Config, Connection, EventRef};
    /// let mut conn = Connection::server(Config::default());
    /// // Two masked text frames, "hi" and "ho" (key 0).
    /// conn.receive(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0x81, 0x82, 0, 0, 0, 0, b'h', b'o']).unwrap();
    /// let mut seen = Vec::new();
    /// while let Some(event) = conn.poll_event_ref() {
    ///     if let EventRef::Message(message) = event {
    ///         seen.push(message.as_str().unwrap().to_owned());
    ///     }
    /// }
    /// assert_eq!(seen, ["hi", "ho"]);
    /// ```
    #[inline]
    pub fn poll_event_ref(&mut self) -> Option<EventRef<'_>> {
        // The usual case first: a message of the front chunk of frames (neither the close
        // frame nor the end of the events, which the checks below are for).
        if self.events.front_is_frame() {
            return Some(self.events.lend_frame());
        }
        if self.events.is_empty() {
            if !self.end_of_events_is_quiet() {
                self.no_more_events();
            } else if self.events.holds_nothing() {
                // The end of the events, with nothing lent to let go.
                return None;
            }
        }
        if self.close_reply.is_some() && self.events.front_is_close() {
            if let Some(reply) = self.close_reply.take() {
                self.send_close_reply(reply);
            }
        }
        self.events.lend_front()
    }

    /// Whether running out of events has nothing to set off: no failure's close frame waits
    /// for the events before it, and no inflation paused for them
    /// ([`no_more_events`](Self::no_more_events) would do nothing).
    #[inline(always)]
    fn end_of_events_is_quiet(&self) -> bool {
        self.failure_close.is_none() && !self.recv.paused
    }

    /// The event queue ran dry: queue the close frame of a failure that waited for the events
    /// before it, or resume paused inflation (which may queue more, or pause again once it
    /// has).
    #[cold]
    fn no_more_events(&mut self) {
        if let Some(frame) = self.failure_close.take() {
            self.send.push_close(Some(&frame));
        }
        #[cfg(feature = "deflate")]
        if self.recv.paused {
            self.resume_if_paused();
        }
    }

    /// Whether the driver should shut the transport down now (after writing out
    /// [`transmit`](Self::transmit)): the close handshake is over, or the connection failed, or
    /// the transport already ended.
    #[must_use]
    pub fn should_close_transport(&self) -> bool {
        if self.eof || self.timed_out {
            return true;
        }
        let drained = self.send.is_empty();
        match self.state {
            State::Failed => drained && self.failure_close.is_none(),
            // RFC 6455 §7.1.1: the server closes the TCP connection first; the client waits
            // for that (or the close deadline).
            State::Closed => drained && self.role == Role::Server,
            _ => false,
        }
    }

    // ----- inputs -----

    /// Hands the connection bytes read from the transport (copied into its receive buffer).
    ///
    /// On a fatal error the close frame is already queued; keep writing
    /// [`transmit`](Self::transmit) out and then close the transport.
    ///
    /// A large input that starts between frames is copied and processed a few whole frames at
    /// a time (about 16 KiB): each frame is unmasked and validated while the copy still has it
    /// in the CPU's nearest cache. A large frame that starts in such an input without ending
    /// there has its header taken first (which, for a message received whole, makes room for
    /// all of its payload), so that the rest is copied once, where it stays. On a server,
    /// masked payloads are unmasked while they are copied (whole frames of a large input, and
    /// input that goes on with a frame's payload).
    #[inline]
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        // A few more bytes of what the buffer waits for (a header, a short frame to be taken
        // whole, the next step of a long one) that do not complete it: only copied, without a
        // pass of the receive path (reads of a byte or two cost half as much). A failed
        // connection accepts no input, so its error is returned below.
        if self.recv.waits_beyond(data.len()) && self.accepts_input() {
            self.recv.buf.extend(data);
            return Ok(());
        }
        // Likewise a byte or two more of text that does not end its frame: unmasked and
        // validated as it is appended (to fail at the first invalid byte), nothing else.
        if self.recv.continues_text(data.len()) && self.accepts_input() {
            return self.extend_text_bytes(data);
        }
        self.receive_any(data)
    }

    /// [`receive`](Self::receive), any input.
    fn receive_any(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let mut data = data;
        self.retry_reserve();
        if self.role == Role::Server && self.accepts_input() {
            // Input that goes on with a frame's payload is unmasked as it is copied in.
            let taken = match self.extend_frame_payload(data) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e.into())),
            };
            if taken > 0 {
                if !self.recv.waits_for_frame(self.config.receive_mode) {
                    self.process()?;
                }
                data = &data[taken..];
                if data.is_empty() {
                    return Ok(());
                }
            }
        }
        // Whole frames in large copied input from a client too.
        let unmask_while_copying = data.len() > RECEIVE_STEP && self.role == Role::Server;
        if self.accepts_input() && data.len() > RECEIVE_STEP && self.recv.buf.len() == 0 && self.recv.frame.is_none() {
            // Taken in steps if it holds more than one frame: room for all of it at once, as
            // the messages of the first steps are still in the event queue, so the buffer
            // could not reclaim their room for the later ones.
            if crate::frame::frame_len(data).is_some_and(|first| first < data.len()) {
                self.recv.buf.reserve(data.len());
            }
        }
        let mut rest = data;
        loop {
            let taken = if !self.accepts_input() {
                rest.len()
            } else if unmask_while_copying && self.recv.buf.len() == 0 && self.recv.frame.is_none() {
                let batch = (self.recv.message.is_none() && self.config.receive_mode == crate::ReceiveMode::Message)
                    .then(|| self.config.max_frame_size.min(self.config.max_message_size));
                self.recv.buf.extend_unmasking(rest, RECEIVE_STEP, batch)
            } else if unmask_while_copying && self.recv.frame.is_some() {
                // The payload of a frame whose header alone was taken just now (see
                // `extend_unmasking`), unmasked as it is copied into the room made for it, or
                // as usual if that does not take it.
                match self.extend_frame_payload(rest) {
                    Ok(0) => self.copy_step(rest),
                    Ok(n) => n,
                    Err(e) => return Err(self.fail(e.into())),
                }
            } else {
                self.copy_step(rest)
            };
            self.process()?;
            rest = &rest[taken..];
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Copies the next step of `data` ([`receive_step`](Self::receive_step)) into the receive
    /// buffer as it is, and returns its length.
    #[inline]
    fn copy_step(&mut self, data: &[u8]) -> usize {
        let step = self.receive_step(data);
        self.recv.buf.extend(&data[..step]);
        step
    }

    /// How much of `data`, copied input, [`receive`](Self::receive) takes next when it does
    /// not unmask it while copying ([`ReceiveBuffer::extend_unmasking`](buffer::ReceiveBuffer)
    /// walks the frames itself): all of it, unless it is large and starts between frames; then
    /// whole frames, as many as fit in [`RECEIVE_STEP`] (at least one), or the header of a
    /// first frame that is not whole.
    #[inline]
    fn receive_step(&self, data: &[u8]) -> usize {
        if data.len() <= RECEIVE_STEP || self.recv.buf.len() > 0 || self.recv.frame.is_some() {
            return data.len();
        }
        let mut at = 0;
        while let Some(len) = crate::frame::frame_len(&data[at..]) {
            let end = at.saturating_add(len);
            if end > data.len() || (at > 0 && end > RECEIVE_STEP) {
                break;
            }
            at = end;
            if at >= RECEIVE_STEP {
                break;
            }
        }
        if at > 0 {
            return at;
        }
        // The first frame is not whole: its header alone, if that is there, so that its
        // payload is copied into the room its header makes the receive path reserve, not
        // copied here first and then moved there.
        crate::frame::frame_extent(data).map_or(data.len(), |(header_len, _)| header_len)
    }

    /// Zero-copy receive, step one: room to read into. Between frames, up to
    /// [`Config::read_buffer_size`] bytes: 4 KiB after the buffer was let go
    /// ([`release_buffers`](Self::release_buffers)), doubling each time a read fills it (and
    /// less, but at least 4 KiB, when the buffer's allocation is nearly used up). While a
    /// frame is arriving: what its header said is still to come, up to `read_buffer_size` or
    /// four times what has already arrived of it, whichever is more (and about 1 MiB), or the room
    /// between frames if that is more — so that a large frame takes few reads, and the room
    /// grows with what the peer sends, not with what it declares. Pass the count read to [`commit_received`](Self::commit_received).
    ///
    /// ```
    /// use wscore::{Config, Connection};
    /// let mut conn = Connection::server(Config::default());
    /// let frame = [0x82, 0x82, 1, 2, 3, 4, 0xAA ^ 1, 0xBB ^ 2];
    /// let buf = conn.receive_buffer();
    /// buf[..frame.len()].copy_from_slice(&frame);
    /// conn.commit_received(frame.len()).unwrap();
    /// assert!(matches!(conn.poll_event(), Some(wscore::Event::Message(m)) if m.as_bytes() == [0xAA, 0xBB]));
    /// ```
    #[inline]
    pub fn receive_buffer(&mut self) -> &mut [u8] {
        self.retry_reserve();
        let read_size = self.config.read_buffer_size;
        match self.recv.expected_payload(self.config.receive_mode, read_size) {
            0 => self.recv.buf.spare(read_size),
            // Never less than a read between frames would get: what follows the frame may be
            // there already.
            rest => {
                let usual = self.recv.buf.offer(read_size);
                self.recv.buf.spare_exactly(rest.max(usual))
            }
        }
    }

    /// [`receive_buffer`](Self::receive_buffer) for reads into uninitialized memory (the
    /// tokio driver, through tokio's `ReadBuf`): the same room, as spare capacity of the
    /// receive buffer (limited to the room), so that it is never zeroed. Read into it, then
    /// [`commit_room`](Self::commit_room).
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn receive_room(&mut self) -> bytes::buf::Limit<&mut bytes::BytesMut> {
        self.retry_reserve();
        let read_size = self.config.read_buffer_size;
        let usual = self.recv.buf.offer(read_size);
        let n = match self.recv.expected_payload(self.config.receive_mode, read_size) {
            0 => usual,
            rest => rest.max(usual),
        };
        self.recv.buf.room(n)
    }

    /// [`commit_received`](Self::commit_received) after a read into
    /// [`receive_room`](Self::receive_room) (what it read, zero bytes included).
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn commit_room(&mut self) -> Result<(), Error> {
        let keep = self.accepts_input() && self.error.is_none();
        self.recv.buf.commit_room(keep);
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        self.process()
    }

    /// A read into [`receive_room`](Self::receive_room) found nothing to read (it is
    /// pending): the room goes back, with nothing to process.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn abandon_room(&mut self) {
        self.recv.buf.commit_room(false);
    }

    /// Zero-copy receive, step two: `n` bytes were written at the start of
    /// [`receive_buffer`](Self::receive_buffer).
    #[inline]
    pub fn commit_received(&mut self, n: usize) -> Result<(), Error> {
        if self.accepts_input() && self.error.is_none() {
            self.recv.buf.commit(n);
        }
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        self.process()
    }

    /// The transport reached end of stream. Clean if the peer's close frame was received
    /// (whether or not our reply went out), [`Error::UnexpectedEof`] otherwise.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        self.eof = true;
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        match self.state {
            State::Closed => Ok(()),
            State::CloseReceived => {
                // The peer closed properly and then went away before our reply: nothing was
                // lost, there is just no one left to answer.
                self.state = State::Closed;
                self.close_reply = None;
                self.send.clear();
                Ok(())
            }
            _ => {
                self.state = State::Failed;
                self.send.clear();
                // A partial frame or message can never complete now: let its memory go.
                self.recv.discard();
                self.error = Some(Error::UnexpectedEof);
                Err(Error::UnexpectedEof)
            }
        }
    }

    fn accepts_input(&self) -> bool {
        matches!(self.state, State::Open | State::CloseSent)
    }

    /// Fails the connection: remember the error, drop further input, and queue the close frame
    /// for `err` (unless one was sent already) — right away, or once the application has taken
    /// the events received before the failure.
    fn fail(&mut self, err: Error) -> Error {
        if self.error.is_none() {
            if matches!(self.state, State::Open | State::CloseReceived) {
                let reason = alloc::format!("{err}");
                let frame = CloseFrame::truncated(err.close_code(), &reason);
                if self.events.is_empty() {
                    self.send.push_close(Some(&frame));
                } else {
                    self.failure_close = Some(Box::new(frame));
                }
                self.timers.arm_close();
            }
            self.state = State::Failed;
            self.close_reply = None;
            self.recv.discard();
            self.error = Some(err.clone());
        }
        err
    }

    fn send_close_reply(&mut self, reply: Option<CloseCode>) {
        if self.state == State::CloseReceived {
            // Echo the peer's code, without its reason (RFC 6455 §5.5.1).
            let frame = reply.map(|code| CloseFrame::new(code, ""));
            self.send.push_close(frame.as_ref());
            self.state = State::Closed;
            self.timers.arm_close();
        }
    }

    // ----- commands -----

    /// Starts the close handshake with `code` and `reason` (or answers the peer's close if it
    /// already sent one). Messages queued before are sent first.
    ///
    /// ```
    /// use wscore::{CloseCode, Config, Connection, State};
    /// let mut conn = Connection::server(Config::default());
    /// conn.close(CloseCode::NORMAL, "bye").unwrap();
    /// assert_eq!(conn.state(), State::CloseSent);
    /// assert_eq!(conn.transmit(), b"\x88\x05\x03\xe8bye");
    /// assert!(conn.close(CloseCode::NORMAL, "again").is_err());
    /// ```
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > crate::close::MAX_CLOSE_REASON {
            return Err(SendError::ReasonTooLong(reason.len()));
        }
        let frame = CloseFrame::new(code, alloc::string::String::from(reason));
        match self.state {
            State::Open => {
                self.send.push_close(Some(&frame));
                self.state = State::CloseSent;
                self.timers.arm_close();
                Ok(())
            }
            State::CloseReceived => {
                // Our close doubles as the reply.
                self.close_reply = None;
                self.send.push_close(Some(&frame));
                self.state = State::Closed;
                self.timers.arm_close();
                Ok(())
            }
            _ => Err(SendError::Closed),
        }
    }

    /// Closes with 1000 and no reason.
    pub fn close_normal(&mut self) -> Result<(), SendError> {
        self.close(CloseCode::NORMAL, "")
    }

    #[inline]
    fn check_can_send(&self) -> Result<(), SendError> {
        let answering_before_failure = self.failure_close.is_some();
        if !matches!(self.state, State::Open | State::CloseReceived) && !answering_before_failure {
            return Err(SendError::Closed);
        }
        let buffered = self.send.buffered_amount();
        if buffered > self.config.max_write_buffer {
            return Err(SendError::BufferFull { buffered, limit: self.config.max_write_buffer });
        }
        Ok(())
    }

    /// Queues a whole message. Messages longer than
    /// [`Config::write_fragment_size`] are sent as several frames.
    ///
    /// ```
    /// use wscore::{Config, Connection, Message};
    /// let mut conn = Connection::server(Config::default());
    /// conn.send(Message::Text("Hello".into())).unwrap();
    /// assert_eq!(conn.transmit(), b"\x81\x05Hello"); // RFC 6455 §5.7
    /// ```
    #[inline]
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.send.stream_open().is_some() {
            return Err(SendError::MessageInProgress);
        }
        let (kind, data) = match message {
            Message::Text(t) => (MessageKind::Text, t.into_bytes()),
            Message::Binary(b) => (MessageKind::Binary, b),
        };
        let (data, compressed) = self.compress(data, true, None);
        self.send.push_message(kind, data, true, compressed, &self.config);
        Ok(())
    }

    /// Compresses a message (or a streamed piece) if permessage-deflate is in force and the
    /// message is worth it. `stream`: whether the streamed message being continued is
    /// compressed (`None` for whole messages and first pieces).
    #[cfg_attr(not(feature = "deflate"), allow(unused_variables, unused_mut))]
    #[inline]
    fn compress(&mut self, data: Bytes, last: bool, stream: Option<bool>) -> (Bytes, bool) {
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate.as_mut() {
            // Whole messages below the threshold go as they are; a streamed message cannot be
            // measured up front, so it is compressed whenever compression is on.
            let wanted = stream.unwrap_or(!last || deflate.wants(data.len()));
            if wanted {
                return (Bytes::from(deflate.compress(&data, last)), true);
            }
        }
        (data, false)
    }

    /// Queues a text message.
    #[inline]
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    #[inline]
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues one piece of a message streamed in pieces. The first call starts a message of
    /// `kind`; later calls continue it (their `kind` must match); `last` ends it. Each piece
    /// becomes one or more frames as soon as it is queued, so memory stays bounded by what
    /// the application hands over.
    ///
    /// For text, the pieces must concatenate to valid UTF-8; a piece may end inside a code
    /// point (the caller vouches for the whole).
    ///
    /// ```
    /// use wscore::{Config, Connection, MessageKind};
    /// let mut conn = Connection::server(Config::default());
    /// conn.send_fragment(MessageKind::Text, "Hel", false).unwrap();
    /// conn.send_fragment(MessageKind::Text, "lo", true).unwrap();
    /// assert_eq!(conn.transmit(), b"\x01\x03Hel\x80\x02lo"); // RFC 6455 §5.7
    /// ```
    pub fn send_fragment(&mut self, kind: MessageKind, data: impl Into<Bytes>, last: bool) -> Result<(), SendError> {
        self.check_can_send()?;
        if let Some(open) = self.send.stream_open() {
            if open != kind {
                return Err(SendError::MessageInProgress);
            }
        }
        let continuing = self.send.stream_open().map(|_| self.send.stream_compressed());
        let (data, compressed) = self.compress(data.into(), last, continuing);
        self.send.push_message(kind, data, last, compressed, &self.config);
        Ok(())
    }

    /// Queues a ping (at most 125 bytes), sent ahead of queued data frames.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.control(crate::frame::OpCode::Ping, payload.into())
    }

    /// Queues an unsolicited pong (at most 125 bytes), e.g. a unidirectional heartbeat.
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.control(crate::frame::OpCode::Pong, payload.into())
    }

    fn control(&mut self, opcode: crate::frame::OpCode, payload: Bytes) -> Result<(), SendError> {
        if payload.len() > crate::frame::MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        self.check_can_send()?;
        self.send.push_control(opcode, payload);
        Ok(())
    }

    /// The next bytes to write to the transport (empty when there is nothing to write). Call
    /// [`advance_transmit`](Self::advance_transmit) with the number written.
    #[must_use]
    #[inline]
    pub fn transmit(&self) -> &[u8] {
        self.send.chunk()
    }

    /// Marks `n` bytes of [`transmit`](Self::transmit) as written.
    #[inline]
    pub fn advance_transmit(&mut self, n: usize) {
        self.send.advance(n);
        self.timers.wrote(n);
    }

    /// Fills `dst` with the buffered output as a list of slices (header and large payloads
    /// apart, no copy) and returns how many were filled. Write them with
    /// `write_vectored`, then call [`advance_transmit`](Self::advance_transmit).
    ///
    /// When [`transmit`](Self::transmit) holds everything queued (its length is
    /// [`buffered_amount`](Self::buffered_amount)), as it does after small frames, which are
    /// coalesced, a plain `write` of it does the same with less work in the kernel (`send`
    /// instead of `writev` on a socket); the drivers do that.
    #[cfg(feature = "std")]
    pub fn transmit_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        self.send.chunks_vectored(dst)
    }

    /// Takes all buffered output as one owned buffer (convenient for tests and drivers that
    /// hand buffers to the kernel).
    pub fn take_transmit(&mut self) -> Bytes {
        let out = self.send.take_all();
        self.timers.wrote(out.len());
        out
    }

    /// Lets go of buffer allocations that hold nothing: the receive buffer when no partial
    /// frame or message is buffered, the send buffer when everything was written, and the
    /// event queue when it is empty. Call it when about to wait for input with nothing
    /// pending, so that an idle connection holds no buffers (the next read allocates again).
    /// The tokio driver does this once reads have found nothing for
    /// [`Config::buffer_release_delay`](crate::Config::buffer_release_delay).
    ///
    /// ```
    /// use wscore::{Config, Connection};
    /// let mut conn = Connection::server(Config::default());
    /// let room = conn.receive_buffer(); // a read found nothing...
    /// assert!(!room.is_empty());
    /// conn.commit_received(0).unwrap();
    /// conn.release_buffers(); // ...so the room offered for it goes until the next read
    /// ```
    pub fn release_buffers(&mut self) {
        if self.recv.message.is_none() && self.recv.frame.is_none() {
            self.recv.buf.release_if_empty();
        }
        self.recv.spare_message = None;
        self.send.release_if_empty();
        self.events.release_if_empty();
    }

    /// Whether output is waiting to be written.
    #[must_use]
    #[inline]
    pub fn wants_write(&self) -> bool {
        !self.send.is_empty()
    }
}
