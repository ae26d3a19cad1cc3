//! The tokio driver over real loopback TCP: echo through `Stream` + `Sink` and the inherent
//! methods, control frames, the close handshake both ways, rejected upgrades, and split
//! halves where only the read half is polled.
//!
//! No sleeps synchronise anything: tasks wait on each other through the protocol itself or
//! through channels.

#![cfg(feature = "tokio")]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wscore::tokio::WebSocketStream;
use wscore::{
    Accept, ClientRequest, CloseCode, Config, DriverError, Error, Event, HandshakeError, Message, Reject, State,
};

type Result<T = ()> = std::result::Result<T, DriverError>;

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/test", listener.local_addr().expect("local addr"));
    (listener, url)
}

/// A server task that accepts one connection and echoes every message (batched: `feed`, no
/// flush) until the connection ends; returns the control events it saw.
async fn echo_server(config: Config) -> (String, JoinHandle<Result<Vec<Event>>>) {
    let (listener, url) = listen().await;
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut ws = WebSocketStream::accept_with(tcp, config, |_| Ok(Accept::new())).await?;
        let mut seen = Vec::new();
        while let Some(event) = ws.next_event().await? {
            match event {
                Event::Message(message) => ws.feed(message).await?,
                other => seen.push(other),
            }
        }
        Ok(seen)
    });
    (url, task)
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn echoes_through_stream_and_sink() {
    let config = Config::default().max_message_size(64 << 20).max_frame_size(64 << 20);
    let (url, server) = echo_server(config.clone()).await;
    let mut ws = WebSocketStream::connect_with(ClientRequest::from_url(&url).unwrap(), config).await.unwrap();

    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::Text("hello".into()));

    ws.send(Message::Binary(vec![0u8, 1, 255].into())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::Binary(vec![0u8, 1, 255].into()));

    let large = patterned(8 << 20);
    ws.send_binary(large.clone()).await.unwrap();
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), &large[..]);

    let text = "ünïcödé ".repeat(100_000);
    ws.send_text(text.clone()).await.unwrap();
    assert_eq!(ws.next_message().await.unwrap().unwrap().as_bytes(), text.as_bytes());

    // Many messages queued with `feed`, one flush.
    for i in 0..200 {
        ws.feed(Message::Text(format!("batch {i}").into())).await.unwrap();
    }
    SinkExt::flush(&mut ws).await.unwrap();
    for i in 0..200 {
        assert_eq!(ws.next_message().await.unwrap(), Some(Message::Text(format!("batch {i}").into())));
    }

    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let mut rest = Vec::new();
    while let Some(event) = ws.next_event().await.unwrap() {
        rest.push(event);
    }
    assert!(matches!(&rest[..], [Event::Close(Some(frame))] if frame.code == CloseCode::NORMAL), "{rest:?}");
    assert!(ws.next().await.is_none(), "the stream stays ended");
    let seen = server.await.unwrap().unwrap();
    assert!(matches!(&seen[..], [Event::Close(Some(frame))] if frame.reason.as_str() == "done"), "{seen:?}");
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut ws = WebSocketStream::accept(tcp).await?;
        ws.ping("from server").await?;
        let mut events = Vec::new();
        while let Some(event) = ws.next_event().await? {
            events.push(event);
        }
        Ok::<_, DriverError>(events)
    });
    let mut ws = WebSocketStream::connect(&url).await.unwrap();
    ws.ping("from client").await.unwrap();
    let mut events = Vec::new();
    while events.len() < 2 {
        events.push(ws.next_event().await.unwrap().expect("event"));
    }
    assert!(events.contains(&Event::Ping("from server".into())), "{events:?}");
    assert!(events.contains(&Event::Pong("from client".into())), "{events:?}");
    // Sink::close sends close 1000; the stream side completes the handshake.
    SinkExt::close(&mut ws).await.unwrap();
    while ws.next_event().await.unwrap().is_some() {}
    let server_events = server.await.unwrap().unwrap();
    assert!(server_events.contains(&Event::Ping("from client".into())), "{server_events:?}");
    assert!(server_events.contains(&Event::Pong("from server".into())), "{server_events:?}");
    assert!(matches!(server_events.last(), Some(Event::Close(Some(f))) if f.code == CloseCode::NORMAL));
}

