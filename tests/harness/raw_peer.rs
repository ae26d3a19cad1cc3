//! A raw TCP peer for the driver fault tests: it does the HTTP upgrade by hand (no WebSocket
//! library on its side) and then misbehaves on purpose: resets the connection (`SO_LINGER 0`),
//! half-closes it, stops reading, or stops answering. It runs on plain blocking `std::net`
//! sockets, in a thread of its own, for the blocking and the tokio driver alike.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{RawFrame, decode_frames, try_decode_frames};
use wscore::{AcceptKey, Config, Connection, OpCode, State};

/// How long a driver call may block before a fault test calls it a hang (far above every
/// deadline the tests use).
pub const HANG_GUARD: Duration = Duration::from_secs(20);
/// A message used to fill the pipe to a peer that does not read.
pub const CHUNK: usize = 256 << 10;
/// The driver's socket send buffer in the tests with a peer that stops reading: small, so
/// writes stall after little data (the kernel would otherwise buffer megabytes).
pub const SEND_BUFFER: usize = 64 << 10;

/// The driver let go of a failed connection: it is `Failed`, its receive and send buffers are
/// empty (`conn`, where the driver shows it), and its socket is shut down (a write to
/// `probe`, a second handle of that socket, fails).
pub fn assert_let_go(kind: &str, state: State, conn: Option<&Connection>, probe: &TcpStream) {
    assert_eq!(state, State::Failed, "{kind}");
    if let Some(conn) = conn {
        assert_eq!(conn.buffered_received(), 0, "{kind}: the partial input is dropped");
        assert_eq!(conn.buffered_amount(), 0, "{kind}: the unsent output is dropped");
    }
    let write = (&*probe).write(b"x");
    assert!(write.is_err(), "{kind}: the socket is shut down, yet a write went through: {write:?}");
}

/// The driver's side of a fault test: short deadlines, so failures come fast. A keepalive ping
/// every 50 ms, 100 ms for its pong and for the close handshake.
pub fn short_deadlines() -> Config {
    Config::default()
        .keepalive_interval(Some(Duration::from_millis(50)))
        .keepalive_timeout(Duration::from_millis(100))
        .close_timeout(Duration::from_millis(100))
}

/// What a peer read until the end of the stream, and how the stream ended (`Ok`: an orderly
/// end of stream).
pub type ReadToEnd = (Vec<u8>, io::Result<()>);

/// A listener for the driver under test to connect to.
pub struct RawServer {
    listener: TcpListener,
}

impl RawServer {
    /// Listens on an ephemeral loopback port.
    pub fn bind() -> Self {
        Self { listener: TcpListener::bind("127.0.0.1:0").expect("bind") }
    }

    /// The `ws://` URL to connect to.
    pub fn url(&self) -> String {
        format!("ws://{}/fault", self.listener.local_addr().expect("local address"))
    }

    /// Accepts one connection and answers its upgrade request with a plain 101 (no extension,
    /// so no compression).
    pub fn accept_upgrade(&self) -> RawPeer {
        let (tcp, _) = self.listener.accept().expect("accept");
        let mut peer = RawPeer { tcp, received: Vec::new() };
        let head = peer.read_head();
        let head = String::from_utf8_lossy(&head).into_owned();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("a Sec-WebSocket-Key header")
            .trim()
            .to_owned();
        let accept = AcceptKey::from_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept.as_str()
        );
        peer.send(response.as_bytes());
        peer
    }
}

/// The peer's end of one connection, after the upgrade.
pub struct RawPeer {
    /// The socket.
    pub tcp: TcpStream,
    /// Bytes read after the upgrade head and not yet taken.
    pub received: Vec<u8>,
}

impl RawPeer {
    /// Connects to a server under test and sends an upgrade request; returns once the 101
    /// response head has arrived.
    pub fn connect_upgrade(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).expect("connect");
        let mut peer = RawPeer { tcp, received: Vec::new() };
        peer.send(
            b"GET /fault HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        let head = peer.read_head();
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
        peer
    }

