//! [`MaybeTlsStream`]: what the tokio `connect` helpers return — plain TCP for `ws://`, a
//! tokio-rustls stream for `wss://`.

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};

/// The stream of a connection made by
/// [`WebSocketStream::connect`](super::WebSocketStream::connect) and its siblings: TCP for
/// `ws://`, TLS over TCP (tokio-rustls) for `wss://` (feature `rustls`). Through a proxy, the
/// TCP stream is the tunnel.
///
/// The end of the TCP stream without a TLS `close_notify` reads as a normal end of stream: the
/// WebSocket close handshake is what tells a complete conversation from a cut one.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let ws = wscore::tokio::WebSocketStream::connect("wss://example.com/feed").await?;
/// println!("TLS: {}, peer: {}", ws.get_ref().is_tls(), ws.get_ref().tcp().peer_addr()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    #[cfg(feature = "rustls")]
    Rustls(alloc::boxed::Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP socket (underneath TLS, for `wss://`).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the stream is TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => match Pin::new(&mut **tls).poll_read(cx, buf) {
                // The TCP stream ended without close_notify: an end of stream like any other.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
                other => other,
            },
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    /// For TLS, sends `close_notify` first.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}
