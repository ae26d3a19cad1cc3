//! A guided tour of the protocol: an echo server and a client in one process, talking over real
//! TCP on 127.0.0.1, with every byte on the wire printed.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! The steps: the HTTP/1.1 upgrade (shown as text), a text message, a binary message, a message
//! sent in three fragments and received whole, a ping and its pong, and the close handshake.
//! For each step the demo prints the bytes the client wrote and read, in hex, with each frame
//! header decoded, and the events the client's [`wscore::Connection`] produced.
//!
//! The client masks its frames with fresh random keys (RFC 6455 §5.3), so those bytes, the
//! handshake key and the port change from run to run; everything else is the same every time.
//! permessage-deflate is turned off here so that payloads stay readable on the wire.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use wscore::{
    Accept, ClientHandshake, ClientRequest, CloseCode, CloseFrame, Config, Connection, Event, FrameHeader, Instant,
    Message, MessageKind, OpCode, ServerHandshake, apply_mask,
};

type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

/// The longest the demo waits for its own server before giving up.
const PATIENCE: Duration = Duration::from_secs(5);

/// How many bytes of each direction a hex dump shows, and how many per line.
const DUMP_LIMIT: usize = 64;
const DUMP_ROW: usize = 24;

/// Both ends use the defaults, except compression: off, so that payloads stay readable.
#[cfg(feature = "deflate")]
fn config() -> Config {
    Config::default().deflate(None)
}

/// Both ends use the defaults.
#[cfg(not(feature = "deflate"))]
fn config() -> Config {
    Config::default()
}

fn main() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve_one(&listener));

    println!("wscore demo: an echo server on {addr} and a client, talking over TCP.");
    println!("Every byte the client writes and reads is shown below. Client frames are masked with a");
    println!("random key (RFC 6455 §5.3); server frames are not.");
    let mut client = Client::connect(addr)?;

    step(2, "A text message", "conn.send_text(\"Hello, WebSocket!\")");
    client.conn.send_text("Hello, WebSocket!")?;
    client.exchange_and_show()?;

    step(3, "A binary message of 200 bytes", "conn.send_binary(0..200)");
    client.conn.send_binary((0..200u8).collect::<Vec<u8>>())?;
    client.exchange_and_show()?;

    step(4, "A message sent in three fragments, received whole", "conn.send_fragment(MessageKind::Text, .., last) ×3");
    client.conn.send_fragment(MessageKind::Text, "Fragmented ", false)?;
    client.conn.send_fragment(MessageKind::Text, "in three ", false)?;
    client.conn.send_fragment(MessageKind::Text, "pieces", true)?;
    client.exchange_and_show()?;

    step(5, "A ping; the server's connection answers with a pong by itself", "conn.ping(\"are you there?\")");
    client.conn.ping("are you there?")?;
    client.exchange_and_show()?;

    step(
        6,
        "The close handshake: each side sends a close frame, then the server closes TCP",
        "conn.close(CloseCode::NORMAL, \"demo finished\")",
    );
    client.conn.close(CloseCode::NORMAL, "demo finished")?;
    client.exchange_and_show()?;
    // The server closes TCP first (RFC 6455 §7.1.1); the client waits for the end of stream.
    client.exchange_and_show()?;
    println!("   state: {:?}, should_close_transport: {}", client.conn.state(), client.conn.should_close_transport());
    let _ = client.wire.inner.shutdown(Shutdown::Both);

    server.join().map_err(|_| "the server thread panicked")??;
    println!(
        "\nDone: upgrade, text, binary, fragmented text, ping/pong and close 1000 over TCP; \
         the client wrote {} bytes and read {}.",
        client.wire.total_sent, client.wire.total_received
    );
    Ok(())
}

fn step(number: u32, title: &str, call: &str) {
    println!("\n{number}. {title}");
    println!("   {call}");
}

// ----- the client -----

