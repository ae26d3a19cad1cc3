//! [`Transport`]: how a blocking stream takes the connection's deadlines (as read and write
//! timeouts) and its shutdown (a lingering close where the stream can shut down its sending
//! side alone), for `TcpStream`, `UnixStream` and any stream that opts in.

use crate::time::Instant;
use alloc::boxed::Box;
use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

/// How a blocking stream takes the connection's deadlines and its shutdown.
///
/// Every method has a no-op default, so any stream can opt in with an empty `impl`: its reads
/// then block until bytes arrive, and timers (keepalive, close deadline) fire only when they
/// do.
///
/// ```
/// use std::io::{Read, Write};
/// struct Pipe; // an in-memory stream without timeouts
/// # impl Read for Pipe { fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> { Ok(0) } }
/// # impl Write for Pipe { fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { Ok(b.len()) } fn flush(&mut self) -> std::io::Result<()> { Ok(()) } }
/// impl wscore::blocking::Transport for Pipe {}
/// let ws = wscore::blocking::WebSocket::from_upgraded(Pipe, wscore::Role::Server, wscore::Config::default());
/// ```
pub trait Transport {
    /// Sets how long a read may block (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Sets how long a write may block (`None`: forever).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Shuts the transport down in both directions (the connection asked for it: the close
    /// handshake is over or the connection failed). Dropping the stream closes it too.
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Shuts down only the sending direction (TCP: sends FIN), for a lingering close: the
    /// driver then reads and discards what the peer still sends, until it ends its side too or
    /// the close deadline passes ([`Connection::linger_deadline`](crate::Connection::linger_deadline)),
    /// and only then calls [`shutdown`](Self::shutdown). Closing a socket with unread input
    /// makes the kernel send a reset, which can destroy our close frame in flight.
    ///
    /// Return `Ok(true)` if it did; the default returns `Ok(false)`: the stream cannot do this,
    /// and the driver calls `shutdown` at once. Return `true` only from a stream whose
    /// [`set_read_timeout`](Self::set_read_timeout) works, or lingering waits for the peer
    /// with no bound.
    fn shutdown_write(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        TcpStream::shutdown(self, Shutdown::Write).map(|()| true)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        std::os::unix::net::UnixStream::shutdown(self, Shutdown::Write).map(|()| true)
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        (**self).shutdown_write()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        (**self).shutdown_write()
    }
}

/// Any `Read + Write` stream as a [`Transport`] without timeouts or shutdown (timers fire only
/// when bytes arrive).
///
/// ```
/// use wscore::blocking::{Untimed, WebSocket};
/// let stream = std::io::Cursor::new(Vec::new());
/// let ws = WebSocket::from_upgraded(Untimed(stream), wscore::Role::Server, wscore::Config::default());
/// assert_eq!(ws.connection().role(), wscore::Role::Server);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Untimed<S>(pub S);

impl<S: Read> Read for Untimed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for Untimed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S> Transport for Untimed<S> {}

/// The time left until `deadline`, at least a millisecond (a zero socket timeout is an error,
/// or means "forever"); `None` without a deadline.
pub(super) fn time_until(deadline: Option<Instant>, now: Instant) -> Option<Duration> {
    deadline.map(|at| at.saturating_duration_since(now).max(Duration::from_millis(1)))
}

/// Below this a timeout is set exactly; from it on, an eighth shorter (see [`TimeoutCache`]).
const EXACT_BELOW: Duration = Duration::from_millis(8);

/// The timeout last set on a stream, so that most reads and writes cost no system call to set
/// one (a `setsockopt` per read and per write would add two system calls to every echo).
///
/// A stream's timeout may be shorter than asked, never longer: the drive loops take a
/// timeout before the deadline like any other (they look at the deadlines again and wait
/// on). So a timeout is set an eighth short of what was asked, and kept while what is asked
/// stays between it and twice it: a deadline that stays put is set again only after an eighth
/// of the time to it has passed, one that moves with each message (the write-stall deadline)
/// not at all, and a blocked read wakes early at most a few times before its deadline.
#[derive(Debug, Default)]
pub(super) struct TimeoutCache {
    /// The stream's timeout, if known.
    set: Option<Option<Duration>>,
    /// Whether no timeout was asked but the stream kept the finite one it had
    /// ([`set_lazily`](Self::set_lazily)).
    stale: bool,
}

impl TimeoutCache {
    /// Gives the stream a timeout no longer than `timeout` (`None`: none), through `apply`
    /// unless it has one already.
    pub(super) fn set(
        &mut self,
        timeout: Option<Duration>,
        apply: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.stale = false;
        let wanted = match (self.set, timeout) {
            (Some(None), None) => return Ok(()),
            (Some(Some(have)), Some(want)) if have <= want && want / 2 <= have => return Ok(()),
            (_, Some(want)) if want >= EXACT_BELOW => Some(want - want / 8),
            (_, want) => want,
        };
        // Unknown until `apply` succeeds.
        self.set = None;
        apply(wanted)?;
        self.set = Some(wanted);
        Ok(())
    }

