//! A command-line WebSocket client on tokio: stdin lines go out as text messages, received
//! messages come out on stdout, one per line.
//!
//! ```text
//! cargo run --release --example tokio_client -- ws://HOST:PORT/PATH [--header 'Name: value']...
//! ```
//!
//! It shows [`wscore::tokio::WebSocketStream`] on the client side: the upgrade over a
//! `tokio::net::TcpStream`, then one `tokio::select!` over the next event and an application
//! channel (fed by a thread reading stdin), with keepalive pings every 20 seconds (sent, and
//! their pongs awaited, by the core). Binary messages are printed as `binary: ` and their bytes
//! in hex.
//!
//! At the end of stdin it closes with 1000 and waits for the close handshake and for the
//! server to close the transport, then exits 0. If the server closes first, its close code is
//! printed to stderr and the exit status is 0 for 1000 (or no code), 1 otherwise. A rejected
//! upgrade prints `upgrade rejected: HTTP <status> <reason>` and the body to stderr and exits
//! 1; other failures exit 1 too; bad arguments and `wss://` URLs (TLS is not supported by this
//! example yet) exit 2.
//!
//! The example only moves lines and events between the terminal and the driver; all protocol
//! logic (framing, masking, pongs, keepalive, the close handshake) lives in `wscore`.

use std::fmt::Write as _;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wscore::tokio::WebSocketStream;
use wscore::{ClientRequest, CloseCode, CloseFrame, Config, DriverError, Event, HandshakeError, Message};

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
    let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(request, config))
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

    let server_close = drive(&mut ws, &mut lines).await.map_err(|e| match e {
        DriverError::Connection(e) => Exit::failure(format!("error: {e} (close code {})", e.close_code())),
        e => Exit::failure(format!("error: {e}")),
    })?;
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
async fn connect(request: ClientRequest, config: Config) -> Result<WebSocketStream<TcpStream>, Exit> {
    let target = format!("{}:{}", request.host(), request.port());
    let tcp = TcpStream::connect((request.host(), request.port()))
        .await
        .map_err(|e| Exit::failure(format!("error: cannot connect to {target}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    WebSocketStream::client(tcp, request, config).await.map_err(|e| match e {
        DriverError::Handshake(HandshakeError::Rejected(response)) => {
            let mut message = format!("upgrade rejected: HTTP {} {}", response.status, response.reason);
            if !response.body.is_empty() {
                message.push('\n');
                message.push_str(String::from_utf8_lossy(&response.body).trim_end());
            }
            Exit::failure(message)
        }
        DriverError::Io(e) => Exit::failure(format!("error: during the upgrade: {e}")),
        e => Exit::failure(format!("error: upgrade failed: {e}")),
    })
}

/// Sends stdin lines and prints what arrives until the connection is over. Returns the
/// server's close frame if the server started the close handshake.
async fn drive(
    ws: &mut WebSocketStream<TcpStream>,
    lines: &mut mpsc::Receiver<String>,
) -> Result<Option<Option<CloseFrame>>, DriverError> {
    let mut stdin_open = true;
    let mut server_close = None;
    loop {
        tokio::select! {
            // Cancel-safe: losing the race to a line loses no event.
            event = ws.next_event() => {
                let Some(event) = event? else {
                    // The close handshake is over and the transport closed.
                    return Ok(server_close);
                };
                let mut stdout = io::stdout().lock();
                let printed = match event {
                    Event::Message(Message::Text(text)) => writeln!(stdout, "{}", text.as_str()),
                    Event::Message(Message::Binary(data)) => writeln!(stdout, "binary: {}", hex(&data)),
                    Event::Close(frame) if stdin_open => {
                        // The server started the close handshake (the reply is already sent).
                        server_close = Some(frame);
                        stdin_open = false;
                        Ok(())
                    }
                    _ => Ok(()),
                };
                let printed = printed.and_then(|()| stdout.flush());
                drop(stdout);
                if printed.is_err() && stdin_open {
                    // Nobody reads our output any more (a closed pipe): say goodbye.
                    stdin_open = false;
                    close(ws, CloseCode::GOING_AWAY, "stdout closed").await?;
                }
            }
            line = lines.recv(), if stdin_open => match line {
                // Queued; written as soon as the driver is not busy handing out events.
                Some(line) => match ws.feed(Message::Text(line.into())).await {
                    Err(DriverError::Send(e)) => eprintln!("line not sent: {e}"),
                    result => result?,
                },
                None => {
                    // End of stdin: close normally, then wait for the server to finish.
                    stdin_open = false;
                    close(ws, CloseCode::NORMAL, "").await?;
                }
            },
        }
    }
}

/// Starts the close handshake; a close already under way (the server's) is not an error.
async fn close(ws: &mut WebSocketStream<TcpStream>, code: CloseCode, reason: &str) -> Result<(), DriverError> {
    match ws.close(code, reason).await {
        Err(DriverError::Send(_)) => Ok(()),
        result => result,
    }
}

fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for byte in data {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
