//! Incremental UTF-8 validation (RFC 6455 §8.1) and the validated [`Utf8Bytes`] buffer.
//!
//! A text message may be split anywhere, even inside a code point, across frames and reads.
//! [`Utf8Validator`] carries where it stands in an unfinished code point between chunks (one
//! byte of state, for the up to three bytes of it seen) and reports an error as soon as a byte
//! makes the stream invalid, not at the end of the message.

use bytes::Bytes;
use core::fmt;

/// The input is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// A streaming UTF-8 validator.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Where the input stands: [`ACCEPT`] between code points, else how much of which
    /// unfinished code point it is in ([`step`]). One byte stands in for the up to three bytes
    /// of the code point seen so far: what may follow is all that matters.
    state: u8,
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

// The byte-at-a-time validator: a finite automaton over RFC 3629's grammar of UTF-8 (§4), whose
// states say what the next byte may be. Bytes fall into classes by what they can be: ASCII,
// continuation bytes in three ranges (some leads narrow the byte after them to one or two of
// them, which rules out overlong forms, surrogates and code points past U+10FFFF), the leads,
// and bytes never valid.
const ASCII: u8 = 0;
const CONT_80: u8 = 1; // 80..8F
const CONT_90: u8 = 2; // 90..9F
const CONT_A0: u8 = 3; // A0..BF
const LEAD_2: u8 = 4; // C2..DF
const LEAD_E0: u8 = 5;
const LEAD_3: u8 = 6; // E1..EC, EE, EF
const LEAD_ED: u8 = 7;
const LEAD_F0: u8 = 8;
const LEAD_4: u8 = 9; // F1..F3
const LEAD_F4: u8 = 10;
const NEVER: u8 = 11; // C0, C1, F5..FF
const CLASSES: u8 = 12;

// States, as multiples of `CLASSES` so that a step is one lookup of `state + class`.
/// Between code points.
const ACCEPT: u8 = 0;
/// Invalid: no continuation can make the input valid (it stays so).
const REJECT: u8 = CLASSES;
/// One more continuation byte to come.
const NEED_1: u8 = 2 * CLASSES;
/// Two more.
const NEED_2: u8 = 3 * CLASSES;
/// Three more.
const NEED_3: u8 = 4 * CLASSES;
/// After E0: A0..BF, then one more (no overlong 3-byte forms).
const AFTER_E0: u8 = 5 * CLASSES;
/// After ED: 80..9F, then one more (no surrogates).
const AFTER_ED: u8 = 6 * CLASSES;
/// After F0: 90..BF, then two more (no overlong 4-byte forms).
const AFTER_F0: u8 = 7 * CLASSES;
/// After F4: 80..8F, then two more (nothing past U+10FFFF).
const AFTER_F4: u8 = 8 * CLASSES;

const fn class_of(byte: u8) -> u8 {
    match byte {
        0x00..=0x7F => ASCII,
        0x80..=0x8F => CONT_80,
        0x90..=0x9F => CONT_90,
        0xA0..=0xBF => CONT_A0,
        0xC2..=0xDF => LEAD_2,
        0xE0 => LEAD_E0,
        0xED => LEAD_ED,
        0xE1..=0xEF => LEAD_3,
        0xF0 => LEAD_F0,
        0xF1..=0xF3 => LEAD_4,
        0xF4 => LEAD_F4,
        _ => NEVER,
    }
}

const fn next_state(state: u8, class: u8) -> u8 {
    let continuation = matches!(class, CONT_80 | CONT_90 | CONT_A0);
    let (allowed, then) = match state {
        ACCEPT => {
            return match class {
                ASCII => ACCEPT,
                LEAD_2 => NEED_1,
                LEAD_E0 => AFTER_E0,
                LEAD_3 => NEED_2,
                LEAD_ED => AFTER_ED,
                LEAD_F0 => AFTER_F0,
                LEAD_4 => NEED_3,
                LEAD_F4 => AFTER_F4,
                _ => REJECT,
            };
        }
        NEED_1 => (continuation, ACCEPT),
        NEED_2 => (continuation, NEED_1),
        NEED_3 => (continuation, NEED_2),
        AFTER_E0 => (class == CONT_A0, NEED_1),
        AFTER_ED => (class == CONT_80 || class == CONT_90, NEED_1),
        AFTER_F0 => (class == CONT_90 || class == CONT_A0, NEED_2),
        AFTER_F4 => (class == CONT_80, NEED_2),
        _ => (false, REJECT),
    };
    if allowed { then } else { REJECT }
}

