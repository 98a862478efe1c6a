//! What one seed decides before the run starts: the ensemble, the clients
//! and their recipes, how hostile each fault kind is (swarm testing: each
//! kind on or off, calm to brutal), and the fault plan itself.
//!
//! The plan is a list of timed faults drawn up front, so `shrink` can drop
//! faults one by one (`--only-faults`) and cap operations (`--ops`) while
//! every other draw stays the same.

use crate::rng::SimRng;
use std::collections::{BTreeMap, BTreeSet};

/// A kind of fault the swarm switches on or off per seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// A client's TCP connection is cut.
    ClientDrop,
    /// Slow client links.
    ClientLatency,
    /// A server process dies (unsynced bytes lost or torn) and restarts.
    Crash,
    /// The last unsynced write of a crashed server is torn, not lost.
    TornWrite,
    /// A server stalls (GC pause): no input is handled until it resumes.
    Pause,
    /// Per-server clock offset and drift.
    ClockSkew,
    /// The wall clock jumps (NTP step); the monotonic clock never does.
    ClockJump,
    /// Slow fsyncs.
    SlowDisk,
    /// A durable log record is damaged where a healthy copy exists.
    Corrupt,
    /// Peer partitions: isolate one, split halves, one-way.
    Partition,
    /// A peer TCP connection resets (its in-flight suffix is lost).
    LinkReset,
    /// Slow, jittery peer links.
    PeerLatency,
    /// The disk refuses an operation: a transient EIO on write or on
    /// fsync, or a full disk (ENOSPC) for a while.
    DiskError,
    /// Reading the data dir fails while a restarting server recovers.
    ReadError,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::ClientDrop,
        FaultKind::ClientLatency,
        FaultKind::Crash,
        FaultKind::TornWrite,
        FaultKind::Pause,
        FaultKind::ClockSkew,
        FaultKind::ClockJump,
        FaultKind::SlowDisk,
        FaultKind::Corrupt,
        FaultKind::Partition,
        FaultKind::LinkReset,
        FaultKind::PeerLatency,
        FaultKind::DiskError,
        FaultKind::ReadError,
    ];

    /// The kinds added after the swarm's draws were fixed: switched on
    /// from a stream of their own, so every other draw of a seed (and
    /// the whole run of a seed with none of them) stays as it was.
    fn drawn_apart(self) -> bool {
        matches!(self, FaultKind::DiskError | FaultKind::ReadError)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ClientDrop => "client-drop",
            FaultKind::ClientLatency => "client-latency",
            FaultKind::Crash => "crash",
            FaultKind::TornWrite => "torn-write",
            FaultKind::Pause => "pause",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Partition => "partition",
            FaultKind::LinkReset => "link-reset",
            FaultKind::PeerLatency => "peer-latency",
            FaultKind::DiskError => "disk-error",
            FaultKind::ReadError => "read-error",
        }
    }

    pub fn from_name(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One planned fault. Whether it applies is decided when its time comes
/// (a crash of a server that is already down is skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Crash {
        server: u64,
        down_ms: u64,
    },
    Pause {
        server: u64,
        ms: u64,
    },
    ClockJump {
        server: u64,
        wall_ms: i64,
    },
    ClientDrop {
        client: usize,
    },
    Corrupt {
        server: u64,
    },
    /// The newest record that healthy copies cover (named scenarios).
    CorruptNewest {
        server: u64,
    },
    /// Cut every link between `side` and the rest, both ways.
    Split {
        side: Vec<u64>,
        ms: u64,
    },
    /// Every link between `side` and the rest goes silent both ways for
    /// `ms`: messages are held, not lost, and no end hears of it (no
    /// reset), as when a switch drops a host's traffic. The ends notice
    /// only by their own timeouts (syncLimit, the leader's quorum check).
    SilentSplit {
        side: Vec<u64>,
        ms: u64,
    },
    /// Messages from `from` to `to` are held (clogged) for `ms`.
    OneWay {
        from: u64,
        to: u64,
        ms: u64,
    },
    LinkReset {
        a: u64,
        b: u64,
    },
    /// The server's next log operation fails this way.
    DiskError {
        server: u64,
        error: DiskFault,
    },
    /// The server's disk is full for `ms`: every write fails meanwhile.
    DiskFull {
        server: u64,
        ms: u64,
    },
    /// The server crashes; reading its data dir at the next start fails
    /// once, and it is started again `down_ms` after that.
    ReadError {
        server: u64,
        down_ms: u64,
    },
}

