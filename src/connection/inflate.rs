//! Receiving permessage-deflate messages (RFC 7692 §6.2): compressed bytes are inflated as
//! they arrive, in bounded steps. The message size limit applies to the inflated size and
//! stops a decompression bomb the moment it is exceeded; inflated text is validated
//! incrementally; in stream mode, inflated pieces are delivered as they are produced.

use super::{Connection, Event, Fragment, Message};
use crate::config::ReceiveMode;
use crate::error::ProtocolError;
use crate::extensions::deflate::Deflate;
use crate::utf8::Utf8Bytes;
use bytes::{Buf, BytesMut};

/// The most bytes inflated in one step.
const INFLATE_STEP: usize = 64 << 10;
/// In stream mode, inflating pauses while this many events wait for the application.
const MAX_PENDING_EVENTS: usize = 16;

impl Connection {
    /// Inflates what is buffered of the current frame of a compressed message. `Ok(false)`:
    /// need more bytes (or paused).
    pub(super) fn continue_compressed_frame(&mut self) -> Result<bool, ProtocolError> {
        let limit = self.config.max_message_size as u64;
        let stream = self.config.receive_mode == ReceiveMode::Stream;
        loop {
            if stream && self.events.len() >= MAX_PENDING_EVENTS {
                self.recv.paused = true;
                return Ok(false);
            }
            let (Some(frame), Some(msg), Some(deflate)) =
                (self.recv.frame.as_mut(), self.recv.message.as_mut(), self.deflate.as_mut())
            else {
                return Ok(true);
            };
            // `scanned` bytes at the front are unmasked payload of this frame.
            let available = frame.scanned;
            let complete = available as u64 == frame.remaining;
            let from_trailer = available == 0 && complete && frame.fin;
            let input = if available > 0 {
                &self.recv.buf[..available]
            } else if from_trailer && msg.trailer_fed < Deflate::trailer().len() && msg.size > 0 {
                // (A message with no payload bytes at all gets no trailer: appending one would
                // leave the inflater inside a stored block. RFC 7692 §7.2.3.6 says an empty
                // message is sent as a single 0x00 byte, but some peers send nothing.)
                &Deflate::trailer()[msg.trailer_fed..]
            } else if msg.output_pending {
                // The last step filled its output: the inflater may hold more.
                &[][..]
            } else if complete {
                // Frame done (and, if it ends the message, the trailer too).
                return self.end_compressed_frame();
            } else {
                return Ok(false);
            };
            // Deflate expands at most 1032:1: sizing the output to what this input can produce
            // keeps tiny reads from zeroing a whole step each. Anything more the inflater holds
            // comes out in the next step (`output_pending`).
            let step = match input.len() {
                0 => INFLATE_STEP,
                n => n.saturating_mul(1032).saturating_add(258).min(INFLATE_STEP),
            };
            let room = (limit.saturating_sub(msg.inflated).saturating_add(1)).min(step as u64) as usize;
            let mut piece;
            let out = if stream {
                piece = BytesMut::zeroed(room);
                &mut piece[..]
            } else {
                piece = BytesMut::new();
                let len = msg.data.len();
                msg.data.resize(len + room, 0);
                &mut msg.data[len..]
            };
            let (consumed, produced) = match deflate.inflate(input, out) {
                Ok(progress) => progress,
                Err(_) => {
                    deflate.discard_inflater();
                    return Err(ProtocolError::InvalidCompressedData);
                }
            };
            let output = if stream {
                piece.truncate(produced);
                if produced < room / 2 {
                    // The piece goes to the application: do not pin a mostly unused buffer.
                    piece = BytesMut::from(&piece[..]);
                }
                &piece[..]
            } else {
                let len = msg.data.len() - room + produced;
                msg.data.truncate(len);
                &msg.data[len - produced..]
            };
            msg.output_pending = produced == room;
            msg.inflated += produced as u64;
            if msg.inflated > limit {
                return Err(ProtocolError::MessageTooLarge { limit: self.config.max_message_size });
            }
            if msg.kind == super::MessageKind::Text {
                self.recv.utf8.feed(output).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if from_trailer {
                msg.trailer_fed += consumed;
            } else {
                self.recv.buf.advance(consumed);
                frame.remaining -= consumed as u64;
                frame.taken += consumed as u64;
                frame.scanned -= consumed;
            }
            if stream && produced > 0 {
                let first = !msg.delivered;
                msg.delivered = true;
                let kind = msg.kind;
                self.events.push_back(Event::Fragment(Fragment { kind, data: piece.freeze(), first, last: false }));
            }
            if consumed == 0 && produced == 0 && !from_trailer && available > 0 {
                // No progress on real input: the inflater needs more of it.
                return Ok(false);
            }
        }
    }

    /// The current compressed frame is fully inflated: end it, and the message if FIN.
    fn end_compressed_frame(&mut self) -> Result<bool, ProtocolError> {
        let fin = self.recv.frame.take().is_some_and(|f| f.fin);
        if !fin {
            return Ok(true);
        }
        let Some(msg) = self.recv.message.take() else { return Ok(true) };
        if let Some(deflate) = self.deflate.as_mut() {
            deflate.end_inflated_message();
        }
        let text = msg.kind == super::MessageKind::Text;
        if text {
            self.recv.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        let event = match self.config.receive_mode {
            ReceiveMode::Stream => Event::Fragment(Fragment {
                kind: msg.kind,
                data: bytes::Bytes::new(),
                first: !msg.delivered,
                last: true,
            }),
            _ => {
                let data = msg.data.freeze();
                Event::Message(if text {
                    Message::Text(Utf8Bytes::from_validated(data))
                } else {
                    Message::Binary(data)
                })
            }
        };
        self.events.push_back(event);
        Ok(true)
    }

    /// Resumes processing paused for the application to catch up.
    pub(super) fn resume_if_paused(&mut self) {
        if self.recv.paused && self.events.is_empty() {
            self.recv.paused = false;
            // A failure is sticky and reported by the next input.
            let _ = self.process();
        }
    }
}
