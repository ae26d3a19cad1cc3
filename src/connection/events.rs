//! The events waiting for the application, in the order they happened.
//!
//! Most are queued as [`Event`]s. The whole messages of a batch of short frames
//! ([`Connection::whole_frames`](super::Connection)) are queued as one entry instead: the chunk
//! of the receive buffer that holds those frames, headers and all (payloads unmasked, text
//! validated). Each message becomes a slice of the chunk only as the application takes it,
//! its place read again from its header. So the receive path writes one entry per batch, not
//! an event per message built in a temporary (copying that temporary into the queue stalls on
//! store forwarding and took most of a short message's time); and the chunk's last message
//! takes the chunk itself rather than another reference to it.
//!
//! [`Connection::poll_event_ref`](super::Connection::poll_event_ref) lends the oldest event
//! instead ([`EventRef`]): a message of such a chunk as a plain slice of it, with no reference
//! count at all. What was lent is let go (a lent event dropped, a chunk whose last message
//! was lent dropped) on the queue's next use.

use super::{Event, Fragment, Message, MessageKind};
use crate::close::CloseFrame;
use crate::utf8::Utf8Bytes;
use alloc::collections::VecDeque;
use bytes::{Buf, Bytes};

/// An entry of the queue.
#[derive(Debug)]
enum Queued {
    /// An event as it will be handed out.
    Ready(Event),
    /// `count` whole frames, back to back from the start of `chunk`: unfragmented text or
    /// binary frames with a 7- or 16-bit length, payloads unmasked, text validated.
    Frames { chunk: Bytes, count: usize },
}

/// An event lent by [`Connection::poll_event_ref`](super::Connection::poll_event_ref):
/// [`Event`] with its payloads borrowed from the connection, valid until the connection is
/// used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventRef<'a> {
    /// A whole data message ([`ReceiveMode::Message`](crate::ReceiveMode::Message)).
    Message(MessageRef<'a>),
    /// A piece of a data message ([`ReceiveMode::Stream`](crate::ReceiveMode::Stream)).
    Fragment(&'a Fragment),
    /// A ping. With [`Config::auto_pong`](crate::Config::auto_pong) (the default) the pong is
    /// already queued.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame (`None`: it carried no status code). Lending it does what taking
    /// [`Event::Close`] does: if the peer started the close handshake, the reply is queued.
    Close(Option<&'a CloseFrame>),
}

impl EventRef<'_> {
    /// The same event, owned: a message's payload is copied, other payloads are shared.
    ///
    /// ```
    /// use wscore::{Config, Connection, Event, EventRef, Message};
    /// let mut conn = Connection::server(Config::default());
    /// conn.receive(&[0x82, 0x82, 0, 0, 0, 0, 7, 8]).unwrap();
    /// let event = conn.poll_event_ref().map(|e| e.to_event());
    /// assert_eq!(event, Some(Event::Message(Message::Binary(vec![7, 8].into()))));
    /// ```
    #[must_use]
    pub fn to_event(&self) -> Event {
        match *self {
            Self::Message(message) => Event::Message(message.to_message()),
            Self::Fragment(fragment) => Event::Fragment(fragment.clone()),
            Self::Ping(payload) => Event::Ping(Bytes::copy_from_slice(payload)),
            Self::Pong(payload) => Event::Pong(Bytes::copy_from_slice(payload)),
            Self::Close(frame) => Event::Close(frame.cloned()),
        }
    }
}

impl<'a> From<&'a Event> for EventRef<'a> {
    fn from(event: &'a Event) -> Self {
        match event {
            Event::Message(message) => Self::Message(MessageRef::from(message)),
            Event::Fragment(fragment) => Self::Fragment(fragment),
            Event::Ping(payload) => Self::Ping(payload),
            Event::Pong(payload) => Self::Pong(payload),
            Event::Close(frame) => Self::Close(frame.as_ref()),
        }
    }
}

