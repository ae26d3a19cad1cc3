//! The receive buffer: bytes read from the transport that do not yet form a complete frame or
//! message, and room to read more into.
//!
//! Payloads leave the buffer as [`BytesMut`] splits of its allocation (no copy), and the room
//! offered for reads ([`ReceiveBuffer::spare`]) is zeroed only where it was never offered since
//! the data last moved to the front of the allocation (or to a new one): room that was read into
//! before is offered again as it is, so a read of 1460 bytes costs neither a 16 KiB memset nor
//! an allocation. Reads walk through the allocation before it is reclaimed, so in a stream of
//! reads about one byte of room is zeroed per byte received. Not zeroing it again after a
//! reclaim would take `unsafe` (`BytesMut::set_len` over bytes known to be initialized), which
//! the end-to-end servers do not justify (`memset` is 0.6 % of the std echo server's samples at
//! 100 x 1 KiB). Reads into uninitialized memory (`room`, the tokio driver's) are never zeroed.
//!
//! A large allocation (one that held a large message) emptied by the message leaving with it
//! is reused for the next input if the application has dropped the message by then (no new
//! allocation, no page faults), and let go if it still holds it. A driver about to wait for
//! input lets an empty buffer's allocation go entirely ([`ReceiveBuffer::release_if_empty`]),
//! so an idle connection holds no receive buffer at all.

#[cfg(any(test, feature = "tokio"))]
use bytes::BufMut;
#[cfg(any(test, feature = "tokio"))]
use bytes::buf::Limit;
use bytes::{Buf, BytesMut};

/// Room left in the allocation that is still worth offering for a read rather than growing or
/// reclaiming the buffer first.
pub(super) const MIN_ROOM: usize = 4 << 10;

/// [`MIN_ROOM`] as [`ReceiveBuffer::offer`] holds it.
const MIN_OFFER: u32 = 4 << 10;

/// Allocations at least this large come from the system as fresh pages (glibc's default mmap
/// threshold), zeroed by the kernel: asking for them zeroed costs nothing.
const ZEROED_BY_THE_SYSTEM: usize = 128 << 10;

/// Capacity allocated past the room offered when the buffer grows or is reclaimed.
const RUNWAY: usize = 3 * MIN_ROOM;

/// [`ReceiveBuffer::extend_unmasked`] takes inputs shorter than this a byte at a time
/// ([`extend_masked_bytes`](crate::mask::extend_masked_bytes)).
pub(super) const TINY: usize = 8;

/// The most room [`ReceiveBuffer::reserve`] makes ahead of the data.
pub(super) const RESERVE_AHEAD_MAX: usize = (1 << 20) + (64 << 10);

/// How far into its input [`ReceiveBuffer::extend_unmasking`] goes on copying past its `step`
/// while every frame so far was ready to be handed out as it is.
pub(super) const READY_MAX: usize = 256 << 10;

/// Received bytes at the front of an allocation, then room that was initialized before.
#[derive(Debug)]
pub(super) struct ReceiveBuffer {
    /// `len` bytes of received data, then bytes written before (zeroed, or read into and not
    /// committed) that may be offered as room again. Capacity past `bytes.len()` is
    /// uninitialized as far as this type knows.
    bytes: BytesMut,
    /// How many bytes at the front are received data.
    len: usize,
    /// The most room an empty buffer keeps.
    idle_capacity: usize,
    /// The data was emptied out of an allocation larger than `idle_capacity`, which the
    /// handles split off may still share.
    emptied_large: bool,
    /// The last read went into initialized room ([`spare`](Self::spare)), not into spare
    /// capacity ([`room`](Self::room)) or by copying ([`extend`](Self::extend)): a large
    /// allocation is then asked for zeroed (see [`reserve`](Self::reserve)).
    reads_in_place: bool,
    /// A [`reserve_deferring`](Self::reserve_deferring) was put off: retry it
    /// ([`retry_reserve`](Self::retry_reserve)) before more input (cleared only there).
    reserve_deferred: bool,
    /// The most room [`spare`](Self::spare) offers now: [`MIN_ROOM`] after the buffer was let
    /// go, doubled each time a read fills all the room offered. A fresh buffer is zeroed a few
    /// KiB at a time, not a whole read buffer's worth for a 20-byte message. 32 bits, as
    /// `offered` and `ready_frames`: an idle connection's size is a target (room past 4 GiB
    /// is offered 4 GiB at a time).
    offer: u32,
    /// The room the last [`spare`](Self::spare) offered.
    offered: u32,
    /// The data up to here came in through [`extend_unmasking`](Self::extend_unmasking), and
    /// every masked text or continuation frame in it with a payload of at least
    /// [`FUSED_MIN`](crate::mask::FUSED_MIN) bytes was unmasked while copied and is all ASCII
    /// (see [`holds_ascii`]). Moves with the front of the data.
    ascii_until: usize,
    /// The data up to here is [`ready_frames`](Self::ready_frames) whole frames, unmasked and
    /// checked (see [`extend_unmasking`](Self::extend_unmasking)). Cleared when anything else
    /// takes data from the front.
    ready: usize,
    /// How many frames [`ready`](Self::ready) covers (0: none): a step's worth at most.
    ready_frames: u32,
}

