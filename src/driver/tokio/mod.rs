//! A tokio driver: [`WebSocketStream`] runs the drive loop of the
//! [crate docs](crate#the-drive-loop) over any `AsyncRead + AsyncWrite` stream, as a
//! [`Stream`] of received messages and a [`Sink`] of messages to send.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::net::TcpListener;
//! use wscore::tokio::WebSocketStream;
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/echo", listener.local_addr()?);
//! let server = tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let mut ws = WebSocketStream::accept(tcp).await?;
//!     // `None`: the close handshake is over and the transport is closed.
//!     while let Some(message) = ws.next_message().await? {
//!         ws.feed(message).await?; // echo; written before the next read blocks
//!     }
//!     Ok::<(), wscore::DriverError>(())
//! });
//!
//! let mut ws = WebSocketStream::connect(&url).await?;
//! ws.send(wscore::Message::Text("hello".into())).await?;
//! assert_eq!(ws.next_message().await?.unwrap().as_bytes(), b"hello");
//! ws.close(wscore::CloseCode::NORMAL, "bye").await?;
//! while ws.next_event().await?.is_some() {} // the close handshake completes here
//! server.await??;
//! # Ok(())
//! # }
//! ```
//!
//! ## Reading drives everything
//!
//! Polling for the next message (or event) also writes queued output, answers pings, echoes
//! the peer's close, fires the connection's timers (keepalive pings, the pong, close and
//! write-stall deadlines, through one `tokio::time::Sleep`) and shuts the transport down when
//! the connection asks. Keep polling until it returns `None`.
//!
//! The end is a lingering close: the sending side is shut down first (`poll_shutdown`), then
//! what the peer still sends is read and discarded until it closes too, or until the close
//! deadline ([`Connection::linger_deadline`]); only then is the end (or the failure) returned.
//! Closing with unread input would make the kernel reset the connection, which can destroy our
//! close frame in flight.
//!
//! Writes keep the deadlines too: while the stream takes nothing, `send`, `feed`, `flush`,
//! `close` and the [`Sink`] run the connection's timers, so against a peer that stopped reading
//! they fail at the keepalive or write-stall deadline ([`Config::write_timeout`], 30 s by
//! default) instead of waiting forever. A command that the connection's failure cut short
//! returns that failure, as [`DriverError::Connection`], and so does every later command.
//!
//! ## Writing in batches
//!
//! [`Sink::start_send`] (and [`WebSocketStream::feed`]) only queue a message; output goes out
//! when the sink is flushed, when the queue passes a high-water mark, or when the stream
//! side has no more events to hand out — always as vectored writes of everything queued, not
//! one write per message. [`WebSocketStream::send`] queues and flushes.
//!
//! ## Split halves
//!
//! [`WebSocketStream::split`] gives a [`ReadHalf`] and a [`WriteHalf`] for two tasks. They
//! share the connection (a `std::sync::Mutex`, held only while polling: the core never
//! blocks). Automatic replies and keepalive keep working when only the read half is polled,
//! and a write half stuck on a peer that stopped reading fails at the deadlines on its own
//! timer when only the write half is.
//!
//! ## Timers and the clock
//!
//! Deadlines are measured on tokio's clock, so tests with a paused clock
//! (`tokio::time::pause`) see keepalive and close timeouts fire in virtual time. The timer
//! needs a runtime with the time driver enabled (`enable_time`, or `enable_all`).
//!
//! ## TLS and proxies
//!
//! With the `rustls` feature, [`WebSocketStream::connect`] speaks `wss://` too (tokio-rustls;
//! the server's certificate is checked against the bundled Mozilla roots and the URL's host).
//! [`WebSocketStream::connect_with_connector`] takes a [`Connector`]: your own
//! [`rustls::ClientConfig`][client-config] and an HTTP `CONNECT` proxy ([`Proxy`](crate::Proxy)).
//! The split halves share the one TLS stream like any other. Without the feature, `wss://`
//! fails with [`DriverError::TlsNotSupported`]; open a TLS stream yourself and run the upgrade
//! over it with [`WebSocketStream::client`].
//!
//! [client-config]: https://docs.rs/rustls/0.23/rustls/client/struct.ClientConfig.html

