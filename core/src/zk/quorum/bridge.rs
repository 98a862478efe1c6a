//! A Paddock node serving clients while it follows a ZooKeeper ensemble.
//!
//! The node (`Node`, unchanged) is an *observer* of a one-voter ensemble
//! whose only voter, [`FOLLOWED`], is the followed ZooKeeper ensemble.
//! `ZkBridge` stands between the two: it owns the ZooKeeper learner
//! (`ZkLearner`, bridged) on one side and plays the Paddock leader towards
//! the node on the other, so the node's own client pipeline, reply order,
//! watches, session bookkeeping, log and snapshots do all the serving.
//!
//! Towards the node (`BridgeOutput::ToNode`): the link to `FOLLOWED` is up
//! while the learner follows a ZooKeeper leader and down otherwise (the
//! node then drops its clients and looks, as a ZooKeeper observer does
//! when its leader goes); its votes are answered with a leading vote; its
//! FOLLOWERINFO with LEADERINFO (ZooKeeper's epoch); its ACKEPOCH with a
//! `Sync` (the txns past the node's last zxid from the backlog, else a
//! snapshot of the followed tree); its ACK of NEWLEADER with UPTODATE;
//! after that every txn ZooKeeper commits is an `Inform`. A ZooKeeper
//! PING becomes a `Ping`, whose `PingReply` (the sessions the node's
//! clients touched) answers it.
//!
//! Towards ZooKeeper: the node's `Forward`s are REQUEST packets
//! (createSession with its timeout, closeSession, writes in their jute
//! form with the client's auth ids), its `Revalidate`s REVALIDATE, its
//! `SyncRequest`s forwarded syncs (ZooKeeper answers each, in order, with
//! SYNC).
//!
//! Txns (`zk::convert`): ZooKeeper's result, as the Paddock txn with that
//! result. For a write this node forwarded, the client's own opcodes are
//! kept (a `create` is answered as create, not create2), and a failed one
//! is logged as the client's own request, which Paddock's apply fails the
//! same way on the same state (ZooKeeper's ErrorTxn carries only a code).
//!
//! Invariants: the backlog holds consecutive applied txns, the first
//! following `backlog_base`, the last at the learner's last zxid; the node
//! hears `Inform`s only after its `Sync`, in zxid order, never a txn at or
//! below what the `Sync` gave it.

use super::learner::{FollowOutput, Phase, SyncMode as ZkSyncMode, ZkLearner};
use crate::ids::{Instant, ServerId, SessionId, Zxid};
use crate::node::Input;
use crate::peer::{self, PeerMsg, PeerState, SyncMode, Vote};
use crate::proto::{encode_request, op, Id, MultiOp, Request};
use crate::storage::Snapshot;
use crate::txn::{Txn, TxnKind};
use crate::zk::convert::to_paddock;
use std::collections::{BTreeMap, VecDeque};

/// The followed ZooKeeper ensemble, as the node's only voter.
pub const FOLLOWED: ServerId = ServerId(u64::MAX);
/// Converted txns kept for DIFF syncs of the node (the newest).
pub const BACKLOG_MAX: usize = 200_000;
/// Writes forwarded and not yet seen committed, at most (beyond the
/// node's own bounds on connections and queued requests).
pub const FORWARDED_MAX: usize = 1_000_000;