    /// [`set`](Self::set) for a short operation (a flush right after a timed write): a
    /// stream keeps any finite timeout no longer than asked, and one where none is asked (a
    /// timeout then is not the caller's: see [`timed_out_stale`](Self::timed_out_stale)).
    pub(super) fn set_lazily(
        &mut self,
        timeout: Option<Duration>,
        apply: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        match (self.set, timeout) {
            (Some(Some(_)), None) => {
                self.stale = true;
                Ok(())
            }
            (Some(Some(have)), Some(want)) if have <= want => {
                self.stale = false;
                Ok(())
            }
            _ => self.set(timeout, apply),
        }
    }

    /// After a timeout: whether it came from a timeout kept by
    /// [`set_lazily`](Self::set_lazily) where none was asked. The next `set` then sets the
    /// stream's timeout exactly, so that a retry waits as long as asked.
    pub(super) fn timed_out_stale(&mut self) -> bool {
        let stale = self.stale;
        if stale {
            self.set = None;
            self.stale = false;
        }
        stale
    }
}

/// A lingering close, the reading part: reads and discards until the end of the stream, an
/// error, or `until` (the sending side is already shut down).
pub(super) fn linger<S: Read + Transport + ?Sized>(stream: &mut S, timeout: &mut TimeoutCache, until: Instant) {
    let mut scratch = [0u8; 16 << 10];
    loop {
        let now = Instant::now();
        if until <= now || timeout.set(time_until(Some(until), now), |t| stream.set_read_timeout(t)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            // A timeout is looked at at the top: the socket may wake a little early.
            Err(e) if e.kind() == io::ErrorKind::Interrupted || crate::driver::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets `timeout` through `cache`; returns what reached the stream, if anything did.
    fn set(cache: &mut TimeoutCache, timeout: Option<Duration>, lazily: bool) -> Option<Option<Duration>> {
        let mut applied = None;
        let apply = |t| {
            applied = Some(t);
            Ok(())
        };
        if lazily { cache.set_lazily(timeout, apply) } else { cache.set(timeout, apply) }.unwrap();
        applied
    }

    const fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn a_timeout_is_set_short_and_kept_while_it_wakes_no_later_than_asked() {
        let mut cache = TimeoutCache::default();
        assert_eq!(set(&mut cache, None, false), Some(None));
        assert_eq!(set(&mut cache, None, false), None);
        // An eighth short, so that a deadline a little nearer still finds it in time.
        assert_eq!(set(&mut cache, ms(8000), false), Some(ms(7000)));
        assert_eq!(set(&mut cache, ms(7500), false), None);
        assert_eq!(set(&mut cache, ms(7000), false), None);
        assert_eq!(set(&mut cache, ms(14_000), false), None);
        // Nearer than what the stream has: set again.
        assert_eq!(set(&mut cache, ms(6999), false), Some(Some(Duration::from_millis(6999) * 7 / 8)));
        // More than twice as far: set again, not woken early again and again.
        let mut cache = TimeoutCache::default();
        set(&mut cache, ms(800), false);
        assert_eq!(set(&mut cache, ms(1401), false), Some(Some(Duration::from_millis(1401) * 7 / 8)));
        // Short timeouts are exact, and none after one is set exactly.
        assert_eq!(set(&mut cache, ms(7), false), Some(ms(7)));
        assert_eq!(set(&mut cache, ms(6), false), Some(ms(6)));
        assert_eq!(set(&mut cache, None, false), Some(None));
    }

    #[test]
    fn a_lazy_timeout_keeps_a_shorter_one_and_says_when_it_was_stale() {
        let mut cache = TimeoutCache::default();
        set(&mut cache, ms(8000), false);
        assert_eq!(set(&mut cache, ms(600_000), true), None);
        assert!(!cache.timed_out_stale(), "asked for a timeout: it was the caller's");
        assert_eq!(set(&mut cache, None, true), None);
        assert!(cache.timed_out_stale());
        assert!(!cache.timed_out_stale(), "once");
        // After a stale timeout the next one is set exactly.
        assert_eq!(set(&mut cache, None, true), Some(None));
        assert_eq!(set(&mut cache, None, true), None);
        assert!(!cache.timed_out_stale());
        // A longer timeout than asked is never kept.
        set(&mut cache, ms(8000), false);
        assert_eq!(set(&mut cache, ms(10), true), Some(Some(Duration::from_micros(8750))));
        // A failed `set` leaves the stream's timeout unknown: the next one is set.
        let mut cache = TimeoutCache::default();
        assert!(cache.set(ms(10), |_| Err(io::ErrorKind::Other.into())).is_err());
        assert_eq!(set(&mut cache, ms(10), false), Some(Some(Duration::from_micros(8750))));
    }
}
