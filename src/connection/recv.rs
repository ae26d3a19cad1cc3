//! The receive path (RFC 6455 §5.2–§5.6): frame headers, unmasking, UTF-8, reassembly and
//! control frames. Bytes are unmasked and validated as they arrive, so errors surface inside a
//! frame, and the result never depends on how the input was split — except that a short
//! binary frame (nothing in it to validate) waits in the buffer until it is whole, to be taken
//! the fast way; its header is still checked as soon as it is there. (A short text frame may
//! wait too, but what arrives of it is unmasked and validated at once.)

use super::buffer::{ReceiveBuffer, batched, holds_ascii};
use super::{Connection, Event, Fragment, Message, MessageKind, Role, State};
use crate::close::CloseFrame;
use crate::config::ReceiveMode;
use crate::error::{Error, ProtocolError};
use crate::frame::{FrameHeader, OpCode};
use crate::mask::{apply_mask, apply_mask_checking};
use crate::utf8::{Utf8Bytes, Utf8Validator};
use bytes::{Bytes, BytesMut};

/// An empty receive buffer keeps at most this many reads' worth of room; beyond that its
/// allocation is let go and room allocated again on demand, so an idle connection does not keep
/// its largest message's buffer for life.
const IDLE_READS: usize = 4;
/// The room an empty receive buffer may always keep, however small the reads.
const MIN_IDLE_CAPACITY: usize = 64 << 10;

/// While a large frame arrives, the room offered for a read is at most this many times what
/// has arrived of it: few reads for a large frame, and memory that grows with what the peer
/// really sends, not with what its header claims.
const GROWTH: usize = 4;

/// [`Connection::extend_frame_payload`] takes the end of a frame out of a read that holds more
/// after it only from this long.
const SPLIT_FUSED_MIN: usize = 4 << 10;

/// How many whole frames [`Connection::whole_frames`] scans before handing them out: each
/// batch costs a reference to the buffer and an entry in the event queue (64 empty frames fed
/// whole: 4 % less time per message than batches of 32).
const BATCH: usize = 128;

/// A binary frame of at most this much payload that is still arriving waits in the buffer to
/// be taken whole by [`Connection::whole_frames`] (no per-frame state, one unmasking pass);
/// longer ones are taken as they arrive. So does a text frame, if at least
/// [`ARRIVING_TEXT_MIN`] bytes of its payload came with its header, but what has arrived of it
/// is unmasked and validated at every read, to fail fast ([`Receiver::front_scanned`]).
const WAIT_WHOLE_MAX: usize = 4 << 10;

/// See [`WAIT_WHOLE_MAX`]. A text frame that starts with less, as in reads of a few bytes,
/// goes the general way: each read of it would otherwise pay a walk from the buffer's front
/// to its end (its header, its payload so far), where the general path unmasks and validates
/// it as it is copied in.
const ARRIVING_TEXT_MIN: usize = 16;

/// A longer binary frame held whole while it arrives is unmasked each time at least this much
/// more of it is buffered (or when it is complete), not at every read: reads of a few bytes
/// would otherwise each pay a pass of the receive path (a 16 KiB frame fed a byte at a time
/// took twice as long). Reads of a usual size are each as large, and unmasked as they come.
const UNMASK_STEP: usize = 1 << 10;

/// Where [`Connection::scan_whole_frames`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanEnd {
    /// It found as many frames as it can hold: there may be more.
    Full,
    /// At a frame that is not whole, or not a common one: the general path's.
    Other,
    /// At a text frame that is not valid UTF-8.
    InvalidUtf8,
    /// At a short binary frame that is still arriving, this many bytes long in all: wait for
    /// the rest.
    Waiting(usize),
    /// At a short text frame that is still arriving (see [`WAIT_WHOLE_MAX`]), its header this
    /// long: unmask and validate what has arrived of it, and wait for the rest.
    TextArriving(usize),
}

/// A frame whose header has been parsed and whose payload is still (partly) in the buffer.
#[derive(Debug)]
pub(super) struct InFrame {
    pub(super) opcode: OpCode,
    pub(super) fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes not yet taken out of the buffer.
    pub(super) remaining: u64,
    /// Payload bytes already taken out (streaming, inflating), for the mask phase.
    pub(super) taken: u64,
    /// Bytes at the front of the buffer already unmasked and validated.
    pub(super) scanned: usize,
    /// The payload is all ASCII, found out while it was unmasked as it was copied in
    /// ([`holds_ascii`]).
    ascii: bool,
}

/// A data message in progress.
#[derive(Debug)]
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
pub(super) struct InMessage {
    pub(super) kind: MessageKind,
    /// Payload so far (message mode: fragmented or compressed messages only).
    pub(super) data: BytesMut,
    /// Payload bytes on the wire so far.
    pub(super) size: u64,
    fragments: usize,
    /// Some piece was already delivered (stream mode).
    pub(super) delivered: bool,
    /// RSV1 was set on the first frame: permessage-deflate data.
    pub(super) compressed: bool,
    /// Bytes inflated so far (compressed messages).
    pub(super) inflated: u64,
    /// How much of the 4-byte deflate trailer was fed after the last frame.
    pub(super) trailer_fed: usize,
    /// The last inflate step filled its output buffer: more may be pending.
    pub(super) output_pending: bool,
    /// The size of the last fragmented message assembled in this box (it is kept for the
    /// next message): the first fragment of the next one reserves as much, up to
    /// [`RESERVE_AHEAD_MAX`](super::buffer::RESERVE_AHEAD_MAX), so that a message of the
    /// usual size is assembled in one allocation rather than grown step by step.
    assembled: usize,
}

impl InMessage {
    /// Appends a fragment's payload, unmasked already.
    #[inline]
    fn append(&mut self, src: &[u8]) {
        self.make_room(src.len());
        self.data.extend_from_slice(src);
    }

    /// Appends a fragment's payload, unmasking it with `key` as it is copied, and tells
    /// whether it was all ASCII (`ASCII`, for text; `false` without).
    #[inline]
    fn append_unmasking<const ASCII: bool>(&mut self, src: &[u8], key: [u8; 4]) -> bool {
        self.make_room(src.len());
        crate::mask::extend_masked_checking::<ASCII>(&mut self.data, src, key, 0)
    }

    /// The first fragment reserves room for a message of the last one's size
    /// ([`assembled`](Self::assembled)).
    #[inline]
    fn make_room(&mut self, len: usize) {
        if self.data.capacity() == 0 {
            self.data.reserve(self.assembled.min(super::buffer::RESERVE_AHEAD_MAX).max(len));
        }
    }