/// Whether the payload of `len` bytes at `at` in the data, of a masked text or continuation
/// frame, is known to be all ASCII — so valid UTF-8 on its own — from its check while it was
/// unmasked in [`ReceiveBuffer::extend_unmasking`], given the buffer's
/// [`ascii_until`](ReceiveBuffer::ascii_until).
#[inline]
pub(super) fn holds_ascii(ascii_until: usize, at: usize, len: u64) -> bool {
    len >= crate::mask::FUSED_MIN as u64 && at as u64 + len <= ascii_until as u64
}

/// Whether the batch path ([`Connection::whole_frames`](super::Connection)) takes a whole
/// frame whose header starts with `b0`, `b1` and declares `len` bytes of payload as it is:
/// FIN, no RSV bit, text or binary, the mask bit as the role requires (`masked`), at most
/// `limit` bytes. `Some(is_text)` if so; `None` leaves the frame to the general path, which
/// reports whatever is wrong with it. The length's encoding (minimal, 7 or 16 bits) is the
/// caller's to check.
#[inline(always)]
pub(super) fn batched(b0: u8, b1: u8, masked: bool, len: usize, limit: usize) -> Option<bool> {
    let is_text = match b0 {
        0x81 => true,
        0x82 => false,
        _ => return None,
    };
    ((b1 & 0x80 != 0) == masked && len <= limit).then_some(is_text)
}

impl ReceiveBuffer {
    pub(super) fn new(idle_capacity: usize) -> Self {
        Self {
            bytes: BytesMut::new(),
            len: 0,
            idle_capacity,
            emptied_large: false,
            reads_in_place: false,
            reserve_deferred: false,
            offer: MIN_OFFER,
            offered: 0,
            ascii_until: 0,
            ready: 0,
            ready_frames: 0,
        }
    }

    /// The received data.
    #[inline]
    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The received data, to unmask in place.
    #[inline]
    pub(super) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The room held from the data on.
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends `data` (the copying input path). A tiny read (a byte or two at a time) is
    /// appended a byte at a time: a call to copy it would cost more than the bytes.
    #[inline]
    pub(super) fn extend(&mut self, data: &[u8]) {
        if data.len() >= TINY || self.len == 0 {
            return self.extend_any(data);
        }
        for &byte in data {
            // Into initialized room if there is some (see `spare`), else appended.
            match self.bytes.get_mut(self.len) {
                Some(slot) => *slot = byte,
                None => self.bytes.extend_from_slice(&[byte]),
            }
            self.len += 1;
        }
    }

    /// [`extend`](Self::extend), any input.
    #[inline]
    fn extend_any(&mut self, data: &[u8]) {
        self.reuse_or_release(data.len());
        let end = self.len + data.len();
        if end <= self.bytes.len() {
            self.bytes[self.len..end].copy_from_slice(data);
        } else {
            self.bytes.truncate(self.len);
            self.bytes.extend_from_slice(data);
        }
        self.len = end;
    }

