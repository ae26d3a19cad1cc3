//! HTTP/1.1 message heads for the upgrade: a resumable reader that finds the end of the head
//! without ever rescanning bytes it has seen (CVE-2023-43669), and the parsed [`Request`] and
//! [`Response`] types with their headers.

use super::HandshakeError;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// Header lines in order of arrival, looked up case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Bytes)>,
}

impl Headers {
    /// No headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn from_httparse(headers: &[httparse::Header<'_>]) -> Self {
        let entries = headers.iter().map(|h| (String::from(h.name), Bytes::copy_from_slice(h.value))).collect();
        Self { entries }
    }

    /// Appends a header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.entries.push((name.into(), value.into()));
    }

    /// The first value of `name`, as bytes.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).next()
    }

    /// The first value of `name`, if it is valid UTF-8.
    ///
    /// ```
    /// let mut headers = wscore::Headers::new();
    /// headers.push("Content-Type", "text/plain");
    /// assert_eq!(headers.get_str("content-type"), Some("text/plain"));
    /// ```
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.entries.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &v[..])
    }

    /// How many lines named `name` there are.
    #[must_use]
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// All headers as `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), &v[..]))
    }

    /// The number of header lines.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A parsed upgrade request, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Headers,
}

impl Request {
    /// A request that some HTTP stack already parsed, for
    /// [`ServerUpgrade::validate`](crate::ServerUpgrade::validate): its method, its target
    /// (path and query; HTTP/2's `:path`) and its header fields. For an HTTP/2 extended
    /// CONNECT, the `:protocol` pseudo-header (and `:authority`, unless there is a `Host`
    /// header) go in `headers` under those names, as they appear in the HTTP/2 header block.
    ///
    /// ```
    /// let mut headers = wscore::Headers::new();
    /// headers.push(":authority", "example.com");
    /// headers.push(":protocol", "websocket");
    /// headers.push("sec-websocket-version", "13");
    /// let request = wscore::Request::new("CONNECT", "/chat?room=1", headers);
    /// assert_eq!((request.path(), request.host()), ("/chat", Some("example.com")));
    /// ```
    #[must_use]
    pub fn new(method: impl Into<String>, target: impl Into<String>, headers: Headers) -> Self {
        Self { method: method.into(), target: target.into(), headers }
    }

    /// The method (`GET` for a valid HTTP/1.1 upgrade, `CONNECT` for an HTTP/2 one).
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: path and query.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query.
    #[must_use]
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The query string (after `?`), if any.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// All headers.
    #[must_use]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of a header, if it is valid UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    /// The `Host` header (or, in an HTTP/2 request without one, the `:authority`
    /// pseudo-header).
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.header("Host").or_else(|| self.header(":authority"))
    }

    /// The `Origin` header (set by browsers; check it to prevent cross-site WebSocket
    /// hijacking).
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.header("Origin")
    }

    /// The subprotocols the client offers, in its order of preference.
    #[must_use]
    pub fn protocols(&self) -> Vec<&str> {
        self.list("Sec-WebSocket-Protocol")
    }

    /// The extension offers, one string per offer (parameters included), in order.
    #[must_use]
    pub fn extensions(&self) -> Vec<&str> {
        self.list("Sec-WebSocket-Extensions")
    }

    fn list(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .filter_map(|v| core::str::from_utf8(v).ok())
            .flat_map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()))
            .collect()
    }
}

/// An HTTP response to an upgrade request, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (101 on success).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers.
    pub headers: Headers,
    /// The body (of a rejection), at most [`MAX_REJECT_BODY`] bytes.
    pub body: Bytes,
}

/// The most bytes of a rejection body a client keeps.
pub const MAX_REJECT_BODY: usize = 64 << 10;

/// Accumulates bytes until the blank line that ends an HTTP head.
#[derive(Debug)]
pub(crate) struct HeadReader {
    pub(crate) buf: BytesMut,
    /// Bytes before this index contain no end of head.
    scanned: usize,
    max: usize,
}

impl HeadReader {
    pub(crate) fn new(max: usize) -> Self {
        Self { buf: BytesMut::new(), scanned: 0, max }
    }

    /// Adds bytes; returns the length of the head once it is complete.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<usize>, HandshakeError> {
        self.buf.extend_from_slice(data);
        let end = self.find_end();
        match end {
            Some(len) if len <= self.max => Ok(Some(len)),
            Some(_) => Err(HandshakeError::HeadTooLarge { limit: self.max }),
            None if self.buf.len() > self.max => Err(HandshakeError::HeadTooLarge { limit: self.max }),
            None => Ok(None),
        }
    }

    /// Drops the first `n` bytes (a head just parsed), so that what follows is read as the
    /// start of the next head by the next [`push`](Self::push) (which may be of no bytes), with
    /// no copy: a response with many interim heads costs time linear in its length.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        bytes::Buf::advance(&mut self.buf, n);
        self.scanned = 0;
    }

    /// Finds `\n\r\n` or `\n\n`, resuming where the last call stopped.
    fn find_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        let mut i = self.scanned;
        while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
            let at = i + offset;
            match (buf.get(at + 1), buf.get(at + 2)) {
                (Some(b'\n'), _) => return Some(at + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(at + 3),
                (None, _) | (Some(b'\r'), None) => {
                    // Undecided until more bytes arrive: resume at this newline.
                    self.scanned = at;
                    return None;
                }
                _ => i = at + 1,
            }
        }
        self.scanned = buf.len();
        None
    }
}

/// Maps an httparse error, turning its header-count overflow into our limit error.
pub(crate) fn parse_error(err: httparse::Error, max_headers: usize) -> HandshakeError {
    match err {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders { limit: max_headers },
        other => HandshakeError::Malformed(alloc::format!("{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_across_any_split() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for cut in 0..head.len() {
            let mut reader = HeadReader::new(1024);
            let first = reader.push(&head[..cut]).unwrap();
            let end = first.or_else(|| reader.push(&head[cut..]).unwrap());
            assert_eq!(end, Some(head.len() - 4), "cut {cut}");
        }
    }

    #[test]
    fn byte_by_byte_is_linear_and_capped() {
        let mut reader = HeadReader::new(100);
        let mut result = Ok(None);
        for _ in 0..200 {
            result = reader.push(b"a");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HandshakeError::HeadTooLarge { limit: 100 }));
        assert_eq!(reader.scanned, reader.buf.len());
    }
}
