//! The leader: discovery, synchronisation of each learner, broadcast.
//!
//! Discovery: once a quorum of voters (this server included) has sent
//! FOLLOWERINFO, the new epoch is max(acceptedEpoch) + 1; it is persisted
//! as acceptedEpoch before LEADERINFO goes out. A learner's ACKEPOCH shows
//! its currentEpoch and history; one ahead of the leader makes the leader
//! abdicate. No learner is synced before a quorum of voters (this server
//! included) has acknowledged the epoch (ZooKeeper's waitForEpochAck): a
//! learner takes the epoch as its currentEpoch from its sync, and elections
//! rank by currentEpoch first, so a server must never hold an epoch that a
//! later-established, lower epoch's history could beat. Each learner is
//! then sent one `Sync` (DIFF, TRUNC or SNAP,
//! the committed txns, the in-flight proposals, NEWLEADER) and from that
//! moment every proposal and commit, in order. When a quorum of voters has
//! acknowledged NEWLEADER (the leader's own ack waits for its currentEpoch
//! and its log to be durable) the leader is established: it commits its
//! whole history, sends UPTODATE, and serves.
//!
//! Broadcast: a proposal commits when a quorum of voters has it durable —
//! the leader's own vote counts only after `Input::Persisted` — and
//! commits go out strictly in zxid order. Acks are cumulative (a learner
//! persists in order), and count only after that learner's NEWLEADER ack.
//!
//! `Leader` owns the role's state and decides; it changes nothing outside
//! itself. Each step takes a narrow [`Ctx`] (configuration, log, epochs,
//! durable mark) and returns the [`Action`]s its server carries out, in
//! order (`node/leading.rs` runs them). Every quorum question goes to one
//! [`QuorumVerifier`] (`zab::quorum`). The steps live in `leader/discovery.rs`
//! (FOLLOWERINFO to established) and `leader/broadcast.rs` (proposals,
//! commits, learners' requests, pings and expiry).
//!
//! Invariants (the first six checked by [`Leader::check`] after every
//! step, in release builds too; the others asserted where they are used):
//! - established implies the epoch is chosen and the leader's own
//!   NEWLEADER ack is in (its currentEpoch and log durable);
//! - an epoch being persisted (`epoch_token`) is not yet chosen;
//! - an epoch write the leader asks for has its token by the end of the
//!   step that asked;
//! - no learner's ack of this epoch is above the last proposal (a peer
//!   that claims one loses its link: it is network input, not a panic);
//! - a learner that was sent its `Sync` was sent it under a chosen epoch
//!   that a quorum of voters has acknowledged;
//! - nothing is committed beyond the last proposal once established, and
//!   `committed` is the server's last applied zxid (`Node::check_invariants`);
//! - once established, the last proposal is the log's last entry
//!   (`Node::check_invariants`);
//! - a proposal only once the epoch is established (`propose`);
//! - commits are the next zxid after the last applied (`Log::apply_upto`).

use crate::canary::Canary;
use crate::config::Config;
use crate::ids::*;
use crate::log::Log;
use crate::peer::PeerMsg;
use crate::session::ExpiryQueue;
use crate::txn::Txn;
use crate::zab::quorum::QuorumVerifier;
use std::collections::{BTreeMap, BTreeSet};

mod broadcast;
mod discovery;
mod reconfig;

/// A token not issued yet: the step that set it also asked for the
/// persistence whose token the server fills in (`epoch_issued`,
/// `newleader_issued`). Compares above every real token, so it is never
/// taken as done.
const UNISSUED: PersistToken = PersistToken(u64::MAX);

/// A learner's progress through discovery and sync, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// FOLLOWERINFO received.
    Connected,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received; its `Sync` waits until a quorum of voters has
    /// acknowledged the epoch.
    EpochAcked,
    /// `Sync` sent: receives every proposal.
    Synced,
    /// NEWLEADER acknowledged: its acks count.
    NewLeaderAcked,
    /// UPTODATE sent: serving clients.
    UpToDate,
}

#[derive(Debug, Clone)]
pub struct LearnerView {
    pub observer: bool,
    pub stage: Stage,
    pub accepted_epoch: u32,
    /// The epoch boundaries its ACKEPOCH reported, kept until its sync.
    pub history: Vec<Zxid>,
    /// Highest zxid this learner has durable (cumulative ack).
    pub acked: Zxid,
    /// The last zxid its sync carried: its NEWLEADER ack says all of that
    /// is durable (it sends no separate ACK for those proposals).
    pub synced_upto: Zxid,
    pub last_heard: Instant,
}

