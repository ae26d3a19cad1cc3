//! Both drivers through a local HTTP `CONNECT` proxy written here (threads, Basic auth
//! required): a full echo exchange through the tunnel, wrong or missing credentials (407),
//! refusals (403, 502), a proxy that hangs up, a proxy that sends its 200 and the server's first
//! WebSocket bytes in one write, and `wss://` through the tunnel (TLS end to end).
//!
//! Nothing waits on a clock: threads meet through the protocols themselves.

#![cfg(all(feature = "std", feature = "tokio"))]

#[cfg(feature = "rustls")]
mod pki;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use wscore::blocking::WebSocket;
use wscore::tokio::WebSocketStream;
use wscore::{ClientRequest, CloseCode, Config, Connector, DriverError, Event, Message, Proxy, ProxyError, Role};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
/// `alice:s3cret` in base64.
const GOOD_CREDENTIALS: &str = "Basic YWxpY2U6czNjcmV0";

/// What the test proxy does with a `CONNECT`.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Requires the Basic credentials above, then tunnels.
    Tunnel,
    /// Tunnels, but waits for the server's first bytes and writes them in the same write as
    /// its `200`.
    TunnelCoalesced,
    /// Answers 403 whatever the credentials.
    Forbid,
    /// Closes the connection without answering.
    HangUp,
    /// Never answers; waits for the client to give up.
    Silent,
}

/// What the proxy saw: the request line and whether the credentials were right.
#[derive(Debug)]
struct Seen {
    request_line: String,
    authorized: bool,
}

/// A CONNECT proxy for `connections` connections; returns its address and, when joined, what
/// it saw.
fn proxy(behaviour: Behaviour, connections: usize) -> (Proxy, JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut tunnels = Vec::new();
        for _ in 0..connections {
            let (client, _) = listener.accept().unwrap();
            let (s, tunnel) = handle_connect(client, behaviour);
            seen.push(s);
            tunnels.extend(tunnel);
        }
        for tunnel in tunnels {
            tunnel.join().unwrap();
        }
        seen
    });
    (Proxy::new("127.0.0.1", port), handle)
}

/// Reads the CONNECT head; answers it; returns the threads pumping the tunnel, if one opened.
fn handle_connect(mut client: TcpStream, behaviour: Behaviour) -> (Seen, Option<JoinHandle<()>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing past the head is consumed (the client sends nothing before 200).
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => panic!("client went away before finishing its CONNECT"),
        }
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_string();
    let authorized = lines
        .filter_map(|line| line.split_once(": "))
        .any(|(name, value)| name.eq_ignore_ascii_case("proxy-authorization") && value == GOOD_CREDENTIALS);
    let seen = Seen { request_line: request_line.clone(), authorized };
    let target = request_line.strip_prefix("CONNECT ").and_then(|r| r.strip_suffix(" HTTP/1.1")).unwrap().to_string();
    let reply = |client: &mut TcpStream, response: &str| {
        client.write_all(response.as_bytes()).unwrap();
        let _ = client.shutdown(Shutdown::Both);
    };
    match behaviour {
        Behaviour::HangUp => {
            let _ = client.shutdown(Shutdown::Both);
            return (seen, None);
        }
        Behaviour::Silent => {
            let _ = client.read(&mut [0u8; 1]); // returns when the client closes
            return (seen, None);
        }
        Behaviour::Forbid => {
            reply(&mut client, "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden");
            return (seen, None);
        }
        Behaviour::Tunnel | Behaviour::TunnelCoalesced if !authorized => {
            reply(
                &mut client,
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            );
            return (seen, None);
        }
        Behaviour::Tunnel | Behaviour::TunnelCoalesced => {}
    }
    let Ok(mut server) = TcpStream::connect(&target) else {
        reply(&mut client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return (seen, None);
    };
    let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    if let Behaviour::TunnelCoalesced = behaviour {
        let mut first = [0u8; 4096];
        let n = server.read(&mut first).unwrap();
        answer.extend_from_slice(&first[..n]);
    }
    client.write_all(&answer).unwrap();
    (seen, Some(pump(client, server)))
}

/// Copies bytes both ways until both directions end.
fn pump(client: TcpStream, server: TcpStream) -> JoinHandle<()> {
    thread::spawn(move || {
        let copy = |mut from: TcpStream, mut to: TcpStream| {
            thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            })
        };
        let up = copy(client.try_clone().unwrap(), server.try_clone().unwrap());
        let down = copy(server, client);
        up.join().unwrap();
        down.join().unwrap();
    })
}

