//! An axum echo server: `/ws` upgrades to a WebSocket through a small extractor
//! (`upgrade.rs`, [`WebSocketUpgrade`]) built on wscore's [`ServerUpgrade`], and echoes.
//!
//! ```text
//! cargo run --example axum_echo_server -- 127.0.0.1:9003
//! ```
//!
//! axum serves HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) on the same port and enables
//! the extended CONNECT protocol, so the same route accepts `GET` upgrades (RFC 6455) and
//! HTTP/2 `CONNECT` with `:protocol websocket` (RFC 8441). The subprotocol `chat` is accepted
//! when offered, permessage-deflate is negotiated, and a bad upgrade is answered with the
//! status wscore picks (400, 403, 405, 426...).

mod upgrade;

use axum::Router;
use axum::routing::any;
use upgrade::{WebSocket, WebSocketUpgrade};
use wscore::{Accept, Config, ServerUpgrade};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on ws://{}/ws", listener.local_addr()?);
    axum::serve(listener, app(ServerUpgrade::new(Config::default()))).await?;
    Ok(())
}

/// The router: `/ws` is the echo endpoint, for `GET` (HTTP/1.1) and `CONNECT` (HTTP/2) alike.
fn app(server: ServerUpgrade) -> Router {
    Router::new().route("/ws", any(ws)).with_state(server)
}

async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
    let accept =
        if upgrade.request().protocols().contains(&"chat") { Accept::new().protocol("chat") } else { Accept::new() };
    upgrade.on_upgrade(accept, echo)
}

async fn echo(mut ws: WebSocket) {
    loop {
        match ws.next_message().await {
            Ok(Some(message)) => {
                if let Err(e) = ws.feed(message).await {
                    return eprintln!("{e}");
                }
            }
            Ok(None) => return,
            Err(e) => return eprintln!("{e}"),
        }
    }
}
