//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, resumable at any offset so a payload
//! can be unmasked piece by piece as it arrives.
//!
//! Short payloads (most frames) take a scalar path, a machine word at a time. Longer ones are
//! XORed in 64-byte blocks, a loop the compiler turns into vector instructions: SSE2 on every
//! x86-64, NEON on every aarch64, and AVX2 on x86-64 CPUs that have it — chosen at run time
//! with `std`, at compile time without.
//!
//! [`extend_masked`] copies and masks in one pass, for the client's outgoing payloads and the
//! server's large copied input: it writes the masked bytes straight into a buffer's spare
//! capacity, so that a payload is neither copied and then read and written again, nor zeroed
//! first. For text, [`extend_masked_checking`] also ORs the words it writes, so the receive path
//! knows an all-ASCII piece is valid UTF-8 without reading it again.
//! From a few hundred bytes (copying) or KiB (in place) both align the vector loop's
//! stores to 32 bytes: a store across a cache line costs about twice as much on Intel cores.
//!
//! This is the crate's only `unsafe` code (the crate denies it elsewhere), each use with its
//! `// SAFETY:` argument: calling the AVX2 builds of the safe loops after checking the CPU has
//! AVX2, writing [`extend_masked`]'s 64-byte blocks into spare capacity, and marking what it
//! wrote as initialized. They pay in `benches/` (AVX2: twice the SSE2 throughput from a few
//! KiB; writing into spare capacity instead of block-wise `extend_from_slice`: 16–64 KiB client
//! frames 15–25 % faster to encode; each block in one copy rather than byte by byte into
//! `MaybeUninit`s, which some builds (`codegen-units = 1`) left as eight 8-byte stores a
//! block: there 16–64 KiB frames fed whole decode in about half the time, and client frames
//! encode 40 % faster).

/// Payloads shorter than this are masked a word at a time: setting up the vector loop costs
/// more than it saves.
const VECTOR_MIN: usize = 64;

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the masked payload.
///
/// Masking and unmasking are the same operation.
///
/// ```
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d, unmasked in two pieces.
/// let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// wscore::apply_mask(&mut data[..2], key, 0);
/// wscore::apply_mask(&mut data[2..], key, 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    apply_mask_checking::<false>(buf, key, offset);
}

/// [`apply_mask`], and with `ASCII` (for text) also whether every byte it leaves is ASCII,
/// found out while masking (the words are in registers anyway), so that text which is all
/// ASCII need not be read again to be validated. `false` without `ASCII`, and for a zero key
/// (nothing is read then).
#[inline]
pub(crate) fn apply_mask_checking<const ASCII: bool>(buf: &mut [u8], key: [u8; 4], offset: usize) -> bool {
    // A zero key leaves the bytes as they are (the receive path zeroes the key of a payload it
    // unmasked while copying it in).
    if key == [0; 4] {
        return false;
    }
    let key = rotate(key, offset);
    let seen = if buf.len() < VECTOR_MIN { mask_words::<ASCII>(buf, key) } else { mask_long::<ASCII>(buf, key) };
    ASCII && seen & HIGH_BITS == 0
}

/// The high bit of each byte of a word: clear in all of them for ASCII.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Payloads at least this long are masked while they are copied by [`extend_masked`]; shorter
/// ones are copied, then masked in place, which costs less for them.
pub(crate) const FUSED_MIN: usize = 256;

/// Appends `src` XORed with `key`, as if `src` started `offset` bytes into the masked payload
/// (as [`apply_mask`]), to `dst`: copying and masking in one pass over the bytes, where the
/// sender or the receive path would otherwise copy a payload and then read and write it again
/// to mask it.
#[inline]
pub(crate) fn extend_masked(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4], offset: usize) {
    extend_masked_checking::<false>(dst, src, key, offset);
}

/// [`extend_masked`], and with `ASCII` (for text) also whether every byte appended is ASCII,
/// found out while copying (the bytes are in registers anyway), so that text which is all
/// ASCII — most of it — need not be read again to be validated. `false` without `ASCII`.
#[inline(always)]
pub(crate) fn extend_masked_checking<const ASCII: bool>(
    dst: &mut bytes::BytesMut,
    src: &[u8],
    key: [u8; 4],
    offset: usize,
) -> bool {
    let key = rotate(key, offset);
    if src.len() < FUSED_MIN { extend_then_mask::<ASCII>(dst, src, key) } else { vector::copy::<ASCII>(dst, src, key) }
}

