//! A slow disk for real `paddock` processes: an `LD_PRELOAD` shim
//! (`fsync_delay.c`, compiled with `cc` into the run's temp dir) that
//! sleeps in `fsync` and `fdatasync` before calling the real ones.
//!
//! `paddock` is dynamically linked against libc and imports `fsync` and
//! `fdatasync` from it (std's `sync_all` and `sync_data`); it calls no
//! `sync_file_range`, `sync` or `syncfs`, so those two are every durability
//! point of the server. The delay is read on each call from a file per
//! server ([`Shim::env`]), so a test slows and restores one server's disk
//! while it runs.
//!
//! What it shows, and what not: the delay is on the call, so a server that
//! waits for its fsync waits for the delay. The kernel's writeback is not
//! delayed and kill -9 keeps the page cache, so unsynced data is never
//! lost here; losing it is the simulator's job.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The shim's source, compiled at run time.
const SOURCE: &str = include_str!("fsync_delay.c");

/// Environment variables the shim reads (see `fsync_delay.c`).
pub const ENV_DELAY_FILE: &str = "PADDOCK_CHAOS_FSYNC_DELAY_FILE";
pub const ENV_COUNT_FILE: &str = "PADDOCK_CHAOS_FSYNC_COUNT_FILE";
pub const ENV_FAIL_FILE: &str = "PADDOCK_CHAOS_FSYNC_FAIL_FILE";

/// The longest delay the shim honours (`DELAY_MS_MAX` in the C file).
pub const DELAY_MAX: Duration = Duration::from_secs(600);

/// The compiled shim.
#[derive(Clone, Debug)]
pub struct Shim {
    pub library: PathBuf,
}

impl Shim {
    /// Compiles the shim into `dir` with the system C compiler (`$CC`,
    /// else `cc`).
    pub fn build(dir: &Path) -> Result<Shim> {
        let src = dir.join("fsync_delay.c");
        let library = dir.join("libfsync_delay.so");
        std::fs::write(&src, SOURCE).context("writing the shim's source")?;
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
            .arg(&library)
            .arg(&src)
            .arg("-ldl")
            .output()
            .with_context(|| format!("running {cc} to build the fsync shim"))?;
        if !out.status.success() {
            bail!(
                "{cc} could not build the fsync shim: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Shim { library })
    }

    /// The environment that loads the shim into a server whose control
    /// files live in `dir`.
    pub fn env(&self, dir: &Path) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            (ENV_DELAY_FILE.into(), delay_file(dir).display().to_string()),
            (ENV_COUNT_FILE.into(), count_file(dir).display().to_string()),
            (ENV_FAIL_FILE.into(), fail_file(dir).display().to_string()),
        ]
    }
}

/// The file holding a server's current fsync delay in ms (absent: none).
pub fn delay_file(dir: &Path) -> PathBuf {
    dir.join("fsync-delay-ms")
}

/// While it exists, every fsync of the server fails (see [`set_failure`]).
pub fn fail_file(dir: &Path) -> PathBuf {
    dir.join("fsync-fail")
}

/// How the shim's fsync fails, while switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncFailure {
    Eio,
    NoSpace,
}

/// Makes every fsync/fdatasync of the server whose control files live in
/// `dir` fail (Some) or succeed again (None). Atomic, as `set_delay`.
pub fn set_failure(dir: &Path, failure: Option<FsyncFailure>) -> Result<()> {
    let path = fail_file(dir);
    match failure {
        Some(f) => {
            let tmp = dir.join("fsync-fail.tmp");
            let word = match f {
                FsyncFailure::Eio => "eio\n",
                FsyncFailure::NoSpace => "enospc\n",
            };
            std::fs::write(&tmp, word)?;
            std::fs::rename(&tmp, &path)?;
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// One byte per delayed fsync of a server; created when the shim loads.
pub fn count_file(dir: &Path) -> PathBuf {
    dir.join("fsync-delayed")
}

/// Sets (Some) or clears (None) the delay of the server whose control
/// files live in `dir`. Atomic: the shim reads the old or the new value,
/// never half a number.
pub fn set_delay(dir: &Path, delay: Option<Duration>) -> Result<()> {
    let path = delay_file(dir);
    match delay {
        Some(d) => {
            assert!(
                d <= DELAY_MAX && !d.is_zero(),
                "fsync delay {d:?} outside (0, {DELAY_MAX:?}]"
            );
            let tmp = dir.join("fsync-delay-ms.tmp");
            std::fs::write(&tmp, format!("{}\n", d.as_millis()))?;
            std::fs::rename(&tmp, &path)?;
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// How many fsyncs the shim has delayed in this server (all its starts),
/// or None when the shim never loaded there.
pub fn delayed_fsyncs(dir: &Path) -> Option<u64> {
    std::fs::metadata(count_file(dir)).ok().map(|m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the shim builds, loads into a process, delays its fsync by the
    // file's value only while the file exists, and counts what it delayed.
    #[test]
    fn the_shim_delays_fsync_only_while_switched_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = Shim::build(dir.path()).expect("shim");
        let probe = dir.path().join("probe");
        let run = |delay: Option<Duration>| {
            set_delay(dir.path(), delay).expect("set delay");
            // dd's conv=fsync calls fsync through libc, as paddock does.
            let st = Command::new("dd")
                .args(["if=/dev/zero", "bs=1", "count=1", "conv=fsync"])
                .arg(format!("of={}", probe.display()))
                .envs(shim.env(dir.path()))
                .stderr(std::process::Stdio::null())
                .status()
                .expect("dd");
            assert!(st.success());
            delayed_fsyncs(dir.path()).expect("the shim loaded")
        };
        assert_eq!(run(None), 0, "no file, no delay");
        let after_slow = run(Some(Duration::from_millis(1)));
        assert!(after_slow >= 1, "dd's fsync was delayed: {after_slow}");
        assert_eq!(run(None), after_slow, "switched off again");
    }

    // Goal: switched on, the shim makes fsync fail with the asked errno
    // (dd reports it and fails); switched off, fsync works again.
    #[test]
    fn the_shim_fails_fsync_only_while_switched_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = Shim::build(dir.path()).expect("shim");
        let probe = dir.path().join("probe");
        let run = |failure: Option<FsyncFailure>| {
            set_failure(dir.path(), failure).expect("set failure");
            let out = Command::new("dd")
                .args(["if=/dev/zero", "bs=1", "count=1", "conv=fsync"])
                .arg(format!("of={}", probe.display()))
                .envs(shim.env(dir.path()))
                .output()
                .expect("dd");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        assert!(run(None).0, "no file, no failure");
        let (ok, err) = run(Some(FsyncFailure::Eio));
        assert!(!ok && err.contains("Input/output error"), "{err}");
        let (ok, err) = run(Some(FsyncFailure::NoSpace));
        assert!(!ok && err.contains("No space left"), "{err}");
        assert!(run(None).0, "switched off again");
    }
}
