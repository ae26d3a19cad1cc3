//! Close codes and close frames (RFC 6455 §5.5.1, §7.4): which codes may appear on the wire,
//! which an application may send, and the close body format.

use crate::error::ProtocolError;
use crate::utf8::Utf8Bytes;
use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

/// The longest close reason that fits in a control frame: 125 − 2 bytes of code.
pub const MAX_CLOSE_REASON: usize = 123;

/// A close status code (RFC 6455 §7.4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a policy violation.
    pub const POLICY: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: an unexpected condition prevented the server from fulfilling the request.
    pub const INTERNAL: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire: the codes RFC 6455 and the
    /// IANA registry define for use in frames (1000–1003, 1007–1014), and the ranges reserved
    /// for libraries, frameworks and applications (3000–4999). 1005, 1006, 1015, the
    /// unassigned 1xxx codes and everything below 1000 or above 4999 are protocol errors.
    ///
    /// ```
    /// use wscore::CloseCode;
    /// assert!(CloseCode::NORMAL.is_valid_on_wire());
    /// assert!(CloseCode(4000).is_valid_on_wire());
    /// assert!(!CloseCode::NO_STATUS.is_valid_on_wire());
    /// assert!(!CloseCode(1016).is_valid_on_wire());
    /// ```
    #[must_use]
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The body of a close frame: a status code and a UTF-8 reason of at most 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    ///
    /// ```
    /// let frame = wscore::CloseFrame::new(wscore::CloseCode::NORMAL, "bye");
    /// assert_eq!(frame.reason, "bye");
    /// ```
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self { code, reason: reason.into() }
    }

    /// Parses a received close body. `Ok(None)` for an empty body (no status code).
    pub fn parse(body: &Bytes) -> Result<Option<Self>, ProtocolError> {
        match body.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::CloseBodyTooShort),
            _ => {
                let code = CloseCode(u16::from_be_bytes([body[0], body[1]]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason =
                    Utf8Bytes::try_from_bytes(body.slice(2..)).map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(Self { code, reason }))
            }
        }
    }

    /// Encodes the close body (code then reason).
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.reason.len());
        out.put_u16(self.code.0);
        out.put_slice(self.reason.as_bytes());
        out.freeze()
    }

    /// A reason cut to at most 123 bytes on a character boundary (for error messages used as
    /// reasons).
    pub(crate) fn truncated(code: CloseCode, reason: &str) -> Self {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let reason = alloc::string::String::from(&reason[..end]);
        Self { code, reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_table() {
        let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
        let invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
        for c in valid {
            assert!(CloseCode(c).is_valid_on_wire(), "{c}");
        }
        for c in invalid {
            assert!(!CloseCode(c).is_valid_on_wire(), "{c}");
        }
    }

    #[test]
    fn parses_bodies() {
        assert_eq!(CloseFrame::parse(&Bytes::new()), Ok(None));
        assert_eq!(CloseFrame::parse(&Bytes::from_static(&[3])), Err(ProtocolError::CloseBodyTooShort));
        assert_eq!(CloseFrame::parse(&Bytes::from_static(&[0x03, 0xED])), Err(ProtocolError::InvalidCloseCode(1005)));
        assert_eq!(CloseFrame::parse(&Bytes::from_static(&[0x03, 0xE8, 0xff])), Err(ProtocolError::InvalidCloseReason));
        let frame = CloseFrame::parse(&Bytes::from_static(b"\x03\xe8ok")).unwrap().unwrap();
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "ok"));
        assert_eq!(frame.encode(), Bytes::from_static(b"\x03\xe8ok"));
    }

    #[test]
    fn truncates_on_char_boundary() {
        let long = "é".repeat(100);
        let frame = CloseFrame::truncated(CloseCode::PROTOCOL, &long);
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert_eq!(frame.reason.len(), 122);
    }
}