mod connect;
mod inner;
mod sending;
mod split;
mod stream;

pub use connect::tunnel;
pub use split::{ReadHalf, WriteHalf};
pub use stream::MaybeTlsStream;

use crate::close::CloseCode;
use crate::config::Config;
use crate::connection::{Connection, Event, Message, MessageKind, Role};
use crate::driver::{Connector, DriverError};
use crate::error::SendError;
use crate::handshake::client::{ClientHandshake, ClientRequest};
use crate::handshake::server::{Accept, ServerHandshake};
use crate::handshake::{HandshakeError, Reject, Request};
use crate::utf8::Utf8Bytes;
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use alloc::boxed::Box;
use bytes::Bytes;
use core::future::poll_fn;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use futures_core::Stream;
use futures_sink::Sink;
use inner::{Inner, Timer, now, poll_next_message};
use sending::WriteSide;
use std::io;

/// How long a failed server handshake may take to write its error response.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Performs the client upgrade over `io`, with `early` (bytes already read from the server:
/// what a proxy sent after its answer) fed to the handshake first.
async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    request: ClientRequest,
    config: Config,
    early: &[u8],
) -> Result<Connection, DriverError> {
    let mut handshake = ClientHandshake::new(request, config);
    let mut buf = [0u8; 4096];
    connect::exchange(io, &handshake.request_bytes(), early, &mut buf, |input| match input {
        Some(bytes) => Ok(handshake.receive(bytes)?),
        None => Ok(handshake.receive_eof().map(|()| None)?),
    })
    .await
}

/// Writes a handshake failure response, shuts the transport down, and returns `error`.
async fn refuse<S: AsyncWrite + Unpin>(mut io: S, response: &[u8], error: DriverError) -> DriverError {
    // The peer may be gone already; the handshake error is what matters.
    let write = async {
        io.write_all(response).await?;
        io.shutdown().await
    };
    let _ = ::tokio::time::timeout(REFUSE_TIMEOUT, write).await;
    error
}

/// A WebSocket connection over a tokio stream `S`: a [`Stream`] of received messages and a
/// [`Sink`] of messages to send, with inherent async methods for the same (no extension traits
/// needed). See the [module docs](self) for an example.
#[derive(Debug)]
pub struct WebSocketStream<S> {
    inner: Inner<S>,
    timer: Timer,
}

