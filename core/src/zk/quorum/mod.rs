//! Apache ZooKeeper's quorum protocol as a learner speaks it: the
//! `QuorumPacket` codec (`packet`), the framing of a leader's byte stream
//! with its streamed snapshots (`stream`). The facts, checked against
//! ZooKeeper 3.8's sources and a running ensemble, are written down in
//! `docs/ZK-QUORUM-PROTOCOL.md`.

pub mod learner;
pub mod packet;
pub mod stream;

pub use packet::{kind, PacketError, QuorumPacket};
pub use stream::{Item, LeaderStream, StreamError};

#[cfg(test)]
mod learner_tests;
