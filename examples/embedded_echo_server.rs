//! An echo server written the way a firmware main loop is: one thread, one non-blocking poll
//! loop over every socket, a connection table of fixed capacity and I/O buffers allocated once
//! at startup.
//!
//! ```text
//! cargo run --release --example embedded_echo_server -- 127.0.0.1:9001
//! ```
//!
//! What it shows:
//!
//! - the drive loop from the crate docs, run for up to [`SLOTS`] connections by one loop that
//!   tries every socket in turn and, after a pass that moved nothing, sleeps until the earliest
//!   deadline (or 1 ms, whichever is sooner) — the shape of a `poll`/`select`-less main loop
//!   (right after activity it only yields for a moment, to keep echo latency low);
//! - the upgrade through [`ServerHandshake`], with its deadline honoured and errors answered
//!   with [`HandshakeError::response`](wscore::HandshakeError::response);
//! - partial writes: only what the socket took is passed to `advance_transmit`, the rest stays
//!   queued in the connection;
//! - back-pressure: a connection whose output is backed up is not read from until it drains;
//! - a lingering close: once the connection asks for it, the write side is shut down and the
//!   socket drained until the peer closes too or [`Connection::linger_deadline`] (the close
//!   deadline) passes, so the peer sees the close frame and an orderly end, not a reset.
//!
//! Memory is sized up front and stays small per slot. The table holds [`SLOTS`] entries of
//! under a kilobyte each (the [`Connection`] itself, no buffers: about 0.9 MiB for 1024 slots),
//! and every socket reads into the one shared scratch buffer, whose bytes the core copies
//! right away. The core's own buffers are allocated on first use: a connection that finds
//! nothing to read with nothing buffered lets them go ([`Connection::release_buffers`]), so
//! idle connections cost their slot and their kernel socket only, and memory follows the
//! traffic, not the number of connections. The driver itself does not allocate per message:
//! the scratch buffer, the table and the vectored-write slice array are fixed. Protocol logic
//! lives in `wscore`; this file only moves bytes, time and events.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use wscore::{Accept, CloseCode, Config, Connection, Event, Instant, Reject, SendError, ServerHandshake};

/// Capacity of the connection table (the load test runs 1000 connections against it).
const SLOTS: usize = 1024;
/// The one read buffer every socket shares (bytes are copied into the core right away).
const SCRATCH: usize = 64 << 10;
/// Reads per socket per pass, so one busy peer cannot starve the others.
const READS_PER_PASS: usize = 16;
/// Stop reading from a peer while this much of its echo waits to be written.
const BACKPRESSURE: usize = 1 << 20;
/// New connections accepted per pass.
const ACCEPTS_PER_PASS: usize = 64;
/// The longest sleep of an idle pass.
const IDLE_SLEEP: Duration = Duration::from_millis(1);
/// For this long after the last progress, idle passes only yield the CPU instead of sleeping:
/// a peer waiting for an echo usually answers within microseconds, and a 1 ms sleep per round
/// trip would dominate its latency.
const SPIN: Duration = Duration::from_micros(500);
/// How long the socket of a refused upgrade is drained before it is dropped (an upgraded
/// connection lingers until its close deadline instead).
const REJECT_LINGER: Duration = Duration::from_secs(2);
/// Vectored write: header and payload slices handed to the kernel at once.
const IOV: usize = 16;

/// One entry of the connection table.
// Every slot is as big as the biggest state on purpose: the table is sized once, up front,
// and boxing the connection would allocate per connection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
enum Slot {
    #[default]
    Free,
    /// Reading the HTTP upgrade request.
    Handshake { tcp: TcpStream, handshake: ServerHandshake },
    /// Upgraded: the drive loop.
    Open { tcp: TcpStream, conn: Connection },
    /// Writing an HTTP error response, then closing.
    Rejecting { tcp: TcpStream, response: Bytes, written: usize },
    /// Write side shut down: reading until the peer closes too, or until `until`.
    Draining { tcp: TcpStream, until: Instant },
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = listener.set_nonblocking(true) {
        eprintln!("cannot make the listener non-blocking: {err}");
        std::process::exit(1);
    }
    println!("listening on {addr}");
    println!(
        "connection table: {SLOTS} slots of {} bytes (a Connection is {} bytes, a ServerHandshake {})",
        std::mem::size_of::<Slot>(),
        std::mem::size_of::<Connection>(),
        std::mem::size_of::<ServerHandshake>(),
    );

