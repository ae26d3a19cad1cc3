//! The blocking driver (`WebSocket`, and its `Reader`/`Writer` halves) against a raw TCP peer
//! that fails at the transport level: it resets the connection in the middle of a frame,
//! half-closes it (in the middle of a frame, and after a complete message), stops reading
//! while we send (with keepalive, and with only the write-stall deadline), stops answering
//! altogether, or keeps sending after a frame we refused (the lingering close).
//!
//! Each test asserts the exact error (what happened), that reading afterwards returns the end
//! (`Ok(None)`, no hang), and that the driver let go of the connection: buffers emptied, the
//! socket shut down (the peer sees the end of the stream; writing to it fails). Deadlines come
//! from short `Config` timeouts; nothing asserts on elapsed time, and a call that does not
//! return within [`HANG_GUARD`] fails the test instead of hanging it.

#![cfg(feature = "std")]

mod harness;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use harness::raw_peer::{
    CHUNK, HANG_GUARD, LINGER_TEST_LIMIT, SEND_BUFFER, assert_let_go, assert_only_close, frames_of, half_text_frame,
    keepalive_failure_frames, short_deadlines, spawn_mute_client, spawn_mute_server, spawn_raw_server,
    spawn_sending_client, spawn_silent_client, spawn_stalled_peer, violation_then_more,
};
use harness::unmasked;
use wscore::blocking::{Reader, WebSocket, Writer};
use wscore::{ClientRequest, Config, DriverError, Error, Event, Message, State};

/// The write buffer cap in the backpressure test.
const WRITE_CAP: usize = 1 << 20;

/// Runs `f` on a thread of its own and returns what it returns; fails the test if it has not
/// returned within [`HANG_GUARD`].
fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for {HANG_GUARD:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Our end of the connection: the whole `WebSocket`, or the split halves.
enum Ours {
    Whole(Box<WebSocket<TcpStream>>),
    Split(Reader<TcpStream>, Writer<TcpStream>),
}

/// Our end and a second handle of its socket, to see whether the driver shut it down.
struct Under {
    ours: Ours,
    probe: TcpStream,
}

impl Under {
    fn new(ws: WebSocket<TcpStream>, split: bool) -> Self {
        let probe = ws.get_ref().try_clone().expect("clone the socket handle");
        let ours = if split {
            let (reader, writer) = ws.split().expect("split");
            Ours::Split(reader, writer)
        } else {
            Ours::Whole(Box::new(ws))
        };
        Self { ours, probe }
    }

    fn connect(url: &str, config: Config, split: bool) -> Self {
        // Over a plain `TcpStream` (what `connect` returns is `MaybeTlsStream`), so that the
        // socket can be cloned as a probe.
        let request = ClientRequest::from_url(url).expect("URL");
        let tcp = TcpStream::connect((request.host(), request.port())).expect("connect");
        let ws = WebSocket::client(tcp, request, config).expect("upgrade");
        Self::new(ws, split)
    }

    /// Connects over a socket with a small send buffer, so that a peer that stops reading
    /// stalls our writes after little data (the kernel would otherwise buffer megabytes).
    fn connect_small_buffers(url: &str, config: Config, split: bool) -> Self {
        let request = ClientRequest::from_url(url).expect("URL");
        let tcp = TcpStream::connect((request.host(), request.port())).expect("connect");
        socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER).expect("SO_SNDBUF");
        Self::new(WebSocket::client(tcp, request, config).expect("upgrade"), split)
    }

    fn kind(&self) -> &'static str {
        match self.ours {
            Ours::Whole(_) => "WebSocket",
            Ours::Split(..) => "Reader/Writer",
        }
    }

    fn read(&mut self) -> Result<Option<Event>, DriverError> {
        match &mut self.ours {
            Ours::Whole(ws) => ws.read(),
            Ours::Split(reader, _) => reader.read(),
        }
    }

    fn send(&mut self, message: Message) -> Result<(), DriverError> {
        match &mut self.ours {
            Ours::Whole(ws) => ws.send(message),
            Ours::Split(_, writer) => writer.send(message),
        }
    }

    fn state(&self) -> State {
        match &self.ours {
            Ours::Whole(ws) => ws.connection().state(),
            Ours::Split(reader, _) => reader.state(),
        }
    }

    /// The connection failed and the driver let go of everything: the end is reported again
    /// (no hang), the receive and send buffers are empty, and the socket is shut down (a write
    /// to it fails).
    fn assert_released(&mut self) {
        let kind = self.kind();
        assert!(matches!(self.read(), Ok(None)), "{kind}: the end, reported again");
        let conn = match &self.ours {
            Ours::Whole(ws) => Some(ws.connection()),
            Ours::Split(..) => None,
        };
        assert_let_go(kind, self.state(), conn, &self.probe);
    }
}

