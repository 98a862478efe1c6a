//! Fast leader election (ZooKeeper's FastLeaderElection, in rounds).
//!
//! A looking voter proposes itself, adopts any better proposal it hears
//! (ordered by currentEpoch, last logged zxid, server id), and broadcasts
//! every change. Once a quorum of voters in its round agrees with its
//! proposal it waits `election_finalize_ms` for a better one, then decides.
//! A server that is following or leading answers a looking peer with its
//! current leader, so a restarted server (or an observer) joins an
//! established leader without disturbing it: it follows L once a quorum of
//! voters report L and L itself reports leading.

use crate::config::Config;
use crate::ids::{Instant, ServerId, Zxid};
use crate::peer::{PeerState, Vote};
use crate::zab::quorum::QuorumVerifier;
use std::collections::BTreeMap;

/// The outcome of an election for this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Lead,
    Follow(ServerId),
    Observe(ServerId),
}

/// Vote resends back off up to this.
pub const RESEND_MS_MAX: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct Election {
    pub round: u64,
    /// This server's own candidacy: itself with its own epoch and zxid.
    own: Vote,
    /// The proposal this server currently backs.
    pub vote: Vote,
    /// Looking voters' proposals in this round (this server included).
    recv: BTreeMap<ServerId, Vote>,
    /// What following/leading servers report.
    out_of_election: BTreeMap<ServerId, Vote>,
    settle_at: Option<Instant>,
    next_resend: Instant,
    resend_ms: u64,
    /// This server's vote counts for nobody: it is an observer, or a
    /// voter repairing lost records. It only joins an established leader.
    abstain: bool,
    /// Whether it is a voter that abstains (its votes say `Repairing`).
    repairing: bool,
    /// Who may decide (`zab::quorum`, the one quorum rule).
    quorum: QuorumVerifier,
}

/// What the election wants done.
#[derive(Debug, Default)]
pub struct Step {
    pub send: Vec<(ServerId, Vote)>,
    pub decided: Option<(Decision, Vote)>,
    /// With a decision: the round the chosen leader leads in, as far as
    /// this server knows (the round of its own leading report, or this
    /// round when it won among this round's votes). A later vote of the
    /// leader's from a higher round that is not a leading one shows it
    /// gave that leadership up.
    pub leader_round: u64,
}

impl Election {
    pub fn start(
        cfg: &Config,
        round: u64,
        last_logged: Zxid,
        current_epoch: u32,
        repairing: bool,
        now: Instant,
        first_resend_ms: u64,
    ) -> (Election, Step) {
        // A server that votes in no configuration it knows (an observer, or
        // one removed or not yet added) only joins an established leader.
        let quorum = QuorumVerifier::of(cfg);
        let voter = quorum.is_voter(cfg.server_id);
        let repairing = repairing && voter;
        let me = cfg.server_id;
        let own = Vote {
            leader: me,
            zxid: last_logged,
            peer_epoch: current_epoch,
            round,
            state: if repairing {
                PeerState::Repairing
            } else {
                PeerState::Looking
            },
        };
        let mut e = Election {
            round,
            own,
            vote: own,
            recv: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            settle_at: None,
            next_resend: now.add_millis(first_resend_ms),
            resend_ms: first_resend_ms.max(1),
            abstain: !voter || repairing,
            repairing,
            quorum,
        };
        if !e.abstain {
            e.recv.insert(me, own);
            // A lone voter (observers only besides it) is its own quorum.
            if e.agree(me) {
                e.settle_at = Some(now.add_millis(cfg.election_finalize_ms));
            }
        }
        let step = Step {
            send: e.broadcast(cfg),
            ..Step::default()
        };
        (e, step)
    }

    /// The state this server's own looking votes carry.
    pub fn looking_state(&self) -> PeerState {
        if self.repairing {
            PeerState::Repairing
        } else {
            PeerState::Looking
        }
    }

    /// The configuration changed while looking (a peer reported a pending
    /// reconfig committed): decide by its voters from now on.
    /// Whether it still votes follows from the new configuration too: a
    /// server the change made an observer (or removed) only joins an
    /// established leader, and one it made a voter proposes itself.
    pub(crate) fn set_quorum(&mut self, cfg: &Config) {
        self.quorum = QuorumVerifier::of(cfg);
        let me = cfg.server_id;
        let abstain = !self.quorum.is_voter(me) || self.repairing;
        if abstain != self.abstain {
            self.abstain = abstain;
            if abstain {
                self.recv.remove(&me);
                self.settle_at = None;
            } else {
                self.recv.insert(me, self.current());
            }
        }
    }

    /// This server's vote in the current round, as it sends it.
    pub(crate) fn current(&self) -> Vote {
        Vote {
            round: self.round,
            state: self.looking_state(),
            ..self.vote
        }
    }

    fn broadcast(&self, cfg: &Config) -> Vec<(ServerId, Vote)> {
        cfg.peers().map(|p| (p, self.current())).collect()
    }

    /// Whether a quorum of voters in this round backs `leader`.
    fn agree(&self, leader: ServerId) -> bool {
        let backing = self
            .recv
            .iter()
            .filter(|(_, v)| v.leader == leader)
            .map(|(s, _)| *s);
        self.quorum.contains_quorum(backing)
    }