#[derive(Debug)]
pub struct Leader {
    pub standalone: bool,
    pub epoch: u32,
    /// The new epoch is chosen and durable as acceptedEpoch.
    pub epoch_chosen: bool,
    pub epoch_token: Option<PersistToken>,
    pub newleader_token: Option<PersistToken>,
    /// The log position the leader's own NEWLEADER ack covers.
    pub newleader_zxid: Zxid,
    pub self_acked_newleader: bool,
    /// A quorum of voters (this server included) has acknowledged the
    /// epoch; only then do syncs go out (`maybe_sync_learners`).
    pub epoch_acked: bool,
    pub established: bool,
    pub learners: BTreeMap<ServerId, LearnerView>,
    pub expiry: ExpiryQueue,
    /// Sessions whose CloseSession is proposed but not applied.
    pub closing: BTreeSet<SessionId>,
    pub next_reap: Instant,
    pub next_ping: Instant,
    /// Discovery and sync must be done by then (initLimit).
    pub establish_by: Instant,
    /// (learner, sync id, zxid that must be committed first). One per
    /// client `sync` a learner forwarded; answered once that zxid commits
    /// (bounded in time, not by a count: see `limits`).
    pub sync_waiters: Vec<(ServerId, u64, Zxid)>,
    pub last_proposed: Zxid,
    /// The last zxid this leader has had applied (its server's last
    /// applied once the step's actions ran).
    pub committed: Zxid,
    /// Who may decide: the one place the quorum rule is asked.
    pub quorum: QuorumVerifier,
    me: ServerId,
}

/// What the leader sees of its server when it decides. The log is as it
/// was when the step began: proposals and applies the step returns are
/// not in it yet (the leader counts them in `last_proposed` and
/// `committed`).
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub log: &'a Log,
    pub now: Now,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Highest zxid durable here.
    pub persisted_upto: Zxid,
    /// The planted bug, if any (always `None` without the feature).
    pub canary: Option<Canary>,
}

/// One effect of a leader's step. The server carries them out in order.
#[derive(Debug)]
pub enum Action {
    /// Send this to one learner.
    Send(ServerId, PeerMsg),
    /// Send this to each of these learners (encoded once).
    SendAll(Vec<ServerId>, PeerMsg),
    /// A learner's `Sync` (DIFF, TRUNC or SNAP): counted, then sent.
    Sync(ServerId, PeerMsg),
    /// Send this proposal to these followers, then log it.
    Propose(Txn, Vec<ServerId>),
    /// Apply every logged txn up to this zxid.
    Apply(Zxid),
    /// Take this acceptedEpoch and make the epochs durable; the token goes
    /// back through [`Leader::epoch_issued`].
    AcceptEpoch(u32),
    /// Take this currentEpoch and make the epochs durable (the leader's
    /// own NEWLEADER ack); the token goes back through
    /// [`Leader::newleader_issued`].
    NewEpoch(u32),
    /// Drop the link to a learner that broke the protocol.
    ClosePeer(ServerId, String),
    /// Established: this server serves clients from now on.
    Serving,
    /// Back to election (the reason is logged).
    Look,
    /// These voters' acknowledgements committed this range of zxids
    /// (only when `Config::record_commit_quorums`: the simulator checks
    /// each against the configuration in force).
    CommitQuorum(Zxid, Zxid, BTreeSet<ServerId>),
}

/// The actions of one step, in order.
pub type Step = Vec<Action>;

impl Leader {
    /// A leader of `epoch` (its currentEpoch, until it chooses the next)
    /// whose log ends at `last_logged` and is applied to `last_applied`,
    /// tracking the given sessions (id, timeout) from `now`. A standalone
    /// server's epoch is chosen and its NEWLEADER acknowledged from the
    /// start.
    pub fn new(
        cfg: &Config,
        epoch: u32,
        last_logged: Zxid,
        last_applied: Zxid,
        sessions: impl Iterator<Item = (SessionId, u32)>,
        now: Instant,
    ) -> Leader {
        let standalone = cfg.is_standalone();
        let tick = cfg.tick_time_ms as u64;
        let mut expiry = ExpiryQueue::new(cfg.tick_time_ms);
        for (s, timeout_ms) in sessions {
            expiry.touch(now, s, timeout_ms);
        }
        Leader {
            standalone,
            epoch,
            epoch_chosen: standalone,
            epoch_token: None,
            newleader_token: None,
            newleader_zxid: Zxid::ZERO,
            self_acked_newleader: standalone,
            epoch_acked: standalone,
            established: false,
            learners: BTreeMap::new(),
            expiry,
            closing: BTreeSet::new(),
            next_reap: now.add_millis(cfg.container_check_interval_ms),
            next_ping: now.add_millis(tick / 2),
            establish_by: now.add_millis(tick * cfg.init_limit_ticks as u64),
            sync_waiters: Vec::new(),
            last_proposed: last_logged,
            committed: last_applied,
            quorum: QuorumVerifier::of(cfg),
            me: cfg.server_id,
        }
    }

