//! The data directories on disk: reading them into a `DiskImage` for
//! recovery, carrying out the repairs recovery decides, the epoch files,
//! and autopurge.
//!
//! Layout (as ZooKeeper operators expect, without its `version-2`
//! subdirectory): `dataDir/snapshot.<hex zxid>`, `dataLogDir/log.<hex
//! first zxid>` (dataLogDir defaults to dataDir), `dataDir/acceptedEpoch`,
//! `dataDir/currentEpoch`. Files set aside get a `.corrupt` suffix and are
//! never read again; a snapshot in progress is `snapshot.<hex>.tmp`.

use paddock_core::storage::{self, DiskImage, Repair};
use paddock_core::Zxid;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where data and logs go.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Dirs {
    /// The directory a file of this name belongs in.
    pub fn of(&self, name: &str) -> &Path {
        if name.starts_with("log.") {
            &self.log
        } else {
            &self.data
        }
    }

    pub fn create(&self) -> io::Result<()> {
        fs::create_dir_all(&self.data)?;
        fs::create_dir_all(&self.log)
    }
}

/// Makes a directory's entries (new, renamed, removed files) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Names of `kind.<hex>` files in `dir`, sorted by zxid.
pub fn list(dir: &Path, kind: &str) -> io::Result<Vec<(Zxid, String)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((k, z)) = storage::parse_file_name(name) {
            if k == kind {
                out.push((z, name.to_string()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The data directories as start-up (`paddock_core::boot`) reads and
/// repairs them.
impl paddock_core::boot::DataDir for Dirs {
    type Error = io::Error;
    fn image(&mut self) -> io::Result<DiskImage> {
        load_image(self)
    }
    fn repair_mark(&mut self) -> io::Result<bool> {
        Ok(repair_mark_present(self))
    }
    fn set_repair_mark(&mut self) -> io::Result<()> {
        set_repair_mark(self, true, true)
    }
    fn apply_repairs(&mut self, repairs: &[Repair]) -> io::Result<()> {
        apply_repairs(self, repairs)
    }
    fn epoch_files(&mut self) -> io::Result<(Option<Vec<u8>>, Option<Vec<u8>>)> {
        read_epochs(self)
    }
}

/// Reads one file; an error names it.
fn read_named(dir: &Path, name: &str) -> io::Result<Vec<u8>> {
    fs::read(dir.join(name)).map_err(|e| io::Error::new(e.kind(), format!("reading {name}: {e}")))
}

/// Reads every log and snapshot for `storage::recover`.
pub fn load_image(dirs: &Dirs) -> io::Result<DiskImage> {
    let mut image = DiskImage::default();
    for (_, name) in list(&dirs.data, "snapshot")? {
        let bytes = read_named(&dirs.data, &name)?;
        image.snapshots.push((name, bytes));
    }
    for (_, name) in list(&dirs.log, "log")? {
        let bytes = read_named(&dirs.log, &name)?;
        image.logs.push((name, bytes));
    }
    Ok(image)
}

/// Carries out recovery's (or a ZAB truncation's) repairs, durably.
pub fn apply_repairs(dirs: &Dirs, repairs: &[Repair]) -> io::Result<()> {
    for r in repairs {
        match r {
            Repair::TruncateLog { file, len } => {
                let path = dirs.of(file).join(file);
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(*len)?;
                f.sync_all()?;
                tracing::warn!("truncated {} to {len} bytes", path.display());
            }
            Repair::SetAside { file } => {
                let dir = dirs.of(file);
                let to = dir.join(format!("{file}.corrupt"));
                fs::rename(dir.join(file), &to)?;
                fsync_dir(dir)?;
                tracing::warn!("set aside {} as {}", file, to.display());
            }
            Repair::Remove { file } => {
                let dir = dirs.of(file);
                fs::remove_file(dir.join(file))?;
                fsync_dir(dir)?;
                tracing::warn!("removed {}", dir.join(file).display());
            }
        }
    }
    Ok(())
}

/// Contents of `acceptedEpoch` and `currentEpoch`, where present.
/// An absent file is `None`; one that exists but cannot be read is an
/// error (start-up then refuses rather than guess the epochs).
#[allow(clippy::type_complexity)]
pub fn read_epochs(dirs: &Dirs) -> io::Result<(Option<Vec<u8>>, Option<Vec<u8>>)> {
    let read = |name: &str| match fs::read(dirs.data.join(name)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("reading {name}: {e}"))),
    };
    Ok((read("acceptedEpoch")?, read("currentEpoch")?))
}

/// Replaces a small file atomically and durably: write a temporary,
/// fsync it, rename over, fsync the directory.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    if sync {
        fsync_dir(dir)?;
    }
    Ok(())
}

