//! Rebuilding Apache ZooKeeper's state from its `version-2/` files, as its
//! own restart (`FileTxnSnapLog.restore`) does, but refusing where it
//! would guess:
//!
//! - the newest snapshot that decodes completely and passes its Adler-32
//!   seals is the base; a damaged one is passed over for an older one,
//!   with a note (ZooKeeper does the same);
//! - every log from the one that straddles the snapshot's zxid (the
//!   newest starting at or before it) onwards is replayed, skipping what
//!   the snapshot covers; txns are applied as `zk::txn::apply` does,
//!   idempotently over the fuzzy snapshot;
//! - a torn record ends its file (the next file may go on from there, as
//!   after a crash and restart); a complete record failing its checksum
//!   is refused, as ZooKeeper's restart refuses it;
//! - a gap (a zxid missing inside an epoch, a new epoch not starting at
//!   counter 1, logs starting after the snapshot's successor) is refused:
//!   ZooKeeper would start without those txns;
//! - ZooKeeper's tree digest is checked where ZooKeeper checks it: at the
//!   snapshot's digest zxid, then after every txn that carries one;
//! - ephemerals of sessions that are gone are deleted, as ZooKeeper's
//!   `loadData` does after a restart.

use super::snapshot::{self, ZkSnapshot};
use super::tree::ZkTree;
use super::txn::{apply, ZkEntry};
use super::txnlog::{read_log, LogEnd};
use super::{parse_zk_name, ZkFile};

/// Txns between two progress reports.
pub const PROGRESS_EVERY: u64 = 100_000;

/// What an import found and did, for its summary.
#[derive(Debug, Default)]
pub struct Imported {
    pub tree: ZkTree,
    pub snapshot: String,
    pub snapshot_zxid: i64,
    pub snapshot_nodes: usize,
    pub logs_read: Vec<String>,
    pub txns_replayed: u64,
    /// Txns that changed nothing (already in the fuzzy snapshot).
    pub txns_skipped: u64,
    pub digests_checked: u64,
    /// Sessions that owned ephemerals but were gone: deleted.
    pub dead_sessions: usize,
    /// Human-readable lines: passed-over snapshots, torn tails.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("no ZooKeeper snapshot found")]
    NoSnapshot,
    #[error("no valid snapshot: {0}")]
    NoValidSnapshot(String),
    #[error("{file}: {why} at offset {offset}; ZooKeeper's restart refuses this log too. Restore the file from a healthy member or a backup")]
    Corrupt {
        file: String,
        offset: usize,
        why: String,
    },
    #[error("{file}: {why}")]
    BadLog { file: String, why: String },
    #[error("txns are missing: after zxid {after:#x} the next is {found:#x} (in {file}); a log file is missing or damaged")]
    Gap {
        after: i64,
        found: i64,
        file: String,
    },
    #[error(
        "ZooKeeper's digest at zxid {zxid:#x} is {want:#x} but the imported tree gives {got:#x}"
    )]
    Digest { zxid: i64, want: u64, got: u64 },
    #[error("reading {0}")]
    Read(String),
    #[error("the imported tree is inconsistent: {0}")]
    Tree(String),
}

/// Progress, reported every `PROGRESS_EVERY` txns and after the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub znodes: usize,
    pub txns: u64,
}

fn next_follows(last: i64, next: i64) -> bool {
    let (le, ne) = (last >> 32, next >> 32);
    if ne == le {
        next == last + 1
    } else {
        ne > le && next & 0xffff_ffff == 1
    }
}

/// Loads a file's bytes by name (the shell's IO).
pub type Load<'a> = dyn FnMut(&str) -> Result<Vec<u8>, String> + 'a;

