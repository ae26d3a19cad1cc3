//! In-memory transports shared by the benchmarks, so every codec reads and writes through the
//! same, always-ready stream: a reader that hands prepared input out in slices of a fixed size
//! (like TCP segments), and a writer that copies into a reused, pre-faulted buffer (like a socket
//! send buffer). Both have blocking (`std::io`) and tokio flavours.

// Each benchmark binary uses a different part of this module.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Hands out `input` at most `segment` bytes per read. Clones share the read position, so a
/// benchmark can rewind a stream a codec has taken ownership of. Reading past the end is an
/// end of stream (an error for every codec): it means a benchmark read more than it fed.
/// Writes (pongs, close replies: none in these benchmarks) are discarded.
#[derive(Debug, Clone)]
pub(crate) struct SegmentReader {
    input: Rc<[u8]>,
    position: Rc<Cell<usize>>,
    segment: usize,
}

impl SegmentReader {
    pub(crate) fn new(input: Rc<[u8]>, segment: usize) -> Self {
        Self { input, position: Rc::new(Cell::new(0)), segment: segment.max(1) }
    }

    /// Starts over at the beginning of the input.
    pub(crate) fn rewind(&self) {
        self.position.set(0);
    }

    /// Whether all input was read.
    pub(crate) fn is_drained(&self) -> bool {
        self.position.get() == self.input.len()
    }

    /// The next segment, at most `room` bytes long.
    fn next_segment(&self, room: usize) -> &[u8] {
        let at = self.position.get();
        let n = self.segment.min(room).min(self.input.len() - at);
        self.position.set(at + n);
        &self.input[at..at + n]
    }
}

impl io::Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let segment = self.next_segment(buf.len());
        let n = segment.len();
        buf[..n].copy_from_slice(segment);
        Ok(n)
    }
}

impl io::Write for SegmentReader {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for SegmentReader {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // `put_slice` initialises only what it copies: codecs that read into large uninitialised
        // spare capacity must not pay for zeroing it.
        let segment = self.next_segment(buf.remaining());
        buf.put_slice(segment);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SegmentReader {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Copies everything written into one reused buffer (the cost of handing bytes to a kernel
/// socket buffer). Clones share the buffer. Reads find nothing (`WouldBlock` / pending never
/// happens: the encode benchmarks never read).
#[derive(Debug, Clone)]
pub(crate) struct CaptureWriter {
    out: Rc<RefCell<Vec<u8>>>,
}

impl CaptureWriter {
    /// A writer whose buffer already holds `capacity` bytes of touched memory, so page faults
    /// are not measured.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut out = vec![0xA5u8; capacity];
        out.clear();
        Self { out: Rc::new(RefCell::new(out)) }
    }

    /// Where the buffer starts (to place a source buffer at a chosen distance from it).
    pub(crate) fn address(&self) -> usize {
        self.out.borrow().as_ptr() as usize
    }

    /// Forgets what was written (keeping the memory).
    pub(crate) fn clear(&self) {
        self.out.borrow_mut().clear();
    }

    /// The number of bytes written since the last `clear`.
    pub(crate) fn len(&self) -> usize {
        self.out.borrow().len()
    }

    /// A copy of what was written since the last `clear` (for checks outside the timed loop).
    pub(crate) fn contents(&self) -> Vec<u8> {
        self.out.borrow().clone()
    }

    /// Lets `encode` write straight into the buffer (the hand-written baseline encoder).
    pub(crate) fn append(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.out.borrow_mut());
    }

    pub(crate) fn write_slice(&self, data: &[u8]) {
        self.out.borrow_mut().extend_from_slice(data);
    }

    fn write_slices(&self, bufs: &[io::IoSlice<'_>]) -> usize {
        let mut out = self.out.borrow_mut();
        let mut n = 0;
        for buf in bufs {
            out.extend_from_slice(buf);
            n += buf.len();
        }
        n
    }
}

impl io::Read for CaptureWriter {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_slice(buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.write_slices(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for CaptureWriter {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, _buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for CaptureWriter {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.write_slices(bufs)))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A single-threaded tokio runtime with no I/O or timer driver: the async codecs only need
/// something to poll their futures, and every stream here is always ready.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime")
}
