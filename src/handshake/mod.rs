//! The opening handshake: the accept key, header token lists, the parsed request and response
//! types, and the errors of both sides.
//!
//! A WebSocket starts in one of two ways: the HTTP/1.1 upgrade (RFC 6455 §4: `GET` with
//! `Upgrade: websocket`, answered by 101) or the HTTP/2 extended CONNECT (RFC 8441 §4–5:
//! `:method CONNECT` with `:protocol websocket`, answered by 200; HTTP/3 uses the same form, RFC
//! 9220). [`HttpVersion`] names which. The negotiation (validation, `Origin` policy,
//! subprotocol choice, permessage-deflate) is written once, in `server_upgrade.rs`
//! ([`ServerUpgrade`](crate::ServerUpgrade)) and `client_upgrade.rs`
//! ([`ClientUpgrade`](crate::ClientUpgrade)), on requests and responses some HTTP stack already
//! parsed. `server.rs` and `client.rs` are the byte-level HTTP/1.1 handshakes on top of them;
//! `http.rs` (feature `http`) converts to and from the `http` crate's types, which hyper, axum
//! and h2 speak. Every path hands over a [`Connection`](crate::Connection).

pub(crate) mod client;
pub(crate) mod client_upgrade;
mod head;
#[cfg(feature = "http")]
mod http;
pub(crate) mod proxy;
pub(crate) mod server;
pub(crate) mod server_upgrade;

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;
use bytes::Bytes;
use core::fmt;
use sha1::{Digest, Sha1};

pub use head::{Headers, MAX_REJECT_BODY, Request, Response};

/// The GUID RFC 6455 §1.3 appends to the key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// How the WebSocket is bootstrapped: which HTTP carries the opening handshake.
///
/// ```
/// use wscore::HttpVersion;
/// assert_eq!(HttpVersion::Http11.success_status(), 101);
/// assert_eq!(HttpVersion::Http2.success_status(), 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// The HTTP/1.1 upgrade (RFC 6455 §4): `GET` with `Upgrade: websocket`, `Connection:
    /// Upgrade` and `Sec-WebSocket-Key`, answered by `101 Switching Protocols` with
    /// `Sec-WebSocket-Accept`. The connection then carries WebSocket frames.
    Http11,
    /// The extended CONNECT of RFC 8441 (HTTP/2; HTTP/3 uses the same form, RFC 9220):
    /// `:method CONNECT` with `:protocol websocket`, no key and no accept (RFC 8441 §5),
    /// answered by `200`. One stream then carries WebSocket frames; the rest of the connection
    /// goes on multiplexing. The server must have sent `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`
    /// (§3) before a client may send such a request.
    Http2,
}

impl HttpVersion {
    /// The status of a successful answer: 101 for HTTP/1.1, 200 for HTTP/2.
    #[must_use]
    pub fn success_status(self) -> u16 {
        match self {
            Self::Http11 => 101,
            Self::Http2 => 200,
        }
    }
}

/// Header fields that are specific to one HTTP/1.1 connection: an HTTP/2 message must not
/// carry them (RFC 9113 §8.2.2), so they are left out of HTTP/2 requests and responses.
pub(crate) fn is_connection_specific(name: &str) -> bool {
    ["connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "te"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name.trim()))
}

/// A `Sec-WebSocket-Accept` value: 28 base64 characters, computed without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// Derives the accept value from a `Sec-WebSocket-Key` value.
    ///
    /// ```
    /// // RFC 6455 §1.3
    /// let accept = wscore::AcceptKey::from_key(b"dGhlIHNhbXBsZSBub25jZQ==");
    /// assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// ```
    #[must_use]
    pub fn from_key(key: &[u8]) -> Self {
        let mut sha = Sha1::new();
        sha.update(key);
        sha.update(GUID);
        let digest = sha.finalize();
        let mut out = [0u8; 28];
        // 20 bytes always encode to exactly 28 base64 characters.
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest.as_slice(), &mut out);
        Self(out)
    }

    /// The value as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The value as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcceptKey({})", self.as_str())
    }
}

