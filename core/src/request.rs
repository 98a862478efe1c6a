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

use crate::config::Config;
use crate::ids::*;
use crate::node::{ConnInfo, Input, NodeStats, Output};
use crate::proto::{
    self, event_type, keeper_state, perms, xid, Acl, ConnectRequest, ConnectResponse, DecodeError, ErrorCode, Id,
    MultiOp, OpResult, Reader, Request, Response,
};
use crate::session::{self, ExpiryQueue};
use crate::storage::{self, Recovered, Snapshot};
use crate::tree::acl;
use crate::txn::{Applied, ApplyOptions, State, Txn, TxnKind};
use crate::watch::{WatchKind, Watches};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use tracing::{debug, info, warn};

/// Frames a connection may have waiting for their turn before the core
/// refuses more (the shell stops reading from it at this point).
pub const QUEUED_PER_CONN_MAX: usize = 10_000;

#[derive(Debug)]
enum Slot {
    /// A read (or ordered no-op reply) evaluated when it reaches the head.
    Read { xid: i32, request: Request, arrived: Instant },
    /// A write waiting for its proposal to commit.
    Write { zxid: Zxid, arrived: Instant },
    /// A finished reply waiting for earlier slots.
    Ready { frame: Vec<u8>, close: Option<String> },
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

#[derive(Debug)]
enum Origin {
    None,
    Client { conn: ConnId, xid: i32 },
    Connect { conn: ConnId },
}

#[derive(Debug)]
struct Proposal {
    txn: Txn,
    origin: Origin,
}

pub struct Server {
    config: Config,
    opts: ApplyOptions,
    state: State,
    rng: ChaCha8Rng,
    conns: BTreeMap<ConnId, Conn>,
    /// Lookup only: which connection a session is attached to.
    session_conn: HashMap<SessionId, ConnId>,
    expiry: ExpiryQueue,
    /// Sessions whose CloseSession is proposed but not applied.
    closing: BTreeSet<SessionId>,
    watches: Watches,
    next_session_id: i64,
    last_proposed: Zxid,
    pending: VecDeque<Proposal>,
    persist_buf: Vec<u8>,
    persist_first: Option<Zxid>,
    persist_last: Zxid,
    next_token: u64,
    tokens: VecDeque<(PersistToken, Zxid)>,
    outputs: VecDeque<Output>,
    since_snapshot: u64,
    snapshot_threshold: u64,
    snapshot_in_progress: bool,
    next_reap: Instant,
    stats: NodeStats,
}

fn reply_frame(xid: i32, zxid: Zxid, err: ErrorCode, body: &Response) -> Vec<u8> {
    proto::encode_reply(xid, zxid.as_i64(), err, body)
}

impl Server {
    pub fn new(config: Config, recovered: Recovered, now: Now) -> Server {
        for n in &recovered.notes {
            info!("recovery: {n}");
        }
        let opts = ApplyOptions {
            extended_types_enabled: config.extended_types_enabled,
            skip_acl: config.skip_acl,
            max_data_len: config.max_buffer as usize,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ config.server_id.0.rotate_left(32));
        let snapshot_threshold = snapshot_threshold(&mut rng, config.snap_count);
        let mut expiry = ExpiryQueue::new(config.tick_time_ms);
        // Recovered sessions get a full timeout from now to reconnect.
        for (s, meta) in recovered.state.sessions.iter() {
            expiry.touch(now.mono, *s, meta.timeout_ms);
        }
        let last = recovered.state.last_zxid;
        let next_session_id = session::first_session_id(config.server_id.0, now.wall_ms);
        let next_reap = now.mono.add_millis(config.container_check_interval_ms);
        Server {
            stats: NodeStats {
                mode: "standalone",
                latency_min_ms: u64::MAX,
                ..NodeStats::default()
            },
            config,
            opts,
            state: recovered.state,
            rng,
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            expiry,
            closing: BTreeSet::new(),
            watches: Watches::default(),
            next_session_id,
            last_proposed: last,
            pending: VecDeque::new(),
            persist_buf: Vec::new(),
            persist_first: None,
            persist_last: last,
            next_token: 1,
            tokens: VecDeque::new(),
            outputs: VecDeque::new(),
            since_snapshot: 0,
            snapshot_threshold,
            snapshot_in_progress: false,
            next_reap,
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
                self.snapshot_in_progress = false;
            }
        }
        self.check_invariants();
    }

