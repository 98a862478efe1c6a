//! The quorum rule: which sets of servers may decide for the ensemble.
//!
//! Every decision that needs "a quorum" asks
//! [`QuorumVerifier::contains_quorum`] and nothing else: the election's
//! (a leader backed in this round, or reported by the servers outside the
//! election) and the leader's (choosing the epoch, starting NEWLEADER,
//! being established, committing a proposal, staying leader). A change of
//! configuration changes the rule in one place: the verifier a `Leader`
//! holds (`Leader::quorum`), and the one an `Election` builds from its
//! `Config`. The rule is
//! ZooKeeper's default (`QuorumMaj`): a strict majority of the voters.
//! Observers never count, nor does a server outside the voters. While a
//! reconfiguration is pending (proposed, not known committed) a decision
//! needs a majority of the new configuration's voters as well (ZooKeeper's
//! pair of verifiers, the committed and the last seen): a reconfig is so
//! committed by the old and the new configuration together.

use crate::config::Config;
use crate::ids::ServerId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVerifier {
    voters: BTreeSet<ServerId>,
    /// The pending configuration's voters, if one is pending.
    next: Option<BTreeSet<ServerId>>,
}

impl QuorumVerifier {
    /// The voters of `cfg`; a standalone server (no voters listed) is its
    /// own single voter.
    pub fn of(cfg: &Config) -> QuorumVerifier {
        let mut voters = cfg.voters.clone();
        if voters.is_empty() {
            voters.insert(cfg.server_id);
        }
        QuorumVerifier {
            voters,
            next: cfg.next_voters.clone().filter(|n| !n.is_empty()),
        }
    }

    /// Voters needed for a decision.
    pub fn threshold(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether `s` votes in the configuration in force or the pending one.
    pub fn is_voter(&self, s: ServerId) -> bool {
        self.voters.contains(&s) || self.next.as_ref().is_some_and(|n| n.contains(&s))
    }

    /// Whether these servers (each named once) include a quorum of voters
    /// (of both configurations while one is pending).
    pub fn contains_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let (mut now, mut next) = (0, 0);
        for s in ids {
            now += usize::from(self.voters.contains(&s));
            next += usize::from(self.next.as_ref().is_some_and(|n| n.contains(&s)));
        }
        now >= self.threshold() && self.next.as_ref().is_none_or(|n| next > n.len() / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<ServerId> {
        v.iter().map(|&s| ServerId(s)).collect()
    }

    #[test]
    fn majority_of_voters_only() {
        let q = QuorumVerifier::of(&Config::ensemble(1, &[1, 2, 3], &[4, 5]));
        assert_eq!(q.threshold(), 2);
        assert!(q.contains_quorum(ids(&[1, 3])));
        assert!(!q.contains_quorum(ids(&[1])));
        // Observers and strangers never make a quorum.
        assert!(!q.contains_quorum(ids(&[1, 4, 5, 9])));
        let q = QuorumVerifier::of(&Config::ensemble(1, &[1, 2, 3, 4], &[]));
        assert!(!q.contains_quorum(ids(&[1, 2])));
        assert!(q.contains_quorum(ids(&[1, 2, 4])));
    }

    #[test]
    fn a_pending_configuration_needs_both_majorities() {
        let mut cfg = Config::ensemble(1, &[1, 2, 3], &[]);
        cfg.next_voters = Some(ids(&[3, 4, 5]).into_iter().collect());
        let q = QuorumVerifier::of(&cfg);
        // Old majority only, new majority only: neither decides.
        assert!(!q.contains_quorum(ids(&[1, 2])));
        assert!(!q.contains_quorum(ids(&[3, 4, 5])));
        assert!(q.contains_quorum(ids(&[2, 3, 4])));
        assert!(q.is_voter(ServerId(5)));
    }

    #[test]
    fn standalone_is_its_own_quorum() {
        let q = QuorumVerifier::of(&Config::standalone(7));
        assert!(q.contains_quorum(ids(&[7])));
        assert!(!q.contains_quorum(ids(&[])));
        let q = QuorumVerifier::of(&Config::ensemble(1, &[1], &[2]));
        assert!(q.contains_quorum(ids(&[1])));
        assert!(!q.contains_quorum(ids(&[2])));
    }
}
