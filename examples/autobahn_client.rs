//! A client for the Autobahn TestSuite's `fuzzingserver`: runs every case it offers, echoing
//! every message, then asks it to write its reports.
//!
//! ```text
//! wstest -m fuzzingserver -s spec.json -u 0      # listening on ws://127.0.0.1:9001
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 AGENT
//! ```
//!
//! What it shows: the client handshake ([`ClientHandshake`] built from a URL with
//! [`ClientRequest::from_url`]) and the drive loop from the crate docs on a blocking
//! `std::net::TcpStream`, with the read timeout taken from
//! [`poll_timeout`](wscore::Connection::poll_timeout) and the zero-copy receive path
//! ([`receive_buffer`](wscore::Connection::receive_buffer) /
//! [`commit_received`](wscore::Connection::commit_received)). After the close handshake the
//! client waits for the server to close the TCP connection first (RFC 6455 §7.1.1): the
//! connection asks for the transport to be shut down on end of stream, or when the close
//! deadline passes.
//!
//! Steps: read the case count from `/getCaseCount` (one text message), run
//! `/runCase?case=N&agent=AGENT` for N in 1..=count, then close `/updateReports?agent=AGENT`
//! normally. One line is printed per case; the exit status is 0 once all ran.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use wscore::{ClientHandshake, ClientRequest, Config, Connection, Event, Instant, Message, SendError};

type BoxError = Box<dyn Error + Send + Sync>;

/// How long to wait for the server's handshake response.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session does once the connection is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// Read messages without answering them until the server closes.
    Listen,
    /// Echo every message back until the server closes.
    Echo,
    /// Close normally right away.
    Close,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wscore".into());
    let base = base.trim_end_matches('/');

    let count = match session(&format!("{base}/getCaseCount"), Job::Listen) {
        Ok(Some(text)) => match text.trim().parse::<u32>() {
            Ok(count) => count,
            Err(_) => {
                eprintln!("getCaseCount: not a number: {text:?}");
                return ExitCode::FAILURE;
            }
        },
        Ok(None) => {
            eprintln!("getCaseCount: no message received");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("getCaseCount: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match session(&url, Job::Echo) {
            Ok(_) => println!("case {case}/{count}: ok"),
            Err(err) => println!("case {case}/{count}: connection failed: {err}"),
        }
    }

    match session(&format!("{base}/updateReports?agent={agent}"), Job::Close) {
        Ok(_) => {
            println!("reports updated");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("updateReports: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to `url`, does `job` and runs the connection until the transport is closed.
/// Returns the first text message received (the case count, for `/getCaseCount`).
fn session(url: &str, job: Job) -> Result<Option<String>, BoxError> {
    let request = ClientRequest::from_url(url)?;
    if request.is_secure() {
        return Err("wss:// needs TLS, which this example does not do".into());
    }
    let mut tcp = TcpStream::connect((request.host(), request.port()))?;
    tcp.set_nodelay(true)?;

    // The upgrade.
    let mut handshake = ClientHandshake::new(request, Config::unlimited());
    tcp.write_all(&handshake.request_bytes())?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    let mut conn = loop {
        let n = tcp.read(&mut buf)?;
        if n == 0 {
            handshake.receive_eof()?;
            return Err("connection closed during the handshake".into());
        }
        if let Some(conn) = handshake.receive(&buf[..n])? {
            break conn;
        }
    };

    if job == Job::Close {
        conn.close_normal()?;
    }
    drive(&mut tcp, &mut conn, job == Job::Echo)
}

/// The drive loop, blocking: write, pull events (echoing messages if `echo`), obey the shutdown request,
/// read with a timeout from the next deadline.
fn drive(tcp: &mut TcpStream, conn: &mut Connection, echo: bool) -> Result<Option<String>, BoxError> {
    let mut first_text = None;
    loop {
        // 1. Write everything queued.
        while !conn.transmit().is_empty() {
            match tcp.write(conn.transmit()) {
                Ok(0) => return Err("the transport accepts no more bytes".into()),
                Ok(n) => conn.advance_transmit(n),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }

        // 2. Events. Echoes and the close reply are queued: write them before reading.
        let mut any = false;
        while let Some(event) = conn.poll_event() {
            any = true;
            if let Event::Message(message) = event {
                if let (None, Message::Text(text)) = (&first_text, &message) {
                    first_text = Some(text.as_str().to_owned());
                }
                if !echo {
                    continue;
                }
                match conn.send(message) {
                    // Closed: the connection failed or is closing; nothing more to echo.
                    Ok(()) | Err(SendError::Closed) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if any {
            continue;
        }

        // 3. Shut down when told to.
        if conn.should_close_transport() {
            let _ = tcp.shutdown(Shutdown::Both);
            return match conn.error() {
                Some(err) => Err(err.clone().into()),
                None => Ok(first_text),
            };
        }

        // 4. Timers: fire a due deadline, otherwise read until the next one. Input errors are
        // sticky in the connection and reported by `conn.error()` above.
        let now = Instant::now();
        let timeout = match conn.poll_timeout() {
            Some(at) if at <= now => {
                let _ = conn.handle_timeout(now);
                continue;
            }
            Some(at) => Some((at - now).max(Duration::from_millis(1))),
            None => None,
        };
        tcp.set_read_timeout(timeout)?;
        match tcp.read(conn.receive_buffer()) {
            Ok(0) => {
                let _ = conn.commit_received(0);
                let _ = conn.receive_eof();
            }
            Ok(n) => {
                let _ = conn.commit_received(n);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                let _ = conn.commit_received(0);
            }
            // A reset ends the stream like a FIN does; whether that was clean is the
            // connection's call (it is after a completed close handshake).
            Err(err) if matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                let _ = conn.commit_received(0);
                let _ = conn.receive_eof();
            }
            Err(err) => return Err(err.into()),
        }
    }
}
