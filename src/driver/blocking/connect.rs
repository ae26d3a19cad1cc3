//! The blocking `connect` path: the name lookup, TCP, the optional HTTP `CONNECT` tunnel, TLS
//! for `wss://`, then the upgrade — all within [`Config::handshake_timeout`].

use super::transport::{Transport, time_until};
use super::{MaybeTlsStream, WebSocket};
use crate::config::Config;
use crate::driver::{Connector, DriverError, is_timeout};
use crate::handshake::HandshakeError;
use crate::handshake::client::ClientRequest;
use crate::handshake::proxy::{Proxy, ProxyHandshake};
use crate::time::Instant;
use alloc::vec::Vec;
use bytes::Bytes;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};

/// Connects to `request`'s server the way `connector` says and performs the upgrade.
pub(super) fn connect(
    request: ClientRequest,
    config: Config,
    connector: &Connector,
) -> Result<WebSocket<MaybeTlsStream>, DriverError> {
    #[cfg(not(feature = "rustls"))]
    Connector::check_secure(&request)?;
    let deadline = config.handshake_timeout.map(|t| Instant::now() + t);
    let (tcp, early) = match connector.proxy_for(&request)? {
        Some(proxy) => {
            let mut tcp = tcp_connect(proxy.host(), proxy.port(), deadline)?;
            let early = tunnel_over(&mut tcp, &proxy, request.host(), request.port(), &config, deadline)?;
            (tcp, early)
        }
        None => (tcp_connect(request.host(), request.port(), deadline)?, Bytes::new()),
    };
    #[cfg(feature = "rustls")]
    if request.is_secure() {
        let conn = crate::driver::tls::client_connection(connector.tls_client_config()?, request.host(), &early)?;
        let tls = super::TlsStream::handshake(conn, tcp, deadline)?;
        let stream = MaybeTlsStream::Rustls(alloc::boxed::Box::new(tls));
        return WebSocket::client_until(stream, request, config, deadline, &[]);
    }
    WebSocket::client_until(MaybeTlsStream::Plain(tcp), request, config, deadline, &early)
}

/// Opens a TCP connection to `host:port`, trying each address in turn until `deadline`, with
/// `TCP_NODELAY` (frames are written whole, so Nagle only delays).
pub(super) fn tcp_connect(host: &str, port: u16, deadline: Option<Instant>) -> Result<TcpStream, DriverError> {
    let mut last_error = None;
    for addr in resolve(host, port, deadline)? {
        let attempt = match deadline {
            Some(at) => match at.saturating_duration_since(Instant::now()) {
                left if left.is_zero() => return Err(HandshakeError::Timeout.into()),
                left => TcpStream::connect_timeout(&addr, left),
            },
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(HandshakeError::Timeout.into()),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host name has no address")).into())
}

/// The addresses of `host`, within `deadline`. The system's resolver has no timeout of its
/// own (a dead DNS server stalls it for its whole retry schedule), so with a deadline a name
/// is looked up on a thread of its own and given up on, with [`HandshakeError::Timeout`], when
/// the deadline passes (the thread ends when the lookup does). Address literals need no lookup.
fn resolve(host: &str, port: u16, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, DriverError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(alloc::vec![SocketAddr::new(ip, port)]);
    }
    let name = alloc::string::String::from(host);
    let lookup = move || (name.as_str(), port).to_socket_addrs().map(Iterator::collect);
    match deadline {
        None => Ok(lookup()?),
        Some(at) => lookup_until(lookup, at),
    }
}

/// Runs `lookup` on a thread of its own, waiting for it until `deadline`.
fn lookup_until<F>(lookup: F, deadline: Instant) -> Result<Vec<SocketAddr>, DriverError>
where
    F: FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
{
    let (answer, answered) = mpsc::channel();
    std::thread::Builder::new().name("wscore-resolve".into()).spawn(move || {
        // The connect may have given up already: then nobody listens.
        let _ = answer.send(lookup());
    })?;
    match answered.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(addresses) => Ok(addresses?),
        Err(RecvTimeoutError::Timeout) => Err(HandshakeError::Timeout.into()),
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other("the name lookup ended without an answer").into()),
    }
}

