//! # wscore — a sans-I/O WebSocket state machine
//!
//! `wscore` implements the WebSocket protocol (RFC 6455) as a deterministic state machine:
//! bytes in, events and bytes out. It never touches a socket, never awaits, never reads a clock
//! and never reads an OS random source by itself. Blocking threads, async runtimes, embedded
//! poll loops, HTTP servers that already did the upgrade, fuzzers and benchmarks all drive the
//! same [`Connection`].
//!
//! ## The pieces
//!
//! - [`ClientHandshake`] / [`ServerHandshake`]: the HTTP/1.1 upgrade (RFC 6455 §4). Each
//!   produces a [`Connection`], with any bytes that followed the headers already fed to it.
//! - [`Connection`]: framing, masking, UTF-8 validation, fragmentation, control frames, the
//!   close handshake and keepalive. Create one directly with [`Connection::server`] or
//!   [`Connection::client`] for a stream something else upgraded (hyper, axum, HTTP/2).
//! - [`ServerUpgrade`] / [`ClientUpgrade`]: the same negotiation (validation, `Origin` policy,
//!   subprotocol, permessage-deflate) for requests and responses another HTTP stack parses
//!   and sends, as the HTTP/1.1 upgrade or the HTTP/2 extended CONNECT of RFC 8441
//!   ([`HttpVersion`]); with the `http` feature straight on `http::Request`/`http::Response`,
//!   for hyper, axum and h2.
//! - [`FrameHeader`], [`apply_mask`], [`Utf8Validator`]: the stateless codec, usable alone,
//!   with no allocation.
//! - Drivers that run the drive loop below for you, with no protocol logic of their own:
//!   [`blocking::WebSocket`] for `std::io` streams (with a [`Reader`](blocking::Reader) /
//!   [`Writer`](blocking::Writer) split for multi-threaded use) and, with the `tokio` feature,
//!   `tokio::WebSocketStream`, a `Stream` + `Sink` of messages. Both report [`DriverError`],
//!   and both connect the way a [`Connector`] says: through an HTTP `CONNECT` proxy
//!   ([`ProxyHandshake`] is the sans-I/O step), and with TLS for `wss://` (feature `rustls`).
//!
//! ## The drive loop
//!
//! After **every** input ([`receive`](Connection::receive) /
//! [`commit_received`](Connection::commit_received), [`receive_eof`](Connection::receive_eof),
//! [`handle_timeout`](Connection::handle_timeout)) and every command
//! ([`send`](Connection::send), [`ping`](Connection::ping), [`close`](Connection::close)):
//!
//! 1. **write** the bytes in [`transmit`](Connection::transmit) (then
//!    [`advance_transmit`](Connection::advance_transmit) by what was written);
//! 2. **pull events** with [`poll_event`](Connection::poll_event) until `None` — taking the
//!    peer's [`Event::Close`] queues the close reply, so write again afterwards. Or borrow
//!    them with [`poll_event_ref`](Connection::poll_event_ref): the same events as
//!    [`EventRef`]s, a short message lent as a slice of the receive buffer;
//! 3. **shut the transport down** when [`should_close_transport`](Connection::should_close_transport)
//!    says so — ideally the sending side first, then reading and discarding until the peer's
//!    end of stream or [`linger_deadline`](Connection::linger_deadline), so that a reset
//!    cannot destroy the close frame in flight (what both drivers do);
//! 4. **re-arm the timer** from [`poll_timeout`](Connection::poll_timeout) and call
//!    [`handle_timeout`](Connection::handle_timeout) when it fires (a deadline in the past means
//!    "now").
//!
//! A driver that follows this loop is correct on every runtime. Here is a complete blocking
//! echo server for one connection:
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use wscore::{Accept, Config, Event, Instant, ServerHandshake};
//!
//! fn serve(mut tcp: TcpStream) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // The upgrade.
//!     let mut handshake = ServerHandshake::new(Config::default());
//!     let mut buf = [0u8; 4096];
//!     loop {
//!         let n = tcp.read(&mut buf)?;
//!         if n == 0 {
//!             return Ok(());
//!         }
//!         match handshake.receive(&buf[..n]) {
//!             Ok(Some(_request)) => break,
//!             Ok(None) => continue,
//!             Err(e) => return Ok(tcp.write_all(&e.response())?),
//!         }
//!     }
//!     let mut conn = handshake.accept(Accept::new())?;
//!     // The drive loop.
//!     loop {
//!         // 1. write
//!         while !conn.transmit().is_empty() {
//!             let n = tcp.write(conn.transmit())?;
//!             conn.advance_transmit(n);
//!         }
//!         // 2. events (an echo server sends them back)
//!         let mut wrote_more = false;
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 Event::Message(message) => conn.send(message)?,
//!                 Event::Close(_) => {}
//!                 _ => {}
//!             }
//!             wrote_more = true;
//!         }
//!         if wrote_more {
//!             continue; // write what the events produced first
//!         }
//!         // 3. shutdown
//!         if conn.should_close_transport() {
//!             tcp.shutdown(std::net::Shutdown::Both).ok();
//!             return Ok(());
//!         }
//!         // 4. timers: wait for input at most until the next deadline.
//!         let timeout = conn.poll_timeout().map(|at| at.to_std().saturating_duration_since(std::time::Instant::now()));
//!         tcp.set_read_timeout(timeout.map(|t| t.max(std::time::Duration::from_millis(1))))?;
//!         let result = match tcp.read(conn.receive_buffer()) {
//!             Ok(0) => conn.receive_eof(),
//!             Ok(n) => conn.commit_received(n),
//!             Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
//!                 conn.commit_received(0)?;
//!                 conn.handle_timeout(Instant::now())
//!             }
//!             Err(e) => return Err(e.into()),
//!         };
//!         if let Err(e) = result {
//!             eprintln!("connection failed: {e} (close code {})", e.close_code());
//!         }
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for tcp in listener.incoming() {
//!     std::thread::spawn(move || serve(tcp?));
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## In memory
//!
//! Two connections can talk without any I/O at all — the basis of the test harness:
//!
//! ```
//! use wscore::{Config, Connection, Event, Message, SeededRandom};
//! let mut client = Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(1)));
//! let mut server = Connection::server(Config::default());
//! client.send_text("hi").unwrap();
//! server.receive(&client.take_transmit()).unwrap();
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("hi".into()))));
//! ```
//!
//! ## Automatic behaviour
//!
//! Pings are answered (only the newest pending pong is kept), the peer's close is echoed with
//! its code, and protocol violations fail the connection with the right close code (1002
//! protocol, 1007 invalid UTF-8, 1009 too big, 1008 policy, 1011 keepalive timeout). The
//! application still sees every ping and close as an event.
//!
//! ## Errors
//!
//! [`Error`] means the peer or transport misbehaved: fatal, sticky, with
//! [`Error::close_code`], and the close frame already queued — except after the close and
//! write deadlines, where a peer that does not answer or does not read would not take one
//! either, so the transport is just shut down. [`SendError`] means the caller misused the API: nothing
//! happened and the connection is still usable. [`HandshakeError`] covers the upgrade; a server
//! answers it with [`HandshakeError::response`].
//!
//! ## Limits
//!
//! Every limit on what the peer controls has a safe default and a setting in [`Config`]; see
//! the table in the [`config` module docs](crate::Config). That includes time: a peer that
//! stops reading fails the connection with [`Error::WriteTimeout`] once output has waited
//! [`Config::write_timeout`] (30 s) without a byte written, so it cannot hold a thread or task
//! forever. Non-minimal length encodings are
//! rejected (RFC 6455 §5.2 says the minimal encoding MUST be used).
//!
//! ## Panics
//!
//! Nothing the peer sends can make this crate panic: a panic is a bug. The only documented
//! panic is the default random source failing to get entropy from the operating system.
//!
//! ## Features
//!
//! - `std` (default): `std::error::Error` impls, [`Instant::now`] and conversions from
//!   `std::time::Instant`, vectored output, and the default CSPRNG for client masking keys.
//!   Without it the crate is `#![no_std]` and needs only `alloc`.
//! - `deflate` (default, implies `std`): permessage-deflate (RFC 7692), negotiated by default
//!   ([`Config::deflate`]), with bounded decompression: the message size limit applies to the
//!   inflated size and is enforced while inflating.
//! - `tokio` (default, implies `std`): the tokio driver, `wscore::tokio` (`WebSocketStream`,
//!   `connect`/`accept` over `tokio::net`). Without it the blocking driver
//!   ([`blocking`], part of `std`) is still there.
//! - `rustls` (implies `std`): `wss://` in both drivers' `connect` helpers, with rustls (the
//!   `ring` provider) and the bundled Mozilla roots, or any `rustls::ClientConfig` through a
//!   [`Connector`]. Without it `wss://` fails with [`DriverError::TlsNotSupported`]. HTTP
//!   `CONNECT` proxies ([`Proxy`], [`ProxyHandshake`]) need no feature.
//! - `http` (implies `std`): conversions to and from the `http` crate's types for
//!   [`ServerUpgrade`] (`validate_http`), [`UpgradeResponse`] and [`Reject`] (`to_http`) and
//!   [`ClientUpgrade`] (`to_http_request`, `finish_http`).

