//! Deadlines without a clock: keepalive pings, the pong deadline and the close-handshake
//! deadline, exposed through [`Connection::poll_timeout`] and [`Connection::handle_timeout`].
//!
//! Commands and received bytes do not carry the time. When something needs a deadline
//! relative to "now" (the close frame just queued, keepalive just enabled), the timer asks for
//! the time by reporting [`Instant::ZERO`] — already due — and anchors the deadline at the
//! `now` of the next `handle_timeout`.

use super::{Connection, State};
use crate::config::Config;
use crate::error::Error;
use crate::frame::OpCode;
use crate::time::Instant;
use bytes::Bytes;
use core::time::Duration;

#[derive(Debug)]
pub(super) struct Timers {
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Duration,
    close_timeout: Duration,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    /// Payload of the keepalive ping whose pong is awaited.
    awaited_pong: u64,
    close_deadline: Option<Instant>,
    close_needs_anchor: bool,
}

impl Timers {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            keepalive_interval: config.keepalive_interval,
            keepalive_timeout: config.keepalive_timeout,
            close_timeout: config.close_timeout,
            next_ping: None,
            pong_deadline: None,
            awaited_pong: 0,
            close_deadline: None,
            close_needs_anchor: false,
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
}

impl Connection {
    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called, or
    /// `None` when no timer is armed. An instant in the past (such as [`Instant::ZERO`]) means
    /// "call it now": the connection needs the current time to anchor a new deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.timers;
        if t.close_needs_anchor && !self.should_close_transport() {
            return Some(Instant::ZERO);
        }
        if self.state == State::Open && t.keepalive_interval.is_some() && t.next_ping.is_none() {
            return Some(Instant::ZERO);
        }
        [t.next_ping, t.pong_deadline, t.close_deadline].into_iter().flatten().min()
    }

    /// Tells the connection the time: anchors new deadlines and fires those that are due
    /// (sending a keepalive ping, failing on a missing pong, giving up on the close handshake).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let t = &mut self.timers;
        if t.close_needs_anchor {
            t.close_needs_anchor = false;
            t.close_deadline = Some(now + t.close_timeout);
        }
        if self.state == State::Open {
            if let Some(interval) = t.keepalive_interval {
                match t.next_ping {
                    None => t.next_ping = Some(now + interval),
                    Some(at) if at <= now => {
                        t.next_ping = Some(now + interval);
                        if t.pong_deadline.is_none() {
                            t.awaited_pong = t.awaited_pong.wrapping_add(1);
                            t.pong_deadline = Some(now + t.keepalive_timeout);
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
                t.close_deadline = Some(now + t.close_timeout);
            }
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
        Ok(())
    }
}