#[derive(Debug)]
pub enum BridgeOutput {
    /// Bytes for the ZooKeeper leader link.
    ToZooKeeper(Vec<u8>),
    /// Close the ZooKeeper link (the reason); the shell finds the leader
    /// again and calls `zk_connected`.
    CloseZooKeeper(String),
    /// An input for the node.
    ToNode(Input),
    /// Synced with a ZooKeeper leader (for the log).
    Synced {
        mode: ZkSyncMode,
        zxid: i64,
        epoch: u32,
    },
    /// A live commit applied: its zxid and ZooKeeper's txn time (lag).
    Applied { zxid: i64, txn_time_ms: i64 },
    /// Worth a log line.
    Warn(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeSync {
    /// The node has not asked (or its link is down).
    Idle,
    /// LEADERINFO sent.
    AwaitAckEpoch,
    /// `Sync` sent: commits go to the node as `Inform`s from now on.
    AwaitAckNewLeader,
    Live,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    pub node_syncs_diff: u64,
    pub node_syncs_snap: u64,
    pub forwarded: u64,
    pub revalidations: u64,
    pub syncs: u64,
    pub failed_txns: u64,
    pub unconvertible: u64,
}

pub struct ZkBridge {
    learner: ZkLearner,
    node_sync: NodeSync,
    /// The node's link to `FOLLOWED` is reported up.
    link_up: bool,
    backlog: VecDeque<Txn>,
    backlog_base: Zxid,
    /// Writes the node forwarded, by (session, cxid), until committed.
    forwarded: BTreeMap<(SessionId, i32), TxnKind>,
    /// Forwarded syncs, oldest first (ZooKeeper answers them in order).
    syncs: VecDeque<u64>,
    /// Revalidations asked, per session, oldest first.
    revalidations: BTreeMap<i64, VecDeque<u64>>,
    /// ZooKeeper PINGs waiting for the node's `PingReply`.
    pings: VecDeque<(i64, Option<Vec<Id>>)>,
    outputs: VecDeque<BridgeOutput>,
    pub stats: BridgeStats,
}

impl ZkBridge {
    /// `learner` must be bridged and hold the node's applied state.
    pub fn new(learner: ZkLearner) -> ZkBridge {
        let base = Zxid(learner.last_zxid() as u64);
        ZkBridge {
            learner,
            node_sync: NodeSync::Idle,
            link_up: false,
            backlog: VecDeque::new(),
            backlog_base: base,
            forwarded: BTreeMap::new(),
            syncs: VecDeque::new(),
            revalidations: BTreeMap::new(),
            pings: VecDeque::new(),
            outputs: VecDeque::new(),
            stats: BridgeStats::default(),
        }
    }

    pub fn learner(&self) -> &ZkLearner {
        &self.learner
    }

    pub fn zk_connected(&mut self, now: Instant) {
        self.learner.connected(now);
        self.pump();
    }

    pub fn zk_bytes(&mut self, now: Instant, bytes: &[u8]) {
        self.learner.handle_bytes(now, bytes);
        self.pump();
    }

    /// The ZooKeeper link broke (or was closed): the node loses its leader.
    pub fn zk_disconnected(&mut self) {
        self.learner.disconnected();
        self.link_down();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.learner.handle_timeout(now);
        self.pump();
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.learner.poll_timeout()
    }

    pub fn poll_output(&mut self) -> Option<BridgeOutput> {
        self.outputs.pop_front()
    }

    /// A message the node sent to `FOLLOWED` (its encoded `PeerMsg`).
    pub fn from_node(&mut self, bytes: &[u8]) {
        let msg = match peer::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.warn(format!("undecodable message from the node: {e}"));
                return;
            }
        };
        self.on_node_msg(msg);
        self.pump();
    }

    fn warn(&mut self, w: String) {
        self.outputs.push_back(BridgeOutput::Warn(w));
    }

    fn send_node(&mut self, msg: &PeerMsg) {
        self.outputs
            .push_back(BridgeOutput::ToNode(Input::PeerMessage {
                from: FOLLOWED,
                bytes: peer::encode(msg),
            }));
    }

    fn following(&self) -> bool {
        self.learner.phase() == Phase::Following
    }

    fn last(&self) -> Zxid {
        Zxid(self.learner.last_zxid() as u64)
    }

    fn epoch(&self) -> u32 {
        self.learner.epochs().1
    }

    fn leading_vote(&self, round: u64) -> Vote {
        Vote {
            leader: FOLLOWED,
            zxid: self.last(),
            peer_epoch: self.epoch(),
            round,
            state: PeerState::Leading,
        }
    }

    fn link_down(&mut self) {
        self.node_sync = NodeSync::Idle;
        self.forwarded.clear();
        self.syncs.clear();
        self.revalidations.clear();
        self.pings.clear();
        if self.link_up {
            self.link_up = false;
            self.outputs
                .push_back(BridgeOutput::ToNode(Input::PeerDisconnected {
                    peer: FOLLOWED,
                }));
        }
    }

