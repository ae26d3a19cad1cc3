//! The tokio driver (`WebSocketStream`, and its `ReadHalf`/`WriteHalf`) against a raw TCP peer
//! that fails at the transport level: it resets the connection in the middle of a frame,
//! half-closes it (in the middle of a frame, and after a complete message), stops reading
//! while we send (with keepalive, and with only the write-stall deadline), stops answering
//! altogether, or keeps sending after a frame we refused (the lingering close).
//!
//! Each test asserts the exact error (what happened), that reading afterwards returns the end
//! (`Ok(None)`, no hang), and that the driver let go of the connection: buffers emptied, the
//! socket shut down (the peer sees the end of the stream; writing to it fails). Deadlines come
//! from short `Config` timeouts on tokio's real clock (the peer is a real socket in another
//! thread); nothing asserts on elapsed time, and a call that does not return within
//! [`HANG_GUARD`] fails the test instead of hanging it.

#![cfg(feature = "tokio")]

mod harness;

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::thread;
use std::time::Duration;

use harness::raw_peer::{
    CHUNK, HANG_GUARD, LINGER_TEST_LIMIT, SEND_BUFFER, assert_let_go, assert_only_close, frames_of, half_text_frame,
    keepalive_failure_frames, short_deadlines, spawn_mute_client, spawn_mute_server, spawn_raw_server,
    spawn_sending_client, spawn_silent_client, spawn_stalled_peer, violation_then_more,
};
use harness::unmasked;
use tokio::net::TcpStream;
use wscore::tokio::{ReadHalf, WebSocketStream, WriteHalf};
use wscore::{Accept, ClientRequest, CloseCode, Config, DriverError, Error, Event, Message, State};

/// Awaits `future`; fails the test if it has not finished within [`HANG_GUARD`].
async fn no_hang<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: hung for {HANG_GUARD:?}"),
    }
}

/// Waits for a peer thread without blocking the runtime.
async fn join<T: Send + 'static>(peer: thread::JoinHandle<T>) -> T {
    tokio::task::spawn_blocking(move || peer.join().expect("peer thread")).await.expect("join task")
}

/// Our end of the connection: the whole stream, or the split halves.
enum Ours {
    Whole(Box<WebSocketStream<TcpStream>>),
    Split(ReadHalf<TcpStream>, WriteHalf<TcpStream>),
}

/// Our end and a second handle of its socket, to see whether the driver shut it down.
struct Under {
    ours: Ours,
    probe: std::net::TcpStream,
}

impl Under {
    fn new(ws: WebSocketStream<TcpStream>, probe: std::net::TcpStream, split: bool) -> Self {
        let ours = if split {
            let (read, write) = ws.split();
            Ours::Split(read, write)
        } else {
            Ours::Whole(Box::new(ws))
        };
        Self { ours, probe }
    }

    /// A socket to `url` as tokio's, and a second handle of it.
    fn socket(url: &str, send_buffer: Option<usize>) -> (ClientRequest, TcpStream, std::net::TcpStream) {
        let request = ClientRequest::from_url(url).expect("URL");
        let tcp = std::net::TcpStream::connect((request.host(), request.port())).expect("connect");
        if let Some(size) = send_buffer {
            socket2::SockRef::from(&tcp).set_send_buffer_size(size).expect("SO_SNDBUF");
        }
        let probe = tcp.try_clone().expect("clone the socket handle");
        tcp.set_nonblocking(true).expect("non-blocking");
        (request, TcpStream::from_std(tcp).expect("register with tokio"), probe)
    }

    async fn connect(url: &str, config: Config, split: bool, send_buffer: Option<usize>) -> Self {
        let (request, tcp, probe) = Self::socket(url, send_buffer);
        let ws = WebSocketStream::client(tcp, request, config).await.expect("upgrade");
        Self::new(ws, probe, split)
    }