/// [`extend_masked_checking`] for a few bytes (a tiny read): each is unmasked as it is
/// appended, with no call to copy them first and no word loop to set up. With `ASCII`, also
/// whether every byte appended is ASCII; `false` without. Inlined: for a byte, a call costs
/// more than the work.
#[inline(always)]
pub(crate) fn extend_masked_bytes<const ASCII: bool>(
    dst: &mut bytes::BytesMut,
    src: &[u8],
    key: [u8; 4],
    offset: usize,
) -> bool {
    // No `reserve` first: for the usual single byte it would be a second capacity check.
    let mut seen = 0;
    for (i, &byte) in src.iter().enumerate() {
        let masked = byte ^ key[offset.wrapping_add(i) % 4];
        seen |= masked;
        dst.extend_from_slice(&[masked]);
    }
    ASCII && seen < 0x80
}

/// [`extend_masked_checking`] in two passes, for short payloads (the ASCII check rides on the
/// second, as in [`apply_mask_checking`]).
#[inline(always)]
fn extend_then_mask<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
    let start = dst.len();
    dst.extend_from_slice(src);
    let Some(appended) = dst.get_mut(start..) else { return false };
    apply_mask_checking::<ASCII>(appended, key, 0)
}

/// [`extend_masked`] in 64-byte blocks, XORed straight into the buffer's spare capacity. From
/// [`COPY_ALIGN_MIN`] on the blocks' stores are aligned to 32 bytes: the first block is
/// written where it is, then the loop starts at the first 32-byte boundary of the destination
/// (writing the first block's bytes past it again, the same), because a store across a cache
/// line costs about twice as much on Intel cores (16 KiB: ~35 → ~55 GB/s here).
#[inline(always)]
fn copy_blocks<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
    dst.reserve(src.len());
    // Always there after the `reserve`; were it not, the two-pass way does it all.
    let Some(spare) = dst.spare_capacity_mut().get_mut(..src.len()) else {
        return extend_then_mask::<ASCII>(dst, src, key);
    };
    // The OR of every byte written (when `ASCII`): ASCII if its high bits are clear.
    let mut seen = 0u64;
    let head = match (src.get(..64), spare.get_mut(..64)) {
        (Some(first), Some(to)) if src.len() >= COPY_ALIGN_MIN => {
            seen |= mask_blocks_into::<ASCII>(to, first, key);
            to.as_ptr().align_offset(32).min(32)
        }
        _ => 0,
    };
    let body_key = rotate(key, head);
    let whole = (src.len() - head) / 64 * 64;
    seen |= mask_blocks_into::<ASCII>(&mut spare[head..head + whole], &src[head..head + whole], body_key);
    // The tail (under 64 bytes) as one more block ending where `src` ends, over bytes of the
    // last whole block again (the same), unless `src` is shorter than a block.
    let len = src.len();
    let written = match len.checked_sub(64) {
        Some(last) if head + whole < len => {
            seen |= mask_blocks_into::<ASCII>(&mut spare[last..], &src[last..], rotate(key, last));
            len
        }
        _ => head + whole,
    };
    // SAFETY: `spare` is spare capacity right after `dst`'s length, and its first `written`
    // bytes were all written: `[head, head + whole)` by the loop (`whole` is a multiple of 64,
    // so its 64-byte chunks cover it exactly, and the slice of `src` is as long), `[0, head)` by
    // the first block (`head` is at most 32, and is 0 when there was no first block), and,
    // when `written` is `len`, `[len - 64, len)` by the last block, which reaches back over
    // `head + whole` (less than 64 bytes were left after it).
    #[allow(unsafe_code)]
    unsafe {
        dst.set_len(dst.len() + written);
    }
    let ascii = ASCII && seen & HIGH_BITS == 0;
    if written == len {
        return ascii;
    }
    // Left: the tail of a payload shorter than a block (whole blocks keep the key phase).
    extend_then_mask::<ASCII>(dst, &src[written..], body_key) && ascii
}