/// Opens a TCP connection to `proxy` and a `CONNECT` tunnel through it to `host:port`, within
/// [`Config::handshake_timeout`]. Returns the tunnel and the bytes the proxy sent after its
/// answer (they come from the target; hand them to whatever runs over the tunnel first).
///
/// The `connect` helpers do this for you with [`Connector::proxy`]; this is for running
/// something else over the tunnel (another TLS library, a custom handshake).
///
/// ```no_run
/// use wscore::{ClientRequest, Config, Proxy};
/// let proxy = Proxy::new("127.0.0.1", 3128).basic_auth("alice", "s3cret");
/// let (tunnel, early) = wscore::blocking::tunnel(&proxy, "example.com", 80, &Config::default())?;
/// assert!(early.is_empty()); // a WebSocket server never speaks first
/// let ws = wscore::blocking::WebSocket::client(tunnel, ClientRequest::new("example.com", "/ws"), Config::default())?;
/// # Ok::<(), wscore::DriverError>(())
/// ```
pub fn tunnel(proxy: &Proxy, host: &str, port: u16, config: &Config) -> Result<(TcpStream, Bytes), DriverError> {
    let deadline = config.handshake_timeout.map(|t| Instant::now() + t);
    let mut tcp = tcp_connect(proxy.host(), proxy.port(), deadline)?;
    let early = tunnel_over(&mut tcp, proxy, host, port, config, deadline)?;
    Ok((tcp, early))
}

/// The `CONNECT` exchange over a connected stream; returns the bytes after the proxy's answer.
pub(super) fn tunnel_over<S: Read + Write + Transport>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
    config: &Config,
    deadline: Option<Instant>,
) -> Result<Bytes, DriverError> {
    let mut handshake = ProxyHandshake::new(proxy, host, port, config);
    // Small reads: whatever follows the answer belongs to the tunnel and is handed back.
    let mut buf = [0u8; 1024];
    exchange(stream, &handshake.request_bytes(), &[], deadline, &mut buf, |input| match input {
        Some(bytes) => Ok(handshake.receive(bytes)?),
        None => Ok(handshake.receive_eof().map(|()| None)?),
    })
}

/// The request/response exchange of a sans-I/O handshake (the proxy's `CONNECT`, the
/// WebSocket upgrade) over a blocking stream, within `deadline`: writes `request`, then hands
/// `step` the `early` bytes (already read from the peer) and every read after them (`None` for
/// the end of the stream) until it returns the result. Timeouts become
/// [`HandshakeError::Timeout`].
pub(super) fn exchange<S: Read + Write + Transport, T>(
    stream: &mut S,
    request: &[u8],
    early: &[u8],
    deadline: Option<Instant>,
    buf: &mut [u8],
    mut step: impl FnMut(Option<&[u8]>) -> Result<Option<T>, DriverError>,
) -> Result<T, DriverError> {
    let timed_out = |e: io::Error| if is_timeout(&e) { HandshakeError::Timeout.into() } else { DriverError::Io(e) };
    stream.set_write_timeout(time_until(deadline, Instant::now()))?;
    stream.write_all(request).and_then(|()| stream.flush()).map_err(timed_out)?;
    if !early.is_empty() {
        if let Some(done) = step(Some(early))? {
            return Ok(done);
        }
    }
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|at| at <= now) {
            return Err(HandshakeError::Timeout.into());
        }
        stream.set_read_timeout(time_until(deadline, now))?;
        let read = match stream.read(buf) {
            Ok(0) => None,
            Ok(n) => Some(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) && deadline.is_some() => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(done) = step(read.map(|n| &buf[..n]))? {
            return Ok(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn address_literals_need_no_lookup() {
        let v6 = resolve("::1", 9001, Some(Instant::ZERO)).unwrap();
        assert_eq!(v6, [SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9001))]);
        let v4 = resolve("127.0.0.1", 80, None).unwrap();
        assert_eq!(v4, [SocketAddr::from(([127, 0, 0, 1], 80))]);
    }

    #[test]
    fn a_lookup_that_never_answers_times_out_at_the_deadline() {
        let (release, stuck) = mpsc::channel::<()>();
        let lookup = move || {
            let _ = stuck.recv(); // until the test lets go
            Ok(Vec::new())
        };
        let deadline = Instant::now() + Duration::from_millis(20);
        let result = lookup_until(lookup, deadline);
        assert!(matches!(result, Err(DriverError::Handshake(HandshakeError::Timeout))), "{result:?}");
        assert!(Instant::now() >= deadline);
        drop(release);
    }

    #[test]
    fn a_lookup_answers_within_the_deadline() {
        let addr = SocketAddr::from(([10, 0, 0, 1], 443));
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(lookup_until(move || Ok(alloc::vec![addr]), far).unwrap(), [addr]);
        let failed = lookup_until(|| Err(io::Error::other("no such host")), far);
        assert!(matches!(failed, Err(DriverError::Io(e)) if alloc::format!("{e}") == "no such host"));
    }
}
