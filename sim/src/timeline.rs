//! Structured events of one run for its picture (`paddock-sim run --html`):
//! every peer message with its send and delivery times, and each server's
//! role and epochs as they change. Recorded only when a world's
//! `timeline` is set; recording reads what the run does and changes none
//! of it (the trace hash is the same with or without).

use paddock_core::Node;

/// Longest message detail kept (a snapshot sync can be large).
pub const DETAIL_MAX: usize = 600;

/// A peer message: sent at `sent_ns`, delivered at each of `due_ns`
/// (none if the network dropped it; two if it duplicated it).
#[derive(Clone, Debug)]
pub struct PeerMsg {
    pub sent_ns: u64,
    pub from: u64,
    pub to: u64,
    pub kind: &'static str,
    pub detail: String,
    pub due_ns: Vec<u64>,
}

/// A server's role from `at_ns` on: role name, accepted and current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    pub at_ns: u64,
    pub server: u64,
    pub role: &'static str,
    pub epochs: (u32, u32),
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub msgs: Vec<PeerMsg>,
    pub roles: Vec<RoleChange>,
}

fn clip(mut s: String) -> String {
    if s.len() > DETAIL_MAX {
        let mut end = DETAIL_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" ...");
    }
    s
}

impl Timeline {
    pub fn peer(&mut self, now: u64, from: u64, to: u64, bytes: &[u8], due: &[u64]) {
        let (kind, detail) = match paddock_core::peer::decode(bytes) {
            Ok(m) => (m.kind(), clip(format!("{m:?}"))),
            Err(e) => ("Undecodable", format!("{e:?}")),
        };
        self.msgs.push(PeerMsg {
            sent_ns: now,
            from,
            to,
            kind,
            detail,
            due_ns: due.to_vec(),
        });
    }

    /// Notes `server`'s role after a step if it changed (`None`: down).
    pub fn role(&mut self, now: u64, server: u64, node: Option<&Node>) {
        let (role, epochs) = node.map_or(("down", (0, 0)), |n| (n.role().zk_name(), n.epochs()));
        let last = self.roles.iter().rev().find(|r| r.server == server);
        if last.is_some_and(|l| l.role == role && l.epochs == epochs) {
            return;
        }
        self.roles.push(RoleChange {
            at_ns: now,
            server,
            role,
            epochs,
            detail: node.map_or("down".into(), |n| clip(n.role_debug())),
        });
    }
}