/// A one-shot error of a log operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// `write` returns EIO (part of the batch may have reached the file).
    WriteEio,
    /// `fsync` returns EIO: the kernel may have written some of the dirty
    /// pages and dropped the rest.
    FsyncEio,
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::ClockJump { .. } => FaultKind::ClockJump,
            Fault::ClientDrop { .. } => FaultKind::ClientDrop,
            Fault::Corrupt { .. } | Fault::CorruptNewest { .. } => FaultKind::Corrupt,
            Fault::Split { .. } | Fault::SilentSplit { .. } | Fault::OneWay { .. } => {
                FaultKind::Partition
            }
            Fault::LinkReset { .. } => FaultKind::LinkReset,
            Fault::DiskError { .. } | Fault::DiskFull { .. } => FaultKind::DiskError,
            Fault::ReadError { .. } => FaultKind::ReadError,
        }
    }
}

/// The shape of a client's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// Ephemeral-sequential lock nodes under /lock.
    Lock,
    /// Persistent-sequential items under /queue, consumed lowest first.
    Queue,
    /// Ephemeral-sequential candidates under /election, watching the
    /// predecessor.
    Election,
    /// getData with a watch and versioned setData on /config, multi, sync,
    /// persistent watches.
    Config,
    /// Membership changes: reconfig requests (add, remove, swap, role
    /// change, a whole new member list) between reads. Only in scenarios
    /// drawn with reconfiguration (`Overrides::reconfig`).
    Reconfig,
}

impl Recipe {
    pub const ALL: [Recipe; 4] = [
        Recipe::Lock,
        Recipe::Queue,
        Recipe::Election,
        Recipe::Config,
    ];
}

/// Caller's overrides: what `shrink` reduces and `run` flags replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Keep only these indices of the drawn fault plan.
    pub only_faults: Option<BTreeSet<usize>>,
    /// Cap on operations per client.
    pub ops_max: Option<u64>,
    pub clients: Option<usize>,
    pub servers: Option<u64>,
    /// Observers (0 or 1; drawn otherwise).
    pub observers: Option<u64>,
    /// A core canary by name (needs the `canary` feature).
    pub canary: Option<String>,
    /// Draw membership changes: 3 or 5 voters, one or two spare servers
    /// outside the first configuration, and a client that reconfigures.
    pub reconfig: bool,
}

impl Overrides {
    /// The flags that reproduce these overrides on the command line.
    pub fn flags(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.only_faults {
            let list: Vec<String> = f.iter().map(|i| i.to_string()).collect();
            s += &format!(" --only-faults '{}'", list.join(","));
        }
        if let Some(o) = self.ops_max {
            s += &format!(" --ops {o}");
        }
        if let Some(c) = self.clients {
            s += &format!(" --clients {c}");
        }
        if let Some(n) = self.servers {
            s += &format!(" --servers {n}");
        }
        if let Some(n) = self.observers {
            s += &format!(" --observers {n}");
        }
        if let Some(c) = &self.canary {
            s += &format!(" --canary {c}");
        }
        if self.reconfig {
            s += " --reconfig";
        }
        s
    }
}

/// Everything a seed decides before the first event.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub voters: u64,
    pub observers: u64,
    pub recipes: Vec<Recipe>,
    pub ops_max: u64,
    /// Fault intensity per enabled kind: 1 calm .. 3 brutal.
    pub intensity: BTreeMap<FaultKind, u8>,
    /// Length of the fault (safety) phase, simulated ms.
    pub safety_ms: u64,
    /// The bound within which the healed ensemble must make progress.
    pub liveness_ms: u64,
    pub plan: Vec<(u64, Fault)>,
    pub session_timeout_ms: u32,
    pub canary: Option<String>,
    /// The servers' snapCount (small, so snapshots and log rolls happen).
    pub snap_count: u64,
    /// Read-only mode (named scenarios): servers run with
    /// `readonlymode.enabled`, and client 0 asks for read-only, is pinned
    /// to the last server and first connects at this simulated ms.
    pub read_only_client_at_ms: Option<u64>,
    /// Servers outside the first configuration (numbered after the
    /// observers), which reconfigs may add. 0 unless `reconfig`.
    pub spares: u64,
    /// Membership changes are drawn (the servers keep a member list,
    /// reconfigEnabled and skipACL are on, and one client reconfigures).
    pub reconfig: bool,
}

/// Servers in an ensemble are numbered 1..=n (`server.N`).
pub const VOTERS_MAX: u64 = 5;
pub const CLIENTS_MAX: usize = 6;

impl Scenario {
    pub fn servers(&self) -> Vec<u64> {
        (1..=self.voters + self.observers + self.spares).collect()
    }

