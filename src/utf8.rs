//! Incremental UTF-8 validation (RFC 6455 §8.1) and the validated [`Utf8Bytes`] buffer.
//!
//! A text message may be split anywhere, even inside a code point, across frames and reads.
//! [`Utf8Validator`] carries at most three bytes of an unfinished code point between chunks and
//! reports an error as soon as a byte makes the stream invalid, not at the end of the message.

use bytes::Bytes;
use core::fmt;

/// The input is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// A streaming UTF-8 validator.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    carry: [u8; 4],
    carry_len: u8,
}

/// Validates a complete piece of UTF-8 (SIMD where the target has it).
#[inline]
pub(crate) fn validate(data: &[u8]) -> Result<(), InvalidUtf8> {
    // Short ASCII (small messages, byte-sized reads): a word-at-a-time check, where simdutf8
    // would hand short input to the standard library's validator.
    if data.len() < SHORT && data.is_ascii() {
        return Ok(());
    }
    simdutf8::basic::from_utf8(data).map(drop).map_err(|_| InvalidUtf8)
}

/// What [`validate`] counts as short.
const SHORT: usize = 64;

/// [`Utf8Validator::feed`] takes input shorter than this a byte at a time.
const FEW: usize = 4;

/// Where an unfinished code point at the end of `data` starts (`data.len()` if none): the
/// last lead byte among the final three, if the sequence it starts needs more bytes than follow.
/// Whether those bytes are valid is for the caller to check.
fn incomplete_tail_start(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=3.min(len) {
        let byte = data[len - back];
        if byte & 0xC0 != 0x80 {
            // A lead byte (or ASCII): unfinished if its sequence is longer than what is left.
            let needed = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xFF => 4,
                _ => 1,
            };
            return if needed > back { len - back } else { len };
        }
    }
    len
}

/// The length of the sequence a valid lead byte starts.
const fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Self { carry: [0; 4], carry_len: 0 }
    }

    /// Validates the next chunk. Fails as soon as the bytes seen so far cannot be the prefix of
    /// valid UTF-8.
    ///
    /// ```
    /// let mut v = wscore::Utf8Validator::new();
    /// let euro = "€".as_bytes(); // e2 82 ac
    /// assert!(v.feed(&euro[..1]).is_ok());
    /// assert!(v.feed(&euro[1..]).is_ok());
    /// assert!(v.finish().is_ok());
    /// assert!(v.feed(&[0xe2, 0x28]).is_err()); // fails before the sequence ends
    /// ```
    #[inline]
    pub fn feed(&mut self, data: &[u8]) -> Result<(), InvalidUtf8> {
        if data.len() < FEW {
            return self.feed_bytes(data);
        }
        self.feed_any(data)
    }

    /// [`feed`](Self::feed), out of line.
    #[inline(never)]
    fn feed_any(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len == 0 && data.len() < SHORT && data.is_ascii() {
            return Ok(());
        }
        if self.carry_len > 0 {
            let have = usize::from(self.carry_len);
            let need = sequence_len(self.carry[0]) - have;
            let take = need.min(data.len());
            self.carry[have..have + take].copy_from_slice(&data[..take]);
            let filled = have + take;
            data = &data[take..];
            match core::str::from_utf8(&self.carry[..filled]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; `data` is exhausted since `take < need`.
                    self.carry_len = filled as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        // Validate all but an unfinished code point at the end with the SIMD validator, then
        // check that the unfinished one is a valid prefix (failing fast) and carry it.
        let split = incomplete_tail_start(data);
        let (whole, tail) = data.split_at(split);
        validate(whole)?;
        if !tail.is_empty() {
            match core::str::from_utf8(tail) {
                Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => {}
                _ => return Err(InvalidUtf8),
            }
            self.carry[..tail.len()].copy_from_slice(tail);
            self.carry_len = tail.len() as u8;
        }
        Ok(())
    }

    /// [`feed`](Self::feed) for a few bytes (reads of a byte or two): one step per byte, the
    /// unfinished code point kept in the carry as the general path keeps it, rather than a
    /// conversion of the carry and a SIMD call set up for each read.
    #[inline]
    fn feed_bytes(&mut self, data: &[u8]) -> Result<(), InvalidUtf8> {
        for &byte in data {
            let have = usize::from(self.carry_len);
            let Some(&lead) = self.carry.get(..have).and_then(<[u8]>::first) else {
                // Between code points: ASCII, or a lead byte that can start a valid sequence.
                match byte {
                    0x00..=0x7F => {}
                    0xC2..=0xF4 => (self.carry[0], self.carry_len) = (byte, 1),
                    _ => return Err(InvalidUtf8),
                }
                continue;
            };
            // A continuation byte, in the narrower range some leads allow right after them
            // (no overlong encodings, surrogates, or code points past U+10FFFF).
            let allowed = match (have, lead) {
                (1, 0xE0) => 0xA0..=0xBF,
                (1, 0xED) => 0x80..=0x9F,
                (1, 0xF0) => 0x90..=0xBF,
                (1, 0xF4) => 0x80..=0x8F,
                _ => 0x80..=0xBF,
            };
            if !allowed.contains(&byte) {
                return Err(InvalidUtf8);
            }
            if have + 1 == sequence_len(lead) {
                self.carry_len = 0;
            } else if let Some(slot) = self.carry.get_mut(have) {
                *slot = byte;
                self.carry_len += 1;
            }
        }
        Ok(())
    }

    /// Ends the message: fails if it stopped inside a code point. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.carry_len == 0;
        self.carry_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Whether the validator holds no unfinished code point.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.carry_len == 0
    }
}

