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
//! What it shows is one [`wscore::Connection`] shared by several threads, in an
//! `Arc<Mutex<Connection>>`:
//!
//! - the **reader** thread blocks in `read()` on its own `TcpStream` handle *without* holding
//!   the lock, then locks to feed the bytes in, take the events and write the automatic replies
//!   (pongs, the close echo). It alone handles timers, with read timeouts taken from
//!   `poll_timeout`.
//! - the **stdin** thread locks to `send_text` each line, and to `close` at the end of input.
//! - the **heartbeat** thread locks every `--heartbeat` seconds (default 15; 0 turns it off) to
//!   `ping`. (The core can also send keepalive pings by itself and fail the connection when no
//!   pong comes back: see `Config::keepalive_interval`. This thread shows how any other thread
//!   can drive a connection.)
//!
//! Every thread writes out what `transmit()` holds *before releasing the lock*, on its own clone
//! of the `TcpStream`: the connection lock is also the write lock, so frames from different
//! threads never interleave and leave in the order they were queued. The price of that
//! simplicity: while one thread's write is blocked by a peer that stopped reading, the others
//! wait for the lock. A driver for bulk transfers would give writing its own thread.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;
use wscore::{
    ClientHandshake, ClientRequest, CloseCode, CloseFrame, Config, Connection, Event, HandshakeError, Instant, Message,
    Response, State,
};

const USAGE: &str = "usage: std_client ws://HOST:PORT/PATH [--header 'Name: value']... [--heartbeat SECS]";

/// How long the server may take to answer the upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the reader stays in `read()` before looking at the timers again: another thread
/// may have armed a deadline meanwhile (the close timer, when stdin ends).
const MAX_READ_WAIT: Duration = Duration::from_millis(250);

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
    let conn = Arc::new(Mutex::new(handshake(&tcp, request)?));
    let clone = |tcp: &TcpStream| tcp.try_clone().map_err(|e| format!("cannot clone the socket: {e}"));
    let (stdin_tcp, heartbeat_tcp) = (clone(&tcp)?, clone(&tcp)?);
    let stdin_conn = Arc::clone(&conn);
    thread::spawn(move || send_lines(&stdin_conn, &stdin_tcp));
    if let Some(every) = heartbeat {
        let heartbeat_conn = Arc::clone(&conn);
        thread::spawn(move || send_heartbeats(&heartbeat_conn, &heartbeat_tcp, every));
    }
    // The stdin thread may still be blocked reading stdin when this returns (the server closed
    // first): returning from `main` ends it.
    read_until_closed(&conn, &tcp)
}

/// Sends the upgrade request and reads the response; returns the connection (holding any bytes
/// that followed the response) or the message to print.
fn handshake(mut tcp: &TcpStream, request: ClientRequest) -> Result<Connection, String> {
    let mut handshake = ClientHandshake::new(request, Config::default());
    tcp.write_all(&handshake.request_bytes()).map_err(|e| format!("sending the upgrade request failed: {e}"))?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let result = match tcp.read(&mut buf) {
            Ok(0) => handshake.receive_eof().map(|()| None),
            Ok(n) => handshake.receive(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                return Err(format!("upgrade failed: no response within {} s", HANDSHAKE_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(format!("upgrade failed: {e}")),
        };
        match result {
            Ok(Some(conn)) => return Ok(conn),
            Ok(None) => {}
            Err(HandshakeError::Rejected(response)) => return Err(rejected(&response)),
            Err(e) => return Err(format!("upgrade failed: {e}")),
        }
    }
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

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Locks the connection. A poisoned lock means another thread panicked while holding it; the
/// connection itself is still consistent (the core never leaves it half-updated), so go on.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes out everything the connection has queued. Callers hold the lock, so it doubles as
/// the write lock.
fn flush(mut tcp: &TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        let n = tcp.write(conn.transmit())?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        conn.advance_transmit(n);
    }
    Ok(())
}

/// `flush` for the stdin and heartbeat threads. A failed write means the transport is gone:
/// shutting it down wakes the reader, which ends the connection and reports it.
fn flush_or_shut_down(tcp: &TcpStream, conn: &mut Connection) -> bool {
    match flush(tcp, conn) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("write failed: {e}");
            let _ = tcp.shutdown(Shutdown::Both);
            false
        }
    }
}

