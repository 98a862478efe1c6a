//! The client pipeline: connections, sessions' connections, requests in
//! order, pending replies and what each connection waits for.

use super::*;
use crate::ids::*;
use crate::peer::PeerMsg;
use crate::proto::{
    self, ConnectRequest, ConnectResponse, DecodeError, ErrorCode, Reader, Request, Response,
};
use crate::session;
use crate::tree::acl;
use crate::txn::{TxnHeader, TxnKind, TxnTag};
use crate::zab::learner::Reconnect;
use crate::zab::Role;
use tracing::info;

impl Node {
    // ----- client frames ------------------------------------------------

    pub(super) fn close(&mut self, conn: ConnId, reason: String) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closed {
                c.closed = true;
                info!("closing connection {} ({}): {reason}", conn.0, c.addr);
                self.outputs.push_back(Output::CloseClient { conn, reason });
            }
        }
    }

    pub(super) fn on_frame(&mut self, now: Now, conn: ConnId, frame: Vec<u8>) {
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
        if c.queue.len() + c.held.len()
            >= self
                .config
                .outstanding_per_conn_max
                .min(QUEUED_PER_CONN_MAX)
        {
            let n = c.queue.len() + c.held.len();
            self.close(
                conn,
                format!("{n} requests outstanding: over the per-connection limit"),
            );
            return;
        }
        if c.revalidating {
            // The session is being revalidated: ZooKeeper reads nothing
            // more from the socket until then; hold the frames.
            c.held.push(frame);
            return;
        }
        self.dispatch_frame(now, conn, frame);
    }

    /// A counted and bounded frame: a ConnectRequest or a request.
    fn dispatch_frame(&mut self, now: Now, conn: ConnId, frame: Vec<u8>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.closed {
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

    pub(super) fn on_connect(&mut self, now: Now, conn: ConnId, frame: &[u8]) {
        let req = match ConnectRequest::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                self.close(conn, format!("malformed ConnectRequest: {e}"));
                return;
            }
        };
        let read_only = !self.serving();
        if read_only {
            if let Some(why) = self.ro_refusal(&req) {
                self.close(conn, why);
                return;
            }
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
        if read_only {
            self.ro_connect(now, conn, req, timeout);
            return;
        }
        if req.session_id == 0 {
            let sessions = self.log.state().sessions.len();
            if sessions >= self.config.limits.sessions {
                // Refused before anything is proposed: the client may
                // retry later or elsewhere; existing sessions are served.
                self.close(
                    conn,
                    format!("new session refused: {sessions} sessions live (the limit)"),
                );
                return;
            }
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
        let password_ok = session::password_valid(id, &req.passwd);
        let reconnect = Reconnect {
            conn,
            session: id,
            timeout_ms: timeout,
            passwd: req.passwd,
            read_only: req.read_only,
        };
        let valid = match &self.role {
            // Only the leader knows whether a session is live: this
            // server's records may lag behind an expiry it decided.
            Role::Learning(_) if password_ok && !self.canary(Canary::ConfirmSessionLocally) => {
                self.conns
                    .get_mut(&conn)
                    .expect("connection exists")
                    .revalidating = true;
                self.with_learner(now, |l, _| l.revalidate(reconnect));
                return;
            }
            Role::Leading(l) => {
                password_ok && self.log.state().sessions.contains_key(&id) && !l.is_closing(id)
            }
            _ => password_ok && self.log.state().sessions.contains_key(&id),
        };
        self.finish_reconnect(now, reconnect, valid);
    }

    /// Answers a client that reconnected with an existing session, once
    /// the leader (or this server, leading) has judged it; frames the
    /// client sent meanwhile are taken in order after the answer.
    pub(super) fn finish_reconnect(&mut self, now: Now, r: Reconnect, valid: bool) {
        let Some(c) = self.conns.get_mut(&r.conn) else {
            return;
        };
        c.revalidating = false;
        let held = std::mem::take(&mut c.held);
        if c.closed {
            return;
        }
        let (conn, id) = (r.conn, r.session);
        if !valid {
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                passwd: vec![0; session::PASSWORD_LEN],
                read_only: r.read_only.map(|_| false),
            };
            info!("connection {}: session {id} invalid or expired", conn.0);
            self.send(conn, resp.encode());
            self.close(conn, format!("session {id} expired or password invalid"));
            return;
        }
        self.attach(now, conn, id, r.timeout_ms);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: r.timeout_ms as i32,
            session_id: id.0,
            // The password the client holds (Paddock's or ZooKeeper's).
            passwd: r.passwd,
            read_only: r.read_only.map(|_| false),
        };
        self.send(conn, resp.encode());
        for frame in held {
            self.dispatch_frame(now, conn, frame);
        }
    }

    /// Binds a session to a connection, closing any older connection of it.
    pub(super) fn attach(&mut self, now: Now, conn: ConnId, id: SessionId, timeout: u32) {
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

    /// Records client activity: the leader refreshes the deadline, a
    /// learner reports the session at the next ping.
    pub(super) fn touch_session(&mut self, now: Now, id: SessionId, timeout: Option<u32>) {
        let timeout = timeout.or_else(|| self.log.state().sessions.get(&id).map(|m| m.timeout_ms));
        match &mut self.role {
            Role::Leading(l) => l.touch(now.mono, id, timeout),
            Role::Learning(l) => {
                if let Some(t) = timeout {
                    l.touched.insert(id, t);
                }
            }
            Role::Looking(_) => {}
        }
    }

    pub(super) fn new_session_id(&mut self) -> SessionId {
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
    pub(super) fn submit(&mut self, now: Now, session: SessionId, cxid: i32, kind: TxnKind) {
        match &mut self.role {
            Role::Leading(_) => self.leader_submit(now, session, cxid, kind),
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

    pub(super) fn on_request(
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
        if opcode != proto::op::AUTH
            && opcode != proto::op::SASL
            && !self.auth_enforced(conn, xid_v)
        {
            return Ok(());
        }
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
            Request::Sasl { token } => self.on_sasl(conn, xid_v, &token),
            req if (req.is_write() || matches!(req, Request::Sync { .. }))
                && self.ro_session(session) =>
            {
                self.ro_write(conn, session, xid_v, &req)
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

    pub(super) fn push_ready(&mut self, conn: ConnId, frame: Vec<u8>, close: Option<String>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Slot::Ready { frame, close });
        }
        self.drain(Now::default(), conn);
    }

    pub(super) fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
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
    pub(super) fn drain(&mut self, now: Now, conn: ConnId) {
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

    pub(super) fn record_latency(&mut self, now: Now, arrived: Instant, write: bool) {
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

    /// Closes each connection that asked for a watch past its limit (the
    /// watch was not set); its other watches go with it.
    pub(super) fn close_over_watch_limit(&mut self) {
        let over = self.watches.take_over_limit();
        for conn in over {
            let max = self.config.limits.watches_per_conn;
            self.close(
                conn,
                format!("asked for a watch past the limit of {max} per connection"),
            );
        }
    }

    pub(super) fn on_closed(&mut self, conn: ConnId) {
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
                    self.ro_on_closed(s);
                }
            }
            self.watches.remove_conn(conn);
        }
        self.stats.connections = self.conns.len() as u64;
    }
}
