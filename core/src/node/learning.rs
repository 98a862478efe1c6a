//! Runs the learner's steps: `zab::learner::Learner` decides, this file
//! carries out its [`Action`]s on the server (log, epochs, persistence,
//! applying, role changes).

use super::*;
use crate::ids::*;
use crate::peer::{PeerMsg, Vote};
use crate::zab::learner::{self, Action, Ctx, Learner};
use crate::zab::Role;
use tracing::info;

impl Node {
    /// Follows (or observes) `leader`, which leads in election round
    /// `leader_round` as far as this server knows.
    pub(crate) fn become_learner(
        &mut self,
        now: Now,
        leader: ServerId,
        observer: bool,
        leader_round: u64,
    ) {
        info!(
            "server {} {} {}",
            self.config.server_id.0,
            if observer { "observing" } else { "following" },
            leader.0
        );
        let l = Learner::new(
            &self.config,
            leader,
            observer,
            leader_round,
            self.log.last_applied(),
            now.mono,
        );
        self.role = Role::Learning(l);
        self.with_learner(now, |l, cx| vec![l.follower_info(cx)]);
    }

    pub(super) fn learner(&mut self) -> Option<&mut Learner> {
        match &mut self.role {
            Role::Learning(l) => Some(l),
            _ => None,
        }
    }

    /// The planted bug, if the feature is on.
    pub(super) fn planted(&self) -> Option<crate::canary::Canary> {
        #[cfg(feature = "canary")]
        {
            self.config.canary
        }
        #[cfg(not(feature = "canary"))]
        {
            None
        }
    }

    /// Runs one learner step, if learning: `f` decides with a view of
    /// the server, then its actions are carried out in order.
    pub(super) fn with_learner(
        &mut self,
        now: Now,
        f: impl FnOnce(&mut Learner, &Ctx) -> learner::Step,
    ) {
        let canary = self.planted();
        let Role::Learning(l) = &mut self.role else {
            return;
        };
        let cx = Ctx {
            cfg: &self.config,
            log: &self.log,
            now: now.mono,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            persisted_upto: self.durable.upto(),
            snapshot_pending: self.snapshot_pending,
            need_snap: self.need_snap,
            canary,
        };
        let step = f(l, &cx);
        self.run_learner_step(now, step);
    }

    fn run_learner_step(&mut self, now: Now, step: learner::Step) {
        for a in step {
            match a {
                Action::Send(msg) => {
                    let leader = self.learner().expect("learning").leader;
                    self.send_peer(leader, &msg);
                }
                Action::AcceptEpoch(epoch) => {
                    self.accepted_epoch = epoch;
                    let t = self.persist_epochs();
                    self.learner().expect("learning").issued(t);
                }
                Action::Truncate(zxid) => {
                    let opts = self.opts;
                    self.log
                        .truncate(zxid, &opts)
                        .expect("the learner checked the base");
                    self.persist_truncate(zxid);
                }
                Action::InstallSnapshot(state) => {
                    self.log.reset(*state);
                    // Until the snapshot is durable this disk holds less
                    // than it did: mark it, so a crash in between restarts
                    // as a repairing server.
                    self.repair_mark = true;
                    // The snapshot supersedes every old log file, and those
                    // may hold uncommitted entries below it that a fallback
                    // recovery would otherwise replay: drop them all
                    // (NEWLEADER is acknowledged only once the snapshot is
                    // written).
                    self.persist_truncate(Zxid::ZERO);
                    self.write_snapshot_now();
                }
                Action::SnapDone => self.need_snap = false,
                Action::NeedSnap => self.need_snap = true,
                Action::Append(txn) => {
                    if txn.zxid > self.log.last_logged() {
                        let z = txn.zxid;
                        self.log_append(txn);
                        self.learner_after_append(now, z);
                    }
                }
                Action::NewEpoch(epoch) => {
                    self.current_epoch = epoch;
                    let t = self.persist_epochs();
                    self.learner().expect("learning").issued(t);
                }
                Action::Apply(upto) => {
                    for (h, applied) in self.log.apply_upto(upto, &self.opts) {
                        self.on_applied(now, &h, &applied);
                    }
                }
                Action::Confirm(upto) => self.log.confirm(upto),
                Action::Repaired => {
                    if self.repair_mark {
                        self.repair_mark = false;
                        self.persist_epochs();
                    }
                }
                Action::UpToDate => self.learner_up_to_date(now),
                Action::SyncDone(id) => self.on_sync_done(now, id),
                Action::Revalidated(r, valid) => self.finish_reconnect(now, r, valid),
                Action::Look => {
                    self.become_looking(now);
                    return;
                }
            }
        }
    }

    fn learner_up_to_date(&mut self, now: Now) {
        if self.abstaining {
            // Synced and durable under a leader elected without this
            // server: whole again, it rejoins as a voter.
            self.abstaining = false;
            info!(
                "server {} repaired at {}; rejoining as a voter",
                self.config.server_id.0,
                self.log.last_applied()
            );
            self.become_looking(now);
            return;
        }
        info!(
            "server {} up to date at {}",
            self.config.server_id.0,
            self.log.last_applied()
        );
    }

    /// Handles a message from a peer while learning.
    pub(crate) fn learner_on_message(&mut self, now: Now, from: ServerId, msg: PeerMsg) {
        self.with_learner(now, |l, cx| l.on_message(cx, from, msg));
    }

    pub(crate) fn learner_on_persisted(&mut self, now: Now, done: PersistToken) {
        self.with_learner(now, |l, cx| l.on_persisted(cx, done));
    }

    pub(crate) fn learner_on_snapshot_written(&mut self, now: Now) {
        if let Some(t) = self.learner().and_then(|l| l.syncing_token()) {
            if self.tokens_done_through(t) {
                self.learner_on_persisted(now, t);
            }
        }
    }

    /// A txn was logged (the planted `AckBeforePersist` acknowledges it).
    pub(crate) fn learner_after_append(&mut self, now: Now, zxid: Zxid) {
        if self.planted().is_some() {
            self.with_learner(now, |l, cx| l.after_append(cx, zxid));
        }
    }

    pub(crate) fn learner_on_timeout(&mut self, now: Now) {
        self.with_learner(now, |l, cx| l.on_timeout(cx));
    }

    pub(crate) fn learner_deadline(&self) -> Option<Instant> {
        match &self.role {
            Role::Learning(l) => Some(l.deadline(&self.config)),
            _ => None,
        }
    }

    pub(crate) fn learner_leader_moved_on(&self, from: ServerId, v: &Vote) -> bool {
        matches!(&self.role, Role::Learning(l) if l.leader_moved_on(from, v))
    }

    pub(crate) fn learner_is_serving(&self) -> bool {
        matches!(&self.role, Role::Learning(l) if l.is_serving())
    }

    pub(crate) fn learner_on_connected(&mut self, now: Now, peer: ServerId) {
        self.with_learner(now, |l, cx| l.on_connected(cx, peer));
    }
}