/// Chooses the base snapshot: the newest that decodes and seals.
fn base_snapshot(
    snapshots: &[String],
    load: &mut Load,
    notes: &mut Vec<String>,
) -> Result<(String, i64, ZkSnapshot), ImportError> {
    let mut named: Vec<(i64, &String, super::Compression)> = snapshots
        .iter()
        .filter_map(|n| match parse_zk_name(n) {
            Some(ZkFile::Snapshot { zxid, compression }) => Some((zxid as i64, n, compression)),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Err(ImportError::NoSnapshot);
    }
    named.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut why = Vec::new();
    for (zxid, name, c) in named {
        let s = match load(name) {
            Ok(bytes) => snapshot::decode(&bytes, c),
            Err(e) => return Err(ImportError::Read(format!("{name}: {e}"))),
        };
        match &s.damage {
            None => return Ok((name.clone(), zxid, s)),
            Some(d) => {
                let line = format!(
                    "{name}: {} at offset {}; passed over for an older snapshot",
                    d.why, d.offset
                );
                notes.push(line.clone());
                why.push(line);
            }
        }
    }
    Err(ImportError::NoValidSnapshot(why.join("; ")))
}

/// Imports the files of a ZooKeeper data directory (`snapshots` and
/// `logs` by file name). `progress` is called as the work goes on.
pub fn import(
    snapshots: &[String],
    logs: &[String],
    load: &mut Load,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let (name, snap_zxid, snap) = base_snapshot(snapshots, load, &mut out.notes)?;
    out.snapshot = name;
    out.snapshot_zxid = snap_zxid;
    out.snapshot_nodes = snap.tree.node_count();
    let mut tree = snap.tree;
    tree.last_zxid = snap_zxid;
    progress(Progress {
        znodes: tree.node_count(),
        txns: 0,
    });
    // ZooKeeper ignores a digest older than the snapshot's zxid.
    let mut pending_digest = snap.digest.filter(|d| d.zxid >= snap_zxid);
    // The snapshot ZooKeeper writes at zxid 0 (before it serves) is not
    // fuzzy, so every digest after it can be checked.
    let mut digests_on = (snap.digest.is_some() && pending_digest.is_none()) || snap_zxid == 0;
    // The digest a snapshot records is ZooKeeper's own word on a fuzzy
    // snapshot: ZooKeeper's restart logs a mismatch there ("Digests are not
    // matching") and goes on, and so does the import, with a note. The txn
    // digests after it are then not checked either, since they build on
    // the same snapshot; the node-for-node comparison is the real check.
    let check_pending = |tree: &ZkTree,
                         pending: &mut Option<snapshot::ZxidDigest>,
                         on: &mut bool,
                         notes: &mut Vec<String>| {
        if let Some(d) = *pending {
            if tree.last_zxid == d.zxid {
                *pending = None;
                if tree.digest() == d.digest {
                    *on = true;
                } else {
                    notes.push(format!(
                        "the snapshot's digest at zxid {:#x} is {:#x} but its tree gives {:#x}; \
                         ZooKeeper's own restart reports the same mismatch and goes on; \
                         txn digests after it are not checked",
                        d.zxid,
                        d.digest,
                        tree.digest()
                    ));
                }
            }
        }
    };
    check_pending(&tree, &mut pending_digest, &mut digests_on, &mut out.notes);

    let mut named: Vec<(i64, &String)> = logs
        .iter()
        .filter_map(|n| match parse_zk_name(n) {
            Some(ZkFile::Log { first }) => Some((first as i64, n)),
            _ => None,
        })
        .collect();
    named.sort_by_key(|l| l.0);
    let start = named.iter().rposition(|l| l.0 <= snap_zxid).unwrap_or(0);
    if let Some(first) = named.get(start) {
        if first.0 > snap_zxid + 1 && !next_follows(snap_zxid, first.0) {
            return Err(ImportError::Gap {
                after: snap_zxid,
                found: first.0,
                file: first.1.clone(),
            });
        }
    }
    for (_, name) in &named[start.min(named.len())..] {
        let bytes = load(name).map_err(|e| ImportError::Read(format!("{name}: {e}")))?;
        let log = read_log(&bytes);
        out.logs_read.push((*name).clone());
        for (offset, e) in &log.entries {
            if e.hdr.zxid <= tree.last_zxid {
                continue;
            }
            if !next_follows(tree.last_zxid, e.hdr.zxid) {
                return Err(ImportError::Gap {
                    after: tree.last_zxid,
                    found: e.hdr.zxid,
                    file: format!("{name} at offset {offset}"),
                });
            }
            replay_one(&mut tree, e, digests_on, &mut out)?;
            check_pending(&tree, &mut pending_digest, &mut digests_on, &mut out.notes);
            if out.txns_replayed % PROGRESS_EVERY == 0 {
                progress(Progress {
                    znodes: tree.node_count(),
                    txns: out.txns_replayed,
                });
            }
        }
        match log.end {
            LogEnd::Clean => {}
            LogEnd::Torn { offset } => out.notes.push(format!(
                "{name}: the record at offset {offset} is torn (a write cut short by a crash); \
                 reading stops there, as ZooKeeper's does ({} bytes not used)",
                bytes.len() - offset
            )),
            LogEnd::Corrupt { offset, why } => {
                return Err(ImportError::Corrupt {
                    file: (*name).clone(),
                    offset,
                    why,
                })
            }
            LogEnd::BadHeader { why } => {
                if bytes.iter().all(|&b| b == 0) {
                    out.notes.push(format!(
                        "{name}: empty (created just before a crash); skipped"
                    ));
                } else {
                    return Err(ImportError::BadLog {
                        file: (*name).clone(),
                        why,
                    });
                }
            }
        }
    }
    if let Some(d) = pending_digest {
        out.notes.push(format!(
            "the snapshot's digest is for zxid {:#x}, beyond the last txn {:#x}: not checked",
            d.zxid, tree.last_zxid
        ));
    }
    let dead = tree.dead_sessions();
    out.dead_sessions = dead.len();
    for s in dead {
        let z = tree.last_zxid;
        tree.kill_session(s, z, None);
        out.notes.push(format!(
            "session {s:#x} owned ephemerals but is gone: they are deleted, as ZooKeeper's restart does"
        ));
    }
    progress(Progress {
        znodes: tree.node_count(),
        txns: out.txns_replayed,
    });
    out.tree = tree;
    Ok(out)
}

fn replay_one(
    tree: &mut ZkTree,
    e: &ZkEntry,
    digests_on: bool,
    out: &mut Imported,
) -> Result<(), ImportError> {
    if apply(tree, e) {
        out.txns_skipped += 1;
    }
    out.txns_replayed += 1;
    if let (true, Some((_, want))) = (digests_on, e.digest) {
        out.digests_checked += 1;
        if tree.digest() != want {
            return Err(ImportError::Digest {
                zxid: e.hdr.zxid,
                want,
                got: tree.digest(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::snapshot::tests::stream;
    use crate::zk::txnlog::tests::log_file;

    fn run(snaps: &[(&str, Vec<u8>)], logs: &[(&str, Vec<u8>)]) -> Result<Imported, ImportError> {
        let files: std::collections::BTreeMap<String, Vec<u8>> = snaps
            .iter()
            .chain(logs)
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect();
        let s: Vec<String> = snaps.iter().map(|(n, _)| n.to_string()).collect();
        let l: Vec<String> = logs.iter().map(|(n, _)| n.to_string()).collect();
        let mut load = |n: &str| files.get(n).cloned().ok_or_else(|| "missing".to_string());
        import(&s, &l, &mut load, &mut |_| {})
    }

    /// A snapshot holding "/" and "/a" (its name gives its zxid).
    fn snap() -> Vec<u8> {
        stream(&[("", b"", 0), ("/a", b"x", 1)], None)
    }

    #[test]
    fn replays_from_the_log_that_straddles_the_snapshot() {
        // Snapshot at 2; log.1 holds 1..=4, log.5 holds 5..=6.
        let r = run(
            &[("snapshot.2", snap())],
            &[
                ("log.1", log_file(&[1, 2, 3, 4], 64)),
                ("log.5", log_file(&[5, 6], 0)),
            ],
        )
        .unwrap();
        assert_eq!(r.tree.last_zxid, 6);
        assert_eq!(r.txns_replayed, 4);
        assert_eq!(r.logs_read, vec!["log.1".to_string(), "log.5".into()]);
        assert_eq!(r.tree.get("/a").unwrap().stat.version, 6);
    }

    #[test]
    fn a_missing_log_in_the_middle_is_a_gap() {
        let r = run(
            &[("snapshot.2", snap())],
            &[
                ("log.1", log_file(&[1, 2, 3], 0)),
                ("log.6", log_file(&[6, 7], 0)),
            ],
        );
        assert!(
            matches!(
                r,
                Err(ImportError::Gap {
                    after: 3,
                    found: 6,
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn a_flipped_byte_is_refused_and_a_torn_tail_is_noted() {
        let mut bad = log_file(&[1, 2, 3, 4], 0);
        let n = bad.len();
        bad[n - 30] ^= 0x40;
        let r = run(&[("snapshot.2", snap())], &[("log.1", bad)]);
        assert!(matches!(r, Err(ImportError::Corrupt { .. })), "{r:?}");
        let good = log_file(&[1, 2, 3, 4], 0);
        let r = run(
            &[("snapshot.2", snap())],
            &[("log.1", good[..good.len() - 5].to_vec())],
        )
        .unwrap();
        assert_eq!(r.tree.last_zxid, 3);
        assert!(r.notes.iter().any(|n| n.contains("torn")), "{:?}", r.notes);
    }

    #[test]
    fn a_truncated_snapshot_falls_back_to_an_older_one() {
        let newer = snap();
        let r = run(
            &[
                ("snapshot.0", snap()),
                ("snapshot.4", newer[..newer.len() - 7].to_vec()),
            ],
            &[("log.1", log_file(&[1, 2, 3, 4, 5], 0))],
        )
        .unwrap();
        assert_eq!(r.snapshot, "snapshot.0");
        assert_eq!(r.tree.last_zxid, 5);
        assert!(
            r.notes.iter().any(|n| n.contains("snapshot.4")),
            "{:?}",
            r.notes
        );
        assert_eq!(run(&[], &[]).unwrap_err(), ImportError::NoSnapshot);
    }

    #[test]
    fn epochs_follow_at_counter_one() {
        assert!(next_follows(5, 6));
        assert!(next_follows(0x1_0000_0007, 0x2_0000_0001));
        assert!(!next_follows(0x1_0000_0007, 0x2_0000_0002));
        assert!(!next_follows(5, 7));
    }
}