impl WebSocketStream<MaybeTlsStream> {
    /// Connects to a `ws://` or `wss://` URL (TLS with the `rustls` feature, else
    /// [`DriverError::TlsNotSupported`]) and performs the upgrade with the default
    /// configuration. `TCP_NODELAY` is set (output is written in whole batches, so Nagle only
    /// delays).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// let mut ws = wscore::tokio::WebSocketStream::connect("wss://example.com/chat").await?;
    /// ws.send(wscore::Message::Text("hello".into())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, DriverError> {
        Self::connect_with(ClientRequest::from_url(url)?, Config::default()).await
    }

    /// Connects with a request (URL, subprotocols, extra headers) and a configuration.
    /// [`Config::handshake_timeout`] bounds the TCP connect, the TLS handshake and the upgrade.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// use wscore::{ClientRequest, Config};
    /// let request = ClientRequest::from_url("ws://127.0.0.1:9001/chat")?.protocol("chat");
    /// let config = Config::default().keepalive_interval(Some(std::time::Duration::from_secs(20)));
    /// let ws = wscore::tokio::WebSocketStream::connect_with(request, config).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(request: ClientRequest, config: Config) -> Result<Self, DriverError> {
        Self::connect_with_connector(request, config, &Connector::default()).await
    }

    /// Connects the way `connector` says: through an HTTP `CONNECT` proxy, with a TLS
    /// configuration of your own. A proxy's refusal is [`DriverError::Proxy`] (with its status,
    /// e.g. 407), a failed TLS handshake `DriverError::Tls`.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use wscore::{ClientRequest, Config, Connector};
    /// let connector = Connector::new().proxy_from_env();
    /// let request = ClientRequest::from_url("wss://example.com/feed")?;
    /// let ws = wscore::tokio::WebSocketStream::connect_with_connector(request, Config::default(), &connector).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with_connector(
        request: ClientRequest,
        config: Config,
        connector: &Connector,
    ) -> Result<Self, DriverError> {
        connect::connect(request, config, connector).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Performs the client upgrade over a connected stream (a TLS stream, a Unix socket...),
    /// within [`Config::handshake_timeout`]. A rejection fails with
    /// [`HandshakeError::Rejected`] carrying the response and its body.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// use wscore::{ClientRequest, Config};
    /// let stream = tokio::net::UnixStream::connect("/run/app.sock").await?;
    /// let ws = wscore::tokio::WebSocketStream::client(stream, ClientRequest::new("localhost", "/ws"), Config::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn client(mut stream: S, request: ClientRequest, config: Config) -> Result<Self, DriverError> {
        let timeout = config.handshake_timeout;
        let handshake = client_handshake(&mut stream, request, config, &[]);
        let conn = match timeout {
            Some(timeout) => {
                ::tokio::time::timeout(timeout, handshake).await.map_err(|_| HandshakeError::Timeout)??
            }
            None => handshake.await?,
        };
        Ok(Self::from_connection(stream, conn))
    }

    /// Performs the server upgrade with the default configuration, accepting every valid
    /// request. An invalid request is answered with its HTTP error response and fails with
    /// [`DriverError::Handshake`].
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    /// let (tcp, _) = listener.accept().await?;
    /// let ws = wscore::tokio::WebSocketStream::accept(tcp).await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept(stream: S) -> Result<Self, DriverError> {
        Self::accept_with(stream, Config::default(), |_| Ok(Accept::new())).await
    }

    /// Performs the server upgrade, letting `callback` inspect the request (path, query,
    /// headers, origin, offered subprotocols) and accept it ([`Accept`]) or reject it
    /// ([`Reject`]: any status, headers and body). A rejection is written to the client, the
    /// transport is shut down, and the call fails with [`HandshakeError::Rejected`] carrying
    /// the response sent. [`Config::handshake_timeout`] bounds the wait for the request.
    ///
    /// ```no_run
    /// # async fn f(tcp: tokio::net::TcpStream) -> Result<(), wscore::DriverError> {
    /// use wscore::{Accept, Config, Reject};
    /// let ws = wscore::tokio::WebSocketStream::accept_with(tcp, Config::default(), |request| {
    ///     match request.origin() {
    ///         Some("https://example.com") => Ok(Accept::new()),
    ///         _ => Err(Reject::new(403).body("wrong origin")),
    ///     }
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept_with<F>(stream: S, config: Config, callback: F) -> Result<Self, DriverError>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        // On the heap: the handshake's state (its read buffer, the parser, the timeout) would
        // otherwise stay part of the caller's task for the connection's whole life, as futures
        // are as large as their largest state — several KiB per idle connection.
        Box::pin(Self::accept_unboxed(stream, config, callback)).await
    }

    async fn accept_unboxed<F>(mut stream: S, config: Config, callback: F) -> Result<Self, DriverError>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let mut handshake = ServerHandshake::new(config);
        let mut buf = [0u8; 4096];
        loop {
            // Anchors the deadline on the first turn; fails once it passed.
            if let Err(e) = handshake.handle_timeout(now()) {
                return Err(refuse(stream, &e.response(), e.into()).await);
            }
            let read = stream.read(&mut buf);
            let n = match handshake.poll_timeout() {
                Some(at) => {
                    match ::tokio::time::timeout_at(::tokio::time::Instant::from_std(at.to_std()), read).await {
                        Ok(read) => read,
                        Err(_elapsed) => continue,
                    }
                }
                None => read.await,
            };
            let n = match n {
                Ok(0) => return Err(HandshakeError::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            match handshake.receive(&buf[..n]) {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => return Err(refuse(stream, &e.response(), e.into()).await),
            }
        }
        let verdict = match handshake.request() {
            Some(request) => callback(request),
            None => Err(Reject::new(500)), // unreachable: the loop ends with a request
        };
        match verdict {
            Ok(accept) => match handshake.accept(accept) {
                Ok(conn) => {
                    let mut ws = Self::from_connection(stream, conn);
                    ws.flush().await?; // the 101 response
                    Ok(ws)
                }
                // The application selected a subprotocol the client did not offer.
                Err(e) => Err(refuse(stream, &e.response(), e.into()).await),
            },
            Err(reject) => {
                let error = HandshakeError::Rejected(Box::new(reject.to_response()));
                Err(refuse(stream, &handshake.reject(reject), error.into()).await)
            }
        }
    }

    /// A connection over a stream that something else already upgraded (hyper, axum...), with
    /// a new [`Connection`] for `role`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use wscore::{Config, Role};
    /// let (stream, _other_end) = tokio::io::duplex(4096);
    /// let ws = wscore::tokio::WebSocketStream::from_upgraded(stream, Role::Server, Config::default());
    /// assert_eq!(ws.connection().role(), Role::Server);
    /// # }
    /// ```
    #[must_use]
    pub fn from_upgraded(stream: S, role: Role, config: Config) -> Self {
        let conn = match role {
            Role::Client => Connection::client(config),
            Role::Server => Connection::server(config),
        };
        Self::from_connection(stream, conn)
    }

    /// Drives an existing [`Connection`] (with negotiated permessage-deflate, a seeded random
    /// source for tests...) over `stream`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use wscore::{Config, Connection};
    /// let (stream, _other_end) = tokio::io::duplex(4096);
    /// let ws = wscore::tokio::WebSocketStream::from_connection(stream, Connection::server(Config::default()));
    /// # }
    /// ```
    #[must_use]
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self { inner: Inner::new(stream, conn), timer: Timer::default() }
    }

    /// Polls for the next event: a data message or piece, or a ping, pong or close frame
    /// (already answered). `Ok(None)` once the close handshake is complete and the transport
    /// shut down (and on every later call); an error when the connection failed, after the
    /// events that came before the failure. Also writes queued output and fires timers.
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, DriverError>> {
        self.inner.poll_next_event(&mut self.timer, cx, None)
    }

    /// The next event (see [`poll_next_event`](Self::poll_next_event)). Cancel-safe: dropping
    /// the future loses nothing.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// use wscore::Event;
    /// let mut ws = wscore::tokio::WebSocketStream::connect("ws://127.0.0.1:9001").await?;
    /// while let Some(event) = ws.next_event().await? {
    ///     match event {
    ///         Event::Message(message) => println!("{} bytes", message.len()),
    ///         Event::Close(frame) => println!("the server closes: {frame:?}"),
    ///         _ => {} // pings (answered already), pongs
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_event(&mut self) -> Result<Option<Event>, DriverError> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The next data message, skipping control frames (answered automatically); `Ok(None)`
    /// at the end. The same as the [`Stream`] implementation, without needing an extension
    /// trait. Cancel-safe.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// let mut ws = wscore::tokio::WebSocketStream::connect("ws://127.0.0.1:9001").await?;
    /// while let Some(message) = ws.next_message().await? {
    ///     ws.feed(message).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_message(&mut self) -> Result<Option<Message>, DriverError> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }

    /// Queues a message and writes out everything queued.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.send(wscore::Message::Binary(vec![1, 2, 3].into())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&mut self, message: Message) -> Result<(), DriverError> {
        sending::send(self, message).await
    }

    /// Queues a message without writing it (waiting first while too much output is queued):
    /// it goes out with the next flush, or when the stream side has no more events to return.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// for i in 0..100 {
    ///     ws.feed(wscore::Message::Text(format!("{i}").into())).await?;
    /// }
    /// ws.flush().await?; // vectored writes of all 100 frames
    /// # Ok(()) }
    /// ```
    pub async fn feed(&mut self, message: Message) -> Result<(), DriverError> {
        sending::feed(self, message).await
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.send_text("hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), DriverError> {
        self.send(Message::Text(text.into())).await
    }

    /// Sends a binary message.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.send_binary(vec![0u8; 1024]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), DriverError> {
        self.send(Message::Binary(data.into())).await
    }

    /// Sends one piece of a message streamed in pieces (see [`Connection::send_fragment`]).
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.send_fragment(wscore::MessageKind::Binary, vec![0u8; 1 << 20], false).await?;
    /// ws.send_fragment(wscore::MessageKind::Binary, vec![1u8; 1 << 20], true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        last: bool,
    ) -> Result<(), DriverError> {
        sending::send_fragment(self, kind, data.into(), last).await
    }

    /// Sends a ping (at most 125 bytes); the pong arrives as [`Event::Pong`].
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.ping("are you there?").await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.ping(payload)).await
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.pong("").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.pong(payload)).await
    }

    /// Starts the close handshake (or answers the peer's close) and writes the close frame.
    /// Keep reading until `None`: the handshake completes there.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.close(wscore::CloseCode::GOING_AWAY, "restarting").await?;
    /// while ws.next_event().await?.is_some() {}
    /// # Ok(()) }
    /// ```
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), DriverError> {
        sending::control(self, |conn| conn.close(code, reason)).await
    }

    /// Writes out everything queued.
    ///
    /// ```no_run
    /// # async fn f(ws: &mut wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&mut self) -> Result<(), DriverError> {
        sending::flush(self).await
    }

    /// Splits the connection into a [`ReadHalf`] and a [`WriteHalf`] for two tasks. Polling
    /// the read half alone keeps automatic replies, keepalive pings and deadlines working.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wscore::DriverError> {
    /// let ws = wscore::tokio::WebSocketStream::connect("ws://127.0.0.1:9001").await?;
    /// let (mut read, mut write) = ws.split();
    /// tokio::spawn(async move {
    ///     let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    ///     loop {
    ///         tick.tick().await;
    ///         if write.send_text("tick").await.is_err() {
    ///             break; // closing
    ///         }
    ///     }
    /// });
    /// while let Some(message) = read.next_message().await? {
    ///     println!("{message:?}");
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::halves(self.inner, self.timer)
    }
}

