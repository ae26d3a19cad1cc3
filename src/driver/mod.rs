//! Ready-made drivers: the drive loop of the [crate docs](crate#the-drive-loop) written once for
//! blocking `std::io` streams ([`blocking`]) and for tokio ([`tokio`]).
//!
//! Both `connect` helpers reach the server the same way, set by a [`Connector`]: TCP, then
//! optionally an HTTP `CONNECT` tunnel through a proxy (the sans-I/O
//! [`ProxyHandshake`](crate::ProxyHandshake)), then for `wss://` TLS with rustls (feature
//! `rustls`), then the WebSocket upgrade. [`Config::handshake_timeout`](crate::Config::handshake_timeout)
//! bounds all of it.
//!
//! A driver holds no protocol logic. It moves bytes between an I/O object and a
//! [`Connection`], turns [`Connection::poll_timeout`] into a socket timeout or a timer, hands
//! events to the application and shuts the transport down when the connection asks — with a
//! lingering close: the sending side first, then input is read and discarded until the peer
//! closes too or the close deadline passes. What both drivers share lives here: their error
//! type, [`DriverError`], the bookkeeping of a transport that failed or is being shut down, and
//! which error a read or a command reports.

#[cfg(feature = "std")]
pub mod blocking;
mod connector;
#[cfg(feature = "rustls")]
mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use connector::Connector;

use crate::connection::{Connection, Event, State};
use crate::error::{Error, SendError};
use crate::handshake::HandshakeError;
use crate::handshake::proxy::ProxyError;
use crate::time::Instant;
use std::io;

/// Why a driver call failed.
///
/// ```
/// use wscore::{DriverError, SendError};
/// let err = DriverError::from(SendError::Closed);
/// assert!(matches!(err, DriverError::Send(SendError::Closed)));
/// assert_eq!(err.to_string(), "the connection is closing or closed");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The transport failed (connection reset, broken pipe...) or could not be set up.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The upgrade failed. On the client, [`HandshakeError::Rejected`] carries the server's
    /// response (status, headers, body). On the server, the error response was written before
    /// the transport was closed; a rejection by the application's accept callback is reported
    /// as [`HandshakeError::Rejected`] with the response that was sent.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// The connection failed: the peer violated the protocol (the close frame with
    /// [`Error::close_code`] was sent), the transport ended without a close handshake, or a
    /// keepalive, close or write deadline passed. Reads report it after the events received
    /// before the failure; a send or flush that the failure cut short (its message was dropped)
    /// reports it too, and so does every command after it.
    #[error("connection failed: {0}")]
    Connection(#[from] Error),
    /// The application misused the API (sent after closing, a 126-byte ping...). Nothing was
    /// sent and the connection is still usable.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The HTTP proxy did not open the tunnel: [`ProxyError::Refused`] carries its response
    /// (407 with `Proxy-Authenticate` for missing or wrong credentials, 403, 502...).
    #[error("{0}")]
    Proxy(#[from] ProxyError),
    /// The TLS handshake failed: the server's certificate is not trusted
    /// (`InvalidCertificate(UnknownIssuer)`), is not valid for the URL's host
    /// (`InvalidCertificate(NotValidForName)`), has expired, or the peers share no protocol
    /// version or cipher suite. Errors of an established TLS session arrive as
    /// [`Io`](Self::Io) errors wrapping the [`rustls::Error`].
    #[cfg(feature = "rustls")]
    #[error("TLS handshake failed: {0}")]
    Tls(rustls::Error),
    /// A `wss://` URL in a build without the `rustls` feature. Enable it, or connect the TLS
    /// stream yourself and run the upgrade over it with the driver's `client` constructor.
    #[error(
        "wss:// URLs need TLS, which this build of wscore does not support (enable the `rustls` feature, or use ws://)"
    )]
    TlsNotSupported,
    /// A message piece ([`ReceiveMode::Stream`](crate::ReceiveMode::Stream)) arrived where only
    /// whole messages can be returned (the tokio driver's `Stream` implementation). Read events
    /// instead.
    #[error("a message piece arrived where only whole messages can be returned; read events instead")]
    Fragment,
}

