//! The request pipeline of one server: client frames in, proposals out,
//! committed txns applied, replies and watch events released.
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

use crate::canary::Canary;
use crate::config::Config;
use crate::ids::*;
use crate::log::Log;
use crate::node::{ConnInfo, Input, NodeStats, Output};
use crate::peer::{self, PeerMsg, PeerState, Vote};
use crate::proto::{
    self, event_type, keeper_state, perms, xid, Acl, ConnectRequest, ConnectResponse, DecodeError,
    ErrorCode, Id, MultiOp, OpResult, Reader, Request, Response,
};
use crate::session;
use crate::storage::{self, Recovered, Snapshot, StorageOp};
use crate::tree::acl;
use crate::txn::{Applied, ApplyOptions, State, Txn, TxnHeader, TxnKind, TxnTag};
use crate::watch::{WatchKind, Watches};
use crate::zab::{Decision, Election, Role};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap, VecDeque};
use tracing::{debug, info, warn};

/// Frames a connection may have waiting for their turn before the core
/// refuses more.
pub const QUEUED_PER_CONN_MAX: usize = 10_000;

/// Applied txns between in-memory checkpoints of the state.
const REBASE_EVERY: u64 = 1_000;

/// The cxid of txns no client asked for (expiry, reaping): no reply.
pub const INTERNAL_CXID: i32 = i32::MIN;

#[derive(Debug)]
enum Slot {
    /// A read (or ordered no-op reply) evaluated when it reaches the head.
    Read {
        xid: i32,
        request: Request,
        arrived: Instant,
    },
    /// A write waiting for its txn (matched by session and cxid) to apply.
    Write {
        cxid: i32,
        connect: bool,
        arrived: Instant,
    },
    /// A `sync` on a learner waiting for the leader's SyncDone.
    Sync { xid: i32, path: String, id: u64 },
    /// A finished reply waiting for earlier slots.
    Ready {
        frame: Vec<u8>,
        close: Option<String>,
    },
}

#[derive(Debug)]
struct Conn {
    addr: String,
    session: Option<SessionId>,
    /// The ConnectRequest's readOnly flag, echoed in the same shape.
    read_only_flag: Option<bool>,
    timeout_ms: u32,
    auth: Vec<Id>,
    queue: VecDeque<Slot>,
    /// Set once the connection is being closed; nothing more is sent.
    closed: bool,
    received: u64,
    sent: u64,
    last_zxid: Zxid,
}

/// What a persistence token stands for.
#[derive(Debug, Clone, Copy)]
enum TokenKind {
    Append(Zxid),
    Epochs,
    Truncate(Zxid),
}

pub struct Server {
    pub(crate) config: Config,
    pub(crate) opts: ApplyOptions,
    rng: ChaCha8Rng,
    pub(crate) log: Log,
    pub(crate) role: Role,
    conns: BTreeMap<ConnId, Conn>,
    /// Lookup only: which connection a session is attached to.
    session_conn: HashMap<SessionId, ConnId>,
    watches: Watches,
    next_session_id: i64,
    persist_buf: Vec<u8>,
    persist_first: Option<Zxid>,
    persist_last: Zxid,
    next_token: u64,
    tokens: VecDeque<(PersistToken, TokenKind)>,
    /// Highest zxid durable (in the log, or covered by a written snapshot).
    pub(crate) persisted_upto: Zxid,
    /// Highest zxid a written snapshot holds: a log truncation, which the
    /// storage thread may finish after the snapshot thread, never lowers
    /// the durable mark below it.
    snapshot_durable: Zxid,
    pub(crate) accepted_epoch: u32,
    pub(crate) current_epoch: u32,
    pub(crate) outputs: VecDeque<Output>,
    since_snapshot: u64,
    since_rebase: u64,
    snapshot_threshold: u64,
    /// A snapshot is being written (`StorageOp::Snapshot` not yet
    /// answered by `Input::SnapshotWritten`).
    pub(crate) snapshot_pending: bool,
    /// Learner: sessions of local clients seen since the last leader ping.
    pub(crate) touched: BTreeMap<SessionId, u32>,
    /// Learner: the next sync must be a SNAP (a TRUNC could not be served).
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
    next_sync_id: u64,
    pub(crate) stats: NodeStats,
}

fn reply_frame(xid: i32, zxid: Zxid, err: ErrorCode, body: &Response) -> Vec<u8> {
    proto::encode_reply(xid, zxid.as_i64(), err, body)
}

