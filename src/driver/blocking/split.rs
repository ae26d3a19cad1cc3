//! A [split](super::WebSocket::split) connection: a [`Reader`] that blocks in `read` without
//! holding the connection's lock, and cloneable [`Writer`] handles for other threads.
//!
//! The reader either reads a handle of its own (a clone of the socket), or — for a stream that
//! cannot be read through a second handle, such as a TLS session — waits on a clone of the
//! socket underneath until it is readable, then reads the shared stream under the lock with a
//! read that does not block.

use super::driven::{Driven, Turn, lock};
use super::transport::{TimeoutCache, Transport, time_until};
use crate::close::CloseCode;
use crate::connection::{Connection, Event, Message, MessageKind, State};
use crate::driver::DriverError;
use crate::error::SendError;
use crate::time::Instant;
use crate::utf8::Utf8Bytes;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

/// How often a [`Reader`] with live [`Writer`]s looks at the timers even without input: a
/// writer may have armed a deadline (the close deadline, by [`Writer::close`]) while the reader
/// was already blocked in `read`, and a blocked read cannot be told about it.
const READER_RECHECK: Duration = Duration::from_secs(1);

/// Reads the shared stream without blocking: decrypted bytes already buffered, and with
/// `readable` (the socket has bytes or has ended) one read of the socket. `Ok(None)`: no bytes
/// yet.
pub(super) type ReadWithoutBlocking<S> = fn(&mut S, &mut [u8], bool) -> io::Result<Option<usize>>;

/// Where the reader gets its bytes.
enum ReadSide<S> {
    /// A handle of its own on the same transport, read without the lock.
    Own(S),
    /// The shared stream, read under the lock once `waiter`, a clone of the socket underneath,
    /// is readable.
    Waiting { waiter: TcpStream, read: ReadWithoutBlocking<S> },
}

impl<S: core::fmt::Debug> core::fmt::Debug for ReadSide<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Own(stream) => f.debug_tuple("Own").field(stream).finish(),
            Self::Waiting { waiter, .. } => f.debug_struct("Waiting").field("waiter", waiter).finish_non_exhaustive(),
        }
    }
}

/// Shares `driven` between a [`Reader`] reading from `read_half` and a [`Writer`].
pub(super) fn halves<S>(driven: Driven<S>, read_half: S) -> (Reader<S>, Writer<S>) {
    split_with_side(driven, ReadSide::Own(read_half))
}

/// Shares `driven` between a [`Reader`] that waits on `waiter` and reads the shared stream with
/// `read`, and a [`Writer`].
#[cfg_attr(not(feature = "rustls"), allow(dead_code))]
pub(super) fn halves_waiting<S>(
    driven: Driven<S>,
    waiter: TcpStream,
    read: ReadWithoutBlocking<S>,
) -> (Reader<S>, Writer<S>) {
    split_with_side(driven, ReadSide::Waiting { waiter, read })
}

fn split_with_side<S>(driven: Driven<S>, side: ReadSide<S>) -> (Reader<S>, Writer<S>) {
    let buf = alloc::vec![0; driven.conn.config().read_buffer_size];
    let shared = Arc::new(Mutex::new(driven));
    let reader = Reader { side, shared: Arc::clone(&shared), buf, read_timeout: TimeoutCache::default() };
    (reader, Writer { shared })
}

/// The reading half of a [split](super::WebSocket::split) connection. It blocks in
/// [`read`](Self::read) without holding the connection's lock; automatic replies, timers and
/// the transport shutdown are its job, so keep reading.
#[derive(Debug)]
pub struct Reader<S> {
    side: ReadSide<S>,
    shared: Arc<Mutex<Driven<S>>>,
    buf: Vec<u8>,
    read_timeout: TimeoutCache,
}

