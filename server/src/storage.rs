//! The storage threads: group commit of the log, and snapshots written
//! off the hot path.
//!
//! The log thread takes every job queued, carries them out in order,
//! issues one fsync for the batch, and only then reports `Persisted` for
//! the batch's last token (a token covers every earlier one, as the core
//! promises). A new log file is started on the first append, after every
//! snapshot (`Roll`), after a truncation, and when the current file passes
//! [`LOG_FILE_BYTES_MAX`]; its name is the zxid of its first record.
//!
//! The snapshot thread serialises an O(1) clone of the state into
//! `snapshot.<hex>.tmp`, fsyncs it, renames it into place and fsyncs the
//! directory, then reports `SnapshotWritten`. It also runs autopurge, so
//! purging never races a snapshot being written.
//!
//! Any IO error here ends the thread's work: it is reported once as
//! `Done::Failed` (the core's `Input::StorageFailed`: nothing of the batch
//! is acknowledged), never retried, and the node stops the server, which
//! starts again from what the log really holds. After a failed fsync the
//! page cache no longer says what reached the disk, so a retried fsync
//! could report success over lost pages; ZooKeeper and PostgreSQL also
//! exit rather than retry. A full disk (ENOSPC) is reported as such.

use crate::disk::{self, Dirs};
use crate::metrics::Shared;
use paddock_core::storage::{self, Snapshot, StorageError, StorageErrorKind, StorageOp};
use paddock_core::{PersistToken, Zxid};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info};

/// A log file is closed and a new one started past this size.
pub const LOG_FILE_BYTES_MAX: u64 = 64 << 20;
/// Jobs taken into one group commit at most.
const BATCH_JOBS_MAX: usize = 4096;

/// Work for the log thread, in the order the core emitted it.
#[derive(Debug)]
pub enum LogJob {
    /// The core's operation, executed as is (a `Snapshot` only rolls the
    /// log here: the snapshot thread writes the file).
    Op(StorageOp),
    /// Make everything durable, acknowledge, and end the thread.
    Stop(mpsc::Sender<()>),
}

#[derive(Debug)]
pub enum SnapJob {
    Write { zxid: Zxid, snapshot: Snapshot },
    Purge { retain: usize },
}

/// What the storage threads report to the driver.
#[derive(Debug)]
pub enum Done {
    Persisted(PersistToken),
    SnapshotWritten(Zxid),
    /// The disk refused the batch with this last token (`None`: a
    /// snapshot); the thread does nothing more.
    Failed {
        token: Option<PersistToken>,
        error: StorageError,
    },
}

/// ENOSPC on Linux.
const ENOSPC: i32 = 28;

/// An IO error as the core's `StorageError`: `kind` says which call
/// failed, unless the disk is full, which is said whatever the call.
pub fn refused(kind: StorageErrorKind, doing: &str, e: io::Error) -> StorageError {
    let kind = if e.raw_os_error() == Some(ENOSPC) {
        StorageErrorKind::NoSpace
    } else {
        kind
    };
    StorageError {
        kind,
        detail: format!("{doing}: {e}"),
    }
}

struct OpenLog {
    name: String,
    file: File,
    len: u64,
}

struct LogWriter {
    dirs: Dirs,
    force_sync: bool,
    current: Option<OpenLog>,
    roll: bool,
    /// Bytes written to `current` since its last fsync that need one.
    dirty: bool,
    /// A file was created (or removed) since the directory's last fsync.
    dir_dirty: bool,
    /// Where `fsynctime` and the group-commit batch sizes go.
    metrics: Arc<Shared>,
}

impl LogWriter {
    fn sync(&mut self) -> Result<(), StorageError> {
        use StorageErrorKind::Fsync;
        if self.force_sync {
            if self.dirty {
                if let Some(log) = &self.current {
                    let started = std::time::Instant::now();
                    log.file
                        .sync_data()
                        .map_err(|e| refused(Fsync, &format!("fsync of {}", log.name), e))?;
                    Shared::record(&self.metrics.fsync, started.elapsed().as_millis() as u64);
                }
            }
            if self.dir_dirty {
                disk::fsync_dir(&self.dirs.log)
                    .map_err(|e| refused(Fsync, "fsync of the log directory", e))?;
            }
        }
        self.dirty = false;
        self.dir_dirty = false;
        Ok(())
    }

    /// Syncs and closes the current file; the next append starts another.
    fn close_current(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        if let Some(log) = self.current.take() {
            debug!("closed {} at {} bytes", log.name, log.len);
        }
        Ok(())
    }

