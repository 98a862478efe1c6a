//! The leader from FOLLOWERINFO to established: choosing the epoch,
//! syncing each learner, its own NEWLEADER ack, establishing.

use super::*;
use crate::peer::SyncMode;
use crate::storage::Snapshot;
use tracing::{info, warn};

impl Leader {
    /// A message a learner sends its leader.
    pub fn on_message(&mut self, cx: &Ctx, from: ServerId, msg: PeerMsg) -> Step {
        let mut step = Vec::new();
        let s = &mut step;
        match msg {
            PeerMsg::FollowerInfo {
                accepted_epoch,
                observer,
                ..
            } => self.on_follower_info(cx, from, accepted_epoch, observer, s),
            PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
                history,
            } => self.on_ack_epoch(cx, from, current_epoch, last_zxid, &history, s),
            PeerMsg::AckNewLeader { epoch } => self.on_ack_newleader(cx, from, epoch, s),
            PeerMsg::Ack { zxid } => self.on_ack(cx, from, zxid, s),
            PeerMsg::Forward {
                session,
                cxid,
                kind,
            } => self.on_forward(cx, from, session, cxid, kind, s),
            PeerMsg::PingReply { touched } => self.on_ping_reply(cx, from, touched),
            PeerMsg::SyncRequest { id } => self.on_sync_request(cx, from, id, s),
            PeerMsg::Revalidate {
                id,
                session,
                timeout_ms,
            } => self.on_revalidate(cx, from, id, session, timeout_ms, s),
            // What only a leader sends (LEADERINFO, PROPOSAL, ...) or a
            // vote: the server routes those elsewhere.
            _ => {}
        }
        step
    }

    /// Something the leader asked to persist (and everything before it)
    /// is durable.
    pub fn on_persisted(&mut self, cx: &Ctx, done: PersistToken) -> Step {
        let mut step = Vec::new();
        if self.epoch_token.is_some_and(|t| t <= done) {
            self.epoch_token = None;
            self.epoch_chosen = true;
            let epoch = self.epoch;
            for (s, v) in self.learners.iter_mut() {
                if v.stage == Stage::Connected {
                    v.stage = Stage::EpochSent;
                    step.push(Action::Send(*s, PeerMsg::LeaderInfo { epoch }));
                }
            }
            self.maybe_start_newleader(cx, &mut step);
        }
        if self.newleader_token.is_some_and(|t| t <= done) {
            self.newleader_token = None;
        }
        // The currentEpoch write of this epoch is durable (a write asked for
        // in this very step still holds an unissued token): the leader's
        // own NEWLEADER ack, once the log it covers is durable too.
        if !self.self_acked_newleader
            && self.newleader_token.is_none()
            && self.epoch_chosen
            && cx.current_epoch == self.epoch
            && cx.persisted_upto >= self.newleader_zxid
        {
            self.self_acked_newleader = true;
            self.maybe_establish(cx, &mut step);
        }
        self.try_commit(cx, &mut step);
        step
    }

    fn on_follower_info(
        &mut self,
        cx: &Ctx,
        from: ServerId,
        accepted_epoch: u32,
        observer: bool,
        step: &mut Step,
    ) {
        if cx.cfg.observers.contains(&from) && !observer {
            // Its own view is older (it missed the reconfig that made it
            // an observer): it follows without a vote (the quorum rule
            // counts voters only), learns the configuration from the sync
            // and rejoins as an observer once that is in force there.
            info!(
                "server {} is an observer in the configuration but asks to follow; its acknowledgements count for nothing",
                from.0
            );
        }
        if observer && !cx.cfg.observers.contains(&from) {
            info!(
                "voter {} syncs as an observer: it is repairing lost records",
                from.0
            );
        }
        if self.epoch_chosen && accepted_epoch > self.epoch {
            // A learner accepted a newer epoch (a leader that failed before
            // it was established, or a crash just after the epoch file
            // landed) and will refuse this one: without a new election it
            // could never join. Re-elect; the next epoch exceeds its.
            warn!(
                "learner {} accepted epoch {accepted_epoch}, above this leader's {}; re-electing",
                from.0, self.epoch
            );
            step.push(Action::Look);
            return;
        }
        self.learners.insert(
            from,
            LearnerView {
                observer,
                stage: if self.epoch_chosen {
                    Stage::EpochSent
                } else {
                    Stage::Connected
                },
                accepted_epoch,
                history: Vec::new(),
                acked: Zxid::ZERO,
                synced_upto: Zxid::ZERO,
                last_heard: cx.now.mono,
            },
        );
        if self.epoch_chosen {
            let epoch = self.epoch;
            step.push(Action::Send(from, PeerMsg::LeaderInfo { epoch }));
        } else {
            self.maybe_choose_epoch(cx, step);
        }
    }

    /// Once a quorum of voters has sent FOLLOWERINFO, the new epoch is one
    /// above every acceptedEpoch among them and this server's.
    pub(super) fn maybe_choose_epoch(&mut self, cx: &Ctx, step: &mut Step) {
        if self.epoch_token.is_some() || self.epoch_chosen {
            return;
        }
        if !self.quorum_with(true, self.followers_at(Stage::Connected)) {
            return;
        }
        let epoch = self
            .learners
            .values()
            .filter(|v| !v.observer)
            .map(|v| v.accepted_epoch)
            .chain([cx.accepted_epoch])
            .max()
            .unwrap_or(0)
            + 1;
        self.epoch = epoch;
        info!("server {} proposes epoch {epoch}", self.me.0);
        self.epoch_token = Some(UNISSUED);
        step.push(Action::AcceptEpoch(epoch));
    }

    /// Once a quorum acknowledged the epoch, the leader takes it as its
    /// currentEpoch (durably) — its own NEWLEADER acknowledgement.
    fn maybe_start_newleader(&mut self, cx: &Ctx, step: &mut Step) {
        if !self.epoch_chosen || self.newleader_token.is_some() || self.self_acked_newleader {
            return;
        }
        if !self.quorum_with(true, self.followers_at(Stage::Synced)) {
            return;
        }
        self.newleader_zxid = cx.log.last_logged();
        self.newleader_token = Some(UNISSUED);
        step.push(Action::NewEpoch(self.epoch));
    }

    fn on_ack_epoch(
        &mut self,
        cx: &Ctx,
        from: ServerId,
        current_epoch: u32,
        last_zxid: Zxid,
        history: &[Zxid],
        step: &mut Step,
    ) {
        let my = (cx.current_epoch, cx.log.last_logged());
        let Some(v) = self.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::EpochSent {
            return;
        }
        v.last_heard = cx.now.mono;
        if (current_epoch, last_zxid) > my {
            warn!(
                "learner {} is ahead of this leader ({current_epoch}, {last_zxid} > {}, {}); abdicating",
                from.0, my.0, my.1
            );
            step.push(Action::Look);
            return;
        }
        v.stage = Stage::EpochAcked;
        v.history = history.to_vec();
        self.maybe_sync_learners(cx, step);
    }

    /// Sends each learner that acknowledged the epoch its `Sync`, once a
    /// quorum of voters (this server, whose epoch is durable, included)
    /// has; after that, each at once. Before it, a sync would give a
    /// learner this epoch as its currentEpoch while the epoch may still
    /// fail: a later leader of a lower epoch, chosen by servers that never
    /// heard of this one, could then commit a history that this learner,
    /// ranked first by its currentEpoch, beats in an election and TRUNCs
    /// away (ZooKeeper's leader waits in waitForEpochAck likewise).
    fn maybe_sync_learners(&mut self, cx: &Ctx, step: &mut Step) {
        if !self.epoch_acked {
            if !self.quorum_with(true, self.followers_at(Stage::EpochAcked)) {
                return;
            }
            self.epoch_acked = true;
        }
        let ready: Vec<ServerId> = self
            .learners
            .iter()
            .filter(|(_, v)| v.stage == Stage::EpochAcked)
            .map(|(s, _)| *s)
            .collect();
        for from in ready {
            let Some(v) = self.learners.get_mut(&from) else {
                continue;
            };
            let history = std::mem::take(&mut v.history);
            v.stage = Stage::Synced;
            v.acked = Zxid::ZERO;
            v.synced_upto = cx.log.last_logged();
            let msg = self.sync_for(cx, &history);
            step.push(Action::Sync(from, msg));
        }
        self.maybe_start_newleader(cx, step);
    }

    /// Chooses DIFF, TRUNC or SNAP for a learner whose log ends with the
    /// epoch boundaries `history` (newest first).
    fn sync_for(&self, cx: &Ctx, history: &[Zxid]) -> PeerMsg {
        let log = cx.log;
        let last = log.last_logged();
        let committed_upto = log.last_applied();
        // Within one epoch both logs are prefixes of that epoch leader's
        // proposals, so our last entry of the learner's epoch at or below
        // its point is common to both; earlier epochs follow by induction.
        let start = log.window_start();
        let common = history.iter().copied().find_map(|z| {
            if z >= start && log.contains(z) {
                return Some(z);
            }
            let p = log.last_before(Zxid(z.0.saturating_add(1)));
            (p >= start && p.epoch() == z.epoch() && p != Zxid::ZERO).then_some(p)
        });
        let learner_last = history.first().copied().unwrap_or(Zxid::ZERO);
        let (mode, from) = match common {
            Some(p) if p == learner_last => (SyncMode::Diff, p),
            Some(p) => (SyncMode::Trunc { zxid: p }, p),
            None => {
                let snap = Snapshot::of(log.state());
                (
                    SyncMode::Snap {
                        snapshot: snap.encode(),
                    },
                    log.last_applied(),
                )
            }
        };
        PeerMsg::Sync {
            epoch: self.epoch,
            mode,
            committed: log.range(from, committed_upto),
            proposals: log.range(from.max(committed_upto), last),
            commit_upto: committed_upto,
        }
    }

    fn on_ack_newleader(&mut self, cx: &Ctx, from: ServerId, epoch: u32, step: &mut Step) {
        if epoch != self.epoch {
            return;
        }
        let established = self.established;
        let committed = self.committed;
        let Some(v) = self.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::Synced {
            return;
        }
        v.stage = Stage::NewLeaderAcked;
        v.last_heard = cx.now.mono;
        // Proposals pending when the sync was cut are acknowledged by this
        // very message; without this they would wait for a later write.
        v.acked = v.acked.max(v.synced_upto);
        // NEWLEADER covers everything sent before it; proposals made since
        // are acknowledged by later ACKs.
        if established {
            v.stage = Stage::UpToDate;
            step.push(Action::Send(from, PeerMsg::UpToDate { epoch, committed }));
        } else {
            self.maybe_establish(cx, step);
        }
        self.try_commit(cx, step);
    }

    fn maybe_establish(&mut self, cx: &Ctx, step: &mut Step) {
        if self.established || !self.self_acked_newleader {
            return;
        }
        if self.quorum_with(true, self.followers_at(Stage::NewLeaderAcked)) {
            self.establish(cx, step);
        }
    }

    /// The epoch is established: the whole history is committed.
    pub(super) fn establish(&mut self, cx: &Ctx, step: &mut Step) {
        let last = cx.log.last_logged();
        self.established = true;
        self.last_proposed = last;
        let epoch = self.epoch;
        info!("server {} established epoch {epoch} at {last}", self.me.0);
        if cx.cfg.record_commit_quorums && !self.standalone {
            let mut ids: BTreeSet<ServerId> = self.followers_at(Stage::NewLeaderAcked).collect();
            ids.insert(self.me);
            step.push(Action::CommitQuorum(Zxid(self.committed.0 + 1), last, ids));
        }
        step.push(Action::Apply(last));
        self.committed = self.committed.max(last);
        let committed = self.committed;
        for (s, v) in self.learners.iter_mut() {
            if v.stage == Stage::NewLeaderAcked {
                v.stage = Stage::UpToDate;
                step.push(Action::Send(*s, PeerMsg::UpToDate { epoch, committed }));
            }
        }
        step.push(Action::Serving);
    }
}
