//! The leader: discovery, synchronisation of each learner, broadcast.
//!
//! Discovery: once a quorum of voters (this server included) has sent
//! FOLLOWERINFO, the new epoch is max(acceptedEpoch) + 1; it is persisted
//! as acceptedEpoch before LEADERINFO goes out. A learner's ACKEPOCH shows
//! its currentEpoch and history; one ahead of the leader makes the leader
//! abdicate. Each learner is then sent one `Sync` (DIFF, TRUNC or SNAP,
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
//! Invariants (the first four checked by [`Leader::check`] after every
//! step, in release builds too; the others asserted where they are used):
//! - established implies the epoch is chosen and the leader's own
//!   NEWLEADER ack is in (its currentEpoch and log durable);
//! - an epoch being persisted (`epoch_token`) is not yet chosen;
//! - no learner's ack of this epoch is above the last proposal (a peer
//!   that claims one loses its link: it is network input, not a panic);
//! - a learner that was sent its `Sync` was sent it under a chosen epoch;
//! - once established, the last proposal is the log's last entry
//!   (`Node::check_invariants`);
//! - a proposal only once the epoch is established (`propose`);
//! - commits are the next zxid after the last applied (`Log::apply_upto`).

use crate::config::Config;
use crate::ids::*;
use crate::session::ExpiryQueue;
use std::collections::{BTreeMap, BTreeSet};

/// A learner's progress through discovery and sync, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// FOLLOWERINFO received.
    Connected,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received and `Sync` sent: receives every proposal.
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
    pub established: bool,
    pub learners: BTreeMap<ServerId, LearnerView>,
    pub expiry: ExpiryQueue,
    /// Sessions whose CloseSession is proposed but not applied.
    pub closing: BTreeSet<SessionId>,
    pub next_reap: Instant,
    pub next_ping: Instant,
    /// Discovery and sync must be done by then (initLimit).
    pub establish_by: Instant,
    /// (learner, sync id, zxid that must be committed first).
    pub sync_waiters: Vec<(ServerId, u64, Zxid)>,
    pub last_proposed: Zxid,
}

impl Leader {
    /// A leader of `epoch` (its currentEpoch, until it chooses the next)
    /// whose log ends at `last_logged`, tracking the given sessions (id,
    /// timeout) from `now`. A standalone server's epoch is chosen and its
    /// NEWLEADER acknowledged from the start.
    pub fn new(
        cfg: &Config,
        epoch: u32,
        last_logged: Zxid,
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
            established: false,
            learners: BTreeMap::new(),
            expiry,
            closing: BTreeSet::new(),
            next_reap: now.add_millis(cfg.container_check_interval_ms),
            next_ping: now.add_millis(tick / 2),
            establish_by: now.add_millis(tick * cfg.init_limit_ticks as u64),
            sync_waiters: Vec::new(),
            last_proposed: last_logged,
        }
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
        for (s, v) in &self.learners {
            assert!(
                v.acked.epoch() != self.epoch || v.acked <= self.last_proposed,
                "learner {} acked {} beyond the last proposal {}",
                s.0,
                v.acked,
                self.last_proposed
            );
            assert!(
                v.stage < Stage::Synced || self.epoch_chosen,
                "learner {} synced before epoch {} was chosen",
                s.0,
                self.epoch
            );
        }
    }
}
