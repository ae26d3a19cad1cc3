//! The inputs every benchmark feeds: deterministic payloads (binary, ASCII text, multi-byte
//! UTF-8 text, JSON) and masked client-to-server frames (RFC 6455 §5.2, §5.3), built here
//! rather than with wscore's own encoder so a bug in it cannot shape the input.

// Each benchmark binary uses a different part of this module.
#![allow(dead_code)]

/// Payload sizes shared by the decode and encode benchmarks: empty, tiny, both sides of the
/// 7-bit/16-bit length boundary, a typical message, a read buffer, the 16/64-bit boundary, large.
pub(crate) const SIZES: [usize; 8] = [0, 20, 125, 126, 1 << 10, 16 << 10, 64 << 10, 1 << 20];

/// Messages per timed iteration: enough that per-iteration overhead (rewinding a stream,
/// entering a runtime) disappears for small frames, one for large ones.
pub(crate) fn batch(payload_len: usize) -> usize {
    ((64 << 10) / payload_len.max(256)).clamp(1, 64)
}

/// A small xorshift generator: the same bytes on every run and machine.
#[derive(Debug, Clone)]
pub(crate) struct Xorshift(u64);

impl Xorshift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_le_bytes()
    }
}

/// Incompressible bytes.
pub(crate) fn binary(len: usize) -> Vec<u8> {
    let mut rng = Xorshift::new(0x5EED);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// ASCII text (a chat-like stream of words).
pub(crate) fn ascii_text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] =
        ["hello", "world", "socket", "frame", "the", "of", "message", "quick", "brown", "fox", "42", "ok"];
    let mut rng = Xorshift::new(7);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.below(8) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Valid UTF-8 of exactly `len` bytes, mostly 2-, 3- and 4-byte code points (Greek, CJK, emoji)
/// with some ASCII, so validators cannot take an all-ASCII fast path.
pub(crate) fn multibyte_text(len: usize) -> Vec<u8> {
    const PIECES: [&str; 8] = ["κόσμε", "日本語", "🎉", "wörld", " ", "€", "мир", "𝄞"];
    let mut rng = Xorshift::new(11);
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        text.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
    }
    let mut cut = len;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    while text.len() < len {
        text.push('a');
    }
    text.into_bytes()
}

/// A JSON-like document of exactly `len` bytes (an array of records with repeated keys and
/// varying values): what permessage-deflate is typically asked to compress.
pub(crate) fn json(len: usize) -> Vec<u8> {
    const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let mut rng = Xorshift::new(3);
    let mut out = String::from("[");
    let mut id = 0u64;
    while out.len() < len {
        id += 1;
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        out.push_str(&format!(
            "{{\"id\":{id},\"user\":\"{name}\",\"score\":{},\"active\":{},\"tags\":[\"t{}\",\"t{}\"],\"ts\":{}}},",
            rng.below(100_000),
            rng.below(2) == 0,
            rng.below(50),
            rng.below(50),
            1_700_000_000 + rng.below(10_000_000),
        ));
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len.saturating_sub(1));
    bytes.push(b']');
    bytes.truncate(len);
    bytes
}

/// Opcodes used to build frames.
pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;

/// Appends one frame carrying `payload` (masked with `key` if given) to `out`.
pub(crate) fn push_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) {
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len() + if key.is_some() { 4 } else { 0 };
    if let Some(key) = key {
        out.extend_from_slice(&key);
    }
    out.extend_from_slice(payload);
    if let Some(key) = key {
        for (i, byte) in out[start..].iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
}

/// `count` copies of a single-frame masked message (each with its own key), back to back.
pub(crate) fn masked_messages(opcode: u8, payload: &[u8], count: usize) -> Vec<u8> {
    let mut rng = Xorshift::new(99);
    let mut out = Vec::with_capacity(count * (payload.len() + 14));
    for _ in 0..count {
        push_frame(&mut out, true, opcode, payload, Some(rng.key()));
    }
    out
}

/// `count` copies of a message split into `fragments` masked frames of (nearly) equal size. The
/// cut points ignore code points, so text fragments may end inside a character.
pub(crate) fn fragmented_messages(opcode: u8, payload: &[u8], fragments: usize, count: usize) -> Vec<u8> {
    let mut rng = Xorshift::new(1234);
    let mut out = Vec::with_capacity(count * (payload.len() + 14 * fragments));
    let piece = payload.len().div_ceil(fragments.max(1)).max(1);
    for _ in 0..count {
        let pieces: Vec<&[u8]> = payload.chunks(piece).collect();
        for (i, chunk) in pieces.iter().enumerate() {
            let op = if i == 0 { opcode } else { CONTINUATION };
            push_frame(&mut out, i + 1 == pieces.len(), op, chunk, Some(rng.key()));
        }
    }
    out
}