/// A whole data message lent by [`Connection::poll_event_ref`](super::Connection::poll_event_ref),
/// usually a slice of the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageRef<'a> {
    kind: MessageKind,
    data: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload bytes (for text, the UTF-8 encoding).
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// A text message's text (`None` for a binary message).
    ///
    /// The connection validated it on arrival; like [`Utf8Bytes::as_str`], this checks it again
    /// (with the SIMD validator) rather than assume it without `unsafe`.
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        match self.kind {
            MessageKind::Text => Some(simdutf8::basic::from_utf8(self.data).unwrap_or_default()),
            MessageKind::Binary => None,
        }
    }

    /// The length of the payload in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same message, owned (the payload copied).
    #[must_use]
    pub fn to_message(&self) -> Message {
        let data = Bytes::copy_from_slice(self.data);
        match self.kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
            MessageKind::Binary => Message::Binary(data),
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> Self {
        Self { kind: message.kind(), data: message.as_bytes() }
    }
}

/// The events waiting for the application.
///
/// When the oldest entry is frames, it is taken out of `queue` into `frames`: the usual next
/// event is then one look at `count` and a header read at `at`, with no entry to find in the
/// ring and no chunk to advance (a message's usual cost is only a few tens of instructions, so
/// these were a good part of it).
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    /// The front entry's chunk when it is frames ([`Queued::Frames`]); its last frame lent
    /// stays here until the queue's next use.
    frames: Bytes,
    /// Where the next of `frames` starts; with none of them to come, [`LENT_EVENT`] if the
    /// front of `queue`, a ready event, is lent (let go at the queue's next use). One field for
    /// both: an idle connection's size is a target.
    at: usize,
    /// How many of `frames` are still to come: the events before any in `queue`.
    count: usize,
    /// The entries after it.
    queue: VecDeque<Queued>,
    /// How many events `queue` holds (an entry of frames holds several; a lent event is not
    /// counted).
    queued: usize,
}

/// [`EventQueue::at`]: the front of the ring, a ready event, is lent.
const LENT_EVENT: usize = usize::MAX;

impl EventQueue {
    /// Queues `event` after the others.
    #[inline]
    pub(super) fn push_back(&mut self, event: Event) {
        self.queue.push_back(Queued::Ready(event));
        self.queued += 1;
    }

    /// Queues the messages of `count` whole frames that fill `chunk`, as described at
    /// [`Queued::Frames`].
    #[inline]
    pub(super) fn push_frames(&mut self, chunk: Bytes, count: usize) {
        if count == 0 {
            return;
        }
        if self.count == 0 && self.queue.is_empty() {
            // Nothing before it: straight to the front (what was lent of the chunk there
            // before, the queue's next use would let go; this is it).
            self.frames = chunk;
            self.at = 0;
            self.count = count;
        } else {
            self.queue.push_back(Queued::Frames { chunk, count });
            self.queued += count;
        }
    }

    /// Whether the oldest event is a message of the front chunk of frames.
    #[inline(always)]
    pub(super) fn front_is_frame(&self) -> bool {
        self.count > 0
    }

    /// The oldest event, if any.
    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<Event> {
        if self.count == 0 {
            self.settle();
            if self.count == 0 {
                self.queued = self.queued.saturating_sub(1);
                return match self.queue.pop_front()? {
                    Queued::Ready(event) => Some(event),
                    // `settle` moved any front entry of frames to `frames`.
                    Queued::Frames { .. } => None,
                };
            }
        }
        self.count -= 1;
        let at = self.at;
        let (start, len, text) = frame_at(self.frames.get(at..).unwrap_or_default());
        // Within the chunk, were its headers not what `Queued::Frames` says.
        let end = (at + start + len).min(self.frames.len());
        let start = (at + start).min(end);
        let len = end - start;
        self.at = end;
        let payload = if self.count > 0 {
            self.frames.slice(start..start + len)
        } else {
            // The chunk's last message: it takes the chunk.
            let mut chunk = core::mem::take(&mut self.frames);
            chunk.advance(start);
            chunk.truncate(len);
            chunk
        };
        Some(message(payload, text))
    }

