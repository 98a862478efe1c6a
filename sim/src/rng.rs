//! Seeded randomness: every draw of a run comes from a ChaCha stream
//! derived from the run's one `u64` seed and a topic name, so that turning
//! one fault kind off (as `shrink` does) leaves the other streams alone.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One named stream of a run's randomness.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

/// FNV-1a 64: a stable hash for stream names and the trace.
pub fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl SimRng {
    /// The stream `topic` of the run `seed`.
    pub fn stream(seed: u64, topic: &str) -> SimRng {
        let key = fnv1a(topic.as_bytes(), FNV_OFFSET) ^ seed.rotate_left(17);
        SimRng(ChaCha8Rng::seed_from_u64(key ^ seed))
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            self.0.gen_range(lo..hi)
        }
    }

    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "index into an empty set");
        self.0.gen_range(0..len)
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.gen_bool(p.min(1.0))
    }

    pub fn u64(&mut self) -> u64 {
        self.0.gen()
    }

    /// Signed uniform in `-mag..=mag`.
    pub fn signed(&mut self, mag: i64) -> i64 {
        if mag <= 0 {
            0
        } else {
            self.0.gen_range(-mag..=mag)
        }
    }

    /// Exponential-ish: mostly near `typical`, sometimes up to `max`.
    pub fn latency(&mut self, min: u64, typical: u64, max: u64) -> u64 {
        if self.chance(0.05) {
            self.range(min, max.max(min + 1))
        } else {
            self.range(min, typical.max(min + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| SimRng::stream(7, "net").u64()).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same stream, same draw: {a:?}"
        );
        let mut x = SimRng::stream(7, "net");
        let mut y = SimRng::stream(7, "disk");
        assert_ne!(x.u64(), y.u64(), "topics give different streams");
    }
}
