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

use crate::ids::*;

/// A follower can decide before its leader does; FOLLOWERINFO that reaches
/// a leader still finishing its election is dropped, so it is resent this
/// often (not once a tick) until LEADERINFO arrives.
pub(crate) const FOLLOWER_INFO_RESEND_MS: u64 = 50;

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
    pub epoch: u32,
    pub phase: Phase,
    pub commit_upto: Zxid,
    pub last_heard: Instant,
    /// Discovery and sync must be done by then (initLimit).
    pub sync_by: Instant,
    pub next_info: Instant,
    /// Highest zxid acknowledged to the leader.
    pub acked: Zxid,
}
