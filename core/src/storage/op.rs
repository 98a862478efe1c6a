//! The storage vocabulary: every durable effect the core asks for is one
//! `StorageOp`, emitted as `Output::Storage`. The server's log thread, the
//! simulator's disk and the core's tests all execute these values as they
//! are; nobody re-models them.
//!
//! Invariants an executor keeps:
//! - Operations run one at a time in the order polled. `Append`, `Epochs`
//!   and `Truncate` carry tokens from one increasing sequence; each is
//!   answered with `Input::Persisted` once durable, in that order, and a
//!   token covers every earlier one (so a group commit may answer only
//!   its last token).
//! - `Epochs` never becomes durable ahead of the appends before it
//!   (ZOOKEEPER-4643: synced txns are durable before currentEpoch).
//! - `Snapshot` is written off the hot path and answered with
//!   `Input::SnapshotWritten`; appends after it go to a new log file.
//! - An operation the disk refuses (a write or fsync error, a full disk)
//!   is answered with `Input::StorageFailed` instead, and nothing of it
//!   (nor of its group commit) counts as durable. The executor must not
//!   retry the fsync itself: after a failed fsync the page cache no longer
//!   says what is on disk ("fsyncgate"), so a second fsync can succeed
//!   over lost data. The core answers by stopping (`Output::Stop`); the
//!   server then starts again from what its log really holds.

use super::format::Snapshot;
use crate::ids::{PersistToken, Zxid};

/// Which of the disk's errors an operation met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// `write` failed (EIO and the like).
    Write,
    /// `fsync`/`fdatasync` failed.
    Fsync,
    /// The disk is full (ENOSPC), whichever call said so.
    NoSpace,
    /// Reading what start-up or a truncation needs failed.
    Read,
}

/// A storage operation the disk refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    /// What the executor was doing and what the OS said.
    pub detail: String,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            StorageErrorKind::Write => "write failed",
            StorageErrorKind::Fsync => "fsync failed",
            StorageErrorKind::NoSpace => "disk full",
            StorageErrorKind::Read => "read failed",
        };
        write!(f, "{what}: {}", self.detail)
    }
}

#[derive(Debug, Clone)]
pub enum StorageOp {
    /// Append whole log records (see `encode_record`) and fsync them. A new
    /// log file, named `log_file_name(first_zxid)`, is started when none is
    /// open (after a start, a `Snapshot` or a `Truncate`).
    Append {
        token: PersistToken,
        first_zxid: Zxid,
        bytes: Vec<u8>,
    },
    /// Make `acceptedEpoch` and `currentEpoch` durable (files of those
    /// names, `epoch_file_text`, replaced atomically) and the `repairing`
    /// mark present or absent as `repairing` says.
    Epochs {
        token: PersistToken,
        accepted_epoch: u32,
        current_epoch: u32,
        repairing: bool,
    },
    /// Cut the log after `zxid` (the files `plan_truncate` names).
    Truncate { token: PersistToken, zxid: Zxid },
    /// Write this snapshot (an O(1) clone of the state at its `zxid`) into
    /// `snapshot_file_name(zxid)` off the hot path; later appends go to a
    /// new log file.
    Snapshot(Snapshot),
}

impl StorageOp {
    /// The token `Input::Persisted` answers, if this operation has one.
    pub fn token(&self) -> Option<PersistToken> {
        match self {
            StorageOp::Append { token, .. }
            | StorageOp::Epochs { token, .. }
            | StorageOp::Truncate { token, .. } => Some(*token),
            StorageOp::Snapshot(_) => None,
        }
    }
}
