//! A tokio client that logs in with a cookie, exchanges JSON messages, and reconnects with
//! capped exponential backoff and jitter whenever the server goes away, picking its work up
//! where it left off.
//!
//! ```text
//! cargo run --example cookie_json_client -- ws://HOST:PORT/PATH --cookie session=demo [--count N] [--interval MS] [--max-backoff MS]
//! ```
//!
//! It sends `N` requests (default 10) one at a time, `{"id":1,"text":"message 1"}` and so on,
//! `--interval` milliseconds apart (default 200), and waits for each answer: a JSON message with
//! the same `id` and `text` (the `auth_echo_server` example echoes it). It prints `sent ...`
//! and `ack ID` lines, and `done: N acknowledged, R reconnect(s)` at the end; then it closes
//! with 1000 and exits 0. Ctrl-C closes with 1000 and exits 0 early (`stopped: ...`).
//!
//! When the connection fails (the server was killed, restarted, closed with 1001, a keepalive
//! ping went unanswered) or cannot be opened (connection refused), it prints `connection lost:
//! ...` or `connect failed: ...` and retries after `backoff: attempt A, waiting W ms (cap C ms)`:
//! the cap starts at 100 ms and doubles with every failed attempt up to `--max-backoff`
//! (default 5000), and the wait is drawn between half the cap and the cap ("equal jitter"), so a
//! crowd of clients does not reconnect in lockstep. The backoff starts over once a request is
//! answered on the new connection. The request that was in flight is sent again (at least
//! once delivery: the server may see it twice).
//!
//! It gives up (exit status 1) when retrying cannot help: the upgrade is refused (a 401 for a
//! missing or wrong cookie, whose JSON body is printed), or the server closes with a code that
//! says the request itself is wrong (1002, 1003, 1007, 1008, 1009). Exit status 2 means a bad
//! command line.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use wscore::tokio::{MaybeTlsStream, WebSocketStream};
use wscore::{ClientRequest, CloseCode, CloseFrame, Config, DriverError, Event, HandshakeError, Message};

const USAGE: &str = "usage: cookie_json_client ws://HOST:PORT/PATH [--cookie NAME=VALUE]... [--count N] \
                     [--interval MS] [--max-backoff MS]";
/// The first backoff cap; it doubles with every failed attempt.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// A request, and (echoed) its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Request {
    id: u64,
    text: String,
}

