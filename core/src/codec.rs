//! The one place that encodes Paddock's own records (log entries,
//! snapshots, peer messages). It wraps bincode 1.3 — pinned because the
//! registry's 3.0.0 does not compile and the crate is unmaintained — so a
//! replacement is a change to this file only.

use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("record does not decode: {0}")]
pub struct CodecError(String);

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain in-memory values cannot fail (no maps with
    // non-string keys that bincode refuses, no IO).
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    encode_after(&[], value, out)
}

/// `head` followed by `value`'s encoding, appended to `out` in one
/// allocation. Sizing first costs a walk of the value but saves the
/// reallocations and copies of growing the buffer field by field (a
/// visible share of the simulator's time, and of the server's per-write
/// work).
pub fn encode_after<T: Serialize>(head: &[u8], value: &T, out: &mut Vec<u8>) {
    let size = bincode::serialized_size(value).expect("bincode sizes in-memory values");
    out.reserve(head.len() + size as usize);
    out.extend_from_slice(head);
    bincode::serialize_into(out, value).expect("bincode serialises in-memory values")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    use bincode::Options;
    // Limit allocations by the input size so a corrupt length cannot ask
    // for gigabytes; refuse trailing bytes.
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(bytes.len() as u64 * 4 + 1024)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| CodecError(e.to_string()))
}

/// `#[serde(with = "crate::codec::bytes")]` for a `Vec<u8>` field: the
/// bytes go through `serialize_bytes` as one block. In bincode that is the
/// same wire form as the derived sequence of `u8` (a u64 length, then the
/// bytes), so records and messages written either way read the same; but
/// the derived form encodes and decodes byte by byte through serde's
/// sequence calls, which was most of the cost of decoding a peer message.
pub mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(super::BytesVisitor)
    }
}

/// `bytes` for an `Arc<[u8]>` field (a znode's data in a snapshot).
pub mod shared_bytes {
    use serde::{Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        d.deserialize_byte_buf(super::BytesVisitor).map(Arc::from)
    }
}

/// Takes bytes as a block, or as a sequence of `u8` (how self-describing
/// formats such as JSON give them back).
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Derived {
        a: Vec<u8>,
        b: std::sync::Arc<[u8]>,
        n: u32,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Blocks {
        #[serde(with = "bytes")]
        a: Vec<u8>,
        #[serde(with = "shared_bytes")]
        b: std::sync::Arc<[u8]>,
        n: u32,
    }

    /// The block form is the derived form byte for byte, both ways, so
    /// logs, snapshots and peers of either build read each other.
    #[test]
    fn bytes_as_a_block_encode_as_the_derived_sequence() {
        for len in [0usize, 1, 7, 300] {
            let a: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let b: std::sync::Arc<[u8]> = a.iter().rev().copied().collect();
            let old = Derived {
                a: a.clone(),
                b: b.clone(),
                n: 9,
            };
            let new = Blocks { a, b, n: 9 };
            let bytes = encode(&new);
            assert_eq!(bytes, encode(&old), "length {len}");
            let back: Blocks = decode(&bytes).expect("decodes");
            assert_eq!(back, new);
            let old_back: Derived = decode(&bytes).expect("decodes as the derived form");
            assert_eq!(old_back, old);
        }
        // A corrupt length is refused, not allocated.
        let mut bad = encode(&Blocks {
            a: vec![1, 2, 3],
            b: std::sync::Arc::from(&[][..]),
            n: 1,
        });
        bad[0] = 0xff;
        assert!(decode::<Blocks>(&bad).is_err());
    }
}
