//! A [split](super::WebSocketStream::split) connection: a [`ReadHalf`] that drives everything
//! the connection needs, and a [`WriteHalf`] for sending from another task.

use super::inner::{Inner, Timer, lock, poll_next_message};
use super::sending::{self, WriteSide};
use crate::close::CloseCode;
use crate::connection::{Connection, Event, Message, MessageKind, State};
use crate::driver::DriverError;
use crate::error::SendError;
use crate::utf8::Utf8Bytes;
use ::tokio::io::{AsyncRead, AsyncWrite};
use alloc::sync::Arc;
use bytes::Bytes;
use core::future::poll_fn;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use futures_core::Stream;
use futures_sink::Sink;
use std::sync::Mutex;
use std::task::Wake;

/// The tasks waiting on the shared stream's write readiness (or on each other). The stream
/// remembers only the last waker given to a write, so both halves write with one waker that
/// wakes them both.
#[derive(Debug, Default)]
struct HalfWakers {
    reader: Mutex<Option<Waker>>,
    writer: Mutex<Option<Waker>>,
}

impl HalfWakers {
    fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut slot = lock(slot);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(slot: &Mutex<Option<Waker>>) {
        let waker = lock(slot).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Wake for HalfWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        Self::wake(&self.reader);
        Self::wake(&self.writer);
    }
}

/// What the two halves share.
#[derive(Debug)]
struct Shared<S> {
    inner: Mutex<Inner<S>>,
    wakers: Arc<HalfWakers>,
    /// Wakes both halves; given to every write on the stream.
    write_waker: Waker,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    /// Runs a write-side poll for the write half: registers its task, writes with the shared
    /// waker (the write half's own timer with its own `cx`), and wakes the read half if the
    /// poll moved a deadline or ended the connection (the read half owns the main timer and
    /// finishes the shutdown).
    fn writer_poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Inner<S>, &mut Context<'_>, &Waker) -> T,
    ) -> T {
        HalfWakers::register(&self.wakers.writer, cx.waker());
        let mut inner = lock(&self.inner);
        let deadline = inner.conn.poll_timeout();
        let result = poll(&mut inner, cx, &self.write_waker);
        if inner.conn.poll_timeout() != deadline {
            HalfWakers::wake(&self.wakers.reader);
        }
        result
    }
}

/// Shares a driven stream between a [`ReadHalf`] (which takes the timer) and a [`WriteHalf`].
pub(super) fn halves<S>(inner: Inner<S>, timer: Timer) -> (ReadHalf<S>, WriteHalf<S>) {
    let wakers = Arc::new(HalfWakers::default());
    let shared = Arc::new(Shared { inner: Mutex::new(inner), write_waker: Waker::from(Arc::clone(&wakers)), wakers });
    (ReadHalf { shared: Arc::clone(&shared), timer }, WriteHalf { shared, timer: Timer::default() })
}

/// The reading half of a [split](super::WebSocketStream::split) connection: a [`Stream`] of
/// messages. It also writes the automatic replies, fires timers and shuts the transport down:
/// keep polling it until it returns `None`.
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    timer: Timer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Polls for the next event, like [`WebSocketStream::poll_next_event`](super::WebSocketStream::poll_next_event).
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, DriverError>> {
        let shared = &*self.shared;
        HalfWakers::register(&shared.wakers.reader, cx.waker());
        let mut inner = lock(&shared.inner);
        let result = inner.poll_next_event(&mut self.timer, cx, Some(&shared.write_waker));
        // A writer waiting for room (or for the end) may go on now.
        if inner.conn.buffered_amount() < inner.high_water() || !inner.transport.usable() || inner.transport.ended {
            HalfWakers::wake(&shared.wakers.writer);
        }
        result
    }

    /// The next event, like [`WebSocketStream::next_event`](super::WebSocketStream::next_event). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn f(mut read: wscore::tokio::ReadHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// while let Some(event) = read.next_event().await? {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_event(&mut self) -> Result<Option<Event>, DriverError> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The next data message, like [`WebSocketStream::next_message`](super::WebSocketStream::next_message). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn f(mut read: wscore::tokio::ReadHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// while let Some(message) = read.next_message().await? {
    ///     println!("{} bytes", message.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_message(&mut self) -> Result<Option<Message>, DriverError> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }

    /// Whether the connection is open, closing or over.
    ///
    /// ```no_run
    /// # fn f(read: wscore::tokio::ReadHalf<tokio::net::TcpStream>) {
    /// assert_eq!(read.state(), wscore::State::Open);
    /// # }
    /// ```
    #[must_use]
    pub fn state(&self) -> State {
        lock(&self.shared.inner).conn.state()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, DriverError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_message(cx, |cx| this.poll_next_event(cx))
    }
}