/// How far the end of the transport got, once the connection asked for it.
///
/// The end is a lingering close: the sending side is shut down first (our last frame goes
/// out followed by the end of stream), then input is read and discarded until the peer ends
/// its side too, or until [`Connection::linger_deadline`]; only then is the transport closed.
/// Closing a socket with unread input makes the kernel send a reset, which can destroy the
/// close frame still in flight (a peer that was sending the rest of a message we refused would
/// never learn why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Closing {
    /// The connection has not asked for the end.
    #[default]
    Open,
    /// The sending side is being shut down (the tokio driver's `poll_shutdown` is pending);
    /// then the driver lingers until the instant, if there is one. A shutdown still pending at
    /// that instant (or at once, without one) is given up on.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    ShuttingDown(Option<Instant>),
    /// The sending side is shut down: input is read and discarded until the peer's end of
    /// stream, an error, or the instant.
    Lingering(Instant),
    /// The transport is shut down.
    Done,
}

/// What a driver knows about its transport besides the connection: whether it failed, how far
/// its shutdown got, and whether the end was already reported to the application.
#[derive(Debug, Default)]
pub(crate) struct TransportState {
    /// The first I/O error, reported once the events before it were delivered.
    io_error: Option<io::Error>,
    /// The transport failed: no more reads or writes.
    failed: bool,
    /// The shutdown the connection asked for.
    pub(crate) closing: Closing,
    /// The end of the connection was reported; later reads return `None`.
    pub(crate) ended: bool,
}

impl TransportState {
    /// Whether reads and writes may still be attempted.
    pub(crate) fn usable(&self) -> bool {
        !self.failed && self.closing == Closing::Open
    }

    /// The transport failed with `err`: remember it and tell the connection the stream ended
    /// (which fails it with [`Error::UnexpectedEof`] unless the close handshake was complete).
    /// Events received before stay deliverable.
    pub(crate) fn fail(&mut self, conn: &mut Connection, err: io::Error) {
        if !self.failed {
            self.failed = true;
            self.io_error = Some(err);
            // The connection now asks for the transport to be closed; its own error (if any) is
            // reported by `finish`.
            let _ = conn.receive_eof();
        }
    }

    /// Until when to linger once the connection asked for the end (`None`: close at once, as
    /// when the transport failed or the peer was given up on).
    pub(crate) fn linger_deadline(&self, conn: &Connection, now: Instant) -> Option<Instant> {
        if self.failed {
            return None;
        }
        conn.linger_deadline(now)
    }

    /// What went wrong, if anything: the transport's I/O error where the connection only knows
    /// that the stream ended (the I/O error says more), else the connection's error.
    fn failure(&self, conn: &Connection) -> Option<DriverError> {
        match (conn.error(), &self.io_error) {
            (None | Some(Error::UnexpectedEof), Some(io)) => Some(DriverError::Io(copy_io_error(io))),
            (Some(err), _) => Some(DriverError::Connection(err.clone())),
            (None, None) => None,
        }
    }

    /// The end of the connection, reported once: `Ok(None)` after a clean close handshake,
    /// else the transport's or the connection's error. Later calls return `Ok(None)`.
    pub(crate) fn finish(&mut self, conn: &Connection) -> Result<Option<Event>, DriverError> {
        if core::mem::replace(&mut self.ended, true) {
            return Ok(None);
        }
        let clean = conn.state() == State::Closed && conn.error().is_none();
        match self.failure(conn) {
            Some(err) if !clean => Err(err),
            _ => Ok(None),
        }
    }

    /// What a command (a send, a flush, a close) reports once it wrote what it could: the
    /// failure, once the connection failed and is over — it asks for the transport to be shut
    /// down, so what the command queued was written before the failure or dropped with it.
    /// `Ok` while a failed connection still writes its answers to the events before the
    /// failure, or its close frame; and after a clean close handshake, whatever the transport
    /// did afterwards.
    pub(crate) fn command_result(&self, conn: &Connection) -> Result<(), DriverError> {
        let clean = conn.state() == State::Closed && conn.error().is_none();
        if clean || !conn.should_close_transport() {
            return Ok(());
        }
        self.failure(conn).map_or(Ok(()), Err)
    }

    /// The error for a command the connection refused: [`SendError::Closed`] because the
    /// connection failed is that failure (the caller did nothing wrong), anything else the
    /// caller's mistake.
    pub(crate) fn refused(&self, conn: &Connection, err: SendError) -> DriverError {
        match err {
            SendError::Closed if conn.error().is_some() => self.failure(conn).unwrap_or(DriverError::Send(err)),
            err => DriverError::Send(err),
        }
    }
}

/// A copy of an I/O error, for reporting it twice (`io::Error` is not `Clone`).
pub(crate) fn copy_io_error(err: &io::Error) -> io::Error {
    io::Error::new(err.kind(), alloc::string::ToString::to_string(err))
}

/// Whether an I/O error is a read or write timeout (`WouldBlock` on Unix, `TimedOut` on Windows).
pub(crate) fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
