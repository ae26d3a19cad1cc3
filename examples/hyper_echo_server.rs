//! A hyper 1.x server that upgrades `GET /ws` to a WebSocket and echoes every message; any
//! other path is an ordinary HTTP answer from the same server.
//!
//! ```text
//! cargo run --example hyper_echo_server -- 127.0.0.1:9002 [--origin https://app.example]
//! ```
//!
//! hyper parses the request; [`wscore::ServerUpgrade::validate_http`] checks it (method, the
//! upgrade headers, the `Origin` policy) and [`PendingUpgrade::accept`](wscore::PendingUpgrade::accept)
//! negotiates the subprotocol (`chat`, if offered) and permessage-deflate. The handler returns
//! the 101 from [`UpgradeResponse::to_http`](wscore::UpgradeResponse::to_http) and spawns a task
//! that waits for `hyper::upgrade::on`, wraps the upgraded stream in
//! [`hyper_util::rt::TokioIo`] and drives it with
//! [`WebSocketStream::from_connection`](wscore::tokio::WebSocketStream::from_connection). Bytes
//! the client sent right after its request (before the 101) are kept by hyper in the upgraded
//! stream, so nothing is lost. A bad upgrade gets the status [`wscore::HandshakeError::reject`]
//! picks (400, 403, 405, 426...). `--origin` (repeatable) restricts browser origins.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wscore::tokio::WebSocketStream;
use wscore::{Accept, Config, HttpVersion, OriginPolicy, ServerUpgrade};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:9002");
    let mut origins = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--origin" => origins.push(args.next().ok_or("--origin needs a value")?),
            _ => addr = arg,
        }
    }
    let mut server = ServerUpgrade::new(Config::default());
    if !origins.is_empty() {
        server = server.origin_policy(OriginPolicy::allow_list(origins));
    }
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{}/ws", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(server.clone(), peer, request));
            // `with_upgrades` keeps the connection alive for `hyper::upgrade::on`.
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(tcp), service).with_upgrades().await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn handle(
    server: ServerUpgrade,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/ws" {
        return Ok(Response::new(Full::from("try ws:///ws\n")));
    }
    let pending = match server.validate_http(&request, None) {
        Ok(pending) => pending,
        Err(err) => return Ok(answer(err.reject(HttpVersion::Http11).to_http())),
    };
    let accept =
        if pending.request().protocols().contains(&"chat") { Accept::new().protocol("chat") } else { Accept::new() };
    let (response, conn) = match pending.accept(accept) {
        Ok(accepted) => accepted,
        Err(err) => return Ok(answer(err.reject(HttpVersion::Http11).to_http())),
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let mut ws = match upgrade.await {
            Ok(upgraded) => WebSocketStream::from_connection(TokioIo::new(upgraded), conn),
            Err(e) => return eprintln!("{peer}: upgrade failed: {e}"),
        };
        // `None` once the close handshake is over and the stream is shut down.
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
    Ok(answer(response.to_http()))
}

/// A response built by wscore, or a 500 if the application added an invalid header.
fn answer(response: Result<Response<Full<Bytes>>, http::Error>) -> Response<Full<Bytes>> {
    response.unwrap_or_else(|e| {
        let mut response = Response::new(Full::from(format!("{e}\n")));
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}