    /// [`extend`](Self::extend) for copied input that starts where a frame starts, sent by a
    /// client (masked), into an empty buffer: the payload of each whole masked frame of at
    /// least [`FUSED_MIN`](crate::mask::FUSED_MIN) bytes is unmasked as it is copied, one pass
    /// over it instead of a copy and then an unmasking in place, and its masking key is zeroed
    /// in the copy, so that unmasking it again (XOR with a zero key) is nothing. Text and
    /// continuation frames are also checked for ASCII while copied: up to the first that is
    /// not, [`holds_ascii`] tells, so that they need not be read again to be
    /// validated. Everything else is copied as it is, to be checked and unmasked as usual.
    ///
    /// Copies whole frames up to `step` bytes (at least one frame), and returns how much it
    /// copied: one walk over the headers both cuts the input into cache-sized steps and copies
    /// it. If the first frame is not whole, it copies only that frame's header when the frame
    /// is masked (its payload is best unmasked as it is copied into the room the header makes
    /// the receive path reserve, by
    /// [`Connection::extend_frame_payload`](super::Connection), rather than copied here, copied
    /// again into that room and then unmasked), else all of `data`.
    ///
    /// With `batch` (no message in progress, messages received whole), whole frames that
    /// [`Connection::whole_frames`](super::Connection) would take as they are — unfragmented,
    /// uncompressed text or binary with a 16-bit length, at most `batch`'s limit long, text
    /// valid UTF-8 — are also checked here, up to the first that is not one (or is shorter
    /// than `FUSED_MIN`): [`take_ready`](Self::take_ready) hands them over without a second
    /// walk over their headers.
    pub(super) fn extend_unmasking(&mut self, data: &[u8], step: usize, batch: Option<usize>) -> usize {
        debug_assert_eq!(self.len, 0, "input unmasked while copied starts the buffer's data");
        self.reuse_or_release(data.len());
        // Copying unmasked bytes needs the room after the data as it is, uninitialized.
        self.bytes.truncate(self.len);
        self.bytes.reserve(data.len());
        let (mut at, mut plain) = (0, 0);
        // Where the frames whose ASCII text `holds_ascii` vouches for end: up to the first text
        // that is not ASCII. (The buffer was empty: positions in `data` are positions in it.)
        let mut vouching = true;
        let mut ascii_until = 0;
        let (mut checking, limit) = (batch.is_some(), batch.unwrap_or(0));
        let (mut ready, mut ready_frames) = (0, 0u32);
        while let Some((header_len, payload_len)) = crate::frame::frame_extent(&data[at..]) {
            let payload_at = at + header_len;
            let Some(end) = payload_at.checked_add(payload_len).filter(|&end| end <= data.len()) else {
                break;
            };
            let header = &data[at..payload_at];
            let [b0, b1, ..] = *header else { break };
            let fused = b1 & 0x80 != 0 && payload_len >= crate::mask::FUSED_MIN;
            // What the batch path takes as it is ([`batched`]), text valid (found out below):
            // unfragmented text or binary with a 16-bit length (minimal: `FUSED_MIN` is over
            // 125). Spelled out rather than a call to `batched`: the call cost 5 instructions a
            // frame here (1 KiB frames fed whole: 2 % slower); the assertion below keeps the
            // two in step.
            let takeable = b1 == 0x80 | 126 && payload_len <= limit && (b0 == 0x82 || b0 == 0x81);
            // Past the step, only frames that go on a run of ready ones, up to a cap: nothing
            // reads them again, so they need not be in cache for a second look (64 KiB of 1
            // KiB or 16 KiB frames fed at once: one pass instead of 5 or 4, about 9 % less
            // time per message).
            if at > 0 && end > step && !(checking && fused && takeable && end <= READY_MAX) {
                break;
            }
            if let ([.., k0, k1, k2, k3], true) = (header, fused) {
                let key_at = payload_at - 4;
                let key = [*k0, *k1, *k2, *k3];
                if let (true, Ok(word)) = (plain == at, <[u8; 8]>::try_from(header)) {
                    // The usual header (16-bit length) right after a frame copied this way: one
                    // 8-byte store, the key cleared, rather than a call to copy a few bytes.
                    let word = u64::from_le_bytes(word) & 0xFFFF_FFFF;
                    self.bytes.extend_from_slice(&word.to_le_bytes());
                } else {
                    self.bytes.extend_from_slice(&data[plain..key_at]);
                    self.bytes.extend_from_slice(&[0; 4]);
                }
                let copied = self.bytes.len();
                let payload = &data[payload_at..end];
                // Uncompressed text or continuation (of text, or of what it need not know).
                let mut ascii = false;
                if b0 & 0x7F <= 1 && vouching {
                    ascii = crate::mask::extend_masked_checking::<true>(&mut self.bytes, payload, key, 0);
                    vouching = ascii;
                } else {
                    crate::mask::extend_masked(&mut self.bytes, payload, key, 0);
                }
                checking = checking
                    && takeable
                    && (b0 == 0x82 || ascii || crate::utf8::validate(&self.bytes[copied..]).is_ok());
                debug_assert!(
                    !checking || batched(b0, b1, true, payload_len, limit).is_some(),
                    "a frame checked while copied that the batch path does not take"
                );
                if checking {
                    // At most `max(step, READY_MAX) / FUSED_MIN` + 1 frames: far from overflowing.
                    (ready, ready_frames) = (end, ready_frames + 1);
                }
                plain = end;
            } else {
                checking = false;
            }
            at = end;
            if vouching {
                ascii_until = at;
            }
        }
        let copied = match at {
            // The first frame, not whole (the loop would have taken it): its header alone.
            0 => match crate::frame::frame_extent(data) {
                Some((header_len, _)) if data[1] & 0x80 != 0 => header_len,
                _ => data.len(),
            },
            _ => at,
        };
        self.bytes.extend_from_slice(&data[plain..copied]);
        self.ascii_until = ascii_until;
        (self.ready, self.ready_frames) = (ready, ready_frames);
        self.len = self.bytes.len();
        copied
    }

