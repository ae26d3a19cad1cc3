//! The drive loop over a tokio stream, as `poll_*` functions shared by
//! [`WebSocketStream`](super::WebSocketStream) and the split halves: vectored writes, the
//! timer (on the write path too, so a writer stuck on a peer that stopped reading wakes at the
//! deadlines), reading into the connection, the lingering close, and the sink's backpressure.

use crate::connection::{Connection, Event, Message, State};
use crate::driver::{Closing, DriverError, TransportState, copy_io_error};
use crate::error::SendError;
use crate::time::Instant;
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::Sleep;
use ::tokio_util::io::poll_read_buf;
use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Slices per vectored write: frame headers and large payloads are separate slices.
const MAX_SLICES: usize = 64;

/// The sink accepts a message while less than this much output is queued (or
/// [`Config::max_write_buffer`](crate::Config::max_write_buffer), if lower); past it, it writes first.
const WRITE_HIGH_WATER: usize = 128 << 10;

/// The current time on tokio's clock (which a test may pause), as the core's instant.
pub(super) fn now() -> Instant {
    Instant::from(::tokio::time::Instant::now().into_std())
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means another task panicked while polling. The connection is still
    // consistent (the core never leaves it half-updated), so go on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection's next deadline as a tokio sleep, allocated once and reset as deadlines move.
#[derive(Debug, Default)]
pub(super) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timer {
    pub(super) fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = ::tokio::time::Instant::from_std(at.to_std());
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            empty => empty.insert(Box::pin(::tokio::time::sleep_until(deadline))),
        };
        sleep.as_mut().poll(cx)
    }

    /// Whether `at` has passed; if not, the timer wakes `cx` then.
    fn passed(&mut self, at: Instant, cx: &mut Context<'_>) -> bool {
        at <= now() || self.poll_until(at, cx).is_ready()
    }
}

/// A stream, the connection it carries, and what is known about the stream.
#[derive(Debug)]
pub(super) struct Inner<S> {
    pub(super) io: S,
    pub(super) conn: Connection,
    pub(super) transport: TransportState,
    /// Bytes were written since the last flush of `io`.
    needs_flush: bool,
    /// Bytes were read since the last read that found nothing.
    read_since_pending: bool,
    /// Armed while input flows: when it fires and nothing was read since, the connection lets
    /// its buffers go ([`Config::buffer_release_delay`](crate::Config::buffer_release_delay)).
    release_timer: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    pub(super) fn new(io: S, conn: Connection) -> Self {
        Self {
            io,
            conn,
            transport: TransportState::default(),
            needs_flush: false,
            read_since_pending: false,
            release_timer: None,
        }
    }

    pub(super) fn high_water(&self) -> usize {
        WRITE_HIGH_WATER.min(self.conn.config().max_write_buffer).max(1)
    }

    /// Records a transport failure; returns a copy of the error for the caller.
    pub(super) fn fail(&mut self, err: io::Error) -> io::Error {
        let copy = copy_io_error(&err);
        self.transport.fail(&mut self.conn, err);
        copy
    }

