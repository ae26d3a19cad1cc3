//! A blocking driver for `std::io` streams: [`WebSocket`] runs the drive loop of the
//! [crate docs](crate#the-drive-loop) over any `Read + Write` stream, and [`WebSocket::split`]
//! turns it into a [`Reader`] and a cloneable [`Writer`] so that other threads can send while
//! one thread blocks in [`Reader::read`].
//!
//! ```
//! use std::net::TcpListener;
//! use wscore::Event;
//! use wscore::blocking::WebSocket;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let url = format!("ws://{}/echo", listener.local_addr()?);
//! let server = std::thread::spawn(move || -> Result<(), wscore::DriverError> {
//!     let (tcp, _) = listener.accept()?;
//!     let mut ws = WebSocket::accept(tcp)?;
//!     // `None`: the close handshake is over and the transport is closed.
//!     while let Some(event) = ws.read()? {
//!         if let Event::Message(message) = event {
//!             ws.send(message)?; // echo
//!         }
//!     }
//!     Ok(())
//! });
//!
//! let mut ws = WebSocket::connect(&url)?;
//! ws.send_text("hello")?;
//! assert!(matches!(ws.read()?, Some(Event::Message(m)) if m.as_bytes() == b"hello"));
//! ws.close(wscore::CloseCode::NORMAL, "bye")?;
//! while let Some(event) = ws.read()? {
//!     // The server's reply to our close comes last.
//!     assert!(matches!(event, Event::Close(Some(frame)) if frame.code == wscore::CloseCode::NORMAL));
//! }
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What `read` does
//!
//! [`WebSocket::read`] returns the next [`Event`]: data messages, and the pings, pongs and
//! close frames the application may want to see. The automatic replies (the pong to a ping, the
//! echo of the peer's close) are written by `read` itself before it returns the event. It
//! returns `Ok(None)` once the close handshake is complete and the transport shut down, and an
//! error when the connection failed (after the events received before the failure).
//!
//! The end is a lingering close: `read` shuts down the sending side first, then reads and
//! discards what the peer still sends until it closes too, or until the close deadline
//! ([`Connection::linger_deadline`]), and only then closes the transport and returns. Closing
//! with unread input would make the kernel reset the connection, which can destroy our close
//! frame in flight (a peer still sending the rest of a message we refused would never learn
//! why). Streams that cannot shut down one direction alone close at once
//! ([`Transport::shutdown_write`]).
//!
//! A send, flush or close that the connection's failure cut short (a deadline fired while the
//! write was stuck, and the output was dropped) returns that failure, as
//! [`DriverError::Connection`], and so does every later command.
//!
//! ## Timeouts
//!
//! The connection's deadlines (keepalive pings, the pong deadline, the close handshake, the
//! write-stall deadline of [`Config::write_timeout`]) become the stream's read and write
//! timeouts through the [`Transport`] trait, implemented for [`TcpStream`] and, on Unix,
//! `UnixStream`. So a write to a peer that stopped reading fails at the write deadline (30 s by
//! default) instead of blocking forever. A stream without timeouts can be wrapped in
//! [`Untimed`] (or implement [`Transport`] with its no-op defaults): it works, but timers only
//! fire when bytes arrive. Streams must be blocking; on a non-blocking stream, `read` and the
//! send methods return the `WouldBlock` error and can be called again.
//!
//! ## TLS and proxies
//!
//! With the `rustls` feature, [`WebSocket::connect`] speaks `wss://` too: the server's
//! certificate is checked against the bundled Mozilla roots and the URL's host (a DNS name or an
//! IP address). [`WebSocket::connect_with_connector`] takes a [`Connector`]: your own
//! [`rustls::ClientConfig`][client-config] (a private CA, client certificates) and an HTTP
//! `CONNECT` proxy ([`Proxy`](crate::Proxy), with Basic credentials, or the one the environment
//! names). Without the feature, `wss://` fails with [`DriverError::TlsNotSupported`]; a TLS
//! stream of your own can still be driven: wrap it in a type that implements [`Transport`]
//! (forwarding the timeouts to the socket underneath) or in [`Untimed`], and run the upgrade
//! with [`WebSocket::client`].
//!
//! [client-config]: https://docs.rs/rustls/0.23/rustls/client/struct.ClientConfig.html
//!
//! The split of a TLS connection ([`WebSocket::split`] on a [`MaybeTlsStream`]) works like the
//! split of a TCP one: one TLS session cannot be read and written through two handles, so the
//! [`Reader`] waits for the socket to become readable on a clone of the TCP handle (a `peek`,
//! without the lock) and only then takes the lock to decrypt what arrived, never blocking while
//! holding it.

