//! HTTP `CONNECT` tunnels through a proxy (RFC 9110 §9.3.6), sans I/O: [`Proxy`] says which
//! proxy and which credentials (`Proxy-Authorization: Basic`, RFC 7617), and [`ProxyHandshake`]
//! builds the `CONNECT host:port HTTP/1.1` request and reads the proxy's answer with the same
//! head reader and limits as the WebSocket upgrade. Once the proxy answers 2xx, the transport is
//! a tunnel to the target: run TLS (for `wss://`) and the WebSocket upgrade over it, starting
//! with the bytes that came after the proxy's response head.
//!
//! Also here: which proxy the environment asks for (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as
//! curl and Python `websockets` read them), for callers that opt in with [`Proxy::from_env`].

use super::head::{HeadReader, parse_error};
use super::{HandshakeError, Headers, Response, sanitize};
use crate::config::Config;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;
use bytes::Bytes;
use core::fmt;

/// An HTTP proxy that tunnels connections with `CONNECT`, with optional Basic credentials and
/// extra request headers.
///
/// `Debug` shows neither the credentials nor the values of extra headers.
///
/// ```
/// use wscore::Proxy;
/// let proxy = Proxy::new("proxy.internal", 3128).basic_auth("alice", "s3cret");
/// assert_eq!((proxy.host(), proxy.port(), proxy.has_credentials()), ("proxy.internal", 3128, true));
/// assert!(!format!("{proxy:?}").contains("s3cret"));
///
/// let proxy = Proxy::from_url("http://bob:p%40ss@10.0.0.1:8080").unwrap();
/// assert_eq!((proxy.host(), proxy.port(), proxy.has_credentials()), ("10.0.0.1", 8080, true));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    /// The whole `Proxy-Authorization` value (`Basic <base64>`).
    authorization: Option<String>,
    headers: Vec<(String, String)>,
}

impl Proxy {
    /// A proxy at `host` (a name or an address, IPv6 without brackets) and `port`.
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host: String = host.into();
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.into(),
            None => host,
        };
        Self { host, port, authorization: None, headers: Vec::new() }
    }

    /// Parses a proxy URL: `http://[user[:password]@]host[:port][/]` (port 80 by default; the
    /// scheme may be left out, as in `HTTPS_PROXY=proxy:3128`). User and password are
    /// percent-decoded and sent as Basic credentials. `https://` (TLS to the proxy) and SOCKS
    /// proxies are not supported.
    ///
    /// ```
    /// let proxy = wscore::Proxy::from_url("proxy.example:3128").unwrap();
    /// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
    /// assert!(wscore::Proxy::from_url("socks5://127.0.0.1:1080").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ProxyError> {
        let url = url.trim();
        let rest = match url.find("://") {
            Some(at) if url[..at].eq_ignore_ascii_case("http") => &url[at + 3..],
            Some(_) => return Err(ProxyError::InvalidUrl("only http:// proxies are supported")),
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = split_authority(host_port, 80).ok_or(ProxyError::InvalidUrl("bad host or port"))?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(ProxyError::InvalidUrl("bad host"));
        }
        let mut proxy = Self::new(host, port);
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode(user).ok_or(ProxyError::InvalidUrl("bad percent-encoding in the user"))?;
            let password =
                percent_decode(password).ok_or(ProxyError::InvalidUrl("bad percent-encoding in the password"))?;
            proxy = proxy.basic_auth(&user, &password);
        }
        Ok(proxy)
    }

    /// Sends `Proxy-Authorization: Basic` credentials (RFC 7617) with the `CONNECT` request.
    #[must_use]
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        let credentials = alloc::format!("{user}:{password}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes());
        self.authorization = Some(alloc::format!("Basic {encoded}"));
        self
    }

    /// Adds a header to the `CONNECT` request (`User-Agent`, another `Proxy-Authorization`
    /// scheme...).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The proxy's host name or address (without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether Basic credentials are set.
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// The proxy the environment names for `request`, as curl and Python `websockets` read it:
    /// for `wss://`, `wss_proxy`, then `https_proxy` (each in lower case first, then upper
    /// case); for `ws://`, `ws_proxy`, then `http_proxy` (`HTTP_PROXY` is ignored when
    /// `REQUEST_METHOD` is set, i.e. inside a CGI script, where a client's `Proxy:` header
    /// would land in it). `None` when none is set, or when `no_proxy`/`NO_PROXY` lists the
    /// target: `*`, host names (matching subdomains too, with or without a leading dot),
    /// addresses and CIDR ranges, each optionally with `:port`.
    ///
    /// Nothing reads the environment unless asked: pass the result to a driver's connector,
    /// or use `Connector::proxy_from_env`.
    ///
    /// ```no_run
    /// let request = wscore::ClientRequest::from_url("wss://example.com/feed")?;
    /// if let Some(proxy) = wscore::Proxy::from_env(&request)? {
    ///     println!("through {}:{}", proxy.host(), proxy.port());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "std")]
    pub fn from_env(request: &crate::ClientRequest) -> Result<Option<Self>, ProxyError> {
        let var = |name: &str| std::env::var(name).ok();
        from_vars(request.is_secure(), request.host(), request.port(), var)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("headers", &super::HeaderNames(&self.headers))
            .finish()
    }
}

