//! Conversions between the handshake types and the `http` crate (feature `http`), the types
//! hyper, axum, h2 and most Rust HTTP stacks speak: validate an `http::Request` as an upgrade
//! (RFC 6455 §4.2.1 over HTTP/1.1, RFC 8441 §4–5 over HTTP/2), answer it with an
//! `http::Response`, build the client's `http::Request` and check its `http::Response`.
//!
//! Nothing here negotiates: it only converts, and [`ServerUpgrade`] / [`ClientUpgrade`] decide.
//!
//! The `:protocol` pseudo-header of an HTTP/2 extended CONNECT is not part of the `http` types:
//! each HTTP/2 stack keeps it as a request extension of its own type (`h2::ext::Protocol`,
//! `hyper::ext::Protocol`). The server passes its value to
//! [`ServerUpgrade::validate_http`]; the client inserts the stack's extension built from
//! [`ClientUpgrade::connect_protocol`].

use super::client_upgrade::ClientUpgrade;
use super::server_upgrade::{PendingUpgrade, ServerUpgrade, UpgradeResponse};
use super::{HandshakeError, Headers, HttpVersion, Reject, Request, Response};
use crate::connection::Connection;
use alloc::string::String;
use bytes::Bytes;

impl From<&http::HeaderMap> for Headers {
    /// Every field of the map, in its iteration order (names in lower case).
    fn from(map: &http::HeaderMap) -> Self {
        let mut headers = Headers::new();
        for (name, value) in map {
            headers.push(name.as_str(), Bytes::copy_from_slice(value.as_bytes()));
        }
        headers
    }
}

impl HttpVersion {
    /// How a request of this `http::Version` bootstraps a WebSocket: [`HttpVersion::Http2`]
    /// (extended CONNECT) for HTTP/2 and HTTP/3, [`HttpVersion::Http11`] otherwise.
    ///
    /// ```
    /// use wscore::HttpVersion;
    /// assert_eq!(HttpVersion::from_http(http::Version::HTTP_2), HttpVersion::Http2);
    /// assert_eq!(HttpVersion::from_http(http::Version::HTTP_11), HttpVersion::Http11);
    /// ```
    #[must_use]
    pub fn from_http(version: http::Version) -> Self {
        if version == http::Version::HTTP_2 || version == http::Version::HTTP_3 { Self::Http2 } else { Self::Http11 }
    }
}

impl ServerUpgrade {
    /// Validates an `http::Request` as an upgrade: an HTTP/1.1 upgrade for HTTP/1.1 requests,
    /// an extended CONNECT (RFC 8441) for HTTP/2 and HTTP/3 ones, whose `:protocol` is
    /// `protocol` (the value of the stack's `h2::ext::Protocol` or `hyper::ext::Protocol`
    /// extension; `None` when absent). An HTTP/1.0 `GET` is [`HandshakeError::NotHttp11`].
    ///
    /// For the HTTP/2 form the request's `:authority` and `:protocol` appear in the
    /// [`Request`](PendingUpgrade::request)'s headers under those names.
    ///
    /// A server in any stack (the same code serves HTTP/1.1 upgrades and HTTP/2 extended CONNECT):
    ///
    /// ```
    /// use wscore::{Accept, Config, HttpVersion, ServerUpgrade};
    ///
    /// fn upgrade(server: &ServerUpgrade, request: &http::Request<()>, protocol: Option<&str>)
    ///     -> (http::Response<bytes::Bytes>, Option<wscore::Connection>)
    /// {
    ///     match server.validate_http(request, protocol) {
    ///         Ok(pending) => {
    ///             let chat = pending.request().protocols().contains(&"chat");
    ///             let accept = if chat { Accept::new().protocol("chat") } else { Accept::new() };
    ///             let (response, conn) = pending.accept(accept).expect("an offered protocol");
    ///             (response.to_http().expect("valid header fields"), Some(conn))
    ///         }
    ///         Err(err) => {
    ///             let version = HttpVersion::from_http(request.version());
    ///             (err.reject(version).to_http().expect("valid header fields"), None)
    ///         }
    ///     }
    /// }
    ///
    /// let server = ServerUpgrade::new(Config::default());
    /// let request = http::Request::get("/chat")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-protocol", "chat")
    ///     .body(())
    ///     .unwrap();
    /// let (response, conn) = upgrade(&server, &request, None);
    /// assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// assert_eq!(conn.unwrap().protocol(), Some("chat"));
    ///
    /// // The same over HTTP/2: CONNECT with `:protocol` (here as h2 would have parsed it).
    /// let request = http::Request::connect("https://example.com/chat")
    ///     .version(http::Version::HTTP_2)
    ///     .header("sec-websocket-version", "13")
    ///     .body(())
    ///     .unwrap();
    /// let (response, conn) = upgrade(&server, &request, Some("websocket"));
    /// assert_eq!(response.status(), http::StatusCode::OK);
    /// assert!(conn.is_some());
    ///
    /// // Without `:protocol` it is a plain CONNECT, not a WebSocket.
    /// let (response, conn) = upgrade(&server, &request, None);
    /// assert_eq!((response.status().as_u16(), conn.is_none()), (400, true));
    /// ```
    pub fn validate_http<B>(
        &self,
        request: &http::Request<B>,
        protocol: Option<&str>,
    ) -> Result<PendingUpgrade, HandshakeError> {
        self.validate_head(request.method(), request.uri(), request.version(), request.headers(), protocol)
    }