    /// Writes everything queued, as vectored writes, then flushes the stream. `Ready(Ok)` also
    /// when the transport can no longer be written; `Ready(Err)` when writing failed (recorded).
    pub(super) fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() && self.transport.usable() {
            // All the output in one slice (small frames are coalesced): a plain write, which
            // on a socket is a `send`, cheaper in the kernel than a `writev`.
            let first = self.conn.transmit();
            let written = if first.len() == self.conn.buffered_amount() {
                Pin::new(&mut self.io).poll_write(cx, first)
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = self.conn.transmit_vectored(&mut slices);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
            };
            match written {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(self.fail(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => {
                    self.conn.advance_transmit(n);
                    self.needs_flush = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.needs_flush && self.transport.usable() {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Runs a command on the connection. A command refused because the connection failed
    /// reports that failure.
    pub(super) fn command<T>(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<T, SendError>,
    ) -> Result<T, DriverError> {
        command(&mut self.conn).map_err(|e| self.transport.refused(&self.conn, e))
    }

    /// Fires the connection's deadline if it is due (or `timer` says it passed), else arms
    /// `timer` for it. Returns whether it fired.
    fn poll_deadline(&mut self, timer: &mut Timer, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.conn.poll_timeout() else {
            return false;
        };
        let now = now();
        if at <= now {
            // Failures are sticky and reported at the end, after the events before them.
            let _ = self.conn.handle_timeout(now);
            return true;
        }
        if timer.poll_until(at, cx).is_ready() {
            // The sleep says the deadline passed, whatever the rounding of the clocks.
            let _ = self.conn.handle_timeout(at.max(now));
            return true;
        }
        false
    }

    /// Writes everything queued, with `write_waker` when given (split halves share one), `cx`
    /// otherwise. While the stream takes nothing, the connection's deadlines keep running on
    /// `timer`: the keepalive, close and write-stall deadlines may fail the connection (which
    /// drops the output) instead of leaving the writer waiting forever on a peer that stopped
    /// reading.
    fn poll_write_timed(
        &mut self,
        timer: &mut Timer,
        cx: &mut Context<'_>,
        write_waker: Option<&Waker>,
    ) -> Poll<io::Result<()>> {
        loop {
            let written = match write_waker {
                Some(waker) => self.poll_write_pending(&mut Context::from_waker(waker)),
                None => self.poll_write_pending(cx),
            };
            if written.is_ready() || !self.poll_deadline(timer, cx) {
                return written;
            }
        }
    }

    /// Shuts the sending side down once the connection asks for the end (with `cx`, the write
    /// waker); `Pending` while the stream's `poll_shutdown` is. Then the reading side lingers
    /// ([`poll_end`](Self::poll_end)).
    fn poll_shut_down_sending(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.transport.closing == Closing::Open && self.conn.should_close_transport() {
            self.transport.closing = match self.transport.usable() {
                true => Closing::ShuttingDown(self.transport.linger_deadline(&self.conn, now())),
                false => Closing::Done,
            };
        }
        if let Closing::ShuttingDown(linger) = self.transport.closing {
            self.transport.closing = match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => linger.map_or(Closing::Done, Closing::Lingering),
                // The transport is gone already: nothing left to tell, nothing to linger for.
                Poll::Ready(Err(_)) => Closing::Done,
            };
        }
        Poll::Ready(())
    }

    /// The end of the transport, on the reading side: the sending side shut down, then input
    /// read and discarded until the peer's end of stream or the linger deadline (a lingering
    /// close). A shutdown that cannot complete is waited for until that deadline, or not at
    /// all without one (the peer was given up on).
    fn poll_end(&mut self, timer: &mut Timer, cx: &mut Context<'_>, write_waker: Option<&Waker>) -> Poll<()> {
        loop {
            match self.transport.closing {
                Closing::Open | Closing::ShuttingDown(_) => {
                    let shutdown = match write_waker {
                        Some(waker) => self.poll_shut_down_sending(&mut Context::from_waker(waker)),
                        None => self.poll_shut_down_sending(cx),
                    };
                    if shutdown.is_pending() {
                        match self.transport.closing {
                            Closing::ShuttingDown(Some(at)) if !timer.passed(at, cx) => return Poll::Pending,
                            _ => self.transport.closing = Closing::Done,
                        }
                    }
                }
                Closing::Lingering(until) => {
                    if timer.passed(until, cx) {
                        self.transport.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 8 << 10];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {} // discarded
                        // The peer's end of stream (or an error): the socket can go.
                        Poll::Ready(_) => self.transport.closing = Closing::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Done => return Poll::Ready(()),
            }
        }
    }

    /// The drive loop: the next event, or the end of the connection. Writes use `write_waker`
    /// when given (split halves share one), `cx` otherwise.
    pub(super) fn poll_next_event(
        &mut self,
        timer: &mut Timer,
        cx: &mut Context<'_>,
        write_waker: Option<&Waker>,
    ) -> Poll<Result<Option<Event>, DriverError>> {
        loop {
            if self.transport.ended {
                return Poll::Ready(Ok(None));
            }
            // Events first: output piles up while the application takes them, and goes out in
            // one batch below.
            if let Some(event) = self.conn.poll_event() {
                return Poll::Ready(Ok(Some(event)));
            }
            // Pending is fine: the waker is registered and reading goes on meanwhile. A
            // failure is recorded and reported after the remaining events.
            let _ = match write_waker {
                Some(waker) => self.poll_write_pending(&mut Context::from_waker(waker)),
                None => self.poll_write_pending(cx),
            };
            if self.conn.should_close_transport() {
                if self.poll_end(timer, cx, write_waker).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(self.transport.finish(&self.conn));
            }
            if self.poll_deadline(timer, cx) {
                continue;
            }
            if !self.transport.usable() {
                // Unreachable in practice (a failed transport makes the connection ask to be
                // closed), but never spin.
                let _ = self.conn.receive_eof();
                continue;
            }
            // Into the receive buffer's uninitialized room (tokio-util does the `unsafe`).
            let result = poll_read_buf(Pin::new(&mut self.io), cx, &mut self.conn.receive_room());
            // Connection errors are sticky: the loop sends the close frame and reports them.
            match result {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.read_since_pending = true;
                    let _ = self.conn.commit_room();
                }
                Poll::Ready(Ok(_)) => {
                    let _ = self.conn.commit_room();
                    let _ = self.conn.receive_eof();
                }
                Poll::Ready(Err(e)) => {
                    let _ = self.conn.commit_room();
                    if e.kind() != io::ErrorKind::Interrupted {
                        self.transport.fail(&mut self.conn, e);
                    }
                }
                Poll::Pending => {
                    self.conn.abandon_room();
                    self.waiting_for_input(cx);
                    return Poll::Pending;
                }
            }
        }
    }

    /// A read found nothing. A connection holds no buffers while it waits for input (the next
    /// read allocates a few KiB again) once it is idle: nothing was read since the last read
    /// that found nothing, and either it never read anything (just upgraded) or the release
    /// timer, armed when input came, has run for
    /// [`Config::buffer_release_delay`](crate::Config::buffer_release_delay). A connection
    /// whose input flows keeps its buffers (it lets them go about once per delay at most),
    /// whatever else wakes its task meanwhile.
    fn waiting_for_input(&mut self, cx: &mut Context<'_>) {
        let delay = self.conn.config().get_buffer_release_delay();
        let read = core::mem::take(&mut self.read_since_pending);
        let release = match &mut self.release_timer {
            _ if delay.is_zero() => true,
            None if !read => true,
            None => {
                let timer = self.release_timer.insert(Box::pin(::tokio::time::sleep(delay)));
                let _ = timer.as_mut().poll(cx);
                false
            }
            // Running, its wake registered (checked, not polled, per message: a split half
            // that moves to another task only makes a release wait for the next input).
            Some(timer) if !timer.is_elapsed() => false,
            Some(_) if !read => true,
            Some(timer) => {
                // Input came since it was armed: another delay.
                timer.as_mut().reset(::tokio::time::Instant::now() + delay);
                let _ = timer.as_mut().poll(cx);
                false
            }
        };
        if release {
            self.release_timer = None;
            self.conn.release_buffers();
        }
    }

    /// Ready to queue a message: less than the high-water mark is queued (writing first if
    /// not, with the deadlines running). The failure of the transport or of the connection,
    /// once it is over, is reported here.
    pub(super) fn poll_ready(
        &mut self,
        timer: &mut Timer,
        cx: &mut Context<'_>,
        write_waker: Option<&Waker>,
    ) -> Poll<Result<(), DriverError>> {
        if self.conn.buffered_amount() >= self.high_water() {
            match self.poll_write_timed(timer, cx, write_waker) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending if self.conn.buffered_amount() >= self.high_water() => return Poll::Pending,
                _ => {}
            }
        }
        Poll::Ready(self.after_write(cx, write_waker))
    }

    /// Writes out everything queued, with the deadlines running; reports the failure of the
    /// transport, or of the connection if it failed while writing (or before).
    pub(super) fn poll_flush(
        &mut self,
        timer: &mut Timer,
        cx: &mut Context<'_>,
        write_waker: Option<&Waker>,
    ) -> Poll<Result<(), DriverError>> {
        match self.poll_write_timed(timer, cx, write_waker) {
            Poll::Ready(Ok(())) => Poll::Ready(self.after_write(cx, write_waker)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// After a write: starts the shutdown if the connection asks for it (the reading side
    /// finishes it), and says what the command reports.
    fn after_write(&mut self, cx: &mut Context<'_>, write_waker: Option<&Waker>) -> Result<(), DriverError> {
        let _ = match write_waker {
            Some(waker) => self.poll_shut_down_sending(&mut Context::from_waker(waker)),
            None => self.poll_shut_down_sending(cx),
        };
        self.transport.command_result(&self.conn)
    }

    /// Sends close 1000 unless a close frame was sent already, then flushes.
    pub(super) fn poll_close(
        &mut self,
        timer: &mut Timer,
        cx: &mut Context<'_>,
        write_waker: Option<&Waker>,
    ) -> Poll<Result<(), DriverError>> {
        if matches!(self.conn.state(), State::Open | State::CloseReceived) {
            // Only fails if a close frame was already sent: nothing more to do then.
            let _ = self.conn.close_normal();
        }
        self.poll_flush(timer, cx, write_waker)
    }
}

/// The next item of a [`Stream`](futures_core::Stream) of messages, from `poll_event`: control
/// events are skipped (their replies are automatic), pieces of messages are an error.
pub(super) fn poll_next_message(
    cx: &mut Context<'_>,
    mut poll_event: impl FnMut(&mut Context<'_>) -> Poll<Result<Option<Event>, DriverError>>,
) -> Poll<Option<Result<Message, DriverError>>> {
    loop {
        match poll_event(cx) {
            Poll::Ready(Ok(Some(event))) => {
                if let Some(item) = message_of(event) {
                    return Poll::Ready(Some(item));
                }
            }
            Poll::Ready(Ok(None)) => return Poll::Ready(None),
            Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Turns events into the messages a [`Stream`](futures_core::Stream) yields: control events
/// are skipped, pieces of messages are an error.
fn message_of(event: Event) -> Option<Result<Message, DriverError>> {
    match event {
        Event::Message(message) => Some(Ok(message)),
        Event::Fragment(_) => Some(Err(DriverError::Fragment)),
        _ => None,
    }
}