impl<S: Read + Write + Transport> Reader<S> {
    /// Blocks until the next event; like [`WebSocket::read`](super::WebSocket::read). The pong
    /// to a ping and the echo of the peer's close are written (through the shared writer)
    /// before the event is returned.
    ///
    /// ```no_run
    /// let (mut reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// std::thread::spawn(move || writer.send_text("hi"));
    /// while let Some(event) = reader.read()? {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn read(&mut self) -> Result<Option<Event>, DriverError> {
        loop {
            let deadline = {
                let mut driven = lock(&self.shared);
                match driven.turn()? {
                    Turn::Report(event) => return Ok(event),
                    Turn::Linger(until) => {
                        drop(driven);
                        // Without the lock, on the raw socket: what is read is discarded.
                        match &mut self.side {
                            ReadSide::Own(stream) => super::transport::linger(stream, &mut self.read_timeout, until),
                            ReadSide::Waiting { waiter, .. } => {
                                super::transport::linger(waiter, &mut self.read_timeout, until);
                            }
                        }
                        lock(&self.shared).end_linger();
                        continue;
                    }
                    Turn::Wait => {}
                }
                if !driven.transport.usable() {
                    let _ = driven.conn.receive_eof();
                    continue;
                }
                if let ReadSide::Waiting { read, .. } = &self.side {
                    // Bytes decrypted earlier need no waiting (the socket may have no more).
                    if let Some(result) = read(&mut driven.stream, &mut self.buf, false).transpose() {
                        driven.after_read(result, Some(&self.buf), false)?;
                        continue;
                    }
                }
                driven.conn.poll_timeout()
            };
            // Without the lock: wait for bytes, at most until the next deadline.
            let mut timeout = time_until(deadline, Instant::now());
            if Arc::strong_count(&self.shared) > 1 {
                timeout = Some(timeout.map_or(READER_RECHECK, |t| t.min(READER_RECHECK)));
            }
            match &mut self.side {
                ReadSide::Own(stream) => {
                    self.read_timeout.set(timeout, |t| stream.set_read_timeout(t))?;
                    let result = stream.read(&mut self.buf);
                    lock(&self.shared).after_read(result, Some(&self.buf), timeout.is_some())?;
                }
                ReadSide::Waiting { waiter, read } => {
                    self.read_timeout.set(timeout, |t| waiter.set_read_timeout(t))?;
                    // Readable (bytes, or the end of the stream) or an error; nothing consumed.
                    let waited = waiter.peek(&mut [0u8; 1]);
                    let mut driven = lock(&self.shared);
                    let result = match waited {
                        Ok(_) => match read(&mut driven.stream, &mut self.buf, true) {
                            Ok(Some(n)) => Ok(n),
                            // Part of a TLS record: wait for the rest.
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    driven.after_read(result, Some(&self.buf), timeout.is_some())?;
                }
            }
        }
    }

    /// Whether the connection is open, closing or over.
    ///
    /// ```no_run
    /// let (reader, _writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// assert_eq!(reader.state(), wscore::State::Open);
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn state(&self) -> State {
        lock(&self.shared).conn.state()
    }
}

/// The writing half of a [split](super::WebSocket::split) connection: a handle that any number of
/// threads can clone and send through. Each call locks the connection, queues, and writes the
/// output out before unlocking, so frames from different threads never interleave.
///
/// While one writer is blocked by a peer that does not read, the other writers (and the
/// reader, when it has replies to write) wait for the lock.
#[derive(Debug)]
pub struct Writer<S> {
    shared: Arc<Mutex<Driven<S>>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<S: Write + Transport> Writer<S> {
    fn command(&self, command: impl FnOnce(&mut Connection) -> Result<(), SendError>) -> Result<(), DriverError> {
        lock(&self.shared).command(command)
    }

    /// Sends a message and writes it out.
    ///
    /// ```no_run
    /// let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.send(wscore::Message::Text("hi".into()))?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send(&self, message: Message) -> Result<(), DriverError> {
        lock(&self.shared).send(message)
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.send_text("hi")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), DriverError> {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message.
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.send_binary(vec![1, 2, 3])?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), DriverError> {
        self.send(Message::Binary(data.into()))
    }

    /// Sends one piece of a streamed message (see [`Connection::send_fragment`]). Pieces of
    /// one message should come from one thread.
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.send_fragment(wscore::MessageKind::Text, "Hel", false)?;
    /// writer.send_fragment(wscore::MessageKind::Text, "lo", true)?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_fragment(&self, kind: MessageKind, data: impl Into<Bytes>, last: bool) -> Result<(), DriverError> {
        self.command(|conn| conn.send_fragment(kind, data, last))
    }

    /// Sends a ping (at most 125 bytes); the pong reaches the [`Reader`] as [`Event::Pong`].
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.ping("heartbeat")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn ping(&self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        self.command(|conn| conn.ping(payload))
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.pong("")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn pong(&self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        self.command(|conn| conn.pong(payload))
    }

    /// Starts the close handshake (or answers the peer's close). The [`Reader`] completes it:
    /// its `read` returns `Ok(None)` once the handshake is over.
    ///
    /// ```no_run
    /// # let (mut reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.close(wscore::CloseCode::NORMAL, "")?;
    /// while reader.read()?.is_some() {}
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), DriverError> {
        self.command(|conn| conn.close(code, reason))
    }

    /// Writes out anything still queued.
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// writer.flush()?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn flush(&self) -> Result<(), DriverError> {
        lock(&self.shared).flush()
    }

    /// Whether the connection is open, closing or over.
    ///
    /// ```no_run
    /// # let (_reader, writer) = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?.split()?;
    /// if writer.state() == wscore::State::Open {
    ///     writer.send_text("still open")?;
    /// }
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn state(&self) -> State {
        lock(&self.shared).conn.state()
    }
}
