//! Persistence tokens: the log records and epochs this server asked
//! to make durable, completed in order, and the durable marks they move.

use super::*;
use crate::canary::Canary;
use crate::ids::*;
use crate::storage::{self, Snapshot, StorageOp};
use crate::txn::Txn;
use crate::zab::Role;

impl Node {
    // ----- persistence --------------------------------------------------

    /// Logs a txn (in memory now, on disk with the next `StorageOp::Append`).
    pub(crate) fn log_append(&mut self, txn: Txn) {
        storage::encode_record(&txn, &mut self.persist_buf);
        if self.persist_first.is_none() {
            self.persist_first = Some(txn.zxid);
        }
        self.persist_last = txn.zxid;
        let z = txn.zxid;
        self.log.append(txn);
        if self.canary(Canary::AckBeforePersist) && self.config.is_standalone() {
            self.persisted_upto = self.persisted_upto.max(z);
        }
    }

    pub(super) fn new_token(&mut self, kind: TokenKind) -> PersistToken {
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.tokens.push_back((token, kind));
        token
    }

    /// Emits the buffered log records as one `StorageOp::Append` (group commit).
    pub(super) fn flush_persist(&mut self) {
        if let Some(first) = self.persist_first.take() {
            let last = self.persist_last;
            let token = self.new_token(TokenKind::Append(last));
            self.outputs.push_back(Output::Storage(StorageOp::Append {
                token,
                first_zxid: first,
                bytes: std::mem::take(&mut self.persist_buf),
            }));
        }
    }

    /// Makes the epochs durable, after everything logged before.
    pub(crate) fn persist_epochs(&mut self) -> PersistToken {
        self.flush_persist();
        let token = self.new_token(TokenKind::Epochs);
        self.outputs.push_back(Output::Storage(StorageOp::Epochs {
            token,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            repairing: self.repair_mark,
        }));
        token
    }

    /// Cuts the on-disk log after `zxid`, after everything before.
    pub(crate) fn persist_truncate(&mut self, zxid: Zxid) -> PersistToken {
        self.flush_persist();
        self.persisted_upto = self.persisted_upto.min(zxid.max(self.snapshot_durable));
        let token = self.new_token(TokenKind::Truncate(zxid));
        self.outputs
            .push_back(Output::Storage(StorageOp::Truncate { token, zxid }));
        token
    }

    /// Whether every token up to `t` has completed.
    pub(crate) fn tokens_done_through(&self, t: PersistToken) -> bool {
        self.tokens.front().is_none_or(|(first, _)| *first > t)
    }

    pub(super) fn on_persisted(&mut self, now: Now, token: PersistToken) {
        // The executor answers only tokens it was given, in order.
        assert!(
            token.0 < self.next_token,
            "Persisted {token:?} was never issued (next {})",
            self.next_token
        );
        let mut any = false;
        while let Some(&(t, kind)) = self.tokens.front() {
            if t > token {
                break;
            }
            self.tokens.pop_front();
            any = true;
            // In order: an append that completes before a truncation must
            // not leave the mark above the cut.
            match kind {
                TokenKind::Append(z) => self.persisted_upto = self.persisted_upto.max(z),
                TokenKind::Truncate(z) => {
                    self.persisted_upto = self.persisted_upto.min(z.max(self.snapshot_durable))
                }
                TokenKind::Epochs => {}
            }
        }
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
