//! Dynamic reconfiguration (ZooKeeper 3.5+): the leader's checks of a
//! reconfig request, and how a server keeps its configuration in force.
//!
//! The configuration lives in the replicated state, as ZooKeeper keeps it:
//! the text of `/zookeeper/config`. A reconfig is a txn like any write; the
//! leader decides its outcome when it proposes it (`zab::leader::reconfig`)
//! and the new configuration's version is the txn's zxid.
//!
//! Which configuration decides (`refresh_membership`, after every step):
//! the one in force is the newest among the txns this server knows
//! committed (`Log::confirmed`); a newer one seen in its log but not known
//! committed is pending, and while it is, every quorum needs a majority of
//! both (`membership::Quorums`): the reconfig is committed by the old and
//! the new configuration together and activated when applied. On
//! activation a server whose role changed (a leader no longer a voter, a
//! learner whose kind changed, a removed member) leaves its role and goes
//! looking, as ZooKeeper's servers do; a leader that removed itself hands
//! over that way: its followers hear its looking vote and elect at once.

use super::*;
use crate::membership::Membership;

/// The static configuration's members (from zoo.cfg), used while the
/// replicated state keeps no member list (standalone, or tests that give
/// none).
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticMembers {
    voters: std::collections::BTreeSet<ServerId>,
    observers: std::collections::BTreeSet<ServerId>,
}

impl StaticMembers {
    pub(crate) fn of(config: &Config) -> StaticMembers {
        StaticMembers {
            voters: config.voters.clone(),
            observers: config.observers.clone(),
        }
    }
}

/// The configurations a log decides by: in force, and pending if newer.
/// `planted` is the configured canary (honoured with the feature only).
/// Borrowed from the log: asked after every step, and nearly always the
/// same as last time, so copies are made only when they changed.
pub(crate) fn configs_of(
    log: &Log,
    planted: Option<Canary>,
    peer_confirmed: Zxid,
) -> (&[u8], Option<&[u8]>) {
    let (cz, current) = log.config_at(log.confirmed().max(peer_confirmed));
    let (sz, seen) = log.config_at(log.last_logged());
    let pending = (sz != cz && seen != current).then_some(seen);
    if cfg!(feature = "canary") {
        match planted {
            Some(Canary::ActivateBeforeCommit) => return (seen, None),
            Some(Canary::OldVotesForNew) => return (current, None),
            _ => {}
        }
    }
    (current, pending)
}

/// Sets the config's members from the texts (empty: the static members).
/// Returns the version of the configuration in force.
pub(crate) fn apply_configs(
    config: &mut Config,
    fixed: &StaticMembers,
    current: &[u8],
    pending: Option<&[u8]>,
) -> u64 {
    let parse = |t: &[u8]| -> Option<Membership> {
        if t.is_empty() {
            return None;
        }
        match std::str::from_utf8(t).map(Membership::parse) {
            Ok(Ok(m)) => Some(m),
            _ => {
                warn!("unreadable member list {:?}", String::from_utf8_lossy(t));
                None
            }
        }
    };
    if fixed.observers.is_empty() && fixed.voters.len() <= 1 && !config.reconfig_enabled {
        // Standalone: there is no ensemble to reconfigure, and a member
        // list in the state (a snapshot taken from an ensemble, or ZooKeeper's
        // own /zookeeper/config) is not this server's. ZooKeeper's standalone
        // server ignores it too.
        config.voters = fixed.voters.clone();
        config.observers = fixed.observers.clone();
        config.next_voters = None;
        config.next_observers = Default::default();
        return 0;
    }
    let (version, voters, observers) = match parse(current) {
        Some(m) => (m.version, m.voters(), m.observers()),
        None => (0, fixed.voters.clone(), fixed.observers.clone()),
    };
    config.voters = voters;
    config.observers = observers;
    match pending.and_then(parse) {
        Some(m) => {
            config.next_voters = Some(m.voters());
            config.next_observers = m.observers();
        }
        None => {
            config.next_voters = None;
            config.next_observers = Default::default();
        }
    }
    version
}

