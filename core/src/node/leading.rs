//! Runs the leader's steps: `zab::leader::Leader` decides, this file
//! carries out its [`Action`]s on the server (messages, log, epochs,
//! persistence, applying, role changes).

use super::*;
use crate::ids::*;
use crate::peer::{PeerMsg, SyncMode};
use crate::txn::TxnKind;
use crate::zab::leader::{self, Action, Ctx, Leader};
use tracing::info;

impl Node {
    pub(crate) fn become_leader(&mut self, now: Now) {
        let leader = self.new_leader(now);
        self.role = Role::Leading(leader);
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
            self.log.last_applied(),
            sessions,
            now.mono,
        )
    }

    /// The first steps of a leader just installed as the role.
    pub(super) fn start_leading(&mut self, now: Now) {
        info!(
            "server {} leading (standalone: {}), last logged {}",
            self.config.server_id.0,
            self.config.is_standalone(),
            self.log.last_logged()
        );
        self.with_leader(now, |l, cx| l.start(cx));
    }

    pub(super) fn leader_mut(&mut self) -> Option<&mut Leader> {
        match &mut self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    /// Runs one leader step, if leading: `f` decides with a view of the
    /// server, then its actions are carried out in order.
    pub(super) fn with_leader(
        &mut self,
        now: Now,
        f: impl FnOnce(&mut Leader, &Ctx) -> leader::Step,
    ) {
        let canary = self.planted();
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        let cx = Ctx {
            cfg: &self.config,
            log: &self.log,
            now,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            persisted_upto: self.durable.upto(),
            canary,
        };
        let step = f(l, &cx);
        self.run_leader_step(now, step);
    }

    fn run_leader_step(&mut self, now: Now, step: leader::Step) {
        for a in step {
            match a {
                Action::Send(to, msg) => self.send_peer(to, &msg),
                Action::SendAll(to, msg) => {
                    let bytes = peer::encode(&msg);
                    for t in to {
                        self.outputs.push_back(Output::SendPeer {
                            to: t,
                            bytes: bytes.clone(),
                        });
                    }
                }
                Action::Sync(to, msg) => {
                    match &msg {
                        PeerMsg::Sync {
                            mode: SyncMode::Snap { .. },
                            ..
                        } => self.figures.on_sync(true),
                        _ => self.figures.on_sync(false),
                    }
                    self.send_peer(to, &msg);
                }
                Action::Propose(txn, followers) => {
                    if !followers.is_empty() {
                        let bytes = peer::encode_proposal(&txn);
                        self.figures.on_proposal_sent(bytes.len());
                        for f in followers {
                            self.outputs.push_back(Output::SendPeer {
                                to: f,
                                bytes: bytes.clone(),
                            });
                        }
                    }
                    self.log_append(txn);
                }
                Action::Apply(upto) => {
                    for (h, applied) in self.log.apply_upto(upto, &self.opts) {
                        self.on_applied(now, &h, &applied);
                    }
                    // A leader applies only what a quorum committed.
                    self.log.confirm(upto);
                }
                Action::AcceptEpoch(epoch) => {
                    self.accepted_epoch = epoch;
                    let t = self.persist_epochs();
                    self.leader_mut().expect("leading").epoch_issued(t);
                }
                Action::NewEpoch(epoch) => {
                    self.current_epoch = epoch;
                    let t = self.persist_epochs();
                    self.leader_mut().expect("leading").newleader_issued(t);
                }
                Action::ClosePeer(peer, reason) => {
                    self.outputs.push_back(Output::ClosePeer { peer, reason })
                }
                // The mode shown is read from the role (`Node::stats`).
                Action::Serving => {}
                Action::CommitQuorum(from, upto, ids) => self.note_commit_quorum(from, upto, ids),
                Action::Look => {
                    self.become_looking(now);
                    return;
                }
            }
        }
    }

    /// A message a learner sends its leader (ignored unless leading).
    pub(crate) fn leader_on_message(&mut self, now: Now, from: ServerId, msg: PeerMsg) {
        self.with_leader(now, |l, cx| l.on_message(cx, from, msg));
    }

    pub(crate) fn leader_on_persisted(&mut self, now: Now, done: PersistToken) {
        self.with_leader(now, |l, cx| l.on_persisted(cx, done));
    }

    /// A write of one of this server's clients, while leading.
    pub(super) fn leader_submit(&mut self, now: Now, session: SessionId, cxid: i32, kind: TxnKind) {
        self.with_leader(now, |l, cx| l.submit(cx, session, cxid, kind));
    }

    pub(crate) fn leader_on_disconnected(&mut self, peer: ServerId) {
        if let Some(l) = self.leader_mut() {
            l.on_disconnected(peer);
        }
    }

    pub(crate) fn leader_on_timeout(&mut self, now: Now) {
        self.with_leader(now, |l, cx| l.on_timeout(cx));
    }

    pub(crate) fn leader_deadline(&self) -> Option<Instant> {
        match &self.role {
            Role::Leading(l) => l.deadline(&self.log),
            _ => None,
        }
    }
}
