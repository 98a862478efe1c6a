//! What clients saw, recorded for the checkers: every request with its
//! outcome, and per connection every frame received in order.

use paddock_core::proto::{Request, Response};
use std::collections::BTreeMap;

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting (the run ended first).
    Pending,
    /// The connection dropped first: it may or may not have taken effect.
    Lost,
    Reply {
        zxid: i64,
        err: i32,
        /// Decoded only when `err == 0`.
        body: Option<Response>,
        at_ns: u64,
    },
}

#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: usize,
    pub session: i64,
    pub conn: u64,
    pub xid: i32,
    pub opcode: i32,
    pub request: Request,
    pub sent_ns: u64,
    pub outcome: Outcome,
}

/// One frame as a connection received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Connected { session: i64 },
    Reply { xid: i32, zxid: i64, err: i32 },
    Event { zxid: i64, event: i32, path: String },
}

#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub client: usize,
    /// The client closed it and got the reply.
    pub closed: bool,
    /// A reconnect was refused as expired.
    pub expired_seen: bool,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<OpRecord>,
    /// conn -> (session, frames in arrival order).
    pub conns: BTreeMap<u64, (i64, Vec<(u64, Received)>)>,
    pub sessions: BTreeMap<i64, SessionRecord>,
    /// The highest zxid of any acknowledged write (kept as replies
    /// arrive: rescanning `ops` per frame made runs quadratic).
    pub acked_max: i64,
    /// Connections a read-only server admitted (readOnly in its answer).
    pub read_only_conns: std::collections::BTreeSet<u64>,
}

impl History {
    pub fn record(&mut self, op: OpRecord) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    pub fn received(&mut self, conn: u64, session: i64, at_ns: u64, r: Received) {
        let e = self.conns.entry(conn).or_insert((session, Vec::new()));
        e.0 = session;
        e.1.push((at_ns, r));
    }

    /// Acknowledged writes: (zxid, session, xid) of every OK write reply.
    pub fn acked_writes(&self) -> Vec<(i64, i64, i32)> {
        self.ops
            .iter()
            .filter(|o| o.request.is_write())
            .filter_map(|o| match &o.outcome {
                Outcome::Reply { zxid, err: 0, .. } => Some((*zxid, o.session, o.xid)),
                _ => None,
            })
            .collect()
    }
}
