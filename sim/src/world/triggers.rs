//! Scripted triggers for the named scenarios: a fault fired when a server
//! sends a given peer message, so a schedule hits the protocol moment of
//! interest whatever the timing.

use super::{Ev, World, MS};

/// A scripted fault for the named scenarios: when a server sends a peer
/// message of kind `kind` (the `PeerMsg` variant's name), from `from` (any
/// server if `None`) to `to` (any if `None`), at or after `not_before_ms`,
/// carry out `action` on the sender. Each trigger fires once.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub label: &'static str,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub kind: &'static str,
    pub not_before_ms: u64,
    pub action: Action,
    /// (sim time, sender, receiver) when it fired.
    pub fired: Option<(u64, u64, u64)>,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// The sender dies before the message leaves; restarts after `down_ms`.
    CrashBeforeSend { down_ms: u64 },
    /// The message is sent; the sender dies `delay_ms` later (after it
    /// arrived) and restarts after `down_ms`.
    CrashAfterSend { delay_ms: u64, down_ms: u64 },
    /// Messages from the sender to that receiver are held for `ms`
    /// (including this one).
    HoldLink { ms: u64 },
    /// Only record that it happened.
    Observe,
}

impl World {
    /// Records a peer message and fires the first matching trigger;
    /// returns whether the message is still sent.
    pub(super) fn scripted_send(&mut self, s: u64, to: u64, bytes: &[u8]) -> bool {
        let kind = paddock_core::peer::decode(bytes).map_or("Undecodable", |m| m.kind());
        if self.record_peer_messages {
            self.peer_log.push((self.now, s, to, kind));
        }
        let now_ms = self.now / MS;
        let Some(i) = self.triggers.iter().position(|t| {
            t.fired.is_none()
                && t.kind == kind
                && t.from.is_none_or(|f| f == s)
                && t.to.is_none_or(|r| r == to)
                && now_ms >= t.not_before_ms
        }) else {
            return true;
        };
        let t = &mut self.triggers[i];
        t.fired = Some((self.now, s, to));
        let (label, action) = (t.label, t.action.clone());
        self.log(format!(
            "trigger {label}: server {s} sends {kind} to {to}; {action:?}"
        ));
        self.faults_applied += 1;
        match action {
            Action::CrashBeforeSend { down_ms } => {
                self.crash_for(s, down_ms);
                false
            }
            Action::CrashAfterSend { delay_ms, down_ms } => {
                self.at(self.now + delay_ms * MS, Ev::ScriptCrash { s, down_ms });
                true
            }
            Action::HoldLink { ms } => {
                self.net.clog(s, to, self.now + ms * MS);
                true
            }
            Action::Observe => true,
        }
    }
}
