//! The close handshake (RFC 6455 §5.5.1, §7) and the timers of a `Connection`: who closes the
//! transport first, close codes echoed or refused, the close deadline, keepalive pings and the
//! pong deadline, all on the pair harness's fake clock.

mod harness;

use harness::{
    Pair, Split, assert_client_fails, assert_server_fails, client, close, close_body, decode_frames, drain_events,
    feed_all, masked, ping, pong, server, text, unmasked,
};
use std::time::Duration;
use wscore::{CloseCode, Config, Error, Event, OpCode, ProtocolError, Role, SendError, State};

// ----- close handshake -----

#[test]
fn client_initiated_close() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        pair.client().send_text("before").unwrap();
        pair.client().close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(pair.client().state(), State::CloseSent);
        assert_eq!(pair.client().send_text("after"), Err(SendError::Closed));
        // Step by hand: the server receives the close but has not taken the event yet.
        pair.deliver(Role::Client);
        assert_eq!(pair.server().state(), State::CloseReceived);
        assert!(!pair.server().wants_write(), "reply waits for the event");
        // The server may still send before answering.
        pair.server().send_text("last words").unwrap();
        pair.pull_events(Role::Server);
        assert_eq!(pair.server.events, [text("before"), close(1000, "bye")]);
        assert_eq!(pair.server().state(), State::Closed);
        assert!(!pair.server().should_close_transport(), "reply not written yet");
        pair.auto_eof = false;
        pair.run();
        // The server echoed the code and closed the transport first.
        assert_eq!(pair.server.close_sent(), Some(Some(1000)));
        let last = pair.server.frames().pop().unwrap();
        assert_eq!(last.payload, 1000u16.to_be_bytes(), "code echoed, no reason");
        assert!(pair.server.transport_closed);
        assert_eq!(pair.client.events, [text("last words"), close(1000, "")], "{split:?}");
        assert_eq!(pair.client().state(), State::Closed);
        assert!(!pair.client().should_close_transport(), "client waits for the server");
        // The server's transport closing reaches the client as end of stream.
        assert_eq!(pair.client().receive_eof(), Ok(()));
        assert!(pair.client().should_close_transport());
        assert_eq!(pair.client.error, None);
        assert_eq!(pair.server.error, None);
    }
}

#[test]
fn server_initiated_close() {
    for split in Split::all() {
        let mut pair = Pair::default_with(split);
        pair.server().close(CloseCode::GOING_AWAY, "restart").unwrap();
        pair.run();
        assert_eq!(pair.client.events, [close(1001, "restart")]);
        assert_eq!(pair.server.events, [close(1001, "")]);
        assert_eq!(pair.client.close_sent(), Some(Some(1001)));
        assert_eq!(pair.server().state(), State::Closed);
        assert_eq!(pair.client().state(), State::Closed);
        assert!(pair.server.transport_closed);
        assert!(pair.client.eof_received);
        assert!(pair.client.transport_closed);
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    }
}

#[test]
fn data_still_arrives_while_the_close_is_in_flight() {
    let mut pair = Pair::default_with(Split::Random(5));
    pair.server().close(CloseCode::NORMAL, "done").unwrap();
    // The client sends before it has seen the server's close.
    pair.client().send_text("crossing").unwrap();
    pair.client().ping("p").unwrap();
    pair.run();
    assert_eq!(pair.server.events, [text("crossing"), ping(b"p"), close(1000, "")]);
    assert!(pair.server.frames().iter().all(|f| f.opcode() != OpCode::Pong), "no pong after our close");
    assert_eq!(pair.client.events, [close(1000, "done")]);
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
}

#[test]
fn handle_timeout_without_timers_is_harmless() {
    let mut conn = server();
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(wscore::Instant::from_millis(5)).unwrap();
    conn.handle_timeout(wscore::Instant::ZERO).unwrap();
    assert_eq!(conn.poll_timeout(), None);
    assert!(!conn.wants_write());
    assert_eq!(conn.state(), State::Open);
}

#[test]
fn simultaneous_close() {
    let mut pair = Pair::default_with(Split::Random(4));
    pair.client().close(CloseCode(4000), "c").unwrap();
    pair.server().close(CloseCode(3000), "s").unwrap();
    pair.run();
    assert_eq!(pair.client.events, [close(3000, "s")]);
    assert_eq!(pair.server.events, [close(4000, "c")]);
    assert_eq!(pair.client().state(), State::Closed);
    assert_eq!(pair.server().state(), State::Closed);
    assert!(pair.server.transport_closed && pair.client.transport_closed);
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    // Exactly one close frame each.
    for side in [&pair.client, &pair.server] {
        let closes = side.frames().iter().filter(|f| f.opcode() == OpCode::Close).count();
        assert_eq!(closes, 1);
    }
}

