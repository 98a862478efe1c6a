//! Session expiry, owned by the leader (or the standalone server), tracked
//! in deadline buckets of one tick like ZooKeeper's ExpiryQueue: a session
//! touched at `now` expires at the first tick boundary after
//! `now + timeout`. Also the session-id generator and the password scheme
//! every server of an ensemble can validate.

use crate::ids::{Instant, SessionId};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Shared by every server, so any of them can validate a password.
const PASSWORD_SECRET: u64 = 0xB341_5C00_5EED_0001;
pub const PASSWORD_LEN: usize = 16;

/// The password of a session: a keyed function of its id.
pub fn password(session: SessionId) -> [u8; PASSWORD_LEN] {
    let mut rng = ChaCha8Rng::seed_from_u64(session.0 as u64 ^ PASSWORD_SECRET);
    let mut out = [0u8; PASSWORD_LEN];
    rng.fill_bytes(&mut out);
    out
}

/// Whether `passwd` opens `session`: Paddock's password, or the one Apache
/// ZooKeeper issued, so that a client that held a session on ZooKeeper
/// resumes it after `paddock import`. Both are fixed functions of the id,
/// as in ZooKeeper: the password keeps one client from resuming another's
/// session by mistake, it is no secret.
pub fn password_valid(session: SessionId, passwd: &[u8]) -> bool {
    passwd == password(session) || passwd == crate::zk::password::zookeeper_password(session)
}

/// The first session id of a server: its id in the top byte, the start
/// time below it (ZooKeeper's `initializeNextSessionId`).
pub fn first_session_id(server_id: u64, wall_ms: i64) -> i64 {
    let base = ((wall_ms << 24) as u64 >> 8) as i64;
    let id = base | ((server_id as i64) << 56);
    if id == i64::MIN {
        id + 1
    } else {
        id
    }
}

#[derive(Debug)]
pub struct ExpiryQueue {
    tick_ms: u64,
    /// bucket deadline (ms of monotonic time) -> sessions.
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
    /// Lookup only, never iterated into an output.
    deadline_of: HashMap<SessionId, (u64, u32)>,
}

impl ExpiryQueue {
    pub fn new(tick_ms: u32) -> ExpiryQueue {
        ExpiryQueue {
            tick_ms: tick_ms.max(1) as u64,
            buckets: BTreeMap::new(),
            deadline_of: HashMap::new(),
        }
    }

    fn bucket(&self, now: Instant, timeout_ms: u32) -> u64 {
        let at = now.as_millis() + timeout_ms as u64;
        (at / self.tick_ms + 1) * self.tick_ms
    }

    /// Starts tracking or refreshes a session.
    pub fn touch(&mut self, now: Instant, session: SessionId, timeout_ms: u32) {
        let b = self.bucket(now, timeout_ms);
        if let Some((old, _)) = self.deadline_of.get(&session).copied() {
            if old == b {
                return;
            }
            self.remove_from_bucket(old, session);
        }
        self.buckets.entry(b).or_default().insert(session);
        self.deadline_of.insert(session, (b, timeout_ms));
    }

    /// Refreshes with the session's known timeout, if tracked.
    pub fn touch_known(&mut self, now: Instant, session: SessionId) -> bool {
        match self.deadline_of.get(&session) {
            Some(&(_, t)) => {
                self.touch(now, session, t);
                true
            }
            None => false,
        }
    }

    fn remove_from_bucket(&mut self, b: u64, session: SessionId) {
        if let Some(set) = self.buckets.get_mut(&b) {
            set.remove(&session);
            if set.is_empty() {
                self.buckets.remove(&b);
            }
        }
    }

    pub fn remove(&mut self, session: SessionId) {
        if let Some((b, _)) = self.deadline_of.remove(&session) {
            self.remove_from_bucket(b, session);
        }
    }

    pub fn contains(&self, session: SessionId) -> bool {
        self.deadline_of.contains_key(&session)
    }

    /// The next moment a session may expire.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.buckets
            .keys()
            .next()
            .map(|&ms| Instant::from_millis(ms))
    }

    /// Removes and returns every session whose deadline has passed.
    pub fn expired(&mut self, now: Instant) -> Vec<SessionId> {
        let mut out = Vec::new();
        let now_ms = now.as_millis();
        while let Some((&b, _)) = self.buckets.iter().next() {
            if b > now_ms {
                break;
            }
            let set = self.buckets.remove(&b).unwrap_or_default();
            for s in set {
                self.deadline_of.remove(&s);
                out.push(s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_timeout_rounded_to_ticks() {
        let mut q = ExpiryQueue::new(2000);
        q.touch(Instant::from_millis(1000), SessionId(1), 4000);
        assert!(q.expired(Instant::from_millis(5000)).is_empty());
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(6000)));
        q.touch(Instant::from_millis(3000), SessionId(1), 4000);
        assert!(q.expired(Instant::from_millis(6000)).is_empty());
        assert_eq!(q.expired(Instant::from_millis(8000)), vec![SessionId(1)]);
        assert!(!q.contains(SessionId(1)));
    }

    #[test]
    fn passwords_are_stable_and_distinct() {
        assert_eq!(password(SessionId(5)), password(SessionId(5)));
        assert_ne!(password(SessionId(5)), password(SessionId(6)));
    }

    #[test]
    fn session_ids_carry_server_id() {
        let id = first_session_id(3, 1_700_000_000_000);
        assert_eq!((id as u64) >> 56, 3);
    }
}