mod connect;
mod driven;
mod split;
mod stream;
#[cfg(feature = "rustls")]
mod tls;
mod transport;

pub use connect::tunnel;
pub use split::{Reader, Writer};
pub use stream::MaybeTlsStream;
#[cfg(feature = "rustls")]
pub use tls::TlsStream;
pub use transport::{Transport, Untimed};

use crate::close::CloseCode;
use crate::config::Config;
use crate::connection::{Connection, Event, Message, MessageKind, Role};
use crate::driver::{Connector, DriverError, TransportState, is_timeout};
use crate::handshake::client::{ClientHandshake, ClientRequest};
use crate::handshake::server::{Accept, ServerHandshake};
use crate::handshake::{HandshakeError, Reject, Request};
use crate::time::Instant;
use crate::utf8::Utf8Bytes;
use alloc::boxed::Box;
use bytes::Bytes;
use core::time::Duration;
use driven::{Driven, Turn};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use transport::{TimeoutCache, time_until};

/// A WebSocket connection over a blocking stream `S`.
///
/// Create one with [`connect`](Self::connect) (plain TCP), [`client`](Self::client) (any
/// stream), [`accept`](Self::accept) / [`accept_with`](Self::accept_with) (server), or
/// [`from_upgraded`](Self::from_upgraded) for a stream something else upgraded. See the
/// [module docs](self) for a complete example.
#[derive(Debug)]
pub struct WebSocket<S> {
    driven: Driven<S>,
    read_timeout: TimeoutCache,
}

