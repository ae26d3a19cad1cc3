//! Peer echo server for the end-to-end benchmark: tungstenite, blocking, a thread per
//! connection, the way tungstenite's own server example works (`read` a message, `send` it back,
//! which writes and flushes).
//!
//! ```text
//! cargo run --release --example e2e_tungstenite_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Messages and frames up to 64 MiB (as wscore's echo servers); no extensions
//! (tungstenite has no permessage-deflate). The upgrade is answered by `upgrade.rs`, since the
//! crate is built here without its `handshake` feature; from there on it is plain
//! `WebSocket::from_partially_read`.

#[path = "upgrade.rs"]
mod upgrade;

use std::net::{TcpListener, TcpStream};

use tungstenite::Error;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20))
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { continue };
        std::thread::spawn(move || {
            if let Err(e) = serve(tcp) {
                eprintln!("connection failed: {e}");
            }
        });
    }
    Ok(())
}

fn serve(mut tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let leftover = upgrade::accept_blocking(&mut tcp)?;
    let mut ws = WebSocket::from_partially_read(tcp, leftover, Role::Server, Some(config()));
    loop {
        match ws.read() {
            Ok(message) if message.is_binary() || message.is_text() => ws.send(message)?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
