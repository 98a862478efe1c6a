//! A ZooKeeper observer as a sans-IO role: Paddock following a running
//! ZooKeeper ensemble over ZooKeeper's own learner protocol
//! (`docs/ZK-QUORUM-PROTOCOL.md`).
//!
//! The shell opens a TCP connection to a candidate leader's quorum port
//! and calls [`ZkLearner::connected`]; bytes read go to
//! [`ZkLearner::handle_bytes`]; [`ZkLearner::poll_output`] hands out the
//! bytes to write, a link to close (with the reason), storage operations
//! (the core's own `StorageOp`s: `Epochs` and `Snapshot`) and events;
//! [`ZkLearner::poll_timeout`] says when to call `handle_timeout`.
//!
//! Mirrors `Learner.registerWithLeader` / `syncWithLeader` and
//! `Observer.processPacket`: OBSERVERINFO -> LEADERINFO -> ACKEPOCH ->
//! DIFF | TRUNC | SNAP (+ streamed snapshot) -> PROPOSAL/COMMIT pairs and
//! INFORMs -> NEWLEADER (ACK) -> UPTODATE (ACK) -> INFORMs and PINGs.
//!
//! The state is a ZooKeeper-faithful tree (`zk::tree`, the replay code of
//! `paddock import`): ZooKeeper's txns are its results, applied as
//! ZooKeeper's own learners apply them, and the leader's tree digest that
//! 3.6+ puts after every txn is checked against ours.
//!
//! Invariants: `tree.last_zxid` only grows within a link, except on a
//! TRUNC, which (below what we applied) discards the tree and asks for a
//! fresh sync; txns are applied in the order received; an observer never
//! votes, so nothing here can make ZooKeeper commit anything. Durability:
//! an observer's ACKs count for nothing in ZooKeeper, so they are sent
//! without waiting for the disk; what Paddock has not yet written is
//! fetched again from ZooKeeper (DIFF from the last snapshot's zxid) after
//! a restart.

use super::packet::{self, kind, ping_sessions, PacketError, QuorumPacket, PROTOCOL_VERSION};
use super::stream::{Item, LeaderStream, StreamError};
use crate::ids::{Instant, PersistToken, Zxid};
use crate::proto::{Acl, Id};
use crate::storage::{Snapshot, StorageOp};
use crate::zk::snapshot::decode_sync_stream;
use crate::zk::tree::{StatPersisted, ZkNode, ZkTree};
use crate::zk::txn::{apply, decode_entry, ZkEntry};
use std::collections::VecDeque;
use std::sync::Arc;

/// Txns between two Paddock snapshots of the followed state.
pub const SNAPSHOT_EVERY: u64 = 10_000;
/// Proposals a DIFF may carry before their COMMITs, at most.
pub const PENDING_MAX: usize = 1_000_000;

#[derive(Clone, Debug)]
pub struct FollowConfig {
    /// The id announced in OBSERVERINFO (Paddock's own `myid`; the
    /// ZooKeeper ensemble need not list it).
    pub sid: u64,
    pub tick_ms: u64,
    /// Ticks without a packet from the leader while syncing / following
    /// before the link is given up (ZooKeeper's initLimit / syncLimit).
    pub init_limit: u64,
    pub sync_limit: u64,
    pub snapshot_every: u64,
    /// Serving clients through a Paddock node (`bridge`): every applied
    /// txn is handed out (`Committed`), PINGs are answered by the caller
    /// with its clients' sessions (`Ping`, [`ZkLearner::answer_ping`]),
    /// forwarded syncs are reported (`SyncDone`), and nothing is
    /// persisted here (the node keeps its own log, snapshots and epochs).
    pub bridged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Disconnected,
    AwaitLeaderInfo,
    AwaitSyncMode,
    AwaitSnapshot,
    /// Between DIFF/TRUNC/SNAP and UPTODATE.
    Syncing,
    Following,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    Diff,
    Trunc,
    Snap,
}

