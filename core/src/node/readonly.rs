//! Read-only mode (`readonlymode.enabled`): a member cut off from its
//! quorum keeps answering reads to clients that said they can live with a
//! read-only server (`canBeReadOnly` in their ConnectRequest).
//!
//! It is a state of the Looking role, as in ZooKeeper: after looking for
//! `max(2000 ms, tickTime)` (ZooKeeper's grace period, so that an ordinary
//! election does not flip servers to read-only), the node admits read-only
//! clients with local sessions (ids of its own, never proposed, so no other
//! server knows them), answers their ConnectResponse with readOnly=true,
//! serves reads from the tree it has applied (only committed txns are
//! applied, so nothing newer than its last commit is ever shown), and
//! answers every write and `sync` with NOTREADONLY (-119), as ZooKeeper's
//! ReadOnlyRequestProcessor does. A client that is not read-only, or that
//! brings a global session, is refused. When an election ends, every
//! read-only connection is closed: the clients look for a read-write
//! server (kazoo's `read_only=True` client does so by itself while
//! connected read-only).
//!
//! Unlike ZooKeeper, where a local session lives until its timeout, a
//! read-only session here lives as long as its connection: it holds no
//! ephemerals, so nothing but the id is lost, and a client that reconnects
//! gets a new session (ZooKeeper requires `localSessionsEnabled=true` to
//! create sessions in read-only mode at all; Paddock always makes them
//! local).

use super::*;
use crate::proto::{ConnectRequest, ConnectResponse};
use std::collections::BTreeSet;

/// The read-only state of a node (meaningful while looking).
#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// When the current election began, if looking and the mode is on.
    looking_since: Option<Instant>,
    /// Read-only clients are being served.
    pub(crate) active: bool,
    /// Local sessions of read-only clients, each bound to its connection.
    sessions: BTreeSet<SessionId>,
}

impl Node {
    fn ro_grace_ms(&self) -> u64 {
        u64::from(self.config.tick_time_ms).max(2000)
    }

    /// Called whenever the node starts looking.
    pub(super) fn ro_on_looking(&mut self, now: Now) {
        if self.config.read_only_mode && !self.config.is_standalone() {
            self.ro.looking_since = Some(now.mono);
        }
    }

    /// When the grace period ends, if read-only mode is waiting to start.
    pub(super) fn ro_deadline(&self) -> Option<Instant> {
        match (self.ro.active, self.ro.looking_since) {
            (false, Some(t)) => Some(t.add_millis(self.ro_grace_ms())),
            _ => None,
        }
    }

    /// Starts serving read-only clients once the grace period is over.
    pub(super) fn ro_on_timeout(&mut self, now: Now) {
        if let Some(due) = self.ro_deadline() {
            if now.mono >= due && matches!(self.role, Role::Looking(_)) {
                info!(
                    "server {}: no quorum for {} ms; serving read-only clients at {}",
                    self.config.server_id.0,
                    self.ro_grace_ms(),
                    self.log.last_applied()
                );
                self.ro.active = true;
            }
        }
    }

    /// The election is over: read-only clients are sent away.
    pub(super) fn ro_on_decided(&mut self) {
        self.ro.looking_since = None;
        if !self.ro.active && self.ro.sessions.is_empty() {
            return;
        }
        self.ro.active = false;
        let ro = &self.ro.sessions;
        self.clients.close_sessions(
            |s| ro.contains(&s),
            "the quorum is back; read-only session ends, reconnect to a read-write server",
            &mut self.outputs,
        );
        for s in std::mem::take(&mut self.ro.sessions) {
            self.clients.forget_session(s);
        }
    }

    /// Whether this node serves read-only clients now.
    pub fn read_only(&self) -> bool {
        self.ro.active && matches!(self.role, Role::Looking(_))
    }

    /// Whether a session is one of this node's read-only sessions.
    pub(super) fn ro_session(&self, s: SessionId) -> bool {
        self.ro.sessions.contains(&s)
    }

    /// Why a ConnectRequest cannot be served while not serving, or `None`
    /// when it is admitted read-only.
    pub(super) fn ro_refusal(&self, req: &ConnectRequest) -> Option<String> {
        if !self.read_only() {
            return Some("this server is not serving (no quorum or still syncing)".into());
        }
        if req.read_only != Some(true) {
            return Some("this server is read-only; refusing a client that is not".into());
        }
        if req.session_id != 0 && !self.ro.sessions.contains(&SessionId(req.session_id)) {
            return Some(format!(
                "read-only server refuses to renew session 0x{:x} (not one of its read-only sessions)",
                req.session_id
            ));
        }
        None
    }

    /// Admits a read-only client (after `ro_refusal` said yes).
    pub(super) fn ro_connect(&mut self, now: Now, conn: ConnId, req: ConnectRequest, timeout: u32) {
        let (id, passwd) = if req.session_id == 0 {
            let id = self.new_session_id();
            (id, session::password(id).to_vec())
        } else {
            let id = SessionId(req.session_id);
            if !session::password_valid(id, &req.passwd) {
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 0,
                    session_id: 0,
                    passwd: vec![0; session::PASSWORD_LEN],
                    read_only: Some(true),
                };
                self.send(conn, resp.encode());
                self.close(conn, format!("session {id}: password invalid"));
                return;
            }
            (id, req.passwd)
        };
        self.ro.sessions.insert(id);
        self.attach(now, conn, id, timeout);
        info!("connection {}: read-only session {id}", conn.0);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id: id.0,
            passwd,
            read_only: Some(true),
        };
        self.send(conn, resp.encode());
    }

    /// A write (or `sync`) from a read-only session: NOTREADONLY, or for
    /// closeSession the end of the local session.
    pub(super) fn ro_write(&mut self, conn: ConnId, session: SessionId, xid: i32, req: &Request) {
        let zxid = self.log.last_applied();
        if matches!(req, Request::CloseSession) {
            let f = reply_frame(xid, zxid, ErrorCode::Ok, &Response::Empty);
            self.ro.sessions.remove(&session);
            self.push_ready(conn, f, Some(format!("read-only session {session} closed")));
            return;
        }
        let f = reply_frame(xid, zxid, ErrorCode::NotReadOnly, &Response::Empty);
        self.push_ready(conn, f, None);
    }

    /// A connection closed: its read-only session ends with it.
    pub(super) fn ro_on_closed(&mut self, session: SessionId) {
        self.ro.sessions.remove(&session);
    }
}

impl Node {
    /// The server state as ZooKeeper names it (`srvr`'s Mode,
    /// `zk_server_state`): the role's name, or `read-only`.
    pub fn state_name(&self) -> &'static str {
        if self.read_only() {
            "read-only"
        } else {
            self.role.server_role().zk_name()
        }
    }
}
