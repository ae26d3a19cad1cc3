//! [`Transport`]: how a blocking stream takes the connection's deadlines (as read and write
//! timeouts) and its shutdown, for `TcpStream`, `UnixStream` and any stream that opts in.

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
