//! Helpers shared by the fuzz targets: reading plans from the front of the input, splitting
//! bytes into chunks, building frames, and simple HTTP head checks.
//!
//! Input formats are documented in each target and in `fuzz/README.md`: a short fixed-size
//! "plan" (decoded with `#[derive(Arbitrary)]`, one byte per `u8`/`bool` field, all-zero meaning
//! the defaults) followed by bytes used verbatim, so seeds stay readable and libFuzzer's
//! mutations of the verbatim part stay meaningful.

use arbitrary::Unstructured;
use wscore::{FrameHeader, OpCode, apply_mask};

/// One byte from the front (0 once the input is exhausted).
pub fn byte(u: &mut Unstructured<'_>) -> u8 {
    u.arbitrary::<u8>().unwrap_or(0)
}

/// A little-endian `u16` from the next two bytes (missing bytes read as 0).
pub fn u16_le(u: &mut Unstructured<'_>) -> u16 {
    u16::from(byte(u)) | (u16::from(byte(u)) << 8)
}

/// Up to `n` bytes from the front (fewer if the input runs out).
pub fn take<'a>(u: &mut Unstructured<'a>, n: usize) -> &'a [u8] {
    let n = n.min(u.len());
    u.bytes(n).unwrap_or_default()
}

/// Splits `data` into chunks of the given lengths (clamped), then the rest as one chunk.
/// Zero lengths give empty chunks: receiving nothing must be harmless too.
pub fn chunks(mut data: &[u8], lens: impl IntoIterator<Item = usize>) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, tail) = data.split_at(len.min(data.len()));
        out.push(head);
        data = tail;
    }
    out.push(data);
    out
}

/// Encodes one frame (masking the payload when `mask` is set).
pub fn frame(fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader { fin, rsv: [rsv1, false, false], mask, ..FrameHeader::new(opcode, payload.len() as u64) };
    let mut raw = [0u8; FrameHeader::MAX_LEN];
    let n = header.encode(&mut raw);
    let mut out = raw[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// Checks that `bytes` starts with a well-formed HTTP/1.1 response head (without httparse):
/// the status line starts with `HTTP/1.1 ` and a 3-digit status, every header line is
/// `name: value` with a non-empty token name and no stray CR or LF, and a blank line ends the
/// head. Returns the status code, the header lines and the bytes after the head.
pub fn check_response_head(bytes: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("response head has no blank line");
    let head = std::str::from_utf8(&bytes[..end]).expect("response head is not UTF-8");
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.strip_prefix("HTTP/1.1 ").expect("status line does not start with HTTP/1.1");
    assert!(
        status.len() >= 4 && status.as_bytes()[..3].iter().all(u8::is_ascii_digit) && status.as_bytes()[3] == b' ',
        "bad status line {status_line:?}"
    );
    let code: u16 = status[..3].parse().unwrap();
    let mut headers = Vec::new();
    for line in lines {
        assert!(!line.contains(['\r', '\n']), "stray CR/LF in header line {line:?}");
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
        headers.push((name.to_string(), value.trim().to_string()));
    }
    (code, headers, rest)
}

/// The value of the first header named `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Checks a rejection response (`HandshakeError::response`): HTTP/1.1 head, a status that is
/// not 101, and a body whose length matches `Content-Length`.
pub fn check_error_response(bytes: &[u8]) {
    assert!(bytes.starts_with(b"HTTP/1.1 "), "error response does not start with HTTP/1.1");
    let (code, headers, body) = check_response_head(bytes);
    assert!((400..600).contains(&code), "error status {code}");
    let len: usize = header(&headers, "Content-Length").expect("no Content-Length").parse().unwrap();
    assert_eq!(len, body.len(), "Content-Length does not match the body");
}

/// Whether `WSCORE_FUZZ_DEBUG` is set: targets then print what an input did (for seeds and
/// crash triage; `cargo fuzz run <target> <file>` runs one input).
pub fn debug_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("WSCORE_FUZZ_DEBUG").is_some())
}

/// Prints `what` when [`debug_enabled`].
pub fn debug(what: impl FnOnce() -> String) {
    if debug_enabled() {
        eprintln!("{}", what());
    }
}

/// A length-prefixed field: one length byte, then up to that many bytes.
pub fn field<'a>(u: &mut Unstructured<'a>) -> &'a [u8] {
    let len = usize::from(byte(u));
    take(u, len)
}

/// A length-prefixed field as text (invalid UTF-8 replaced), for APIs that take strings.
pub fn text_field(u: &mut Unstructured<'_>) -> String {
    String::from_utf8_lossy(field(u)).into_owned()
}

/// Whether `name` is an RFC 9110 §5.6.2 token (a valid header field name).
pub fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Standard base64 with padding (RFC 4648 §4), written out here so the harness does not share
/// the crate's encoder.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