    /// The frames at the front of the data that [`extend_unmasking`](Self::extend_unmasking)
    /// found ready to be handed out as they are, and how many: taken out of the buffer.
    #[inline]
    pub(super) fn take_ready(&mut self) -> Option<(BytesMut, usize)> {
        if self.ready_frames == 0 {
            return None;
        }
        let count = core::mem::take(&mut self.ready_frames);
        Some((self.split_to(self.ready), count as usize))
    }

    /// Where the data [`holds_ascii`] vouches for ends.
    #[inline]
    pub(super) fn ascii_until(&self) -> usize {
        self.ascii_until
    }

    /// Appends `data`, the continuation of a masked payload, unmasked as it is copied (`key`
    /// and `offset` as for [`apply_mask`](crate::apply_mask)). With `ASCII` (for text), also
    /// tells whether every byte appended is ASCII (see
    /// [`extend_masked_checking`](crate::mask::extend_masked_checking)); `false` without.
    ///
    /// Inlined for a tiny read (a byte or two at a time): its call would cost more than the
    /// bytes.
    #[inline(always)]
    pub(super) fn extend_unmasked<const ASCII: bool>(&mut self, data: &[u8], key: [u8; 4], offset: usize) -> bool {
        if data.len() >= TINY || self.len == 0 {
            return self.extend_unmasked_any::<ASCII>(data, key, offset);
        }
        self.bytes.truncate(self.len);
        let ascii = crate::mask::extend_masked_bytes::<ASCII>(&mut self.bytes, data, key, offset);
        self.len = self.bytes.len();
        ascii
    }

    /// [`extend_unmasked`](Self::extend_unmasked), out of line.
    #[inline(never)]
    fn extend_unmasked_any<const ASCII: bool>(&mut self, data: &[u8], key: [u8; 4], offset: usize) -> bool {
        self.reuse_or_release(data.len());
        self.bytes.truncate(self.len);
        let ascii = if data.len() < TINY {
            crate::mask::extend_masked_bytes::<ASCII>(&mut self.bytes, data, key, offset)
        } else {
            crate::mask::extend_masked_checking::<ASCII>(&mut self.bytes, data, key, offset)
        };
        self.len = self.bytes.len();
        ascii
    }

    /// Up to `n` bytes of room right after the data, for a read: `n` (or less, while reads
    /// have not needed that much since the buffer was let go), or what is left of the
    /// allocation if that is at least [`MIN_ROOM`] (or `n`, if smaller) — so that reads walk
    /// through the allocation and it is reclaimed or grown only when nearly used up, not
    /// whenever less than `n` is left. Only room not offered since the data last moved (see
    /// the module's docs) is zeroed. Commit what was read with [`commit`](Self::commit).
    #[inline]
    pub(super) fn spare(&mut self, n: usize) -> &mut [u8] {
        let n = self.offer(n);
        self.spare_exactly(n)
    }

    /// How much of `n` [`spare`](Self::spare) would offer now.
    #[inline]
    pub(super) fn offer(&self, n: usize) -> usize {
        n.min(self.offer as usize)
    }

