//! Stateless frame header codec (RFC 6455 §5.2): parse and encode the 2–14 byte header.
//!
//! Nothing here allocates. Rules that depend only on the header (reserved opcodes, control
//! frame size and fragmentation, the 64-bit length's top bit, minimal length encoding) are
//! enforced by [`FrameHeader::parse`]; rules that depend on connection state (masking direction,
//! RSV bits claimed by extensions, message sequencing) are enforced by the connection.

use crate::error::ProtocolError;

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes are rejected by the parser and cannot be
/// represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: first frame of a text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// Decodes the low four bits of the first header byte.
    ///
    /// ```
    /// use wscore::OpCode;
    /// assert_eq!(OpCode::from_u8(0x9), Ok(OpCode::Ping));
    /// assert!(OpCode::from_u8(0x3).is_err());
    /// ```
    pub const fn from_u8(value: u8) -> Result<Self, ProtocolError> {
        Ok(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The wire value of this opcode.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit: this is the last frame of its message.
    pub fin: bool,
    /// RSV1 (used by permessage-deflate), RSV2, RSV3, in that order.
    pub rsv: [bool; 3],
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (at most `2^63 - 1`).
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest possible encoded header: 2 + 8 (64-bit length) + 4 (masking key).
    pub const MAX_LEN: usize = 14;

    /// A header for a single unfragmented, unmasked frame with no RSV bits.
    #[must_use]
    pub const fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self { fin: true, rsv: [false; 3], opcode, mask: None, payload_len }
    }

    /// Parses a header from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header (call again with more
    /// bytes; nothing is consumed), or the header and its encoded length.
    ///
    /// ```
    /// use wscore::{FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
    /// let (header, len) = FrameHeader::parse(&[0x81, 0x05, b'H']).unwrap().unwrap();
    /// assert_eq!((header.opcode, header.payload_len, len), (OpCode::Text, 5, 2));
    /// assert_eq!(FrameHeader::parse(&[0x81]), Ok(None));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            // Even one byte is enough to reject a reserved opcode early.
            if let Some(&b0) = buf.first() {
                OpCode::from_u8(b0 & 0x0F)?;
            }
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let fin = b0 & 0x80 != 0;
        let rsv = [b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0];
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                // 126 or 127: the real length is larger than 125 whatever follows.
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        let header_len = header_len_for(b1);
        if buf.len() < header_len {
            return Ok(None);
        }
        let payload_len = match len7 {
            126 => {
                let len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength(len));
                }
                len
            }
            127 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBit);
                }
                if len <= 0xFFFF {
                    return Err(ProtocolError::NonMinimalLength(len));
                }
                len
            }
            short => u64::from(short),
        };
        // The key is the header's last four bytes.
        let mask = masked.then(|| {
            let at = header_len - 4;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Some((Self { fin, rsv, opcode, mask, payload_len }, header_len)))
    }

    /// The number of bytes [`encode`](Self::encode) writes for this header.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len < 126 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes this header (with the minimal length encoding) into `out` and returns the number
    /// of bytes written.
    ///
    /// ```
    /// use wscore::{FrameHeader, OpCode};
    /// let mut out = [0u8; FrameHeader::MAX_LEN];
    /// let n = FrameHeader::new(OpCode::Binary, 256).encode(&mut out);
    /// assert_eq!(&out[..n], &[0x82, 0x7E, 0x01, 0x00]);
    /// ```
    pub fn encode(&self, out: &mut [u8; Self::MAX_LEN]) -> usize {
        let [rsv1, rsv2, rsv3] = self.rsv;
        out[0] = self.opcode.as_u8()
            | u8::from(self.fin) << 7
            | u8::from(rsv1) << 6
            | u8::from(rsv2) << 5
            | u8::from(rsv3) << 4;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = 2;
        if self.payload_len < 126 {
            // Fits in 7 bits by the branch condition.
            out[1] = mask_bit | self.payload_len as u8;
        } else if let Ok(len16) = u16::try_from(self.payload_len) {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&len16.to_be_bytes());
            at = 4;
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&(self.payload_len & (u64::MAX >> 1)).to_be_bytes());
            at = 10;
        }
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

/// The length on the wire (header and payload) of the frame that `buf` starts with, once its
/// header is there; `None` before. Nothing is checked (that is [`FrameHeader::parse`]'s job):
/// this only finds where frames end, to cut input at frame boundaries.
#[inline]
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let (header_len, payload_len) = frame_extent(buf)?;
    header_len.checked_add(payload_len)
}