/// Each byte's class.
static CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = class_of(byte as u8);
        byte += 1;
    }
    table
};

/// `state + class` to the next state (256 entries, so that a `u8` index needs no bounds check;
/// past the last state, [`REJECT`]).
static NEXT: [u8; 256] = {
    let mut table = [REJECT; 256];
    let mut state = 0;
    while state <= AFTER_F4 {
        let mut class = 0;
        while class < CLASSES {
            table[(state + class) as usize] = next_state(state, class);
            class += 1;
        }
        state += CLASSES;
    }
    table
};

/// The state after `byte` in `state`.
#[inline(always)]
fn step(state: u8, byte: u8) -> u8 {
    NEXT[usize::from(state.wrapping_add(CLASS[usize::from(byte)]))]
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Self { state: ACCEPT }
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

    /// [`feed`](Self::feed), for bytes the caller found to be all ASCII or not (`ascii`) while
    /// it copied or unmasked them: ASCII after a complete code point needs no validating (after
    /// an unfinished one it is invalid, which `feed` says).
    #[inline(always)]
    pub(crate) fn feed_seen(&mut self, data: &[u8], ascii: bool) -> Result<(), InvalidUtf8> {
        if ascii && self.is_complete() {
            return Ok(());
        }
        self.feed(data)
    }

    /// [`feed`](Self::feed), out of line.
    #[inline(never)]
    fn feed_any(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.state == ACCEPT && data.len() < SHORT && data.is_ascii() {
            return Ok(());
        }
        // The rest of an unfinished code point (at most three bytes), a step at a time.
        while self.state != ACCEPT {
            let Some((&byte, rest)) = data.split_first() else {
                return Ok(());
            };
            self.state = step(self.state, byte);
            if self.state == REJECT {
                return Err(InvalidUtf8);
            }
            data = rest;
        }
        // All but an unfinished code point at the end with the SIMD validator, then the
        // unfinished one a step at a time (failing fast if it cannot be finished).
        let (whole, tail) = data.split_at(incomplete_tail_start(data));
        validate(whole)?;
        self.feed_bytes(tail)
    }

    /// [`feed`](Self::feed) for a few bytes (reads of a byte or two, the end of a chunk): a
    /// step per byte, rather than a SIMD call set up for each. Out of line: inlined into the
    /// receive path's handling of byte-sized reads, it slowed their ASCII case (for which it
    /// is not called) by 5 %.
    #[inline(never)]
    fn feed_bytes(&mut self, data: &[u8]) -> Result<(), InvalidUtf8> {
        // REJECT is for good: one test at the end.
        let state = data.iter().fold(self.state, |state, &byte| step(state, byte));
        self.state = state;
        if state == REJECT { Err(InvalidUtf8) } else { Ok(()) }
    }

    /// Ends the message: fails if it stopped inside a code point. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.state == ACCEPT;
        self.state = ACCEPT;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Whether the validator holds no unfinished code point.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.state == ACCEPT
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
            // The first byte, then the rest with ASCII after it, long enough for the general
            // path: it finishes the code point a step at a time, then validates the rest.
            let mut rest = bytes[1..].to_vec();
            rest.extend_from_slice(b"abcd");
            let mut whole = bytes.clone();
            whole.extend_from_slice(b"abcd");
            let mut v = Utf8Validator::new();
            let ok = v.feed(&bytes[..1]).is_ok() && v.feed(&rest).is_ok() && v.finish().is_ok();
            assert_eq!(ok, core::str::from_utf8(&whole).is_ok(), "{bytes:x?} in two");
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
