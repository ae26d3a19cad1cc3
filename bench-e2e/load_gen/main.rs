//! The end-to-end benchmark's load generator, in the style of uWebSockets' `load_test`: many
//! connections to an echo server, each sending one pre-built, pre-masked binary frame of a fixed
//! size and waiting for its echo, keeping a fixed number of messages in flight; messages per
//! second are counted over a measurement window after a warm-up. It does the HTTP/1.1 upgrade
//! itself (RFC 6455 §4.1, without offering any extension, so permessage-deflate stays off) and
//! writes raw frames (§5.2, §5.3); it never uses wscore, so a bug there cannot hide itself.
//!
//! ```text
//! cargo run --release --example e2e_load_gen -- 127.0.0.1:9001 --connections 100 --size 20
//! cargo run --release --example e2e_load_gen -- 127.0.0.1:9001 --idle 10000 --server-pid PID
//! ```
//!
//! Options (throughput mode): `--connections N` (default 100), `--size BYTES` (payload, default
//! 20), `--in-flight M` (messages in flight per connection, default 1), `--warmup SECS` (default
//! 1), `--duration SECS` (the measurement window, default 3), `--text` (ASCII text frames instead
//! of binary), `--verify full` (compare every echoed byte; the default, `sample`, compares every
//! 16th message whole and the first and last 32 bytes of the others), `--server-pid PID` (report
//! the server's CPU use over the window), `--label NAME` (copied into the result line).
//!
//! Idle mode (`--idle N --server-pid PID`): one warm-up connection echoes a message and closes,
//! the server's RSS is read, N connections complete the upgrade and then send nothing, and after
//! `--settle SECS` (default 1) the RSS is read again: `(after - before) / N` is the server's
//! memory per idle connection. `--hold SECS` keeps the connections open longer.
//!
//! Every echo is checked: each frame's header (FIN/RSV bits, opcode, unmasked), the message's
//! length (servers may fragment, and some do above 64 KiB), the order (messages cycle through
//! four different payloads) and the payload bytes as described for `--verify`. A wrong echo, a
//! close frame or an unexpected end of stream stops the run with an error, so a broken server
//! cannot win.
//!
//! One thread runs everything (a tokio current-thread runtime): with the server pinned to one
//! core and this to another, the server must be the bottleneck, which the CPU use printed for
//! both shows. To keep this side cheap: all frames are built once and a window of `k` messages
//! is one `write` from a pre-built run of frames; with more than one in flight the window is
//! refilled once half of it came back (so writes stay batched whatever the server does); a
//! short read clears the socket's readiness at once (no second `read` that would only say
//! `EAGAIN`); all connections share one read buffer; and from 64 KiB messages on, the
//! uncompared middle of an echo is dropped by the kernel unread (`recv` with `MSG_TRUNC`, on
//! Linux) instead of being copied. What is left costs about as much per message as the
//! cheapest server's own work (a `read` and a `write` per batch), so when a server keeps up
//! with it, both cores are busy and the number is a lower bound for that server: the CPU use
//! says which case it is.
//!
//! The last line printed starts with `RESULT ` and is a JSON object, for `bench-e2e/run.sh`.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read};
use std::mem::MaybeUninit;
use std::net::TcpStream as StdTcpStream;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use echo::{EchoParser, NextRead};
use workload::{Verify, Workload};

mod echo;
mod workload;

/// The `Sec-WebSocket-Key` every connection sends, and the accept value it must get back (the
/// example of RFC 6455 §1.3).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The read buffer all connections share (reads of large echoes are this big).
const READ_BUFFER: usize = 1 << 20;
/// Upgrades in flight at once (keeps the server's accept backlog from overflowing).
const CONNECT_CONCURRENCY: usize = 64;
/// One upgrade that takes longer than this fails the run.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest upgrade response accepted.
const MAX_RESPONSE: usize = 16 << 10;

// ----- options -----