#[tokio::test]
async fn server_closes_first() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut ws = WebSocketStream::accept(tcp).await?;
        assert!(ws.next_message().await?.is_some(), "the client's hello");
        ws.close(CloseCode::GOING_AWAY, "shutting down").await?;
        let mut events = Vec::new();
        while let Some(event) = ws.next_event().await? {
            events.push(event);
        }
        Ok::<_, DriverError>(events)
    });
    let mut ws = WebSocketStream::connect(&url).await.unwrap();
    ws.send_text("hello").await.unwrap();
    match ws.next_event().await.unwrap() {
        Some(Event::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected the server's close, got {other:?}"),
    }
    assert!(ws.next_event().await.unwrap().is_none());
    assert_eq!(ws.connection().state(), State::Closed);
    let server_events = server.await.unwrap().unwrap();
    assert!(matches!(&server_events[..], [Event::Close(Some(f))] if f.code == CloseCode::GOING_AWAY));
}

#[tokio::test]
async fn accept_with_rejects_with_status_and_body() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        WebSocketStream::accept_with(tcp, Config::default(), |request| match request.header("Cookie") {
            Some("session=ok") => Ok(Accept::new()),
            _ => Err(Reject::new(401).body("log in first")),
        })
        .await
        .map(|_| ())
    });
    match WebSocketStream::connect(&url).await {
        Err(DriverError::Handshake(HandshakeError::Rejected(response))) => {
            assert_eq!(response.status, 401);
            assert_eq!(&response.body[..], b"log in first");
        }
        other => panic!("expected a 401 rejection, got {other:?}"),
    }
    match server.await.unwrap() {
        Err(DriverError::Handshake(HandshakeError::Rejected(response))) => assert_eq!(response.status, 401),
        other => panic!("expected the server to report its rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn wss_urls_need_tls() {
    // With the `rustls` feature the TLS connection is attempted (and port 1 refuses it).
    #[cfg(not(feature = "rustls"))]
    assert!(matches!(WebSocketStream::connect("wss://127.0.0.1:1/").await, Err(DriverError::TlsNotSupported)));
    #[cfg(feature = "rustls")]
    assert!(matches!(WebSocketStream::connect("wss://127.0.0.1:1/").await, Err(DriverError::Io(_))));
}

#[tokio::test]
async fn peer_vanishing_is_an_error() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = WebSocketStream::accept(tcp).await.unwrap();
        loop {
            match ws.next_event().await {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    });
    drop(WebSocketStream::connect(&url).await.unwrap());
    match server.await.unwrap() {
        Some(DriverError::Connection(Error::UnexpectedEof) | DriverError::Io(_)) => {}
        other => panic!("expected an abnormal end, got {other:?}"),
    }
}

/// The server pings the client three times, waiting for each pong; the client polls only its
/// read half (the write half is alive but idle), which must write the pongs itself.
#[tokio::test]
async fn read_half_alone_answers_pings() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut ws = WebSocketStream::accept(tcp).await?;
        let mut pongs = Vec::new();
        for n in 0..3 {
            ws.ping(format!("p{n}")).await?;
            match ws.next_event().await?.expect("event") {
                Event::Pong(payload) => pongs.push(payload),
                other => panic!("unexpected {other:?}"),
            }
        }
        ws.close(CloseCode::NORMAL, "").await?;
        while ws.next_event().await?.is_some() {}
        Ok::<_, DriverError>(pongs)
    });
    let (mut read, _write) = WebSocketStream::connect(&url).await.unwrap().split();
    let mut pings = 0;
    while let Some(event) = read.next_event().await.unwrap() {
        if matches!(event, Event::Ping(_)) {
            pings += 1;
        }
    }
    assert_eq!(pings, 3);
    assert_eq!(read.state(), State::Closed);
    assert_eq!(server.await.unwrap().unwrap(), ["p0", "p1", "p2"]);
}

/// Keepalive pings come from the read half's timer: with only the read half polled, the
/// server still receives them (and its pongs keep the client's connection alive).
#[tokio::test]
async fn read_half_alone_sends_keepalive_pings() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut ws = WebSocketStream::accept(tcp).await?;
        let mut pings = 0;
        while pings < 3 {
            if let Some(Event::Ping(_)) = ws.next_event().await? {
                pings += 1;
            }
        }
        ws.close(CloseCode::NORMAL, "enough").await?;
        while ws.next_event().await?.is_some() {}
        Ok::<_, DriverError>(pings)
    });
    let config = Config::default().keepalive_interval(Some(Duration::from_millis(10)));
    let ws = WebSocketStream::connect_with(ClientRequest::from_url(&url).unwrap(), config).await.unwrap();
    let (mut read, _write) = ws.split();
    let mut pongs = 0;
    while let Some(event) = read.next_event().await.unwrap() {
        if matches!(event, Event::Pong(_)) {
            pongs += 1;
        }
    }
    assert!(pongs >= 3, "the keepalive pings were answered ({pongs} pongs)");
    assert_eq!(server.await.unwrap().unwrap(), 3);
}

