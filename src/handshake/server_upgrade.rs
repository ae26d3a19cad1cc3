//! The server's negotiation, written once for every way a WebSocket starts: validate the
//! request (RFC 6455 §4.2.1 for the HTTP/1.1 upgrade; RFC 8441 §4–5 for the HTTP/2 extended
//! CONNECT), apply the `Origin` policy, check the application's subprotocol choice (§4.2.2),
//! negotiate permessage-deflate (RFC 7692 §5), and produce the response head (101 with
//! `Sec-WebSocket-Accept`, or 200) together with the configured server [`Connection`].
//!
//! [`ServerHandshake`](crate::ServerHandshake) runs this on requests it parsed from bytes; HTTP
//! stacks that parse requests themselves (hyper, axum, h2, any `http`-crate server) call
//! [`ServerUpgrade`] directly, and with the `http` feature straight on `http::Request`.

use super::{AcceptKey, HandshakeError, HttpVersion, Request, has_token, is_connection_specific, sanitize};
use crate::config::Config;
use crate::connection::{Connection, Role};
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

    /// Add a header to the success response (e.g. `Set-Cookie`). Over HTTP/2 the name is sent
    /// in lower case and connection-specific headers (`Connection`, `Upgrade`, `Keep-Alive`,
    /// `Transfer-Encoding`...) are left out, as RFC 9113 §8.2 requires.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The server side of upgrades whose request an HTTP stack already parsed: the
/// [`Config`] and [`OriginPolicy`] to apply, reusable for any number of requests.
///
/// [`validate`](Self::validate) checks a request and returns a [`PendingUpgrade`] to inspect
/// and then [`accept`](PendingUpgrade::accept) (or answer with a [`Reject`](crate::Reject));
/// an error is answered with [`HandshakeError::reject`]. This is the same negotiation
/// [`ServerHandshake`](crate::ServerHandshake) runs on the bytes it reads.
///
/// Over HTTP/1.1:
///
/// ```
/// use wscore::{Accept, Config, Headers, HttpVersion, Request, ServerUpgrade};
/// let server = ServerUpgrade::new(Config::default());
/// let mut headers = Headers::new();
/// for (name, value) in [
///     ("host", "example.com"),
///     ("upgrade", "websocket"),
///     ("connection", "Upgrade"),
///     ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
///     ("sec-websocket-version", "13"),
///     ("sec-websocket-protocol", "chat, superchat"),
/// ] {
///     headers.push(name, value);
/// }
/// let pending = server.validate(HttpVersion::Http11, Request::new("GET", "/chat", headers)).unwrap();
/// assert_eq!(pending.request().protocols(), ["chat", "superchat"]);
/// let (response, conn) = pending.accept(Accept::new().protocol("chat")).unwrap();
/// assert_eq!(response.status(), 101);
/// assert_eq!(response.header("Sec-WebSocket-Accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// assert_eq!((conn.role(), conn.protocol()), (wscore::Role::Server, Some("chat")));
/// ```
///
/// Over HTTP/2 (RFC 8441), with the pseudo-headers as the HTTP/2 stack decoded them:
///
/// ```
/// use wscore::{Accept, Config, HandshakeError, Headers, HttpVersion, Request, ServerUpgrade};
/// let server = ServerUpgrade::new(Config::default());
/// let mut headers = Headers::new();
/// headers.push(":authority", "example.com");
/// headers.push(":protocol", "websocket");
/// headers.push("sec-websocket-version", "13");
/// let request = Request::new("CONNECT", "/chat", headers.clone());
/// let (response, _conn) = server.validate(HttpVersion::Http2, request).unwrap().accept(Accept::new()).unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.header("sec-websocket-accept"), None); // no key, no accept (RFC 8441 §5)
///
/// // A GET is not an extended CONNECT: 405 with `allow: CONNECT`.
/// let err = server.validate(HttpVersion::Http2, Request::new("GET", "/chat", headers)).unwrap_err();
/// assert_eq!(err.reject(HttpVersion::Http2).status(), 405);
/// ```
#[derive(Debug, Clone)]
pub struct ServerUpgrade {
    pub(super) config: Config,
    pub(super) origin_policy: OriginPolicy,
}

