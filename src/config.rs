//! Connection configuration: every limit on what a peer controls, with safe defaults.
//!
//! | setting | default | what happens at the limit |
//! |---|---|---|
//! | [`max_frame_size`](Config::max_frame_size) | 16 MiB | close 1009, from the header alone |
//! | [`max_message_size`](Config::max_message_size) | 16 MiB | close 1009, as soon as a header declares more |
//! | [`max_fragments`](Config::max_fragments) | 131 072 | close 1008 |
//! | [`max_write_buffer`](Config::max_write_buffer) | 16 MiB | sends fail with [`SendError::BufferFull`](crate::SendError::BufferFull) |
//! | [`max_handshake_size`](Config::max_handshake_size) | 16 KiB | handshake fails (431) |
//! | [`max_headers`](Config::max_headers) | 64 | handshake fails (431) |
//! | [`handshake_timeout`](Config::handshake_timeout) | 10 s | handshake fails (408) |
//! | [`keepalive_interval`](Config::keepalive_interval) | off | a ping is sent every interval |
//! | [`keepalive_timeout`](Config::keepalive_timeout) | 20 s | close 1011 |
//! | [`close_timeout`](Config::close_timeout) | 10 s | transport shut down, [`Error::CloseTimeout`](crate::Error::CloseTimeout) |
//! | [`write_timeout`](Config::write_timeout) | 30 s | no close frame, transport shut down, [`Error::WriteTimeout`](crate::Error::WriteTimeout) |
//! | [`buffer_release_delay`](Config::buffer_release_delay) | 100 ms | the tokio driver lets an idle connection's buffers go |

use core::time::Duration;

/// How received data messages reach the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReceiveMode {
    /// Each message arrives whole as [`Event::Message`](crate::Event::Message) (the default).
    #[default]
    Message,
    /// Each message arrives in pieces as they are received, as
    /// [`Event::Fragment`](crate::Event::Fragment), so memory stays bounded whatever its size.
    ///
    /// A compressed message (permessage-deflate) is inflated in bounded steps, and inflating
    /// pauses while 16 events wait to be taken: it goes on as
    /// [`poll_event`](crate::Connection::poll_event) takes them. So the message can turn out too
    /// large, or its data or text invalid, while events are taken, after the input that
    /// brought it returned `Ok`: the connection fails as it would on input (its close frame
    /// queued, [`error`](crate::Connection::error) says why) and the next input returns the
    /// error. The drive loop of the crate docs, which writes after taking events and then asks
    /// [`should_close_transport`](crate::Connection::should_close_transport), sends that close
    /// frame and ends the connection as for any failure.
    Stream,
}

/// Configuration of a connection and its handshake. Builder methods take and return `self`.
///
/// ```
/// use std::time::Duration;
/// let config = wscore::Config::default()
///     .max_message_size(256 * 1024)
///     .keepalive_interval(Some(Duration::from_secs(30)));
/// assert_eq!(config.get_max_message_size(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_fragments: usize,
    pub(crate) max_write_buffer: usize,
    pub(crate) write_fragment_size: usize,
    pub(crate) receive_mode: ReceiveMode,
    pub(crate) auto_pong: bool,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) max_handshake_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) read_buffer_size: usize,
    pub(crate) buffer_release_delay: Duration,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<crate::extensions::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            max_fragments: 131_072,
            max_write_buffer: 16 << 20,
            write_fragment_size: 64 << 10,
            receive_mode: ReceiveMode::Message,
            auto_pong: true,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(30)),
            max_handshake_size: 16 << 10,
            max_headers: 64,
            handshake_timeout: Some(Duration::from_secs(10)),
            read_buffer_size: 16 << 10,
            buffer_release_delay: Duration::from_millis(100),
            #[cfg(feature = "deflate")]
            deflate: Some(crate::extensions::deflate::DeflateConfig::default()),
        }
    }
}

impl Config {
    /// No limits on frame size, message size, fragment count or write buffer: for conformance
    /// runs and trusted peers only.
    #[must_use]
    pub fn unlimited() -> Self {
        Self {
            max_frame_size: usize::MAX,
            max_message_size: usize::MAX,
            max_fragments: usize::MAX,
            max_write_buffer: usize::MAX,
            ..Self::default()
        }
    }

    /// The largest frame payload accepted, in bytes.
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest message accepted, in bytes (all fragments together).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The most frames one message may be split into.
    #[must_use]
    pub fn max_fragments(mut self, count: usize) -> Self {
        self.max_fragments = count;
        self
    }