    /// [`validate_http`](Self::validate_http) for a request head taken apart (what axum's
    /// `FromRequestParts` extractors get).
    pub fn validate_http_parts(
        &self,
        parts: &http::request::Parts,
        protocol: Option<&str>,
    ) -> Result<PendingUpgrade, HandshakeError> {
        self.validate_head(&parts.method, &parts.uri, parts.version, &parts.headers, protocol)
    }

    fn validate_head(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        version: http::Version,
        headers: &http::HeaderMap,
        protocol: Option<&str>,
    ) -> Result<PendingUpgrade, HandshakeError> {
        let target = uri.path_and_query().map_or("", http::uri::PathAndQuery::as_str);
        let (version, fields) = if HttpVersion::from_http(version) == HttpVersion::Http2 {
            let mut fields = Headers::new();
            if let Some(authority) = uri.authority() {
                fields.push(":authority", String::from(authority.as_str()));
            }
            if let Some(protocol) = protocol {
                fields.push(":protocol", Bytes::copy_from_slice(protocol.as_bytes()));
            }
            for (name, value) in headers {
                fields.push(name.as_str(), Bytes::copy_from_slice(value.as_bytes()));
            }
            (HttpVersion::Http2, fields)
        } else {
            if version != http::Version::HTTP_11 && method == http::Method::GET {
                return Err(HandshakeError::NotHttp11);
            }
            (HttpVersion::Http11, Headers::from(headers))
        };
        self.validate(version, Request::new(method.as_str(), target, fields))
    }
}

impl UpgradeResponse {
    /// The response as an `http::Response` with an empty body (`B::default()`: `()`,
    /// `http_body_util::Empty`, axum's `Body`...), ready to hand to hyper, axum or h2.
    ///
    /// ```
    /// use wscore::{Accept, Config, ServerUpgrade};
    /// let request = http::Request::connect("https://example.com/chat")
    ///     .version(http::Version::HTTP_2)
    ///     .header("sec-websocket-version", "13")
    ///     .body(())
    ///     .unwrap();
    /// let pending = ServerUpgrade::new(Config::default()).validate_http(&request, Some("websocket")).unwrap();
    /// let (response, _conn) = pending.accept(Accept::new().header("set-cookie", "id=1")).unwrap();
    /// let response: http::Response<()> = response.to_http().unwrap();
    /// assert_eq!(response.status(), http::StatusCode::OK);
    /// assert_eq!(response.headers()["set-cookie"], "id=1");
    /// ```
    pub fn to_http<B: Default>(&self) -> Result<http::Response<B>, http::Error> {
        let mut builder = http::Response::builder().status(self.status());
        for (name, value) in self.headers() {
            builder = builder.header(name, value);
        }
        builder.body(B::default())
    }
}

