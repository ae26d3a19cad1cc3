//! An interoperability check against an echo server we did not write (Python `websockets`,
//! Node `ws`, or any other): runs a fixed scenario and verifies every echo byte for byte.
//!
//! ```text
//! cargo run --release --example interop_client -- ws://HOST:PORT/PATH [--no-deflate | --deflate-tight] [--expect-deflate] [--large]
//! ```
//!
//! The scenario, on one connection: text and binary messages of 0, 1, 125, 126, 127, 65535,
//! 65536 and 1 MiB bytes (and 16 MiB with `--large`), multi-byte UTF-8 text, compressible and
//! incompressible payloads, messages sent in pieces with
//! [`send_fragment`](wscore::Connection::send_fragment) (text pieces split inside a code
//! point, empty pieces, a ping between pieces), a burst of pipelined messages, pings whose
//! pongs must carry the same payload, and a close with code 4000 and a reason: the server must
//! echo the code (the reason, too, or none) and then close the TCP connection. A second connection, with
//! [`Config::write_fragment_size`] at 1000 bytes, checks messages the core splits by itself.
//!
//! permessage-deflate is offered unless `--no-deflate` is given; the client prints whether the
//! server accepted it and with which parameters. `--deflate-tight` asks for no context takeover
//! on both sides and 9-bit windows, and compresses every message however small.
//! `--expect-deflate` turns negotiation (and with `--deflate-tight`, the server's acceptance of
//! its requests) into a check.
//!
//! One line is printed per check (`PASS name` or `FAIL name: why`), then `N passed, M failed`;
//! the exit status is 0 only when every check passed.
//!
//! The driver is blocking `std::net` following the drive loop in the crate docs: write
//! everything queued, take the events, shut down when told to, and read with a timeout taken
//! from [`poll_timeout`](wscore::Connection::poll_timeout) (or the check's own deadline,
//! whichever is sooner). The scenario only ever has one large message in flight, so blocking
//! writes cannot deadlock with the echo coming back.

use std::collections::VecDeque;
use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use wscore::{
    ClientHandshake, ClientRequest, CloseCode, CloseFrame, Config, Connection, Event, Instant, Message, MessageKind,
};

type BoxError = Box<dyn Error + Send + Sync>;

/// How long one check may take (a 16 MiB echo through a Python server included).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the server's handshake response.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The sizes every text and binary message check runs at.
const SIZES: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];
/// The extra size `--large` adds.
const LARGE: usize = 16 << 20;

/// The command line.
#[derive(Debug)]
struct Options {
    url: String,
    deflate: bool,
    tight: bool,
    expect_deflate: bool,
    large: bool,
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report::default();
    run_main_connection(&options, &mut report);
    run_auto_fragment_connection(&options, &mut report);
    println!("{} passed, {} failed", report.passed, report.failed);
    if report.failed == 0 && report.passed > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn parse_args() -> Result<Options, String> {
    let usage =
        "usage: interop_client ws://HOST:PORT/PATH [--no-deflate | --deflate-tight] [--expect-deflate] [--large]";
    let mut options = Options { url: String::new(), deflate: true, tight: false, expect_deflate: false, large: false };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-deflate" => options.deflate = false,
            "--deflate-tight" => options.tight = true,
            "--expect-deflate" => options.expect_deflate = true,
            "--large" => options.large = true,
            "-h" | "--help" => return Err(usage.into()),
            url if !url.starts_with('-') && options.url.is_empty() => options.url = url.into(),
            other => return Err(format!("unexpected argument {other:?}\n{usage}")),
        }
    }
    if options.url.is_empty() {
        return Err(usage.into());
    }
    if !options.deflate && (options.expect_deflate || options.tight) {
        return Err(format!("--no-deflate contradicts --expect-deflate and --deflate-tight\n{usage}"));
    }
    Ok(options)
}

/// Room for the largest echo, with permessage-deflate offered (as asked) or not.
#[cfg(feature = "deflate")]
fn client_config(options: &Options) -> Config {
    let config = Config::default().max_message_size(64 << 20).max_frame_size(64 << 20).max_write_buffer(128 << 20);
    let tight = wscore::DeflateConfig::default()
        .server_no_context_takeover(true)
        .client_no_context_takeover(true)
        .server_max_window_bits(9)
        .client_max_window_bits(9)
        .threshold(0);
    match (options.deflate, options.tight) {
        (false, _) => config.deflate(None),
        (true, false) => config,
        (true, true) => config.deflate(Some(tight)),
    }
}

