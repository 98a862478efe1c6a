//! `Node`: one ZooKeeper server as a sans-IO state machine.
//!
//! Inputs go in through [`Node::handle`] and [`Node::handle_timeout`];
//! effects come out of [`Node::poll_output`]; [`Node::poll_timeout`] says
//! when to call `handle_timeout` next. A spurious `handle_timeout` is
//! harmless. Standalone is an ensemble of one: every write is proposed,
//! persisted (`StorageOp::Append` -> `Input::Persisted`), committed and then
//! applied, and only then is its reply released.
//!
//! `Node` owns the server's state; its parts live in files of their own:
//! - this file: the boundary, the fields, roles and peer routing;
//! - `tokens`: persistence tokens and the durable marks;
//! - `clients`: the client pipeline as a type (`Clients`: connections,
//!   sessions' connections, pending replies in order, watches);
//! - `requests`: what a client's handshake or request means for this
//!   server in its role (sessions, reconnects, submitting writes);
//! - `reads`: reads and watch registration against the tree (`Reader`);
//! - `applied`: what happens once a txn is applied (replies, watch events);
//! - `introspect`: the server's figures (`Figures`) and the listings for
//!   four-letter words, metrics and the simulator; the invariant check;
//! - `leading` / `learning`: the leader's and learner's steps, over the
//!   state types of `zab::leader` and `zab::learner`.
//!
//! Order is ZooKeeper's: each connection's requests are answered in the
//! order they arrived. Writes are proposed at once (pipelined) and answered
//! when committed; a read waits until every earlier request of its
//! connection is answered, then sees the tree at that moment, so a client
//! reads its own writes. Watch events leave when the txn that fires them
//! is applied, before any later reply on that connection.
//!
//! Invariants (checked in `check_invariants`): proposals are in strictly
//! increasing zxid order and follow the last applied zxid; every `Write`
//! slot of a connection names a pending proposal.

mod applied;
mod auth;
mod clients;
mod introspect;
mod leading;
mod learning;
mod readonly;
mod reads;
mod reconfig;
mod requests;
mod tokens;

pub use introspect::{ConnInfo, NodeStats};

use crate::canary::Canary;
use crate::config::Config;
use crate::ids::*;
use crate::log::Log;
use crate::peer::{self, PeerMsg, PeerState, Vote};
use crate::proto::{self, ErrorCode, Id, Request, Response};
use crate::session;
use crate::storage::{Recovered, StorageOp};
use crate::tree::acl;
use crate::txn::ApplyOptions;

use crate::zab::{Decision, Election, Leader, Role, ServerRole};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use tracing::{debug, info, warn};

/// Frames a connection may have waiting for their turn before the core
/// refuses more.
pub const QUEUED_PER_CONN_MAX: usize = 10_000;

/// Applied txns between in-memory checkpoints of the state.
const REBASE_EVERY: u64 = 1_000;

pub use crate::txn::INTERNAL_CXID;

