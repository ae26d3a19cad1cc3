//! The blocking driver over real loopback TCP: echo, control frames, the close handshake both
//! ways, rejected upgrades, failures, and a split connection written from several threads.
//!
//! No sleeps synchronise anything: threads wait on each other through the protocol itself or
//! through channels.

#![cfg(feature = "std")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wscore::blocking::{Transport, WebSocket};
use wscore::{
    Accept, ClientRequest, CloseCode, Config, DriverError, Error, Event, HandshakeError, Message, ProtocolError,
    Reject, State,
};

type Result<T = ()> = std::result::Result<T, DriverError>;

/// Binds a listener on an ephemeral loopback port; returns it with its `ws://` URL.
fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/test", listener.local_addr().expect("local addr"));
    (listener, url)
}

/// A server thread that accepts one connection and echoes every message until the
/// connection ends; returns the events it saw (messages excluded) and how it ended.
fn echo_server(config: Config) -> (String, JoinHandle<(Vec<Event>, Result)>) {
    let (listener, url) = listen();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        let result = (|| {
            let (tcp, _) = listener.accept()?;
            let mut ws = WebSocket::accept_with(tcp, config, |_| Ok(Accept::new()))?;
            while let Some(event) = ws.read()? {
                match event {
                    Event::Message(message) => ws.send(message)?,
                    other => seen.push(other),
                }
            }
            Ok(())
        })();
        (seen, result)
    });
    (url, handle)
}

/// Reads until the next data message, collecting control events on the way.
fn next_message<S: Read + Write + Transport>(ws: &mut WebSocket<S>, control: &mut Vec<Event>) -> Message {
    loop {
        match ws.read().expect("read") {
            Some(Event::Message(message)) => return message,
            Some(other) => control.push(other),
            None => panic!("connection ended while waiting for a message"),
        }
    }
}

