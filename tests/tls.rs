//! `wss://` with both drivers against a local TLS WebSocket server whose CA and certificates
//! are generated at test time: echo of text and binary, ping, close with a code, the default
//! roots refusing a private CA, a wrong CA, a name mismatch, IP-address hosts, client
//! certificates, keepalive over TLS, and a blocking split over TLS with writer threads.
//!
//! Nothing waits on a clock: the threads meet through the protocol itself.

#![cfg(all(feature = "std", feature = "tokio", feature = "rustls"))]

mod pki;

use std::thread;
use std::time::Duration;

use pki::{Ca, echo_server, server_config};
use wscore::blocking::WebSocket;
use wscore::rustls::{CertificateError, ClientConfig};
use wscore::tokio::WebSocketStream;
use wscore::{ClientRequest, CloseCode, Config, Connector, DriverError, Event, Message};

fn request(url: &str) -> ClientRequest {
    ClientRequest::from_url(url).unwrap()
}

fn connector(ca: &Ca) -> Connector {
    Connector::new().tls_config(ca.client_config())
}

/// The next data message, with the control events met on the way.
fn next_message(ws: &mut WebSocket<wscore::blocking::MaybeTlsStream>, control: &mut Vec<Event>) -> Message {
    loop {
        match ws.read().expect("read") {
            Some(Event::Message(message)) => return message,
            Some(other) => control.push(other),
            None => panic!("ended while waiting for a message"),
        }
    }
}

fn assert_certificate_error(result: Result<impl Sized, DriverError>, expected: fn(&CertificateError) -> bool) {
    match result {
        Err(DriverError::Tls(wscore::rustls::Error::InvalidCertificate(e))) => {
            assert!(expected(&e), "unexpected certificate error {e:?}");
        }
        Err(other) => panic!("expected a certificate error, got {other:?} ({other})"),
        Ok(_) => panic!("expected a certificate error, connected"),
    }
}

fn is_unknown_issuer(e: &CertificateError) -> bool {
    matches!(e, CertificateError::UnknownIssuer)
}

fn is_wrong_name(e: &CertificateError) -> bool {
    matches!(e, CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })
}

#[test]
fn blocking_echo_ping_and_close_over_tls() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let url = format!("wss://localhost:{port}/echo");
    let mut ws = WebSocket::connect_with_connector(request(&url), Config::default(), &connector(&ca)).unwrap();
    assert!(ws.get_ref().is_tls());

    let mut control = Vec::new();
    ws.send_text("hello over TLS").unwrap();
    assert_eq!(next_message(&mut ws, &mut control), Message::Text("hello over TLS".into()));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send_binary(big.clone()).unwrap();
    assert_eq!(next_message(&mut ws, &mut control).as_bytes(), &big[..]);

    ws.ping("p1").unwrap();
    assert_eq!(next_message(&mut ws, &mut control), Message::Text("ping:p1".into()));
    assert_eq!(control, vec![Event::Pong("p1".into())]);

    ws.close(CloseCode(4000), "bye").unwrap();
    let mut rest = Vec::new();
    while let Some(event) = ws.read().unwrap() {
        rest.push(event);
    }
    assert!(matches!(&rest[..], [Event::Close(Some(frame))] if frame.code == CloseCode(4000)), "{rest:?}");

    let served = server.join().unwrap();
    let seen = served[0].as_ref().unwrap();
    assert!(
        matches!(&seen[..], [Event::Ping(p), Event::Close(Some(f))] if &p[..] == b"p1" && f.code == CloseCode(4000) && f.reason.as_str() == "bye"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn tokio_echo_ping_and_close_over_tls() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let url = format!("wss://localhost:{port}/echo");
    let mut ws =
        WebSocketStream::connect_with_connector(request(&url), Config::default(), &connector(&ca)).await.unwrap();
    assert!(ws.get_ref().is_tls());

    ws.send_text("hello over TLS").await.unwrap();
    assert_eq!(ws.next_message().await.unwrap(), Some(Message::Text("hello over TLS".into())));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    ws.send_binary(big.clone()).await.unwrap();
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), &big[..]);

    ws.ping("p2").await.unwrap();
    assert_eq!(ws.next_event().await.unwrap(), Some(Event::Pong("p2".into())));
    assert_eq!(ws.next_event().await.unwrap(), Some(Event::Message(Message::Text("ping:p2".into()))));

    ws.close(CloseCode(4001), "done").await.unwrap();
    let mut rest = Vec::new();
    while let Some(event) = ws.next_event().await.unwrap() {
        rest.push(event);
    }
    assert!(matches!(&rest[..], [Event::Close(Some(frame))] if frame.code == CloseCode(4001)), "{rest:?}");
    let served = tokio::task::spawn_blocking(move || server.join().unwrap()).await.unwrap();
    assert!(served[0].is_ok(), "{served:?}");
}