    fn append(&mut self, first_zxid: Zxid, bytes: &[u8]) -> Result<(), StorageError> {
        use StorageErrorKind::Write;
        let full = self
            .current
            .as_ref()
            .is_some_and(|l| l.len >= LOG_FILE_BYTES_MAX);
        if self.current.is_none() || self.roll || full {
            self.close_current()?;
            self.roll = false;
            let name = storage::log_file_name(first_zxid);
            let path = self.dirs.log.join(&name);
            let creating = |e| refused(Write, &format!("creating {}", path.display()), e);
            let mut file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(creating)?;
            file.write_all(storage::LOG_MAGIC).map_err(creating)?;
            info!("new log file {}", path.display());
            self.current = Some(OpenLog {
                name,
                file,
                len: storage::LOG_MAGIC.len() as u64,
            });
            self.dir_dirty = true;
            self.dirty = true;
        }
        let log = self
            .current
            .as_mut()
            .expect("a log file is open after the roll above");
        log.file.write_all(bytes).map_err(|e| {
            refused(
                Write,
                &format!("writing {} bytes to {}", bytes.len(), log.name),
                e,
            )
        })?;
        log.len += bytes.len() as u64;
        self.dirty = true;
        Ok(())
    }

    fn truncate(&mut self, zxid: Zxid) -> Result<(), StorageError> {
        use StorageErrorKind::{Read, Write};
        self.close_current()?;
        self.roll = true;
        let mut logs = Vec::new();
        let listing = disk::list(&self.dirs.log, "log")
            .map_err(|e| refused(Read, "listing the log directory", e))?;
        for (_, name) in listing {
            let bytes = std::fs::read(self.dirs.log.join(&name))
                .map_err(|e| refused(Read, &format!("reading {name}"), e))?;
            logs.push((name, bytes));
        }
        let plan = storage::plan_truncate(&logs, zxid);
        disk::apply_repairs(&self.dirs, &plan)
            .map_err(|e| refused(Write, &format!("cutting the log after {zxid}"), e))?;
        info!("log truncated after zxid {zxid}");
        Ok(())
    }
}

/// Starts the log thread.
pub fn spawn_log_thread(
    dirs: Dirs,
    force_sync: bool,
    done: UnboundedSender<Done>,
    metrics: Arc<Shared>,
) -> (mpsc::Sender<LogJob>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<LogJob>();
    let handle = std::thread::Builder::new()
        .name("paddock-log".into())
        .spawn(move || {
            let mut w = LogWriter {
                dirs,
                force_sync,
                current: None,
                roll: true,
                dirty: false,
                dir_dirty: false,
                metrics,
            };
            if let Err((token, error)) = log_loop(&mut w, &rx, &done) {
                let _ = done.send(Done::Failed { token, error });
            }
        })
        .expect("spawning the log thread");
    (tx, handle)
}

/// Runs batches until a stop or an error; an error comes with the last
/// token of the batch it hit (nothing of which was reported durable).
fn log_loop(
    w: &mut LogWriter,
    rx: &mpsc::Receiver<LogJob>,
    done: &UnboundedSender<Done>,
) -> Result<(), (Option<PersistToken>, StorageError)> {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH_JOBS_MAX {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        w.metrics
            .log_queue
            .fetch_sub(batch.len() as i64, std::sync::atomic::Ordering::Relaxed);
        Shared::record(&w.metrics.batch, batch.len() as u64);
        let batch_token = batch
            .iter()
            .filter_map(|j| match j {
                LogJob::Op(op) => op.token(),
                LogJob::Stop(_) => None,
            })
            .next_back();
        let failed = |e| (batch_token, e);
        let mut last_token = None;
        let mut stop = None;
        for job in batch.drain(..) {
            match job {
                LogJob::Op(StorageOp::Append {
                    token,
                    first_zxid,
                    bytes,
                }) => {
                    w.append(first_zxid, &bytes).map_err(failed)?;
                    last_token = Some(token);
                }
                LogJob::Op(StorageOp::Snapshot(_)) => w.roll = true,
                LogJob::Op(StorageOp::Epochs {
                    token,
                    accepted_epoch: accepted,
                    current_epoch: current,
                    repairing,
                }) => {
                    // Earlier appends first: the epoch must not be durable
                    // ahead of the records it follows.
                    w.sync().map_err(failed)?;
                    let epochs = |e| {
                        failed(refused(
                            StorageErrorKind::Write,
                            "writing acceptedEpoch/currentEpoch",
                            e,
                        ))
                    };
                    disk::write_epochs(&w.dirs, accepted, current, w.force_sync).map_err(epochs)?;
                    disk::set_repair_mark(&w.dirs, repairing, w.force_sync).map_err(epochs)?;
                    last_token = Some(token);
                }
                LogJob::Op(StorageOp::Truncate { token, zxid }) => {
                    w.truncate(zxid).map_err(failed)?;
                    last_token = Some(token);
                }
                LogJob::Stop(ack) => stop = Some(ack),
            }
        }
        w.sync().map_err(failed)?;
        if let Some(t) = last_token {
            let _ = done.send(Done::Persisted(t));
        }
        if let Some(ack) = stop {
            info!("log flushed and synced");
            let _ = ack.send(());
            return Ok(());
        }
    }
    w.sync().map_err(|e| (None, e))
}

