//! The client's negotiation, written once for every way a WebSocket starts: the request head to
//! send for a [`ClientRequest`] (RFC 6455 §4.1 for the HTTP/1.1 upgrade; RFC 8441 §4–5 for the
//! HTTP/2 extended CONNECT), and the validation of the answer (status, `Sec-WebSocket-Accept`,
//! the subprotocol and permessage-deflate, RFC 7692 §5) into a configured client
//! [`Connection`].
//!
//! [`ClientHandshake`](crate::ClientHandshake) writes and reads this as HTTP/1.1 bytes; HTTP
//! stacks that send requests themselves (hyper, h2, any `http`-crate client) use
//! [`ClientUpgrade`] directly, and with the `http` feature through `http::Request` and
//! `http::Response`.

use super::client::ClientRequest;
use super::{
    AcceptKey, HandshakeError, Headers, HttpVersion, Response, has_token, is_connection_specific, sanitize, split_list,
};
use crate::config::Config;
use crate::connection::{Connection, Role};
use crate::random::RandomSource;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;

/// The client side of an upgrade whose request and response an HTTP stack carries: the request
/// head to send, then [`finish`](Self::finish) with the response head.
///
/// Over HTTP/1.1 the request is `GET` with `Host`, `Upgrade`, `Connection`,
/// `Sec-WebSocket-Key` and `Sec-WebSocket-Version` (and the subprotocol and extension offers);
/// success is 101 with the matching `Sec-WebSocket-Accept`.
///
/// ```
/// use wscore::{ClientRequest, ClientUpgrade, Config, Headers, HttpVersion, Response, SeededRandom};
/// let request = ClientRequest::from_url("ws://example.com/chat").unwrap().protocol("chat");
/// let config = Config::default().deflate(None);
/// let upgrade = ClientUpgrade::with_random(request, HttpVersion::Http11, config, Box::new(SeededRandom::new(1)));
/// assert_eq!((upgrade.method(), upgrade.target(), upgrade.authority()), ("GET", "/chat", "example.com"));
/// let key = upgrade.header("Sec-WebSocket-Key").unwrap();
/// // ... the HTTP stack sends the request and reads the answer ...
/// let mut headers = Headers::new();
/// headers.push("Upgrade", "websocket");
/// headers.push("Connection", "Upgrade");
/// headers.push("Sec-WebSocket-Accept", wscore::AcceptKey::from_key(key.as_bytes()).as_str().to_string());
/// headers.push("Sec-WebSocket-Protocol", "chat");
/// let response = Response { status: 101, reason: "Switching Protocols".into(), headers, body: Default::default() };
/// let conn = upgrade.finish(&response).unwrap();
/// assert_eq!(conn.protocol(), Some("chat"));
/// ```
///
/// Over HTTP/2 (RFC 8441) the request is `:method CONNECT` with `:protocol websocket`,
/// `:scheme`, `:path` and `:authority`, and `sec-websocket-version: 13`; no key. Success is any
/// 2xx (RFC 9113 §8.5; servers send 200).
///
/// ```
/// use wscore::{ClientRequest, ClientUpgrade, Config, HandshakeError, Headers, HttpVersion, Response, SeededRandom};
/// let request = ClientRequest::from_url("wss://example.com/chat").unwrap();
/// let upgrade = ClientUpgrade::with_random(request, HttpVersion::Http2, Config::default(), Box::new(SeededRandom::new(1)));
/// assert_eq!((upgrade.method(), upgrade.connect_protocol(), upgrade.scheme()), ("CONNECT", Some("websocket"), "https"));
/// assert_eq!(upgrade.header("sec-websocket-version"), Some("13"));
/// assert_eq!(upgrade.header("sec-websocket-key"), None);
/// let response = Response { status: 200, reason: "OK".into(), headers: Headers::new(), body: Default::default() };
/// let conn = upgrade.finish(&response).unwrap();
/// assert_eq!(conn.role(), wscore::Role::Client);
/// ```
pub struct ClientUpgrade {
    version: HttpVersion,
    secure: bool,
    authority: String,
    target: String,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    accept: Option<AcceptKey>,
    config: Config,
    random: Box<dyn RandomSource>,
}

/// Leaves out what may be secret: header values (cookies, tokens) and the query.
impl core::fmt::Debug for ClientUpgrade {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientUpgrade")
            .field("version", &self.version)
            .field("secure", &self.secure)
            .field("authority", &self.authority)
            .field("target", &super::RedactedTarget(&self.target))
            .field("headers", &super::HeaderNames(&self.headers))
            .field("protocols", &self.protocols)
            .field("accept", &self.accept)
            .finish_non_exhaustive()
    }
}

impl ClientUpgrade {
    /// An upgrade for `request` over `version`, with the default cryptographically secure
    /// random source (for the key and all masking keys).
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide entropy.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn new(request: ClientRequest, version: HttpVersion, config: Config) -> Self {
        Self::with_random(request, version, config, crate::random::default_random())
    }

