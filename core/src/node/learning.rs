//! The learner's steps as methods of `Node`, over the state types of
//! `zab::learner` (see there for the protocol and its invariants).

use super::*;
use crate::ids::*;
use crate::peer::{PeerMsg, PeerState, SyncMode, Vote};
use crate::storage;
use crate::zab::learner::*;
use crate::zab::Role;
use tracing::{info, warn};

impl Node {
    pub(crate) fn become_learner(&mut self, now: Now, leader: ServerId, observer: bool) {
        let tick = self.config.tick_time_ms as u64;
        info!(
            "server {} {} {}",
            self.config.server_id.0,
            if observer { "observing" } else { "following" },
            leader.0
        );
        self.role = Role::Learning(Learner {
            leader,
            observer,
            epoch: 0,
            phase: Phase::Discovery,
            commit_upto: self.log.last_applied(),
            last_heard: now.mono,
            sync_by: now
                .mono
                .add_millis(tick * self.config.init_limit_ticks as u64),
            next_info: now.mono.add_millis(FOLLOWER_INFO_RESEND_MS.min(tick)),
            acked: Zxid::ZERO,
        });
        self.send_follower_info();
    }

    pub(super) fn learner(&mut self) -> Option<&mut Learner> {
        match &mut self.role {
            Role::Learning(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn send_follower_info(&mut self) {
        let accepted_epoch = self.accepted_epoch;
        let last_zxid = self.log.last_logged();
        let Some(l) = self.learner() else { return };
        let (leader, observer) = (l.leader, l.observer);
        self.send_peer(
            leader,
            &PeerMsg::FollowerInfo {
                accepted_epoch,
                last_zxid,
                observer,
            },
        );
    }

    /// The last zxid of each epoch in the log, newest first.
    pub(super) fn history(&self) -> Vec<Zxid> {
        if self.need_snap {
            return Vec::new();
        }
        let mut out = vec![self.log.last_logged()];
        let mut at = self.log.last_logged();
        while at > self.log.base_zxid() && out.len() < 16 {
            let prev = self.log.last_before(Zxid::new(at.epoch(), 0));
            if prev == at {
                break;
            }
            out.push(prev);
            at = prev;
        }
        out
    }

    /// Handles a message from the leader this server follows.
    pub(crate) fn learner_on_message(&mut self, now: Now, from: ServerId, msg: PeerMsg) {
        let opts = self.opts;
        let accepted = self.accepted_epoch;
        let Some(l) = self.learner() else { return };
        if from != l.leader {
            return;
        }
        l.last_heard = now.mono;
        match msg {
            PeerMsg::LeaderInfo { epoch } => {
                if l.phase != Phase::Discovery {
                    return;
                }
                if epoch < accepted {
                    warn!(
                        "leader {} proposes epoch {epoch} below accepted {accepted}",
                        from.0
                    );
                    self.become_looking(now);
                    return;
                }
                l.epoch = epoch;
                if epoch > accepted {
                    self.accepted_epoch = epoch;
                    let token = self.persist_epochs();
                    if let Some(l) = self.learner() {
                        l.phase = Phase::AcceptingEpoch { token };
                    }
                } else {
                    self.send_ack_epoch();
                }
            }
            PeerMsg::Sync {
                epoch,
                mode,
                committed,
                proposals,
                commit_upto,
            } => {
                if l.phase != Phase::AwaitSync || epoch != l.epoch {
                    return;
                }
                let mut snapshot = None;
                match mode {
                    SyncMode::Diff => {}
                    SyncMode::Trunc { zxid } => {
                        if self.canary(crate::canary::Canary::SkipTrunc) {
                            // planted bug: keep the old tail
                        } else if self.log.truncate(zxid, &opts).is_err() {
                            warn!("cannot truncate to {zxid} below the base snapshot; asking for a snapshot");
                            self.need_snap = true;
                            self.become_looking(now);
                            return;
                        } else {
                            self.persist_truncate(zxid);
                        }
                    }
                    SyncMode::Snap { snapshot: bytes } => match storage::read_snapshot(&bytes) {
                        Ok(state) => {
                            let z = state.last_zxid;
                            self.log.reset(state);
                            // Until the snapshot is durable this disk holds
                            // less than it did: mark it, so a crash in
                            // between restarts as a repairing server.
                            self.repair_mark = true;
                            // The snapshot supersedes every old log file, and
                            // those may hold uncommitted entries below it that
                            // a fallback recovery would otherwise replay: drop
                            // them all (NEWLEADER is acknowledged only once the
                            // snapshot is written).
                            self.persist_truncate(Zxid::ZERO);
                            self.write_snapshot_now();
                            snapshot = Some(z);
                        }
                        Err(e) => {
                            warn!("snapshot from leader {} unreadable: {e}", from.0);
                            self.become_looking(now);
                            return;
                        }
                    },
                }
                self.need_snap = false;
                for t in committed.into_iter().chain(proposals) {
                    if t.zxid > self.log.last_logged() {
                        self.log_append(t);
                    }
                }
                self.current_epoch = epoch;
                let token = self.persist_epochs();
                let Some(l) = self.learner() else { return };
                l.phase = Phase::Syncing { token, snapshot };
                l.commit_upto = l.commit_upto.max(commit_upto);
                self.apply_committed(now);
            }
            PeerMsg::Proposal(txn) => {
                let Some(l) = self.learner() else { return };
                let ok_phase = matches!(
                    l.phase,
                    Phase::Syncing { .. } | Phase::AwaitUpToDate | Phase::Serving
                );
                if ok_phase && txn.zxid.epoch() == l.epoch && txn.zxid > self.log.last_logged() {
                    let z = txn.zxid;
                    self.log_append(txn);
                    if self.canary(crate::canary::Canary::ApplyBeforeCommit) {
                        if let Some(l) = self.learner() {
                            l.commit_upto = l.commit_upto.max(z);
                        }
                        self.apply_committed(now);
                    }
                }
            }
            PeerMsg::Commit { zxid } => {
                if l.commit_upto < zxid {
                    l.commit_upto = zxid;
                }
                self.apply_committed(now);
            }
            PeerMsg::Inform(txn) => {
                if !l.observer
                    || !matches!(
                        l.phase,
                        Phase::Syncing { .. } | Phase::AwaitUpToDate | Phase::Serving
                    )
                {
                    return;
                }
                let z = txn.zxid;
                if z > self.log.last_logged() {
                    self.log_append(txn);
                }
                if let Some(l) = self.learner() {
                    l.commit_upto = l.commit_upto.max(z);
                }
                self.apply_committed(now);
            }
            PeerMsg::UpToDate { epoch, committed } => {
                if l.phase != Phase::AwaitUpToDate || epoch != l.epoch {
                    return;
                }
                l.commit_upto = l.commit_upto.max(committed);
                l.phase = Phase::Serving;
                let observer = l.observer;
                self.apply_committed(now);
                if self.abstaining {
                    // Synced and durable under a leader elected without
                    // this server: whole again, it rejoins as a voter.
                    self.abstaining = false;
                    info!(
                        "server {} repaired at {}; rejoining as a voter",
                        self.config.server_id.0,
                        self.log.last_applied()
                    );
                    self.become_looking(now);
                    return;
                }
                self.stats.mode = if observer {
                    ServerRole::Observer
                } else {
                    ServerRole::Follower
                };
                info!(
                    "server {} up to date at {}",
                    self.config.server_id.0,
                    self.log.last_applied()
                );
            }
            PeerMsg::Ping => {
                let touched: Vec<(SessionId, u32)> =
                    std::mem::take(&mut self.touched).into_iter().collect();
                self.send_peer(from, &PeerMsg::PingReply { touched });
            }
            PeerMsg::SyncDone { id } => self.on_sync_done(now, id),
            _ => {}
        }
    }

    pub(super) fn send_ack_epoch(&mut self) {
        let current_epoch = self.current_epoch;
        let last_zxid = self.log.last_logged();
        let history = self.history();
        let Some(l) = self.learner() else { return };
        l.phase = Phase::AwaitSync;
        let leader = l.leader;
        self.send_peer(
            leader,
            &PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
                history,
            },
        );
    }

    pub(super) fn apply_committed(&mut self, now: Now) {
        let Some(l) = self.learner() else { return };
        let upto = l.commit_upto;
        for (h, applied) in self.log.apply_upto(upto, &self.opts) {
            self.on_applied(now, &h, &applied);
        }
    }

    pub(crate) fn learner_on_persisted(&mut self, done: PersistToken) {
        let persisted = self.persisted_upto;
        let snapshot_pending = self.snapshot_pending;
        let Some(l) = self.learner() else { return };
        match l.phase {
            Phase::AcceptingEpoch { token } if token <= done => {
                self.send_ack_epoch();
            }
            Phase::Syncing { token, snapshot }
                if token <= done && (snapshot.is_none() || !snapshot_pending) =>
            {
                l.phase = Phase::AwaitUpToDate;
                let (leader, epoch) = (l.leader, l.epoch);
                l.acked = persisted;
                self.send_peer(leader, &PeerMsg::AckNewLeader { epoch });
                // The leader's history is durable here: the repair is done.
                if self.repair_mark {
                    self.repair_mark = false;
                    self.persist_epochs();
                }
            }
            Phase::AwaitUpToDate | Phase::Serving if !l.observer && persisted > l.acked => {
                l.acked = persisted;
                let leader = l.leader;
                self.send_peer(leader, &PeerMsg::Ack { zxid: persisted });
            }
            _ => {}
        }
    }

    pub(crate) fn learner_on_snapshot_written(&mut self) {
        if let Some(Learner {
            phase: Phase::Syncing { token, .. },
            ..
        }) = self.learner()
        {
            let t = *token;
            if self.tokens_done_through(t) {
                self.learner_on_persisted(t);
            }
        }
    }

    /// A learner acknowledging on arrival (planted bug) or on persistence.
    pub(crate) fn learner_after_append(&mut self, zxid: Zxid) {
        if !self.canary(crate::canary::Canary::AckBeforePersist) {
            return;
        }
        let Some(l) = self.learner() else { return };
        if matches!(l.phase, Phase::AwaitUpToDate | Phase::Serving) && !l.observer && zxid > l.acked
        {
            l.acked = zxid;
            let leader = l.leader;
            self.send_peer(leader, &PeerMsg::Ack { zxid });
        }
    }

    pub(crate) fn learner_on_timeout(&mut self, now: Now) {
        let tick = self.config.tick_time_ms as u64;
        let sync_ms = tick * self.config.sync_limit_ticks as u64;
        let Some(l) = self.learner() else { return };
        if l.phase == Phase::Serving {
            if now.mono.millis_since(l.last_heard) >= sync_ms {
                warn!(
                    "no word from leader {} for {sync_ms} ms; back to election",
                    l.leader.0
                );
                self.become_looking(now);
            }
            return;
        }
        if now.mono >= l.sync_by {
            warn!(
                "could not sync with leader {} within initLimit; back to election",
                l.leader.0
            );
            self.become_looking(now);
            return;
        }
        if l.phase == Phase::Discovery && now.mono >= l.next_info {
            l.next_info = now.mono.add_millis(FOLLOWER_INFO_RESEND_MS.min(tick));
            self.send_follower_info();
        }
    }

    pub(crate) fn learner_deadline(&self) -> Option<Instant> {
        let Role::Learning(l) = &self.role else {
            return None;
        };
        let tick = self.config.tick_time_ms as u64;
        Some(match l.phase {
            Phase::Serving => l
                .last_heard
                .add_millis(tick * self.config.sync_limit_ticks as u64),
            Phase::Discovery => l.sync_by.min(l.next_info),
            _ => l.sync_by,
        })
    }

    /// Whether `v`, from the leader this learner is still discovering,
    /// shows that server has moved on: not leading, in a later round than
    /// the one this learner decided in (an older vote may be one sent
    /// before it won, still in flight).
    pub(crate) fn learner_leader_moved_on(&self, from: ServerId, v: &Vote) -> bool {
        matches!(&self.role, Role::Learning(l) if l.leader == from && l.phase == Phase::Discovery)
            && v.state != PeerState::Leading
            && v.round > self.election_round
    }

    pub(crate) fn learner_is_serving(&self) -> bool {
        matches!(&self.role, Role::Learning(l) if l.phase == Phase::Serving)
    }

    pub(crate) fn learner_on_connected(&mut self, peer: ServerId) {
        if let Some(l) = self.learner() {
            if l.leader == peer && l.phase == Phase::Discovery {
                self.send_follower_info();
            }
        }
    }
}
