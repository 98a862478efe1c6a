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
    bincode::serialize(value).expect("bincode serialises in-memory values")
}

pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
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
