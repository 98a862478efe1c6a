//! On-disk formats and recovery, without IO: the shell hands the bytes of
//! its files in and carries out the repairs this module decides.
//!
//! Log file `log.<hex zxid of first record>`:
//!   header  `PDKLOG01` (8 bytes)
//!   records `[u32 LE payload len][u32 LE crc32c(payload)][payload]`, the
//!           payload a `Txn` through `codec`. A zero length ends the log
//!           (room the shell may have preallocated).
//! Snapshot file `snapshot.<hex zxid it covers>`:
//!   `PDKSNP01`, then `[u64 LE body len][u32 LE crc32c(body)]`, then the
//!   body: a `SnapshotBody` through `codec`.
//!
//! Recovery (`recover`) takes the newest snapshot whose checksum holds
//! (falling back to older ones), replays the logs after it in zxid order,
//! and stops at the first torn or corrupt record: that file is truncated
//! there (with a note saying how much), later files are set aside.
//!
//! The storage vocabulary is [`StorageOp`] (`op`): the one enum of
//! operations the core asks for, executed as is by the server's log
//! thread, the simulator's disk and the core's tests.
//!
//! To write Paddock state from a tree (an import, a test), encode
//! `Snapshot::of(&state)` into `snapshot_file_name(zxid)` and the epochs
//! with `epoch_file_text` into `acceptedEpoch` / `currentEpoch`.

mod datadir;
mod format;
mod mem;
mod op;
mod recover;

pub use datadir::DataDir;
pub use format::{
    encode_record, log_file_name, parse_file_name, read_log, read_snapshot, snapshot_file_name,
    LogStop, Snapshot, LOG_MAGIC, RECORD_LEN_MAX, SNAP_MAGIC,
};
pub use mem::{Completion, MemDir};
pub use op::{StorageError, StorageErrorKind, StorageOp};
pub use recover::{
    epoch_file_text, plan_truncate, recover, recover_marked, DiskImage, Recovered, RecoveryError,
    Repair,
};
