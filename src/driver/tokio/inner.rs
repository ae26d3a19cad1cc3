//! The drive loop over a tokio stream, as `poll_*` functions shared by
//! [`WebSocketStream`](super::WebSocketStream) and the split halves: vectored writes, the
//! timer, reading into the connection, shutting down, and the sink's backpressure.

use crate::connection::{Connection, Event, Message, State};
use crate::driver::{DriverError, TransportState, copy_io_error};
use crate::time::Instant;
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::Sleep;
use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Slices per vectored write: frame headers and large payloads are separate slices.
const MAX_SLICES: usize = 64;

/// The sink accepts a message while less than this much output is queued (or
/// [`Config::max_write_buffer`], if lower); past it, it writes first.
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
}

/// A stream, the connection it carries, and what is known about the stream.
#[derive(Debug)]
pub(super) struct Inner<S> {
    pub(super) io: S,
    pub(super) conn: Connection,
    pub(super) transport: TransportState,
    /// Bytes were written since the last flush of `io`.
    needs_flush: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    pub(super) fn new(io: S, conn: Connection) -> Self {
        Self { io, conn, transport: TransportState::default(), needs_flush: false }
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
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.conn.transmit_vectored(&mut slices);
            match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
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

    /// The error a command reports once the transport failed (unless the close handshake was
    /// already complete).
    pub(super) fn transport_error(&self) -> Result<(), DriverError> {
        match self.transport.io_error_copy() {
            Some(e) if self.conn.state() != State::Closed => Err(e.into()),
            _ => Ok(()),
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
                if !self.transport.shut_down {
                    if self.transport.usable() {
                        let shutdown = match write_waker {
                            Some(waker) => Pin::new(&mut self.io).poll_shutdown(&mut Context::from_waker(waker)),
                            None => Pin::new(&mut self.io).poll_shutdown(cx),
                        };
                        // An error means the transport is gone already: nothing left to tell.
                        if shutdown.is_pending() {
                            return Poll::Pending;
                        }
                    }
                    self.transport.shut_down = true;
                }
                return Poll::Ready(self.transport.finish(&self.conn));
            }
            if let Some(at) = self.conn.poll_timeout() {
                let now = now();
                if at <= now {
                    // Failures are sticky and reported at the end, after the events before them.
                    let _ = self.conn.handle_timeout(now);
                    continue;
                }
                if timer.poll_until(at, cx).is_ready() {
                    // The sleep says the deadline passed, whatever the rounding of the clocks.
                    let _ = self.conn.handle_timeout(at.max(now));
                    continue;
                }
            }
            if !self.transport.usable() {
                // Unreachable in practice (a failed transport makes the connection ask to be
                // closed), but never spin.
                let _ = self.conn.receive_eof();
                continue;
            }
            let mut buf = ReadBuf::new(self.conn.receive_buffer());
            let result = Pin::new(&mut self.io).poll_read(cx, &mut buf);
            let n = buf.filled().len();
            // Connection errors are sticky: the loop sends the close frame and reports them.
            match result {
                Poll::Ready(Ok(())) if n > 0 => {
                    let _ = self.conn.commit_received(n);
                }
                Poll::Ready(Ok(())) => {
                    let _ = self.conn.commit_received(0);
                    let _ = self.conn.receive_eof();
                }
                Poll::Ready(Err(e)) => {
                    let _ = self.conn.commit_received(0);
                    if e.kind() != io::ErrorKind::Interrupted {
                        self.transport.fail(&mut self.conn, e);
                    }
                }
                Poll::Pending => {
                    let _ = self.conn.commit_received(0);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Ready to queue a message: less than the high-water mark is queued (writing first if
    /// not).
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        if self.conn.buffered_amount() >= self.high_water() {
            match self.poll_write_pending(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending if self.conn.buffered_amount() >= self.high_water() => return Poll::Pending,
                _ => {}
            }
        }
        Poll::Ready(self.transport_error())
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        match self.poll_write_pending(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(self.transport_error()),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Sends close 1000 unless a close frame was sent already, then flushes.
    pub(super) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        if matches!(self.conn.state(), State::Open | State::CloseReceived) {
            // Only fails if a close frame was already sent: nothing more to do then.
            let _ = self.conn.close_normal();
        }
        self.poll_flush(cx)
    }
}

/// Turns events into the messages a [`Stream`] yields: control events are skipped (their
/// replies are automatic), pieces of messages are an error.
pub(super) fn message_of(event: Event) -> Option<Result<Message, DriverError>> {
    match event {
        Event::Message(message) => Some(Ok(message)),
        Event::Fragment(_) => Some(Err(DriverError::Fragment)),
        _ => None,
    }
}