impl WebSocket<MaybeTlsStream> {
    /// Connects to a `ws://` or `wss://` URL (TLS with the `rustls` feature, else
    /// [`DriverError::TlsNotSupported`]) and performs the upgrade with the default
    /// configuration. `TCP_NODELAY` is set (frames are written whole, so Nagle only delays).
    ///
    /// ```no_run
    /// let mut ws = wscore::blocking::WebSocket::connect("wss://example.com/chat")?;
    /// ws.send_text("hello")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn connect(url: &str) -> Result<Self, DriverError> {
        Self::connect_with(ClientRequest::from_url(url)?, Config::default())
    }

    /// Connects with a request (URL, subprotocols, extra headers) and a configuration.
    /// [`Config::handshake_timeout`] bounds the TCP connect, the TLS handshake and the upgrade.
    ///
    /// ```no_run
    /// use wscore::{ClientRequest, Config};
    /// let request = ClientRequest::from_url("ws://127.0.0.1:9001/chat")?.protocol("chat").header("Cookie", "id=1");
    /// let ws = wscore::blocking::WebSocket::connect_with(request, Config::default().max_message_size(1 << 20))?;
    /// assert_eq!(ws.connection().protocol(), Some("chat"));
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn connect_with(request: ClientRequest, config: Config) -> Result<Self, DriverError> {
        Self::connect_with_connector(request, config, &Connector::default())
    }

    /// Connects the way `connector` says: through an HTTP `CONNECT` proxy, with a TLS
    /// configuration of your own. A proxy's refusal is [`DriverError::Proxy`] (with its status,
    /// e.g. 407), a failed TLS handshake `DriverError::Tls`.
    ///
    /// ```no_run
    /// use wscore::{ClientRequest, Config, Connector, Proxy};
    /// let connector = Connector::new().proxy(Proxy::from_url("http://alice:s3cret@proxy.internal:3128")?);
    /// let request = ClientRequest::from_url("wss://example.com/feed")?;
    /// let ws = wscore::blocking::WebSocket::connect_with_connector(request, Config::default(), &connector)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_with_connector(
        request: ClientRequest,
        config: Config,
        connector: &Connector,
    ) -> Result<Self, DriverError> {
        connect::connect(request, config, connector)
    }

    /// Splits the connection into a [`Reader`] and a cloneable [`Writer`], over TCP or TLS.
    /// The reader blocks without holding the connection's lock, so writers on other threads
    /// are never held up by an idle peer, and automatic replies still go out (the reader writes
    /// them). For TLS, see the [module docs](self#tls-and-proxies). A heartbeat over `wss://`:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let ws = wscore::blocking::WebSocket::connect("wss://example.com/feed")?;
    /// let (mut reader, writer) = ws.split()?;
    /// let heartbeat = writer.clone();
    /// std::thread::spawn(move || {
    ///     while heartbeat.ping("still here").is_ok() {
    ///         std::thread::sleep(Duration::from_secs(15));
    ///     }
    /// });
    /// while let Some(event) = reader.read()? {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn split(self) -> io::Result<(Reader<MaybeTlsStream>, Writer<MaybeTlsStream>)> {
        match &self.driven.stream {
            MaybeTlsStream::Plain(tcp) => {
                let read_half = MaybeTlsStream::Plain(tcp.try_clone()?);
                Ok(self.split_with(read_half))
            }
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => {
                let waiter = tls.get_ref().try_clone()?;
                Ok(split::halves_waiting(self.driven, waiter, |stream, buf, readable| match stream {
                    MaybeTlsStream::Rustls(tls) => tls.read_without_blocking(buf, readable),
                    // Not reached: the stream does not change kind.
                    MaybeTlsStream::Plain(tcp) => tcp.read(buf).map(Some),
                }))
            }
        }
    }
}

impl WebSocket<TcpStream> {
    /// Splits the connection into a [`Reader`] and a cloneable [`Writer`] over two handles of
    /// the same socket ([`TcpStream::try_clone`]).
    ///
    /// The reader blocks in [`Reader::read`] without holding the connection's lock, so writers
    /// on other threads are never held up by an idle peer, and automatic replies still go out
    /// (the reader writes them). A heartbeat:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// let (mut reader, writer) = ws.split()?;
    /// let heartbeat = writer.clone();
    /// std::thread::spawn(move || {
    ///     // Stops once the connection is closing.
    ///     while heartbeat.ping("still here").is_ok() {
    ///         std::thread::sleep(Duration::from_secs(15));
    ///     }
    /// });
    /// writer.send_text("hello")?;
    /// while let Some(event) = reader.read()? {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn split(self) -> io::Result<(Reader<TcpStream>, Writer<TcpStream>)> {
        let read_half = self.driven.stream.try_clone()?;
        Ok(self.split_with(read_half))
    }
}