/// A plain WebSocket echo server for one connection; returns its port.
fn echo_server() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = WebSocket::accept(tcp).unwrap();
        while let Some(event) = ws.read().unwrap() {
            if let Event::Message(message) = event {
                ws.send(message).unwrap();
            }
        }
    });
    (port, handle)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn with_credentials(proxy: Proxy) -> Proxy {
    proxy.basic_auth(USER, PASSWORD)
}

fn request(port: u16) -> ClientRequest {
    ClientRequest::from_url(&format!("ws://127.0.0.1:{port}/through")).unwrap()
}

/// The events an exchange expects back: the two echoes in order, and the pong (which may
/// come between fragments of the large echo). The TLS echo server's `ping:` texts are skipped.
fn check_exchange(events: &[Event], binary: &[u8]) {
    let messages: Vec<&Message> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(Message::Text(t)) if t.as_str().starts_with("ping:") => None,
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(messages.len(), 2, "{} events", events.len());
    assert_eq!(messages[0], &Message::Text("through the tunnel".into()));
    assert!(messages[1].as_bytes() == binary, "the binary echo differs");
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Pong(p) if &p[..] == b"tunnel ping")).count(), 1);
}

/// Whether `events` hold both echoes and the pong.
fn exchange_done(events: &[Event]) -> bool {
    let echoes =
        events.iter().filter(|e| matches!(e, Event::Message(m) if !m.as_bytes().starts_with(b"ping:"))).count();
    echoes == 2 && events.iter().any(|e| matches!(e, Event::Pong(_)))
}

fn blocking_exchange<S: Read + Write + wscore::blocking::Transport>(ws: &mut WebSocket<S>) {
    let binary = vec![7u8; 100_000];
    ws.send_text("through the tunnel").unwrap();
    ws.send_binary(binary.clone()).unwrap();
    ws.ping("tunnel ping").unwrap();
    let mut events = Vec::new();
    while !exchange_done(&events) {
        events.push(ws.read().unwrap().unwrap());
    }
    check_exchange(&events, &binary);
    ws.close(CloseCode(4000), "bye").unwrap();
    let mut rest = Vec::new();
    while let Some(event) = ws.read().unwrap() {
        rest.push(event);
    }
    assert!(matches!(rest.last(), Some(Event::Close(Some(f))) if f.code == CloseCode(4000)), "{} events", rest.len());
}

async fn tokio_exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    let binary = vec![9u8; 100_000];
    ws.send_text("through the tunnel").await.unwrap();
    ws.send_binary(binary.clone()).await.unwrap();
    ws.ping("tunnel ping").await.unwrap();
    let mut events = Vec::new();
    while !exchange_done(&events) {
        events.push(ws.next_event().await.unwrap().unwrap());
    }
    check_exchange(&events, &binary);
    ws.close(CloseCode(4000), "bye").await.unwrap();
    let mut rest = Vec::new();
    while let Some(event) = ws.next_event().await.unwrap() {
        rest.push(event);
    }
    assert!(matches!(rest.last(), Some(Event::Close(Some(f))) if f.code == CloseCode(4000)), "{} events", rest.len());
}

fn expect_refusal<T>(result: Result<T, DriverError>, status: u16) -> ProxyError {
    match result {
        Err(DriverError::Proxy(e)) => {
            assert_eq!(e.status(), Some(status), "{e}");
            assert!(e.to_string().contains(&status.to_string()), "{e}");
            e
        }
        Err(other) => panic!("expected a proxy refusal with {status}, got {other:?}"),
        Ok(_) => panic!("expected a proxy refusal with {status}, connected"),
    }
}

#[test]
fn blocking_echo_through_the_proxy_with_basic_auth() {
    let (server_port, server) = echo_server();
    let (proxy, proxy_thread) = proxy(Behaviour::Tunnel, 1);
    let connector = Connector::new().proxy(with_credentials(proxy));
    let mut ws = WebSocket::connect_with_connector(request(server_port), Config::default(), &connector).unwrap();
    blocking_exchange(&mut ws);
    drop(ws);
    server.join().unwrap();
    let seen = proxy_thread.join().unwrap();
    assert_eq!(seen[0].request_line, format!("CONNECT 127.0.0.1:{server_port} HTTP/1.1"));
    assert!(seen[0].authorized);
}

