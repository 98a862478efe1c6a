//! Apache ZooKeeper's quorum protocol as a learner speaks it: the
//! `QuorumPacket` codec (`packet`), the framing of a leader's byte stream
//! with its streamed snapshots (`stream`). The facts, checked against
//! ZooKeeper 3.8's sources and a running ensemble, are written down in
//! `docs/ZK-QUORUM-PROTOCOL.md`.

pub mod bridge;
pub mod learner;
pub mod packet;
pub mod stream;

pub use packet::{kind, PacketError, QuorumPacket};
pub use stream::{Item, LeaderStream, StreamError};

#[cfg(test)]
mod learner_tests;

/// Test support for the decoder's fuzz loops (unit tests and
/// `core/tests/zk_quorum_fuzz.rs`): applies 1 to `edits_max` random edits
/// to a byte stream — a byte replaced, a bit flipped, the tail cut (never
/// to empty), a byte inserted, or four bytes overwritten with a length
/// field's worth of big or negative values. Deterministic for a seeded rng.
#[doc(hidden)]
pub fn mutate(b: &mut Vec<u8>, rng: &mut impl rand::Rng, edits_max: usize) {
    for _ in 0..rng.gen_range(1..=edits_max.max(1)) {
        if b.is_empty() {
            b.push(rng.gen());
            continue;
        }
        let i = rng.gen_range(0..b.len());
        match rng.gen_range(0..5) {
            0 => b[i] = rng.gen(),
            1 => b[i] ^= 1 << rng.gen_range(0..8),
            2 => b.truncate(i.max(1)),
            3 => b.insert(i, rng.gen()),
            _ => {
                let v: i32 = [-2, -1, 0, i32::MAX, 1 << 24][rng.gen_range(0..5)];
                let end = (i + 4).min(b.len());
                b[i..end].copy_from_slice(&v.to_be_bytes()[..end - i]);
            }
        }
    }
}
