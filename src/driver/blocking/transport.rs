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

/// The last timeout set on a stream, so an unchanged "no timeout" costs no system call.
#[derive(Debug, Default)]
pub(super) struct TimeoutCache(Option<Option<Duration>>);

impl TimeoutCache {
    pub(super) fn set(
        &mut self,
        timeout: Option<Duration>,
        apply: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        if timeout.is_none() && self.0 == Some(None) {
            return Ok(());
        }
        apply(timeout)?;
        self.0 = Some(timeout);
        Ok(())
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
