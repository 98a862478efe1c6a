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
    Set {
        path: String,
        value: Vec<u8>,
    },
    /// create(path, value), persistent or ephemeral.
    Create {
        path: String,
        value: Vec<u8>,
        ephemeral: bool,
    },
    /// getData(path).
    Get {
        path: String,
    },
    /// getChildren(path).
    List {
        path: String,
    },
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
    /// Error replies by (operation, ZooKeeper error code).
    pub errors_by_code: BTreeMap<(String, i32), usize>,
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
                        let name = format!("{:?}", op.kind)
                            .split([' ', '{'])
                            .next()
                            .unwrap_or("")
                            .to_string();
                        *s.errors_by_code.entry((name, *err)).or_default() += 1;
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
                value,
                mzxid,
                czxid,
                ..
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
                    matches!(
                        ops[c].kind,
                        OpKind::Create {
                            ephemeral: true,
                            ..
                        }
                    )
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

    // 3 again, for writes whose reply was lost but which a read showed
    // committed: a read must not miss one of those either.
    let mut seen_of: HashMap<&str, BTreeMap<i64, usize>> = HashMap::new();
    for (&w, &z) in &attributed {
        if let Some(p) = ops[w].kind.path() {
            seen_of.entry(p).or_default().insert(z, w);
        }
    }
    for (i, op) in ops.iter().enumerate() {
        let (
            OpKind::Get { path },
            Outcome::Reply {
                zxid: z,
                read: Some(ReadResult::Data { mzxid, .. }),
                ..
            },
        ) = (&op.kind, &op.outcome)
        else {
            continue;
        };
        if mzxid >= z {
            continue;
        }
        if let Some((wz, wi)) = seen_of
            .get(path.as_str())
            .and_then(|m| m.range(mzxid + 1..=*z).next())
        {
            bad.push(format!(
                "read {i} of {path} at zxid {z:#x} (server {}) returned the version at {mzxid:#x}, missing write {wi} (reply lost) that another read saw at {wz:#x}",
                op.server
            ));
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
        let (
            OpKind::Get { path },
            Outcome::Reply {
                read:
                    Some(ReadResult::Data {
                        ephemeral_owner, ..
                    }),
                ..
            },
        ) = (&op.kind, &op.outcome)
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

#[cfg(test)]
mod tests {
    //! The checker must be able to fail: a consistent history passes, and
    //! each doctored copy trips the rule it breaks.
    use super::*;

    fn op(client: usize, session: i64, kind: OpKind, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            client,
            session,
            server: 1,
            kind,
            invoke_us: t.0,
            complete_us: t.1,
            outcome,
        }
    }
    fn set(p: &str, v: &str) -> OpKind {
        OpKind::Set {
            path: p.into(),
            value: v.into(),
        }
    }
    fn create(p: &str, v: &str, ephemeral: bool) -> OpKind {
        OpKind::Create {
            path: p.into(),
            value: v.into(),
            ephemeral,
        }
    }
    fn get(p: &str) -> OpKind {
        OpKind::Get { path: p.into() }
    }
    fn ok(zxid: i64) -> Outcome {
        Outcome::Reply {
            zxid,
            err: 0,
            read: None,
        }
    }
    fn data(zxid: i64, v: &str, mzxid: i64, czxid: i64, owner: i64) -> Outcome {
        Outcome::Reply {
            zxid,
            err: 0,
            read: Some(ReadResult::Data {
                value: v.into(),
                mzxid,
                czxid,
                ephemeral_owner: owner,
            }),
        }
    }
    fn no_node(zxid: i64) -> Outcome {
        Outcome::Reply {
            zxid,
            err: -101,
            read: Some(ReadResult::NoNode),
        }
    }

    /// Two clients: creates, sets (one with a lost reply that a read later
    /// shows), reads, an ephemeral of a closed session, a final listing.
    fn good() -> History {
        let ops = vec![
            op(9, 1, create("/k", "init", false), (0, 10), ok(1)), // 0
            op(0, 2, set("/k", "a"), (20, 30), ok(2)),             // 1
            op(1, 3, get("/k"), (31, 40), data(2, "a", 2, 1, 0)),  // 2
            op(1, 3, set("/k", "b"), (41, 50), Outcome::Unknown),  // 3
            op(0, 2, get("/k"), (60, 70), data(3, "b", 3, 1, 0)),  // 4
            op(0, 2, create("/n", "n1", false), (71, 80), ok(4)),  // 5
            op(5, 5, create("/e", "e1", true), (81, 90), ok(5)),   // 6
            op(5, 5, OpKind::CloseSession, (91, 95), ok(6)),       // 7
            op(1, 4, get("/n"), (100, 110), data(6, "n1", 4, 4, 0)), // 8
            op(1, 4, get("/e"), (111, 120), no_node(6)),           // 9
            op(
                VERIFIER,
                7,
                OpKind::List { path: "/".into() },
                (200, 210),
                Outcome::Reply {
                    zxid: 6,
                    err: 0,
                    read: Some(ReadResult::Children(vec!["k".into(), "n".into()])),
                },
            ), // 10
            op(VERIFIER, 7, get("/k"), (211, 220), data(6, "b", 3, 1, 0)), // 11
        ];
        History {
            ops,
            session_ends: vec![SessionEnd {
                session: 5,
                at_us: 95,
                closed_at_zxid: Some(6),
                timeout_ms: 1,
            }],
        }
    }

    fn fails(h: History, needle: &str) {
        let v = check(&h);
        assert!(
            v.iter().any(|m| m.contains(needle)),
            "expected a violation containing {needle:?}, got {v:#?}"
        );
    }

    #[test]
    fn a_consistent_history_passes() {
        assert_eq!(check(&good()), Vec::<String>::new());
    }

    #[test]
    fn a_stale_read_is_caught() {
        let mut h = good();
        // The final read at zxid 6 returns "a" (zxid 2): it missed "b"'s
        // set at 3? "b" was never acked, so make "b" acked instead.
        h.ops[3].outcome = ok(3);
        h.ops[11].outcome = data(6, "a", 2, 1, 0);
        fails(h, "missing acknowledged write");
    }

    #[test]
    fn a_read_missing_a_write_whose_reply_was_lost_is_caught() {
        let mut h = good();
        // "b" (reply lost) was seen at zxid 3; a later read at zxid 6
        // returning "a" (zxid 2) missed it.
        h.ops[8].kind = get("/k");
        h.ops[8].outcome = data(6, "a", 2, 1, 0);
        fails(h, "missing write 3 (reply lost)");
    }

    #[test]
    fn a_lost_acknowledged_create_is_caught() {
        let mut h = good();
        h.ops[8].outcome = no_node(6);
        fails(h, ": lost");
    }

    #[test]
    fn a_value_nobody_wrote_is_caught() {
        let mut h = good();
        h.ops[2].outcome = data(2, "zzz", 2, 1, 0);
        fails(h, "no client ever wrote");
    }

    #[test]
    fn a_value_from_a_failed_write_is_caught() {
        let mut h = good();
        h.ops[3].outcome = Outcome::Reply {
            zxid: 3,
            err: -101,
            read: None,
        };
        fails(h, "which failed");
    }

    #[test]
    fn a_read_from_the_future_is_caught() {
        let mut h = good();
        h.ops[2].outcome = data(1, "a", 2, 1, 0);
        fails(h, "from the future");
    }

    #[test]
    fn a_value_read_before_its_write_was_sent_is_caught() {
        let mut h = good();
        h.ops[2].kind = get("/k");
        h.ops[2].outcome = data(3, "b", 3, 1, 0);
        fails(h, "invoked after the read completed");
    }

    #[test]
    fn a_wrong_mzxid_for_an_acknowledged_write_is_caught() {
        let mut h = good();
        h.ops[2].outcome = data(2, "a", 1, 1, 0);
        fails(h, "but mzxid");
    }

    #[test]
    fn duplicate_zxids_are_caught() {
        let mut h = good();
        h.ops[5].outcome = ok(2);
        fails(h, "share zxid");
    }

    #[test]
    fn writes_out_of_real_time_order_are_caught() {
        let mut h = good();
        // The create of /n (invoked at 71, after the set of "a" completed
        // at 30) gets a zxid before it.
        h.ops[1].outcome = ok(4);
        h.ops[2].outcome = data(4, "a", 4, 1, 0);
        h.ops[5].outcome = ok(2);
        h.ops[8].outcome = data(6, "n1", 2, 2, 0);
        fails(h, "not linearizable");
    }

    #[test]
    fn a_session_going_back_in_time_is_caught() {
        let mut h = good();
        h.ops[4].outcome = data(1, "init", 1, 1, 0);
        fails(h, "went back in time");
    }

    #[test]
    fn an_invented_child_is_caught() {
        let mut h = good();
        h.ops[10].outcome = Outcome::Reply {
            zxid: 6,
            err: 0,
            read: Some(ReadResult::Children(vec!["k".into(), "ghost".into()])),
        };
        fails(h, "no client tried to create");
    }

    #[test]
    fn an_ephemeral_outliving_its_closed_session_is_caught() {
        let mut h = good();
        h.ops[9].outcome = data(6, "e1", 5, 5, 5);
        fails(h, "still there");
    }

    #[test]
    fn an_ephemeral_outliving_its_expired_session_is_caught() {
        let mut h = good();
        h.session_ends[0].closed_at_zxid = None;
        h.ops[7].kind = get("/k");
        h.ops[7].outcome = data(6, "b", 3, 1, 0);
        h.ops.push(op(
            VERIFIER,
            7,
            get("/e"),
            (10_000_000, 10_000_010),
            data(6, "e1", 5, 5, 5),
        ));
        fails(h, "still there");
    }
}