    /// [`spare`](Self::spare) for a read whose size is known to be needed (the rest of a
    /// frame): `n` bytes, however little reads needed before.
    #[inline]
    pub(super) fn spare_exactly(&mut self, n: usize) -> &mut [u8] {
        self.reads_in_place = true;
        self.reuse_or_release(n);
        let left = self.bytes.capacity() - self.len;
        let n = if left >= n.min(MIN_ROOM) {
            left.min(n)
        } else {
            // The runway (allocated, not zeroed) lets the reads that follow walk through the
            // allocation, each zeroing only the little room it adds, before the next reclaim
            // zeroes a whole offer again.
            self.grow(n);
            n
        };
        let end = self.len + n;
        if self.bytes.len() < end {
            // `resize` keeps the initialized room past the data and zeroes only what is new.
            self.bytes.resize(end, 0);
        }
        self.offered = u32::try_from(n).unwrap_or(u32::MAX);
        &mut self.bytes[self.len..end]
    }

    /// [`spare_exactly`](Self::spare_exactly) for a read that writes into uninitialized
    /// memory (tokio's `ReadBuf`): `n` bytes of the allocation's spare capacity after the
    /// data, never zeroed. Read into it (advancing `bytes`'
    /// length), then [`commit_room`](Self::commit_room).
    #[cfg(any(test, feature = "tokio"))]
    #[inline]
    pub(super) fn room(&mut self, n: usize) -> Limit<&mut BytesMut> {
        self.reads_in_place = false;
        self.reuse_or_release(n);
        // Initialized room is of no use to such a read, and must not pass for data.
        self.bytes.truncate(self.len);
        if self.len == 0 {
            // Nothing held: back to the front of the allocation if nothing split off it is
            // alive any more (nothing to move, nothing allocated), so that a connection's reads
            // keep to the same few pages and cache lines instead of walking through all of its
            // allocation (200 connections echoing 16 KiB messages one at a time: the tokio
            // server's peak resident memory 17.2 → 7.9 MiB, `bench-e2e/ab.sh`). Asking for more
            // than the capacity left is what makes `try_reclaim` go back; shared, the buffer
            // stays as it is.
            let _ = self.bytes.try_reclaim(self.bytes.capacity() + 1);
        }
        // Nothing to zero, so no reason to walk to the end of the allocation in short reads:
        // less than `n` left, and the allocation is reclaimed or replaced.
        if self.bytes.capacity() - self.len < n {
            self.grow(n);
        }
        self.offered = u32::try_from(n).unwrap_or(u32::MAX);
        (&mut self.bytes).limit(n)
    }

    /// Room for `n` bytes after the data plus a [`RUNWAY`], reclaiming the allocation (moving
    /// the data to its front) if nothing split off it is alive, else in a new one. Only the
    /// data is moved, not the stale room after it.
    #[inline]
    fn grow(&mut self, n: usize) {
        self.bytes.truncate(self.len);
        self.bytes.reserve(n + RUNWAY);
    }

    /// What a read wrote into [`room`](Self::room) becomes data (`keep`), or is dropped.
    #[cfg(any(test, feature = "tokio"))]
    #[inline]
    pub(super) fn commit_room(&mut self, keep: bool) {
        if !keep {
            self.bytes.truncate(self.len);
            return;
        }
        let n = self.bytes.len().saturating_sub(self.len);
        self.len = self.bytes.len();
        if n > 0 && n >= core::mem::take(&mut self.offered) as usize {
            self.offer = self.offer.saturating_mul(2);
        }
    }

    /// Makes room for `additional` more bytes of data without moving what is there again: for
    /// a frame whose header declared its length, so that its payload does not grow the buffer
    /// (and copy itself) step by step. Capped at [`RESERVE_AHEAD_MAX`]: a header alone never
    /// makes the connection allocate more than that.
    pub(super) fn reserve(&mut self, additional: usize) {
        let additional = additional.min(RESERVE_AHEAD_MAX);
        if !self.reclaim(additional) {
            self.reallocate(additional);
        }
    }

    /// [`reserve`](Self::reserve) for a frame whose header just came in, unless that would
    /// take a new allocation while this one still has [`MIN_ROOM`] to spare: then it is only
    /// noted, and made ([`retry_reserve`](Self::retry_reserve)) before the next input. A
    /// message that arrives in several reads ends in the read that starts the next one, and is
    /// then still in the event queue, sharing the allocation; by the next read the application
    /// has usually dropped it, and the allocation is reclaimed then — instead of a new
    /// allocation, a copy of what is here of the next frame and a free of the old one for
    /// every message.
    pub(super) fn reserve_deferring(&mut self, additional: usize) {
        let additional = additional.min(RESERVE_AHEAD_MAX);
        if self.reclaim(additional) {
            return;
        }
        if self.bytes.capacity() - self.len >= MIN_ROOM {
            self.reserve_deferred = true;
        } else {
            self.reallocate(additional);
        }
    }

