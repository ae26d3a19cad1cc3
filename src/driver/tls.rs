//! TLS for `wss://` with rustls (feature `rustls`), shared by both drivers: the default client
//! configuration (bundled webpki roots; the process-wide crypto provider if one is installed,
//! else `ring`), the server name taken from the URL, and clear errors for failed handshakes.

use crate::driver::DriverError;
use alloc::string::ToString;
use alloc::sync::Arc;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::io;
use std::sync::OnceLock;

/// Built once: the root store is the same every time, and one config keeps one session cache
/// (so later connections to the same server resume their TLS sessions).
static DEFAULT_CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// The default client configuration: Mozilla's roots (webpki-roots), safe default protocol
/// versions, no client certificate.
pub(crate) fn default_client_config() -> Result<Arc<ClientConfig>, DriverError> {
    if let Some(config) = DEFAULT_CONFIG.get() {
        return Ok(Arc::clone(config));
    }
    // A provider the application installed (aws-lc-rs, a FIPS build...) wins over ours.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(DriverError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::clone(DEFAULT_CONFIG.get_or_init(|| Arc::new(config))))
}

/// The name to verify the server's certificate against: the URL's host, a DNS name or an IP
/// address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, DriverError> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        DriverError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            alloc::format!("invalid TLS server name {host:?}: {e}"),
        ))
    })
}

/// A new client connection to `host` with `config`, with `early` (bytes a proxy sent after its
/// answer, which belong to the server) already fed to it.
pub(crate) fn client_connection(
    config: Arc<ClientConfig>,
    host: &str,
    early: &[u8],
) -> Result<rustls::ClientConnection, DriverError> {
    let mut conn = rustls::ClientConnection::new(config, server_name(host)?).map_err(DriverError::Tls)?;
    let mut rest = early;
    while !rest.is_empty() {
        match conn.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {
                conn.process_new_packets().map_err(DriverError::Tls)?;
            }
            Err(e) => return Err(handshake_error(e)),
        }
    }
    Ok(conn)
}

/// An I/O error from the TLS handshake: [`DriverError::Tls`] when rustls failed (a bad
/// certificate, a name mismatch, no common protocol version...), else the I/O error.
pub(crate) fn handshake_error(err: io::Error) -> DriverError {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => DriverError::Tls(tls.clone()),
        None => DriverError::Io(err),
    }
}
