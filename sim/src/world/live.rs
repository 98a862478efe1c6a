//! The live checker: called after every step a server takes (an input and
//! the outputs it produced), it judges what that server now shows to
//! clients against what every other server showed:
//! - at most one established leader per epoch;
//! - a serving server never rolls back what it applied;
//! - every server applies the same txn at each zxid (the committed
//!   history is recorded here as it happens: log files get purged and
//!   replaced by snapshots, so the final disks alone cannot say what was
//!   committed);
//! - equal tree digests at equal zxids;
//! - a server confirms a session to a reconnecting client (a
//!   ConnectResponse with the session's id) only while that session is
//!   live at the leader of the current epoch (`confirmed_session`, called
//!   when the server emits the response);
//! - the core's whole-tree check (`DataTree::check_invariants`: parent
//!   links, child counts, the digest recomputed) every
//!   `TREE_CHECK_EVERY_ZXIDS` applied txns (and at the end of every run),
//!   so release swarms check what
//!   the debug suite does (the node's own cheap invariants run after every
//!   step in every build).

use crate::zxid_map::ZxidMap;
use paddock_core::txn::{Txn, TxnKind};
use paddock_core::{Node, ServerRole, SessionId, Zxid};
use std::collections::{BTreeMap, BTreeSet};

/// Applied txns between whole-tree checks of a serving server: a check
/// walks the whole tree, and every 64 cost a quarter of the simulator's
/// speed under load; every 1,024 costs about 2%.
pub const TREE_CHECK_EVERY_ZXIDS: u64 = 1024;

#[derive(Default)]
pub struct LiveChecker {
    /// Every txn a server applied while it served clients, by zxid, with
    /// the first server seen applying it. Boxed: an insert then moves
    /// pointers, not whole txns.
    pub committed: ZxidMap<(u64, Box<Txn>)>,
    /// The tree digest a serving server had at a zxid (first seen).
    digests: ZxidMap<(u64, u64)>,
    /// The established leader of each epoch (at most one, ever).
    leaders: BTreeMap<u32, u64>,
    /// The voters of the first configuration (reconfig runs).
    pub initial_voters: BTreeSet<u64>,
    /// The voters of each configuration a committed reconfig put in
    /// force, by that reconfig's zxid.
    configs: BTreeMap<Zxid, BTreeSet<u64>>,
    /// Commits up to here were judged by `commit_quorum` (a later leader
    /// commits again what an earlier one had: only the first is judged).
    quorum_judged_upto: Zxid,
}

/// Whether `ids` hold a majority of `voters`.
fn majority(voters: &BTreeSet<u64>, ids: &BTreeSet<u64>) -> bool {
    voters.iter().filter(|v| ids.contains(v)).count() > voters.len() / 2
}

/// The voters of a committed reconfig's configuration, if it is one.
fn reconfig_voters(t: &Txn) -> Option<BTreeSet<u64>> {
    let TxnKind::Reconfig { outcome: Ok(text) } = &t.kind else {
        return None;
    };
    let m = paddock_core::membership::Membership::parse(text).ok()?;
    Some(m.voters().into_iter().map(|s| s.0).collect())
}

impl LiveChecker {
    pub fn new() -> LiveChecker {
        LiveChecker::default()
    }

    /// The established leader of each epoch seen so far.
    pub fn leaders(&self) -> &BTreeMap<u32, u64> {
        &self.leaders
    }

