//! An echo server behind a login cookie, on tokio: the upgrade is refused with `401` and a JSON
//! body unless the request carries a valid `session` cookie, messages are capped at 256 KiB,
//! and everything else is echoed.
//!
//! ```text
//! cargo run --example auth_echo_server -- [ADDR] [--session TOKEN]...
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:9002` (port 0 picks a free port); the first line printed is
//! `listening on ADDR` with the address actually bound. `--session TOKEN` adds a valid session
//! (repeatable; without any, the only valid session is `demo`). Try it with the JSON client:
//!
//! ```text
//! cargo run --example cookie_json_client -- ws://127.0.0.1:9002/echo --cookie session=demo
//! ```
//!
//! What it shows:
//!
//! - **checking the upgrade request** in the callback of
//!   [`WebSocketStream::accept_with`]: the `Cookie` header (RFC 6265 §4.2) is parsed and a
//!   request without a valid `session` is refused with [`Reject`]: status 401, a
//!   `Content-Type: application/json` header and a body, `{"error":"login required"}` (no
//!   cookie) or `{"error":"invalid session"}`; the client's driver reports that response as
//!   [`HandshakeError::Rejected`](wscore::HandshakeError::Rejected);
//! - **a message size cap**: [`Config::max_message_size`] of 256 KiB. A larger message fails
//!   the connection with close code 1009 (too big) as soon as a frame header announces more;
//!   the core queues the close frame and the driver writes it, then reads and discards what the
//!   client still sends until it closes too (a lingering close, bounded by
//!   [`Config::close_timeout`]), so that the client gets to read that frame, and only then
//!   reports [`Error::Protocol`];
//! - **a graceful shutdown**: on Ctrl-C every connection is closed with 1001 (going away), so
//!   clients know to reconnect later; a second Ctrl-C exits at once.
//!
//! Every connection prints one line when it is accepted or refused and one when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use wscore::tokio::WebSocketStream;
use wscore::{Accept, CloseCode, Config, DriverError, Error, Event, Reject, Request};

/// The largest message accepted.
const MAX_MESSAGE: usize = 256 << 10;
/// How long shutdown waits for the close handshakes (the core gives up after its close timeout).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
const USAGE: &str = "usage: auth_echo_server [ADDR] [--session TOKEN]...";

fn config() -> Config {
    Config::default().max_message_size(MAX_MESSAGE)
}

#[tokio::main]
async fn main() {
    let (addr, sessions) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(bound) => println!("listening on {bound}"),
        Err(e) => println!("listening on {addr} ({e})"),
    }
    let sessions: Arc<[String]> = sessions.into();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(serve(tcp, peer, Arc::clone(&sessions), shutdown_rx.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = tasks.join_next() => {}
            _ = &mut ctrl_c => break,
        }
    }
    drop(listener);
    println!("shutting down: closing {} connection(s) with 1001", tasks.len());
    let _ = shutdown_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        result = tokio::time::timeout(SHUTDOWN_GRACE, drain) => {
            if result.is_err() {
                println!("gave up waiting for {} connection(s)", tasks.len());
            }
        }
        _ = tokio::signal::ctrl_c() => println!("second Ctrl-C: exiting now"),
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<(String, Vec<String>), String> {
    let mut addr = None;
    let mut sessions = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--session" => sessions.push(args.next().ok_or("--session needs a token")?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if sessions.is_empty() {
        sessions.push("demo".to_owned());
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:9002".to_owned()), sessions))
}

/// The value of the `session` cookie, from every `Cookie` header of the request
/// (`name=value` pairs separated by `; `, RFC 6265 §4.2.1).
fn session_cookie(request: &Request) -> Option<String> {
    request
        .headers()
        .get_all("Cookie")
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "session")
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// A 401 answer with a JSON body saying why.
fn unauthorized(error: &str) -> Reject {
    Reject::new(401)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .body(format!("{{\"error\":\"{error}\"}}"))
}

/// One connection: the upgrade with the cookie check, then echoes until the end.
async fn serve(tcp: TcpStream, peer: SocketAddr, sessions: Arc<[String]>, mut shutdown: watch::Receiver<bool>) {
    let _ = tcp.set_nodelay(true);
    let mut session = None;
    let upgrade = WebSocketStream::accept_with(tcp, config(), |request| match session_cookie(request) {
        None => Err(unauthorized("login required")),
        Some(token) if !sessions.contains(&token) => Err(unauthorized("invalid session")),
        Some(token) => {
            session = Some(token);
            Ok(Accept::new())
        }
    });
    let mut ws = match upgrade.await {
        Ok(ws) => ws,
        Err(DriverError::Handshake(wscore::HandshakeError::Rejected(response))) => {
            let body = String::from_utf8_lossy(&response.body);
            println!("{peer}: refused: HTTP {} {body}", response.status);
            return;
        }
        Err(e) => {
            println!("{peer}: upgrade failed: {e}");
            return;
        }
    };
    println!("{peer}: accepted, session {}", session.as_deref().unwrap_or("?"));
    match echo(&mut ws, &mut shutdown).await {
        Ok(Some(frame)) => println!("{peer}: closed by the client: {} {:?}", frame.0, frame.1),
        Ok(None) => println!("{peer}: closed"),
        // The driver lingered already: the client had the close frame before this returned.
        Err(DriverError::Connection(e @ Error::Protocol(_))) => {
            println!("{peer}: failed: {e} (sent close code {})", e.close_code());
        }
        Err(e) => println!("{peer}: ended: {e}"),
    }
}

/// Echoes messages until the connection is over; closes with 1001 once `shutdown` turns true.
/// Returns the client's close code and reason if it closed first.
async fn echo(
    ws: &mut WebSocketStream<TcpStream>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(CloseCode, String)>, DriverError> {
    let mut client_close = None;
    let mut closing = false;
    loop {
        tokio::select! {
            // Cancel-safe: losing the race to the shutdown signal loses no event.
            event = ws.next_event() => match event? {
                Some(Event::Message(message)) => match ws.feed(message).await {
                    // Fails only once a close was sent: the client's late messages are not echoed.
                    Err(DriverError::Send(_)) => {}
                    result => result?,
                },
                Some(Event::Close(frame)) if !closing => {
                    client_close = frame.map(|f| (f.code, f.reason.as_str().to_owned()));
                }
                Some(_) => {} // pings are answered by the core; pongs
                None => return Ok(client_close),
            },
            changed = shutdown.changed(), if !closing => {
                closing = true;
                if changed.is_ok() {
                    match ws.close(CloseCode::GOING_AWAY, "server shutting down").await {
                        // The client closed first: the handshake is already under way.
                        Err(DriverError::Send(_)) => {}
                        result => result?,
                    }
                }
            }
        }
    }
}