/// The length of a frame header whose second byte is `b1`: the first two bytes, the extended
/// payload length its 7-bit length calls for (§5.2), and the masking key if its mask bit is set.
#[inline]
const fn header_len_for(b1: u8) -> usize {
    let ext_len = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext_len + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// The length of the frame header at the front of `buf`, as far as its first two bytes tell
/// (2 while they are not both there).
pub(crate) fn header_len(buf: &[u8]) -> usize {
    match *buf {
        [_, b1, ..] => header_len_for(b1),
        _ => 2,
    }
}

/// [`frame_len`] in two parts: the header's length (masking key included) and the payload's.
#[inline]
pub(crate) fn frame_extent(buf: &[u8]) -> Option<(usize, usize)> {
    let [_, b1, ..] = *buf else { return None };
    let header_len = header_len_for(b1);
    if buf.len() < header_len {
        return None;
    }
    let payload_len = match b1 & 0x7F {
        126 => u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        127 => u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?),
        short => u64::from(short),
    };
    Some((header_len, usize::try_from(payload_len).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(header: FrameHeader) {
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut out);
        assert_eq!(n, header.encoded_len());
        assert_eq!(FrameHeader::parse(&out[..n]), Ok(Some((header, n))));
        for cut in 0..n {
            assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn roundtrips_every_length_form() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                roundtrip(FrameHeader { mask, ..FrameHeader::new(OpCode::Binary, len) });
            }
        }
        roundtrip(FrameHeader { fin: false, rsv: [true, false, true], ..FrameHeader::new(OpCode::Text, 3) });
    }

    #[test]
    fn rfc6455_section_5_7_vectors() {
        // A single-frame masked text message "Hello".
        let masked = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, n) = FrameHeader::parse(&masked).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6)
        );
        // A fragmented unmasked text message: "Hel" then "lo".
        let (h, _) = FrameHeader::parse(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = FrameHeader::parse(&[0x80, 0x02]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
        // Unmasked ping and masked pong with body "Hello".
        assert_eq!(FrameHeader::parse(&[0x89, 0x05]).unwrap().unwrap().0.opcode, OpCode::Ping);
        assert_eq!(FrameHeader::parse(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d]).unwrap().unwrap().0.opcode, OpCode::Pong);
        // 256 bytes binary in a single unmasked frame, and 64 KiB.
        assert_eq!(FrameHeader::parse(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap().0.payload_len, 256);
        let big = [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(FrameHeader::parse(&big).unwrap().unwrap().0.payload_len, 65536);
    }

    #[test]
    fn rejects_header_level_violations() {
        for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(FrameHeader::parse(&[0x80 | op]), Err(ProtocolError::ReservedOpcode(op)));
        }
        assert_eq!(FrameHeader::parse(&[0x09, 0x00]), Err(ProtocolError::FragmentedControlFrame));
        assert_eq!(FrameHeader::parse(&[0x89, 0x7E]), Err(ProtocolError::ControlFrameTooLong));
        assert_eq!(FrameHeader::parse(&[0x82, 0x7E, 0x00, 0x7D]), Err(ProtocolError::NonMinimalLength(125)));
        let top = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&top), Err(ProtocolError::LengthTopBit));
        let max = [0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(FrameHeader::parse(&max), Err(ProtocolError::LengthTopBit));
        let small64 = [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        assert_eq!(FrameHeader::parse(&small64), Err(ProtocolError::NonMinimalLength(0xFFFF)));
    }

    #[test]
    fn frame_len_finds_where_frames_end() {
        assert_eq!(frame_len(&[0x82]), None);
        assert_eq!(frame_len(&[0x82, 0x05]), Some(7));
        assert_eq!(frame_len(&[0x82, 0x85, 1, 2, 3]), None, "mask key incomplete");
        assert_eq!(frame_len(&[0x82, 0x85, 1, 2, 3, 4]), Some(11));
        assert_eq!(frame_len(&[0x82, 0xFE, 0x01]), None);
        assert_eq!(frame_len(&[0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4]), Some(8 + 256));
        let mut long = alloc::vec![0x82, 0x7F];
        long.extend_from_slice(&(1u64 << 20).to_be_bytes());
        assert_eq!(frame_len(&long), Some(10 + (1 << 20)));
        // Lengths that do not fit say nothing (the header check rejects them).
        let mut huge = alloc::vec![0x82, 0x7F];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(frame_len(&huge), None);
    }
}
