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