    pub fn on_vote(&mut self, cfg: &Config, now: Instant, from: ServerId, n: Vote) -> Step {
        let mut step = Step::default();
        let from_voter = self.quorum.is_voter(from);
        if matches!(n.state, PeerState::Looking | PeerState::Repairing) {
            if !from_voter || n.state == PeerState::Repairing || self.abstain {
                // Observers' and repairing voters' proposals never count;
                // tell them what we back.
                if !self.abstain {
                    step.send.push((from, self.current()));
                }
                return step;
            }
            if n.round > self.round {
                self.round = n.round;
                self.recv.clear();
                self.vote = if n.beats(&self.own) { n } else { self.own };
                step.send = self.broadcast(cfg);
            } else if n.round < self.round {
                step.send.push((from, self.current()));
                return step;
            } else if n.beats(&self.vote) {
                self.vote = n;
                step.send = self.broadcast(cfg);
            }
            self.recv.insert(from, n);
            self.recv.insert(cfg.server_id, self.current());
            if self.agree(self.vote.leader) {
                if self.settle_at.is_none() || !step.send.is_empty() {
                    self.settle_at = Some(now.add_millis(cfg.election_finalize_ms));
                }
            } else {
                self.settle_at = None;
            }
            return step;
        }
        // A server outside the election reports its leader.
        if n.round == self.round && from_voter {
            self.recv.insert(from, n);
        }
        self.out_of_election.insert(from, n);
        let leader = n.leader;
        let reporting = self.quorum.contains_quorum(
            self.out_of_election
                .iter()
                .filter(|(_, v)| v.leader == leader)
                .map(|(s, _)| *s),
        );
        let leader_report = self
            .out_of_election
            .get(&leader)
            .filter(|v| v.state == PeerState::Leading && v.leader == leader)
            .map(|v| v.round);
        let leader_says_leading = leader_report.is_some();
        // As ZooKeeper does, reports from this round count together with
        // the looking votes of this round (this server's own included): a
        // lone looker whose vote already names the leader joins it.
        let in_round = n.round == self.round && self.agree(leader);
        if leader_says_leading && (reporting || in_round) && leader != cfg.server_id {
            self.round = self.round.max(n.round);
            let decision = if self.abstain {
                Decision::Observe(leader)
            } else {
                Decision::Follow(leader)
            };
            step.decided = Some((decision, n));
            step.leader_round = leader_report.unwrap_or(self.round);
        }
        step
    }

    pub fn deadline(&self) -> Instant {
        match self.settle_at {
            Some(s) => s.min(self.next_resend),
            None => self.next_resend,
        }
    }

    pub fn on_timeout(&mut self, cfg: &Config, now: Instant) -> Step {
        let mut step = Step::default();
        if let Some(at) = self.settle_at {
            if now >= at && !self.agree(self.vote.leader) {
                // Support fell below a quorum since (a voter went on to
                // report another leader): wait for votes again, not spin.
                self.settle_at = None;
            } else if now >= at {
                let decision = if self.vote.leader == cfg.server_id {
                    Decision::Lead
                } else if self.abstain {
                    Decision::Observe(self.vote.leader)
                } else {
                    Decision::Follow(self.vote.leader)
                };
                step.decided = Some((decision, self.vote));
                step.leader_round = self.round;
                return step;
            }
        }
        if now >= self.next_resend {
            self.resend_ms = (self.resend_ms * 2).min(RESEND_MS_MAX);
            self.next_resend = now.add_millis(self.resend_ms);
            step.send = self.broadcast(cfg);
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three voters exchange votes by hand; all back the highest zxid.
    #[test]
    fn three_voters_agree_on_the_most_up_to_date() {
        let cfgs: Vec<Config> = (1..=3)
            .map(|i| Config::ensemble(i, &[1, 2, 3], &[]))
            .collect();
        let zxids = [Zxid(5), Zxid(9), Zxid(7)];
        let now = Instant::from_millis(0);
        let mut es: Vec<Election> = Vec::new();
        let mut queue: Vec<(ServerId, ServerId, Vote)> = Vec::new();
        for (i, c) in cfgs.iter().enumerate() {
            let (e, step) = Election::start(c, 1, zxids[i], 1, false, now, 100);
            for (to, v) in step.send {
                queue.push((c.server_id, to, v));
            }
            es.push(e);
        }
        while let Some((from, to, v)) = queue.pop() {
            let i = (to.0 - 1) as usize;
            let step = es[i].on_vote(&cfgs[i], now, from, v);
            for (t, v) in step.send {
                queue.push((to, t, v));
            }
        }
        let later = now.add_millis(1000);
        let decisions: Vec<_> = es
            .iter_mut()
            .zip(&cfgs)
            .map(|(e, c)| e.on_timeout(c, later).decided.map(|d| d.0))
            .collect();
        assert_eq!(
            decisions,
            vec![
                Some(Decision::Follow(ServerId(2))),
                Some(Decision::Lead),
                Some(Decision::Follow(ServerId(2)))
            ]
        );
    }

    #[test]
    fn a_late_voter_joins_the_established_leader() {
        let c = Config::ensemble(3, &[1, 2, 3], &[]);
        let now = Instant::from_millis(0);
        let (mut e, _) = Election::start(&c, 1, Zxid(100), 9, false, now, 100);
        let lead = Vote {
            leader: ServerId(1),
            zxid: Zxid(5),
            peer_epoch: 2,
            round: 4,
            state: PeerState::Leading,
        };
        let follow = Vote {
            state: PeerState::Following,
            ..lead
        };
        assert!(e.on_vote(&c, now, ServerId(2), follow).decided.is_none());
        let step = e.on_vote(&c, now, ServerId(1), lead);
        assert_eq!(
            step.decided.map(|d| d.0),
            Some(Decision::Follow(ServerId(1)))
        );
    }
}