/// Closes normally and reads to the end; returns the events seen meanwhile.
fn close_and_drain<S: Read + Write + Transport>(ws: &mut WebSocket<S>) -> Vec<Event> {
    ws.close(CloseCode::NORMAL, "done").expect("close");
    let mut events = Vec::new();
    while let Some(event) = ws.read().expect("read until the end") {
        events.push(event);
    }
    events
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn echoes_text_binary_and_large_messages() {
    let config = Config::default().max_message_size(64 << 20).max_frame_size(64 << 20);
    let (url, server) = echo_server(config.clone());
    let mut ws = WebSocket::connect_with(ClientRequest::from_url(&url).unwrap(), config).expect("connect");
    let mut control = Vec::new();

    ws.send_text("hello").unwrap();
    assert_eq!(next_message(&mut ws, &mut control), Message::Text("hello".into()));

    ws.send_binary(vec![0u8, 1, 2, 255]).unwrap();
    assert_eq!(next_message(&mut ws, &mut control), Message::Binary(vec![0u8, 1, 2, 255].into()));

    ws.send_text("").unwrap();
    assert_eq!(next_message(&mut ws, &mut control), Message::Text("".into()));

    // Larger than the socket buffers both ways: the server's echo must be written while the
    // client is still sending (it is: the client sends all, then reads; the server reads all
    // of one message before echoing).
    let large = patterned(8 << 20);
    ws.send_binary(large.clone()).unwrap();
    assert_eq!(next_message(&mut ws, &mut control).as_bytes(), &large[..]);

    let text = "ünïcödé ".repeat(100_000);
    ws.send_text(text.clone()).unwrap();
    assert_eq!(next_message(&mut ws, &mut control).as_bytes(), text.as_bytes());

    // Batched: queue several, flush once.
    for i in 0..50 {
        ws.queue(Message::Text(format!("batch {i}").into())).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..50 {
        assert_eq!(next_message(&mut ws, &mut control), Message::Text(format!("batch {i}").into()));
    }

    assert!(control.is_empty(), "unexpected control events: {control:?}");
    let events = close_and_drain(&mut ws);
    assert!(matches!(&events[..], [Event::Close(Some(frame))] if frame.code == CloseCode::NORMAL));
    let (seen, result) = server.join().unwrap();
    result.expect("server ends cleanly");
    assert!(matches!(&seen[..], [Event::Close(Some(frame))] if frame.reason.as_str() == "done"));
}

#[test]
fn pings_are_answered_both_ways() {
    let (listener, url) = listen();
    let server = thread::spawn(move || -> Result<Vec<Event>> {
        let (tcp, _) = listener.accept()?;
        let mut ws = WebSocket::accept(tcp)?;
        ws.ping("from server")?;
        let mut events = Vec::new();
        while let Some(event) = ws.read()? {
            events.push(event);
        }
        Ok(events)
    });

    let mut ws = WebSocket::connect(&url).unwrap();
    ws.ping("from client").unwrap();
    let mut events = Vec::new();
    // The server's ping and the pong to ours, in either order.
    while events.len() < 2 {
        events.push(ws.read().unwrap().expect("event"));
    }
    assert!(events.contains(&Event::Ping("from server".into())), "{events:?}");
    assert!(events.contains(&Event::Pong("from client".into())), "{events:?}");

    close_and_drain(&mut ws);
    let server_events = server.join().unwrap().unwrap();
    // The server saw our ping, the automatic pong to its own, and our close.
    assert!(server_events.contains(&Event::Ping("from client".into())), "{server_events:?}");
    assert!(server_events.contains(&Event::Pong("from server".into())), "{server_events:?}");
    assert!(matches!(server_events.last(), Some(Event::Close(Some(_)))));
}

#[test]
fn client_closes_first() {
    let (url, server) = echo_server(Config::default());
    let mut ws = WebSocket::connect(&url).unwrap();
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(ws.connection().state(), State::CloseSent);
    // Sending after closing is a local misuse; the connection carries on.
    assert!(matches!(ws.send_text("late"), Err(DriverError::Send(wscore::SendError::Closed))));
    match ws.read().unwrap() {
        // The close code is echoed (the reason need not be).
        Some(Event::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close echo, got {other:?}"),
    }
    // The server closes the TCP connection; the client sees the end.
    assert!(ws.read().unwrap().is_none());
    assert!(ws.read().unwrap().is_none(), "the end is reported again");
    assert_eq!(ws.connection().state(), State::Closed);
    let (seen, result) = server.join().unwrap();
    result.unwrap();
    assert!(matches!(&seen[..], [Event::Close(Some(frame))] if frame.reason.as_str() == "bye"));
}

#[test]
fn server_closes_first() {
    let (listener, url) = listen();
    let server = thread::spawn(move || -> Result<Vec<Event>> {
        let (tcp, _) = listener.accept()?;
        let mut ws = WebSocket::accept(tcp)?;
        // Wait for a message so the client is known to be reading.
        let first = ws.read()?;
        assert!(matches!(first, Some(Event::Message(_))));
        ws.close(CloseCode::GOING_AWAY, "shutting down")?;
        let mut events = Vec::new();
        while let Some(event) = ws.read()? {
            events.push(event);
        }
        Ok(events)
    });
    let mut ws = WebSocket::connect(&url).unwrap();
    ws.send_text("ready").unwrap();
    match ws.read().unwrap() {
        Some(Event::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected the server's close, got {other:?}"),
    }
    // Our echo of the close went out as part of `read`; the server then closes the TCP
    // connection.
    assert!(ws.read().unwrap().is_none());
    let server_events = server.join().unwrap().unwrap();
    assert!(matches!(&server_events[..], [Event::Close(Some(frame))] if frame.code == CloseCode::GOING_AWAY));
}

#[test]
fn accept_with_rejects_with_status_and_body() {
    let (listener, url) = listen();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        WebSocket::accept_with(tcp, Config::default(), |request| {
            assert_eq!(request.path(), "/test");
            match request.header("Authorization") {
                Some("Bearer good") => Ok(Accept::new()),
                _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer").body("who are you?")),
            }
        })
        .map(|_| ())
    });
    let request = ClientRequest::from_url(&url).unwrap().header("Authorization", "Bearer bad");
    match WebSocket::connect_with(request, Config::default()) {
        Err(DriverError::Handshake(HandshakeError::Rejected(response))) => {
            assert_eq!(response.status, 401);
            assert_eq!(&response.body[..], b"who are you?");
            assert_eq!(response.headers.get_str("WWW-Authenticate"), Some("Bearer"));
        }
        other => panic!("expected a 401 rejection, got {other:?}"),
    }
    match server.join().unwrap() {
        Err(DriverError::Handshake(HandshakeError::Rejected(response))) => assert_eq!(response.status, 401),
        other => panic!("expected the server to report its rejection, got {other:?}"),
    }
}

#[test]
fn accept_with_selects_a_subprotocol() {
    let (listener, url) = listen();
    let server = thread::spawn(move || -> Result<Option<String>> {
        let (tcp, _) = listener.accept()?;
        let mut ws = WebSocket::accept_with(tcp, Config::default(), |request| {
            assert_eq!(request.protocols(), ["v2", "v1"]);
            Ok(Accept::new().protocol("v1"))
        })?;
        let protocol = ws.connection().protocol().map(str::to_owned);
        while ws.read()?.is_some() {}
        Ok(protocol)
    });
    let request = ClientRequest::from_url(&url).unwrap().protocol("v2").protocol("v1");
    let mut ws = WebSocket::connect_with(request, Config::default()).unwrap();
    assert_eq!(ws.connection().protocol(), Some("v1"));
    close_and_drain(&mut ws);
    assert_eq!(server.join().unwrap().unwrap().as_deref(), Some("v1"));
}

#[test]
fn invalid_upgrade_request_gets_an_error_response() {
    let (listener, _url) = listen();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        WebSocket::accept(tcp).map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(matches!(server.join().unwrap(), Err(DriverError::Handshake(HandshakeError::UnsupportedVersion))));
}

#[test]
fn protocol_violation_is_reported_after_the_close_frame() {
    let (listener, url) = listen();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = WebSocket::accept(tcp).unwrap();
        let mut events = Vec::new();
        loop {
            match ws.read() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return (events, None),
                Err(e) => return (events, Some(e)),
            }
        }
    });
    // A raw client: the upgrade, one valid masked text frame, then an unmasked one.
    let request = ClientRequest::from_url(&url).unwrap();
    let mut tcp = TcpStream::connect((request.host(), request.port())).unwrap();
    let handshake = wscore::ClientHandshake::new(request, Config::default().deflate(None));
    tcp.write_all(&handshake.request_bytes()).unwrap();
    let valid = [0x81, 0x82, 0, 0, 0, 0, b'o', b'k'];
    tcp.write_all(&valid).unwrap();
    tcp.write_all(&[0x81, 0x02, b'n', b'o']).unwrap();
    let mut received = Vec::new();
    tcp.read_to_end(&mut received).unwrap();
    // After the 101 response: a close frame with 1002.
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let close = &received[head_end..];
    assert_eq!(close[0], 0x88);
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002);
    // The server lingers (reading on) until we close too: it reports its error after that.
    drop(tcp);

    let (events, error) = server.join().unwrap();
    assert_eq!(events, [Event::Message(Message::Text("ok".into()))], "the message before the violation");
    match error {
        Some(DriverError::Connection(Error::Protocol(ProtocolError::UnmaskedFrame))) => {}
        other => panic!("expected the protocol error, got {other:?}"),
    }
}