/// Reads until the first error or the end, ignoring events.
fn read_until_error(under: &mut Under) -> Result<Option<Event>, DriverError> {
    loop {
        match under.read() {
            Ok(Some(_)) => {}
            other => return other,
        }
    }
}

// ----- (1) the peer resets the connection in the middle of a frame -----

#[test]
fn peer_resetting_mid_frame_is_an_io_error_and_the_end() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&half_text_frame(100, 20));
            peer.reset();
        });
        let mut under = Under::connect(&url, Config::default(), split);
        let kind = under.kind();
        let (result, mut under) = no_hang("read after a reset", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            (under.read(), under)
        });
        match result {
            Err(DriverError::Io(e)) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{kind}: {e}");
                assert!(e.to_string().starts_with("Connection reset by peer"), "{kind}: {e}");
            }
            other => panic!("{kind}: expected the reset, got {other:?}"),
        }
        peer.join().expect("peer");
        no_hang("the end after a reset", move || under.assert_released());
    }
}

// ----- (2) the peer half-closes -----

#[test]
fn peer_half_closing_mid_frame_is_an_unexpected_eof() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&half_text_frame(100, 20));
            peer.half_close();
            // Whatever we send from now on, then the end of the stream.
            peer.read_to_end()
        });
        let mut under = Under::connect(&url, Config::default(), split);
        let kind = under.kind();
        let (result, mut under) = no_hang("read after a half-close", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            (under.read(), under)
        });
        match result {
            Err(DriverError::Connection(e @ Error::UnexpectedEof)) => {
                assert_eq!(
                    DriverError::Connection(e).to_string(),
                    "connection failed: connection closed by the peer without a close handshake"
                );
            }
            other => panic!("{kind}: expected an unexpected EOF, got {other:?}"),
        }
        no_hang("the end after a half-close", move || under.assert_released());
        // The stream ended: nothing can be answered any more, so nothing was sent (no close
        // frame) before the driver shut the socket down, which the peer sees as the end.
        let (rest, end) = peer.join().expect("peer");
        assert_eq!((rest, end.map_err(|e| e.kind())), (vec![], Ok(())), "{kind}");
    }
}

#[test]
fn peer_half_closing_after_a_message_delivers_it_then_fails() {
    for split in [false, true] {
        let (url, peer) = spawn_raw_server(|mut peer| {
            peer.send(&unmasked(0x81, b"last words"));
            peer.half_close();
            peer.read_to_end()
        });
        let mut under = Under::connect(&url, Config::default(), split);
        let kind = under.kind();
        let (first, second, mut under) = no_hang("reads after a half-close", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            let first = under.read();
            (first, under.read(), under)
        });
        assert!(
            matches!(first, Ok(Some(Event::Message(Message::Text(ref t)))) if t.as_str() == "last words"),
            "{kind}: {first:?}"
        );
        assert!(matches!(second, Err(DriverError::Connection(Error::UnexpectedEof))), "{kind}: {second:?}");
        no_hang("the end after a half-close", move || under.assert_released());
        let (rest, end) = peer.join().expect("peer");
        assert_eq!((rest, end.map_err(|e| e.kind())), (vec![], Ok(())), "{kind}");
    }
}

// ----- (3) the peer stops reading while we send -----