/// Which proxy the variables read by `var` ask for; see [`Proxy::from_env`].
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) fn from_vars(
    secure: bool,
    host: &str,
    port: u16,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, ProxyError> {
    // Lower case first, as curl and Python do; an empty value counts as unset.
    let get = |name: &str| {
        let upper = name.to_ascii_uppercase();
        var(name).filter(|v| !v.trim().is_empty()).or_else(|| {
            // Inside a CGI script `HTTP_PROXY` comes from the client's `Proxy:` header.
            let cgi = upper == "HTTP_PROXY" && var("REQUEST_METHOD").is_some();
            if cgi { None } else { var(&upper).filter(|v| !v.trim().is_empty()) }
        })
    };
    if get("no_proxy").is_some_and(|list| bypasses(&list, host, port)) {
        return Ok(None);
    }
    let names: [&str; 2] = if secure { ["wss_proxy", "https_proxy"] } else { ["ws_proxy", "http_proxy"] };
    match names.iter().find_map(|name| get(name)) {
        Some(url) => Proxy::from_url(&url).map(Some),
        None => Ok(None),
    }
}

/// Whether a `NO_PROXY` list names `host:port`.
pub(crate) fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.');
    let host_ip = host.parse::<core::net::IpAddr>().ok();
    list.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        // `[v6]:port`, `[v6]`, `name:port`, `v4:port`; a bare IPv6 address has several colons.
        let (pattern, entry_port) = match entry.strip_prefix('[').and_then(|e| e.split_once(']')) {
            Some((v6, after)) => (v6, after.strip_prefix(':')),
            None => match entry.rsplit_once(':') {
                Some((name, p)) if !name.contains(':') => (name, Some(p)),
                _ => (entry, None),
            },
        };
        if let Some(p) = entry_port {
            if p.parse::<u16>().ok() != Some(port) {
                return false;
            }
        }
        if let Some(ip) = host_ip {
            return ip_matches(ip, pattern);
        }
        let pattern = pattern.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.');
        if pattern.is_empty() {
            return false;
        }
        host.eq_ignore_ascii_case(pattern)
            || (host.len() > pattern.len()
                && host.as_bytes()[host.len() - pattern.len() - 1] == b'.'
                && host[host.len() - pattern.len()..].eq_ignore_ascii_case(pattern))
    })
}

