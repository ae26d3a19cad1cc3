//! A `wss://` echo server on tokio: TLS with tokio-rustls in front of
//! [`wscore::tokio::WebSocketStream`], one task per connection.
//!
//! ```text
//! cargo run --release --example tls_echo_server --features rustls -- 127.0.0.1:9443 [--cert cert.pem --key key.pem]
//! ```
//!
//! With `--cert` and `--key` (PEM: the certificate chain, and a PKCS#8, PKCS#1 or SEC1 key) it
//! serves that certificate. Without them it makes a throwaway CA and a certificate for
//! `localhost`, `127.0.0.1`, `::1` and the listening host, and prints where it wrote the CA
//! for clients to trust, e.g.
//!
//! ```text
//! SSL_CERT_FILE=/tmp/wscore-tls-echo-1234/ca.pem python3 -m websockets wss://localhost:9443/
//! ```
//!
//! Every text and binary message is echoed unchanged (up to 64 MiB); pings are answered and
//! close handshakes completed by the core. On Ctrl-C every connection closes with 1001 (going
//! away); a second Ctrl-C exits at once. As in `tokio_echo_server`, the example only moves
//! bytes and messages: the TLS session is rustls', the protocol wscore's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use wscore::rustls::ServerConfig;
use wscore::rustls::pki_types::pem::PemObject;
use wscore::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wscore::tokio::WebSocketStream;
use wscore::{Accept, CloseCode, Config, DriverError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a client may take for the TLS handshake (the upgrade has its own timeout).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

fn config() -> Config {
    Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .max_write_buffer(128 << 20)
        .read_buffer_size(64 << 10)
}

struct Options {
    addr: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options { addr: "127.0.0.1:9443".into(), cert: None, key: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cert" => options.cert = Some(args.next().ok_or("--cert needs a path")?.into()),
            "--key" => options.key = Some(args.next().ok_or("--key needs a path")?.into()),
            "-h" | "--help" => {
                println!("usage: tls_echo_server [ADDR] [--cert cert.pem --key key.pem]");
                std::process::exit(0);
            }
            addr if !addr.starts_with('-') => options.addr = addr.into(),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if options.cert.is_some() != options.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    Ok(options)
}

/// The certificate chain and key: from the PEM files given, or made up on the spot.
fn identity(options: &Options, host: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), BoxError> {
    if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        return Ok((chain, key));
    }
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "wscore tls_echo_server throwaway CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !names.iter().any(|n| n == host) && !host.is_empty() && host != "0.0.0.0" && host != "::" {
        names.push(host.into());
    }
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let dir = std::env::temp_dir().join(format!("wscore-tls-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem())?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    println!("no --cert/--key: made a certificate for {}", names.join(", "));
    println!("clients must trust the CA written to {}", ca_path.display());
    println!("  (certificate and key next to it: reuse them with --cert/--key)");
    Ok((vec![cert.der().clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), BoxError> {
    let options = options()?;
    let listener = TcpListener::bind(&options.addr).await?;
    let local = listener.local_addr()?;
    let (chain, key) = identity(&options, &local.ip().to_string())?;
    let provider = Arc::new(wscore::rustls::crypto::ring::default_provider());
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    println!("listening on wss://{local}/");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(serve(acceptor.clone(), tcp, peer, shutdown_rx.clone()));
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next() => {}
            result = &mut ctrl_c => {
                result?;
                break;
            }
        }
    }
    drop(listener);
    eprintln!("shutting down: closing {} connection(s) with 1001", tasks.len());
    let _ = shutdown_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        result = tokio::time::timeout(SHUTDOWN_GRACE, drain) => {
            if result.is_err() {
                eprintln!("gave up waiting for {} connection(s)", tasks.len());
            }
        }
        _ = tokio::signal::ctrl_c() => eprintln!("second Ctrl-C: exiting now"),
    }
    Ok(())
}

/// One connection, from the TLS handshake to the end of the transport. Logs at most one line.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, peer: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return eprintln!("{peer}: TLS handshake failed: {e}"),
        Err(_) => return eprintln!("{peer}: TLS handshake timed out"),
    };
    let result = async {
        let mut ws = WebSocketStream::accept_with(tls, config(), |_request| Ok(Accept::new())).await?;
        let mut closing = false;
        loop {
            tokio::select! {
                message = ws.next_message() => match message? {
                    Some(message) => match ws.feed(message).await {
                        Err(DriverError::Send(_)) => {} // closing: late messages are not echoed
                        result => result?,
                    },
                    None => return Ok(()),
                },
                _ = shutdown.changed(), if !closing => {
                    closing = true;
                    match ws.close(CloseCode::GOING_AWAY, "server shutting down").await {
                        Err(DriverError::Send(_)) => {} // the peer closed first
                        result => result?,
                    }
                }
            }
        }
    }
    .await;
    match result {
        Ok(()) => {}
        Err(DriverError::Handshake(e)) => eprintln!("{peer}: upgrade failed: {e} (HTTP {})", e.status()),
        Err(DriverError::Connection(e)) => eprintln!("{peer}: {e} (close code {})", e.close_code()),
        Err(e) => eprintln!("{peer}: {e}"),
    }
}