    /// Judges server `s` after a step. `recorded_upto` is how far this
    /// incarnation's applied txns are recorded (moved forward here);
    /// `ensemble` says whether leaders are elected. Returns violations.
    pub fn after_step(
        &mut self,
        s: u64,
        node: &Node,
        recorded_upto: &mut Zxid,
        ensemble: bool,
    ) -> Vec<String> {
        let last = node.last_zxid();
        let mut bad = Vec::new();
        if node.role() == ServerRole::Leader && node.leader().is_some() && ensemble {
            let epoch = node.epochs().1;
            bad.extend(crate::check::one_leader_per_epoch(
                &mut self.leaders,
                epoch,
                s,
            ));
        }
        if last < *recorded_upto {
            bad.push(format!(
                "server {s} applied up to {} while serving, then rolled back to {last}",
                recorded_upto
            ));
        } else if node.leader().is_some() && last > *recorded_upto {
            for t in node.applied_since(*recorded_upto) {
                match self.committed.get(t.zxid) {
                    Some((other, t0)) if **t0 != *t => bad.push(format!(
                        "zxid {}: server {s} applied {:?}, server {other} applied {:?}",
                        t.zxid, t.kind, t0.kind
                    )),
                    Some(_) => {}
                    None => {
                        if let Some(v) = reconfig_voters(t) {
                            self.configs.insert(t.zxid, v);
                        }
                        self.committed
                            .insert_absent(t.zxid, (s, Box::new(t.clone())));
                    }
                }
            }
            if recorded_upto.0 / TREE_CHECK_EVERY_ZXIDS != last.0 / TREE_CHECK_EVERY_ZXIDS {
                if let Err(e) = node.state().tree.check_invariants() {
                    bad.push(format!(
                        "server {s}'s tree at {last} breaks its invariants: {e}"
                    ));
                }
            }
            *recorded_upto = last;
            let digest = node.digest();
            match self.digests.get(last) {
                Some((other, d)) if *d != digest => bad.push(format!(
                    "at zxid {last} server {s}'s tree digest {digest:#x} differs from server {other}'s {d:#x}"
                )),
                Some(_) => {}
                None => {
                    self.digests.insert_absent(last, (s, digest));
                }
            }
        }
        bad
    }
}

impl LiveChecker {
    /// Reconfiguration's safety rule: the voters whose acknowledgements
    /// committed `from..=upto` hold a majority of the configuration in
    /// force for each of those txns — the one before `from` (per the
    /// committed history), and for a reconfig among them its new one too
    /// (the old and the new configuration both commit it). Call after the
    /// committing server's step was recorded.
    pub fn commit_quorum(
        &mut self,
        from: Zxid,
        upto: Zxid,
        ackers: &BTreeSet<u64>,
    ) -> Option<String> {
        let from = from.max(Zxid(self.quorum_judged_upto.0 + 1));
        if from > upto {
            return None;
        }
        self.quorum_judged_upto = upto;
        let before = self
            .configs
            .range(..from)
            .next_back()
            .map_or(&self.initial_voters, |(_, v)| v);
        if !majority(before, ackers) {
            return Some(format!(
                "txns {from}..={upto} committed by {ackers:?}, not a majority of the configuration in force {before:?}"
            ));
        }
        for (r, v) in self.configs.range(from..=upto) {
            if !majority(v, ackers) {
                return Some(format!(
                    "reconfig {r} committed by {ackers:?}, not a majority of its new configuration {v:?}"
                ));
            }
        }
        None
    }
}

/// A server may confirm a session to a client only while that session is
/// live at the leader of the current epoch: the newest epoch that any
/// leader has established (`leaders`), judged at that leader while it is
/// up and still leads it. When it is not (it died, perhaps with its answer
/// in flight, or stepped down), nothing is judged; a stale leader of an
/// older epoch is no authority.
pub fn confirmed_session<'a>(
    s: u64,
    session: SessionId,
    leaders: &BTreeMap<u32, u64>,
    mut servers: impl Iterator<Item = (u64, &'a Node)>,
) -> Option<String> {
    let (&epoch, &l) = leaders.last_key_value()?;
    let (_, node) = servers.find(|(id, _)| *id == l)?;
    if node.role() != ServerRole::Leader || node.leader().is_none() || node.epochs().1 != epoch {
        return None;
    }
    (!node.session_is_live(session)).then(|| {
        format!(
            "server {s} confirmed session {session} to a client while leader {l} (epoch {epoch}) has it {}",
            if node.state().sessions.contains_key(&session) {
                "closing"
            } else {
                "gone"
            }
        )
    })
}