impl Node {
    /// Brings `config`'s members up to the log (see the module header) and
    /// leaves a role the new configuration in force does not allow.
    pub(crate) fn refresh_membership(&mut self, now: Now) {
        let (current, pending) =
            configs_of(&self.log, self.config.canary, self.peer_confirmed_config);
        if self.membership_texts.0 == current && self.membership_texts.1.as_deref() == pending {
            return;
        }
        let (current, pending) = (current.to_vec(), pending.map(<[u8]>::to_vec));
        let version = apply_configs(
            &mut self.config,
            &self.static_members,
            &current,
            pending.as_deref(),
        );
        let activated = version > self.config_version;
        if activated {
            info!(
                "server {}: configuration {version:x} in force (voters {:?}, observers {:?})",
                self.config.server_id.0, self.config.voters, self.config.observers
            );
            self.outputs.push_back(Output::ConfigActivated {
                version,
                text: String::from_utf8_lossy(&current).into_owned(),
            });
        }
        self.config_version = version;
        self.membership_texts = (current, pending);
        match &mut self.role {
            Role::Leading(l) => l.quorum = crate::zab::quorum::QuorumVerifier::of(&self.config),
            Role::Looking(e) => e.set_quorum(&self.config),
            Role::Learning(_) => {}
        }
        if activated && self.role_left_by_reconfig() {
            if let Role::Leading(l) = &self.role {
                // Hand over: the followers' links are dropped, so they
                // elect among the new configuration at once instead of
                // waiting out syncLimit.
                let learners: Vec<ServerId> = l.learners.keys().copied().collect();
                for peer in learners {
                    self.outputs.push_back(Output::ClosePeer {
                        peer,
                        reason: format!(
                            "leaving the lead: not a voter of configuration {version:x}"
                        ),
                    });
                }
            }
            self.become_looking(now);
        }
    }

    /// Whether the configuration just activated takes this server out of
    /// the role it holds.
    fn role_left_by_reconfig(&self) -> bool {
        let me = self.config.server_id;
        match &self.role {
            Role::Leading(_) => {
                let out = !self.config.voters.contains(&me);
                if out {
                    info!("server {}: no longer a voter; leaving the lead", me.0);
                }
                out
            }
            Role::Learning(l) => {
                let observer = self.config.observers.contains(&me);
                let member = observer || self.config.voters.contains(&me);
                let out = !member || l.observer != observer;
                if out {
                    info!(
                        "server {}: its role changed in the new configuration; rejoining",
                        me.0
                    );
                }
                out
            }
            Role::Looking(_) => false,
        }
    }
}

impl Node {
    /// Notes the servers whose votes committed `from..=upto`, when the
    /// configuration asks for it (the simulator checks each against the
    /// configuration in force).
    pub(crate) fn note_commit_quorum(
        &mut self,
        from: Zxid,
        upto: Zxid,
        ackers: std::collections::BTreeSet<ServerId>,
    ) {
        if self.config.record_commit_quorums && from <= upto {
            self.commit_quorums.push((from, upto, ackers));
        }
    }

    /// The commit quorums noted since the last call (see
    /// `Config::record_commit_quorums`): (first zxid, last zxid, voters).
    pub fn take_commit_quorums(
        &mut self,
    ) -> Vec<(Zxid, Zxid, std::collections::BTreeSet<ServerId>)> {
        std::mem::take(&mut self.commit_quorums)
    }
}

impl Node {
    /// A vote, followed (when this server's configuration was made by a
    /// reconfig) by word of that reconfig's commit.
    pub(crate) fn send_vote(&mut self, to: ServerId, v: Vote) {
        self.send_peer(to, &PeerMsg::Vote(v));
        if self.config_version > 0 {
            let version = self.config_version;
            self.send_peer(to, &PeerMsg::ConfigCommitted { version });
        }
    }

    /// A peer says reconfig `version` is committed: if this server's log
    /// holds exactly that reconfig as pending (the same zxid is the same
    /// txn: one leader per epoch), it is in force here too. A later
    /// version says nothing of ours (ours may be an abandoned proposal).
    pub(crate) fn on_config_committed(&mut self, now: Now, version: u64) {
        let z = Zxid(version);
        if z <= self.peer_confirmed_config || z <= self.log.confirmed() {
            return;
        }
        let (pending_zxid, _) = self.log.config_at(self.log.last_logged());
        let holds = self
            .log
            .entry(z)
            .is_some_and(|t| matches!(t.kind, crate::txn::TxnKind::Reconfig { outcome: Ok(_) }));
        if holds && pending_zxid >= z {
            info!("reconfig {z} reported committed by a peer");
            self.peer_confirmed_config = z;
            self.refresh_membership(now);
        }
    }
}