#[tokio::test]
async fn tokio_split_halves_over_tls() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let url = format!("wss://localhost:{port}/");
    let ws = WebSocketStream::connect_with_connector(request(&url), Config::default(), &connector(&ca)).await.unwrap();
    let (mut read, mut write) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..50 {
            write.send_text(format!("m{i}")).await.unwrap();
        }
        write
    });
    for i in 0..50 {
        assert_eq!(read.next_message().await.unwrap(), Some(Message::Text(format!("m{i}").into())));
    }
    let mut write = writer.await.unwrap();
    write.close(CloseCode::NORMAL, "").await.unwrap();
    while read.next_event().await.unwrap().is_some() {}
    let served = tokio::task::spawn_blocking(move || server.join().unwrap()).await.unwrap();
    assert!(served[0].is_ok(), "{served:?}");
}

#[test]
fn ip_address_hosts_are_verified_against_ip_names() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["127.0.0.1"]), None), 1);
    let mut ws = WebSocket::connect_with_connector(
        request(&format!("wss://127.0.0.1:{port}/")),
        Config::default(),
        &connector(&ca),
    )
    .unwrap();
    ws.send_text("by address").unwrap();
    assert_eq!(next_message(&mut ws, &mut Vec::new()), Message::Text("by address".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().unwrap().is_some() {}
    assert!(server.join().unwrap()[0].is_ok());
}

#[test]
fn default_roots_do_not_trust_a_private_ca() {
    let ca = Ca::new("private CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 2);
    // `connect` with no connector: the bundled webpki roots.
    assert_certificate_error(WebSocket::connect(&format!("wss://localhost:{port}/")), is_unknown_issuer);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(WebSocketStream::connect(&format!("wss://localhost:{port}/")));
    assert_certificate_error(result, is_unknown_issuer);
    // The server saw the client give up during the TLS handshake.
    assert!(server.join().unwrap().iter().all(|served| served.as_ref().is_err_and(|e| e.starts_with("TLS accept"))));
}

#[test]
fn a_wrong_ca_fails_with_a_certificate_error_in_both_drivers() {
    let ca = Ca::new("the server's CA");
    let other = Ca::new("another CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 2);
    let url = format!("wss://localhost:{port}/");
    let result = WebSocket::connect_with_connector(request(&url), Config::default(), &connector(&other));
    let Err(err) = &result else { panic!("connected") };
    assert!(err.to_string().contains("invalid peer certificate"), "{err}");
    assert_certificate_error(result, is_unknown_issuer);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result =
        runtime.block_on(WebSocketStream::connect_with_connector(request(&url), Config::default(), &connector(&other)));
    assert_certificate_error(result, is_unknown_issuer);
    server.join().unwrap();
}

#[test]
fn a_name_mismatch_fails_in_both_drivers() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["server.test"]), None), 2);
    // The certificate names server.test; we connect to localhost and 127.0.0.1.
    let result = WebSocket::connect_with_connector(
        request(&format!("wss://localhost:{port}/")),
        Config::default(),
        &connector(&ca),
    );
    let Err(err) = &result else { panic!("connected") };
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert_certificate_error(result, is_wrong_name);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(WebSocketStream::connect_with_connector(
        request(&format!("wss://127.0.0.1:{port}/")),
        Config::default(),
        &connector(&ca),
    ));
    assert_certificate_error(result, is_wrong_name);
    server.join().unwrap();
}

