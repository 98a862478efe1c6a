//! Introspection: the server's own figures (`Figures`, its fields), the
//! figures and listings for the four-letter words, the metrics and the
//! simulator's checkers (`NodeStats`, `ConnInfo`, assembled from the
//! parts that keep them: `Clients`, the log, the role); the whole-state
//! invariant check.

use super::*;
use crate::ids::*;
use crate::txn::State;
use crate::zab::Role;

/// Figures for the four-letter words and metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub mode: ServerRole,
    pub last_zxid: Zxid,
    pub node_count: u64,
    pub approximate_data_size: u64,
    pub ephemerals_count: u64,
    pub sessions: u64,
    pub connections: u64,
    pub watch_count: u64,
    pub watched_paths: u64,
    pub outstanding_requests: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub latency_total_ms: u64,
    pub latency_count: u64,
    pub digest: u64,
    /// ZooKeeper's `readlatency` and `updatelatency`: milliseconds from a
    /// request's arrival to its reply, reads and writes apart.
    pub read_latency: crate::latency::Latencies,
    pub update_latency: crate::latency::Latencies,
    /// Leader figures, as ZooKeeper's leader keeps them: the bytes of the
    /// last, smallest and largest proposal sent to followers (0 before the
    /// first); learner syncs by DIFF or TRUNC (`diff_count`) and by
    /// snapshot (`snap_count`); learners' syncs waiting for proposals to
    /// commit (`pending_syncs`).
    pub proposal_size_last: u64,
    pub proposal_size_min: u64,
    pub proposal_size_max: u64,
    pub diff_syncs: u64,
    pub snap_syncs: u64,
    pub pending_syncs: u64,
}

/// The server's own figures (the client pipeline keeps its own in
/// `Clients`): what the leader sent, as ZooKeeper's leader counts it.
#[derive(Debug, Clone, Default)]
pub(super) struct Figures {
    proposal_size_last: u64,
    proposal_size_min: u64,
    proposal_size_max: u64,
    diff_syncs: u64,
    snap_syncs: u64,
}

impl Figures {
    pub(super) fn on_proposal_sent(&mut self, bytes: usize) {
        let n = bytes as u64;
        self.proposal_size_min = if self.proposal_size_last == 0 {
            n
        } else {
            self.proposal_size_min.min(n)
        };
        self.proposal_size_max = self.proposal_size_max.max(n);
        self.proposal_size_last = n;
    }

    /// A learner was synced: by snapshot, or by DIFF or TRUNC.
    pub(super) fn on_sync(&mut self, snap: bool) {
        if snap {
            self.snap_syncs += 1;
        } else {
            self.diff_syncs += 1;
        }
    }

    fn fill(&self, s: &mut NodeStats) {
        s.proposal_size_last = self.proposal_size_last;
        s.proposal_size_min = self.proposal_size_min;
        s.proposal_size_max = self.proposal_size_max;
        s.diff_syncs = self.diff_syncs;
        s.snap_syncs = self.snap_syncs;
    }
}

/// One connection as `cons` shows it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub conn: ConnId,
    pub addr: String,
    pub session: Option<SessionId>,
    pub timeout_ms: u32,
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    pub last_zxid: Zxid,
}

impl Node {
    // ----- introspection ------------------------------------------------

    /// The node's own invariants, checked after every input and timeout in
    /// every build (a few comparisons): the simulator's swarm runs release
    /// builds, and a server that breaks one should stop rather than serve.
    pub(super) fn check_invariants(&self) {
        assert!(
            self.log.base_zxid() <= self.log.last_applied(),
            "applied {} below the snapshot base {}",
            self.log.last_applied(),
            self.log.base_zxid()
        );
        assert!(
            self.log.last_applied() <= self.log.last_logged(),
            "applied {} beyond logged {}",
            self.log.last_applied(),
            self.log.last_logged()
        );
        assert!(
            self.current_epoch <= self.accepted_epoch,
            "currentEpoch {} > acceptedEpoch {}",
            self.current_epoch,
            self.accepted_epoch
        );
        match &self.role {
            Role::Leading(l) => {
                if l.established {
                    assert_eq!(
                        l.last_proposed,
                        self.log.last_logged(),
                        "leader's last proposal is not its last log entry"
                    );
                }
                assert_eq!(
                    l.committed,
                    self.log.last_applied(),
                    "what the leader committed is not what its server applied"
                );
                l.check();
            }
            Role::Learning(l) => l.check(self.current_epoch, self.durable.upto(), self.planted()),
            Role::Looking(_) => {}
        }
    }

