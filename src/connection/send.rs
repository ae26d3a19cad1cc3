//! The send queue (RFC 6455 §5.4–§5.5): control frames jump ahead of queued data frames,
//! messages are split into frames lazily, small frames are coalesced into one buffer and large
//! unmasked payloads are kept apart for vectored writes (no copy).

use super::{MessageKind, Role};
use crate::close::CloseFrame;
use crate::config::Config;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::extend_masked;
use crate::random::RandomSource;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Encoded output is kept to about this much; the rest waits, unencoded, in the queues, so a
/// control frame is never stuck behind more than this (plus one frame). Large enough that a
/// large message goes out in few vectored writes (four 64 KiB frames each; unmasked payloads
/// are not copied to be encoded, so on a server this costs no memory).
const ENCODE_AHEAD: usize = 256 << 10;
/// Automatic pongs are encoded one by one while less than this is waiting to be written; past
/// it, only the newest pending pong is kept (RFC 6455 §5.5.3).
const PONG_BACKLOG: usize = 1 << 10;
/// Unmasked payloads at least this long are written from their own buffer instead of copied.
const ZERO_COPY_MIN: usize = 4 << 10;

/// A message (or streamed piece) waiting to be framed.
#[derive(Debug)]
struct OutMessage {
    /// `Text`/`Binary` for a message's first frame, `Continuation` after.
    opcode: OpCode,
    data: Bytes,
    /// Whether the last frame of this piece ends the message.
    fin: bool,
    /// Set RSV1 on the next frame (the first frame of a compressed message).
    rsv1: bool,
    fragment_size: usize,
}

#[derive(Debug)]
pub(crate) struct SendQueue {
    role: Role,
    random: Option<Box<dyn RandomSource>>,
    /// Encoded output: sealed chunks, then the open `tail`.
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    /// Bytes at the front of `tail` already written. `tail` is cleared (and its room reused
    /// from the start) once all of it is written, instead of advancing through its allocation.
    tail_sent: usize,
    encoded: usize,
    /// The pong answering the newest ping (older ones are dropped: RFC 6455 §5.5.3).
    auto_pong: Option<Bytes>,
    control: VecDeque<(OpCode, Bytes)>,
    messages: VecDeque<OutMessage>,
    queued_bytes: usize,
    /// The close frame's payload, once queued. Boxed: a connection closes once, and every
    /// idle connection would carry the room for it (the tokio example's task grows past an
    /// allocation size class at a few bytes more).
    close: Option<alloc::boxed::Box<Bytes>>,
    close_encoded: bool,
    /// The kind of a streamed message that was started and not finished.
    stream_open: Option<MessageKind>,
    /// Whether that streamed message is compressed.
    stream_compressed: bool,
}

impl SendQueue {
    pub(crate) fn new(role: Role, random: Option<Box<dyn RandomSource>>) -> Self {
        Self {
            role,
            random,
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            tail_sent: 0,
            encoded: 0,
            auto_pong: None,
            control: VecDeque::new(),
            messages: VecDeque::new(),
            queued_bytes: 0,
            close: None,
            close_encoded: false,
            stream_open: None,
            stream_compressed: false,
        }
    }

    #[inline]
    pub(crate) fn buffered_amount(&self) -> usize {
        self.encoded
            + self.queued_bytes
            + self.auto_pong.as_ref().map_or(0, |p| p.len() + 2)
            + self.control.iter().map(|(_, p)| p.len() + 2).sum::<usize>()
            + self.close.as_ref().map_or(0, |c| c.len() + 2)
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.encoded == 0
    }

    pub(crate) fn stream_open(&self) -> Option<MessageKind> {
        self.stream_open
    }

    pub(crate) fn stream_compressed(&self) -> bool {
        self.stream_compressed
    }

