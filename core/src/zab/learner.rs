//! A learner: a follower (votes, acknowledges proposals) or an observer
//! (receives INFORM of committed txns, never votes).
//!
//! Discovery: FOLLOWERINFO (resent every 50 ms until answered), LEADERINFO,
//! acceptedEpoch made durable, ACKEPOCH with the log's epoch boundaries.
//! Sync: one `Sync` message; TRUNC cuts the log (and rebuilds the applied
//! state), SNAP replaces everything and is written to disk; the txns are
//! logged, currentEpoch is made durable after them (so a crash never
//! leaves a new epoch over an old log: ZOOKEEPER-4643), and only then is
//! NEWLEADER acknowledged (ZOOKEEPER-4646). Proposals that arrive during
//! sync are logged in order behind it (ZOOKEEPER-4785); their ACKs go out
//! only after the NEWLEADER ack (ZOOKEEPER-4685). UPTODATE: serve.
//!
//! `Learner` owns the role's state and decides; it changes nothing outside
//! itself. Each step returns the [`Action`]s its server carries out, in
//! order (`node/learning.rs` runs them).
//!
//! Invariants (the first three checked by [`Learner::check`] after every
//! step, in release builds too):
//! - a phase that waits for a persistence token has been given one by the
//!   end of the step that entered it;
//! - past its sync (Syncing and later) the learner has taken the leader's
//!   epoch as its currentEpoch;
//! - `acked` is never above what is durable here (but under the
//!   `AckBeforePersist` canary), and the leader is only told of it;
//! - only the leader it chose is heard: messages from any other server are
//!   ignored;
//! - phases only move forward (Discovery, AcceptingEpoch, AwaitSync,
//!   Syncing, AwaitUpToDate, Serving); going back means a new election;
//! - `commit_upto` never decreases; proposals are logged only for the
//!   leader's epoch, above the log's end.

use crate::canary::Canary;
use crate::config::Config;
use crate::ids::*;
use crate::log::Log;
use crate::peer::{PeerMsg, PeerState, SyncMode, Vote};
use crate::storage;
use crate::txn::State;
use crate::txn::Txn;
use std::collections::BTreeMap;
use tracing::warn;

/// A follower can decide before its leader does; FOLLOWERINFO that reaches
/// a leader still finishing its election is dropped, so it is resent this
/// often (not once a tick) until LEADERINFO arrives.
pub(crate) const FOLLOWER_INFO_RESEND_MS: u64 = 50;

/// A token not issued yet: the step that set it also asked for the
/// persistence whose token [`Learner::issued`] fills in.
const UNISSUED: PersistToken = PersistToken(u64::MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Discovery,
    AcceptingEpoch {
        token: PersistToken,
    },
    AwaitSync,
    Syncing {
        token: PersistToken,
        snapshot: Option<Zxid>,
    },
    AwaitUpToDate,
    Serving,
}

#[derive(Debug)]
pub struct Learner {
    pub leader: ServerId,
    pub observer: bool,
    /// The election round the leader leads in (its own report, or the
    /// round this server decided in): a vote of the leader's from a later
    /// round that is not a leading one means it gave that leadership up.
    pub leader_round: u64,
    pub epoch: u32,
    pub phase: Phase,
    pub commit_upto: Zxid,
    pub last_heard: Instant,
    /// Discovery and sync must be done by then (initLimit).
    pub sync_by: Instant,
    pub next_info: Instant,
    /// Highest zxid acknowledged to the leader.
    pub acked: Zxid,
    /// Sessions of local clients seen since the last leader ping, with
    /// their timeouts (sent in the PingReply).
    pub touched: BTreeMap<SessionId, u32>,
    /// Reconnects waiting for the leader's word on their session, by
    /// request id. At most one per client connection being opened (the
    /// shell bounds connections), and dropped with the learner (every
    /// connection is closed when it leaves the role).
    revalidating: BTreeMap<u64, Reconnect>,
    next_revalidation: u64,
}

/// A client reconnecting with an existing session, waiting for the
/// leader to say whether that session is live.
#[derive(Debug, Clone)]
pub struct Reconnect {
    pub conn: ConnId,
    pub session: SessionId,
    pub timeout_ms: u32,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

/// What the learner sees of its server when it decides.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub log: &'a Log,
    pub now: Instant,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Highest zxid durable here.
    pub persisted_upto: Zxid,
    pub snapshot_pending: bool,
    /// The next sync must be a SNAP (see `Node::need_snap`).
    pub need_snap: bool,
    /// The planted bug, if any (always `None` without the feature).
    pub canary: Option<Canary>,
}

