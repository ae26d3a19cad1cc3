//! WebSockets over HTTP/2 (RFC 8441) with the `h2` crate, in process on loopback, through the
//! `h2_websocket` example's adapter: messages of many sizes both ways (beyond the HTTP/2
//! windows), several WebSockets and a plain request on one connection, ping, close codes, bad
//! extended CONNECTs refused with the right status, a server without
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and axum (hyper's HTTP/2) as the server.

#[path = "../examples/h2_websocket/h2_stream.rs"]
#[allow(dead_code)]
mod h2_stream;

#[path = "../examples/axum_echo_server/upgrade.rs"]
#[allow(dead_code)]
mod axum_upgrade;

use std::net::SocketAddr;

use bytes::Bytes;
use h2::PingPong;
use h2::client::SendRequest;
use h2_stream::H2Stream;
use http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wscore::tokio::{ReadHalf, WebSocketStream, WriteHalf};
use wscore::{Accept, ClientRequest, CloseCode, Config, Event, HandshakeError, Message, OriginPolicy, ServerUpgrade};

/// How the test server's HTTP/2 side is set up.
#[derive(Clone, Copy)]
struct Settings {
    enable_connect_protocol: bool,
    /// Initial stream and connection receive windows (65 535 is the protocol default).
    window: u32,
}

const DEFAULT: Settings = Settings { enable_connect_protocol: true, window: 65_535 };

/// An h2 server on a free loopback port. Every request goes to `h2_stream::accept` (so bad
/// ones are refused by wscore); accepted WebSockets echo, and close with 4001 when told
/// "close me". Each stream the server sees is reported on the channel (its method).
async fn h2_server(server: ServerUpgrade, settings: Settings) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, streams) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (server, seen) = (server.clone(), seen.clone());
            tokio::spawn(async move {
                let mut builder = h2::server::Builder::new();
                builder.initial_window_size(settings.window).initial_connection_window_size(settings.window);
                if settings.enable_connect_protocol {
                    builder.enable_connect_protocol();
                }
                let Ok(mut connection) = builder.handshake::<_, Bytes>(tcp).await else { return };
                while let Some(Ok((request, respond))) = connection.accept().await {
                    let _ = seen.send(request.method().to_string());
                    let server = server.clone();
                    tokio::spawn(async move {
                        let choose = |request: &wscore::Request| {
                            let chat = request.protocols().contains(&"chat");
                            if chat { Accept::new().protocol("chat") } else { Accept::new() }
                        };
                        let Ok(mut ws) = h2_stream::accept(&server, request, respond, choose).await else { return };
                        while let Some(message) = ws.next_message().await.unwrap() {
                            if message.as_bytes() == b"close me" {
                                ws.close(CloseCode::from(4001), "as asked").await.unwrap();
                            } else {
                                ws.feed(message).await.unwrap();
                            }
                        }
                    });
                }
            });
        }
    });
    (addr, streams)
}

/// An h2 client connection; its connection task runs in the background.
async fn h2_client(addr: SocketAddr) -> (SendRequest<Bytes>, PingPong) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send_request, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let ping_pong = connection.ping_pong().unwrap();
    tokio::spawn(connection);
    (send_request, ping_pong)
}

async fn connect(
    addr: SocketAddr,
    request: ClientRequest,
    config: Config,
) -> Result<WebSocketStream<H2Stream>, h2_stream::Error> {
    let (send_request, mut ping_pong) = h2_client(addr).await;
    h2_stream::connect(send_request, &mut ping_pong, request, config).await
}

fn url(addr: SocketAddr) -> ClientRequest {
    ClientRequest::from_url(&format!("ws://{addr}/echo")).unwrap()
}

/// Deterministic, incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Sends every message while reading the echoes (many in flight at once, both ways). Writing
/// everything before reading would deadlock on HTTP/2 flow control, as it would on TCP once
/// the socket buffers fill: the echoes wait for window the unread side never opens.
async fn echo_round((rx, tx): &mut Halves, messages: &[Message]) {
    let send = async {
        for message in messages {
            tx.feed(message.clone()).await.unwrap();
        }
        tx.flush().await.unwrap();
    };
    let receive = async {
        for message in messages {
            let echo = rx.next_message().await.unwrap().unwrap();
            assert_eq!((echo.kind(), echo.len()), (message.kind(), message.len()));
            assert_eq!(&echo, message);
        }
    };
    tokio::join!(send, receive);
}

type Halves = (ReadHalf<H2Stream>, WriteHalf<H2Stream>);