/// The halves in two tasks (on two worker threads): the writer streams messages while the
/// reader takes their echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_work_from_two_tasks() {
    let (url, server) = echo_server(Config::default()).await;
    let (mut read, mut write) = WebSocketStream::connect(&url).await.unwrap().split();
    const COUNT: usize = 500;
    let writer = tokio::spawn(async move {
        for i in 0..COUNT {
            // Big enough to fill the socket buffers now and then.
            let message = Message::Binary(vec![i as u8; 4096 + i].into());
            write.feed(message).await?;
        }
        write.flush().await?;
        Ok::<_, DriverError>(write)
    });
    let mut received = 0;
    while received < COUNT {
        let message = read.next().await.expect("message").unwrap();
        assert_eq!(message.len(), 4096 + received);
        assert!(message.as_bytes().iter().all(|&b| b == received as u8));
        received += 1;
    }
    let mut write = writer.await.unwrap().unwrap();
    // Closing through the sink; the read half completes the handshake.
    SinkExt::close(&mut write).await.unwrap();
    assert!(read.next().await.is_none());
    assert!(matches!(write.send_text("late").await, Err(DriverError::Send(_))));
    let seen = server.await.unwrap().unwrap();
    assert!(matches!(&seen[..], [Event::Close(Some(f))] if f.code == CloseCode::NORMAL), "{seen:?}");
}

/// A close started by the write half while the read half is blocked waiting for input: the
/// read half must notice the close deadline it did not arm itself.
#[tokio::test]
async fn close_from_write_half_times_out_against_a_silent_peer() {
    let (listener, url) = listen().await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // Completes the upgrade, then reads nothing and answers nothing.
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp).await.unwrap();
        let _ = done_rx.await;
        drop(ws);
    });
    let config = Config::default().close_timeout(Duration::from_millis(50));
    let ws = WebSocketStream::connect_with(ClientRequest::from_url(&url).unwrap(), config).await.unwrap();
    let (mut read, mut write) = ws.split();
    let reader = tokio::spawn(async move {
        loop {
            match read.next_event().await {
                Ok(Some(_)) => {}
                other => return other,
            }
        }
    });
    // Let the reader park on the socket first (it may also run after this; both orders work).
    tokio::task::yield_now().await;
    write.close(CloseCode::NORMAL, "").await.unwrap();
    let result = reader.await.unwrap();
    assert!(matches!(result, Err(DriverError::Connection(Error::CloseTimeout))), "{result:?}");
    done_tx.send(()).unwrap();
    peer.await.unwrap();
}

/// Accepting over a borrowed stream works too (any `AsyncRead + AsyncWrite + Unpin`).
#[tokio::test]
async fn drives_a_borrowed_stream() {
    let (url, server) = echo_server(Config::default()).await;
    let request = ClientRequest::from_url(&url).unwrap();
    let mut tcp = TcpStream::connect((request.host(), request.port())).await.unwrap();
    {
        let mut ws = WebSocketStream::client(&mut tcp, request, Config::default()).await.unwrap();
        ws.send_text("borrowed").await.unwrap();
        assert_eq!(ws.next_message().await.unwrap(), Some(Message::Text("borrowed".into())));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while ws.next_event().await.unwrap().is_some() {}
    }
    server.await.unwrap().unwrap();
}

/// Deadlines run on tokio's clock: with the clock paused, a peer that never answers the
/// keepalive ping fails the connection in virtual time (an in-memory pipe, no sockets).
#[tokio::test(start_paused = true)]
async fn keepalive_timeout_on_a_paused_clock() {
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(30)))
        .keepalive_timeout(Duration::from_secs(20))
        .close_timeout(Duration::from_secs(10));
    let mut ws = WebSocketStream::from_upgraded(ours, wscore::Role::Server, config);
    let result = ws.next_event().await;
    assert!(matches!(result, Err(DriverError::Connection(Error::KeepaliveTimeout))), "{result:?}");
    // The ping and the failing close frame (1011) went out.
    drop(ws);
    let mut written = Vec::new();
    let mut theirs = theirs;
    tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut written).await.unwrap();
    assert_eq!(written[0], 0x89, "a ping first");
    let close = &written[2 + 8..];
    assert_eq!((close[0], u16::from_be_bytes([close[2], close[3]])), (0x88, 1011));
}