/// One effect of a learner's step. The server carries them out in order.
#[derive(Debug)]
pub enum Action {
    /// Send this to the leader.
    Send(PeerMsg),
    /// Take this acceptedEpoch and make the epochs durable; the token goes
    /// back through [`Learner::issued`].
    AcceptEpoch(u32),
    /// Cut the log after this zxid, in memory and on disk (the learner has
    /// checked that it is not below the base snapshot).
    Truncate(Zxid),
    /// Replace the log and state with the leader's snapshot, mark the disk
    /// as repairing, drop every old log file and write the snapshot.
    InstallSnapshot(Box<State>),
    /// The next sync need not be a SNAP any more.
    SnapDone,
    /// The next sync must be a SNAP (a TRUNC could not be served).
    NeedSnap,
    /// Log this txn if it is above the log's end.
    Append(Txn),
    /// Take this currentEpoch and make the epochs durable (after what was
    /// logged before); the token goes back through [`Learner::issued`].
    NewEpoch(u32),
    /// Apply what is committed, up to `commit_upto`.
    Apply(Zxid),
    /// The leader said so: txns up to here are committed (COMMIT, INFORM,
    /// UPTODATE). Applying alone says nothing of it: a sync hands over the
    /// leader's applied history, which may hold txns its recovery replayed
    /// that no quorum has committed yet (`Log::confirm`).
    Confirm(Zxid),
    /// The leader's history is durable here: clear the repair mark.
    Repaired,
    /// UPTODATE: this learner serves from now on.
    UpToDate,
    /// A client's `sync` is answered.
    SyncDone(u64),
    /// The leader's word on a reconnecting client's session.
    Revalidated(Reconnect, bool),
    /// Back to election (the reason is logged).
    Look,
}

/// The actions of one step, in order.
pub type Step = Vec<Action>;

impl Learner {
    pub fn new(
        cfg: &Config,
        leader: ServerId,
        observer: bool,
        leader_round: u64,
        commit_upto: Zxid,
        now: Instant,
    ) -> Learner {
        let tick = cfg.tick_time_ms as u64;
        Learner {
            leader,
            observer,
            leader_round,
            epoch: 0,
            phase: Phase::Discovery,
            commit_upto,
            last_heard: now,
            sync_by: now.add_millis(tick * cfg.init_limit_ticks as u64),
            next_info: now.add_millis(FOLLOWER_INFO_RESEND_MS.min(tick)),
            acked: Zxid::ZERO,
            touched: BTreeMap::new(),
            revalidating: BTreeMap::new(),
            next_revalidation: 1,
        }
    }

    /// The opening FOLLOWERINFO (and its resends).
    pub fn follower_info(&self, cx: &Ctx) -> Action {
        Action::Send(PeerMsg::FollowerInfo {
            accepted_epoch: cx.accepted_epoch,
            last_zxid: cx.log.last_logged(),
            observer: self.observer,
        })
    }

    /// Fills in the token of the persistence the last step asked for.
    pub fn issued(&mut self, t: PersistToken) {
        match &mut self.phase {
            Phase::AcceptingEpoch { token } | Phase::Syncing { token, .. } => {
                assert_eq!(*token, UNISSUED, "a learner phase waits for one token");
                *token = t;
            }
            p => panic!("a persistence token issued to a learner in phase {p:?}"),
        }
    }

    /// Asserts the invariants listed at the top of this file, given the
    /// server's currentEpoch and durable mark.
    pub fn check(&self, current_epoch: u32, persisted_upto: Zxid, canary: Option<Canary>) {
        if let Phase::AcceptingEpoch { token } | Phase::Syncing { token, .. } = self.phase {
            assert_ne!(
                token, UNISSUED,
                "learner phase {:?} without its token",
                self.phase
            );
        }
        if matches!(
            self.phase,
            Phase::Syncing { .. } | Phase::AwaitUpToDate | Phase::Serving
        ) {
            assert_eq!(
                current_epoch, self.epoch,
                "learner past its sync in epoch {} with currentEpoch {current_epoch}",
                self.epoch
            );
        }
        if canary != Some(Canary::AckBeforePersist) {
            assert!(
                self.acked <= persisted_upto,
                "learner acked {} with only {persisted_upto} durable",
                self.acked
            );
        }
    }