    /// The assembled payload, taken (its size noted for the next message).
    fn take_assembled(&mut self) -> Bytes {
        self.assembled = self.data.len();
        core::mem::take(&mut self.data).freeze()
    }
}

#[derive(Debug)]
pub(super) struct Receiver {
    role: Role,
    pub(super) buf: ReceiveBuffer,
    pub(super) frame: Option<InFrame>,
    /// Boxed: only large, fragmented or compressed messages have one, and a connection waiting
    /// between messages should be small.
    pub(super) message: Option<alloc::boxed::Box<InMessage>>,
    /// The box of the last message, kept for the next one while input flows (let go with the
    /// buffers).
    pub(super) spare_message: Option<alloc::boxed::Box<InMessage>>,
    pub(super) utf8: Utf8Validator,
    /// Processing stopped to let the application catch up with events (inflating in stream
    /// mode); it resumes when the event queue is empty.
    pub(super) paused: bool,
    /// The frame in progress, if any, is a masked frame of uncompressed text whose payload the
    /// buffer holds whole ([`holds_whole`](Self::holds_whole)): the frame
    /// [`continues_text`](Self::continues_text) is about. Set with every frame (none of it
    /// changes while the frame arrives); kept here rather than in [`InFrame`], where it would
    /// grow the connection by 8 bytes.
    text_held: bool,
    /// The buffer must hold this many bytes before processing can do anything: the header of
    /// the next frame is incomplete, the frame is a short binary one still arriving (see
    /// [`WAIT_WHOLE_MAX`]), or less than [`UNMASK_STEP`] more of a longer one arrived. Set when
    /// processing stops for want of them; 0 otherwise.
    need: usize,
    /// While no frame is in progress: how much of the payload of the frame at the front of the
    /// buffer, a short text frame still arriving that waits to be taken whole (see
    /// [`WAIT_WHOLE_MAX`]), is unmasked and validated already (fed to `utf8`, which carries
    /// what it needs of it). 0 otherwise. (Less than [`WAIT_WHOLE_MAX`]: 16 bits.)
    front_scanned: u16,
}