#[tokio::test]
async fn tokio_echo_through_the_proxy_with_basic_auth() {
    let (server_port, server) = echo_server();
    let (proxy, proxy_thread) = proxy(Behaviour::Tunnel, 1);
    let connector = Connector::new().proxy(with_credentials(proxy));
    let mut ws =
        WebSocketStream::connect_with_connector(request(server_port), Config::default(), &connector).await.unwrap();
    tokio_exchange(&mut ws).await;
    drop(ws);
    let seen = tokio::task::spawn_blocking(move || {
        server.join().unwrap();
        proxy_thread.join().unwrap()
    })
    .await
    .unwrap();
    assert!(seen[0].authorized);
}

#[test]
fn wrong_or_missing_credentials_are_a_407_in_both_drivers() {
    let (proxy, proxy_thread) = proxy(Behaviour::Tunnel, 4);
    let target = request(closed_port());
    let wrong = Connector::new().proxy(proxy.clone().basic_auth(USER, "wrong"));
    let missing = Connector::new().proxy(proxy);
    for connector in [&wrong, &missing] {
        let err = expect_refusal(WebSocket::connect_with_connector(target.clone(), Config::default(), connector), 407);
        let response = err.response().unwrap();
        assert_eq!(response.headers.get_str("Proxy-Authenticate"), Some("Basic realm=\"test\""));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for connector in [&wrong, &missing] {
        let result =
            runtime.block_on(WebSocketStream::connect_with_connector(target.clone(), Config::default(), connector));
        expect_refusal(result, 407);
    }
    let seen = proxy_thread.join().unwrap();
    assert!(seen.iter().all(|s| !s.authorized), "{seen:?}");
}

#[test]
fn refusals_are_errors_with_the_status() {
    // 403 from a proxy that forbids everything.
    let (proxy_403, forbidding) = proxy(Behaviour::Forbid, 2);
    let connector = Connector::new().proxy(with_credentials(proxy_403));
    expect_refusal(WebSocket::connect_with_connector(request(1), Config::default(), &connector), 403);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    expect_refusal(
        runtime.block_on(WebSocketStream::connect_with_connector(request(1), Config::default(), &connector)),
        403,
    );
    forbidding.join().unwrap();

    // 502 when the proxy cannot reach the target.
    let (proxy_502, unreachable) = proxy(Behaviour::Tunnel, 2);
    let connector = Connector::new().proxy(with_credentials(proxy_502));
    let target = request(closed_port());
    expect_refusal(WebSocket::connect_with_connector(target.clone(), Config::default(), &connector), 502);
    expect_refusal(
        runtime.block_on(WebSocketStream::connect_with_connector(target, Config::default(), &connector)),
        502,
    );
    unreachable.join().unwrap();
}

#[test]
fn a_proxy_hanging_up_is_an_error() {
    let (proxy, proxy_thread) = proxy(Behaviour::HangUp, 2);
    let connector = Connector::new().proxy(proxy);
    let result = WebSocket::connect_with_connector(request(1), Config::default(), &connector);
    assert!(matches!(result, Err(DriverError::Proxy(ProxyError::UnexpectedEof))), "{result:?}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(WebSocketStream::connect_with_connector(request(1), Config::default(), &connector));
    assert!(matches!(result, Err(DriverError::Proxy(ProxyError::UnexpectedEof))), "{result:?}");
    proxy_thread.join().unwrap();
}

#[test]
fn debug_output_hides_the_credentials() {
    let connector = Connector::new().proxy(with_credentials(Proxy::new("127.0.0.1", 3128)));
    let text = format!("{connector:?}");
    assert!(text.contains("3128") && !text.contains(PASSWORD) && !text.contains("YWxpY2U6czNjcmV0"), "{text}");
}

#[test]
fn a_silent_proxy_runs_into_the_handshake_timeout() {
    // The deadline is the core's handshake timeout; nothing here measures time.
    let (proxy, proxy_thread) = proxy(Behaviour::Silent, 2);
    let connector = Connector::new().proxy(proxy);
    let config = Config::default().handshake_timeout(Some(std::time::Duration::from_millis(50)));
    let result = WebSocket::connect_with_connector(request(1), config.clone(), &connector);
    assert!(matches!(result, Err(DriverError::Handshake(wscore::HandshakeError::Timeout))), "{result:?}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(WebSocketStream::connect_with_connector(request(1), config, &connector));
    assert!(matches!(result, Err(DriverError::Handshake(wscore::HandshakeError::Timeout))), "{result:?}");
    proxy_thread.join().unwrap();
}

/// A server that speaks first: the upgrade was agreed out of band, and it greets the client
/// before reading anything. Then it echoes.
fn greeting_server() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = WebSocket::from_upgraded(tcp, Role::Server, Config::default());
        ws.send_text("welcome").unwrap();
        while let Some(event) = ws.read().unwrap() {
            if let Event::Message(message) = event {
                ws.send(message).unwrap();
            }
        }
    });
    (port, handle)
}

