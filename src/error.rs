//! Error types. Two kinds, kept apart:
//!
//! - [`Error`]: the peer or the transport misbehaved. Fatal and sticky: once returned, every later
//!   `receive`, `commit_received` and `receive_eof` returns it again (`handle_timeout` reports
//!   only the failures it causes), the close frame with [`Error::close_code`] is queued (unless
//!   the transport is given up on: [`Error::CloseTimeout`], [`Error::WriteTimeout`]), and the
//!   connection asks for the transport to be shut down.
//! - [`SendError`]: the local caller misused the API (sent after closing, a 126-byte ping...).
//!   Nothing was queued and the connection stays usable.

use crate::close::CloseCode;

/// A violation of RFC 6455 by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame used a reserved opcode (3–7, 0xB–0xF).
    #[error("frame uses reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A frame set an RSV bit that no negotiated extension defines.
    #[error("frame sets reserved bits that no negotiated extension defines")]
    ReservedBits,
    /// The 64-bit payload length had its most significant bit set.
    #[error("64-bit payload length has its most significant bit set")]
    LengthTopBit,
    /// A payload length was not encoded in the fewest bytes (RFC 6455 §5.2 "MUST").
    #[error("payload length {0} is not minimally encoded")]
    NonMinimalLength(u64),
    /// A control frame declared a payload longer than 125 bytes.
    #[error("control frame payload longer than 125 bytes")]
    ControlFrameTooLong,
    /// A control frame had FIN clear.
    #[error("control frame is fragmented")]
    FragmentedControlFrame,
    /// A client sent an unmasked frame.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame.
    #[error("server frame is masked")]
    MaskedFrame,
    /// A continuation frame arrived with no fragmented message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A text or binary frame arrived while a fragmented message was still in progress.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A text message or close reason was not valid UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame carried a 1-byte body.
    #[error("close frame body is 1 byte long")]
    CloseBodyTooShort,
    /// A close frame carried a code that may not appear on the wire.
    #[error("close frame has invalid status code {0}")]
    InvalidCloseCode(u16),
    /// A close frame's reason was not valid UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A compressed message is not a valid deflate stream (answered with 1007: the payload is
    /// inconsistent with the message; the inflater is discarded).
    #[error("compressed message is not a valid deflate stream")]
    InvalidCompressedData,
    /// A frame's payload exceeded [`Config::max_frame_size`](crate::Config::max_frame_size).
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The declared payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message exceeded [`Config::max_message_size`](crate::Config::max_message_size).
    #[error("message exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A message exceeded [`Config::max_fragments`](crate::Config::max_fragments).
    #[error("message has more than {limit} fragments")]
    TooManyFragments {
        /// The configured limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code this violation is answered with: 1007 for bad UTF-8, 1009 for size
    /// limits, 1008 for the fragment-count policy, 1002 for everything else.
    ///
    /// ```
    /// use wscore::{CloseCode, ProtocolError};
    /// assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode::INVALID_PAYLOAD);
    /// assert_eq!(ProtocolError::ReservedBits.close_code(), CloseCode::PROTOCOL);
    /// ```
    #[must_use]
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TOO_BIG,
            Self::TooManyFragments { .. } => CloseCode::POLICY,
            _ => CloseCode::PROTOCOL,
        }
    }
}

/// A fatal connection error: the peer or the transport misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer violated the protocol; a close frame with the matching code has been queued.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The transport ended before the close handshake completed.
    #[error("connection closed by the peer without a close handshake")]
    UnexpectedEof,
    /// No pong answered a keepalive ping within
    /// [`Config::keepalive_timeout`](crate::Config::keepalive_timeout).
    #[error("no pong received before the keepalive deadline")]
    KeepaliveTimeout,
    /// The peer did not complete the close handshake (or close the transport) before
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    #[error("close handshake not completed before the deadline")]
    CloseTimeout,
    /// Output waited [`Config::write_timeout`](crate::Config::write_timeout) without the
    /// transport taking a single byte of it: the peer stopped reading. No close frame was
    /// queued (it could not be written either) and the transport is to be shut down at once.
    #[error("the peer read none of our output before the write deadline")]
    WriteTimeout,
}

impl Error {
    /// The close code that describes this failure: the code sent for protocol errors, 1011 for a
    /// keepalive timeout, 1006 (never sent on the wire) when the transport just went away or
    /// was given up on (close deadline, write deadline: no close frame went out).
    #[must_use]
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(e) => e.close_code(),
            Self::KeepaliveTimeout => CloseCode::INTERNAL,
            Self::UnexpectedEof | Self::CloseTimeout | Self::WriteTimeout => CloseCode::ABNORMAL,
        }
    }
}

/// A local misuse of the connection's API. Nothing was queued; the connection is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent (or the connection failed): no more data or pings.
    #[error("the connection is closing or closed")]
    Closed,
    /// A ping or pong payload longer than 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlPayloadTooLong(usize),
    /// A close reason longer than 123 bytes.
    #[error("close reason of {0} bytes exceeds 123")]
    ReasonTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, unassigned codes).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A whole message was sent while a streamed message is still open.
    #[error("a streamed message is in progress; finish it first")]
    MessageInProgress,
    /// The buffered output is over [`Config::max_write_buffer`](crate::Config::max_write_buffer):
    /// write out what is buffered before sending more.
    #[error("write buffer full ({buffered} bytes buffered, limit {limit})")]
    BufferFull {
        /// Bytes currently buffered.
        buffered: usize,
        /// The configured limit.
        limit: usize,
    },
}
