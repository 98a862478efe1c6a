//! Client histories and the checker.
//!
//! Every operation is recorded with its invocation and completion times
//! (microseconds since the run began) and its outcome: a reply (zxid and
//! error code, plus what a read returned) or `Unknown` when the connection
//! was lost before the reply. Every written value is unique, so a value
//! read names the write that produced it.
//!
//! The checks (each can fail; `tests` feeds doctored histories):
//! 1. acknowledged writes have distinct zxids;
//! 2. writes are linearizable: ordering every committed write by zxid
//!    respects real time (a write that completed before another was
//!    invoked has the smaller zxid), including writes whose reply was lost
//!    but whose value a read showed (their zxid is the read's mzxid);
//! 3. a read at reply zxid `z` returns the value of the latest committed
//!    write to that znode with zxid <= z: its mzxid is <= z, the value
//!    belongs to a write to that znode invoked before the read completed,
//!    whose zxid (if acknowledged) equals the mzxid, and no acknowledged
//!    write to it has a zxid in (mzxid, z]; a missing node at `z` means
//!    no acknowledged create of it has zxid <= z;
//! 4. a value no one wrote, or one whose write failed, is never read;
//! 5. a session's reply zxids never go back (per session, in order);
//! 6. a child listed that no one tried to create is an invented write;
//! 7. an ephemeral read after its session ended (closed, or abandoned and
//!    past its timeout) is gone.
//!
//! Losing an acknowledged write shows up as 3 on the final reads, which
//! read every znode on every server after the faults healed.

use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// setData(path, value, -1).
    Set { path: String, value: Vec<u8> },
    /// create(path, value), persistent or ephemeral.
    Create {
        path: String,
        value: Vec<u8>,
        ephemeral: bool,
    },
    /// getData(path).
    Get { path: String },
    /// getChildren(path).
    List { path: String },
    CloseSession,
}

impl OpKind {
    pub fn is_write(&self) -> bool {
        matches!(self, OpKind::Set { .. } | OpKind::Create { .. })
    }
    pub fn path(&self) -> Option<&str> {
        match self {
            OpKind::Set { path, .. }
            | OpKind::Create { path, .. }
            | OpKind::Get { path }
            | OpKind::List { path } => Some(path),
            OpKind::CloseSession => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    Data {
        value: Vec<u8>,
        mzxid: i64,
        czxid: i64,
        ephemeral_owner: i64,
    },
    Children(Vec<String>),
    NoNode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reply: `err` 0 or a ZooKeeper error code.
    Reply {
        zxid: i64,
        err: i32,
        read: Option<ReadResult>,
    },
    /// Connection lost before a reply: may or may not have happened.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub session: i64,
    pub server: usize,
    pub kind: OpKind,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn acked_write(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Reply { zxid, err: 0, .. } if self.kind.is_write() => Some(zxid),
            _ => None,
        }
    }
}

/// A session that ended, and when (us since start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    pub session: i64,
    pub at_us: u64,
    /// The zxid of the acknowledged closeSession (its ephemerals are gone
    /// from any read at or after it), or None when abandoned (gone after
    /// its timeout; checked on the verifier's final reads, which run after
    /// every server converged).
    pub closed_at_zxid: Option<i64>,
    pub timeout_ms: i32,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
    pub session_ends: Vec<SessionEnd>,
}

/// The client number of the final reads after healing.
pub const VERIFIER: usize = usize::MAX;

/// Slack after a session's timeout before its ephemerals must be gone:
/// the leader expires sessions in tick buckets, then the delete commits.
pub const EXPIRY_SLACK_US: u64 = 3_000_000;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ops: usize,
    pub acked_writes: usize,
    pub unknown: usize,
    pub reads: usize,
    pub errors: usize,
}

impl History {
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            ops: self.ops.len(),
            ..Stats::default()
        };
        for op in &self.ops {
            match &op.outcome {
                Outcome::Unknown => s.unknown += 1,
                Outcome::Reply { err, .. } => {
                    if *err != 0 {
                        s.errors += 1;
                    }
                }
            }
            if op.acked_write().is_some() {
                s.acked_writes += 1;
            }
            if matches!(op.kind, OpKind::Get { .. } | OpKind::List { .. }) {
                s.reads += 1;
            }
        }
        s
    }
}

