//! The client pipeline as a type: `Clients` owns the connections, which
//! session is on which connection, each connection's queue of pending
//! replies (`Slot`s), the watches, and the pipeline's own figures.
//!
//! It decides nothing about roles or the replicated state: every method
//! takes what it needs as arguments (the tree to read as a `Reader`, the
//! zxid to stamp, the bounds) and writes its effects to the output queue
//! it is given. The server (`requests.rs`, `applied.rs`) says when.
//!
//! Invariants: a connection's replies leave in the order its requests
//! arrived (`drain` releases only from the head of its queue); nothing is
//! sent on a connection once it is closing; a session is on at most one
//! connection (`attach` closes the older one).

use super::reads::Reader;
use super::{ConnInfo, NodeStats, Output};
use crate::ids::*;
use crate::proto::{self, keeper_state, perms, Id, Request};
use crate::sasl::DigestServer;
use crate::tree::acl;
use crate::txn::{Trigger, TxnHeader, TxnTag};
use crate::watch::Watches;
use std::collections::{BTreeMap, HashMap, VecDeque};
use tracing::{info, warn};

#[derive(Debug)]
pub(super) enum Slot {
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

/// One client connection. The server reads its fields through
/// [`Clients::get`]; only `Clients` changes them (the connection's ids
/// excepted: authentication adds to them through [`Clients::ids_mut`]).
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) addr: String,
    pub(super) session: Option<SessionId>,
    /// The ConnectRequest's readOnly flag, echoed in the same shape.
    pub(super) read_only_flag: Option<bool>,
    pub(super) timeout_ms: u32,
    pub(super) auth: Vec<Id>,
    /// The connection's SASL exchange, once it sent a `sasl` request.
    pub(super) sasl: Option<DigestServer>,
    queue: VecDeque<Slot>,
    /// Set once the connection is being closed; nothing more is sent.
    pub(super) closed: bool,
    /// A reconnect waits for the leader's word on its session.
    pub(super) revalidating: bool,
    /// Frames that arrived while revalidating (at most the queue bound).
    held: Vec<Vec<u8>>,
    received: u64,
    sent: u64,
    last_zxid: Zxid,
}

/// The pipeline's own figures (`mntr`, `srvr`, metrics).
#[derive(Debug, Clone)]
struct Figures {
    packets_received: u64,
    packets_sent: u64,
    latency_min_ms: u64,
    latency_max_ms: u64,
    latency_total_ms: u64,
    latency_count: u64,
    read_latency: crate::latency::Latencies,
    update_latency: crate::latency::Latencies,
}

impl Default for Figures {
    fn default() -> Figures {
        Figures {
            packets_received: 0,
            packets_sent: 0,
            latency_min_ms: u64::MAX,
            latency_max_ms: 0,
            latency_total_ms: 0,
            latency_count: 0,
            read_latency: Default::default(),
            update_latency: Default::default(),
        }
    }
}

/// What a frame that passed [`Clients::admit`] is.
pub(super) enum Admitted {
    /// The connection has no session yet: a ConnectRequest.
    Connect(Vec<u8>),
    /// A request of the connection's session.
    Request(SessionId, Vec<u8>),
}

type Out = VecDeque<Output>;

pub(super) struct Clients {
    conns: BTreeMap<ConnId, Conn>,
    /// Lookup only: which connection a session is attached to.
    session_conn: HashMap<SessionId, ConnId>,
    watches: Watches,
    watches_per_conn: usize,
    next_sync_id: u64,
    figures: Figures,
}

impl Clients {
    pub(super) fn new(watches_per_conn: usize) -> Clients {
        Clients {
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            watches: Watches::with_limit(watches_per_conn),
            watches_per_conn,
            next_sync_id: 1,
            figures: Figures::default(),
        }
    }

