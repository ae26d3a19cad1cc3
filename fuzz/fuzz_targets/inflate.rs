//! Receiving permessage-deflate messages (RFC 7692 §6.2, §7.2) with a 64 KiB message limit: a
//! server `Connection` with deflate parameters, fed RSV1 messages fragmented arbitrarily.
//!
//! Input: an 11-byte plan (see `Plan`; all zero = context takeover, message mode, everything
//! in one chunk after four empty ones), then messages until the input ends, each:
//! `flags` (see `Msg`), `repeat`, `n_cuts`, `n_cuts` × u16 LE frame boundaries, u16 LE `len`,
//! `len` bytes of data. A "compressed Hello" is `01 00 00 05 00 Hello` after the plan.
//!
//! Invariants: no panic; no message event (or streamed message) exceeds 64 KiB; memory held
//! stays bounded by the input plus the limit; the only errors are `MessageTooLarge`,
//! `InvalidCompressedData` and `InvalidUtf8`; and as long as every payload so far was produced
//! by a real compressor (not raw fuzz bytes), each message arrives exactly as compressed (or
//! fails with exactly the error its size and content call for).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use flate2::{Compress, Compression, FlushCompress};
use libfuzzer_sys::fuzz_target;
use wscore::{Config, Connection, DeflateParams, Error, Event, Message, OpCode, ProtocolError, ReceiveMode};
use wscore_fuzz::{byte, chunks, frame, take, u16_le};

const LIMIT: usize = 64 << 10;
/// The most plaintext built per input (all messages together): twice the limit, so bombs and
/// near-limit messages are both reachable while executions stay fast.
const MAX_PLAINTEXT: usize = 2 * LIMIT + 1;
const TRAILER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
const LEVELS: [u32; 8] = [0, 1, 2, 3, 0, 1, 2, 3];

#[derive(Arbitrary, Debug)]
struct Plan {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// Unused (the receiving side ignores the client's window; small windows only made the
    /// harness's own compressor slow).
    _reserved: u8,
    /// Compression level: `LEVELS[b % 8]` (cheap ones only: the harness's compressor is
    /// instrumented too, and block types, not effort, are what matters to the inflater).
    level: u8,
    stream_mode: bool,
    /// Deliver through `receive_buffer` + `commit_received` instead of `receive`.
    zero_copy: bool,
    /// Non-zero: deliver in chunks of this many bytes; zero: `chunk_lens` then the rest.
    stride: u8,
    chunk_lens: [u8; 4],
}

/// Message flags.
const COMPRESSED: u8 = 1;
/// The data is the deflate payload itself, not compressed by us.
const RAW: u8 = 2;
const TEXT: u8 = 4;
/// A ping between the first and second frame.
const PING: u8 = 8;
/// Leave the 00 00 FF FF tail on (a non-conforming sender: later messages become unknown).
const KEEP_TRAILER: u8 = 16;
/// End with an extra empty FIN frame.
const EMPTY_LAST: u8 = 32;

/// What a message must turn into, while the inflater's state is known.
#[derive(Debug)]
enum Expect {
    Message(Message),
    Fail(Vec<ProtocolError>),
    Unknown,
}

