//! Hostile input, family 4: UTF-8 in text messages (RFC 6455 §5.6, §8.1; RFC 3629).
//!
//! Guards against the bug class behind CVE-2000-0884 and CVE-2008-2938 (IIS, Tomcat: overlong
//! UTF-8 encodings slipping past a check that decoded leniently), the UTF-16 surrogate and
//! beyond-U+10FFFF encodings that lenient decoders accept, and validators that only check a
//! message once it is complete (so an attacker can make the receiver buffer a whole maximum-size
//! message before it is refused):
//!
//! - a text message split inside a code point at every offset, across two frames and across
//!   reads within one frame, is accepted whole (both receive modes);
//! - a message that ends inside a code point fails with 1007 at its FIN;
//! - ASCII fragments right after a code point cut short fail with 1007, even where the bytes
//!   after them would complete it (fragments that arrive together are checked together);
//! - overlong forms, surrogates (`ED A0 80`), code points above U+10FFFF (`F4 90 80 80`) and
//!   bytes never valid in UTF-8 fail with 1007 at the first byte that makes the sequence
//!   impossible, before the rest of the sequence or frame arrives — also in a short frame that
//!   waits to be taken whole, in reads cut anywhere, in either role;
//! - non-characters (U+FFFE, U+FFFF, U+FDD0, U+10FFFF...) are valid UTF-8 and accepted;
//! - one invalid byte in the first KiB of a 1 MiB frame fails before the rest of the frame is
//!   sent, holding no more than what arrived.
//!
//! Single examples already in `tests/peer_violations.rs` (`invalid_utf8_fails_fast_inside_a_frame`,
//! `invalid_utf8_across_fragments_and_at_the_end`) are generalised here, not repeated.

mod harness;

use harness::{assert_fails, drain_events, masked, text, unmasked};
use wscore::{Config, Connection, Error, Event, Fragment, MessageKind, ProtocolError, ReceiveMode, SeededRandom};

/// Text with code points of every encoded length, at every position relative to a cut.
const MIXED: &str = "aé€😀b\u{7FF}\u{800}\u{FFFD}\u{10000}\u{10FFFF}ñ";

fn server_in(mode: ReceiveMode) -> Connection {
    Connection::server(Config::default().receive_mode(mode))
}

fn client_in(mode: ReceiveMode) -> Connection {
    Connection::client_with_random(Config::default().receive_mode(mode), Box::new(SeededRandom::new(8)))
}

fn stream_server() -> Connection {
    server_in(ReceiveMode::Stream)
}

/// The text a connection delivered, as whole messages or reassembled pieces.
fn delivered_text(events: Vec<Event>) -> Vec<String> {
    let mut out = Vec::new();
    let mut partial = Vec::new();
    for event in events {
        match event {
            Event::Message(m) => out.push(String::from_utf8(m.as_bytes().to_vec()).unwrap()),
            Event::Fragment(Fragment { kind: MessageKind::Text, data, last, .. }) => {
                partial.extend_from_slice(&data);
                if last {
                    out.push(String::from_utf8(std::mem::take(&mut partial)).expect("whole message is UTF-8"));
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(partial.is_empty(), "unfinished message");
    out
}

#[test]
fn text_split_inside_code_points_at_every_offset_across_two_frames() {
    let bytes = MIXED.as_bytes();
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        for cut in 0..=bytes.len() {
            let mut wire = masked(0x01, &bytes[..cut]);
            wire.extend(masked(0x80, &bytes[cut..]));
            // And every read split of those two frames.
            for read in 0..=wire.len() {
                let mut conn = server_in(mode);
                conn.receive(&wire[..read]).unwrap();
                conn.receive(&wire[read..]).unwrap();
                assert_eq!(delivered_text(drain_events(&mut conn)), [MIXED], "{mode:?} cut {cut} read {read}");
            }
            // The client side, whole.
            let mut wire = unmasked(0x01, &bytes[..cut]);
            wire.extend(unmasked(0x80, &bytes[cut..]));
            let mut conn = client_in(mode);
            conn.receive(&wire).unwrap();
            assert_eq!(delivered_text(drain_events(&mut conn)), [MIXED]);
        }
    }
}

#[test]
fn text_split_inside_code_points_across_reads_within_one_frame() {
    let wire = masked(0x81, MIXED.as_bytes());
    for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
        // Every pair of cuts: three reads.
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let mut conn = server_in(mode);
                for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
                    conn.receive(piece).unwrap();
                }
                assert_eq!(delivered_text(drain_events(&mut conn)), [MIXED], "{mode:?} {a} {b}");
            }
        }
        // One byte per read, through the zero-copy path.
        let mut conn = server_in(mode);
        harness::feed_split(&mut conn, &wire, &mut harness::Pipe::new(harness::Split::OneByte)).unwrap();
        assert_eq!(delivered_text(drain_events(&mut conn)), [MIXED]);
    }
}

