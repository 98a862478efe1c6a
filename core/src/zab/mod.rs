//! Replication: fast leader election and ZooKeeper's atomic broadcast
//! (discovery, synchronisation, broadcast): the roles' types. Each owns
//! its state and decides, returning what should happen (`Step`s of
//! `Action`s); `Node` carries those out (`node/leading.rs`,
//! `node/learning.rs`). This module imports nothing of `node`.
//!
//! - `Looking`: running an election (`election`).
//! - `Leading`: discovery with a quorum, sync of each learner, then
//!   PROPOSAL -> ACK -> COMMIT (`leader`). Standalone is a leader of one,
//!   established from the start, and takes exactly the same commit path.
//! - `Learning`: a follower or an observer (`learner`).
//!
//! `quorum` holds the one quorum rule every leader decision asks.
//!
//! Durability before acknowledgement: a learner's ACK of proposals and of
//! NEWLEADER, the leader's own vote, and every epoch change wait for
//! `Input::Persisted` of what they depend on (and, after a SNAP, for
//! `Input::SnapshotWritten`).

pub mod election;
pub mod leader;
pub mod learner;
pub mod quorum;

pub use election::{Decision, Election};
pub use leader::Leader;
pub use learner::Learner;
pub use quorum::QuorumVerifier;

#[derive(Debug)]
pub enum Role {
    Looking(Election),
    Leading(Leader),
    Learning(Learner),
}

impl Role {
    pub fn server_role(&self) -> ServerRole {
        use ServerRole as R;
        match self {
            Role::Looking(_) => R::Looking,
            Role::Leading(l) if l.standalone => R::Standalone,
            Role::Leading(_) => R::Leader,
            Role::Learning(l) if l.observer => R::Observer,
            Role::Learning(_) => R::Follower,
        }
    }
}

/// What a server is doing. ZooKeeper's names for it (`srvr`'s Mode,
/// `server_state`) come from `zk_name`, where they are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerRole {
    #[default]
    Looking,
    Leader,
    Follower,
    Observer,
    Standalone,
}

impl ServerRole {
    pub fn zk_name(self) -> &'static str {
        match self {
            ServerRole::Looking => "looking",
            ServerRole::Leader => "leader",
            ServerRole::Follower => "follower",
            ServerRole::Observer => "observer",
            ServerRole::Standalone => "standalone",
        }
    }

    /// Leads (a standalone server leads an ensemble of one).
    pub fn is_leading(self) -> bool {
        matches!(self, ServerRole::Leader | ServerRole::Standalone)
    }
}

impl std::fmt::Display for ServerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.zk_name())
    }
}