/// Fills the pipe to a peer that reads nothing after `ready`: sends `CHUNK`-sized messages until
/// a send fails. Returns the first error, how many sends succeeded, and the largest amount of
/// output the connection held after a send (whole `WebSocket` only).
fn fill_until_failure(under: &mut Under) -> (DriverError, usize, usize) {
    let mut largest_buffer = 0;
    for sent in 0.. {
        // A peer that takes 256 MiB is reading after all.
        assert!(sent < 1024, "{}: the peer took {sent} messages without reading", under.kind());
        if let Err(e) = under.send(Message::Binary(vec![sent as u8; CHUNK].into())) {
            return (e, sent, largest_buffer);
        }
        if let Ours::Whole(ws) = &under.ours {
            largest_buffer = largest_buffer.max(ws.connection().buffered_amount());
        }
    }
    unreachable!()
}

#[test]
fn peer_that_stops_reading_fails_the_connection_at_the_keepalive_deadline() {
    for split in [false, true] {
        let (url, stop, peer) = spawn_stalled_peer();
        let config = short_deadlines().max_write_buffer(WRITE_CAP);
        let mut under = Under::connect_small_buffers(&url, config, split);
        let kind = under.kind();
        let (read, largest_buffer, mut under) = no_hang("sending to a peer that does not read", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            // Blocked writes wake up at the keepalive deadlines: the ping cannot go out, its
            // pong never comes, and the connection fails instead of blocking forever.
            let (_, _, largest_buffer) = fill_until_failure(&mut under);
            (read_until_error(&mut under), largest_buffer, under)
        });
        match read {
            Err(DriverError::Connection(e @ Error::KeepaliveTimeout)) => assert_eq!(
                DriverError::Connection(e).to_string(),
                "connection failed: no pong received before the keepalive deadline"
            ),
            other => panic!("{kind}: expected the keepalive timeout, got {other:?}"),
        }
        // Memory stays bounded: at most what one send queues.
        assert!(largest_buffer <= CHUNK + 64, "{kind}: {largest_buffer} bytes buffered");
        no_hang("the end after a stalled peer", move || under.assert_released());
        // Once the peer reads again it finds some of our frames, then the end of the stream.
        stop.send(()).expect("wake the peer");
        let (_, end) = peer.join().expect("peer");
        assert!(end.is_ok(), "{kind}: the peer sees an orderly end of stream: {end:?}");
    }
}

/// What the send that runs into the failure returns: the failure itself.
#[test]
fn send_to_a_peer_that_stops_reading_reports_the_keepalive_timeout() {
    for split in [false, true] {
        let (url, stop, peer) = spawn_stalled_peer();
        let mut under = Under::connect_small_buffers(&url, short_deadlines(), split);
        let kind = under.kind();
        let (error, _under) = no_hang("sending to a peer that does not read", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            let (error, _, _) = fill_until_failure(&mut under);
            (error, under)
        });
        assert!(matches!(error, DriverError::Connection(Error::KeepaliveTimeout)), "{kind}: {error:?}");
        stop.send(()).expect("wake the peer");
        let _ = peer.join().expect("peer");
    }
}

/// Without keepalive (the default), the write-stall deadline lets go of a peer that stops
/// reading: the send that runs into it reports `WriteTimeout`, no close frame is sent (the peer
/// would not read it), and the socket is shut down.
#[test]
fn peer_that_stops_reading_fails_the_connection_at_the_write_deadline() {
    for split in [false, true] {
        let (url, stop, peer) = spawn_stalled_peer();
        let config = Config::default().write_timeout(Some(Duration::from_millis(200)));
        let mut under = Under::connect_small_buffers(&url, config, split);
        let kind = under.kind();
        let (error, read, mut under) = no_hang("sending to a peer that does not read", move || {
            under.send(Message::Text("ready".into())).expect("send ready");
            let (error, _, _) = fill_until_failure(&mut under);
            (error, read_until_error(&mut under), under)
        });
        match error {
            DriverError::Connection(e @ Error::WriteTimeout) => assert_eq!(
                DriverError::Connection(e).to_string(),
                "connection failed: the peer read none of our output before the write deadline"
            ),
            other => panic!("{kind}: expected the write timeout, got {other:?}"),
        }
        // The read reports the end: the failure once more, or the end if the send reported it.
        assert!(matches!(read, Err(DriverError::Connection(Error::WriteTimeout)) | Ok(None)), "{kind}: {read:?}");
        no_hang("the end after a stalled peer", move || under.assert_released());
        stop.send(()).expect("wake the peer");
        let (bytes, end) = peer.join().expect("peer");
        assert!(end.is_ok(), "{kind}: the peer sees an orderly end of stream: {end:?}");
        // Whole frames, then the one cut off when the driver gave up: none is a close frame.
        let (frames, _cut) = harness::try_decode_frames(&bytes).expect("valid frames");
        assert!(frames.iter().all(|f| f.opcode() != wscore::OpCode::Close), "{kind}: no close frame");
    }
}