#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod close;
mod config;
mod connection;
#[cfg(feature = "std")]
mod driver;
mod error;
mod extensions;
mod frame;
mod handshake;
mod mask;
mod random;
mod time;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
pub use config::{Config, ReceiveMode};
pub use connection::{Connection, Event, EventRef, Fragment, Message, MessageKind, MessageRef, Role, State};
#[cfg(feature = "tokio")]
pub use driver::tokio;
#[cfg(feature = "std")]
pub use driver::{Connector, DriverError, blocking};
pub use error::{Error, ProtocolError, SendError};
#[cfg(feature = "deflate")]
pub use extensions::deflate::{DeflateConfig, DeflateParams};
pub use extensions::{Extension, ExtensionsSyntaxError, parse_extensions};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
pub use handshake::client::{ClientHandshake, ClientRequest};
pub use handshake::client_upgrade::ClientUpgrade;
pub use handshake::proxy::{Proxy, ProxyError, ProxyHandshake};
pub use handshake::server::ServerHandshake;
pub use handshake::server_upgrade::{
    Accept, OriginCheck, OriginPolicy, PendingUpgrade, ServerUpgrade, UpgradeResponse,
};
pub use handshake::{AcceptKey, HandshakeError, Headers, HttpVersion, MAX_REJECT_BODY, Reject, Request, Response};
pub use mask::apply_mask;
#[cfg(feature = "std")]
pub use random::default_random;
pub use random::{RandomSource, SeededRandom};
/// The rustls version the drivers use, for building a [`rustls::ClientConfig`] to pass to
/// [`Connector::tls_config`].
#[cfg(feature = "rustls")]
pub use rustls;
pub use time::Instant;
pub use utf8::{InvalidUtf8, Utf8Bytes, Utf8Validator};

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
