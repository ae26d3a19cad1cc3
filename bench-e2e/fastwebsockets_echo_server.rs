//! Peer echo server for the end-to-end benchmark: fastwebsockets on a multi-thread tokio runtime
//! (as wscore's `tokio_echo_server`), a task per connection, with the crate's recommended echo
//! loop: a `FragmentCollector` (whole messages, UTF-8 checked), `read_frame`, and `write_frame`
//! of the same frame back.
//!
//! ```text
//! cargo run --release --example e2e_fastwebsockets_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Messages up to 64 MiB (fastwebsockets' default, set explicitly); no extensions. Automatic
//! pong and close replies on (the defaults, set explicitly). The upgrade is answered by
//! `upgrade.rs` (the crate's `upgrade` feature needs hyper); from there on it is plain
//! `WebSocket::after_handshake`, the API fastwebsockets provides for that.

#[path = "accept_loop.rs"]
mod accept_loop;

#[path = "upgrade.rs"]
mod upgrade;

use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket, WebSocketError};
use tokio::net::TcpStream;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    accept_loop::serve_each(serve).await
}

async fn serve(mut tcp: TcpStream) -> Result<(), WebSocketError> {
    tcp.set_nodelay(true)?;
    let leftover = upgrade::accept_async(&mut tcp).await?;
    if !leftover.is_empty() {
        // `after_handshake` has no way to take bytes already read; the load generator and
        // browsers wait for the 101 before sending frames.
        eprintln!("frames sent before the upgrade completed; closing");
        return Ok(());
    }
    let mut ws = WebSocket::after_handshake(tcp, Role::Server);
    ws.set_max_message_size(64 << 20);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