#[test]
fn queue_stops_at_the_write_buffer_cap() {
    let (url, stop, peer) = spawn_stalled_peer();
    let config = short_deadlines().max_write_buffer(WRITE_CAP);
    let mut under = Under::connect_small_buffers(&url, config, false);
    let (largest, read, mut under) = no_hang("queueing to a peer that does not read", move || {
        under.send(Message::Text("ready".into())).expect("send ready");
        let Ours::Whole(ws) = &mut under.ours else { unreachable!() };
        let mut largest = 0;
        // Queued messages are written only once the buffer is full: then `queue` writes first,
        // which blocks until the deadlines fail the connection.
        while ws.queue(Message::Binary(vec![1; CHUNK].into())).is_ok() {
            largest = largest.max(ws.connection().buffered_amount());
        }
        (largest, read_until_error(&mut under), under)
    });
    assert!(largest <= WRITE_CAP + CHUNK + 64, "{largest} bytes buffered with a cap of {WRITE_CAP}");
    assert!(largest >= WRITE_CAP, "the cap was reached: {largest}");
    assert!(matches!(read, Err(DriverError::Connection(Error::KeepaliveTimeout))), "{read:?}");
    no_hang("the end after a stalled peer", move || under.assert_released());
    stop.send(()).expect("wake the peer");
    let (_, end) = peer.join().expect("peer");
    assert!(end.is_ok(), "{end:?}");
}

// ----- (4) the peer vanishes: connected, but it answers nothing -----

#[test]
fn vanished_peer_fails_the_server_at_the_pong_deadline_with_1011() {
    for split in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (stop_tx, peer) = spawn_silent_client(listener.local_addr().expect("address"));
        let (tcp, _) = listener.accept().expect("accept");
        let ws = WebSocket::accept_with(tcp, short_deadlines(), |_| Ok(wscore::Accept::new())).expect("upgrade");
        let mut under = Under::new(ws, split);
        let kind = under.kind();
        let (result, mut under) =
            no_hang("reading from a vanished peer", move || (read_until_error(&mut under), under));
        match result {
            Err(DriverError::Connection(e @ Error::KeepaliveTimeout)) => {
                assert_eq!(e.close_code(), wscore::CloseCode::INTERNAL, "1011");
            }
            other => panic!("{kind}: expected the keepalive timeout, got {other:?}"),
        }
        no_hang("the end after a vanished peer", move || under.assert_released());
        // What the peer would have seen: our keepalive ping, the failing close frame with 1011
        // and its reason, then the end of the stream.
        stop_tx.send(()).expect("wake the peer");
        let (bytes, end) = peer.join().expect("peer");
        assert!(end.is_ok(), "{kind}: {end:?}");
        assert_eq!(frames_of(&bytes), keepalive_failure_frames(), "{kind}");
    }
}

