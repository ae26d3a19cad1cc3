//! Load and soak test against a running echo server: many concurrent connections, messages of
//! random sizes and random fragmentation, every echo verified, and the server's memory watched
//! across rounds.
//!
//! ```text
//! cargo run --release --example load_soak -- ws://127.0.0.1:9300 --connections 1000 --rounds 3 --seed 1 [--server-pid PID]
//! ```
//!
//! Options: `--connections N` (default 100), `--rounds R` (default 3), `--seed S` (default 1),
//! `--round-bytes B` (payload bytes sent per round over all connections, default 16 MiB),
//! `--server-pid PID` (read the server's RSS from `/proc/PID/status` after every round),
//! `--rss-tolerance PCT` (default 25), `--no-deflate` (do not offer permessage-deflate),
//! `--no-warmup` (skip the warm-up round).
//!
//! What it does:
//!
//! 1. opens N connections at once (at most 64 handshakes in flight), each driven by one task;
//! 2. runs a warm-up round: every connection sends messages of 64 B, 1, 8, 32 and 64 KiB, then
//!    a round's worth of random messages go out as in the measured rounds, so every
//!    connection's buffers and compression state (and the allocator pools behind them) reach
//!    their working size before memory is first measured;
//! 3. every round, draws a plan from the seed: every connection sends at least one message of
//!    64 B–4 KiB; the edge sizes (0, 1, 125–127, 65 535–65 537 bytes, 1 MiB − 1 and 1 MiB) go
//!    to random connections; then messages of 512 KiB–1 MiB until a quarter of the round's byte
//!    budget is spent, and log-uniform sizes from 0 B to 1 MiB (every power-of-two band
//!    equally likely) for the rest; text and binary, a third of them streamed with
//!    `send_fragment` in 2–8 random pieces (text cut inside code points too). Each round
//!    prints how many messages fell in each size class;
//! 4. every message carries its own checksum (binary: the first 8 bytes are the FNV-1a hash of
//!    the rest; text: the first 16 characters are that hash in hex), and every echo is checked
//!    against the message sent (kind, length, hash) in order;
//! 5. after every round, reads the server's RSS (the least of its readings over the next
//!    half second, so that buffers of the last echoes, let go moments later, do not count);
//!    after the last round, fails if it grew more than the tolerance over the RSS after
//!    round 1 and by more than 4 MiB (growth after the warm-up means a leak; a few MiB are
//!    allocator slack for the largest messages);
//! 6. closes every connection with 1000 and prints `N passed, M failed`: one check per echoed
//!    message, per connection that must close cleanly, and the RSS check. Exits 0 only if
//!    nothing failed.
//!
//! The client side uses only the crate's public sans-I/O API: [`ClientHandshake`] for the
//! upgrade and a [`Connection`] driven by a small readiness loop (`ready`, `try_read`,
//! `try_write`, and a timer for the connection's deadlines). Raise the file descriptor limit
//! (`ulimit -n`) before opening thousands of connections.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use wscore::{
    ClientHandshake, ClientRequest, Config, Connection, Event, Instant, Message, MessageKind, SeededRandom, State,
};

/// Handshakes in flight at once (keeps the server's accept backlog from overflowing).
const CONNECT_CONCURRENCY: usize = 64;
/// A connection queues its next message only while less than this is waiting to be written.
const SEND_WINDOW: usize = 256 << 10;
/// Messages sent but not yet echoed, per connection.
const MAX_OUTSTANDING: usize = 8;
/// The largest message.
const MAX_MESSAGE: usize = 1 << 20;
/// RSS growth after round 1 that never counts as a leak, whatever the tolerance (KiB).
const RSS_SLACK_KIB: u64 = 4 << 10;
/// Sizes every round sends once: the ends of the range and both sides of the frame header's
/// length encodings (7 bits, 16 bits, 64 bits).
const EDGE_SIZES: [usize; 10] = [0, 1, 125, 126, 127, 65_535, 65_536, 65_537, MAX_MESSAGE - 1, MAX_MESSAGE];
/// The share of a round's byte budget sent as messages of 512 KiB to 1 MiB, on top of those
/// the log-uniform draw gives.
const LARGE_SHARE_PERCENT: usize = 25;
/// A round (or the final close) that takes longer than this fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

// ----- options -----