impl Receiver {
    pub(super) fn new(role: Role, read_buffer_size: usize) -> Self {
        let idle_capacity = read_buffer_size.saturating_mul(IDLE_READS).max(MIN_IDLE_CAPACITY);
        Self {
            role,
            buf: ReceiveBuffer::new(idle_capacity),
            frame: None,
            message: None,
            spare_message: None,
            utf8: Utf8Validator::new(),
            paused: false,
            text_held: false,
            need: 0,
            front_scanned: 0,
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.buf.len() + self.message.as_ref().map_or(0, |m| m.data.len())
    }

    /// Whether the payload of a frame with `opcode`, of the message in progress, is held whole
    /// in the buffer until the frame ends: a data frame of an uncompressed message, in message
    /// mode.
    fn holds_whole(&self, mode: ReceiveMode, opcode: OpCode) -> bool {
        mode == ReceiveMode::Message && !opcode.is_control() && self.message.as_ref().is_some_and(|m| !m.compressed)
    }

    /// Room worth offering for the next read while a frame the buffer holds whole arrives
    /// ([`holds_whole`](Self::holds_whole)): what is still to come of it, but no more than
    /// `read_size` or [`GROWTH`] times what has arrived of it already, whichever is more (so
    /// the memory offered grows with what the peer really sends, not with what its header
    /// claims), and no more than [`ReceiveBuffer::reserve`] made room for; 0 otherwise.
    pub(super) fn expected_payload(&self, mode: ReceiveMode, read_size: usize) -> usize {
        let arrived = self.buf.len().saturating_mul(GROWTH);
        self.missing_held(mode).min(arrived.max(read_size)).min(super::buffer::RESERVE_AHEAD_MAX)
    }

    /// What is still to come of the frame in progress, if the buffer holds it whole
    /// ([`holds_whole`](Self::holds_whole)); 0 otherwise.
    #[inline]
    fn missing_held(&self, mode: ReceiveMode) -> usize {
        match &self.frame {
            Some(frame) if self.holds_whole(mode, frame.opcode) => {
                usize::try_from(frame.remaining.saturating_sub(self.buf.len() as u64)).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }

    /// The room a reserve asks for, for the frame in progress held whole: what is still to
    /// come of it, and a read's worth for the read that ends it, which may run into the next
    /// frame. `None` if it is all here already (moving it would only copy it) or not held whole.
    fn room_to_reserve(&self, mode: ReceiveMode, read_size: usize) -> Option<usize> {
        let missing = self.missing_held(mode);
        (missing > 0).then(|| missing.saturating_add(read_size))
    }

    /// Whether processing the buffer now would do nothing: the frame in progress is held whole
    /// ([`holds_whole`](Self::holds_whole)), every byte of it buffered is unmasked and
    /// validated already, and more of it is to come.
    #[inline]
    pub(super) fn waits_for_frame(&self, mode: ReceiveMode) -> bool {
        self.frame.as_ref().is_some_and(|frame| {
            frame.scanned == self.buf.len()
                && (frame.scanned as u64) < frame.remaining
                && self.holds_whole(mode, frame.opcode)
        })
    }

    /// Whether `n` more bytes, a tiny read, go on with the payload of the frame in progress
    /// without ending it, where only unmasking and validating is left to do with them: a
    /// masked frame of uncompressed text held whole ([`holds_whole`](Self::holds_whole)),
    /// everything buffered of it unmasked and validated already
    /// ([`Connection::extend_text_bytes`] takes them).
    #[inline(always)]
    pub(super) fn continues_text(&self, n: usize) -> bool {
        let start = self.buf.len();
        n < super::buffer::TINY
            && start > 0
            && !self.paused
            && self.text_held
            && self.frame.as_ref().is_some_and(|frame| frame.scanned == start && ((start + n) as u64) < frame.remaining)
    }

    /// Whether `n` more bytes, short input, would still leave the buffer short of what
    /// processing needs ([`need`](Self::need)): then they need only be copied in.
    #[inline(always)]
    pub(super) fn waits_beyond(&self, n: usize) -> bool {
        n < crate::mask::FUSED_MIN && self.buf.len() + n < self.need
    }

    /// Drops all input (after a failure or the peer's close).
    pub(super) fn discard(&mut self) {
        self.buf.clear();
        self.frame = None;
        self.message = None;
        self.paused = false;
        self.need = 0;
        self.front_scanned = 0;
    }

    /// The frame at the front of the buffer, a short text frame that waits to be taken whole
    /// ([`front_scanned`](Self::front_scanned) > 0), after more input: if it is whole now, the
    /// rest of it unmasked and the text finished validating, and `Some(its length)` in the
    /// buffer; if not, `Some(0)`, what arrived unmasked and validated ([`text_arriving`]). `None`
    /// if it is not such a frame after all (it always is), for the general path, which takes
    /// over what is done of it.
    ///
    /// [`text_arriving`]: Self::text_arriving
    #[inline(never)]
    fn resume_text(&mut self) -> Result<Option<usize>, ProtocolError> {
        let masked = self.role == Role::Server;
        let data = self.buf.data_mut();
        let [_, b1, ..] = *data else { return Ok(None) };
        let Some((header_len, len)) = short_extent(b1, data, if masked { 4 } else { 0 }) else {
            return Ok(None);
        };
        let Some(frame) = data.get_mut(..header_len + len) else {
            self.text_arriving(header_len)?;
            return Ok(Some(0));
        };
        let (header, payload) = frame.split_at_mut(header_len);
        let from = usize::from(core::mem::take(&mut self.front_scanned));
        scan_arrived(&mut self.utf8, masked, header, payload, from)?;
        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Some(header_len + len))
    }

    /// Unmasks and validates what has newly arrived of the frame at the front of the buffer, a
    /// short text frame still arriving (its header `header_len` long) that waits to be taken
    /// whole ([`WAIT_WHOLE_MAX`]): so invalid text fails at the read that brings it, as it
    /// would on the general path.
    #[inline(never)]
    fn text_arriving(&mut self, header_len: usize) -> Result<(), ProtocolError> {
        let from = usize::from(self.front_scanned);
        if from == 0 {
            self.utf8 = Utf8Validator::new();
        }
        let masked = self.role == Role::Server;
        let data = self.buf.data_mut();
        let (header, payload) = data.split_at_mut(header_len.min(data.len()));
        scan_arrived(&mut self.utf8, masked, header, payload, from)?;
        // The frame is not whole: less than WAIT_WHOLE_MAX of it is here.
        self.front_scanned = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        Ok(())
    }
}

/// Appends `data`, more of the masked payload of a text frame (`key` and `phase` as for
/// [`apply_mask`]), unmasked, and validates it as it arrives, to fail at the first invalid byte.
#[inline(always)]
fn extend_text(
    buf: &mut ReceiveBuffer,
    utf8: &mut Utf8Validator,
    data: &[u8],
    key: [u8; 4],
    phase: usize,
) -> Result<(), ProtocolError> {
    let start = buf.len();
    let ascii = buf.extend_unmasked::<true>(data, key, phase);
    // `feed_seen` spelled out: with the slice of the buffer taken before the ASCII test,
    // byte-sized reads of ASCII text took 9 % longer.
    if !(ascii && utf8.is_complete()) {
        utf8.feed(buf.data().get(start..).unwrap_or_default()).map_err(|_| ProtocolError::InvalidUtf8)?;
    }
    Ok(())
}

/// Unmasks (`masked`: with the key that ends `header`) and validates what is new of the payload
/// of a text frame that waits at the front of the buffer: `payload[from..]`, the bytes before
/// it done already ([`Receiver::text_arriving`], [`Receiver::resume_text`]).
#[inline(always)]
fn scan_arrived(
    utf8: &mut Utf8Validator,
    masked: bool,
    header: &[u8],
    payload: &mut [u8],
    from: usize,
) -> Result<(), ProtocolError> {
    let fresh = payload.get_mut(from..).unwrap_or_default();
    let ascii = match *header {
        [.., k0, k1, k2, k3] if masked => unmask(fresh, [k0, k1, k2, k3], from, true),
        _ => false,
    };
    utf8.feed_seen(fresh, ascii).map_err(|_| ProtocolError::InvalidUtf8)
}

/// The header's length (`mask_len` bytes of masking key included) and the payload's of the
/// frame whose header starts `buf` (second byte `b1`), if its length is in 7 bits or, minimally
/// encoded, in 16: the frames the shortcuts ([`Connection::whole_frames`],
/// [`Connection::whole_continuations`]) take. `None` for a 64-bit or non-minimal length (the
/// general path reports the latter) or while the 16-bit length is not all there.
#[inline(always)]
fn short_extent(b1: u8, buf: &[u8], mask_len: usize) -> Option<(usize, usize)> {
    match b1 & 0x7F {
        len @ 0..=125 => Some((2 + mask_len, usize::from(len))),
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) if u16::from_be_bytes([hi, lo]) >= 126 => {
                Some((4 + mask_len, usize::from(u16::from_be_bytes([hi, lo]))))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Unmasks `payload` (`key` and `phase` as for [`apply_mask`]); for `text`, also tells whether
/// it is all ASCII ([`apply_mask_checking`]), `false` otherwise.
#[inline(always)]
fn unmask(payload: &mut [u8], key: [u8; 4], phase: usize, text: bool) -> bool {
    if text {
        apply_mask_checking::<true>(payload, key, phase)
    } else {
        apply_mask(payload, key, phase);
        false
    }
}

/// Whether the payload of `frame`, of the message `message` in progress, is validated as UTF-8
/// as it is unmasked: data frames of uncompressed text (compressed text is validated after
/// inflating, in inflate.rs, not on the wire bytes).
#[inline]
fn validates_text(frame: &InFrame, message: Option<&InMessage>) -> bool {
    !frame.opcode.is_control() && message.is_some_and(|m| m.kind == MessageKind::Text && !m.compressed)
}

impl Connection {
    /// Turns buffered bytes into events until more input is needed.
    #[inline(always)]
    pub(super) fn process(&mut self) -> Result<(), Error> {
        // Byte-sized reads of a header or of a short frame: nothing to do until it is all here.
        if self.recv.buf.len() < self.recv.need {
            return Ok(());
        }
        self.process_buffered()
    }

    fn process_buffered(&mut self) -> Result<(), Error> {
        self.recv.need = 0;
        let result = self.process_frames();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    #[inline]
    fn process_frames(&mut self) -> Result<(), ProtocolError> {
        loop {
            if !self.accepts_input() {
                self.recv.discard();
                return Ok(());
            }
            if self.recv.frame.is_none() {
                if self.config.receive_mode == ReceiveMode::Message {
                    if self.recv.message.is_some() {
                        if self.whole_continuations()? {
                            continue;
                        }
                    } else if let Some(need) = self.whole_frames()? {
                        self.recv.need = need;
                        return Ok(());
                    }
                }
                if !self.start_frame()? {
                    self.recv.need = crate::frame::header_len(self.recv.buf.data());
                    return Ok(());
                }
            }
            if !self.continue_frame()? {
                return Ok(());
            }
        }
    }

    /// The common case, taken while no frame or message is in progress: unfragmented,
    /// uncompressed data frames of less than 64 KiB that are complete in the buffer become
    /// messages with no per-frame state. Returns at the first frame that is anything else (or
    /// incomplete, or breaks a rule), for [`start_frame`](Self::start_frame) to handle — the
    /// general path, which reports every error. So nothing here needs to report one, except
    /// invalid UTF-8, found after unmasking in place.
    ///
    /// Up to [`BATCH`] frames are unmasked and validated in place first; then the bytes they
    /// span leave the buffer as one shared chunk, queued with the place of each message in it
    /// (which becomes a slice of the chunk when the application takes it): one reference count
    /// per message instead of a buffer split, none for the chunk's last.
    ///
    /// `Ok(Some(n))`: the next frame is a short one still arriving, left for a later call to
    /// take whole ([`WAIT_WHOLE_MAX`]) once the buffer holds its `n` bytes (binary), or once it
    /// holds more (text, `n` = 0: what arrived of it is unmasked and validated already).
    /// `Ok(None)`: the next frame is the general path's.
    #[inline]
    fn whole_frames(&mut self) -> Result<Option<usize>, ProtocolError> {
        // Frames checked while they were copied in need no second look.
        if let Some((chunk, count)) = self.recv.buf.take_ready() {
            self.events.push_frames(chunk.freeze(), count);
        }
        // A text frame that waited for the rest of it, first, if any.
        let mut first = 0;
        if self.recv.front_scanned > 0 {
            match self.recv.resume_text()? {
                Some(0) => return Ok(Some(0)),
                Some(len) => first = len,
                None => return Ok(None),
            }
        }
        loop {
            let (count, scanned, end) = self.scan_whole_frames(core::mem::take(&mut first));
            if count > 0 {
                self.events.push_frames(self.recv.buf.split_to(scanned).freeze(), count);
            }
            match end {
                ScanEnd::Full => {}
                ScanEnd::Other => return Ok(None),
                ScanEnd::InvalidUtf8 => return Err(ProtocolError::InvalidUtf8),
                ScanEnd::Waiting(len) => return Ok(Some(len)),
                ScanEnd::TextArriving(header_len) => {
                    self.recv.text_arriving(header_len)?;
                    return Ok(Some(0));
                }
            }
        }
    }

    /// Unmasks and validates up to [`BATCH`] whole frames at the front of the buffer (see
    /// [`whole_frames`](Self::whole_frames)), from `first`: the bytes of one frame taken
    /// already, if not 0. Returns how many (that one included), the bytes they span, and why
    /// it stopped there.
    #[inline]
    fn scan_whole_frames(&mut self, first: usize) -> (usize, usize, ScanEnd) {
        // The role fixed for the loop: its per-frame tests of it (mask bit, header length,
        // where the key is) fold away.
        if self.recv.role == Role::Server { self.scan_frames::<true>(first) } else { self.scan_frames::<false>(first) }
    }

    /// [`scan_whole_frames`](Self::scan_whole_frames) for frames that are `MASKED` (a
    /// server's input) or not.
    #[inline(always)]
    fn scan_frames<const MASKED: bool>(&mut self, first: usize) -> (usize, usize, ScanEnd) {
        let mask_len = if MASKED { 4 } else { 0 };
        let limit = self.config.max_frame_size.min(self.config.max_message_size);
        // Text checked for ASCII while unmasked as it was copied in needs no validating.
        let ascii_until = if MASKED { self.recv.buf.ascii_until() } else { 0 };
        let data = self.recv.buf.data_mut();
        let mut at = first;
        for i in usize::from(first > 0)..BATCH {
            let rest = &mut data[at..];
            let [b0, b1, ..] = *rest else { return (i, at, ScanEnd::Other) };
            let Some((header_len, len)) = short_extent(b1, rest, mask_len) else {
                return (i, at, ScanEnd::Other);
            };
            let Some(is_text) = batched(b0, b1, MASKED, len, limit) else {
                return (i, at, ScanEnd::Other);
            };
            let total = header_len + len;
            let Some(frame) = rest.get_mut(..total) else {
                let end = match (len <= WAIT_WHOLE_MAX, is_text) {
                    (true, false) => ScanEnd::Waiting(total),
                    (true, true) if rest.len() >= header_len + ARRIVING_TEXT_MIN => ScanEnd::TextArriving(header_len),
                    _ => ScanEnd::Other,
                };
                return (i, at, end);
            };
            let (header, payload) = frame.split_at_mut(header_len);
            // Text found to be ASCII while unmasked (here, or as it was copied in) needs no
            // validating.
            let mut ascii = false;
            if MASKED {
                if let [.., k0, k1, k2, k3] = *header {
                    ascii = unmask(payload, [k0, k1, k2, k3], 0, is_text);
                }
            }
            if is_text {
                let ascii = ascii || holds_ascii(ascii_until, at + header_len, len as u64);
                if !ascii && crate::utf8::validate(payload).is_err() {
                    return (i, at, ScanEnd::InvalidUtf8);
                }
            }
            at += total;
        }
        (BATCH, at, ScanEnd::Full)
    }

    /// Parses and checks the next frame header. `Ok(false)`: need more bytes.
    fn start_frame(&mut self) -> Result<bool, ProtocolError> {
        let Some((header, header_len)) = FrameHeader::parse(self.recv.buf.data())? else {
            return Ok(false);
        };
        // A text frame that waited to be taken whole, if it comes here after all: what of it
        // is unmasked and validated already stays so (the validator holds its end).
        let resumed = usize::from(self.recv.front_scanned);
        let [rsv1, rsv2, rsv3] = header.rsv;
        // RSV1 marks a compressed message: only on its first frame, only if negotiated.
        if rsv2
            || rsv3
            || (rsv1 && !(self.compression_negotiated() && matches!(header.opcode, OpCode::Text | OpCode::Binary)))
        {
            return Err(ProtocolError::ReservedBits);
        }
        match (self.recv.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let limits = &self.config;
        if header.payload_len > limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge { size: header.payload_len, limit: limits.max_frame_size });
        }
        let message = &mut self.recv.message;
        match header.opcode {
            OpCode::Continuation => {
                let Some(msg) = message else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                msg.fragments += 1;
                if msg.fragments > limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments { limit: limits.max_fragments });
                }
                msg.size += header.payload_len;
            }
            OpCode::Text | OpCode::Binary => {
                if message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let kind = if header.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary };
                let fresh = InMessage {
                    kind,
                    data: BytesMut::new(),
                    size: header.payload_len,
                    fragments: 1,
                    delivered: false,
                    compressed: rsv1,
                    inflated: 0,
                    trailer_fed: 0,
                    output_pending: false,
                    assembled: 0,
                };
                *message = Some(match self.recv.spare_message.take() {
                    Some(mut boxed) => {
                        *boxed = InMessage { assembled: boxed.assembled, ..fresh };
                        boxed
                    }
                    None => alloc::boxed::Box::new(fresh),
                });
                if resumed == 0 {
                    self.recv.utf8 = Utf8Validator::new();
                }
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        if let Some(msg) = message {
            // A compressed message is held to the limit by its inflated size, while inflating.
            if !msg.compressed && msg.size > limits.max_message_size as u64 {
                return Err(ProtocolError::MessageTooLarge { limit: limits.max_message_size });
            }
        }
        let ascii = header.mask.is_some() && holds_ascii(self.recv.buf.ascii_until(), header_len, header.payload_len);
        self.recv.buf.advance(header_len);
        self.recv.front_scanned = 0;
        let frame = InFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            taken: 0,
            scanned: resumed,
            ascii,
        };
        self.recv.text_held = frame.mask.is_some()
            && validates_text(&frame, self.recv.message.as_deref())
            && self.recv.holds_whole(self.config.receive_mode, frame.opcode);
        self.recv.frame = Some(frame);
        // A payload to be held whole: room for it now, not by doubling as it arrives.
        if let Some(room) = self.recv.room_to_reserve(self.config.receive_mode, self.config.read_buffer_size) {
            self.recv.buf.reserve_deferring(room);
        }
        Ok(true)
    }

    /// Copied input that goes on with the payload of the current frame, a masked one whose
    /// buffered bytes are all unmasked and validated already: up to the frame's end, it is
    /// unmasked as it is copied in and validated if it is text — what
    /// [`continue_frame`](Self::continue_frame) would do with it, with one pass less over it.
    /// Returns how much of `data` it took: none if the frame is not such a one, or if that is
    /// less than [`FUSED_MIN`](crate::mask::FUSED_MIN) bytes (or than [`SPLIT_FUSED_MIN`] with
    /// input after it) — unless it is a few bytes of text that do not end the frame: those
    /// need nothing else (text is validated as it arrives, to fail fast), so tiny reads of text
    /// skip a pass of the whole receive path.
    #[inline(always)]
    pub(super) fn extend_frame_payload(&mut self, data: &[u8]) -> Result<usize, ProtocolError> {
        if self.recv.frame.is_none() {
            return Ok(0);
        }
        self.extend_frame_payload_any(data)
    }

    /// Before more input: the room a frame's header asked for, if that was put off
    /// ([`ReceiveBuffer::reserve_deferring`](super::buffer::ReceiveBuffer::reserve_deferring)).
    #[inline(always)]
    pub(super) fn retry_reserve(&mut self) {
        if self.recv.buf.reserve_deferred() {
            self.retry_reserve_any();
        }
    }

    #[inline(never)]
    fn retry_reserve_any(&mut self) {
        let room = self.recv.room_to_reserve(self.config.receive_mode, self.config.read_buffer_size);
        self.recv.buf.retry_reserve(room);
    }

    fn extend_frame_payload_any(&mut self, data: &[u8]) -> Result<usize, ProtocolError> {
        let recv = &mut self.recv;
        let Some(frame) = recv.frame.as_mut() else {
            return Ok(0);
        };
        let Some(key) = frame.mask else {
            return Ok(0);
        };
        let start = recv.buf.len();
        if frame.scanned != start || recv.paused {
            return Ok(0);
        }
        let missing = usize::try_from(frame.remaining).unwrap_or(usize::MAX).saturating_sub(start);
        let n = missing.min(data.len());
        let text = validates_text(frame, recv.message.as_deref());
        let takes = if n >= crate::mask::FUSED_MIN {
            // The end of a frame with more input after it, unless long, costs more this way
            // (two copies and two passes of the receive path instead of one).
            n == data.len() || n >= SPLIT_FUSED_MIN
        } else {
            text && n == data.len() && n < missing
        };
        if !takes {
            return Ok(0);
        }
        let phase = (frame.taken as usize).wrapping_add(start);
        if text {
            extend_text(&mut recv.buf, &mut recv.utf8, &data[..n], key, phase)?;
        } else {
            recv.buf.extend_unmasked::<false>(&data[..n], key, phase);
        }
        frame.scanned = recv.buf.len();
        Ok(n)
    }

    /// [`receive`](Self::receive) for a tiny read that [`Receiver::continues_text`]
    /// vouches for: it is unmasked as it is appended and validated, and that is all (what
    /// [`extend_frame_payload`](Self::extend_frame_payload) would do with it, without the
    /// checks of the rest of the receive path it would pass through).
    #[inline(always)]
    pub(super) fn extend_text_bytes(&mut self, data: &[u8]) -> Result<(), Error> {
        let recv = &mut self.recv;
        let Some(frame) = recv.frame.as_mut() else { return self.receive_any(data) };
        let Some(key) = frame.mask else { return self.receive_any(data) };
        let phase = (frame.taken as usize).wrapping_add(frame.scanned);
        match extend_text(&mut recv.buf, &mut recv.utf8, data, key, phase) {
            Ok(()) => {
                frame.scanned = recv.buf.len();
                Ok(())
            }
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Unmasks, validates and delivers what is buffered of the current frame. `Ok(false)`:
    /// need more bytes.
    fn continue_frame(&mut self) -> Result<bool, ProtocolError> {
        let recv = &mut self.recv;
        let Some(frame) = recv.frame.as_mut() else {
            return Ok(true);
        };
        // `remaining` may exceed usize on 32-bit targets; the buffer length never does.
        let available = usize::try_from(frame.remaining).map_or(recv.buf.len(), |r| r.min(recv.buf.len()));
        if available > frame.scanned {
            let fresh = &mut recv.buf.data_mut()[frame.scanned..available];
            let text = validates_text(frame, recv.message.as_deref());
            // Whether the fresh bytes are all ASCII, found out while unmasking them here or as
            // they were copied in.
            let mut ascii = frame.ascii;
            if let Some(key) = frame.mask {
                let phase = (frame.taken as usize).wrapping_add(frame.scanned);
                ascii |= unmask(fresh, key, phase, text);
            }
            if text {
                recv.utf8.feed_seen(fresh, ascii).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            frame.scanned = available;
        }
        let complete = available as u64 == frame.remaining;
        #[cfg(feature = "deflate")]
        if !frame.opcode.is_control() && recv.message.as_ref().is_some_and(|m| m.compressed) {
            return self.continue_compressed_frame();
        }
        if frame.opcode.is_control() {
            if !complete {
                return Ok(false);
            }
            let opcode = frame.opcode;
            let payload = recv.buf.split_to(available).freeze();
            recv.frame = None;
            self.handle_control(opcode, payload)?;
            return Ok(true);
        }
        match self.config.receive_mode {
            ReceiveMode::Message => {
                if !complete {
                    // Binary: nothing to do before a chunk more of it is here (text is
                    // validated as it arrives instead, to fail fast).
                    if !validates_text(frame, recv.message.as_deref()) {
                        let end = usize::try_from(frame.remaining).unwrap_or(usize::MAX);
                        recv.need = end.min(available.saturating_add(UNMASK_STEP));
                    }
                    return Ok(false);
                }
                let fin = frame.fin;
                recv.frame = None;
                let Some(msg) = recv.message.as_mut() else {
                    recv.buf.advance(available);
                    return Ok(true);
                };
                if !fin || !msg.data.is_empty() {
                    // A fragment: copied into the message, straight from the buffer (not split
                    // off it first, which shares the allocation only to release it again).
                    msg.append(&recv.buf.data()[..available]);
                    recv.buf.advance(available);
                    if !fin {
                        return Ok(true);
                    }
                }
                let data = if msg.data.is_empty() {
                    // Unfragmented (or only the last fragment has data): no copy at all.
                    recv.buf.split_to(available).freeze()
                } else {
                    msg.take_assembled()
                };
                self.deliver_message(data)?;
                Ok(true)
            }
            ReceiveMode::Stream => {
                if available == 0 && !complete {
                    return Ok(false);
                }
                let piece = recv.buf.split_to(available).freeze();
                frame.remaining -= available as u64;
                frame.taken += available as u64;
                frame.scanned = 0;
                let last = complete && frame.fin;
                if complete {
                    recv.frame = None;
                }
                let Some(msg) = recv.message.as_mut() else {
                    return Ok(true);
                };
                let first = !msg.delivered;
                let kind = msg.kind;
                if last {
                    recv.message = None;
                    if kind == MessageKind::Text {
                        recv.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                } else if piece.is_empty() {
                    // Nothing to say: an empty non-final frame.
                    return Ok(true);
                } else {
                    msg.delivered = true;
                }
                self.events.push_back(Event::Fragment(Fragment { kind, data: piece, first, last }));
                Ok(complete)
            }
        }
    }

    /// Ends the message in progress with its payload, `data`: the text checked complete, the
    /// message queued, its box kept for the next one.
    fn deliver_message(&mut self, data: Bytes) -> Result<(), ProtocolError> {
        let recv = &mut self.recv;
        let Some(msg) = recv.message.take() else {
            return Ok(());
        };
        let kind = msg.kind;
        recv.spare_message = Some(msg);
        let message = match kind {
            MessageKind::Text => {
                recv.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                Message::Text(Utf8Bytes::from_validated(data))
            }
            MessageKind::Binary => Message::Binary(data),
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }

    /// The fragments of a message, past its first, taken while they are whole in the buffer:
    /// each checked, unmasked as it is copied into the message and dropped from the buffer in
    /// one step, with no per-frame state, the text of all of them validated at once; the
    /// message delivered with the last. What [`start_frame`](Self::start_frame) and
    /// [`continue_frame`](Self::continue_frame) would do with them, for a few nanoseconds a
    /// fragment instead of a few tens (messages fragmented into small frames). Returns at the
    /// first frame that is not a continuation with a 7- or 16-bit length, not whole, or over a
    /// limit, for the general path, which reports what is wrong with it; `Ok(true)` if it
    /// delivered the message. Message mode, uncompressed messages only.
    // Out of line: inlined into `process_frames`, it slowed the loop every unfragmented
    // message goes through (20-byte frames fed whole: 6.4 -> 6.7 ns).
    #[inline(never)]
    fn whole_continuations(&mut self) -> Result<bool, ProtocolError> {
        let masked = self.recv.role == Role::Server;
        let limits = &self.config;
        let recv = &mut self.recv;
        let Some(msg) = recv.message.as_deref_mut() else {
            return Ok(false);
        };
        if msg.compressed {
            return Ok(false);
        }
        let text = msg.kind == MessageKind::Text;
        let (start, mut ascii) = (msg.data.len(), true);
        let fin = loop {
            let data = recv.buf.data();
            let [b0, b1, ..] = *data else {
                break false;
            };
            // Continuation, no RSV bit, the mask bit as the role requires.
            if b0 & 0x7F != 0 || (b1 & 0x80 != 0) != masked {
                break false;
            }
            let Some((header_len, len)) = short_extent(b1, data, if masked { 4 } else { 0 }) else {
                break false;
            };
            let Some((header, payload)) = data.get(..header_len + len).map(|frame| frame.split_at(header_len)) else {
                break false;
            };
            let size = msg.size + len as u64;
            if len > limits.max_frame_size
                || msg.fragments >= limits.max_fragments
                || size > limits.max_message_size as u64
            {
                break false;
            }
            let key = match *header {
                [.., k0, k1, k2, k3] if masked => [k0, k1, k2, k3],
                _ => [0; 4],
            };
            msg.fragments += 1;
            msg.size = size;
            if text {
                ascii &= msg.append_unmasking::<true>(payload, key);
            } else {
                msg.append_unmasking::<false>(payload, key);
            }
            recv.buf.advance(header_len + len);
            if b0 & 0x80 != 0 {
                break true;
            }
        };
        // The text of the fragments taken, validated in one go before anything after them:
        // they arrived together, so this fails as early as the reads let anything fail.
        if text && msg.data.len() > start {
            recv.utf8.feed_seen(&msg.data[start..], ascii).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !fin {
            return Ok(false);
        }
        let data = msg.take_assembled();
        self.deliver_message(data)?;
        Ok(true)
    }

    fn handle_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), ProtocolError> {
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && self.state == State::Open {
                    self.send.set_auto_pong(payload.clone());
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => {
                self.timers.pong_received(&payload);
                self.events.push_back(Event::Pong(payload));
            }
            OpCode::Close => {
                let frame = CloseFrame::parse(&payload)?;
                self.recv.discard();
                match self.state {
                    State::Open => {
                        self.state = State::CloseReceived;
                        // Echo the peer's code (RFC 6455 §5.5.1) when the app takes the event.
                        self.close_reply = Some(frame.as_ref().map(|f| f.code));
                    }
                    _ => {
                        self.state = State::Closed;
                        self.timers.close_handshake_done();
                    }
                }
                self.events.push_back(Event::Close(frame));
            }
            // Data opcodes never reach here.
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Connection, Event};
    use alloc::vec;

    /// A masked binary frame header (the payload, all zero, masks to the key itself).
    fn header(len: u64) -> alloc::vec::Vec<u8> {
        let mut out = vec![0x82, 0x80 | 127];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    }

    #[test]
    fn read_room_grows_with_what_arrived_of_a_large_frame() {
        let mut conn = Connection::server(Config::default());
        let len = 1 << 20;
        conn.receive(&header(len)).unwrap();
        // Nothing of the payload yet: no more than the usual room, whatever the header declares.
        assert!(conn.receive_buffer().len() <= 16 << 10);
        let mut arrived = 0;
        let mut reads = 0;
        while arrived < len as usize {
            let room = conn.receive_buffer();
            assert!(room.len() <= (len as usize - arrived).max(16 << 10), "never more than is to come");
            assert!(room.len() <= (4 * arrived).max(16 << 10), "never more than 4x what arrived already");
            let n = room.len().min(len as usize - arrived);
            conn.commit_received(n).unwrap();
            arrived += n;
            reads += 1;
        }
        // Growing with what arrived, not 64 reads of 16 KiB.
        assert!(reads <= 8, "{reads} reads");
        assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.len() == len as usize));
    }

    #[test]
    fn a_long_binary_frame_fed_a_byte_at_a_time_is_unmasked_a_step_at_a_time() {
        let mut conn = Connection::server(Config::default());
        let len = super::WAIT_WHOLE_MAX + 1000;
        let key = [0x12, 0x34, 0x56, 0x78];
        let payload: alloc::vec::Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut frame = vec![0x82, 0x80 | 126];
        frame.extend_from_slice(&(len as u16).to_be_bytes());
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        let (head, body) = frame.split_at(8);
        conn.receive(head).unwrap();
        let mut passes = 0;
        for (i, byte) in body.iter().enumerate() {
            let scanned = conn.recv.frame.as_ref().map(|f| f.scanned);
            conn.receive(core::slice::from_ref(byte)).unwrap();
            if conn.recv.frame.as_ref().map(|f| f.scanned) != scanned {
                passes += 1;
            }
            if i + 1 < len {
                assert!(conn.recv.need > conn.recv.buf.len() || conn.recv.need == 0, "at {i}");
                assert!(conn.poll_event().is_none(), "complete at {i}?");
            }
        }
        // One unmasking pass per step, not one per byte.
        assert!(passes <= len.div_ceil(super::UNMASK_STEP) + 1, "{passes} passes");
        assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.as_bytes() == &payload[..]));
    }

    #[test]
    fn long_text_fed_a_byte_at_a_time_still_fails_at_the_first_invalid_byte() {
        let mut conn = Connection::server(Config::default());
        let len: u16 = 8 << 10;
        let mut frame = vec![0x81, 0x80 | 126];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(b"ok \xff");
        for byte in &frame[..frame.len() - 1] {
            conn.receive(core::slice::from_ref(byte)).unwrap();
        }
        let err = conn.receive(&frame[frame.len() - 1..]).unwrap_err();
        assert_eq!(err.close_code(), crate::CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn a_large_read_that_starts_a_frame_it_does_not_hold_takes_its_header_first() {
        // So that the payload is copied once, into the room the header makes reserved: the
        // server's unmasked as it is copied, the client's as it is.
        let read = 64 << 10;
        let mut server = Connection::server(Config::default());
        let mut input = header(1 << 20);
        input.resize(read, 0);
        assert_eq!(server.recv.buf.extend_unmasking(&input, super::super::RECEIVE_STEP, None), 14);
        assert_eq!(server.recv.buf.data(), &input[..14]);
        let client = Connection::client(Config::default());
        let mut input = vec![0x82, 127];
        input.extend_from_slice(&(1u64 << 20).to_be_bytes());
        input.resize(read, 0);
        assert_eq!(client.receive_step(&input), 10);
    }

    /// A fragmented binary message, masked with a zero key: `count` fragments of `len` bytes,
    /// each byte the index of its fragment.
    fn fragmented(count: usize, len: u16) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        for i in 0..count {
            let opcode = if i == 0 { 0x02 } else { 0x00 };
            let fin = if i + 1 == count { 0x80 } else { 0 };
            if len < 126 {
                out.extend_from_slice(&[fin | opcode, 0x80 | len as u8]);
            } else {
                out.extend_from_slice(&[fin | opcode, 0x80 | 126]);
                out.extend_from_slice(&len.to_be_bytes());
            }
            out.extend_from_slice(&[0; 4]);
            out.resize(out.len() + usize::from(len), i as u8);
        }
        out
    }

    /// The capacity of the fragmented message being assembled.
    fn assembling(conn: &Connection) -> usize {
        conn.recv.message.as_ref().map_or(0, |m| m.data.capacity())
    }

    #[test]
    fn a_fragmented_message_of_the_size_of_the_last_is_assembled_in_one_allocation() {
        let (count, len) = (16, 4 << 10);
        let message = fragmented(count, len);
        let expected: alloc::vec::Vec<u8> = (0..count).flat_map(|i| vec![i as u8; usize::from(len)]).collect();
        let mut conn = Connection::server(Config::default());
        let first_fragment = message.len() / count;
        for round in 0..3 {
            // The first fragment reserves room for the whole message from the second one on
            // (the first grows as it comes); the others add to it without moving it.
            conn.receive(&message[..first_fragment]).unwrap();
            let reserved = assembling(&conn);
            if round > 0 {
                assert!(reserved >= expected.len(), "round {round}: {reserved} bytes reserved");
            }
            for fragment in message[first_fragment..].chunks(first_fragment).take(count - 2) {
                conn.receive(fragment).unwrap();
                if round > 0 {
                    assert_eq!(assembling(&conn), reserved, "round {round}: the message moved");
                }
            }
            conn.receive(&message[message.len() - first_fragment..]).unwrap();
            assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.as_bytes() == &expected[..]));
        }
        // A smaller message after it: the room reserved follows the last size, not the largest.
        let small = fragmented(2, 16);
        for _ in 0..2 {
            conn.receive(&small[..small.len() / 2]).unwrap();
            let reserved = assembling(&conn);
            conn.receive(&small[small.len() / 2..]).unwrap();
            assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.len() == 32));
            if reserved < 1024 {
                return;
            }
        }
        panic!("a small message after a large one still reserves the large one's size");
    }

    /// Masked binary frames with a 16-bit length: `count` of `len` bytes each.
    fn frames16(count: usize, len: u16) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        for _ in 0..count {
            out.extend_from_slice(&[0x82, 0x80 | 126]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&[1, 2, 3, 4]);
            out.resize(out.len() + usize::from(len), 0);
        }
        out
    }