#[test]
fn peer_vanishing_is_an_error_not_a_clean_close() {
    let (listener, url) = listen();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = WebSocket::accept(tcp).unwrap();
        loop {
            match ws.read() {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    });
    let ws = WebSocket::connect(&url).unwrap();
    drop(ws); // no close handshake
    match server.join().unwrap() {
        Some(DriverError::Connection(Error::UnexpectedEof) | DriverError::Io(_)) => {}
        other => panic!("expected an abnormal end, got {other:?}"),
    }
}

#[test]
fn keepalive_timeout_fails_a_silent_peer() {
    let (listener, url) = listen();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // A peer that completes the upgrade and then never reads or answers anything.
    let peer = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut tcp = tcp;
        let mut buf = [0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).unwrap();
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().trim().to_owned();
        let accept = wscore::AcceptKey::from_key(key.as_bytes());
        write!(
            tcp,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept.as_str()
        )
        .unwrap();
        // Keep the socket open until the client has given up.
        let _ = done_rx.recv();
    });
    let config = Config::default()
        .deflate(None)
        .keepalive_interval(Some(Duration::from_millis(20)))
        .keepalive_timeout(Duration::from_millis(50))
        .close_timeout(Duration::from_millis(50));
    let mut ws = WebSocket::connect_with(ClientRequest::from_url(&url).unwrap(), config).unwrap();
    let result = loop {
        match ws.read() {
            Ok(Some(_)) => {}
            other => break other,
        }
    };
    assert!(matches!(result, Err(DriverError::Connection(Error::KeepaliveTimeout))), "{result:?}");
    done_tx.send(()).unwrap();
    peer.join().unwrap();
}

