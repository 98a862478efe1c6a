//! After a txn is applied: replies to its writer, watch events to every
//! watcher, before any later reply on those connections.

use super::*;
use crate::canary::Canary;
use crate::ids::*;
use crate::proto::ConnectResponse;
use crate::session;
use crate::txn::{Applied, TxnHeader, TxnTag};
use crate::zab::Role;

impl Node {
    // ----- after a txn is applied --------------------------------------

    /// Replies to the client that asked for `txn` (if it is connected
    /// here), fires watches, and keeps the session bookkeeping.
    pub(crate) fn on_applied(&mut self, now: Now, txn: &TxnHeader, applied: &Applied) {
        let zxid = txn.zxid;
        let mut reply: Option<(ConnId, Vec<u8>, Option<String>)> = None;
        if txn.cxid != INTERNAL_CXID {
            if let Some(conn) = self.clients.writer_of(txn) {
                let c = self.clients.get(conn).expect("the writer's connection");
                let frame = if txn.tag == TxnTag::CreateSession {
                    ConnectResponse {
                        protocol_version: 0,
                        timeout_ms: c.timeout_ms as i32,
                        session_id: txn.session.0,
                        passwd: if self.config.zookeeper_session_passwords {
                            crate::zk::password::zookeeper_password(txn.session).to_vec()
                        } else {
                            session::password(txn.session).to_vec()
                        },
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
                    l.session_created(now.mono, s, m.timeout_ms);
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
                l.session_closed(s);
            }
            if let Role::Learning(l) = &mut self.role {
                l.touched.remove(&s);
            }
            self.clients.session_closed(s, own, &mut self.outputs);
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
        let skip_acl = self.config.skip_acl;
        self.clients
            .fire(txn.zxid, &applied.triggers, skip_acl, &mut self.outputs);
    }

    fn finish_write(&mut self, now: Now, conn: ConnId, frame: Vec<u8>, close: Option<String>) {
        let rd = super::reads::Reader::of(&self.log, &self.config);
        self.clients
            .finish_write(now.mono, conn, frame, close, &rd, &mut self.outputs);
    }
}