#[derive(Debug, Clone)]
struct Options {
    url: String,
    connections: usize,
    rounds: usize,
    seed: u64,
    round_bytes: usize,
    server_pid: Option<u32>,
    rss_tolerance: f64,
    deflate: bool,
    warmup: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        url: String::new(),
        connections: 100,
        rounds: 3,
        seed: 1,
        round_bytes: 16 << 20,
        server_pid: None,
        rss_tolerance: 25.0,
        deflate: true,
        warmup: true,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--connections" => options.connections = parse(&value("--connections")?)?,
            "--rounds" => options.rounds = parse(&value("--rounds")?)?,
            "--seed" => options.seed = parse(&value("--seed")?)?,
            "--round-bytes" => options.round_bytes = parse(&value("--round-bytes")?)?,
            "--server-pid" => options.server_pid = Some(parse(&value("--server-pid")?)?),
            "--rss-tolerance" => options.rss_tolerance = parse(&value("--rss-tolerance")?)?,
            "--no-deflate" => options.deflate = false,
            "--no-warmup" => options.warmup = false,
            url if url.starts_with("ws://") && options.url.is_empty() => options.url = url.into(),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if options.url.is_empty() {
        return Err("usage: load_soak ws://HOST:PORT [--connections N] [--rounds R] [--seed S] \
                    [--round-bytes B] [--server-pid PID] [--rss-tolerance PCT] [--no-deflate] [--no-warmup]"
            .into());
    }
    if options.connections == 0 || options.rounds == 0 {
        return Err("--connections and --rounds must be at least 1".into());
    }
    Ok(options)
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("invalid number {s:?}"))
}

// ----- deterministic randomness and checksums -----

/// SplitMix64: small, fast, and the same sequence on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x6A09_E667_F3BC_C908)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `true` with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// A message size, log-uniform over 0 B to 1 MiB: the 21 bands 0, 1, 2–3, 4–7, …, 256–512 KiB
/// and 512 KiB–1 MiB are equally likely, sizes uniform within a band. Every order of magnitude
/// gets the same number of messages, so large ones are as common as small ones (a uniform draw
/// would make small ones rare, a draw skewed to small sizes the large ones).
fn draw_size(rng: &mut Rng) -> usize {
    match rng.range(0, 20) {
        0 => 0,
        20 => rng.range(MAX_MESSAGE / 2, MAX_MESSAGE),
        band => rng.range(1 << (band - 1), (1 << band) - 1),
    }
}

/// One message of a round's plan.
#[derive(Debug, Clone)]
struct Spec {
    kind: MessageKind,
    size: usize,
    /// Streamed in this many pieces with `send_fragment` (1: sent whole with `send`).
    pieces: usize,
    seed: u64,
}

/// The plan of one round: the messages of every connection. Every connection sends a small
/// message; the edge sizes go to random connections; then messages of 512 KiB to 1 MiB until
/// [`LARGE_SHARE_PERCENT`] of the byte budget is spent, and log-uniform sizes
/// ([`draw_size`]) for the rest.
fn plan_round(rng: &mut Rng, connections: usize, round_bytes: usize) -> Vec<Vec<Spec>> {
    fn spec(rng: &mut Rng, size: usize) -> Spec {
        let kind = if rng.chance(30) { MessageKind::Text } else { MessageKind::Binary };
        let pieces = if rng.chance(33) { rng.range(2, 8) } else { 1 };
        Spec { kind, size, pieces, seed: rng.next_u64() }
    }
    let mut plan = vec![Vec::new(); connections];
    let mut total = 0;
    // Every connection sends at least one message worth compressing (at least the default
    // 64-byte threshold), so round 1 allocates every connection's compression state on both
    // ends: RSS growth after round 1 is then growth, not warm-up.
    for messages in plan.iter_mut() {
        let size = rng.range(64, 4096);
        total += size;
        messages.push(spec(rng, size));
    }
    let mut add = |rng: &mut Rng, size: usize, total: &mut usize| {
        *total += size;
        let at = rng.range(0, connections - 1);
        plan[at].push(spec(rng, size));
    };
    for size in EDGE_SIZES {
        add(rng, size, &mut total);
    }
    let large_budget = round_bytes / 100 * LARGE_SHARE_PERCENT;
    let mut large = 0;
    while large < large_budget {
        let size = rng.range(MAX_MESSAGE / 2, MAX_MESSAGE);
        large += size;
        add(rng, size, &mut total);
    }
    while total < round_bytes {
        let size = draw_size(rng);
        add(rng, size, &mut total);
    }
    plan
}

