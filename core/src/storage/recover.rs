//! Recovery: rebuilding the state from a data dir's files, and the
//! repairs (truncations, files set aside) the shell carries out before
//! serving. No IO: the shell reads the files into a `DiskImage`.

use super::format::{parse_file_name, read_log, read_snapshot, LogStop, LOG_MAGIC, RECORD_HEADER};
use crate::ids::Zxid;
use crate::txn::{ApplyOptions, State, Txn};

/// The files of a data dir, as the shell read them.
#[derive(Debug, Default, Clone)]
pub struct DiskImage {
    /// (file name, bytes) of every `snapshot.*`.
    pub snapshots: Vec<(String, Vec<u8>)>,
    /// (file name, bytes) of every `log.*`.
    pub logs: Vec<(String, Vec<u8>)>,
}

/// A repair recovery decided; the shell performs it before serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Cut the file to `len` bytes (torn or corrupt tail).
    TruncateLog { file: String, len: u64 },
    /// Move a file out of the way (named `<file>.corrupt`): a log after a
    /// truncation point, or an unreadable snapshot.
    SetAside { file: String },
    /// Delete a log file wholly after a ZAB truncation point.
    Remove { file: String },
}

/// What `recover` rebuilt.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Everything logged, applied (as ZooKeeper loads its database).
    pub state: State,
    /// The snapshot the replay started from, and the txns replayed on it:
    /// kept so that a ZAB truncation can rebuild without the disk.
    pub base: State,
    pub tail: Vec<Txn>,
    pub repairs: Vec<Repair>,
    /// Human-readable lines for the log.
    pub notes: Vec<String>,
    /// ZAB epochs (files `acceptedEpoch`, `currentEpoch`); default to the
    /// epoch of the last logged zxid.
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Records that were durable are gone (a corrupt record or snapshot,
    /// a damaged file with good ones after it), or the `repairing` mark
    /// says an earlier repair is unfinished. Such a server may lack
    /// writes it once acknowledged, so it must not count in any quorum
    /// until it has synced with a leader elected without it. The shell
    /// makes the mark durable before carrying out `repairs`.
    pub damaged: bool,
}

impl Recovered {
    pub fn empty() -> Recovered {
        Recovered::default()
    }

    /// Adds what the `repairing` mark file says: present means an earlier
    /// repair has not finished.
    pub fn with_repair_mark(mut self, present: bool) -> Recovered {
        if present {
            self.notes
                .push("the repairing mark is set: an earlier repair is unfinished".into());
        }
        self.damaged |= present;
        self
    }

    /// Reads the contents of the `acceptedEpoch` and `currentEpoch` files
    /// (decimal text, as ZooKeeper writes them), where present.
    pub fn with_epoch_files(
        mut self,
        accepted: Option<&[u8]>,
        current: Option<&[u8]>,
    ) -> Recovered {
        let parse = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        };
        if let Some(e) = accepted.and_then(parse) {
            self.accepted_epoch = self.accepted_epoch.max(e);
        }
        if let Some(e) = current.and_then(parse) {
            self.current_epoch = self.current_epoch.max(e);
        }
        self.accepted_epoch = self.accepted_epoch.max(self.current_epoch);
        self
    }
}

/// The text of an epoch file.
pub fn epoch_file_text(epoch: u32) -> String {
    format!("{epoch}\n")
}