    /// Whether a reserve was put off ([`reserve_deferring`](Self::reserve_deferring)). It may
    /// be stale (the frame it was for may be gone): the caller knows the frame.
    #[inline]
    pub(super) fn reserve_deferred(&self) -> bool {
        self.reserve_deferred
    }

    /// The reserve [`reserve_deferring`](Self::reserve_deferring) put off, before more input:
    /// `additional` is what the frame still asks for (`None`: the frame it was for is gone),
    /// reclaimed if the allocation is no longer shared, else made in a new one, as it would
    /// have been then.
    pub(super) fn retry_reserve(&mut self, additional: Option<usize>) {
        self.reserve_deferred = false;
        if let Some(additional) = additional {
            self.reserve(additional);
        }
    }

    /// Whether the allocation has room for `additional` bytes after the data, or can be made
    /// to have it without allocating: reused if nothing split off it is alive (moving the data
    /// to its front). Not `BytesMut::reserve`, which may copy everything in front of the data
    /// too.
    fn reclaim(&mut self, additional: usize) -> bool {
        if self.bytes.capacity() - self.len >= additional {
            return true;
        }
        self.reuse_or_release(additional);
        // What was initialized past the data would be copied for nothing.
        self.bytes.truncate(self.len);
        self.bytes.try_reclaim(additional)
    }

    /// Moves the data to a new allocation with room for `additional` bytes after it (after a
    /// [`reclaim`](Self::reclaim) that failed: nothing past the data is initialized).
    fn reallocate(&mut self, additional: usize) {
        let size = self.len + additional;
        self.bytes = if size >= ZEROED_BY_THE_SYSTEM && self.reads_in_place {
            // Pages fresh from the system are zero already: initialized room that reads can be
            // offered without zeroing it again, for free. Not always fresh, though (glibc
            // serves sizes it has seen freed from its heap, and then clears them), so only for
            // reads that need initialized room: copied input and reads into spare capacity
            // take the buffer as it comes.
            let mut fresh = BytesMut::zeroed(size);
            fresh[..self.len].copy_from_slice(&self.bytes);
            fresh
        } else {
            // From the heap, zeroing would be a memset of all of it up front: room is zeroed
            // as it is offered instead (or never, for reads into uninitialized room and for
            // copied input). With a runway, so that the next frame's room is usually reclaimed
            // from this allocation rather than allocated again.
            let mut fresh = BytesMut::with_capacity(size + RUNWAY);
            fresh.extend_from_slice(&self.bytes);
            fresh
        };
    }