/// The writing half of a [split](super::WebSocketStream::split) connection: a [`Sink`] of messages,
/// with inherent async methods for the same.
///
/// A write that the stream does not take keeps the connection's deadlines running on a timer
/// of the write half's own, so a peer that stops reading fails the connection (at the
/// keepalive or write-stall deadline) even while the read half is not polled, and the write
/// reports that failure.
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
    timer: Timer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteSide for WriteHalf<S> {
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        let timer = &mut self.timer;
        self.shared.writer_poll(cx, |inner, cx, waker| inner.poll_ready(timer, cx, Some(waker)))
    }

    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        let timer = &mut self.timer;
        self.shared.writer_poll(cx, |inner, cx, waker| inner.poll_flush(timer, cx, Some(waker)))
    }

    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        let timer = &mut self.timer;
        self.shared.writer_poll(cx, |inner, cx, waker| inner.poll_close(timer, cx, Some(waker)))
    }

    /// Runs a command on the connection, waking the read half if it moved a deadline.
    fn command<T>(&mut self, command: impl FnOnce(&mut Connection) -> Result<T, SendError>) -> Result<T, DriverError> {
        let mut inner = lock(&self.shared.inner);
        let deadline = inner.conn.poll_timeout();
        let result = inner.command(command);
        if inner.conn.poll_timeout() != deadline {
            HalfWakers::wake(&self.shared.wakers.reader);
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Queues a message and writes out everything queued.
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.send(wscore::Message::Text("hi".into())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&mut self, message: Message) -> Result<(), DriverError> {
        sending::send(self, message).await
    }

    /// Queues a message without writing it (waiting first while too much output is queued).
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.feed(wscore::Message::Text("one".into())).await?;
    /// write.feed(wscore::Message::Text("two".into())).await?;
    /// write.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn feed(&mut self, message: Message) -> Result<(), DriverError> {
        sending::feed(self, message).await
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.send_text("hi").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), DriverError> {
        self.send(Message::Text(text.into())).await
    }

    /// Sends a binary message.
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.send_binary(vec![1, 2, 3]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), DriverError> {
        self.send(Message::Binary(data.into())).await
    }

    /// Sends one piece of a message streamed in pieces (see [`Connection::send_fragment`]).
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.send_fragment(wscore::MessageKind::Text, "Hel", false).await?;
    /// write.send_fragment(wscore::MessageKind::Text, "lo", true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        last: bool,
    ) -> Result<(), DriverError> {
        sending::send_fragment(self, kind, data.into(), last).await
    }

    /// Sends a ping (at most 125 bytes); the pong reaches the read half as [`Event::Pong`].
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.ping("heartbeat").await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.ping(payload)).await
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.pong("").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.pong(payload)).await
    }

    /// Starts the close handshake (or answers the peer's close) and writes the close frame;
    /// the read half completes the handshake.
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.close(wscore::CloseCode::NORMAL, "").await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.close(code, reason)).await
    }

    /// Writes out everything queued.
    ///
    /// ```no_run
    /// # async fn f(write: &mut wscore::tokio::WriteHalf<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// write.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&mut self) -> Result<(), DriverError> {
        sending::flush(self).await
    }

    /// Whether the connection is open, closing or over.
    ///
    /// ```no_run
    /// # fn f(write: wscore::tokio::WriteHalf<tokio::net::TcpStream>) {
    /// assert_eq!(write.state(), wscore::State::Open);
    /// # }
    /// ```
    #[must_use]
    pub fn state(&self) -> State {
        lock(&self.shared.inner).conn.state()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = DriverError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), DriverError> {
        self.get_mut().command(|conn| conn.send(message))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_written(cx)
    }

    /// Sends close 1000 (unless a close frame was sent already) and flushes; the read half
    /// completes the close handshake.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_closed(cx)
    }
}
