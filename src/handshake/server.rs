//! The server side of the upgrade (RFC 6455 §4.2): read and validate the request, let the
//! application inspect it, then accept (101, optional subprotocol and headers) or reject
//! (any status, headers and body).

use super::head::{HeadReader, parse_error};
use super::{AcceptKey, HandshakeError, Headers, Reject, Request, has_token, sanitize};
use crate::config::Config;
use crate::connection::{Connection, Role};
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;
use bytes::Bytes;

/// What the application answers to an acceptable request.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    protocol: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Select a subprotocol; it must be one the client offered.
    #[must_use]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Add a header to the 101 response (e.g. `Set-Cookie`).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

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
    config: Config,
    origin_policy: OriginPolicy,
    reader: HeadReader,
    request: Option<Request>,
    key: Option<AcceptKey>,
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
            config,
            origin_policy: OriginPolicy::Any,
            request: None,
            key: None,
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
        self.origin_policy = policy;
        self
    }

    /// Feeds bytes read from the transport. Returns the request once it is complete and valid.
    ///
    /// On an error, write [`HandshakeError::response`] and close the transport.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<&Request>, HandshakeError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.request.is_some() {
            // Bytes after the head belong to the connection.
            let mut leftover = Vec::from(&self.leftover[..]);
            leftover.extend_from_slice(data);
            self.leftover = leftover.into();
            return Ok(self.request.as_ref());
        }
        match self.parse(data) {
            Ok(done) => Ok(if done { self.request.as_ref() } else { None }),
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
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut req = httparse::Request::new(&mut storage);
        let buf = &self.reader.buf[..head_len];
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete request head".into()));
            }
            Err(err) => return Err(parse_error(err, self.config.max_headers)),
        }
        let method = req.method.unwrap_or_default();
        let request = Request {
            method: method.into(),
            target: req.path.unwrap_or_default().into(),
            headers: Headers::from_httparse(req.headers),
        };
        if method != "GET" {
            return Err(HandshakeError::MethodNotGet(method.into()));
        }
        if req.version != Some(1) {
            return Err(HandshakeError::NotHttp11);
        }
        self.key = Some(validate(&request)?);
        // An `Origin` that is not UTF-8 is still present: judge its lossy form, never "none".
        let origin = request.headers.get("Origin").map(String::from_utf8_lossy);
        if !self.origin_policy.allows(origin.as_deref()) {
            return Err(HandshakeError::ForbiddenOrigin);
        }
        self.leftover = Bytes::copy_from_slice(&self.reader.buf[head_len..]);
        self.reader.buf = Default::default();
        self.request = Some(request);
        self.deadline = None;
        self.deadline_needs_anchor = false;
        Ok(true)
    }

    /// The request, once complete.
    #[must_use]
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// Accepts the upgrade. The returned connection's output starts with the 101 response, and
    /// any bytes received after the request head are already fed to it.
    ///
    /// Fails if the request is not complete yet or the chosen subprotocol was not offered.
    pub fn accept(self, accept: Accept) -> Result<Connection, HandshakeError> {
        let (Some(request), Some(key)) = (&self.request, self.key) else {
            return Err(self.error.unwrap_or(HandshakeError::Malformed("request not complete".into())));
        };
        if let Some(protocol) = &accept.protocol {
            if !request.protocols().iter().any(|p| p == protocol) {
                return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"));
            }
        }
        let mut response = String::from(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
        );
        response.push_str(key.as_str());
        response.push_str("\r\n");
        if let Some(protocol) = &accept.protocol {
            response.push_str(&alloc::format!("Sec-WebSocket-Protocol: {}\r\n", sanitize(protocol)));
        }
        for (name, value) in &accept.headers {
            response.push_str(&alloc::format!("{}: {}\r\n", sanitize(name), sanitize(value)));
        }
        #[cfg(feature = "deflate")]
        let deflate = self.negotiate_deflate(request);
        #[cfg(feature = "deflate")]
        if let Some((_, value)) = &deflate {
            response.push_str(&alloc::format!("Sec-WebSocket-Extensions: {value}\r\n"));
        }
        response.push_str("\r\n");
        let mut conn = Connection::new(Role::Server, self.config, None);
        conn.set_protocol(accept.protocol);
        #[cfg(feature = "deflate")]
        if let Some((params, _)) = deflate {
            conn = conn.with_deflate(params);
        }
        conn.push_raw_output(Bytes::from(response));
        // A failure here is sticky in the connection and reported by its next input.
        let _ = conn.receive(&self.leftover);
        Ok(conn)
    }

    /// Accepts the first permessage-deflate offer the configuration can honour. Unknown
    /// extensions and malformed offers are ignored (RFC 6455 §9.1: the server declines them).
    #[cfg(feature = "deflate")]
    fn negotiate_deflate(&self, request: &Request) -> Option<(crate::DeflateParams, String)> {
        let config = self.config.deflate.as_ref()?;
        let offers: Vec<_> = request
            .headers
            .get_all("Sec-WebSocket-Extensions")
            .filter_map(|v| core::str::from_utf8(v).ok())
            .filter_map(|v| crate::extensions::parse_extensions(v).ok())
            .flatten()
            .collect();
        crate::extensions::deflate::negotiate(config, &offers)
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
            self.deadline = self.config.handshake_timeout.map(|t| now + t);
        }
        if self.request.is_none() && self.deadline.is_some_and(|d| d <= now) {
            self.error = Some(HandshakeError::Timeout);
            return Err(HandshakeError::Timeout);
        }
        Ok(())
    }
}

