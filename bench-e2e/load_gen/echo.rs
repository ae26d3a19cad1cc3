//! Reading the echoes: the server's unmasked frames (RFC 6455 §5.2) parsed as they arrive, in
//! pieces of any size, and checked against the workload: FIN/RSV bits, opcodes (continuation
//! frames and interleaved pings and pongs allowed, §5.4), each message's total length, and the
//! payload bytes that `--verify` asks for.

use crate::workload::{SAMPLE_EDGE, Workload};

/// The longest frame header (§5.2) plus the compared start of a payload: what a read at a
/// frame boundary takes when uncompared bytes are to be discarded.
const HEADER_AND_EDGE: usize = 14 + SAMPLE_EDGE;

/// What to do with the next bytes on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextRead {
    /// Read up to this many bytes and [`feed`](EchoParser::feed) them.
    Copy(usize),
    /// This many bytes are payload nobody compares: [`discard`](EchoParser::discard) them
    /// (the socket can drop them without copying).
    Discard(usize),
}

/// Parses the echoes and counts the whole ones.
#[derive(Debug, Default)]
pub(crate) struct EchoParser {
    header: [u8; 10],
    /// Header bytes seen of the current frame.
    have: usize,
    /// Payload bytes of the current frame still to come (`None`: reading a header).
    frame_left: Option<usize>,
    /// The current frame is a control frame (skipped; only ping and pong are allowed).
    control: bool,
    /// The current frame ends its message.
    fin: bool,
    /// Payload bytes of the current message seen so far (`None`: between messages).
    message_offset: Option<usize>,
    /// Whole echoes received.
    pub(crate) received: u64,
}

