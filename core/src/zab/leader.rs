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