    /// Carries out the learner's outputs.
    fn pump(&mut self) {
        while let Some(o) = self.learner.poll_output() {
            match o {
                FollowOutput::Send(b) => self.outputs.push_back(BridgeOutput::ToZooKeeper(b)),
                FollowOutput::Close(why) => {
                    self.outputs.push_back(BridgeOutput::CloseZooKeeper(why));
                    self.link_down();
                }
                FollowOutput::Storage(op) => {
                    self.warn(format!("a bridged learner asked for storage: {op:?}"))
                }
                FollowOutput::Synced { mode, zxid, epoch } => {
                    if mode != ZkSyncMode::Diff {
                        // The tree was replaced: no txn history below it.
                        self.backlog.clear();
                        self.backlog_base = self.last();
                    }
                    self.outputs
                        .push_back(BridgeOutput::Synced { mode, zxid, epoch });
                    if !self.link_up {
                        self.link_up = true;
                        self.outputs
                            .push_back(BridgeOutput::ToNode(Input::PeerConnected {
                                peer: FOLLOWED,
                            }));
                    }
                }
                FollowOutput::Applied { zxid, txn_time_ms } => self
                    .outputs
                    .push_back(BridgeOutput::Applied { zxid, txn_time_ms }),
                FollowOutput::Committed(e) => self.on_committed(&e),
                FollowOutput::Ping { zxid, authinfo } => {
                    if self.node_sync == NodeSync::Live {
                        self.pings.push_back((zxid, authinfo));
                        self.send_node(&PeerMsg::Ping);
                    } else {
                        self.learner.answer_ping(zxid, authinfo, &[]);
                    }
                }
                FollowOutput::SyncDone => match self.syncs.pop_front() {
                    Some(id) => self.send_node(&PeerMsg::SyncDone { id }),
                    None => self.warn("a SYNC from the leader that no sync asked for".into()),
                },
                FollowOutput::Revalidated { session, valid } => {
                    let id = self
                        .revalidations
                        .get_mut(&session)
                        .and_then(|q| q.pop_front());
                    if self
                        .revalidations
                        .get(&session)
                        .is_some_and(|q| q.is_empty())
                    {
                        self.revalidations.remove(&session);
                    }
                    match id {
                        Some(id) => self.send_node(&PeerMsg::Revalidated { id, valid }),
                        None => self.warn(format!(
                            "REVALIDATE answer for session {session:#x} that no client asked about"
                        )),
                    }
                }
                FollowOutput::Warn(w) => self.warn(w),
            }
        }
    }

    fn on_committed(&mut self, e: &crate::zk::txn::ZkEntry) {
        let mut c = match to_paddock(e) {
            Ok(c) => c,
            Err(why) => {
                // Nothing applies it: the node cannot hold this state.
                self.stats.unconvertible += 1;
                self.outputs.push_back(BridgeOutput::CloseZooKeeper(format!(
                    "txn {:#x} cannot be applied: {why}",
                    e.hdr.zxid
                )));
                self.learner.disconnected();
                self.link_down();
                return;
            }
        };
        let key = (c.txn.session, c.txn.cxid);
        if let Some(mine) = self.forwarded.remove(&key) {
            if c.failed.is_some() {
                // ZooKeeper's ErrorTxn carries a code only: the client's
                // own request fails the same way on the same state.
                c.txn.kind = mine;
            } else {
                keep_opcodes(&mut c.txn.kind, &mine);
            }
        }
        if c.failed.is_some() {
            self.stats.failed_txns += 1;
        }
        let txn = c.txn;
        if self.backlog.len() >= BACKLOG_MAX {
            if let Some(old) = self.backlog.pop_front() {
                self.backlog_base = old.zxid;
            }
        }
        if matches!(self.node_sync, NodeSync::AwaitAckNewLeader | NodeSync::Live) {
            self.send_node(&PeerMsg::Inform(txn.clone()));
        }
        self.backlog.push_back(txn);
    }

    fn on_node_msg(&mut self, msg: PeerMsg) {
        match msg {
            PeerMsg::Vote(v) if self.following() => {
                let vote = self.leading_vote(v.round);
                self.send_node(&PeerMsg::Vote(vote));
            }
            PeerMsg::FollowerInfo { .. } if self.following() => {
                self.node_sync = NodeSync::AwaitAckEpoch;
                let epoch = self.epoch();
                self.send_node(&PeerMsg::LeaderInfo { epoch });
            }
            PeerMsg::AckEpoch { last_zxid, .. } if self.node_sync == NodeSync::AwaitAckEpoch => {
                self.sync_node(last_zxid)
            }
            PeerMsg::AckNewLeader { .. } if self.node_sync == NodeSync::AwaitAckNewLeader => {
                self.node_sync = NodeSync::Live;
                let (epoch, committed) = (self.epoch(), self.last());
                self.send_node(&PeerMsg::UpToDate { epoch, committed });
            }
            PeerMsg::Forward {
                session,
                cxid,
                kind,
            } => self.forward(session, cxid, kind),
            PeerMsg::PingReply { touched } => {
                let Some((zxid, authinfo)) = self.pings.pop_front() else {
                    return;
                };
                let touched: Vec<(i64, i32)> = touched
                    .into_iter()
                    .map(|(s, t)| (s.0, t.min(i32::MAX as u32) as i32))
                    .collect();
                self.learner.answer_ping(zxid, authinfo, &touched);
            }
            PeerMsg::SyncRequest { id } => {
                // ZooKeeper's leader only orders a forwarded sync behind
                // what it proposed; the body is not read.
                let body = encode_request(0, &Request::Sync { path: "/".into() });
                if self.learner.request(0, 0, op::SYNC, &body[8..], Vec::new()) {
                    self.stats.syncs += 1;
                    self.syncs.push_back(id);
                }
            }
            PeerMsg::Revalidate {
                id,
                session,
                timeout_ms,
            } => {
                let t = timeout_ms.min(i32::MAX as u32) as i32;
                if self.learner.revalidate(session.0, t) {
                    self.stats.revalidations += 1;
                    self.revalidations
                        .entry(session.0)
                        .or_default()
                        .push_back(id);
                }
            }
            // Votes and FOLLOWERINFO before ZooKeeper is followed (the
            // node asks again once the link is reported up); a follower's
            // ACKs, which an observer never sends.
            _ => {}
        }
    }