pub struct Node {
    pub(crate) config: Config,
    pub(crate) opts: ApplyOptions,
    rng: ChaCha8Rng,
    pub(crate) log: Log,
    pub(crate) role: Role,
    /// The client pipeline (`clients.rs`).
    clients: clients::Clients,
    next_session_id: i64,
    /// Persistence asked for, and the durable mark (`tokens.rs`).
    durable: tokens::Durable,
    pub(crate) accepted_epoch: u32,
    pub(crate) current_epoch: u32,
    pub(crate) outputs: VecDeque<Output>,
    since_snapshot: u64,
    since_rebase: u64,
    snapshot_threshold: u64,
    /// A snapshot is being written (`StorageOp::Snapshot` not yet
    /// answered by `Input::SnapshotWritten`).
    pub(crate) snapshot_pending: bool,
    /// The next sync must be a SNAP: a TRUNC could not be served, or
    /// recovery rebuilt something that may not be a prefix of the history.
    /// It outlives a learner (it is set by one, used by the next after an
    /// election), so it is the server's, not the learner's.
    pub(crate) need_snap: bool,
    /// The durable `repairing` mark: this server's disk may lack records
    /// it once had (see `Recovered::damaged`), or a SNAP sync is replacing
    /// its logs. Cleared once a sync is durable.
    pub(crate) repair_mark: bool,
    /// A voter that lost durable records counts in no quorum: it takes no
    /// part in elections and syncs as an observer until it has a leader's
    /// history durable, then rejoins as a voter.
    pub(crate) abstaining: bool,
    pub(crate) election_round: u64,
    /// The server's own figures (`introspect.rs`).
    figures: introspect::Figures,
    /// Read-only mode while looking (`readonly`).
    pub(crate) ro: readonly::ReadOnly,
    /// Set once the disk refused an operation: the node is finished.
    stopped: Option<String>,
    /// The members zoo.cfg gave, for when the state keeps no member list.
    static_members: reconfig::StaticMembers,
    /// The configuration texts `config`'s members were last taken from
    /// (in force, pending), and the version in force.
    membership_texts: (Vec<u8>, Option<Vec<u8>>),
    config_version: u64,
    /// A reconfig a peer reported committed (`PeerMsg::ConfigCommitted`)
    /// that this server's log holds as pending.
    peer_confirmed_config: Zxid,
    /// Commit quorums noted for the simulator's check, when asked.
    commit_quorums: Vec<(Zxid, Zxid, std::collections::BTreeSet<ServerId>)>,
}

/// What a storage executor's completion tells the node. Here, not in
/// `storage`, so that storage does not depend on the node.
impl From<crate::storage::Completion> for Input {
    fn from(done: crate::storage::Completion) -> Input {
        use crate::storage::Completion;
        match done {
            Completion::Persisted(token) => Input::Persisted { token },
            Completion::SnapshotWritten(zxid) => Input::SnapshotWritten { zxid },
            Completion::Failed { token, error } => Input::StorageFailed { token, error },
        }
    }
}

/// Something that happened outside the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A client connection was accepted. `addr` is the peer IP as text
    /// (used by the `ip` ACL scheme and `cons`).
    ClientConnected { conn: ConnId, addr: String },
    /// The client proved a TLS certificate whose subject (RFC 2253, as
    /// Java names it) is this: it gets ZooKeeper's `x509` id. Reported
    /// after `ClientConnected` and before the connection's first frame.
    ClientCertificate { conn: ConnId, subject: String },
    /// One client frame, its 4-byte length prefix already stripped.
    ClientFrame { conn: ConnId, frame: Vec<u8> },
    /// The client's socket is gone (EOF, error, or the shell closed it).
    ClientClosed { conn: ConnId },
    /// The outcome of the shell's step of a SASL exchange (GSSAPI), in the
    /// place of the connection's `sasl` request with this xid: answered in
    /// order with its other replies, as the core answers DIGEST-MD5.
    ClientSaslStep {
        conn: ConnId,
        xid: i32,
        step: crate::sasl::ShellStep,
    },

    /// The `StorageOp` with this token (and every earlier one) is durable.
    Persisted { token: PersistToken },
    /// A snapshot requested by `StorageOp::Snapshot` is on disk.
    SnapshotWritten { zxid: Zxid },
    /// The disk refused a `StorageOp` (the one with this token, or a
    /// snapshot when `None`): nothing of it is durable. The node stops
    /// (`Output::Stop`); see `storage::StorageOp` for why it never retries.
    StorageFailed {
        token: Option<PersistToken>,
        error: crate::storage::StorageError,
    },
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
    /// The node can no longer promise durability (its disk refused a
    /// write or an fsync): the shell ends the process without answering
    /// anything more, and the server starts again from its log. The node
    /// emits nothing after this and ignores every input.
    Stop { reason: String },
    /// A new configuration is in force (a reconfig was committed and
    /// applied here): its version and its `/zookeeper/config` text. The
    /// shell writes `zoo.cfg.dynamic.<version>` and links to new members.
    ConfigActivated { version: u64, text: String },
}

fn reply_frame(xid: i32, zxid: Zxid, err: ErrorCode, body: &Response) -> Vec<u8> {
    proto::encode_reply(xid, zxid.as_i64(), err, body)
}