#[derive(Debug, Clone)]
struct Options {
    addr: String,
    label: String,
    connections: usize,
    size: usize,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
    text: bool,
    verify: Verify,
    server_pid: Option<u32>,
    idle: Option<usize>,
    settle: Duration,
    hold: Duration,
}

const USAGE: &str = "usage: e2e_load_gen HOST:PORT [--connections N] [--size BYTES] [--in-flight M] \
[--warmup SECS] [--duration SECS] [--text] [--verify full|sample] [--server-pid PID] [--label NAME] \
| HOST:PORT --idle N --server-pid PID [--settle SECS] [--hold SECS]";

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        addr: String::new(),
        label: String::new(),
        connections: 100,
        size: 20,
        in_flight: 1,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        text: false,
        verify: Verify::Sample,
        server_pid: None,
        idle: None,
        settle: Duration::from_secs(1),
        hold: Duration::ZERO,
    };
    fn value<T: std::str::FromStr>(name: &str, args: &mut impl Iterator<Item = String>) -> Result<T, String> {
        let raw = args.next().ok_or_else(|| format!("{name} needs a value"))?;
        raw.parse().map_err(|_| format!("{name}: cannot parse {raw:?}"))
    }
    fn seconds(name: &str, args: &mut impl Iterator<Item = String>) -> Result<Duration, String> {
        let secs: f64 = value(name, args)?;
        Duration::try_from_secs_f64(secs).map_err(|_| format!("{name}: {secs} is not a duration"))
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connections" => options.connections = value(&arg, &mut args)?,
            "--size" => options.size = value(&arg, &mut args)?,
            "--in-flight" => options.in_flight = value(&arg, &mut args)?,
            "--warmup" => options.warmup = seconds(&arg, &mut args)?,
            "--duration" => options.duration = seconds(&arg, &mut args)?,
            "--text" => options.text = true,
            "--verify" => {
                options.verify = match value::<String>(&arg, &mut args)?.as_str() {
                    "full" => Verify::Full,
                    "sample" => Verify::Sample,
                    other => return Err(format!("--verify: {other:?} is neither full nor sample")),
                }
            }
            "--server-pid" => options.server_pid = Some(value(&arg, &mut args)?),
            "--label" => options.label = value(&arg, &mut args)?,
            "--idle" => options.idle = Some(value(&arg, &mut args)?),
            "--settle" => options.settle = seconds(&arg, &mut args)?,
            "--hold" => options.hold = seconds(&arg, &mut args)?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ if options.addr.is_empty() && !arg.starts_with('-') => options.addr = arg,
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    if options.addr.is_empty() {
        return Err(USAGE.into());
    }
    if options.connections == 0 || options.in_flight == 0 || options.duration.is_zero() {
        return Err("--connections, --in-flight and --duration must be positive".into());
    }
    if options.idle.is_some() && options.server_pid.is_none() {
        return Err("--idle needs --server-pid (whose memory is measured)".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The connection tasks use `Rc` and run on this thread only.
    let local = tokio::task::LocalSet::new();
    let result = match options.idle {
        Some(count) => local.block_on(&runtime, idle(&options, count)),
        None => local.block_on(&runtime, throughput(&options)),
    };
    match result {
        Ok(line) => {
            println!("RESULT {line}");
            // The connections are simply dropped with the process (the servers see EOF).
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("load_gen: {message}");
            ExitCode::FAILURE
        }
    }
}

// ----- the upgrade -----

/// Connects and upgrades; returns the stream and any bytes that came after the response.
async fn upgrade(addr: &str) -> Result<(TcpStream, Vec<u8>), String> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.map_err(|e| format!("writing the upgrade: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_RESPONSE {
            return Err("upgrade response too long".into());
        }
        let n = tcp.read_buf(&mut buf).await.map_err(|e| format!("reading the upgrade response: {e}"))?;
        if n == 0 {
            return Err("the server closed during the upgrade".into());
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(&buf) else {
            continue;
        };
        if response.code != Some(101) {
            return Err(format!("upgrade refused: HTTP {:?}", response.code));
        }
        let header = |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
        if header("sec-websocket-accept").map(|h| h.value) != Some(ACCEPT.as_bytes()) {
            return Err("wrong or missing Sec-WebSocket-Accept".into());
        }
        if let Some(h) = header("sec-websocket-extensions") {
            let value = String::from_utf8_lossy(h.value);
            return Err(format!("the server negotiated an extension nobody offered: {value}"));
        }
        return Ok((tcp, buf.split_off(head)));
    }
}

/// Upgrades `count` connections, at most [`CONNECT_CONCURRENCY`] at a time, in order.
async fn upgrade_all(addr: &str, count: usize) -> Result<Vec<(TcpStream, Vec<u8>)>, String> {
    let permits = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let (permits, addr) = (permits.clone(), addr.to_string());
        tasks.spawn_local(async move {
            let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
            let upgraded = tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade(&addr))
                .await
                .map_err(|_| format!("connection {index}: upgrade timed out"))?;
            upgraded.map(|u| (index, u)).map_err(|e| format!("connection {index}: {e}"))
        });
    }
    let mut slots: Vec<Option<(TcpStream, Vec<u8>)>> = (0..count).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (index, upgraded) = done.map_err(|e| e.to_string())??;
        slots[index] = Some(upgraded);
    }
    slots.into_iter().map(|s| s.ok_or_else(|| "a connection went missing".to_string())).collect()
}

