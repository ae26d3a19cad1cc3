//! [`MaybeTlsStream`]: what the blocking `connect` helpers return — plain TCP for `ws://`, a
//! [`TlsStream`](super::TlsStream) for `wss://` — with the timeouts and shutdown of both.

use super::transport::Transport;
use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

/// The stream of a connection made by [`WebSocket::connect`](super::WebSocket::connect) and
/// its siblings: TCP for `ws://`, TLS over TCP for `wss://` (feature `rustls`). Through a proxy,
/// the TCP stream is the tunnel.
///
/// ```no_run
/// use wscore::blocking::MaybeTlsStream;
/// let ws = wscore::blocking::WebSocket::connect("wss://example.com/feed")?;
/// println!("TLS: {}, peer: {}", ws.get_ref().is_tls(), ws.get_ref().tcp().peer_addr()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    #[cfg(feature = "rustls")]
    Rustls(alloc::boxed::Box<super::TlsStream>),
}

impl MaybeTlsStream {
    /// The TCP socket (underneath TLS, for `wss://`).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.get_ref(),
        }
    }

    /// Whether the stream is TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.flush(),
        }
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => TcpStream::shutdown(tcp, Shutdown::Both),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Transport::shutdown(&mut **tls),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        match self {
            Self::Plain(tcp) => TcpStream::shutdown(tcp, Shutdown::Write).map(|()| true),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Transport::shutdown_write(&mut **tls),
        }
    }
}
