//! A blocking echo server: `std::net`, one thread per connection, each driven by
//! [`wscore::blocking::WebSocket`] (read timeouts taken from the connection's next deadline).
//!
//! ```text
//! cargo run --release --example std_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Every text and binary message is echoed unchanged; pings are answered and close handshakes
//! completed by the core. Messages up to 64 MiB are accepted. Echoes are queued and written
//! when `read` runs out of received events, so a burst of messages is answered in one write.

use std::io;
use std::net::{TcpListener, TcpStream};
use wscore::blocking::WebSocket;
use wscore::{Accept, Config, DriverError, Event};

fn config() -> Config {
    Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .max_write_buffer(128 << 20)
        // Reads of up to 64 KiB between frames (16 KiB by default): a 16 KiB message and its
        // header arrive in one read, not two.
        .read_buffer_size(64 << 10)
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { continue };
        std::thread::spawn(move || {
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            match serve(tcp) {
                Ok(()) => {}
                Err(DriverError::Handshake(e)) => eprintln!("{peer}: handshake failed: {e} (HTTP {})", e.status()),
                Err(DriverError::Connection(e)) => {
                    eprintln!("{peer}: connection failed: {e} (close code {})", e.close_code());
                }
                Err(e) => eprintln!("{peer}: {e}"),
            }
        });
    }
    Ok(())
}

fn serve(tcp: TcpStream) -> Result<(), DriverError> {
    tcp.set_nodelay(true)?;
    let mut ws = WebSocket::accept_with(tcp, config(), |_request| Ok(Accept::new()))?;
    // `None`: the close handshake is over and the socket is shut down.
    while let Some(event) = ws.read()? {
        if let Event::Message(message) = event {
            match ws.queue(message) {
                // Fails only once the connection is closing, when echoes no longer matter.
                Err(DriverError::Send(_)) => {}
                result => result?,
            }
        }
    }
    Ok(())
}