// ----- throughput -----

/// What the connection tasks share with `main` (one thread: `Cell`s suffice).
#[derive(Debug)]
struct Shared {
    work: Workload,
    in_flight: usize,
    /// Echoes received, per connection.
    echoes: Vec<Cell<u64>>,
    /// The first failure; the run stops at the next check.
    error: RefCell<Option<String>>,
    buffer: RefCell<Vec<u8>>,
    /// Where discarded bytes are "received" to (the kernel writes nothing there).
    discard: RefCell<Vec<MaybeUninit<u8>>>,
}

impl Shared {
    fn total(&self) -> u64 {
        self.echoes.iter().map(Cell::get).sum()
    }

    fn fail(&self, message: String) {
        self.error.borrow_mut().get_or_insert(message);
    }
}

async fn throughput(options: &Options) -> Result<String, String> {
    let work = Workload::new(options.size, options.in_flight, options.text, options.verify);
    let shared = Rc::new(Shared {
        work,
        in_flight: options.in_flight,
        echoes: (0..options.connections).map(|_| Cell::new(0)).collect(),
        error: RefCell::new(None),
        buffer: RefCell::new(vec![0; READ_BUFFER]),
        discard: RefCell::new(vec![MaybeUninit::uninit(); READ_BUFFER]),
    });
    let streams = upgrade_all(&options.addr, options.connections).await?;
    for (index, (tcp, leftover)) in streams.into_iter().enumerate() {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = drive(index, tcp, leftover, &shared).await {
                shared.fail(format!("connection {index}: {e}"));
            }
        });
    }

    tokio::time::sleep(options.warmup).await;
    check(&shared)?;
    let (start, start_count, start_self, start_server) = snapshot(&shared, options.server_pid);
    let per_conn_start: Vec<u64> = shared.echoes.iter().map(Cell::get).collect();
    tokio::time::sleep(options.duration).await;
    let (end, end_count, end_self, end_server) = snapshot(&shared, options.server_pid);
    check(&shared)?;

    let seconds = (end - start).as_secs_f64();
    let messages = end_count - start_count;
    if messages == 0 {
        return Err("no echo arrived during the measurement window".into());
    }
    let per_conn: Vec<u64> = shared.echoes.iter().zip(&per_conn_start).map(|(now, then)| now.get() - then).collect();
    let (min, max) = (per_conn.iter().copied().min().unwrap_or(0), per_conn.iter().copied().max().unwrap_or(0));
    let rate = messages as f64 / seconds;
    let cpu = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.3}", (b.saturating_sub(a)) as f64 / 1e9 / seconds),
        _ => "null".into(),
    };
    let (self_cpu, server_cpu) = (cpu(start_self, end_self), cpu(start_server, end_server));
    eprintln!(
        "{label}{sep}{n} x {size} B, {m} in flight: {rate:.0} msgs/s ({mib:.1} MiB/s each way) over {seconds:.2} s; \
         per connection {min}..{max}; CPU: load_gen {self_cpu}, server {server_cpu} (1.0 = one core)",
        label = options.label,
        sep = if options.label.is_empty() { "" } else { ": " },
        n = options.connections,
        size = options.size,
        m = options.in_flight,
        mib = rate * options.size as f64 / (1 << 20) as f64,
    );
    let mut json = String::new();
    let _ = write!(
        json,
        "{{\"label\":\"{label}\",\"connections\":{n},\"size\":{size},\"in_flight\":{m},\"text\":{text},\
         \"warmup_s\":{warmup},\"duration_s\":{seconds:.3},\"messages\":{messages},\"msgs_per_s\":{rate:.1},\
         \"payload_bytes_per_s\":{bytes:.0},\"min_per_connection\":{min},\"max_per_connection\":{max},\
         \"loadgen_cpu\":{self_cpu},\"server_cpu\":{server_cpu},\"verify\":\"{verify}\"}}",
        label = options.label.replace(['"', '\\'], ""),
        n = options.connections,
        size = options.size,
        m = options.in_flight,
        text = options.text,
        warmup = options.warmup.as_secs_f64(),
        bytes = rate * options.size as f64,
        verify = if options.verify == Verify::Full { "full" } else { "sample" },
    );
    Ok(json)
}

