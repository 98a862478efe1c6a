//! A simulated ZooKeeper client speaking real jute bytes through core's
//! codec: ConnectRequest with session id, password and lastZxidSeen on
//! every reconnect; setWatches to replay its watches; pings when idle;
//! replies matched to requests strictly in order.
//!
//! What it sees goes into the `History`; what to send next comes from its
//! recipe (`workload`).

use crate::history::{History, OpRecord, Outcome, Received, SessionRecord};
use crate::rng::SimRng;
use crate::scenario::Recipe;
use crate::workload::RecipeState;
use paddock_core::proto::{
    self, op, xid as special, ConnectRequest, ConnectResponse, ErrorCode, OpResult, Reader,
    ReplyHeader, Request, Response, SetWatches, Stat,
};
use std::collections::{BTreeSet, VecDeque};

/// Requests one client keeps in flight (it pipelines a little).
pub const INFLIGHT_MAX: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Disconnected,
    /// ConnectRequest sent, waiting for the ConnectResponse.
    Handshake,
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

pub struct Client {
    pub id: usize,
    pub recipe: Recipe,
    pub rng: SimRng,
    pub session: Option<(i64, Vec<u8>)>,
    pub timeout_ms: u32,
    pub conn: Option<u64>,
    pub phase: Phase,
    next_xid: i32,
    /// (xid, history index) in send order.
    inflight: VecDeque<(i32, usize)>,
    pub last_zxid: i64,
    pub watches: BTreeSet<(WatchKind, String)>,
    pub ops_done: u64,
    pub ops_max: u64,
    pub state: RecipeState,
    /// Servers in the run (the reconfiguring recipe names their ids).
    pub servers: u64,
    /// Writes acknowledged since the last `take_progress`.
    pub acked_writes: u64,
    pub last_sent_ns: u64,
    /// When the server last sent anything on this connection.
    pub last_heard_ns: u64,
    /// Asks for read-only service (`canBeReadOnly`).
    pub read_only: bool,
    /// Connects only to this server.
    pub pinned: Option<u64>,
}

fn decode_stat(r: &mut Reader) -> Result<Stat, String> {
    Stat::read(r).map_err(|e| e.to_string())
}

pub fn error_code(code: i32) -> ErrorCode {
    use ErrorCode::*;
    [
        Ok,
        SystemError,
        RuntimeInconsistency,
        DataInconsistency,
        ConnectionLoss,
        MarshallingError,
        Unimplemented,
        OperationTimeout,
        BadArguments,
        UnknownSession,
        NewConfigNoQuorum,
        ReconfigInProgress,
        ApiError,
        NoNode,
        NoAuth,
        BadVersion,
        NoChildrenForEphemerals,
        NodeExists,
        NotEmpty,
        SessionExpired,
        InvalidCallback,
        InvalidAcl,
        AuthFailed,
        SessionMoved,
        NotReadOnly,
        EphemeralOnLocalSession,
        NoWatcher,
        RequestTimeout,
        ReconfigDisabled,
        SessionClosedRequireSaslAuth,
        QuotaExceeded,
        ThrottledOp,
    ]
    .into_iter()
    .find(|c| c.code() == code)
    .unwrap_or(SystemError)
}

