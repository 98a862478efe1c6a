//! The leader's steps as methods of `Node`, over the state types of
//! `zab::leader` (see there for the protocol and its invariants).

use super::*;
use crate::ids::*;
use crate::peer::{PeerMsg, SyncMode};
use crate::storage::Snapshot;
use crate::txn::{Txn, TxnKind};
use crate::zab::leader::*;
use tracing::{info, warn};

impl Node {
    pub(crate) fn become_leader(&mut self, now: Now) {
        let leader = self.new_leader(now);
        self.role = crate::zab::Role::Leading(leader);
        self.start_leading(now);
    }

    /// A leader over this server's log and sessions.
    pub(super) fn new_leader(&self, now: Now) -> Leader {
        let sessions = self
            .log
            .state()
            .sessions
            .iter()
            .map(|(s, meta)| (*s, meta.timeout_ms));
        Leader::new(
            &self.config,
            self.current_epoch,
            self.log.last_logged(),
            sessions,
            now.mono,
        )
    }

    /// The first steps of a leader just installed as the role.
    pub(super) fn start_leading(&mut self, now: Now) {
        let standalone = self.config.is_standalone();
        info!(
            "server {} leading (standalone: {standalone}), last logged {}",
            self.config.server_id.0,
            self.log.last_logged()
        );
        if standalone {
            self.establish(now);
        } else {
            self.maybe_choose_epoch();
        }
    }

    pub(super) fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            crate::zab::Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn maybe_choose_epoch(&mut self) {
        let quorum = self.config.quorum();
        let me = self.config.server_id;
        let accepted = self.accepted_epoch;
        let Some(l) = self.leader_mut() else { return };
        if l.epoch_token.is_some() || l.epoch_chosen {
            return;
        }
        let voters: Vec<u32> = l
            .learners
            .values()
            .filter(|v| !v.observer)
            .map(|v| v.accepted_epoch)
            .collect();
        if voters.len() + 1 < quorum {
            return;
        }
        let epoch = voters.iter().copied().chain([accepted]).max().unwrap_or(0) + 1;
        l.epoch = epoch;
        info!("server {} proposes epoch {epoch}", me.0);
        self.accepted_epoch = epoch;
        let token = self.persist_epochs();
        if let Some(l) = self.leader_mut() {
            l.epoch_token = Some(token);
        }
    }

    pub(crate) fn leader_on_persisted(&mut self, now: Now, done: PersistToken) {
        let Some(l) = self.leader_mut() else { return };
        if l.epoch_token.is_some_and(|t| t <= done) {
            l.epoch_token = None;
            l.epoch_chosen = true;
            let epoch = l.epoch;
            let waiting: Vec<ServerId> = l
                .learners
                .iter()
                .filter(|(_, v)| v.stage == Stage::Connected)
                .map(|(s, _)| *s)
                .collect();
            for s in waiting {
                if let Some(l) = self.leader_mut() {
                    if let Some(v) = l.learners.get_mut(&s) {
                        v.stage = Stage::EpochSent;
                    }
                }
                self.send_peer(s, &PeerMsg::LeaderInfo { epoch });
            }
            self.maybe_start_newleader();
        }
        let current_epoch = self.current_epoch;
        let Some(l) = self.leader_mut() else { return };
        if l.newleader_token.is_some_and(|t| t <= done) {
            l.newleader_token = None;
        }
        if !l.self_acked_newleader
            && l.newleader_token.is_none()
            && l.epoch_chosen
            && current_epoch == l.epoch
        {
            let upto = l.newleader_zxid;
            if self.persisted_upto >= upto {
                if let Some(l) = self.leader_mut() {
                    l.self_acked_newleader = true;
                }
                self.maybe_establish(now);
            }
        }
        self.try_commit(now);
    }

    /// Once a quorum acknowledged the epoch, the leader takes it as its
    /// currentEpoch (durably) — its own NEWLEADER acknowledgement.
    pub(super) fn maybe_start_newleader(&mut self) {
        let quorum = self.config.quorum();
        let last_logged = self.log.last_logged();
        let Some(l) = self.leader_mut() else { return };
        if !l.epoch_chosen || l.newleader_token.is_some() || l.self_acked_newleader {
            return;
        }
        let acked = l
            .learners
            .values()
            .filter(|v| !v.observer && v.stage >= Stage::Synced)
            .count();
        if acked + 1 < quorum {
            return;
        }
        l.newleader_zxid = last_logged;
        let epoch = l.epoch;
        self.current_epoch = epoch;
        let token = self.persist_epochs();
        if let Some(l) = self.leader_mut() {
            l.newleader_token = Some(token);
        }
    }

