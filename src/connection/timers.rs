//! Deadlines without a clock: keepalive pings, the pong deadline, the close-handshake deadline
//! and the write-stall deadline, exposed through [`Connection::poll_timeout`] and
//! [`Connection::handle_timeout`]; and how long a driver lingers after the close
//! ([`Connection::linger_deadline`]). RFC 6455 §5.5.2–5.5.3 (pings as keepalive), §7.1.1 (the
//! server closes the TCP connection first; the client waits a bounded time).
//!
//! Commands and received bytes do not carry the time. When something needs a deadline
//! relative to "now" (the close frame just queued, keepalive just enabled, output just queued
//! or just written), the timer asks for the time by reporting [`Instant::ZERO`] — already due —
//! and anchors the deadline at the `now` of the next `handle_timeout`.

use super::{Connection, State};
use crate::error::Error;
use crate::frame::OpCode;
use crate::time::Instant;
use bytes::Bytes;

#[derive(Debug)]
pub(super) struct Timers {
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    /// Payload of the keepalive ping whose pong is awaited.
    awaited_pong: u64,
    close_deadline: Option<Instant>,
    close_needs_anchor: bool,
    /// When waiting output fails the connection unless some of it is written before.
    write_deadline: Option<Instant>,
    /// Output was written since `write_deadline` was set: the stall clock restarts.
    write_progress: bool,
}

impl Timers {
    pub(super) fn new() -> Self {
        Self {
            next_ping: None,
            pong_deadline: None,
            awaited_pong: 0,
            close_deadline: None,
            close_needs_anchor: false,
            write_deadline: None,
            write_progress: false,
        }
    }

    /// A close frame was queued: the close deadline starts now.
    pub(super) fn arm_close(&mut self) {
        if self.close_deadline.is_none() {
            self.close_needs_anchor = true;
        }
        self.next_ping = None;
        self.pong_deadline = None;
    }

    pub(super) fn close_handshake_done(&mut self) {
        self.next_ping = None;
        self.pong_deadline = None;
    }

    pub(super) fn pong_received(&mut self, payload: &[u8]) {
        if self.pong_deadline.is_some() && payload == self.awaited_pong.to_be_bytes() {
            self.pong_deadline = None;
        }
    }

    /// `n` bytes of output were written: the write-stall clock restarts (at the next
    /// `handle_timeout`).
    pub(super) fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.write_progress = true;
        }
    }
}

