//! The session passwords Apache ZooKeeper issues. ZooKeeper derives a
//! session's password from its id alone (`ZooKeeperServer.generatePasswd`):
//! a `java.util.Random` seeded with `id ^ 0xB3415C00`, 16 bytes from
//! `nextBytes`. A client holding a session on ZooKeeper presents exactly
//! these bytes when it reconnects, so a server that imported ZooKeeper's
//! sessions accepts them.
//!
//! `java.util.Random` is hand-written here: it is a 48-bit linear
//! congruential generator fixed by the Java specification (a few lines),
//! and no crate reproduces Java's exact `nextBytes` byte order.

use crate::ids::SessionId;

/// ZooKeeper's constant mixed into the seed (`superSecret`).
const ZOOKEEPER_SECRET: i64 = 0xB341_5C00;
pub const PASSWORD_LEN: usize = 16;

/// `java.util.Random`: the 48-bit LCG of the Java specification.
pub struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const ADDEND: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    pub fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self
            .seed
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(Self::ADDEND))
            & Self::MASK;
        (self.seed >> (48 - bits)) as i32
    }

    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// Java's `nextBytes`: each `nextInt` fills up to four bytes, low
    /// byte first.
    pub fn next_bytes(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let mut rnd = self.next_int();
            let n = (out.len() - i).min(4);
            for _ in 0..n {
                out[i] = rnd as u8;
                i += 1;
                rnd >>= 8;
            }
        }
    }
}

/// The password ZooKeeper issued for `session`.
pub fn zookeeper_password(session: SessionId) -> [u8; PASSWORD_LEN] {
    let mut r = JavaRandom::new(session.0 ^ ZOOKEEPER_SECRET);
    let mut out = [0u8; PASSWORD_LEN];
    r.next_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Values printed by Java 17 running ZooKeeper's `generatePasswd`
    /// body (`new Random(id ^ 0XB3415C00L).nextBytes(new byte[16])`).
    #[test]
    fn matches_passwords_computed_by_java() {
        for (id, want) in [
            (
                0x1000_00ab_cdef_0001_u64,
                "76b39f6d54c3bc4f6ebe2fdff1198ecf",
            ),
            (0x72e1_f0a3_c5b2_0000, "7c790d575953c77eba3ecdbbca19d911"),
            (1, "054cc74a37327db215e702e20c73f005"),
            (u64::MAX, "20f62cb5648dc2d771471c8a2486a9ee"),
            (0x0123_4567_89ab_cdef, "f7cd1b8b3f946c477425d41be3f667c6"),
        ] {
            assert_eq!(
                hex(&zookeeper_password(SessionId(id as i64))),
                want,
                "{id:x}"
            );
        }
    }

    #[test]
    fn next_int_matches_java() {
        // new java.util.Random(42).nextInt(), twice.
        let mut r = JavaRandom::new(42);
        assert_eq!((r.next_int(), r.next_int()), (-1170105035, 234785527));
    }
}
