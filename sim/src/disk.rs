//! One server's simulated disk, carried out like the shell's storage
//! thread: operations run one at a time in the order the core emitted them.
//! An append's bytes reach the page cache when it starts (pending) and are
//! durable only when its fsync completes; only then is `Input::Persisted`
//! delivered. A crash loses what is pending, or tears the last unsynced
//! write (a prefix survives). Epoch files and snapshots are replaced
//! atomically (old or new, never half).
//!
//! The disk also fails the way real disks do (`FaultKind::DiskError`,
//! `ReadError`): an armed one-shot EIO on write or fsync, a full disk
//! (ENOSPC) for a while, a read error at the next start. A failed log
//! operation leaves behind what a real one may: a prefix of its bytes
//! (the kernel wrote some pages and dropped the rest from the page cache,
//! so nothing says which), an epoch file or truncation done or not. It is
//! answered `StorageFailed`; a later fsync succeeds whatever was lost,
//! which is why the core must not retry.
//!
//! Invariant: at most one operation is in flight, so at most one write is
//! ever pending, and pending bytes belong to the current log file.

use crate::rng::SimRng;
use crate::scenario::DiskFault;
use paddock_core::storage::{
    self, DiskImage, Repair, Snapshot, StorageError, StorageErrorKind, StorageOp,
};
use paddock_core::{PersistToken, Zxid};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Durable contents of every log file.
    logs: BTreeMap<String, Vec<u8>>,
    snapshots: BTreeMap<String, SnapFile>,
    epochs: Option<(u32, u32)>,
    /// The `repairing` mark file.
    pub repair_mark: bool,
    /// The append in flight: (file, its bytes not yet durable).
    pending: Option<(String, Vec<u8>)>,
    current_log: Option<String>,
    roll: bool,
    queue: VecDeque<StorageOp>,
    in_flight: Option<StorageOp>,
    pub fsyncs: u64,
    pub torn: u64,
    /// The next log operation fails this way.
    pub armed: Option<DiskFault>,
    /// The disk is full: every log operation and snapshot fails.
    pub full: bool,
    /// Reading the data dir at the next start fails (once).
    pub read_error: bool,
    /// Operations refused so far.
    pub failures: u64,
}

/// How the operation in flight ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Durable; answer this token, if it has one.
    Done(Option<PersistToken>),
    /// Refused: answer `Input::StorageFailed`.
    Failed {
        token: Option<PersistToken>,
        error: StorageError,
        /// Bytes of the failed append that reached the file anyway.
        landed: usize,
    },
}

/// A landed snapshot file. Its bytes are the core's encoding, made the
/// first time something reads the file (a restart): most snapshot files
/// are never read, and encoding each as it lands was the simulator's
/// largest single cost under load.
#[derive(Clone, Debug)]
enum SnapFile {
    Unread(Box<Snapshot>),
    Bytes(Vec<u8>),
}

impl SnapFile {
    fn bytes(&mut self) -> &[u8] {
        if let SnapFile::Unread(s) = self {
            *self = SnapFile::Bytes(s.encode());
        }
        match self {
            SnapFile::Bytes(b) => b,
            SnapFile::Unread(_) => unreachable!("encoded above"),
        }
    }
}

/// What a crash did to the disk, for the trace.
#[derive(Debug, PartialEq, Eq)]
pub enum CrashEffect {
    Nothing,
    LostPending(usize),
    Torn {
        kept: usize,
        of: usize,
    },
    /// An atomic replace in flight either happened or did not.
    Atomic {
        applied: bool,
    },
}