/// A `TcpStream` that keeps a copy of the bytes going each way, printed after each step.
struct Wire {
    inner: TcpStream,
    sent: Vec<u8>,
    received: Vec<u8>,
    eof: bool,
    total_sent: usize,
    total_received: usize,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.received.extend_from_slice(&buf[..n]);
        self.total_received += n;
        self.eof |= n == 0;
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sent.extend_from_slice(&buf[..n]);
        self.total_sent += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Client {
    conn: Connection,
    wire: Wire,
}

impl Client {
    /// Connects and upgrades (step 1), printing the request and the response as text.
    fn connect(addr: SocketAddr) -> Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        let mut wire =
            Wire { inner: tcp, sent: Vec::new(), received: Vec::new(), eof: false, total_sent: 0, total_received: 0 };
        let request = ClientRequest::from_url(&format!("ws://{addr}/demo"))?;
        let mut handshake = ClientHandshake::new(request, config());
        step(1, "The opening handshake: an HTTP/1.1 upgrade (RFC 6455 §4)", "ClientHandshake::new(request, config)");
        wire.write_all(&handshake.request_bytes())?;
        let mut buf = [0u8; 4096];
        let conn = loop {
            let n = wire.read(&mut buf)?;
            let result = if n == 0 { handshake.receive_eof().map(|()| None) } else { handshake.receive(&buf[..n]) };
            if let Some(conn) = result? {
                break conn;
            }
        };
        print_text("client → server", &std::mem::take(&mut wire.sent));
        print_text("server → client", &std::mem::take(&mut wire.received));
        println!("   The client checked Sec-WebSocket-Accept = base64(SHA-1(key + GUID)). From here on: frames.");
        Ok(Self { conn, wire })
    }

    /// The drive loop until the connection has something to report: write what is queued, take
    /// the events, stop at events or when the transport should close, else read (with the
    /// timer armed) and go round again.
    fn exchange(&mut self) -> Result<Vec<Event>> {
        let started = std::time::Instant::now();
        loop {
            let now = Instant::now();
            if self.conn.poll_timeout().is_some_and(|at| at <= now) {
                self.conn.handle_timeout(now)?;
            }
            self.write_out()?;
            let events: Vec<Event> = std::iter::from_fn(|| self.conn.poll_event()).collect();
            if !events.is_empty() || self.conn.should_close_transport() {
                // Taking the peer's close queues the reply: write it before returning.
                self.write_out()?;
                return Ok(events);
            }
            if started.elapsed() > PATIENCE {
                return Err("the server did not answer".into());
            }
            let wait = self.conn.poll_timeout().map_or(PATIENCE, |at| at.saturating_duration_since(Instant::now()));
            self.wire.inner.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), PATIENCE)))?;
            match self.wire.read(self.conn.receive_buffer()) {
                Ok(0) => self.conn.receive_eof()?,
                Ok(n) => self.conn.commit_received(n)?,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    self.conn.commit_received(0)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes everything the connection has queued.
    fn write_out(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let n = self.wire.write(self.conn.transmit())?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.conn.advance_transmit(n);
        }
        Ok(())
    }

    /// One exchange, then what went over the wire and the events it produced.
    fn exchange_and_show(&mut self) -> Result<()> {
        let events = self.exchange()?;
        print_frames("client → server", &std::mem::take(&mut self.wire.sent));
        print_frames("server → client", &std::mem::take(&mut self.wire.received));
        if std::mem::take(&mut self.wire.eof) {
            println!("   server → client: end of stream (the server closed the TCP connection)");
        }
        for event in events {
            println!("   event: {}", describe_event(&event));
        }
        Ok(())
    }
}

// ----- printing -----