    /// Lends the next message of the front chunk of frames ([`front_is_frame`] must hold).
    ///
    /// [`front_is_frame`]: Self::front_is_frame
    #[inline(always)]
    pub(super) fn lend_frame(&mut self) -> EventRef<'_> {
        debug_assert!(self.count > 0, "no frame to lend");
        self.count -= 1;
        let at = self.at;
        let rest = self.frames.get(at..).unwrap_or_default();
        let (start, len, text) = frame_at(rest);
        self.at = at + start + len;
        let kind = if text { MessageKind::Text } else { MessageKind::Binary };
        EventRef::Message(MessageRef { kind, data: rest.get(start..start + len).unwrap_or_default() })
    }

    /// Lends the oldest event, if any, until the queue's next use.
    #[inline]
    pub(super) fn lend_front(&mut self) -> Option<EventRef<'_>> {
        if self.count == 0 {
            self.settle();
        }
        if self.count > 0 {
            return Some(self.lend_frame());
        }
        // A ready event stays in front until the next use drops it.
        let Some(Queued::Ready(event)) = self.queue.front() else { return None };
        self.queued -= 1;
        self.at = LENT_EVENT;
        Some(EventRef::from(event))
    }

    /// Whether the oldest event is the peer's close frame.
    #[inline]
    pub(super) fn front_is_close(&mut self) -> bool {
        self.settle();
        self.count == 0 && matches!(self.queue.front(), Some(Queued::Ready(Event::Close(_))))
    }

    /// Lets go of what was lent last and, once the front chunk of frames is used up, of it,
    /// moving the next entry of frames, if it is the oldest, to the front.
    #[inline]
    fn settle(&mut self) {
        if self.count > 0 {
            // (Nothing is lent from the ring while frames in front of it are to come.)
            return;
        }
        if core::mem::take(&mut self.at) == LENT_EVENT {
            self.queue.pop_front();
        }
        if !self.frames.is_empty() {
            self.frames = Bytes::new();
        }
        if matches!(self.queue.front(), Some(Queued::Frames { .. })) {
            if let Some(Queued::Frames { chunk, count }) = self.queue.pop_front() {
                self.queued -= count;
                self.frames = chunk;
                self.at = 0;
                self.count = count;
            }
        }
    }

    /// Whether no event is queued and nothing lent waits to be let go: the queue's next use
    /// has nothing to do.
    #[inline(always)]
    pub(super) fn holds_nothing(&self) -> bool {
        self.count == 0 && self.queued == 0 && self.at != LENT_EVENT && self.frames.is_empty()
    }

    /// How many events are queued.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.count + self.queued
    }

    /// Whether no event is queued.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the queue's allocation takes.
    pub(super) fn allocated(&self) -> usize {
        self.queue.capacity() * core::mem::size_of::<Queued>()
    }

    /// Lets the queue's allocation go if nothing is queued.
    pub(super) fn release_if_empty(&mut self) {
        self.settle();
        if self.count == 0 && self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
    }
}

/// Where the payload of the frame at the start of `frames` starts, its length, and whether it
/// is text — read from its header, which [`Queued::Frames`] says is well formed. (Were it
/// not, callers find the payload with a checked slice, so it still lies within `frames`.)
#[inline(always)]
fn frame_at(frames: &[u8]) -> (usize, usize, bool) {
    let [b0, b1, ..] = *frames else { return (0, 0, false) };
    let (len, at) = match b1 & 0x7F {
        126 => match frames.get(2..4) {
            Some(&[hi, lo]) => (usize::from(u16::from_be_bytes([hi, lo])), 4),
            _ => (0, 0),
        },
        len => (usize::from(len), 2),
    };
    let start = at + usize::from(b1 >> 7) * 4;
    debug_assert!(start + len <= frames.len(), "a queued frame runs past its chunk");
    (start, len, b0 == 0x81)
}

