//! permessage-deflate (RFC 7692): negotiation of its four parameters and per-message
//! compression and bounded, incremental decompression.
//!
//! Backend: `flate2` with the `zlib-rs` backend — pure Rust (no C toolchain, no `unsafe` of
//! ours), as fast as zlib-ng, and unlike `miniz_oxide` it can compress with a window smaller
//! than 32 KiB, which `server_max_window_bits`/`client_max_window_bits` require.
//!
//! zlib cannot produce a raw deflate stream limited to a 256-byte window (8 bits). So a server
//! declines an offer that demands `server_max_window_bits=8`, and a client told by a server to
//! use `client_max_window_bits=8` honours it by sending stored (uncompressed) deflate blocks,
//! which reference no window at all.

use super::Extension;
use crate::connection::Role;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's registered name.
pub(crate) const NAME: &str = "permessage-deflate";
/// The empty stored block every sync flush ends with; stripped from and re-appended to each
/// message (RFC 7692 §7.2.1, §7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What permessage-deflate to offer (client) or accept (server).
///
/// ```
/// let deflate = wscore::DeflateConfig::default().level(6).threshold(256).server_max_window_bits(12);
/// let config = wscore::Config::default().deflate(Some(deflate));
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    pub(crate) level: u32,
    pub(crate) threshold: usize,
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: u8,
    pub(crate) client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 1,
            threshold: 64,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Compression level, 0 (store) to 9 (best). Default 1 (fastest).
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Whole messages shorter than this are sent uncompressed. Default 64 bytes.
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The server compresses each message on its own (client: request it; server: impose it).
    /// Saves the server's compression window between messages at some cost in ratio.
    #[must_use]
    pub fn server_no_context_takeover(mut self, enabled: bool) -> Self {
        self.server_no_context_takeover = enabled;
        self
    }

    /// The client compresses each message on its own (client: promise it; server: request it).
    #[must_use]
    pub fn client_no_context_takeover(mut self, enabled: bool) -> Self {
        self.client_no_context_takeover = enabled;
        self
    }

    /// The largest LZ77 window the server may compress with, 2^bits bytes (8–15; default 15).
    /// A client requests it; a server uses at most this (and never less than 9).
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The largest LZ77 window the client may compress with (8–15; default 15). A client
    /// offers it; a server asks for it when the client allows.
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Server side, for upgrades done by another HTTP stack: picks the first offer in the
    /// request's `Sec-WebSocket-Extensions` values that this configuration can honour, and
    /// returns the agreed parameters (for [`Connection::with_deflate`](crate::Connection::with_deflate))
    /// and the value to send back in the response's `Sec-WebSocket-Extensions` header.
    ///
    /// ```
    /// let config = wscore::DeflateConfig::default();
    /// let (params, response) = config.negotiate(&["permessage-deflate; client_max_window_bits"]).unwrap();
    /// assert_eq!(response, "permessage-deflate");
    /// assert_eq!(params.server_max_window_bits, 15);
    /// ```
    #[must_use]
    pub fn negotiate(&self, header_values: &[&str]) -> Option<(DeflateParams, String)> {
        let offers: Vec<Extension> =
            header_values.iter().filter_map(|v| super::parse_extensions(v).ok()).flatten().collect();
        negotiate(self, &offers)
    }

    /// The client's offer, as a `Sec-WebSocket-Extensions` value.
    pub(crate) fn offer(&self) -> String {
        let mut offer = String::from(NAME);
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&alloc::format!("; server_max_window_bits={}", self.server_max_window_bits));
        }
        if self.client_max_window_bits < 15 {
            offer.push_str(&alloc::format!("; client_max_window_bits={}", self.client_max_window_bits));
        } else {
            offer.push_str("; client_max_window_bits");
        }
        offer
    }
}

/// The parameters both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message.
    pub client_no_context_takeover: bool,
    /// The server's compression window, in bits.
    pub server_max_window_bits: u8,
    /// The client's compression window, in bits.
    pub client_max_window_bits: u8,
}

