//! A command-line WebSocket client on tokio: stdin lines go out as text messages, received
//! messages come out on stdout, one per line.
//!
//! ```text
//! cargo run --release --example tokio_client -- ws://HOST:PORT/PATH [--header 'Name: value']...
//! ```
//!
//! It shows the client side of the drive loop: [`wscore::ClientHandshake`] over a
//! `tokio::net::TcpStream`, then one `tokio::select!` over the socket, an application channel
//! (fed by a thread reading stdin) and the connection's next deadline, with keepalive pings
//! every 20 seconds. Binary messages are printed as `binary: ` and their bytes in hex.
//!
//! At the end of stdin it closes with 1000 and waits for the close handshake and for the
//! server to close the transport, then exits 0. If the server closes first, its close code is
//! printed to stderr and the exit status is 0 for 1000 (or no code), 1 otherwise. A rejected
//! upgrade prints `upgrade rejected: HTTP <status> <reason>` and the body to stderr and exits
//! 1; other failures exit 1 too; bad arguments and `wss://` URLs (TLS is not supported by this
//! example yet) exit 2.
//!
//! The example only moves bytes, time and events between the socket and the core; all protocol
//! logic (framing, masking, pongs, keepalive, the close handshake) lives in `wscore`.

use std::fmt::Write as _;
use std::io::{self, BufRead, IoSlice, Write};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wscore::{
    ClientHandshake, ClientRequest, CloseCode, CloseFrame, Config, Connection, Event, HandshakeError, Instant, Message,
    SendError,
};

/// Stop taking stdin lines while this much output waits for the socket.
const HIGH_WATER: usize = 1 << 20;

/// Connecting and upgrading must finish within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: tokio_client ws://HOST[:PORT][/PATH] [--header 'Name: value']...";

/// A failure, with the process exit code it maps to.
struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    fn usage(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }

    fn failure(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            eprintln!("{}", exit.message);
            ExitCode::from(exit.code)
        }
    }
}

async fn run() -> Result<(), Exit> {
    let request = parse_args()?;
    let config = Config::default().keepalive_interval(Some(Duration::from_secs(20)));
    let (mut tcp, mut conn) = tokio::time::timeout(CONNECT_TIMEOUT, connect(request, config))
        .await
        .map_err(|_| Exit::failure("error: timed out connecting"))??;

    // stdin is read on a plain thread: a blocking read there never keeps the runtime alive
    // once the connection is over.
    let (lines_tx, mut lines) = mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            match line {
                Ok(line) => {
                    if lines_tx.blocking_send(line).is_err() {
                        break; // the connection is over
                    }
                }
                Err(e) => {
                    eprintln!("error reading stdin: {e}");
                    break;
                }
            }
        }
    });

    let server_close =
        drive(&mut tcp, &mut conn, &mut lines).await.map_err(|e| Exit::failure(format!("error: {e}")))?;
    if let Some(e) = conn.error() {
        return Err(Exit::failure(format!("error: {e} (close code {})", e.close_code())));
    }
    match server_close {
        // We closed at the end of stdin and the close handshake completed.
        None => Ok(()),
        Some(None) => {
            eprintln!("closed by the server (no status code)");
            Ok(())
        }
        Some(Some(frame)) => {
            let message = format!("closed by the server: {} {}", frame.code, frame.reason.as_str());
            if frame.code == CloseCode::NORMAL {
                eprintln!("{message}");
                Ok(())
            } else {
                Err(Exit::failure(message))
            }
        }
    }
}

fn parse_args() -> Result<ClientRequest, Exit> {
    let mut url = None;
    let mut headers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--header" | "-H" => {
                let header = args.next().ok_or_else(|| Exit::usage(format!("error: {arg} needs a value\n{USAGE}")))?;
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| Exit::usage(format!("error: header {header:?} is not 'Name: value'")))?;
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--help" | "-h" => return Err(Exit::usage(USAGE)),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(Exit::usage(format!("error: unexpected {arg:?}\n{USAGE}"))),
        }
    }
    let url = url.ok_or_else(|| Exit::usage(USAGE))?;
    let mut request = ClientRequest::from_url(&url).map_err(|e| Exit::usage(format!("error: {e}\n{USAGE}")))?;
    if request.is_secure() {
        return Err(Exit::usage("error: wss:// (TLS) is not supported by this example yet; use a ws:// URL"));
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Ok(request)
}