    /// An upgrade for `request` over `version`, drawing the key (HTTP/1.1) and all masking keys
    /// from `random`.
    #[must_use]
    pub fn with_random(
        request: ClientRequest,
        version: HttpVersion,
        config: Config,
        mut random: Box<dyn RandomSource>,
    ) -> Self {
        #[cfg(feature = "deflate")]
        let offer = config.deflate.as_ref().map(crate::DeflateConfig::offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        let authority = sanitize(&request.host_header());
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut accept = None;
        match version {
            HttpVersion::Http11 => {
                let mut nonce = [0u8; 16];
                random.fill_bytes(&mut nonce);
                let mut key = [0u8; 24];
                // 16 bytes always encode to exactly 24 base64 characters.
                let _ = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key);
                accept = Some(AcceptKey::from_key(&key));
                let key = core::str::from_utf8(&key).unwrap_or_default();
                headers.push(("Host".into(), authority.clone()));
                headers.push(("Upgrade".into(), "websocket".into()));
                headers.push(("Connection".into(), "Upgrade".into()));
                headers.push(("Sec-WebSocket-Key".into(), key.into()));
                headers.push(("Sec-WebSocket-Version".into(), "13".into()));
            }
            HttpVersion::Http2 => headers.push(("sec-websocket-version".into(), "13".into())),
        }
        let http2 = version == HttpVersion::Http2;
        // HTTP/2 field names are lower case (RFC 9113 §8.2.1).
        let name = |name: &str| {
            let name = sanitize(name);
            if http2 { name.to_ascii_lowercase() } else { name }
        };
        // The offer as sent is what the server's choice is checked against.
        let protocols: Vec<String> = request.protocols.iter().map(|p| sanitize(p)).collect();
        if !protocols.is_empty() {
            headers.push((name("Sec-WebSocket-Protocol"), protocols.join(", ")));
        }
        if let Some(offer) = offer {
            headers.push((name("Sec-WebSocket-Extensions"), offer));
        }
        for (header, value) in &request.headers {
            // Judged by the name as sent: CR or LF inside must not smuggle `Connection` through.
            if !(http2 && is_connection_specific(&sanitize(header))) {
                headers.push((name(header), sanitize(value)));
            }
        }
        Self {
            version,
            secure: request.secure,
            authority,
            target: request.target,
            headers,
            protocols,
            accept,
            config,
            random,
        }
    }

