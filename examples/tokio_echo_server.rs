//! An echo server on tokio: a multi-thread runtime, one task per connection, each task driving
//! one [`wscore::tokio::WebSocketStream`] with a `tokio::select!` over the next message and an
//! application command channel.
//!
//! ```text
//! cargo run --release --example tokio_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Every text and binary message is echoed unchanged (messages up to 64 MiB); pings are
//! answered and close handshakes completed by the core. Replies are batched: echoes are only
//! queued ([`feed`](wscore::tokio::WebSocketStream::feed)), and everything one read produces
//! is written with as few (vectored) socket writes as the kernel allows once the received
//! events run out. On Ctrl-C every connection is sent a command over a `watch` channel they all
//! share (one channel, not one per connection: an idle connection costs only its task and its
//! socket) and closes with 1001 (going away); a second Ctrl-C exits at once.
//!
//! The example only moves messages and commands between the application and the driver; all
//! protocol logic (framing, pongs, the close handshake, timeouts) lives in `wscore`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use wscore::tokio::WebSocketStream;
use wscore::{Accept, CloseCode, Config, DriverError, Message, Reject};

/// How long shutdown waits for the close handshakes (the core gives up after its close timeout).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What the application can ask the connection tasks to do.
#[derive(Debug, Clone, Copy)]
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
        // Echoes of up to 4 MiB go out as one frame, as the peers in bench-e2e send them (a
        // pong waits behind at most that much; 64 KiB frames by default). Nothing is copied
        // either way; the client reads one header instead of one per 64 KiB: 4 x 1 MiB echoes
        // 1.18x with one in flight, 1.00-1.11x with eight (bench-e2e/ab.sh, 6 runs each).
        .write_fragment_size(4 << 20)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);

    let mut tasks = JoinSet::new();
    let (commands, command) = watch::channel(None);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(serve(tcp, peer, command.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = tasks.join_next() => {
                if let Err(e) = done {
                    eprintln!("connection task failed: {e}");
                }
            }
            result = &mut ctrl_c => {
                result?;
                break;
            }
        }
    }

    drop(listener);
    eprintln!("shutting down: closing {} connection(s) with 1001", tasks.len());
    let _ = commands.send(Some(Command::Close { code: CloseCode::GOING_AWAY, reason: "server shutting down" }));
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
///
/// (A plain function returning an `async move` block rather than an `async fn`: an `async fn`
/// keeps a second copy of its arguments in its state. Futures are as large as everything alive
/// across their awaits, for the connection's whole life: this one is what an idle connection
/// costs, besides its socket.)
#[allow(clippy::manual_async_fn)] // on purpose, see above
fn serve(
    mut tcp: TcpStream,
    peer: SocketAddr,
    mut commands: watch::Receiver<Option<Command>>,
) -> impl Future<Output = ()> {
    async move {
        // Replies are already batched; don't let Nagle hold back the last segment.
        let _ = tcp.set_nodelay(true);
        // The upgrade (over a borrowed stream, so a shutdown meanwhile can still answer 503),
        // on the heap: its state is needed only until it is done.
        let mut upgraded = Box::pin(async {
            tokio::select! {
                ws = WebSocketStream::accept_with(&mut tcp, config(), |_request| Ok(Accept::new())) => ws.map(Some),
                _ = commands.changed() => Ok(None),
            }
        })
        .await;
        // Driven where it lies (moving it out would keep two copies alive in the task).
        let result = match &mut upgraded {
            Ok(Some(ws)) => drive(ws, &mut commands).await,
            Err(_) => upgraded.map(drop),
            Ok(None) => {
                let _ = tcp.write_all(&Reject::new(503).body("shutting down\n").into_bytes()).await;
                let _ = tcp.shutdown().await;
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            Err(DriverError::Handshake(e)) => eprintln!("{peer}: upgrade failed: {e} (HTTP {})", e.status()),
            Err(DriverError::Connection(e)) => eprintln!("{peer}: {e} (close code {})", e.close_code()),
            Err(e) => eprintln!("{peer}: {e} (close code {})", CloseCode::ABNORMAL),
        }
    }
}

/// The command just sent (copied out: the channel's lock must not be held across an await).
fn latest(commands: &mut watch::Receiver<Option<Command>>) -> Option<Command> {
    *commands.borrow_and_update()
}

/// What woke the connection task up.
enum Wakeup {
    Message(Message),
    Command(Command),
}

/// Echoes messages until the connection ends; closes on command. The driver writes the queued
/// echoes (and the automatic replies) whenever it has no more received events to hand out.
async fn drive(
    ws: &mut WebSocketStream<&mut TcpStream>,
    commands: &mut watch::Receiver<Option<Command>>,
) -> Result<(), DriverError> {
    let mut closing = false;
    loop {
        // Only waiting happens in the select; acting happens after it, so the state of the
        // two is never alive at once. Messages first: the wait for a command is polled only
        // while no message is ready (and tokio's cooperative budget makes even a flood of
        // messages yield now and then, so a command is never held off for long).
        let wakeup = tokio::select! {
            biased;
            // Cancel-safe: losing the race to a command loses no message.
            message = ws.next_message() => match message? {
                Some(message) => Wakeup::Message(message),
                None => return Ok(()),
            },
            Ok(()) = commands.changed(), if !closing => match latest(commands) {
                Some(command) => Wakeup::Command(command),
                None => continue,
            },
        };
        match wakeup {
            Wakeup::Message(message) => match ws.feed(message).await {
                // Fails only once a close was sent: the peer's late messages are not echoed.
                Err(DriverError::Send(_)) => {}
                result => result?,
            },
            Wakeup::Command(Command::Close { code, reason }) => {
                closing = true;
                match ws.close(code, reason).await {
                    // The peer closed first: the handshake is already under way.
                    Err(DriverError::Send(_)) => {}
                    result => result?,
                }
            }
        }
    }
}