impl EchoParser {
    /// Consumes `data`; returns how many echoes it completed.
    pub(crate) fn feed(&mut self, mut data: &[u8], work: &Workload) -> Result<u64, String> {
        let before = self.received;
        while !data.is_empty() {
            let Some(left) = self.frame_left else {
                let need = match self.have {
                    0 | 1 => 2,
                    _ => match self.header[1] & 0x7f {
                        126 => 4,
                        127 => 10,
                        _ => 2,
                    },
                };
                let take = (need - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have == need && (need > 2 || self.header[1] & 0x7f < 126) {
                    self.start_frame(work)?;
                }
                continue;
            };
            let take = left.min(data.len());
            if !self.control {
                let offset = self.message_offset.unwrap_or(0);
                work.check(self.received, offset, &data[..take])?;
                self.message_offset = Some(offset + take);
            }
            data = &data[take..];
            self.advance(left, take, work)?;
        }
        Ok(self.received - before)
    }

    /// What the next read should be, at most `max` bytes: everything, unless the workload
    /// discards uncompared payload, in which case reads stop where such a run starts.
    pub(crate) fn next_read(&self, work: &Workload, max: usize) -> NextRead {
        if !work.discards() {
            return NextRead::Copy(max);
        }
        let want = match self.frame_left {
            Some(left) if !self.control => {
                let offset = self.message_offset.unwrap_or(0);
                let unchecked = work.unchecked_run(self.received, offset).min(left);
                if unchecked > 0 {
                    return NextRead::Discard(unchecked.min(max));
                }
                let checked = work.checked_run(self.received, offset);
                // Past the frame's end comes a header: take it with the next compared bytes.
                if checked < left { checked } else { left + HEADER_AND_EDGE }
            }
            Some(left) => left + HEADER_AND_EDGE,
            None => HEADER_AND_EDGE - self.have,
        };
        NextRead::Copy(want.clamp(1, max))
    }

    /// Consumes `n` payload bytes that [`next_read`](Self::next_read) said to discard.
    pub(crate) fn discard(&mut self, n: usize, work: &Workload) -> Result<u64, String> {
        let before = self.received;
        match (self.frame_left, self.message_offset) {
            (Some(left), Some(offset)) if !self.control && n <= left => {
                self.message_offset = Some(offset + n);
                self.advance(left, n, work)?;
            }
            _ => return Err("discarded bytes that were not payload (load generator bug)".into()),
        }
        Ok(self.received - before)
    }

    fn advance(&mut self, left: usize, taken: usize, work: &Workload) -> Result<(), String> {
        self.frame_left = Some(left - taken);
        if left == taken {
            self.end_frame(work)?;
        }
        Ok(())
    }

    fn start_frame(&mut self, work: &Workload) -> Result<(), String> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let h = &self.header;
        let len = match b1 & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            short => u64::from(short),
        };
        if b1 & 0x80 != 0 {
            return Err("the server sent a masked frame".into());
        }
        if b0 & 0x70 != 0 {
            return Err(format!("the server set RSV bits ({b0:#04x}): was an extension negotiated?"));
        }
        let opcode = b0 & 0x0f;
        self.fin = b0 & 0x80 != 0;
        self.control = opcode & 0x8 != 0;
        match (opcode, self.message_offset) {
            (0x8, _) => return Err("the server sent a close frame".into()),
            (0x9 | 0xa, _) if len <= 125 && self.fin => {}
            (op, None) if op == work.opcode => self.message_offset = Some(0),
            (0x0, Some(_)) => {}
            (op, at) => return Err(format!("unexpected frame: opcode {op:#x} (inside a message: {})", at.is_some())),
        }
        let len = usize::try_from(len).map_err(|_| "frame too long for this machine".to_string())?;
        if !self.control && self.message_offset.unwrap_or(0) + len > work.size {
            return Err(format!("echo of message {} is longer than the {} bytes sent", self.received, work.size));
        }
        self.have = 0;
        self.frame_left = Some(len);
        if len == 0 {
            self.end_frame(work)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, work: &Workload) -> Result<(), String> {
        self.frame_left = None;
        if self.control || !self.fin {
            return Ok(());
        }
        let got = self.message_offset.take().unwrap_or(0);
        if got != work.size {
            return Err(format!("echo of message {} has {got} bytes, {} were sent", self.received, work.size));
        }
        self.received += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Verify;

    fn server_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Two echoes: one whole, one in two fragments with a ping between them.
    fn two_echoes(work: &Workload) -> Vec<u8> {
        let size = work.size;
        let mut stream = server_frame(work.opcode, true, &work.payloads[0]);
        let p = &work.payloads[1];
        stream.extend(server_frame(work.opcode, false, &p[..size / 2]));
        stream.extend(server_frame(9, true, b"hi"));
        stream.extend(server_frame(0, true, &p[size / 2..]));
        stream
    }

    #[test]
    fn parses_whole_fragmented_and_split_echoes() {
        for size in [0, 20, 200, 70_000] {
            let work = Workload::new(size, 2, false, Verify::Full);
            let stream = two_echoes(&work);
            for chunk in [1, 7, stream.len()] {
                let mut parser = EchoParser::default();
                let mut done = 0;
                for piece in stream.chunks(chunk) {
                    done += parser.feed(piece, &work).unwrap();
                }
                assert_eq!(done, 2, "size {size}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn discarding_reads_cover_the_stream() {
        let work = Workload::new(200_000, 2, false, Verify::Sample);
        let stream = two_echoes(&work);
        let mut parser = EchoParser::default();
        let (mut at, mut done, mut discarded) = (0, 0, 0);
        while at < stream.len() {
            match parser.next_read(&work, 1 << 20) {
                NextRead::Copy(n) => {
                    let n = n.min(stream.len() - at);
                    done += parser.feed(&stream[at..at + n], &work).unwrap();
                    at += n;
                }
                NextRead::Discard(n) => {
                    done += parser.discard(n, &work).unwrap();
                    at += n;
                    discarded += n;
                }
            }
        }
        assert_eq!(done, 2);
        // Message 0 is compared whole; most of message 1 is discarded.
        if work.discards() {
            assert!(discarded > 190_000, "discarded {discarded}");
        }
    }

    #[test]
    fn rejects_wrong_echoes() {
        let work = Workload::new(100, 1, false, Verify::Sample);
        let wrong_order = server_frame(2, true, &work.payloads[1]);
        assert!(EchoParser::default().feed(&wrong_order, &work).is_err());
        let short = server_frame(2, true, &work.payloads[0][..99]);
        assert!(EchoParser::default().feed(&short, &work).is_err());
        let mut corrupt = work.payloads[0].clone();
        corrupt[3] ^= 1;
        assert!(EchoParser::default().feed(&server_frame(2, true, &corrupt), &work).is_err());
        assert!(EchoParser::default().feed(&server_frame(1, true, &work.payloads[0]), &work).is_err());
        assert!(EchoParser::default().feed(&server_frame(8, true, &[3, 232]), &work).is_err());
        let mut masked = server_frame(2, true, &work.payloads[0]);
        masked[1] |= 0x80;
        assert!(EchoParser::default().feed(&masked, &work).is_err());
    }
}
