//! wscore's tokio driver in the peers' echo loop, for the end-to-end benchmark: a task per
//! connection, `next_message` and then `send` (which writes the echo out before the next read),
//! as the peer servers do — where `examples/tokio_echo_server.rs` queues echoes with `feed` and
//! the driver writes everything one read produced at once. The two rows side by side tell what
//! the batching is worth and what the codec and driver are worth on their own.
//!
//! ```text
//! cargo run --release --example e2e_wscore_send_echo_server -- 127.0.0.1:9001
//! ```
//!
//! The same runtime and configuration as `tokio_echo_server` (messages up to 64 MiB, reads of
//! up to 64 KiB between frames, echoes of up to 4 MiB in one frame).

#[path = "accept_loop.rs"]
mod accept_loop;

use tokio::net::TcpStream;
use wscore::tokio::WebSocketStream;
use wscore::{Accept, Config, DriverError};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    accept_loop::serve_each(serve).await
}

async fn serve(tcp: TcpStream) -> Result<(), DriverError> {
    tcp.set_nodelay(true)?;
    let config = Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .max_write_buffer(128 << 20)
        .read_buffer_size(64 << 10)
        .write_fragment_size(4 << 20);
    let mut ws = WebSocketStream::accept_with(tcp, config, |_request| Ok(Accept::new())).await?;
    while let Some(message) = ws.next_message().await? {
        match ws.send(message).await {
            // Fails only once a close was sent: the peer's late messages are not echoed.
            Err(DriverError::Send(_)) => {}
            result => result?,
        }
    }
    Ok(())
}