impl<S> WebSocketStream<S> {
    /// The connection (state, negotiated subprotocol and extensions, buffered amounts).
    ///
    /// ```no_run
    /// # async fn f(ws: wscore::tokio::WebSocketStream<tokio::net::TcpStream>) {
    /// println!("{:?} {:?}", ws.connection().state(), ws.connection().protocol());
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The connection, mutably: for the commands this driver does not wrap. Flush afterwards
    /// to write what they queued.
    ///
    /// ```no_run
    /// # async fn f(mut ws: wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wscore::DriverError> {
    /// ws.connection_mut().close_normal()?;
    /// ws.flush().await?;
    /// # Ok(()) }
    /// ```
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.inner.conn
    }

    /// The stream.
    ///
    /// ```no_run
    /// # async fn f(ws: wscore::tokio::WebSocketStream<tokio::net::TcpStream>) -> std::io::Result<()> {
    /// println!("peer: {}", ws.get_ref().peer_addr()?);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner.io
    }

    /// The stream, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.io
    }

    /// The stream and the connection, for another driver to take over.
    ///
    /// ```no_run
    /// # async fn f(ws: wscore::tokio::WebSocketStream<tokio::net::TcpStream>) {
    /// let (tcp, conn) = ws.into_inner();
    /// # }
    /// ```
    #[must_use]
    pub fn into_inner(self) -> (S, Connection) {
        (self.inner.io, self.inner.conn)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, DriverError>;

    /// The next data message; control frames are answered and skipped. A message piece
    /// ([`ReceiveMode::Stream`](crate::ReceiveMode::Stream)) is an error: read those with
    /// [`WebSocketStream::next_event`].
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_message(cx, |cx| this.poll_next_event(cx))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = DriverError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), DriverError> {
        self.get_mut().command(|conn| conn.send(message))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_written(cx)
    }

    /// Sends close 1000 (unless a close frame was sent already) and flushes. The close
    /// handshake completes on the stream side: keep reading until `None`.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.get_mut().poll_closed(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteSide for WebSocketStream<S> {
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.inner.poll_ready(&mut self.timer, cx, None)
    }

    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.inner.poll_flush(&mut self.timer, cx, None)
    }

    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverError>> {
        self.inner.poll_close(&mut self.timer, cx, None)
    }

    fn command<T>(&mut self, command: impl FnOnce(&mut Connection) -> Result<T, SendError>) -> Result<T, DriverError> {
        self.inner.command(command)
    }
}