/// A request target for `Debug` output: the query (where browsers' clients put access
/// tokens, since they cannot set headers) redacted.
pub(crate) struct RedactedTarget<'a>(pub(crate) &'a str);

impl fmt::Debug for RedactedTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('?') {
            Some((path, _)) => write!(f, "\"{path}?<redacted>\""),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Extra request headers for `Debug` output: names only (values may be cookies or tokens).
pub(crate) struct HeaderNames<'a>(pub(crate) &'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    split_list(value).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The trimmed, non-empty elements of a comma-separated header value.
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// Why an upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response head is larger than
    /// [`Config::max_handshake_size`](crate::Config::max_handshake_size).
    #[error("handshake head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// More header lines than [`Config::max_headers`](crate::Config::max_headers).
    #[error("handshake has more than {limit} headers")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The bytes are not a well-formed HTTP/1.1 message.
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    /// The request method is not GET.
    #[error("upgrade request method is {0}, not GET")]
    MethodNotGet(String),
    /// An extended CONNECT request (RFC 8441, [`HttpVersion::Http2`]) whose method is not
    /// CONNECT.
    #[error("extended CONNECT request method is {0}, not CONNECT")]
    MethodNotConnect(String),
    /// The request or response is not HTTP/1.1.
    #[error("upgrade requires HTTP/1.1")]
    NotHttp11,
    /// A required header is missing or has the wrong value.
    #[error("missing or invalid {0} header")]
    InvalidHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported WebSocket version (only 13 is supported)")]
    UnsupportedVersion,
    /// The upgrade request carried a body.
    #[error("upgrade request must not have a body")]
    UnexpectedBody,
    /// The `Origin` header is not allowed by the server's origin policy.
    #[error("origin not allowed")]
    ForbiddenOrigin,
    /// The server did not receive a complete request before
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    #[error("handshake not completed before the deadline")]
    Timeout,
    /// The transport ended during the handshake.
    #[error("connection closed during the handshake")]
    UnexpectedEof,
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid WebSocket URL: {0}")]
    InvalidUrl(&'static str),
    /// The server answered with a status other than 101 (the response, with its body).
    #[error("upgrade rejected with HTTP {} {}", .0.status, .0.reason)]
    Rejected(alloc::boxed::Box<Response>),
    /// The server's 101 response is not a valid WebSocket upgrade.
    #[error("invalid upgrade response: {0}")]
    InvalidResponse(&'static str),
    /// The HTTP/2 server did not enable the extended CONNECT protocol: its SETTINGS lack
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (RFC 8441 §3), so a client must not send the
    /// request. The core never sees HTTP/2 SETTINGS; a driver over an HTTP/2 stack (such as
    /// `h2`'s `SendRequest::is_extended_connect_protocol_enabled`) reports it with this.
    #[error("the HTTP/2 server does not support WebSockets (no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)")]
    ExtendedConnectDisabled,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with over HTTP/1.1 (see
    /// [`reject`](Self::reject) for HTTP/2).
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::MethodNotGet(_) | Self::MethodNotConnect(_) => 405,
            Self::UnsupportedVersion => 426,
            Self::ForbiddenOrigin => 403,
            Self::Timeout => 408,
            Self::NotHttp11 => 505,
            Self::Rejected(r) => r.status,
            _ => 400,
        }
    }

    /// The rejection a server answers this error with: the status, the headers the RFCs ask
    /// for, and the error text as the body.
    ///
    /// Over HTTP/1.1 that is [`status`](Self::status), with `Sec-WebSocket-Version: 13` for a
    /// version mismatch (RFC 6455 §4.4) and `Allow: GET` for a wrong method. Over HTTP/2 a
    /// version mismatch is a 400 (426 would need an `Upgrade` header, which HTTP/2 forbids,
    /// RFC 9110 §15.5.22 and RFC 9113 §8.2.2), still with `sec-websocket-version: 13`, and a
    /// wrong method answers `allow: CONNECT`.
    ///
    /// ```
    /// use wscore::{HandshakeError, HttpVersion};
    /// let reject = HandshakeError::UnsupportedVersion.reject(HttpVersion::Http2);
    /// assert_eq!(reject.status(), 400);
    /// assert!(reject.headers().any(|(name, value)| (name, value) == ("sec-websocket-version", "13")));
    /// assert_eq!(HandshakeError::UnsupportedVersion.reject(HttpVersion::Http11).status(), 426);
    /// ```
    #[must_use]
    pub fn reject(&self, version: HttpVersion) -> Reject {
        let status = match (version, self) {
            (HttpVersion::Http2, Self::UnsupportedVersion) => 400,
            _ => self.status(),
        };
        let reject = Reject::new(status).body(alloc::format!("{self}\n"));
        match (version, self) {
            (HttpVersion::Http11, Self::UnsupportedVersion) => reject.header("Sec-WebSocket-Version", "13"),
            (HttpVersion::Http11, Self::MethodNotGet(_)) => reject.header("Allow", "GET"),
            (HttpVersion::Http2, Self::UnsupportedVersion) => reject.header("sec-websocket-version", "13"),
            (HttpVersion::Http2, Self::MethodNotConnect(_)) => reject.header("allow", "CONNECT"),
            _ => reject,
        }
    }

    /// The HTTP/1.1 response a server writes before closing the transport: the
    /// [`reject`](Self::reject) for [`HttpVersion::Http11`], as bytes.
    ///
    /// ```
    /// let response = wscore::HandshakeError::UnsupportedVersion.response();
    /// assert!(response.starts_with(b"HTTP/1.1 426 Upgrade Required\r\n"));
    /// ```
    #[must_use]
    pub fn response(&self) -> Bytes {
        self.reject(HttpVersion::Http11).into_bytes()
    }
}

/// A rejection of an upgrade request: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reject {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Reject {
    /// A rejection with `status` and an empty body.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Bytes::new() }
    }

    /// Adds a header (CR and LF are removed, so no value can inject a header line).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((sanitize(&name.into()), sanitize(&value.into())));
        self
    }

    /// Sets the body (sent with a `Content-Length`).
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers added with [`header`](Self::header), in order.
    ///
    /// ```
    /// let reject = wscore::Reject::new(401).header("WWW-Authenticate", "Cookie");
    /// assert_eq!(reject.headers().collect::<Vec<_>>(), [("WWW-Authenticate", "Cookie")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The body.
    #[must_use]
    pub fn get_body(&self) -> &Bytes {
        &self.body
    }

    /// The response as a client sees it: what the drivers report when the application rejects
    /// an upgrade.
    #[cfg(feature = "std")]
    pub(crate) fn to_response(&self) -> Response {
        let mut headers = Headers::new();
        for (name, value) in &self.headers {
            headers.push(name.clone(), Bytes::from(value.clone()));
        }
        Response { status: self.status, reason: reason_phrase(self.status).into(), headers, body: self.body.clone() }
    }

    /// The complete HTTP/1.1 response.
    ///
    /// ```
    /// let bytes = wscore::Reject::new(401).body("no cookie").into_bytes();
    /// assert_eq!(&bytes[..], &b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno cookie"[..]);
    /// ```
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        let mut out = alloc::format!("HTTP/1.1 {} {}\r\n", self.status, reason_phrase(self.status));
        for (name, value) in &self.headers {
            out.push_str(&alloc::format!("{name}: {value}\r\n"));
        }
        out.push_str(&alloc::format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes.into()
    }
}

/// Removes CR and LF so a header name or value cannot inject header lines.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

/// The standard reason phrase for common statuses.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"  UPGRADE ", "upgrade"));
        assert!(!has_token(b"keep-alive", "upgrade"));
        assert!(!has_token(b"upgraded", "upgrade"));
        assert_eq!(split_list(b"a, ,b,").count(), 2);
    }

    #[test]
    fn reject_strips_newlines() {
        let bytes = Reject::new(400).header("X\r\nEvil", "1\r\n").into_bytes();
        assert!(bytes.starts_with(b"HTTP/1.1 400 Bad Request\r\nXEvil: 1\r\n"));
    }
}
