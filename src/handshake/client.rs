//! The client side of the upgrade (RFC 6455 §4.1): build the request from a URL, then validate
//! the response. A rejection (any status but 101) is reported with its status, headers and body.

use super::head::{HeadReader, MAX_REJECT_BODY, parse_error};
use super::{AcceptKey, HandshakeError, Headers, Response, has_token, sanitize, split_list};
use crate::config::Config;
use crate::connection::{Connection, Role};
use crate::random::RandomSource;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;
use bytes::{Bytes, BytesMut};

/// What to connect to and what to ask for: URL parts, subprotocols and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    secure: bool,
    host: String,
    port: u16,
    target: String,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
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

    fn host_header(&self) -> String {
        let default_port = if self.secure { 443 } else { 80 };
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            alloc::format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port { host } else { alloc::format!("{host}:{}", self.port) }
    }

    fn encode(&self, key: &str, extensions: Option<&str>) -> Bytes {
        let mut out = alloc::format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.target,
            sanitize(&self.host_header()),
        );
        if !self.protocols.is_empty() {
            out.push_str(&alloc::format!("Sec-WebSocket-Protocol: {}\r\n", sanitize(&self.protocols.join(", "))));
        }
        if let Some(extensions) = extensions {
            out.push_str(&alloc::format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        for (name, value) in &self.headers {
            out.push_str(&alloc::format!("{}: {}\r\n", sanitize(name), sanitize(value)));
        }
        out.push_str("\r\n");
        out.into()
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
#[derive(Debug)]
pub struct ClientHandshake {
    config: Config,
    request: Bytes,
    accept: AcceptKey,
    protocols: Vec<String>,
    reader: HeadReader,
    random: Option<Box<dyn RandomSource>>,
    phase: Phase,
    response: Option<Response>,
    error: Option<HandshakeError>,
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
    pub fn with_random(request: ClientRequest, config: Config, mut random: Box<dyn RandomSource>) -> Self {
        let mut nonce = [0u8; 16];
        random.fill_bytes(&mut nonce);
        let mut key = [0u8; 24];
        // 16 bytes always encode to exactly 24 base64 characters.
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key);
        let accept = AcceptKey::from_key(&key);
        let key = core::str::from_utf8(&key).unwrap_or_default();
        #[cfg(feature = "deflate")]
        let offer = config.deflate.as_ref().map(crate::DeflateConfig::offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        Self {
            request: request.encode(key, offer.as_deref()),
            accept,
            protocols: request.protocols,
            reader: HeadReader::new(config.max_handshake_size),
            random: Some(random),
            phase: Phase::Head,
            response: None,
            error: None,
            config,
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
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut parsed = httparse::Response::new(&mut storage);
        match parsed.parse(&self.reader.buf[..head_len]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete response head".into()));
            }
            Err(err) => return Err(parse_error(err, self.config.max_headers)),
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
        let (protocol, extensions) = self.validate(&response)?;
        self.response = Some(response);
        self.phase = Phase::Done;
        let random = self.random.take();
        let mut conn = Connection::new(Role::Client, self.config.clone(), random);
        conn.set_protocol(protocol);
        #[cfg(feature = "deflate")]
        if let Some(params) = extensions {
            conn = conn.with_deflate(params);
        }
        #[cfg(not(feature = "deflate"))]
        let _ = extensions;
        // A failure here is sticky in the connection and reported by its next input.
        let _ = conn.receive(&rest);
        Ok(Some(conn))
    }

    /// Checks a 101 response (RFC 6455 §4.1, client requirements 1–6); returns the subprotocol
    /// and the negotiated extension parameters.
    fn validate(&self, response: &Response) -> Result<(Option<String>, NegotiatedExtensions), HandshakeError> {
        let headers = &response.headers;
        if !headers.get_all("Upgrade").any(|v| has_token(v, "websocket")) {
            return Err(HandshakeError::InvalidResponse("missing Upgrade: websocket"));
        }
        if !headers.get_all("Connection").any(|v| has_token(v, "upgrade")) {
            return Err(HandshakeError::InvalidResponse("missing Connection: Upgrade"));
        }
        if headers.count("Sec-WebSocket-Accept") != 1
            || headers.get("Sec-WebSocket-Accept").map(<[u8]>::trim_ascii) != Some(self.accept.as_bytes())
        {
            return Err(HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key"));
        }
        let extensions = self.validate_extensions(headers)?;
        let mut selected = headers.get_all("Sec-WebSocket-Protocol").flat_map(split_list);
        let protocol = match (selected.next(), selected.next()) {
            (None, _) => None,
            (Some(p), None) => {
                let p = core::str::from_utf8(p).map_err(|_| HandshakeError::InvalidResponse("bad subprotocol"))?;
                if !self.protocols.iter().any(|offered| offered == p) {
                    return Err(HandshakeError::InvalidResponse("server selected a subprotocol that was not offered"));
                }
                Some(String::from(p))
            }
            (Some(_), Some(_)) => {
                return Err(HandshakeError::InvalidResponse("server selected several subprotocols"));
            }
        };
        Ok((protocol, extensions))
    }

    /// Every extension in the response must answer one of our offers (RFC 6455 §4.1 item 5).
    fn validate_extensions(&self, headers: &Headers) -> Result<NegotiatedExtensions, HandshakeError> {
        let mut list = Vec::new();
        for value in headers.get_all("Sec-WebSocket-Extensions") {
            let value = core::str::from_utf8(value).map_err(|_| HandshakeError::InvalidResponse("bad extension"))?;
            list.extend(
                crate::extensions::parse_extensions(value)
                    .map_err(|_| HandshakeError::InvalidResponse("malformed Sec-WebSocket-Extensions"))?,
            );
        }
        let Some(first) = list.first() else { return Ok(None) };
        if list.len() > 1 {
            return Err(HandshakeError::InvalidResponse("server selected several extensions"));
        }
        #[cfg(feature = "deflate")]
        if let Some(config) = &self.config.deflate {
            return crate::extensions::deflate::accept_response(config, first)
                .map(Some)
                .map_err(HandshakeError::InvalidResponse);
        }
        let _ = first;
        Err(HandshakeError::InvalidResponse("server selected an extension that was not offered"))
    }
}

#[cfg(feature = "deflate")]
type NegotiatedExtensions = Option<crate::DeflateParams>;
#[cfg(not(feature = "deflate"))]
type NegotiatedExtensions = Option<core::convert::Infallible>;