/// A masked binary frame of `payload` (client to server), for the in-memory pipe tests.
fn masked_frame(payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// An idle connection of the tokio example costs its task (the connection inline), tokio's
/// I/O registration and nothing else (bench-e2e/README.md): 1,837 bytes with a 776-byte
/// `Connection` on x86-64. Tokio's task allocation grows by a whole size class a few bytes
/// past that (at 792 bytes: 2,094 bytes per idle connection, over the 2 KiB target), so a
/// field that grows the connection needs room made elsewhere.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_connection_stays_within_its_idle_memory_budget() {
    let size = std::mem::size_of::<wscore::Connection>();
    assert!(size <= 776, "Connection is {size} bytes");
}

/// A connection whose input flows keeps its buffers (no allocation per message); once reads
/// have found nothing for `buffer_release_delay`, it holds none. On a paused clock.
#[tokio::test(start_paused = true)]
async fn buffers_are_let_go_after_the_release_delay_without_input() {
    use tokio::io::AsyncWriteExt;
    use tokio::time::timeout;
    for (delay, kept) in [(Duration::from_millis(100), true), (Duration::ZERO, false)] {
        let (ours, mut theirs) = tokio::io::duplex(64 << 10);
        let config = Config::default().buffer_release_delay(delay);
        let mut ws = WebSocketStream::from_upgraded(ours, wscore::Role::Server, config);
        theirs.write_all(&masked_frame(b"hello")).await.unwrap();
        let event = ws.next_event().await.unwrap();
        assert!(matches!(event, Some(Event::Message(m)) if m.as_bytes() == b"hello"));
        // The next read finds nothing: within the delay, the buffers stay (or not, without one).
        assert!(timeout(Duration::from_millis(10), ws.next_event()).await.is_err());
        assert_eq!(ws.connection().buffer_capacity() > 0, kept, "delay {delay:?}");
        // Past the delay with no input, nothing is held.
        assert!(timeout(Duration::from_secs(1), ws.next_event()).await.is_err());
        assert_eq!(ws.connection().buffer_capacity(), 0, "delay {delay:?}");
        // And input after that is read as usual.
        theirs.write_all(&masked_frame(b"again")).await.unwrap();
        let event = ws.next_event().await.unwrap();
        assert!(matches!(event, Some(Event::Message(m)) if m.as_bytes() == b"again"));
    }
}

/// A stream that records the writes it is asked for: plain (`poll_write`) or vectored, and
/// how many bytes each carried.
struct RecordingStream {
    inner: tokio::io::DuplexStream,
    writes: Vec<(bool, usize)>,
}

impl tokio::io::AsyncRead for RecordingStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for RecordingStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = written {
            self.writes.push((false, n));
        }
        written
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let std::task::Poll::Ready(Ok(n)) = written {
            self.writes.push((true, n));
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Small frames queued together go out as one plain write (a `send`, not a `writev`, on a
/// socket); a large frame goes out header + payload, vectored, its payload not copied.
#[tokio::test]
async fn small_frames_are_one_plain_write_large_ones_vectored() {
    use tokio::io::AsyncReadExt;
    let (ours, mut theirs) = tokio::io::duplex(1 << 20);
    let stream = RecordingStream { inner: ours, writes: Vec::new() };
    let mut ws = WebSocketStream::from_upgraded(stream, wscore::Role::Server, Config::default());
    for i in 0..10u8 {
        ws.feed(Message::Binary(vec![i; 100].into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    // Ten unmasked frames of 2 + 100 bytes, in one write.
    assert_eq!(ws.get_ref().writes, [(false, 1020)]);

    let large = patterned(256 << 10);
    ws.send(Message::Binary(large.clone().into())).await.unwrap();
    let writes = &ws.get_ref().writes[1..];
    assert!(!writes.is_empty() && writes.iter().all(|&(vectored, _)| vectored), "{writes:?}");
    // Four frames of 64 KiB (the default write fragment size), each a 10-byte header (64-bit
    // length) + payload.
    assert_eq!(writes.iter().map(|&(_, n)| n).sum::<usize>(), (256 << 10) + 4 * 10);

    let mut received = vec![0u8; 1020 + (256 << 10) + 40];
    theirs.read_exact(&mut received).await.unwrap();
    assert_eq!(&received[..2], [0x82, 100]);
    assert_eq!(&received[1020..1022], [0x02, 127]);
    assert!(received[1030..1030 + 64].iter().eq(&large[..64]));
}
