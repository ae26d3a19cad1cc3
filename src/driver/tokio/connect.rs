//! The tokio `connect` path: TCP, the optional HTTP `CONNECT` tunnel, TLS for `wss://` with
//! tokio-rustls, then the upgrade — all within [`Config::handshake_timeout`].

use super::{MaybeTlsStream, WebSocketStream, client_handshake};
use crate::config::Config;
use crate::driver::{Connector, DriverError};
use crate::handshake::HandshakeError;
use crate::handshake::client::ClientRequest;
use crate::handshake::proxy::{Proxy, ProxyHandshake};
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::TcpStream;
use bytes::Bytes;
use core::future::Future;
use std::io;

/// Runs `future` within the handshake timeout, if there is one.
async fn within<T>(config: &Config, future: impl Future<Output = Result<T, DriverError>>) -> Result<T, DriverError> {
    match config.handshake_timeout {
        Some(timeout) => ::tokio::time::timeout(timeout, future).await.map_err(|_| HandshakeError::Timeout)?,
        None => future.await,
    }
}

/// Connects to `request`'s server the way `connector` says and performs the upgrade.
pub(super) async fn connect(
    request: ClientRequest,
    config: Config,
    connector: &Connector,
) -> Result<WebSocketStream<MaybeTlsStream>, DriverError> {
    #[cfg(not(feature = "rustls"))]
    Connector::check_secure(&request)?;
    let proxy = connector.proxy_for(&request)?;
    let limits = config.clone();
    within(&limits, async move {
        let (tcp, early) = match proxy {
            Some(proxy) => {
                let mut tcp = tcp_connect(proxy.host(), proxy.port()).await?;
                let early = tunnel_over(&mut tcp, &proxy, request.host(), request.port(), &config).await?;
                (tcp, early)
            }
            None => (tcp_connect(request.host(), request.port()).await?, Bytes::new()),
        };
        #[cfg(feature = "rustls")]
        let (mut stream, early) = if request.is_secure() {
            (tls_connect(tcp, connector, request.host(), &early).await?, Bytes::new())
        } else {
            (MaybeTlsStream::Plain(tcp), early)
        };
        #[cfg(not(feature = "rustls"))]
        let mut stream = MaybeTlsStream::Plain(tcp);
        let conn = client_handshake(&mut stream, request, config, &early).await?;
        Ok(WebSocketStream::from_connection(stream, conn))
    })
    .await
}

/// The TLS handshake over `tcp` (with `early`, bytes a proxy sent after its answer, fed to it).
#[cfg(feature = "rustls")]
async fn tls_connect(
    tcp: TcpStream,
    connector: &Connector,
    host: &str,
    early: &[u8],
) -> Result<MaybeTlsStream, DriverError> {
    let config = connector.tls_client_config()?;
    let name = crate::driver::tls::server_name(host)?;
    // tokio-rustls makes the session; feed it the early bytes as the blocking driver does.
    let mut early_error = None;
    let connect = tokio_rustls::TlsConnector::from(config).connect_with(name, tcp, |conn| {
        let mut rest = early;
        while !rest.is_empty() {
            match conn.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    early_error = Some(e);
                    break;
                }
            }
        }
    });
    if let Some(e) = early_error {
        return Err(crate::driver::tls::handshake_error(e));
    }
    let tls = connect.await.map_err(crate::driver::tls::handshake_error)?;
    Ok(MaybeTlsStream::Rustls(alloc::boxed::Box::new(tls)))
}

/// Opens a TCP connection with `TCP_NODELAY` (output is written in whole batches).
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, DriverError> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Opens a TCP connection to `proxy` and a `CONNECT` tunnel through it to `host:port`, within
/// [`Config::handshake_timeout`]. Returns the tunnel and the bytes the proxy sent after its
/// answer (they come from the target; hand them to whatever runs over the tunnel first).
///
/// The `connect` helpers do this for you with [`Connector::proxy`]; this is for running
/// something else over the tunnel.
///
/// ```no_run
/// # async fn f() -> Result<(), wscore::DriverError> {
/// use wscore::{Config, Proxy};
/// let proxy = Proxy::new("127.0.0.1", 3128).basic_auth("alice", "s3cret");
/// let (tunnel, early) = wscore::tokio::tunnel(&proxy, "example.com", 443, &Config::default()).await?;
/// # Ok(()) }
/// ```
pub async fn tunnel(proxy: &Proxy, host: &str, port: u16, config: &Config) -> Result<(TcpStream, Bytes), DriverError> {
    within(config, async {
        let mut tcp = tcp_connect(proxy.host(), proxy.port()).await?;
        let early = tunnel_over(&mut tcp, proxy, host, port, config).await?;
        Ok((tcp, early))
    })
    .await
}

/// The `CONNECT` exchange over a connected stream; returns the bytes after the proxy's answer.
async fn tunnel_over<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
    config: &Config,
) -> Result<Bytes, DriverError> {
    let mut handshake = ProxyHandshake::new(proxy, host, port, config);
    let mut buf = [0u8; 1024];
    exchange(io, &handshake.request_bytes(), &[], &mut buf, |input| match input {
        Some(bytes) => Ok(handshake.receive(bytes)?),
        None => Ok(handshake.receive_eof().map(|()| None)?),
    })
    .await
}

/// The request/response exchange of a sans-I/O handshake (the proxy's `CONNECT`, the
/// WebSocket upgrade) over a tokio stream: writes `request`, then hands `step` the `early`
/// bytes (already read from the peer) and every read after them (`None` for the end of the
/// stream) until it returns the result. The caller bounds the time ([`within`]).
pub(super) async fn exchange<S: AsyncRead + AsyncWrite + Unpin, T>(
    io: &mut S,
    request: &[u8],
    early: &[u8],
    buf: &mut [u8],
    mut step: impl FnMut(Option<&[u8]>) -> Result<Option<T>, DriverError>,
) -> Result<T, DriverError> {
    io.write_all(request).await?;
    io.flush().await?;
    if !early.is_empty() {
        if let Some(done) = step(Some(early))? {
            return Ok(done);
        }
    }
    loop {
        let read = match io.read(buf).await {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(done) = step(read.map(|n| &buf[..n]))? {
            return Ok(done);
        }
    }
}