/// The 64-byte blocks of [`copy_blocks`]: `to` from `from` (as long, a multiple of 64). Each
/// block is XORed a word at a time into a local array, then written in one copy: the compiler
/// keeps the array in vector registers and writes it with vector stores (written byte by byte
/// into `MaybeUninit`s instead, it was left as eight 8-byte stores a block). With `ASCII`,
/// returns the OR of all the words written (0 otherwise).
#[inline(always)]
fn mask_blocks_into<const ASCII: bool>(to: &mut [core::mem::MaybeUninit<u8>], from: &[u8], key: [u8; 4]) -> u64 {
    let key32 = u32::from_ne_bytes(key);
    let key64 = u64::from(key32) | (u64::from(key32) << 32);
    let mut seen = [0u64; 8];
    for (to, from) in to.chunks_exact_mut(64).zip(from.chunks_exact(64)) {
        let mut block = [0u8; 64];
        for ((word, from), seen) in block.chunks_exact_mut(8).zip(from.chunks_exact(8)).zip(&mut seen) {
            word.copy_from_slice(&mask_word::<ASCII>(from, key64, seen));
        }
        // SAFETY: `to` is a chunk of `chunks_exact_mut(64)`, 64 bytes of memory we may write,
        // and `block` is a local array of 64 bytes, so they do not overlap.
        #[allow(unsafe_code)]
        unsafe {
            core::ptr::copy_nonoverlapping(block.as_ptr(), to.as_mut_ptr().cast::<u8>(), 64);
        }
    }
    seen.iter().fold(0, |all, word| all | word)
}

/// The key as seen from `offset` bytes into the payload.
#[inline(always)]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Byte i of the result is byte (i + offset) % 4 of the key: a rotation of the key read as
    // a little-endian word, in registers.
    let shift = (offset % 4) as u32 * 8;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

/// The 8 bytes of `from` XORed with `key64` (a key repeated twice); with `ASCII`, ORed into
/// `seen` too. The body of every word loop here.
#[inline(always)]
fn mask_word<const ASCII: bool>(from: &[u8], key64: u64, seen: &mut u64) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(from);
    let masked = u64::from_ne_bytes(bytes) ^ key64;
    if ASCII {
        *seen |= masked;
    }
    masked.to_ne_bytes()
}

/// A word at a time, then the tail. With `ASCII`, returns the OR of all the bytes it leaves
/// (spread over a word; 0 otherwise).
#[inline(always)]
fn mask_words<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
    let key32 = u32::from_ne_bytes(key);
    let key64 = u64::from(key32) | (u64::from(key32) << 32);
    let mut seen = 0u64;
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let masked = mask_word::<ASCII>(chunk, key64, &mut seen);
        chunk.copy_from_slice(&masked);
    }
    // Whole 8-byte chunks keep the key phase, so the tail starts at phase 0 of `key`: a 4-byte
    // word (a whole key period) if there is one, then at most 3 bytes.
    let mut tail = chunks.into_remainder();
    if tail.len() >= 4 {
        let (word, rest) = tail.split_at_mut(4);
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(word);
        let masked = u32::from_ne_bytes(bytes) ^ key32;
        if ASCII {
            seen |= u64::from(masked);
        }
        word.copy_from_slice(&masked.to_ne_bytes());
        tail = rest;
    }
    for (byte, k) in tail.iter_mut().zip(key) {
        *byte ^= k;
        if ASCII {
            seen |= u64::from(*byte);
        }
    }
    seen
}

/// 64-byte blocks (a whole number of key periods, so every block starts at phase 0), written
/// so the compiler vectorizes them with whatever the target allows, then the tail.
/// With `ASCII`, returns the OR of all the bytes it leaves, as [`mask_words`].
#[inline(always)]
fn mask_blocks<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
    let key32 = u32::from_ne_bytes(key);
    let key64 = u64::from(key32) | (u64::from(key32) << 32);
    // One accumulator per word of a block, so the ORs vectorize with the XORs.
    let mut seen = [0u64; 8];
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        for (chunk, seen) in block.chunks_exact_mut(8).zip(&mut seen) {
            let masked = mask_word::<ASCII>(chunk, key64, seen);
            chunk.copy_from_slice(&masked);
        }
    }
    // Half a block more, if there is one, at the vectors' width too.
    let mut rest = blocks.into_remainder();
    if rest.len() >= 32 {
        let (half, tail) = rest.split_at_mut(32);
        for (chunk, seen) in half.chunks_exact_mut(8).zip(&mut seen) {
            let masked = mask_word::<ASCII>(chunk, key64, seen);
            chunk.copy_from_slice(&masked);
        }
        rest = tail;
    }
    seen.iter().fold(mask_words::<ASCII>(rest, key), |all, word| all | word)
}

