//! The server side of the HTTP/1.1 upgrade (RFC 6455 §4.2) for the peers' echo servers whose
//! crates are built here without their own handshake (tungstenite and tokio-tungstenite without
//! the `handshake` feature, fastwebsockets without `upgrade`, which would bring in hyper). Every
//! such server answers the same way: `101` with the accept key and no extension, so
//! permessage-deflate is never negotiated. Not a general-purpose server handshake: enough for the
//! load generator and for any browser or client that sends a valid request.
//!
//! Included with `#[path]` by the peer servers; each uses either the blocking or the async half.

#![allow(dead_code)]

use base64::Engine;
use sha1::{Digest, Sha1};

/// The longest request accepted.
const MAX_REQUEST: usize = 16 << 10;

/// The `101` response for a complete, valid request at the start of `buf`, and how many bytes
/// the request took; `Ok(None)` while the request is incomplete.
fn respond(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => return Ok(None),
        Ok(httparse::Status::Partial) => return Err("request too long".into()),
        Err(e) => return Err(format!("bad request: {e}")),
    };
    let header = |name: &str| request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    if request.method != Some("GET") || !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")) {
        return Err("not a WebSocket upgrade".into());
    }
    if header("sec-websocket-version") != Some(b"13") {
        return Err("unsupported Sec-WebSocket-Version".into());
    }
    let key = header("sec-websocket-key").ok_or("no Sec-WebSocket-Key")?;
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    Ok(Some((response.into_bytes(), head)))
}

/// Reads the request from a blocking stream and answers it; returns the bytes that followed
/// the request (frames a client sent without waiting for the response).
pub(crate) fn accept_blocking<S: std::io::Read + std::io::Write>(stream: &mut S) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((response, head)) = respond(&buf).map_err(std::io::Error::other)? {
            stream.write_all(&response)?;
            return Ok(buf.split_off(head));
        }
    }
}

/// [`accept_blocking`] on a tokio stream.
pub(crate) async fn accept_async<S>(stream: &mut S) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((response, head)) = respond(&buf).map_err(std::io::Error::other)? {
            stream.write_all(&response).await?;
            return Ok(buf.split_off(head));
        }
    }
}