impl Disk {
    pub fn new() -> Disk {
        Disk::default()
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    pub fn queued(&self) -> usize {
        self.queue.len() + usize::from(self.in_flight.is_some())
    }

    /// Queues one of the core's operations. A `Snapshot` here only rolls
    /// the log: the world lands the snapshot file itself, off the queue.
    pub fn submit(&mut self, op: StorageOp) {
        self.queue.push_back(op);
    }

    /// Starts the next operation if idle. Returns whether one started (the
    /// caller schedules its completion). `Roll` completes at once.
    pub fn start_next(&mut self) -> bool {
        while self.in_flight.is_none() {
            let Some(mut op) = self.queue.pop_front() else {
                return false;
            };
            match &mut op {
                StorageOp::Snapshot(_) => {
                    self.roll = true;
                    continue;
                }
                StorageOp::Append {
                    first_zxid: first,
                    bytes,
                    ..
                } => {
                    let name = match (&self.current_log, self.roll) {
                        (Some(n), false) => n.clone(),
                        _ => {
                            let n = storage::log_file_name(*first);
                            assert!(
                                !self.logs.contains_key(&n),
                                "new log file {n} already exists"
                            );
                            self.logs.insert(n.clone(), storage::LOG_MAGIC.to_vec());
                            self.roll = false;
                            self.current_log = Some(n.clone());
                            n
                        }
                    };
                    // The bytes live in `pending` alone from here on.
                    self.pending = Some((name, std::mem::take(bytes)));
                }
                StorageOp::Epochs { .. } | StorageOp::Truncate { .. } => {}
            }
            // Group commit, as the server's storage thread does: the appends
            // queued right behind this one share its write and its fsync,
            // and its completion answers the last token (which covers the
            // earlier ones).
            if let StorageOp::Append {
                token: last_token, ..
            } = &mut op
            {
                while let Some(StorageOp::Append { .. }) = self.queue.front() {
                    let Some(StorageOp::Append { token, bytes, .. }) = self.queue.pop_front()
                    else {
                        unreachable!("the front is an append")
                    };
                    *last_token = token;
                    let (_, pending) = self.pending.as_mut().expect("set above");
                    pending.extend_from_slice(&bytes);
                }
            }
            self.in_flight = Some(op);
            return true;
        }
        false
    }

    /// The operation in flight ended: durable, or refused by an armed
    /// error or a full disk (what a refused one leaves is drawn).
    pub fn finish(&mut self, rng: &mut SimRng) -> Outcome {
        let Some(op) = self.in_flight.as_ref() else {
            return Outcome::Done(None);
        };
        let fault = if self.full {
            Some(StorageErrorKind::NoSpace)
        } else {
            self.armed.take().map(|f| match f {
                DiskFault::WriteEio => StorageErrorKind::Write,
                DiskFault::FsyncEio => StorageErrorKind::Fsync,
            })
        };
        let Some(kind) = fault else {
            return Outcome::Done(self.complete());
        };
        self.failures += 1;
        let token = op.token();
        let mut landed = 0;
        let what = match op {
            StorageOp::Append { .. } => {
                let (file, bytes) = self.pending.take().expect("an append in flight is pending");
                // A failed write may have been short; after a failed fsync
                // any prefix (or all) of the dirty pages may be on disk.
                landed = match kind {
                    StorageErrorKind::Fsync => rng.range(0, bytes.len() as u64 + 1) as usize,
                    _ => rng.range(0, bytes.len() as u64) as usize,
                };
                self.logs
                    .get_mut(&file)
                    .expect("pending bytes belong to an existing log")
                    .extend_from_slice(&bytes[..landed]);
                self.in_flight = None;
                format!("appending {} bytes to {file}", bytes.len())
            }
            StorageOp::Epochs { .. } | StorageOp::Truncate { .. } => {
                // The rename (or cut) happened and only the directory's
                // fsync failed, or it never happened.
                let what = match op {
                    StorageOp::Truncate { zxid, .. } => format!("cutting the log after {zxid}"),
                    StorageOp::Epochs {
                        accepted_epoch,
                        current_epoch,
                        ..
                    } => format!(
                        "replacing acceptedEpoch/currentEpoch with {accepted_epoch}/{current_epoch}"
                    ),
                    _ => unreachable!("matched above"),
                };
                if kind == StorageErrorKind::Fsync && rng.chance(0.5) {
                    self.complete();
                } else {
                    self.in_flight = None;
                }
                what
            }
            StorageOp::Snapshot(_) => unreachable!("a roll is never in flight"),
        };
        let os = match kind {
            StorageErrorKind::NoSpace => "No space left on device (os error 28)",
            _ => "Input/output error (os error 5)",
        };
        Outcome::Failed {
            token,
            error: StorageError {
                kind,
                detail: format!("{what}: {os}"),
            },
            landed,
        }
    }

    /// The fsync of the operation in flight completed: it is durable.
    pub fn complete(&mut self) -> Option<PersistToken> {
        let op = self.in_flight.take()?;
        self.fsyncs += 1;
        match &op {
            StorageOp::Append { .. } => {
                let (file, bytes) = self.pending.take().expect("an append in flight is pending");
                self.logs
                    .get_mut(&file)
                    .expect("pending bytes belong to an existing log")
                    .extend_from_slice(&bytes);
            }
            StorageOp::Epochs {
                accepted_epoch: accepted,
                current_epoch: current,
                repairing,
                ..
            } => {
                self.epochs = Some((*accepted, *current));
                self.repair_mark = *repairing;
            }
            StorageOp::Truncate { zxid, .. } => {
                let logs: Vec<(String, Vec<u8>)> = self
                    .logs
                    .iter()
                    .map(|(n, b)| (n.clone(), b.clone()))
                    .collect();
                let repairs = storage::plan_truncate(&logs, *zxid);
                self.apply_repairs(&repairs);
            }
            StorageOp::Snapshot(_) => unreachable!("a roll never waits for a fsync"),
        }
        op.token()
    }

    /// The process died: the queue is gone, the write in flight is lost or
    /// torn (`tear`), an atomic replace in flight happened or not.
    pub fn crash(&mut self, rng: &mut SimRng, tear: bool) -> CrashEffect {
        self.queue.clear();
        self.current_log = None;
        self.roll = false;
        let Some(op) = self.in_flight.take() else {
            return CrashEffect::Nothing;
        };
        match op {
            StorageOp::Append { .. } => {
                let (file, bytes) = self.pending.take().expect("pending append");
                if tear && bytes.len() > 1 {
                    let kept = rng.range(1, bytes.len() as u64) as usize;
                    self.logs
                        .get_mut(&file)
                        .expect("log exists")
                        .extend_from_slice(&bytes[..kept]);
                    self.torn += 1;
                    CrashEffect::Torn {
                        kept,
                        of: bytes.len(),
                    }
                } else {
                    CrashEffect::LostPending(bytes.len())
                }
            }
            op @ (StorageOp::Epochs { .. } | StorageOp::Truncate { .. }) => {
                let applied = rng.chance(0.5);
                if applied {
                    self.in_flight = Some(op);
                    self.complete();
                }
                CrashEffect::Atomic { applied }
            }
            StorageOp::Snapshot(_) => CrashEffect::Nothing,
        }
    }

    /// A snapshot file landed (written to a temp name, renamed: atomic).
    pub fn put_snapshot(&mut self, snapshot: Box<Snapshot>) {
        self.snapshots.insert(
            storage::snapshot_file_name(snapshot.zxid),
            SnapFile::Unread(snapshot),
        );
    }

    /// How many log files there are.
    pub fn log_files(&self) -> usize {
        self.logs.len()
    }

    /// The durable files, as the shell would read them at start.
    pub fn image(&mut self) -> DiskImage {
        DiskImage {
            snapshots: self
                .snapshots
                .iter_mut()
                .map(|(n, f)| (n.clone(), f.bytes().to_vec()))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|(n, b)| (n.clone(), b.clone()))
                .collect(),
        }
    }