    /// Sends fail with [`SendError::BufferFull`](crate::SendError::BufferFull) while more than
    /// this many bytes wait to be written.
    #[must_use]
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }

    /// Outgoing messages longer than this are split into frames of this size, so control frames
    /// (pongs, close) can be sent between them. At least 1.
    #[must_use]
    pub fn write_fragment_size(mut self, bytes: usize) -> Self {
        self.write_fragment_size = bytes.max(1);
        self
    }

    /// Whole messages (the default) or pieces as they arrive.
    #[must_use]
    pub fn receive_mode(mut self, mode: ReceiveMode) -> Self {
        self.receive_mode = mode;
        self
    }

    /// Whether pings are answered automatically (default `true`). The app sees pings either way.
    #[must_use]
    pub fn auto_pong(mut self, enabled: bool) -> Self {
        self.auto_pong = enabled;
        self
    }

    /// Send a keepalive ping this often (default: never).
    #[must_use]
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// How long to wait for the pong to a keepalive ping before failing with 1011.
    #[must_use]
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// How long to wait, once a close frame is sent, for the close handshake to finish and the
    /// transport to close.
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How long output may wait without the transport taking any of it before the connection
    /// fails with [`Error::WriteTimeout`](crate::Error::WriteTimeout) (`None`: wait forever).
    /// Default 30 s.
    ///
    /// This is what stops a peer that stops reading from holding a thread or task (and up to
    /// [`max_write_buffer`](Self::max_write_buffer) of memory) forever: keepalive is off by
    /// default, and a blocked write never sees a pong deadline anyway. The clock restarts
    /// whenever the driver writes at least one byte ([`advance_transmit`] with `n > 0`), so a
    /// slow but live reader is never cut off, however large the backlog; only a transport that
    /// takes nothing at all for the whole period fails. 30 s is longer than the keepalive and
    /// close deadlines (20 s, 10 s), so those report first when they apply, and is the order of
    /// magnitude web servers use for the same guard (nginx's `send_timeout`, "between two
    /// successive write operations", is 60 s).
    ///
    /// No close frame is sent: a peer that reads nothing would not read it either. The
    /// connection asks for the transport to be shut down at once (no lingering close).
    ///
    /// The deadline is measured from the first [`handle_timeout`] after output was queued or
    /// last written (an anchor request, like the other deadlines): a driver that writes as soon
    /// as output is queued, as the drive loop does, measures exactly the time its writes are
    /// stuck.
    ///
    /// [`advance_transmit`]: crate::Connection::advance_transmit
    /// [`handle_timeout`]: crate::Connection::handle_timeout
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = wscore::Config::default().write_timeout(Some(Duration::from_secs(5)));
    /// assert_eq!(config.get_write_timeout(), Some(Duration::from_secs(5)));
    /// assert_eq!(wscore::Config::default().get_write_timeout(), Some(Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The largest HTTP upgrade request or response head, in bytes.
    #[must_use]
    pub fn max_handshake_size(mut self, bytes: usize) -> Self {
        self.max_handshake_size = bytes;
        self
    }

    /// The most header lines in an upgrade request or response.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// How long a server waits for a complete upgrade request (slowloris protection), and how
    /// long the drivers' `connect` helpers may take in all: name lookup, TCP connect, proxy
    /// tunnel, TLS and the upgrade.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many bytes [`Connection::receive_buffer`](crate::Connection::receive_buffer) offers
    /// per read.
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1);
        self
    }

    /// How long a driver waiting for input keeps the connection's buffers after input stops
    /// (100 ms by default), before letting them go with
    /// [`Connection::release_buffers`](crate::Connection::release_buffers) so that an idle
    /// connection holds none. The tokio driver does this; `Duration::ZERO` lets go as soon as a
    /// read finds nothing (the least memory, but a connection that gets a message every few
    /// microseconds then allocates its buffers again for each one).
    #[must_use]
    pub fn buffer_release_delay(mut self, delay: Duration) -> Self {
        self.buffer_release_delay = delay;
        self
    }

    /// The configured [`buffer_release_delay`](Self::buffer_release_delay).
    #[must_use]
    pub fn get_buffer_release_delay(&self) -> Duration {
        self.buffer_release_delay
    }

    /// permessage-deflate: what a client offers and what a server accepts (`None`: never
    /// compress). On by default with the `deflate` feature.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: Option<crate::extensions::deflate::DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// The configured message size limit.
    #[must_use]
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The configured frame size limit.
    #[must_use]
    pub fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The configured write-stall deadline ([`write_timeout`](Self::write_timeout)).
    #[must_use]
    pub fn get_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// The configured receive mode.
    #[must_use]
    pub fn get_receive_mode(&self) -> ReceiveMode {
        self.receive_mode
    }
}