/// Room for the largest echo (this build has no permessage-deflate to offer).
#[cfg(not(feature = "deflate"))]
fn client_config(_options: &Options) -> Config {
    Config::default().max_message_size(64 << 20).max_frame_size(64 << 20).max_write_buffer(128 << 20)
}

/// The permessage-deflate parameters in force, if any, and whether the server granted what
/// `--deflate-tight` asks of it (no context takeover and a window of at most 9 bits).
#[cfg(feature = "deflate")]
fn deflate_in_force(conn: &Connection) -> Option<(String, bool)> {
    conn.deflate_params().map(|p| (format!("{p:?}"), p.server_no_context_takeover && p.server_max_window_bits <= 9))
}

/// The permessage-deflate parameters in force: never, in this build.
#[cfg(not(feature = "deflate"))]
fn deflate_in_force(_conn: &Connection) -> Option<(String, bool)> {
    None
}

/// Pass and fail counts; prints one line per check.
#[derive(Debug, Default)]
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
}

/// Deterministic bytes that do not compress (xorshift64*).
fn noise(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Exactly `len` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters.
fn utf8_text(len: usize) -> String {
    const CHARS: [char; 8] = ['a', 'é', '€', '𝄞', 'Z', 'ж', '你', '🌍'];
    let mut out = String::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let c = CHARS[i % CHARS.len()];
        // Pad the tail with ASCII so the length is exact.
        out.push(if out.len() + c.len_utf8() <= len { c } else { '.' });
        i += 1;
    }
    out
}

/// Why two payloads differ, briefly.
fn compare(kind: MessageKind, expected: &[u8], got: &Message) -> Result<(), String> {
    if got.kind() != kind {
        return Err(format!("expected a {kind:?} message, got {:?} ({} bytes)", got.kind(), got.len()));
    }
    let got = got.as_bytes();
    if got == expected {
        return Ok(());
    }
    let at = expected.iter().zip(got).position(|(a, b)| a != b).unwrap_or(expected.len().min(got.len()));
    Err(format!("echo differs: expected {} bytes, got {}, first difference at byte {at}", expected.len(), got.len()))
}

/// One connection to the echo server, driven by blocking reads and writes. Events are
/// sorted into queues that the checks wait on.
#[derive(Debug)]
struct Peer {
    tcp: TcpStream,
    conn: Connection,
    messages: VecDeque<Message>,
    pongs: VecDeque<Bytes>,
    close: Option<Option<CloseFrame>>,
    transport_closed: bool,
}

impl Peer {
    fn connect(url: &str, config: Config) -> Result<Self, BoxError> {
        let request = ClientRequest::from_url(url)?;
        if request.is_secure() {
            return Err("wss:// needs TLS, which this example does not do".into());
        }
        let mut tcp = TcpStream::connect((request.host(), request.port()))?;
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(CHECK_TIMEOUT))?;