    pub fn epoch_files(&self) -> Option<(u32, u32)> {
        self.epochs
    }

    /// Carries out recovery's (or a TRUNC's) repairs.
    pub fn apply_repairs(&mut self, repairs: &[Repair]) {
        for r in repairs {
            match r {
                Repair::TruncateLog { file, len } => {
                    let b = self
                        .logs
                        .get_mut(file)
                        .unwrap_or_else(|| panic!("repair names log {file}, which does not exist"));
                    assert!(
                        *len as usize <= b.len(),
                        "truncate {file} to {len} beyond its {} bytes",
                        b.len()
                    );
                    b.truncate(*len as usize);
                }
                Repair::SetAside { file } | Repair::Remove { file } => {
                    self.logs.remove(file);
                    self.snapshots.remove(file);
                }
            }
        }
        // After a restart the newest log is appended to.
        self.current_log = self
            .logs
            .keys()
            .max_by_key(|n| storage::parse_file_name(n).map(|p| p.1))
            .cloned();
    }

    /// Every durable log record, decoded, in file order.
    pub fn logged_txns(&self) -> Vec<paddock_core::txn::Txn> {
        let mut files: Vec<(Zxid, &Vec<u8>)> = self
            .logs
            .iter()
            .filter_map(|(n, b)| storage::parse_file_name(n).map(|(_, z)| (z, b)))
            .collect();
        files.sort_by_key(|f| f.0);
        files
            .into_iter()
            .flat_map(|(_, b)| storage::read_log(b).0)
            .collect()
    }

    /// Damages one byte inside a durable record of zxid at most `bound`
    /// (a record whose healthy copy the caller knows exists elsewhere).
    /// Returns which file and offset, or `None` if there is none.
    /// Flips a byte inside one durable record with zxid <= `bound`: a random
    /// one, or the newest (`newest`, for the named scenarios).
    pub fn corrupt_record(
        &mut self,
        rng: &mut SimRng,
        bound: Zxid,
        newest: bool,
    ) -> Option<(String, usize)> {
        let mut candidates: Vec<(String, usize, usize)> = Vec::new();
        for (name, bytes) in &self.logs {
            let mut pos = storage::LOG_MAGIC.len();
            let (txns, _, _) = storage::read_log(bytes);
            for t in &txns {
                let len =
                    u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                if t.zxid <= bound {
                    candidates.push((name.clone(), pos, 8 + len));
                }
                pos += 8 + len;
            }
        }
        if candidates.is_empty() {
            return None;
        }
        let pick = if newest {
            candidates.len() - 1
        } else {
            rng.index(candidates.len())
        };
        let (file, at, len) = candidates.swap_remove(pick);
        let off = at + rng.range(8, len as u64) as usize;
        let b = self.logs.get_mut(&file).expect("candidate file exists");
        b[off] ^= 0x5a;
        Some((file, off))
    }
}