fn messages_of_many_sizes() -> Vec<Message> {
    let mut messages = Vec::new();
    for len in [0, 1, 125, 126, 65_535, 65_536, 70_000, 300_000, 1_000_000] {
        messages.push(Message::Binary(noise(len).into()));
        let text: String = noise(len).iter().map(|b| char::from(b'a' + b % 26)).collect();
        messages.push(Message::Text(text.into()));
    }
    messages
}

async fn close_normally((rx, tx): &mut Halves) -> Option<wscore::CloseFrame> {
    tx.close(CloseCode::NORMAL, "done").await.unwrap();
    let mut close = None;
    while let Some(event) = rx.next_event().await.unwrap() {
        if let Event::Close(frame) = event {
            close = frame;
        }
    }
    close
}

#[tokio::test]
async fn messages_of_many_sizes_both_ways_with_and_without_deflate() {
    let (addr, _) = h2_server(ServerUpgrade::new(Config::default()), DEFAULT).await;
    for deflate in [true, false] {
        let config = if deflate { Config::default() } else { Config::default().deflate(None) };
        let ws = connect(addr, url(addr).protocol("chat"), config).await.unwrap();
        assert_eq!(ws.connection().protocol(), Some("chat"));
        assert_eq!(ws.connection().deflate_params().is_some(), deflate);
        let mut ws = ws.split();
        echo_round(&mut ws, &messages_of_many_sizes()).await;
        assert_eq!(close_normally(&mut ws).await.map(|f| f.code), Some(CloseCode::NORMAL));
    }
}

#[tokio::test]
async fn tiny_windows_still_carry_large_messages() {
    // 1 000-byte windows: 300 kB need hundreds of WINDOW_UPDATEs, released as read.
    let (addr, _) = h2_server(ServerUpgrade::new(Config::default()), Settings { window: 1_000, ..DEFAULT }).await;
    let mut ws = connect(addr, url(addr), Config::default().deflate(None)).await.unwrap().split();
    echo_round(&mut ws, &[Message::Binary(noise(300_000).into()), Message::Text("after".into())]).await;
    close_normally(&mut ws).await;
}

#[tokio::test]
async fn several_websockets_and_a_plain_request_share_one_connection() {
    let (addr, mut seen) = h2_server(ServerUpgrade::new(Config::default()), DEFAULT).await;
    let (send_request, mut ping_pong) = h2_client(addr).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let ws = h2_stream::connect(send_request.clone(), &mut ping_pong, url(addr), Config::default()).await;
        sockets.push(ws.unwrap().split());
    }
    // A plain GET on the same connection is refused by the WebSocket endpoint (405).
    let get = http::Request::get(format!("http://{addr}/echo")).body(()).unwrap();
    let (response, _) = send_request.clone().ready().await.unwrap().send_request(get, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "CONNECT");
    // Interleaved traffic on the three streams.
    let rounds = sockets.iter_mut().enumerate().map(|(i, ws)| async move {
        let messages = [Message::Text(format!("stream {i}").into()), Message::Binary(noise(100_000 + i).into())];
        echo_round(ws, &messages).await;
        close_normally(ws).await;
    });
    futures_util::future::join_all(rounds).await;
    let mut methods = Vec::new();
    while let Ok(method) = seen.try_recv() {
        methods.push(method);
    }
    assert_eq!(methods, ["CONNECT", "CONNECT", "CONNECT", "GET"]);
}

#[tokio::test]
async fn ping_pong_and_close_codes() {
    let (addr, _) = h2_server(ServerUpgrade::new(Config::default()), DEFAULT).await;
    let mut ws = connect(addr, url(addr), Config::default()).await.unwrap();
    ws.ping("ping over h2").await.unwrap();
    assert_eq!(ws.next_event().await.unwrap(), Some(Event::Pong(Bytes::from_static(b"ping over h2"))));
    // The client closes with its own code: the server echoes it.
    ws.close(CloseCode::from(4000), "client done").await.unwrap();
    let mut close = None;
    while let Some(event) = ws.next_event().await.unwrap() {
        if let Event::Close(frame) = event {
            close = frame;
        }
    }
    // The echo carries the code (the core echoes codes, not reasons).
    assert_eq!(close.map(|f| f.code), Some(CloseCode::from(4000)));

    // The server closes: the client sees the code and reason, and the stream ends.
    let mut ws = connect(addr, url(addr), Config::default()).await.unwrap();
    ws.send(Message::Text("close me".into())).await.unwrap();
    let event = ws.next_event().await.unwrap();
    let Some(Event::Close(Some(frame))) = event else { panic!("{event:?}") };
    assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::from(4001), "as asked"));
    assert_eq!(ws.next_event().await.unwrap(), None);
}