impl Node {
    pub fn new(mut config: Config, recovered: Recovered, now: Now) -> Node {
        for n in &recovered.notes {
            info!("recovery: {n}");
        }
        let opts = ApplyOptions::from_config(&config);
        let clients = clients::Clients::new(config.limits.watches_per_conn);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ config.server_id.0.rotate_left(32));
        let snapshot_threshold = snapshot_threshold(&mut rng, config.snap_count);
        let last = recovered.state.last_zxid;
        let next_session_id = session::first_session_id(config.server_id.0, now.wall_ms);
        let log = Log::new(recovered.base, recovered.tail, recovered.state);
        let static_members = reconfig::StaticMembers::of(&config);
        let membership_texts = {
            let (current, pending) = reconfig::configs_of(&log, config.canary, Zxid::ZERO);
            (current.to_vec(), pending.map(<[u8]>::to_vec))
        };
        let config_version = reconfig::apply_configs(
            &mut config,
            &static_members,
            &membership_texts.0,
            membership_texts.1.as_deref(),
        );
        let damaged = recovered.damaged;
        let repairs = damaged && config.repairs_from_peers();
        let abstaining = repairs && !config.is_observer();
        if damaged {
            warn!(
                "server {}: durable records were lost; {}",
                config.server_id.0,
                if abstaining {
                    "it will not vote until it has synced with a leader"
                } else if repairs {
                    "it takes a snapshot from the leader before it serves"
                } else {
                    "with no other voter to repair from, it serves what is left"
                }
            );
        }
        // The first role: a standalone server leads; a member of an
        // ensemble starts its first election round.
        let (role, first_step, election_round) = if config.is_standalone() {
            let sessions = log
                .state()
                .sessions
                .iter()
                .map(|(s, meta)| (*s, meta.timeout_ms));
            let l = Leader::new(
                &config,
                recovered.current_epoch,
                log.last_logged(),
                log.last_applied(),
                sessions,
                now.mono,
            );
            (Role::Leading(l), None, 0)
        } else {
            let (e, step) = start_election(
                &config,
                &mut rng,
                1,
                log.last_logged(),
                recovered.current_epoch,
                abstaining,
                now,
            );
            (Role::Looking(e), Some(step), 1)
        };
        let mut s = Node {
            figures: Default::default(),
            config,
            opts,
            rng,
            log,
            role,
            clients,
            next_session_id,
            durable: tokens::Durable::new(last),
            accepted_epoch: recovered.accepted_epoch,
            current_epoch: recovered.current_epoch,
            outputs: VecDeque::new(),
            since_snapshot: 0,
            since_rebase: 0,
            snapshot_threshold,
            snapshot_pending: false,
            // What recovery rebuilt may not even be a prefix of the history
            // (a SNAP sync that crashed before its snapshot was durable left
            // newer txns over an older snapshot): take the leader's whole.
            need_snap: repairs,
            repair_mark: repairs,
            abstaining,
            election_round,
            ro: Default::default(),
            stopped: None,
            static_members,
            membership_texts,
            config_version,
            commit_quorums: Vec::new(),
            peer_confirmed_config: Zxid::ZERO,
        };
        if matches!(s.role, Role::Looking(_)) {
            s.ro_on_looking(now);
        }
        match first_step {
            None => s.start_leading(now),
            Some(step) => s.election_step(now, step),
        }
        s
    }

    #[inline]
    pub(crate) fn canary(&self, c: Canary) -> bool {
        #[cfg(feature = "canary")]
        {
            self.config.canary == Some(c)
        }
        #[cfg(not(feature = "canary"))]
        {
            let _ = c;
            false
        }
    }

    /// Why the node stopped (its disk refused an operation), if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Highest zxid this node has been told is durable: what it may have
    /// acknowledged (to a client or, as an ACK, to a leader).
    pub fn persisted_upto(&self) -> Zxid {
        self.durable.upto()
    }

    /// Whether clients are served now.
    fn serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.established,
            Role::Learning(_) => self.learner_is_serving(),
            Role::Looking(_) => false,
        }
    }

    // ----- the boundary -------------------------------------------------

    pub fn handle(&mut self, now: Now, input: Input) {
        if self.stopped.is_some() {
            return;
        }
        match input {
            Input::ClientConnected { conn, addr } => {
                let max = self.config.limits.conns;
                self.clients.connect(conn, addr, max, &mut self.outputs);
            }
            Input::ClientCertificate { conn, subject } => {
                let ids = acl::x509_ids(&subject, self.config.x509_super_user.as_deref());
                if let Some(held) = self.clients.ids_mut(conn) {
                    held.extend(ids);
                }
            }
            Input::ClientFrame { conn, frame } => self.on_frame(now, conn, frame),
            Input::ClientClosed { conn } => self.on_closed(conn),
            Input::ClientSaslStep { conn, xid, step } => self.on_sasl_step(conn, xid, step),
            Input::Persisted { token } => self.on_persisted(now, token),
            Input::StorageFailed { token, error } => self.on_storage_failed(now, token, error),
            Input::SnapshotWritten { zxid } => {
                debug!("snapshot at {zxid} written");
                self.snapshot_pending = false;
                self.durable.snapshot_written(zxid);
                self.learner_on_snapshot_written(now);
            }
            Input::PeerMessage { from, bytes } => match peer::decode(&bytes) {
                Ok(msg) => self.on_peer(now, from, msg),
                Err(e) => {
                    warn!("peer {}: {e}; dropping the link", from.0);
                    self.outputs.push_back(Output::ClosePeer {
                        peer: from,
                        reason: e.to_string(),
                    });
                }
            },
            Input::PeerConnected { peer } => self.on_peer_connected(now, peer),
            Input::PeerDisconnected { peer } => self.on_peer_disconnected(now, peer),
        }
        self.close_over_watch_limit();
        if self.stopped.is_none() {
            self.refresh_membership(now);
        }
        self.check_invariants();
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.stopped.is_some() {
            return;
        }
        match &mut self.role {
            Role::Looking(e) => {
                let step = e.on_timeout(&self.config, now.mono);
                self.election_step(now, step);
                self.ro_on_timeout(now);
            }
            Role::Leading(_) => self.leader_on_timeout(now),
            Role::Learning(_) => self.learner_on_timeout(now),
        }
        self.close_over_watch_limit();
        if self.stopped.is_none() {
            self.refresh_membership(now);
        }
        self.check_invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if self.stopped.is_none() {
            self.flush_persist();
        }
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        match &self.role {
            Role::Looking(e) => Some(match self.ro_deadline() {
                Some(ro) => ro.min(e.deadline()),
                None => e.deadline(),
            }),
            Role::Leading(_) => self.leader_deadline(),
            Role::Learning(_) => self.learner_deadline(),
        }
    }

    // ----- roles --------------------------------------------------------

    /// Leaves any role for an election: clients are disconnected (they
    /// reconnect to a server that serves), as ZooKeeper does.
    pub(crate) fn become_looking(&mut self, now: Now) {
        self.clients.close_all(
            "server lost its quorum; reconnect elsewhere",
            &mut self.outputs,
        );
        self.election_round += 1;
        let (e, step) = start_election(
            &self.config,
            &mut self.rng,
            self.election_round,
            self.log.last_logged(),
            self.current_epoch,
            self.abstaining,
            now,
        );
        self.role = Role::Looking(e);
        self.ro_on_looking(now);
        self.election_step(now, step);
    }

    fn election_step(&mut self, now: Now, step: crate::zab::election::Step) {
        for (to, v) in step.send {
            self.send_vote(to, v);
        }
        if let Some((decision, vote)) = step.decided {
            if let Role::Looking(e) = &self.role {
                self.election_round = self.election_round.max(e.round).max(vote.round);
            }
            self.ro_on_decided();
            let leader_round = step.leader_round;
            match decision {
                Decision::Lead => self.become_leader(now),
                Decision::Follow(l) => self.become_learner(now, l, false, leader_round),
                Decision::Observe(l) => self.become_learner(now, l, true, leader_round),
            }
        }
    }

    /// This server's vote as it would send it now: its round's vote while
    /// looking, else the leader it serves (or itself, leading).
    fn current_vote(&self) -> Vote {
        let (leader, state) = match &self.role {
            Role::Looking(e) => return e.current(),
            Role::Leading(_) => (self.config.server_id, PeerState::Leading),
            Role::Learning(l) => (
                l.leader,
                if l.observer {
                    PeerState::Observing
                } else {
                    PeerState::Following
                },
            ),
        };
        Vote {
            leader,
            zxid: self.log.last_logged(),
            peer_epoch: self.current_epoch,
            round: self.election_round,
            state,
        }
    }

    fn on_peer(&mut self, now: Now, from: ServerId, msg: PeerMsg) {
        // Any other server may speak: one joining by a reconfig is not a
        // member yet (the links decide who may connect). Its votes count
        // for nobody; a leader accepts it as a learner whose ACKs count
        // once it is a voter of a configuration the leader decides by.
        if from == self.config.server_id {
            warn!("message from this server's own id");
            return;
        }
        match msg {
            PeerMsg::Vote(mut v) => {
                if self.canary(Canary::VoteWithoutEpoch) {
                    v.peer_epoch = self.current_epoch;
                }
                match &mut self.role {
                    Role::Looking(e) => {
                        let step = e.on_vote(&self.config, now.mono, from, v);
                        self.election_step(now, step);
                    }
                    _ => {
                        if self.learner_leader_moved_on(from, &v) {
                            warn!(
                                "server {} is not leading (it is {:?} in round {}); back to election",
                                from.0, v.state, v.round
                            );
                            self.become_looking(now);
                            return;
                        }
                        if matches!(v.state, PeerState::Looking | PeerState::Repairing) {
                            let mine = self.current_vote();
                            self.send_vote(from, mine);
                        }
                    }
                }
            }
            PeerMsg::ConfigCommitted { version } => self.on_config_committed(now, version),
            PeerMsg::FollowerInfo { .. } if !matches!(self.role, Role::Leading(_)) => {
                // Not leading: say so, as ZooKeeper's closed quorum port
                // does, so the learner stops waiting for a leader that is
                // not coming (it would wait out initLimit otherwise).
                let v = self.current_vote();
                self.send_vote(from, v);
            }
            msg @ (PeerMsg::FollowerInfo { .. }
            | PeerMsg::AckEpoch { .. }
            | PeerMsg::AckNewLeader { .. }
            | PeerMsg::Ack { .. }
            | PeerMsg::Forward { .. }
            | PeerMsg::PingReply { .. }
            | PeerMsg::SyncRequest { .. }
            | PeerMsg::Revalidate { .. }) => self.leader_on_message(now, from, msg),
            other => self.learner_on_message(now, from, other),
        }
    }

    fn on_peer_connected(&mut self, now: Now, peer: ServerId) {
        self.learner_on_connected(now, peer);
        if let Role::Looking(e) = &self.role {
            let v = e.current();
            self.send_vote(peer, v);
        }
    }

    fn on_peer_disconnected(&mut self, now: Now, peer: ServerId) {
        match &self.role {
            Role::Leading(_) => self.leader_on_disconnected(peer),
            Role::Learning(l) if l.leader == peer => {
                warn!("lost the link to leader {}", peer.0);
                self.become_looking(now);
            }
            _ => {}
        }
    }

    pub(crate) fn send_peer(&mut self, to: ServerId, msg: &PeerMsg) {
        self.outputs.push_back(Output::SendPeer {
            to,
            bytes: peer::encode(msg),
        });
    }
}

/// Opens election round `round`: the first vote resend is jittered so
/// that servers started together do not resend in step.
fn start_election(
    config: &Config,
    rng: &mut ChaCha8Rng,
    round: u64,
    last_logged: Zxid,
    current_epoch: u32,
    abstaining: bool,
    now: Now,
) -> (Election, crate::zab::election::Step) {
    let first = 20 + rng.gen_range(0..30);
    info!(
        "server {} looking (round {round}, last logged {last_logged}, epoch {current_epoch})",
        config.server_id.0
    );
    Election::start(
        config,
        round,
        last_logged,
        current_epoch,
        abstaining,
        now.mono,
        first,
    )
}

/// ZooKeeper takes a snapshot after snapCount/2 + random(snapCount/2) txns
/// so that servers of an ensemble do not all snapshot at once.
fn snapshot_threshold(rng: &mut ChaCha8Rng, snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.gen_range(0..half)
}