impl ServerUpgrade {
    /// Upgrades configured by `config`, from any origin.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self { config, origin_policy: OriginPolicy::Any }
    }

    /// Sets the policy for the `Origin` header (default: any origin). A request whose origin the
    /// policy refuses fails with [`HandshakeError::ForbiddenOrigin`] (403).
    #[must_use]
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.origin_policy = policy;
        self
    }

    /// The configuration each accepted connection gets.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Checks an upgrade request carried by `version` and the `Origin` policy.
    ///
    /// For [`HttpVersion::Http11`]: method `GET`, one `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, a 16-byte base64 `Sec-WebSocket-Key`, `Sec-WebSocket-Version:
    /// 13`, at most one `Origin`, no body (RFC 6455 §4.2.1). The HTTP version itself (1.1 or
    /// later) is the caller's to check; an HTTP/1.0 request is [`HandshakeError::NotHttp11`].
    ///
    /// For [`HttpVersion::Http2`]: method `CONNECT`, one `:protocol` pseudo-header equal to
    /// `websocket`, a non-empty `:path` (the request target), an `:authority` (or `Host`),
    /// `sec-websocket-version: 13`, at most one `origin` (RFC 8441 §4–5). A
    /// `sec-websocket-key` is ignored: RFC 8441 §5 replaces it with `:protocol`.
    pub fn validate(&self, version: HttpVersion, request: Request) -> Result<PendingUpgrade, HandshakeError> {
        let key = match version {
            HttpVersion::Http11 => Some(validate_http11(&request)?),
            HttpVersion::Http2 => {
                validate_extended_connect(&request)?;
                None
            }
        };
        // An `Origin` that is not UTF-8 is still present: judge its lossy form, never "none".
        let origin = request.headers.get("Origin").map(String::from_utf8_lossy);
        if !self.origin_policy.allows(origin.as_deref()) {
            return Err(HandshakeError::ForbiddenOrigin);
        }
        Ok(PendingUpgrade { version, request, key, config: self.config.clone() })
    }
}

/// A valid upgrade request waiting for the application's answer: inspect
/// [`request`](Self::request) (path, query, headers, origin, offered subprotocols), then
/// [`accept`](Self::accept), or answer with a [`Reject`](crate::Reject) instead.
#[derive(Debug)]
pub struct PendingUpgrade {
    version: HttpVersion,
    request: Request,
    key: Option<AcceptKey>,
    config: Config,
}

impl PendingUpgrade {
    /// The request.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Which HTTP carries the handshake.
    #[must_use]
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// Accepts: the response head to send (101 with `Upgrade`, `Connection` and
    /// `Sec-WebSocket-Accept` over HTTP/1.1; 200 over HTTP/2), with the chosen subprotocol,
    /// the application's headers and the permessage-deflate answer; and the server
    /// [`Connection`] for the upgraded stream, with that subprotocol and deflate in force.
    ///
    /// Fails if the chosen subprotocol was not offered (or holds CR or LF, which no header
    /// value can carry).
    pub fn accept(self, accept: Accept) -> Result<(UpgradeResponse, Connection), HandshakeError> {
        if let Some(protocol) = &accept.protocol {
            // One with CR or LF could not go into the header as it is: the answer would name
            // another subprotocol than the connection's.
            if protocol.contains(['\r', '\n']) || !self.request.protocols().iter().any(|p| p == protocol) {
                return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"));
            }
        }
        let http2 = self.version == HttpVersion::Http2;
        // HTTP/2 field names are lower case (RFC 9113 §8.2.1).
        let name = |name: &str| {
            let name = sanitize(name);
            if http2 { name.to_ascii_lowercase() } else { name }
        };
        let mut headers = Vec::new();
        if let Some(key) = self.key {
            headers.push((String::from("Upgrade"), String::from("websocket")));
            headers.push((String::from("Connection"), String::from("Upgrade")));
            headers.push((String::from("Sec-WebSocket-Accept"), String::from(key.as_str())));
        }
        if let Some(protocol) = &accept.protocol {
            headers.push((name("Sec-WebSocket-Protocol"), sanitize(protocol)));
        }
        for (header, value) in &accept.headers {
            // Judged by the name as sent: CR or LF inside must not smuggle `Connection` through.
            if !(http2 && is_connection_specific(&sanitize(header))) {
                headers.push((name(header), sanitize(value)));
            }
        }
        #[cfg(feature = "deflate")]
        let deflate = self.negotiate_deflate();
        #[cfg(feature = "deflate")]
        if let Some((_, value)) = &deflate {
            headers.push((name("Sec-WebSocket-Extensions"), value.clone()));
        }
        let mut conn = Connection::new(Role::Server, self.config, None);
        conn.set_protocol(accept.protocol);
        #[cfg(feature = "deflate")]
        if let Some((params, _)) = deflate {
            conn = conn.with_deflate(params);
        }
        Ok((UpgradeResponse { status: self.version.success_status(), headers }, conn))
    }