    /// `n` bytes were read into the front of the room [`spare`](Self::spare) offered.
    #[inline]
    pub(super) fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.bytes.len());
        if n > 0 && n >= core::mem::take(&mut self.offered) as usize {
            self.offer = self.offer.saturating_mul(2);
        }
    }

    /// Takes the first `n` bytes of data (`n <= len`), sharing the allocation.
    #[inline]
    pub(super) fn split_to(&mut self, n: usize) -> BytesMut {
        let large = self.bytes.capacity() > self.idle_capacity;
        let taken = self.bytes.split_to(n);
        self.len -= n;
        self.ready_frames = 0;
        self.ascii_until = self.ascii_until.saturating_sub(n);
        self.emptied_large |= large && self.len == 0;
        taken
    }

    /// Drops the first `n` bytes of data (`n <= len`: a frame header, compressed input the
    /// inflater took).
    #[inline]
    pub(super) fn advance(&mut self, n: usize) {
        let large = self.bytes.capacity() > self.idle_capacity;
        self.bytes.advance(n);
        self.len -= n;
        self.ready_frames = 0;
        self.ascii_until = self.ascii_until.saturating_sub(n);
        self.emptied_large |= large && self.len == 0;
    }

    /// Drops all data.
    pub(super) fn clear(&mut self) {
        self.emptied_large |= self.bytes.capacity() > self.idle_capacity;
        self.len = 0;
        self.ascii_until = 0;
        self.ready_frames = 0;
    }

    /// Lets the allocation go entirely if no data is held: the connection is about to be
    /// idle.
    pub(super) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.bytes = BytesMut::new();
            self.emptied_large = false;
            self.offer = MIN_OFFER;
        }
    }

    /// Before new input lands in an empty buffer: a large allocation is reused if nothing
    /// split off it is alive any more, else let go (its last user frees it).
    #[inline]
    fn reuse_or_release(&mut self, additional: usize) {
        if self.len == 0 && core::mem::take(&mut self.emptied_large) {
            self.bytes.clear();
            if !self.bytes.try_reclaim(additional) {
                self.bytes = BytesMut::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_read_into_before_is_offered_again_without_losing_data() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.spare(8)[..3].copy_from_slice(b"abc");
        buf.commit(3);
        // The five bytes past the data were initialized by the first offer: no new zeroing.
        let room = buf.spare(5);
        assert_eq!(room.len(), 5);
        room[..2].copy_from_slice(b"de");
        buf.commit(2);
        assert_eq!(buf.data(), b"abcde");
        buf.extend(b"f");
        assert_eq!(buf.data(), b"abcdef");
        assert_eq!(&buf.split_to(2)[..], b"ab");
        buf.advance(1);
        assert_eq!(buf.data(), b"def");
        // A commit never claims more than was offered.
        buf.spare(1);
        buf.commit(100);
        assert!(buf.len() <= 3 + 5);
    }

    #[test]
    fn a_large_allocation_is_reused_once_its_message_is_dropped() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.extend(&alloc::vec![7; 1 << 20]);
        let address = buf.data().as_ptr();
        let payload = buf.split_to(1 << 20);
        drop(payload);
        buf.extend(&[1; 100]);
        assert_eq!(buf.data().as_ptr(), address, "the same allocation, from its start");
        assert!(buf.capacity() >= 1 << 20);
    }

    #[test]
    fn a_large_allocation_still_shared_by_a_message_is_let_go() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.extend(&alloc::vec![7; 1 << 20]);
        let payload = buf.split_to(1 << 20);
        assert!(buf.spare(16 << 10).len() >= MIN_ROOM);
        assert!(buf.capacity() < 1 << 20, "{}", buf.capacity());
        assert_eq!(payload.len(), 1 << 20);
        // Consumed without a split (as the inflater consumes compressed input): the same.
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.extend(&alloc::vec![0; 1 << 20]);
        buf.advance(1 << 20);
        let kept = buf.split_to(0);
        buf.extend(&[1]);
        assert!(buf.capacity() < 1 << 20, "{}", buf.capacity());
        drop(kept);
    }

    #[test]
    fn the_room_offered_doubles_while_reads_fill_it_and_starts_small_again_after_a_release() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        // A read that does not fill the room leaves the offer where it is.
        let n = buf.spare(64 << 10).len();
        buf.commit(n / 2);
        assert_eq!(buf.spare(64 << 10).len(), n);
        buf.commit(n - n / 2);
        let mut sizes = alloc::vec::Vec::new();
        for _ in 0..4 {
            let n = buf.spare(64 << 10).len();
            sizes.push(n);
            buf.commit(n);
        }
        assert_eq!(sizes[..3], [4 << 10, 8 << 10, 16 << 10]);
        // Doubled again, or what is left of the allocation (its runway) if less but enough.
        assert!((MIN_ROOM..=32 << 10).contains(&sizes[3]), "{sizes:?}");
        buf.clear();
        buf.release_if_empty();
        assert_eq!(buf.spare(64 << 10).len(), MIN_ROOM);
    }

    #[test]
    fn small_reads_walk_through_one_allocation_zeroing_only_what_they_add() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        let room = buf.spare(16 << 10).len();
        assert_eq!(room, MIN_ROOM);
        // The allocation has a runway past the room offered...
        assert!(buf.capacity() >= MIN_ROOM + RUNWAY, "{}", buf.capacity());
        let mut reclaims = 0;
        let mut end = buf.data().as_ptr_range().end;
        for i in 0..1000u32 {
            let room = buf.spare(16 << 10);
            room[..26].copy_from_slice(&[i as u8; 26]);
            buf.commit(26);
            let message = buf.split_to(26);
            assert_eq!(&message[..], &[i as u8; 26]);
            drop(message);
            let now = buf.data().as_ptr_range().end;
            if now < end {
                reclaims += 1;
            }
            end = now;
        }
        // ...so 26 KB of input rewinds to its start about twice, not at every message (each
        // rewind zeroes a whole offer again).
        assert!(reclaims <= 4, "{reclaims} rewinds");
    }

    #[test]
    fn uninitialized_room_takes_reads_without_zeroing_and_keeps_the_data() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.extend(b"ab");
        let mut room = buf.room(16 << 10);
        assert_eq!(room.remaining_mut(), 16 << 10);
        room.put_slice(b"cd");
        buf.commit_room(true);
        assert_eq!(buf.data(), b"abcd");
        // Dropped when the connection no longer takes input.
        buf.room(8).put_slice(b"xyz");
        buf.commit_room(false);
        assert_eq!(buf.data(), b"abcd");
        // Zeroed room and uninitialized room mix.
        buf.spare(4)[..2].copy_from_slice(b"ef");
        buf.commit(2);
        let mut room = buf.room(4);
        room.put_slice(b"gh");
        buf.commit_room(true);
        assert_eq!(buf.data(), b"abcdefgh");
        assert_eq!(&buf.split_to(8)[..], b"abcdefgh");
        // A read that fills the room doubles the next offer, as with `spare`.
        let first = buf.offer(64 << 10);
        buf.room(first).put_slice(&alloc::vec![1; first]);
        buf.commit_room(true);
        assert_eq!(buf.offer(64 << 10), 2 * first);
    }

    #[test]
    fn uninitialized_room_is_at_the_front_again_once_nothing_shares_the_allocation() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.room(1024).put_slice(&[1; 100]);
        buf.commit_room(true);
        let front = buf.data().as_ptr();
        let held = buf.split_to(100);
        // The message still holds the front: the next read goes after it.
        buf.room(1024).put_slice(b"x");
        buf.commit_room(true);
        assert_eq!(buf.data().as_ptr(), front.wrapping_add(100));
        let held_too = buf.split_to(1);
        assert!(held.iter().all(|&b| b == 1) && held_too[..] == *b"x");
        drop((held, held_too));
        // Nothing shares it: reads start at the front again.
        buf.room(1024).put_slice(b"yz");
        buf.commit_room(true);
        assert_eq!((buf.data(), buf.data().as_ptr()), (&b"yz"[..], front));
        // Data held: the room follows it, wherever it is.
        buf.room(1024).put_slice(b"!");
        buf.commit_room(true);
        assert_eq!((buf.data(), buf.data().as_ptr()), (&b"yz!"[..], front));
    }

    #[test]
    fn a_large_allocation_is_zeroed_only_for_reads_into_initialized_room() {
        // A frame's header reserves 1 MiB while the previous message still holds the
        // allocation, so the buffer moves to a new one.
        let reserve_after = |read: fn(&mut ReceiveBuffer)| {
            let mut buf = ReceiveBuffer::new(64 << 10);
            read(&mut buf);
            let held = buf.split_to(4);
            buf.reserve(1 << 20);
            assert_eq!(buf.data(), b"efgh");
            assert!(buf.capacity() >= 4 + (1 << 20));
            drop(held);
            // How much of the new allocation is initialized room past the data.
            buf.bytes.len() - buf.len
        };
        let spare = |buf: &mut ReceiveBuffer| {
            buf.spare(8).copy_from_slice(b"abcdefgh");
            buf.commit(8);
        };
        let room = |buf: &mut ReceiveBuffer| {
            buf.room(8).put_slice(b"abcdefgh");
            buf.commit_room(true);
        };
        let copied = |buf: &mut ReceiveBuffer| buf.extend(b"abcdefgh");
        // `spare` offers initialized room: asked for zeroed, the allocation has all of it.
        assert_eq!(reserve_after(spare), 1 << 20);
        // The others never offer it: zeroing would be for nothing (a memset, when the
        // allocator serves the size from its heap).
        assert_eq!(reserve_after(room), 0);
        assert_eq!(reserve_after(copied), 0);
    }

    #[test]
    fn an_idle_buffer_can_hold_nothing() {
        let mut buf = ReceiveBuffer::new(64 << 10);
        buf.spare(1024);
        buf.commit(100);
        let _ = buf.split_to(100);
        assert!(buf.capacity() > 0);
        buf.release_if_empty();
        assert_eq!(buf.capacity(), 0);
    }
}
