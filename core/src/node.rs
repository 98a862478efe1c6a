//! `Node`: one ZooKeeper server as a sans-IO state machine.
//!
//! Inputs go in through [`Node::handle`] and [`Node::handle_timeout`];
//! effects come out of [`Node::poll_output`]; [`Node::poll_timeout`] says
//! when to call `handle_timeout` next. A spurious `handle_timeout` is
//! harmless. Standalone is an ensemble of one: every write is proposed,
//! persisted (`StorageOp::Append` -> `Input::Persisted`), committed and then
//! applied, and only then is its reply released.

use crate::ids::*;
use crate::storage::{Recovered, StorageOp};

/// Something that happened outside the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A client connection was accepted. `addr` is the peer IP as text
    /// (used by the `ip` ACL scheme and `cons`).
    ClientConnected { conn: ConnId, addr: String },
    /// One client frame, its 4-byte length prefix already stripped.
    ClientFrame { conn: ConnId, frame: Vec<u8> },
    /// The client's socket is gone (EOF, error, or the shell closed it).
    ClientClosed { conn: ConnId },
    /// The `StorageOp` with this token (and every earlier one) is durable.
    Persisted { token: PersistToken },
    /// A snapshot requested by `StorageOp::Snapshot` is on disk.
    SnapshotWritten { zxid: Zxid },
    /// One message from another server (the shell's framing stripped).
    PeerMessage { from: ServerId, bytes: Vec<u8> },
    /// A link to a peer is up: messages sent from now on can arrive.
    PeerConnected { peer: ServerId },
    /// A link to a peer broke: messages sent on it may be lost. Reported
    /// before any message of the next connection.
    PeerDisconnected { peer: ServerId },
}

/// An effect for the driver to carry out.
#[derive(Debug)]
pub enum Output {
    /// Write one frame to a client (the driver adds the 4-byte length
    /// prefix). Frames for one connection must be written in order; the
    /// driver may coalesce all frames of one poll loop into one write.
    SendClient { conn: ConnId, frame: Vec<u8> },
    /// Close a client connection after writing what was queued before it.
    CloseClient { conn: ConnId, reason: String },
    /// A durable effect (log append, epochs, truncation, snapshot): see
    /// `storage::StorageOp` for the order and answers it requires.
    Storage(StorageOp),
    /// Send one message to a peer (dropped if the link is down).
    SendPeer { to: ServerId, bytes: Vec<u8> },
    /// Drop the link to a peer that broke the protocol (it is re-dialled).
    ClosePeer { peer: ServerId, reason: String },
}

/// Figures for the four-letter words and metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub mode: &'static str,
    pub last_zxid: Zxid,
    pub node_count: u64,
    pub approximate_data_size: u64,
    pub ephemerals_count: u64,
    pub sessions: u64,
    pub connections: u64,
    pub watch_count: u64,
    pub watched_paths: u64,
    pub outstanding_requests: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    pub latency_total_ms: u64,
    pub latency_count: u64,
    pub digest: u64,
    /// ZooKeeper's `readlatency` and `updatelatency`: milliseconds from a
    /// request's arrival to its reply, reads and writes apart.
    pub read_latency: crate::latency::Latencies,
    pub update_latency: crate::latency::Latencies,
}

/// One connection as `cons` shows it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub conn: ConnId,
    pub addr: String,
    pub session: Option<SessionId>,
    pub timeout_ms: u32,
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    pub last_zxid: Zxid,
}

/// One server.
pub struct Node {
    inner: crate::request::Server,
}

impl Node {
    /// Builds a node from recovered state (`storage::recover`, or
    /// `Recovered::empty()` for a fresh data dir).
    pub fn new(config: crate::Config, recovered: Recovered, now: Now) -> Node {
        Node {
            inner: crate::request::Server::new(config, recovered, now),
        }
    }

    pub fn handle(&mut self, now: Now, input: Input) {
        self.inner.handle(now, input)
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.inner.handle_timeout(now)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.inner.poll_output()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    pub fn stats(&self) -> NodeStats {
        self.inner.stats()
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        self.inner.connections()
    }

    /// Resets the counters `srst`/`crst` reset.
    pub fn reset_stats(&mut self) {
        self.inner.reset_stats()
    }

    /// `wchc`: session -> watched paths; `wchp`: path -> sessions.
    pub fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.inner.watches_by_session()
    }
    pub fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.inner.watches_by_path()
    }

    /// `dump`: session -> ephemeral paths, and session -> timeout.
    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.inner.ephemerals_by_session()
    }
    pub fn sessions(&self) -> Vec<(SessionId, u32)> {
        self.inner.sessions()
    }

    /// The digest of the whole tree, for cross-replica comparison.
    pub fn digest(&self) -> u64 {
        self.inner.digest()
    }
    pub fn last_zxid(&self) -> Zxid {
        self.inner.last_applied()
    }

    /// The last zxid in the log (applied or not).
    pub fn last_logged(&self) -> Zxid {
        self.inner.last_logged()
    }

    /// The applied txns after `after` that are still in memory (the log
    /// window), in zxid order. While the server serves clients, what it
    /// applied is visible to them and so must be committed: the simulator
    /// records these to build the committed history as it happens.
    pub fn applied_since(&self, after: Zxid) -> impl Iterator<Item = &crate::txn::Txn> + '_ {
        self.inner.applied_since(after)
    }

    /// (acceptedEpoch, currentEpoch).
    pub fn epochs(&self) -> (u32, u32) {
        self.inner.epochs()
    }

    /// "standalone", "leader", "follower", "observer" or "looking".
    pub fn role(&self) -> &'static str {
        self.inner.role_name()
    }

    /// The leader this server serves under (itself when leading), once
    /// it serves clients.
    pub fn leader(&self) -> Option<ServerId> {
        self.inner.leader_id()
    }

    /// (followers, synced followers) as the leader counts them.
    pub fn learner_counts(&self) -> (usize, usize) {
        self.inner.learner_counts()
    }

    /// The role's internal state, for diagnostics (simulator traces).
    pub fn role_debug(&self) -> String {
        self.inner.role_debug()
    }

    /// The replicated state (tree, sessions, last zxid).
    pub fn state(&self) -> &crate::txn::State {
        self.inner.state()
    }
}