    /// The token a SNAP sync waits for, with its snapshot.
    pub fn syncing_token(&self) -> Option<PersistToken> {
        match self.phase {
            Phase::Syncing { token, .. } => Some(token),
            _ => None,
        }
    }

    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Serving
    }

    /// Handles a message from a peer while learning.
    pub fn on_message(&mut self, cx: &Ctx, from: ServerId, msg: PeerMsg) -> Step {
        if from != self.leader {
            return Vec::new();
        }
        self.last_heard = cx.now;
        let mut step = Vec::new();
        match msg {
            PeerMsg::LeaderInfo { epoch } => {
                if self.phase != Phase::Discovery {
                    return step;
                }
                let accepted = cx.accepted_epoch;
                if epoch < accepted {
                    warn!(
                        "leader {} proposes epoch {epoch} below accepted {accepted}",
                        from.0
                    );
                    step.push(Action::Look);
                    return step;
                }
                self.epoch = epoch;
                if epoch > accepted {
                    self.phase = Phase::AcceptingEpoch { token: UNISSUED };
                    step.push(Action::AcceptEpoch(epoch));
                } else {
                    step.push(self.ack_epoch(cx));
                }
            }
            PeerMsg::Sync {
                epoch,
                mode,
                committed,
                proposals,
                commit_upto,
            } => {
                if self.phase != Phase::AwaitSync || epoch != self.epoch {
                    return step;
                }
                let mut snapshot = None;
                match mode {
                    SyncMode::Diff => {}
                    SyncMode::Trunc { zxid } => {
                        if cx.canary == Some(Canary::SkipTrunc) {
                            // planted bug: keep the old tail
                        } else if zxid < cx.log.base_zxid() {
                            warn!("cannot truncate to {zxid} below the base snapshot; asking for a snapshot");
                            step.push(Action::NeedSnap);
                            step.push(Action::Look);
                            return step;
                        } else {
                            step.push(Action::Truncate(zxid));
                        }
                    }
                    SyncMode::Snap { snapshot: bytes } => match storage::read_snapshot(&bytes) {
                        Ok(state) => {
                            snapshot = Some(state.last_zxid);
                            step.push(Action::InstallSnapshot(Box::new(state)));
                        }
                        Err(e) => {
                            warn!("snapshot from leader {} unreadable: {e}", from.0);
                            step.push(Action::Look);
                            return step;
                        }
                    },
                }
                step.push(Action::SnapDone);
                step.extend(committed.into_iter().chain(proposals).map(Action::Append));
                self.phase = Phase::Syncing {
                    token: UNISSUED,
                    snapshot,
                };
                step.push(Action::NewEpoch(epoch));
                self.commit_upto = self.commit_upto.max(commit_upto);
                step.push(Action::Apply(self.commit_upto));
            }
            PeerMsg::Proposal(txn) => {
                let ok_phase = matches!(
                    self.phase,
                    Phase::Syncing { .. } | Phase::AwaitUpToDate | Phase::Serving
                );
                if ok_phase && txn.zxid.epoch() == self.epoch && txn.zxid > cx.log.last_logged() {
                    let z = txn.zxid;
                    step.push(Action::Append(txn));
                    if cx.canary == Some(Canary::ApplyBeforeCommit) {
                        self.commit_upto = self.commit_upto.max(z);
                        step.push(Action::Apply(self.commit_upto));
                    }
                }
            }
            PeerMsg::Commit { zxid } => {
                self.commit_upto = self.commit_upto.max(zxid);
                step.push(Action::Apply(self.commit_upto));
                step.push(Action::Confirm(zxid));
            }
            PeerMsg::Inform(txn) => {
                if !self.observer
                    || !matches!(
                        self.phase,
                        Phase::Syncing { .. } | Phase::AwaitUpToDate | Phase::Serving
                    )
                {
                    return step;
                }
                let z = txn.zxid;
                self.commit_upto = self.commit_upto.max(z);
                step.push(Action::Append(txn));
                step.push(Action::Apply(self.commit_upto));
                step.push(Action::Confirm(z));
            }
            PeerMsg::UpToDate { epoch, committed } => {
                if self.phase != Phase::AwaitUpToDate || epoch != self.epoch {
                    return step;
                }
                self.commit_upto = self.commit_upto.max(committed);
                self.phase = Phase::Serving;
                step.push(Action::Apply(self.commit_upto));
                step.push(Action::Confirm(committed));
                step.push(Action::UpToDate);
            }
            PeerMsg::Ping => {
                let touched: Vec<(SessionId, u32)> =
                    std::mem::take(&mut self.touched).into_iter().collect();
                step.push(Action::Send(PeerMsg::PingReply { touched }));
            }
            PeerMsg::SyncDone { id } => step.push(Action::SyncDone(id)),
            PeerMsg::Revalidated { id, valid } => {
                if let Some(r) = self.revalidating.remove(&id) {
                    step.push(Action::Revalidated(r, valid));
                }
            }
            _ => {}
        }
        step
    }

    /// ACKEPOCH: the epoch is accepted (and durable); await the sync.
    fn ack_epoch(&mut self, cx: &Ctx) -> Action {
        self.phase = Phase::AwaitSync;
        Action::Send(PeerMsg::AckEpoch {
            current_epoch: cx.current_epoch,
            last_zxid: cx.log.last_logged(),
            history: history(cx.log, cx.need_snap),
        })
    }

    /// A client reconnects with an existing session: only the leader may
    /// say whether it is live (this server's records may lag behind an
    /// expiry the leader already decided), so ask it.
    pub fn revalidate(&mut self, r: Reconnect) -> Step {
        assert!(
            self.is_serving(),
            "a learner that is not serving takes no connections"
        );
        let id = self.next_revalidation;
        self.next_revalidation += 1;
        let msg = PeerMsg::Revalidate {
            id,
            session: r.session,
            timeout_ms: r.timeout_ms,
        };
        self.revalidating.insert(id, r);
        vec![Action::Send(msg)]
    }

    /// Persistence completed through `done`.
    pub fn on_persisted(&mut self, cx: &Ctx, done: PersistToken) -> Step {
        let persisted = cx.persisted_upto;
        match self.phase {
            Phase::AcceptingEpoch { token } if token <= done => vec![self.ack_epoch(cx)],
            Phase::Syncing { token, snapshot }
                if token <= done && (snapshot.is_none() || !cx.snapshot_pending) =>
            {
                self.phase = Phase::AwaitUpToDate;
                self.acked = persisted;
                vec![
                    Action::Send(PeerMsg::AckNewLeader { epoch: self.epoch }),
                    Action::Repaired,
                ]
            }
            Phase::AwaitUpToDate | Phase::Serving if !self.observer && persisted > self.acked => {
                self.acked = persisted;
                vec![Action::Send(PeerMsg::Ack { zxid: persisted })]
            }
            _ => Vec::new(),
        }
    }

    /// A txn was logged: the planted `AckBeforePersist` bug acknowledges it
    /// at once.
    pub fn after_append(&mut self, cx: &Ctx, zxid: Zxid) -> Step {
        if cx.canary != Some(Canary::AckBeforePersist) {
            return Vec::new();
        }
        if matches!(self.phase, Phase::AwaitUpToDate | Phase::Serving)
            && !self.observer
            && zxid > self.acked
        {
            self.acked = zxid;
            return vec![Action::Send(PeerMsg::Ack { zxid })];
        }
        Vec::new()
    }

    pub fn on_timeout(&mut self, cx: &Ctx) -> Step {
        let tick = cx.cfg.tick_time_ms as u64;
        let sync_ms = tick * cx.cfg.sync_limit_ticks as u64;
        let now = cx.now;
        if self.phase == Phase::Serving {
            if now.millis_since(self.last_heard) >= sync_ms {
                warn!(
                    "no word from leader {} for {sync_ms} ms; back to election",
                    self.leader.0
                );
                return vec![Action::Look];
            }
            return Vec::new();
        }
        if now >= self.sync_by {
            warn!(
                "could not sync with leader {} within initLimit; back to election",
                self.leader.0
            );
            return vec![Action::Look];
        }
        if self.phase == Phase::Discovery && now >= self.next_info {
            self.next_info = now.add_millis(FOLLOWER_INFO_RESEND_MS.min(tick));
            return vec![self.follower_info(cx)];
        }
        Vec::new()
    }

    pub fn deadline(&self, cfg: &Config) -> Instant {
        let tick = cfg.tick_time_ms as u64;
        match self.phase {
            Phase::Serving => self
                .last_heard
                .add_millis(tick * cfg.sync_limit_ticks as u64),
            Phase::Discovery => self.sync_by.min(self.next_info),
            _ => self.sync_by,
        }
    }

    /// Whether `v`, from this learner's leader, shows that server has
    /// moved on: not leading, in a later round than the one it leads in
    /// (an older vote may be one sent before it won, still in flight).
    /// A leader that steps down (it re-elects, or gives up on its quorum)
    /// broadcasts its new round's vote at once, and answers FOLLOWERINFO
    /// with it: its learners leave now, in any phase, instead of waiting
    /// out initLimit or syncLimit. The leader's round, not this server's:
    /// rounds are each server's own count, and a learner that joined an
    /// established leader may be many rounds ahead of it.
    pub fn leader_moved_on(&self, from: ServerId, v: &Vote) -> bool {
        self.leader == from && v.state != PeerState::Leading && v.round > self.leader_round
    }

    /// The link to `peer` is up: a leader still being discovered hears
    /// FOLLOWERINFO again at once.
    pub fn on_connected(&self, cx: &Ctx, peer: ServerId) -> Step {
        if self.leader == peer && self.phase == Phase::Discovery {
            vec![self.follower_info(cx)]
        } else {
            Vec::new()
        }
    }
}

/// The last zxid of each epoch in the log, newest first (empty when the
/// next sync must be a SNAP).
pub fn history(log: &Log, need_snap: bool) -> Vec<Zxid> {
    if need_snap {
        return Vec::new();
    }
    let mut out = vec![log.last_logged()];
    let mut at = log.last_logged();
    while at > log.base_zxid() && out.len() < 16 {
        let prev = log.last_before(Zxid::new(at.epoch(), 0));
        if prev == at {
            break;
        }
        out.push(prev);
        at = prev;
    }
    out
}