/// An immutable, cheaply cloneable byte buffer that is guaranteed to hold valid UTF-8.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// An empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// Wraps `bytes` after checking that they are valid UTF-8.
    ///
    /// ```
    /// use wscore::Utf8Bytes;
    /// assert_eq!(Utf8Bytes::try_from_bytes("hé".into()).unwrap().as_str(), "hé");
    /// assert!(Utf8Bytes::try_from_bytes(vec![0xff].into()).is_err());
    /// ```
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        validate(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes the caller has already validated (the connection's incremental validator).
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text as a `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // The invariant makes this infallible; re-checking keeps the crate's `unsafe` to the
        // masking module. With the SIMD validator it costs a fraction of what the standard
        // library's check does (`cargo bench --bench primitives -- utf8`: 1 MiB of
        // multi-byte text ~50 µs instead of ~1.7 ms).
        simdutf8::basic::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Unwraps the underlying bytes.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

impl From<alloc::string::String> for Utf8Bytes {
    fn from(s: alloc::string::String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_all_splits(bytes: &[u8], valid: bool) {
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..i]).is_ok()
                    && v.feed(&bytes[i..j]).is_ok()
                    && v.feed(&bytes[j..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, valid, "{bytes:x?} split at {i},{j}");
            }
        }
    }

    #[test]
    fn valid_text_at_every_split() {
        check_all_splits("κόσμε 𝄞 \u{FFFF} \u{FFFE} \u{10FFFF} a€".as_bytes(), true);
    }

    #[test]
    fn invalid_text_at_every_split() {
        for bad in [
            &[0xC0, 0xAF][..],         // overlong '/'
            &[0xE0, 0x80, 0xAF],       // overlong
            &[0xED, 0xA0, 0x80],       // surrogate U+D800
            &[0xF4, 0x90, 0x80, 0x80], // > U+10FFFF
            &[0xF5],                   // never valid
            &[0xCE, 0xBA, 0xE1],       // truncated at the end
            &[0x80],                   // lone continuation
            &[b'a', 0xE2, 0x82, b'b'], // interrupted sequence
        ] {
            check_all_splits(bad, false);
        }
    }

    /// Fed a byte at a time, a sequence fails exactly at the first byte after which no
    /// continuation could make it valid (what the standard library calls an error with a
    /// length), and is whole exactly when the standard library says it is valid.
    #[test]
    fn byte_at_a_time_agrees_with_the_standard_library() {
        let edges = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4,
            0xF5, 0xFF,
        ];
        let mut sequences: alloc::vec::Vec<alloc::vec::Vec<u8>> = alloc::vec::Vec::new();
        for b0 in 0..=255u8 {
            for b1 in 0..=255u8 {
                sequences.push(alloc::vec![b0, b1]);
            }
            for b1 in edges {
                for b2 in edges {
                    sequences.push(alloc::vec![b0, b1, b2]);
                    for b3 in edges {
                        sequences.push(alloc::vec![b0, b1, b2, b3]);
                    }
                }
            }
        }
        for bytes in sequences {
            let mut v = Utf8Validator::new();
            for end in 1..=bytes.len() {
                let dead = core::str::from_utf8(&bytes[..end]).is_err_and(|e| e.error_len().is_some());
                assert_eq!(v.feed(&bytes[end - 1..end]).is_err(), dead, "{bytes:x?} at byte {end}");
                if dead {
                    break;
                }
                if end == bytes.len() {
                    assert_eq!(v.is_complete(), core::str::from_utf8(&bytes).is_ok(), "{bytes:x?}");
                }
            }
        }
    }

    #[test]
    fn fails_fast_inside_a_sequence() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xF4]).is_ok());
        assert!(v.feed(&[0x90]).is_err(), "F4 90 can never be valid");
    }

    #[test]
    fn short_ascii_after_an_unfinished_sequence_is_invalid() {
        for ascii in [&b"a"[..], b"abc", &[b'x'; 63], &[b'x'; 64]] {
            let mut v = Utf8Validator::new();
            assert!(v.feed(&[0xE2, 0x82]).is_ok());
            assert!(v.feed(ascii).is_err(), "{} ASCII bytes", ascii.len());
        }
        assert!(validate(&[b'x'; 63]).is_ok() && validate(b"").is_ok());
        assert!(validate(b"abc\xFF").is_err() && validate(&[0x80]).is_err());
    }
}
