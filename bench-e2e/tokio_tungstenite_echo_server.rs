//! Peer echo server for the end-to-end benchmark: tokio-tungstenite on a multi-thread tokio
//! runtime (as wscore's `tokio_echo_server`), a task per connection: `next()` a message, `send`
//! it back (which flushes), as in tokio-tungstenite's echo example.
//!
//! ```text
//! cargo run --release --example e2e_tokio_tungstenite_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Messages and frames up to 64 MiB; no extensions. The upgrade is answered by `upgrade.rs`
//! (the crate is built without its `handshake` feature); from there on it is plain
//! `WebSocketStream::from_partially_read`.

#[path = "accept_loop.rs"]
mod accept_loop;

#[path = "upgrade.rs"]
mod upgrade;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    accept_loop::serve_each(serve).await
}

async fn serve(mut tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let leftover = upgrade::accept_async(&mut tcp).await?;
    let mut ws = WebSocketStream::from_partially_read(tcp, leftover, Role::Server, Some(config())).await;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_binary() || message.is_text() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