    /// Reads up to the end of an HTTP head; keeps what follows in `received`.
    fn read_head(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = self.received.split_off(end + 4);
                return std::mem::replace(&mut self.received, rest);
            }
            let n = self.tcp.read(&mut buf).expect("read the head");
            assert!(n > 0, "the connection ended inside the HTTP head");
            self.received.extend_from_slice(&buf[..n]);
        }
    }

    /// Writes `bytes`, all of them.
    pub fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("the peer writes");
    }

    /// Reads until one whole frame is in; returns it (the driver under test sent it).
    pub fn read_frame(&mut self) -> RawFrame {
        let mut buf = [0u8; 4096];
        loop {
            let (frames, rest) = try_decode_frames(&self.received).expect("valid frames");
            if let Some(frame) = frames.into_iter().next() {
                let whole = self.received.len() - rest;
                let len = frame_len(&self.received[..whole]);
                self.received.drain(..len);
                return frame;
            }
            let n = self.tcp.read(&mut buf).expect("read a frame");
            assert!(n > 0, "the connection ended before a whole frame");
            self.received.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads everything until the end of the stream: what the driver under test wrote after
    /// what was already taken, and how the stream ended (`Ok` for an orderly end of stream).
    pub fn read_to_end(&mut self) -> ReadToEnd {
        let mut out = std::mem::take(&mut self.received);
        let result = self.tcp.read_to_end(&mut out).map(|_| ());
        (out, result)
    }

    /// Half-closes: sends FIN and keeps the reading side open.
    pub fn half_close(&self) {
        self.tcp.shutdown(Shutdown::Write).expect("shutdown(Write)");
    }

    /// Resets the connection: `SO_LINGER` 0, then close, so the kernel sends RST instead of FIN.
    pub fn reset(self) {
        socket2::SockRef::from(&self.tcp).set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
        drop(self.tcp);
    }
}

/// The length of the first frame in `bytes` (which holds at least one whole frame).
fn frame_len(bytes: &[u8]) -> usize {
    let (header, header_len) = wscore::FrameHeader::parse(bytes).expect("valid header").expect("whole header");
    header_len + header.payload_len as usize
}

/// A text frame as a server sends it, cut after `keep` bytes: a frame that never completes.
pub fn half_text_frame(payload_len: usize, keep: usize) -> Vec<u8> {
    let frame = super::unmasked(0x81, &vec![b'x'; payload_len]);
    frame[..keep].to_vec()
}

/// Runs the peer of a fault test in a thread: accept, answer the upgrade, wait for the text
/// message `ready` from the driver under test (so the upgrade is known to be complete on both
/// ends), then misbehave with `fault`. Returns the URL to connect to.
pub fn spawn_raw_server<T: Send + 'static>(
    fault: impl FnOnce(RawPeer) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let server = RawServer::bind();
    let url = server.url();
    let handle = thread::spawn(move || {
        let mut peer = server.accept_upgrade();
        let ready = peer.read_frame();
        assert_eq!((ready.opcode(), &ready.payload[..]), (OpCode::Text, &b"ready"[..]));
        fault(peer)
    });
    (url, handle)
}

/// A raw server that takes `ready`, then reads nothing until the sender is used (or dropped);
/// then everything until the end of the stream.
pub fn spawn_stalled_peer() -> (String, mpsc::Sender<()>, JoinHandle<ReadToEnd>) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (url, peer) = spawn_raw_server(move |mut peer| {
        let _ = stop_rx.recv();
        peer.read_to_end()
    });
    (url, stop_tx, peer)
}

/// A raw client that connects to `addr`, completes the upgrade, then reads and answers nothing
/// until the sender is used (or dropped); then everything until the end of the stream.
pub fn spawn_silent_client(addr: SocketAddr) -> (mpsc::Sender<()>, JoinHandle<ReadToEnd>) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut peer = RawPeer::connect_upgrade(addr);
        let _ = stop_rx.recv();
        peer.read_to_end()
    });
    (stop_tx, peer)
}

/// A TCP server that accepts one connection and sends nothing (not even an upgrade answer)
/// until the sender is used (or dropped); then it closes the connection. Returns its URL.
pub fn spawn_mute_server() -> (String, mpsc::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("local address"));
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        let _ = stop_rx.recv();
        drop(tcp);
    });
    (url, stop_tx, server)
}

