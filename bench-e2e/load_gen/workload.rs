//! What the load generator sends and what it expects back: masked client frames (RFC 6455
//! §5.2, §5.3) built by hand, once, cycling through a few payloads; and which bytes of each echo
//! are compared with what was sent.

use std::ops::Range;

/// Different payloads the messages cycle through, so a reordered or repeated echo is caught.
pub(crate) const VARIANTS: usize = 4;
/// `--verify sample`: every this many messages are compared whole.
const FULL_CHECK_EVERY: u64 = 16;
/// `--verify sample`: bytes compared at each end of the other messages.
pub(crate) const SAMPLE_EDGE: usize = 32;
/// From this message size on, the bytes between the compared ends are discarded unread where
/// the OS allows it (see `EchoParser::next_read`): copying them would cost the load generator
/// as much as the server's own copies.
const DISCARD_FROM: usize = 64 << 10;

/// How much of every echo is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Every byte.
    Full,
    /// Every 16th message whole, the first and last [`SAMPLE_EDGE`] bytes of the others.
    Sample,
}

/// Everything sent and expected, built once.
#[derive(Debug)]
pub(crate) struct Workload {
    /// The data opcode (1 text, 2 binary).
    pub(crate) opcode: u8,
    /// Payload bytes per message.
    pub(crate) size: usize,
    /// Bytes per masked client frame.
    frame_len: usize,
    /// `VARIANTS + in_flight` frames back to back: frame `i` carries payload `i % VARIANTS`, so
    /// any run of up to `in_flight` messages starting at any variant is one contiguous slice.
    pub(crate) frames: Vec<u8>,
    /// The unmasked payload of each variant, what the echoes must carry.
    pub(crate) payloads: Vec<Vec<u8>>,
    verify: Verify,
}

impl Workload {
    pub(crate) fn new(size: usize, in_flight: usize, text: bool, verify: Verify) -> Self {
        let payloads: Vec<Vec<u8>> = (0..VARIANTS).map(|v| payload(size, v as u64, text)).collect();
        let opcode = if text { 0x1 } else { 0x2 };
        let encoded: Vec<Vec<u8>> = payloads.iter().enumerate().map(|(v, p)| client_frame(opcode, p, v)).collect();
        let frame_len = encoded[0].len();
        let mut frames = Vec::with_capacity(frame_len * (VARIANTS + in_flight));
        for i in 0..VARIANTS + in_flight {
            frames.extend_from_slice(&encoded[i % VARIANTS]);
        }
        Self { opcode, size, frame_len, frames, payloads, verify }
    }

    /// The bytes of `count` messages starting with message number `seq`.
    pub(crate) fn run(&self, seq: u64, count: usize) -> Range<usize> {
        let first = (seq % VARIANTS as u64) as usize;
        first * self.frame_len..(first + count) * self.frame_len
    }

    fn full_check(&self, seq: u64) -> bool {
        self.verify == Verify::Full || seq % FULL_CHECK_EVERY == 0
    }

    /// Whether uncompared payload bytes are worth discarding unread.
    pub(crate) fn discards(&self) -> bool {
        cfg!(target_os = "linux") && self.verify == Verify::Sample && self.size >= DISCARD_FROM
    }

    /// From `offset` in message `seq`: how many bytes on are not compared (0 if the next is).
    pub(crate) fn unchecked_run(&self, seq: u64, offset: usize) -> usize {
        let tail = self.size.saturating_sub(SAMPLE_EDGE);
        if self.full_check(seq) || offset < SAMPLE_EDGE || offset >= tail { 0 } else { tail - offset }
    }

    /// From `offset` in message `seq`: how many bytes on are compared before an uncompared run
    /// or the end of the message.
    pub(crate) fn checked_run(&self, seq: u64, offset: usize) -> usize {
        let tail = self.size.saturating_sub(SAMPLE_EDGE);
        if self.full_check(seq) || offset >= tail {
            self.size - offset.min(self.size)
        } else if offset < SAMPLE_EDGE {
            SAMPLE_EDGE.min(tail) - offset
        } else {
            0
        }
    }

    /// Compares `data`, found at `offset` in the echo of message `seq`, with what was sent (the
    /// parts `--verify` asks for).
    pub(crate) fn check(&self, seq: u64, offset: usize, data: &[u8]) -> Result<(), String> {
        let expected = &self.payloads[(seq % VARIANTS as u64) as usize];
        let end = offset + data.len();
        let compare = |from: usize, to: usize| -> Result<(), String> {
            let (from, to) = (from.max(offset), to.min(end));
            if from < to && data[from - offset..to - offset] != expected[from..to] {
                return Err(format!("echo of message {seq} differs from what was sent within bytes {from}..{to}"));
            }
            Ok(())
        };
        if self.full_check(seq) {
            compare(0, self.size)
        } else {
            compare(0, SAMPLE_EDGE)?;
            compare(self.size.saturating_sub(SAMPLE_EDGE), self.size)
        }
    }
}

/// A deterministic payload (xorshift), different for every variant; printable ASCII for text.
fn payload(size: usize, variant: u64, text: bool) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (variant + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = (state >> 24) as u8;
            if text { b' ' + byte % 95 } else { byte }
        })
        .collect()
}

/// One masked, final client frame (RFC 6455 §5.2), built by hand.
fn client_frame(opcode: u8, payload: &[u8], variant: usize) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d ^ variant as u8];
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_and_contiguous() {
        let work = Workload::new(1000, 3, false, Verify::Full);
        assert_eq!(work.frames.len(), work.frame_len * (VARIANTS + 3));
        let range = work.run(3, 3);
        assert_eq!(range.len(), 3 * work.frame_len);
        let frame = &work.frames[range.start..range.start + work.frame_len];
        assert_eq!(frame[0], 0x82);
        assert_eq!(frame[1], 0x80 | 126);
        let mask = &frame[4..8];
        let unmasked: Vec<u8> = frame[8..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(unmasked, work.payloads[3]);
    }

    #[test]
    fn checked_and_unchecked_runs_tile_the_message() {
        let work = Workload::new(1000, 1, false, Verify::Sample);
        // Message 1 is sampled: 32 compared, 936 not, 32 compared.
        assert_eq!((work.checked_run(1, 0), work.unchecked_run(1, 0)), (32, 0));
        assert_eq!((work.checked_run(1, 32), work.unchecked_run(1, 32)), (0, 936));
        assert_eq!((work.checked_run(1, 968), work.unchecked_run(1, 968)), (32, 0));
        // Message 16 is compared whole.
        assert_eq!((work.checked_run(16, 40), work.unchecked_run(16, 40)), (960, 0));
    }
}