/// Sends an extended CONNECT (or not) built by hand; the status and headers of the answer.
async fn raw_request(
    addr: SocketAddr,
    protocol: Option<&'static str>,
    fields: &[(&str, &str)],
) -> http::Response<h2::RecvStream> {
    let (send_request, mut ping_pong) = h2_client(addr).await;
    let mut send_request = send_request.ready().await.unwrap();
    ping_pong.ping(h2::Ping::opaque()).await.unwrap();
    assert!(send_request.is_extended_connect_protocol_enabled());
    let uri = if protocol.is_some() { format!("http://{addr}/echo") } else { addr.to_string() };
    let mut builder = http::Request::connect(uri);
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(()).unwrap();
    if let Some(protocol) = protocol {
        request.extensions_mut().insert(h2::ext::Protocol::from_static(protocol));
    }
    let (response, _send) = send_request.send_request(request, false).unwrap();
    response.await.unwrap()
}

#[tokio::test]
async fn bad_extended_connects_are_refused_with_the_right_status() {
    let policy = OriginPolicy::allow_list(["https://app.example"]);
    let (addr, _) = h2_server(ServerUpgrade::new(Config::default()).origin_policy(policy), DEFAULT).await;
    let version = ("sec-websocket-version", "13");

    let response = raw_request(addr, Some("websocket"), &[version]).await;
    assert_eq!(response.status(), StatusCode::OK, "the valid request, for reference");
    assert!(response.headers().get("sec-websocket-accept").is_none());

    let response = raw_request(addr, Some("webtransport"), &[version]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "wrong :protocol");
    let mut body = response.into_body();
    let text = body.data().await.unwrap().unwrap();
    assert_eq!(&text[..], b"missing or invalid :protocol header\n");

    let response = raw_request(addr, None, &[version]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "plain CONNECT (no :protocol)");

    let response = raw_request(addr, Some("websocket"), &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "missing version");
    assert_eq!(response.headers()["sec-websocket-version"], "13");

    let response = raw_request(addr, Some("websocket"), &[("sec-websocket-version", "8")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "old version");
    assert_eq!(response.headers()["sec-websocket-version"], "13");

    let response = raw_request(addr, Some("websocket"), &[version, ("origin", "https://evil.example")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "foreign origin");

    // The client side reports a refusal as a rejection with its status.
    let err = connect(addr, url(addr).header("Origin", "https://evil.example"), Config::default()).await.err().unwrap();
    let h2_stream::Error::Handshake(HandshakeError::Rejected(response)) = err else { panic!("{err}") };
    assert_eq!(response.status, 403);
}

#[tokio::test]
async fn without_settings_enable_connect_protocol_the_client_refuses_to_send() {
    let settings = Settings { enable_connect_protocol: false, ..DEFAULT };
    let (addr, mut seen) = h2_server(ServerUpgrade::new(Config::default()), settings).await;
    let (send_request, mut ping_pong) = h2_client(addr).await;
    let err =
        h2_stream::connect(send_request.clone(), &mut ping_pong, url(addr), Config::default()).await.err().unwrap();
    assert!(matches!(err, h2_stream::Error::Handshake(HandshakeError::ExtendedConnectDisabled)), "{err}");
    assert!(err.to_string().contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"), "{err}");
    // Nothing was sent: a later request is the first stream the server sees.
    let get = http::Request::get(format!("http://{addr}/")).body(()).unwrap();
    let (response, _) = send_request.ready().await.unwrap().send_request(get, true).unwrap();
    response.await.unwrap();
    assert_eq!(seen.recv().await.as_deref(), Some("GET"));
}

#[tokio::test]
async fn axum_over_http2_accepts_extended_connect() {
    use axum::Router;
    use axum::routing::any;

    async fn ws(upgrade: axum_upgrade::WebSocketUpgrade) -> axum::response::Response {
        let chat = upgrade.request().protocols().contains(&"chat");
        let accept = if chat { Accept::new().protocol("chat") } else { Accept::new() };
        upgrade.on_upgrade(accept, |mut ws| async move {
            while let Some(message) = ws.next_message().await.unwrap() {
                ws.feed(message).await.unwrap();
            }
        })
    }
    let app = Router::new().route("/echo", any(ws)).with_state(ServerUpgrade::new(Config::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let ws = connect(addr, url(addr).protocol("chat"), Config::default()).await.unwrap();
    assert_eq!(ws.connection().protocol(), Some("chat"));
    assert!(ws.connection().deflate_params().is_some());
    let mut ws = ws.split();
    echo_round(&mut ws, &[Message::Text("hello axum".into()), Message::Binary(noise(200_000).into())]).await;
    assert_eq!(close_normally(&mut ws).await.map(|f| f.code), Some(CloseCode::NORMAL));

    let response = raw_request(addr, Some("websocket"), &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "missing version");
}