/// Decodes a reply body for `opcode` (only called when err == 0). Refuses
/// short or trailing bytes.
pub fn decode_body(opcode: i32, r: &mut Reader) -> Result<Response, String> {
    let e = |x: proto::DecodeError| x.to_string();
    let body = match opcode {
        op::CREATE => Response::Path(r.ustring().map_err(e)?),
        op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
            let p = r.ustring().map_err(e)?;
            Response::PathStat(p, decode_stat(r)?)
        }
        op::EXISTS | op::SET_DATA | op::SET_ACL => Response::Stat(decode_stat(r)?),
        op::GET_DATA | op::RECONFIG => match r.buffer_opt().map_err(e)? {
            Some(d) => {
                let d = d.to_vec();
                Response::Data(d, decode_stat(r)?)
            }
            None => Response::DataNull(decode_stat(r)?),
        },
        op::GET_CHILDREN => Response::Children(r.vec_names().map_err(e)?),
        op::GET_CHILDREN2 => {
            let c = r.vec_names().map_err(e)?;
            Response::Children2(c, decode_stat(r)?)
        }
        op::SYNC => Response::Path(r.ustring().map_err(e)?),
        // ZooKeeper answers addWatch with an ErrorResponse(0) body.
        op::ADD_WATCH => {
            r.i32().map_err(e)?;
            Response::Empty
        }
        op::MULTI => {
            let mut out = Vec::new();
            loop {
                let t = r.i32().map_err(e)?;
                let done = r.bool().map_err(e)?;
                let err = r.i32().map_err(e)?;
                if done {
                    break;
                }
                out.push(match t {
                    op::CREATE => OpResult::Create(r.ustring().map_err(e)?),
                    op::CREATE2 => {
                        let p = r.ustring().map_err(e)?;
                        OpResult::Create2(p, decode_stat(r)?)
                    }
                    op::DELETE => OpResult::Delete,
                    op::SET_DATA => OpResult::SetData(decode_stat(r)?),
                    op::CHECK => OpResult::Check,
                    op::ERROR => {
                        let code = r.i32().map_err(e)?;
                        if code != err {
                            return Err(format!("multi error result {code} != header {err}"));
                        }
                        OpResult::Error(error_code(code))
                    }
                    other => return Err(format!("multi result of type {other}")),
                });
            }
            Response::Multi(out)
        }
        _ => Response::Empty,
    };
    Ok(body)
}

fn opcode_of(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
}

impl Client {
    pub fn new(id: usize, recipe: Recipe, rng: SimRng, timeout_ms: u32, ops_max: u64) -> Client {
        Client {
            id,
            recipe,
            rng,
            session: None,
            timeout_ms,
            conn: None,
            phase: Phase::Disconnected,
            next_xid: 1,
            inflight: VecDeque::new(),
            last_zxid: 0,
            watches: BTreeSet::new(),
            ops_done: 0,
            ops_max,
            state: RecipeState::default(),
            servers: 0,
            acked_writes: 0,
            last_sent_ns: 0,
            last_heard_ns: 0,
            read_only: false,
            pinned: None,
        }
    }

    pub fn session_id(&self) -> i64 {
        self.session.as_ref().map_or(0, |s| s.0)
    }

