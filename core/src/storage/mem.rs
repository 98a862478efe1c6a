//! A data directory held in memory, durable at once: the executor of
//! `StorageOp` for tests, examples and tools that need no fault model.
//! (The simulator's disk adds what a crash loses; the server's log
//! thread adds files and fsync.)

use super::datadir::DataDir;
use super::format::{log_file_name, snapshot_file_name, LOG_MAGIC};
use super::op::{StorageError, StorageErrorKind, StorageOp};
use super::recover::{epoch_file_text, plan_truncate, DiskImage, Repair};
use crate::ids::{PersistToken, Zxid};
use std::collections::BTreeMap;

/// What the node is told once an operation is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Answer `Input::Persisted { token }`.
    Persisted(PersistToken),
    /// Answer `Input::SnapshotWritten { zxid }`.
    SnapshotWritten(Zxid),
    /// The disk refused the operation: answer `Input::StorageFailed`.
    Failed {
        token: Option<PersistToken>,
        error: StorageError,
    },
}

#[derive(Debug, Clone, Default)]
pub struct MemDir {
    pub logs: BTreeMap<String, Vec<u8>>,
    pub snapshots: BTreeMap<String, Vec<u8>>,
    /// (acceptedEpoch, currentEpoch), once written.
    pub epochs: Option<(u32, u32)>,
    pub repair_mark: bool,
    /// The log file appends go to; `None` starts a new one.
    current_log: Option<String>,
    /// The next operation fails with this error, changing nothing.
    pub fail_next: Option<StorageErrorKind>,
}

impl MemDir {
    pub fn new() -> MemDir {
        MemDir::default()
    }

    /// Carries out one operation, durably, and says what to answer.
    pub fn execute(&mut self, op: StorageOp) -> Completion {
        if let Some(kind) = self.fail_next.take() {
            return Completion::Failed {
                token: op.token(),
                error: StorageError {
                    kind,
                    detail: "injected by MemDir::fail_next".into(),
                },
            };
        }
        match op {
            StorageOp::Append {
                token,
                first_zxid,
                bytes,
            } => {
                let name = self.current_log.get_or_insert_with(|| {
                    let n = log_file_name(first_zxid);
                    assert!(!self.logs.contains_key(&n), "new log file {n} exists");
                    n
                });
                self.logs
                    .entry(name.clone())
                    .or_insert_with(|| LOG_MAGIC.to_vec())
                    .extend_from_slice(&bytes);
                Completion::Persisted(token)
            }
            StorageOp::Epochs {
                token,
                accepted_epoch,
                current_epoch,
                repairing,
            } => {
                self.epochs = Some((accepted_epoch, current_epoch));
                self.repair_mark = repairing;
                Completion::Persisted(token)
            }
            StorageOp::Truncate { token, zxid } => {
                let logs: Vec<(String, Vec<u8>)> = self
                    .logs
                    .iter()
                    .map(|(n, b)| (n.clone(), b.clone()))
                    .collect();
                self.repair(&plan_truncate(&logs, zxid));
                self.current_log = None;
                Completion::Persisted(token)
            }
            StorageOp::Snapshot(snapshot) => {
                self.snapshots
                    .insert(snapshot_file_name(snapshot.zxid), snapshot.encode());
                self.current_log = None;
                Completion::SnapshotWritten(snapshot.zxid)
            }
        }
    }

    fn repair(&mut self, repairs: &[Repair]) {
        for r in repairs {
            match r {
                Repair::TruncateLog { file, len } => {
                    if let Some(b) = self.logs.get_mut(file) {
                        b.truncate(*len as usize);
                    }
                }
                Repair::SetAside { file } | Repair::Remove { file } => {
                    self.logs.remove(file);
                    self.snapshots.remove(file);
                }
            }
        }
    }

    /// A crash of an instant disk loses nothing durable; the next append
    /// starts a new log file, as after a restart.
    pub fn restart(&mut self) {
        self.current_log = None;
    }
}

impl DataDir for MemDir {
    type Error = std::convert::Infallible;
    fn image(&mut self) -> Result<DiskImage, Self::Error> {
        let pairs = |m: &BTreeMap<String, Vec<u8>>| {
            m.iter()
                .map(|(n, b)| (n.clone(), b.clone()))
                .collect::<Vec<_>>()
        };
        Ok(DiskImage {
            snapshots: pairs(&self.snapshots),
            logs: pairs(&self.logs),
        })
    }
    fn repair_mark(&mut self) -> Result<bool, Self::Error> {
        Ok(self.repair_mark)
    }
    fn set_repair_mark(&mut self) -> Result<(), Self::Error> {
        self.repair_mark = true;
        Ok(())
    }
    fn apply_repairs(&mut self, repairs: &[Repair]) -> Result<(), Self::Error> {
        self.repair(repairs);
        self.current_log = None;
        Ok(())
    }
    #[allow(clippy::type_complexity)]
    fn epoch_files(&mut self) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), Self::Error> {
        let text = |e: u32| Some(epoch_file_text(e).into_bytes());
        Ok(self
            .epochs
            .map_or((None, None), |(a, c)| (text(a), text(c))))
    }
}
