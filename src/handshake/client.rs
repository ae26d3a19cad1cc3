//! The client side of the HTTP/1.1 upgrade (RFC 6455 §4.1) on bytes: the [`ClientRequest`]
//! (from a URL), the request head written out, then the response read (bounded) and validated.
//! A rejection (any status but 101) is reported with its status, headers and body. Building the
//! request fields and validating the answer are [`ClientUpgrade`]'s, shared with HTTP stacks
//! that send requests themselves.

use super::client_upgrade::ClientUpgrade;
use super::head::{HeadReader, MAX_REJECT_BODY, parse_error};
use super::{HandshakeError, Headers, HttpVersion, Response, has_token};
use crate::config::Config;
use crate::connection::Connection;
use crate::random::RandomSource;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// What to connect to and what to ask for: URL parts, subprotocols and extra headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRequest {
    pub(super) secure: bool,
    host: String,
    port: u16,
    pub(super) target: String,
    pub(super) protocols: Vec<String>,
    pub(super) headers: Vec<(String, String)>,
}

/// Leaves out what may be secret: header values (cookies, tokens) and the query.
impl core::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientRequest")
            .field("secure", &self.secure)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("target", &super::RedactedTarget(&self.target))
            .field("protocols", &self.protocols)
            .field("headers", &super::HeaderNames(&self.headers))
            .finish()
    }
}

impl ClientRequest {
    /// Parses a `ws://` or `wss://` URL (`ws://host[:port][/path][?query]`, IPv6 hosts in
    /// brackets). A fragment is not allowed (RFC 6455 §3).
    ///
    /// ```
    /// let req = wscore::ClientRequest::from_url("wss://example.com/chat?x=1").unwrap();
    /// assert_eq!((req.host(), req.port(), req.target(), req.is_secure()), ("example.com", 443, "/chat?x=1", true));
    /// let req = wscore::ClientRequest::from_url("ws://[::1]:9001").unwrap();
    /// assert_eq!((req.host(), req.port(), req.target()), ("::1", 9001, "/"));
    /// ```
    pub fn from_url(url: &str) -> Result<Self, HandshakeError> {
        let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "ws://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "wss://") {
            (true, rest)
        } else {
            return Err(HandshakeError::InvalidUrl("scheme must be ws:// or wss://"));
        };
        if rest.contains('#') {
            return Err(HandshakeError::InvalidUrl("fragments are not allowed"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(HandshakeError::InvalidUrl("user info is not supported"));
        }
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(HandshakeError::InvalidUrl("unclosed IPv6 bracket"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(p.strip_prefix(':').ok_or(HandshakeError::InvalidUrl("bad port"))?)?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, parse_port(port)?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(HandshakeError::InvalidUrl("bad host"));
        }
        if target.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(HandshakeError::InvalidUrl("bad path"));
        }
        let target = if target.starts_with('/') { target.into() } else { alloc::format!("/{target}") };
        Ok(Self { secure, host: host.into(), port, target, protocols: Vec::new(), headers: Vec::new() })
    }

    /// A request for `path` (with optional query) on `host` (a `Host` header value: name or
    /// address, with `:port` if not the default), for transports set up by the caller.
    #[must_use]
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        // Split off the port so that `host_header` neither brackets "name:port" as if it were
        // an IPv6 address nor brackets "[v6]" twice.
        let (host, port) = split_host_value(&host.into());
        Self { secure: false, host, port, target: path.into(), protocols: Vec::new(), headers: Vec::new() }
    }

    /// Offers a subprotocol (call once per protocol, in order of preference).
    #[must_use]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a header (Cookie, Authorization, Origin, User-Agent...).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether the URL was `wss://` (the driver must wrap the transport in TLS).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host name or address (without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80/443 by default).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` value (HTTP/2's `:authority`): the host, bracketed if IPv6, with the port
    /// unless it is the scheme's default.
    pub(super) fn host_header(&self) -> String {
        let default_port = if self.secure { 443 } else { 80 };
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            alloc::format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port { host } else { alloc::format!("{host}:{}", self.port) }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn parse_port(port: &str) -> Result<u16, HandshakeError> {
    port.parse().map_err(|_| HandshakeError::InvalidUrl("bad port"))
}

/// Splits a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`) into the host
/// without brackets and the port (80 when absent or unparsable).
fn split_host_value(value: &str) -> (String, u16) {
    let (host, port) = match value.strip_prefix('[').and_then(|v6| v6.split_once(']')) {
        Some((v6, after)) => (v6, after.strip_prefix(':')),
        None => match value.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, Some(port)),
            _ => (value, None),
        },
    };
    match port.map(str::parse) {
        Some(Ok(port)) => (host.into(), port),
        Some(Err(_)) => (value.into(), 80),
        None => (host.into(), 80),
    }
}

#[derive(Debug)]
enum Phase {
    Head,
    /// A rejection whose body is being read: `Some(n)` bytes expected, `None` until EOF.
    Body(Box<Response>, Option<usize>),
    Done,
}

/// The client side of the upgrade, sans I/O.
///
/// ```
/// use wscore::{ClientHandshake, ClientRequest, Config, SeededRandom};
/// let request = ClientRequest::from_url("ws://localhost:9001/echo").unwrap().header("Cookie", "session=1");
/// let mut handshake = ClientHandshake::with_random(request, Config::default(), Box::new(SeededRandom::new(1)));
/// let bytes = handshake.request_bytes();
/// assert!(bytes.starts_with(b"GET /echo HTTP/1.1\r\nHost: localhost:9001\r\n"));
/// // A server's 401 becomes an error that carries the response.
/// let err = handshake.receive(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno").unwrap_err();
/// let wscore::HandshakeError::Rejected(response) = err else { panic!() };
/// assert_eq!((response.status, &response.body[..]), (401, &b"no"[..]));
/// ```
pub struct ClientHandshake {
    max_headers: usize,
    request: Bytes,
    /// Taken when the 101 arrives.
    upgrade: Option<ClientUpgrade>,
    reader: HeadReader,
    phase: Phase,
    response: Option<Response>,
    error: Option<HandshakeError>,
}