    fn kind(&self) -> &'static str {
        match self.ours {
            Ours::Whole(_) => "WebSocketStream",
            Ours::Split(..) => "ReadHalf/WriteHalf",
        }
    }

    async fn next_event(&mut self) -> Result<Option<Event>, DriverError> {
        match &mut self.ours {
            Ours::Whole(ws) => ws.next_event().await,
            Ours::Split(read, _) => read.next_event().await,
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), DriverError> {
        match &mut self.ours {
            Ours::Whole(ws) => ws.send(message).await,
            Ours::Split(_, write) => write.send(message).await,
        }
    }

    fn state(&self) -> State {
        match &self.ours {
            Ours::Whole(ws) => ws.connection().state(),
            Ours::Split(read, _) => read.state(),
        }
    }

    /// Reads until the first error or the end, ignoring events.
    async fn read_until_error(&mut self) -> Result<Option<Event>, DriverError> {
        loop {
            match self.next_event().await {
                Ok(Some(_)) => {}
                other => return other,
            }
        }
    }

    /// The connection failed and the driver let go of everything: the end is reported again
    /// (no hang), the receive and send buffers are empty, and the socket is shut down (a write
    /// to it fails).
    async fn assert_released(&mut self) {
        let kind = self.kind();
        let end = no_hang("the end, reported again", self.next_event()).await;
        assert!(matches!(end, Ok(None)), "{kind}: {end:?}");
        let conn = match &self.ours {
            Ours::Whole(ws) => Some(ws.connection()),
            Ours::Split(..) => None,
        };
        assert_let_go(kind, self.state(), conn, &self.probe);
    }
}

// ----- (1) the peer resets the connection in the middle of a frame -----

#[tokio::test]
async fn peer_resetting_mid_frame_is_an_io_error_and_the_end() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&half_text_frame(100, 20));
            peer.reset();
        });
        let mut under = Under::connect(&url, Config::default(), split, None).await;
        let kind = under.kind();
        under.send(Message::Text("ready".into())).await.expect("send ready");
        match no_hang("read after a reset", under.next_event()).await {
            Err(DriverError::Io(e)) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{kind}: {e}");
                assert!(e.to_string().starts_with("Connection reset by peer"), "{kind}: {e}");
            }
            other => panic!("{kind}: expected the reset, got {other:?}"),
        }
        join(peer).await;
        under.assert_released().await;
    }
}

// ----- (2) the peer half-closes -----

#[tokio::test]
async fn peer_half_closing_mid_frame_is_an_unexpected_eof() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&half_text_frame(100, 20));
            peer.half_close();
            // Whatever we send from now on, then the end of the stream.
            peer.read_to_end()
        });
        let mut under = Under::connect(&url, Config::default(), split, None).await;
        let kind = under.kind();
        under.send(Message::Text("ready".into())).await.expect("send ready");
        match no_hang("read after a half-close", under.next_event()).await {
            Err(DriverError::Connection(e @ Error::UnexpectedEof)) => assert_eq!(
                DriverError::Connection(e).to_string(),
                "connection failed: connection closed by the peer without a close handshake"
            ),
            other => panic!("{kind}: expected an unexpected EOF, got {other:?}"),
        }
        under.assert_released().await;
        // The stream ended: nothing can be answered any more, so nothing was sent (no close
        // frame) before the driver shut the socket down, which the peer sees as the end.
        let (rest, end) = join(peer).await;
        assert_eq!((rest, end.map_err(|e| e.kind())), (vec![], Ok(())), "{kind}");
    }
}

#[tokio::test]
async fn peer_half_closing_after_a_message_delivers_it_then_fails() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&unmasked(0x81, b"last words"));
            peer.half_close();
            peer.read_to_end()
        });
        let mut under = Under::connect(&url, Config::default(), split, None).await;
        let kind = under.kind();
        under.send(Message::Text("ready".into())).await.expect("send ready");
        let first = no_hang("the message before the half-close", under.next_event()).await;
        assert!(
            matches!(first, Ok(Some(Event::Message(Message::Text(ref t)))) if t.as_str() == "last words"),
            "{kind}: {first:?}"
        );
        let second = no_hang("read after a half-close", under.next_event()).await;
        assert!(matches!(second, Err(DriverError::Connection(Error::UnexpectedEof))), "{kind}: {second:?}");
        under.assert_released().await;
        let (rest, end) = join(peer).await;
        assert_eq!((rest, end.map_err(|e| e.kind())), (vec![], Ok(())), "{kind}");
    }
}