/// A TCP client that connects to `addr` and sends nothing; returns what it read until the end
/// of the stream, as text.
pub fn spawn_mute_client(addr: SocketAddr) -> JoinHandle<(String, io::Result<()>)> {
    thread::spawn(move || {
        let mut tcp = TcpStream::connect(addr).expect("connect");
        let mut answer = String::new();
        let end = tcp.read_to_string(&mut answer);
        (answer, end.map(|_| ()))
    })
}

/// The frames a connection with keepalive writes to a peer that answers nothing: its first
/// keepalive ping (payload: the counter 1), then the failing close frame with 1011 and its
/// reason; as (opcode, unmasked payload).
pub fn keepalive_failure_frames() -> Vec<(OpCode, Vec<u8>)> {
    let mut close = 1011u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"no pong received before the keepalive deadline");
    vec![(OpCode::Ping, 1u64.to_be_bytes().to_vec()), (OpCode::Close, close)]
}

/// The frames in `bytes` (whole, valid frames only), as (opcode, unmasked payload).
pub fn frames_of(bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    decode_frames(bytes).into_iter().map(|f| (f.opcode(), f.payload)).collect()
}

/// The message size limit of the lingering-close tests' server.
pub const LINGER_TEST_LIMIT: usize = 64 << 10;
/// How much a client sends after the frame the server refuses in a lingering-close test: more
/// than the socket buffers on both ends hold (a few MiB each on loopback), so the client is
/// still sending when the server is done with the connection.
pub const SENT_AFTER_VIOLATION: usize = 32 << 20;

/// What a client sends in a lingering-close test that fails a server (with
/// [`LINGER_TEST_LIMIT`]) with `code`, and keeps sending after the offending frame
/// ([`SENT_AFTER_VIOLATION`] bytes): for 1009, a header announcing a message that large and
/// then its payload; for 1002, an unmasked frame and then valid frames.
pub fn violation_then_more(code: u16) -> Vec<u8> {
    match code {
        1009 => super::masked(0x82, &vec![0x55; SENT_AFTER_VIOLATION]),
        1002 => {
            let mut bytes = super::unmasked(0x81, b"unmasked");
            let frame = super::masked(0x82, &[0x66; LINGER_TEST_LIMIT]);
            for _ in 0..SENT_AFTER_VIOLATION / LINGER_TEST_LIMIT {
                bytes.extend_from_slice(&frame);
            }
            bytes
        }
        other => panic!("no violation for close code {other}"),
    }
}

/// What a client of a lingering-close test saw: whether all it sent was taken (`Err`: the
/// server reset the connection while it was sending), what it read after the upgrade and how
/// the stream ended (`Err`: a reset).
pub type SendingClient = (io::Result<()>, ReadToEnd);

/// A raw client that connects to `addr`, completes the upgrade, then sends `bytes` (from a
/// thread of its own, so a server that stops reading cannot block it) while it reads
/// everything until the end of the stream. Then it waits until the sender is used (or dropped)
/// and closes the connection.
pub fn spawn_sending_client(addr: SocketAddr, bytes: Vec<u8>) -> (mpsc::Sender<()>, JoinHandle<SendingClient>) {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut peer = RawPeer::connect_upgrade(addr);
        let mut writer = peer.tcp.try_clone().expect("clone the socket handle");
        let sender = thread::spawn(move || writer.write_all(&bytes));
        let read = peer.read_to_end();
        let sent = sender.join().expect("the sending thread");
        let _ = release_rx.recv();
        (sent, read)
    });
    (release_tx, client)
}

/// The frames a server sends to fail with `code`: its close frame alone.
pub fn assert_only_close(kind: &str, bytes: &[u8], code: u16) {
    let frames = frames_of(bytes);
    assert_eq!(frames.len(), 1, "{kind}: one frame, the close: {frames:?}");
    let (opcode, payload) = &frames[0];
    assert_eq!(*opcode, OpCode::Close, "{kind}");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code, "{kind}: {:?}", String::from_utf8_lossy(payload));
}