    pub(crate) fn leader_on_follower_info(
        &mut self,
        now: Now,
        from: ServerId,
        accepted_epoch: u32,
        observer: bool,
    ) {
        let Some(l) = self.leader_mut() else { return };
        let epoch_chosen = l.epoch_chosen;
        let epoch = l.epoch;
        if epoch_chosen && accepted_epoch > epoch {
            // A learner accepted a newer epoch (a leader that failed before
            // it was established, or a crash just after the epoch file
            // landed) and will refuse this one: without a new election it
            // could never join. Re-elect; the next epoch exceeds its.
            warn!(
                "learner {} accepted epoch {accepted_epoch}, above this leader's {epoch}; re-electing",
                from.0
            );
            self.become_looking(now);
            return;
        }
        l.learners.insert(
            from,
            LearnerView {
                observer,
                stage: if epoch_chosen {
                    Stage::EpochSent
                } else {
                    Stage::Connected
                },
                accepted_epoch,
                acked: Zxid::ZERO,
                synced_upto: Zxid::ZERO,
                last_heard: now.mono,
            },
        );
        if epoch_chosen {
            self.send_peer(from, &PeerMsg::LeaderInfo { epoch });
        } else {
            self.maybe_choose_epoch();
        }
    }

    pub(crate) fn leader_on_ack_epoch(
        &mut self,
        now: Now,
        from: ServerId,
        current_epoch: u32,
        last_zxid: Zxid,
        history: Vec<Zxid>,
    ) {
        let my = (self.current_epoch, self.log.last_logged());
        let Some(l) = self.leader_mut() else { return };
        let Some(v) = l.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::EpochSent {
            return;
        }
        v.last_heard = now.mono;
        if (current_epoch, last_zxid) > my {
            warn!(
                "learner {} is ahead of this leader ({current_epoch}, {last_zxid} > {}, {}); abdicating",
                from.0, my.0, my.1
            );
            self.become_looking(now);
            return;
        }
        let msg = self.sync_for(&history);
        match &msg {
            PeerMsg::Sync {
                mode: SyncMode::Snap { .. },
                ..
            } => self.stats.snap_syncs += 1,
            _ => self.stats.diff_syncs += 1,
        }
        let synced_upto = self.log.last_logged();
        if let Some(l) = self.leader_mut() {
            if let Some(v) = l.learners.get_mut(&from) {
                v.stage = Stage::Synced;
                v.acked = Zxid::ZERO;
                v.synced_upto = synced_upto;
            }
        }
        self.send_peer(from, &msg);
        self.maybe_start_newleader();
    }

    /// Chooses DIFF, TRUNC or SNAP for a learner whose log ends with the
    /// epoch boundaries `history` (newest first).
    pub(super) fn sync_for(&self, history: &[Zxid]) -> PeerMsg {
        let epoch = match &self.role {
            crate::zab::Role::Leading(l) => l.epoch,
            _ => unreachable!("sync_for outside leading"),
        };
        let last = self.log.last_logged();
        let committed_upto = self.log.last_applied();
        // Within one epoch both logs are prefixes of that epoch leader's
        // proposals, so our last entry of the learner's epoch at or below
        // its point is common to both; earlier epochs follow by induction.
        let start = self.log.window_start();
        let common = history.iter().copied().find_map(|z| {
            if z >= start && self.log.contains(z) {
                return Some(z);
            }
            let p = self.log.last_before(Zxid(z.0.saturating_add(1)));
            (p >= start && p.epoch() == z.epoch() && p != Zxid::ZERO).then_some(p)
        });
        let learner_last = history.first().copied().unwrap_or(Zxid::ZERO);
        let (mode, from) = match common {
            Some(p) if p == learner_last => (SyncMode::Diff, p),
            Some(p) => (SyncMode::Trunc { zxid: p }, p),
            None => {
                let snap = Snapshot::of(self.log.state());
                (
                    SyncMode::Snap {
                        snapshot: snap.encode(),
                    },
                    self.log.last_applied(),
                )
            }
        };
        PeerMsg::Sync {
            epoch,
            mode,
            committed: self.log.range(from, committed_upto),
            proposals: self.log.range(from.max(committed_upto), last),
            commit_upto: committed_upto,
        }
    }