/// A long payload. Past a few KiB, the bytes before the first 32-byte boundary go first, so
/// that the vector loop's loads and stores are aligned (a payload follows a 2–14 byte header,
/// so it rarely is); below that, unaligned vectors cost less than the detour.
/// With `ASCII`, returns the OR of all the bytes it leaves, as [`mask_words`].
fn mask_long<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
    if buf.len() < ALIGN_MIN {
        return vector::mask::<ASCII>(buf, key);
    }
    let head = buf.as_ptr().align_offset(32).min(buf.len());
    let (front, rest) = buf.split_at_mut(head);
    mask_words::<ASCII>(front, key) | vector::mask::<ASCII>(rest, rotate(key, head))
}

/// Payloads at least this long are aligned before the vector loop.
const ALIGN_MIN: usize = 4 << 10;

/// Payloads at least this long (over 1 KiB) have [`copy_blocks`]' stores aligned: it costs
/// one block more, which pays for the payloads of 1460-byte reads (5–15 % faster than from 4
/// KiB on), but not at 1 KiB (frames fed whole: 2 % slower aligned, paired runs of
/// `benches/decode`). Lower than [`ALIGN_MIN`]: aligning in place costs a word-at-a-time head,
/// not one block.
const COPY_ALIGN_MIN: usize = 1025;

