//! Messages between servers of an ensemble, and their wire form.
//!
//! A message is `[version u8][crc32c u32 LE of the payload][payload]`, the
//! payload a `PeerMsg` through `codec`. A peer that breaks the protocol
//! yields one precise `PeerError`; the shell drops and re-dials that link.
//!
//! The core assumes what TCP gives: messages on one link arrive in order
//! and at most once; a broken link loses a suffix and is reported as
//! `Input::PeerDisconnected` before any message of the next connection.

use crate::codec;
use crate::ids::{ServerId, SessionId, Zxid};
use crate::txn::{Txn, TxnKind};
use serde::{Deserialize, Serialize};

pub const PEER_VERSION: u8 = 1;

/// What a voter says it is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
    /// Looking, but a voter that lost durable records: its vote counts
    /// for nobody (see `Recovered::damaged`).
    Repairing,
}

/// A fast-leader-election notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The proposed (or, outside an election, the current) leader.
    pub leader: ServerId,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's currentEpoch.
    pub peer_epoch: u32,
    /// The sender's election round (ZooKeeper's logicalclock).
    pub round: u64,
    pub state: PeerState,
}

impl Vote {
    /// ZooKeeper's totalOrderPredicate: (epoch, zxid, id), highest wins.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// How the leader brings a learner up to date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMode {
    /// The learner's log is a prefix of the leader's: send what follows.
    Diff,
    /// The learner has entries the leader does not: cut after `zxid`, then
    /// what follows.
    Trunc { zxid: Zxid },
    /// Too far behind: a whole snapshot (storage snapshot file bytes).
    Snap {
        #[serde(with = "crate::codec::bytes")]
        snapshot: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    Vote(Vote),
    /// Learner -> leader: discovery opens.
    FollowerInfo {
        accepted_epoch: u32,
        last_zxid: Zxid,
        observer: bool,
    },
    /// Leader -> learner: the epoch it proposes.
    LeaderInfo {
        epoch: u32,
    },
    /// Learner -> leader: epoch accepted (persisted). `history` holds the
    /// last zxid of each epoch in the learner's log, newest first (the
    /// first is its last logged zxid): the leader finds the newest one it
    /// also holds, which proves a common prefix.
    AckEpoch {
        current_epoch: u32,
        last_zxid: Zxid,
        history: Vec<Zxid>,
    },
    /// Leader -> learner: synchronisation and NEWLEADER in one message:
    /// apply `mode`, then `committed` (already committed), then log
    /// `proposals` (in flight: COMMITs follow), then acknowledge NEWLEADER.
    Sync {
        epoch: u32,
        mode: SyncMode,
        committed: Vec<Txn>,
        proposals: Vec<Txn>,
        /// Everything up to here is committed.
        commit_upto: Zxid,
    },
    /// Learner -> leader: everything in `Sync` is durable and the
    /// learner's currentEpoch is `epoch`.
    AckNewLeader {
        epoch: u32,
    },
    /// Leader -> learner: everything up to `committed` is committed; serve
    /// clients.
    UpToDate {
        epoch: u32,
        committed: Zxid,
    },
    Proposal(Txn),
    /// Learner -> leader: every proposal up to `zxid` is durable here.
    Ack {
        zxid: Zxid,
    },
    Commit {
        zxid: Zxid,
    },
    /// Leader -> observer: a committed txn.
    Inform(Txn),
    /// Learner -> leader: a client write to propose.
    Forward {
        session: SessionId,
        cxid: i32,
        kind: TxnKind,
    },
    /// Leader -> learner heartbeat.
    Ping,
    /// Learner -> leader: sessions of its clients seen since the last ping.
    PingReply {
        touched: Vec<(SessionId, u32)>,
    },
    /// Learner -> leader: a client's `sync`.
    SyncRequest {
        id: u64,
    },
    /// Leader -> learner: everything proposed before the request is
    /// committed and its COMMIT was sent before this message.
    SyncDone {
        id: u64,
    },
    /// Learner -> leader: a client reconnects here with this session; is
    /// it live? (ZooKeeper's REVALIDATE.) A live session is touched with
    /// `timeout_ms`, as client activity would.
    Revalidate {
        id: u64,
        session: SessionId,
        timeout_ms: u32,
    },
    /// Leader -> learner: the answer to `Revalidate` `id`.
    Revalidated {
        id: u64,
        valid: bool,
    },
    /// Sent with each vote by a server whose configuration in force was
    /// made by a reconfig: that reconfig (zxid `version`) is committed.
    /// A server holding it as pending takes it as in force, as ZooKeeper's
    /// election notifications carry the sender's configuration; without
    /// this, servers unsure of a committed reconfig could wait forever for
    /// votes from servers it removed.
    ConfigCommitted {
        version: u64,
    },
}

impl PeerMsg {
    /// The variant's name, for logs and traces (no payload is formatted).
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMsg::Vote(_) => "Vote",
            PeerMsg::FollowerInfo { .. } => "FollowerInfo",
            PeerMsg::LeaderInfo { .. } => "LeaderInfo",
            PeerMsg::AckEpoch { .. } => "AckEpoch",
            PeerMsg::Sync { .. } => "Sync",
            PeerMsg::AckNewLeader { .. } => "AckNewLeader",
            PeerMsg::UpToDate { .. } => "UpToDate",
            PeerMsg::Proposal(_) => "Proposal",
            PeerMsg::Ack { .. } => "Ack",
            PeerMsg::Commit { .. } => "Commit",
            PeerMsg::Inform(_) => "Inform",
            PeerMsg::Forward { .. } => "Forward",
            PeerMsg::Ping => "Ping",
            PeerMsg::PingReply { .. } => "PingReply",
            PeerMsg::SyncRequest { .. } => "SyncRequest",
            PeerMsg::SyncDone { .. } => "SyncDone",
            PeerMsg::Revalidate { .. } => "Revalidate",
            PeerMsg::Revalidated { .. } => "Revalidated",
            PeerMsg::ConfigCommitted { .. } => "ConfigCommitted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("empty peer message")]
    Empty,
    #[error("peer speaks version {0}, this server {PEER_VERSION}")]
    Version(u8),
    #[error("peer message shorter than its header ({0} bytes)")]
    Short(usize),
    #[error("peer message checksum mismatch")]
    Checksum,
    #[error("peer message does not decode: {0}")]
    Decode(String),
}

pub fn encode(msg: &PeerMsg) -> Vec<u8> {
    frame(msg)
}

/// Version byte, CRC32C of the body, body.
fn frame<T: Serialize>(body: &T) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_after(&[PEER_VERSION, 0, 0, 0, 0], body, &mut out);
    let crc = crc32c::crc32c(&out[5..]);
    out[1..5].copy_from_slice(&crc.to_le_bytes());
    out
}