#[derive(Debug)]
pub enum FollowOutput {
    /// Bytes for the leader link.
    Send(Vec<u8>),
    /// Close the link (the shell then tries the listed servers again).
    Close(String),
    Storage(StorageOp),
    /// UPTODATE: synced with the leader at `zxid`.
    Synced {
        mode: SyncMode,
        zxid: i64,
        epoch: u32,
    },
    /// An INFORM applied: its zxid and the leader's wall-clock time in it.
    Applied {
        zxid: i64,
        txn_time_ms: i64,
    },
    /// The leader's answer to a REVALIDATE.
    Revalidated {
        session: i64,
        valid: bool,
    },
    /// Something worth a log line that does not close the link.
    Warn(String),
    /// (bridged) A txn applied, above what was applied before.
    Committed(Box<ZkEntry>),
    /// (bridged) The leader's PING, to be answered with
    /// [`ZkLearner::answer_ping`].
    Ping {
        zxid: i64,
        authinfo: Option<Vec<Id>>,
    },
    /// (bridged) The leader's SYNC: the oldest forwarded sync is done.
    SyncDone,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowStats {
    pub syncs: u64,
    pub snaps: u64,
    pub diffs: u64,
    pub truncs: u64,
    pub txns_applied: u64,
    pub pings_answered: u64,
    pub digests_checked: u64,
    pub digest_mismatches: u64,
}

/// Why the link to a leader is closed.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("malformed stream from the leader: {0}")]
    Stream(#[from] StreamError),
    #[error("malformed packet from the leader: {0}")]
    Packet(#[from] PacketError),
    #[error("{0} from the leader while {1:?}")]
    Unexpected(&'static str, Phase),
    #[error("the leader's epoch {new} is below our accepted epoch {accepted}")]
    EpochBehind { new: u32, accepted: u32 },
    #[error("txn in {0}: {1}")]
    BadTxn(&'static str, String),
    #[error("streamed snapshot: {0}")]
    BadSnapshot(String),
    #[error("TRUNC to {to:#x} below what was applied ({applied:#x}): state discarded, a fresh sync follows")]
    TruncBelowApplied { to: i64, applied: i64 },
    #[error("more than {PENDING_MAX} proposals without COMMIT")]
    TooManyPending,
}

pub struct ZkLearner {
    cfg: FollowConfig,
    tree: ZkTree,
    phase: Phase,
    stream: LeaderStream,
    accepted_epoch: u32,
    current_epoch: u32,
    /// The epoch of the leader we are syncing with (LEADERINFO).
    new_epoch: u32,
    sync_mode: Option<SyncMode>,
    /// The zxid a SNAP packet announced for the snapshot behind it.
    snap_zxid: i64,
    /// PROPOSALs of a DIFF waiting for their COMMIT.
    pending: VecDeque<ZkEntry>,
    outputs: VecDeque<FollowOutput>,
    last_heard: Instant,
    since_snapshot: u64,
    next_token: u64,
    pub stats: FollowStats,
}

/// ZooKeeper's empty database (`DataTree()`): the root with empty data,
/// `/zookeeper` and `/zookeeper/quota`, every stat zero.
pub fn initial_tree() -> ZkTree {
    let mut t = ZkTree::new();
    let open = t.intern_acl(Acl::open_unsafe());
    for p in ["/", "/zookeeper", "/zookeeper/quota"] {
        let n = ZkNode {
            data: Some(Arc::from(&[][..])),
            acl: open.clone(),
            stat: StatPersisted::default(),
        };
        t.insert_loaded(p.to_string(), n)
            .expect("each node's parent is inserted before it");
    }
    t
}

impl ZkLearner {
    /// `tree`: what was recovered (`initial_tree()` on a first start).
    pub fn new(cfg: FollowConfig, tree: ZkTree, accepted_epoch: u32, current_epoch: u32) -> Self {
        ZkLearner {
            cfg,
            tree,
            phase: Phase::Disconnected,
            stream: LeaderStream::new(),
            accepted_epoch,
            current_epoch,
            new_epoch: 0,
            sync_mode: None,
            snap_zxid: 0,
            pending: VecDeque::new(),
            outputs: VecDeque::new(),
            last_heard: Instant(0),
            since_snapshot: 0,
            next_token: 1,
            stats: FollowStats::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn tree(&self) -> &ZkTree {
        &self.tree
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid
    }

    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// A new link to a candidate leader: announce ourselves.
    pub fn connected(&mut self, now: Instant) {
        self.stream = LeaderStream::new();
        self.pending.clear();
        self.sync_mode = None;
        self.phase = Phase::AwaitLeaderInfo;
        self.last_heard = now;
        let info = QuorumPacket::new(
            kind::OBSERVERINFO,
            Zxid::new(self.accepted_epoch, 0).as_i64(),
            Some(packet::learner_info(self.cfg.sid, 0)),
        );
        self.send(&info);
    }

    /// The link broke (or the shell closed it).
    pub fn disconnected(&mut self) {
        self.phase = Phase::Disconnected;
        self.pending.clear();
    }

    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Disconnected {
            return;
        }
        self.last_heard = now;
        self.stream.push(bytes);
        loop {
            let r = match self.stream.next_item() {
                Ok(Some(item)) => self.on_item(item),
                Ok(None) => return,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = r {
                self.close(e.to_string());
                return;
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Disconnected {
            return;
        }
        let limit = self.silence_limit_ms();
        if now.millis_since(self.last_heard) >= limit {
            self.close(format!("nothing from the leader for {limit} ms"));
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase != Phase::Disconnected)
            .then(|| self.last_heard.add_millis(self.silence_limit_ms()))
    }

    pub fn poll_output(&mut self) -> Option<FollowOutput> {
        self.outputs.pop_front()
    }

    /// A Paddock snapshot of the followed state now (at shutdown, say).
    pub fn snapshot_now(&mut self) {
        self.write_snapshot();
    }

    /// Answers the leader's PING with the sessions our clients touched
    /// since the last one (each with its timeout): that keeps them alive
    /// on ZooKeeper's leader.
    pub fn answer_ping(&mut self, zxid: i64, authinfo: Option<Vec<Id>>, touched: &[(i64, i32)]) {
        if self.phase == Phase::Disconnected {
            return;
        }
        let mut reply = QuorumPacket::new(kind::PING, zxid, Some(ping_sessions(touched)));
        reply.authinfo = authinfo;
        self.send(&reply);
        self.stats.pings_answered += 1;
    }

    /// Forwards a client request to the leader (REQUEST: session, cxid,
    /// type, the request's bytes; the client's auth ids). False when not
    /// following: the link is not there to carry it.
    pub fn request(
        &mut self,
        session: i64,
        cxid: i32,
        op: i32,
        body: &[u8],
        auth: Vec<Id>,
    ) -> bool {
        if self.phase != Phase::Following {
            return false;
        }
        let mut p = QuorumPacket::new(
            kind::REQUEST,
            -1,
            Some(packet::request_data(session, cxid, op, body)),
        );
        p.authinfo = Some(auth);
        self.send(&p);
        true
    }

    /// Asks the leader whether a reconnecting client's session is live
    /// (REVALIDATE: session, timeout); the answer is `Revalidated`.
    pub fn revalidate(&mut self, session: i64, timeout_ms: i32) -> bool {
        if self.phase != Phase::Following {
            return false;
        }
        let mut w = crate::proto::Writer::new();
        w.i64(session).i32(timeout_ms);
        self.send(&QuorumPacket::new(kind::REVALIDATE, -1, Some(w.into_vec())));
        true
    }

    fn silence_limit_ms(&self) -> u64 {
        let ticks = if self.phase == Phase::Following {
            self.cfg.sync_limit
        } else {
            self.cfg.init_limit
        };
        ticks.max(1) * self.cfg.tick_ms.max(1)
    }

    fn close(&mut self, why: String) {
        self.phase = Phase::Disconnected;
        self.pending.clear();
        self.outputs.push_back(FollowOutput::Close(why));
    }

    fn send(&mut self, p: &QuorumPacket) {
        self.outputs.push_back(FollowOutput::Send(p.encode()));
    }

    fn token(&mut self) -> PersistToken {
        let t = PersistToken(self.next_token);
        self.next_token += 1;
        t
    }

    fn persist_epochs(&mut self) {
        if self.cfg.bridged {
            return;
        }
        let token = self.token();
        self.outputs
            .push_back(FollowOutput::Storage(StorageOp::Epochs {
                token,
                accepted_epoch: self.accepted_epoch,
                current_epoch: self.current_epoch,
                repairing: false,
            }));
    }

    fn write_snapshot(&mut self) {
        self.since_snapshot = 0;
        if self.cfg.bridged {
            return;
        }
        match self.tree.clone().into_state() {
            Ok(state) => self
                .outputs
                .push_back(FollowOutput::Storage(StorageOp::Snapshot(Snapshot::of(
                    &state,
                )))),
            Err(e) => self
                .outputs
                .push_back(FollowOutput::Warn(format!("no snapshot written: {e}"))),
        }
    }

    fn on_item(&mut self, item: Item) -> Result<(), LinkError> {
        let p = match item {
            Item::Snapshot(bytes) => return self.on_snapshot(&bytes),
            Item::Packet(p) => p,
        };
        match (self.phase, p.kind) {
            (Phase::AwaitLeaderInfo, kind::LEADERINFO) => self.on_leaderinfo(&p),
            (Phase::AwaitSyncMode, kind::DIFF | kind::TRUNC | kind::SNAP) => self.on_sync_mode(&p),
            (Phase::Syncing, kind::PROPOSAL) => {
                if self.pending.len() >= PENDING_MAX {
                    return Err(LinkError::TooManyPending);
                }
                let e = decode_entry(p.data.as_deref().unwrap_or(&[]))
                    .map_err(|e| LinkError::BadTxn("PROPOSAL", e))?;
                self.pending.push_back(e);
                Ok(())
            }
            (Phase::Syncing, kind::COMMIT) => {
                match self.pending.front() {
                    Some(e) if e.hdr.zxid == p.zxid => {
                        let e = self.pending.pop_front().expect("front exists");
                        self.apply_entry(&e, false);
                    }
                    _ => self.outputs.push_back(FollowOutput::Warn(format!(
                        "COMMIT {:#x} matches no pending proposal",
                        p.zxid
                    ))),
                }
                Ok(())
            }
            (Phase::Syncing | Phase::Following, kind::INFORM | kind::INFORMANDACTIVATE) => {
                self.on_inform(&p)
            }
            (Phase::Syncing, kind::NEWLEADER) => {
                // What the sync brought is made durable; observers' ACKs
                // are not counted, so the ACK does not wait for it.
                self.current_epoch = self.new_epoch;
                self.persist_epochs();
                if self.sync_mode != Some(SyncMode::Diff) {
                    self.write_snapshot();
                }
                self.send(&QuorumPacket::new(kind::ACK, p.zxid, None));
                Ok(())
            }
            (Phase::Syncing, kind::UPTODATE) => {
                self.phase = Phase::Following;
                self.stats.syncs += 1;
                let ack = Zxid::new(self.new_epoch, 0).as_i64();
                self.send(&QuorumPacket::new(kind::ACK, ack, None));
                self.outputs.push_back(FollowOutput::Synced {
                    mode: self.sync_mode.unwrap_or(SyncMode::Diff),
                    zxid: self.tree.last_zxid,
                    epoch: self.new_epoch,
                });
                Ok(())
            }
            (Phase::Syncing | Phase::Following, kind::PING) if self.cfg.bridged => {
                self.outputs.push_back(FollowOutput::Ping {
                    zxid: p.zxid,
                    authinfo: p.authinfo,
                });
                Ok(())
            }
            (Phase::Following, kind::SYNC) if self.cfg.bridged => {
                self.outputs.push_back(FollowOutput::SyncDone);
                Ok(())
            }
            (Phase::Syncing | Phase::Following, kind::PING) => {
                // No client of ours has touched a session: an empty list.
                let mut reply = QuorumPacket::new(kind::PING, p.zxid, Some(ping_sessions(&[])));
                reply.authinfo = p.authinfo;
                self.send(&reply);
                self.stats.pings_answered += 1;
                Ok(())
            }
            (Phase::Following, kind::PROPOSAL | kind::COMMIT | kind::SYNC) => Ok(()),
            (Phase::Following, kind::REVALIDATE) => {
                let (session, valid) = packet::revalidate_answer(p.data.as_deref())?;
                self.outputs
                    .push_back(FollowOutput::Revalidated { session, valid });
                Ok(())
            }
            (phase, k) => Err(LinkError::Unexpected(packet::kind_name(k), phase)),
        }
    }

    fn on_leaderinfo(&mut self, p: &QuorumPacket) -> Result<(), LinkError> {
        let new = Zxid(p.zxid as u64).epoch();
        let version = p
            .data
            .as_deref()
            .and_then(|d| d.get(..4))
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if version != Some(PROTOCOL_VERSION) {
            self.outputs.push_back(FollowOutput::Warn(format!(
                "leader speaks protocol {version:?}, expected {PROTOCOL_VERSION:#x}"
            )));
        }
        let epoch_data: i32 = if new > self.accepted_epoch {
            let cur = self.current_epoch as i32;
            self.accepted_epoch = new;
            self.persist_epochs();
            cur
        } else if new == self.accepted_epoch {
            -1
        } else {
            return Err(LinkError::EpochBehind {
                new,
                accepted: self.accepted_epoch,
            });
        };
        self.new_epoch = new;
        let ack = QuorumPacket::new(
            kind::ACKEPOCH,
            self.tree.last_zxid,
            Some(epoch_data.to_be_bytes().to_vec()),
        );
        self.send(&ack);
        self.phase = Phase::AwaitSyncMode;
        Ok(())
    }

    fn on_sync_mode(&mut self, p: &QuorumPacket) -> Result<(), LinkError> {
        match p.kind {
            kind::DIFF => {
                self.stats.diffs += 1;
                self.sync_mode = Some(SyncMode::Diff);
                self.phase = Phase::Syncing;
            }
            kind::TRUNC => {
                self.stats.truncs += 1;
                if p.zxid < self.tree.last_zxid {
                    // Our tree cannot be rolled back txn by txn: start
                    // empty, so the next link syncs all of it again.
                    let applied = self.tree.last_zxid;
                    self.tree = initial_tree();
                    return Err(LinkError::TruncBelowApplied {
                        to: p.zxid,
                        applied,
                    });
                }
                self.sync_mode = Some(SyncMode::Trunc);
                self.phase = Phase::Syncing;
            }
            _ => {
                self.stats.snaps += 1;
                self.sync_mode = Some(SyncMode::Snap);
                self.phase = Phase::AwaitSnapshot;
                self.snap_zxid = p.zxid;
            }
        }
        Ok(())
    }

    fn on_snapshot(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if self.phase != Phase::AwaitSnapshot {
            return Err(LinkError::Unexpected("a streamed snapshot", self.phase));
        }
        let snap = decode_sync_stream(bytes)
            .map_err(|d| LinkError::BadSnapshot(format!("at byte {}: {}", d.offset, d.why)))?;
        let mut tree = snap.tree;
        tree.last_zxid = self.snap_zxid;
        self.tree = tree;
        self.phase = Phase::Syncing;
        Ok(())
    }

    fn on_inform(&mut self, p: &QuorumPacket) -> Result<(), LinkError> {
        let data = p.data.as_deref().unwrap_or(&[]);
        let (what, txn) = if p.kind == kind::INFORMANDACTIVATE {
            // long suggested leader id, then the txn (a reconfig).
            ("INFORMANDACTIVATE", data.get(8..).unwrap_or(&[]))
        } else {
            ("INFORM", data)
        };
        let e = decode_entry(txn).map_err(|e| LinkError::BadTxn(what, e))?;
        if e.hdr.zxid != p.zxid {
            return Err(LinkError::BadTxn(
                what,
                format!("packet zxid {:#x} but txn zxid {:#x}", p.zxid, e.hdr.zxid),
            ));
        }
        self.apply_entry(&e, true);
        Ok(())
    }

    /// Applies one committed txn; `inform`: it came as an INFORM (a live
    /// commit, reported for the lag figures).
    fn apply_entry(&mut self, e: &ZkEntry, inform: bool) {
        let last = self.tree.last_zxid;
        let (z, l) = (Zxid(e.hdr.zxid as u64), Zxid(last as u64));
        let in_order = e.hdr.zxid > last
            && (z.epoch() > l.epoch() || z.counter() == l.counter().wrapping_add(1));
        if e.hdr.zxid <= last && self.sync_mode != Some(SyncMode::Snap) {
            // Already applied (a DIFF overlapping what we hold).
            return;
        }
        if !in_order && e.hdr.zxid > last {
            self.outputs.push_back(FollowOutput::Warn(format!(
                "txn {:#x} after {last:#x}: zxids are not consecutive",
                e.hdr.zxid
            )));
        }
        apply(&mut self.tree, e);
        self.stats.txns_applied += 1;
        if self.cfg.bridged && e.hdr.zxid > last {
            self.outputs
                .push_back(FollowOutput::Committed(Box::new(e.clone())));
        }
        if let Some((version, want)) = e.digest {
            // Version 2 is the digest `zk::tree` keeps; over a fuzzy
            // snapshot it holds once replay has caught up.
            if version == 2 && self.phase == Phase::Following {
                self.stats.digests_checked += 1;
                let got = self.tree.digest();
                if got != want {
                    self.stats.digest_mismatches += 1;
                    self.outputs.push_back(FollowOutput::Warn(format!(
                        "tree digest after {:#x} is {got:#x}, the leader's is {want:#x}",
                        e.hdr.zxid
                    )));
                }
            }
        }
        if inform {
            self.outputs.push_back(FollowOutput::Applied {
                zxid: e.hdr.zxid,
                txn_time_ms: e.hdr.time,
            });
        }
        self.since_snapshot += 1;
        if self.phase == Phase::Following && self.since_snapshot >= self.cfg.snapshot_every {
            self.write_snapshot();
        }
    }
}