    pub fn stats(&self) -> NodeStats {
        let mut s = NodeStats::default();
        self.figures.fill(&mut s);
        s.last_zxid = self.log.last_applied();
        s.mode = self.role.server_role();
        s.node_count = self.log.state().tree.node_count() as u64;
        s.approximate_data_size = self.log.state().tree.data_size();
        s.ephemerals_count = self.log.state().tree.ephemerals_count() as u64;
        s.sessions = self.log.state().sessions.len() as u64;
        self.clients.fill_stats(&mut s);
        s.digest = self.log.state().tree.digest();
        s.pending_syncs = match &self.role {
            Role::Leading(l) => l.sync_waiters.len() as u64,
            _ => 0,
        };
        s
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        self.clients.connections()
    }

    pub fn reset_stats(&mut self) {
        self.clients.reset_figures();
    }

    pub fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.clients.watches_by_session()
    }

    pub fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.clients.watches_by_path()
    }

    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.log
            .state()
            .tree
            .ephemeral_sessions()
            .map(|(s, _)| (SessionId(s), self.log.state().tree.ephemerals_of(s)))
            .collect()
    }

    pub fn sessions(&self) -> Vec<(SessionId, u32)> {
        self.log
            .state()
            .sessions
            .iter()
            .map(|(s, m)| (*s, m.timeout_ms))
            .collect()
    }

    /// Whether a session is live here: in the applied state and, when
    /// leading, not being closed (the simulator asks the leader this).
    pub fn session_is_live(&self, id: SessionId) -> bool {
        let closing = matches!(&self.role, Role::Leading(l) if l.closing.contains(&id));
        self.log.state().sessions.contains_key(&id) && !closing
    }

    /// The digest of the whole tree, for cross-replica comparison.
    pub fn digest(&self) -> u64 {
        self.log.state().tree.digest()
    }

    /// The last applied zxid.
    pub fn last_zxid(&self) -> Zxid {
        self.log.last_applied()
    }

    /// The replicated state (for the simulator's checkers and tests).
    pub fn state(&self) -> &State {
        self.log.state()
    }

    /// The last zxid in the log (applied or not).
    pub fn last_logged(&self) -> Zxid {
        self.log.last_logged()
    }

    /// The applied txns after `after` that are still in memory (the log
    /// window), in zxid order. While the server serves clients, what it
    /// applied is visible to them and so must be committed: the simulator
    /// records these to build the committed history as it happens.
    pub fn applied_since(&self, after: Zxid) -> impl Iterator<Item = &crate::txn::Txn> + '_ {
        self.log.iter_range(after, self.log.last_applied())
    }

    /// (acceptedEpoch, currentEpoch).
    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// The role's internal state, for diagnostics (simulator traces).
    pub fn role_debug(&self) -> String {
        match &self.role {
            Role::Looking(e) => format!("looking round {} vote {:?}", e.round, e.vote),
            Role::Leading(l) => format!(
                "leading epoch {} chosen {} established {} self_acked {} epoch_token {:?} newleader_token {:?} learners {:?} tokens {:?} persisted {}",
                l.epoch,
                l.epoch_chosen,
                l.established,
                l.self_acked_newleader,
                l.epoch_token,
                l.newleader_token,
                l.learners.iter().map(|(s, v)| (s.0, v.stage, v.acked)).collect::<Vec<_>>(),
                self.durable.pending(),
                self.durable.upto()
            ),
            Role::Learning(l) => format!("learning from {} epoch {} phase {:?} commit {}", l.leader.0, l.epoch, l.phase, l.commit_upto),
        }
    }

    pub fn role(&self) -> ServerRole {
        self.role.server_role()
    }

    /// The leader this server follows, or itself when leading.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(l) if l.established => Some(self.config.server_id),
            Role::Learning(l) if self.learner_is_serving() => Some(l.leader),
            _ => None,
        }
    }

    /// Followers and synced followers, as the leader counts them.
    /// (observers, synced observers) as the leader counts them.
    pub fn observer_counts(&self) -> (usize, usize) {
        match &self.role {
            Role::Leading(l) => {
                let o = l.learners.values().filter(|v| v.observer).count();
                let synced = l
                    .learners
                    .values()
                    .filter(|v| v.observer && v.stage >= crate::zab::leader::Stage::NewLeaderAcked)
                    .count();
                (o, synced)
            }
            _ => (0, 0),
        }
    }

    pub fn learner_counts(&self) -> (usize, usize) {
        match &self.role {
            Role::Leading(l) => {
                let f = l.learners.values().filter(|v| !v.observer).count();
                let synced = l
                    .learners
                    .values()
                    .filter(|v| !v.observer && v.stage >= crate::zab::leader::Stage::NewLeaderAcked)
                    .count();
                (f, synced)
            }
            _ => (0, 0),
        }
    }
}
