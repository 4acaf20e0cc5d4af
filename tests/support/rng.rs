//! The one generator of test data (SplitMix64, seeded): bytes that do not
//! compress or repeat, the same for the same seed, made block by block so
//! that nothing big is held.

use bytes::Bytes;

/// A seeded pseudo-random byte source.
pub(crate) struct Prng {
    state: u64,
}

impl Prng {
    /// A generator with a seed.
    pub(crate) fn new(seed: u64) -> Self {
        Prng { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` (any length).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            c.copy_from_slice(&self.next_u64().to_le_bytes()[..c.len()]);
        }
    }
}

/// `len` bytes of seed `seed`.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Prng::new(seed).fill(&mut v);
    v
}

/// `total` bytes of seed `seed` as a stream of `block`-byte pieces.
pub(crate) fn stream(
    seed: u64,
    total: u64,
    block: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold((Prng::new(seed), total), move |(mut g, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; (block as u64).min(left) as usize];
        g.fill(&mut buf);
        let n = buf.len() as u64;
        Some((Ok(Bytes::from(buf)), (g, left - n)))
    })
}
