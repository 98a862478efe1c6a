//! The established leader: proposals, commits in zxid order, learners'
//! requests (forwarded writes, syncs, revalidations, ping replies), and
//! its timers (session expiry, container reaping, pings, quorum loss).

use super::*;
use crate::txn::{TxnKind, INTERNAL_CXID};
use tracing::{info, warn};

impl Leader {
    /// A write of one of this server's clients.
    pub fn submit(&mut self, cx: &Ctx, session: SessionId, cxid: i32, kind: TxnKind) -> Step {
        match &kind {
            TxnKind::CloseSession => {
                self.closing.insert(session);
                self.expiry.remove(session);
            }
            TxnKind::CreateSession { timeout_ms } => {
                self.expiry.touch(cx.now.mono, session, *timeout_ms)
            }
            _ => {}
        }
        let mut step = Vec::new();
        self.propose(cx, session, cxid, kind, &mut step);
        step
    }

    /// Assigns the next zxid to a txn; the server sends it to the
    /// followers and logs it.
    fn propose(&mut self, cx: &Ctx, session: SessionId, cxid: i32, kind: TxnKind, step: &mut Step) {
        assert!(
            self.established,
            "proposal before epoch {} is established",
            self.epoch
        );
        let mut zxid = Zxid(self.last_proposed.0 + 1);
        if zxid.epoch() != self.epoch {
            zxid = Zxid::new(self.epoch, 1);
        }
        assert!(
            zxid.counter() != 0,
            "zxid counter overflow at {zxid}: a new epoch is required"
        );
        self.last_proposed = zxid;
        // A reconfig's checks need this leader's view and the zxid (the new
        // configuration's version).
        let kind = self.resolve_reconfig(cx, zxid, kind);
        let txn = Txn {
            zxid,
            time_ms: cx.now.wall_ms,
            session,
            cxid,
            kind,
        };
        let followers = self.followers_at(Stage::Synced).collect();
        step.push(Action::Propose(txn, followers));
    }

    /// Commits, in order, every proposal a quorum has durable.
    pub(super) fn try_commit(&mut self, cx: &Ctx, step: &mut Step) {
        loop {
            if !self.established || self.committed >= self.last_proposed {
                return;
            }
            let Some(z) = cx.log.next_after(self.committed) else {
                return;
            };
            let mine = cx.persisted_upto >= z;
            let acked = self
                .learners
                .iter()
                .filter(|(_, v)| !v.observer && v.stage >= Stage::NewLeaderAcked && v.acked >= z)
                .map(|(s, _)| *s);
            let quorum =
                self.quorum_with(mine, acked) || cx.canary == Some(Canary::CommitWithMinority);
            if !quorum {
                return;
            }
            if cx.cfg.record_commit_quorums {
                let mut ids: BTreeSet<ServerId> = self
                    .learners
                    .iter()
                    .filter(|(_, v)| {
                        !v.observer && v.stage >= Stage::NewLeaderAcked && v.acked >= z
                    })
                    .map(|(s, _)| *s)
                    .collect();
                if mine {
                    ids.insert(self.me);
                }
                step.push(Action::CommitQuorum(z, z, ids));
            }
            self.commit(cx, z, step);
        }
    }

    fn commit(&mut self, cx: &Ctx, z: Zxid, step: &mut Step) {
        let mut followers = Vec::new();
        let mut observers = Vec::new();
        for (s, v) in &self.learners {
            if v.stage >= Stage::Synced {
                if v.observer {
                    observers.push(*s);
                } else {
                    followers.push(*s);
                }
            }
        }
        if !followers.is_empty() {
            step.push(Action::SendAll(followers, PeerMsg::Commit { zxid: z }));
        }
        if !observers.is_empty() {
            if let Some(t) = cx.log.entry(z).cloned() {
                step.push(Action::SendAll(observers, PeerMsg::Inform(t)));
            }
        }
        step.push(Action::Apply(z));
        self.committed = z;
        self.release_syncs(step);
    }

    /// Learners' syncs whose proposals are now committed are answered.
    fn release_syncs(&mut self, step: &mut Step) {
        let committed = self.committed;
        self.sync_waiters.retain(|&(s, id, z)| {
            if z <= committed {
                step.push(Action::Send(s, PeerMsg::SyncDone { id }));
                false
            } else {
                true
            }
        });
    }

    fn heard(&mut self, cx: &Ctx, from: ServerId) -> Option<&mut LearnerView> {
        let v = self.learners.get_mut(&from)?;
        v.last_heard = cx.now.mono;
        Some(v)
    }

    pub(super) fn on_ack(&mut self, cx: &Ctx, from: ServerId, zxid: Zxid, step: &mut Step) {
        let epoch = self.epoch;
        if zxid.epoch() == epoch && zxid > self.last_proposed {
            // Nobody can hold durably what was never proposed.
            let reason = format!(
                "ACK of {zxid} beyond the last proposal {}",
                self.last_proposed
            );
            warn!("peer {}: {reason}; dropping the link", from.0);
            step.push(Action::ClosePeer(from, reason));
            return;
        }
        if let Some(v) = self.heard(cx, from) {
            if v.stage >= Stage::NewLeaderAcked && zxid > v.acked && zxid.epoch() == epoch {
                v.acked = zxid;
            }
        }
        self.try_commit(cx, step);
    }