/// Whether `ip` is the address or within the CIDR range `pattern`.
fn ip_matches(ip: core::net::IpAddr, pattern: &str) -> bool {
    use core::net::IpAddr;
    let (addr, prefix) = match pattern.split_once('/') {
        Some((addr, prefix)) => match prefix.parse::<u32>() {
            Ok(prefix) => (addr, Some(prefix)),
            Err(_) => return false,
        },
        None => (pattern, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else { return false };
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => (u128::from(u32::from(ip)), u128::from(u32::from(net)), 32),
        (IpAddr::V6(ip), IpAddr::V6(net)) => (u128::from(ip), u128::from(net), 128),
        _ => return false,
    };
    let prefix = prefix.unwrap_or(bits);
    if prefix > bits {
        return false;
    }
    let shift = bits - prefix;
    // `checked_shr` is `None` for a shift by the full width: a /0 matches everything.
    (ip ^ net).checked_shr(shift).unwrap_or(0) == 0
}

/// Splits `host[:port]` / `[v6][:port]`; `None` for a bad port or bracket.
fn split_authority(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => None, // an IPv6 address needs brackets
        Some((host, "")) => Some((host, default_port)),
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, default_port)),
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = core::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a proxy did not open a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy answered with a status other than 2xx: 407 (with `Proxy-Authenticate`) for
    /// missing or wrong credentials, 403 for a forbidden target, 502 when it could not reach the
    /// target... The response carries the status, reason and headers; its body is not read.
    #[error("the proxy refused the tunnel with HTTP {} {}", .0.status, .0.reason)]
    Refused(Box<Response>),
    /// The proxy's answer is not a valid HTTP response head (or exceeds the handshake limits).
    #[error("invalid proxy response: {0}")]
    InvalidResponse(HandshakeError),
    /// The connection to the proxy ended before its answer was complete.
    #[error("the proxy closed the connection before answering CONNECT")]
    UnexpectedEof,
    /// The proxy URL (given, or read from the environment) is not an `http://` proxy URL.
    #[error("invalid proxy URL: {0}")]
    InvalidUrl(&'static str),
}

impl ProxyError {
    /// The proxy's status for [`Refused`](Self::Refused) (e.g. 407), else `None`.
    ///
    /// ```
    /// use wscore::{Config, Proxy, ProxyHandshake};
    /// let mut handshake = ProxyHandshake::new(&Proxy::new("proxy", 3128), "example.com", 443, &Config::default());
    /// let err = handshake.receive(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n").unwrap_err();
    /// assert_eq!(err.status(), Some(407));
    /// assert_eq!(err.response().unwrap().headers.get_str("Proxy-Authenticate"), Some("Basic realm=\"p\""));
    /// ```
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status)
    }

    /// The proxy's response for [`Refused`](Self::Refused), else `None`.
    #[must_use]
    pub fn response(&self) -> Option<&Response> {
        match self {
            Self::Refused(response) => Some(response),
            _ => None,
        }
    }
}

/// The `CONNECT` exchange with a proxy, sans I/O: write [`request_bytes`](Self::request_bytes),
/// then feed what the proxy sends to [`receive`](Self::receive) until it returns the tunnel.
///
/// `receive` returns `Ok(None)` while the response head is incomplete, `Ok(Some(rest))` once
/// the proxy answered 2xx (`rest`: any bytes that followed the head, which belong to the tunnel
/// and come before whatever is read next), and an error for any other status or a malformed
/// answer. Interim 1xx responses (but 101) are skipped. Errors are sticky.
///
/// ```
/// use wscore::{Config, Proxy, ProxyHandshake};
/// let proxy = Proxy::new("127.0.0.1", 3128).basic_auth("alice", "s3cret");
/// let mut handshake = ProxyHandshake::new(&proxy, "example.com", 443, &Config::default());
/// assert_eq!(
///     &handshake.request_bytes()[..],
///     &b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"[..]
/// );
/// assert_eq!(handshake.receive(b"HTTP/1.1 200 Connection est").unwrap(), None);
/// let rest = handshake.receive(b"ablished\r\n\r\n\x16\x03\x01").unwrap().unwrap();
/// assert_eq!(&rest[..], b"\x16\x03\x01"); // the tunnel's first bytes
/// ```
pub struct ProxyHandshake {
    request: Bytes,
    reader: HeadReader,
    max_headers: usize,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Waiting,
    Established,
    Failed(ProxyError),
}