/// The parameters of one offer or response, checked for duplicates and valid values.
#[derive(Debug, Default)]
struct RawParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: Option<&String>) -> Result<u8, &'static str> {
    let value = value.ok_or("window bits parameter without a value")?;
    // RFC 7692 §7.1.2: 1*DIGIT, no leading zero, 8 to 15.
    match value.as_str() {
        "8" => Ok(8),
        "9" => Ok(9),
        "10" => Ok(10),
        "11" => Ok(11),
        "12" => Ok(12),
        "13" => Ok(13),
        "14" => Ok(14),
        "15" => Ok(15),
        _ => Err("window bits must be 8 to 15"),
    }
}

fn parse_params(ext: &Extension) -> Result<RawParams, &'static str> {
    let mut raw = RawParams::default();
    let mut seen = [false; 4];
    for (name, value) in &ext.params {
        let slot = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err("unknown permessage-deflate parameter"),
        };
        if core::mem::replace(&mut seen[slot], true) {
            return Err("duplicate permessage-deflate parameter");
        }
        match slot {
            0 | 1 if value.is_some() => return Err("no_context_takeover takes no value"),
            0 => raw.server_no_context_takeover = true,
            1 => raw.client_no_context_takeover = true,
            2 => raw.server_max_window_bits = Some(window_bits(value.as_ref())?),
            _ => {
                raw.client_max_window_bits =
                    Some(if value.is_some() { Some(window_bits(value.as_ref())?) } else { None });
            }
        }
    }
    Ok(raw)
}

/// Server: picks the first offer it can honour; returns the agreed parameters and the
/// response value.
pub(crate) fn negotiate(config: &DeflateConfig, offers: &[Extension]) -> Option<(DeflateParams, String)> {
    offers.iter().filter(|o| o.name.eq_ignore_ascii_case(NAME)).find_map(|offer| {
        let raw = parse_params(offer).ok()?;
        let ours = config.server_max_window_bits.max(9);
        let server_bits = match raw.server_max_window_bits {
            Some(bits) if bits < 9 => return None, // zlib cannot compress with 256 bytes
            Some(bits) => bits.min(ours),
            None => ours,
        };
        let client_bits = match raw.client_max_window_bits {
            Some(offered) => offered.unwrap_or(15).min(config.client_max_window_bits),
            None => 15,
        };
        let params = DeflateParams {
            server_no_context_takeover: raw.server_no_context_takeover || config.server_no_context_takeover,
            client_no_context_takeover: raw.client_no_context_takeover || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        let mut response = String::from(NAME);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if raw.server_max_window_bits.is_some() || server_bits < 15 {
            response.push_str(&alloc::format!("; server_max_window_bits={server_bits}"));
        }
        if raw.client_max_window_bits.is_some() && client_bits < 15 {
            response.push_str(&alloc::format!("; client_max_window_bits={client_bits}"));
        }
        Some((params, response))
    })
}

/// Client: checks the server's response against what `config` offered.
pub(crate) fn accept_response(config: &DeflateConfig, response: &Extension) -> Result<DeflateParams, &'static str> {
    if !response.name.eq_ignore_ascii_case(NAME) {
        return Err("server selected an extension that was not offered");
    }
    let raw = parse_params(response)?;
    let server_bits = raw.server_max_window_bits.unwrap_or(15);
    if raw.server_max_window_bits.is_none() && config.server_max_window_bits < 15 {
        return Err("server ignored the requested server_max_window_bits");
    }
    if server_bits > config.server_max_window_bits {
        return Err("server_max_window_bits larger than requested");
    }
    if config.server_no_context_takeover && !raw.server_no_context_takeover {
        return Err("server ignored the requested server_no_context_takeover");
    }
    let client_bits = match raw.client_max_window_bits {
        Some(Some(bits)) if bits <= config.client_max_window_bits => bits,
        Some(Some(_)) => return Err("client_max_window_bits larger than offered"),
        Some(None) => return Err("client_max_window_bits without a value in a response"),
        None => config.client_max_window_bits,
    };
    Ok(DeflateParams {
        server_no_context_takeover: raw.server_no_context_takeover,
        client_no_context_takeover: raw.client_no_context_takeover || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

/// Decompression failed: the peer sent data that is not a valid deflate stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CorruptData {
    /// Bytes written to the output before the corruption was found: they are checked like any
    /// output, so the error reported does not depend on how the input was split.
    pub(crate) produced: usize,
}

/// The compression state of one connection. Compressor and decompressor are allocated on
/// first use, so an idle connection that negotiated compression costs nothing extra.
pub(crate) struct Deflate {
    params: DeflateParams,
    role: Role,
    level: u32,
    threshold: usize,
    compressor: Option<Box<Compress>>,
    decompressor: Option<Box<Decompress>>,
    /// The peer ended its deflate stream (BFINAL): reset before the next message.
    stream_ended: bool,
}

impl core::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deflate").field("params", &self.params).field("role", &self.role).finish_non_exhaustive()
    }
}