// ----- (3) the peer stops reading while we send -----

/// Sends `CHUNK`-sized messages through `write` until a send fails; returns that error.
async fn fill_until_failure(write: &mut WriteHalf<TcpStream>) -> DriverError {
    for sent in 0..1024usize {
        if let Err(e) = write.send(Message::Binary(vec![sent as u8; CHUNK].into())).await {
            return e;
        }
    }
    panic!("the peer took 256 MiB without reading");
}

/// With the halves in two tasks, the read half's timer fails the connection at the keepalive
/// deadline, and the write half, stuck on a full socket, is let go.
#[tokio::test]
async fn peer_that_stops_reading_fails_the_split_connection_at_the_keepalive_deadline() {
    let (url, stop, peer) = spawn_stalled_peer();
    let mut under = Under::connect(&url, short_deadlines(), true, Some(SEND_BUFFER)).await;
    under.send(Message::Text("ready".into())).await.expect("send ready");
    let Ours::Split(read, mut write) = under.ours else { unreachable!() };
    let writer = tokio::spawn(async move {
        let error = fill_until_failure(&mut write).await;
        (error, write)
    });
    let mut read = read;
    let result = no_hang("reading while the writer is stuck", async {
        loop {
            match read.next_event().await {
                Ok(Some(_)) => {}
                other => return other,
            }
        }
    })
    .await;
    match result {
        Err(DriverError::Connection(e @ Error::KeepaliveTimeout)) => assert_eq!(
            DriverError::Connection(e).to_string(),
            "connection failed: no pong received before the keepalive deadline"
        ),
        other => panic!("expected the keepalive timeout, got {other:?}"),
    }
    let (_, write) = no_hang("the stuck writer is let go", writer).await.expect("writer task");
    let mut under = Under { ours: Ours::Split(read, write), probe: under.probe };
    under.assert_released().await;
    stop.send(()).expect("wake the peer");
    let (_, end) = join(peer).await;
    assert!(end.is_ok(), "the peer sees an orderly end of stream: {end:?}");
}

#[tokio::test]
async fn split_send_to_a_peer_that_stops_reading_reports_the_keepalive_timeout() {
    let (url, stop, peer) = spawn_stalled_peer();
    let mut under = Under::connect(&url, short_deadlines(), true, Some(SEND_BUFFER)).await;
    under.send(Message::Text("ready".into())).await.expect("send ready");
    let Ours::Split(mut read, mut write) = under.ours else { unreachable!() };
    let reader = tokio::spawn(async move { while let Ok(Some(_)) = read.next_event().await {} });
    let error = no_hang("sending to a peer that does not read", fill_until_failure(&mut write)).await;
    assert!(matches!(error, DriverError::Connection(Error::KeepaliveTimeout)), "{error:?}");
    reader.await.expect("reader task");
    stop.send(()).expect("wake the peer");
    let _ = join(peer).await;
}

#[tokio::test]
async fn send_to_a_peer_that_stops_reading_fails_at_the_keepalive_deadline() {
    let (url, stop, peer) = spawn_stalled_peer();
    let mut under = Under::connect(&url, short_deadlines(), false, Some(SEND_BUFFER)).await;
    under.send(Message::Text("ready".into())).await.expect("send ready");
    let error = no_hang("sending to a peer that does not read", async {
        for sent in 0..1024usize {
            if let Err(e) = under.send(Message::Binary(vec![sent as u8; CHUNK].into())).await {
                return e;
            }
        }
        panic!("the peer took 256 MiB without reading");
    })
    .await;
    assert!(matches!(error, DriverError::Connection(Error::KeepaliveTimeout)), "{error:?}");
    // Reading reports the failure (again) or the end, then the end.
    let _ = no_hang("the end", under.read_until_error()).await;
    under.assert_released().await;
    stop.send(()).expect("wake the peer");
    let _ = join(peer).await;
}

