//! Upgrades carried by hyper 1.x and axum, in process on loopback: a hyper server hands the
//! upgraded stream to wscore, a hyper client upgrades its connection the same way; messages
//! both ways with permessage-deflate and a subprotocol, rejected upgrades with their statuses,
//! bytes sent right behind the request, and the axum extractor of the `axum_echo_server`
//! example.

#[path = "../examples/axum_echo_server/upgrade.rs"]
#[allow(dead_code)]
mod axum_upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wscore::tokio::WebSocketStream;
use wscore::{
    Accept, ClientHandshake, ClientRequest, ClientUpgrade, CloseCode, Config, Connection, Event, HandshakeError,
    HttpVersion, Message, OriginPolicy, SeededRandom, ServerUpgrade,
};

/// A hyper HTTP/1.1 server on a free loopback port: `/ws` upgrades (accepting `chat` when
/// offered), greets with the negotiated subprotocol and echoes; other paths answer 200.
async fn hyper_server(server: ServerUpgrade) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(server.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn handle(server: ServerUpgrade, mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/ws" {
        return Ok(Response::new(Full::from("not a websocket\n")));
    }
    let pending = match server.validate_http(&request, None) {
        Ok(pending) => pending,
        Err(err) => return Ok(err.reject(HttpVersion::Http11).to_http().unwrap()),
    };
    let offered_chat = pending.request().protocols().contains(&"chat");
    let accept = if offered_chat { Accept::new().protocol("chat") } else { Accept::new() };
    let (response, conn) = pending.accept(accept.header("X-Served-By", "hyper")).unwrap();
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = upgrade.await.unwrap();
        let mut ws = WebSocketStream::from_connection(TokioIo::new(upgraded), conn);
        let greeting = format!("welcome, protocol {:?}", ws.connection().protocol());
        ws.send(Message::Text(greeting.into())).await.unwrap();
        while let Some(message) = ws.next_message().await.unwrap() {
            ws.feed(message).await.unwrap();
        }
    });
    Ok(response.to_http().unwrap())
}

/// A hyper HTTP/1.1 client connection to `addr`, driven in a task that allows upgrades.
async fn hyper_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection.with_upgrades());
    sender
}

fn client_upgrade(url: &str, request: impl FnOnce(ClientRequest) -> ClientRequest) -> ClientUpgrade {
    let request = request(ClientRequest::from_url(url).unwrap());
    ClientUpgrade::with_random(request, HttpVersion::Http11, Config::default(), Box::new(SeededRandom::new(3)))
}

/// Upgrades over a hyper client connection; the answer, or the upgraded stream.
async fn connect(
    addr: SocketAddr,
    request: impl FnOnce(ClientRequest) -> ClientRequest,
) -> Result<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, HandshakeError> {
    let upgrade = client_upgrade(&format!("ws://{addr}/ws"), request);
    let mut sender = hyper_client(addr).await;
    let response = sender.send_request(upgrade.to_http_request().unwrap()).await.unwrap();
    let conn = upgrade.finish_http(&response)?;
    assert_eq!(response.headers()["x-served-by"], "hyper");
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    Ok(WebSocketStream::from_connection(TokioIo::new(upgraded), conn))
}