    /// The first step of a leader just installed as the role.
    pub fn start(&mut self, cx: &Ctx) -> Step {
        let mut step = Vec::new();
        if self.standalone {
            self.establish(cx, &mut step);
        } else {
            self.maybe_choose_epoch(cx, &mut step);
        }
        step
    }

    /// Fills in the token of the acceptedEpoch write the step asked for.
    pub fn epoch_issued(&mut self, t: PersistToken) {
        assert_eq!(self.epoch_token, Some(UNISSUED), "no epoch write pending");
        self.epoch_token = Some(t);
    }

    /// Fills in the token of the currentEpoch write the step asked for.
    pub fn newleader_issued(&mut self, t: PersistToken) {
        assert_eq!(
            self.newleader_token,
            Some(UNISSUED),
            "no NEWLEADER write pending"
        );
        self.newleader_token = Some(t);
    }

    /// Whether the session's CloseSession is proposed but not applied.
    pub fn is_closing(&self, s: SessionId) -> bool {
        self.closing.contains(&s)
    }

    /// A local client was active: its session's deadline moves (`timeout`
    /// if known, else the session's current one), unless it is closing.
    pub fn touch(&mut self, now: Instant, s: SessionId, timeout: Option<u32>) {
        if self.closing.contains(&s) {
            return;
        }
        match timeout {
            Some(t) => self.expiry.touch(now, s, t),
            None => {
                self.expiry.touch_known(now, s);
            }
        }
    }

    /// A CreateSession was applied.
    pub fn session_created(&mut self, now: Instant, s: SessionId, timeout_ms: u32) {
        self.expiry.touch(now, s, timeout_ms);
    }

    /// A CloseSession was applied.
    pub fn session_closed(&mut self, s: SessionId) {
        self.closing.remove(&s);
        self.expiry.remove(s);
    }

    /// Whether these servers, with this one if `me_too`, include a quorum.
    fn quorum_with(&self, me_too: bool, others: impl Iterator<Item = ServerId>) -> bool {
        let me = me_too.then_some(self.me);
        self.quorum.contains_quorum(me.into_iter().chain(others))
    }

    /// The followers (not observers) at or past `stage`.
    fn followers_at(&self, stage: Stage) -> impl Iterator<Item = ServerId> + '_ {
        self.learners
            .iter()
            .filter(move |(_, v)| !v.observer && v.stage >= stage)
            .map(|(s, _)| *s)
    }

    /// When the leader next needs `on_timeout`.
    pub fn deadline(&self, log: &Log) -> Option<Instant> {
        if !self.established {
            return (!self.standalone).then_some(self.establish_by);
        }
        let mut at = self.expiry.next_deadline();
        if log.state().tree.has_reapable() {
            at = Some(at.map_or(self.next_reap, |a| a.min(self.next_reap)));
        }
        if !self.standalone {
            at = Some(at.map_or(self.next_ping, |a| a.min(self.next_ping)));
        }
        at
    }
}

impl Leader {
    /// Asserts the invariants listed at the top of this file.
    pub fn check(&self) {
        assert!(
            !self.established || (self.epoch_chosen && self.self_acked_newleader),
            "leader established in epoch {} before its epoch was chosen and acknowledged",
            self.epoch
        );
        assert!(
            self.epoch_token.is_none() || !self.epoch_chosen,
            "epoch {} chosen while still being persisted",
            self.epoch
        );
        assert!(
            self.epoch_token != Some(UNISSUED) && self.newleader_token != Some(UNISSUED),
            "a persistence the leader asked for was never issued"
        );
        assert!(
            !self.established || self.committed <= self.last_proposed,
            "committed {} beyond the last proposal {}",
            self.committed,
            self.last_proposed
        );
        for (s, v) in &self.learners {
            assert!(
                v.acked.epoch() != self.epoch || v.acked <= self.last_proposed,
                "learner {} acked {} beyond the last proposal {}",
                s.0,
                v.acked,
                self.last_proposed
            );
            assert!(
                v.stage < Stage::Synced || (self.epoch_chosen && self.epoch_acked),
                "learner {} synced before a quorum acknowledged epoch {}",
                s.0,
                self.epoch
            );
        }
    }
}

#[cfg(test)]
mod tests;