/// How many messages of a plan fall in each size class, for the round's report.
fn size_classes(plan: &[Vec<Spec>]) -> String {
    let mut counts = [0usize; 4];
    let mut largest = 0;
    for spec in plan.iter().flatten() {
        let class = match spec.size {
            0..=1023 => 0,
            1024..=65_535 => 1,
            65_536..=524_287 => 2,
            _ => 3,
        };
        counts[class] += 1;
        largest = largest.max(spec.size);
    }
    format!(
        "sizes < 1 KiB: {}, 1-64 KiB: {}, 64-512 KiB: {}, 512 KiB-1 MiB: {}, largest {largest} B",
        counts[0], counts[1], counts[2], counts[3]
    )
}

/// The warm-up round: every connection sends a ladder of sizes, so each one's buffers (and
/// the allocator's pools behind them) reach their working size before RSS is first measured.
fn plan_warmup(rng: &mut Rng, connections: usize) -> Vec<Vec<Spec>> {
    (0..connections)
        .map(|_| {
            [64, 1 << 10, 8 << 10, 32 << 10, 64 << 10]
                .into_iter()
                .map(|size| {
                    let kind = if rng.chance(30) { MessageKind::Text } else { MessageKind::Binary };
                    let pieces = if rng.chance(33) { rng.range(2, 8) } else { 1 };
                    Spec { kind, size, pieces, seed: rng.next_u64() }
                })
                .collect()
        })
        .collect()
}

/// The payload of a message: compressible content with random runs, led by its checksum.
fn build_payload(spec: &Spec) -> Bytes {
    let mut rng = Rng::new(spec.seed);
    match spec.kind {
        MessageKind::Binary => {
            let mut body = Vec::with_capacity(spec.size);
            while body.len() + 8 < spec.size {
                let run = rng.range(1, 64).min(spec.size - 8 - body.len());
                if rng.chance(50) {
                    body.extend((0..run).map(|_| rng.next_u64() as u8));
                } else {
                    body.extend(std::iter::repeat_n(rng.next_u64() as u8, run));
                }
            }
            if spec.size < 8 {
                return Bytes::from(vec![0xA5; spec.size]);
            }
            let mut out = fnv1a(&body).to_le_bytes().to_vec();
            out.extend_from_slice(&body);
            Bytes::from(out)
        }
        MessageKind::Text => {
            const WORDS: [&str; 8] = ["echo ", "wörld ", "€uro ", "😀 ", "soak ", "load ", "ünïcode ", "\n"];
            let mut body = String::with_capacity(spec.size);
            while body.len() + 16 < spec.size {
                let word = WORDS[rng.range(0, WORDS.len() - 1)];
                if body.len() + 16 + word.len() > spec.size {
                    body.push('.');
                } else {
                    body.push_str(word);
                }
            }
            if spec.size < 16 {
                return Bytes::from("t".repeat(spec.size));
            }
            let mut out = format!("{:016x}", fnv1a(body.as_bytes()));
            out.push_str(&body);
            Bytes::from(out)
        }
    }
}

/// Checks an echo's own checksum (the message must also match what was sent).
fn self_consistent(kind: MessageKind, data: &[u8]) -> bool {
    match kind {
        MessageKind::Binary if data.len() >= 8 => data[..8] == fnv1a(&data[8..]).to_le_bytes(),
        MessageKind::Text if data.len() >= 16 => data[..16] == *format!("{:016x}", fnv1a(&data[16..])).as_bytes(),
        _ => true,
    }
}

// ----- one connection -----

/// What one connection did in one round.
#[derive(Debug, Default, Clone)]
struct RoundStats {
    sent: usize,
    echoed_ok: usize,
    failed: usize,
    bytes_sent: u64,
    bytes_received: u64,
    errors: Vec<String>,
}

impl RoundStats {
    fn add(&mut self, other: &RoundStats) {
        self.sent += other.sent;
        self.echoed_ok += other.echoed_ok;
        self.failed += other.failed;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.errors.extend(other.errors.iter().take(5usize.saturating_sub(self.errors.len())).cloned());
    }
}

/// A connected client: the socket and the sans-I/O connection.
#[derive(Debug)]
struct Client {
    id: usize,
    tcp: TcpStream,
    conn: Connection,
}

