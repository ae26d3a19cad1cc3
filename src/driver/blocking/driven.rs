//! The drive loop over a blocking stream, shared by [`WebSocket`](super::WebSocket) and the
//! [`Reader`](super::Reader) / [`Writer`](super::Writer) halves: writing with timeouts taken
//! from the deadlines, handing out events, shutting down (a lingering close), and reporting
//! the end.

use super::transport::{TimeoutCache, Transport, time_until};
use crate::connection::{Connection, Event, Message};
use crate::driver::{Closing, DriverError, TransportState, copy_io_error, is_timeout};
use crate::error::SendError;
use crate::time::Instant;
use std::io::{self, IoSlice, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Slices per vectored write: frame headers and large payloads are separate slices.
const MAX_SLICES: usize = 32;

/// What one turn of the drive loop found.
#[derive(Debug)]
pub(super) enum Turn {
    /// Return this to the application: an event, or `None` for the end of the connection.
    Report(Option<Event>),
    /// Nothing to report: wait for input (or the next deadline).
    Wait,
    /// The sending side is shut down: read and discard input until the peer's end of stream or
    /// this instant (a lingering close), then call [`Driven::end_linger`].
    Linger(Instant),
}

/// The writing side of a driven connection: the connection, the stream it writes to, and what
/// is known about that stream.
#[derive(Debug)]
pub(super) struct Driven<S> {
    pub(super) conn: Connection,
    pub(super) stream: S,
    pub(super) transport: TransportState,
    pub(super) write_timeout: TimeoutCache,
}

impl<S: Write + Transport> Driven<S> {
    /// Writes everything the connection has queued and flushes the stream, with the write
    /// timeout taken from the next deadline (firing it when it passes). A failure of the
    /// transport is recorded (and returned); a `WouldBlock` without a deadline (a non-blocking
    /// stream) is only returned.
    ///
    /// The flush is part of the loop: a TLS stream writes its records there, and may time out
    /// there like a write.
    pub(super) fn write_pending(&mut self) -> io::Result<()> {
        let mut flushed = false;
        while self.transport.usable() {
            let writing = self.conn.wants_write();
            if !writing && flushed {
                break;
            }
            let now = Instant::now();
            let deadline = self.conn.poll_timeout();
            if deadline.is_some_and(|at| at <= now) {
                // Errors are sticky in the connection and reported by `read`.
                let _ = self.conn.handle_timeout(now);
                continue;
            }
            let stream = &mut self.stream;
            let timeout = time_until(deadline, now);
            if writing {
                self.write_timeout.set(timeout, |t| stream.set_write_timeout(t))?;
            } else {
                // A flush (a no-op on a socket) keeps the write's timeout: no system call.
                self.write_timeout.set_lazily(timeout, |t| stream.set_write_timeout(t))?;
            }
            let result = if writing {
                // All the output in one slice (small frames are coalesced): a plain write, a
                // `send` on a socket, cheaper in the kernel than a `writev`.
                let first = self.conn.transmit();
                if first.len() == self.conn.buffered_amount() {
                    self.stream.write(first).map(Some)
                } else {
                    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                    let count = self.conn.transmit_vectored(&mut slices);
                    self.stream.write_vectored(&slices[..count]).map(Some)
                }
            } else {
                self.stream.flush().map(|()| None)
            };
            match result {
                Ok(Some(0)) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(Some(n)) => {
                    self.conn.advance_transmit(n);
                    flushed = false;
                }
                Ok(None) => flushed = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The deadline's turn comes at the top of the loop.
                Err(e) if is_timeout(&e) && deadline.is_some() => {}
                // Flushed again, this time without a timeout.
                Err(e) if is_timeout(&e) && self.write_timeout.timed_out_stale() => {}
                Err(e) if is_timeout(&e) => return Err(e),
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    /// Records a transport failure; returns a copy of the error for the caller.
    pub(super) fn fail(&mut self, err: io::Error) -> io::Error {
        let copy = copy_io_error(&err);
        self.transport.fail(&mut self.conn, err);
        copy
    }

    /// Shuts the transport down if the connection asks for it; returns whether it did. Where
    /// the stream can, only its sending side goes first, and the reading side lingers
    /// ([`Turn::Linger`]).
    pub(super) fn shut_down_if_asked(&mut self) -> bool {
        if !self.conn.should_close_transport() {
            return false;
        }
        if self.transport.closing == Closing::Open {
            let linger = self.transport.linger_deadline(&self.conn, Instant::now());
            // The transport may already be gone; there is nothing left to tell the peer.
            self.transport.closing = match linger {
                Some(until) if matches!(self.stream.shutdown_write(), Ok(true)) => Closing::Lingering(until),
                _ => {
                    let _ = self.stream.shutdown();
                    Closing::Done
                }
            };
        }
        true
    }

    /// The lingering is over: shuts the transport down in full.
    pub(super) fn end_linger(&mut self) {
        if matches!(self.transport.closing, Closing::Lingering(_)) {
            self.transport.closing = Closing::Done;
            let _ = self.stream.shutdown();
        }
    }

    /// Writes the queued output for a command; reports the failure of the transport, or of
    /// the connection if it failed while writing (or before).
    pub(super) fn flush(&mut self) -> Result<(), DriverError> {
        let written = self.write_pending();
        self.shut_down_if_asked();
        written?;
        self.transport.command_result(&self.conn)
    }

    /// Runs a command on the connection and writes out what it queued. A command refused
    /// because the connection failed reports that failure.
    pub(super) fn command(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), SendError>,
    ) -> Result<(), DriverError> {
        command(&mut self.conn).map_err(|e| self.transport.refused(&self.conn, e))?;
        self.flush()
    }

    /// Queues `message`, writing out what is buffered first if the write buffer is full.
    pub(super) fn queue(&mut self, message: Message) -> Result<(), DriverError> {
        let queued = match self.conn.send(message.clone()) {
            Err(SendError::BufferFull { .. }) => {
                self.flush()?;
                self.conn.send(message)
            }
            queued => queued,
        };
        queued.map_err(|e| self.transport.refused(&self.conn, e))
    }

    /// Queues `message` and writes it out.
    pub(super) fn send(&mut self, message: Message) -> Result<(), DriverError> {
        self.queue(message)?;
        self.flush()
    }

    /// One turn of the drive loop's first three steps: the next event (with the replies it
    /// queued written out), or the end of the connection once it asks for the transport to be
    /// shut down (after lingering, where the stream lingers).
    pub(super) fn turn(&mut self) -> Result<Turn, DriverError> {
        if self.transport.ended {
            return Ok(Turn::Report(None));
        }
        if let Some(event) = self.conn.poll_event() {
            // Taking the peer's Close queued the reply: send it (and the pong to a ping) right
            // away, in case the application reads no more. Other output waits until the events
            // are drained, so replies to a burst of messages go out in one batch. A failure of
            // the transport is reported after the remaining events; what a non-blocking stream
            // did not take is written by the next call.
            if matches!(event, Event::Ping(_) | Event::Close(_)) {
                let _ = self.write_pending();
            }
            return Ok(Turn::Report(Some(event)));
        }
        // Timers fire once the events are drained: a deadline anchored now measures the
        // transport, not the application's time with the events (the write-stall deadline).
        let now = Instant::now();
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            // A failure is sticky and reported at the end, after the events before it.
            let _ = self.conn.handle_timeout(now);
        }
        if let Err(e) = self.write_pending() {
            if self.transport.usable() {
                return Err(e.into()); // WouldBlock on a non-blocking stream
            }
        }
        if self.shut_down_if_asked() {
            if let Closing::Lingering(until) = self.transport.closing {
                return Ok(Turn::Linger(until));
            }
            return self.transport.finish(&self.conn).map(Turn::Report);
        }
        Ok(Turn::Wait)
    }

    /// Hands the result of one read to the connection (`receive` copies `data` when the read
    /// went to the driver's own buffer; `None` means the read went to the connection's buffer).
    /// `timed`: whether a timeout was set for the read.
    pub(super) fn after_read(
        &mut self,
        result: io::Result<usize>,
        data: Option<&[u8]>,
        timed: bool,
    ) -> Result<(), DriverError> {
        match (result, data) {
            (Ok(0), None) => {
                let _ = self.conn.commit_received(0);
                let _ = self.conn.receive_eof();
            }
            (Ok(0), Some(_)) => {
                let _ = self.conn.receive_eof();
            }
            // Connection errors are sticky; the drive loop sends the close frame and reports them.
            (Ok(n), None) => {
                let _ = self.conn.commit_received(n);
            }
            (Ok(n), Some(data)) => {
                // `min`: a faulty `Read` may claim more than the buffer holds.
                let _ = self.conn.receive(&data[..n.min(data.len())]);
            }
            (Err(e), data) => {
                if data.is_none() {
                    let _ = self.conn.commit_received(0);
                }
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    // The deadline's turn comes at the top of the loop.
                    _ if is_timeout(&e) && timed => {}
                    _ if is_timeout(&e) => return Err(e.into()),
                    _ => self.transport.fail(&mut self.conn, e),
                }
            }
        }
        Ok(())
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means another thread panicked while holding it. The connection is still
    // consistent (the core never leaves it half-updated), so go on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
