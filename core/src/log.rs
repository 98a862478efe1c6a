//! The replicated log as the core holds it: a checkpoint of the applied
//! state (`base`), the recent logged txns (`entries`: every entry after
//! `base`, plus up to `WINDOW_MAX` older ones kept for DIFF syncs), and the
//! applied prefix (`state`).
//!
//! Invariants: `entries` are in strictly increasing zxid order; every
//! logged entry after `base.last_zxid` is in `entries`; `state` equals
//! `base` with a prefix of the entries after it applied. Because the tree
//! is persistent, `base` shares structure with `state` and costs only what
//! changed since; `rebase` moves it forward while the applied state is
//! known committed, which bounds memory to the window.
//!
//! Truncation (ZAB's TRUNC) rebuilds `state` from `base` plus the kept
//! entries; a truncation point below `base` cannot be served from here and
//! the learner asks for a snapshot instead.

use crate::ids::Zxid;
use crate::txn::{Applied, ApplyOptions, State, Txn, TxnHeader, TxnKind};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Entries kept in memory behind the checkpoint, so a learner that lags
/// by up to this many txns gets a DIFF rather than a SNAP.
pub const WINDOW_MAX: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Log {
    base: State,
    /// The base's `/zookeeper/config` data, kept beside it (set wherever
    /// `base` is): `config_at` is asked after every step a server takes,
    /// and looking the node up each time was a visible share of it.
    base_config: Arc<[u8]>,
    entries: VecDeque<Txn>,
    state: State,
    /// The entries that are successful reconfigs (each a configuration).
    reconfigs: BTreeSet<Zxid>,
    /// Applied txns up to here are known committed (`confirm`): by a
    /// leader's commit or establishment, or by a learner told so by COMMIT,
    /// INFORM or UPTODATE. Not by applying alone: recovery replays the
    /// whole log, committed or not, and a learner applies the leader's
    /// history during a sync before the leader is established, so after a
    /// restart only the base is known.
    /// Invariant: `confirmed <= state.last_zxid`.
    confirmed: Zxid,
}

/// The truncation point is older than the base snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BelowBase {
    pub base: Zxid,
}

impl Log {
    /// `tail` are the txns logged after `base`; `state` is `base` with all
    /// of them applied (recovery replays everything, as ZooKeeper does).
    pub fn new(base: State, tail: Vec<Txn>, state: State) -> Log {
        let confirmed = base.last_zxid;
        let mut log = Log {
            base_config: config_of(&base),
            base,
            entries: tail.into(),
            state,
            reconfigs: BTreeSet::new(),
            confirmed,
        };
        log.reconfigs = log
            .entries
            .iter()
            .filter(|t| is_reconfig(t))
            .map(|t| t.zxid)
            .collect();
        log.check();
        log
    }

    /// Applied txns up to here are known committed.
    pub fn confirmed(&self) -> Zxid {
        self.confirmed
    }

    /// The text of the configuration in force after `zxid` was applied:
    /// the newest logged reconfig at or before it, else the checkpoint's
    /// `/zookeeper/config` (empty when the member list is not kept, as in
    /// standalone). Returns the zxid that made it (the base's for the
    /// checkpoint) and the text.
    pub fn config_at(&self, zxid: Zxid) -> (Zxid, &[u8]) {
        let base = self.base.last_zxid;
        let newest = if self.reconfigs.is_empty() {
            None
        } else {
            self.reconfigs.range(..=zxid).next_back()
        };
        if let Some(&r) = newest {
            if r > base {
                if let Some(TxnKind::Reconfig { outcome: Ok(text) }) =
                    self.entry(r).map(|t| &t.kind)
                {
                    return (r, text.as_bytes());
                }
            }
        }
        (base, &self.base_config)
    }

    fn check(&self) {
        let mut prev = Zxid::ZERO;
        for t in &self.entries {
            assert!(
                t.zxid > prev,
                "log entries out of order: {} after {}",
                t.zxid,
                prev
            );
            prev = t.zxid;
        }
        let prev = prev.max(self.base.last_zxid);
        assert!(
            self.state.last_zxid >= self.base.last_zxid && self.state.last_zxid <= prev,
            "applied {} outside [{}, {}]",
            self.state.last_zxid,
            self.base.last_zxid,
            prev
        );
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn base_zxid(&self) -> Zxid {
        self.base.last_zxid
    }

    pub fn last_applied(&self) -> Zxid {
        self.state.last_zxid
    }

    pub fn last_logged(&self) -> Zxid {
        self.entries
            .back()
            .map(|t| t.zxid)
            .unwrap_or(self.base.last_zxid)
    }

    pub fn append(&mut self, txn: Txn) {
        assert!(
            txn.zxid > self.last_logged(),
            "append of {} after {}",
            txn.zxid,
            self.last_logged()
        );
        if is_reconfig(&txn) {
            self.reconfigs.insert(txn.zxid);
        }
        self.entries.push_back(txn);
    }

    /// Whether `zxid` names an entry here (or the base itself).
    pub fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.base.last_zxid || self.find(zxid).is_some()
    }