    pub(super) fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(&conn)
    }

    /// The ids a connection holds (authentication adds to them).
    pub(super) fn ids_mut(&mut self, conn: ConnId) -> Option<&mut Vec<Id>> {
        self.conns.get_mut(&conn).map(|c| &mut c.auth)
    }

    /// The connection's SASL exchange, started if it was not.
    pub(super) fn sasl_mut(&mut self, conn: ConnId) -> Option<&mut DigestServer> {
        let c = self.conns.get_mut(&conn)?;
        Some(c.sasl.get_or_insert(DigestServer::Start))
    }

    // ----- connections --------------------------------------------------

    /// A connection was accepted: served, or closed at once when `max`
    /// connections are open.
    pub(super) fn connect(&mut self, conn: ConnId, addr: String, max: usize, out: &mut Out) {
        if self.conns.len() >= max {
            let reason = format!(
                "refused: this server holds {} connections (the limit)",
                self.conns.len()
            );
            warn!("connection {} ({addr}) {reason}", conn.0);
            out.push_back(Output::CloseClient { conn, reason });
            return;
        }
        let auth = vec![Id::new("ip", &addr)];
        self.conns.insert(
            conn,
            Conn {
                addr,
                session: None,
                read_only_flag: None,
                timeout_ms: 0,
                auth,
                sasl: None,
                queue: VecDeque::new(),
                closed: false,
                revalidating: false,
                held: Vec::new(),
                received: 0,
                sent: 0,
                last_zxid: Zxid::ZERO,
            },
        );
    }

    pub(super) fn close(&mut self, conn: ConnId, reason: String, out: &mut Out) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closed {
                c.closed = true;
                info!("closing connection {} ({}): {reason}", conn.0, c.addr);
                out.push_back(Output::CloseClient { conn, reason });
            }
        }
    }

    pub(super) fn close_all(&mut self, reason: &str, out: &mut Out) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.close(c, reason.to_owned(), out);
        }
    }

    /// The socket is gone. Returns the session it held, if the session
    /// was still attached to it.
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<SessionId> {
        let c = self.conns.remove(&conn)?;
        self.watches.remove_conn(conn);
        let s = c.session?;
        if self.session_conn.get(&s) == Some(&conn) {
            self.session_conn.remove(&s);
            Some(s)
        } else {
            None
        }
    }

    /// Counts a frame and bounds it: a frame over `max_buffer` or over
    /// `queue_max` waiting frames closes the connection; while the
    /// session is being revalidated it is held. Returns what to do with
    /// it now, if anything.
    pub(super) fn admit(
        &mut self,
        conn: ConnId,
        frame: Vec<u8>,
        max_buffer: usize,
        queue_max: usize,
        out: &mut Out,
    ) -> Option<Admitted> {
        let c = self.conns.get_mut(&conn)?;
        if c.closed {
            return None;
        }
        c.received += 1;
        self.figures.packets_received += 1;
        if frame.len() > max_buffer {
            let len = frame.len();
            self.close(
                conn,
                format!("frame of {len} bytes exceeds jute.maxbuffer"),
                out,
            );
            return None;
        }
        if c.queue.len() + c.held.len() >= queue_max {
            let n = c.queue.len() + c.held.len();
            self.close(
                conn,
                format!("{n} requests outstanding: over the per-connection limit"),
                out,
            );
            return None;
        }
        if c.revalidating {
            // The session is being revalidated: ZooKeeper reads nothing
            // more from the socket until then; hold the frames.
            c.held.push(frame);
            return None;
        }
        self.classify(conn, frame)
    }

    /// A counted and bounded frame: a ConnectRequest or a request.
    pub(super) fn classify(&self, conn: ConnId, frame: Vec<u8>) -> Option<Admitted> {
        let c = self.conns.get(&conn)?;
        if c.closed {
            return None;
        }
        Some(match c.session {
            None => Admitted::Connect(frame),
            Some(s) => Admitted::Request(s, frame),
        })
    }

    // ----- sessions -----------------------------------------------------

    /// The ConnectRequest's terms, kept for the ConnectResponse.
    pub(super) fn handshake(&mut self, conn: ConnId, read_only_flag: Option<bool>, timeout: u32) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.read_only_flag = read_only_flag;
            c.timeout_ms = timeout;
        }
    }

    /// A new session: bound now so further frames are requests; its
    /// ConnectResponse waits (as a write) for the CreateSession commit.
    pub(super) fn bind_new_session(&mut self, conn: ConnId, id: SessionId, arrived: Instant) {
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.session = Some(id);
        c.queue.push_back(Slot::Write {
            cxid: 0,
            connect: true,
            arrived,
        });
        self.session_conn.insert(id, conn);
    }

    /// A reconnect waits for the leader's word on its session.
    pub(super) fn start_revalidating(&mut self, conn: ConnId) {
        self.conns
            .get_mut(&conn)
            .expect("connection exists")
            .revalidating = true;
    }

    /// The word came: the frames held meanwhile, or `None` when the
    /// connection is gone or closing.
    pub(super) fn end_revalidating(&mut self, conn: ConnId) -> Option<Vec<Vec<u8>>> {
        let c = self.conns.get_mut(&conn)?;
        c.revalidating = false;
        let held = std::mem::take(&mut c.held);
        (!c.closed).then_some(held)
    }

    /// Binds a session to a connection, closing any older connection of it.
    pub(super) fn attach(&mut self, conn: ConnId, id: SessionId, out: &mut Out) {
        // ZooKeeper closes the connection that held the session
        // (DisconnectReason CLIENT_RECONNECT) and moves the session to the
        // new one; unlike ZooKeeper, only after the password is checked.
        if let Some(old) = self.session_conn.insert(id, conn) {
            if old != conn {
                self.watches.remove_conn(old);
                self.close(
                    old,
                    format!("session {id} reconnected on another connection"),
                    out,
                );
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
    }

    /// Whether a session is attached to a connection here.
    pub(super) fn has_session(&self, id: SessionId) -> bool {
        self.session_conn.contains_key(&id)
    }

    /// Forgets sessions that end without a txn (read-only sessions).
    pub(super) fn forget_session(&mut self, id: SessionId) {
        self.session_conn.remove(&id);
    }

    /// Closes every connection whose session `pick` selects.
    pub(super) fn close_sessions(
        &mut self,
        pick: impl Fn(SessionId) -> bool,
        reason: &str,
        out: &mut Out,
    ) {
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session.is_some_and(&pick))
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.close(c, reason.to_owned(), out);
        }
    }

    /// A session's close was applied: its connections lose their
    /// watches, and all but `own` (which carries the close reply) close.
    pub(super) fn session_closed(&mut self, s: SessionId, own: Option<ConnId>, out: &mut Out) {
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
                self.close(conn, format!("session {s} expired"), out);
            }
        }
    }

    /// The connection waiting for this txn's reply: the session's
    /// connection here, when its oldest unanswered write is (session, cxid).
    /// A session has at most one open connection per server (reattaching
    /// closes the old one), so this is a lookup, not a scan: most txns of an
    /// ensemble come from clients of other servers.
    pub(super) fn writer_of(&self, txn: &TxnHeader) -> Option<ConnId> {
        let is_connect = txn.tag == TxnTag::CreateSession;
        let conn = *self.session_conn.get(&txn.session)?;
        let c = self.conns.get(&conn)?;
        matches!(
            c.queue.iter().find(|s| matches!(s, Slot::Write { .. })),
            Some(Slot::Write { cxid, connect, .. }) if *cxid == txn.cxid && *connect == is_connect
        )
        .then_some(conn)
    }

    // ----- the queue of pending replies -----------------------------------

    /// A write on its way to a commit; its reply waits in this slot.
    pub(super) fn push_write(&mut self, conn: ConnId, cxid: i32, arrived: Instant) {
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.queue.push_back(Slot::Write {
            cxid,
            connect: false,
            arrived,
        });
    }

    /// A learner's `sync`, waiting for the leader's SyncDone: returns the
    /// id to ask the leader with.
    pub(super) fn push_sync(&mut self, conn: ConnId, xid: i32, path: String) -> u64 {
        let id = self.next_sync_id;
        self.next_sync_id += 1;
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.queue.push_back(Slot::Sync { xid, path, id });
        id
    }

    /// A read, evaluated when it reaches the head of the queue.
    pub(super) fn push_read(
        &mut self,
        now: Instant,
        conn: ConnId,
        xid: i32,
        request: Request,
        rd: &Reader,
        out: &mut Out,
    ) {
        let c = self.conns.get_mut(&conn).expect("connection exists");
        c.queue.push_back(Slot::Read {
            xid,
            request,
            arrived: now,
        });
        self.drain(now, conn, rd, out);
    }

    /// A reply that is finished now, sent once earlier ones are; `close`
    /// closes the connection after it.
    pub(super) fn push_ready(
        &mut self,
        conn: ConnId,
        frame: Vec<u8>,
        close: Option<String>,
        rd: &Reader,
        out: &mut Out,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Slot::Ready { frame, close });
        }
        self.drain(Instant::default(), conn, rd, out);
    }

    /// The leader answered a learner's `sync`: its reply is ready.
    pub(super) fn sync_done(&mut self, now: Instant, id: u64, rd: &Reader, out: &mut Out) {
        let mut hit = None;
        for (cid, c) in self.conns.iter_mut() {
            for slot in c.queue.iter_mut() {
                if let Slot::Sync { xid, path, id: sid } = slot {
                    if *sid == id {
                        let frame = super::reply_frame(
                            *xid,
                            rd.zxid,
                            proto::ErrorCode::Ok,
                            &proto::Response::Path(path.clone()),
                        );
                        *slot = Slot::Ready { frame, close: None };
                        hit = Some(*cid);
                    }
                }
            }
        }
        if let Some(c) = hit {
            self.drain(now, c, rd, out);
        }
    }

    /// A write's txn was applied: its reply fills the oldest write slot.
    pub(super) fn finish_write(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: Vec<u8>,
        close: Option<String>,
        rd: &Reader,
        out: &mut Out,
    ) {
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
        self.drain(now, conn, rd, out);
    }

    /// Sends one frame now (not through the queue): handshakes, events.
    pub(super) fn send(&mut self, conn: ConnId, frame: Vec<u8>, zxid: Zxid, out: &mut Out) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.closed {
                return;
            }
            c.sent += 1;
            c.last_zxid = zxid;
        }
        self.figures.packets_sent += 1;
        out.push_back(Output::SendClient { conn, frame });
    }

    /// Releases every finished slot at the head of a connection's queue,
    /// evaluating reads as they reach the head.
    pub(super) fn drain(&mut self, now: Instant, conn: ConnId, rd: &Reader, out: &mut Out) {
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
                    self.send(conn, frame, rd.zxid, out);
                    if let Some(reason) = close {
                        self.close(conn, reason, out);
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
                    let mut events = Vec::new();
                    let c = &self.conns[&conn];
                    let frame = rd.read(
                        conn,
                        &c.auth,
                        c.session.unwrap_or_default(),
                        &mut self.watches,
                        xid,
                        &request,
                        &mut events,
                    );
                    for e in events {
                        self.send(conn, e, rd.zxid, out);
                    }
                    self.record_latency(now, arrived, false);
                    self.send(conn, frame, rd.zxid, out);
                }
            }
        }
    }

    fn record_latency(&mut self, now: Instant, arrived: Instant, write: bool) {
        if now == Instant::default() {
            return;
        }
        let ms = now.millis_since(arrived);
        let s = &mut self.figures;
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

    // ----- watches ------------------------------------------------------

    /// Sends the events an applied txn fires to every watcher allowed to
    /// see them.
    pub(super) fn fire(&mut self, zxid: Zxid, triggers: &[Trigger], skip_acl: bool, out: &mut Out) {
        for t in triggers {
            let conns = self.watches.trigger(&t.path, t.event);
            for conn in conns {
                // CVE-2024-23944: a watcher without READ on the node (the
                // parent, for NodeChildrenChanged) is not told; its one-shot
                // watch is spent all the same, as in ZooKeeper.
                let auth = self.conns.get(&conn).map(|c| c.auth.as_slice());
                if !skip_acl && !acl::check(&t.acl, perms::READ, auth.unwrap_or(&[])) {
                    continue;
                }
                let frame = proto::encode_event(
                    zxid.as_i64(),
                    t.event,
                    keeper_state::SYNC_CONNECTED,
                    &t.path,
                );
                self.send(conn, frame, zxid, out);
            }
        }
    }

    /// Closes each connection that asked for a watch past its limit (the
    /// watch was not set); its other watches go with it.
    pub(super) fn close_over_watch_limit(&mut self, out: &mut Out) {
        let over = self.watches.take_over_limit();
        for conn in over {
            let max = self.watches_per_conn;
            self.close(
                conn,
                format!("asked for a watch past the limit of {max} per connection"),
                out,
            );
        }
    }

    // ----- introspection ------------------------------------------------

    /// Fills the pipeline's figures into a node's.
    pub(super) fn fill_stats(&self, s: &mut NodeStats) {
        let f = &self.figures;
        s.connections = self.conns.len() as u64;
        s.watch_count = self.watches.count() as u64;
        s.watched_paths = self.watches.path_count() as u64;
        s.outstanding_requests = self.conns.values().map(|c| c.queue.len() as u64).sum();
        s.packets_received = f.packets_received;
        s.packets_sent = f.packets_sent;
        s.latency_min_ms = if f.latency_count == 0 {
            0
        } else {
            f.latency_min_ms
        };
        s.latency_max_ms = f.latency_max_ms;
        s.latency_total_ms = f.latency_total_ms;
        s.latency_count = f.latency_count;
        s.read_latency = f.read_latency.clone();
        s.update_latency = f.update_latency.clone();
    }

    pub(super) fn reset_figures(&mut self) {
        let f = &mut self.figures;
        f.packets_received = 0;
        f.packets_sent = 0;
        f.latency_min_ms = u64::MAX;
        f.latency_max_ms = 0;
        f.latency_total_ms = 0;
        f.latency_count = 0;
        for c in self.conns.values_mut() {
            c.received = 0;
            c.sent = 0;
        }
    }

    pub(super) fn connections(&self) -> Vec<ConnInfo> {
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

    fn session_of_conn(&self, conn: ConnId) -> SessionId {
        self.conns
            .get(&conn)
            .and_then(|c| c.session)
            .unwrap_or_default()
    }

    pub(super) fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.watches
            .by_conn()
            .map(|(c, paths)| (self.session_of_conn(c), paths))
            .collect()
    }

    pub(super) fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
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
}

#[cfg(test)]
mod tests;
