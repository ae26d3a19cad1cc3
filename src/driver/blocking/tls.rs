//! [`TlsStream`]: a rustls client session over a blocking `TcpStream`, as the driver needs it —
//! socket timeouts forwarded to the socket ([`Transport`]), vectored writes coalesced into TLS
//! records, a `close_notify` on shutdown, and a read path for a split connection that never
//! blocks while holding the connection's lock.

use super::transport::Transport;
use crate::driver::DriverError;
use crate::driver::tls::handshake_error;
use crate::handshake::HandshakeError;
use crate::time::Instant;
use core::time::Duration;
use rustls::ClientConnection;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A TLS client session over TCP, made by the `connect` helpers of
/// [`WebSocket`](super::WebSocket) for `wss://` URLs.
///
/// Reading and writing go through rustls; the read and write timeouts (the connection's
/// deadlines) are set on the socket underneath. The end of the TCP stream without a TLS
/// `close_notify` reads as a normal end of stream: the WebSocket close handshake is what tells
/// a complete conversation from a cut one.
#[derive(Debug)]
pub struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl TlsStream {
    /// Runs the TLS handshake over `tcp` until done, or until `deadline`
    /// ([`HandshakeError::Timeout`]). A rustls failure (an untrusted certificate, a name
    /// mismatch...) is [`DriverError::Tls`].
    pub(super) fn handshake(
        mut conn: ClientConnection,
        mut tcp: TcpStream,
        deadline: Option<Instant>,
    ) -> Result<Self, DriverError> {
        while conn.is_handshaking() {
            let now = Instant::now();
            if deadline.is_some_and(|at| at <= now) {
                return Err(HandshakeError::Timeout.into());
            }
            let left = super::transport::time_until(deadline, now);
            tcp.set_read_timeout(left)?;
            tcp.set_write_timeout(left)?;
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(DriverError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if crate::driver::is_timeout(&e) && deadline.is_some() => {}
                Err(e) => return Err(handshake_error(e)),
            }
        }
        Ok(Self { conn, tcp })
    }

    /// The TCP socket underneath.
    #[must_use]
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The rustls session: the negotiated protocol version, cipher suite and ALPN protocol, the
    /// server's certificates.
    #[must_use]
    pub fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    /// Writes the TLS records rustls holds to the socket.
    fn write_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Decrypted bytes already buffered, without any I/O: `Ok(None)` when there are none.
    fn read_buffered(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The TCP stream ended without close_notify: an end of stream like any other.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// One read from the socket into rustls, and the processing of what it brought. Returns
    /// whether the socket had reached its end.
    fn read_tls_once(&mut self) -> io::Result<bool> {
        let n = loop {
            match self.conn.read_tls(&mut self.tcp) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if let Err(e) = self.conn.process_new_packets() {
            // Tell the server why (the alert rustls queued); the error is what matters.
            let _ = self.write_tls();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // Post-handshake replies (a key update) go out now; a failure shows on the next write.
        if self.conn.wants_write() {
            let _ = self.write_tls();
        }
        Ok(n == 0)
    }

    /// For a split connection, under its lock: decrypted bytes without blocking. With
    /// `readable` (the socket has bytes or has ended, so one read returns at once), reads the
    /// socket once; else only what is buffered. `Ok(None)`: nothing yet (no bytes buffered, or
    /// only part of a TLS record arrived).
    pub(super) fn read_without_blocking(&mut self, buf: &mut [u8], readable: bool) -> io::Result<Option<usize>> {
        if let Some(n) = self.read_buffered(buf)? {
            return Ok(Some(n));
        }
        if !readable {
            return Ok(None);
        }
        let eof = self.read_tls_once()?;
        match self.read_buffered(buf)? {
            Some(n) => Ok(Some(n)),
            None if eof => Ok(Some(0)),
            None => Ok(None),
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.read_buffered(buf)? {
                return Ok(n);
            }
            if self.read_tls_once()? {
                return Ok(self.read_buffered(buf)?.unwrap_or(0));
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Frame headers and payloads become one TLS record (rustls coalesces the slices), not
    /// one record each.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Records from before go out first, so a failure or timeout here takes no new bytes.
        self.write_tls()?;
        let n = self.conn.writer().write_vectored(bufs)?;
        // The bytes are taken; what the socket does not take now goes out with the next write
        // or flush, which also reports a failure.
        let _ = self.write_tls();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls()?;
        self.tcp.flush()
    }
}

impl TlsStream {
    /// Queues `close_notify` and writes it if the socket takes it right away (once: a second
    /// call finds it sent).
    fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
        if self.tcp.set_nonblocking(true).is_ok() {
            let _ = self.write_tls();
            let _ = self.tcp.set_nonblocking(false);
        }
    }
}

impl Transport for TlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }

    /// Sends `close_notify` if the socket takes it right away, and shuts the socket down.
    /// Never blocks: a peer that does not read must not hold up the end of the connection.
    fn shutdown(&mut self) -> io::Result<()> {
        self.send_close_notify();
        TcpStream::shutdown(&self.tcp, Shutdown::Both)
    }

    /// Sends `close_notify` (without blocking, as [`shutdown`](Self::shutdown)), then shuts down
    /// the socket's sending side.
    fn shutdown_write(&mut self) -> io::Result<bool> {
        self.send_close_notify();
        TcpStream::shutdown(&self.tcp, Shutdown::Write).map(|()| true)
    }
}