    /// Queues a message, or a piece of a streamed one. `compressed`: the data is
    /// permessage-deflate output (RSV1 goes on the message's first frame).
    #[inline]
    pub(crate) fn push_message(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
        compressed: bool,
        config: &Config,
    ) {
        let (opcode, rsv1) = match (self.stream_open, kind) {
            (Some(_), _) => (OpCode::Continuation, false),
            (None, MessageKind::Text) => (OpCode::Text, compressed),
            (None, MessageKind::Binary) => (OpCode::Binary, compressed),
        };
        self.stream_open = if fin { None } else { Some(kind) };
        self.stream_compressed = compressed && !fin;
        let fragment_size = config.write_fragment_size;
        if self.nothing_waits() && data.len() <= fragment_size {
            // Nothing is queued ahead of it and it is one frame: encode it right away, which is
            // what `refill` would do, without queueing it first.
            let header = FrameHeader { fin, rsv: [rsv1, false, false], ..FrameHeader::new(opcode, 0) };
            self.encode_frame(header, &data);
            return;
        }
        self.queued_bytes += data.len();
        self.messages.push_back(OutMessage { opcode, data, fin, rsv1, fragment_size });
        self.refill();
    }

    /// Whether a new frame may be encoded at once: nothing unencoded waits (which would have
    /// to go first), the close frame is not queued, and encoded output is below the
    /// encode-ahead mark.
    #[inline]
    fn nothing_waits(&self) -> bool {
        self.nothing_queued() && !self.close_encoded && self.encoded < ENCODE_AHEAD
    }

    pub(crate) fn push_control(&mut self, opcode: OpCode, payload: Bytes) {
        self.control.push_back((opcode, payload));
        self.refill();
    }

    pub(crate) fn set_auto_pong(&mut self, payload: Bytes) {
        self.auto_pong = Some(payload);
        self.refill();
    }

    /// Queues the close frame; it goes out after every message queued before it.
    pub(crate) fn push_close(&mut self, frame: Option<&CloseFrame>) {
        if self.close.is_none() && !self.close_encoded {
            self.close = Some(alloc::boxed::Box::new(frame.map(CloseFrame::encode).unwrap_or_default()));
            self.refill();
        }
    }

    /// Drops messages not yet started (on failure), keeping what is encoded.
    pub(crate) fn clear_messages(&mut self) {
        self.messages.clear();
        self.queued_bytes = 0;
        self.stream_open = None;
        self.stream_compressed = false;
    }

    /// Drops everything, encoded or not (the transport is gone).
    pub(crate) fn clear(&mut self) {
        self.clear_messages();
        self.chunks.clear();
        self.tail.clear();
        self.tail_sent = 0;
        self.encoded = 0;
        self.auto_pong = None;
        self.control.clear();
        self.close = None;
    }

    /// Bytes allocated for encoded output.
    pub(crate) fn capacity(&self) -> usize {
        self.tail.capacity() + self.chunks.capacity() * core::mem::size_of::<Bytes>()
    }

    /// Lets the output buffers' allocations go if nothing is waiting in them.
    pub(crate) fn release_if_empty(&mut self) {
        if self.encoded == 0 {
            self.tail = BytesMut::new();
            self.tail_sent = 0;
            self.chunks = VecDeque::new();
        }
        if self.messages.is_empty() {
            self.messages = VecDeque::new();
        }
        if self.control.is_empty() {
            self.control = VecDeque::new();
        }
    }

    /// Queues already-encoded bytes ahead of anything not yet encoded.
    pub(crate) fn push_raw(&mut self, bytes: Bytes) {
        self.encoded += bytes.len();
        self.tail.extend_from_slice(&bytes);
    }

    // ----- output -----