    /// The oldest zxid a DIFF can start from.
    pub fn window_start(&self) -> Zxid {
        match self.entries.front() {
            Some(t) => self.base.last_zxid.min(self.last_before(t.zxid)),
            None => self.base.last_zxid,
        }
    }

    fn find(&self, zxid: Zxid) -> Option<usize> {
        self.entries.binary_search_by(|t| t.zxid.cmp(&zxid)).ok()
    }

    /// The entries with zxid in `(after, upto]`.
    pub fn range(&self, after: Zxid, upto: Zxid) -> Vec<Txn> {
        let start = self.index_after(after);
        self.entries
            .range(start..)
            .take_while(|t| t.zxid <= upto)
            .cloned()
            .collect()
    }

    /// The entries with zxid in `(after, upto]`, borrowed.
    pub fn iter_range(&self, after: Zxid, upto: Zxid) -> impl Iterator<Item = &Txn> + '_ {
        let start = self.index_after(after);
        self.entries
            .range(start..)
            .take_while(move |t| t.zxid <= upto)
    }

    /// The last entry (or the base, if older) with zxid < `zxid`.
    pub fn last_before(&self, zxid: Zxid) -> Zxid {
        let i = self.entries.partition_point(|t| t.zxid < zxid);
        let base = if self.base.last_zxid < zxid {
            self.base.last_zxid
        } else {
            Zxid::ZERO
        };
        if i == 0 {
            base
        } else {
            self.entries[i - 1].zxid.max(base)
        }
    }

    pub fn entry(&self, zxid: Zxid) -> Option<&Txn> {
        self.find(zxid).map(|i| &self.entries[i])
    }

    /// Applies every logged entry up to `upto` not applied yet.
    pub fn apply_upto(&mut self, upto: Zxid, opts: &ApplyOptions) -> Vec<(TxnHeader, Applied)> {
        let mut out = Vec::new();
        let start = self.index_after(self.state.last_zxid);
        for t in self.entries.range(start..) {
            if t.zxid > upto {
                break;
            }
            // A commit is the next zxid after the last applied: the same
            // epoch's successor, or the start of a later epoch.
            let last = self.state.last_zxid;
            assert!(
                t.zxid.0 == last.0 + 1 || t.zxid.epoch() > last.epoch(),
                "applying {} after {last}: a gap in the committed history",
                t.zxid
            );
            let applied = self.state.apply(t, opts);
            out.push((t.header(), applied));
        }
        out
    }

    /// The txns up to `upto` are known committed (as far as applied).
    pub fn confirm(&mut self, upto: Zxid) {
        self.confirmed = self.confirmed.max(self.state.last_zxid.min(upto));
    }

    /// The index of the first entry with zxid after `zxid`. The zxids asked
    /// about are usually among the last few (applied state, commit point),
    /// so look from the back first: a binary search over a long log
    /// touches a cache line per probe.
    fn index_after(&self, zxid: Zxid) -> usize {
        let n = self.entries.len();
        for back in 1..=n.min(64) {
            if self.entries[n - back].zxid <= zxid {
                return n - back + 1;
            }
        }
        if n <= 64 {
            return 0;
        }
        self.entries.partition_point(|t| t.zxid <= zxid)
    }

    /// The first logged zxid after `zxid`.
    pub fn next_after(&self, zxid: Zxid) -> Option<Zxid> {
        self.entries.get(self.index_after(zxid)).map(|t| t.zxid)
    }

    /// Drops entries after `zxid` (ZAB's TRUNC); rebuilds the applied
    /// state if it went past the cut.
    pub fn truncate(&mut self, zxid: Zxid, opts: &ApplyOptions) -> Result<(), BelowBase> {
        if zxid < self.base.last_zxid {
            return Err(BelowBase {
                base: self.base.last_zxid,
            });
        }
        let keep = self.entries.partition_point(|t| t.zxid <= zxid);
        self.entries.truncate(keep);
        self.reconfigs.retain(|r| *r <= zxid);
        self.confirmed = self.confirmed.min(zxid);
        if self.state.last_zxid > zxid {
            self.state = self.base.clone();
            let base = self.base.last_zxid;
            for t in self.entries.iter().filter(|t| t.zxid > base) {
                self.state.apply(t, opts);
            }
        }
        self.check();
        Ok(())
    }

    /// Replaces everything with a snapshot received from the leader.
    pub fn reset(&mut self, state: State) {
        self.confirmed = state.last_zxid;
        self.base = state.clone();
        self.base_config = config_of(&self.base);
        self.state = state;
        self.entries.clear();
        self.reconfigs.clear();
    }

    /// Makes the applied state the new base (after a snapshot of it was
    /// taken): entries up to it are dropped from memory.
    /// Moves the checkpoint to the applied state, keeping up to
    /// `WINDOW_MAX` entries behind it for DIFF syncs and dropping older ones.
    pub fn rebase(&mut self) {
        self.base = self.state.clone();
        self.base_config = config_of(&self.base);
        let behind = self
            .entries
            .partition_point(|t| t.zxid <= self.base.last_zxid);
        self.entries.drain(..behind.saturating_sub(WINDOW_MAX));
        let first = self.entries.front().map_or(self.base.last_zxid, |t| t.zxid);
        self.reconfigs.retain(|r| *r >= first);
    }

    /// Planted bug `ExpireOnFollower`: forget a session locally, without
    /// consensus (its ephemerals vanish on this server only).
    #[cfg(feature = "canary")]
    pub fn canary_drop_session(&mut self, session: crate::ids::SessionId) {
        let z = self.state.last_zxid.as_i64();
        for p in self.state.tree.ephemerals_of(session.0) {
            self.state.tree.delete(&p, z);
        }
        self.state.sessions.remove(&session);
    }

    /// Number of entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn is_reconfig(t: &Txn) -> bool {
    matches!(t.kind, TxnKind::Reconfig { outcome: Ok(_) })
}