fn compress(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let start = compressor.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity());
        }
        let consumed = (compressor.total_in() - start) as usize;
        let _ = compressor.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync);
        if (compressor.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

fn expectation(text: bool, plaintext: Vec<u8>) -> Expect {
    let too_large = plaintext.len() > LIMIT;
    let bad_utf8 = text && std::str::from_utf8(&plaintext).is_err();
    let too_large_error = ProtocolError::MessageTooLarge { limit: LIMIT };
    match (too_large, bad_utf8) {
        (true, true) => Expect::Fail(vec![too_large_error, ProtocolError::InvalidUtf8]),
        (true, false) => Expect::Fail(vec![too_large_error]),
        (false, true) => Expect::Fail(vec![ProtocolError::InvalidUtf8]),
        (false, false) if text => Expect::Message(Message::Text(String::from_utf8(plaintext).unwrap().into())),
        (false, false) => Expect::Message(Message::Binary(plaintext.into())),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let params = DeflateParams {
        server_no_context_takeover: plan.server_no_context_takeover,
        client_no_context_takeover: plan.client_no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mode = if plan.stream_mode { ReceiveMode::Stream } else { ReceiveMode::Message };
    let mut conn =
        Connection::server(Config::default().max_message_size(LIMIT).receive_mode(mode)).with_deflate(params);
    let level = LEVELS[usize::from(plan.level % 8)];
    let mut compressor = Compress::new(Compression::new(level), false);

    // Build the wire and what each message must become.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut known = true;
    let mut plaintext_budget_used = 0;
    for index in 0..8u8 {
        if u.is_empty() {
            break;
        }
        let flags = byte(&mut u);
        let repeat = usize::from(byte(&mut u));
        let mut cuts: Vec<usize> = (0..byte(&mut u) % 8).map(|_| usize::from(u16_le(&mut u))).collect();
        let len = usize::from(u16_le(&mut u));
        let data = take(&mut u, len);
        let text = flags & TEXT != 0;
        let compressed = flags & COMPRESSED != 0;
        let payload = if compressed && flags & RAW != 0 {
            known = false;
            data.to_vec()
        } else {
            let count = 1 + repeat * repeat * 4;
            let room = MAX_PLAINTEXT - plaintext_budget_used;
            let mut plaintext = data.repeat(count.min(room / data.len().max(1) + 1));
            plaintext.truncate(room);
            plaintext_budget_used += plaintext.len();
            let payload = if compressed {
                let mut out = compress(&mut compressor, &plaintext);
                if params.client_no_context_takeover {
                    compressor.reset();
                }
                if flags & KEEP_TRAILER == 0 && out.ends_with(&TRAILER) {
                    out.truncate(out.len() - TRAILER.len());
                } else if out.is_empty() {
                    // zlib emits nothing for a second flush in a row (an empty message after
                    // another): RFC 7692 §7.2.1 then wants an empty stored block, which is its
                    // header byte once the trailer is stripped.
                    out.push(0x00);
                }
                out
            } else {
                plaintext.clone()
            };
            expected.push(if known { expectation(text, plaintext) } else { Expect::Unknown });
            if compressed && flags & KEEP_TRAILER != 0 && !params.client_no_context_takeover {
                // The receiver appends its own 00 00 FF FF: the kept one leaves the inflater
                // inside a stored block header, which the next message continues (RFC 7692
                // §7.2.1 makes senders strip it; this message itself still inflates).
                known = false;
            }
            payload
        };
        if flags & RAW != 0 && compressed {
            expected.push(Expect::Unknown);
        }
        cuts.iter_mut().for_each(|c| *c %= payload.len() + 1);
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in cuts {
            pieces.push(&payload[from..cut]);
            from = cut;
        }
        pieces.push(&payload[from..]);
        if flags & EMPTY_LAST != 0 {
            pieces.push(&[]);
        }
        let mask = [index, 0x37, 0xFA, 0x21];
        let last = pieces.len() - 1;
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = match (i, text) {
                (0, true) => OpCode::Text,
                (0, false) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            wire.extend(frame(i == last, i == 0 && compressed, opcode, piece, Some(mask)));
            if i == 0 && flags & PING != 0 {
                wire.extend(frame(true, false, OpCode::Ping, b"between", Some(mask)));
            }
        }
    }

    // Deliver, draining events after every input (as the drive loop does).
    let pieces: Vec<&[u8]> = if plan.stride != 0 {
        wire.chunks(usize::from(plan.stride)).collect()
    } else {
        chunks(&wire, plan.chunk_lens.map(|l| usize::from(l) * 16))
    };
    let mut received: Vec<Result<Message, Error>> = Vec::new();
    let mut streaming: Option<(bool, Vec<u8>)> = None;
    let mut error: Option<Error> = None;
    for piece in pieces {
        let result = if plan.zero_copy {
            let mut rest = piece;
            let mut result = conn.commit_received(0);
            while !rest.is_empty() && result.is_ok() {
                let buf = conn.receive_buffer();
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                result = conn.commit_received(n);
                rest = &rest[n..];
            }
            result
        } else {
            conn.receive(piece)
        };
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => {
                    assert!(message.len() <= LIMIT, "a {} byte message passed the limit", message.len());
                    received.push(Ok(message));
                }
                Event::Fragment(fragment) => {
                    assert_eq!(fragment.first, streaming.is_none(), "`first` on the wrong piece");
                    let (text, data) =
                        streaming.get_or_insert_with(|| (fragment.kind == wscore::MessageKind::Text, Vec::new()));
                    data.extend_from_slice(&fragment.data);
                    assert!(data.len() <= LIMIT, "a streamed message passed the limit");
                    if fragment.last {
                        let data = std::mem::take(data);
                        let message = if *text {
                            Message::Text(String::from_utf8(data).expect("streamed text is not UTF-8").into())
                        } else {
                            Message::Binary(data.into())
                        };
                        streaming = None;
                        received.push(Ok(message));
                    }
                }
                Event::Ping(payload) => assert_eq!(&payload[..], b"between"),
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert!(conn.buffered_received() <= wire.len() + 2 * LIMIT, "buffered {}", conn.buffered_received());
        if let Err(err) = result {
            if let Some(first) = &error {
                assert_eq!(*first, err, "errors are sticky");
            }
            error = Some(err);
        }
    }
    // In stream mode, inflating pauses while pieces wait for the application and resumes as
    // they are taken: a failure found then is sticky and reported by the next input, and there
    // is none after the last one. The connection holds it.
    match (&error, conn.error()) {
        (Some(first), Some(held)) => assert_eq!(first, held, "errors are sticky"),
        (Some(first), None) => panic!("{first:?} reported, but the connection holds no error"),
        (None, held) => error = held.cloned(),
    }
    if let Some(err) = &error {
        let Error::Protocol(p) = err else { panic!("not a protocol error: {err:?}") };
        assert!(
            matches!(
                p,
                ProtocolError::MessageTooLarge { limit: LIMIT }
                    | ProtocolError::InvalidCompressedData
                    | ProtocolError::InvalidUtf8
            ),
            "unexpected error {p:?}"
        );
        received.push(Err(err.clone()));
    }

    wscore_fuzz::debug(|| format!("{plan:?}\nexpected {expected:?}\nreceived {received:?}"));
    // Compare with what the messages had to become, up to the first unknown one.
    let mut got = received.into_iter();
    for expect in expected {
        match expect {
            Expect::Unknown => break,
            Expect::Message(message) => match got.next() {
                Some(Ok(m)) => assert_eq!(m, message),
                other => panic!("expected {} byte message, got {other:?}", message.len()),
            },
            Expect::Fail(errors) => {
                match got.next() {
                    Some(Err(Error::Protocol(p))) => assert!(errors.contains(&p), "expected {errors:?}, got {p:?}"),
                    other => panic!("expected {errors:?}, got {other:?}"),
                }
                break;
            }
        }
    }
});