    /// Brings the node up to the followed state: the txns it lacks from
    /// the backlog when they are all there, else a snapshot.
    fn sync_node(&mut self, node_last: Zxid) {
        let (epoch, last) = (self.epoch(), self.last());
        let diff = node_last >= self.backlog_base && node_last <= last;
        let (mode, committed) = if diff {
            self.stats.node_syncs_diff += 1;
            let txns = self
                .backlog
                .iter()
                .filter(|t| t.zxid > node_last)
                .cloned()
                .collect();
            (SyncMode::Diff, txns)
        } else {
            self.stats.node_syncs_snap += 1;
            match self.learner.tree().clone().into_state() {
                // `into_state` leaves ZooKeeper's member list out: the
                // node keeps its own (an observer of `FOLLOWED`) until the
                // takeover makes it a member of its own ensemble.
                Ok(state) => (
                    SyncMode::Snap {
                        snapshot: Snapshot::of(&state).encode(),
                    },
                    Vec::new(),
                ),
                Err(e) => {
                    self.warn(format!("the followed tree makes no snapshot: {e}"));
                    return;
                }
            }
        };
        self.node_sync = NodeSync::AwaitAckNewLeader;
        self.send_node(&PeerMsg::Sync {
            epoch,
            mode,
            committed,
            proposals: Vec::new(),
            commit_upto: last,
        });
    }

    fn forward(&mut self, session: SessionId, cxid: i32, kind: TxnKind) {
        let (opcode, body, auth) = match &kind {
            TxnKind::CreateSession { timeout_ms } => (
                op::CREATE_SESSION,
                (*timeout_ms).min(i32::MAX as u32).to_be_bytes().to_vec(),
                Vec::new(),
            ),
            TxnKind::CloseSession => (op::CLOSE_SESSION, Vec::new(), Vec::new()),
            TxnKind::Write { request, auth } => {
                let frame = encode_request(cxid, request);
                let opcode = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                (opcode, frame[8..].to_vec(), auth.clone())
            }
            TxnKind::Reconfig { .. } => {
                // Only a Paddock leader makes these; a learner forwards the
                // client's reconfig request as a write.
                self.warn(format!(
                    "the node forwarded a decided reconfig (session {session}, cxid {cxid}); dropped"
                ));
                return;
            }
        };
        if !self.learner.request(session.0, cxid, opcode, &body, auth) {
            // Not following: the node loses its link at once and its
            // client reconnects; nothing was sent, so nothing is owed.
            return;
        }
        self.stats.forwarded += 1;
        if matches!(kind, TxnKind::Write { .. }) {
            if self.forwarded.len() >= FORWARDED_MAX {
                self.warn(format!(
                    "{FORWARDED_MAX} writes forwarded and not committed; the oldest is forgotten"
                ));
                self.forwarded.pop_first();
            }
            self.forwarded.insert((session, cxid), kind);
        }
    }
}

/// A converted write answered to the client that sent it: the client's
/// own create opcodes (create, create2, createContainer, createTTL),
/// which choose the reply's shape.
fn keep_opcodes(converted: &mut TxnKind, mine: &TxnKind) {
    let (
        TxnKind::Write { request: c, .. },
        TxnKind::Write {
            request: original, ..
        },
    ) = (converted, mine)
    else {
        return;
    };
    match (c, original) {
        (Request::Create { opcode, .. }, Request::Create { opcode: o, .. }) => *opcode = *o,
        (Request::Multi(ops), Request::Multi(orig)) if ops.len() == orig.len() => {
            for (a, b) in ops.iter_mut().zip(orig) {
                if let (MultiOp::Create { opcode, .. }, MultiOp::Create { opcode: o, .. }) = (a, b)
                {
                    *opcode = *o;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