/// A TCP stream that counts the timeouts the driver sets on it.
struct CountingTcp {
    tcp: TcpStream,
    counts: Arc<[AtomicUsize; 2]>,
}

impl Read for CountingTcp {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for CountingTcp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

impl Transport for CountingTcp {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.counts[0].fetch_add(1, Ordering::Relaxed);
        self.tcp.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.counts[1].fetch_add(1, Ordering::Relaxed);
        self.tcp.set_write_timeout(timeout)
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        self.tcp.shutdown(std::net::Shutdown::Both)
    }
}

#[test]
fn an_echo_loop_does_not_set_a_socket_timeout_per_message() {
    // Reads wait for the keepalive deadline, writes for the write-stall deadline (which moves
    // with every message); neither should cost a `setsockopt` per message.
    const MESSAGES: usize = 200;
    let (listener, url) = listen();
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let server_counts = Arc::clone(&counts);
    let server = thread::spawn(move || -> Result<usize> {
        let (tcp, _) = listener.accept()?;
        let stream = CountingTcp { tcp, counts: server_counts };
        let config = Config::default().keepalive_interval(Some(Duration::from_secs(600)));
        let mut ws = WebSocket::accept_with(stream, config, |_| Ok(Accept::new()))?;
        let mut echoed = 0;
        while let Some(event) = ws.read()? {
            if let Event::Message(message) = event {
                ws.queue(message)?;
                echoed += 1;
            }
        }
        Ok(echoed)
    });
    let mut ws = WebSocket::connect(&url).unwrap();
    let mut control = Vec::new();
    for i in 0..MESSAGES {
        // One at a time: every message is a read and a write of its own on the server.
        ws.send_binary(vec![i as u8; 100]).unwrap();
        assert_eq!(next_message(&mut ws, &mut control).as_bytes(), &[i as u8; 100][..]);
    }
    close_and_drain(&mut ws);
    assert_eq!(server.join().unwrap().unwrap(), MESSAGES);
    let [reads, writes] = [0, 1].map(|i| counts[i].load(Ordering::Relaxed));
    assert!(reads <= 4 && writes <= 4, "{reads} read and {writes} write timeouts set for {MESSAGES} echoes");
}

#[test]
fn wss_urls_need_tls() {
    // With the `rustls` feature the TLS connection is attempted (and port 1 refuses it).
    #[cfg(not(feature = "rustls"))]
    assert!(matches!(WebSocket::connect("wss://127.0.0.1:1/"), Err(DriverError::TlsNotSupported)));
    #[cfg(feature = "rustls")]
    assert!(matches!(WebSocket::connect("wss://127.0.0.1:1/"), Err(DriverError::Io(_))));
    assert!(matches!(
        WebSocket::connect("http://example.com/"),
        Err(DriverError::Handshake(HandshakeError::InvalidUrl(_)))
    ));
}