/// Without keepalive (the default), the write-stall deadline lets go of a peer that stops
/// reading: the send that runs into it reports `WriteTimeout` — for the whole stream, and for a
/// write half whose read half nobody polls (its own timer fires the deadline) — no close frame
/// is sent (the peer would not read it), and the socket is shut down.
#[tokio::test]
async fn peer_that_stops_reading_fails_the_connection_at_the_write_deadline() {
    for split in [false, true] {
        let (url, stop, peer) = spawn_stalled_peer();
        let config = Config::default().write_timeout(Some(Duration::from_millis(200)));
        let mut under = Under::connect(&url, config, split, Some(SEND_BUFFER)).await;
        let kind = under.kind();
        under.send(Message::Text("ready".into())).await.expect("send ready");
        let error = no_hang("sending to a peer that does not read", async {
            for sent in 0..1024usize {
                if let Err(e) = under.send(Message::Binary(vec![sent as u8; CHUNK].into())).await {
                    return e;
                }
            }
            panic!("{kind}: the peer took 256 MiB without reading");
        })
        .await;
        match error {
            DriverError::Connection(e @ Error::WriteTimeout) => assert_eq!(
                DriverError::Connection(e).to_string(),
                "connection failed: the peer read none of our output before the write deadline"
            ),
            other => panic!("{kind}: expected the write timeout, got {other:?}"),
        }
        // The sending side is shut down already, before anything reads.
        let write = (&under.probe).write(b"x");
        assert!(write.is_err(), "{kind}: the socket is shut down, yet a write went through: {write:?}");
        // Reading reports the failure (again), then the end.
        let read = no_hang("the end", under.read_until_error()).await;
        assert!(matches!(read, Err(DriverError::Connection(Error::WriteTimeout))), "{kind}: {read:?}");
        under.assert_released().await;
        stop.send(()).expect("wake the peer");
        let (bytes, end) = join(peer).await;
        assert!(end.is_ok(), "{kind}: the peer sees an orderly end of stream: {end:?}");
        // Whole frames, then the one cut off when the driver gave up: none is a close frame.
        let (frames, _cut) = harness::try_decode_frames(&bytes).expect("valid frames");
        assert!(frames.iter().all(|f| f.opcode() != wscore::OpCode::Close), "{kind}: no close frame");
    }
}

// ----- (4) the peer vanishes: connected, but it answers nothing -----

#[tokio::test]
async fn vanished_peer_fails_the_server_at_the_pong_deadline_with_1011() {
    for split in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (stop_tx, peer) = spawn_silent_client(listener.local_addr().expect("address"));
        let (tcp, _) = listener.accept().expect("accept");
        let probe = tcp.try_clone().expect("clone the socket handle");
        tcp.set_nonblocking(true).expect("non-blocking");
        let tcp = TcpStream::from_std(tcp).expect("register with tokio");
        let ws = WebSocketStream::accept_with(tcp, short_deadlines(), |_| Ok(Accept::new())).await.expect("upgrade");
        let mut under = Under::new(ws, probe, split);
        let kind = under.kind();
        match no_hang("reading from a vanished peer", under.read_until_error()).await {
            Err(DriverError::Connection(e @ Error::KeepaliveTimeout)) => {
                assert_eq!(e.close_code(), CloseCode::INTERNAL, "1011");
            }
            other => panic!("{kind}: expected the keepalive timeout, got {other:?}"),
        }
        under.assert_released().await;
        // What the peer would have seen: our keepalive ping, the failing close frame with 1011
        // and its reason, then the end of the stream.
        stop_tx.send(()).expect("wake the peer");
        let (bytes, end) = join(peer).await;
        assert!(end.is_ok(), "{kind}: {end:?}");
        assert_eq!(frames_of(&bytes), keepalive_failure_frames(), "{kind}");
    }
}