/// Which `Origin` values a server accepts: protection against cross-site WebSocket hijacking.
///
/// Browsers attach `Origin` to every WebSocket upgrade and, unlike for `fetch`, enforce no
/// same-origin policy: any page the user visits can open a WebSocket to your server *with the
/// user's cookies*. A server that authenticates by cookie must check `Origin`. Non-browser
/// clients usually send no `Origin`; [`OriginPolicy::allow_list`] lets them through (they carry
/// no ambient browser credentials), [`OriginPolicy::allow_list_strict`] does not.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Any origin, or none (the default).
    #[default]
    Any,
    /// Only these origins (compared ASCII case-insensitively, e.g. `https://app.example.com`).
    AllowList {
        /// The accepted origins.
        origins: Vec<String>,
        /// Whether a request without `Origin` is accepted.
        allow_missing: bool,
    },
    /// A function of the `Origin` value (`None` when absent) that returns whether to accept.
    Check(alloc::sync::Arc<OriginCheck>),
}

/// A function deciding on an `Origin` value (`None` when the header is absent).
pub type OriginCheck = dyn Fn(Option<&str>) -> bool + Send + Sync;

impl OriginPolicy {
    /// Accept these origins, and requests without `Origin` (non-browser clients).
    pub fn allow_list<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self::AllowList { origins: origins.into_iter().map(Into::into).collect(), allow_missing: true }
    }

    /// Accept only these origins; a request without `Origin` is refused.
    pub fn allow_list_strict<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self::AllowList { origins: origins.into_iter().map(Into::into).collect(), allow_missing: false }
    }

    /// Accept what `check` accepts.
    pub fn check(check: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> Self {
        Self::Check(alloc::sync::Arc::new(check))
    }

    /// Whether a request with this `Origin` value is accepted.
    #[must_use]
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (Self::Any, _) => true,
            (Self::AllowList { allow_missing, .. }, None) => *allow_missing,
            (Self::AllowList { origins, .. }, Some(origin)) => {
                origins.iter().any(|o| o.eq_ignore_ascii_case(origin.trim()))
            }
            (Self::Check(check), origin) => check(origin),
        }
    }
}

impl core::fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::AllowList { origins, allow_missing } => {
                f.debug_struct("AllowList").field("origins", origins).field("allow_missing", allow_missing).finish()
            }
            Self::Check(_) => f.write_str("Check(..)"),
        }
    }
}

/// Checks the upgrade headers (RFC 6455 §4.2.1) and returns the accept key.
fn validate(request: &Request) -> Result<AcceptKey, HandshakeError> {
    let headers = &request.headers;
    if headers.count("Host") != 1 {
        return Err(HandshakeError::InvalidHeader("Host"));
    }
    if !headers.get_all("Upgrade").any(|v| has_token(v, "websocket")) {
        return Err(HandshakeError::InvalidHeader("Upgrade"));
    }
    if !headers.get_all("Connection").any(|v| has_token(v, "upgrade")) {
        return Err(HandshakeError::InvalidHeader("Connection"));
    }
    if headers.count("Sec-WebSocket-Version") != 1 || headers.get("Sec-WebSocket-Version") != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    if headers.count("Sec-WebSocket-Key") != 1 {
        return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Key"));
    }
    let key = headers.get("Sec-WebSocket-Key").unwrap_or_default().trim_ascii();
    let mut decoded = [0u8; 18];
    match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut decoded) {
        Ok(16) => {}
        _ => return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Key")),
    }
    if headers.count("Origin") > 1 {
        return Err(HandshakeError::InvalidHeader("Origin"));
    }
    let has_body =
        headers.get_all("Content-Length").any(|v| v.trim_ascii() != b"0") || headers.count("Transfer-Encoding") > 0;
    if has_body {
        return Err(HandshakeError::UnexpectedBody);
    }
    Ok(AcceptKey::from_key(key))
}
