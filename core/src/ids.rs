//! Identifier newtypes and the core's notion of time.
//!
//! The core never reads a clock: every entry point takes a [`Now`], which
//! carries a monotonic [`Instant`] (used for every timeout) and the wall
//! clock in milliseconds (used only where ZooKeeper stamps it: `ctime`,
//! `mtime`, the txn time, TTL ages).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A ZooKeeper transaction id: `epoch << 32 | counter`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Zxid(pub u64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// The value as ZooKeeper puts it on the wire (a signed long).
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client session id, as ZooKeeper hands it out (a signed long on the wire).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0 as u64)
    }
}

/// A server of the ensemble (`server.N` / `myid`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ServerId(pub u64);

/// A client connection, numbered by the shell (or the simulator).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ConnId(pub u64);

/// A token naming one `StorageOp` (`Append`, `Epochs`, `Truncate`); the shell answers with
/// `Input::Persisted` carrying the same token once the bytes are durable.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PersistToken(pub u64);

/// Monotonic time in nanoseconds since an arbitrary origin chosen by the
/// driver (the shell's process start, or the simulator's zero).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instant(pub u64);

impl Instant {
    pub fn from_millis(ms: u64) -> Instant {
        Instant(ms * 1_000_000)
    }
    pub fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    pub fn add_millis(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }
    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0) / 1_000_000
    }
}

/// The time passed into every core entry point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic: all timeouts are computed from this.
    pub mono: Instant,
    /// Wall clock, milliseconds since the Unix epoch: stamps only.
    pub wall_ms: i64,
}

impl Now {
    pub fn new(mono: Instant, wall_ms: i64) -> Now {
        Now { mono, wall_ms }
    }
}