impl Server {
    pub fn new(config: Config, recovered: Recovered, now: Now) -> Server {
        for n in &recovered.notes {
            info!("recovery: {n}");
        }
        let opts = ApplyOptions::from_config(&config);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ config.server_id.0.rotate_left(32));
        let snapshot_threshold = snapshot_threshold(&mut rng, config.snap_count);
        let last = recovered.state.last_zxid;
        let next_session_id = session::first_session_id(config.server_id.0, now.wall_ms);
        let log = Log::new(recovered.base, recovered.tail, recovered.state);
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
        let mut s = Server {
            stats: NodeStats {
                mode: "looking",
                latency_min_ms: u64::MAX,
                ..NodeStats::default()
            },
            config,
            opts,
            rng,
            log,
            role: Role::Looking(
                Election::start(&Config::standalone(0), 0, Zxid::ZERO, 0, false, now.mono, 0).0,
            ),
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            watches: Watches::default(),
            next_session_id,
            persist_buf: Vec::new(),
            persist_first: None,
            persist_last: last,
            next_token: 1,
            tokens: VecDeque::new(),
            persisted_upto: last,
            snapshot_durable: Zxid::ZERO,
            accepted_epoch: recovered.accepted_epoch,
            current_epoch: recovered.current_epoch,
            outputs: VecDeque::new(),
            since_snapshot: 0,
            since_rebase: 0,
            snapshot_threshold,
            snapshot_pending: false,
            touched: BTreeMap::new(),
            // What recovery rebuilt may not even be a prefix of the history
            // (a SNAP sync that crashed before its snapshot was durable left
            // newer txns over an older snapshot): take the leader's whole.
            need_snap: repairs,
            repair_mark: repairs,
            abstaining,
            election_round: 0,
            next_sync_id: 1,
        };
        if s.config.is_standalone() {
            s.become_leader(now);
        } else {
            s.become_looking(now);
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
        match input {
            Input::ClientConnected { conn, addr } => {
                let auth = vec![Id::new("ip", &addr)];
                self.conns.insert(
                    conn,
                    Conn {
                        addr,
                        session: None,
                        read_only_flag: None,
                        timeout_ms: 0,
                        auth,
                        queue: VecDeque::new(),
                        closed: false,
                        received: 0,
                        sent: 0,
                        last_zxid: Zxid::ZERO,
                    },
                );
                self.stats.connections = self.conns.len() as u64;
            }
            Input::ClientFrame { conn, frame } => self.on_frame(now, conn, frame),
            Input::ClientClosed { conn } => self.on_closed(conn),
            Input::Persisted { token } => self.on_persisted(now, token),
            Input::SnapshotWritten { zxid } => {
                debug!("snapshot at {zxid} written");
                self.snapshot_pending = false;
                // Everything up to the snapshot is durable (a SNAP sync may
                // jump past what the log ever held).
                self.persisted_upto = self.persisted_upto.max(zxid);
                self.snapshot_durable = self.snapshot_durable.max(zxid);
                self.learner_on_snapshot_written();
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
        self.check_invariants();
    }

    pub fn handle_timeout(&mut self, now: Now) {
        match &mut self.role {
            Role::Looking(e) => {
                let step = e.on_timeout(&self.config, now.mono);
                self.election_step(now, step);
            }
            Role::Leading(_) => self.leader_on_timeout(now),
            Role::Learning(_) => self.learner_on_timeout(now),
        }
        self.check_invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush_persist();
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.role {
            Role::Looking(e) => Some(e.deadline()),
            Role::Leading(_) => self.leader_deadline(),
            Role::Learning(_) => self.learner_deadline(),
        }
    }

    // ----- roles --------------------------------------------------------

    /// Leaves any role for an election: clients are disconnected (they
    /// reconnect to a server that serves), as ZooKeeper does.
    pub(crate) fn become_looking(&mut self, now: Now) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.close(c, "server lost its quorum; reconnect elsewhere".into());
        }
        self.touched.clear();
        self.election_round += 1;
        let first = 20 + self.rng.gen_range(0..30);
        let (e, step) = Election::start(
            &self.config,
            self.election_round,
            self.log.last_logged(),
            self.current_epoch,
            self.abstaining,
            now.mono,
            first,
        );
        info!(
            "server {} looking (round {}, last logged {}, epoch {})",
            self.config.server_id.0,
            self.election_round,
            self.log.last_logged(),
            self.current_epoch
        );
        self.stats.mode = "looking";
        self.role = Role::Looking(e);
        self.election_step(now, step);
    }

