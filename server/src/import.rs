//! `paddock import ZOO_CFG`: reads Apache ZooKeeper's files under that
//! zoo.cfg's dataDir and dataLogDir (`version-2/`), leaves them as they
//! are, and writes Paddock's state (one snapshot at ZooKeeper's last zxid,
//! and the epoch files) into the same dataDir, so that `paddock ZOO_CFG`
//! then serves the same tree, sessions and zxids.
//!
//! The rebuilding itself is the core's (`paddock_core::zk::import`); this
//! file does the IO: reading the files, the progress and summary lines,
//! and writing the result so that nothing half-done is ever left: the
//! snapshot is written to a temporary name, fsynced, and renamed into
//! place last, after the epoch files.

use crate::config::ServerConfig;
use crate::disk;
use anyhow::{bail, Context, Result};
use paddock_core::storage::{snapshot_file_name, Snapshot};
use paddock_core::zk::import::{import, Progress};
use paddock_core::zk::{parse_zk_name, ZkFile};
use paddock_core::Zxid;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Names of `dir/version-2`'s files of one kind (snapshots or logs).
fn zk_names(dir: &Path, snapshots: bool) -> Result<Vec<String>> {
    let v2 = dir.join("version-2");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&v2) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", v2.display())),
    };
    for e in rd {
        let name = e?.file_name().to_string_lossy().into_owned();
        let keep = match parse_zk_name(&name) {
            Some(ZkFile::Snapshot { .. }) => snapshots,
            Some(ZkFile::Log { .. }) => !snapshots,
            None => false,
        };
        if keep {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn read_epoch(path: &Path) -> Result<Option<u32>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.trim().parse::<u32>().with_context(|| {
            format!("{} does not hold an epoch: {t:?}", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// Runs the import command.
pub fn run(cfg_path: &Path) -> Result<()> {
    let started = Instant::now();
    let cfg = ServerConfig::from_file(cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let dirs = disk::Dirs {
        data: cfg.data_dir.clone(),
        log: cfg.log_dir().to_path_buf(),
    };
    if !dirs.data.join("version-2").is_dir() && !dirs.log.join("version-2").is_dir() {
        bail!(
            "no ZooKeeper state to import: neither {} nor {} exists",
            dirs.data.join("version-2").display(),
            dirs.log.join("version-2").display()
        );
    }
    if crate::failclosed::has_paddock_state(&dirs.data, &dirs.log) {
        bail!(
            "{} already holds paddock state: refusing to import over it. Move paddock's \
             snapshot.* and log.* files away to import again.",
            dirs.data.display()
        );
    }
    // No paddock server may start on the directory while this runs.
    let _lock = disk::lock_data_dir(&dirs)?;
    let snapshots = zk_names(&dirs.data, true)?;
    let logs = zk_names(&dirs.log, false)?;
    let v2 = dirs.data.join("version-2");
    let log_v2 = dirs.log.join("version-2");
    let accepted = read_epoch(&v2.join("acceptedEpoch"))?;
    let current = read_epoch(&v2.join("currentEpoch"))?;
    println!(
        "import: {} snapshots in {} and {} logs in {}",
        snapshots.len(),
        v2.display(),
        logs.len(),
        log_v2.display()
    );
    // Files are read one at a time, as the import needs them: ZooKeeper
    // preallocates 64 MiB per log, and only the newest valid snapshot and
    // the logs after it are read at all.
    let mut load = |name: &str| {
        let dir = if name.starts_with("log.") {
            &log_v2
        } else {
            &v2
        };
        std::fs::read(dir.join(name)).map_err(|e| e.to_string())
    };
    let read_done = Instant::now();
    let mut last_report = Instant::now();
    let mut report = |p: Progress| {
        let secs = read_done.elapsed().as_secs_f64().max(1e-6);
        if p.txns == 0 || last_report.elapsed().as_secs() >= 1 {
            println!(
                "import: {} znodes, {} txns replayed ({:.0} znodes/s, {:.0} txns/s)",
                p.znodes,
                p.txns,
                p.znodes as f64 / secs,
                p.txns as f64 / secs
            );
            last_report = Instant::now();
        }
    };
    let imported = import(&snapshots, &logs, &mut load, &mut report)
        .map_err(|e| anyhow::anyhow!("import refused, nothing written: {e}"))?;
    for n in &imported.notes {
        println!("import: note: {n}");
    }
    let zk_digest = imported.tree.digest();
    let sessions = imported.tree.sessions.len();
    let state = imported
        .tree
        .into_state()
        .map_err(|e| anyhow::anyhow!("import refused, nothing written: {e}"))?;
    let last = state.last_zxid;
    // ZooKeeper's epochs as they were (a new epoch may have begun with no
    // txn yet), never below the last zxid's.
    let current = current.unwrap_or(0).max(last.epoch());
    let accepted = accepted.unwrap_or(0).max(current);
    let epoch = current;
    let (znodes, digest) = (state.tree.node_count(), state.tree.digest());
    let bytes = Snapshot::of(&state).encode();
    // One tree at a time: the read-back check below builds another.
    drop(state);
    let file = write_state(&dirs.data, bytes, last, digest, accepted, current)?;
    println!(
        "import: done in {:.1} s: {} znodes, {} sessions, {} txns replayed ({} already in the \
         snapshot {}), {} digests checked, last zxid {last}, epoch {epoch}, ZooKeeper digest \
         {zk_digest:#x}, paddock digest {:#x}; wrote {}{}",
        started.elapsed().as_secs_f64(),
        znodes,
        sessions,
        imported.txns_replayed,
        imported.txns_skipped,
        imported.snapshot,
        imported.digests_checked,
        digest,
        file.display(),
        peak_rss_mib()
            .map(|m| format!("; peak memory {m} MiB"))
            .unwrap_or_default()
    );
    println!(
        "import: ZooKeeper's files are unchanged; start with `paddock {}`",
        cfg_path.display()
    );
    Ok(())
}

/// Checks that the snapshot's bytes read back to the same zxid and
/// digest, then writes the epoch files, then the snapshot under a
/// temporary name, fsynced, renamed into place: the rename is the commit
/// point.
fn write_state(
    data: &Path,
    bytes: Vec<u8>,
    zxid: Zxid,
    digest: u64,
    accepted: u32,
    current: u32,
) -> Result<PathBuf> {
    let check = paddock_core::storage::read_snapshot(&bytes)
        .map_err(|e| anyhow::anyhow!("the snapshot to write does not read back: {e}"))?;
    if (check.last_zxid, check.tree.digest()) != (zxid, digest) {
        bail!(
            "the snapshot to write reads back at zxid {} with digest {:#x}, not {zxid} and {digest:#x}",
            check.last_zxid,
            check.tree.digest()
        );
    }
    drop(check);
    let dirs = disk::Dirs {
        data: data.to_path_buf(),
        log: data.to_path_buf(),
    };
    disk::write_epochs(&dirs, accepted, current, true).context("writing the epoch files")?;
    let name = snapshot_file_name(zxid);
    disk::replace_file(data, &name, &bytes, true)
        .with_context(|| format!("writing {}", data.join(&name).display()))?;
    Ok(data.join(name))
}