#[test]
fn heartbeat_thread_writes_while_the_reader_blocks() {
    let (url, server) = echo_server(Config::default());
    let ws = WebSocket::connect(&url).unwrap();
    let (mut reader, writer) = ws.split().unwrap();

    const BEATS: usize = 5;
    // A peer keeps only the newest unanswered ping, so the heartbeat waits for each pong (the
    // reader hands them over) before the next ping.
    let (reading_tx, reading_rx) = mpsc::channel();
    let (pong_tx, pong_rx) = mpsc::channel::<bytes::Bytes>();
    let heartbeat = {
        let writer = writer.clone();
        thread::spawn(move || {
            // Start once the reader is (about to be) blocked in `read`.
            reading_rx.recv().unwrap();
            for n in 0..BEATS {
                writer.ping(format!("beat {n}")).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), format!("beat {n}"));
            }
        })
    };
    let sender = {
        let writer = writer.clone();
        thread::spawn(move || {
            for n in 0..20 {
                writer.send_text(format!("message {n}")).unwrap();
            }
        })
    };

    reading_tx.send(()).unwrap();
    let (mut pongs, mut messages) = (Vec::new(), Vec::new());
    while pongs.len() < BEATS || messages.len() < 20 {
        match reader.read().unwrap() {
            Some(Event::Pong(payload)) => {
                pongs.push(payload.clone());
                pong_tx.send(payload).unwrap();
            }
            Some(Event::Message(message)) => messages.push(message),
            other => panic!("unexpected {other:?}"),
        }
    }
    heartbeat.join().unwrap();
    sender.join().unwrap();
    let expected: Vec<_> = (0..BEATS).map(|n| bytes::Bytes::from(format!("beat {n}"))).collect();
    assert_eq!(pongs, expected);
    let expected: Vec<_> = (0..20).map(|n| Message::Text(format!("message {n}").into())).collect();
    assert_eq!(messages, expected, "one sending thread's messages stay in order");

    // Close from the writer; the reader completes the handshake.
    writer.close(CloseCode::NORMAL, "").unwrap();
    let mut rest = Vec::new();
    while let Some(event) = reader.read().unwrap() {
        rest.push(event);
    }
    assert!(matches!(&rest[..], [Event::Close(Some(_))]), "{rest:?}");
    assert_eq!(reader.state(), State::Closed);
    assert!(matches!(writer.send_text("late"), Err(DriverError::Send(_))));
    let (seen, result) = server.join().unwrap();
    result.unwrap();
    assert_eq!(seen.iter().filter(|e| matches!(e, Event::Ping(_))).count(), BEATS);
}

#[test]
fn split_reader_answers_pings_by_itself() {
    let (listener, url) = listen();
    let server = thread::spawn(move || -> Result<Vec<Event>> {
        let (tcp, _) = listener.accept()?;
        let mut ws = WebSocket::accept(tcp)?;
        let mut events = Vec::new();
        for n in 0..3 {
            ws.ping(format!("p{n}"))?;
            // Wait for the answer before the next ping.
            loop {
                let event = ws.read()?.expect("event");
                let is_pong = matches!(event, Event::Pong(_));
                events.push(event);
                if is_pong {
                    break;
                }
            }
        }
        ws.close(CloseCode::NORMAL, "")?;
        while let Some(event) = ws.read()? {
            events.push(event);
        }
        Ok(events)
    });
    let (mut reader, _writer) = WebSocket::connect(&url).unwrap().split().unwrap();
    let mut events = Vec::new();
    while let Some(event) = reader.read().unwrap() {
        events.push(event);
    }
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Ping(_))).count(), 3);
    assert!(matches!(events.last(), Some(Event::Close(_))));
    let server_events = server.join().unwrap().unwrap();
    let pongs: Vec<_> = server_events.iter().filter(|e| matches!(e, Event::Pong(_))).collect();
    assert_eq!(pongs, [&Event::Pong("p0".into()), &Event::Pong("p1".into()), &Event::Pong("p2".into())]);
}