/// The vector loop, built for the best instruction set available.
mod vector {
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    pub(super) fn mask<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
        // `is_x86_feature_detected!` caches the CPUID result: one relaxed load after the first.
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `mask_avx2` only requires the CPU to support AVX2, checked just above.
            // Its body is safe code; AVX2 only changes the instructions it compiles to.
            #[allow(unsafe_code)]
            unsafe {
                mask_avx2::<ASCII>(buf, key)
            }
        } else {
            super::mask_blocks::<ASCII>(buf, key)
        }
    }

    /// [`mask_blocks`](super::mask_blocks) compiled with AVX2 (32-byte vectors).
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn mask_avx2<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
        super::mask_blocks::<ASCII>(buf, key)
    }

    /// Without run-time detection (no `std`, another architecture, or AVX2 enabled at compile
    /// time): the target's own vectors.
    #[cfg(not(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2"))))]
    pub(super) fn mask<const ASCII: bool>(buf: &mut [u8], key: [u8; 4]) -> u64 {
        super::mask_blocks::<ASCII>(buf, key)
    }

    /// Inlined into its callers, so that a copy per frame of a batch costs the check and one
    /// call, not a call to a wrapper that then saves registers for another.
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    #[inline(always)]
    pub(super) fn copy<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `copy_avx2` only requires the CPU to support AVX2, checked just above.
            // Its body is safe code; AVX2 only changes the instructions it compiles to.
            #[allow(unsafe_code)]
            unsafe {
                copy_avx2::<ASCII>(dst, src, key)
            }
        } else {
            copy_sse2::<ASCII>(dst, src, key)
        }
    }

    /// [`copy_blocks`](super::copy_blocks) without AVX2, out of line.
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    #[inline(never)]
    fn copy_sse2<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
        super::copy_blocks::<ASCII>(dst, src, key)
    }

    /// [`copy_blocks`](super::copy_blocks) compiled with AVX2.
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn copy_avx2<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
        super::copy_blocks::<ASCII>(dst, src, key)
    }

    #[cfg(not(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2"))))]
    pub(super) fn copy<const ASCII: bool>(dst: &mut bytes::BytesMut, src: &[u8], key: [u8; 4]) -> bool {
        super::copy_blocks::<ASCII>(dst, src, key)
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_mask, mask_blocks};
    use alloc::vec::Vec;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_at_every_length_alignment_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        // Lengths around the scalar/vector switch and several vector blocks; every start
        // alignment within a 32-byte vector; every key phase.
        for start in 0..40 {
            for len in (0..200).chain([255, 256, 257, 511, 512, 513]) {
                for offset in 0..8 {
                    let mut a = data[start..start + len].to_vec();
                    let mut b = a.clone();
                    // `to_vec` realigns; mask in place inside the larger buffer instead.
                    let mut whole = data.clone();
                    apply_mask(&mut whole[start..start + len], key, offset);
                    naive(&mut b, key, offset);
                    assert_eq!(&whole[start..start + len], &b[..], "start {start} len {len} offset {offset}");
                    apply_mask(&mut a, key, offset);
                    assert_eq!(a, b, "copied: len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn the_portable_vector_loop_matches_too() {
        // The loop every target without AVX2 runs, checked even on machines that have it.
        let key = [1, 2, 3, 4];
        for len in [0, 1, 63, 64, 65, 127, 128, 1000] {
            let mut a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut b = a.clone();
            mask_blocks::<false>(&mut a, key);
            naive(&mut b, key, 0);
            assert_eq!(a, b, "len {len}");
        }
    }

    #[test]
    fn masking_text_in_place_tells_whether_every_byte_is_ascii() {
        let key = [0x9a, 0x01, 0x7f, 0xe3];
        let ascii: Vec<u8> = (0..5100).map(|i| b' ' + (i % 90) as u8).collect();
        for len in (0..140).chain([255, 256, 1000, 4095, 4096, 5003]) {
            let positions: Vec<usize> =
                if len < 140 { (0..len).collect() } else { alloc::vec![0, 1, 31, 63, 64, len / 2, len - 8, len - 1] };
            for bad in positions.into_iter().map(Some).chain([None]) {
                let mut plain = ascii[..len].to_vec();
                if let Some(at) = bad {
                    plain[at] = 0x80 | (at as u8);
                }
                for (start, offset) in [(0, 0), (1, 3), (5, 1), (32, 2)] {
                    let mut buf = alloc::vec![0u8; start];
                    buf.extend_from_slice(&plain);
                    naive(&mut buf[start..], key, offset);
                    let all_ascii = super::apply_mask_checking::<true>(&mut buf[start..], key, offset);
                    assert_eq!(&buf[start..], &plain[..], "len {len} bad {bad:?} start {start}");
                    assert_eq!(all_ascii, bad.is_none(), "len {len} bad {bad:?} start {start} offset {offset}");
                    let mut portable = plain.clone();
                    naive(&mut portable, key, 0);
                    let seen = super::mask_blocks::<true>(&mut portable, key);
                    assert_eq!(portable, plain, "portable: len {len} bad {bad:?}");
                    assert_eq!(seen & super::HIGH_BITS == 0, bad.is_none(), "portable: len {len} bad {bad:?}");
                }
            }
        }
        // Without the check, or with a zero key (nothing read), it says nothing.
        let mut buf = ascii[..100].to_vec();
        assert!(!super::apply_mask_checking::<false>(&mut buf, key, 0));
        assert!(!super::apply_mask_checking::<true>(&mut buf, [0; 4], 0));
    }

    #[test]
    fn copying_while_masking_matches_masking_in_place() {
        let key = [0x9a, 0x01, 0x7f, 0xe3];
        let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        for start in 0..33 {
            for len in (0..200).chain([255, 256, 257, 1000, 1967]) {
                let src = &data[start..start + len];
                let mut expect = src.to_vec();
                naive(&mut expect, key, 0);
                // Appended after data already there, as the receive buffer does.
                let mut dst = bytes::BytesMut::from(&b"head"[..]);
                super::extend_masked(&mut dst, src, key, 0);
                assert_eq!(&dst[..4], b"head");
                assert_eq!(&dst[4..], &expect[..], "start {start} len {len}");
                let mut portable = bytes::BytesMut::new();
                super::copy_blocks::<false>(&mut portable, src, key);
                assert_eq!(&portable[..], &expect[..], "portable: start {start} len {len}");
            }
        }
    }

    #[test]
    fn copying_long_payloads_matches_at_every_destination_alignment_and_offset() {
        // From `COPY_ALIGN_MIN` on, the stores are aligned to the destination: every misalignment
        // of it, with the first block's bytes written twice, and every key phase.
        let key = [0x9a, 0x01, 0x7f, 0xe3];
        let data: Vec<u8> = (0..6000).map(|i| (i * 7 + i / 251) as u8).collect();
        let from = super::COPY_ALIGN_MIN;
        for len in [from - 1, from, from + 1, from + 63, from + 64, from + 65, 1460, 4096, 5003] {
            for offset in 0..4 {
                let src = &data[3..3 + len];
                let mut expect = src.to_vec();
                naive(&mut expect, key, offset);
                for before in 0..64 {
                    let mut dst = bytes::BytesMut::with_capacity(before + len);
                    dst.extend_from_slice(&data[..before]);
                    super::extend_masked(&mut dst, src, key, offset);
                    assert_eq!(&dst[..before], &data[..before], "before {before} len {len}");
                    assert_eq!(&dst[before..], &expect[..], "before {before} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn copying_text_tells_whether_every_byte_is_ascii() {
        let key = [0x9a, 0x01, 0x7f, 0xe3];
        let ascii: Vec<u8> = (0..6000).map(|i| b' ' + (i % 90) as u8).collect();
        for len in (0..70).chain([255, 256, 257, 511, 512, 513, 1000, 1460, 4096, 5003]) {
            // Every position of one non-ASCII byte for short lengths, the first, head, middle
            // and tail ones for long.
            let positions: Vec<usize> = if len < 70 {
                (0..len).collect()
            } else {
                alloc::vec![0, 1, 31, 63, 64, len / 2, len - 64, len - 63, len - 1]
            };
            for bad in positions.into_iter().map(Some).chain([None]) {
                let mut plain = ascii[..len].to_vec();
                if let Some(at) = bad {
                    plain[at] = 0x80 | (at as u8);
                }
                for before in [0, 5, 24] {
                    let mut masked = plain.clone();
                    naive(&mut masked, key, 1);
                    let mut dst = bytes::BytesMut::from(&ascii[..before]);
                    let all_ascii = super::extend_masked_checking::<true>(&mut dst, &masked, key, 1);
                    assert_eq!(&dst[before..], &plain[..], "len {len} bad {bad:?} before {before}");
                    assert_eq!(all_ascii, bad.is_none(), "len {len} bad {bad:?} before {before}");
                }
            }
        }
    }

    #[test]
    fn copying_while_masking_resumes_at_any_offset() {
        let key = [0x9a, 0x01, 0x7f, 0xe3];
        let data: Vec<u8> = (0..3000).map(|i| (i * 13) as u8).collect();
        let mut expect = data.clone();
        naive(&mut expect, key, 0);
        for at in [0, 1, 2, 3, 255, 256, 1461, 2999] {
            for end in [at, at + 1, 3000] {
                let mut dst = bytes::BytesMut::new();
                super::extend_masked(&mut dst, &data[..at], key, 0);
                super::extend_masked(&mut dst, &data[at..end], key, at);
                assert_eq!(&dst[..], &expect[..end], "pieces ..{at} and {at}..{end}");
            }
        }
    }

    #[test]
    fn a_zero_key_changes_nothing() {
        let mut data: Vec<u8> = (0..300).map(|i| i as u8).collect();
        let copy = data.clone();
        for offset in 0..4 {
            apply_mask(&mut data, [0; 4], offset);
        }
        assert_eq!(data, copy);
    }

    #[test]
    fn split_anywhere_equals_whole() {
        let key = [1, 2, 3, 4];
        let mut whole: Vec<u8> = (0..1000).map(|i| i as u8).collect();
        for at in [0, 1, 37, 64, 100, 999] {
            let mut parts = whole.clone();
            let (a, b) = parts.split_at_mut(at);
            apply_mask(a, key, 0);
            apply_mask(b, key, at);
            let mut expect = whole.clone();
            naive(&mut expect, key, 0);
            assert_eq!(parts, expect, "split at {at}");
        }
        apply_mask(&mut whole, key, 0);
    }
}