impl ProxyHandshake {
    /// A `CONNECT` to `host:port` (the WebSocket server: a name or an address, IPv6 without
    /// brackets) through `proxy`. The response head is held to
    /// [`Config::max_handshake_size`] and [`Config::max_headers`].
    #[must_use]
    pub fn new(proxy: &Proxy, host: &str, port: u16, config: &Config) -> Self {
        // Whitespace or control characters would break the request line.
        let host: String = host.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect();
        let authority =
            if host.contains(':') { alloc::format!("[{host}]:{port}") } else { alloc::format!("{host}:{port}") };
        let mut out = alloc::format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(authorization) = &proxy.authorization {
            out.push_str(&alloc::format!("Proxy-Authorization: {}\r\n", sanitize(authorization)));
        }
        for (name, value) in &proxy.headers {
            out.push_str(&alloc::format!("{}: {}\r\n", sanitize(name), sanitize(value)));
        }
        out.push_str("\r\n");
        Self {
            request: out.into(),
            reader: HeadReader::new(config.max_handshake_size),
            max_headers: config.max_headers,
            phase: Phase::Waiting,
        }
    }

    /// The `CONNECT` request to write to the proxy.
    #[must_use]
    pub fn request_bytes(&self) -> Bytes {
        self.request.clone()
    }

    /// Whether the tunnel is open.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }

    /// Feeds bytes read from the proxy: `Ok(None)` while waiting, `Ok(Some(rest))` once the
    /// tunnel is open (with the bytes after the response head), an error otherwise.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Bytes>, ProxyError> {
        match &self.phase {
            Phase::Waiting => {}
            Phase::Established => {
                return Err(ProxyError::InvalidResponse(HandshakeError::Malformed(
                    "the tunnel is already established".into(),
                )));
            }
            Phase::Failed(err) => return Err(err.clone()),
        }
        let result = self.parse(data);
        match &result {
            Ok(Some(_)) => self.phase = Phase::Established,
            Ok(None) => {}
            Err(err) => self.phase = Phase::Failed(err.clone()),
        }
        result
    }

    /// The connection to the proxy ended: always an error (the tunnel was not established, or
    /// has nothing to do with this step any more).
    pub fn receive_eof(&mut self) -> Result<(), ProxyError> {
        let err = match &self.phase {
            Phase::Failed(err) => err.clone(),
            _ => ProxyError::UnexpectedEof,
        };
        self.phase = Phase::Failed(err.clone());
        Err(err)
    }

    fn parse(&mut self, data: &[u8]) -> Result<Option<Bytes>, ProxyError> {
        let mut input = data;
        loop {
            let Some(head_len) = self.reader.push(input).map_err(ProxyError::InvalidResponse)? else {
                return Ok(None);
            };
            // After an interim response, what follows is already buffered.
            input = &[];
            let mut storage = alloc::vec![httparse::EMPTY_HEADER; self.max_headers];
            let mut parsed = httparse::Response::new(&mut storage);
            match parsed.parse(&self.reader.buf[..head_len]) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => {
                    return Err(ProxyError::InvalidResponse(HandshakeError::Malformed(
                        "incomplete response head".into(),
                    )));
                }
                Err(err) => return Err(ProxyError::InvalidResponse(parse_error(err, self.max_headers))),
            }
            let status = parsed.code.unwrap_or_default();
            match status {
                200..=299 => {
                    let rest = Bytes::copy_from_slice(&self.reader.buf[head_len..]);
                    self.reader.buf.clear();
                    return Ok(Some(rest));
                }
                // An interim response (100 Continue...): the real answer follows. It is dropped
                // from the buffer in place; copying the rest out for each one would make many
                // interim heads in one read cost quadratic time. Not 101: Switching Protocols
                // is final (RFC 9110 §15.2.2), and no answer to a CONNECT without `Upgrade`.
                100 | 102..=199 => self.reader.consume(head_len),
                _ => {
                    let response = Response {
                        status,
                        reason: parsed.reason.unwrap_or_default().into(),
                        headers: Headers::from_httparse(parsed.headers),
                        body: Bytes::new(),
                    };
                    return Err(ProxyError::Refused(Box::new(response)));
                }
            }
        }
    }
}

impl fmt::Debug for ProxyHandshake {
    /// Leaves out the request: it holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandshake").field("phase", &self.phase).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::ToString;

    fn handshake() -> ProxyHandshake {
        ProxyHandshake::new(&Proxy::new("proxy", 3128), "example.com", 443, &Config::default())
    }