    fn election_step(&mut self, now: Now, step: crate::zab::election::Step) {
        for (to, v) in step.send {
            self.send_peer(to, &PeerMsg::Vote(v));
        }
        if let Some((decision, vote)) = step.decided {
            if let Role::Looking(e) = &self.role {
                self.election_round = self.election_round.max(e.round).max(vote.round);
            }
            match decision {
                Decision::Lead => self.become_leader(now),
                Decision::Follow(l) => self.become_learner(now, l, false),
                Decision::Observe(l) => self.become_learner(now, l, true),
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
        if from == self.config.server_id || !self.config.peers().any(|p| p == from) {
            warn!("message from unknown server {}", from.0);
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
                            self.send_peer(from, &PeerMsg::Vote(mine));
                        }
                    }
                }
            }
            PeerMsg::FollowerInfo { .. } if !matches!(self.role, Role::Leading(_)) => {
                // Not leading: say so, as ZooKeeper's closed quorum port
                // does, so the learner stops waiting for a leader that is
                // not coming (it would wait out initLimit otherwise).
                let v = self.current_vote();
                self.send_peer(from, &PeerMsg::Vote(v));
            }
            PeerMsg::FollowerInfo {
                accepted_epoch,
                observer,
                ..
            } => {
                if self.config.observers.contains(&from) && !observer {
                    warn!(
                        "server {} is an observer in the configuration but asks to follow",
                        from.0
                    );
                    return;
                }
                if observer && !self.config.observers.contains(&from) {
                    info!(
                        "voter {} syncs as an observer: it is repairing lost records",
                        from.0
                    );
                }
                self.leader_on_follower_info(now, from, accepted_epoch, observer)
            }
            PeerMsg::AckEpoch {
                current_epoch,
                last_zxid,
                history,
            } => self.leader_on_ack_epoch(now, from, current_epoch, last_zxid, history),
            PeerMsg::AckNewLeader { epoch } => self.leader_on_ack_newleader(now, from, epoch),
            PeerMsg::Ack { zxid } => self.leader_on_ack(now, from, zxid),
            PeerMsg::Forward {
                session,
                cxid,
                kind,
            } => self.leader_on_forward(now, from, session, cxid, kind),
            PeerMsg::PingReply { touched } => self.leader_on_ping_reply(now, from, touched),
            PeerMsg::SyncRequest { id } => self.leader_on_sync_request(now, from, id),
            other => self.learner_on_message(now, from, other),
        }
    }

    fn on_peer_connected(&mut self, _now: Now, peer: ServerId) {
        self.learner_on_connected(peer);
        if let Role::Looking(e) = &self.role {
            let v = e.current();
            self.send_peer(peer, &PeerMsg::Vote(v));
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

    // ----- persistence --------------------------------------------------

    /// Logs a txn (in memory now, on disk with the next `StorageOp::Append`).
    pub(crate) fn log_append(&mut self, txn: Txn) {
        storage::encode_record(&txn, &mut self.persist_buf);
        if self.persist_first.is_none() {
            self.persist_first = Some(txn.zxid);
        }
        self.persist_last = txn.zxid;
        let z = txn.zxid;
        self.log.append(txn);
        self.learner_after_append(z);
        if self.canary(Canary::AckBeforePersist) && self.config.is_standalone() {
            self.persisted_upto = self.persisted_upto.max(z);
        }
    }

    fn new_token(&mut self, kind: TokenKind) -> PersistToken {
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.tokens.push_back((token, kind));
        token
    }

    /// Emits the buffered log records as one `StorageOp::Append` (group commit).
    fn flush_persist(&mut self) {
        if let Some(first) = self.persist_first.take() {
            let last = self.persist_last;
            let token = self.new_token(TokenKind::Append(last));
            self.outputs.push_back(Output::Storage(StorageOp::Append {
                token,
                first_zxid: first,
                bytes: std::mem::take(&mut self.persist_buf),
            }));
        }
    }

    /// Makes the epochs durable, after everything logged before.
    pub(crate) fn persist_epochs(&mut self) -> PersistToken {
        self.flush_persist();
        let token = self.new_token(TokenKind::Epochs);
        self.outputs.push_back(Output::Storage(StorageOp::Epochs {
            token,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            repairing: self.repair_mark,
        }));
        token
    }

    /// Cuts the on-disk log after `zxid`, after everything before.
    pub(crate) fn persist_truncate(&mut self, zxid: Zxid) -> PersistToken {
        self.flush_persist();
        self.persisted_upto = self.persisted_upto.min(zxid.max(self.snapshot_durable));
        let token = self.new_token(TokenKind::Truncate(zxid));
        self.outputs
            .push_back(Output::Storage(StorageOp::Truncate { token, zxid }));
        token
    }

    /// Whether every token up to `t` has completed.
    pub(crate) fn tokens_done_through(&self, t: PersistToken) -> bool {
        self.tokens.front().is_none_or(|(first, _)| *first > t)
    }

    fn on_persisted(&mut self, now: Now, token: PersistToken) {
        let mut any = false;
        while let Some(&(t, kind)) = self.tokens.front() {
            if t > token {
                break;
            }
            self.tokens.pop_front();
            any = true;
            // In order: an append that completes before a truncation must
            // not leave the mark above the cut.
            match kind {
                TokenKind::Append(z) => self.persisted_upto = self.persisted_upto.max(z),
                TokenKind::Truncate(z) => {
                    self.persisted_upto = self.persisted_upto.min(z.max(self.snapshot_durable))
                }
                TokenKind::Epochs => {}
            }
        }
        if !any {
            return;
        }
        match &self.role {
            Role::Leading(_) => self.leader_on_persisted(now, token),
            Role::Learning(_) => self.learner_on_persisted(token),
            Role::Looking(_) => {}
        }
    }

    /// A snapshot of the applied state, written off the hot path.
    pub(crate) fn write_snapshot_now(&mut self) {
        self.since_snapshot = 0;
        self.snapshot_pending = true;
        self.snapshot_threshold = snapshot_threshold(&mut self.rng, self.config.snap_count);
        let snapshot = Snapshot::of(self.log.state());
        self.outputs
            .push_back(Output::Storage(StorageOp::Snapshot(snapshot)));
    }

    // ----- client frames ------------------------------------------------

    fn close(&mut self, conn: ConnId, reason: String) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closed {
                c.closed = true;
                info!("closing connection {} ({}): {reason}", conn.0, c.addr);
                self.outputs.push_back(Output::CloseClient { conn, reason });
            }
        }
    }

    fn on_frame(&mut self, now: Now, conn: ConnId, frame: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closed {
            return;
        }
        c.received += 1;
        self.stats.packets_received += 1;
        if frame.len() > self.config.max_buffer as usize {
            let len = frame.len();
            self.close(conn, format!("frame of {len} bytes exceeds jute.maxbuffer"));
            return;
        }
        if c.queue.len()
            >= self
                .config
                .outstanding_per_conn_max
                .min(QUEUED_PER_CONN_MAX)
        {
            let n = c.queue.len();
            self.close(
                conn,
                format!("{n} requests outstanding: over the per-connection limit"),
            );
            return;
        }
        match c.session {
            None => self.on_connect(now, conn, &frame),
            Some(s) => {
                if let Err(e) = self.on_request(now, conn, s, &frame) {
                    self.close(conn, format!("malformed request: {e}"));
                }
            }
        }
    }

    fn on_connect(&mut self, now: Now, conn: ConnId, frame: &[u8]) {
        let req = match ConnectRequest::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                self.close(conn, format!("malformed ConnectRequest: {e}"));
                return;
            }
        };
        if !self.serving() {
            self.close(
                conn,
                "this server is not serving (no quorum or still syncing)".into(),
            );
            return;
        }
        if req.last_zxid_seen > self.log.last_applied().as_i64() {
            self.close(
                conn,
                format!(
                    "client has seen zxid 0x{:x}, this server's last is {}; client must try another server",
                    req.last_zxid_seen,
                    self.log.last_applied()
                ),
            );
            return;
        }
        let timeout = (req.timeout_ms.max(0) as u32).clamp(
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.read_only_flag = req.read_only;
        c.timeout_ms = timeout;
        if req.session_id == 0 {
            let id = self.new_session_id();
            // Bind now so further frames are requests; the ConnectResponse
            // waits for the CreateSession commit.
            let c = self.conns.get_mut(&conn).expect("connection exists");
            c.session = Some(id);
            c.queue.push_back(Slot::Write {
                cxid: 0,
                connect: true,
                arrived: now.mono,
            });
            self.session_conn.insert(id, conn);
            self.submit(
                now,
                id,
                0,
                TxnKind::CreateSession {
                    timeout_ms: timeout,
                },
            );
            return;
        }
        let id = SessionId(req.session_id);
        let closing = matches!(&self.role, Role::Leading(l) if l.closing.contains(&id));
        let valid = session::password_valid(id, &req.passwd)
            && self.log.state().sessions.contains_key(&id)
            && !closing;
        if !valid {
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                passwd: vec![0; session::PASSWORD_LEN],
                read_only: req.read_only.map(|_| false),
            };
            info!("connection {}: session {id} invalid or expired", conn.0);
            self.send(conn, resp.encode());
            self.close(conn, format!("session {id} expired or password invalid"));
            return;
        }
        self.attach(now, conn, id, timeout);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id: id.0,
            // The password the client holds (Paddock's or ZooKeeper's).
            passwd: req.passwd.clone(),
            read_only: req.read_only.map(|_| false),
        };
        self.send(conn, resp.encode());
    }

    /// Binds a session to a connection, closing any older connection of it.
    fn attach(&mut self, now: Now, conn: ConnId, id: SessionId, timeout: u32) {
        // ZooKeeper closes the connection that held the session
        // (DisconnectReason CLIENT_RECONNECT) and moves the session to the
        // new one; unlike ZooKeeper, only after the password is checked.
        if let Some(old) = self.session_conn.insert(id, conn) {
            if old != conn {
                self.watches.remove_conn(old);
                self.close(
                    old,
                    format!("session {id} reconnected on another connection"),
                );
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        self.touch_session(now, id, Some(timeout));
    }

    /// The connection waiting for this txn's reply: the session's
    /// connection here, when its oldest unanswered write is (session, cxid).
    /// A session has at most one open connection per server (reattaching
    /// closes the old one), so this is a lookup, not a scan: most txns of an
    /// ensemble come from clients of other servers.
    fn writer_of(&self, txn: &TxnHeader) -> Option<ConnId> {
        let is_connect = txn.tag == TxnTag::CreateSession;
        let conn = *self.session_conn.get(&txn.session)?;
        let c = self.conns.get(&conn)?;
        matches!(
            c.queue.iter().find(|s| matches!(s, Slot::Write { .. })),
            Some(Slot::Write { cxid, connect, .. }) if *cxid == txn.cxid && *connect == is_connect
        )
        .then_some(conn)
    }

    /// Records client activity: the leader refreshes the deadline, a
    /// learner reports the session at the next ping.
    fn touch_session(&mut self, now: Now, id: SessionId, timeout: Option<u32>) {
        let timeout = timeout.or_else(|| self.log.state().sessions.get(&id).map(|m| m.timeout_ms));
        match &mut self.role {
            Role::Leading(l) => {
                if !l.closing.contains(&id) {
                    match timeout {
                        Some(t) => l.expiry.touch(now.mono, id, t),
                        None => {
                            l.expiry.touch_known(now.mono, id);
                        }
                    }
                }
            }
            Role::Learning(_) => {
                if let Some(t) = timeout {
                    self.touched.insert(id, t);
                }
            }
            Role::Looking(_) => {}
        }
    }

    fn new_session_id(&mut self) -> SessionId {
        loop {
            let id = SessionId(self.next_session_id);
            self.next_session_id = self.next_session_id.wrapping_add(1);
            if id.0 != 0
                && !self.log.state().sessions.contains_key(&id)
                && !self.session_conn.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// Sends a write on its way to a commit: proposed here when leading,
    /// forwarded to the leader when learning.
    fn submit(&mut self, now: Now, session: SessionId, cxid: i32, kind: TxnKind) {
        match &mut self.role {
            Role::Leading(l) => {
                match &kind {
                    TxnKind::CloseSession => {
                        l.closing.insert(session);
                        l.expiry.remove(session);
                    }
                    TxnKind::CreateSession { timeout_ms } => {
                        l.expiry.touch(now.mono, session, *timeout_ms)
                    }
                    _ => {}
                }
                self.propose(now, session, cxid, kind);
            }
            Role::Learning(l) => {
                let leader = l.leader;
                self.send_peer(
                    leader,
                    &PeerMsg::Forward {
                        session,
                        cxid,
                        kind,
                    },
                );
            }
            Role::Looking(_) => unreachable!("clients are not served while looking"),
        }
    }

    fn on_request(
        &mut self,
        now: Now,
        conn: ConnId,
        session: SessionId,
        frame: &[u8],
    ) -> Result<(), DecodeError> {
        let mut r = Reader::new(frame);
        let xid_v = r.i32()?;
        let opcode = r.i32()?;
        let body = &frame[8..];
        self.touch_session(now, session, None);
        let request = match proto::decode_request(opcode, body) {
            Ok(req) => req,
            Err(DecodeError::UnknownOpcode(op)) => {
                // ZooKeeper's UnimplementedRequestProcessor: error -6 with
                // zxid -1, then the connection is closed.
                let frame = reply_frame(
                    xid_v,
                    Zxid(u64::MAX),
                    ErrorCode::Unimplemented,
                    &Response::Empty,
                );
                self.push_ready(conn, frame, Some(format!("unknown opcode {op}")));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match request {
            Request::Auth { scheme, auth, .. } => {
                let c = self.conns.get(&conn).expect("connection exists");
                match acl::authenticate(
                    &scheme,
                    &auth,
                    &c.addr,
                    self.config.super_digest.as_deref(),
                ) {
                    Ok(ids) => {
                        let c = self.conns.get_mut(&conn).expect("connection exists");
                        for id in ids {
                            if !c.auth.contains(&id) {
                                c.auth.push(id);
                            }
                        }
                        // Answered with the request's own xid (-4 from Java
                        // clients, an ordinary xid from others), as ZooKeeper does.
                        let f = reply_frame(xid_v, Zxid::ZERO, ErrorCode::Ok, &Response::Empty);
                        self.push_ready(conn, f, None);
                    }
                    Err(e) => {
                        let f = reply_frame(xid_v, Zxid::ZERO, e, &Response::Empty);
                        self.push_ready(
                            conn,
                            f,
                            Some(format!("authentication failed for scheme {scheme}")),
                        );
                    }
                }
            }
            Request::Sasl => {
                let f = reply_frame(
                    xid_v,
                    self.log.last_applied(),
                    ErrorCode::Unimplemented,
                    &Response::Empty,
                );
                self.push_ready(conn, f, None);
            }
            Request::Sync { path } if matches!(self.role, Role::Learning(_)) => {
                let id = self.next_sync_id;
                self.next_sync_id += 1;
                let c = self.conns.get_mut(&conn).expect("connection exists");
                c.queue.push_back(Slot::Sync {
                    xid: xid_v,
                    path,
                    id,
                });
                if let Role::Learning(l) = &self.role {
                    let leader = l.leader;
                    self.send_peer(leader, &PeerMsg::SyncRequest { id });
                }
            }
            req if req.is_write() => {
                let c = self.conns.get_mut(&conn).expect("connection exists");
                let auth = c.auth.clone();
                c.queue.push_back(Slot::Write {
                    cxid: xid_v,
                    connect: false,
                    arrived: now.mono,
                });
                let kind = if matches!(req, Request::CloseSession) {
                    TxnKind::CloseSession
                } else {
                    TxnKind::Write { request: req, auth }
                };
                self.submit(now, session, xid_v, kind);
            }
            req => {
                let c = self.conns.get_mut(&conn).expect("connection exists");
                c.queue.push_back(Slot::Read {
                    xid: xid_v,
                    request: req,
                    arrived: now.mono,
                });
                self.drain(now, conn);
            }
        }
        Ok(())
    }

    pub(crate) fn on_sync_done(&mut self, now: Now, id: u64) {
        let zxid = self.log.last_applied();
        let mut hit = None;
        for (cid, c) in self.conns.iter_mut() {
            for slot in c.queue.iter_mut() {
                if let Slot::Sync { xid, path, id: sid } = slot {
                    if *sid == id {
                        let frame =
                            reply_frame(*xid, zxid, ErrorCode::Ok, &Response::Path(path.clone()));
                        *slot = Slot::Ready { frame, close: None };
                        hit = Some(*cid);
                    }
                }
            }
        }
        if let Some(c) = hit {
            self.drain(now, c);
        }
    }

    fn push_ready(&mut self, conn: ConnId, frame: Vec<u8>, close: Option<String>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Slot::Ready { frame, close });
        }
        self.drain(Now::default(), conn);
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.closed {
                return;
            }
            c.sent += 1;
            c.last_zxid = self.log.last_applied();
        }
        self.stats.packets_sent += 1;
        self.outputs.push_back(Output::SendClient { conn, frame });
    }

    /// Releases every finished slot at the head of a connection's queue,
    /// evaluating reads as they reach the head.
    fn drain(&mut self, now: Now, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closed {
                c.queue.clear();
                return;
            }
            match c.queue.front() {
                None | Some(Slot::Write { .. }) | Some(Slot::Sync { .. }) => return,
                Some(Slot::Ready { .. }) => {
                    let Some(Slot::Ready { frame, close }) = c.queue.pop_front() else {
                        unreachable!()
                    };
                    self.send(conn, frame);
                    if let Some(reason) = close {
                        self.close(conn, reason);
                        return;
                    }
                }
                Some(Slot::Read { .. }) => {
                    let Some(Slot::Read {
                        xid,
                        request,
                        arrived,
                    }) = c.queue.pop_front()
                    else {
                        unreachable!()
                    };
                    let frame = self.read(conn, xid, &request);
                    self.record_latency(now, arrived, false);
                    self.send(conn, frame);
                }
            }
        }
    }

    fn record_latency(&mut self, now: Now, arrived: Instant, write: bool) {
        if now.mono == Instant::default() {
            return;
        }
        let ms = now.mono.millis_since(arrived);
        let s = &mut self.stats;
        if write {
            s.update_latency.record(ms);
        } else {
            s.read_latency.record(ms);
        }
        s.latency_min_ms = s.latency_min_ms.min(ms);
        s.latency_max_ms = s.latency_max_ms.max(ms);
        s.latency_total_ms += ms;
        s.latency_count += 1;
    }

    fn on_closed(&mut self, conn: ConnId) {
        #[cfg(feature = "canary")]
        if self.canary(Canary::ExpireOnFollower) && matches!(self.role, Role::Learning(_)) {
            if let Some(s) = self.conns.get(&conn).and_then(|c| c.session) {
                self.log.canary_drop_session(s);
            }
        }
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(s) = c.session {
                if self.session_conn.get(&s) == Some(&conn) {
                    self.session_conn.remove(&s);
                }
            }
            self.watches.remove_conn(conn);
        }
        self.stats.connections = self.conns.len() as u64;
    }

    // ----- reads --------------------------------------------------------

    fn read(&mut self, conn: ConnId, xid_v: i32, request: &Request) -> Vec<u8> {
        let zxid = self.log.last_applied();
        match request {
            Request::Ping => reply_frame(xid::PING, zxid, ErrorCode::Ok, &Response::Empty),
            Request::SetWatches(sw) => {
                self.set_watches(conn, sw);
                reply_frame(xid_v, zxid, ErrorCode::Ok, &Response::Empty)
            }
            other => match self.evaluate_read(conn, other) {
                Ok(body) => reply_frame(xid_v, zxid, ErrorCode::Ok, &body),
                Err(e) => reply_frame(xid_v, zxid, e, &Response::Empty),
            },
        }
    }

    fn auth_of(&self, conn: ConnId) -> &[Id] {
        self.conns
            .get(&conn)
            .map(|c| c.auth.as_slice())
            .unwrap_or(&[])
    }

    fn check_read(&self, conn: ConnId, acl_list: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.config.skip_acl || acl::check(acl_list, perm, self.auth_of(conn)) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn evaluate_read(&mut self, conn: ConnId, request: &Request) -> Result<Response, ErrorCode> {
        let tree = &self.log.state().tree;
        // ZooKeeper's tree also files the root under "", so reads of the
        // empty path answer the root.
        let node = |p: &str| tree.get(if p.is_empty() { "/" } else { p });
        match request {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                // No ACL check, as in ZooKeeper up to 3.8.3 / 3.9.1 and the
                // Debian 3.8.0 this is tested against: exists answers (and
                // sets its watch) on nodes the client cannot read, and
                // clients rely on it (kazoo's ensure_path, Curator's
                // EnsurePath). ZooKeeper 3.8.4+ / 3.9.2+ check READ here
                // (ZOOKEEPER-2590).
                let stat = node(path).map(|n| n.stat());
                if *watch {
                    self.watches.add(conn, WatchKind::Data, path);
                }
                stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
            }
            Request::GetData { path, watch } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                let resp = if n.null_data {
                    Response::DataNull(n.stat())
                } else {
                    Response::Data(n.data.to_vec(), n.stat())
                };
                if *watch {
                    self.watches.add(conn, WatchKind::Data, path);
                }
                Ok(resp)
            }
            Request::GetAcl { path } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ | perms::ADMIN)?;
                let mut list: Vec<Acl> = n.acl.to_vec();
                if !self.config.skip_acl && !acl::has_admin(&n.acl, self.auth_of(conn)) {
                    for a in list.iter_mut().filter(|a| a.id.scheme == "digest") {
                        let user = a.id.id.split(':').next().unwrap_or("").to_owned();
                        a.id.id = format!("{user}:x");
                    }
                }
                Ok(Response::Acl(list, n.stat()))
            }
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                let children: Vec<std::sync::Arc<str>> = n.children.iter().cloned().collect();
                let stat = n.stat();
                if *watch {
                    self.watches.add(conn, WatchKind::Child, path);
                }
                Ok(if matches!(request, Request::GetChildren { .. }) {
                    Response::Children(children)
                } else {
                    Response::Children2(children, stat)
                })
            }
            Request::GetAllChildrenNumber { path } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                // ZooKeeper counts the keys of its node map that start with
                // path + "/": for the empty path (its alias of the root)
                // that is every node, the root included.
                let count = if path.is_empty() {
                    tree.descendant_count("/") + 1
                } else {
                    tree.descendant_count(path)
                };
                Ok(Response::Number(count as i32))
            }
            Request::GetEphemerals { prefix } => {
                let session = self
                    .conns
                    .get(&conn)
                    .and_then(|c| c.session)
                    .unwrap_or_default();
                let all = tree.ephemerals_of(session.0);
                let p = prefix.trim();
                Ok(Response::Strings(if p.is_empty() || p == "/" {
                    all
                } else {
                    all.into_iter()
                        .filter(|e| e.starts_with(prefix.as_str()))
                        .collect()
                }))
            }
            Request::Sync { path } => Ok(Response::Path(path.clone())),
            Request::AddWatch { path, mode } => {
                let kind = if *mode == proto::add_watch_mode::PERSISTENT_RECURSIVE {
                    WatchKind::PersistentRecursive
                } else {
                    WatchKind::Persistent
                };
                self.watches.add(conn, kind, path);
                Ok(Response::Number(0))
            }
            Request::CheckWatches { watcher_type, .. }
            | Request::RemoveWatches { watcher_type, .. }
                if !(1..=5).contains(watcher_type) =>
            {
                // WatcherType.fromInt throws; ZooKeeper answers that as
                // MarshallingError and keeps the connection.
                Err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches { path, watcher_type }
            | Request::RemoveWatches { path, watcher_type } => {
                let check_only = matches!(request, Request::CheckWatches { .. });
                if self
                    .watches
                    .remove_matching(conn, path, *watcher_type, check_only)
                {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            // Every id the connection holds, the super user's too (as
            // ZooKeeper's AuthUtil lists it: scheme "super", user "").
            Request::WhoAmI => Ok(Response::WhoAmI(
                self.auth_of(conn)
                    .iter()
                    .map(|id| (id.scheme.clone(), acl::user_name(id)))
                    .collect(),
            )),
            Request::MultiRead(ops)
                if ops.iter().any(|o| {
                    !matches!(o, MultiOp::GetChildren { .. } | MultiOp::GetData { .. })
                }) =>
            {
                // ZooKeeper fails the whole multiRead ("Invalid type of
                // readOp") with MarshallingError.
                Err(ErrorCode::MarshallingError)
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for o in ops {
                    let (req, data) = match o {
                        MultiOp::GetChildren { path } => (
                            Request::GetChildren {
                                path: path.clone(),
                                watch: false,
                            },
                            false,
                        ),
                        MultiOp::GetData { path } => (
                            Request::GetData {
                                path: path.clone(),
                                watch: false,
                            },
                            true,
                        ),
                        _ => {
                            results.push(OpResult::Error(ErrorCode::BadArguments));
                            continue;
                        }
                    };
                    results.push(match (self.evaluate_read(conn, &req), data) {
                        (Ok(Response::Data(d, s)), true) => OpResult::GetData(d, s),
                        (Ok(Response::DataNull(s)), true) => OpResult::GetData(Vec::new(), s),
                        (Ok(Response::Children(c)), false) => OpResult::GetChildren(c),
                        (Ok(_), _) => unreachable!("read answered with another shape"),
                        (Err(e), _) => OpResult::Error(e),
                    });
                }
                Ok(Response::Multi(results))
            }
            other => unreachable!("not a read: {other:?}"),
        }
    }

    /// setWatches after a reconnect: fire what the client missed since
    /// `relative_zxid`, register the rest.
    fn set_watches(&mut self, conn: ConnId, sw: &proto::SetWatches) {
        let rel = sw.relative_zxid;
        let mut fire: Vec<(i32, String)> = Vec::new();
        for p in &sw.data {
            match self.log.state().tree.get(p) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.mzxid > rel => fire.push((event_type::NODE_DATA_CHANGED, p.clone())),
                Some(_) => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &sw.exist {
            if self.log.state().tree.contains(p) {
                fire.push((event_type::NODE_CREATED, p.clone()));
            } else {
                self.watches.add(conn, WatchKind::Data, p);
            }
        }
        for p in &sw.child {
            match self.log.state().tree.get(p) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.pzxid > rel => {
                    fire.push((event_type::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => self.watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in &sw.persistent {
            self.watches.add(conn, WatchKind::Persistent, p);
        }
        for p in &sw.persistent_recursive {
            self.watches.add(conn, WatchKind::PersistentRecursive, p);
        }
        let zxid = self.log.last_applied().as_i64();
        for (t, p) in fire {
            self.send(
                conn,
                proto::encode_event(zxid, t, keeper_state::SYNC_CONNECTED, &p),
            );
        }
    }

    // ----- after a txn is applied --------------------------------------

    /// Replies to the client that asked for `txn` (if it is connected
    /// here), fires watches, and keeps the session bookkeeping.
    pub(crate) fn on_applied(&mut self, now: Now, txn: &TxnHeader, applied: &Applied) {
        let zxid = txn.zxid;
        let mut reply: Option<(ConnId, Vec<u8>, Option<String>)> = None;
        if txn.cxid != INTERNAL_CXID {
            if let Some(conn) = self.writer_of(txn) {
                let c = &self.conns[&conn];
                let frame = if txn.tag == TxnTag::CreateSession {
                    ConnectResponse {
                        protocol_version: 0,
                        timeout_ms: c.timeout_ms as i32,
                        session_id: txn.session.0,
                        passwd: session::password(txn.session).to_vec(),
                        read_only: c.read_only_flag.map(|_| false),
                    }
                    .encode()
                } else {
                    reply_frame(txn.cxid, zxid, applied.err, &applied.response)
                };
                let close = (txn.tag == TxnTag::CloseSession)
                    .then(|| "client closed its session".to_owned());
                reply = Some((conn, frame, close));
            }
        }
        if let Some(s) = applied.session_created {
            if let Role::Leading(l) = &mut self.role {
                if let Some(m) = self.log.state().sessions.get(&s) {
                    l.expiry.touch(now.mono, s, m.timeout_ms);
                }
            }
        }
        let own = reply.as_ref().map(|r| r.0);
        let watch_after_data = self.canary(Canary::WatchAfterData);
        if !watch_after_data {
            self.fire(txn, applied);
        }
        if let Some((conn, frame, close)) = reply {
            self.finish_write(now, conn, frame, close);
        }
        if watch_after_data {
            self.fire(txn, applied);
        }
        // After the events and the reply: a closing session is told of the
        // events its own close fires (its ephemerals' NodeDeleted) before
        // the close reply, as ZooKeeper does.
        if let Some(s) = applied.session_closed {
            if let Role::Leading(l) = &mut self.role {
                l.closing.remove(&s);
                l.expiry.remove(s);
            }
            self.touched.remove(&s);
            self.session_conn.remove(&s);
            let conns: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.session == Some(s))
                .map(|(id, _)| *id)
                .collect();
            for conn in conns {
                self.watches.remove_conn(conn);
                if own != Some(conn) {
                    self.close(conn, format!("session {s} expired"));
                }
            }
        }
        self.since_snapshot += 1;
        self.since_rebase += 1;
        // While serving, the applied state holds only committed txns, so it
        // can become the in-memory checkpoint (bounding the log in memory).
        if self.since_rebase >= REBASE_EVERY && self.serving() {
            self.since_rebase = 0;
            self.log.rebase();
        }
        if self.since_snapshot >= self.snapshot_threshold
            && !self.snapshot_pending
            && self.serving()
        {
            self.write_snapshot_now();
        }
    }

    fn fire(&mut self, txn: &TxnHeader, applied: &Applied) {
        for t in &applied.triggers {
            let conns = self.watches.trigger(&t.path, t.event);
            for conn in conns {
                // CVE-2024-23944: a watcher without READ on the node (the
                // parent, for NodeChildrenChanged) is not told; its one-shot
                // watch is spent all the same, as in ZooKeeper.
                if self.check_read(conn, &t.acl, perms::READ).is_err() {
                    continue;
                }
                let frame = proto::encode_event(
                    txn.zxid.as_i64(),
                    t.event,
                    keeper_state::SYNC_CONNECTED,
                    &t.path,
                );
                self.send(conn, frame);
            }
        }
    }

    fn finish_write(&mut self, now: Now, conn: ConnId, frame: Vec<u8>, close: Option<String>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(slot) = c.queue.iter_mut().find(|s| matches!(s, Slot::Write { .. })) else {
            return;
        };
        let Slot::Write { arrived, .. } = *slot else {
            unreachable!()
        };
        *slot = Slot::Ready { frame, close };
        self.record_latency(now, arrived, true);
        self.drain(now, conn);
    }

    // ----- introspection ------------------------------------------------

    /// The node's own invariants, checked after every input and timeout in
    /// every build (a few comparisons): the simulator's swarm runs release
    /// builds, and a server that breaks one should stop rather than serve.
    fn check_invariants(&self) {
        assert!(
            self.log.base_zxid() <= self.log.last_applied(),
            "applied {} below the snapshot base {}",
            self.log.last_applied(),
            self.log.base_zxid()
        );
        assert!(
            self.log.last_applied() <= self.log.last_logged(),
            "applied {} beyond logged {}",
            self.log.last_applied(),
            self.log.last_logged()
        );
        assert!(
            self.current_epoch <= self.accepted_epoch,
            "currentEpoch {} > acceptedEpoch {}",
            self.current_epoch,
            self.accepted_epoch
        );
        if let Role::Leading(l) = &self.role {
            if l.established {
                assert_eq!(
                    l.last_proposed,
                    self.log.last_logged(),
                    "leader's last proposal is not its last log entry"
                );
            }
        }
    }

    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats.clone();
        s.last_zxid = self.log.last_applied();
        s.mode = self.role.name();
        s.node_count = self.log.state().tree.node_count() as u64;
        s.approximate_data_size = self.log.state().tree.data_size();
        s.ephemerals_count = self.log.state().tree.ephemerals_count() as u64;
        s.sessions = self.log.state().sessions.len() as u64;
        s.connections = self.conns.len() as u64;
        s.watch_count = self.watches.count() as u64;
        s.watched_paths = self.watches.path_count() as u64;
        s.outstanding_requests = self.conns.values().map(|c| c.queue.len() as u64).sum();
        s.digest = self.log.state().tree.digest();
        if s.latency_count == 0 {
            s.latency_min_ms = 0;
        }
        s
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        self.conns
            .iter()
            .map(|(id, c)| ConnInfo {
                conn: *id,
                addr: c.addr.clone(),
                session: c.session,
                timeout_ms: c.timeout_ms,
                queued: c.queue.len() as u64,
                received: c.received,
                sent: c.sent,
                last_zxid: c.last_zxid,
            })
            .collect()
    }

    pub fn reset_stats(&mut self) {
        self.stats.packets_received = 0;
        self.stats.packets_sent = 0;
        self.stats.latency_min_ms = u64::MAX;
        self.stats.latency_max_ms = 0;
        self.stats.latency_total_ms = 0;
        self.stats.latency_count = 0;
        for c in self.conns.values_mut() {
            c.received = 0;
            c.sent = 0;
        }
    }

    fn session_of_conn(&self, conn: ConnId) -> SessionId {
        self.conns
            .get(&conn)
            .and_then(|c| c.session)
            .unwrap_or_default()
    }

    pub fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.watches
            .by_conn()
            .map(|(c, paths)| (self.session_of_conn(c), paths))
            .collect()
    }

    pub fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.watches
            .by_path()
            .into_iter()
            .map(|(p, conns)| {
                (
                    p,
                    conns.into_iter().map(|c| self.session_of_conn(c)).collect(),
                )
            })
            .collect()
    }

    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.log
            .state()
            .tree
            .ephemeral_sessions()
            .map(|(s, _)| (SessionId(s), self.log.state().tree.ephemerals_of(s)))
            .collect()
    }

    pub fn sessions(&self) -> Vec<(SessionId, u32)> {
        self.log
            .state()
            .sessions
            .iter()
            .map(|(s, m)| (*s, m.timeout_ms))
            .collect()
    }

    pub fn digest(&self) -> u64 {
        self.log.state().tree.digest()
    }

    pub fn last_applied(&self) -> Zxid {
        self.log.last_applied()
    }

    /// The replicated state (for the simulator's checkers and tests).
    pub fn state(&self) -> &State {
        self.log.state()
    }

    pub fn last_logged(&self) -> Zxid {
        self.log.last_logged()
    }

    pub fn applied_since(&self, after: Zxid) -> impl Iterator<Item = &crate::txn::Txn> + '_ {
        self.log.iter_range(after, self.log.last_applied())
    }

    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    pub fn role_debug(&self) -> String {
        match &self.role {
            Role::Looking(e) => format!("looking round {} vote {:?}", e.round, e.vote),
            Role::Leading(l) => format!(
                "leading epoch {} chosen {} established {} self_acked {} epoch_token {:?} newleader_token {:?} learners {:?} tokens {:?} persisted {}",
                l.epoch,
                l.epoch_chosen,
                l.established,
                l.self_acked_newleader,
                l.epoch_token,
                l.newleader_token,
                l.learners.iter().map(|(s, v)| (s.0, v.stage, v.acked)).collect::<Vec<_>>(),
                self.tokens,
                self.persisted_upto
            ),
            Role::Learning(l) => format!("learning from {} epoch {} phase {:?} commit {}", l.leader.0, l.epoch, l.phase, l.commit_upto),
        }
    }

    pub fn role_name(&self) -> &'static str {
        self.role.name()
    }

    /// The leader this server follows, or itself when leading.
    pub fn leader_id(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(l) if l.established => Some(self.config.server_id),
            Role::Learning(l) if self.learner_is_serving() => Some(l.leader),
            _ => None,
        }
    }

    /// Followers and synced followers, as the leader counts them.
    pub fn learner_counts(&self) -> (usize, usize) {
        match &self.role {
            Role::Leading(l) => {
                let f = l.learners.values().filter(|v| !v.observer).count();
                let synced = l
                    .learners
                    .values()
                    .filter(|v| !v.observer && v.stage >= crate::zab::leader::Stage::NewLeaderAcked)
                    .count();
                (f, synced)
            }
            _ => (0, 0),
        }
    }
}

/// ZooKeeper takes a snapshot after snapCount/2 + random(snapCount/2) txns
/// so that servers of an ensemble do not all snapshot at once.
fn snapshot_threshold(rng: &mut ChaCha8Rng, snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.gen_range(0..half)
}