    /// The first configuration's members (the spares are not among them).
    pub fn members(&self) -> Vec<u64> {
        (1..=self.voters + self.observers).collect()
    }

    pub fn enabled(&self, k: FaultKind) -> bool {
        self.intensity.contains_key(&k)
    }

    pub fn level(&self, k: FaultKind) -> u8 {
        self.intensity.get(&k).copied().unwrap_or(0)
    }

    pub fn draw(seed: u64, o: &Overrides) -> Scenario {
        let mut r = SimRng::stream(seed, "scenario");
        // Draw everything, then apply overrides, so an override shifts no
        // other draw.
        let drawn_voters = match r.range(0, 10) {
            0..=3 => 1,
            4..=7 => 3,
            _ => 5,
        };
        let voters = o.servers.unwrap_or(drawn_voters);
        assert!(
            (1..=VOTERS_MAX).contains(&voters),
            "voters {voters} out of 1..={VOTERS_MAX}"
        );
        let observer_drawn = r.chance(0.25);
        let observers = match o.observers {
            Some(n) => n,
            None if voters > 1 && observer_drawn => 1,
            None => 0,
        };
        assert!(
            observers <= 1 && (observers == 0 || voters > 1),
            "observers {observers} with {voters} voters"
        );
        let drawn_clients = r.range(1, CLIENTS_MAX as u64 + 1) as usize;
        let clients = o.clients.unwrap_or(drawn_clients);
        let mut recipe_rng = SimRng::stream(seed, "recipes");
        let recipes = (0..clients)
            .map(|_| Recipe::ALL[recipe_rng.index(Recipe::ALL.len())])
            .collect();
        // Swarm: each kind on with probability 1/2, at a drawn intensity;
        // one seed in eight runs calm (no faults at all).
        let calm = r.chance(0.125);
        let mut intensity = BTreeMap::new();
        for k in FaultKind::ALL.into_iter().filter(|k| !k.drawn_apart()) {
            let on = !calm && r.chance(0.5);
            let level = r.range(1, 4) as u8;
            let multi_server_only = matches!(
                k,
                FaultKind::Partition
                    | FaultKind::LinkReset
                    | FaultKind::PeerLatency
                    | FaultKind::Corrupt
            );
            if on && !(multi_server_only && voters + observers == 1) {
                intensity.insert(k, level);
            }
        }
        // Disk errors: one seed in four each (their own stream).
        let mut apart = SimRng::stream(seed, "disk-errors");
        for k in FaultKind::ALL.into_iter().filter(|k| k.drawn_apart()) {
            let on = !calm && apart.chance(0.25);
            let level = apart.range(1, 4) as u8;
            if on {
                intensity.insert(k, level);
            }
        }
        let safety_ms = r.range(3_000, 12_000);
        let mut s = Scenario {
            seed,
            voters,
            observers,
            recipes,
            ops_max: o.ops_max.unwrap_or(u64::MAX),
            intensity,
            safety_ms,
            liveness_ms: 30_000,
            plan: Vec::new(),
            session_timeout_ms: [4_000, 6_000, 10_000][r.index(3)],
            canary: o.canary.clone(),
            // Swarm: a third of the seeds snapshot every few dozen txns
            // (snapshot, SNAP sync and recovery from a snapshot all
            // exercised constantly), the rest now and then. Its own stream,
            // so the other draws stay as they were.
            snap_count: [64, 1_000, 10_000][SimRng::stream(seed, "snap_count").index(3)],
            read_only_client_at_ms: None,
            spares: 0,
            reconfig: false,
        };
        if o.reconfig {
            // Its own stream, so the other draws stay as they were.
            let mut r = SimRng::stream(seed, "reconfig");
            s.reconfig = true;
            if s.voters < 3 {
                s.voters = 3;
            }
            s.spares = r.range(1, 3);
            s.recipes.push(Recipe::Reconfig);
        }
        let plan = s.draw_plan(seed);
        s.plan = match &o.only_faults {
            None => plan,
            Some(keep) => plan
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, f)| f)
                .collect(),
        };
        s
    }

    /// The timed faults of the safety phase, in time order.
    fn draw_plan(&self, seed: u64) -> Vec<(u64, Fault)> {
        let mut r = SimRng::stream(seed, "plan");
        // Whether a split of one server from the rest is silent, and for
        // how long: its own stream, so the other draws stay as they were.
        let mut silent = SimRng::stream(seed, "silent-split");
        let servers = self.servers();
        let n = servers.len() as u64;
        let mut plan = Vec::new();
        // Mean gap between faults of a kind: calm 4 s, brutal 0.7 s.
        let gap = |level: u8| match level {
            1 => 4_000,
            2 => 1_800,
            _ => 700,
        };
        for k in FaultKind::ALL {
            let level = self.level(k);
            if level == 0 {
                continue;
            }
            let mut t = r.range(100, gap(level));
            while t < self.safety_ms {
                let server = servers[r.index(servers.len())];
                let fault = match k {
                    FaultKind::Crash => Some(Fault::Crash {
                        server,
                        down_ms: r.latency(10, 800, 6_000),
                    }),
                    FaultKind::Pause => Some(Fault::Pause {
                        server,
                        ms: r.latency(5, 300, 4_000 * level as u64),
                    }),
                    FaultKind::ClockJump => Some(Fault::ClockJump {
                        server,
                        wall_ms: r.signed(3_600_000),
                    }),
                    FaultKind::ClientDrop if !self.recipes.is_empty() => Some(Fault::ClientDrop {
                        client: r.index(self.recipes.len()),
                    }),
                    FaultKind::Corrupt => Some(Fault::Corrupt { server }),
                    FaultKind::Partition => {
                        let ms = r.latency(50, 1_500, 6_000);
                        if r.chance(0.3) {
                            let to = servers[r.index(servers.len())];
                            (to != server).then_some(Fault::OneWay {
                                from: server,
                                to,
                                ms,
                            })
                        } else {
                            let size = r.range(1, n / 2 + 1).max(1);
                            let mut side: Vec<u64> = Vec::new();
                            while (side.len() as u64) < size {
                                let s = servers[r.index(servers.len())];
                                if !side.contains(&s) {
                                    side.push(s);
                                }
                            }
                            side.sort();
                            if side.len() == 1 && silent.chance(0.5) {
                                // Long enough for a session to expire on one
                                // side; over by the heal (held messages are
                                // delivered when it ends).
                                let ms = silent
                                    .range(2_000, 12_000)
                                    .min(self.safety_ms.saturating_sub(t))
                                    .max(1);
                                Some(Fault::SilentSplit { side, ms })
                            } else {
                                Some(Fault::Split { side, ms })
                            }
                        }
                    }
                    FaultKind::LinkReset => {
                        let b = servers[r.index(servers.len())];
                        (b != server).then_some(Fault::LinkReset {
                            a: server.min(b),
                            b: server.max(b),
                        })
                    }
                    FaultKind::DiskError => Some(match r.range(0, 5) {
                        0 | 1 => Fault::DiskError {
                            server,
                            error: DiskFault::FsyncEio,
                        },
                        2 | 3 => Fault::DiskError {
                            server,
                            error: DiskFault::WriteEio,
                        },
                        _ => Fault::DiskFull {
                            server,
                            ms: r.latency(50, 800, 5_000),
                        },
                    }),
                    FaultKind::ReadError => Some(Fault::ReadError {
                        server,
                        down_ms: r.latency(10, 500, 3_000),
                    }),
                    // Ambient kinds shape latencies and clocks, not the plan.
                    _ => None,
                };
                if let Some(f) = fault {
                    plan.push((t, f));
                }
                t += r.range(gap(level) / 4, gap(level) * 2);
            }
        }
        // In time order, the kinds drawn apart after all the others: the
        // indices `--only-faults` names in a seed's older plan stay valid.
        plan.sort_by_key(|(t, f)| (f.kind().drawn_apart(), *t));
        plan
    }

    /// One line saying what this seed runs.
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self
            .intensity
            .iter()
            .map(|(k, l)| format!("{}:{l}", k.name()))
            .collect();
        let spares = if self.reconfig {
            format!(" reconfig spares {}", self.spares)
        } else {
            String::new()
        };
        format!(
            "servers {}+{}{spares} clients {} faults [{}] plan {} safety {} ms",
            self.voters,
            self.observers,
            self.recipes.len(),
            kinds.join(" "),
            self.plan.len(),
            self.safety_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_scenario() {
        let a = Scenario::draw(42, &Overrides::default());
        let b = Scenario::draw(42, &Overrides::default());
        assert_eq!(a.describe(), b.describe());
        assert_eq!(a.plan, b.plan);
    }

    #[test]
    fn only_faults_keeps_the_named_indices() {
        let full = (0..200)
            .map(|s| Scenario::draw(s, &Overrides::default()))
            .find(|s| s.plan.len() >= 3)
            .expect("some seed plans three faults");
        let o = Overrides {
            only_faults: Some([0, 2].into_iter().collect()),
            ..Overrides::default()
        };
        let cut = Scenario::draw(full.seed, &o);
        assert_eq!(cut.plan, vec![full.plan[0].clone(), full.plan[2].clone()]);
    }
}
