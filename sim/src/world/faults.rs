//! Faults: what the scenario's plan (and the triggers) do to servers,
//! links, clients and disks during the safety phase, and the heal that
//! lifts them all for the liveness phase.

use super::{Ev, World, MS};
use crate::profile;
use crate::scenario::{Fault, FaultKind};
use paddock_core::{Input, ServerId, Zxid};

impl World {
    /// Crashes `s` and restarts it `down_ms` later.
    pub(super) fn crash_for(&mut self, s: u64, down_ms: u64) {
        self.crash(s);
        self.at(self.now + down_ms * MS, Ev::Restart { s });
    }

    pub(super) fn crash(&mut self, s: u64) {
        let tear = self.scn.enabled(FaultKind::TornWrite);
        let sv = self.servers.get_mut(&s).expect("server");
        if sv.node.is_none() {
            return;
        }
        if let Some(node) = sv.node.take() {
            sv.claimed = node.persisted_upto();
        }
        sv.inc += 1;
        sv.crashes += 1;
        sv.paused_until = None;
        sv.deferred.clear();
        let effect = sv.disk.crash(&mut self.rng_disk, tear);
        self.log(format!("server {s} crashes; disk: {effect:?}"));
        for p in self.scn.servers() {
            if p != s && self.net.reset(s, p) {
                self.input_or_defer(p, Input::PeerDisconnected { peer: ServerId(s) });
            }
        }
        let mine: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server == s)
            .map(|(k, _)| *k)
            .collect();
        for conn in mine {
            let c = self.conns.get_mut(&conn).expect("listed");
            c.open_server = false;
            let t = c.last_to_client.max(self.now) + profile::CLIENT_CRASH_SEEN_NS;
            self.at(t, Ev::ClientSawClose { conn });
        }
    }

    pub(super) fn resume(&mut self, s: u64) {
        let Some(sv) = self.servers.get_mut(&s) else {
            return;
        };
        if sv.paused_until.is_none_or(|u| u > self.now) {
            return;
        }
        sv.paused_until = None;
        self.log(format!("server {s} resumes"));
        let deferred: Vec<Ev> = self
            .servers
            .get_mut(&s)
            .expect("server")
            .deferred
            .drain(..)
            .collect();
        for ev in deferred {
            self.dispatch(ev);
        }
        // Time moved on while paused: let the node see it.
        let inc = self.servers[&s].inc;
        self.at(self.now, Ev::Timer { s, inc });
    }

    pub(super) fn apply_fault(&mut self, i: usize, f: Fault) {
        if self.healed {
            return;
        }
        self.faults_applied += 1;
        self.log(format!("fault #{i}: {f:?}"));
        match f {
            Fault::Crash { server, down_ms } => self.crash_for(server, down_ms),
            Fault::Pause { server, ms } => {
                let sv = self.servers.get_mut(&server).expect("server");
                if sv.node.is_some() && sv.paused_until.is_none() {
                    sv.paused_until = Some(self.now + ms * MS);
                    self.at(self.now + ms * MS, Ev::Resume { s: server });
                }
            }
            Fault::ClockJump { server, wall_ms } => {
                self.servers
                    .get_mut(&server)
                    .expect("server")
                    .clock
                    .jump_wall(wall_ms);
            }
            Fault::ClientDrop { client } => {
                if client < self.clients.len() {
                    self.drop_client_conn(client);
                }
            }
            Fault::Corrupt { server } => self.corrupt(server, false),
            Fault::CorruptNewest { server } => self.corrupt(server, true),
            Fault::Split { side, ms } => {
                for a in self.scn.servers() {
                    for b in self.scn.servers() {
                        if side.contains(&a) && !side.contains(&b) {
                            self.net.set_cut(a, b, true);
                            if self.net.reset(a, b) {
                                self.input_or_defer(
                                    a,
                                    Input::PeerDisconnected { peer: ServerId(b) },
                                );
                                self.input_or_defer(
                                    b,
                                    Input::PeerDisconnected { peer: ServerId(a) },
                                );
                            }
                        }
                    }
                }
                self.at(self.now + ms * MS, Ev::Unsplit { side });
            }
            Fault::SilentSplit { side, ms } => {
                for a in self.scn.servers() {
                    for b in self.scn.servers() {
                        if side.contains(&a) != side.contains(&b) {
                            self.net.clog(a, b, self.now + ms * MS);
                        }
                    }
                }
            }
            Fault::OneWay { from, to, ms } => self.net.clog(from, to, self.now + ms * MS),
            Fault::LinkReset { a, b } => self.reset_link(a, b),
            Fault::DiskError { server, error } => {
                self.servers.get_mut(&server).expect("server").disk.armed = Some(error);
            }
            Fault::DiskFull { server, ms } => {
                self.servers.get_mut(&server).expect("server").disk.full = true;
                self.at(self.now + ms * MS, Ev::DiskSpace { s: server });
            }
            Fault::ReadError { server, down_ms } => {
                if self.alive(server) {
                    self.servers
                        .get_mut(&server)
                        .expect("server")
                        .disk
                        .read_error = true;
                    self.crash_for(server, down_ms);
                }
            }
        }
    }

    /// Damages one durable record of a server, only one whose every other
    /// server holds it durably (a healthy copy exists; at most one victim).
    pub(super) fn corrupt(&mut self, victim: u64, newest: bool) {
        if self.scn.voters < 3 || self.servers.values().any(|s| s.corrupted) {
            return;
        }
        let bound = self
            .servers
            .values()
            .filter(|s| s.id != victim)
            .map(|s| s.disk.logged_txns().last().map_or(Zxid::ZERO, |t| t.zxid))
            .min()
            .unwrap_or(Zxid::ZERO);
        let sv = self.servers.get_mut(&victim).expect("server");
        if let Some((file, off)) = sv.disk.corrupt_record(&mut self.rng_fault, bound, newest) {
            sv.corrupted = true;
            self.log(format!(
                "server {victim}: corrupted {file} at byte {off} (zxid <= {bound})"
            ));
        }
    }

    /// End of the safety phase: every fault is lifted.
    pub(super) fn heal(&mut self) {
        self.healed = true;
        self.log("heal: faults end; liveness phase".into());
        // Membership changes are the safety phase's too: the healed
        // ensemble is judged in the configuration it reached.
        for c in &mut self.clients {
            c.servers = 0;
        }
        self.net.unclog_all();
        for (a, b) in self.net.cut_pairs() {
            self.net.set_cut(a, b, false);
        }
        for s in self.scn.servers() {
            let disk = &mut self.servers.get_mut(&s).expect("server").disk;
            disk.armed = None;
            disk.full = false;
            disk.read_error = false;
            if self.servers[&s].paused_until.is_some() {
                self.servers.get_mut(&s).expect("server").paused_until = Some(self.now);
                self.resume(s);
            }
            if !self.alive(s) {
                self.start_server(s);
            }
        }
        for a in self.scn.servers() {
            for b in self.scn.servers() {
                if a < b {
                    self.at(self.now + MS, Ev::PeerConnect { a, b });
                }
            }
        }
    }
}