#[derive(Debug)]
struct Options {
    url: String,
    cookies: Vec<String>,
    count: u64,
    interval: Duration,
    max_backoff: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        url: String::new(),
        cookies: Vec::new(),
        count: 10,
        interval: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
    };
    let number = |name: &str, value: Option<String>| -> Result<u64, String> {
        let value = value.ok_or(format!("{name} needs a value"))?;
        value.parse().map_err(|_| format!("{name} {value:?}: not a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cookie" => {
                let cookie = args.next().ok_or("--cookie needs NAME=VALUE")?;
                if !cookie.contains('=') {
                    return Err(format!("--cookie {cookie:?}: expected NAME=VALUE"));
                }
                options.cookies.push(cookie);
            }
            "--count" => options.count = number("--count", args.next())?,
            "--interval" => options.interval = Duration::from_millis(number("--interval", args.next())?),
            "--max-backoff" => {
                options.max_backoff = Duration::from_millis(number("--max-backoff", args.next())?).max(INITIAL_BACKOFF);
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if options.url.is_empty() => options.url = arg,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if options.url.is_empty() {
        return Err("missing URL".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let options = match parse_args(args.into_iter()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut request = match ClientRequest::from_url(&options.url) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("{}: {e}\n{USAGE}", options.url);
            std::process::exit(2);
        }
    };
    if !options.cookies.is_empty() {
        // One `Cookie` header with every pair (RFC 6265 §5.4).
        request = request.header("Cookie", options.cookies.join("; "));
    }
    // Ctrl-C asks `run` to stop: it closes the connection with 1000 first.
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            println!("interrupted: closing");
            let _ = stop_tx.send(true);
        }
        // Keeps the sender alive, so `stop` never reports a dropped channel.
        std::future::pending::<()>().await;
    });
    match run(&options, &request, stop).await {
        Ok(()) => {}
        Err(message) => {
            println!("giving up: {message}");
            std::process::exit(1);
        }
    }
}

/// Resolves once Ctrl-C was pressed.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// Why a connection ended early.
enum Ended {
    /// Worth trying again on a new connection.
    Retry(String),
    /// Retrying cannot help.
    Fatal(String),
    /// Ctrl-C.
    Stopped,
}

/// Sends every request, reconnecting as needed, until all are answered or Ctrl-C. `Err` when
/// retrying cannot help.
async fn run(options: &Options, request: &ClientRequest, mut stop: watch::Receiver<bool>) -> Result<(), String> {
    let mut next_id = 1;
    let mut backoff = Backoff::new(options.max_backoff);
    let mut reconnects = 0u64;
    let mut connected_before = false;
    loop {
        println!("connecting to {} (attempt {})", options.url, backoff.attempt + 1);
        let config = Config::default()
            // Notices a server that vanished without closing the TCP connection.
            .keepalive_interval(Some(Duration::from_secs(5)))
            .keepalive_timeout(Duration::from_secs(5));
        let connect = tokio::select! {
            connect = WebSocketStream::connect_with(request.clone(), config) => connect,
            () = stopped(&mut stop) => return Ok(()),
        };
        let mut ws = match connect {
            Ok(ws) => ws,
            Err(DriverError::Handshake(HandshakeError::Rejected(response))) => {
                let body = String::from_utf8_lossy(&response.body).into_owned();
                return Err(format!("upgrade refused: HTTP {} {}: {body}", response.status, response.reason));
            }
            Err(e) => {
                println!("connect failed: {e}");
                if !backoff.wait(&mut stop).await {
                    return Ok(());
                }
                continue;
            }
        };
        if connected_before {
            reconnects += 1;
            println!("reconnected; resuming at request {next_id}");
        } else {
            println!("connected");
        }
        connected_before = true;
        match exchange(&mut ws, &mut next_id, options, &mut backoff, &mut stop).await {
            Ok(()) => println!("done: {} acknowledged, {reconnects} reconnect(s)", next_id - 1),
            Err(Ended::Stopped) => println!("stopped: {} acknowledged, {reconnects} reconnect(s)", next_id - 1),
            Err(Ended::Fatal(message)) => return Err(message),
            Err(Ended::Retry(message)) => {
                println!("connection lost: {message}");
                if !backoff.wait(&mut stop).await {
                    return Ok(());
                }
                continue;
            }
        }
        // A close handshake that fails changes nothing: the work is over.
        if let Err(e) = close(&mut ws).await {
            println!("close failed: {e}");
        }
        return Ok(());
    }
}

/// Sends requests from `next_id` on, one at a time, until all are answered, the connection
/// ends or Ctrl-C. `next_id` moves past each answered request.
async fn exchange(
    ws: &mut WebSocketStream<MaybeTlsStream>,
    next_id: &mut u64,
    options: &Options,
    backoff: &mut Backoff,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Ended> {
    let retry = |e: DriverError| Ended::Retry(e.to_string());
    while *next_id <= options.count {
        let request = Request { id: *next_id, text: format!("message {next_id}") };
        let json = serde_json::to_string(&request).map_err(|e| Ended::Fatal(e.to_string()))?;
        println!("sent {json}");
        ws.send(Message::Text(json.into())).await.map_err(retry)?;
        loop {
            // Cancel-safe: a stop in the middle of a read loses nothing that matters.
            let event = tokio::select! {
                event = ws.next_event() => event.map_err(retry)?,
                () = stopped(stop) => return Err(Ended::Stopped),
            };
            let message = match event {
                Some(Event::Message(message)) => message,
                Some(Event::Close(frame)) => {
                    // Reading on sends our reply and waits for the server to close the TCP
                    // connection (the close handshake); its outcome changes nothing here.
                    while let Ok(Some(_)) = ws.next_event().await {}
                    return Err(server_closed(frame));
                }
                Some(_) => continue, // pings (answered already), pongs
                None => return Err(Ended::Retry("the server closed the connection".into())),
            };
            match serde_json::from_slice::<Request>(message.as_bytes()) {
                Ok(answer) if answer == request => break,
                Ok(answer) => println!("ignored an answer to another request: id {}", answer.id),
                Err(e) => println!("ignored a message that is not a JSON answer: {e}"),
            }
        }
        println!("ack {}", request.id);
        backoff.reset();
        *next_id += 1;
        if *next_id <= options.count {
            tokio::select! {
                () = tokio::time::sleep(options.interval) => {}
                () = stopped(stop) => return Err(Ended::Stopped),
            }
        }
    }
    Ok(())
}

/// What the server's close frame means for retrying.
fn server_closed(frame: Option<CloseFrame>) -> Ended {
    let Some(frame) = frame else {
        return Ended::Retry("the server closed without a code".into());
    };
    let message = format!("the server closed with {} {:?}", frame.code, frame.reason.as_str());
    match frame.code {
        // The request itself is wrong: sending it again gets the same answer.
        CloseCode::PROTOCOL
        | CloseCode::UNSUPPORTED
        | CloseCode::INVALID_PAYLOAD
        | CloseCode::POLICY
        | CloseCode::TOO_BIG => Ended::Fatal(message),
        // Going away, restarting, overloaded, an internal error...: try again later.
        _ => Ended::Retry(message),
    }
}

/// Closes with 1000 and waits for the server's reply and the end of the connection.
async fn close(ws: &mut WebSocketStream<MaybeTlsStream>) -> Result<(), DriverError> {
    ws.close(CloseCode::NORMAL, "done").await?;
    while ws.next_event().await?.is_some() {}
    println!("closed");
    Ok(())
}

/// Capped exponential backoff with equal jitter.
struct Backoff {
    /// Failed attempts since the last success.
    attempt: u32,
    max: Duration,
    /// Jitter source: SplitMix64 seeded from the process's random hash keys (no crate needed;
    /// the jitter only has to differ between clients, not resist prediction).
    state: u64,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Self { attempt: 0, max, state: hasher.finish() }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps between half the current cap and the cap, then doubles the cap (up to `max`).
    /// `false` if Ctrl-C interrupted the wait.
    async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let cap = INITIAL_BACKOFF.saturating_mul(1 << self.attempt.min(20)).min(self.max);
        let half = cap / 2;
        let jitter_ms = self.next_u64() % (half.as_millis() as u64 + 1);
        let wait = half + Duration::from_millis(jitter_ms);
        self.attempt += 1;
        println!("backoff: attempt {}, waiting {} ms (cap {} ms)", self.attempt, wait.as_millis(), cap.as_millis());
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = stopped(stop) => false,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