    #[test]
    fn messages_that_each_end_in_the_read_that_starts_the_next_keep_one_allocation() {
        // Each read but the first holds the end of one message and the start of the next, so
        // the next one's header asks for room while the message before it is still queued,
        // sharing the allocation. Dropped before the next read, that message gives its room
        // back: the allocation is reclaimed, not replaced, message after message.
        let input = frames16(8, 16 << 10);
        let mut conn = Connection::server(Config::default());
        let mut addresses = alloc::vec::Vec::new();
        for read in input.chunks(1460) {
            conn.receive(read).unwrap();
            while let Some(event) = conn.poll_event() {
                let Event::Message(message) = event else { panic!("{event:?}") };
                assert_eq!(message.as_bytes().len(), 16 << 10);
                assert!(message.as_bytes().chunks(4).all(|c| c == [1, 2, 3, 4]));
                addresses.push(message.as_bytes().as_ptr());
            }
        }
        assert_eq!(addresses.len(), 8);
        // The first two may differ (the first allocation is sized for the first message only).
        assert!(addresses[2..].iter().all(|&a| a == addresses[2]), "{addresses:?}");
    }

    #[test]
    fn a_large_read_of_ready_frames_is_copied_past_the_step_in_one_go() {
        let step = super::super::RECEIVE_STEP;
        // Frames handed out as they are: copied past the step (nothing reads them again).
        let input = frames16(8, 16 << 10);
        let mut conn = Connection::server(Config::default());
        assert_eq!(conn.recv.buf.extend_unmasking(&input, step, Some(1 << 20)), input.len());
        assert_eq!(conn.recv.buf.take_ready().map(|(_, count)| count), Some(8));
        // Up to a cap: the rest is for the next call.
        let input = frames16(40, 16 << 10);
        let mut conn = Connection::server(Config::default());
        let taken = conn.recv.buf.extend_unmasking(&input, step, Some(1 << 20));
        assert!(taken > step && taken <= super::super::buffer::READY_MAX && taken % (8 + (16 << 10)) == 0, "{taken}");
        // Frames that are not (too long for the limit here): up to the step, as before.
        let input = frames16(8, 16 << 10);
        let mut conn = Connection::server(Config::default());
        assert_eq!(conn.recv.buf.extend_unmasking(&input, step, Some(1 << 10)), 8 + (16 << 10));
        // A frame that is not ready ends the run past the step; every message still arrives.
        let mut input = frames16(6, 4 << 10);
        let fragment = input.len();
        input.extend_from_slice(&frames16(1, 300));
        input[fragment] = 0x02; // not FIN: a fragment
        input.extend_from_slice(&[0x80, 0x80, 0, 0, 0, 0]); // its empty final continuation
        input.extend_from_slice(&frames16(6, 4 << 10));
        let mut conn = Connection::server(Config::default());
        assert_eq!(conn.recv.buf.extend_unmasking(&input, step, Some(1 << 20)), fragment);
        let mut conn = Connection::server(Config::default());
        conn.receive(&input).unwrap();
        let mut sizes = alloc::vec::Vec::new();
        while let Some(event) = conn.poll_event() {
            if let Event::Message(message) = event {
                sizes.push(message.len());
            }
        }
        let mut expect = vec![4 << 10; 6];
        expect.push(300);
        expect.extend_from_slice(&[4 << 10; 6]);
        assert_eq!(sizes, expect);
    }