#[test]
fn a_message_ending_inside_a_code_point_fails_at_its_fin() {
    let expected = ProtocolError::InvalidUtf8;
    for c in ['é', '€', '😀', '\u{10FFFF}'] {
        let mut encoded = [0u8; 4];
        let encoded = c.encode_utf8(&mut encoded).as_bytes();
        for keep in 1..encoded.len() {
            let mut payload = b"ok".to_vec();
            payload.extend_from_slice(&encoded[..keep]);
            // One frame.
            assert_fails(harness::server, &masked(0x81, &payload), expected.clone(), 1007, &[]);
            // (Stream mode, whole: the last piece is refused, not delivered.)
            let (result, events, _, _) =
                harness::feed_all(stream_server(), &masked(0x81, &payload), harness::Split::Whole);
            assert_eq!((result, events), (Err(Error::Protocol(expected.clone())), vec![]));
            assert_fails(harness::client, &unmasked(0x81, &payload), expected.clone(), 1007, &[]);
            // Longer, in two reads cut anywhere (from 16 bytes of payload in the first, the
            // frame waits in the buffer to be taken whole): refused with its last byte.
            let mut long = b"ok, and then some text".to_vec();
            long.extend_from_slice(&encoded[..keep]);
            let wire = masked(0x81, &long);
            for cut in 1..wire.len() {
                let mut conn = harness::server();
                assert_eq!(conn.receive(&wire[..cut]), Ok(()), "{c} {keep} {cut}");
                assert_eq!(conn.receive(&wire[cut..]), Err(Error::Protocol(expected.clone())), "{c} {keep} {cut}");
            }
            // The truncated code point in a middle fragment, then an empty final frame: the
            // message stays undecided until FIN, then fails.
            let mut wire = masked(0x01, &payload);
            wire.extend(masked(0x80, b""));
            assert_fails(harness::server, &wire, expected.clone(), 1007, &[]);
            let mut conn = harness::server();
            conn.receive(&masked(0x01, &payload)).unwrap();
            assert_eq!(conn.receive(&masked(0x80, b"")), Err(Error::Protocol(expected.clone())));
        }
    }
}

#[test]
fn ascii_fragments_inside_a_code_point_are_not_skipped() {
    // `E2` starts a three-byte sequence; "ab" cannot go on with it. A check that let ASCII
    // fragments through unseen would then take `82 AC`, which completes `E2` as "€", for
    // valid text. Whole frames are taken together (several fragments checked at once), so
    // the fragments come after a first frame, whole and in every other split; also with
    // more ASCII fragments in between, and with the rest of the sequence in the last frame.
    for middle in [1, 3] {
        for last in [&b"\x82\xac"[..], b"\x82\xacok"] {
            let mut wire = masked(0x01, b"ok\xe2");
            for _ in 0..middle {
                wire.extend(masked(0x00, b"ab"));
            }
            wire.extend(masked(0x80, last));
            assert_fails(harness::server, &wire, ProtocolError::InvalidUtf8, 1007, &[]);
        }
    }
}