fn check(shared: &Shared) -> Result<(), String> {
    match shared.error.borrow().as_ref() {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

/// The time, the echo count, this process's CPU time and the server's, at one moment.
fn snapshot(shared: &Shared, server: Option<u32>) -> (Instant, u64, Option<u64>, Option<u64>) {
    (Instant::now(), shared.total(), cpu_time_ns("self"), server.and_then(|pid| cpu_time_ns(&pid.to_string())))
}

/// CPU time of every thread of a process, in nanoseconds (`/proc/PID/task/*/schedstat`: the
/// first field is time on a CPU, at full resolution, unlike the clock ticks of `stat`).
fn cpu_time_ns(pid: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may exit between listing and reading: it just stops counting.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Some(total)
}

/// One connection: keep up to `in_flight` messages outstanding, check and count every echo.
async fn drive(index: usize, tcp: TcpStream, leftover: Vec<u8>, shared: &Shared) -> Result<(), String> {
    let work = &shared.work;
    // A second handle on the same socket, read inside `try_io` so that a short read can clear
    // tokio's readiness at once (tokio's own `try_read` cannot tell it the socket is drained).
    let (tcp, reader) = {
        let std = tcp.into_std().map_err(|e| e.to_string())?;
        let reader = std.try_clone().map_err(|e| format!("duplicating the socket: {e}"))?;
        (TcpStream::from_std(std).map_err(|e| format!("registering the socket: {e}"))?, reader)
    };
    let mut parser = EchoParser::default();
    parser.feed(&leftover, work)?;
    // With more than one in flight, the window is refilled once half of it came back, so that
    // this side writes several frames per `write` whatever the server's write pattern.
    let low_water = shared.in_flight / 2;
    let mut sent: u64 = 0;
    // Bytes of `work.frames` still to write.
    let mut pending = 0..0;
    loop {
        if pending.is_empty() {
            let outstanding = (sent - parser.received) as usize;
            if outstanding <= low_water {
                let count = shared.in_flight - outstanding;
                pending = work.run(sent, count);
                sent += count as u64;
            }
        }
        let interest = if pending.is_empty() { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
        let ready = tcp.ready(interest).await.map_err(|e| format!("waiting for the socket: {e}"))?;
        if ready.is_readable() || ready.is_read_closed() {
            let mut buffer = shared.buffer.borrow_mut();
            loop {
                let next = parser.next_read(work, buffer.len());
                let want = match next {
                    NextRead::Copy(n) | NextRead::Discard(n) => n,
                };
                let mut got = 0;
                // A read shorter than asked for most likely drained the socket: report it as
                // `WouldBlock` so tokio clears the readiness (epoll says when more comes).
                let result = tcp.try_io(Interest::READABLE, || {
                    got = match next {
                        NextRead::Copy(_) => (&reader).read(&mut buffer[..want])?,
                        NextRead::Discard(_) => discard(&reader, &mut shared.discard.borrow_mut()[..want])?,
                    };
                    if got > 0 && got < want { Err(ErrorKind::WouldBlock.into()) } else { Ok(got) }
                });
                match result {
                    Ok(0) => return Err(format!("the server closed the connection after {} echoes", parser.received)),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read: {e}")),
                }
                let done = match next {
                    NextRead::Copy(_) => parser.feed(&buffer[..got], work)?,
                    NextRead::Discard(_) => parser.discard(got, work)?,
                };
                let count = &shared.echoes[index];
                count.set(count.get() + done);
                if got < want {
                    break;
                }
            }
        }
        while !pending.is_empty() {
            match tcp.try_write(&work.frames[pending.clone()]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => pending.start += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
    }
}

/// Drops up to `room.len()` received bytes without copying them (`recv` with `MSG_TRUNC`, which
/// Linux honours for TCP); returns how many.
#[cfg(target_os = "linux")]
fn discard(tcp: &StdTcpStream, room: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
    socket2::SockRef::from(tcp).recv_with_flags(room, libc::MSG_TRUNC)
}

/// Elsewhere [`Workload::discards`] is false and this is never called.
#[cfg(not(target_os = "linux"))]
fn discard(_tcp: &StdTcpStream, _room: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::Unsupported.into())
}

// ----- idle memory -----

async fn idle(options: &Options, count: usize) -> Result<String, String> {
    let pid = options.server_pid.ok_or("--idle needs --server-pid")?;
    // One connection first, so the server's lazily built state (runtime, pools, the first
    // connection's allocator arenas) is not charged to the idle ones.
    {
        let work = Workload::new(64, 1, false, Verify::Full);
        let (mut tcp, leftover) = upgrade(&options.addr).await?;
        tcp.write_all(&work.frames[work.run(0, 1)]).await.map_err(|e| e.to_string())?;
        let mut parser = EchoParser::default();
        parser.feed(&leftover, &work)?;
        let mut buf = vec![0; 4096];
        while parser.received == 0 {
            let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the warm-up connection was closed before its echo".into());
            }
            parser.feed(&buf[..n], &work)?;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid)?;
    let started = Instant::now();
    let connections = upgrade_all(&options.addr, count).await?;
    let connect_time = started.elapsed();
    tokio::time::sleep(options.settle).await;
    let after = rss_bytes(pid)?;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
    let per_connection = (after as f64 - before as f64) / count as f64;
    eprintln!(
        "{label}{sep}{count} idle connections (upgraded in {secs:.2} s): server RSS {b:.1} -> {a:.1} MiB, \
         {per_connection:.0} bytes per connection; {threads} server threads",
        label = options.label,
        sep = if options.label.is_empty() { "" } else { ": " },
        secs = connect_time.as_secs_f64(),
        b = before as f64 / (1 << 20) as f64,
        a = after as f64 / (1 << 20) as f64,
    );
    if !options.hold.is_zero() {
        tokio::time::sleep(options.hold).await;
    }
    drop(connections);
    Ok(format!(
        "{{\"label\":\"{label}\",\"idle_connections\":{count},\"rss_before\":{before},\"rss_after\":{after},\
         \"bytes_per_connection\":{per_connection:.1},\"server_threads\":{threads}}}",
        label = options.label.replace(['"', '\\'], ""),
    ))
}

/// The resident set of a process (`VmRSS` in `/proc/PID/status`), in bytes.
fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("server {pid}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no VmRSS for process {pid}"))
}
