//! `FrameHeader::parse` on arbitrary bytes (RFC 6455 §5.2).
//!
//! Input: the bytes to parse, verbatim.
//!
//! Invariants: no panic; a parsed header re-encodes to exactly the bytes it was parsed from
//! (the parser only accepts minimal length encodings, so the roundtrip is byte-exact); parse
//! never looks past what it says it consumed (the same header comes out of the consumed prefix
//! alone, and every shorter prefix is "incomplete"); "incomplete" and errors are decided by the
//! bytes seen so far (more bytes never turn an error into a header, or a header into an error).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wscore::{FrameHeader, MAX_CONTROL_PAYLOAD};

fuzz_target!(|data: &[u8]| {
    let result = FrameHeader::parse(data);
    match &result {
        Ok(Some((header, len))) => {
            let len = *len;
            assert!(len <= data.len() && (2..=FrameHeader::MAX_LEN).contains(&len));
            assert_eq!(len, header.encoded_len());
            let mut out = [0u8; FrameHeader::MAX_LEN];
            let n = header.encode(&mut out);
            assert_eq!(&out[..n], &data[..len], "re-encoding differs from the parsed bytes");
            assert_eq!(FrameHeader::parse(&data[..len]), Ok(Some((*header, len))));
            for cut in 0..len {
                assert_eq!(FrameHeader::parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
            assert!(header.payload_len >> 63 == 0);
            if header.opcode.is_control() {
                assert!(header.fin && header.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
        }
        Ok(None) => {
            assert!(data.len() < FrameHeader::MAX_LEN);
            for cut in 0..data.len() {
                assert_eq!(FrameHeader::parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Err(_) => {
            // The error is already decided: whatever follows cannot change it.
            for fill in [0x00, 0xFF] {
                let mut longer = data.to_vec();
                longer.extend_from_slice(&[fill; FrameHeader::MAX_LEN]);
                assert_eq!(FrameHeader::parse(&longer), result);
            }
        }
    }
    // Any header that parses from a longer buffer parses the same from its own bytes.
    if data.len() > FrameHeader::MAX_LEN {
        assert_eq!(FrameHeader::parse(&data[..FrameHeader::MAX_LEN]), FrameHeader::parse(data));
    }
});