/// Leaves out the request (it may carry cookies or tokens): only its length.
impl core::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("request_len", &self.request.len())
            .field("upgrade", &self.upgrade)
            .field("phase", &self.phase)
            .field("response", &self.response)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// A handshake for `request`, with the default cryptographically secure random source.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide entropy.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn new(request: ClientRequest, config: Config) -> Self {
        Self::with_random(request, config, crate::random::default_random())
    }

    /// A handshake for `request`, drawing the key and all masking keys from `random`.
    #[must_use]
    pub fn with_random(request: ClientRequest, config: Config, random: Box<dyn RandomSource>) -> Self {
        let reader = HeadReader::new(config.max_handshake_size);
        let max_headers = config.max_headers;
        let upgrade = ClientUpgrade::with_random(request, HttpVersion::Http11, config, random);
        let mut head = alloc::format!("{} {} HTTP/1.1\r\n", upgrade.method(), upgrade.target());
        for (name, value) in upgrade.headers() {
            head.push_str(&alloc::format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        Self {
            max_headers,
            request: head.into(),
            upgrade: Some(upgrade),
            reader,
            phase: Phase::Head,
            response: None,
            error: None,
        }
    }

    /// The upgrade request to write to the transport.
    #[must_use]
    pub fn request_bytes(&self) -> Bytes {
        self.request.clone()
    }

    /// The server's response, once received (for its headers, e.g. `Set-Cookie`).
    #[must_use]
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// Feeds bytes read from the transport. Returns the connection once the server accepted,
    /// with any bytes that followed the response head already fed to it; fails with
    /// [`HandshakeError::Rejected`] (after reading the body) on any other status.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Connection>, HandshakeError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let result = match &mut self.phase {
            Phase::Head => self.parse_head(data),
            Phase::Body(response, expected) => {
                let mut body = BytesMut::from(&response.body[..]);
                body.extend_from_slice(data);
                response.body = body.freeze();
                if expected.is_some_and(|n| response.body.len() >= n) || response.body.len() >= MAX_REJECT_BODY {
                    Err(self.finish_rejection())
                } else {
                    Ok(None)
                }
            }
            Phase::Done => Err(HandshakeError::Malformed("handshake already complete".into())),
        };
        if let Err(err) = &result {
            self.error = Some(err.clone());
        }
        result
    }

    /// The transport ended. Completes a rejection whose body runs to the end of the stream.
    pub fn receive_eof(&mut self) -> Result<(), HandshakeError> {
        let err = match &self.phase {
            Phase::Body(..) => self.finish_rejection(),
            _ => self.error.clone().unwrap_or(HandshakeError::UnexpectedEof),
        };
        self.error = Some(err.clone());
        Err(err)
    }

    fn finish_rejection(&mut self) -> HandshakeError {
        match core::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Body(mut response, expected) => {
                let keep = expected.unwrap_or(MAX_REJECT_BODY).min(MAX_REJECT_BODY).min(response.body.len());
                response.body.truncate(keep);
                self.response = Some((*response).clone());
                HandshakeError::Rejected(response)
            }
            _ => HandshakeError::UnexpectedEof,
        }
    }

    fn parse_head(&mut self, data: &[u8]) -> Result<Option<Connection>, HandshakeError> {
        let Some(head_len) = self.reader.push(data)? else {
            return Ok(None);
        };
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut parsed = httparse::Response::new(&mut storage);
        match parsed.parse(&self.reader.buf[..head_len]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete response head".into()));
            }
            Err(err) => return Err(parse_error(err, self.max_headers)),
        }
        // Only a 101 must be HTTP/1.1; any other status (an HTTP/1.0 404 too) is a rejection.
        if parsed.version != Some(1) && parsed.code == Some(101) {
            return Err(HandshakeError::NotHttp11);
        }
        let response = Response {
            status: parsed.code.unwrap_or_default(),
            reason: parsed.reason.unwrap_or_default().into(),
            headers: Headers::from_httparse(parsed.headers),
            body: Bytes::new(),
        };
        let rest = Bytes::copy_from_slice(&self.reader.buf[head_len..]);
        self.reader.buf = BytesMut::new();
        if response.status != 101 {
            let expected = response.headers.get_str("Content-Length").and_then(|v| v.trim().parse::<usize>().ok());
            let chunked = response.headers.get_all("Transfer-Encoding").any(|v| has_token(v, "chunked"));
            // A chunked body is kept raw and read to the end of the stream.
            let expected = if chunked { None } else { expected };
            self.phase = Phase::Body(Box::new(response), expected);
            if expected == Some(0) || !rest.is_empty() {
                return self.receive(&rest);
            }
            return Ok(None);
        }
        let upgrade =
            self.upgrade.take().ok_or_else(|| HandshakeError::Malformed("handshake already complete".into()))?;
        let mut conn = upgrade.finish(&response)?;
        self.response = Some(response);
        self.phase = Phase::Done;
        // A failure here is sticky in the connection and reported by its next input.
        let _ = conn.receive(&rest);
        Ok(Some(conn))
    }
}
