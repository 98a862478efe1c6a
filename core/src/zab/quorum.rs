//! The quorum rule: which sets of servers may decide for the ensemble.
//!
//! Every decision that needs "a quorum" asks
//! [`QuorumVerifier::contains_quorum`] and nothing else: the election's
//! (a leader backed in this round, or reported by the servers outside the
//! election) and the leader's (choosing the epoch, starting NEWLEADER,
//! being established, committing a proposal, staying leader). A change of
//! configuration changes the rule in one place: the verifier a `Leader`
//! holds (`Leader::quorum`), and the one an `Election` builds from its
//! `Config`. Today the rule is
//! ZooKeeper's default (`QuorumMaj`): a strict majority of the voters.
//! Observers never count, nor does a server outside the voters.

use crate::config::Config;
use crate::ids::ServerId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVerifier {
    voters: BTreeSet<ServerId>,
}

impl QuorumVerifier {
    /// The voters of `cfg`; a standalone server (no voters listed) is its
    /// own single voter.
    pub fn of(cfg: &Config) -> QuorumVerifier {
        let mut voters = cfg.voters.clone();
        if voters.is_empty() {
            voters.insert(cfg.server_id);
        }
        QuorumVerifier { voters }
    }

    /// Voters needed for a decision.
    pub fn threshold(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn is_voter(&self, s: ServerId) -> bool {
        self.voters.contains(&s)
    }

    /// Whether these servers (each named once) include a quorum of voters.
    pub fn contains_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let need = self.threshold();
        let mut n = 0;
        for s in ids {
            if self.voters.contains(&s) {
                n += 1;
                if n >= need {
                    return true;
                }
            }
        }
        false
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
    fn standalone_is_its_own_quorum() {
        let q = QuorumVerifier::of(&Config::standalone(7));
        assert!(q.contains_quorum(ids(&[7])));
        assert!(!q.contains_quorum(ids(&[])));
        let q = QuorumVerifier::of(&Config::ensemble(1, &[1], &[2]));
        assert!(q.contains_quorum(ids(&[1])));
        assert!(!q.contains_quorum(ids(&[2])));
    }
}
