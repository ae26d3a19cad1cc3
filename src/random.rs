//! Injectable randomness for masking keys and `Sec-WebSocket-Key` (RFC 6455 §5.3, §4.1).
//!
//! The core never reads an OS random source by itself: a client connection is given a
//! [`RandomSource`]. With `std`, [`default_random`] is a ChaCha12 generator seeded from the OS,
//! which is cryptographically secure as RFC 6455 §10.3 asks. Tests pass a seeded generator, so
//! whole transcripts are reproducible byte for byte.

#[cfg(feature = "std")]
use alloc::boxed::Box;

/// A source of unpredictable bytes. Implemented for every `rand` cryptographic generator.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<R: rand::CryptoRng + Send> RandomSource for R {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::Rng::fill_bytes(self, dest);
    }
}

impl core::fmt::Debug for dyn RandomSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RandomSource")
    }
}

/// The default random source: a ChaCha12 CSPRNG seeded from the operating system.
///
/// # Panics
///
/// If the operating system cannot provide entropy at all (never because of peer input).
#[cfg(feature = "std")]
#[must_use]
pub fn default_random() -> Box<dyn RandomSource> {
    Box::new(rand::make_rng::<rand::rngs::StdRng>())
}

/// A deterministic source for tests and fuzzing: every byte sequence is reproducible from the
/// seed. **Never use it for real connections**: masking keys must be unpredictable.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// A generator that always produces the same sequence for the same seed.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl RandomSource for SeededRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // SplitMix64: tiny, fast, and good enough for reproducible test transcripts.
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}
