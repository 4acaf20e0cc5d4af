//! Benchmark payloads: a seeded pseudo-random byte stream, generated frame
//! by frame (never held whole in memory), and a fast streaming digest to
//! check that what came back is what was sent.

use bytes::{Bytes, BytesMut};
use futures::Stream;

/// Size of one generated frame.
pub const FRAME: usize = 256 * 1024;

/// A seeded xorshift64* generator producing `len` bytes in frames.
#[derive(Debug, Clone)]
pub struct Payload {
    state: u64,
    left: u64,
}

impl Payload {
    /// `len` bytes derived from `seed` (the same seed gives the same bytes).
    pub fn new(seed: u64, len: u64) -> Self {
        // splitmix64 of the seed, never zero (xorshift's fixed point).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self {
            state: z | 1,
            left: len,
        }
    }

    fn word(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// As an `io::Result` stream (for request bodies).
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        futures::stream::iter(self.map(Ok))
    }
}

impl Iterator for Payload {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(FRAME as u64) as usize;
        let mut buf = BytesMut::with_capacity(n + 8);
        while buf.len() < n {
            let w = self.word().to_le_bytes();
            let take = (n - buf.len()).min(8);
            buf.extend_from_slice(&w[..take]);
        }
        self.left -= n as u64;
        Some(buf.freeze())
    }
}

/// A streaming 64-bit digest (four independent multiply–rotate lanes over
/// 32-byte blocks, so it runs at several GB/s and does not limit a
/// loopback transfer; not cryptographic). The result does not depend on
/// how the input is split into chunks.
#[derive(Debug, Clone)]
pub struct Digest {
    lanes: [u64; 4],
    len: u64,
    pending: [u8; 32],
    npending: usize,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            lanes: [
                0xCBF2_9CE4_8422_2325,
                0x8422_2325_CBF2_9CE4,
                0x2545_F491_4F6C_DD1D,
                0x4F6C_DD1D_2545_F491,
            ],
            len: 0,
            pending: [0; 32],
            npending: 0,
        }
    }
}

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

impl Digest {
    /// A fresh digest.
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *lane = mix(*lane, w);
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (32 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 32 {
                return;
            }
            let p = self.pending;
            self.block(&p);
            self.npending = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    /// The digest of everything fed, with the length folded in.
    pub fn finish(&self) -> u64 {
        let mut h = self.len;
        for lane in self.lanes {
            h = mix(h, lane);
        }
        for c in self.pending[..self.npending].chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = mix(h, u64::from_le_bytes(w));
        }
        mix(h, self.len)
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The digest of [`Payload::new`]`(seed, len)`.
pub fn expected_digest(seed: u64, len: u64) -> u64 {
    let mut d = Digest::new();
    for frame in Payload::new(seed, len) {
        d.update(&frame);
    }
    d.finish()
}

/// The digest of a file on disk (read in blocking frames).
pub fn file_digest(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(d.finish())
}

/// Writes the payload to a local file (for the peers' GET).
pub fn write_file(path: &std::path::Path, seed: u64, len: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for frame in Payload::new(seed, len) {
        f.write_all(&frame)?;
    }
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_independent_of_split_and_payload_deterministic() {
        let whole: Vec<u8> = Payload::new(7, 1_000_003)
            .flat_map(|b| b.to_vec())
            .collect();
        assert_eq!(whole.len(), 1_000_003);
        let mut a = Digest::new();
        a.update(&whole);
        let mut b = Digest::new();
        for c in whole.chunks(13) {
            b.update(c);
        }
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.finish(), expected_digest(7, 1_000_003));
        assert_ne!(a.finish(), expected_digest(8, 1_000_003));
        assert_ne!(expected_digest(7, 10), expected_digest(7, 11));
    }
}