/// Which log files to cut so that nothing after `zxid` remains (ZAB's
/// TRUNC, carried out by the shell on its storage thread).
pub fn plan_truncate(logs: &[(String, Vec<u8>)], zxid: Zxid) -> Vec<Repair> {
    let mut files: Vec<(Zxid, &String, &Vec<u8>)> = logs
        .iter()
        .filter_map(|(n, b)| parse_file_name(n).map(|(_, z)| (z, n, b)))
        .collect();
    files.sort_by_key(|f| f.0);
    let mut out = Vec::new();
    for (first, name, bytes) in files {
        if first > zxid {
            out.push(Repair::Remove { file: name.clone() });
            continue;
        }
        let (txns, _, _) = read_log(bytes);
        if txns.last().is_some_and(|t| t.zxid > zxid) {
            // Re-walk to find the byte offset after the last kept record.
            let mut pos = LOG_MAGIC.len();
            for t in &txns {
                if t.zxid > zxid {
                    break;
                }
                let len =
                    u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                pos += RECORD_HEADER + len;
            }
            out.push(Repair::TruncateLog {
                file: name.clone(),
                len: pos as u64,
            });
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("no usable snapshot and the log does not start at the beginning (first log zxid {first}); refusing to start with data missing")]
    NoUsableBase { first: Zxid },
    #[error("log gap: expected zxid after {after}, found {found}")]
    Gap { after: Zxid, found: Zxid },
}

/// Rebuilds the state from a data dir's files.
pub fn recover(image: &DiskImage, opts: &ApplyOptions) -> Result<Recovered, RecoveryError> {
    let mut out = Recovered::empty();
    let mut snaps: Vec<(Zxid, &String, &Vec<u8>)> = image
        .snapshots
        .iter()
        .filter_map(|(n, b)| parse_file_name(n).map(|(_, z)| (z, n, b)))
        .collect();
    snaps.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut base: Option<State> = None;
    for (z, name, bytes) in snaps {
        match read_snapshot(bytes) {
            Ok(s) if s.last_zxid == z => {
                out.notes.push(format!(
                    "loaded {name}: {} znodes at zxid {z}",
                    s.tree.node_count()
                ));
                base = Some(s);
                break;
            }
            Ok(s) => {
                out.notes.push(format!(
                    "{name}: names zxid {z} but holds {}; set aside",
                    s.last_zxid
                ));
                out.repairs.push(Repair::SetAside { file: name.clone() });
            }
            Err(e) => {
                out.notes
                    .push(format!("{name}: {e}; set aside, trying an older snapshot"));
                out.repairs.push(Repair::SetAside { file: name.clone() });
                // What it held may be in no log any more.
                out.damaged = true;
            }
        }
    }
    let mut logs: Vec<(Zxid, &String, &Vec<u8>)> = image
        .logs
        .iter()
        .filter_map(|(n, b)| parse_file_name(n).map(|(_, z)| (z, n, b)))
        .collect();
    logs.sort_by_key(|l| l.0);
    let had_snapshot = base.is_some();
    let mut state = base.unwrap_or_default();
    out.base = state.clone();
    if !had_snapshot {
        if let Some(first) = logs.first() {
            if first.0 > Zxid(1) && first.0.counter() > 1 {
                return Err(RecoveryError::NoUsableBase { first: first.0 });
            }
        }
    }
    let mut stopped = false;
    let mut replayed = 0u64;
    let firsts: Vec<Zxid> = logs.iter().map(|l| l.0).collect();
    let n_logs = firsts.len();
    for (i, (_, name, bytes)) in logs.into_iter().enumerate() {
        // A file is named by its first zxid, so the next file's name bounds
        // this one: if the next file starts at or before the snapshot's
        // successor, every record here is covered by the snapshot. Such a
        // file is not needed, and damage in it must not stop recovery (nor
        // cost the later, good files).
        if firsts
            .get(i + 1)
            .is_some_and(|next| next.0 <= state.last_zxid.0.saturating_add(1))
            && had_snapshot
        {
            continue;
        }
        if stopped {
            out.notes
                .push(format!("{name}: follows a damaged log; set aside"));
            out.repairs.push(Repair::SetAside { file: name.clone() });
            out.damaged = true;
            continue;
        }
        let (txns, good, stop) = read_log(bytes);
        for t in txns {
            if t.zxid <= state.last_zxid {
                continue;
            }
            if t.zxid.epoch() == state.last_zxid.epoch()
                && t.zxid.0 != state.last_zxid.0 + 1
                && state.last_zxid != Zxid::ZERO
            {
                return Err(RecoveryError::Gap {
                    after: state.last_zxid,
                    found: t.zxid,
                });
            }
            state.apply(&t, opts);
            out.tail.push(t);
            replayed += 1;
        }
        match stop {
            LogStop::End => {}
            LogStop::BadHeader => {
                out.damaged = true;
                out.notes.push(format!("{name}: no log header; set aside"));
                out.repairs.push(Repair::SetAside { file: name.clone() });
                stopped = true;
            }
            LogStop::Torn { offset } | LogStop::Corrupt { offset, .. } => {
                let why = match &stop {
                    LogStop::Corrupt { why, .. } => why.clone(),
                    _ => "torn record".into(),
                };
                // A record cut short at the end of the newest file is a
                // write a crash interrupted: never synced, so never
                // acknowledged. Anything else lost what was durable.
                if matches!(stop, LogStop::Corrupt { .. }) || i + 1 < n_logs {
                    out.damaged = true;
                    out.notes.push(format!(
                        "{name}: durable records lost; this server repairs before it votes again"
                    ));
                }
                out.notes.push(format!(
                    "{name}: {why} at offset {offset}; truncated, dropping {} bytes",
                    bytes.len() - good
                ));
                out.repairs.push(Repair::TruncateLog {
                    file: name.clone(),
                    len: good as u64,
                });
                stopped = true;
            }
        }
    }
    out.notes.push(format!(
        "replayed {replayed} txns; last zxid {}",
        state.last_zxid
    ));
    out.accepted_epoch = state.last_zxid.epoch();
    out.current_epoch = state.last_zxid.epoch();
    out.state = state;
    Ok(out)
}

/// Recovery as a shell runs it: `recover`, plus what the `repairing` mark
/// file says (`mark`: present). Under the mark the files are already
/// untrusted: an earlier repair did not finish, so this server does not
/// count in any quorum until a leader has synced it by snapshot. If they
/// cannot even be read back into a state (a SNAP sync cut short can leave
/// a log that starts after a snapshot that never landed), it starts from
/// the empty tree and sets every file aside; refusing to start would keep
/// a repairable server down for good.
pub fn recover_marked(
    image: &DiskImage,
    opts: &ApplyOptions,
    mark: bool,
) -> Result<Recovered, RecoveryError> {
    match recover(image, opts) {
        Ok(r) => Ok(r.with_repair_mark(mark)),
        Err(e) if mark => {
            let mut out = Recovered::empty().with_repair_mark(true);
            out.notes.push(format!(
                "{e}; the files are an unfinished repair's: set aside, starting empty"
            ));
            for (file, _) in image.snapshots.iter().chain(&image.logs) {
                out.repairs.push(Repair::SetAside { file: file.clone() });
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::proto::{op, Acl, CreateRequest, Request};
    use crate::storage::format::{encode_record, log_file_name, snapshot_file_name, Snapshot};
    use crate::txn::TxnKind;

    fn opts() -> ApplyOptions {
        ApplyOptions::from_config(&crate::Config::standalone(1))
    }

    fn txns(n: u64) -> Vec<Txn> {
        (1..=n)
            .map(|i| Txn {
                zxid: Zxid(i),
                time_ms: 7,
                session: SessionId(0),
                cxid: i as i32,
                kind: TxnKind::Write {
                    request: Request::Create {
                        opcode: op::CREATE,
                        req: CreateRequest {
                            path: format!("/n{i}"),
                            data: vec![i as u8; 10],
                            acl: Acl::open_unsafe(),
                            flags: 0,
                            ttl: None,
                        },
                    },
                    auth: vec![],
                },
            })
            .collect()
    }

    fn log_bytes(ts: &[Txn]) -> Vec<u8> {
        let mut b = LOG_MAGIC.to_vec();
        for t in ts {
            encode_record(t, &mut b);
        }
        b
    }

    #[test]
    fn log_round_trip_and_torn_tail() {
        let ts = txns(5);
        let bytes = log_bytes(&ts);
        let (back, end, stop) = read_log(&bytes);
        assert_eq!((back, end, stop), (ts.clone(), bytes.len(), LogStop::End));
        let cut = &bytes[..bytes.len() - 3];
        let (back, good, stop) = read_log(cut);
        assert_eq!(back.len(), 4);
        assert!(matches!(stop, LogStop::Torn { .. }));
        assert!(good < cut.len());
    }

    #[test]
    fn a_torn_tail_is_no_damage_but_a_corrupt_record_is() {
        let ts = txns(5);
        let bytes = log_bytes(&ts);
        let opts = opts();
        let name = log_file_name(Zxid(1));
        let torn = DiskImage {
            snapshots: vec![],
            logs: vec![(name.clone(), bytes[..bytes.len() - 3].to_vec())],
        };
        let r = recover(&torn, &opts).unwrap();
        assert_eq!(r.state.last_zxid, Zxid(4));
        assert!(!r.damaged, "a torn last record was never acknowledged");
        let mut flipped = bytes.clone();
        let at = bytes.len() - 2;
        flipped[at] ^= 0x40;
        let corrupt = DiskImage {
            snapshots: vec![],
            logs: vec![(name, flipped)],
        };
        let r = recover(&corrupt, &opts).unwrap();
        assert_eq!(r.state.last_zxid, Zxid(4));
        assert!(
            r.damaged,
            "a complete record failing its checksum was durable"
        );
        assert!(Recovered::empty().with_repair_mark(true).damaged);
    }

    #[test]
    fn flipped_byte_is_caught_and_truncated() {
        let ts = txns(5);
        let mut bytes = log_bytes(&ts);
        let n = bytes.len();
        bytes[n - 5] ^= 0x40;
        let image = DiskImage {
            snapshots: vec![],
            logs: vec![(log_file_name(Zxid(1)), bytes)],
        };
        let r = recover(&image, &opts()).unwrap();
        assert_eq!(r.state.last_zxid, Zxid(4));
        assert!(matches!(r.repairs[0], Repair::TruncateLog { .. }));
    }

    #[test]
    fn snapshot_plus_log_and_corrupt_snapshot_fallback() {
        let ts = txns(6);
        let mut state = State::new();
        for t in &ts[..3] {
            state.apply(t, &opts());
        }
        let old = Snapshot::of(&state).encode();
        for t in &ts[3..5] {
            state.apply(t, &opts());
        }
        let mut newer = Snapshot::of(&state).encode();
        let n = newer.len();
        newer[n / 2] ^= 1;
        let image = DiskImage {
            snapshots: vec![
                (snapshot_file_name(Zxid(3)), old),
                (snapshot_file_name(Zxid(5)), newer),
            ],
            logs: vec![(log_file_name(Zxid(1)), log_bytes(&ts))],
        };
        let r = recover(&image, &opts()).unwrap();
        assert_eq!(r.state.last_zxid, Zxid(6));
        assert_eq!(
            r.repairs,
            vec![Repair::SetAside {
                file: snapshot_file_name(Zxid(5))
            }]
        );
        let mut full = State::new();
        for t in &ts {
            full.apply(t, &opts());
        }
        assert_eq!(r.state.tree.digest(), full.tree.digest());
    }

    /// Seed 101 of the simulator: damage in a log file that the snapshot
    /// already covers set aside the later, good log files, losing
    /// committed txns.
    #[test]
    fn damage_in_a_log_covered_by_the_snapshot_costs_nothing() {
        let ts = txns(8);
        let mut state = State::new();
        for t in &ts[..5] {
            state.apply(t, &opts());
        }
        let snap = Snapshot::of(&state).encode();
        let mut old = log_bytes(&ts[..5]);
        let n = old.len();
        old[n / 2] ^= 0x55;
        let image = DiskImage {
            snapshots: vec![(snapshot_file_name(Zxid(5)), snap)],
            logs: vec![
                (log_file_name(Zxid(1)), old),
                (log_file_name(Zxid(6)), log_bytes(&ts[5..])),
            ],
        };
        let r = recover(&image, &opts()).unwrap();
        assert_eq!(
            r.state.last_zxid,
            Zxid(8),
            "the good log after the snapshot is replayed"
        );
        assert!(r.repairs.is_empty(), "{:?}", r.repairs);
    }

    #[test]
    fn under_the_repair_mark_an_unreadable_disk_starts_empty_and_is_set_aside() {
        // A SNAP sync cut short: the log after the snapshot landed, the
        // snapshot did not, and the old logs were already gone.
        let ts = txns(8);
        let image = DiskImage {
            snapshots: vec![],
            logs: vec![(log_file_name(Zxid(0x1_0000_0052)), log_bytes(&ts[5..]))],
        };
        assert!(matches!(
            recover_marked(&image, &opts(), false),
            Err(RecoveryError::NoUsableBase { .. })
        ));
        let r = recover_marked(&image, &opts(), true).expect("starts under the mark");
        assert!(r.damaged, "it must not vote before a snapshot sync");
        assert_eq!(r.state.last_zxid, Zxid::ZERO);
        assert_eq!(
            r.repairs,
            vec![Repair::SetAside {
                file: log_file_name(Zxid(0x1_0000_0052))
            }]
        );
        // A readable disk under the mark recovers as usual, marked damaged.
        let fine = DiskImage {
            snapshots: vec![],
            logs: vec![(log_file_name(Zxid(1)), log_bytes(&ts))],
        };
        let r = recover_marked(&fine, &opts(), true).unwrap();
        assert_eq!((r.state.last_zxid, r.damaged), (Zxid(8), true));
    }

    #[test]
    fn truncation_plan_cuts_at_record_boundary() {
        let ts = txns(6);
        let a = log_bytes(&ts[..3]);
        let b = log_bytes(&ts[3..]);
        let logs = vec![
            (log_file_name(Zxid(1)), a.clone()),
            (log_file_name(Zxid(4)), b),
        ];
        let plan = plan_truncate(&logs, Zxid(2));
        assert_eq!(plan.len(), 2);
        let Repair::TruncateLog { len, .. } = &plan[0] else {
            panic!("{plan:?}")
        };
        let (kept, _, stop) = read_log(&a[..*len as usize]);
        assert_eq!((kept.len(), stop), (2, LogStop::End));
        assert_eq!(
            plan[1],
            Repair::Remove {
                file: log_file_name(Zxid(4))
            }
        );
    }

    #[test]
    fn epoch_files_parse() {
        let r = Recovered::empty().with_epoch_files(Some(b"7\n"), Some(b"6"));
        assert_eq!((r.accepted_epoch, r.current_epoch), (7, 6));
    }

    #[test]
    fn missing_base_is_refused() {
        let ts = txns(6);
        let image = DiskImage {
            snapshots: vec![],
            logs: vec![(log_file_name(Zxid(4)), log_bytes(&ts[3..]))],
        };
        assert!(recover(&image, &opts()).is_err());
    }
}