/// `PeerMsg::Proposal`'s position among the variants (its tag on the wire).
const PROPOSAL_VARIANT: u32 = 7;

/// Serialises as `PeerMsg::Proposal(txn)` does, from a borrowed txn.
struct ProposalRef<'a>(&'a Txn);

impl Serialize for ProposalRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_variant("PeerMsg", PROPOSAL_VARIANT, "Proposal", self.0)
    }
}

/// The bytes of `PeerMsg::Proposal(txn.clone())`, without the clone (the
/// leader keeps the txn for its own log).
pub fn encode_proposal(txn: &Txn) -> Vec<u8> {
    frame(&ProposalRef(txn))
}

pub fn decode(bytes: &[u8]) -> Result<PeerMsg, PeerError> {
    let (&version, rest) = bytes.split_first().ok_or(PeerError::Empty)?;
    if version != PEER_VERSION {
        return Err(PeerError::Version(version));
    }
    if rest.len() < 4 {
        return Err(PeerError::Short(bytes.len()));
    }
    let crc = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&rest[4..]) != crc {
        return Err(PeerError::Checksum);
    }
    codec::decode(&rest[4..]).map_err(|e| PeerError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_proposal_encodes_as_the_owned_one() {
        let txn = Txn {
            zxid: Zxid(0x2_0000_0007),
            time_ms: 12,
            session: SessionId(0x55),
            cxid: 3,
            kind: TxnKind::CreateSession { timeout_ms: 4000 },
        };
        let bytes = encode_proposal(&txn);
        assert_eq!(bytes, encode(&PeerMsg::Proposal(txn.clone())));
        assert_eq!(decode(&bytes), Ok(PeerMsg::Proposal(txn)));
    }

    #[test]
    fn round_trip_and_precise_errors() {
        let m = PeerMsg::Vote(Vote {
            leader: ServerId(3),
            zxid: Zxid(0x1_0000_0005),
            peer_epoch: 1,
            round: 9,
            state: PeerState::Looking,
        });
        let b = encode(&m);
        assert_eq!(decode(&b).unwrap(), m);
        assert_eq!(decode(&[]), Err(PeerError::Empty));
        assert_eq!(decode(&[9, 0, 0, 0, 0]), Err(PeerError::Version(9)));
        let mut bad = b.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(decode(&bad), Err(PeerError::Checksum));
        assert!(matches!(decode(&b[..3]), Err(PeerError::Short(_))));
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let v = |e, z, id| Vote {
            leader: ServerId(id),
            zxid: Zxid(z),
            peer_epoch: e,
            round: 0,
            state: PeerState::Looking,
        };
        assert!(v(2, 0, 1).beats(&v(1, 99, 9)));
        assert!(v(1, 5, 1).beats(&v(1, 4, 9)));
        assert!(v(1, 5, 2).beats(&v(1, 5, 1)));
        assert!(!v(1, 5, 1).beats(&v(1, 5, 1)));
    }
}
