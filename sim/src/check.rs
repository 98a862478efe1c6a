//! The checkers, run over what a run recorded: the committed history (the
//! servers' durable logs, which must agree), the clients' history, and the
//! servers' final state. Each returns the violations it found (empty: ok);
//! `selftest` in the tests feeds each a doctored history to show it fails.

use crate::history::{History, Outcome, Received};
use crate::model::Model;
use paddock_core::proto::{ErrorCode, Request};
use paddock_core::txn::{Txn, TxnKind};
use std::collections::BTreeMap;

/// At most one established leader per epoch, ever: `leaders` remembers the
/// first seen for each epoch; returns the violation if `server` is another.
pub fn one_leader_per_epoch(
    leaders: &mut BTreeMap<u32, u64>,
    epoch: u32,
    server: u64,
) -> Option<String> {
    let first = *leaders.entry(epoch).or_insert(server);
    (first != server)
        .then(|| format!("two leaders established in epoch {epoch}: servers {first} and {server}"))
}

/// The committed history: every server's log must agree on each zxid it
/// holds. Returns the zxid-ordered txns, or the disagreements.
pub fn committed_history(logs: &BTreeMap<u64, Vec<Txn>>) -> Result<Vec<Txn>, Vec<String>> {
    let mut by_zxid: BTreeMap<u64, (u64, &Txn)> = BTreeMap::new();
    let mut bad = Vec::new();
    for (s, txns) in logs {
        for t in txns {
            match by_zxid.get(&t.zxid.0) {
                Some((other, t0)) if *t0 != t => bad.push(format!(
                    "zxid {}: server {s} logged {:?}, server {other} logged {:?}",
                    t.zxid, t.kind, t0.kind
                )),
                Some(_) => {}
                None => {
                    by_zxid.insert(t.zxid.0, (*s, t));
                }
            }
        }
    }
    if bad.is_empty() {
        Ok(by_zxid.into_values().map(|(_, t)| t.clone()).collect())
    } else {
        Err(bad)
    }
}

/// Replays `history` into the model, checking every write reply against
/// the model's answer at its zxid, every read against the model's state
/// at the zxid its reply carried, and that every acknowledged write is in
/// the history. Returns the model and the violations.
pub fn replay(txns: &[Txn], hist: &History) -> (Model, Vec<String>) {
    let mut v = Vec::new();
    let mut model = Model::new();
    // (session, xid) -> index of the write op.
    let mut writes: BTreeMap<(i64, i32), usize> = BTreeMap::new();
    let mut reads: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, o) in hist.ops.iter().enumerate() {
        if o.request.is_write() {
            writes.insert((o.session, o.xid), i);
        } else if let Outcome::Reply { zxid, .. } = &o.outcome {
            if model.read(&o.request).is_some() {
                reads.entry(*zxid).or_default().push(i);
            }
        }
    }
    let mut seen_writes = std::collections::BTreeSet::new();
    let check_reads = |model: &Model, at: i64, v: &mut Vec<String>| {
        for &i in reads.get(&at).into_iter().flatten() {
            let o = &hist.ops[i];
            let (err, body) = model.read(&o.request).expect("a modelled read");
            if let Outcome::Reply {
                err: got,
                body: got_body,
                ..
            } = &o.outcome
            {
                if *got != err.code() || (err == ErrorCode::Ok && got_body.as_ref() != Some(&body))
                {
                    v.push(format!(
                        "read {:?} by session {:#x} answered at zxid {at:#x}: got err {got} {:?}, the state at that zxid says err {} {:?}",
                        o.request, o.session, got_body, err.code(), body
                    ));
                }
            }
        }
    };
    check_reads(&model, 0, &mut v);
    for t in txns {
        if model.last_zxid != 0
            && t.zxid.epoch() as i64 == model.last_zxid >> 32
            && t.zxid.as_i64() != model.last_zxid + 1
        {
            v.push(format!(
                "history gap: {:#x} follows {:#x}",
                t.zxid.0, model.last_zxid
            ));
        }
        let answer = model.apply(t);
        let key = (t.session.0, t.cxid);
        if let (Some((err, body)), Some(&i)) = (answer, writes.get(&key)) {
            let is_write = matches!(
                t.kind,
                TxnKind::Write { .. } | TxnKind::Reconfig { .. } | TxnKind::CloseSession
            );
            if is_write {
                seen_writes.insert(i);
                if let Outcome::Reply {
                    zxid,
                    err: got,
                    body: got_body,
                    ..
                } = &hist.ops[i].outcome
                {
                    if *zxid != t.zxid.as_i64() {
                        v.push(format!(
                            "write {:?} (session {:#x} xid {}) committed at {} but its reply says zxid {zxid:#x}",
                            hist.ops[i].request, key.0, key.1, t.zxid
                        ));
                    } else if *got != err.code()
                        || (err == ErrorCode::Ok && got_body.as_ref() != Some(&body))
                    {
                        v.push(format!(
                            "write {:?} at zxid {}: server answered err {got} {:?}, the model says err {} {:?}",
                            hist.ops[i].request, t.zxid, got_body, err.code(), body
                        ));
                    }
                }
            }
        }
        check_reads(&model, t.zxid.as_i64(), &mut v);
    }
    for (i, o) in hist.ops.iter().enumerate() {
        if let Outcome::Reply { zxid, err: 0, .. } = &o.outcome {
            if o.request.is_write() && !seen_writes.contains(&i) {
                v.push(format!(
                    "acknowledged write lost: {:?} (session {:#x} xid {}) acknowledged at zxid {zxid:#x}, not in the committed history (last {:#x})",
                    o.request, o.session, o.xid, model.last_zxid
                ));
            }
        }
    }
    for (at, ids) in &reads {
        if *at > model.last_zxid {
            for &i in ids {
                v.push(format!(
                    "read {:?} answered at zxid {at:#x}, beyond the committed history (last {:#x})",
                    hist.ops[i].request, model.last_zxid
                ));
            }
        }
    }
    (model, v)
}