async fn connect(id: usize, options: &Options, limit: &Semaphore) -> Result<Client, String> {
    let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
    let request = ClientRequest::from_url(&options.url).map_err(|e| e.to_string())?;
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut config = Config::default().max_message_size(2 * MAX_MESSAGE);
    #[cfg(feature = "deflate")]
    if !options.deflate {
        config = config.deflate(None);
    }
    let random = Box::new(SeededRandom::new(options.seed.wrapping_mul(1_000_003).wrapping_add(id as u64)));
    let mut handshake = ClientHandshake::with_random(request.clone(), config, random);
    let mut tcp = TcpStream::connect((request.host(), request.port())).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.write_all(&handshake.request_bytes()).await.map_err(|e| format!("write request: {e}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            return Err(format!("handshake: {}", handshake.receive_eof().unwrap_err()));
        }
        if let Some(conn) = handshake.receive(&buf[..n]).map_err(|e| format!("handshake: {e}"))? {
            return Ok(Client { id, tcp, conn });
        }
    }
}

/// A message sent and not yet echoed.
#[derive(Debug)]
struct Expected {
    kind: MessageKind,
    len: usize,
    hash: u64,
}

/// Runs one round's messages on one connection: sends them (a window at a time), checks every
/// echo, and returns the connection for the next round.
async fn run_round(mut client: Client, specs: Vec<Spec>) -> (Client, RoundStats) {
    let mut stats = RoundStats::default();
    let result = tokio::time::timeout(ROUND_TIMEOUT, drive_round(&mut client, specs, &mut stats)).await;
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("round timed out after {ROUND_TIMEOUT:?}")),
    };
    if let Some(e) = error {
        // Every message not echoed counts as failed.
        stats.failed += stats.sent - stats.echoed_ok - stats.failed;
        stats.errors.push(format!("connection {}: {e}", client.id));
    }
    (client, stats)
}

async fn drive_round(client: &mut Client, specs: Vec<Spec>, stats: &mut RoundStats) -> Result<(), String> {
    let mut to_send: VecDeque<Spec> = specs.into();
    let mut expected: VecDeque<Expected> = VecDeque::new();
    while !to_send.is_empty() || !expected.is_empty() {
        // Queue the next messages while the window allows.
        while expected.len() < MAX_OUTSTANDING && client.conn.buffered_amount() < SEND_WINDOW {
            let Some(spec) = to_send.pop_front() else { break };
            let payload = build_payload(&spec);
            expected.push_back(Expected { kind: spec.kind, len: payload.len(), hash: fnv1a(&payload) });
            stats.sent += 1;
            stats.bytes_sent += payload.len() as u64;
            send(&mut client.conn, &spec, payload)?;
        }
        // Check what came back.
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Message(message) => {
                    let Some(want) = expected.pop_front() else {
                        return Err("an echo nobody asked for".into());
                    };
                    stats.bytes_received += message.len() as u64;
                    let kind = message.kind();
                    let data = message.as_bytes();
                    let ok = kind == want.kind
                        && data.len() == want.len
                        && fnv1a(data) == want.hash
                        && self_consistent(kind, data);
                    if ok {
                        stats.echoed_ok += 1;
                    } else {
                        stats.failed += 1;
                        stats.errors.push(format!(
                            "connection {}: corrupt echo ({kind:?}, {} bytes, wanted {:?}, {} bytes)",
                            client.id,
                            data.len(),
                            want.kind,
                            want.len
                        ));
                    }
                }
                Event::Close(frame) => return Err(format!("server closed: {frame:?}")),
                _ => {}
            }
        }
        if to_send.is_empty() && expected.is_empty() {
            break;
        }
        step(client).await?;
    }
    // Write out anything still queued (pongs).
    while client.conn.wants_write() {
        step(client).await?;
    }
    Ok(())
}

fn send(conn: &mut Connection, spec: &Spec, payload: Bytes) -> Result<(), String> {
    let result = if spec.pieces <= 1 {
        conn.send(match spec.kind {
            MessageKind::Text => {
                Message::Text(wscore::Utf8Bytes::try_from_bytes(payload).map_err(|_| "built invalid text".to_string())?)
            }
            _ => Message::Binary(payload),
        })
    } else {
        // Random cut points (inside code points too), empty pieces allowed.
        let mut rng = Rng::new(spec.seed ^ 0xF00D);
        let mut cuts: Vec<usize> = (1..spec.pieces).map(|_| rng.range(0, payload.len())).collect();
        cuts.sort_unstable();
        let mut from = 0;
        let mut result = Ok(());
        for (i, to) in cuts.into_iter().chain(std::iter::once(payload.len())).enumerate() {
            result = conn.send_fragment(spec.kind, payload.slice(from..to), i + 1 == spec.pieces);
            if result.is_err() {
                break;
            }
            from = to;
        }
        result
    };
    result.map_err(|e| format!("send: {e}"))
}

