//! WebSockets over HTTP/2 (RFC 8441) with the `h2` crate: an h2 server that enables the
//! extended CONNECT protocol and echoes, and an h2 client that opens WebSockets as streams of
//! one HTTP/2 connection, next to an ordinary request on the same connection.
//!
//! ```text
//! cargo run --example h2_websocket                        # server and client in one process
//! cargo run --example h2_websocket -- --server 127.0.0.1:9004
//! cargo run --example h2_websocket -- --client ws://127.0.0.1:9004/echo
//! ```
//!
//! Cleartext HTTP/2 with prior knowledge (no TLS, no ALPN): point the client at a server of
//! this example, or at any server that does RFC 8441 over h2c.
//!
//! The server ([`serve`]): `h2::server::Builder::enable_connect_protocol` sends
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`; each `CONNECT` with `:protocol websocket` (which h2
//! hands over as an `h2::ext::Protocol` extension) goes to wscore's
//! [`ServerUpgrade::validate_http`](wscore::ServerUpgrade::validate_http), which checks it and
//! negotiates the subprotocol and permessage-deflate; the 200 response goes out with the stream
//! left open, and [`h2_stream::H2Stream`] turns that stream into the `AsyncRead + AsyncWrite`
//! that [`WebSocketStream`](wscore::tokio::WebSocketStream) drives. Other requests get a plain
//! answer, bad extended CONNECTs the status wscore picks.
//!
//! The client ([`run_client`]): one h2 connection, two WebSocket streams on it (one offering the
//! `chat` subprotocol) and a `GET` in between, each WebSocket exchanging a few messages (one
//! larger than the 64 KiB initial HTTP/2 window) and closing with 1000.

mod h2_stream;

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use wscore::{Accept, ClientRequest, CloseCode, Config, Message, ServerUpgrade};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--server", addr] => {
            let listener = TcpListener::bind(addr).await?;
            println!("listening on ws://{}/echo (HTTP/2 cleartext)", listener.local_addr()?);
            serve(listener, ServerUpgrade::new(Config::default())).await
        }
        ["--client", url] => run_client(url).await,
        [] => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(serve(listener, ServerUpgrade::new(Config::default())));
            run_client(&format!("ws://{addr}/echo")).await
        }
        _ => Err("usage: h2_websocket [--server ADDR | --client URL]".into()),
    }
}

/// Accepts HTTP/2 connections and serves each in its own task.
async fn serve(listener: TcpListener, server: ServerUpgrade) -> Result<(), BoxError> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(tcp, peer, server).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn serve_connection(tcp: TcpStream, peer: SocketAddr, server: ServerUpgrade) -> Result<(), h2::Error> {
    let mut connection = h2::server::Builder::new().enable_connect_protocol().handshake(tcp).await?;
    // `accept` also drives the connection's I/O: keep calling it while streams are open.
    while let Some(result) = connection.accept().await {
        let (request, mut respond) = result?;
        let server = server.clone();
        tokio::spawn(async move {
            if request.method() != http::Method::CONNECT {
                let response = http::Response::new(());
                if let Ok(mut send) = respond.send_response(response, false) {
                    let _ = send.send_data(Bytes::from("not a websocket\n"), true);
                }
                return;
            }
            let choose = |request: &wscore::Request| {
                if request.protocols().contains(&"chat") { Accept::new().protocol("chat") } else { Accept::new() }
            };
            let mut ws = match h2_stream::accept(&server, request, respond, choose).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: refused: {e}"),
            };
            loop {
                match ws.next_message().await {
                    Ok(Some(message)) => {
                        if let Err(e) = ws.feed(message).await {
                            return eprintln!("{peer}: {e}");
                        }
                    }
                    Ok(None) => return,
                    Err(e) => return eprintln!("{peer}: {e}"),
                }
            }
        });
    }
    Ok(())
}

async fn run_client(url: &str) -> Result<(), BoxError> {
    let request = ClientRequest::from_url(url)?;
    let tcp = TcpStream::connect((request.host(), request.port())).await?;
    let (send_request, mut connection) = h2::client::handshake(tcp).await?;
    let mut ping_pong = connection.ping_pong().ok_or("ping_pong taken")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection: {e}");
        }
    });

    let mut first =
        h2_stream::connect(send_request.clone(), &mut ping_pong, request.clone(), Config::default()).await?;
    let chat = request.clone().protocol("chat");
    let mut second = h2_stream::connect(send_request.clone(), &mut ping_pong, chat, Config::default()).await?;
    println!(
        "two WebSockets on one HTTP/2 connection: subprotocols {:?} and {:?}, deflate {}",
        first.connection().protocol(),
        second.connection().protocol(),
        first.connection().deflate_params().is_some()
    );

    // An ordinary request, multiplexed with the two WebSockets.
    let (response, _) =
        send_request.ready().await?.send_request(http::Request::get(url.replacen("ws", "http", 1)).body(())?, true)?;
    let mut body = response.await?.into_body();
    let plain = body.data().await.transpose()?.unwrap_or_default();
    println!("GET on the same connection: {:?}", String::from_utf8_lossy(&plain));

    // Incompressible, so permessage-deflate does not shrink it below the window.
    let big: Bytes = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (ws, name) in [(&mut first, "first"), (&mut second, "second")] {
        ws.send(Message::Text(format!("hello from the {name} stream").into())).await?;
        ws.send(Message::Binary(big.clone())).await?;
        let echo = ws.next_message().await?.ok_or("closed")?;
        println!("< {}", String::from_utf8_lossy(echo.as_bytes()));
        let echo = ws.next_message().await?.ok_or("closed")?;
        println!("< {} bytes (window is 65 535)", echo.len());
    }
    for ws in [&mut first, &mut second] {
        ws.close(CloseCode::NORMAL, "bye").await?;
        while ws.next_event().await?.is_some() {} // the close handshake completes here
    }
    println!("closed");
    Ok(())
}