/// Per session, the zxids its replies carry never go backwards (across
/// reconnects); per connection, watch events arrive in zxid order and
/// before any reply carrying their zxid or a later one.
pub fn session_order(hist: &History) -> Vec<String> {
    let mut v = Vec::new();
    // session -> (arrival time, conn, zxid) of every reply.
    let mut by_session: BTreeMap<i64, Vec<(u64, u64, i64)>> = BTreeMap::new();
    for (conn, (session, frames)) in &hist.conns {
        let mut reply_max = i64::MIN;
        let mut event_max = i64::MIN;
        for (at, r) in frames {
            match r {
                Received::Reply { zxid, .. } if *zxid >= 0 => {
                    reply_max = reply_max.max(*zxid);
                    by_session
                        .entry(*session)
                        .or_default()
                        .push((*at, *conn, *zxid));
                }
                Received::Event { zxid, event, path } if *zxid > 0 => {
                    if *zxid < event_max {
                        v.push(format!(
                            "conn {conn}: event {event} on {path} at zxid {zxid:#x} after an event at {event_max:#x}"
                        ));
                    }
                    if *zxid <= reply_max {
                        v.push(format!(
                            "conn {conn}: event {event} on {path} for zxid {zxid:#x} arrived after a reply carrying zxid {reply_max:#x}"
                        ));
                    }
                    event_max = event_max.max(*zxid);
                }
                _ => {}
            }
        }
    }
    for (s, mut seen) in by_session {
        seen.sort();
        let mut max = (0i64, 0u64);
        for (_, conn, z) in seen {
            if z < max.0 {
                v.push(format!(
                    "session {s:#x}: conn {conn} answered from zxid {z:#x} after the session saw {:#x} on conn {}",
                    max.0, max.1
                ));
            }
            if z > max.0 {
                max = (z, conn);
            }
        }
    }
    v
}

/// Ephemerals live exactly as long as their session: none owned by a
/// session the model no longer has; none left for a session its client
/// closed or saw expire; sessions alive at the end are ones a client holds.
pub fn ephemerals(model: &Model, hist: &History, live_sessions: &[i64]) -> Vec<String> {
    let mut v = Vec::new();
    for (p, n) in &model.nodes {
        if n.owner != 0 && !model.sessions.contains_key(&n.owner) {
            v.push(format!("{p}: ephemeral of dead session {:#x}", n.owner));
        }
    }
    for (s, rec) in &hist.sessions {
        if (rec.closed || rec.expired_seen) && model.sessions.contains_key(s) {
            v.push(format!(
                "session {s:#x} (client {}) was {} but is still alive",
                rec.client,
                if rec.closed {
                    "closed"
                } else {
                    "reported expired"
                }
            ));
        }
    }
    for s in model.sessions.keys() {
        if !live_sessions.contains(s) {
            v.push(format!(
                "session {s:#x} outlived its timeout with no client holding it"
            ));
        }
    }
    v
}

/// A read-only server never acknowledges a write: on a connection it
/// admitted read-only, every write but closeSession is answered
/// NOTREADONLY. (That it serves nothing newer than its last commit is
/// `replay`'s rule for every read: the state at the reply's zxid, which
/// must be in the committed history.)
pub fn read_only_writes(hist: &History) -> Vec<String> {
    hist.ops
        .iter()
        .filter(|o| hist.read_only_conns.contains(&o.conn))
        .filter(|o| o.request.is_write() && !matches!(o.request, Request::CloseSession))
        .filter_map(|o| match &o.outcome {
            Outcome::Reply { err, zxid, .. } if *err != ErrorCode::NotReadOnly.code() => {
                Some(format!(
                    "read-only conn {}: write {:?} answered err {err} at zxid {zxid:#x}, not NOTREADONLY",
                    o.conn, o.request
                ))
            }
            _ => None,
        })
        .collect()
}

/// The writes of the history a test wants to doctor: (index, request).
pub fn write_ops(hist: &History) -> Vec<(usize, &Request)> {
    hist.ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.request.is_write())
        .map(|(i, o)| (i, &o.request))
        .collect()
}

#[cfg(test)]
mod read_only_tests {
    use super::*;
    use crate::history::OpRecord;

    fn op(conn: u64, err: i32) -> OpRecord {
        OpRecord {
            client: 0,
            session: 1,
            conn,
            xid: 1,
            opcode: 5,
            request: Request::SetData {
                path: "/a".into(),
                data: vec![],
                version: -1,
            },
            sent_ns: 0,
            outcome: Outcome::Reply {
                zxid: 7,
                err,
                body: None,
                at_ns: 1,
            },
        }
    }

    #[test]
    fn a_write_acknowledged_on_a_read_only_connection_is_caught() {
        let mut h = History::default();
        h.read_only_conns.insert(3);
        h.record(op(3, ErrorCode::NotReadOnly.code()));
        h.record(op(4, 0));
        assert!(read_only_writes(&h).is_empty());
        h.record(op(3, 0));
        assert_eq!(read_only_writes(&h).len(), 1);
    }
}