#[tokio::test]
async fn hyper_client_and_server_exchange_messages_with_deflate_and_a_subprotocol() {
    let addr = hyper_server(ServerUpgrade::new(Config::default())).await;
    let mut ws = connect(addr, |r| r.protocol("superchat").protocol("chat")).await.unwrap();
    assert_eq!(ws.connection().protocol(), Some("chat"));
    let params = ws.connection().deflate_params().expect("permessage-deflate negotiated");
    assert_eq!(params.server_max_window_bits, 15);

    // Server to client first, then echoes of several sizes and both kinds.
    let greeting = ws.next_message().await.unwrap().unwrap();
    assert_eq!(greeting.as_bytes(), br#"welcome, protocol Some("chat")"#);
    let big_text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let random_binary: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let messages = [
        Message::Text("hello".into()),
        Message::Binary(Bytes::from_static(&[0, 1, 2, 255])),
        Message::Text(big_text.into()),
        Message::Binary(random_binary.into()),
        Message::Text("".into()),
    ];
    // Written while the echoes are read: with everything written first, both sides would
    // block once the socket buffers fill.
    let (mut rx, mut tx) = ws.split();
    let send = async {
        for message in &messages {
            tx.feed(message.clone()).await.unwrap();
        }
        tx.flush().await.unwrap();
    };
    let receive = async {
        for message in &messages {
            assert_eq!(&rx.next_message().await.unwrap().unwrap(), message);
        }
    };
    tokio::join!(send, receive);
    tx.ping("are you there").await.unwrap();
    assert_eq!(rx.next_event().await.unwrap(), Some(Event::Pong(Bytes::from_static(b"are you there"))));
    tx.close(CloseCode::NORMAL, "done").await.unwrap();
    let mut close = None;
    while let Some(event) = rx.next_event().await.unwrap() {
        if let Event::Close(frame) = event {
            close = frame;
        }
    }
    assert_eq!(close.map(|f| f.code), Some(CloseCode::NORMAL));
}

#[tokio::test]
async fn without_deflate_or_subprotocol_offers_the_connection_is_plain() {
    let addr = hyper_server(ServerUpgrade::new(Config::default())).await;
    let upgrade = ClientUpgrade::with_random(
        ClientRequest::from_url(&format!("ws://{addr}/ws")).unwrap(),
        HttpVersion::Http11,
        Config::default().deflate(None),
        Box::new(SeededRandom::new(4)),
    );
    let mut sender = hyper_client(addr).await;
    let response = sender.send_request(upgrade.to_http_request().unwrap()).await.unwrap();
    assert!(response.headers().get("sec-websocket-extensions").is_none());
    let conn = upgrade.finish_http(&response).unwrap();
    assert_eq!((conn.protocol(), conn.deflate_params()), (None, None));
    let mut ws = WebSocketStream::from_connection(TokioIo::new(hyper::upgrade::on(response).await.unwrap()), conn);
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), b"welcome, protocol None");
}

/// Sends `request` over a fresh hyper connection; the status and headers of the answer.
async fn send(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Response<Incoming> {
    hyper_client(addr).await.send_request(request).await.unwrap()
}

fn upgrade_request(fields: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut builder = Request::get("/ws");
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(Empty::new()).unwrap()
}

const HOST: (&str, &str) = ("host", "127.0.0.1");
const UPGRADE: (&str, &str) = ("upgrade", "websocket");
const CONNECTION: (&str, &str) = ("connection", "upgrade");
const KEY: (&str, &str) = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
const VERSION: (&str, &str) = ("sec-websocket-version", "13");

#[tokio::test]
async fn bad_upgrades_are_rejected_with_their_status() {
    let policy = OriginPolicy::allow_list(["https://app.example"]);
    let addr = hyper_server(ServerUpgrade::new(Config::default()).origin_policy(policy)).await;

    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, VERSION])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "missing key");

    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, KEY, ("sec-websocket-version", "8")])).await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED, "old version");
    assert_eq!(response.headers()["sec-websocket-version"], "13");

    let evil = ("origin", "https://evil.example");
    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, KEY, VERSION, evil])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "foreign origin");

    let mut post = upgrade_request(&[HOST, UPGRADE, CONNECTION, KEY, VERSION]);
    *post.method_mut() = hyper::Method::POST;
    let response = send(addr, post).await;
    assert_eq!(
        (response.status(), &response.headers()["allow"]),
        (StatusCode::METHOD_NOT_ALLOWED, &"GET".parse().unwrap())
    );

    let good = ("origin", "https://app.example");
    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, KEY, VERSION, good])).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[tokio::test]