/// Opens the TCP connection and performs the upgrade.
async fn connect(request: ClientRequest, config: Config) -> Result<(TcpStream, Connection), Exit> {
    let target = format!("{}:{}", request.host(), request.port());
    let mut tcp = TcpStream::connect((request.host(), request.port()))
        .await
        .map_err(|e| Exit::failure(format!("error: cannot connect to {target}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let io_error = |e: io::Error| Exit::failure(format!("error: during the upgrade: {e}"));

    let mut handshake = ClientHandshake::new(request, config);
    tcp.write_all(&handshake.request_bytes()).await.map_err(io_error)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.map_err(io_error)?;
        let result = match n {
            0 => handshake.receive_eof().map(|()| None),
            n => handshake.receive(&buf[..n]),
        };
        match result {
            Ok(Some(conn)) => return Ok((tcp, conn)),
            Ok(None) => {}
            Err(HandshakeError::Rejected(response)) => {
                let mut message = format!("upgrade rejected: HTTP {} {}", response.status, response.reason);
                if !response.body.is_empty() {
                    message.push('\n');
                    message.push_str(String::from_utf8_lossy(&response.body).trim_end());
                }
                return Err(Exit::failure(message));
            }
            Err(e) => return Err(Exit::failure(format!("error: upgrade failed: {e}"))),
        }
    }
}

/// The drive loop (see the `wscore` crate docs). Returns the server's close frame if the
/// server started the close handshake. Connection errors are sticky in `conn` and reported by
/// the caller; only transport errors are returned.
async fn drive(
    tcp: &mut TcpStream,
    conn: &mut Connection,
    lines: &mut mpsc::Receiver<String>,
) -> io::Result<Option<Option<CloseFrame>>> {
    let mut stdin_open = true;
    let mut server_close = None;
    let mut stdout = io::stdout().lock();
    loop {
        // 1. Write what is buffered, as far as the socket takes it without waiting.
        write_available(tcp, conn)?;

        // 2. Pull events. Taking the server's Close queues the reply.
        let mut took_event = false;
        while let Some(event) = conn.poll_event() {
            took_event = true;
            let printed = match event {
                Event::Message(Message::Text(text)) => writeln!(stdout, "{}", text.as_str()),
                Event::Message(Message::Binary(data)) => {
                    writeln!(stdout, "binary: {}", hex(&data))
                }
                Event::Close(frame) if stdin_open => {
                    // The server started the close handshake (taking the event queued our reply).
                    server_close = Some(frame);
                    stdin_open = false;
                    Ok(())
                }
                _ => Ok(()),
            };
            if printed.is_err() && stdin_open {
                // Nobody reads our output any more (a closed pipe): say goodbye.
                stdin_open = false;
                let _ = conn.close(CloseCode::GOING_AWAY, "stdout closed");
            }
        }
        if took_event {
            let _ = stdout.flush();
            continue; // write what the events produced first
        }

        // 3. Shut the transport down when the connection says so (for a client: once the
        // server has closed it, or the close deadline passed).
        if conn.should_close_transport() {
            let _ = tcp.shutdown().await;
            return Ok(server_close);
        }

        // 4. Wait for input, room to write, a line of stdin or the next deadline.
        let deadline = conn.poll_timeout();
        // Take no more lines while output backs up; keep reading the socket regardless (a
        // server may need us to read its replies before it reads more of what we send).
        let take_lines = stdin_open && conn.buffered_amount() < HIGH_WATER;
        tokio::select! {
            ready = tcp.readable() => {
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
            line = lines.recv(), if take_lines => match line {
                Some(line) => send_text(tcp, conn, line).await?,
                None => {
                    // End of stdin: close normally, then wait for the server to finish.
                    stdin_open = false;
                    let _ = conn.close(CloseCode::NORMAL, "");
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                let _ = conn.handle_timeout(Instant::now());
            }
        }
    }
}

/// Queues `line` as a text message. If the write buffer is full, writes it out first.
async fn send_text(tcp: &TcpStream, conn: &mut Connection, line: String) -> io::Result<()> {
    let message = Message::Text(line.into());
    let result = match conn.send(message.clone()) {
        Err(SendError::BufferFull { .. }) => {
            flush(tcp, conn).await?;
            conn.send(message)
        }
        result => result,
    };
    if let Err(e) = result {
        eprintln!("line not sent: {e}");
    }
    Ok(())
}

/// Writes buffered output without waiting: vectored writes until everything is written or
/// the socket is full.
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

fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for byte in data {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