    pub(super) fn on_forward(
        &mut self,
        cx: &Ctx,
        from: ServerId,
        session: SessionId,
        cxid: i32,
        kind: TxnKind,
        step: &mut Step,
    ) {
        if !self.established {
            return;
        }
        self.heard(cx, from);
        let now = cx.now.mono;
        match &kind {
            TxnKind::CloseSession => {
                self.closing.insert(session);
                self.expiry.remove(session);
            }
            TxnKind::CreateSession { timeout_ms } => {
                self.expiry.touch(now, session, *timeout_ms);
            }
            _ => {
                self.expiry.touch_known(now, session);
            }
        }
        self.propose(cx, session, cxid, kind, step);
    }

    pub(super) fn on_sync_request(&mut self, cx: &Ctx, from: ServerId, id: u64, step: &mut Step) {
        self.heard(cx, from);
        let upto = self.last_proposed;
        if upto <= self.committed {
            step.push(Action::Send(from, PeerMsg::SyncDone { id }));
        } else {
            self.sync_waiters.push((from, id, upto));
        }
    }

    /// A learner asks whether a reconnecting client's session is live:
    /// it is if it exists and is not closing; a live one is touched.
    pub(super) fn on_revalidate(
        &mut self,
        cx: &Ctx,
        from: ServerId,
        id: u64,
        session: SessionId,
        timeout_ms: u32,
        step: &mut Step,
    ) {
        // Only a learner this leader has brought up to date is answered: a
        // server still serving an older epoch of this same server (the link
        // never reset) must hear nothing, so that it gives up (syncLimit)
        // instead of being kept alive by the answers.
        let Some(v) = self.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::UpToDate {
            return;
        }
        v.last_heard = cx.now.mono;
        let exists = cx.log.state().sessions.contains_key(&session);
        let valid = exists && !self.closing.contains(&session);
        if valid {
            self.expiry.touch(cx.now.mono, session, timeout_ms);
        }
        step.push(Action::Send(from, PeerMsg::Revalidated { id, valid }));
    }

    pub(super) fn on_ping_reply(
        &mut self,
        cx: &Ctx,
        from: ServerId,
        touched: Vec<(SessionId, u32)>,
    ) {
        self.heard(cx, from);
        for (s, t) in touched {
            if !self.closing.contains(&s) {
                self.expiry.touch(cx.now.mono, s, t);
            }
        }
    }

    /// The link to a learner broke.
    pub fn on_disconnected(&mut self, peer: ServerId) {
        if self.learners.remove(&peer).is_some() {
            info!("learner {} disconnected", peer.0);
        }
        self.sync_waiters.retain(|w| w.0 != peer);
    }

    pub fn on_timeout(&mut self, cx: &Ctx) -> Step {
        let mut step = Vec::new();
        let now = cx.now.mono;
        if !self.established {
            if !self.standalone && now >= self.establish_by {
                warn!("no quorum synced within initLimit; back to election");
                step.push(Action::Look);
            }
            return step;
        }
        // Session expiry.
        for s in self.expiry.expired(now) {
            if !self.closing.insert(s) {
                continue;
            }
            if cx.log.state().sessions.contains_key(&s) {
                info!("session {s} expired");
                self.propose(cx, s, INTERNAL_CXID, TxnKind::CloseSession, &mut step);
            } else {
                self.closing.remove(&s);
            }
        }
        if now >= self.next_reap {
            self.next_reap = now.add_millis(cx.cfg.container_check_interval_ms);
            self.reap(cx, &mut step);
        }
        if self.standalone {
            return step;
        }
        if now >= self.next_ping {
            let tick = cx.cfg.tick_time_ms as u64;
            let sync_ms = tick * cx.cfg.sync_limit_ticks as u64;
            self.next_ping = now.add_millis((tick / 2).max(1));
            let alive = self
                .learners
                .iter()
                .filter(|(_, v)| {
                    !v.observer
                        && v.stage >= Stage::NewLeaderAcked
                        && now.millis_since(v.last_heard) < sync_ms
                })
                .map(|(s, _)| *s);
            if !self.quorum_with(true, alive) {
                warn!("lost the quorum of followers; stepping down");
                step.push(Action::Look);
                return step;
            }
            let all = self.learners.keys().copied().collect();
            step.push(Action::SendAll(all, PeerMsg::Ping));
        }
        step
    }

    /// Proposes deleteContainer for empty used containers and expired TTL
    /// nodes (ZooKeeper's ContainerManager).
    fn reap(&mut self, cx: &Ctx, step: &mut Step) {
        let mut victims = Vec::new();
        let tree = &cx.log.state().tree;
        for p in tree.containers() {
            if let Some(n) = tree.get(p) {
                if n.cversion > 0 && n.children.is_empty() {
                    victims.push(p.to_string());
                }
            }
        }
        for p in tree.ttls() {
            if let Some(n) = tree.get(p) {
                if let crate::tree::NodeKind::Ttl(ttl) = n.kind() {
                    if n.children.is_empty() && cx.now.wall_ms - n.mtime > ttl {
                        victims.push(p.to_string());
                    }
                }
            }
        }
        // ZooKeeper's ContainerManager spaces deletions to maxPerMinute;
        // here a check deletes its share of the minute and leaves the rest
        // to the next check.
        let per_check = (cx.cfg.container_max_per_minute as u128
            * cx.cfg.container_check_interval_ms as u128
            / 60_000)
            .max(1);
        victims.truncate(per_check.min(usize::MAX as u128) as usize);
        for path in victims {
            self.propose(
                cx,
                SessionId(0),
                INTERNAL_CXID,
                TxnKind::Write {
                    request: crate::proto::Request::DeleteContainer { path },
                    auth: vec![],
                },
                step,
            );
        }
    }
}