/// The simulated disk as start-up (`paddock_core::boot`) reads and repairs
/// it; reading fails once when `read_error` is armed.
impl paddock_core::boot::DataDir for Disk {
    type Error = StorageError;
    fn image(&mut self) -> Result<DiskImage, Self::Error> {
        if std::mem::take(&mut self.read_error) {
            let file = self.logs.keys().next_back().cloned();
            return Err(StorageError {
                kind: StorageErrorKind::Read,
                detail: format!(
                    "reading {}: Input/output error (os error 5)",
                    file.as_deref().unwrap_or("the data dir")
                ),
            });
        }
        Ok(Disk::image(self))
    }
    fn repair_mark(&mut self) -> Result<bool, Self::Error> {
        Ok(self.repair_mark)
    }
    fn set_repair_mark(&mut self) -> Result<(), Self::Error> {
        self.repair_mark = true;
        Ok(())
    }
    fn apply_repairs(&mut self, repairs: &[Repair]) -> Result<(), Self::Error> {
        Disk::apply_repairs(self, repairs);
        Ok(())
    }
    #[allow(clippy::type_complexity)]
    fn epoch_files(&mut self) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), Self::Error> {
        let text = |e: u32| Some(storage::epoch_file_text(e).into_bytes());
        Ok(self
            .epochs
            .map_or((None, None), |(a, c)| (text(a), text(c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_core::txn::{ApplyOptions, Txn, TxnKind};

    fn opts() -> ApplyOptions {
        ApplyOptions::from_config(&paddock_core::Config::standalone(1))
    }

    fn append(disk: &mut Disk, token: u64, zxid: u64) {
        let txn = Txn {
            zxid: Zxid(zxid),
            time_ms: 0,
            session: paddock_core::SessionId(1),
            cxid: 0,
            kind: TxnKind::CreateSession { timeout_ms: 4000 },
        };
        let mut bytes = Vec::new();
        storage::encode_record(&txn, &mut bytes);
        disk.submit(StorageOp::Append {
            token: PersistToken(token),
            first_zxid: Zxid(zxid),
            bytes,
        });
    }

    #[test]
    fn only_synced_appends_survive_a_crash() {
        let mut d = Disk::new();
        append(&mut d, 1, 1);
        assert!(d.start_next());
        assert_eq!(d.complete(), Some(PersistToken(1)));
        append(&mut d, 2, 2);
        assert!(d.start_next());
        let effect = d.crash(&mut SimRng::stream(1, "t"), false);
        assert!(
            matches!(effect, CrashEffect::LostPending(n) if n > 0),
            "{effect:?}"
        );
        let rec = storage::recover(&d.image(), &opts()).expect("recovers");
        assert_eq!(rec.state.last_zxid, Zxid(1));
    }

    #[test]
    fn a_torn_tail_is_truncated_by_recovery() {
        let mut d = Disk::new();
        append(&mut d, 1, 1);
        d.start_next();
        d.complete();
        append(&mut d, 2, 2);
        d.start_next();
        let effect = d.crash(&mut SimRng::stream(2, "t"), true);
        assert!(matches!(effect, CrashEffect::Torn { .. }), "{effect:?}");
        let rec = storage::recover(&d.image(), &opts()).expect("recovers");
        assert_eq!(rec.state.last_zxid, Zxid(1));
        assert_eq!(rec.repairs.len(), 1, "repairs {:?}", rec.repairs);
        d.apply_repairs(&rec.repairs);
        let again = storage::recover(&d.image(), &opts()).expect("recovers");
        assert!(
            again.repairs.is_empty(),
            "repairs applied: {:?}",
            again.repairs
        );
    }

    #[test]
    fn queued_appends_share_one_fsync() {
        let mut d = Disk::new();
        for i in 1..=3 {
            append(&mut d, i, i);
        }
        assert!(d.start_next());
        assert_eq!(d.complete(), Some(PersistToken(3)));
        assert_eq!(d.fsyncs, 1);
        assert!(!d.start_next());
        let rec = storage::recover(&d.image(), &opts()).expect("recovers");
        assert_eq!(rec.state.last_zxid, Zxid(3));
    }

    #[test]
    fn a_corrupt_record_stops_recovery_before_it() {
        let mut d = Disk::new();
        for i in 1..=5 {
            append(&mut d, i, i);
            d.start_next();
            d.complete();
        }
        d.corrupt_record(&mut SimRng::stream(3, "t"), Zxid(3), false)
            .expect("a record to damage");
        let rec = storage::recover(&d.image(), &opts()).expect("recovers");
        assert!(
            rec.state.last_zxid < Zxid(4),
            "recovered {}",
            rec.state.last_zxid
        );
    }
}
