//! Encode benchmarks: one binary message per frame (RFC 6455 §5.2), masked as a client sends it
//! (§5.3) and unmasked as a server does, from the application's buffer to bytes in a socket-like
//! sink; wscore next to tungstenite, fastwebsockets, tokio-websockets and a minimal
//! hand-written encoder. Time is per message (the group's throughput counts messages).

mod clock;
mod corpus;
mod transport;

use bytes::Bytes;
use clock::BenchClock;
use corpus::SIZES;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::SinkExt;
use transport::CaptureWriter;
use wscore::{Config, Connection, SeededRandom};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Masks every frame.
    Client,
    /// Sends frames as they are.
    Server,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

struct Case {
    role: Role,
    payload: Bytes,
    messages: usize,
}

// ----- the minimal encoder (baseline) -----

/// The least work an encoder can do: write the header, copy the payload after it and, for a
/// client, mask it in place — straight into the sink's buffer, with a key from a cheap
/// generator.
struct MinimalEncoder {
    rng: corpus::Xorshift,
}

impl MinimalEncoder {
    fn encode(&mut self, out: &mut Vec<u8>, payload: &[u8], role: Role) {
        let key = (role == Role::Client).then(|| self.rng.key());
        let mask_bit = if key.is_some() { 0x80 } else { 0 };
        let mut header = [0u8; 14];
        header[0] = 0x82;
        let mut at = 2;
        if payload.len() < 126 {
            header[1] = mask_bit | payload.len() as u8;
        } else if let Ok(len) = u16::try_from(payload.len()) {
            header[1] = mask_bit | 126;
            header[2..4].copy_from_slice(&len.to_be_bytes());
            at = 4;
        } else {
            header[1] = mask_bit | 127;
            header[2..10].copy_from_slice(&(payload.len() as u64).to_be_bytes());
            at = 10;
        }
        if let Some(key) = key {
            header[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        out.extend_from_slice(&header[..at]);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = key {
            mask(&mut out[start..], key);
        }
    }
}

/// XOR with the key 32 bytes at a time (the compiler turns the inner loop into vector XORs).
fn mask(payload: &mut [u8], key: [u8; 4]) {
    let mut pattern = [0u8; 32];
    for (i, byte) in pattern.iter_mut().enumerate() {
        *byte = key[i % 4];
    }
    let mut blocks = payload.chunks_exact_mut(32);
    for block in &mut blocks {
        for (byte, k) in block.iter_mut().zip(pattern) {
            *byte ^= k;
        }
    }
    for (byte, k) in blocks.into_remainder().iter_mut().zip(pattern) {
        *byte ^= k;
    }
}

// ----- checks: the sink must hold `messages` well-formed frames carrying the payload -----

fn check_output(name: &str, case: &Case, out: &[u8]) {
    let mut rest = out;
    for i in 0..case.messages {
        let [b0, b1, ..] = *rest else { panic!("{name}: output ends before message {i}") };
        assert_eq!(b0, 0x82, "{name}: not a final binary frame");
        assert_eq!(b1 & 0x80 != 0, case.role == Role::Client, "{name}: wrong masking for a {:?}", case.role);
        let (len, mut at) = match b1 & 0x7F {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => (u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")) as usize, 10),
            short => (usize::from(short), 2),
        };
        let mut payload = if b1 & 0x80 != 0 {
            let key: [u8; 4] = rest[at..at + 4].try_into().expect("4 bytes");
            at += 4;
            let mut payload = rest[at..at + len].to_vec();
            mask(&mut payload, key);
            payload
        } else {
            rest[at..at + len].to_vec()
        };
        assert!(payload == case.payload, "{name}: payload {i} differs");
        payload.clear();
        rest = &rest[at + len..];
    }
    assert!(rest.is_empty(), "{name}: {} bytes after the last frame", rest.len());
}

/// A copy of `payload` whose address is half a page away from `sink` modulo 4 KiB. When the
/// destination of a large `memcpy` is a few bytes past the source modulo 4 KiB, loads falsely
/// depend on earlier stores ("4K aliasing") and some CPU/libc pairs (AMD Zen with glibc's
/// `rep movsb`) copy up to 50 times slower: whichever codec copies the payload straight into the
/// sink would pay for where the allocator happened to put two buffers. At the sizes where it
/// matters (16 KiB and up: a multiple of 4 KiB) each message moves the destination by a header
/// only, staying clear of it.
fn place_apart(payload: &Bytes, sink: usize) -> Bytes {
    let mut room = vec![0u8; payload.len() + 8192];
    let start = room.as_ptr() as usize;
    let offset = (sink + 2048).wrapping_sub(start) % 4096;
    room[offset..offset + payload.len()].copy_from_slice(payload);
    Bytes::from(room).slice(offset..offset + payload.len())
}

/// Times `send_all`, having first checked one run of it outside the clock (only for benchmarks
/// the command-line filter selects). `send_all` sends `case.messages` messages into `sink`,
/// which is cleared before every run.
fn bench(
    group: &mut BenchmarkGroup<'_, BenchClock>,
    name: &str,
    case: &Case,
    sink: &CaptureWriter,
    mut send_all: impl FnMut(),
) {
    let mut checked = false;
    group.bench_function(BenchmarkId::new(name, case.payload.len()), |b| {
        if !checked {
            sink.clear();
            send_all();
            check_output(name, case, &sink.contents());
            checked = true;
        }
        b.iter(|| {
            sink.clear();
            send_all();
        });
    });
}

fn run_case(c: &mut Criterion<BenchClock>, case: &Case) {
    let mut group = c.benchmark_group(format!("encode/{}", case.role.name()));
    group.throughput(Throughput::Elements(case.messages as u64));
    let sink = CaptureWriter::with_capacity(case.messages * (case.payload.len() + 14) + 4096);
    let case = &Case { payload: place_apart(&case.payload, sink.address()), ..*case };

    let mut encoder = MinimalEncoder { rng: corpus::Xorshift::new(5) };
    bench(&mut group, "baseline", case, &sink, || {
        for _ in 0..case.messages {
            sink.append(|out| encoder.encode(out, &case.payload, case.role));
        }
    });

    // One frame per message, like the peers (wscore splits at 64 KiB by default).
    let config = Config::default().write_fragment_size(usize::MAX);
    let mut conn = match case.role {
        Role::Client => Connection::client_with_random(config, Box::new(SeededRandom::new(5))),
        Role::Server => Connection::server(config),
    };
    bench(&mut group, "wscore", case, &sink, || {
        for _ in 0..case.messages {
            conn.send_binary(case.payload.clone()).expect("wscore refused to send");
            while conn.wants_write() {
                let out = conn.transmit();
                sink.write_slice(out);
                let n = out.len();
                conn.advance_transmit(n);
            }
        }
    });

    let role = match case.role {
        Role::Client => tungstenite::protocol::Role::Client,
        Role::Server => tungstenite::protocol::Role::Server,
    };
    let mut ws = tungstenite::WebSocket::from_raw_socket(sink.clone(), role, None);
    bench(&mut group, "tungstenite", case, &sink, || {
        for _ in 0..case.messages {
            ws.send(tungstenite::Message::Binary(case.payload.clone())).expect("tungstenite refused to send");
        }
    });

    let runtime = transport::runtime();
    let role = match case.role {
        Role::Client => fastwebsockets::Role::Client,
        Role::Server => fastwebsockets::Role::Server,
    };
    let mut ws = fastwebsockets::WebSocket::after_handshake(sink.clone(), role);
    // A client masks in place: the application lends it a buffer it may overwrite, so copying
    // the message there is part of the cost (a borrowed read-only payload would be copied
    // into a fresh allocation instead).
    let mut scratch = vec![0u8; case.payload.len()];
    bench(&mut group, "fastwebsockets", case, &sink, || {
        runtime.block_on(async {
            for _ in 0..case.messages {
                let payload = match case.role {
                    Role::Client => {
                        scratch.copy_from_slice(&case.payload);
                        fastwebsockets::Payload::BorrowedMut(&mut scratch)
                    }
                    Role::Server => fastwebsockets::Payload::Borrowed(&case.payload),
                };
                ws.write_frame(fastwebsockets::Frame::binary(payload)).await.expect("fastwebsockets refused to send");
            }
        });
    });

    let mut ws = match case.role {
        Role::Client => tokio_websockets::ClientBuilder::new().take_over(sink.clone()),
        Role::Server => tokio_websockets::ServerBuilder::new().serve(sink.clone()),
    };
    bench(&mut group, "tokio-websockets", case, &sink, || {
        runtime.block_on(async {
            for _ in 0..case.messages {
                let message = tokio_websockets::Message::binary(case.payload.clone());
                ws.send(message).await.expect("tokio-websockets refused to send");
            }
        });
    });

    group.finish();
}

fn encode(c: &mut Criterion<BenchClock>) {
    for role in [Role::Server, Role::Client] {
        for len in SIZES {
            let case = Case { role, payload: corpus::binary(len).into(), messages: corpus::batch(len) };
            run_case(c, &case);
        }
    }
}

criterion_group! {
    name = benches;
    config = clock::criterion();
    targets = encode
}
criterion_main!(benches);