    pub fn handle_timeout(&mut self, now: Now) {
        for s in self.expiry.expired(now.mono) {
            if self.state.sessions.contains_key(&s) && self.closing.insert(s) {
                info!("session {s} expired");
                self.propose(now, s, 0, TxnKind::CloseSession, Origin::None);
            }
        }
        if now.mono >= self.next_reap {
            self.next_reap = now.mono.add_millis(self.config.container_check_interval_ms);
            self.reap(now);
        }
        self.check_invariants();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(first) = self.persist_first.take() {
            let token = PersistToken(self.next_token);
            self.next_token += 1;
            self.tokens.push_back((token, self.persist_last));
            return Some(Output::Persist {
                token,
                first_zxid: first,
                last_zxid: self.persist_last,
                bytes: std::mem::take(&mut self.persist_buf),
                sync: true,
            });
        }
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let reap = if self.state.tree.containers().next().is_some() || self.state.tree.ttls().next().is_some() {
            Some(self.next_reap)
        } else {
            None
        };
        match (self.expiry.next_deadline(), reap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        if c.queue.len() >= QUEUED_PER_CONN_MAX {
            self.close(conn, "too many outstanding requests".into());
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
        if req.last_zxid_seen > self.state.last_zxid.as_i64() {
            self.close(
                conn,
                format!(
                    "client has seen zxid 0x{:x}, this server's last is {}; client must try another server",
                    req.last_zxid_seen, self.state.last_zxid
                ),
            );
            return;
        }
        let timeout = (req.timeout_ms.max(0) as u32).clamp(self.config.min_session_timeout_ms, self.config.max_session_timeout_ms);
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.read_only_flag = req.read_only;
        c.timeout_ms = timeout;
        if req.session_id == 0 {
            let id = self.new_session_id();
            // Mark the connection as bound so further frames are requests;
            // the reply waits for the CreateSession commit.
            let c = self.conns.get_mut(&conn).expect("connection exists");
            c.session = Some(id);
            c.queue.push_back(Slot::Write {
                zxid: Zxid(self.last_proposed.0 + 1),
                arrived: now.mono,
            });
            self.propose(now, id, 0, TxnKind::CreateSession { timeout_ms: timeout }, Origin::Connect { conn });
            return;
        }
        let id = SessionId(req.session_id);
        let valid = req.passwd == session::password(id)
            && self.state.sessions.contains_key(&id)
            && !self.closing.contains(&id);
        if !valid {
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                passwd: vec![0; session::PASSWORD_LEN],
                read_only: req.read_only,
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
            passwd: session::password(id).to_vec(),
            read_only: req.read_only,
        };
        self.send(conn, resp.encode());
    }

    /// Binds a session to a connection, closing any older connection of it.
    fn attach(&mut self, now: Now, conn: ConnId, id: SessionId, timeout: u32) {
        if let Some(old) = self.session_conn.insert(id, conn) {
            if old != conn {
                self.watches.remove_conn(old);
                self.close(old, format!("session {id} moved to another connection"));
                if let Some(o) = self.conns.get_mut(&old) {
                    o.session = None;
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        self.expiry.touch(now.mono, id, timeout);
    }

    fn new_session_id(&mut self) -> SessionId {
        loop {
            let id = SessionId(self.next_session_id);
            self.next_session_id = self.next_session_id.wrapping_add(1);
            if id.0 != 0 && !self.state.sessions.contains_key(&id) && !self.session_conn.contains_key(&id) {
                return id;
            }
        }
    }

    fn on_request(&mut self, now: Now, conn: ConnId, session: SessionId, frame: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(frame);
        let xid_v = r.i32()?;
        let opcode = r.i32()?;
        let body = &frame[8..];
        if !self.closing.contains(&session) {
            self.expiry.touch_known(now.mono, session);
        }
        let request = match proto::decode_request(opcode, body) {
            Ok(req) => req,
            Err(DecodeError::UnknownOpcode(op)) => {
                warn!("connection {}: unknown opcode {op}", conn.0);
                let frame = reply_frame(xid_v, Zxid::ZERO, ErrorCode::Unimplemented, &Response::Empty);
                self.push_ready(conn, frame, None);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match request {
            Request::Auth { scheme, auth, .. } => {
                let c = self.conns.get(&conn).expect("connection exists");
                match acl::authenticate(&scheme, &auth, &c.addr, self.config.super_digest.as_deref()) {
                    Ok(ids) => {
                        let c = self.conns.get_mut(&conn).expect("connection exists");
                        for id in ids {
                            if !c.auth.contains(&id) {
                                c.auth.push(id);
                            }
                        }
                        let f = reply_frame(xid::AUTH, Zxid::ZERO, ErrorCode::Ok, &Response::Empty);
                        self.push_ready(conn, f, None);
                    }
                    Err(e) => {
                        let f = reply_frame(xid::AUTH, Zxid::ZERO, e, &Response::Empty);
                        self.push_ready(conn, f, Some(format!("authentication failed for scheme {scheme}")));
                    }
                }
            }
            Request::Sasl | Request::Reconfig => {
                let err = if matches!(request, Request::Reconfig) {
                    ErrorCode::ReconfigDisabled
                } else {
                    ErrorCode::Unimplemented
                };
                let f = reply_frame(xid_v, self.state.last_zxid, err, &Response::Empty);
                self.push_ready(conn, f, None);
            }
            req if req.is_write() => {
                let c = self.conns.get_mut(&conn).expect("connection exists");
                let auth = c.auth.clone();
                c.queue.push_back(Slot::Write {
                    zxid: Zxid(self.last_proposed.0 + 1),
                    arrived: now.mono,
                });
                let kind = if matches!(req, Request::CloseSession) {
                    self.closing.insert(session);
                    self.expiry.remove(session);
                    TxnKind::CloseSession
                } else {
                    TxnKind::Write { request: req, auth }
                };
                self.propose(now, session, xid_v, kind, Origin::Client { conn, xid: xid_v });
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
            c.last_zxid = self.state.last_zxid;
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
                None | Some(Slot::Write { .. }) => return,
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
                    let Some(Slot::Read { xid, request, arrived }) = c.queue.pop_front() else {
                        unreachable!()
                    };
                    let frame = self.read(conn, xid, &request);
                    self.record_latency(now, arrived);
                    self.send(conn, frame);
                }
            }
        }
    }

    fn record_latency(&mut self, now: Now, arrived: Instant) {
        if now.mono == Instant::default() {
            return;
        }
        let ms = now.mono.millis_since(arrived);
        let s = &mut self.stats;
        s.latency_min_ms = s.latency_min_ms.min(ms);
        s.latency_max_ms = s.latency_max_ms.max(ms);
        s.latency_total_ms += ms;
        s.latency_count += 1;
    }

    fn on_closed(&mut self, conn: ConnId) {
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
        let zxid = self.state.last_zxid;
        match request {
            Request::Ping => reply_frame(xid::PING, zxid, ErrorCode::Ok, &Response::Empty),
            Request::SetWatches(sw) => {
                self.set_watches(conn, sw);
                reply_frame(xid::SET_WATCHES, zxid, ErrorCode::Ok, &Response::Empty)
            }
            other => match self.evaluate_read(conn, other) {
                Ok(body) => reply_frame(xid_v, zxid, ErrorCode::Ok, &body),
                Err(e) => reply_frame(xid_v, zxid, e, &Response::Empty),
            },
        }
    }

    fn auth_of(&self, conn: ConnId) -> &[Id] {
        self.conns.get(&conn).map(|c| c.auth.as_slice()).unwrap_or(&[])
    }

    fn check_read(&self, conn: ConnId, acl_list: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.config.skip_acl || acl::check(acl_list, perm, self.auth_of(conn)) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn evaluate_read(&mut self, conn: ConnId, request: &Request) -> Result<Response, ErrorCode> {
        let tree = &self.state.tree;
        match request {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let stat = match tree.get(path) {
                    Some(n) => {
                        self.check_read(conn, &n.acl, perms::READ)?;
                        Some(n.stat())
                    }
                    None => None,
                };
                if *watch {
                    self.watches.add(conn, WatchKind::Data, path);
                }
                stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
            }
            Request::GetData { path, watch } => {
                let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                let resp = Response::Data(n.data.to_vec(), n.stat());
                if *watch {
                    self.watches.add(conn, WatchKind::Data, path);
                }
                Ok(resp)
            }
            Request::GetAcl { path } => {
                let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
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
                let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                let children: Vec<String> = n.children.iter().map(|c| c.to_string()).collect();
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
                let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
                self.check_read(conn, &n.acl, perms::READ)?;
                Ok(Response::Number(tree.descendant_count(path) as i32))
            }
            Request::GetEphemerals { prefix } => {
                let session = self.conns.get(&conn).and_then(|c| c.session).unwrap_or_default();
                let all = tree.ephemerals_of(session.0);
                let p = prefix.trim();
                Ok(Response::Strings(if p.is_empty() || p == "/" {
                    all
                } else {
                    all.into_iter().filter(|e| e.starts_with(prefix.as_str())).collect()
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
            Request::CheckWatches { path, watcher_type } | Request::RemoveWatches { path, watcher_type } => {
                let check_only = matches!(request, Request::CheckWatches { .. });
                if self.watches.remove_matching(conn, path, *watcher_type, check_only) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::WhoAmI => Ok(Response::WhoAmI(
                self.auth_of(conn)
                    .iter()
                    .filter(|id| id.scheme != "super")
                    .map(|id| (id.scheme.clone(), acl::user_name(id)))
                    .collect(),
            )),
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
            match self.state.tree.get(p) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.mzxid > rel => fire.push((event_type::NODE_DATA_CHANGED, p.clone())),
                Some(_) => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &sw.exist {
            if self.state.tree.contains(p) {
                fire.push((event_type::NODE_CREATED, p.clone()));
            } else {
                self.watches.add(conn, WatchKind::Data, p);
            }
        }
        for p in &sw.child {
            match self.state.tree.get(p) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.pzxid > rel => fire.push((event_type::NODE_CHILDREN_CHANGED, p.clone())),
                Some(_) => self.watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in &sw.persistent {
            self.watches.add(conn, WatchKind::Persistent, p);
        }
        for p in &sw.persistent_recursive {
            self.watches.add(conn, WatchKind::PersistentRecursive, p);
        }
        let zxid = self.state.last_zxid.as_i64();
        for (t, p) in fire {
            self.send(conn, proto::encode_event(zxid, t, keeper_state::SYNC_CONNECTED, &p));
        }
    }

    // ----- proposals, persistence, commit -------------------------------

    fn propose(&mut self, now: Now, session: SessionId, cxid: i32, kind: TxnKind, origin: Origin) {
        let zxid = Zxid(self.last_proposed.0 + 1);
        assert!(zxid.counter() != 0, "zxid counter overflow at {zxid}: a new epoch is required");
        self.last_proposed = zxid;
        let txn = Txn {
            zxid,
            time_ms: now.wall_ms,
            session,
            cxid,
            kind,
        };
        storage::encode_record(&txn, &mut self.persist_buf);
        if self.persist_first.is_none() {
            self.persist_first = Some(zxid);
        }
        self.persist_last = zxid;
        self.pending.push_back(Proposal { txn, origin });
    }

    fn on_persisted(&mut self, now: Now, token: PersistToken) {
        // Tokens complete in order; a token covers every earlier one.
        let mut upto = None;
        while let Some(&(t, z)) = self.tokens.front() {
            if t > token {
                break;
            }
            self.tokens.pop_front();
            upto = Some(z);
        }
        let Some(upto) = upto else {
            return;
        };
        // Standalone: the server's own durable vote is a quorum.
        while self.pending.front().is_some_and(|p| p.txn.zxid <= upto) {
            let p = self.pending.pop_front().expect("front exists");
            self.commit(now, p);
        }
    }

    fn commit(&mut self, now: Now, p: Proposal) {
        let applied = self.state.apply(&p.txn, &self.opts);
        self.after_apply(now, &p.txn, &applied);
        match p.origin {
            Origin::None => {}
            Origin::Client { conn, xid: x } => {
                let frame = reply_frame(x, p.txn.zxid, applied.err, &applied.response);
                let close = matches!(p.txn.kind, TxnKind::CloseSession).then(|| "client closed its session".to_owned());
                self.finish_write(now, conn, p.txn.zxid, frame, close);
            }
            Origin::Connect { conn } => {
                let session = p.txn.session;
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: c.timeout_ms as i32,
                    session_id: session.0,
                    passwd: session::password(session).to_vec(),
                    read_only: c.read_only_flag,
                };
                let timeout = c.timeout_ms;
                self.attach(now, conn, session, timeout);
                self.finish_write(now, conn, p.txn.zxid, resp.encode(), None);
            }
        }
        self.since_snapshot += 1;
        if self.since_snapshot >= self.snapshot_threshold && !self.snapshot_in_progress {
            self.since_snapshot = 0;
            self.snapshot_in_progress = true;
            self.snapshot_threshold = snapshot_threshold(&mut self.rng, self.config.snap_count);
            let snapshot = Snapshot::of(&self.state);
            self.outputs.push_back(Output::WriteSnapshot {
                zxid: snapshot.zxid,
                snapshot,
            });
        }
    }

    fn finish_write(&mut self, now: Now, conn: ConnId, zxid: Zxid, frame: Vec<u8>, close: Option<String>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let slot = c
            .queue
            .iter_mut()
            .find(|s| matches!(s, Slot::Write { .. }))
            .expect("a committed write has its slot");
        let Slot::Write { zxid: want, arrived } = *slot else {
            unreachable!()
        };
        assert_eq!(want, zxid, "connection {} writes commit out of order", conn.0);
        *slot = Slot::Ready { frame, close };
        self.record_latency(now, arrived);
        self.drain(now, conn);
    }

    /// Session bookkeeping and watch events after a txn is applied.
    fn after_apply(&mut self, _now: Now, txn: &Txn, applied: &Applied) {
        if let Some(s) = applied.session_closed {
            self.closing.remove(&s);
            self.expiry.remove(s);
            if let Some(conn) = self.session_conn.remove(&s) {
                self.watches.remove_conn(conn);
                let is_own_close = matches!(
                    self.pending_origin_conn(txn),
                    Some(c) if c == conn
                );
                if !is_own_close {
                    self.close(conn, format!("session {s} expired"));
                }
            }
        }
        for t in &applied.triggers {
            let conns = self.watches.trigger(&t.path, t.event);
            for conn in conns {
                let frame = proto::encode_event(txn.zxid.as_i64(), t.event, keeper_state::SYNC_CONNECTED, &t.path);
                self.send(conn, frame);
            }
        }
    }

    fn pending_origin_conn(&self, txn: &Txn) -> Option<ConnId> {
        // The txn being committed was popped already; its origin is the
        // session's own connection exactly when it was a client close.
        if matches!(txn.kind, TxnKind::CloseSession) && txn.cxid != 0 {
            self.conns
                .iter()
                .find(|(_, c)| c.session == Some(txn.session))
                .map(|(id, _)| *id)
        } else {
            None
        }
    }

    /// Proposes deleteContainer for empty used containers and expired TTL
    /// nodes (ZooKeeper's ContainerManager).
    fn reap(&mut self, now: Now) {
        let mut victims = Vec::new();
        for p in self.state.tree.containers() {
            if let Some(n) = self.state.tree.get(p) {
                if n.cversion > 0 && n.children.is_empty() {
                    victims.push(p.to_string());
                }
            }
        }
        for p in self.state.tree.ttls() {
            if let Some(n) = self.state.tree.get(p) {
                if let crate::tree::NodeKind::Ttl(ttl) = n.kind() {
                    if n.children.is_empty() && now.wall_ms - n.mtime > ttl {
                        victims.push(p.to_string());
                    }
                }
            }
        }
        for path in victims {
            debug!("reaping {path}");
            self.propose(
                now,
                SessionId(0),
                0,
                TxnKind::Write {
                    request: Request::DeleteContainer { path },
                    auth: vec![],
                },
                Origin::None,
            );
        }
    }

    // ----- introspection ------------------------------------------------

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            let mut prev = self.state.last_zxid;
            for p in &self.pending {
                assert!(p.txn.zxid > prev, "pending proposals out of order at {}", p.txn.zxid);
                prev = p.txn.zxid;
            }
            assert_eq!(prev, self.last_proposed, "last proposed drifted");
        }
    }

    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats.clone();
        s.last_zxid = self.state.last_zxid;
        s.node_count = self.state.tree.node_count() as u64;
        s.approximate_data_size = self.state.tree.data_size();
        s.ephemerals_count = self.state.tree.ephemerals_count() as u64;
        s.sessions = self.state.sessions.len() as u64;
        s.connections = self.conns.len() as u64;
        s.watch_count = self.watches.count() as u64;
        s.watched_paths = self.watches.path_count() as u64;
        s.outstanding_requests = self.conns.values().map(|c| c.queue.len() as u64).sum();
        s.digest = self.state.tree.digest();
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
        self.conns.get(&conn).and_then(|c| c.session).unwrap_or_default()
    }

    pub fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.watches.by_conn().map(|(c, paths)| (self.session_of_conn(c), paths)).collect()
    }

    pub fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.watches
            .by_path()
            .into_iter()
            .map(|(p, conns)| (p, conns.into_iter().map(|c| self.session_of_conn(c)).collect()))
            .collect()
    }

    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.state
            .tree
            .ephemeral_sessions()
            .map(|(s, _)| (SessionId(s), self.state.tree.ephemerals_of(s)))
            .collect()
    }

    pub fn sessions(&self) -> Vec<(SessionId, u32)> {
        self.state.sessions.iter().map(|(s, m)| (*s, m.timeout_ms)).collect()
    }

    pub fn digest(&self) -> u64 {
        self.state.tree.digest()
    }

    pub fn last_applied(&self) -> Zxid {
        self.state.last_zxid
    }

    /// The replicated state (for the simulator's checkers and tests).
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// ZooKeeper takes a snapshot after snapCount/2 + random(snapCount/2) txns
/// so that servers of an ensemble do not all snapshot at once.
fn snapshot_threshold(rng: &mut ChaCha8Rng, snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.gen_range(0..half)
}