    pub(crate) fn leader_on_ack_newleader(&mut self, now: Now, from: ServerId, epoch: u32) {
        let committed = self.log.last_applied();
        let Some(l) = self.leader_mut() else { return };
        if epoch != l.epoch {
            return;
        }
        let established = l.established;
        let Some(v) = l.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::Synced {
            return;
        }
        v.stage = Stage::NewLeaderAcked;
        v.last_heard = now.mono;
        // Proposals pending when the sync was cut are acknowledged by this
        // very message; without this they would wait for a later write.
        v.acked = v.acked.max(v.synced_upto);
        // NEWLEADER covers everything sent before it; proposals made since
        // are acknowledged by later ACKs.
        if established {
            v.stage = Stage::UpToDate;
            self.send_peer(from, &PeerMsg::UpToDate { epoch, committed });
        } else {
            self.maybe_establish(now);
        }
        self.try_commit(now);
    }

    pub(super) fn maybe_establish(&mut self, now: Now) {
        let quorum = self.config.quorum();
        let Some(l) = self.leader_mut() else { return };
        if l.established || !l.self_acked_newleader {
            return;
        }
        let acked = l
            .learners
            .values()
            .filter(|v| !v.observer && v.stage >= Stage::NewLeaderAcked)
            .count();
        if acked + 1 >= quorum {
            self.establish(now);
        }
    }