/// Invalid sequences after "ok", with the index (in the sequence) of the first byte that makes
/// the text impossible.
const INVALID: [(&[u8], usize); 20] = [
    (b"\x80", 0),                     // continuation byte without a lead
    (b"\xbf", 0),                     //
    (b"\xc0\x80", 0),                 // overlong NUL: C0 and C1 never appear in UTF-8
    (b"\xc1\xbf", 0),                 // overlong U+007F
    (b"\xe0\x80\x80", 1),             // overlong 3-byte NUL
    (b"\xe0\x9f\xbf", 1),             // overlong U+07FF
    (b"\xf0\x80\x80\x80", 1),         // overlong 4-byte NUL
    (b"\xf0\x8f\xbf\xbf", 1),         // overlong U+FFFF
    (b"\xed\xa0\x80", 1),             // surrogate U+D800
    (b"\xed\xbf\xbf", 1),             // surrogate U+DFFF
    (b"\xed\xa0\x80\xed\xb0\x80", 1), // a surrogate pair, CESU-8 style
    (b"\xf4\x90\x80\x80", 1),         // U+110000
    (b"\xf5\x80\x80\x80", 0),         // lead bytes F5..FF never appear
    (b"\xf8\x88\x80\x80\x80", 0),     // 5-byte form
    (b"\xfc\x84\x80\x80\x80\x80", 0),
    (b"\xfe", 0),
    (b"\xff", 0),
    (b"\xe2\x28\xa1", 1), // a lead byte followed by ASCII
    (b"\xe2\x82\x28", 2),
    (b"\xf0\x9f\x98\x41", 3),
];

#[test]
fn invalid_sequences_fail_at_the_first_impossible_byte() {
    for (sequence, bad_at) in INVALID {
        for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
            // The frame declares 1000 more bytes that are never sent.
            let mut payload = b"ok".to_vec();
            payload.extend_from_slice(sequence);
            payload.resize(payload.len() + 1000, b'x');
            let frame = masked(0x81, &payload);
            // Two header bytes, the 16-bit length, the key, "ok", then the sequence.
            let bad_index = 2 + 2 + 4 + 2 + bad_at;
            let mut conn = server_in(mode);
            for (i, byte) in frame[..=bad_index].iter().enumerate() {
                let result = conn.receive(std::slice::from_ref(byte));
                if i < bad_index {
                    assert_eq!(result, Ok(()), "{sequence:02x?} byte {i}");
                } else {
                    assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)), "{sequence:02x?}");
                }
            }
            assert_eq!(conn.buffered_received(), 0);
            drain_events(&mut conn);
            assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1007)));
        }
        // Across a frame boundary: the sequence starts in one fragment and is refused by the
        // first byte of the next that cannot continue it.
        if bad_at > 0 {
            let mut wire = masked(0x01, &[b"ok", &sequence[..bad_at]].concat());
            wire.extend(masked(0x80, &sequence[bad_at..]));
            assert_fails(harness::server, &wire, ProtocolError::InvalidUtf8, 1007, &[]);
        }
        // A client reading server frames decides the same.
        assert_fails(harness::client, &unmasked(0x81, sequence), ProtocolError::InvalidUtf8, 1007, &[]);
    }
}

/// A short text frame whose first read brings its header and some of its payload waits in the
/// buffer to be taken whole, like a short binary frame, but what arrives of it is still
/// validated at every read: an invalid sequence fails the read that brings its first impossible
/// byte, wherever the reads are cut, in either role; the connection then closes with 1007.
#[test]
fn a_short_text_frame_arriving_in_pieces_fails_at_the_read_that_makes_it_invalid() {
    // Multi-byte text before the sequence, so that cuts also fall inside valid code points.
    let prefix = "κόσμε, ok: ".as_bytes();
    for (sequence, bad_at) in INVALID {
        let mut payload = prefix.to_vec();
        payload.extend_from_slice(sequence);
        payload.resize(payload.len() + 120, b'x');
        for server in [true, false] {
            let (wire, header_len) = if server { (masked(0x81, &payload), 8) } else { (unmasked(0x81, &payload), 4) };
            let bad_index = header_len + prefix.len() + bad_at;
            // The first read brings the header and at least 16 bytes of the payload (what the
            // frame needs to wait), before the sequence, inside it or past it.
            for first in header_len + 16..=wire.len() {
                for step in [1, 5, 64] {
                    let mut conn =
                        if server { server_in(ReceiveMode::Message) } else { client_in(ReceiveMode::Message) };
                    let mut start = 0;
                    let mut end = first;
                    loop {
                        let result = conn.receive(&wire[start..end]);
                        if end <= bad_index {
                            assert_eq!(result, Ok(()), "{sequence:02x?} server {server} first {first} step {step}");
                        } else {
                            assert_eq!(
                                result,
                                Err(Error::Protocol(ProtocolError::InvalidUtf8)),
                                "{sequence:02x?} server {server} first {first} step {step} read {start}..{end}"
                            );
                            break;
                        }
                        (start, end) = (end, (end + step).min(wire.len()));
                    }
                    assert!(drain_events(&mut conn).is_empty());
                    assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1007)));
                }
            }
        }
    }
}

