//! Persistence tokens: the log records and epochs this server asked
//! to make durable, completed in order, and the durable marks they move.
//! [`Durable`] owns them; the `Node` methods below only hand it the
//! server's output queue and run the roles once something is durable.

use super::*;
use crate::canary::Canary;
use crate::ids::*;
use crate::storage::{self, Snapshot, StorageOp};
use crate::txn::Txn;
use crate::zab::Role;

/// What a persistence token stands for.
#[derive(Debug, Clone, Copy)]
pub(super) enum TokenKind {
    Append(Zxid),
    Epochs,
    Truncate(Zxid),
}

/// The persistence a server asked for and how much of it is durable.
/// Tokens are issued in order and complete in order (the executor's
/// promise); the pending ones are at most those of one poll's outputs
/// plus what the disk has not answered yet.
#[derive(Debug)]
pub(super) struct Durable {
    /// Log records buffered since the last flush (one group commit).
    buf: Vec<u8>,
    first: Option<Zxid>,
    last: Zxid,
    next_token: u64,
    pending: VecDeque<(PersistToken, TokenKind)>,
    /// Highest zxid durable (in the log, or covered by a written snapshot).
    upto: Zxid,
    /// Highest zxid a written snapshot holds: a log truncation, which the
    /// storage thread may finish after the snapshot thread, never lowers
    /// the durable mark below it.
    snapshot: Zxid,
}

impl Durable {
    /// Everything up to `last` is durable already (recovered from disk).
    pub(super) fn new(last: Zxid) -> Durable {
        Durable {
            buf: Vec::new(),
            first: None,
            last,
            next_token: 1,
            pending: VecDeque::new(),
            upto: last,
            snapshot: Zxid::ZERO,
        }
    }

    /// Highest zxid durable.
    pub(super) fn upto(&self) -> Zxid {
        self.upto
    }

    /// Buffers a txn's log record (written with the next flush).
    fn append(&mut self, txn: &Txn) {
        storage::encode_record(txn, &mut self.buf);
        if self.first.is_none() {
            self.first = Some(txn.zxid);
        }
        self.last = txn.zxid;
    }

    fn token(&mut self, kind: TokenKind) -> PersistToken {
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.pending.push_back((token, kind));
        token
    }

    /// Emits the buffered records as one `StorageOp::Append`.
    fn flush(&mut self, out: &mut VecDeque<Output>) {
        if let Some(first) = self.first.take() {
            let token = self.token(TokenKind::Append(self.last));
            out.push_back(Output::Storage(StorageOp::Append {
                token,
                first_zxid: first,
                bytes: std::mem::take(&mut self.buf),
            }));
        }
    }

    /// Asks for the epochs (and the repair mark) to be made durable, after
    /// everything logged before.
    fn epochs(
        &mut self,
        accepted_epoch: u32,
        current_epoch: u32,
        repairing: bool,
        out: &mut VecDeque<Output>,
    ) -> PersistToken {
        self.flush(out);
        let token = self.token(TokenKind::Epochs);
        out.push_back(Output::Storage(StorageOp::Epochs {
            token,
            accepted_epoch,
            current_epoch,
            repairing,
        }));
        token
    }

    /// Asks for the on-disk log to be cut after `zxid`, after everything
    /// before; what is durable drops to the cut at once.
    fn truncate(&mut self, zxid: Zxid, out: &mut VecDeque<Output>) -> PersistToken {
        self.flush(out);
        self.upto = self.upto.min(zxid.max(self.snapshot));
        let token = self.token(TokenKind::Truncate(zxid));
        out.push_back(Output::Storage(StorageOp::Truncate { token, zxid }));
        token
    }

    /// Whether every token up to `t` has completed.
    fn done_through(&self, t: PersistToken) -> bool {
        self.pending.front().is_none_or(|(first, _)| *first > t)
    }

    /// `token` and every earlier one completed; whether any was pending.
    fn completed(&mut self, token: PersistToken) -> bool {
        // The executor answers only tokens it was given, in order.
        assert!(
            token.0 < self.next_token,
            "Persisted {token:?} was never issued (next {})",
            self.next_token
        );
        let mut any = false;
        while let Some(&(t, kind)) = self.pending.front() {
            if t > token {
                break;
            }
            self.pending.pop_front();
            any = true;
            // In order: an append that completes before a truncation must
            // not leave the mark above the cut.
            match kind {
                TokenKind::Append(z) => self.upto = self.upto.max(z),
                TokenKind::Truncate(z) => self.upto = self.upto.min(z.max(self.snapshot)),
                TokenKind::Epochs => {}
            }
        }
        any
    }

    /// A snapshot up to `zxid` is on disk: all of it is durable (a SNAP
    /// sync may jump past what the log ever held).
    pub(super) fn snapshot_written(&mut self, zxid: Zxid) {
        self.upto = self.upto.max(zxid);
        self.snapshot = self.snapshot.max(zxid);
    }