    /// Feeds `input` in two pieces cut at `cut`; returns the final outcome.
    fn feed_split(input: &[u8], cut: usize) -> Result<Option<Bytes>, ProxyError> {
        let mut hs = handshake();
        match hs.receive(&input[..cut])? {
            Some(rest) => {
                // Established by the first piece: the second belongs to the tunnel.
                let mut all = rest.to_vec();
                all.extend_from_slice(&input[cut..]);
                Ok(Some(all.into()))
            }
            None => hs.receive(&input[cut..]),
        }
    }

    #[test]
    fn established_with_leftover_at_every_split() {
        let input = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\nHTTP/1.1 101 Switching";
        for cut in 0..=input.len() {
            let rest = feed_split(input, cut).unwrap().unwrap_or_else(|| panic!("cut {cut}: still waiting"));
            assert_eq!(&rest[..], b"HTTP/1.1 101 Switching", "cut {cut}");
        }
    }

    #[test]
    fn byte_by_byte() {
        let input = b"HTTP/1.0 200 OK\r\n\r\nxy";
        let mut hs = handshake();
        let mut rest = Vec::new();
        for (i, b) in input.iter().enumerate() {
            if hs.is_established() {
                rest.push(*b);
                continue;
            }
            if let Some(r) = hs.receive(&[*b]).unwrap() {
                assert_eq!(i, input.len() - 3);
                rest.extend_from_slice(&r);
            }
        }
        assert_eq!(rest, b"xy");
    }

    #[test]
    fn refused_at_every_split() {
        let input = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 4\r\n\r\nnope";
        for cut in 0..=input.len() {
            let err = feed_split(input, cut).unwrap_err();
            assert_eq!(err.status(), Some(407), "cut {cut}");
            let response = err.response().unwrap();
            assert_eq!(response.reason, "Proxy Authentication Required");
            assert_eq!(response.headers.get_str("proxy-authenticate"), Some("Basic realm=\"x\""));
            assert!(response.body.is_empty());
        }
    }