fn print_text(direction: &str, bytes: &[u8]) {
    println!("   {direction} ({} bytes):", bytes.len());
    for line in String::from_utf8_lossy(bytes).trim_end().lines() {
        println!("     {line}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// A hex dump of at most `DUMP_LIMIT` bytes, then one line per frame decoded.
fn print_frames(direction: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let shown = &bytes[..bytes.len().min(DUMP_LIMIT)];
    let mut rows: Vec<String> = shown.chunks(DUMP_ROW).map(hex).collect();
    if let Some(last) = rows.last_mut().filter(|_| bytes.len() > DUMP_LIMIT) {
        *last += &format!(" … ({} bytes)", bytes.len());
    }
    let indent = " ".repeat(direction.chars().count() + 5);
    println!("   {direction}: {}", rows.join(&format!("\n{indent}")));
    let mut rest = bytes;
    while !rest.is_empty() {
        let Ok(Some((header, header_len))) = FrameHeader::parse(rest) else {
            println!("     (an incomplete or invalid frame)");
            return;
        };
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        let Some(payload) = rest.get(header_len..).and_then(|p| p.get(..len)) else {
            println!("     (an incomplete frame)");
            return;
        };
        let mut payload = payload.to_vec();
        let mut line = format!("     [{}] {}", hex(&rest[..2]), if header.fin { "FIN" } else { "not FIN" });
        line += &format!(", {}", opcode_name(header.opcode));
        if header.rsv[0] {
            line += ", RSV1 (compressed)";
        }
        line += &format!(", length {len}");
        match len {
            0..=125 => {}
            126..=0xFFFF => line += " (in the 16-bit extended field)",
            _ => line += " (in the 64-bit extended field)",
        }
        if let Some(key) = header.mask {
            line += &format!(", masked with key {}", hex(&key));
            apply_mask(&mut payload, key, 0);
        }
        println!("{line}: {}", describe_payload(header.opcode, header.rsv[0], &payload));
        rest = &rest[header_len + len..];
    }
}

fn opcode_name(opcode: OpCode) -> &'static str {
    match opcode {
        OpCode::Continuation => "continuation",
        OpCode::Text => "text",
        OpCode::Binary => "binary",
        OpCode::Close => "close",
        OpCode::Ping => "ping",
        OpCode::Pong => "pong",
    }
}

fn describe_payload(opcode: OpCode, compressed: bool, payload: &[u8]) -> String {
    let short_hex = |p: &[u8]| {
        let more = if p.len() > 8 { " …" } else { "" };
        format!("{}{more}", hex(&p[..p.len().min(8)]))
    };
    if compressed {
        return format!("deflate data {}", short_hex(payload));
    }
    match opcode {
        OpCode::Binary => short_hex(payload),
        OpCode::Close => match payload {
            [] => "no status code".into(),
            [hi, lo, reason @ ..] => {
                format!("code {}, reason {:?}", u16::from_be_bytes([*hi, *lo]), String::from_utf8_lossy(reason))
            }
            _ => short_hex(payload),
        },
        _ => match std::str::from_utf8(payload) {
            Ok(text) => format!("{text:?}"),
            // A fragment of a text message may end inside a character.
            Err(_) => short_hex(payload),
        },
    }
}

fn describe_event(event: &Event) -> String {
    match event {
        Event::Message(Message::Text(text)) => format!("Message(Text({:?}))", text.as_str()),
        Event::Message(Message::Binary(data)) => format!("Message(Binary({} bytes))", data.len()),
        Event::Ping(payload) => format!("Ping({:?})", String::from_utf8_lossy(payload)),
        Event::Pong(payload) => format!("Pong({:?})", String::from_utf8_lossy(payload)),
        Event::Close(Some(CloseFrame { code, reason })) => format!("Close({code}, {:?})", reason.as_str()),
        Event::Close(None) => "Close(no status code)".into(),
        other => format!("{other:?}"),
    }
}

// ----- the server -----

/// A blocking echo server for one connection, the same loop as `examples/std_echo_server.rs`.
fn serve_one(listener: &TcpListener) -> Result<()> {
    let (mut tcp, _) = listener.accept()?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    let mut handshake = ServerHandshake::new(config());
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        match handshake.receive(&buf[..n]) {
            Ok(Some(_request)) => break,
            Ok(None) => {}
            Err(e) => {
                tcp.write_all(&e.response())?;
                return Err(e.into());
            }
        }
    }
    let mut conn = handshake.accept(Accept::new())?;
    loop {
        let now = Instant::now();
        if conn.poll_timeout().is_some_and(|at| at <= now) {
            // A failure is sticky; the loop writes its close frame and shuts down.
            let _ = conn.handle_timeout(now);
        }
        while conn.wants_write() {
            let n = tcp.write(conn.transmit())?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            conn.advance_transmit(n);
        }
        let mut produced = false;
        while let Some(event) = conn.poll_event() {
            produced = true;
            if let Event::Message(message) = event {
                // Only fails once the connection is closing, when echoes no longer matter.
                let _ = conn.send(message);
            }
        }
        if produced {
            continue;
        }
        if conn.should_close_transport() {
            tcp.shutdown(Shutdown::Both)?;
            return Ok(());
        }
        let wait = conn.poll_timeout().map_or(PATIENCE, |at| at.saturating_duration_since(Instant::now()));
        tcp.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), PATIENCE)))?;
        let result = match tcp.read(conn.receive_buffer()) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => conn.commit_received(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                conn.commit_received(0).and_then(|()| conn.handle_timeout(Instant::now()))
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = result {
            eprintln!("server: connection failed: {e}");
        }
    }
}
