//! Benchmarks of wscore's building blocks on their own: payload masking (RFC 6455 §5.3),
//! incremental UTF-8 validation (§8.1), the opening handshake (§4) and, with the `deflate`
//! feature, permessage-deflate (RFC 7692) — each next to a reference where one exists.

mod clock;
mod corpus;

use clock::BenchClock;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wscore::{
    Accept, AcceptKey, ClientHandshake, ClientRequest, Config, SeededRandom, ServerHandshake, Utf8Validator, apply_mask,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// XOR with the key 32 bytes at a time (the compiler turns the inner loop into vector XORs):
/// the reference `apply_mask` is measured against. `offset` as in `apply_mask`.
fn mask_blocks(payload: &mut [u8], key: [u8; 4], offset: usize) {
    let mut pattern = [0u8; 32];
    for (i, byte) in pattern.iter_mut().enumerate() {
        *byte = key[(i + offset) % 4];
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

fn mask(c: &mut Criterion<BenchClock>) {
    // Powers of 4 from 1 B to 64 MiB, in one buffer touched up front (no page faults timed).
    let sizes: Vec<usize> = (0..=13).map(|i| 1usize << (2 * i)).collect();
    let mut buf = corpus::binary((64 << 20) + 64);
    let mut group = c.benchmark_group("mask/aligned");
    for &len in &sizes {
        group.throughput(Throughput::Bytes(len as u64));
        // Large sizes stream through memory; fewer samples keep the run short.
        group.sample_size(if len >= 4 << 20 { 10 } else { 50 });
        let data = &mut buf[..len];
        group.bench_function(BenchmarkId::new("wscore", len), |b| b.iter(|| apply_mask(black_box(&mut *data), KEY, 0)));
        group.bench_function(BenchmarkId::new("fastwebsockets", len), |b| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut *data), KEY));
        });
        group.bench_function(BenchmarkId::new("baseline", len), |b| {
            b.iter(|| mask_blocks(black_box(&mut *data), KEY, 0));
        });
    }
    group.finish();

    // A payload rarely starts on an 8-byte boundary (it follows a 2-14 byte header), and a
    // resumed unmask starts mid-key.
    for (name, start, phase) in [("mask/ptr+1", 1, 0), ("mask/ptr+6", 6, 0), ("mask/phase+3", 0, 3)] {
        let mut group = c.benchmark_group(name);
        for len in [1 << 10, 64 << 10, 1 << 20] {
            group.throughput(Throughput::Bytes(len as u64));
            let data = &mut buf[start..start + len];
            group.bench_function(BenchmarkId::new("wscore", len), |b| {
                b.iter(|| apply_mask(black_box(&mut *data), KEY, phase));
            });
            if phase == 0 {
                group.bench_function(BenchmarkId::new("fastwebsockets", len), |b| {
                    b.iter(|| fastwebsockets::unmask(black_box(&mut *data), KEY));
                });
            }
            group.bench_function(BenchmarkId::new("baseline", len), |b| {
                b.iter(|| mask_blocks(black_box(&mut *data), KEY, phase));
            });
        }
        group.finish();
    }
}

fn utf8(c: &mut Criterion<BenchClock>) {
    for (name, text) in
        [("utf8/ascii", corpus::ascii_text as fn(usize) -> Vec<u8>), ("utf8/multibyte", corpus::multibyte_text)]
    {
        let mut group = c.benchmark_group(name);
        for len in [1 << 10, 64 << 10, 1 << 20] {
            let data = text(len);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new("wscore", len), |b| {
                b.iter(|| {
                    let mut validator = Utf8Validator::new();
                    validator.feed(black_box(&data)).expect("valid");
                    validator.finish().expect("complete");
                });
            });
            // As the connection feeds it: one TCP segment at a time, code points split across.
            group.bench_function(BenchmarkId::new("wscore-1460", len), |b| {
                b.iter(|| {
                    let mut validator = Utf8Validator::new();
                    for segment in black_box(&data).chunks(1460) {
                        validator.feed(segment).expect("valid");
                    }
                    validator.finish().expect("complete");
                });
            });
            group.bench_function(BenchmarkId::new("std", len), |b| {
                b.iter(|| std::str::from_utf8(black_box(&data)).is_ok());
            });
            group.bench_function(BenchmarkId::new("simdutf8", len), |b| {
                b.iter(|| simdutf8::basic::from_utf8(black_box(&data)).is_ok());
            });
            // What reading a received text message as `&str` costs (`Utf8Bytes::as_str`).
            let received = wscore::Utf8Bytes::try_from_bytes(data.clone().into()).expect("valid");
            group.bench_function(BenchmarkId::new("as_str", len), |b| {
                b.iter(|| black_box(&received).as_str().len());
            });
        }
        group.finish();
    }
}

/// What Chrome sends to open a WebSocket, cookies and all.
const BROWSER_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=3f1c2a9b7e5d4c6a8b0f; theme=dark; _ga=GA1.2.123456789.1700000000\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn client_handshake() -> ClientHandshake {
    let request = ClientRequest::from_url("ws://example.com:8080/chat").expect("valid URL");
    ClientHandshake::with_random(request, Config::default(), Box::new(SeededRandom::new(1)))
}

