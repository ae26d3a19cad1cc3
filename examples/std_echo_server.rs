//! A blocking echo server: `std::net`, one thread per connection, read timeouts taken from the
//! connection's next deadline.
//!
//! ```text
//! cargo run --release --example std_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Every text and binary message is echoed unchanged; pings are answered and close handshakes
//! completed by the core. Messages up to 64 MiB are accepted.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;
use wscore::{Accept, Config, Connection, Event, HandshakeError, Instant, ServerHandshake};

fn config() -> Config {
    Config::default().max_message_size(64 << 20).max_frame_size(64 << 20).max_write_buffer(128 << 20)
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { continue };
        std::thread::spawn(move || {
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            if let Err(e) = serve(tcp) {
                eprintln!("{peer}: {e}");
            }
        });
    }
    Ok(())
}

/// Sets the socket's read timeout to the time left until `deadline` (`None`: block).
fn set_timeout(tcp: &TcpStream, deadline: Option<Instant>) -> io::Result<()> {
    let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    tcp.set_read_timeout(timeout)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn handshake(tcp: &mut TcpStream) -> io::Result<Option<Connection>> {
    let mut handshake = ServerHandshake::new(config());
    let mut buf = [0u8; 4096];
    let fail = |tcp: &mut TcpStream, e: HandshakeError| {
        let _ = tcp.write_all(&e.response());
        eprintln!("handshake failed: {e}");
        Ok(None)
    };
    loop {
        if let Err(e) = handshake.handle_timeout(Instant::now()) {
            return fail(tcp, e);
        }
        set_timeout(tcp, handshake.poll_timeout())?;
        let n = match tcp.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        match handshake.receive(&buf[..n]) {
            Ok(Some(_request)) => break,
            Ok(None) => {}
            Err(e) => return fail(tcp, e),
        }
    }
    handshake.accept(Accept::new()).map(Some).map_err(io::Error::other)
}

/// Writes everything the connection has buffered, header and large payloads without copying.
fn flush(tcp: &mut TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        let mut slices = [IoSlice::new(&[]); 32];
        let count = conn.transmit_vectored(&mut slices);
        let n = tcp.write_vectored(&slices[..count])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        conn.advance_transmit(n);
    }
    Ok(())
}

fn serve(mut tcp: TcpStream) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let Some(mut conn) = handshake(&mut tcp)? else { return Ok(()) };
    loop {
        if conn.poll_timeout().is_some_and(|at| at <= Instant::now()) {
            if let Err(e) = conn.handle_timeout(Instant::now()) {
                eprintln!("connection failed: {e} (close code {})", e.close_code());
            }
        }
        flush(&mut tcp, &mut conn)?;
        let mut produced = false;
        while let Some(event) = conn.poll_event() {
            produced = true;
            if let Event::Message(message) = event {
                // Only fails once the connection is closing, when echoes no longer matter.
                let _ = conn.send(message);
            }
        }
        if produced {
            continue;
        }
        if conn.should_close_transport() {
            let _ = tcp.shutdown(Shutdown::Both);
            return Ok(());
        }
        set_timeout(&tcp, conn.poll_timeout())?;
        let result = match tcp.read(conn.receive_buffer()) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => conn.commit_received(n),
            Err(e) if is_timeout(&e) => conn.handle_timeout(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => return Err(e),
        };
        if let Err(e) = result {
            eprintln!("connection failed: {e} (close code {})", e.close_code());
        }
    }
}