    /// A TCP connection is up: say hello.
    pub fn on_connected(&mut self, conn: u64, now: u64) -> Vec<u8> {
        self.conn = Some(conn);
        self.phase = Phase::Handshake;
        self.last_sent_ns = now;
        self.last_heard_ns = now;
        let (sid, pw) = self
            .session
            .clone()
            .unwrap_or((0, vec![0; paddock_core::session::PASSWORD_LEN]));
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.timeout_ms as i32,
            session_id: sid,
            passwd: pw,
            read_only: Some(self.read_only),
        }
        .encode()
    }

    /// The connection is gone: what was in flight is of unknown outcome.
    pub fn on_closed(&mut self, hist: &mut History) {
        for (_, idx) in self.inflight.drain(..) {
            hist.ops[idx].outcome = Outcome::Lost;
        }
        self.conn = None;
        self.phase = Phase::Disconnected;
    }

    /// One frame from the server. Returns frames to send back; an error is
    /// a protocol violation seen by the client.
    pub fn on_frame(
        &mut self,
        now: u64,
        frame: &[u8],
        hist: &mut History,
    ) -> Result<Vec<Vec<u8>>, String> {
        let conn = self.conn.expect("frames arrive on a connection");
        self.last_heard_ns = now;
        if self.phase == Phase::Handshake {
            let resp =
                ConnectResponse::decode(frame).map_err(|e| format!("ConnectResponse: {e}"))?;
            if resp.session_id == 0 || resp.timeout_ms == 0 {
                // Expired: start over with a new session.
                if let Some((sid, _)) = self.session.take() {
                    hist.sessions.entry(sid).or_default().expired_seen = true;
                }
                self.watches.clear();
                self.state = RecipeState::default();
                self.last_zxid = self.last_zxid.max(0);
                return Ok(Vec::new());
            }
            if let Some((sid, _)) = &self.session {
                if *sid != resp.session_id {
                    return Err(format!(
                        "reconnected with session 0x{:x}, got 0x{:x}",
                        sid, resp.session_id
                    ));
                }
            }
            self.session = Some((resp.session_id, resp.passwd.clone()));
            hist.sessions
                .entry(resp.session_id)
                .or_insert_with(|| SessionRecord {
                    client: self.id,
                    ..SessionRecord::default()
                });
            hist.received(
                conn,
                resp.session_id,
                now,
                Received::Connected {
                    session: resp.session_id,
                },
            );
            self.phase = Phase::Connected;
            let mut out = Vec::new();
            if !self.watches.is_empty() {
                out.push(self.set_watches_frame());
            }
            return Ok(out);
        }
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r).map_err(|e| format!("reply header: {e}"))?;
        let sid = self.session_id();
        if h.xid == special::NOTIFICATION {
            let event = r.i32().map_err(|e| e.to_string())?;
            let _state = r.i32().map_err(|e| e.to_string())?;
            let path = r.ustring().map_err(|e| e.to_string())?;
            r.finish().map_err(|e| format!("event: {e}"))?;
            hist.received(
                conn,
                sid,
                now,
                Received::Event {
                    zxid: h.zxid,
                    event,
                    path: path.clone(),
                },
            );
            self.on_event(event, &path);
            return Ok(Vec::new());
        }
        hist.received(
            conn,
            sid,
            now,
            Received::Reply {
                xid: h.xid,
                zxid: h.zxid,
                err: h.err,
            },
        );
        if h.zxid > 0 {
            self.last_zxid = self.last_zxid.max(h.zxid);
        }
        if h.xid == special::PING || h.xid == special::SET_WATCHES {
            return Ok(Vec::new());
        }
        let Some((xid, idx)) = self.inflight.pop_front() else {
            return Err(format!("reply xid {} with nothing in flight", h.xid));
        };
        if xid != h.xid {
            return Err(format!("reply xid {} out of order: expected {xid}", h.xid));
        }
        let opcode = hist.ops[idx].opcode;
        let body = if h.err == 0 {
            let b =
                decode_body(opcode, &mut r).map_err(|e| format!("reply to op {opcode}: {e}"))?;
            r.finish()
                .map_err(|e| format!("reply to op {opcode}: {e}"))?;
            Some(b)
        } else {
            None
        };
        let rec = &mut hist.ops[idx];
        if rec.request.is_write() && h.err == 0 {
            self.acked_writes += 1;
            hist.acked_max = hist.acked_max.max(h.zxid);
        }
        if matches!(rec.request, Request::CloseSession) && h.err == 0 {
            hist.sessions.entry(sid).or_default().closed = true;
        }
        self.note_watch(&rec.request, h.err);
        self.state.on_reply(idx, &rec.request, h.err, body.as_ref());
        rec.outcome = Outcome::Reply {
            zxid: h.zxid,
            err: h.err,
            body,
            at_ns: now,
        };
        Ok(Vec::new())
    }

    fn on_event(&mut self, event: i32, path: &str) {
        use proto::event_type::*;
        let fired: &[WatchKind] = match event {
            NODE_CREATED | NODE_DATA_CHANGED => &[WatchKind::Data, WatchKind::Exist],
            NODE_DELETED => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            NODE_CHILDREN_CHANGED => &[WatchKind::Child],
            _ => &[],
        };
        for k in fired {
            self.watches.remove(&(*k, path.to_owned()));
        }
    }

    fn note_watch(&mut self, req: &Request, err: i32) {
        let ok_or_nonode = err == 0 || err == ErrorCode::NoNode.code();
        match req {
            Request::GetData { path, watch: true } if err == 0 => {
                self.watches.insert((WatchKind::Data, path.clone()));
            }
            Request::Exists { path, watch: true } if ok_or_nonode => {
                let k = if err == 0 {
                    WatchKind::Data
                } else {
                    WatchKind::Exist
                };
                self.watches.insert((k, path.clone()));
            }
            Request::GetChildren { path, watch: true }
            | Request::GetChildren2 { path, watch: true }
                if err == 0 =>
            {
                self.watches.insert((WatchKind::Child, path.clone()));
            }
            Request::AddWatch { path, mode } if err == 0 => {
                let k = if *mode == 0 {
                    WatchKind::Persistent
                } else {
                    WatchKind::PersistentRecursive
                };
                self.watches.insert((k, path.clone()));
            }
            _ => {}
        }
    }

    fn set_watches_frame(&self) -> Vec<u8> {
        let of = |k: WatchKind| -> Vec<String> {
            self.watches
                .iter()
                .filter(|(w, _)| *w == k)
                .map(|(_, p)| p.clone())
                .collect()
        };
        let sw = SetWatches {
            relative_zxid: self.last_zxid,
            data: of(WatchKind::Data),
            exist: of(WatchKind::Exist),
            child: of(WatchKind::Child),
            persistent: of(WatchKind::Persistent),
            persistent_recursive: of(WatchKind::PersistentRecursive),
        };
        proto::encode_request(special::SET_WATCHES, &Request::SetWatches(sw))
    }

    pub fn can_send(&self) -> bool {
        self.phase == Phase::Connected && self.inflight.len() < INFLIGHT_MAX
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// The next request of the recipe, recorded in the history.
    pub fn next_request(&mut self, now: u64, hist: &mut History) -> Option<Vec<u8>> {
        if !self.can_send() || self.ops_done >= self.ops_max {
            return None;
        }
        let req = self
            .state
            .next(self.recipe, self.id, self.servers, &mut self.rng, hist);
        Some(self.send_request(now, req, hist))
    }

    /// Sends `req` (workload or a scripted test step).
    pub fn send_request(&mut self, now: u64, req: Request, hist: &mut History) -> Vec<u8> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let frame = proto::encode_request(xid, &req);
        let idx = hist.record(OpRecord {
            client: self.id,
            session: self.session_id(),
            conn: self.conn.expect("sending needs a connection"),
            xid,
            opcode: opcode_of(&frame),
            request: req,
            sent_ns: now,
            outcome: Outcome::Pending,
        });
        self.inflight.push_back((xid, idx));
        self.ops_done += 1;
        self.last_sent_ns = now;
        frame
    }

    /// ZooKeeper's client read timeout: a connected client that has heard
    /// nothing from its server for 2/3 of the session timeout (its pings
    /// unanswered) drops the connection and tries another server.
    pub fn read_timed_out(&self, now: u64) -> bool {
        self.phase == Phase::Connected
            && now.saturating_sub(self.last_heard_ns) >= self.timeout_ms as u64 * 1_000_000 * 2 / 3
    }

    /// A ping, when the session would otherwise look idle.
    pub fn ping(&mut self, now: u64) -> Option<Vec<u8>> {
        let idle_ns = now.saturating_sub(self.last_sent_ns);
        if self.phase == Phase::Connected && idle_ns >= self.timeout_ms as u64 * 1_000_000 / 3 {
            self.last_sent_ns = now;
            Some(proto::encode_request(special::PING, &Request::Ping))
        } else {
            None
        }
    }
}
