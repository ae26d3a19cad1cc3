//! An echo server on tokio: a multi-thread runtime, one task per connection, each task driving
//! one [`wscore::Connection`] with a `tokio::select!` over the socket, an application command
//! channel and the connection's next deadline.
//!
//! ```text
//! cargo run --release --example tokio_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Every text and binary message is echoed unchanged (messages up to 64 MiB); pings are
//! answered and close handshakes completed by the core. Replies are batched: everything one
//! read produces is written with as few (vectored) socket writes as the kernel allows. On
//! Ctrl-C every connection is sent a command over its channel and closes with 1001 (going
//! away); a second Ctrl-C exits at once.
//!
//! The example only moves bytes, time and events between the socket and the core; all protocol
//! logic (framing, pongs, the close handshake, timeouts) lives in `wscore`.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use wscore::{
    Accept, CloseCode, Config, Connection, Event, HandshakeError, Instant, Message, Reject, SendError, ServerHandshake,
};

/// Stop reading from a peer while this much output waits for the socket: a peer has to read
/// its echoes before it may send more, so memory stays bounded (TCP backpressure).
const HIGH_WATER: usize = 1 << 20;

/// How long shutdown waits for the close handshakes (the core gives up after its close timeout).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What the application can ask a connection task to do.
#[derive(Debug)]
enum Command {
    /// Start the close handshake.
    Close { code: CloseCode, reason: &'static str },
}

fn config() -> Config {
    Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        // An echo queues a whole message at once, on top of what is still unwritten.
        .max_write_buffer(128 << 20)
        .read_buffer_size(64 << 10)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);

    let mut tasks = JoinSet::new();
    let mut commands: HashMap<Id, mpsc::Sender<Command>> = HashMap::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (tx, rx) = mpsc::channel(4);
                    let task = tasks.spawn(serve(tcp, peer, rx));
                    commands.insert(task.id(), tx);
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = tasks.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        eprintln!("connection task failed: {e}");
                        e.id()
                    }
                };
                commands.remove(&id);
            }
            result = &mut ctrl_c => {
                result?;
                break;
            }
        }
    }

    drop(listener);
    eprintln!("shutting down: closing {} connection(s) with 1001", commands.len());
    for tx in commands.values() {
        // A full channel means the task is busy with earlier commands; it still ends when the
        // peer or the close timeout ends it.
        let _ = tx.try_send(Command::Close { code: CloseCode::GOING_AWAY, reason: "server shutting down" });
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        result = tokio::time::timeout(SHUTDOWN_GRACE, drain) => {
            if result.is_err() {
                eprintln!("gave up waiting for {} connection(s)", tasks.len());
            }
        }
        _ = tokio::signal::ctrl_c() => eprintln!("second Ctrl-C: exiting now"),
    }
    Ok(())
}

/// One connection, from the upgrade to the end of the transport. Logs at most one line.
async fn serve(mut tcp: TcpStream, peer: SocketAddr, mut commands: mpsc::Receiver<Command>) {
    // Replies are already batched; don't let Nagle hold back the last segment.
    let _ = tcp.set_nodelay(true);
    let mut conn = match handshake(&mut tcp, &mut commands).await {
        Ok(Some(conn)) => conn,
        Ok(None) => return,
        Err(e) => {
            eprintln!("{peer}: {e}");
            return;
        }
    };
    let io_error = drive(&mut tcp, &mut conn, &mut commands).await.err();
    match (conn.error(), io_error) {
        (None, None) => {}
        (Some(e), None) => eprintln!("{peer}: {e} (close code {})", e.close_code()),
        (Some(e), Some(io)) => {
            eprintln!("{peer}: {e} (close code {}), then {io}", e.close_code());
        }
        (None, Some(io)) => eprintln!("{peer}: {io} (close code {})", CloseCode::ABNORMAL),
    }
}

/// Why an upgrade did not happen.
#[derive(Debug)]
enum UpgradeError {
    Handshake(HandshakeError),
    Io(io::Error),
}

impl std::fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "upgrade failed: {e} (HTTP {})", e.status()),
            Self::Io(e) => write!(f, "I/O error during the upgrade: {e}"),
        }
    }
}

