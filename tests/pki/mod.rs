//! A test PKI made at test time (a CA, server and client certificates, with rcgen) and a TLS
//! WebSocket echo server on a thread of its own, for `tests/tls.rs` and `tests/proxy.rs`.

#![allow(dead_code)] // each test file uses part of it

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use wscore::rustls::crypto::CryptoProvider;
use wscore::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wscore::rustls::server::WebPkiClientVerifier;
use wscore::rustls::{ClientConfig, RootCertStore, ServerConfig};
use wscore::tokio::WebSocketStream;
use wscore::{Event, Message};

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(wscore::rustls::crypto::ring::default_provider())
}

/// A certificate authority.
pub(crate) struct Ca {
    pub(crate) der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key.
pub(crate) struct Leaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { der: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub(crate) fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub(crate) fn client(&self) -> Leaf {
        self.leaf(&["test client"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    pub(crate) fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        roots
    }

    /// A client configuration that trusts this CA only.
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
        )
    }
}

/// A server configuration presenting `leaf`; with `client_ca`, client certificates from that CA
/// are required.
pub(crate) fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider()).build().unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(leaf.chain.clone(), leaf.key.clone_key()).unwrap())
}

/// How one connection to the echo server went: the events other than messages, or why it
/// failed.
pub(crate) type Served = Result<Vec<Event>, String>;

/// A TLS WebSocket echo server for `connections` connections, one after another, on a thread
/// of its own with a tokio runtime. Messages are echoed; a ping is answered (by the core) and
/// followed by a text message `ping:<payload>`. Returns the port and, when joined, how each
/// connection went.
pub(crate) fn echo_server(config: Arc<ServerConfig>, connections: usize) -> (u16, JoinHandle<Vec<Served>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = TlsAcceptor::from(config);
            let mut served = Vec::new();
            for _ in 0..connections {
                let (tcp, _) = listener.accept().await.unwrap();
                served.push(serve(&acceptor, tcp).await);
            }
            served
        })
    });
    (port, handle)
}

async fn serve(acceptor: &TlsAcceptor, tcp: tokio::net::TcpStream) -> Served {
    let tls = acceptor.accept(tcp).await.map_err(|e| format!("TLS accept: {e}"))?;
    let mut ws = WebSocketStream::accept(tls).await.map_err(|e| format!("upgrade: {e}"))?;
    let mut seen = Vec::new();
    while let Some(event) = ws.next_event().await.map_err(|e| format!("connection: {e}"))? {
        match event {
            Event::Message(message) => {
                // Fails only once we are closing.
                let _ = ws.send(message).await;
            }
            Event::Ping(payload) => {
                let text = format!("ping:{}", String::from_utf8_lossy(&payload));
                let _ = ws.send(Message::Text(text.into())).await;
                seen.push(Event::Ping(payload));
            }
            other => seen.push(other),
        }
    }
    Ok(seen)
}
