//! Receiving permessage-deflate messages (RFC 7692 §6.2): compressed bytes are inflated as
//! they arrive, in bounded steps. The message size limit applies to the inflated size and
//! stops a decompression bomb the moment it is exceeded; inflated text is validated
//! incrementally; in stream mode, inflated pieces are delivered as they are produced.

use super::{Connection, Event, Fragment, Message};
use crate::config::ReceiveMode;
use crate::error::ProtocolError;
use crate::extensions::deflate::Deflate;
use crate::utf8::Utf8Bytes;
use bytes::BytesMut;

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
                &self.recv.buf.data()[..available]
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
                Err(corrupt) => {
                    deflate.discard_inflater();
                    // Check the output that came before the corruption first, as it would have
                    // been had the input arrived in smaller pieces (found by the
                    // `client_handshake` fuzz target: InvalidUtf8 or InvalidCompressedData
                    // depended on the split).
                    msg.inflated += corrupt.produced as u64;
                    if msg.inflated > limit {
                        return Err(ProtocolError::MessageTooLarge { limit: self.config.max_message_size });
                    }
                    if msg.kind == super::MessageKind::Text {
                        self.recv.utf8.feed(&out[..corrupt.produced]).map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
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

#[cfg(test)]
mod tests {
    use crate::{Config, Connection, DeflateParams, Error, ProtocolError, SeededRandom};
    use alloc::boxed::Box;

    /// Found by the `client_handshake` fuzz target: a compressed text message whose output
    /// turns invalid (0xFF) before its deflate data does failed with InvalidUtf8 when it arrived
    /// in pieces but InvalidCompressedData when it arrived at once.
    #[test]
    fn corrupt_data_after_invalid_text_fails_the_same_whatever_the_split() {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        // RSV1 text frame: a stored block holding 0xFF, then a block of the reserved type 3.
        let frame = [0xC1, 0x07, 0x00, 0x01, 0x00, 0xFE, 0xFF, 0xFF, 0x07];
        for piece in 1..=frame.len() {
            let mut conn =
                Connection::client_with_random(Config::default(), Box::new(SeededRandom::new(1))).with_deflate(params);
            for chunk in frame.chunks(piece) {
                let _ = conn.receive(chunk);
            }
            assert_eq!(conn.error(), Some(&Error::Protocol(ProtocolError::InvalidUtf8)), "pieces of {piece}");
        }
    }
}