/// One turn of the drive loop: wait for the socket (or the connection's next deadline), then
/// write what is queued and read what arrived.
async fn step(client: &mut Client) -> Result<(), String> {
    let Client { tcp, conn, .. } = client;
    let interest = if conn.wants_write() { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
    let deadline = conn.poll_timeout();
    let ready = match deadline {
        Some(at) => {
            let at = tokio::time::Instant::from_std(at.to_std());
            tokio::select! {
                ready = tcp.ready(interest) => Some(ready),
                () = tokio::time::sleep_until(at) => None,
            }
        }
        None => Some(tcp.ready(interest).await),
    };
    let Some(ready) = ready else {
        return conn.handle_timeout(Instant::now()).map_err(|e| format!("timeout: {e}"));
    };
    let ready = ready.map_err(|e| format!("socket: {e}"))?;
    if ready.is_writable() && conn.wants_write() {
        match tcp.try_write(conn.transmit()) {
            Ok(n) => conn.advance_transmit(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    if ready.is_readable() {
        let result = match tcp.try_read(conn.receive_buffer()) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => conn.commit_received(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => conn.commit_received(0),
            Err(e) => return Err(format!("read: {e}")),
        };
        result.map_err(|e| format!("connection failed: {e}"))?;
    }
    Ok(())
}

/// Closes with 1000 and waits for the server's close and the end of the transport.
async fn close(mut client: Client) -> Result<(), String> {
    client.conn.close_normal().map_err(|e| e.to_string())?;
    let drive = async {
        loop {
            while let Some(event) = client.conn.poll_event() {
                if let Event::Message(_) = event {
                    return Err("unexpected message while closing".to_string());
                }
            }
            if client.conn.should_close_transport() {
                break;
            }
            step(&mut client).await?;
        }
        match client.conn.state() {
            State::Closed => Ok(()),
            other => Err(format!("ended in state {other:?}, error {:?}", client.conn.error())),
        }
    };
    tokio::time::timeout(ROUND_TIMEOUT, drive).await.map_err(|_| "close timed out".to_string())?
}

// ----- the server's memory -----

/// The resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("server {pid}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for {pid}"))
}

/// How long the server's RSS is watched after a round, and how often it is read meanwhile.
const RSS_SETTLE: Duration = Duration::from_millis(500);
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// The server's RSS once the round's traffic has stopped: the smallest of the readings taken
/// over [`RSS_SETTLE`]. Right after a round the server may still hold the buffers of its last
/// large echoes (the tokio server lets an idle connection's buffers go after its
/// `buffer_release_delay`, 100 ms by default), so a single reading then says as much about
/// timing as about leaks; what a leak holds stays held through every reading.
async fn settled_rss_kib(pid: u32) -> Result<u64, String> {
    let mut least = rss_kib(pid)?;
    let until = StdInstant::now() + RSS_SETTLE;
    while StdInstant::now() < until {
        tokio::time::sleep(RSS_SAMPLE_EVERY).await;
        least = least.min(rss_kib(pid)?);
    }
    Ok(least)
}

// ----- main -----

#[tokio::main]
async fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (passed, failed) = run(&options).await;
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

async fn run(options: &Options) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    let started = StdInstant::now();
    println!(
        "load_soak: {} connections, {} rounds, seed {}, {} MiB per round, deflate {}",
        options.connections,
        options.rounds,
        options.seed,
        options.round_bytes >> 20,
        if options.deflate { "offered" } else { "off" }
    );
    if let Some(pid) = options.server_pid {
        match rss_kib(pid) {
            Ok(rss) => println!("server RSS before: {} KiB", rss),
            Err(e) => println!("server RSS before: {e}"),
        }
    }

    // Connect.
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut connecting = JoinSet::new();
    for id in 0..options.connections {
        let (options, limit) = (options.clone(), limit.clone());
        connecting.spawn(async move { connect(id, &options, &limit).await });
    }
    let mut clients = Vec::with_capacity(options.connections);
    let mut connect_errors = Vec::new();
    while let Some(joined) = connecting.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(client) => clients.push(client),
            Err(e) => connect_errors.push(e),
        }
    }
    clients.sort_by_key(|c| c.id);
    println!("connected {}/{} in {:.2?}", clients.len(), options.connections, started.elapsed());
    if !connect_errors.is_empty() {
        failed += connect_errors.len();
        println!("  {} connections failed, first: {}", connect_errors.len(), connect_errors[0]);
    }
    if clients.is_empty() {
        return (passed, failed + 1);
    }

    // Rounds.
    let mut rng = Rng::new(options.seed);
    let mut rss_after = Vec::new();
    let first = if options.warmup { 0 } else { 1 };
    for round in first..=options.rounds {
        let plan = if round == 0 {
            // The ladder, then a round like the measured ones.
            let mut plan = plan_warmup(&mut rng, options.connections);
            for (messages, more) in plan.iter_mut().zip(plan_round(&mut rng, options.connections, options.round_bytes))
            {
                messages.extend(more);
            }
            plan
        } else {
            plan_round(&mut rng, options.connections, options.round_bytes)
        };
        let classes = size_classes(&plan);
        let round_start = StdInstant::now();
        let mut running = JoinSet::new();
        for client in clients.drain(..) {
            let specs = plan[client.id].clone();
            running.spawn(run_round(client, specs));
        }
        let mut total = RoundStats::default();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((client, stats)) => {
                    total.add(&stats);
                    if stats.errors.is_empty() {
                        clients.push(client);
                    }
                }
                Err(e) => {
                    total.failed += 1;
                    total.errors.push(format!("task: {e}"));
                }
            }
        }
        clients.sort_by_key(|c| c.id);
        let elapsed = round_start.elapsed();
        passed += total.echoed_ok;
        failed += total.failed;
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let label = if round == 0 { "warm-up".to_string() } else { format!("round {round}") };
        print!(
            "{label}: {} messages, {} ok, {} failed, {:.1} MiB sent, {:.1} MiB echoed, {:.2?} ({:.1} MiB/s each way)",
            total.sent,
            total.echoed_ok,
            total.failed,
            mib(total.bytes_sent),
            mib(total.bytes_received),
            elapsed,
            mib(total.bytes_received) / elapsed.as_secs_f64().max(1e-9)
        );
        if let Some(pid) = options.server_pid {
            match settled_rss_kib(pid).await {
                Ok(rss) => {
                    print!(", server RSS {rss} KiB (least over {RSS_SETTLE:?} after)");
                    if round > 0 {
                        rss_after.push(rss);
                    }
                }
                Err(e) => {
                    print!(", server RSS unknown ({e})");
                    failed += 1;
                }
            }
        }
        println!();
        println!("  {classes}");
        for e in &total.errors {
            println!("  {e}");
        }
    }

    // RSS: growth after the first round (the warm-up) beyond the tolerance is a leak.
    if let (Some(&first), Some(&last)) = (rss_after.first(), rss_after.last()) {
        let growth = (last as f64 - first as f64) / first as f64 * 100.0;
        // A server that holds next to nothing between messages (the embedded one, or any
        // without deflate) sits at a few MiB, where one more arena the allocator keeps for the
        // largest messages is already tens of percent: a few MiB of growth are not a leak. A
        // leak keeps growing with every round, past both.
        let ok = growth <= options.rss_tolerance || last.saturating_sub(first) <= RSS_SLACK_KIB;
        println!(
            "server RSS after round 1: {first} KiB, after round {}: {last} KiB ({growth:+.1}%, tolerance {}% or {} MiB): {}",
            rss_after.len(),
            options.rss_tolerance,
            RSS_SLACK_KIB / 1024,
            if ok { "ok" } else { "FAILED" }
        );
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }

    // Close every connection that survived.
    let mut closing = JoinSet::new();
    let open = clients.len();
    for client in clients {
        closing.spawn(close(client));
    }
    let mut close_errors = Vec::new();
    while let Some(joined) = closing.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                close_errors.push(e);
            }
        }
    }
    println!("closed {}/{open} cleanly; total {:.2?}", open - close_errors.len(), started.elapsed());
    if let Some(e) = close_errors.first() {
        println!("  {} closes failed, first: {e}", close_errors.len());
    }
    (passed, failed)
}