    /// Which HTTP carries the handshake.
    #[must_use]
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The request method: `GET` (HTTP/1.1) or `CONNECT` (HTTP/2).
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self.version {
            HttpVersion::Http11 => "GET",
            HttpVersion::Http2 => "CONNECT",
        }
    }

    /// The request target, path and query (HTTP/2's `:path`).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The authority: the `Host` value of HTTP/1.1, HTTP/2's `:authority` (with the port
    /// unless it is the scheme's default).
    #[must_use]
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The scheme of the target URI, HTTP/2's `:scheme`: `http` for `ws://`, `https` for
    /// `wss://` (RFC 8441 §5).
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }

    /// HTTP/2's `:protocol` pseudo-header: `Some("websocket")` over HTTP/2, `None` over
    /// HTTP/1.1. HTTP/2 stacks take it as a request extension (`h2::ext::Protocol`,
    /// `hyper::ext::Protocol`).
    #[must_use]
    pub fn connect_protocol(&self) -> Option<&'static str> {
        match self.version {
            HttpVersion::Http11 => None,
            HttpVersion::Http2 => Some("websocket"),
        }
    }

    /// The header fields to send, in order (no pseudo-headers), free of CR and LF. Over
    /// HTTP/1.1 they start with `Host`; over HTTP/2 names are lower case and the
    /// connection-specific headers of the [`ClientRequest`] (`Connection`, `Upgrade`...) are
    /// left out (RFC 9113 §8.2.2).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The first value of a header to send (name compared ASCII case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    }

    /// Validates the server's response head and returns the client [`Connection`] for the
    /// upgraded stream, with the negotiated subprotocol and permessage-deflate in force.
    ///
    /// Any status but 101 (HTTP/1.1) or 2xx (HTTP/2) fails with
    /// [`HandshakeError::Rejected`], carrying the response (with whatever body it was given).
    /// A success must select only an offered subprotocol and answer only our extension offer
    /// (RFC 6455 §4.1); over HTTP/1.1 it must also carry `Upgrade: websocket`, `Connection:
    /// Upgrade` and the `Sec-WebSocket-Accept` of our key.
    pub fn finish(self, response: &Response) -> Result<Connection, HandshakeError> {
        let success = match self.version {
            HttpVersion::Http11 => response.status == 101,
            HttpVersion::Http2 => (200..300).contains(&response.status),
        };
        if !success {
            return Err(HandshakeError::Rejected(Box::new(response.clone())));
        }
        let headers = &response.headers;
        if let Some(accept) = &self.accept {
            if !headers.get_all("Upgrade").any(|v| has_token(v, "websocket")) {
                return Err(HandshakeError::InvalidResponse("missing Upgrade: websocket"));
            }
            if !headers.get_all("Connection").any(|v| has_token(v, "upgrade")) {
                return Err(HandshakeError::InvalidResponse("missing Connection: Upgrade"));
            }
            if headers.count("Sec-WebSocket-Accept") != 1
                || headers.get("Sec-WebSocket-Accept").map(<[u8]>::trim_ascii) != Some(accept.as_bytes())
            {
                return Err(HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key"));
            }
        }
        let extensions = self.validate_extensions(headers)?;
        let protocol = self.selected_protocol(headers)?;
        let mut conn = Connection::new(Role::Client, self.config, Some(self.random));
        conn.set_protocol(protocol);
        #[cfg(feature = "deflate")]
        if let Some(params) = extensions {
            conn = conn.with_deflate(params);
        }
        #[cfg(not(feature = "deflate"))]
        let _ = extensions;
        Ok(conn)
    }

    /// The subprotocol the server selected: at most one, and one we offered.
    fn selected_protocol(&self, headers: &Headers) -> Result<Option<String>, HandshakeError> {
        let mut selected = headers.get_all("Sec-WebSocket-Protocol").flat_map(split_list);
        match (selected.next(), selected.next()) {
            (None, _) => Ok(None),
            (Some(p), None) => {
                let p = core::str::from_utf8(p).map_err(|_| HandshakeError::InvalidResponse("bad subprotocol"))?;
                if !self.protocols.iter().any(|offered| offered == p) {
                    return Err(HandshakeError::InvalidResponse("server selected a subprotocol that was not offered"));
                }
                Ok(Some(String::from(p)))
            }
            (Some(_), Some(_)) => Err(HandshakeError::InvalidResponse("server selected several subprotocols")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    fn upgrade(request: ClientRequest, version: HttpVersion) -> ClientUpgrade {
        #[allow(unused_mut)]
        let mut config = Config::default();
        #[cfg(feature = "deflate")]
        {
            config = config.deflate(None);
        }
        ClientUpgrade::with_random(request, version, config, Box::new(SeededRandom::new(5)))
    }

    fn response(status: u16, fields: &[(&str, &str)]) -> Response {
        let mut headers = Headers::new();
        for (name, value) in fields {
            headers.push(*name, bytes::Bytes::copy_from_slice(value.as_bytes()));
        }
        Response { status, reason: String::new(), headers, body: bytes::Bytes::new() }
    }

    #[test]
    fn http2_request_fields() {
        let request = ClientRequest::from_url("wss://[::1]:8443/chat?x=1")
            .unwrap()
            .protocol("chat")
            .protocol("v2")
            .header("Origin", "https://app.example")
            .header("Connection", "keep-alive")
            .header("Upgrade", "h2c");
        let upgrade = upgrade(request, HttpVersion::Http2);
        assert_eq!(
            (upgrade.method(), upgrade.scheme(), upgrade.authority(), upgrade.target(), upgrade.connect_protocol()),
            ("CONNECT", "https", "[::1]:8443", "/chat?x=1", Some("websocket"))
        );
        let headers: Vec<_> = upgrade.headers().collect();
        assert_eq!(
            headers,
            [
                ("sec-websocket-version", "13"),
                ("sec-websocket-protocol", "chat, v2"),
                ("origin", "https://app.example")
            ]
        );
    }

    #[test]
    fn http2_success_is_any_2xx_and_checks_the_subprotocol() {
        let request = || ClientRequest::from_url("ws://example.com/").unwrap().protocol("chat");
        let conn = upgrade(request(), HttpVersion::Http2).finish(&response(200, &[("sec-websocket-protocol", "chat")]));
        assert_eq!(conn.unwrap().protocol(), Some("chat"));
        assert!(upgrade(request(), HttpVersion::Http2).finish(&response(204, &[])).is_ok());
        let err = upgrade(request(), HttpVersion::Http2).finish(&response(101, &[])).unwrap_err();
        assert!(matches!(err, HandshakeError::Rejected(r) if r.status == 101));
        let err = upgrade(request(), HttpVersion::Http2).finish(&response(404, &[])).unwrap_err();
        assert!(matches!(err, HandshakeError::Rejected(r) if r.status == 404));
        let err = upgrade(request(), HttpVersion::Http2).finish(&response(200, &[("sec-websocket-protocol", "other")]));
        assert_eq!(
            err.unwrap_err(),
            HandshakeError::InvalidResponse("server selected a subprotocol that was not offered")
        );
        let err = upgrade(request(), HttpVersion::Http2)
            .finish(&response(200, &[("sec-websocket-extensions", "permessage-deflate")]));
        assert_eq!(
            err.unwrap_err(),
            HandshakeError::InvalidResponse("server selected an extension that was not offered")
        );
    }

    #[test]
    fn http11_needs_the_accept_of_its_key() {
        let request = || ClientRequest::from_url("ws://example.com/").unwrap();
        let up = upgrade(request(), HttpVersion::Http11);
        let accept = AcceptKey::from_key(up.header("sec-websocket-key").unwrap().as_bytes());
        let ok = response(
            101,
            &[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-accept", accept.as_str())],
        );
        assert!(up.finish(&ok).is_ok());
        let bad = response(101, &[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-accept", "x")]);
        let err = upgrade(request(), HttpVersion::Http11).finish(&bad).unwrap_err();
        assert_eq!(err, HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key"));
    }
}
