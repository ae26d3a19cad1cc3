//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, resumable at any offset so a payload
//! can be unmasked piece by piece as it arrives.
//!
//! Short payloads (most frames) take a scalar path, a machine word at a time. Longer ones are
//! XORed in 64-byte blocks, a loop the compiler turns into vector instructions: SSE2 on every
//! x86-64, NEON on every aarch64, and AVX2 on x86-64 CPUs that have it — chosen at run time
//! with `std` (the one `unsafe` call in the crate, below), at compile time without.

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
    let key = rotate(key, offset);
    if buf.len() < VECTOR_MIN {
        mask_words(buf, key);
    } else {
        mask_long(buf, key);
    }
}

/// The key as seen from `offset` bytes into the payload.
#[inline(always)]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = offset % 4;
    [key[shift], key[(shift + 1) % 4], key[(shift + 2) % 4], key[(shift + 3) % 4]]
}

/// A word at a time, then the tail byte by byte.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let key32 = u32::from_ne_bytes(key);
    let key64 = u64::from(key32) | (u64::from(key32) << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ key64).to_ne_bytes());
    }
    // Whole 8-byte chunks keep the key phase, so the tail starts at phase 0 of `key`.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// 64-byte blocks (a whole number of key periods, so every block starts at phase 0), written
/// so the compiler vectorizes them with whatever the target allows, then the tail.
#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let key32 = u32::from_ne_bytes(key);
    let key64 = u64::from(key32) | (u64::from(key32) << 32);
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        for chunk in block.chunks_exact_mut(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ key64).to_ne_bytes());
        }
    }
    mask_words(blocks.into_remainder(), key);
}

/// A long payload. Past a few KiB, the bytes before the first 32-byte boundary go first, so
/// that the vector loop's loads and stores are aligned (a payload follows a 2–14 byte header,
/// so it rarely is); below that, unaligned vectors cost less than the detour.
fn mask_long(buf: &mut [u8], key: [u8; 4]) {
    let head = if buf.len() >= ALIGN_MIN { buf.as_ptr().align_offset(32).min(buf.len()) } else { 0 };
    let (front, rest) = buf.split_at_mut(head);
    mask_words(front, key);
    vector::mask(rest, rotate(key, head));
}

/// Payloads at least this long are aligned before the vector loop.
const ALIGN_MIN: usize = 4 << 10;

/// The vector loop, built for the best instruction set available.
mod vector {
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    pub(super) fn mask(buf: &mut [u8], key: [u8; 4]) {
        // `is_x86_feature_detected!` caches the CPUID result: one relaxed load after the first.
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `mask_avx2` only requires the CPU to support AVX2, checked just above.
            // Its body is safe code; AVX2 only changes the instructions it compiles to.
            #[allow(unsafe_code)]
            unsafe {
                mask_avx2(buf, key);
            }
        } else {
            super::mask_blocks(buf, key);
        }
    }

    /// [`mask_blocks`](super::mask_blocks) compiled with AVX2 (32-byte vectors).
    #[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
        super::mask_blocks(buf, key);
    }

    /// Without run-time detection (no `std`, another architecture, or AVX2 enabled at compile
    /// time): the target's own vectors.
    #[cfg(not(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2"))))]
    pub(super) fn mask(buf: &mut [u8], key: [u8; 4]) {
        super::mask_blocks(buf, key);
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
            mask_blocks(&mut a, key);
            naive(&mut b, key, 0);
            assert_eq!(a, b, "len {len}");
        }
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