impl<S: Read + Write + Transport> WebSocket<S> {
    /// Performs the client upgrade over a connected stream (a TLS stream, a Unix socket...).
    ///
    /// [`Config::handshake_timeout`] bounds the wait for the response (as read and write
    /// timeouts, if the stream has them). A rejection fails with
    /// [`HandshakeError::Rejected`] carrying the response and its body.
    ///
    /// ```no_run
    /// use std::os::unix::net::UnixStream;
    /// use wscore::{ClientRequest, Config};
    /// let stream = UnixStream::connect("/run/app.sock")?;
    /// let ws = wscore::blocking::WebSocket::client(stream, ClientRequest::new("localhost", "/ws"), Config::default())?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn client(stream: S, request: ClientRequest, config: Config) -> Result<Self, DriverError> {
        let deadline = config.handshake_timeout.map(|t| Instant::now() + t);
        Self::client_until(stream, request, config, deadline, &[])
    }

    /// The client upgrade, until `deadline`, with `early` (bytes already read from the server:
    /// what a proxy sent after its answer) fed to the handshake first.
    pub(super) fn client_until(
        mut stream: S,
        request: ClientRequest,
        config: Config,
        deadline: Option<Instant>,
        early: &[u8],
    ) -> Result<Self, DriverError> {
        let mut handshake = ClientHandshake::new(request, config);
        let mut buf = [0u8; 4096];
        let conn =
            connect::exchange(
                &mut stream,
                &handshake.request_bytes(),
                early,
                deadline,
                &mut buf,
                |input| match input {
                    Some(bytes) => Ok(handshake.receive(bytes)?),
                    None => Ok(handshake.receive_eof().map(|()| None)?),
                },
            )?;
        Ok(Self::from_connection(stream, conn))
    }

    /// Performs the server upgrade with the default configuration, accepting every valid
    /// request. An invalid request is answered with its HTTP error response and fails with
    /// [`DriverError::Handshake`].
    ///
    /// ```no_run
    /// let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
    /// let (tcp, _) = listener.accept()?;
    /// let mut ws = wscore::blocking::WebSocket::accept(tcp)?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn accept(stream: S) -> Result<Self, DriverError> {
        Self::accept_with(stream, Config::default(), |_| Ok(Accept::new()))
    }

    /// Performs the server upgrade, letting `callback` inspect the request (path, query,
    /// headers, origin, offered subprotocols) and accept it ([`Accept`]: a subprotocol, extra
    /// headers) or reject it ([`Reject`]: any status, headers and body). A rejection is written
    /// to the client, the transport is shut down, and the call fails with
    /// [`HandshakeError::Rejected`] carrying the response sent.
    ///
    /// [`Config::handshake_timeout`] bounds the wait for the request.
    ///
    /// ```no_run
    /// use wscore::{Accept, Config, Reject};
    /// let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
    /// let (tcp, _) = listener.accept()?;
    /// let ws = wscore::blocking::WebSocket::accept_with(tcp, Config::default(), |request| {
    ///     if request.header("Cookie") != Some("session=ok") {
    ///         return Err(Reject::new(401).body("log in first"));
    ///     }
    ///     match request.protocols().contains(&"chat") {
    ///         true => Ok(Accept::new().protocol("chat")),
    ///         false => Ok(Accept::new()),
    ///     }
    /// })?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn accept_with<F>(mut stream: S, config: Config, callback: F) -> Result<Self, DriverError>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let respond_timeout = config.handshake_timeout;
        let mut handshake = ServerHandshake::new(config);
        let mut buf = [0u8; 4096];
        let request = loop {
            let now = Instant::now();
            if let Err(e) = handshake.handle_timeout(now) {
                return Err(refuse(stream, &e.response(), e.into(), respond_timeout));
            }
            let deadline = handshake.poll_timeout();
            stream.set_read_timeout(time_until(deadline, now))?;
            let n = match stream.read(&mut buf) {
                Ok(0) => return Err(HandshakeError::UnexpectedEof.into()),
                Ok(n) => n.min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) && deadline.is_some() => continue,
                Err(e) => return Err(e.into()),
            };
            match handshake.receive(&buf[..n]) {
                Ok(Some(request)) => break request,
                Ok(None) => {}
                Err(e) => return Err(refuse(stream, &e.response(), e.into(), respond_timeout)),
            }
        };
        match callback(request) {
            Ok(accept) => match handshake.accept(accept) {
                Ok(conn) => {
                    let mut ws = Self::from_connection(stream, conn);
                    ws.flush()?; // the 101 response
                    Ok(ws)
                }
                // The application selected a subprotocol the client did not offer.
                Err(e) => Err(refuse(stream, &e.response(), e.into(), respond_timeout)),
            },
            Err(reject) => {
                let error = HandshakeError::Rejected(Box::new(reject.to_response()));
                Err(refuse(stream, &handshake.reject(reject), error.into(), respond_timeout))
            }
        }
    }

    /// A connection over a stream that something else already upgraded (an HTTP server, a
    /// proxy), with a new [`Connection`] for `role`.
    ///
    /// ```
    /// use wscore::blocking::{Untimed, WebSocket};
    /// use wscore::{Config, Role};
    /// let ws = WebSocket::from_upgraded(Untimed(std::io::Cursor::new(Vec::new())), Role::Client, Config::default());
    /// assert_eq!(ws.connection().role(), Role::Client);
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
    /// source for tests...) over `stream`. Output the connection already holds is written by
    /// the first call that writes.
    ///
    /// ```
    /// use wscore::blocking::{Untimed, WebSocket};
    /// use wscore::{Config, Connection};
    /// let ws = WebSocket::from_connection(Untimed(std::io::Cursor::new(Vec::new())), Connection::server(Config::default()));
    /// assert_eq!(ws.connection().state(), wscore::State::Open);
    /// ```
    #[must_use]
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self {
            driven: Driven {
                conn,
                stream,
                transport: TransportState::default(),
                write_timeout: TimeoutCache::default(),
            },
            read_timeout: TimeoutCache::default(),
        }
    }

    /// Blocks until the next event: a data message, or a ping, pong or close frame (already
    /// answered). `Ok(None)` once the close handshake is complete and the transport shut down
    /// (and on every later call); an error when the connection failed, after the events that
    /// came before the failure.
    ///
    /// Keep reading after [`Event::Close`]: the close handshake completes (and the transport is
    /// shut down) only then.
    ///
    /// ```no_run
    /// use wscore::{Event, Message};
    /// let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// while let Some(event) = ws.read()? {
    ///     match event {
    ///         Event::Message(Message::Text(text)) => println!("{}", text.as_str()),
    ///         Event::Message(Message::Binary(data)) => println!("{} bytes", data.len()),
    ///         Event::Close(frame) => println!("the server closes: {frame:?}"),
    ///         _ => {} // pings (answered already), pongs
    ///     }
    /// }
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn read(&mut self) -> Result<Option<Event>, DriverError> {
        loop {
            match self.driven.turn()? {
                Turn::Report(event) => return Ok(event),
                Turn::Linger(until) => {
                    transport::linger(&mut self.driven.stream, &mut self.read_timeout, until);
                    self.driven.end_linger();
                    continue;
                }
                Turn::Wait => {}
            }
            let now = Instant::now();
            let deadline = self.driven.conn.poll_timeout();
            if !self.driven.transport.usable() {
                // Unreachable in practice (a failed transport makes the connection ask to be
                // closed), but never spin.
                let _ = self.driven.conn.receive_eof();
                continue;
            }
            let timeout = time_until(deadline, now);
            let Driven { conn, stream, .. } = &mut self.driven;
            self.read_timeout.set(timeout, |t| stream.set_read_timeout(t))?;
            let result = stream.read(conn.receive_buffer());
            self.driven.after_read(result, None, timeout.is_some())?;
        }
    }

    /// Sends a message and writes it out (with anything else queued).
    ///
    /// ```no_run
    /// use wscore::Message;
    /// let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.send(Message::Binary(vec![1, 2, 3].into()))?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send(&mut self, message: Message) -> Result<(), DriverError> {
        self.driven.send(message)
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.send_text("hello")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), DriverError> {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.send_binary(&b"\x00\x01"[..])?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), DriverError> {
        self.send(Message::Binary(data.into()))
    }

    /// Sends one piece of a message streamed in pieces (see [`Connection::send_fragment`]).
    ///
    /// ```no_run
    /// use wscore::MessageKind;
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.send_fragment(MessageKind::Binary, vec![0; 1 << 20], false)?;
    /// ws.send_fragment(MessageKind::Binary, vec![1; 1 << 20], true)?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn send_fragment(&mut self, kind: MessageKind, data: impl Into<Bytes>, last: bool) -> Result<(), DriverError> {
        self.driven.command(|conn| conn.send_fragment(kind, data, last))
    }

    /// Queues a message without writing it (unless the write buffer is full: then what is
    /// buffered is written first). It goes out with the next [`flush`](Self::flush), send, or
    /// [`read`](Self::read) that has to wait for input — so an echo loop that queues its
    /// replies writes each burst of them in one go.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// for i in 0..10 {
    ///     ws.queue(wscore::Message::Text(format!("line {i}").into()))?;
    /// }
    /// ws.flush()?; // one vectored write where the socket takes it
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn queue(&mut self, message: Message) -> Result<(), DriverError> {
        self.driven.queue(message)
    }

    /// Sends a ping (at most 125 bytes). The peer's pong arrives as [`Event::Pong`].
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.ping("are you there?")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        self.driven.command(|conn| conn.ping(payload))
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. a one-way heartbeat.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.pong("")?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), DriverError> {
        self.driven.command(|conn| conn.pong(payload))
    }

    /// Starts the close handshake (or answers the peer's close) and writes the close frame.
    /// Then keep calling [`read`](Self::read) until it returns `Ok(None)`: the handshake
    /// completes there.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.close(wscore::CloseCode::NORMAL, "done")?;
    /// while ws.read()?.is_some() {}
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), DriverError> {
        self.driven.command(|conn| conn.close(code, reason))
    }

    /// Writes out everything queued (by [`queue`](Self::queue), or left by an interrupted
    /// write).
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.flush()?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn flush(&mut self) -> Result<(), DriverError> {
        self.driven.flush()
    }

    /// Splits the connection into a [`Reader`] that reads from `read_half` and a cloneable
    /// [`Writer`] that writes to this stream. `read_half` must read from the same transport
    /// (a clone of the socket handle). For a [`TcpStream`], [`split`](WebSocket::split) does
    /// this.
    ///
    /// ```no_run
    /// use std::os::unix::net::UnixStream;
    /// # let stream = UnixStream::connect("/run/app.sock")?;
    /// let ws = wscore::blocking::WebSocket::client(stream, wscore::ClientRequest::new("localhost", "/"), wscore::Config::default())?;
    /// let read_half = ws.get_ref().try_clone()?;
    /// let (reader, writer) = ws.split_with(read_half);
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn split_with(self, read_half: S) -> (Reader<S>, Writer<S>) {
        split::halves(self.driven, read_half)
    }
}