#[test]
fn noncharacters_and_boundary_code_points_are_accepted() {
    let valid = [
        "\u{FFFE}",
        "\u{FFFF}",
        "\u{FDD0}",
        "\u{FDEF}",
        "\u{1FFFE}",
        "\u{10FFFE}",
        "\u{10FFFF}",
        "\u{0}",
        "\u{7F}",
        "\u{80}",
        "\u{7FF}",
        "\u{800}",
        "\u{D7FF}",
        "\u{E000}",
        "\u{FEFF}",
        "\u{FFFD}",
        "\u{10000}",
    ];
    for s in valid {
        for split in harness::Split::all() {
            let (result, events, _, _) = harness::feed_all(harness::server(), &masked(0x81, s.as_bytes()), split);
            assert_eq!((result, events), (Ok(()), vec![text(s)]), "{s:?}");
        }
        let (result, events, _, _) =
            harness::feed_all(harness::client(), &unmasked(0x81, s.as_bytes()), harness::Split::OneByte);
        assert_eq!((result, events), (Ok(()), vec![text(s)]));
    }
    let all = valid.concat();
    let (result, events, _, _) =
        harness::feed_all(stream_server(), &masked(0x81, all.as_bytes()), harness::Split::OneByte);
    assert_eq!(result, Ok(()));
    assert_eq!(delivered_text(events), [all]);
}

#[test]
fn an_invalid_byte_in_the_first_kib_of_a_mebibyte_frame_fails_before_the_rest_arrives() {
    const LEN: usize = 1 << 20;
    const READ: usize = 100;
    for bad_at in [0, 1, 511, 1023] {
        let mut payload = vec![b'a'; LEN];
        payload[bad_at] = 0xFF;
        let frame = masked(0x81, &payload);
        let header = frame.len() - LEN;
        for mode in [ReceiveMode::Message, ReceiveMode::Stream] {
            let mut conn = server_in(mode);
            let mut fed = 0;
            let mut result = Ok(());
            for piece in frame.chunks(READ) {
                result = conn.receive(piece);
                fed += piece.len();
                if result.is_err() {
                    break;
                }
                drain_events(&mut conn);
                assert!(conn.buffered_received() <= fed - header.min(fed));
            }
            assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)));
            // Failed with the read that carried the bad byte: never more than one read past it.
            assert!(fed <= header + bad_at + READ, "{mode:?}: fed {fed} for a bad byte at {bad_at}");
            assert_eq!(conn.buffered_received(), 0);
            drain_events(&mut conn);
            assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1007)));
        }
    }
    // The same in a second fragment, after a valid half-mebibyte first one.
    let mut conn = harness::server();
    conn.receive(&masked(0x01, &vec![b'a'; LEN / 2])).unwrap();
    let mut second = vec![b'b'; LEN / 2];
    second[700] = 0xC0;
    let frame = masked(0x80, &second);
    assert_eq!(conn.receive(&frame[..1024]), Err(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(conn.buffered_received(), 0);
}

/// One large input (taken a few whole frames at a time) with invalid text after 40 valid
/// messages: the 40 messages come out, then 1007, and nothing after the bad frame is
/// processed — as when the same bytes arrive in small reads.
#[test]
fn invalid_text_inside_a_large_input_fails_after_the_messages_before_it() {
    let good = MIXED.repeat(60);
    let mut wire = Vec::new();
    for _ in 0..40 {
        wire.extend(masked(0x81, good.as_bytes()));
    }
    let mut bad = good.clone().into_bytes();
    bad[300] = 0xFF;
    wire.extend(masked(0x81, &bad));
    wire.extend(masked(0x82, &[7; 5000]));
    assert!(wire.len() > 64 << 10);
    for read in [wire.len(), 1460, 1] {
        let mut conn = harness::server();
        let (result, events) = harness::receive_in_reads(&mut conn, &wire, read);
        assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)), "reads of {read}");
        assert_eq!(events.len(), 40, "reads of {read}");
        assert!(events.iter().all(|e| *e == text(&good)), "reads of {read}");
        assert_eq!(harness::close_code_in(&conn.take_transmit()), Some(Some(1007)));
        assert_eq!(conn.buffered_received(), 0);
    }
}
