//! Prints the inline sizes of what an idle connection of wscore's `tokio_echo_server` is made
//! of, for the idle-memory breakdown of the end-to-end benchmark (`bench-e2e/README.md`). Heap
//! allocations (buffers, the task) are measured separately with heaptrack, see `run.sh idle-profile`.
//!
//! ```text
//! cargo run --release --example e2e_idle_sizes
//! ```
//!
//! It also upgrades one real connection over loopback with the example's configuration and
//! reports what the core says is buffered once the upgrade is done.

use std::mem::{size_of, size_of_val};

use tokio::net::{TcpListener, TcpStream};
use wscore::tokio::WebSocketStream;
use wscore::{Accept, ClientRequest, Config, Connection, Message};

/// `tokio_echo_server`'s configuration.
fn config() -> Config {
    Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .max_write_buffer(128 << 20)
        .read_buffer_size(64 << 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("inline sizes (bytes):");
    println!("  wscore::Connection                          {:>6}", size_of::<Connection>());
    println!("  wscore::Config                              {:>6}", size_of::<Config>());
    println!("  wscore::Message                             {:>6}", size_of::<Message>());
    println!("  wscore::tokio::WebSocketStream<TcpStream>   {:>6}", size_of::<WebSocketStream<TcpStream>>());
    println!("  wscore::tokio::WebSocketStream<&mut TcpStream> {:>3}", size_of::<WebSocketStream<&mut TcpStream>>());
    println!("  tokio::net::TcpStream                       {:>6}", size_of::<TcpStream>());
    println!(
        "  bytes::Bytes / bytes::BytesMut              {:>6} / {}",
        size_of::<bytes::Bytes>(),
        size_of::<bytes::BytesMut>()
    );
    println!(
        "  tokio::sync::mpsc::{{Sender, Receiver}}<u64>    {:>6} / {}",
        size_of::<tokio::sync::mpsc::Sender<u64>>(),
        size_of::<tokio::sync::mpsc::Receiver<u64>>()
    );

    // One real upgrade with the example's configuration, from a client that offers no
    // extension (as the load generator), to see what the core holds afterwards and how big
    // the driver's futures are: an async task's allocation is as big as its largest state.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await?;
        let accept = WebSocketStream::accept_with(&mut tcp, config(), |_| Ok(Accept::new()));
        let accept_size = size_of_val(&accept);
        let mut ws = accept.await?;
        let next_size = size_of_val(&ws.next_message());
        let feed_size = size_of_val(&ws.feed(Message::Binary(bytes::Bytes::new())));
        let close_size = size_of_val(&ws.close(wscore::CloseCode::NORMAL, ""));
        let conn = ws.connection();
        let report = format!(
            "futures (bytes): accept_with {accept_size}, next_message {next_size}, feed {feed_size}, close {close_size}\n\
             after the upgrade: buffered_amount {} B, buffered_received {} B, deflate {}",
            conn.buffered_amount(),
            conn.buffered_received(),
            if conn.deflate_params().is_some() { "negotiated" } else { "off" },
        );
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(report)
    });
    let request = ClientRequest::from_url(&format!("ws://{addr}/"))?;
    let client = WebSocketStream::connect_with(request, Config::default().deflate(None)).await?;
    let report = server.await?.map_err(|e| e.to_string())?;
    println!("{report}");
    drop(client);
    Ok(())
}
