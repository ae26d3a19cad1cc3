//! The commands both write sides share, [`WebSocketStream`](super::WebSocketStream) and
//! [`WriteHalf`](super::WriteHalf): each waits for room (data messages only), queues on the
//! connection and writes out, over the four primitives a write side provides ([`WriteSide`]).
//! The two sides differ only in how they reach the connection (directly, or through the lock
//! the halves share) and whose timer keeps the deadlines while a write waits.

use crate::connection::{Connection, Message, MessageKind};
use crate::driver::DriverError;
use crate::error::SendError;
use bytes::Bytes;
use core::future::poll_fn;
use core::task::{Context, Poll};

/// What a write side provides: the [`Inner`](super::inner::Inner) write polls with its timer
/// and wakers, and a way to run a command on the connection.
pub(super) trait WriteSide {
    /// Ready to queue a message: less than the high-water mark waits to be written.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>>;
    /// Everything queued is written.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>>;
    /// Close 1000 queued (unless a close frame was sent already) and everything written.
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>>;
    /// Runs `command` on the connection; a refusal because the connection failed reports that
    /// failure.
    fn command<T>(&mut self, command: impl FnOnce(&mut Connection) -> Result<T, SendError>) -> Result<T, DriverError>;
}

/// Queues a message without writing it, once there is room.
pub(super) async fn feed(side: &mut impl WriteSide, message: Message) -> Result<(), DriverError> {
    poll_fn(|cx| side.poll_room(cx)).await?;
    side.command(|conn| conn.send(message))
}

/// Queues a message and writes out everything queued.
pub(super) async fn send(side: &mut impl WriteSide, message: Message) -> Result<(), DriverError> {
    feed(side, message).await?;
    flush(side).await
}

/// Queues one piece of a streamed message, once there is room, and writes it out.
pub(super) async fn send_fragment(
    side: &mut impl WriteSide,
    kind: MessageKind,
    data: Bytes,
    last: bool,
) -> Result<(), DriverError> {
    poll_fn(|cx| side.poll_room(cx)).await?;
    side.command(|conn| conn.send_fragment(kind, data, last))?;
    flush(side).await
}

/// Runs a control command (ping, pong, close: they jump the queue, so no waiting for room) and
/// writes it out.
pub(super) async fn control(
    side: &mut impl WriteSide,
    command: impl FnOnce(&mut Connection) -> Result<(), SendError>,
) -> Result<(), DriverError> {
    side.command(command)?;
    flush(side).await
}

/// Writes out everything queued.
pub(super) async fn flush(side: &mut impl WriteSide) -> Result<(), DriverError> {
    poll_fn(|cx| side.poll_written(cx)).await
}