    // Everything the loop needs, allocated once.
    let config = Config::default()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        // Room for one whole 64 MiB echo on top of the back-pressure threshold, so an echo
        // never fails with `BufferFull`.
        .max_write_buffer(128 << 20);
    let mut slots: Vec<Slot> = (0..SLOTS).map(|_| Slot::Free).collect();
    let mut scratch = vec![0u8; SCRATCH].into_boxed_slice();
    let busy = Reject::new(503).header("Retry-After", "1").body("connection table full\n").into_bytes();

    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        let mut progress = accept_new(&listener, &mut slots, &config, &busy, &mut scratch);
        for (index, slot) in slots.iter_mut().enumerate() {
            if !matches!(slot, Slot::Free) {
                let (next, moved) = service(index, std::mem::take(slot), &mut scratch, now);
                *slot = next;
                progress |= moved;
            }
        }
        if progress {
            last_progress = now;
        } else if now - last_progress < SPIN {
            std::thread::yield_now();
        } else {
            idle(&slots, now);
        }
    }
}

/// Accepts pending connections into free slots; refuses them with 503 when the table is full.
fn accept_new(listener: &TcpListener, slots: &mut [Slot], config: &Config, busy: &[u8], scratch: &mut [u8]) -> bool {
    let mut progress = false;
    for _ in 0..ACCEPTS_PER_PASS {
        let tcp = match listener.accept() {
            Ok((tcp, _peer)) => tcp,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                // Out of file descriptors and the like: try again on a later pass.
                eprintln!("accept failed: {err}");
                break;
            }
        };
        progress = true;
        if tcp.set_nonblocking(true).is_err() {
            continue;
        }
        // Echo latency matters more than packet count here.
        let _ = tcp.set_nodelay(true);
        match slots.iter_mut().find(|slot| matches!(slot, Slot::Free)) {
            Some(slot) => {
                *slot = Slot::Handshake { tcp, handshake: ServerHandshake::new(config.clone()) };
            }
            None => refuse(tcp, busy, scratch),
        }
    }
    progress
}

/// Best effort, with no slot to keep state in: read what the client already sent (so closing
/// does not reset the connection), write the 503, close.
fn refuse(mut tcp: TcpStream, busy: &[u8], scratch: &mut [u8]) {
    while matches!(tcp.read(scratch), Ok(n) if n > 0) {}
    let _ = tcp.write(busy);
    let _ = tcp.shutdown(Shutdown::Write);
}

/// One pass over one slot: returns its next state and whether anything happened.
fn service(index: usize, slot: Slot, scratch: &mut [u8], now: Instant) -> (Slot, bool) {
    match slot {
        Slot::Free => (Slot::Free, false),
        Slot::Handshake { tcp, handshake } => drive_handshake(index, tcp, handshake, scratch, now),
        Slot::Open { tcp, conn } => drive_open(index, tcp, conn, scratch, now),
        Slot::Rejecting { tcp, response, written } => drive_reject(tcp, response, written, now),
        Slot::Draining { tcp, until } => drive_drain(tcp, until, scratch, now),
    }
}

fn drive_handshake(
    index: usize,
    mut tcp: TcpStream,
    mut handshake: ServerHandshake,
    scratch: &mut [u8],
    now: Instant,
) -> (Slot, bool) {
    if handshake.poll_timeout().is_some_and(|at| at <= now) {
        if let Err(err) = handshake.handle_timeout(now) {
            eprintln!("[{index}] handshake failed: {err}");
            return (reject(tcp, err.response(), now), true);
        }
    }
    let mut progress = false;
    loop {
        let n = match tcp.read(scratch) {
            Ok(0) => return (Slot::Free, true),
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (Slot::Free, true),
        };
        progress = true;
        match handshake.receive(&scratch[..n]).map(|request| request.is_some()) {
            Ok(false) => {}
            // Accept everything; a real server would look at the request (path, origin,
            // subprotocols) here and maybe reject it.
            Ok(true) => {
                return match handshake.accept(Accept::new()) {
                    Ok(conn) => {
                        let (slot, _) = drive_open(index, tcp, conn, scratch, now);
                        (slot, true)
                    }
                    Err(err) => (reject(tcp, err.response(), now), true),
                };
            }
            Err(err) => {
                eprintln!("[{index}] handshake failed: {err}");
                return (reject(tcp, err.response(), now), true);
            }
        }
    }
    (Slot::Handshake { tcp, handshake }, progress)
}

