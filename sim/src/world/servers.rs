//! Servers' lifecycle and links: a server starts (and restarts) from its
//! disk through the core's one boot sequence; links come up, break and
//! are re-dialled.

use super::{Ev, World};
use crate::profile;
use paddock_core::boot;
use paddock_core::{Config, Input, ServerId, Zxid};

impl World {
    pub(super) fn config(&self, id: u64) -> Config {
        let voters: Vec<u64> = (1..=self.scn.voters).collect();
        let observers: Vec<u64> =
            (self.scn.voters + 1..=self.scn.voters + self.scn.observers).collect();
        let mut c = if self.scn.voters + self.scn.observers == 1 {
            Config::standalone(id)
        } else {
            Config::ensemble(id, &voters, &observers)
        };
        c.seed = self.scn.seed ^ id;
        c.snap_count = self.scn.snap_count;
        c.read_only_mode = self.scn.read_only_client_at_ms.is_some();
        if self.scn.reconfig {
            // Every server keeps a member list; a spare's own zoo.cfg
            // names the first members and itself, as a joiner's does.
            let spare = !self.scn.members().contains(&id);
            let mut text = String::new();
            for m in self.scn.members().into_iter().chain(spare.then_some(id)) {
                let role = if observers.contains(&m) {
                    "observer"
                } else {
                    "participant"
                };
                text += &format!(
                    "server.{m}={}:{role};{}\n",
                    crate::workload::member_addr(m),
                    crate::workload::client_addr(m)
                );
            }
            text += "version=0";
            if spare {
                c.voters.insert(ServerId(id));
            }
            c.member_list = Some(std::sync::Arc::from(text.into_bytes()));
            c.reconfig_enabled = true;
            c.skip_acl = true;
            c.record_commit_quorums = true;
        }
        #[cfg(feature = "canary")]
        {
            c.canary = self
                .scn
                .canary
                .as_deref()
                .and_then(paddock_core::canary::Canary::from_name);
        }
        c
    }

    /// Starts (or restarts) a server from what its disk holds.
    pub(super) fn start_server(&mut self, id: u64) {
        let cfg = self.config(id);
        let sv = self.servers.get_mut(&id).expect("server exists");
        let now = sv.clock.now(self.now);
        let booted = match boot::boot(cfg, &mut sv.disk, now) {
            Ok(b) => b,
            Err(boot::BootError::Io(e)) => {
                // It must not serve what it could read: it stays down, and
                // is started again later (the error was transient).
                self.log(format!("server {id} refuses to start: {e}"));
                let t = profile::RESTART_AFTER_STOP.draw(&mut self.rng_disk);
                self.at(self.now + t, super::Ev::Restart { s: id });
                return;
            }
            Err(e) => {
                let why = format!("server {id}: recovery refused its own disk: {e}");
                self.fail_safety(why);
                return;
            }
        };
        for n in &booted.notes {
            self.trace
                .line(self.now, &format!("server {id} recovery: {n}"));
        }
        if booted.marked {
            self.trace.line(
                self.now,
                &format!("server {id}: durable records lost; it repairs before voting"),
            );
        }
        if let Err(e) = booted.node.state().tree.check_invariants() {
            let why = format!("server {id}: recovered tree breaks its invariants: {e}");
            self.fail_safety(why);
            return;
        }
        let last = booted.last_zxid;
        let sv = self.servers.get_mut(&id).expect("server exists");
        // What the last incarnation was told was durable (and so may have
        // acknowledged) must come back, unless a planted corruption took it.
        if last < sv.claimed && !sv.corrupted {
            let why = format!(
                "server {id} had been told zxid {} was durable, but restarts from its disk at {last}",
                sv.claimed
            );
            self.fail_safety(why);
            return;
        }
        let sv = self.servers.get_mut(&id).expect("server exists");
        sv.inc += 1;
        sv.node = Some(booted.node);
        sv.timer_at = None;
        sv.recorded_upto = Zxid::ZERO;
        let repairs = sv.disk.log_files();
        self.log(format!(
            "server {id} starts at zxid {last} ({repairs} log files)"
        ));
        if self.scn.voters + self.scn.observers == 1 && last.as_i64() < self.hist.acked_max {
            let why = format!(
                "server {id} restarted at zxid {last}, but zxid {:#x} was acknowledged",
                self.hist.acked_max
            );
            self.fail_safety(why);
        }
        for p in self.scn.servers() {
            if p != id {
                let t = self.now + profile::PEER_DIAL.draw(&mut self.rng_net);
                self.at(
                    t,
                    Ev::PeerConnect {
                        a: id.min(p),
                        b: id.max(p),
                    },
                );
            }
        }
        self.after_input(id);
    }

    pub(super) fn on_peer_connect(&mut self, a: u64, b: u64) {
        if !self.alive(a) || !self.alive(b) || self.net.is_up(a, b) {
            return;
        }
        let paused = |w: &World, s: u64| w.servers[&s].paused_until.is_some();
        if paused(self, a) || paused(self, b) || self.net.is_cut(a, b) {
            if !self.net.is_cut(a, b) {
                self.at(self.now + profile::PEER_RETRY_NS, Ev::PeerConnect { a, b });
            }
            return;
        }
        self.net.connect(a, b);
        self.input(a, Input::PeerConnected { peer: ServerId(b) });
        self.input(b, Input::PeerConnected { peer: ServerId(a) });
    }
    pub(super) fn reset_link(&mut self, a: u64, b: u64) {
        if self.net.reset(a, b) {
            for (x, y) in [(a, b), (b, a)] {
                self.input_or_defer(x, Input::PeerDisconnected { peer: ServerId(y) });
            }
        }
        let t = self.now + profile::PEER_REDIAL.draw(&mut self.rng_net);
        self.at(
            t,
            Ev::PeerConnect {
                a: a.min(b),
                b: a.max(b),
            },
        );
    }

    /// Link-state inputs respect pauses too (queued behind earlier events).
    pub(super) fn input_or_defer(&mut self, s: u64, input: Input) {
        let Some(sv) = self.servers.get_mut(&s) else {
            return;
        };
        if sv.node.is_none() {
            return;
        }
        let Input::PeerDisconnected { peer } = input else {
            panic!("only link losses are deferred, not {input:?}")
        };
        if sv.paused_until.is_some() {
            sv.deferred.push_back(Ev::PeerDown { s, peer: peer.0 });
            return;
        }
        self.input(s, Input::PeerDisconnected { peer });
    }
}