impl From<io::Error> for UpgradeError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads the upgrade request until it is complete (`Some`), the peer leaves or the server
/// shuts down (`None`), or it fails (after writing the error response).
async fn handshake(
    tcp: &mut TcpStream,
    commands: &mut mpsc::Receiver<Command>,
) -> Result<Option<Connection>, UpgradeError> {
    let mut handshake = ServerHandshake::new(config());
    let mut buf = [0u8; 4096];
    loop {
        let deadline = handshake.poll_timeout();
        let result = tokio::select! {
            read = tcp.read(&mut buf) => match read? {
                0 => return Ok(None),
                n => handshake.receive(&buf[..n]).map(|request| request.is_some()),
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                handshake.handle_timeout(Instant::now()).map(|()| false)
            }
            Some(_) = commands.recv() => {
                tcp.write_all(&Reject::new(503).body("shutting down\n").into_bytes()).await?;
                let _ = tcp.shutdown().await;
                return Ok(None);
            }
        };
        match result {
            Ok(true) => {
                return handshake.accept(Accept::new()).map(Some).map_err(UpgradeError::Handshake);
            }
            Ok(false) => {}
            Err(e) => {
                tcp.write_all(&e.response()).await?;
                let _ = tcp.shutdown().await;
                return Err(UpgradeError::Handshake(e));
            }
        }
    }
}

/// The drive loop (see the `wscore` crate docs). Connection errors are sticky in `conn` and
/// reported by the caller; only transport errors are returned.
async fn drive(tcp: &mut TcpStream, conn: &mut Connection, commands: &mut mpsc::Receiver<Command>) -> io::Result<()> {
    loop {
        // 1. Write what is buffered, as far as the socket takes it without waiting.
        write_available(tcp, conn)?;

        // 2. Pull events; echo messages. Taking the peer's Close queues the reply.
        let mut took_event = false;
        while let Some(event) = conn.poll_event() {
            took_event = true;
            if let Event::Message(message) = event {
                echo(tcp, conn, message).await?;
            }
        }
        if took_event {
            continue; // write what the events produced first
        }

        // 3. Shut the transport down when the connection says so.
        if conn.should_close_transport() {
            let _ = tcp.shutdown().await;
            return Ok(());
        }

        // 4. Wait for input, room to write, a command or the next deadline.
        let deadline = conn.poll_timeout();
        let can_read = conn.buffered_amount() < HIGH_WATER;
        tokio::select! {
            ready = tcp.readable(), if can_read => {
                ready?;
                // Read straight into the connection's buffer (zero copy). Errors are sticky in
                // `conn`; the loop writes the close frame and shuts down.
                let _ = match tcp.try_read(conn.receive_buffer()) {
                    Ok(0) => conn.receive_eof(),
                    Ok(n) => conn.commit_received(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                    Err(e) => return Err(e),
                };
            }
            ready = tcp.writable(), if conn.wants_write() => ready?,
            Some(command) = commands.recv() => match command {
                Command::Close { code, reason } => {
                    // Fails only if a close was already sent: nothing more to do then.
                    let _ = conn.close(code, reason);
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                let _ = conn.handle_timeout(Instant::now());
            }
        }
    }
}

/// Queues the echo of `message`. If the write buffer is full, writes it out first.
async fn echo(tcp: &TcpStream, conn: &mut Connection, message: Message) -> io::Result<()> {
    // Any other error means a close was sent: the peer's late messages are not echoed.
    if let Err(SendError::BufferFull { .. }) = conn.send(message.clone()) {
        flush(tcp, conn).await?;
        // Still failing means the message alone is over the limit: drop it.
        let _ = conn.send(message);
    }
    Ok(())
}

/// Writes buffered output without waiting: vectored writes (headers and large payloads as
/// separate slices, no copy) until everything is written or the socket is full.
fn write_available(tcp: &TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        let written = {
            let mut slices = [IoSlice::new(&[]); 64];
            let count = conn.transmit_vectored(&mut slices);
            match tcp.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        };
        conn.advance_transmit(written);
    }
    Ok(())
}

/// Writes all buffered output, waiting for the socket as needed.
async fn flush(tcp: &TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        tcp.writable().await?;
        write_available(tcp, conn)?;
    }
    Ok(())
}

/// Sleeps until a `wscore` deadline (`None`: forever). A deadline in the past, such as
/// [`Instant::ZERO`], completes at once.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at.to_std())).await,
        None => std::future::pending().await,
    }
}