    /// The epoch is established: the whole history is committed.
    pub(super) fn establish(&mut self, now: Now) {
        let last = self.log.last_logged();
        let applied = self.log.apply_upto(last, &self.opts);
        let Some(l) = self.leader_mut() else { return };
        l.established = true;
        l.last_proposed = last;
        let epoch = l.epoch;
        info!(
            "server {} established epoch {epoch} at {last}",
            self.config.server_id.0
        );
        for (h, a) in applied {
            self.on_applied(now, &h, &a);
        }
        let Some(l) = self.leader_mut() else { return };
        let ready: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, v)| v.stage == Stage::NewLeaderAcked)
            .map(|(s, _)| *s)
            .collect();
        for s in &ready {
            if let Some(v) = l.learners.get_mut(s) {
                v.stage = Stage::UpToDate;
            }
        }
        let committed = self.log.last_applied();
        for s in ready {
            self.send_peer(s, &PeerMsg::UpToDate { epoch, committed });
        }
        self.stats.mode = if self.config.is_standalone() {
            ServerRole::Standalone
        } else {
            ServerRole::Leader
        };
    }

    /// Assigns the next zxid to a txn, logs it and sends it to the learners.
    pub(crate) fn propose(&mut self, now: Now, session: SessionId, cxid: i32, kind: TxnKind) {
        let Some(l) = self.leader_mut() else { return };
        assert!(
            l.established,
            "proposal before epoch {} is established",
            l.epoch
        );
        let mut zxid = Zxid(l.last_proposed.0 + 1);
        if zxid.epoch() != l.epoch {
            zxid = Zxid::new(l.epoch, 1);
        }
        assert!(
            zxid.counter() != 0,
            "zxid counter overflow at {zxid}: a new epoch is required"
        );
        l.last_proposed = zxid;
        let txn = Txn {
            zxid,
            time_ms: now.wall_ms,
            session,
            cxid,
            kind,
        };
        let followers: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, v)| !v.observer && v.stage >= Stage::Synced)
            .map(|(s, _)| *s)
            .collect();
        if !followers.is_empty() {
            let bytes = crate::peer::encode_proposal(&txn);
            self.stats.on_proposal_sent(bytes.len());
            for f in followers {
                self.outputs.push_back(crate::node::Output::SendPeer {
                    to: f,
                    bytes: bytes.clone(),
                });
            }
        }
        self.log_append(txn);
    }

    /// Commits, in order, every proposal a quorum has durable.
    pub(crate) fn try_commit(&mut self, now: Now) {
        let quorum = self.config.quorum();
        loop {
            let next = self.log.last_applied();
            let Some(l) = self.leader_mut() else { return };
            if !l.established || next >= l.last_proposed {
                return;
            }
            let Some(z) = self.log.next_after(next) else {
                return;
            };
            let l = match &self.role {
                crate::zab::Role::Leading(l) => l,
                _ => return,
            };
            let mut votes = usize::from(self.persisted_upto >= z);
            votes += l
                .learners
                .values()
                .filter(|v| !v.observer && v.stage >= Stage::NewLeaderAcked && v.acked >= z)
                .count();
            if self.canary(crate::canary::Canary::CommitWithMinority) {
                votes = votes.max(quorum);
            }
            if votes < quorum {
                return;
            }
            self.commit(now, z);
        }
    }

    pub(super) fn commit(&mut self, now: Now, z: Zxid) {
        let Some(l) = self.leader_mut() else { return };
        let mut followers = Vec::new();
        let mut observers = Vec::new();
        for (s, v) in &l.learners {
            if v.stage >= Stage::Synced {
                if v.observer {
                    observers.push(*s);
                } else {
                    followers.push(*s);
                }
            }
        }
        if !followers.is_empty() {
            let bytes = crate::peer::encode(&PeerMsg::Commit { zxid: z });
            for f in followers {
                self.outputs.push_back(crate::node::Output::SendPeer {
                    to: f,
                    bytes: bytes.clone(),
                });
            }
        }
        if !observers.is_empty() {
            if let Some(t) = self.log.entry(z).cloned() {
                let bytes = crate::peer::encode(&PeerMsg::Inform(t));
                for o in observers {
                    self.outputs.push_back(crate::node::Output::SendPeer {
                        to: o,
                        bytes: bytes.clone(),
                    });
                }
            }
        }
        for (h, applied) in self.log.apply_upto(z, &self.opts) {
            self.on_applied(now, &h, &applied);
        }
        self.release_syncs();
    }

    pub(super) fn release_syncs(&mut self) {
        let committed = self.log.last_applied();
        let Some(l) = self.leader_mut() else { return };
        let mut ready = Vec::new();
        l.sync_waiters.retain(|&(s, id, z)| {
            if z <= committed {
                ready.push((s, id));
                false
            } else {
                true
            }
        });
        for (s, id) in ready {
            self.send_peer(s, &PeerMsg::SyncDone { id });
        }
    }

    pub(crate) fn leader_on_ack(&mut self, now: Now, from: ServerId, zxid: Zxid) {
        let Some(l) = self.leader_mut() else { return };
        if zxid.epoch() == l.epoch && zxid > l.last_proposed {
            // Nobody can hold durably what was never proposed.
            let reason = format!("ACK of {zxid} beyond the last proposal {}", l.last_proposed);
            warn!("peer {}: {reason}; dropping the link", from.0);
            self.outputs
                .push_back(Output::ClosePeer { peer: from, reason });
            return;
        }
        if let Some(v) = l.learners.get_mut(&from) {
            v.last_heard = now.mono;
            if v.stage >= Stage::NewLeaderAcked && zxid > v.acked && zxid.epoch() == l.epoch {
                v.acked = zxid;
            }
        }
        self.try_commit(now);
    }

    pub(crate) fn leader_on_forward(
        &mut self,
        now: Now,
        from: ServerId,
        session: SessionId,
        cxid: i32,
        kind: TxnKind,
    ) {
        let Some(l) = self.leader_mut() else { return };
        if !l.established {
            return;
        }
        if let Some(v) = l.learners.get_mut(&from) {
            v.last_heard = now.mono;
        }
        match &kind {
            TxnKind::CloseSession => {
                l.closing.insert(session);
                l.expiry.remove(session);
            }
            TxnKind::CreateSession { timeout_ms } => {
                l.expiry.touch(now.mono, session, *timeout_ms);
            }
            _ => {
                l.expiry.touch_known(now.mono, session);
            }
        }
        self.propose(now, session, cxid, kind);
    }

    pub(crate) fn leader_on_sync_request(&mut self, now: Now, from: ServerId, id: u64) {
        let committed = self.log.last_applied();
        let Some(l) = self.leader_mut() else { return };
        if let Some(v) = l.learners.get_mut(&from) {
            v.last_heard = now.mono;
        }
        let upto = l.last_proposed;
        if upto <= committed {
            self.send_peer(from, &PeerMsg::SyncDone { id });
        } else {
            l.sync_waiters.push((from, id, upto));
        }
    }

    /// A learner asks whether a reconnecting client's session is live:
    /// it is if it exists and is not closing; a live one is touched.
    pub(crate) fn leader_on_revalidate(
        &mut self,
        now: Now,
        from: ServerId,
        id: u64,
        session: SessionId,
        timeout_ms: u32,
    ) {
        let exists = self.log.state().sessions.contains_key(&session);
        let Some(l) = self.leader_mut() else { return };
        // Only a learner this leader has brought up to date is answered: a
        // server still serving an older epoch of this same server (the link
        // never reset) must hear nothing, so that it gives up (syncLimit)
        // instead of being kept alive by the answers.
        let Some(v) = l.learners.get_mut(&from) else {
            return;
        };
        if v.stage != Stage::UpToDate {
            return;
        }
        v.last_heard = now.mono;
        let valid = exists && !l.closing.contains(&session);
        if valid {
            l.expiry.touch(now.mono, session, timeout_ms);
        }
        self.send_peer(from, &PeerMsg::Revalidated { id, valid });
    }

    pub(crate) fn leader_on_ping_reply(
        &mut self,
        now: Now,
        from: ServerId,
        touched: Vec<(SessionId, u32)>,
    ) {
        let Some(l) = self.leader_mut() else { return };
        if let Some(v) = l.learners.get_mut(&from) {
            v.last_heard = now.mono;
        }
        for (s, t) in touched {
            if !l.closing.contains(&s) {
                l.expiry.touch(now.mono, s, t);
            }
        }
    }

    pub(crate) fn leader_on_disconnected(&mut self, peer: ServerId) {
        let Some(l) = self.leader_mut() else { return };
        if l.learners.remove(&peer).is_some() {
            info!("learner {} disconnected", peer.0);
        }
        l.sync_waiters.retain(|w| w.0 != peer);
    }

    pub(crate) fn leader_on_timeout(&mut self, now: Now) {
        let tick = self.config.tick_time_ms as u64;
        let sync_ms = tick * self.config.sync_limit_ticks as u64;
        let quorum = self.config.quorum();
        let standalone = self.config.is_standalone();
        let Some(l) = self.leader_mut() else { return };
        if !l.established {
            if !standalone && now.mono >= l.establish_by {
                warn!("no quorum synced within initLimit; back to election");
                self.become_looking(now);
            }
            return;
        }
        // Session expiry.
        let expired = l.expiry.expired(now.mono);
        let mut to_close = Vec::new();
        for s in expired {
            if l.closing.insert(s) {
                to_close.push(s);
            }
        }
        for s in to_close {
            if self.log.state().sessions.contains_key(&s) {
                info!("session {s} expired");
                self.propose(now, s, crate::node::INTERNAL_CXID, TxnKind::CloseSession);
            } else if let Some(l) = self.leader_mut() {
                l.closing.remove(&s);
            }
        }
        let reap_ms = self.config.container_check_interval_ms;
        let Some(l) = self.leader_mut() else { return };
        if now.mono >= l.next_reap {
            l.next_reap = now.mono.add_millis(reap_ms);
            self.reap(now);
        }
        if standalone {
            return;
        }
        let Some(l) = self.leader_mut() else { return };
        if now.mono >= l.next_ping {
            l.next_ping = now.mono.add_millis((tick / 2).max(1));
            let alive = l
                .learners
                .values()
                .filter(|v| {
                    !v.observer
                        && v.stage >= Stage::NewLeaderAcked
                        && now.mono.millis_since(v.last_heard) < sync_ms
                })
                .count();
            if alive + 1 < quorum {
                warn!("lost the quorum of followers; stepping down");
                self.become_looking(now);
                return;
            }
            let targets: Vec<ServerId> = match &self.role {
                crate::zab::Role::Leading(l) => l.learners.keys().copied().collect(),
                _ => Vec::new(),
            };
            let bytes = crate::peer::encode(&PeerMsg::Ping);
            for t in targets {
                self.outputs.push_back(crate::node::Output::SendPeer {
                    to: t,
                    bytes: bytes.clone(),
                });
            }
        }
    }

    pub(crate) fn leader_deadline(&self) -> Option<Instant> {
        let crate::zab::Role::Leading(l) = &self.role else {
            return None;
        };
        if !l.established {
            return (!l.standalone).then_some(l.establish_by);
        }
        let mut at = l.expiry.next_deadline();
        let tree = &self.log.state().tree;
        if tree.has_reapable() {
            at = Some(at.map_or(l.next_reap, |a| a.min(l.next_reap)));
        }
        if !l.standalone {
            at = Some(at.map_or(l.next_ping, |a| a.min(l.next_ping)));
        }
        at
    }

    /// Proposes deleteContainer for empty used containers and expired TTL
    /// nodes (ZooKeeper's ContainerManager).
    pub(super) fn reap(&mut self, now: Now) {
        let mut victims = Vec::new();
        let tree = &self.log.state().tree;
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
                    if n.children.is_empty() && now.wall_ms - n.mtime > ttl {
                        victims.push(p.to_string());
                    }
                }
            }
        }
        // ZooKeeper's ContainerManager spaces deletions to maxPerMinute;
        // here a check deletes its share of the minute and leaves the rest
        // to the next check.
        let per_check = (self.config.container_max_per_minute as u128
            * self.config.container_check_interval_ms as u128
            / 60_000)
            .max(1);
        victims.truncate(per_check.min(usize::MAX as u128) as usize);
        for path in victims {
            self.propose(
                now,
                SessionId(0),
                crate::node::INTERNAL_CXID,
                TxnKind::Write {
                    request: crate::proto::Request::DeleteContainer { path },
                    auth: vec![],
                },
            );
        }
    }
}
