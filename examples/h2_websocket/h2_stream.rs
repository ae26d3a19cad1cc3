//! WebSockets over one HTTP/2 stream with the `h2` crate (RFC 8441): [`H2Stream`] makes an h2
//! stream an `AsyncRead + AsyncWrite` for [`WebSocketStream`], with HTTP/2 flow control
//! honoured both ways; [`accept`] answers an extended CONNECT on the server, [`connect`] sends
//! one from the client.
//!
//! Used by the `h2_websocket` example and by `tests/h2.rs`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use h2::server::SendResponse;
use h2::{Ping, PingPong, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wscore::tokio::WebSocketStream;
use wscore::{Accept, ClientRequest, ClientUpgrade, Config, HandshakeError, HttpVersion, Request, ServerUpgrade};

/// One HTTP/2 stream as a byte stream: DATA frames in, DATA frames out, END_STREAM as the end
/// of the stream both ways (RFC 8441 §5.1: the equivalent of a TCP FIN).
///
/// Flow control: received bytes are released to the peer's window only as they are read, so a
/// slow reader stops a fast writer instead of buffering without bound; writes wait for window
/// capacity and send at most what the window allows.
#[derive(Debug)]
pub(crate) struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// The rest of the last DATA frame, not read yet (and not released yet).
    unread: Bytes,
    shut_down: bool,
}

impl H2Stream {
    pub(crate) fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self { send, recv, unread: Bytes::new(), shut_down: false }
    }

    /// Waits for window capacity; how many bytes may be sent now.
    fn poll_capacity(&mut self, cx: &mut Context<'_>, wanted: usize) -> Poll<io::Result<usize>> {
        self.send.reserve_capacity(wanted);
        loop {
            let available = self.send.capacity();
            if available > 0 {
                return Poll::Ready(Ok(available.min(wanted)));
            }
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                // The stream can no longer send (reset, or closed by us).
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        while self.unread.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => self.unread = data,
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => return Poll::Ready(Ok(())), // END_STREAM
            }
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        // Reopen the window by what the reader took.
        self.recv.flow_control().release_capacity(n).map_err(io_error)?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(self.poll_capacity(cx, buf.len()))?;
        self.send.send_data(Bytes::copy_from_slice(&buf[..n]), false).map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    /// Gathers the slices into one DATA payload (a copy is needed anyway: h2 owns what it
    /// sends), up to the window.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(self.poll_capacity(cx, total))?;
        let mut data = BytesMut::with_capacity(n);
        for buf in bufs {
            let take = buf.len().min(n - data.len());
            data.extend_from_slice(&buf[..take]);
            if data.len() == n {
                break;
            }
        }
        self.send.send_data(data.freeze(), false).map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing to do: the h2 connection task writes queued frames out by itself.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends END_STREAM (an empty DATA frame with the flag), once.
    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut_down {
            self.shut_down = true;
            self.send.send_data(Bytes::new(), true).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

fn io_error(e: h2::Error) -> io::Error {
    if e.is_io() {
        return e.into_io().unwrap_or_else(|| io::ErrorKind::Other.into());
    }
    let kind = if e.is_reset() { io::ErrorKind::ConnectionReset } else { io::ErrorKind::Other };
    io::Error::new(kind, e)
}

/// Why [`accept`] or [`connect`] failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// The handshake failed (on the server, the rejection was already sent).
    Handshake(HandshakeError),
    /// HTTP/2 failed.
    H2(h2::Error),
    /// The application's response headers are not valid HTTP.
    Http(http::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "handshake: {e}"),
            Self::H2(e) => write!(f, "HTTP/2: {e}"),
            Self::Http(e) => write!(f, "HTTP: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<h2::Error> for Error {
    fn from(e: h2::Error) -> Self {
        Self::H2(e)
    }
}

impl From<http::Error> for Error {
    fn from(e: http::Error) -> Self {
        Self::Http(e)
    }
}

/// Server: answers one request of an h2 connection (built with `enable_connect_protocol()`).
/// A valid extended CONNECT is accepted with what `choose` returns for it (200) and becomes a
/// WebSocket; anything else gets the rejection wscore picks (400, 403, 405...) and an error.
pub(crate) async fn accept(
    server: &ServerUpgrade,
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    choose: impl FnOnce(&Request) -> Accept,
) -> Result<WebSocketStream<H2Stream>, Error> {
    // h2 keeps `:protocol` as a request extension.
    let protocol = request.extensions().get::<h2::ext::Protocol>().map(h2::ext::Protocol::as_str);
    let accepted = server.validate_http(&request, protocol).and_then(|pending| {
        let accept = choose(pending.request());
        pending.accept(accept)
    });
    let (response, conn) = match accepted {
        Ok(accepted) => accepted,
        Err(err) => {
            let (head, body) = err.reject(HttpVersion::Http2).to_http::<Bytes>()?.into_parts();
            let mut send = respond.send_response(http::Response::from_parts(head, ()), body.is_empty())?;
            if !body.is_empty() {
                send.send_data(body, true)?;
            }
            return Err(err.into());
        }
    };
    // `false`: the response stream stays open, it carries the WebSocket.
    let send = respond.send_response(response.to_http()?, false)?;
    Ok(WebSocketStream::from_connection(H2Stream::new(send, request.into_body()), conn))
}

/// Client: opens a WebSocket as a new stream of an h2 connection, for `request` (its URL's
/// scheme gives `:scheme`, its host and port `:authority`, its target `:path`).
///
/// `ping_pong` (from `h2::client::Connection::ping_pong`) is used once, when the server's
/// SETTINGS may not have arrived yet: its PONG comes after them, so then
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL` is known. Without it the result is
/// [`HandshakeError::ExtendedConnectDisabled`], before anything is sent.
pub(crate) async fn connect(
    send_request: SendRequest<Bytes>,
    ping_pong: &mut PingPong,
    request: ClientRequest,
    config: Config,
) -> Result<WebSocketStream<H2Stream>, Error> {
    let mut send_request = send_request.ready().await?;
    if !send_request.is_extended_connect_protocol_enabled() {
        ping_pong.ping(Ping::opaque()).await?;
    }
    if !send_request.is_extended_connect_protocol_enabled() {
        return Err(HandshakeError::ExtendedConnectDisabled.into());
    }
    let upgrade = ClientUpgrade::new(request, HttpVersion::Http2, config);
    let mut head = upgrade.to_http_request::<()>()?;
    if let Some(protocol) = upgrade.connect_protocol() {
        head.extensions_mut().insert(h2::ext::Protocol::from(protocol));
    }
    let (response, send) = send_request.send_request(head, false)?;
    let response = response.await?;
    // A non-2xx answer is `HandshakeError::Rejected` with its status and headers.
    let conn = upgrade.finish_http(&response)?;
    Ok(WebSocketStream::from_connection(H2Stream::new(send, response.into_body()), conn))
}