#[tokio::test]
async fn peer_vanishing_during_the_upgrade_times_out_both_ways() {
    let config = Config::default().handshake_timeout(Some(Duration::from_millis(100)));
    // We are the client: the server takes the request and never answers.
    let (url, stop_tx, silent_server) = spawn_mute_server();
    let request = ClientRequest::from_url(&url).expect("URL");
    let result = no_hang("connecting to a silent server", WebSocketStream::connect_with(request, config.clone())).await;
    match result {
        Err(DriverError::Handshake(e @ wscore::HandshakeError::Timeout)) => {
            assert_eq!(e.to_string(), "handshake not completed before the deadline");
        }
        other => panic!("expected the handshake timeout, got {other:?}"),
    }
    stop_tx.send(()).expect("release the server");
    join(silent_server).await;

    // We are the server: the client connects and sends nothing; it gets 408, then the end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let silent_client = spawn_mute_client(addr);
    let (tcp, _) = listener.accept().await.expect("accept");
    let accept = WebSocketStream::accept_with(tcp, config, |_| Ok(Accept::new()));
    let result = no_hang("accepting a silent client", accept).await.map(|_| ());
    assert!(matches!(result, Err(DriverError::Handshake(wscore::HandshakeError::Timeout))), "{result:?}");
    let (answer, end) = join(silent_client).await;
    assert!(end.is_ok(), "the client sees the end of the stream: {end:?}");
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhandshake not completed before the deadline\n"), "{answer}");
}

// ----- (5) the peer keeps sending after a frame we refused: a lingering close -----

/// Accepts one connection on `listener` as a server with [`LINGER_TEST_LIMIT`] and `config`.
async fn accept_lingering(listener: &std::net::TcpListener, config: Config, split: bool) -> Under {
    let (tcp, _) = listener.accept().expect("accept");
    let probe = tcp.try_clone().expect("clone the socket handle");
    tcp.set_nonblocking(true).expect("non-blocking");
    let tcp = TcpStream::from_std(tcp).expect("register with tokio");
    let config = config.max_message_size(LINGER_TEST_LIMIT);
    let ws = WebSocketStream::accept_with(tcp, config, |_| Ok(Accept::new())).await.expect("upgrade");
    Under::new(ws, probe, split)
}

/// The server fails on a frame (1009: a header announcing too much; 1002: an unmasked frame)
/// while the client is still sending the rest. The driver shuts down its sending side, then
/// reads and discards until the client closes too: the client gets the close frame and an
/// orderly end of stream, and everything it sent was taken. Closing the socket with that input
/// unread (as the application does once the read returned the error) would make the kernel
/// reset the connection: the client's sending fails, and a close frame still in flight is lost.
#[tokio::test]
async fn peer_sending_on_after_a_violation_still_gets_the_close_frame() {
    for (code, split) in [(1009, false), (1009, true), (1002, false), (1002, true)] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (release, client) =
            spawn_sending_client(listener.local_addr().expect("address"), violation_then_more(code));
        drop(release); // the client closes once it has sent everything and read to the end
        let mut under = accept_lingering(&listener, Config::default(), split).await;
        let kind = format!("{} {code}", under.kind());
        match no_hang("reading from a client that sends on", under.read_until_error()).await {
            Err(DriverError::Connection(Error::Protocol(e))) => assert_eq!(e.close_code().0, code, "{kind}: {e}"),
            other => panic!("{kind}: expected the protocol error, got {other:?}"),
        }
        under.assert_released().await;
        drop(under); // the socket is closed, as an application does after the error
        let (sent, (bytes, end)) = join(client).await;
        assert!(sent.is_ok(), "{kind}: all the client sent was read, not reset: {sent:?}");
        assert!(end.is_ok(), "{kind}: an orderly end of stream, not a reset: {end:?}");
        assert_only_close(&kind, &bytes, code);
    }
}

/// A client that never closes its side does not hold the lingering server for longer than the
/// close deadline.
#[tokio::test]
async fn lingering_ends_at_the_close_deadline() {
    for split in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (release, client) =
            spawn_sending_client(listener.local_addr().expect("address"), violation_then_more(1009));
        let mut under = accept_lingering(&listener, short_deadlines().keepalive_interval(None), split).await;
        let kind = under.kind();
        // The client holds the connection open until released: only the deadline ends the wait.
        let result = no_hang("lingering on a client that never closes", under.read_until_error()).await;
        assert!(matches!(result, Err(DriverError::Connection(Error::Protocol(_)))), "{kind}: {result:?}");
        under.assert_released().await;
        drop(under); // closing the socket resets the client, still sending
        release.send(()).expect("release the client");
        let (_, (bytes, _)) = join(client).await;
        assert_only_close(kind, &bytes, 1009);
    }
}