/// Starts the snapshot thread.
pub fn spawn_snapshot_thread(
    dirs: Dirs,
    done: UnboundedSender<Done>,
    metrics: Arc<Shared>,
) -> (mpsc::Sender<SnapJob>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<SnapJob>();
    let handle = std::thread::Builder::new()
        .name("paddock-snapshot".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                match job {
                    SnapJob::Write { zxid, snapshot } => {
                        let started = std::time::Instant::now();
                        match write_snapshot(&dirs.data, zxid, &snapshot) {
                            Ok(bytes) => {
                                let ms = started.elapsed().as_millis() as u64;
                                Shared::record(&metrics.snapshot, ms);
                                metrics
                                    .snapshot_bytes
                                    .store(bytes, std::sync::atomic::Ordering::Relaxed);
                                let _ = done.send(Done::SnapshotWritten(zxid));
                            }
                            Err(e) => {
                                let doing =
                                    format!("writing {}", storage::snapshot_file_name(zxid));
                                let error = refused(StorageErrorKind::Write, &doing, e);
                                let _ = done.send(Done::Failed { token: None, error });
                                return;
                            }
                        }
                    }
                    SnapJob::Purge { retain } => match disk::purge(&dirs, retain) {
                        Ok(removed) => {
                            for p in removed {
                                info!("autopurge removed {}", p.display());
                            }
                        }
                        Err(e) => tracing::warn!("autopurge failed: {e}"),
                    },
                }
            }
        })
        .expect("spawning the snapshot thread");
    (tx, handle)
}

/// Writes the snapshot; returns its size in bytes.
fn write_snapshot(dir: &std::path::Path, zxid: Zxid, snapshot: &Snapshot) -> io::Result<u64> {
    let started = std::time::Instant::now();
    let name = storage::snapshot_file_name(zxid);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    snapshot.write_to(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    std::fs::rename(&tmp, dir.join(&name))?;
    disk::fsync_dir(dir)?;
    info!(
        "wrote {} ({} znodes) in {} ms",
        dir.join(&name).display(),
        snapshot.node_count(),
        started.elapsed().as_millis()
    );
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: appends in one batch land in one file that starts with the log
    // magic and is named by the first zxid; a snapshot starts the next file.
    #[test]
    fn appends_roll_and_report_the_last_token() {
        let d = tempfile::tempdir().expect("tempdir");
        let dirs = Dirs {
            data: d.path().into(),
            log: d.path().into(),
        };
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let (tx, th) = spawn_log_thread(dirs, true, done_tx, Arc::default());
        let job = |t, z, b: &[u8]| {
            LogJob::Op(StorageOp::Append {
                token: PersistToken(t),
                first_zxid: Zxid(z),
                bytes: b.to_vec(),
            })
        };
        tx.send(job(1, 1, b"aa")).expect("send");
        tx.send(job(2, 2, b"bb")).expect("send");
        let snap = Snapshot::of(&paddock_core::txn::State::new());
        tx.send(LogJob::Op(StorageOp::Snapshot(snap)))
            .expect("send");
        tx.send(job(3, 3, b"cc")).expect("send");
        let (ack_tx, ack_rx) = mpsc::channel();
        tx.send(LogJob::Stop(ack_tx)).expect("send");
        ack_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("stopped");
        th.join().expect("join");
        let mut last = None;
        while let Ok(Done::Persisted(t)) = done_rx.try_recv() {
            last = Some(t);
        }
        assert_eq!(last, Some(PersistToken(3)));
        assert_eq!(
            std::fs::read(d.path().join("log.1")).expect("log.1"),
            b"PDKLOG01aabb"
        );
        assert_eq!(
            std::fs::read(d.path().join("log.3")).expect("log.3"),
            b"PDKLOG01cc"
        );
    }
}