impl<S> WebSocket<S> {
    /// The connection (state, negotiated subprotocol and extensions, buffered amounts).
    ///
    /// ```no_run
    /// let ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// println!("{:?} {:?}", ws.connection().state(), ws.connection().protocol());
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.driven.conn
    }

    /// The connection, mutably: for the commands this driver does not wrap. Call
    /// [`flush`](Self::flush) afterwards to write what they queued.
    ///
    /// ```no_run
    /// # let mut ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// ws.connection_mut().close_normal()?;
    /// ws.flush()?;
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.driven.conn
    }

    /// The stream.
    ///
    /// ```no_run
    /// let ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// println!("peer: {}", ws.get_ref().tcp().peer_addr()?);
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.driven.stream
    }

    /// The stream, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.driven.stream
    }

    /// The stream and the connection, for another driver to take over.
    ///
    /// ```no_run
    /// let ws = wscore::blocking::WebSocket::connect("ws://127.0.0.1:9001")?;
    /// let (tcp, conn) = ws.into_inner();
    /// # Ok::<(), wscore::DriverError>(())
    /// ```
    #[must_use]
    pub fn into_inner(self) -> (S, Connection) {
        (self.driven.stream, self.driven.conn)
    }
}

/// Writes a handshake failure response, shuts the transport down, and returns `error`.
fn refuse<S: Write + Transport>(
    mut stream: S,
    response: &[u8],
    error: DriverError,
    timeout: Option<Duration>,
) -> DriverError {
    // The peer may be gone already; the handshake error is what matters.
    let _ = stream.set_write_timeout(timeout);
    let _ = stream.write_all(response).and_then(|()| stream.flush());
    let _ = stream.shutdown();
    error
}
