//! A blocking command-line client: `std::net`, one connection shared by three threads.
//!
//! ```text
//! cargo run --release --example std_client -- ws://HOST:PORT/PATH [--header 'Name: value']... [--heartbeat SECS]
//! ```
//!
//! Each line read from stdin is sent as a text message; each message received is printed on its
//! own line of stdout (text as is, binary as `binary: <n> bytes`). At the end of stdin the client
//! sends close 1000, waits for the server's close frame and for the server to close the TCP
//! connection, and exits 0. Exit status 1 means the upgrade was rejected or the connection
//! failed; 2 means a bad command line (including a `wss://` URL: TLS is not supported by this
//! example yet).
//!
//! What it shows is [`wscore::blocking::WebSocket::split`]: one connection used by three
//! threads through a [`Reader`] and clones of a [`Writer`]:
//!
//! - the **reader** (the main thread) blocks in [`Reader::read`] *without* holding the
//!   connection's lock; the automatic replies (pongs, the close echo) are written by `read`
//!   itself, and the timers are its job too.
//! - the **stdin** thread sends each line with [`Writer::send_text`], and closes at the end of
//!   input.
//! - the **heartbeat** thread pings every `--heartbeat` seconds (default 15; 0 turns it off).
//!   (The core can also send keepalive pings by itself and fail the connection when no pong
//!   comes back: see `Config::keepalive_interval`. This thread shows how any other thread can
//!   drive a connection.)
//!
//! Every writer call locks the connection and writes its frames out before unlocking, so
//! frames from different threads never interleave and leave in the order they were queued.
//! The price of that simplicity: while one thread's write is blocked by a peer that stopped
//! reading, the others wait for the lock.

use std::io::{self, BufRead, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;
use wscore::blocking::{Reader, WebSocket, Writer};
use wscore::{ClientRequest, CloseCode, CloseFrame, Config, DriverError, Event, HandshakeError, Message, Response};

const USAGE: &str = "usage: std_client ws://HOST:PORT/PATH [--header 'Name: value']... [--heartbeat SECS]";

struct Args {
    url: String,
    headers: Vec<(String, String)>,
    heartbeat: Option<Duration>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut url = None;
    let mut headers = Vec::new();
    let mut heartbeat = Some(Duration::from_secs(15));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--header" | "-H" => {
                let header = args.next().ok_or("--header needs a value: 'Name: value'")?;
                let (name, value) =
                    header.split_once(':').ok_or_else(|| format!("--header {header:?}: expected 'Name: value'"))?;
                if name.trim().is_empty() {
                    return Err(format!("--header {header:?}: empty name"));
                }
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--heartbeat" => {
                let secs = args.next().ok_or("--heartbeat needs a number of seconds")?;
                let secs: u64 = secs.parse().map_err(|_| format!("--heartbeat {secs:?}: not a number of seconds"))?;
                heartbeat = (secs > 0).then(|| Duration::from_secs(secs));
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let url = url.ok_or("missing URL")?;
    Ok(Args { url, headers, heartbeat })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(args.into_iter()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut request = match ClientRequest::from_url(&args.url) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("{}: {e}\n{USAGE}", args.url);
            return ExitCode::from(2);
        }
    };
    if request.is_secure() {
        eprintln!("{}: wss:// needs TLS, which this example does not support yet (use ws://)", args.url);
        return ExitCode::from(2);
    }
    for (name, value) in args.headers {
        request = request.header(name, value);
    }
    match run(request, args.heartbeat) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Connects, upgrades, starts the stdin and heartbeat threads and reads until the connection
/// is over. `Err` carries the message to print for an exit status of 1.
fn run(request: ClientRequest, heartbeat: Option<Duration>) -> Result<(), String> {
    let (host, port) = (request.host().to_owned(), request.port());
    let tcp =
        TcpStream::connect((host.as_str(), port)).map_err(|e| format!("cannot connect to {host} port {port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    // The upgrade must complete within `Config::handshake_timeout` (10 s by default).
    let ws = WebSocket::client(tcp, request, Config::default()).map_err(|e| match e {
        DriverError::Handshake(HandshakeError::Rejected(response)) => rejected(&response),
        e => format!("upgrade failed: {e}"),
    })?;
    let (mut reader, writer) = ws.split().map_err(|e| format!("cannot clone the socket: {e}"))?;
    let stdin_writer = writer.clone();
    thread::spawn(move || send_lines(&stdin_writer));
    if let Some(every) = heartbeat {
        thread::spawn(move || send_heartbeats(&writer, every));
    }
    // The stdin thread may still be blocked reading stdin when this returns (the server closed
    // first): returning from `main` ends it.
    read_until_closed(&mut reader)
}

fn rejected(response: &Response) -> String {
    let mut message = format!("upgrade rejected: HTTP {} {}", response.status, response.reason);
    let body = String::from_utf8_lossy(&response.body);
    if !body.trim().is_empty() {
        message.push('\n');
        message.push_str(body.trim_end());
    }
    message
}

/// The stdin thread: one text message per line, then close 1000 at the end of input.
fn send_lines(writer: &Writer<TcpStream>) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n').trim_end_matches('\r');
        // Fails once the connection is closing (nothing more can be sent) or the transport
        // failed (the reader reports it).
        if writer.send_text(text.to_owned()).is_err() {
            return;
        }
    }
    // Fails only if the connection is already closing.
    let _ = writer.close(CloseCode::NORMAL, "");
}

/// The heartbeat thread: a ping every `every`, until the connection is closing.
fn send_heartbeats(writer: &Writer<TcpStream>, every: Duration) {
    for n in 1u64.. {
        thread::sleep(every);
        if writer.ping(format!("heartbeat {n}")).is_err() {
            return;
        }
    }
}

/// The reader (the main thread): prints what arrives until the connection is over. `Err`
/// carries the message to print.
fn read_until_closed(reader: &mut Reader<TcpStream>) -> Result<(), String> {
    let mut peer_close = None;
    loop {
        let event = match reader.read() {
            Ok(Some(event)) => event,
            Ok(None) => return outcome(peer_close),
            Err(DriverError::Connection(e)) => {
                return Err(format!("connection failed: {e} (close code {})", e.close_code()));
            }
            Err(e) => return Err(format!("connection lost: {e}")),
        };
        match event {
            Event::Message(Message::Text(text)) => print_line(&text),
            Event::Message(Message::Binary(data)) => print_line(&format!("binary: {} bytes", data.len())),
            Event::Pong(payload) => eprintln!("pong: {}", String::from_utf8_lossy(&payload)),
            Event::Close(frame) => peer_close = Some(frame),
            // Pings are answered by the core (the pong went out with `read`).
            _ => {}
        }
    }
}

/// How a cleanly closed connection ended: `Ok` unless the server closed with an abnormal code.
fn outcome(peer_close: Option<Option<CloseFrame>>) -> Result<(), String> {
    match peer_close {
        Some(Some(frame)) if !matches!(frame.code, CloseCode::NORMAL | CloseCode::GOING_AWAY) => {
            Err(format!("server closed the connection with code {} {:?}", frame.code, frame.reason))
        }
        _ => Ok(()),
    }
}

/// Prints one line on stdout right away. Errors (stdout closed) are ignored: the connection
/// still closes cleanly.
fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