/// A whole message's event.
#[inline]
fn message(payload: Bytes, text: bool) -> Event {
    Event::Message(if text { Message::Text(Utf8Bytes::from_validated(payload)) } else { Message::Binary(payload) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: Option<Event>) -> (bool, Bytes) {
        match event {
            Some(Event::Message(Message::Text(t))) => (true, t.into_bytes()),
            Some(Event::Message(Message::Binary(b))) => (false, b),
            other => panic!("not a message: {other:?}"),
        }
    }

    /// Masked text "abc" (key 0: the bytes as they are after unmasking), unmasked empty binary,
    /// masked binary of 200 bytes (16-bit length).
    fn frames() -> Bytes {
        let mut chunk =
            alloc::vec![0x81, 0x83, 0, 0, 0, 0, b'a', b'b', b'c', 0x82, 0x00, 0x82, 0xFE, 0, 200, 9, 9, 9, 9];
        chunk.extend(0..200u8);
        Bytes::from(chunk)
    }

    #[test]
    fn frames_come_out_as_messages_in_order_between_the_events_around_them() {
        let mut queue = EventQueue::default();
        queue.push_back(Event::Ping(Bytes::from_static(b"p")));
        queue.push_frames(frames(), 3);
        queue.push_frames(Bytes::from_static(&[0x82, 0x01, 7]), 1);
        queue.push_frames(Bytes::new(), 0);
        queue.push_back(Event::Pong(Bytes::new()));
        assert_eq!(queue.len(), 6);
        assert_eq!(queue.pop_front(), Some(Event::Ping(Bytes::from_static(b"p"))));
        assert_eq!(payload(queue.pop_front()), (true, Bytes::from_static(b"abc")));
        assert_eq!(payload(queue.pop_front()), (false, Bytes::new()));
        assert_eq!(queue.len(), 3);
        assert_eq!(payload(queue.pop_front()), (false, (0..200u8).collect()));
        assert_eq!(payload(queue.pop_front()), (false, Bytes::from_static(&[7])));
        assert_eq!(queue.pop_front(), Some(Event::Pong(Bytes::new())));
        assert!(queue.is_empty());
        assert_eq!(queue.pop_front(), None);
        assert!(queue.is_empty());
    }

    fn lent(event: Option<EventRef<'_>>) -> (bool, alloc::vec::Vec<u8>) {
        match event {
            Some(EventRef::Message(m)) => (m.kind() == MessageKind::Text, m.as_bytes().to_vec()),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn lending_and_taking_mix_and_what_was_lent_goes_at_the_next_use() {
        let mut queue = EventQueue::default();
        queue.push_frames(frames(), 3);
        queue.push_back(Event::Ping(Bytes::from_static(b"p")));
        assert_eq!(lent(queue.lend_front()), (true, b"abc".to_vec()));
        assert_eq!(queue.len(), 3);
        assert_eq!(payload(queue.pop_front()), (false, Bytes::new()));
        assert_eq!(lent(queue.lend_front()), (false, (0..200u8).collect()));
        assert!(!queue.frames.is_empty(), "the lent frame's chunk waits for the next use");
        assert!(!queue.front_is_close());
        assert!(queue.frames.is_empty());
        assert_eq!(queue.queue.len(), 1);
        // More arrives while the ping is lent.
        assert_eq!(queue.lend_front(), Some(EventRef::Ping(b"p")));
        queue.push_frames(Bytes::from_static(&[0x82, 0x01, 7]), 1);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.queue.len(), 2, "the lent ping waits for the next use");
        assert_eq!(lent(queue.lend_front()), (false, alloc::vec![7]));
        assert!(queue.queue.is_empty());
        assert!(queue.is_empty());
        assert!(queue.lend_front().is_none());
        assert!(queue.frames.is_empty());
        // Frames with nothing before them go straight to the front; what was lent there goes.
        queue.push_frames(Bytes::from_static(&[0x82, 0x01, 8]), 1);
        assert_eq!(lent(queue.lend_front()), (false, alloc::vec![8]));
        queue.push_frames(Bytes::from_static(&[0x81, 0x01, b'x']), 1);
        assert_eq!(payload(queue.pop_front()), (true, Bytes::from_static(b"x")));
        assert!(queue.frames.is_empty(), "the last message takes the chunk");
        queue.push_back(Event::Pong(Bytes::new()));
        assert_eq!(queue.lend_front(), Some(EventRef::Pong(b"")));
        queue.release_if_empty();
        assert_eq!(queue.allocated(), 0);
    }

    #[test]
    fn a_message_outlives_its_chunk_and_the_queue() {
        let mut queue = EventQueue::default();
        queue.push_frames(frames(), 3);
        let (_, first) = payload(queue.pop_front());
        drop(queue);
        assert_eq!(first, &b"abc"[..]);
    }
}