async fn the_client_reports_a_rejection_with_its_status() {
    let policy = OriginPolicy::allow_list(["https://app.example"]);
    let addr = hyper_server(ServerUpgrade::new(Config::default()).origin_policy(policy)).await;
    let err = connect(addr, |r| r.header("Origin", "https://evil.example")).await.err().unwrap();
    let HandshakeError::Rejected(response) = err else { panic!("{err:?}") };
    assert_eq!(response.status, 403);
    assert!(connect(addr, |r| r.header("Origin", "https://app.example")).await.is_ok());
}

#[tokio::test]
async fn the_client_refuses_a_101_without_the_right_accept() {
    // A hyper server that answers 101 but with a made-up accept value.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = service_fn(|_request: Request<Incoming>| async {
            let response = Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                .body(Empty::<Bytes>::new());
            Ok::<_, hyper::http::Error>(response.unwrap())
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades()
            .await;
    });
    let upgrade = client_upgrade(&format!("ws://{addr}/ws"), |r| r);
    let response = hyper_client(addr).await.send_request(upgrade.to_http_request().unwrap()).await.unwrap();
    assert_eq!(
        upgrade.finish_http(&response).unwrap_err(),
        HandshakeError::InvalidResponse("Sec-WebSocket-Accept does not match the key")
    );
}

#[tokio::test]
async fn frames_sent_right_behind_the_request_reach_the_connection() {
    let addr = hyper_server(ServerUpgrade::new(Config::default())).await;
    let config = Config::default().deflate(None);
    let request = ClientRequest::new(addr.to_string(), "/ws");
    let mut handshake = ClientHandshake::with_random(request, config.clone(), Box::new(SeededRandom::new(8)));
    // One write: the request head and a masked text frame, before the 101 is even seen.
    let mut early = Connection::client_with_random(config, Box::new(SeededRandom::new(9)));
    early.send_text("sent with the request").unwrap();
    let mut bytes = handshake.request_bytes().to_vec();
    bytes.extend_from_slice(&early.take_transmit());
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&bytes).await.unwrap();

    let mut conn = None;
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    while messages.len() < 2 {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed early");
        match &mut conn {
            None => conn = handshake.receive(&buf[..n]).unwrap(),
            Some(conn) => conn.receive(&buf[..n]).unwrap(),
        }
        if let Some(conn) = &mut conn {
            while let Some(event) = conn.poll_event() {
                if let Event::Message(message) = event {
                    messages.push(message);
                }
            }
        }
    }
    assert_eq!(messages[0].as_bytes(), b"welcome, protocol None");
    assert_eq!(messages[1].as_bytes(), b"sent with the request");
}

#[tokio::test]
async fn axum_extractor_upgrades_and_rejects() {
    use axum::Router;
    use axum::routing::any;

    async fn ws(upgrade: axum_upgrade::WebSocketUpgrade) -> axum::response::Response {
        let accept = if upgrade.request().protocols().contains(&"chat") {
            Accept::new().protocol("chat")
        } else {
            Accept::new()
        };
        upgrade.on_upgrade(accept.header("X-Served-By", "hyper"), |mut ws| async move {
            ws.send(Message::Text("welcome".into())).await.unwrap();
            while let Some(message) = ws.next_message().await.unwrap() {
                ws.feed(message).await.unwrap();
            }
        })
    }
    let policy = OriginPolicy::allow_list(["https://app.example"]);
    let app =
        Router::new().route("/ws", any(ws)).with_state(ServerUpgrade::new(Config::default()).origin_policy(policy));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut ws = connect(addr, |r| r.protocol("chat")).await.unwrap();
    assert_eq!(ws.connection().protocol(), Some("chat"));
    assert!(ws.connection().deflate_params().is_some());
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), b"welcome");
    ws.send(Message::Binary(Bytes::from(vec![7u8; 70_000]))).await.unwrap();
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), vec![7u8; 70_000]);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while ws.next_event().await.unwrap().is_some() {}

    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, VERSION])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "missing key");
    let evil = ("origin", "https://evil.example");
    let response = send(addr, upgrade_request(&[HOST, UPGRADE, CONNECTION, KEY, VERSION, evil])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "foreign origin");
}