    #[inline]
    pub(crate) fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&self.tail[self.tail_sent..], |c| &c[..])
    }

    #[inline]
    pub(crate) fn advance(&mut self, mut n: usize) {
        n = n.min(self.encoded);
        self.encoded -= n;
        while n > 0 {
            if let Some(front) = self.chunks.front_mut() {
                let step = n.min(front.len());
                front.advance(step);
                n -= step;
                if front.is_empty() {
                    self.chunks.pop_front();
                }
            } else {
                self.tail_sent += n;
                if self.tail_sent >= self.tail.len() {
                    self.tail.clear();
                    self.tail_sent = 0;
                }
                n = 0;
            }
        }
        if !self.nothing_queued() {
            self.refill();
        }
    }

    /// Whether nothing waits to be encoded.
    #[inline]
    fn nothing_queued(&self) -> bool {
        self.messages.is_empty() && self.auto_pong.is_none() && self.control.is_empty() && self.close.is_none()
    }

    #[cfg(feature = "std")]
    pub(crate) fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let all = self.chunks.iter().map(|c| &c[..]).chain(core::iter::once(&self.tail[self.tail_sent..]));
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(all.filter(|c| !c.is_empty())) {
            *slot = std::io::IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }

    pub(crate) fn take_all(&mut self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded);
        loop {
            let chunk = self.chunk();
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(chunk);
            let n = chunk.len();
            self.advance(n);
        }
        out.freeze()
    }

    // ----- encoding -----

    /// Encodes queued frames until about `ENCODE_AHEAD` bytes are ready: control frames first,
    /// then message frames, the close frame last.
    fn refill(&mut self) {
        while self.encoded < ENCODE_AHEAD && !self.close_encoded {
            if self.auto_pong.is_some() && self.encoded >= PONG_BACKLOG {
                // Output is backing up: the pong waits, unencoded, until it drains, so a newer
                // ping can still replace it. A peer that pings without reading gets about
                // PONG_BACKLOG bytes of answers, not 64 KiB of them; a peer that reads gets
                // every ping answered. Nothing is encoded ahead of the pong meanwhile.
                break;
            }
            if let Some(pong) = self.auto_pong.take() {
                self.encode_frame(FrameHeader::new(OpCode::Pong, 0), &pong);
            } else if let Some((opcode, payload)) = self.control.pop_front() {
                self.encode_frame(FrameHeader::new(opcode, 0), &payload);
            } else if let Some(msg) = self.messages.front_mut() {
                let take = msg.data.len().min(msg.fragment_size);
                let part = msg.data.split_to(take);
                let done = msg.data.is_empty();
                let header = FrameHeader {
                    fin: done && msg.fin,
                    rsv: [msg.rsv1, false, false],
                    ..FrameHeader::new(msg.opcode, 0)
                };
                msg.opcode = OpCode::Continuation;
                msg.rsv1 = false;
                if done {
                    self.messages.pop_front();
                }
                self.queued_bytes -= part.len();
                self.encode_frame(header, &part);
            } else if let Some(close) = self.close.take() {
                self.encode_frame(FrameHeader::new(OpCode::Close, 0), &close);
                self.close_encoded = true;
                self.auto_pong = None;
                self.control.clear();
            } else {
                break;
            }
        }
    }

    #[inline]
    fn encode_frame(&mut self, mut header: FrameHeader, payload: &Bytes) {
        header.payload_len = payload.len() as u64;
        if self.role == Role::Client {
            let mut key = [0u8; 4];
            if let Some(random) = self.random.as_mut() {
                random.fill_bytes(&mut key);
            }
            header.mask = Some(key);
        }
        let mut raw = [0u8; FrameHeader::MAX_LEN];
        let header_len = header.encode(&mut raw);
        self.encoded += header_len + payload.len();
        let apart = header.mask.is_none() && payload.len() >= ZERO_COPY_MIN;
        self.tail.reserve(header_len + if apart { 0 } else { payload.len() });
        if let ([b0, b1, ..], 2) = (raw, header_len) {
            // The common short header: two stores, not a copy of unknown length.
            self.tail.put_u8(b0);
            self.tail.put_u8(b1);
        } else {
            self.tail.extend_from_slice(&raw[..header_len]);
        }
        match header.mask {
            // Copied and masked in one pass.
            Some(key) => extend_masked(&mut self.tail, payload, key, 0),
            None if apart => {
                // The unsent part of the tail becomes a chunk of its own, then the payload.
                self.tail.advance(core::mem::take(&mut self.tail_sent));
                self.chunks.push_back(self.tail.split().freeze());
                self.chunks.push_back(payload.clone());
            }
            None => self.tail.extend_from_slice(payload),
        }
    }
}
