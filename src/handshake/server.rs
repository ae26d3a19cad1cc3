//! The server side of the HTTP/1.1 upgrade (RFC 6455 §4.2) on bytes: read the request head
//! (bounded, resumable, with a deadline), let the application inspect it, then accept (101,
//! optional subprotocol and headers) or reject (any status, headers and body). Validation and
//! negotiation are [`ServerUpgrade`]'s, shared with HTTP stacks that parse requests themselves.

use super::head::{HeadReader, parse_error};
// `Accept` is re-exported for the drivers, which name it by this path.
pub(crate) use super::server_upgrade::Accept;
use super::server_upgrade::{OriginPolicy, PendingUpgrade, ServerUpgrade};
use super::{HandshakeError, Headers, HttpVersion, Reject, Request};
use crate::config::Config;
use crate::connection::Connection;
use crate::time::Instant;
use alloc::vec::Vec;
use bytes::Bytes;

/// The server side of the upgrade, sans I/O.
///
/// ```
/// use wscore::{Accept, Config, Event, ServerHandshake};
/// let mut handshake = ServerHandshake::new(Config::default());
/// let request = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";
/// let req = handshake.receive(request).unwrap().expect("complete request");
/// assert_eq!((req.path(), req.query()), ("/chat", Some("room=1")));
/// assert_eq!(req.protocols(), ["chat", "superchat"]);
/// let mut conn = handshake.accept(Accept::new().protocol("chat")).unwrap();
/// let response = conn.take_transmit();
/// assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// assert_eq!(conn.protocol(), Some("chat"));
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    upgrade: ServerUpgrade,
    reader: HeadReader,
    pending: Option<PendingUpgrade>,
    leftover: Bytes,
    deadline: Option<Instant>,
    deadline_needs_anchor: bool,
    error: Option<HandshakeError>,
}

impl ServerHandshake {
    /// A handshake waiting for the request.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            reader: HeadReader::new(config.max_handshake_size),
            deadline_needs_anchor: config.handshake_timeout.is_some(),
            upgrade: ServerUpgrade::new(config),
            pending: None,
            leftover: Bytes::new(),
            deadline: None,
            error: None,
        }
    }

    /// Sets the policy for the `Origin` header (default: any origin). A request whose origin the
    /// policy refuses fails with [`HandshakeError::ForbiddenOrigin`] (403).
    ///
    /// ```
    /// use wscore::{Config, HandshakeError, OriginPolicy, ServerHandshake};
    /// let policy = OriginPolicy::allow_list(["https://app.example.com"]);
    /// let mut handshake = ServerHandshake::new(Config::default()).origin_policy(policy);
    /// let request = b"GET / HTTP/1.1\r\nHost: api.example.com\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n";
    /// let err = handshake.receive(request).unwrap_err();
    /// assert_eq!((err.clone(), err.status()), (HandshakeError::ForbiddenOrigin, 403));
    /// ```
    #[must_use]
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.upgrade = self.upgrade.origin_policy(policy);
        self
    }

    /// Feeds bytes read from the transport. Returns the request once it is complete and valid.
    ///
    /// On an error, write [`HandshakeError::response`] and close the transport.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<&Request>, HandshakeError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.pending.is_some() {
            // Bytes after the head belong to the connection.
            let mut leftover = Vec::from(&self.leftover[..]);
            leftover.extend_from_slice(data);
            self.leftover = leftover.into();
            return Ok(self.request());
        }
        match self.parse(data) {
            Ok(done) => Ok(if done { self.request() } else { None }),
            Err(err) => {
                self.error = Some(err.clone());
                Err(err)
            }
        }
    }

    fn parse(&mut self, data: &[u8]) -> Result<bool, HandshakeError> {
        let Some(head_len) = self.reader.push(data)? else {
            return Ok(false);
        };
        let max_headers = self.upgrade.config.max_headers;
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; max_headers];
        let mut req = httparse::Request::new(&mut storage);
        let buf = &self.reader.buf[..head_len];
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete request head".into()));
            }
            Err(err) => return Err(parse_error(err, max_headers)),
        }
        let method = req.method.unwrap_or_default();
        // A wrong method is reported before a wrong HTTP version (the negotiation checks it).
        if method == "GET" && req.version != Some(1) {
            return Err(HandshakeError::NotHttp11);
        }
        let request = Request::new(method, req.path.unwrap_or_default(), Headers::from_httparse(req.headers));
        let pending = self.upgrade.validate(HttpVersion::Http11, request)?;
        self.leftover = Bytes::copy_from_slice(&self.reader.buf[head_len..]);
        self.reader.buf = Default::default();
        self.pending = Some(pending);
        self.deadline = None;
        self.deadline_needs_anchor = false;
        Ok(true)
    }

    /// The request, once complete.
    #[must_use]
    pub fn request(&self) -> Option<&Request> {
        self.pending.as_ref().map(PendingUpgrade::request)
    }

    /// Accepts the upgrade. The returned connection's output starts with the 101 response, and
    /// any bytes received after the request head are already fed to it.
    ///
    /// Fails if the request is not complete yet or the chosen subprotocol was not offered.
    pub fn accept(self, accept: Accept) -> Result<Connection, HandshakeError> {
        let Some(pending) = self.pending else {
            return Err(self.error.unwrap_or(HandshakeError::Malformed("request not complete".into())));
        };
        let (response, mut conn) = pending.accept(accept)?;
        conn.push_raw_output(response.encode_http11());
        // A failure here is sticky in the connection and reported by its next input.
        let _ = conn.receive(&self.leftover);
        Ok(conn)
    }

    /// Rejects the upgrade: the complete HTTP response to write before closing the transport.
    ///
    /// ```
    /// let response = wscore::ServerHandshake::new(wscore::Config::default())
    ///     .reject(wscore::Reject::new(401).header("WWW-Authenticate", "Cookie").body("log in first"));
    /// assert!(response.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    /// ```
    #[must_use]
    pub fn reject(self, reject: Reject) -> Bytes {
        reject.into_bytes()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called (slowloris protection;
    /// [`Instant::ZERO`] means "now", to start the deadline).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.deadline_needs_anchor { Some(Instant::ZERO) } else { self.deadline }
    }

    /// Tells the handshake the time; fails with [`HandshakeError::Timeout`] (408) once the
    /// request has taken longer than [`Config::handshake_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        if self.deadline_needs_anchor {
            self.deadline_needs_anchor = false;
            self.deadline = self.upgrade.config.handshake_timeout.map(|t| now + t);
        }
        if self.pending.is_none() && self.deadline.is_some_and(|d| d <= now) {
            self.error = Some(HandshakeError::Timeout);
            return Err(HandshakeError::Timeout);
        }
        Ok(())
    }
}
