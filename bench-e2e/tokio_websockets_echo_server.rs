//! Peer echo server for the end-to-end benchmark: tokio-websockets on a multi-thread tokio
//! runtime (as wscore's `tokio_echo_server`), a task per connection, as in the crate's echo
//! example: `ServerBuilder::accept` does the upgrade, then `next()` a message and `send` it back
//! (which flushes).
//!
//! ```text
//! cargo run --release --example e2e_tokio_websockets_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Messages up to 64 MiB (as wscore's echo servers); no extensions (tokio-websockets has no
//! permessage-deflate). Frames it sends are split at its default frame size (4 MiB).

#[path = "accept_loop.rs"]
mod accept_loop;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{Error, Limits, ServerBuilder};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    accept_loop::serve_each(serve).await
}

async fn serve(tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let (_request, mut ws) =
        ServerBuilder::new().limits(Limits::default().max_payload_len(Some(64 << 20))).accept(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_binary() || message.is_text() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