#[test]
fn client_certificates_through_a_custom_client_config() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), Some(&client_ca)), 2);
    let url = format!("wss://localhost:{port}/");

    // Without a certificate the server refuses (TLS 1.3 reports it on the first read).
    let refused = WebSocket::connect_with_connector(request(&url), Config::default(), &connector(&ca));
    assert!(refused.is_err(), "connected without a client certificate");

    let leaf = client_ca.client();
    let config = ClientConfig::builder_with_provider(pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_client_auth_cert(leaf.chain, leaf.key)
        .unwrap();
    let connector = Connector::new().tls_config(std::sync::Arc::new(config));
    let mut ws = WebSocket::connect_with_connector(request(&url), Config::default(), &connector).unwrap();
    ws.send_text("with a certificate").unwrap();
    assert_eq!(next_message(&mut ws, &mut Vec::new()), Message::Text("with a certificate".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().unwrap().is_some() {}
    let served = server.join().unwrap();
    assert!(served[0].is_err() && served[1].is_ok(), "{served:?}");
}

#[test]
fn blocking_keepalive_fires_over_tls() {
    // The read timeout comes from the keepalive deadline: the ping goes out while `read`
    // blocks, and the server's answer to it ends the wait.
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let config = Config::default().keepalive_interval(Some(Duration::from_millis(20)));
    let mut ws =
        WebSocket::connect_with_connector(request(&format!("wss://localhost:{port}/")), config, &connector(&ca))
            .unwrap();
    let mut control = Vec::new();
    let message = next_message(&mut ws, &mut control);
    assert!(message.as_bytes().starts_with(b"ping:"), "{message:?}");
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().unwrap().is_some() {}
    let seen = server.join().unwrap().remove(0).unwrap();
    assert!(matches!(seen.first(), Some(Event::Ping(_))), "{seen:?}");
}

#[test]
fn blocking_split_over_tls_with_writer_threads() {
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let ws = WebSocket::connect_with_connector(
        request(&format!("wss://localhost:{port}/")),
        Config::default(),
        &connector(&ca),
    )
    .unwrap();
    let (mut reader, writer) = ws.split().unwrap();

    // Two threads write while this one blocks in `read`: if the reader held the lock while
    // waiting for bytes, the writers could not send and nothing would come back.
    const PER_THREAD: usize = 100;
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let writer = writer.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    writer.send_text(format!("{name}{i}")).unwrap();
                    if i % 10 == 0 {
                        writer.ping(format!("{name}{i}")).unwrap();
                    }
                }
            })
        })
        .collect();
    let (mut a, mut b, mut pongs, mut ping_texts) = (0, 0, 0, 0);
    while a + b < 2 * PER_THREAD || pongs < 20 || ping_texts < 20 {
        match reader.read().unwrap() {
            Some(Event::Message(Message::Text(text))) => {
                let text = text.as_str();
                if let Some(n) = text.strip_prefix("ping:") {
                    assert!(n.starts_with('a') || n.starts_with('b'));
                    ping_texts += 1;
                } else if let Some(n) = text.strip_prefix('a') {
                    assert_eq!(n.parse::<usize>().unwrap(), a, "a's messages in order");
                    a += 1;
                } else if let Some(n) = text.strip_prefix('b') {
                    assert_eq!(n.parse::<usize>().unwrap(), b, "b's messages in order");
                    b += 1;
                }
            }
            Some(Event::Pong(_)) => pongs += 1,
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("ended early"),
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    writer.close(CloseCode(4002), "split done").unwrap();
    let mut rest = Vec::new();
    while let Some(event) = reader.read().unwrap() {
        rest.push(event);
    }
    assert!(matches!(&rest[..], [Event::Close(Some(f))] if f.code == CloseCode(4002)), "{rest:?}");
    assert!(server.join().unwrap()[0].is_ok());
}

#[test]
fn blocking_split_over_tls_reads_what_was_decrypted_before() {
    // Many small messages arrive in few TLS reads: the reader must hand out what rustls already
    // decrypted without waiting for the socket again.
    let ca = Ca::new("test CA");
    let (port, server) = echo_server(server_config(&ca.server(&["localhost"]), None), 1);
    let config = Config::default().read_buffer_size(64);
    let ws = WebSocket::connect_with_connector(request(&format!("wss://localhost:{port}/")), config, &connector(&ca))
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    for i in 0..200 {
        writer.send_text(format!("message number {i}")).unwrap();
    }
    for i in 0..200 {
        match reader.read().unwrap() {
            Some(Event::Message(m)) => assert_eq!(m, Message::Text(format!("message number {i}").into())),
            other => panic!("{other:?}"),
        }
    }
    writer.close(CloseCode::NORMAL, "").unwrap();
    while reader.read().unwrap().is_some() {}
    assert!(server.join().unwrap()[0].is_ok());
}