    /// A masked text frame with a 16-bit length (key 1, 2, 3, 4).
    fn masked_text(text: &str) -> alloc::vec::Vec<u8> {
        let key = [1, 2, 3, 4];
        let len = u16::try_from(text.len()).unwrap();
        let mut out = alloc::vec![0x81, 0x80 | 126];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&key);
        out.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    fn texts(conn: &mut Connection) -> alloc::vec::Vec<alloc::string::String> {
        core::iter::from_fn(|| conn.poll_event())
            .map(|event| match event {
                Event::Message(crate::Message::Text(text)) => alloc::string::String::from(text.as_str()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_short_text_frame_still_arriving_waits_whole_with_what_arrived_validated() {
        let text = "κόσμε, ".repeat(30);
        let frame = masked_text(&text);
        let wire = [&frame[..], &frame[..]].concat();
        // The first read ends inside a code point, 101 bytes into the first payload.
        let cut = 8 + 101;
        let mut conn = Connection::server(Config::default());
        conn.receive(&wire[..cut]).unwrap();
        // No frame state: the frame waits at the front, what arrived of it unmasked and
        // validated (the validator holds the unfinished code point).
        assert!(conn.recv.frame.is_none() && conn.recv.message.is_none());
        assert_eq!(usize::from(conn.recv.front_scanned), 101);
        assert!(!conn.recv.utf8.is_complete());
        assert_eq!(conn.recv.buf.data()[8..cut], text.as_bytes()[..101]);
        conn.receive(&wire[cut..]).unwrap();
        assert_eq!(conn.recv.front_scanned, 0);
        assert_eq!(texts(&mut conn), [text.clone(), text.clone()]);
        // Less than 16 bytes of payload with the header: the general path's from the start.
        let mut conn = Connection::server(Config::default());
        conn.receive(&wire[..8 + 15]).unwrap();
        assert!(conn.recv.frame.is_some() && conn.recv.front_scanned == 0);
        conn.receive(&wire[8 + 15..]).unwrap();
        assert_eq!(texts(&mut conn), [text.clone(), text.clone()]);
        // Handed to the general path half-way (nothing does that today), the frame goes on
        // from where it was, the unmasked part not unmasked again.
        let mut conn = Connection::server(Config::default());
        conn.receive(&wire[..cut]).unwrap();
        assert_eq!(conn.start_frame(), Ok(true));
        assert_eq!(conn.recv.frame.as_ref().map(|frame| frame.scanned), Some(101));
        assert_eq!(conn.recv.front_scanned, 0);
        conn.receive(&wire[cut..]).unwrap();
        assert_eq!(texts(&mut conn), [text.clone(), text]);
    }
}