impl Reject {
    /// The rejection as an `http::Response` (status, headers, and the body as `B`:
    /// `http_body_util::Full<Bytes>`, axum's `Body`, `Bytes`, `String`...). Unlike
    /// [`into_bytes`](Self::into_bytes) it adds no `Content-Length` or `Connection: close`:
    /// the HTTP stack frames the body and decides about the connection.
    ///
    /// ```
    /// let response: http::Response<bytes::Bytes> = wscore::Reject::new(401).body("log in first").to_http().unwrap();
    /// assert_eq!((response.status().as_u16(), &response.body()[..]), (401, &b"log in first"[..]));
    /// ```
    pub fn to_http<B: From<Bytes>>(&self) -> Result<http::Response<B>, http::Error> {
        let mut builder = http::Response::builder().status(self.status());
        for (name, value) in self.headers() {
            builder = builder.header(name, value);
        }
        builder.body(B::from(self.get_body().clone()))
    }
}

impl ClientUpgrade {
    /// The request as an `http::Request` with an empty body (`B::default()`).
    ///
    /// Over HTTP/1.1: `GET`, the target as an origin-form URI, version HTTP/1.1, and the
    /// [`headers`](Self::headers) (with `Host`). Over HTTP/2: `CONNECT`, the absolute URI
    /// `scheme://authority/target` (so the stack sends `:scheme`, `:authority` and `:path`),
    /// version HTTP/2, and the headers. **Insert the stack's `:protocol` extension** yourself,
    /// from [`connect_protocol`](Self::connect_protocol):
    /// `request.extensions_mut().insert(h2::ext::Protocol::from_static("websocket"))` (or
    /// `hyper::ext::Protocol`); without it the stack sends a plain CONNECT.
    ///
    /// ```
    /// use wscore::{ClientRequest, ClientUpgrade, Config, HttpVersion, SeededRandom};
    /// let request = ClientRequest::from_url("ws://example.com:8080/chat").unwrap();
    /// let random = Box::new(SeededRandom::new(1));
    /// let upgrade = ClientUpgrade::with_random(request, HttpVersion::Http2, Config::default(), random);
    /// let request: http::Request<()> = upgrade.to_http_request().unwrap();
    /// assert_eq!((request.method(), request.uri().to_string()), (&http::Method::CONNECT, "http://example.com:8080/chat".into()));
    /// assert_eq!(request.headers()["sec-websocket-version"], "13");
    /// ```
    pub fn to_http_request<B: Default>(&self) -> Result<http::Request<B>, http::Error> {
        let mut builder = http::Request::builder().method(self.method());
        builder = match self.version() {
            HttpVersion::Http11 => builder.uri(self.target()).version(http::Version::HTTP_11),
            HttpVersion::Http2 => builder
                .uri(alloc::format!("{}://{}{}", self.scheme(), self.authority(), self.target()))
                .version(http::Version::HTTP_2),
        };
        for (name, value) in self.headers() {
            builder = builder.header(name, value);
        }
        builder.body(B::default())
    }

    /// [`finish`](Self::finish) with an `http::Response` head. A rejection's
    /// [`Response`] carries the status and headers but no body: read it from the stack's
    /// response if you want it.
    pub fn finish_http<B>(self, response: &http::Response<B>) -> Result<Connection, HandshakeError> {
        self.finish_head(response.status(), response.headers())
    }

    /// [`finish_http`](Self::finish_http) for a response head taken apart.
    pub fn finish_http_parts(self, parts: &http::response::Parts) -> Result<Connection, HandshakeError> {
        self.finish_head(parts.status, &parts.headers)
    }

    fn finish_head(self, status: http::StatusCode, headers: &http::HeaderMap) -> Result<Connection, HandshakeError> {
        let response = Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or_default().into(),
            headers: Headers::from(headers),
            body: Bytes::new(),
        };
        self.finish(&response)
    }
}