#[test]
fn close_without_status_code_is_echoed_without_one() {
    let (result, events, out, conn) = feed_all(server(), &masked(0x88, b""), Split::Whole);
    assert_eq!(result, Ok(()));
    assert_eq!(events, [Event::Close(None)]);
    assert_eq!(&out[..], b"\x88\x00");
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.should_close_transport());
}

#[test]
fn close_called_after_peer_close_is_the_reply() {
    let mut conn = server();
    conn.receive(&masked(0x88, &close_body(1000, b""))).unwrap();
    assert_eq!(conn.state(), State::CloseReceived);
    conn.close(CloseCode(4001), "mine").unwrap();
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(drain_events(&mut conn), [close(1000, "")]);
    let frames = decode_frames(&conn.take_transmit());
    assert_eq!(frames.len(), 1, "only one close frame");
    assert_eq!(frames[0].close_code(), Some(4001));
}

#[test]
fn data_after_close_frame_is_ignored() {
    let mut bytes = masked(0x88, &close_body(1000, b""));
    bytes.extend(masked(0x81, b"ignored"));
    bytes.extend([0xFF, 0xFF]); // even garbage
    let (result, events, _, _) = feed_all(server(), &bytes, Split::Random(1));
    assert_eq!(result, Ok(()));
    assert_eq!(events, [close(1000, "")]);
}

#[test]
fn close_deadline_when_the_peer_never_answers() {
    let config = Config::default().close_timeout(Duration::from_secs(2));
    let mut pair = Pair::new(config.clone(), config, Split::Whole);
    pair.server.reading = false;
    pair.client().close(CloseCode::NORMAL, "").unwrap();
    pair.run();
    assert_eq!(pair.client().state(), State::CloseSent);
    let deadline = pair.next_deadline().expect("close deadline armed");
    assert_eq!(deadline, wscore::Instant::from_millis(pair.now_ms() + 2000));
    pair.advance(1999);
    assert_eq!(pair.client.error, None);
    assert!(!pair.client.transport_closed);
    pair.advance(1);
    assert_eq!(pair.client.error, Some(Error::CloseTimeout));
    assert_eq!(Error::CloseTimeout.close_code(), CloseCode::ABNORMAL);
    assert_eq!(pair.client().state(), State::Failed);
    assert!(pair.client().should_close_transport());
    assert!(pair.client.transport_closed);
}

#[test]
fn client_gives_up_waiting_for_the_server_to_close_the_transport() {
    let config = Config::default().close_timeout(Duration::from_secs(3));
    let mut pair = Pair::new(config.clone(), config, Split::Whole);
    pair.auto_eof = false;
    pair.client().close(CloseCode::NORMAL, "").unwrap();
    pair.run();
    assert!(pair.server.transport_closed);
    assert_eq!(pair.client().state(), State::Closed);
    assert!(!pair.client.transport_closed);
    pair.advance(3000);
    assert!(pair.client.transport_closed, "deadline passed");
    assert_eq!(pair.client().state(), State::Closed);
    assert_eq!(pair.client.error, None, "the handshake itself completed");
}

#[test]
fn eof_before_the_close_handshake_fails() {
    let mut conn = server();
    conn.send_text("queued").unwrap();
    assert_eq!(conn.receive_eof(), Err(Error::UnexpectedEof));
    assert_eq!(Error::UnexpectedEof.close_code(), CloseCode::ABNORMAL);
    assert_eq!(conn.state(), State::Failed);
    assert!(conn.should_close_transport());
    assert!(!conn.wants_write(), "nothing can be written any more");
    assert_eq!(conn.receive(b"x"), Err(Error::UnexpectedEof));
    assert_eq!(conn.send_text("more"), Err(SendError::Closed));
}

#[test]
fn invalid_close_codes_are_protocol_errors() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        assert_server_fails(&masked(0x88, &close_body(code, b"")), ProtocolError::InvalidCloseCode(code), 1002, &[]);
        assert_client_fails(
            &unmasked(0x88, &close_body(code, b"why")),
            ProtocolError::InvalidCloseCode(code),
            1002,
            &[],
        );
    }
}

