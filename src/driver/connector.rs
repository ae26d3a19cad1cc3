//! [`Connector`]: how the drivers' `connect` helpers reach a server — directly or through an
//! HTTP `CONNECT` proxy, and with which TLS configuration for `wss://` — shared by the blocking
//! and the tokio driver.

use crate::driver::DriverError;
use crate::handshake::client::ClientRequest;
use crate::handshake::proxy::{Proxy, ProxyError};
use core::fmt;

/// How to reach a WebSocket server: the proxy (none, a given one, or the one the environment
/// names) and, with the `rustls` feature, the TLS configuration for `wss://` URLs. Pass it to
/// [`blocking::WebSocket::connect_with_connector`](crate::blocking::WebSocket::connect_with_connector)
/// or `tokio::WebSocketStream::connect_with_connector`.
///
/// The default connects directly and, for `wss://`, verifies the server against the bundled
/// Mozilla roots (webpki-roots) with the host of the URL as the name (an IP address host is
/// checked against the certificate's IP addresses).
///
/// ```no_run
/// use wscore::{ClientRequest, Config, Connector, Proxy};
/// let connector = Connector::new().proxy(Proxy::new("proxy.internal", 3128).basic_auth("alice", "s3cret"));
/// let request = ClientRequest::from_url("wss://chat.example/ws")?;
/// let ws = wscore::blocking::WebSocket::connect_with_connector(request, Config::default(), &connector)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A private CA (with the `rustls` feature; see `tls_config`):
///
/// ```no_run
/// # #[cfg(feature = "rustls")] {
/// use std::sync::Arc;
/// use wscore::rustls::pki_types::{CertificateDer, pem::PemObject};
/// use wscore::rustls::{ClientConfig, RootCertStore};
///
/// let mut roots = RootCertStore::empty();
/// roots.add(CertificateDer::from_pem_file("ca.pem").unwrap()).unwrap();
/// let provider = Arc::new(wscore::rustls::crypto::ring::default_provider());
/// let tls = ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let connector = wscore::Connector::new().tls_config(Arc::new(tls));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Connector {
    proxy: ProxySetting,
    #[cfg(feature = "rustls")]
    tls: Option<alloc::sync::Arc<rustls::ClientConfig>>,
}

#[derive(Debug, Clone, Default)]
enum ProxySetting {
    #[default]
    Direct,
    Fixed(Proxy),
    FromEnv,
}

impl Connector {
    /// Direct connections; the bundled roots for `wss://`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects through `proxy` (an HTTP `CONNECT` tunnel; for `wss://`, TLS runs inside the
    /// tunnel, end to end with the server).
    ///
    /// ```
    /// let connector = wscore::Connector::new().proxy(wscore::Proxy::new("127.0.0.1", 3128));
    /// ```
    #[must_use]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxySetting::Fixed(proxy);
        self
    }

    /// Connects through the proxy the environment names for each URL (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `NO_PROXY`...; see [`Proxy::from_env`]), read at every connect. A proxy
    /// URL that cannot be used fails the connect with [`DriverError::Proxy`].
    ///
    /// ```
    /// let connector = wscore::Connector::new().proxy_from_env();
    /// ```
    #[must_use]
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxySetting::FromEnv;
        self
    }

    /// Uses `config` for `wss://` connections: a private CA, client certificates, another
    /// crypto provider, ALPN... The server name comes from the URL's host.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wscore::rustls::{ClientConfig, RootCertStore};
    /// let roots = RootCertStore::empty(); // add the CA that signed the server's certificate
    /// let provider = Arc::new(wscore::rustls::crypto::ring::default_provider());
    /// let config = ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let connector = wscore::Connector::new().tls_config(Arc::new(config));
    /// ```
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: alloc::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The proxy to use for `request`, if any.
    pub(crate) fn proxy_for(&self, request: &ClientRequest) -> Result<Option<Proxy>, ProxyError> {
        match &self.proxy {
            ProxySetting::Direct => Ok(None),
            ProxySetting::Fixed(proxy) => Ok(Some(proxy.clone())),
            ProxySetting::FromEnv => Proxy::from_env(request),
        }
    }

    /// The TLS configuration for `wss://`: the one given, or the default.
    #[cfg(feature = "rustls")]
    pub(crate) fn tls_client_config(&self) -> Result<alloc::sync::Arc<rustls::ClientConfig>, DriverError> {
        match &self.tls {
            Some(config) => Ok(alloc::sync::Arc::clone(config)),
            None => super::tls::default_client_config(),
        }
    }

    /// Fails for `wss://` in a build without TLS.
    #[cfg(not(feature = "rustls"))]
    pub(crate) fn check_secure(request: &ClientRequest) -> Result<(), DriverError> {
        if request.is_secure() { Err(DriverError::TlsNotSupported) } else { Ok(()) }
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Connector");
        s.field("proxy", &self.proxy);
        #[cfg(feature = "rustls")]
        s.field("tls", &if self.tls.is_some() { "custom ClientConfig" } else { "default (webpki roots)" });
        s.finish()
    }
}