    /// The planted `AckBeforePersist`: counted durable when logged.
    fn pretend_durable(&mut self, z: Zxid) {
        self.upto = self.upto.max(z);
    }

    /// The pending tokens, for a state dump.
    pub(super) fn pending(&self) -> impl std::fmt::Debug + '_ {
        &self.pending
    }
}

impl Node {
    // ----- persistence --------------------------------------------------

    /// Logs a txn (in memory now, on disk with the next `StorageOp::Append`).
    pub(crate) fn log_append(&mut self, txn: Txn) {
        self.durable.append(&txn);
        let z = txn.zxid;
        self.log.append(txn);
        if self.canary(Canary::AckBeforePersist) && self.config.is_standalone() {
            self.durable.pretend_durable(z);
        }
    }

    /// Emits the buffered log records as one `StorageOp::Append` (group commit).
    pub(super) fn flush_persist(&mut self) {
        self.durable.flush(&mut self.outputs);
    }

    /// Makes the epochs durable, after everything logged before.
    pub(crate) fn persist_epochs(&mut self) -> PersistToken {
        self.durable.epochs(
            self.accepted_epoch,
            self.current_epoch,
            self.repair_mark,
            &mut self.outputs,
        )
    }

    /// Cuts the on-disk log after `zxid`, after everything before.
    pub(crate) fn persist_truncate(&mut self, zxid: Zxid) -> PersistToken {
        self.durable.truncate(zxid, &mut self.outputs)
    }

    /// Whether every token up to `t` has completed.
    pub(crate) fn tokens_done_through(&self, t: PersistToken) -> bool {
        self.durable.done_through(t)
    }

    pub(super) fn on_persisted(&mut self, now: Now, token: PersistToken) {
        let any = self.durable.completed(token);
        if !any {
            return;
        }
        match &self.role {
            Role::Leading(_) => self.leader_on_persisted(now, token),
            Role::Learning(_) => self.learner_on_persisted(now, token),
            Role::Looking(_) => {}
        }
    }

    /// The disk refused an operation. Nothing of it is durable and,
    /// after a failed fsync, the page cache no longer says what is: so
    /// nothing waiting on it is acknowledged, nothing is retried, and the
    /// node stops. The server starts again from what its log holds (as
    /// PostgreSQL and ZooKeeper do); a learner then syncs what it lacks
    /// from the leader.
    pub(super) fn on_storage_failed(
        &mut self,
        now: Now,
        token: Option<PersistToken>,
        error: storage::StorageError,
    ) {
        if self.canary(Canary::RetryFailedFsync) {
            // The planted bug: retry, see success, acknowledge.
            if let Some(t) = token {
                warn!("storage failed ({error}); retrying (canary)");
                self.on_persisted(now, t);
            } else {
                self.snapshot_pending = false;
            }
            return;
        }
        let what = match token {
            Some(t) => format!("log operation {}", t.0),
            None => "snapshot".to_string(),
        };
        let reason = format!(
            "{error} ({what}); nothing it covers was acknowledged; stopping: the server \
             restarts from its log rather than retry"
        );
        tracing::error!("{reason}");
        self.stopped = Some(reason.clone());
        self.outputs.push_back(Output::Stop { reason });
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::TxnKind;

    fn txn(z: Zxid) -> Txn {
        Txn {
            zxid: z,
            time_ms: 0,
            session: SessionId(1),
            cxid: 1,
            kind: TxnKind::CloseSession,
        }
    }

    #[test]
    fn marks_move_in_token_order_and_a_snapshot_is_a_floor() {
        let (z1, z2, z3) = (Zxid::new(1, 1), Zxid::new(1, 2), Zxid::new(1, 3));
        let mut d = Durable::new(Zxid::ZERO);
        let mut out = VecDeque::new();
        d.append(&txn(z1));
        d.append(&txn(z2));
        let e = d.epochs(1, 1, false, &mut out);
        // One Append for both records (group commit), then the epochs.
        assert!(
            matches!(&out[0], Output::Storage(StorageOp::Append { first_zxid, .. }) if *first_zxid == z1)
        );
        assert!(matches!(&out[1], Output::Storage(StorageOp::Epochs { token, .. }) if *token == e));
        assert!(!d.done_through(e));
        assert!(d.completed(PersistToken(1)));
        assert_eq!(d.upto(), z2);
        assert!(!d.done_through(e), "the epochs are not durable yet");
        assert!(d.completed(e));
        assert!(d.done_through(e));
        assert!(!d.completed(e), "nothing was pending any more");
        // A cut lowers the mark at once, but never below a written snapshot.
        d.append(&txn(z3));
        d.snapshot_written(z2);
        let t = d.truncate(z1, &mut out);
        assert_eq!(d.upto(), z2);
        assert!(d.completed(t));
        assert_eq!(d.upto(), z2, "the append before the cut completed first");
    }

    #[test]
    #[should_panic(expected = "never issued")]
    fn an_answer_to_a_token_never_issued_is_a_bug() {
        let mut d = Durable::new(Zxid::ZERO);
        d.completed(PersistToken(1));
    }
}