    #[test]
    fn interim_responses_are_skipped_at_every_split() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest";
        for cut in 0..=input.len() {
            assert_eq!(&feed_split(input, cut).unwrap().unwrap()[..], b"rest", "cut {cut}");
        }
    }

    #[test]
    fn switching_protocols_is_no_tunnel() {
        let err = feed_split(b"HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 0).unwrap_err();
        assert_eq!(err.status(), Some(101));
    }

    #[test]
    fn errors_are_sticky() {
        let mut hs = handshake();
        let err = hs.receive(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), Some(502));
        assert_eq!(hs.receive(b"more").unwrap_err(), err);
        assert_eq!(hs.receive_eof().unwrap_err(), err);
    }

    #[test]
    fn eof_and_garbage() {
        let mut hs = handshake();
        assert_eq!(hs.receive(b"HTTP/1.1 200").unwrap(), None);
        assert_eq!(hs.receive_eof(), Err(ProxyError::UnexpectedEof));
        let mut hs = handshake();
        assert!(matches!(hs.receive(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(ProxyError::InvalidResponse(_))));
    }

    #[test]
    fn head_limit_applies() {
        let config = Config::default().max_handshake_size(64);
        let mut hs = ProxyHandshake::new(&Proxy::new("p", 1), "h", 2, &config);
        let long = alloc::format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(
            hs.receive(long.as_bytes()),
            Err(ProxyError::InvalidResponse(HandshakeError::HeadTooLarge { limit: 64 }))
        );
    }

    #[test]
    fn request_for_ipv6_with_headers_and_no_injection() {
        let proxy = Proxy::new("[::1]", 8080).header("User-Agent", "t\r\nX-Evil: 1");
        let hs = ProxyHandshake::new(&proxy, "::1", 9001, &Config::default());
        assert_eq!(
            &hs.request_bytes()[..],
            &b"CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\nUser-Agent: tX-Evil: 1\r\n\r\n"[..]
        );
        assert_eq!(proxy.host(), "::1");
        let hs = ProxyHandshake::new(&proxy, "bad host\r\n", 1, &Config::default());
        assert!(hs.request_bytes().starts_with(b"CONNECT badhost:1 HTTP/1.1\r\n"));
    }

    #[test]
    fn debug_hides_credentials() {
        let proxy = Proxy::new("p", 1).basic_auth("user", "hunter2").header("X-Token", "tok3n");
        let hs = ProxyHandshake::new(&proxy, "h", 2, &Config::default());
        for text in [alloc::format!("{proxy:?}"), alloc::format!("{hs:?}")] {
            assert!(
                !text.contains("hunter2") && !text.contains("dXNlcjpodW50ZXIy") && !text.contains("tok3n"),
                "{text}"
            );
        }
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::from_url("http://u%3Ax:p%40ss@[::1]:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 3128));
        let expected = Proxy::new("::1", 3128).basic_auth("u:x", "p@ss");
        assert_eq!(p, expected);
        assert_eq!(Proxy::from_url("HTTP://proxy").unwrap(), Proxy::new("proxy", 80));
        assert_eq!(Proxy::from_url("proxy:8080").unwrap(), Proxy::new("proxy", 8080));
        assert_eq!(Proxy::from_url("http://user@proxy:1").unwrap(), Proxy::new("proxy", 1).basic_auth("user", ""));
        for bad in [
            "https://proxy",
            "socks5h://proxy:1080",
            "http://proxy:port",
            "http://:80",
            "http://::1:80",
            "http://u:%zz@p",
        ] {
            assert!(Proxy::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_lists() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "anything", 1, true),
            ("example.com", "example.com", 443, true),
            ("example.com", "a.b.example.com", 443, true),
            (".example.com", "example.com", 443, true),
            ("*.example.com", "www.EXAMPLE.com", 443, true),
            ("example.com", "badexample.com", 443, false),
            ("example.com:8443", "example.com", 443, false),
            ("example.com:443", "example.com", 443, true),
            ("localhost, 127.0.0.0/8", "127.1.2.3", 80, true),
            ("10.0.0.0/8", "11.0.0.1", 80, false),
            ("::1", "::1", 80, true),
            ("[::1]:80", "::1", 80, true),
            ("fd00::/8", "fd12::1", 80, true),
            ("fd00::/8", "fe80::1", 80, false),
            ("0.0.0.0/0", "8.8.8.8", 80, true),
            ("192.168.1.1", "192.168.1.10", 80, false),
            ("", "example.com", 80, false),
        ];
        for &(list, host, port, expected) in cases {
            assert_eq!(bypasses(list, host, port), expected, "{list:?} vs {host}:{port}");
        }
    }

    #[test]
    fn environment_lookup() {
        let vars = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let lookup = |map: &BTreeMap<String, String>| {
            let map = map.clone();
            move |name: &str| map.get(name).cloned()
        };
        let env =
            vars(&[("https_proxy", "http://secure:1"), ("HTTP_PROXY", "http://plain:2"), ("NO_PROXY", "internal")]);
        assert_eq!(from_vars(true, "example.com", 443, lookup(&env)).unwrap(), Some(Proxy::new("secure", 1)));
        assert_eq!(from_vars(false, "example.com", 80, lookup(&env)).unwrap(), Some(Proxy::new("plain", 2)));
        assert_eq!(from_vars(true, "db.internal", 443, lookup(&env)).unwrap(), None);
        // wss_proxy wins over https_proxy; lower case over upper case.
        let env = vars(&[("wss_proxy", "ws-only:3"), ("https_proxy", "secure:1"), ("HTTPS_PROXY", "upper:9")]);
        assert_eq!(from_vars(true, "h", 443, lookup(&env)).unwrap(), Some(Proxy::new("ws-only", 3)));
        let env = vars(&[("https_proxy", ""), ("HTTPS_PROXY", "upper:9")]);
        assert_eq!(from_vars(true, "h", 443, lookup(&env)).unwrap(), Some(Proxy::new("upper", 9)));
        // CGI: HTTP_PROXY is the client's Proxy header.
        let env = vars(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(from_vars(false, "h", 80, lookup(&env)).unwrap(), None);
        // Nothing set; a bad value is an error, not a silent direct connection.
        assert_eq!(from_vars(false, "h", 80, lookup(&vars(&[]))).unwrap(), None);
        let env = vars(&[("http_proxy", "socks5://p:1080")]);
        assert!(from_vars(false, "h", 80, lookup(&env)).is_err());
    }
}