        let mut handshake = ClientHandshake::new(request, config);
        tcp.write_all(&handshake.request_bytes())?;
        tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let mut buf = [0u8; 4096];
        let conn = loop {
            let n = tcp.read(&mut buf)?;
            if n == 0 {
                handshake.receive_eof()?;
                return Err("connection closed during the handshake".into());
            }
            if let Some(conn) = handshake.receive(&buf[..n])? {
                break conn;
            }
        };
        Ok(Self { tcp, conn, messages: VecDeque::new(), pongs: VecDeque::new(), close: None, transport_closed: false })
    }

    /// Queues something on the connection and writes it out.
    fn command(&mut self, f: impl FnOnce(&mut Connection) -> Result<(), wscore::SendError>) -> Result<(), String> {
        f(&mut self.conn).map_err(|e| format!("send failed: {e}"))?;
        self.flush().map_err(|e| format!("write failed: {e}"))
    }

    /// Step 1 of the drive loop: write everything queued.
    fn flush(&mut self) -> Result<(), BoxError> {
        while !self.conn.transmit().is_empty() && !self.transport_closed {
            match self.tcp.write(self.conn.transmit()) {
                Ok(0) => return Err("the transport accepts no more bytes".into()),
                Ok(n) => self.conn.advance_transmit(n),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// One turn of the drive loop, reading for at most until `deadline`.
    fn turn(&mut self, deadline: Instant) -> Result<(), BoxError> {
        // 1. Write.
        self.flush()?;
        // 2. Events, sorted into the queues; taking a close may queue the reply.
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            match event {
                Event::Message(message) => self.messages.push_back(message),
                Event::Pong(payload) => self.pongs.push_back(payload),
                Event::Close(frame) => self.close = Some(frame),
                _ => {}
            }
        }
        if any {
            return self.flush();
        }
        // 3. Shut down when told to.
        if self.conn.should_close_transport() {
            let _ = self.tcp.shutdown(Shutdown::Both);
            self.transport_closed = true;
            return Ok(());
        }
        // 4. Timers, and a read bounded by the next deadline.
        let now = Instant::now();
        let wake = match self.conn.poll_timeout() {
            Some(at) if at <= now => {
                let _ = self.conn.handle_timeout(now);
                return Ok(());
            }
            Some(at) if at < deadline => at,
            _ => deadline,
        };
        if wake <= now {
            return Ok(());
        }
        self.tcp.set_read_timeout(Some((wake - now).max(Duration::from_millis(1))))?;
        match self.tcp.read(self.conn.receive_buffer()) {
            Ok(0) => {
                let _ = self.conn.commit_received(0);
                let _ = self.conn.receive_eof();
            }
            Ok(n) => {
                let _ = self.conn.commit_received(n);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                let _ = self.conn.commit_received(0);
            }
            Err(err) if matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                let _ = self.conn.commit_received(0);
                let _ = self.conn.receive_eof();
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Runs the drive loop until `ready` finds what it waits for, the transport closes or the
    /// check's time runs out.
    fn wait<T>(&mut self, what: &str, mut ready: impl FnMut(&mut Self) -> Option<T>) -> Result<T, String> {
        let deadline = Instant::now() + CHECK_TIMEOUT;
        loop {
            if let Some(found) = ready(self) {
                return Ok(found);
            }
            if self.transport_closed {
                let why = match self.conn.error() {
                    Some(err) => format!("connection failed: {err}"),
                    None => "the transport closed".into(),
                };
                return Err(format!("{why} while waiting for {what}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out after {CHECK_TIMEOUT:?} waiting for {what}"));
            }
            self.turn(deadline).map_err(|e| format!("{e} while waiting for {what}"))?;
        }
    }

    fn next_message(&mut self) -> Result<Message, String> {
        self.wait("the echo", |peer| peer.messages.pop_front())
    }

    fn next_pong(&mut self) -> Result<Bytes, String> {
        self.wait("a pong", |peer| peer.pongs.pop_front())
    }

    /// Sends a message whole and checks its echo.
    fn echo(&mut self, kind: MessageKind, payload: Bytes) -> Result<(), String> {
        let message = match kind {
            MessageKind::Text => Message::Text(
                wscore::Utf8Bytes::try_from_bytes(payload.clone()).map_err(|_| "test text is not UTF-8".to_string())?,
            ),
            _ => Message::Binary(payload.clone()),
        };
        self.command(|conn| conn.send(message))?;
        compare(kind, &payload, &self.next_message()?)
    }

    /// Sends a message in the given pieces and checks that the echo is their concatenation.
    fn echo_pieces(&mut self, kind: MessageKind, pieces: &[Bytes]) -> Result<(), String> {
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            self.command(|conn| conn.send_fragment(kind, piece.clone(), i == last))?;
        }
        let whole: Vec<u8> = pieces.concat();
        compare(kind, &whole, &self.next_message()?)
    }

    /// Sends a ping and checks that the pong carries the same payload.
    fn ping(&mut self, payload: Bytes) -> Result<(), String> {
        self.command(|conn| conn.ping(payload.clone()))?;
        let pong = self.next_pong()?;
        if pong == payload { Ok(()) } else { Err(format!("pong payload {pong:?}, expected {payload:?}")) }
    }

    /// Closes with `code` and `reason`; checks the echoed code and a clean end of the transport.
    fn close(&mut self, code: CloseCode, reason: &str) -> Result<String, String> {
        self.command(|conn| conn.close(code, reason))?;
        let frame = self.wait("the close frame", |peer| peer.close.take())?;
        // The code must be echoed; the reason may be (RFC 6455 §5.5.1).
        let echoed = match frame {
            Some(frame) if frame.code == code && (frame.reason.is_empty() || frame.reason == reason) => {
                format!("code {}, reason {:?}", frame.code, frame.reason.as_str())
            }
            Some(frame) => {
                return Err(format!("server closed with {} {:?}, expected {code}", frame.code, frame.reason));
            }
            None => return Err(format!("server closed without a status code, expected {code}")),
        };
        self.wait("the server to close the TCP connection", |peer| peer.transport_closed.then_some(()))?;
        match self.conn.error() {
            Some(err) => Err(format!("closed with an error: {err}")),
            None => Ok(echoed),
        }
    }
}

/// The main scenario on one connection with the default write fragment size.
fn run_main_connection(options: &Options, report: &mut Report) {
    let mut peer = match Peer::connect(&options.url, client_config(options)) {
        Ok(peer) => {
            report.check("handshake", Ok(()));
            peer
        }
        Err(err) => return report.check("handshake", Err(err.to_string())),
    };
    let deflate = deflate_in_force(&peer.conn);
    match &deflate {
        Some((params, _)) => println!("permessage-deflate: negotiated {params}"),
        None if options.deflate => println!("permessage-deflate: offered, not negotiated"),
        None => println!("permessage-deflate: not offered"),
    }
    if options.expect_deflate {
        report.check(
            "permessage-deflate negotiated",
            match &deflate {
                None => Err("declined".into()),
                Some((params, false)) if options.tight => {
                    Err(format!("server did not grant the tight offer: {params}"))
                }
                Some(_) => Ok(()),
            },
        );
    }
    if !options.deflate {
        report.check(
            "permessage-deflate not negotiated",
            match deflate {
                None => Ok(()),
                Some((params, _)) => Err(format!("negotiated without an offer: {params}")),
            },
        );
    }

    // Whole messages at every size around the frame length encodings (7-bit, 16-bit, 64-bit).
    let mut sizes = SIZES.to_vec();
    if options.large {
        sizes.push(LARGE);
    }
    for &size in &sizes {
        let text = Bytes::from(utf8_text(size));
        report.check(&format!("text {size} bytes (multi-byte UTF-8)"), peer.echo(MessageKind::Text, text));
        report
            .check(&format!("binary {size} bytes (random)"), peer.echo(MessageKind::Binary, noise(size, size as u64)));
    }
    report.check(
        "text 1 MiB ASCII, compressible",
        peer.echo(MessageKind::Text, Bytes::from("the quick brown fox. ".repeat(50_000))),
    );
    report.check("binary 1 MiB of zeros", peer.echo(MessageKind::Binary, Bytes::from(vec![0u8; 1 << 20])));
    for text in [
        "héllo wörld",
        "Ελληνικά, русский, 日本語, 한국어",
        "emoji 🌍🚀👩‍💻 and 𝄞 (4-byte)",
        "\u{FEFF}\u{10FFFF}\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}",
    ] {
        report.check(&format!("text {text:?}"), peer.echo(MessageKind::Text, Bytes::from(text)));
    }

    // Messages sent in pieces.
    let sentence = "Hello, wörld 🌍! ".as_bytes();
    let (a, rest) = sentence.split_at(9); // inside 'ö'
    let (b, c) = rest.split_at(7); // inside '🌍'
    let split = [Bytes::copy_from_slice(a), Bytes::copy_from_slice(b), Bytes::copy_from_slice(c)];
    report.check("text in 3 fragments split inside code points", peer.echo_pieces(MessageKind::Text, &split));
    let big = noise(300_000, 7);
    let thirds = [big.slice(..100_000), big.slice(100_000..200_000), big.slice(200_000..)];
    report.check("binary 300000 bytes in 3 fragments", peer.echo_pieces(MessageKind::Binary, &thirds));
    let hollow = [Bytes::new(), Bytes::from_static(b"middle"), Bytes::new()];
    report.check("binary with empty first and last fragments", peer.echo_pieces(MessageKind::Binary, &hollow));
    let text = utf8_text(1000);
    let bytes: Vec<Bytes> = text.as_bytes().chunks(10).map(Bytes::copy_from_slice).collect();
    report.check("text in 100 fragments of 10 bytes", peer.echo_pieces(MessageKind::Text, &bytes));
    report.check("empty text as one final fragment", peer.echo_pieces(MessageKind::Text, &[Bytes::new()]));
    report.check("ping between fragments", ping_between_fragments(&mut peer));

    // A burst: everything queued before any echo is read; echoes must come back in order.
    report.check("20 pipelined messages, echoed in order", pipelined(&mut peer));

    // Pings.
    report.check("ping, empty payload", peer.ping(Bytes::new()));
    report.check("ping, text payload", peer.ping(Bytes::from_static(b"interop ping")));
    report.check("ping, 125-byte payload", peer.ping(noise(125, 125)));
    report.check("ping right behind a 1 MiB message", ping_behind_message(&mut peer));

    // The close handshake.
    let result = peer.close(CloseCode(4000), "interop: done ✓").map(|echoed| println!("close echoed: {echoed}"));
    report.check("close 4000 with a reason, echoed", result);
}

fn ping_between_fragments(peer: &mut Peer) -> Result<(), String> {
    peer.command(|conn| conn.send_fragment(MessageKind::Text, "before ping, ", false))?;
    peer.command(|conn| conn.ping("mid-message"))?;
    peer.command(|conn| conn.send_fragment(MessageKind::Text, "after ping", true))?;
    let pong = peer.next_pong()?;
    if pong != "mid-message" {
        return Err(format!("pong payload {pong:?}"));
    }
    compare(MessageKind::Text, b"before ping, after ping", &peer.next_message()?)
}

fn pipelined(peer: &mut Peer) -> Result<(), String> {
    let mut sent = Vec::new();
    for i in 0..20u64 {
        let (kind, payload) = if i % 2 == 0 {
            (MessageKind::Text, Bytes::from(format!("message {i}: {}", utf8_text(i as usize * 37))))
        } else {
            (MessageKind::Binary, noise(i as usize * 101, i))
        };
        let message = match kind {
            MessageKind::Text => Message::Text(
                wscore::Utf8Bytes::try_from_bytes(payload.clone()).map_err(|_| "test text is not UTF-8".to_string())?,
            ),
            _ => Message::Binary(payload.clone()),
        };
        peer.conn.send(message).map_err(|e| format!("send failed: {e}"))?;
        sent.push((kind, payload));
    }
    peer.flush().map_err(|e| format!("write failed: {e}"))?;
    for (i, (kind, payload)) in sent.iter().enumerate() {
        compare(*kind, payload, &peer.next_message()?).map_err(|e| format!("message {i}: {e}"))?;
    }
    Ok(())
}

fn ping_behind_message(peer: &mut Peer) -> Result<(), String> {
    let payload = noise(1 << 20, 99);
    peer.conn.send_binary(payload.clone()).map_err(|e| format!("send failed: {e}"))?;
    peer.command(|conn| conn.ping("behind"))?;
    let pong = peer.next_pong()?;
    if pong != "behind" {
        return Err(format!("pong payload {pong:?}"));
    }
    compare(MessageKind::Binary, &payload, &peer.next_message()?)
}

/// A second connection whose sends the core splits into 1000-byte frames by itself.
fn run_auto_fragment_connection(options: &Options, report: &mut Report) {
    let config = client_config(options).write_fragment_size(1000);
    let mut peer = match Peer::connect(&options.url, config) {
        Ok(peer) => peer,
        Err(err) => return report.check("auto-fragmented: handshake", Err(err.to_string())),
    };
    let text = Bytes::from(utf8_text(100_000));
    report.check("auto-fragmented: text 100000 bytes in 1000-byte frames", peer.echo(MessageKind::Text, text));
    report.check(
        "auto-fragmented: binary 1 MiB in 1000-byte frames",
        peer.echo(MessageKind::Binary, noise(1 << 20, 1000)),
    );
    report.check("auto-fragmented: binary 1001 bytes", peer.echo(MessageKind::Binary, noise(1001, 1001)));
    report.check("auto-fragmented: close 1000", peer.close(CloseCode::NORMAL, "").map(|_| ()));
}