pub fn write_epochs(dirs: &Dirs, accepted: u32, current: u32, sync: bool) -> io::Result<()> {
    replace_file(
        &dirs.data,
        "acceptedEpoch",
        storage::epoch_file_text(accepted).as_bytes(),
        sync,
    )?;
    replace_file(
        &dirs.data,
        "currentEpoch",
        storage::epoch_file_text(current).as_bytes(),
        sync,
    )
}

/// The lock file that keeps a second process out of a data directory.
pub const LOCK_FILE: &str = "paddock.lock";

/// Takes an exclusive lock on the data directory (released when the
/// returned file is dropped, or when the process dies, even by kill -9).
pub fn lock_data_dir(dirs: &Dirs) -> anyhow::Result<File> {
    let path = dirs.data.join(LOCK_FILE);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(anyhow::anyhow!(
            "the data directory {} is in use by another paddock process (it holds {}): is another server running with this dataDir or myid?",
            dirs.data.display(),
            path.display()
        )),
        Err(fs::TryLockError::Error(e)) => Err(anyhow::anyhow!("locking {}: {e}", path.display())),
    }
}

/// The file whose presence says a repair of lost records is unfinished
/// (see `Recovered::damaged`).
pub const REPAIR_MARK: &str = "repairing";

pub fn repair_mark_present(dirs: &Dirs) -> bool {
    dirs.data.join(REPAIR_MARK).exists()
}

/// Creates (durably) or removes the repair mark; a no-op when it already
/// is as asked.
pub fn set_repair_mark(dirs: &Dirs, present: bool, sync: bool) -> io::Result<()> {
    if present == repair_mark_present(dirs) {
        return Ok(());
    }
    if present {
        replace_file(
            &dirs.data,
            REPAIR_MARK,
            b"durable records were lost; this server does not vote until it has synced\n",
            sync,
        )
    } else {
        fs::remove_file(dirs.data.join(REPAIR_MARK))?;
        if sync {
            fsync_dir(&dirs.data)?;
        }
        Ok(())
    }
}

/// Total bytes of the regular files in `dir` (`dirs`, `conf`).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Which files autopurge removes: all but the `retain` newest snapshots,
/// and every log whose records all precede the oldest kept snapshot (the
/// newest log starting at or before it is kept: it may hold the txns
/// right after it).
pub fn purge_plan(
    snapshots: &[(Zxid, String)],
    logs: &[(Zxid, String)],
    retain: usize,
) -> Vec<String> {
    if snapshots.len() <= retain || retain == 0 {
        return Vec::new();
    }
    let keep_from = snapshots.len() - retain;
    let oldest_kept = snapshots[keep_from].0;
    let mut out: Vec<String> = snapshots[..keep_from]
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    // The last log starting at or before the oldest kept snapshot stays.
    let boundary = logs.iter().rposition(|(z, _)| *z <= oldest_kept);
    if let Some(b) = boundary {
        out.extend(logs[..b].iter().map(|(_, n)| n.clone()));
    }
    out
}

/// Runs autopurge once; returns the removed paths.
pub fn purge(dirs: &Dirs, retain: usize) -> io::Result<Vec<PathBuf>> {
    let snaps = list(&dirs.data, "snapshot")?;
    let logs = list(&dirs.log, "log")?;
    let mut removed = Vec::new();
    for name in purge_plan(&snaps, &logs, retain) {
        let path = dirs.of(&name).join(&name);
        fs::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(kind: &str, zs: &[u64]) -> Vec<(Zxid, String)> {
        zs.iter()
            .map(|&z| (Zxid(z), format!("{kind}.{z:x}")))
            .collect()
    }

    #[test]
    fn purge_keeps_newest_snapshots_and_the_logs_after_them() {
        let snaps = named("snapshot", &[10, 20, 30, 40]);
        let logs = named("log", &[1, 11, 15, 21, 31, 41]);
        let plan = purge_plan(&snaps, &logs, 3);
        // Oldest kept snapshot is 20; log.15 may hold txn 21, so it stays.
        assert_eq!(
            plan,
            vec!["snapshot.a".to_string(), "log.1".into(), "log.b".into()]
        );
        assert!(purge_plan(&snaps, &logs, 4).is_empty());
    }

    #[test]
    fn repairs_truncate_and_set_aside() {
        let d = tempfile::tempdir().expect("tempdir");
        let dirs = Dirs {
            data: d.path().into(),
            log: d.path().into(),
        };
        fs::write(d.path().join("log.1"), b"0123456789").expect("write");
        fs::write(d.path().join("snapshot.5"), b"junk").expect("write");
        apply_repairs(
            &dirs,
            &[
                Repair::TruncateLog {
                    file: "log.1".into(),
                    len: 4,
                },
                Repair::SetAside {
                    file: "snapshot.5".into(),
                },
            ],
        )
        .expect("repairs");
        assert_eq!(fs::read(d.path().join("log.1")).expect("read"), b"0123");
        assert!(d.path().join("snapshot.5.corrupt").exists());
        assert!(list(d.path(), "snapshot").expect("list").is_empty());
    }
}