#[test]
fn valid_close_codes_are_echoed() {
    let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
    for code in valid {
        let (result, events, out, conn) =
            feed_all(server(), &masked(0x88, &close_body(code, b"reason")), Split::Random(2));
        assert_eq!(result, Ok(()));
        assert_eq!(events, [close(code, "reason")]);
        assert_eq!(&out[..], &unmasked(0x88, &close_body(code, b""))[..]);
        assert_eq!(conn.state(), State::Closed);
        // And the application may send each of them.
        let mut c = client();
        c.close(CloseCode(code), "r").unwrap();
        let frames = decode_frames(&c.take_transmit());
        assert_eq!(frames[0].close_code(), Some(code));
    }
}

#[test]
fn close_body_of_one_byte() {
    assert_server_fails(&masked(0x88, &[0x03]), ProtocolError::CloseBodyTooShort, 1002, &[]);
}

#[test]
fn close_reason_with_invalid_utf8() {
    assert_server_fails(&masked(0x88, &close_body(1000, b"ok\xff")), ProtocolError::InvalidCloseReason, 1007, &[]);
    // Truncated inside a code point.
    assert_client_fails(&unmasked(0x88, &close_body(1000, b"\xe2\x82")), ProtocolError::InvalidCloseReason, 1007, &[]);
    // A valid multibyte reason of the maximum length is fine.
    let reason = "é".repeat(61) + "a";
    assert_eq!(reason.len(), 123);
    let (result, events, _, _) =
        feed_all(server(), &masked(0x88, &close_body(1000, reason.as_bytes())), Split::OneByte);
    assert_eq!(result, Ok(()));
    assert_eq!(events, [close(1000, &reason)]);
}

// ----- keepalive -----

#[test]
fn keepalive_pings_and_pong_deadline() {
    let server_config =
        Config::default().keepalive_interval(Some(Duration::from_secs(10))).keepalive_timeout(Duration::from_secs(5));
    let mut pair = Pair::new(Config::default(), server_config, Split::Random(8));
    pair.run();
    let start = pair.now_ms();
    assert_eq!(pair.next_deadline(), Some(wscore::Instant::from_millis(start + 10_000)));
    pair.advance(9_999);
    assert!(pair.server.wire.is_empty());
    pair.advance(1);
    // The client answered the keepalive ping; the server saw the pong.
    assert_eq!(pair.client.take_events(), [ping(&1u64.to_be_bytes())]);
    assert_eq!(pair.server.take_events(), [pong(&1u64.to_be_bytes())]);
    assert_eq!(pair.server.error, None);
    // Next interval: the client stops reading, so no pong comes back.
    pair.client.reading = false;
    pair.advance(10_000);
    assert_eq!(pair.server.error, None);
    pair.advance(4_999);
    assert_eq!(pair.server.error, None);
    pair.advance(1);
    assert_eq!(pair.server.error, Some(Error::KeepaliveTimeout));
    assert_eq!(pair.server().state(), State::Failed);
    assert_eq!(Error::KeepaliveTimeout.close_code(), CloseCode::INTERNAL);
    // The client reads again: it gets the second ping and the 1011 close.
    pair.client.reading = true;
    pair.run();
    let events = pair.client.take_events();
    assert_eq!(events[0], ping(&2u64.to_be_bytes()));
    assert!(matches!(&events[1], Event::Close(Some(f)) if f.code == CloseCode::INTERNAL), "{events:?}");
    assert_eq!(pair.server.close_sent(), Some(Some(1011)));
    assert!(pair.server.transport_closed);
}

#[test]
fn keepalive_pong_with_another_payload_does_not_count() {
    let server_config =
        Config::default().keepalive_interval(Some(Duration::from_secs(10))).keepalive_timeout(Duration::from_secs(5));
    let client_config = Config::default().auto_pong(false);
    let mut pair = Pair::new(client_config, server_config, Split::Whole);
    pair.run();
    pair.advance(10_000);
    assert_eq!(pair.client.take_events(), [ping(&1u64.to_be_bytes())]);
    pair.client().pong("unrelated").unwrap();
    pair.advance(5_000);
    assert_eq!(pair.server.error, Some(Error::KeepaliveTimeout));
}

#[test]
fn keepalive_stops_after_close() {
    let config = Config::default().keepalive_interval(Some(Duration::from_secs(1)));
    let mut pair = Pair::new(config.clone(), config, Split::Whole);
    pair.run();
    pair.advance(1_000);
    let one = 1u64.to_be_bytes();
    assert_eq!(pair.client.take_events(), [ping(&one), pong(&one)]);
    assert_eq!(pair.server.take_events(), [ping(&one), pong(&one)]);
    pair.client().close_normal().unwrap();
    pair.run();
    assert!(pair.client.transport_closed && pair.server.transport_closed);
    assert_eq!(pair.next_deadline(), None);
}