impl Connection {
    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called, or
    /// `None` when no timer is armed. An instant in the past (such as [`Instant::ZERO`]) means
    /// "call it now": the connection needs the current time to anchor a new deadline.
    ///
    /// ```
    /// use wscore::{Config, Connection, Instant};
    /// let mut conn = Connection::server(Config::default());
    /// assert_eq!(conn.poll_timeout(), None); // idle, keepalive off
    /// conn.send_text("hi").unwrap();
    /// // Output waits: the write-stall deadline needs the time.
    /// assert_eq!(conn.poll_timeout(), Some(Instant::ZERO));
    /// conn.handle_timeout(Instant::from_millis(1_000)).unwrap();
    /// assert_eq!(conn.poll_timeout(), Some(Instant::from_millis(31_000)));
    /// let n = conn.transmit().len();
    /// conn.advance_transmit(n);
    /// assert_eq!(conn.poll_timeout(), None); // all written
    /// ```
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.timers;
        if t.close_needs_anchor && !self.should_close_transport() {
            return Some(Instant::ZERO);
        }
        if self.state == State::Open && self.config.keepalive_interval.is_some() && t.next_ping.is_none() {
            return Some(Instant::ZERO);
        }
        let write_deadline = match self.write_stall_watched() {
            true if t.write_deadline.is_none() || t.write_progress => return Some(Instant::ZERO),
            true => t.write_deadline,
            false => None,
        };
        [t.next_ping, t.pong_deadline, t.close_deadline, write_deadline].into_iter().flatten().min()
    }

    /// Whether the write-stall deadline applies: it is configured, output waits, and the
    /// transport was not given up on.
    fn write_stall_watched(&self) -> bool {
        self.config.write_timeout.is_some() && !self.send.is_empty() && !self.timed_out
    }

    /// Tells the connection the time: anchors new deadlines and fires those that are due
    /// (sending a keepalive ping, failing on a missing pong, giving up on the close handshake
    /// or on a transport that takes none of the output).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let t = &mut self.timers;
        if t.close_needs_anchor {
            t.close_needs_anchor = false;
            t.close_deadline = Some(now + self.config.close_timeout);
        }
        if self.state == State::Open {
            if let Some(interval) = self.config.keepalive_interval {
                match t.next_ping {
                    None => t.next_ping = Some(now + interval),
                    Some(at) if at <= now => {
                        t.next_ping = Some(now + interval);
                        if t.pong_deadline.is_none() {
                            t.awaited_pong = t.awaited_pong.wrapping_add(1);
                            t.pong_deadline = Some(now + self.config.keepalive_timeout);
                            let payload = Bytes::copy_from_slice(&t.awaited_pong.to_be_bytes());
                            self.send.push_control(OpCode::Ping, payload);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        let t = &mut self.timers;
        if t.pong_deadline.is_some_and(|at| at <= now) {
            t.pong_deadline = None;
            let err = self.fail(Error::KeepaliveTimeout);
            // The failure queued a close frame: its deadline starts now, not at the next call.
            let t = &mut self.timers;
            if t.close_needs_anchor {
                t.close_needs_anchor = false;
                t.close_deadline = Some(now + self.config.close_timeout);
            }
            self.anchor_write_deadline(now);
            return Err(err);
        }
        if t.close_deadline.is_some_and(|at| at <= now) {
            t.close_deadline = None;
            self.timed_out = true;
            self.send.clear();
            if self.state == State::CloseSent {
                return Err(self.fail(Error::CloseTimeout));
            }
            if self.state != State::Failed {
                self.state = State::Closed;
            }
        }
        self.handle_write_deadline(now)
    }

    /// Starts (or restarts, after progress) the write-stall deadline while output waits; stops
    /// it when none does. Returns whether the deadline is armed and already passed.
    fn anchor_write_deadline(&mut self, now: Instant) -> bool {
        let watched = self.write_stall_watched();
        let t = &mut self.timers;
        match self.config.write_timeout {
            Some(limit) if watched => {
                if t.write_deadline.is_none() || t.write_progress {
                    t.write_progress = false;
                    t.write_deadline = Some(now + limit);
                }
                t.write_deadline.is_some_and(|at| at <= now)
            }
            _ => {
                t.write_deadline = None;
                t.write_progress = false;
                false
            }
        }
    }

    /// The write-stall deadline: anchors it, and once it passed gives up on the transport.
    fn handle_write_deadline(&mut self, now: Instant) -> Result<(), Error> {
        if !self.anchor_write_deadline(now) {
            return Ok(());
        }
        let t = &mut self.timers;
        t.write_deadline = None;
        t.close_deadline = None;
        t.close_needs_anchor = false;
        t.next_ping = None;
        t.pong_deadline = None;
        // A peer that reads nothing would not read a close frame either: no close frame, no
        // lingering, the transport is shut down now.
        self.timed_out = true;
        let result = match self.state {
            // The close handshake is over on our side (only our reply is stuck), or the
            // connection already failed and reported why: just give up, as the close deadline
            // does.
            State::Closed | State::Failed => Ok(()),
            _ => Err(self.fail(Error::WriteTimeout)),
        };
        self.failure_close = None;
        self.send.clear();
        result
    }

    /// After [`should_close_transport`](Self::should_close_transport) says so: until when a
    /// driver should keep reading (and discarding what it reads) after shutting down only its
    /// sending side, before it closes the transport — a lingering close. Closing a socket with
    /// unread input makes the kernel answer with a reset, which can destroy the close frame
    /// still in flight (the peer may still be sending the rest of a message we refused, or
    /// data that crossed our close).
    ///
    /// The deadline is the close handshake's ([`Config::close_timeout`](crate::Config::close_timeout) after the close frame
    /// was queued; `now` + that if no [`handle_timeout`](Self::handle_timeout) anchored it yet).
    /// `None`: close right away — the transport already ended, the close or write deadline
    /// passed (the peer is given up on), or no close frame was sent.
    ///
    /// ```
    /// use wscore::{CloseCode, Config, Connection, Instant};
    /// let mut conn = Connection::server(Config::default());
    /// conn.receive(&[0x88, 0x80, 1, 2, 3, 4]).unwrap(); // the client's close, masked, empty
    /// let _ = conn.poll_event(); // taking it queues our reply
    /// let n = conn.transmit().len();
    /// conn.advance_transmit(n);
    /// assert!(conn.should_close_transport());
    /// let now = Instant::from_millis(5_000);
    /// // Read on until the client closes too, for the close timeout at most.
    /// assert_eq!(conn.linger_deadline(now), Some(Instant::from_millis(15_000)));
    /// conn.receive_eof().unwrap();
    /// assert_eq!(conn.linger_deadline(now), None); // it did
    /// ```
    #[must_use]
    pub fn linger_deadline(&self, now: Instant) -> Option<Instant> {
        if self.eof || self.timed_out {
            return None;
        }
        let t = &self.timers;
        match t.close_deadline {
            Some(at) => Some(at),
            None if t.close_needs_anchor => Some(now + self.config.close_timeout),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::close::CloseCode;
    use crate::config::Config;
    use crate::connection::{Connection, State};
    use crate::error::{Error, SendError};
    use crate::time::Instant;
    use alloc::vec;
    use core::time::Duration;

    const T0: u64 = 1_000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn server(write_timeout: Option<Duration>) -> Connection {
        Connection::server(Config::default().write_timeout(write_timeout))
    }

    /// Writes `n` bytes of the output, as a driver whose socket took that much.
    fn write(conn: &mut Connection, n: usize) {
        let n = n.min(conn.transmit().len());
        conn.advance_transmit(n);
    }

    #[test]
    fn output_that_waits_is_watched_from_the_next_handle_timeout() {
        let mut conn = server(Some(Duration::from_millis(500)));
        assert_eq!(conn.poll_timeout(), None);
        conn.send_text("hello").unwrap();
        assert_eq!(conn.poll_timeout(), Some(Instant::ZERO));
        conn.handle_timeout(at(T0)).unwrap();
        assert_eq!(conn.poll_timeout(), Some(at(T0 + 500)));
        // Not due yet.
        conn.handle_timeout(at(T0 + 499)).unwrap();
        assert_eq!(conn.state(), State::Open);
    }

    #[test]
    fn a_stalled_transport_fails_at_the_deadline_without_a_close_frame() {
        let mut conn = server(Some(Duration::from_millis(500)));
        conn.send_binary(vec![7u8; 1000]).unwrap();
        conn.handle_timeout(at(T0)).unwrap();
        assert_eq!(conn.handle_timeout(at(T0 + 500)), Err(Error::WriteTimeout));
        assert_eq!(conn.error(), Some(&Error::WriteTimeout));
        assert_eq!(Error::WriteTimeout.close_code(), CloseCode::ABNORMAL);
        assert_eq!(conn.state(), State::Failed);
        assert!(!conn.wants_write(), "the stuck output and no close frame");
        assert_eq!(conn.buffered_amount(), 0);
        assert!(conn.poll_event().is_none());
        assert!(!conn.wants_write(), "no failure close queued later either");
        assert!(conn.should_close_transport());
        assert_eq!(conn.linger_deadline(at(T0 + 500)), None, "no lingering for a peer that reads nothing");
        assert_eq!(conn.poll_timeout(), None, "nothing left to time");
        assert_eq!(conn.send_text("late"), Err(SendError::Closed));
        // Sticky, like every failure.
        assert_eq!(conn.receive(b"x"), Err(Error::WriteTimeout));
    }

    #[test]
    fn every_byte_written_restarts_the_clock() {
        let mut conn = server(Some(Duration::from_millis(500)));
        conn.send_binary(vec![7u8; 1000]).unwrap();
        conn.handle_timeout(at(T0)).unwrap();
        // A slow reader: one byte every 400 ms is progress, however much is left.
        for step in 1..=10 {
            write(&mut conn, 1);
            assert_eq!(conn.poll_timeout(), Some(Instant::ZERO), "the clock restarts");
            let now = T0 + step * 400;
            conn.handle_timeout(at(now)).unwrap();
            assert_eq!(conn.poll_timeout(), Some(at(now + 500)));
        }
        assert_eq!(conn.state(), State::Open);
        // Then nothing for 500 ms.
        assert_eq!(conn.handle_timeout(at(T0 + 4000 + 500)), Err(Error::WriteTimeout));
    }

    #[test]
    fn a_write_of_nothing_is_no_progress() {
        let mut conn = server(Some(Duration::from_millis(500)));
        conn.send_text("hello").unwrap();
        conn.handle_timeout(at(T0)).unwrap();
        conn.advance_transmit(0);
        assert_eq!(conn.poll_timeout(), Some(at(T0 + 500)));
        assert_eq!(conn.handle_timeout(at(T0 + 500)), Err(Error::WriteTimeout));
    }

    #[test]
    fn the_deadline_stops_when_everything_is_written_and_starts_afresh() {
        let mut conn = server(Some(Duration::from_millis(500)));
        conn.send_text("one").unwrap();
        conn.handle_timeout(at(T0)).unwrap();
        write(&mut conn, usize::MAX);
        assert_eq!(conn.poll_timeout(), None);
        // Long idle, then new output: measured from now, not from the first burst.
        conn.send_text("two").unwrap();
        assert_eq!(conn.poll_timeout(), Some(Instant::ZERO));
        conn.handle_timeout(at(T0 + 10_000)).unwrap();
        assert_eq!(conn.poll_timeout(), Some(at(T0 + 10_500)));
        // A `take_transmit` is a write too.
        let _ = conn.take_transmit();
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_timeout(at(T0 + 20_000)).unwrap();
        assert_eq!(conn.state(), State::Open);
    }

    #[test]
    fn none_disables_the_deadline() {
        let mut conn = server(None);
        conn.send_text("hello").unwrap();
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_timeout(at(T0)).unwrap();
        conn.handle_timeout(at(T0 + 3_600_000)).unwrap();
        assert_eq!(conn.state(), State::Open);
        assert!(conn.wants_write());
    }

    #[test]
    fn the_default_is_thirty_seconds() {
        let mut conn = Connection::server(Config::default());
        conn.send_text("hello").unwrap();
        conn.handle_timeout(at(T0)).unwrap();
        assert_eq!(conn.poll_timeout(), Some(at(T0 + 30_000)));
    }

    #[test]
    fn a_stuck_close_reply_is_given_up_without_an_error() {
        let mut conn = server(Some(Duration::from_millis(500)));
        conn.receive(&[0x88, 0x80, 1, 2, 3, 4]).unwrap();
        let _ = conn.poll_event(); // queues the reply
        assert_eq!(conn.state(), State::Closed);
        conn.handle_timeout(at(T0)).unwrap();
        // The close deadline (10 s) is later than the write deadline.
        assert_eq!(conn.handle_timeout(at(T0 + 500)), Ok(()));
        assert_eq!((conn.state(), conn.error()), (State::Closed, None));
        assert!(conn.should_close_transport());
        assert_eq!(conn.linger_deadline(at(T0 + 500)), None);
    }

    #[test]
    fn a_connection_that_already_failed_keeps_its_error() {
        let mut conn = server(Some(Duration::from_millis(500)));
        // A reserved opcode: fails with 1002; the close frame cannot be written.
        assert!(conn.receive(&[0x83, 0x80, 1, 2, 3, 4]).is_err());
        let _ = conn.poll_event();
        assert!(conn.wants_write(), "the failing close frame waits");
        conn.handle_timeout(at(T0)).unwrap_or(());
        assert_eq!(conn.handle_timeout(at(T0 + 500)), Ok(()));
        assert!(matches!(conn.error(), Some(Error::Protocol(_))));
        assert!(!conn.wants_write());
        assert!(conn.should_close_transport());
    }

    #[test]
    fn a_keepalive_failure_that_cannot_be_written_ends_at_the_close_deadline() {
        let config = Config::default()
            .keepalive_interval(Some(Duration::from_millis(100)))
            .keepalive_timeout(Duration::from_millis(100))
            .close_timeout(Duration::from_millis(100))
            .write_timeout(Some(Duration::from_millis(1000)));
        let mut conn = Connection::server(config);
        conn.handle_timeout(at(T0)).unwrap(); // anchors the first ping
        conn.handle_timeout(at(T0 + 100)).unwrap(); // the ping is queued, never written
        assert_eq!(conn.handle_timeout(at(T0 + 200)), Err(Error::KeepaliveTimeout));
        assert_eq!(conn.poll_timeout(), Some(at(T0 + 300)), "the close deadline comes first");
        conn.handle_timeout(at(T0 + 300)).unwrap();
        assert!(conn.should_close_transport());
        assert_eq!(conn.error(), Some(&Error::KeepaliveTimeout));
    }

    #[test]
    fn lingering_follows_the_close_deadline() {
        let mut conn = server(None);
        conn.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(conn.linger_deadline(at(T0)), Some(at(T0 + 10_000)), "not anchored yet: from now");
        conn.handle_timeout(at(T0)).unwrap();
        assert_eq!(conn.linger_deadline(at(T0 + 3_000)), Some(at(T0 + 10_000)));
        // The close deadline passed: give up.
        let _ = conn.handle_timeout(at(T0 + 10_000));
        assert_eq!(conn.linger_deadline(at(T0 + 10_000)), None);
        // Nothing sent, nothing to linger for.
        assert_eq!(server(None).linger_deadline(at(T0)), None);
    }
}