/// Checks every rule in the module header; returns the violations found
/// (empty: the history is consistent).
pub fn check(h: &History) -> Vec<String> {
    let mut bad = Vec::new();
    let ops = &h.ops;

    // Writes by value (values are unique per write).
    let mut by_value: HashMap<&[u8], usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let OpKind::Set { value, .. } | OpKind::Create { value, .. } = &op.kind {
            if let Some(prev) = by_value.insert(value.as_slice(), i) {
                bad.push(format!(
                    "history: value {:?} written twice (ops {prev} and {i})",
                    String::from_utf8_lossy(value)
                ));
            }
        }
    }

    // 1. Distinct zxids of acknowledged writes.
    let mut by_zxid: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(z) = op.acked_write() {
            if let Some(prev) = by_zxid.insert(z, i) {
                bad.push(format!(
                    "two acknowledged writes share zxid {z:#x}: {:?} and {:?}",
                    ops[prev], op
                ));
            }
        }
    }

    // Acked writes per path, by zxid.
    let mut writes_of: HashMap<&str, BTreeMap<i64, usize>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(z) = op.acked_write() {
            writes_of
                .entry(op.kind.path().expect("writes have paths"))
                .or_default()
                .insert(z, i);
        }
    }
    let creates: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match &op.kind {
            OpKind::Create { path, .. } => Some((path.as_str(), i)),
            _ => None,
        })
        .collect();

    // 3, 4. Reads; attribute zxids to writes whose reply was lost.
    let mut attributed: HashMap<usize, i64> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let OpKind::Get { path } = &op.kind else {
            continue;
        };
        let Outcome::Reply {
            zxid: z,
            err,
            read: Some(read),
        } = &op.outcome
        else {
            continue;
        };
        let _ = err;
        let acked = writes_of.get(path.as_str());
        match read {
            ReadResult::Data {
                value, mzxid, czxid, ..
            } => {
                if mzxid > z {
                    bad.push(format!(
                        "read {i} of {path} at zxid {z:#x} returned a version from the future (mzxid {mzxid:#x})"
                    ));
                }
                let Some(&w) = by_value.get(value.as_slice()) else {
                    bad.push(format!(
                        "read {i} of {path} returned {:?}, which no client ever wrote",
                        String::from_utf8_lossy(value)
                    ));
                    continue;
                };
                let wop = &ops[w];
                if wop.kind.path() != Some(path.as_str()) {
                    bad.push(format!(
                        "read {i} of {path} returned the value written to {:?}",
                        wop.kind.path()
                    ));
                    continue;
                }
                if wop.invoke_us > op.complete_us {
                    bad.push(format!(
                        "read {i} of {path} returned the value of write {w}, invoked after the read completed"
                    ));
                }
                // The write that produced the value committed at mzxid
                // (a create's value at czxid == mzxid until a set).
                match &wop.outcome {
                    Outcome::Reply { zxid, err: 0, .. } => {
                        if zxid != mzxid {
                            bad.push(format!(
                                "read {i} of {path}: value of write {w} (zxid {zxid:#x}) but mzxid {mzxid:#x}"
                            ));
                        }
                    }
                    Outcome::Reply { err, .. } => {
                        bad.push(format!(
                            "read {i} of {path} returned the value of write {w}, which failed with error {err}"
                        ));
                    }
                    Outcome::Unknown => {
                        if let Some(prev) = attributed.insert(w, *mzxid) {
                            if prev != *mzxid {
                                bad.push(format!(
                                    "write {w} seen at two zxids: {prev:#x} and {mzxid:#x}"
                                ));
                            }
                        }
                        if by_zxid.contains_key(mzxid) {
                            bad.push(format!(
                                "write {w} (reply lost) seen at zxid {mzxid:#x}, which is another acknowledged write's"
                            ));
                        }
                    }
                }
                if let OpKind::Create { .. } = wop.kind {
                    if czxid != mzxid {
                        bad.push(format!(
                            "read {i} of {path}: the create's value at czxid {czxid:#x} != mzxid {mzxid:#x}"
                        ));
                    }
                }
                // Stale: an acknowledged write to this path in (mzxid, z].
                if let Some(acked) = acked.filter(|_| mzxid < z) {
                    if let Some((wz, wi)) = acked.range(mzxid + 1..=*z).next() {
                        bad.push(format!(
                            "read {i} of {path} at zxid {z:#x} (server {}) returned the version at {mzxid:#x}, missing acknowledged write {wi} at {wz:#x}",
                            op.server
                        ));
                    }
                }
            }
            ReadResult::NoNode => {
                // An ephemeral goes with its session: absence proves nothing.
                let ephemeral = creates.get(path.as_str()).is_some_and(|&c| {
                    matches!(ops[c].kind, OpKind::Create { ephemeral: true, .. })
                });
                if let Some(acked) = acked.filter(|_| !ephemeral) {
                    if let Some((wz, wi)) = acked.range(..=*z).next() {
                        bad.push(format!(
                            "read {i} of {path} at zxid {z:#x} (server {}) found no node, but write {wi} to it was acknowledged at {wz:#x}: lost",
                            op.server
                        ));
                    }
                }
            }
            ReadResult::Children(_) => {}
        }
    }

    // 2. Real time order over acknowledged and attributed writes.
    let mut committed: Vec<(i64, usize)> = by_zxid.iter().map(|(z, i)| (*z, *i)).collect();
    committed.extend(attributed.iter().map(|(i, z)| (*z, *i)));
    committed.sort();
    let mut min_complete_after: Option<(u64, usize)> = None;
    for &(z, i) in committed.iter().rev() {
        let op = &ops[i];
        if let Some((c, j)) = min_complete_after {
            if c < op.invoke_us {
                bad.push(format!(
                    "not linearizable: write {j} (zxid {:#x}) completed at {c}us before write {i} (zxid {z:#x}) was invoked at {}us, yet is ordered after it",
                    ops[j].acked_write().or(attributed.get(&j).copied()).unwrap_or(0),
                    op.invoke_us
                ));
            }
        }
        if !matches!(op.outcome, Outcome::Unknown)
            && min_complete_after.is_none_or(|(c, _)| op.complete_us < c)
        {
            min_complete_after = Some((op.complete_us, i));
        }
    }

    // 5. Per-session monotonic reply zxids, in invocation order.
    let mut by_session: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.session != 0 {
            by_session.entry(op.session).or_default().push(i);
        }
    }
    for (s, mut list) in by_session {
        list.sort_by_key(|i| ops[*i].invoke_us);
        let mut last: Option<(i64, usize)> = None;
        for i in list {
            if let Outcome::Reply { zxid, .. } = ops[i].outcome {
                if let Some((lz, li)) = last {
                    if zxid < lz {
                        bad.push(format!(
                            "session {s:#x} went back in time: op {li} replied at zxid {lz:#x}, then op {i} (server {}) at {zxid:#x}",
                            ops[i].server
                        ));
                    }
                }
                last = Some((zxid, i));
            }
        }
    }

    // 6. Children nobody tried to create.
    for (i, op) in ops.iter().enumerate() {
        if let (
            OpKind::List { path },
            Outcome::Reply {
                read: Some(ReadResult::Children(kids)),
                ..
            },
        ) = (&op.kind, &op.outcome)
        {
            for k in kids {
                let full = if path == "/" {
                    format!("/{k}")
                } else {
                    format!("{path}/{k}")
                };
                match creates.get(full.as_str()) {
                    None => bad.push(format!(
                        "list {i} of {path} shows {full}, which no client tried to create"
                    )),
                    Some(&c) => {
                        if let Outcome::Reply { err, .. } = ops[c].outcome {
                            if err != 0 {
                                bad.push(format!(
                                    "list {i} of {path} shows {full}, whose create failed with {err}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    // 7. Ephemerals of ended sessions.
    let ended: HashMap<i64, &SessionEnd> = h.session_ends.iter().map(|e| (e.session, e)).collect();
    for op in ops.iter() {
        let (OpKind::Get { path }, Outcome::Reply { read: Some(ReadResult::Data { ephemeral_owner, .. }), .. }) =
            (&op.kind, &op.outcome)
        else {
            continue;
        };
        if *ephemeral_owner == 0 {
            continue;
        }
        let Outcome::Reply { zxid: z, .. } = op.outcome else {
            continue;
        };
        if let Some(e) = ended.get(ephemeral_owner) {
            let violated = match e.closed_at_zxid {
                Some(cz) => z >= cz,
                None => {
                    op.client == VERIFIER
                        && op.invoke_us > e.at_us + e.timeout_ms as u64 * 1000 + EXPIRY_SLACK_US
                }
            };
            if violated {
                bad.push(format!(
                    "ephemeral {path} of session {:#x} still there at zxid {z:#x} ({}us, server {}), after its session ended at {}us ({:?})",
                    ephemeral_owner, op.invoke_us, op.server, e.at_us, e.closed_at_zxid
                ));
            }
        }
    }
    bad
}