#[test]
fn peer_vanishing_during_the_upgrade_times_out_both_ways() {
    let config = Config::default().handshake_timeout(Some(Duration::from_millis(100)));
    // We are the client: the server takes the request and never answers.
    let (url, stop_tx, silent_server) = spawn_mute_server();
    let client_config = config.clone();
    let result = no_hang("connecting to a silent server", move || {
        WebSocket::connect_with(ClientRequest::from_url(&url).expect("URL"), client_config)
    });
    match result {
        Err(DriverError::Handshake(e @ wscore::HandshakeError::Timeout)) => {
            assert_eq!(e.to_string(), "handshake not completed before the deadline");
        }
        other => panic!("expected the handshake timeout, got {other:?}"),
    }
    stop_tx.send(()).expect("release the server");
    silent_server.join().expect("server");

    // We are the server: the client connects and sends nothing; it gets 408, then the end.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let silent_client = spawn_mute_client(addr);
    let (tcp, _) = listener.accept().expect("accept");
    let result = no_hang("accepting a silent client", move || {
        WebSocket::accept_with(tcp, config, |_| Ok(wscore::Accept::new())).map(|_| ())
    });
    assert!(matches!(result, Err(DriverError::Handshake(wscore::HandshakeError::Timeout))), "{result:?}");
    let (answer, end) = silent_client.join().expect("client");
    assert!(end.is_ok(), "the client sees the end of the stream: {end:?}");
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhandshake not completed before the deadline\n"), "{answer}");
}

// ----- (5) the peer keeps sending after a frame we refused: a lingering close -----

/// The server fails on a frame (1009: a header announcing too much; 1002: an unmasked frame)
/// while the client is still sending the rest. The driver shuts down its sending side, then
/// reads and discards until the client closes too: the client gets the close frame and an
/// orderly end of stream, and everything it sent was taken. Closing the socket with that input
/// unread (as the application does once `read` returned the error) would make the kernel reset
/// the connection: the client's sending fails, and a close frame still in flight is lost.
#[test]
fn peer_sending_on_after_a_violation_still_gets_the_close_frame() {
    for (code, split) in [(1009, false), (1009, true), (1002, false), (1002, true)] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (release, client) =
            spawn_sending_client(listener.local_addr().expect("address"), violation_then_more(code));
        drop(release); // the client closes once it has sent everything and read to the end
        let (tcp, _) = listener.accept().expect("accept");
        let config = Config::default().max_message_size(LINGER_TEST_LIMIT);
        let ws = WebSocket::accept_with(tcp, config, |_| Ok(wscore::Accept::new())).expect("upgrade");
        let mut under = Under::new(ws, split);
        let kind = format!("{} {code}", under.kind());
        let result = no_hang("reading from a client that sends on", move || {
            let result = read_until_error(&mut under);
            under.assert_released();
            result // and the socket is closed, as an application does after the error
        });
        match result {
            Err(DriverError::Connection(Error::Protocol(e))) => assert_eq!(e.close_code().0, code, "{kind}: {e}"),
            other => panic!("{kind}: expected the protocol error, got {other:?}"),
        }
        let (sent, (bytes, end)) = client.join().expect("client");
        assert!(sent.is_ok(), "{kind}: all the client sent was read, not reset: {sent:?}");
        assert!(end.is_ok(), "{kind}: an orderly end of stream, not a reset: {end:?}");
        assert_only_close(&kind, &bytes, code);
    }
}

/// A client that never closes its side does not hold the lingering server for longer than the
/// close deadline.
#[test]
fn lingering_ends_at_the_close_deadline() {
    for split in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (release, client) =
            spawn_sending_client(listener.local_addr().expect("address"), violation_then_more(1009));
        let (tcp, _) = listener.accept().expect("accept");
        let config = short_deadlines().keepalive_interval(None).max_message_size(LINGER_TEST_LIMIT);
        let ws = WebSocket::accept_with(tcp, config, |_| Ok(wscore::Accept::new())).expect("upgrade");
        let mut under = Under::new(ws, split);
        let kind = under.kind();
        // The client holds the connection open until released: only the deadline ends the wait.
        let result = no_hang("lingering on a client that never closes", move || {
            let result = read_until_error(&mut under);
            under.assert_released();
            result
        });
        assert!(matches!(result, Err(DriverError::Connection(Error::Protocol(_)))), "{kind}: {result:?}");
        release.send(()).expect("release the client");
        let (_, (bytes, _)) = client.join().expect("client");
        assert_only_close(kind, &bytes, 1009);
    }
}