    /// Accepts the first permessage-deflate offer the configuration can honour. Unknown
    /// extensions and malformed offers are ignored (RFC 6455 §9.1: the server declines them).
    #[cfg(feature = "deflate")]
    fn negotiate_deflate(&self) -> Option<(crate::DeflateParams, String)> {
        let config = self.config.deflate.as_ref()?;
        let offers: Vec<_> = self
            .request
            .headers
            .get_all("Sec-WebSocket-Extensions")
            .filter_map(|v| core::str::from_utf8(v).ok())
            .filter_map(|v| crate::extensions::parse_extensions(v).ok())
            .flatten()
            .collect();
        crate::extensions::deflate::negotiate(config, &offers)
    }
}

/// The head of a successful answer to an upgrade request: its status (101 or 200) and header
/// fields, in order, free of CR and LF. Send it with the HTTP stack that parsed the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeResponse {
    status: u16,
    headers: Vec<(String, String)>,
}

impl UpgradeResponse {
    /// The status: 101 (HTTP/1.1) or 200 (HTTP/2).
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The first value of a header (name compared ASCII case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    }

    /// The response as HTTP/1.1 bytes.
    pub(crate) fn encode_http11(&self) -> Bytes {
        let mut out = alloc::format!("HTTP/1.1 {} {}\r\n", self.status, super::reason_phrase(self.status));
        for (name, value) in &self.headers {
            out.push_str(&alloc::format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into()
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

/// Checks an HTTP/1.1 upgrade request (RFC 6455 §4.2.1) and returns the accept key.
fn validate_http11(request: &Request) -> Result<AcceptKey, HandshakeError> {
    if request.method != "GET" {
        return Err(HandshakeError::MethodNotGet(request.method.clone()));
    }
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
    validate_version(request)?;
    if headers.count("Sec-WebSocket-Key") != 1 {
        return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Key"));
    }
    let key = headers.get("Sec-WebSocket-Key").unwrap_or_default().trim_ascii();
    let mut decoded = [0u8; 18];
    match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut decoded) {
        Ok(16) => {}
        _ => return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Key")),
    }
    validate_origin_count(request)?;
    let has_body =
        headers.get_all("Content-Length").any(|v| v.trim_ascii() != b"0") || headers.count("Transfer-Encoding") > 0;
    if has_body {
        return Err(HandshakeError::UnexpectedBody);
    }
    Ok(AcceptKey::from_key(key))
}

/// Checks an HTTP/2 extended CONNECT request (RFC 8441 §4–5).
fn validate_extended_connect(request: &Request) -> Result<(), HandshakeError> {
    if request.method != "CONNECT" {
        return Err(HandshakeError::MethodNotConnect(request.method.clone()));
    }
    let headers = &request.headers;
    // Protocol names are compared like the HTTP/1.1 `Upgrade` token: ASCII case-insensitively.
    if headers.count(":protocol") != 1
        || !headers.get(":protocol").is_some_and(|p| p.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    {
        return Err(HandshakeError::InvalidHeader(":protocol"));
    }
    if request.target.is_empty() {
        return Err(HandshakeError::InvalidHeader(":path"));
    }
    if headers.count(":authority") > 1 || headers.count("Host") > 1 || request.host().is_none() {
        return Err(HandshakeError::InvalidHeader(":authority"));
    }
    validate_version(request)?;
    validate_origin_count(request)
}

fn validate_version(request: &Request) -> Result<(), HandshakeError> {
    let headers = &request.headers;
    if headers.count("Sec-WebSocket-Version") != 1 || headers.get("Sec-WebSocket-Version") != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    Ok(())
}

fn validate_origin_count(request: &Request) -> Result<(), HandshakeError> {
    if request.headers.count("Origin") > 1 {
        return Err(HandshakeError::InvalidHeader("Origin"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Headers;

    fn extended_connect(fields: &[(&str, &str)]) -> Request {
        let mut headers = Headers::new();
        for (name, value) in fields {
            headers.push(*name, Bytes::copy_from_slice(value.as_bytes()));
        }
        Request::new("CONNECT", "/chat", headers)
    }

    const AUTHORITY: (&str, &str) = (":authority", "example.com");
    const PROTOCOL: (&str, &str) = (":protocol", "websocket");
    const VERSION: (&str, &str) = ("sec-websocket-version", "13");

    #[test]
    fn extended_connect_requirements() {
        let server = ServerUpgrade::new(Config::default());
        let check = |fields: &[(&str, &str)]| server.validate(HttpVersion::Http2, extended_connect(fields)).map(|_| ());
        assert_eq!(check(&[AUTHORITY, PROTOCOL, VERSION]), Ok(()));
        // `Host` may stand in for `:authority`; the protocol token is case-insensitive; a key
        // is ignored.
        assert_eq!(check(&[("host", "example.com"), (":protocol", "WebSocket"), VERSION]), Ok(()));
        assert_eq!(check(&[AUTHORITY, PROTOCOL, VERSION, ("sec-websocket-key", "x")]), Ok(()));
        let table: &[(&[(&str, &str)], HandshakeError)] = &[
            (&[AUTHORITY, VERSION], HandshakeError::InvalidHeader(":protocol")),
            (&[AUTHORITY, (":protocol", "webtransport"), VERSION], HandshakeError::InvalidHeader(":protocol")),
            (&[AUTHORITY, PROTOCOL, PROTOCOL, VERSION], HandshakeError::InvalidHeader(":protocol")),
            (&[PROTOCOL, VERSION], HandshakeError::InvalidHeader(":authority")),
            (&[AUTHORITY, AUTHORITY, PROTOCOL, VERSION], HandshakeError::InvalidHeader(":authority")),
            (&[AUTHORITY, PROTOCOL], HandshakeError::UnsupportedVersion),
            (&[AUTHORITY, PROTOCOL, ("sec-websocket-version", "8")], HandshakeError::UnsupportedVersion),
            (
                &[AUTHORITY, PROTOCOL, VERSION, ("origin", "a"), ("origin", "b")],
                HandshakeError::InvalidHeader("Origin"),
            ),
        ];
        for (fields, expected) in table {
            assert_eq!(check(fields).as_ref(), Err(expected), "{fields:?}");
        }
        let mut get = extended_connect(&[AUTHORITY, PROTOCOL, VERSION]);
        get.method = "GET".into();
        let err = server.validate(HttpVersion::Http2, get).unwrap_err();
        assert_eq!(err, HandshakeError::MethodNotConnect("GET".into()));
        let reject = err.reject(HttpVersion::Http2);
        assert_eq!((reject.status(), reject.headers().collect::<Vec<_>>()), (405, alloc::vec![("allow", "CONNECT")]));
        let mut no_path = extended_connect(&[AUTHORITY, PROTOCOL, VERSION]);
        no_path.target.clear();
        assert_eq!(server.validate(HttpVersion::Http2, no_path).unwrap_err(), HandshakeError::InvalidHeader(":path"));
    }

    #[test]
    fn extended_connect_origin_policy() {
        let server =
            ServerUpgrade::new(Config::default()).origin_policy(OriginPolicy::allow_list(["https://a.example"]));
        let ok = extended_connect(&[AUTHORITY, PROTOCOL, VERSION, ("origin", "https://a.example")]);
        assert!(server.validate(HttpVersion::Http2, ok).is_ok());
        let evil = extended_connect(&[AUTHORITY, PROTOCOL, VERSION, ("origin", "https://evil.example")]);
        let err = server.validate(HttpVersion::Http2, evil).unwrap_err();
        assert_eq!(err.reject(HttpVersion::Http2).status(), 403);
    }

    #[test]
    fn http2_response_is_lower_case_without_connection_headers() {
        let server = ServerUpgrade::new(Config::default());
        let request = extended_connect(&[AUTHORITY, PROTOCOL, VERSION, ("sec-websocket-protocol", "chat")]);
        let accept = Accept::new().protocol("chat").header("Set-Cookie", "a=1\r\nx: y").header("Connection", "close");
        let (response, conn) = server.validate(HttpVersion::Http2, request).unwrap().accept(accept).unwrap();
        assert_eq!(response.status(), 200);
        let headers: Vec<_> = response.headers().collect();
        assert_eq!(headers, [("sec-websocket-protocol", "chat"), ("set-cookie", "a=1x: y")]);
        assert_eq!(conn.protocol(), Some("chat"));
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn http2_negotiates_deflate_like_http11() {
        let server = ServerUpgrade::new(Config::default());
        let offer = ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits");
        let request = extended_connect(&[AUTHORITY, PROTOCOL, VERSION, offer]);
        let (response, conn) = server.validate(HttpVersion::Http2, request).unwrap().accept(Accept::new()).unwrap();
        assert_eq!(response.header("sec-websocket-extensions"), Some("permessage-deflate"));
        assert!(conn.deflate_params().is_some());
    }
}