/// The server's 101 for the request `client_handshake()` produces.
fn server_response() -> Vec<u8> {
    let request = client_handshake().request_bytes();
    let text = std::str::from_utf8(&request).expect("ASCII request");
    let key = text
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .expect("the request carries a key")
        .trim();
    let extensions = if cfg!(feature = "deflate") { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
        AcceptKey::from_key(key.as_bytes()).as_str()
    )
    .into_bytes()
}

fn handshake(c: &mut Criterion<BenchClock>) {
    let mut group = c.benchmark_group("handshake");
    // Parse and validate the request, negotiate deflate (on by default), build the 101.
    group.bench_function("server_accept", |b| {
        b.iter(|| {
            let mut handshake = ServerHandshake::new(Config::default());
            handshake.receive(black_box(BROWSER_REQUEST)).expect("valid request").expect("complete request");
            let mut conn = handshake.accept(Accept::new()).expect("acceptable request");
            black_box(conn.take_transmit());
        });
    });
    group.bench_function("client_request", |b| b.iter(|| black_box(client_handshake().request_bytes())));
    let response = server_response();
    group.bench_function("client_request_and_validate", |b| {
        b.iter(|| {
            let mut handshake = client_handshake();
            black_box(handshake.request_bytes());
            handshake.receive(black_box(&response)).expect("valid response").expect("complete response")
        });
    });
    group.finish();
}

#[cfg(feature = "deflate")]
fn deflate(c: &mut Criterion<BenchClock>) {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use wscore::{Connection, DeflateConfig, DeflateParams, Event};

    // No context takeover: otherwise every repeat of the same message would compress to a
    // back-reference to the previous one.
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let json = corpus::json(16 << 10);
    let connection = |level: u32, server: bool| {
        let config = Config::default().deflate(Some(DeflateConfig::default().level(level).threshold(0)));
        let conn = if server {
            Connection::server(config)
        } else {
            Connection::client_with_random(config, Box::new(SeededRandom::new(9)))
        };
        conn.with_deflate(params)
    };
    // Raw deflate with a sync flush, as permessage-deflate frames it, without the trailer.
    let raw_compress = |compressor: &mut Compress, out: &mut Vec<u8>| {
        compressor.reset();
        out.clear();
        let status = compressor.compress_vec(&json, out, FlushCompress::Sync).expect("compress");
        assert!(status == flate2::Status::Ok && compressor.total_in() == json.len() as u64, "output room");
        assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
        out.truncate(out.len() - 4);
    };

    let mut group = c.benchmark_group("deflate/compress");
    group.throughput(Throughput::Bytes(json.len() as u64));
    for level in [1, 6, 9] {
        let mut server = connection(level, true);
        group.bench_function(BenchmarkId::new("wscore", level), |b| {
            b.iter(|| {
                server.send_binary(json.clone()).expect("send");
                while server.wants_write() {
                    let n = black_box(server.transmit()).len();
                    server.advance_transmit(n);
                }
            });
        });
        // The same zlib-rs calls wscore makes, into a reused buffer.
        let mut compressor = Compress::new_with_window_bits(Compression::new(level), false, 15);
        let mut out = Vec::with_capacity(json.len() + 1024);
        group.bench_function(BenchmarkId::new("baseline", level), |b| {
            b.iter(|| raw_compress(&mut compressor, &mut out));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("deflate/decompress");
    group.throughput(Throughput::Bytes(json.len() as u64));
    for level in [1, 6, 9] {
        let mut compressed = Vec::with_capacity(json.len() + 1024);
        raw_compress(&mut Compress::new_with_window_bits(Compression::new(level), false, 15), &mut compressed);
        let mut frame = Vec::new();
        corpus::push_frame(&mut frame, true, 0x40 | corpus::BINARY, &compressed, Some(KEY));
        let mut server = connection(level, true);
        server.receive(&frame).expect("valid frame");
        assert!(matches!(server.poll_event(), Some(Event::Message(m)) if m.as_bytes() == json));
        group.bench_function(BenchmarkId::new("wscore", level), |b| {
            b.iter(|| {
                server.receive(black_box(&frame)).expect("valid frame");
                black_box(server.poll_event().expect("a message"));
            });
        });
        // Inflate the same bytes plus the trailer into a reused buffer.
        let mut input = compressed.clone();
        input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let mut decompressor = Decompress::new(false);
        let mut out = Vec::with_capacity(json.len() + 1024);
        group.bench_function(BenchmarkId::new("baseline", level), |b| {
            b.iter(|| {
                decompressor.reset(false);
                out.clear();
                decompressor.decompress_vec(black_box(&input), &mut out, FlushDecompress::Sync).expect("inflate");
                assert_eq!(out.len(), json.len());
            });
        });
    }
    group.finish();
}

#[cfg(not(feature = "deflate"))]
fn deflate(_: &mut Criterion<BenchClock>) {}

criterion_group! {
    name = benches;
    config = clock::criterion();
    targets = mask, utf8, handshake, deflate
}
criterion_main!(benches);