#[test]
fn blocking_first_websocket_bytes_in_the_proxy_answer_are_kept() {
    let (server_port, server) = greeting_server();
    let (proxy, proxy_thread) = proxy(Behaviour::TunnelCoalesced, 1);
    let (tunnel, early) =
        wscore::blocking::tunnel(&with_credentials(proxy), "127.0.0.1", server_port, &Config::default()).unwrap();
    // The greeting frame came in the same read as the proxy's 200.
    assert_eq!(&early[..], b"\x81\x07welcome");
    let mut ws = WebSocket::from_upgraded(tunnel, Role::Client, Config::default());
    ws.connection_mut().receive(&early).unwrap();
    assert_eq!(ws.read().unwrap(), Some(Event::Message(Message::Text("welcome".into()))));
    blocking_exchange(&mut ws);
    drop(ws);
    server.join().unwrap();
    proxy_thread.join().unwrap();
}

#[tokio::test]
async fn tokio_first_websocket_bytes_in_the_proxy_answer_are_kept() {
    let (server_port, server) = greeting_server();
    let (proxy, proxy_thread) = proxy(Behaviour::TunnelCoalesced, 1);
    let (tunnel, early) =
        wscore::tokio::tunnel(&with_credentials(proxy), "127.0.0.1", server_port, &Config::default()).await.unwrap();
    assert_eq!(&early[..], b"\x81\x07welcome");
    let mut ws = WebSocketStream::from_upgraded(tunnel, Role::Client, Config::default());
    ws.connection_mut().receive(&early).unwrap();
    assert_eq!(ws.next_message().await.unwrap(), Some(Message::Text("welcome".into())));
    tokio_exchange(&mut ws).await;
    drop(ws);
    tokio::task::spawn_blocking(move || {
        server.join().unwrap();
        proxy_thread.join().unwrap();
    })
    .await
    .unwrap();
}

#[test]
fn the_upgrade_request_goes_through_the_tunnel_not_to_the_proxy() {
    // The proxy sees only its CONNECT; the server sees the upgrade with the target's Host.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let (host_tx, host_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = WebSocket::accept_with(tcp, Config::default(), |request| {
            host_tx.send(request.host().map(str::to_string)).unwrap();
            Ok(wscore::Accept::new())
        })
        .unwrap();
        while ws.read().unwrap().is_some() {}
    });
    let (proxy, proxy_thread) = proxy(Behaviour::Tunnel, 1);
    let connector = Connector::new().proxy(with_credentials(proxy));
    let mut ws = WebSocket::connect_with_connector(request(server_port), Config::default(), &connector).unwrap();
    assert_eq!(host_rx.recv().unwrap(), Some(format!("127.0.0.1:{server_port}")));
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().unwrap().is_some() {}
    server.join().unwrap();
    assert_eq!(proxy_thread.join().unwrap().len(), 1);
}

#[cfg(feature = "rustls")]
#[test]
fn wss_through_the_proxy_in_both_drivers() {
    let ca = pki::Ca::new("test CA");
    let (server_port, server) = pki::echo_server(pki::server_config(&ca.server(&["localhost"]), None), 2);
    let (proxy, proxy_thread) = proxy(Behaviour::Tunnel, 2);
    let connector = Connector::new().proxy(with_credentials(proxy)).tls_config(ca.client_config());
    let url = format!("wss://localhost:{server_port}/secure");

    let mut ws =
        WebSocket::connect_with_connector(ClientRequest::from_url(&url).unwrap(), Config::default(), &connector)
            .unwrap();
    assert!(ws.get_ref().is_tls());
    ws.send_text("tls in a tunnel").unwrap();
    assert_eq!(ws.read().unwrap(), Some(Event::Message(Message::Text("tls in a tunnel".into()))));
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().unwrap().is_some() {}

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut ws = WebSocketStream::connect_with_connector(
            ClientRequest::from_url(&url).unwrap(),
            Config::default(),
            &connector,
        )
        .await
        .unwrap();
        assert!(ws.get_ref().is_tls());
        tokio_exchange(&mut ws).await;
    });

    assert!(server.join().unwrap().iter().all(Result::is_ok));
    let seen = proxy_thread.join().unwrap();
    // The proxy saw the target by name; TLS ran end to end inside the tunnel.
    assert!(seen.iter().all(|s| s.request_line == format!("CONNECT localhost:{server_port} HTTP/1.1")), "{seen:?}");
}