/// A state's `/zookeeper/config` data (empty when the node holds none).
fn config_of(state: &State) -> Arc<[u8]> {
    state
        .tree
        .get(crate::tree::CONFIG_NODE)
        .map_or_else(|| Arc::from(&[][..]), |n| n.data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::proto::{op, Acl, CreateRequest, Request};
    use crate::txn::TxnKind;

    fn opts() -> ApplyOptions {
        ApplyOptions {
            extended_types_enabled: false,
            skip_acl: false,
            max_data_len: 1 << 20,
            enforce_quota: false,
            acl_providers: Default::default(),
        }
    }

    fn create(z: u64, path: &str) -> Txn {
        Txn {
            zxid: Zxid(z),
            time_ms: 0,
            session: SessionId(0),
            cxid: 0,
            kind: TxnKind::Write {
                request: Request::Create {
                    opcode: op::CREATE,
                    req: CreateRequest {
                        path: path.into(),
                        data: vec![],
                        acl: Acl::open_unsafe(),
                        flags: 0,
                        ttl: None,
                    },
                },
                auth: vec![],
            },
        }
    }

    #[test]
    fn applying_is_not_knowing_committed() {
        // A restart replays the whole log: applied, not known committed.
        let tail: Vec<Txn> = (1..=4).map(|i| create(i, &format!("/n{i}"))).collect();
        let mut state = State::new();
        for t in &tail {
            state.apply(t, &opts());
        }
        let mut log = Log::new(State::new(), tail, state);
        assert_eq!(log.last_applied(), Zxid(4));
        assert_eq!(log.confirmed(), Zxid::ZERO);
        // A sync applies the leader's history: still not known committed.
        log.append(create(5, "/n5"));
        log.apply_upto(Zxid(5), &opts());
        assert_eq!(log.confirmed(), Zxid::ZERO);
        // A COMMIT (or UPTODATE) says so; never beyond what is applied.
        log.confirm(Zxid(2));
        assert_eq!(log.confirmed(), Zxid(2));
        log.confirm(Zxid(9));
        assert_eq!(log.confirmed(), Zxid(5));
        log.truncate(Zxid(3), &opts()).unwrap();
        assert_eq!(log.confirmed(), Zxid(3));
    }

    #[test]
    fn truncate_rebuilds_applied_state() {
        let mut log = Log::new(State::new(), vec![], State::new());
        for i in 1..=5 {
            log.append(create(i, &format!("/n{i}")));
        }
        log.apply_upto(Zxid(5), &opts());
        let digest_at_3 = {
            let mut l = Log::new(State::new(), vec![], State::new());
            for i in 1..=3 {
                l.append(create(i, &format!("/n{i}")));
            }
            l.apply_upto(Zxid(3), &opts());
            l.state().tree.digest()
        };
        log.truncate(Zxid(3), &opts()).unwrap();
        assert_eq!(log.last_logged(), Zxid(3));
        assert_eq!(log.state().tree.digest(), digest_at_3);
        log.rebase();
        // The applied entries stay behind the new base, for DIFF syncs.
        assert_eq!(log.len(), 3);
        assert_eq!(log.window_start(), Zxid::ZERO);
        assert_eq!(
            log.truncate(Zxid(2), &opts()),
            Err(BelowBase { base: Zxid(3) })
        );
    }

    #[test]
    fn ranges_and_divergence_points() {
        let mut log = Log::new(State::new(), vec![], State::new());
        for z in [1u64, 2, (1 << 32) | 1] {
            log.append(create(z, &format!("/n{z}")));
        }
        assert_eq!(log.range(Zxid(1), Zxid(u64::MAX)).len(), 2);
        assert!(log.contains(Zxid(2)));
        assert!(!log.contains(Zxid(3)));
        assert_eq!(log.last_before(Zxid(3)), Zxid(2));
        assert_eq!(log.last_before(Zxid(1)), Zxid(0));
    }
}
