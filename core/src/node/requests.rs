//! The server's side of the client pipeline: what a ConnectRequest or a
//! request means for this server in its role (new sessions, reconnects
//! judged by the leader, writes submitted or forwarded, learners' syncs).
//! The connections, their queues and watches are `Clients`'.

use super::clients::Admitted;
use super::reads::Reader as TreeReader;
use super::*;
use crate::ids::*;
use crate::peer::PeerMsg;
use crate::proto::{
    self, ConnectRequest, ConnectResponse, DecodeError, ErrorCode, Reader, Request, Response,
};
use crate::session;
use crate::tree::acl;
use crate::txn::TxnKind;
use crate::zab::learner::Reconnect;
use crate::zab::Role;
use tracing::info;

impl Node {
    // ----- client frames ------------------------------------------------

    pub(super) fn close(&mut self, conn: ConnId, reason: String) {
        self.clients.close(conn, reason, &mut self.outputs);
    }

    /// Sends one frame to a client now (not through its queue).
    pub(super) fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        let zxid = self.log.last_applied();
        self.clients.send(conn, frame, zxid, &mut self.outputs);
    }

    /// Queues a finished reply behind the connection's earlier ones.
    pub(super) fn push_ready(&mut self, conn: ConnId, frame: Vec<u8>, close: Option<String>) {
        let rd = TreeReader::of(&self.log, &self.config);
        self.clients
            .push_ready(conn, frame, close, &rd, &mut self.outputs);
    }

    pub(super) fn on_frame(&mut self, now: Now, conn: ConnId, frame: Vec<u8>) {
        let queue_max = self
            .config
            .outstanding_per_conn_max
            .min(QUEUED_PER_CONN_MAX);
        let admitted = self.clients.admit(
            conn,
            frame,
            self.config.max_buffer as usize,
            queue_max,
            &mut self.outputs,
        );
        if let Some(a) = admitted {
            self.dispatch_frame(now, conn, a);
        }
    }

    /// A counted and bounded frame: a ConnectRequest or a request.
    fn dispatch_frame(&mut self, now: Now, conn: ConnId, frame: Admitted) {
        match frame {
            Admitted::Connect(frame) => self.on_connect(now, conn, &frame),
            Admitted::Request(s, frame) => {
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
        self.clients.handshake(conn, req.read_only, timeout);
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
            self.clients.bind_new_session(conn, id, now.mono);
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
                self.clients.start_revalidating(conn);
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
        let Some(held) = self.clients.end_revalidating(r.conn) else {
            return;
        };
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
            if let Some(a) = self.clients.classify(conn, frame) {
                self.dispatch_frame(now, conn, a);
            }
        }
    }

    /// Binds a session to a connection, closing any older connection of it.
    pub(super) fn attach(&mut self, now: Now, conn: ConnId, id: SessionId, timeout: u32) {
        self.clients.attach(conn, id, &mut self.outputs);
        self.touch_session(now, id, Some(timeout));
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
                && !self.clients.has_session(id)
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
                let c = self.clients.get(conn).expect("connection exists");
                match acl::authenticate(
                    &scheme,
                    &auth,
                    &c.addr,
                    self.config.super_digest.as_deref(),
                ) {
                    Ok(ids) => {
                        let held = self.clients.ids_mut(conn).expect("connection exists");
                        for id in ids {
                            if !held.contains(&id) {
                                held.push(id);
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
                let id = self.clients.push_sync(conn, xid_v, path);
                if let Role::Learning(l) = &self.role {
                    let leader = l.leader;
                    self.send_peer(leader, &PeerMsg::SyncRequest { id });
                }
            }
            req if req.is_write() => {
                let auth = self
                    .clients
                    .get(conn)
                    .expect("connection exists")
                    .auth
                    .clone();
                self.clients.push_write(conn, xid_v, now.mono);
                let kind = if matches!(req, Request::CloseSession) {
                    TxnKind::CloseSession
                } else {
                    TxnKind::Write { request: req, auth }
                };
                self.submit(now, session, xid_v, kind);
            }
            req => {
                let rd = TreeReader::of(&self.log, &self.config);
                self.clients
                    .push_read(now.mono, conn, xid_v, req, &rd, &mut self.outputs);
            }
        }
        Ok(())
    }

    pub(crate) fn on_sync_done(&mut self, now: Now, id: u64) {
        let rd = TreeReader::of(&self.log, &self.config);
        self.clients.sync_done(now.mono, id, &rd, &mut self.outputs);
    }

    /// Closes each connection that asked for a watch past its limit.
    pub(super) fn close_over_watch_limit(&mut self) {
        self.clients.close_over_watch_limit(&mut self.outputs);
    }

    pub(super) fn on_closed(&mut self, conn: ConnId) {
        #[cfg(feature = "canary")]
        if self.canary(Canary::ExpireOnFollower) && matches!(self.role, Role::Learning(_)) {
            if let Some(s) = self.clients.get(conn).and_then(|c| c.session) {
                self.log.canary_drop_session(s);
            }
        }
        if let Some(s) = self.clients.remove(conn) {
            self.ro_on_closed(s);
        }
    }
}
