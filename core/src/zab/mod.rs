//! Replication: fast leader election and ZooKeeper's atomic broadcast
//! (discovery, synchronisation, broadcast): the roles' state types. Their
//! steps are methods of `Node` in `node/leading.rs` and
//! `node/learning.rs`; this module imports nothing of `node`.
//!
//! - `Looking`: running an election (`election`).
//! - `Leading`: discovery with a quorum, sync of each learner, then
//!   PROPOSAL -> ACK -> COMMIT (`leader`). Standalone is a leader of one,
//!   established from the start, and takes exactly the same commit path.
//! - `Learning`: a follower or an observer (`learner`).
//!
//! Durability before acknowledgement: a learner's ACK of proposals and of
//! NEWLEADER, the leader's own vote, and every epoch change wait for
//! `Input::Persisted` of what they depend on (and, after a SNAP, for
//! `Input::SnapshotWritten`).

pub mod election;
pub mod leader;
pub mod learner;

pub use election::{Decision, Election};
pub use leader::Leader;
pub use learner::Learner;

#[derive(Debug)]
pub enum Role {
    Looking(Election),
    Leading(Leader),
    Learning(Learner),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Looking(_) => "looking",
            Role::Leading(l) if l.standalone => "standalone",
            Role::Leading(_) => "leader",
            Role::Learning(l) if l.observer => "observer",
            Role::Learning(_) => "follower",
        }
    }
}