/// The drive loop for one upgraded connection, one pass.
fn drive_open(
    index: usize,
    mut tcp: TcpStream,
    mut conn: Connection,
    scratch: &mut [u8],
    now: Instant,
) -> (Slot, bool) {
    let mut progress = false;
    // Timers (an instant in the past, such as `Instant::ZERO`, means "now").
    if conn.poll_timeout().is_some_and(|at| at <= now) {
        if let Err(err) = conn.handle_timeout(now) {
            eprintln!("[{index}] {err}");
        }
        progress = true;
    }
    // Events left over from the handshake (frames that came with the request) or a timer.
    progress |= echo_events(index, &mut conn);
    // Input, unless the peer is not reading its echoes.
    for _ in 0..READS_PER_PASS {
        if conn.buffered_amount() >= BACKPRESSURE || conn.should_close_transport() {
            break;
        }
        let result = match tcp.read(scratch) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => conn.receive(&scratch[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                // Nothing to read: if nothing waits either, the core's buffers can go.
                if !conn.wants_write() {
                    conn.release_buffers();
                }
                break;
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                eprintln!("[{index}] read failed: {err}");
                return (Slot::Free, true);
            }
        };
        progress = true;
        echo_events(index, &mut conn);
        if let Err(err) = result {
            eprintln!("[{index}] {err}");
            break;
        }
    }
    // Output: whatever the socket takes now; the rest stays queued in the connection.
    match flush(&mut tcp, &mut conn) {
        Ok(wrote) => progress |= wrote,
        Err(err) => {
            eprintln!("[{index}] write failed: {err}");
            return (Slot::Free, true);
        }
    }
    if conn.should_close_transport() {
        // Linger until the close deadline, unless the core says there is nothing to wait for
        // (the peer closed already, or it was given up on).
        return match conn.linger_deadline(now) {
            Some(until) => (close_gracefully(tcp, until), true),
            None => (Slot::Free, true),
        };
    }
    (Slot::Open { tcp, conn }, progress)
}

/// Pulls every event and echoes data messages. Pings and the peer's close are answered by the
/// core; taking the `Close` event is what queues the close reply.
fn echo_events(index: usize, conn: &mut Connection) -> bool {
    let mut any = false;
    while let Some(event) = conn.poll_event() {
        any = true;
        if let Event::Message(message) = event {
            match conn.send(message) {
                Ok(()) | Err(SendError::Closed) => {}
                Err(err) => {
                    // Not reached with the limits above; fail the connection rather than drop
                    // a message silently.
                    eprintln!("[{index}] cannot echo: {err}");
                    let _ = conn.close(CloseCode::INTERNAL, "echo buffer full");
                }
            }
        }
    }
    any
}

/// Writes as much queued output as the socket takes without blocking.
fn flush(tcp: &mut TcpStream, conn: &mut Connection) -> std::io::Result<bool> {
    let mut wrote = false;
    while conn.wants_write() {
        // All the output in one slice (small frames are coalesced): a plain `send`, cheaper
        // in the kernel than a `writev`.
        let first = conn.transmit();
        let result = if first.len() == conn.buffered_amount() {
            tcp.write(first)
        } else {
            let mut slices = [IoSlice::new(&[]); IOV];
            let filled = conn.transmit_vectored(&mut slices);
            tcp.write_vectored(&slices[..filled])
        };
        match result {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.advance_transmit(n);
                wrote = true;
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(wrote)
}

fn reject(tcp: TcpStream, response: Bytes, now: Instant) -> Slot {
    drive_reject(tcp, response, 0, now).0
}

fn drive_reject(mut tcp: TcpStream, response: Bytes, mut written: usize, now: Instant) -> (Slot, bool) {
    let mut progress = false;
    while written < response.len() {
        match tcp.write(&response[written..]) {
            Ok(0) => return (Slot::Free, true),
            Ok(n) => {
                written += n;
                progress = true;
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                let slot = Slot::Rejecting { tcp, response, written };
                return (slot, progress);
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Slot::Free, true),
        }
    }
    (close_gracefully(tcp, now + REJECT_LINGER), true)
}

/// Sends FIN after everything written, then drains the socket until `until`: closing a socket
/// with unread input makes the kernel send a reset, which can destroy the close frame (or the
/// error response) still in flight.
fn close_gracefully(tcp: TcpStream, until: Instant) -> Slot {
    if tcp.shutdown(Shutdown::Write).is_err() {
        return Slot::Free;
    }
    Slot::Draining { tcp, until }
}

fn drive_drain(mut tcp: TcpStream, until: Instant, scratch: &mut [u8], now: Instant) -> (Slot, bool) {
    if until <= now {
        return (Slot::Free, true);
    }
    let mut progress = false;
    loop {
        match tcp.read(scratch) {
            Ok(0) => return (Slot::Free, true),
            Ok(_) => progress = true,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Slot::Free, true),
        }
    }
    (Slot::Draining { tcp, until }, progress)
}

/// Nothing moved: sleep until the earliest deadline, at most [`IDLE_SLEEP`] (sockets are only
/// looked at between sleeps).
fn idle(slots: &[Slot], now: Instant) {
    let earliest = slots
        .iter()
        .filter_map(|slot| match slot {
            Slot::Handshake { handshake, .. } => handshake.poll_timeout(),
            Slot::Open { conn, .. } => conn.poll_timeout(),
            Slot::Draining { until, .. } => Some(*until),
            Slot::Free | Slot::Rejecting { .. } => None,
        })
        .min();
    let sleep = earliest.map_or(IDLE_SLEEP, |at| (at - now).min(IDLE_SLEEP));
    if !sleep.is_zero() {
        std::thread::sleep(sleep);
    }
}