/// The stdin thread: one text message per line, then close 1000 at the end of input.
fn send_lines(conn: &Mutex<Connection>, tcp: &TcpStream) {
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
        let mut conn = lock(conn);
        // Fails only once the connection is closing: nothing more can be sent.
        if conn.send_text(text.to_owned()).is_err() || !flush_or_shut_down(tcp, &mut conn) {
            return;
        }
    }
    let mut conn = lock(conn);
    if conn.close(CloseCode::NORMAL, "").is_ok() {
        flush_or_shut_down(tcp, &mut conn);
    }
}

/// The heartbeat thread: a ping every `every`, until the connection is closing.
fn send_heartbeats(conn: &Mutex<Connection>, tcp: &TcpStream, every: Duration) {
    for n in 1u64.. {
        thread::sleep(every);
        let mut conn = lock(conn);
        if conn.ping(format!("heartbeat {n}")).is_err() || !flush_or_shut_down(tcp, &mut conn) {
            return;
        }
    }
}

/// The reader thread (the main thread here): the drive loop. Returns once the transport can be
/// closed; `Err` carries the message to print.
fn read_until_closed(conn: &Mutex<Connection>, mut tcp: &TcpStream) -> Result<(), String> {
    let mut buf = vec![0u8; 64 << 10];
    let mut peer_close = None;
    loop {
        // With the lock: timers, events, writing the replies, the shutdown check, the deadline.
        let (events, written, done, deadline) = {
            let mut conn = lock(conn);
            let now = Instant::now();
            if conn.poll_timeout().is_some_and(|at| at <= now) {
                // A failure is sticky: it is reported from `conn.error()` at the end.
                let _ = conn.handle_timeout(now);
            }
            let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
            // Written after taking the events: taking the peer's close queues our reply.
            let written = flush(tcp, &mut conn);
            let done = written.is_err() || conn.should_close_transport();
            (events, written, done, conn.poll_timeout())
        };
        // Without the lock: print.
        for event in events {
            match event {
                Event::Message(Message::Text(text)) => print_line(&text),
                Event::Message(Message::Binary(data)) => {
                    print_line(&format!("binary: {} bytes", data.len()));
                }
                Event::Pong(payload) => eprintln!("pong: {}", String::from_utf8_lossy(&payload)),
                Event::Close(frame) => peer_close = Some(frame),
                // Pings are answered by the core (the pong went out with `flush` above).
                _ => {}
            }
        }
        if done {
            let _ = tcp.shutdown(Shutdown::Both);
            return outcome(&lock(conn), written.err(), peer_close);
        }
        // Without the lock: wait for bytes, at most until the next deadline.
        let wait = deadline.map_or(MAX_READ_WAIT, |at| at.saturating_duration_since(Instant::now()));
        let wait = wait.clamp(Duration::from_millis(1), MAX_READ_WAIT);
        if let Err(e) = tcp.set_read_timeout(Some(wait)) {
            return outcome(&lock(conn), Some(e), peer_close);
        }
        match tcp.read(&mut buf) {
            // Errors are sticky in the connection: the next turn writes its close frame and
            // `outcome` reports it.
            Ok(0) => {
                let _ = lock(conn).receive_eof();
            }
            Ok(n) => {
                let _ = lock(conn).receive(&buf[..n]);
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tcp.shutdown(Shutdown::Both);
                return outcome(&lock(conn), Some(e), peer_close);
            }
        }
    }
}

/// How the connection ended: `Ok` after a clean close handshake with a normal code.
fn outcome(
    conn: &Connection,
    io_error: Option<io::Error>,
    peer_close: Option<Option<CloseFrame>>,
) -> Result<(), String> {
    if let Some(e) = conn.error() {
        return Err(format!("connection failed: {e} (close code {})", e.close_code()));
    }
    if let Some(e) = io_error {
        if conn.state() != State::Closed {
            return Err(format!("connection lost: {e}"));
        }
    }
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