impl Deflate {
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        // The fields are public: keep windows set by hand in RFC 7692's 8..=15 (flate2 panics
        // outside 9..=15; found by the `connection_pair` fuzz target).
        let params = DeflateParams {
            server_max_window_bits: params.server_max_window_bits.clamp(8, 15),
            client_max_window_bits: params.client_max_window_bits.clamp(8, 15),
            ..params
        };
        Self {
            params,
            role,
            level: config.level,
            threshold: config.threshold,
            compressor: None,
            decompressor: None,
            stream_ended: false,
        }
    }

    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }

    fn our_window(&self) -> u8 {
        match self.role {
            Role::Server => self.params.server_max_window_bits,
            Role::Client => self.params.client_max_window_bits,
        }
    }

    fn our_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.params.server_no_context_takeover,
            Role::Client => self.params.client_no_context_takeover,
        }
    }

    fn peer_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.params.client_no_context_takeover,
            Role::Client => self.params.server_no_context_takeover,
        }
    }

    /// Whether a whole message of `len` bytes is worth compressing.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compresses one message, or one piece of a streamed message (`last` ends it).
    pub(crate) fn compress(&mut self, data: &[u8], last: bool) -> Vec<u8> {
        let window = self.our_window();
        let level = self.level;
        let reset_after = self.our_no_context_takeover();
        let compressor = self.compressor.get_or_insert_with(|| {
            Box::new(if window < 9 {
                // Stored blocks only: valid for any window (see the module docs).
                Compress::new(Compression::none(), false)
            } else {
                Compress::new_with_window_bits(Compression::new(level), false, window)
            })
        });
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let start = compressor.total_in();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = (compressor.total_in() - start) as usize;
            // Errors only come from misuse of the stream, which this loop does not do; stop
            // rather than spin if one ever happens.
            if compressor.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).is_err() {
                break;
            }
            // zlib semantics: the flush is complete once all input is taken and output room
            // is left over.
            let all_in = (compressor.total_in() - start) as usize == data.len();
            if all_in && out.len() < out.capacity() {
                break;
            }
        }
        if last {
            if out.ends_with(&TRAILER) {
                out.truncate(out.len() - TRAILER.len());
            } else if out.is_empty() {
                // An empty last piece after a flushed one: zlib emits nothing for a second
                // flush, and the trailer already sent cannot be taken back. End with the header
                // byte of an empty stored block; the trailer the receiver appends completes it.
                out.push(0x00);
            }
            if reset_after {
                compressor.reset();
            }
        }
        out
    }

    /// Inflates from `input` into `out` (at most `out.len()` bytes). Returns (consumed,
    /// produced). With `finish`, the input is the end of a message.
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), CorruptData> {
        if self.stream_ended {
            // Anything after a final block belongs to no stream: ignore it.
            return Ok((input.len(), 0));
        }
        let decompressor = self.decompressor.get_or_insert_with(|| Box::new(Decompress::new(false)));
        let (in0, out0) = (decompressor.total_in(), decompressor.total_out());
        let result = decompressor.decompress(input, out, FlushDecompress::Sync);
        let produced = (decompressor.total_out() - out0) as usize;
        let status = result.map_err(|_| CorruptData { produced })?;
        if status == Status::StreamEnd {
            self.stream_ended = true;
        }
        Ok(((decompressor.total_in() - in0) as usize, (decompressor.total_out() - out0) as usize))
    }

    /// The bytes to inflate after a message's last frame.
    pub(crate) const fn trailer() -> &'static [u8] {
        &TRAILER
    }

    /// A received message ended: drop or keep the inflater's window.
    pub(crate) fn end_inflated_message(&mut self) {
        if self.peer_no_context_takeover() || self.stream_ended {
            if let Some(d) = self.decompressor.as_mut() {
                d.reset(false);
            }
            self.stream_ended = false;
        }
    }

    /// The inflater failed: discard it (a new one would start from an empty window).
    pub(crate) fn discard_inflater(&mut self) {
        self.decompressor = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::parse_extensions;

    fn offer(value: &str) -> Vec<Extension> {
        parse_extensions(value).unwrap()
    }

    #[test]
    fn server_negotiation_table() {
        let config = DeflateConfig::default();
        let cases: &[(&str, Option<&str>)] = &[
            ("permessage-deflate", Some("permessage-deflate")),
            ("permessage-deflate; client_max_window_bits", Some("permessage-deflate")),
            ("permessage-deflate; client_max_window_bits=10", Some("permessage-deflate; client_max_window_bits=10")),
            ("permessage-deflate; server_max_window_bits=9", Some("permessage-deflate; server_max_window_bits=9")),
            ("permessage-deflate; server_no_context_takeover", Some("permessage-deflate; server_no_context_takeover")),
            ("permessage-deflate; client_no_context_takeover", Some("permessage-deflate; client_no_context_takeover")),
            // Declined: 8 bits cannot be honoured; duplicates, bad values, unknown params.
            ("permessage-deflate; server_max_window_bits=8", None),
            ("permessage-deflate; server_max_window_bits=8, permessage-deflate", Some("permessage-deflate")),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=7", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; client_no_context_takeover=1", None),
            ("permessage-deflate; foo", None),
            ("x-webkit-deflate-frame", None),
        ];
        for (value, expected) in cases {
            let got = negotiate(&config, &offer(value)).map(|(_, r)| r);
            assert_eq!(got.as_deref(), *expected, "{value}");
        }
    }

    #[test]
    fn client_response_table() {
        let config = DeflateConfig::default();
        let ok = [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=8",
        ];
        for value in ok {
            assert!(accept_response(&config, &offer(value)[0]).is_ok(), "{value}");
        }
        let bad = [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-foo",
        ];
        for value in bad {
            assert!(accept_response(&config, &offer(value)[0]).is_err(), "{value}");
        }
        let strict = DeflateConfig::default().server_max_window_bits(10).client_max_window_bits(12);
        assert!(accept_response(&strict, &offer("permessage-deflate")[0]).is_err());
        assert!(accept_response(&strict, &offer("permessage-deflate; server_max_window_bits=11")[0]).is_err());
        assert!(
            accept_response(
                &strict,
                &offer("permessage-deflate; server_max_window_bits=10; client_max_window_bits=13")[0]
            )
            .is_err()
        );
        let p = accept_response(&strict, &offer("permessage-deflate; server_max_window_bits=9")[0]).unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 12));
    }

    #[test]
    fn rfc7692_examples() {
        // §7.2.3.1: "Hello" compressed, and §7.2.3.2 the same message sent twice with context.
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut inflater = Deflate::new(params, Role::Client, &DeflateConfig::default());
        let mut out = [0u8; 64];
        for compressed in [&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..], &[0xf2, 0x00, 0x11, 0x00, 0x00]] {
            let (used, n) = inflater.inflate(compressed, &mut out).unwrap();
            assert_eq!(used, compressed.len());
            let (_, m) = inflater.inflate(Deflate::trailer(), &mut out[n..]).unwrap();
            assert_eq!(&out[..n + m], b"Hello");
            inflater.end_inflated_message();
        }
        // §7.2.3.3: a stored (uncompressed) block.
        let stored = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
        let (_, n) = inflater.inflate(&stored, &mut out).unwrap();
        assert_eq!(&out[..n], b"Hello");
        // §7.2.3.4: two deflate blocks in one message.
        let mut fresh = Deflate::new(params, Role::Client, &DeflateConfig::default());
        let two = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
        let (_, n) = fresh.inflate(&two, &mut out).unwrap();
        assert_eq!(&out[..n], b"Hello");
        // Our compressor output inflates back, with and without context takeover.
        let mut ours = Deflate::new(params, Role::Server, &DeflateConfig::default());
        let mut theirs = Deflate::new(params, Role::Client, &DeflateConfig::default());
        for _ in 0..3 {
            let c = ours.compress(b"Hello Hello Hello", true);
            let (_, n) = theirs.inflate(&c, &mut out).unwrap();
            let (_, m) = theirs.inflate(Deflate::trailer(), &mut out[n..]).unwrap();
            assert_eq!(&out[..n + m], b"Hello Hello Hello");
        }
    }

    #[test]
    fn eight_bit_client_window_uses_stored_blocks() {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 8,
        };
        let mut client = Deflate::new(params, Role::Client, &DeflateConfig::default());
        let data = [b'a'; 1000];
        let c = client.compress(&data, true);
        assert!(c.len() > data.len(), "stored blocks do not compress");
        let mut server = Deflate::new(params, Role::Server, &DeflateConfig::default());
        let mut out = [0u8; 2000];
        let (_, n) = server.inflate(&c, &mut out).unwrap();
        let (_, m) = server.inflate(Deflate::trailer(), &mut out[n..]).unwrap();
        assert_eq!(&out[..n + m], &data[..]);
    }

    #[test]
    fn out_of_range_window_bits_are_clamped() {
        for bits in [0, 7, 16, 255] {
            let params = DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            for role in [Role::Client, Role::Server] {
                let mut ours = Deflate::new(params, role, &DeflateConfig::default());
                assert!((8..=15).contains(&ours.params().server_max_window_bits));
                let data = [b'a'; 300];
                let c = ours.compress(&data, true);
                let mut theirs = Deflate::new(params, Role::Server, &DeflateConfig::default());
                let mut out = [0u8; 400];
                let (_, n) = theirs.inflate(&c, &mut out).unwrap();
                let (_, m) = theirs.inflate(Deflate::trailer(), &mut out[n..]).unwrap();
                assert_eq!(&out[..n + m], &data[..], "{bits} bits, {role:?}");
            }
        }
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut d = Deflate::new(params, Role::Server, &DeflateConfig::default());
        let mut out = [0u8; 64];
        assert_eq!(d.inflate(&[0xff, 0xff, 0xff, 0xff], &mut out), Err(CorruptData { produced: 0 }));
        // A stored block holding "ok", then a block of the reserved type 3: the output before
        // the corruption is reported with the error.
        let mut d = Deflate::new(params, Role::Server, &DeflateConfig::default());
        assert_eq!(
            d.inflate(&[0x00, 0x02, 0x00, 0xfd, 0xff, b'o', b'k', 0x07], &mut out),
            Err(CorruptData { produced: 2 })
        );
        assert_eq!(&out[..2], b"ok");
    }
}
