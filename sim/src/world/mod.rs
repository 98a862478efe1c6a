//! The event loop: servers (real `Node`s), their disks and clocks, the
//! peer network, client connections and clients, driven by one queue of
//! events in (time, sequence) order on one thread. The other concerns
//! live beside it, in the shape of TigerBeetle's VOPR:
//! - `faults`: crashes, pauses, partitions, corruption, the heal;
//! - `triggers`: scripted faults fired at protocol moments (named
//!   scenarios);
//! - `live`: the checker object, called after every step a server takes;
//! - `servers`: start and restart through `paddock_core::boot`, links;
//! - `clients`: client connections and their latencies;
//! - `crate::profile`: the named latency, think-time and fault profiles.
//!
//! Invariants: simulated time never goes backwards; a server sees only
//! events of its current incarnation; events for a paused server wait, in
//! order, until it resumes; every draw comes from a seeded stream.

use crate::client::Client;
use crate::clock::Clock;
use crate::disk::{Disk, Outcome};
use crate::history::History;
use crate::net::{LinkModel, Net, Semantics};
use crate::profile;
use crate::rng::SimRng;
use crate::scenario::{FaultKind, Scenario};
use crate::trace::Trace;
use paddock_core::storage::{self, StorageOp};
use paddock_core::{ConnId, Input, Node, Output, ServerId, Zxid};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

mod clients;
mod faults;
mod live;
mod servers;
mod triggers;

pub use crate::profile::MS;
pub use live::LiveChecker;
pub use triggers::{Action, Trigger};
/// A bound on queued events: a run that needs more is itself a bug.
pub const EVENTS_QUEUED_MAX: usize = 1_000_000;
/// A bound on events within one simulated microsecond: more is a message
/// storm (servers answering each other with no time passing).
pub const EVENTS_PER_INSTANT_MAX: u64 = 100_000;

#[derive(Debug)]
pub enum Ev {
    Timer {
        s: u64,
        inc: u32,
    },
    Peer {
        from: u64,
        to: u64,
        generation: u64,
        bytes: Vec<u8>,
    },
    PeerConnect {
        a: u64,
        b: u64,
    },
    ToServer {
        conn: u64,
        frame: Vec<u8>,
    },
    ToClient {
        conn: u64,
        frame: Vec<u8>,
    },
    ServerSawClose {
        conn: u64,
    },
    ClientSawClose {
        conn: u64,
    },
    ClientWake {
        c: usize,
    },
    ClientConnect {
        c: usize,
    },
    DiskDone {
        s: u64,
        inc: u32,
    },
    SnapDone {
        s: u64,
        inc: u32,
        snapshot: Box<storage::Snapshot>,
    },
    Fault(usize),
    Restart {
        s: u64,
    },
    Resume {
        s: u64,
    },
    /// A link to `peer` broke (kept as an event so a paused server sees it
    /// in order).
    PeerDown {
        s: u64,
        peer: u64,
    },
    Unsplit {
        side: Vec<u64>,
    },
    /// Space returns to a full disk.
    DiskSpace {
        s: u64,
    },
    Heal,
    ScriptCrash {
        s: u64,
        down_ms: u64,
    },
}

/// A pending event's place in the heap: its time and sequence number in
/// one key (`t` in the high half, so keys order as (time, sequence)), and
/// the slot of `World::slab` that holds it. The heap moves these small
/// keys, not the events (an event is several times larger, and sifting
/// them was a sixteenth of the simulator's time under load), and compares
/// one integer rather than a tuple.
#[derive(Clone, Copy)]
struct Queued {
    key: u128,
    slot: u32,
}

impl Queued {
    fn t(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        self.key == other.key
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap. Sequence numbers are unique,
        // so no two keys are equal and the order is total.
        other.key.cmp(&self.key)
    }
}

impl Ev {
    /// The server this event is handled by, if any (for pause deferral).
    fn server(&self, w: &World) -> Option<u64> {
        match self {
            Ev::Timer { s, .. }
            | Ev::DiskDone { s, .. }
            | Ev::SnapDone { s, .. }
            | Ev::PeerDown { s, .. } => Some(*s),
            Ev::Peer { to, .. } => Some(*to),
            Ev::ToServer { conn, .. } | Ev::ServerSawClose { conn } => {
                w.conns.get(conn).map(|c| c.server)
            }
            _ => None,
        }
    }
}

pub struct Server {
    pub id: u64,
    pub node: Option<Node>,
    pub inc: u32,
    pub disk: Disk,
    pub clock: Clock,
    pub paused_until: Option<u64>,
    deferred: VecDeque<Ev>,
    timer_at: Option<u64>,
    pub crashes: u64,
    pub corrupted: bool,
    /// How far this incarnation's applied txns are in `World::committed`.
    recorded_upto: Zxid,
    /// What the last incarnation had been told was durable when it went
    /// down: its restart must recover at least that far.
    pub claimed: Zxid,
    /// The incarnation whose disk refused an operation, if it kept running.
    pub refused_in: Option<u32>,
}

pub struct ConnState {
    pub client: usize,
    pub server: u64,
    pub server_inc: u32,
    pub open_server: bool,
    pub open_client: bool,
    /// The server has answered the ConnectRequest (its first frame).
    answered: bool,
    last_to_client: u64,
    last_to_server: u64,
}

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Safety(String),
    Liveness(String),
}

pub struct World {
    pub scn: Scenario,
    pub now: u64,
    seq: u64,
    /// Pending events, earliest (time, sequence) first. A heap: the
    /// order is total (sequence numbers are unique), so it pops exactly as
    /// a sorted map would, at less cost per event.
    queue: BinaryHeap<Queued>,
    /// The events the queue's keys point to; freed slots are reused.
    slab: Vec<Option<Ev>>,
    free: Vec<usize>,
    pub servers: BTreeMap<u64, Server>,
    pub net: Net,
    peer_link: LinkModel,
    pub conns: BTreeMap<u64, ConnState>,
    next_conn: u64,
    pub clients: Vec<Client>,
    pub hist: History,
    pub trace: Trace,
    pub events: u64,
    events_this_instant: u64,
    pub faults_applied: u64,
    pub healed: bool,
    pub failure: Option<Failure>,
    rng_net: SimRng,
    rng_disk: SimRng,
    rng_fault: SimRng,
    rng_client_net: SimRng,
    /// New client requests stop (quiesce before the final checks).
    pub quiet: bool,
    /// The live checks, run after every step a server takes; it also
    /// holds the committed history as it happened.
    pub checker: LiveChecker,
    /// Scripted faults (named scenarios only).
    pub triggers: Vec<Trigger>,
    /// Every peer message sent, as (time, from, to, kind), when
    /// `record_peer_messages` is set (named scenarios check orderings).
    pub peer_log: Vec<(u64, u64, u64, &'static str)>,
    pub record_peer_messages: bool,
    /// Peer messages and role changes for the run's picture, when set.
    pub timeline: Option<crate::timeline::Timeline>,
}

impl World {
    pub fn new(scn: Scenario, keep_trace: bool) -> World {
        let seed = scn.seed;
        let mut rng_clock = SimRng::stream(seed, "clocks");
        let skew = scn.level(FaultKind::ClockSkew) as i64;
        let mut servers = BTreeMap::new();
        for id in scn.servers() {
            let clock = if skew > 0 {
                let drift = rng_clock
                    .signed(skew * profile::CLOCK_DRIFT_PPM_PER_LEVEL)
                    .clamp(-crate::clock::DRIFT_PPM_MAX, crate::clock::DRIFT_PPM_MAX);
                Clock::new(rng_clock.range(0, profile::CLOCK_OFFSET_MAX_NS), drift)
            } else {
                Clock::exact()
            };
            servers.insert(
                id,
                Server {
                    id,
                    node: None,
                    inc: 0,
                    disk: Disk::new(),
                    clock,
                    paused_until: None,
                    deferred: VecDeque::new(),
                    timer_at: None,
                    crashes: 0,
                    recorded_upto: Zxid::ZERO,
                    corrupted: false,
                    claimed: Zxid::ZERO,
                    refused_in: None,
                },
            );
        }
        let mut peer_link = LinkModel::lan(Semantics::Stream);
        let pl = scn.level(FaultKind::PeerLatency) as u64;
        if pl > 0 {
            peer_link.latency_ns_typical = pl * profile::PEER_LATENCY_TYPICAL_PER_LEVEL_NS;
            peer_link.latency_ns_max = pl * profile::PEER_LATENCY_MAX_PER_LEVEL_NS;
        }
        let clients = scn
            .recipes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Client::new(
                    i,
                    *r,
                    SimRng::stream(seed, &format!("client{i}")),
                    scn.session_timeout_ms,
                    scn.ops_max,
                )
            })
            .collect::<Vec<Client>>();
        let mut clients = clients;
        for c in &mut clients {
            c.servers = scn.servers().len() as u64;
        }
        let mut w = World {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            servers,
            net: Net::new(),
            peer_link,
            conns: BTreeMap::new(),
            next_conn: 1,
            clients,
            hist: History::default(),
            trace: Trace::new(keep_trace),
            events: 0,
            faults_applied: 0,
            healed: false,
            failure: None,
            rng_net: SimRng::stream(seed, "net"),
            rng_disk: SimRng::stream(seed, "disk"),
            rng_fault: SimRng::stream(seed, "faults"),
            rng_client_net: SimRng::stream(seed, "client-net"),
            quiet: false,
            checker: LiveChecker::new(),
            events_this_instant: 0,
            triggers: Vec::new(),
            peer_log: Vec::new(),
            record_peer_messages: false,
            timeline: None,
            scn,
        };
        w.trace
            .line(0, &format!("seed {} {}", w.scn.seed, w.scn.describe()));
        w.checker.initial_voters = (1..=w.scn.voters).collect();
        for id in w.scn.servers() {
            w.start_server(id);
        }
        for i in 0..w.scn.plan.len() {
            let at = w.scn.plan[i].0 * MS;
            w.at(at, Ev::Fault(i));
        }
        w.at(w.scn.safety_ms * MS, Ev::Heal);
        let read_only_at = w.scn.read_only_client_at_ms;
        for c in 0..w.clients.len() {
            match read_only_at {
                Some(at) if c == 0 => {
                    let last = w.scn.voters + w.scn.observers;
                    w.clients[0].read_only = true;
                    w.clients[0].pinned = Some(last);
                    w.at(at * MS, Ev::ClientConnect { c });
                }
                _ => w.at((c as u64 + 1) * MS, Ev::ClientConnect { c }),
            }
        }
        w
    }

    pub fn at(&mut self, t: u64, ev: Ev) {
        assert!(
            t >= self.now,
            "event at {t} scheduled in the past (now {})",
            self.now
        );
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                self.slab.len() - 1
            }
        };
        self.queue.push(Queued {
            key: (u128::from(t) << 64) | u128::from(self.seq),
            slot: u32::try_from(slot).expect("fewer queued events than u32::MAX"),
        });
        assert!(
            self.queue.len() <= EVENTS_QUEUED_MAX,
            "{} events queued",
            self.queue.len()
        );
    }

    fn log(&mut self, text: String) {
        self.trace.line(self.now, &text);
    }

    pub fn fail_safety(&mut self, why: String) {
        if self.failure.is_none() {
            self.log(format!("SAFETY VIOLATION: {why}"));
            self.failure = Some(Failure::Safety(why));
        }
    }

    fn node_now(&mut self, s: u64) -> paddock_core::Now {
        let now = self.now;
        self.servers.get_mut(&s).expect("server").clock.now(now)
    }

    /// Hands an input to a live server and carries out what it emits.
    fn input(&mut self, s: u64, input: Input) {
        let now = self.node_now(s);
        let Some(node) = self.servers.get_mut(&s).and_then(|v| v.node.as_mut()) else {
            return;
        };
        node.handle(now, input);
        self.after_input(s);
    }

    fn after_input(&mut self, s: u64) {
        loop {
            let Some(node) = self.servers.get_mut(&s).and_then(|v| v.node.as_mut()) else {
                return;
            };
            let Some(out) = node.poll_output() else {
                break;
            };
            self.on_output(s, out);
        }
        self.check_step(s);
        if let Some(tl) = &mut self.timeline {
            let node = self.servers.get(&s).and_then(|v| v.node.as_ref());
            tl.role(self.now, s, node);
        }
        let sv = self.servers.get_mut(&s).expect("server");
        let Some(node) = &sv.node else { return };
        if let Some(d) = node.poll_timeout() {
            let t = sv.clock.sim_time_of(d, self.now);
            if sv.timer_at.is_none_or(|old| old > t || old < self.now) {
                sv.timer_at = Some(t);
                let inc = sv.inc;
                self.at(t, Ev::Timer { s, inc });
            }
        }
    }

    /// Runs the live checker on server `s` after a step.
    fn check_step(&mut self, s: u64) {
        let ensemble = self.scn.voters > 1;
        let sv = self.servers.get_mut(&s).expect("server");
        let Some(node) = &sv.node else { return };
        let bad = self
            .checker
            .after_step(s, node, &mut sv.recorded_upto, ensemble);
        for why in bad {
            self.fail_safety(why);
        }
        self.check_commit_quorums(s);
    }

    /// Every commit's voters must be a quorum of the configuration in
    /// force for it, and must really hold what they acknowledged (durable
    /// on a live server; claimed durable by a crashed one).
    fn check_commit_quorums(&mut self, s: u64) {
        let Some(node) = self.servers.get_mut(&s).and_then(|v| v.node.as_mut()) else {
            return;
        };
        let quorums = node.take_commit_quorums();
        for (from, upto, ackers) in quorums {
            let ids: std::collections::BTreeSet<u64> = ackers.iter().map(|a| a.0).collect();
            for a in &ids {
                let held = match self.servers.get(a) {
                    Some(sv) => match &sv.node {
                        Some(n) => n.persisted_upto() >= upto,
                        None => sv.claimed >= upto,
                    },
                    None => false,
                };
                if !held {
                    self.fail_safety(format!(
                        "server {s} committed {from}..={upto} counting server {a}, which does not hold {upto} durably"
                    ));
                }
            }
            if let Some(why) = self.checker.commit_quorum(from, upto, &ids) {
                self.fail_safety(format!("server {s}: {why}"));
            }
        }
    }

    fn kick_disk(&mut self, s: u64) {
        // A slow disk is a fault: it ends with the others at the heal.
        let slow = if self.healed {
            0
        } else {
            self.scn.level(FaultKind::SlowDisk) as u64
        };
        let sv = self.servers.get_mut(&s).expect("server");
        if sv.disk.start_next() {
            let d = if slow > 0 {
                profile::DISK_OP_SLOW_PER_LEVEL
                    .at_level(slow)
                    .draw(&mut self.rng_disk)
            } else {
                profile::DISK_OP.draw(&mut self.rng_disk)
            };
            let inc = sv.inc;
            self.at(self.now + d, Ev::DiskDone { s, inc });
        }
    }

    fn on_output(&mut self, s: u64, out: Output) {
        match out {
            Output::SendClient { conn, frame } => {
                self.on_server_frame(s, conn.0, &frame);
                self.send_to_client(conn.0, frame)
            }
            Output::CloseClient { conn, reason } => {
                self.log(format!("server {s} closes conn {}: {reason}", conn.0));
                if let Some(c) = self.conns.get_mut(&conn.0) {
                    c.open_server = false;
                    let t = c.last_to_client.max(self.now) + profile::CLIENT_CLOSE_SEEN_NS;
                    self.at(t, Ev::ClientSawClose { conn: conn.0 });
                    self.at(self.now, Ev::ServerSawClose { conn: conn.0 });
                }
            }
            Output::Storage(op) => {
                let sv = self.servers.get_mut(&s).expect("server");
                if let StorageOp::Snapshot(snapshot) = &op {
                    // The file lands off the log's queue, as the shell's
                    // snapshot thread writes it; the queue only rolls.
                    let snapshot = Box::new(snapshot.clone());
                    let inc = sv.inc;
                    sv.disk.submit(op);
                    let t = self.now + profile::SNAPSHOT_WRITE.draw(&mut self.rng_disk);
                    self.at(t, Ev::SnapDone { s, inc, snapshot });
                } else {
                    sv.disk.submit(op);
                }
                self.kick_disk(s);
            }
            Output::SendPeer { to, mut bytes } => {
                if (self.record_peer_messages || !self.triggers.is_empty())
                    && !self.scripted_send(s, to.0, &bytes)
                {
                    return;
                }
                let link = self.peer_link;
                let (due, generation) = self.net.send(&mut self.rng_net, self.now, s, to.0, &link);
                if let Some(tl) = &mut self.timeline {
                    tl.peer(self.now, s, to.0, &bytes, &due);
                }
                // The last delivery takes the bytes; only a duplicate copies.
                let last = due.len().saturating_sub(1);
                for (i, t) in due.into_iter().enumerate() {
                    let bytes = if i == last {
                        std::mem::take(&mut bytes)
                    } else {
                        bytes.clone()
                    };
                    self.at(
                        t,
                        Ev::Peer {
                            from: s,
                            to: to.0,
                            generation,
                            bytes,
                        },
                    );
                }
            }
            Output::ClosePeer { peer, reason } => {
                self.log(format!("server {s} drops link to {}: {reason}", peer.0));
                self.reset_link(s, peer.0);
            }
            Output::ConfigActivated { version, text } => {
                let members = text.lines().filter(|l| l.starts_with("server.")).count();
                self.log(format!(
                    "server {s}: configuration {version:#x} in force ({members} members)"
                ));
            }
            Output::Stop { reason } => {
                self.log(format!("server {s} stops: {reason}"));
                let t = profile::RESTART_AFTER_STOP.draw(&mut self.rng_disk);
                self.crash_for(s, t / MS);
            }
        }
    }

    fn alive(&self, s: u64) -> bool {
        self.servers.get(&s).is_some_and(|v| v.node.is_some())
    }

    /// Runs until the queue is empty, `until` passes, or a failure.
    pub fn run_until(&mut self, until: u64) {
        while self.failure.is_none() {
            let Some(t) = self.queue.peek().map(Queued::t) else {
                break;
            };
            if t > until {
                break;
            }
            let slot = self.queue.pop().expect("peeked").slot as usize;
            let ev = self.slab[slot]
                .take()
                .expect("a queued slot holds its event");
            self.free.push(slot);
            assert!(t >= self.now, "time went backwards: {t} < {}", self.now);
            if t / 1_000 == self.now / 1_000 {
                self.events_this_instant += 1;
                if self.events_this_instant > EVENTS_PER_INSTANT_MAX {
                    let role = ev
                        .server(self)
                        .and_then(|s| self.servers.get(&s))
                        .and_then(|s| s.node.as_ref())
                        .map(|n| n.role_debug());
                    let why = format!(
                        "event storm: over {EVENTS_PER_INSTANT_MAX} events within one microsecond, the last {ev:?} (server: {role:?})"
                    );
                    self.log(why.clone());
                    self.failure = Some(Failure::Liveness(why));
                    break;
                }
            } else {
                self.events_this_instant = 0;
            }
            self.now = t;
            self.events += 1;
            if let Some(s) = ev.server(self) {
                if let Some(sv) = self.servers.get_mut(&s) {
                    if sv.paused_until.is_some() {
                        sv.deferred.push_back(ev);
                        continue;
                    }
                }
            }
            self.dispatch(ev);
        }
        self.now = self
            .now
            .max(until.min(self.queue.peek().map_or(until, Queued::t)));
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { s, inc } => {
                let sv = self.servers.get_mut(&s).expect("server");
                if sv.inc != inc || sv.node.is_none() {
                    return;
                }
                if sv.timer_at == Some(self.now) {
                    sv.timer_at = None;
                }
                let now = sv.clock.now(self.now);
                sv.node.as_mut().expect("alive").handle_timeout(now);
                self.after_input(s);
            }
            Ev::Peer {
                from,
                to,
                generation,
                bytes,
            } => {
                if self.net.is_up(from, to) && self.net.generation(from, to) == generation {
                    self.input(
                        to,
                        Input::PeerMessage {
                            from: ServerId(from),
                            bytes,
                        },
                    );
                }
            }
            Ev::PeerConnect { a, b } => self.on_peer_connect(a, b),
            Ev::ToServer { conn, frame } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                let s = c.server;
                if c.open_server && c.server_inc == self.servers[&s].inc {
                    self.input(
                        s,
                        Input::ClientFrame {
                            conn: ConnId(conn),
                            frame,
                        },
                    );
                }
            }
            Ev::ToClient { conn, frame } => self.on_to_client(conn, frame),
            Ev::ServerSawClose { conn } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let (s, inc) = (c.server, c.server_inc);
                c.open_server = false;
                if self.servers[&s].inc == inc {
                    self.input(s, Input::ClientClosed { conn: ConnId(conn) });
                }
                self.gc_conn(conn);
            }
            Ev::ClientSawClose { conn } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.open_client = false;
                let client = c.client;
                if self.clients[client].conn == Some(conn) {
                    self.clients[client].on_closed(&mut self.hist);
                    self.log(format!("client {client} lost conn {conn}"));
                    let t =
                        self.now + profile::CLIENT_RECONNECT.draw(&mut self.clients[client].rng);
                    self.at(t, Ev::ClientConnect { c: client });
                }
                self.gc_conn(conn);
            }
            Ev::ClientWake { c } => self.on_client_wake(c),
            Ev::ClientConnect { c } => self.on_client_connect(c),
            Ev::DiskDone { s, inc } => {
                let sv = self.servers.get_mut(&s).expect("server");
                if sv.inc != inc || sv.node.is_none() {
                    return;
                }
                match sv.disk.finish(&mut self.rng_disk) {
                    Outcome::Done(Some(token)) => self.input(s, Input::Persisted { token }),
                    Outcome::Done(None) => {}
                    Outcome::Failed {
                        token,
                        error,
                        landed,
                    } => {
                        sv.refused_in = Some(inc);
                        self.log(format!("server {s} disk: {error} ({landed} bytes landed)"));
                        self.input(s, Input::StorageFailed { token, error });
                    }
                }
                self.kick_disk(s);
            }
            Ev::SnapDone { s, inc, snapshot } => {
                let sv = self.servers.get_mut(&s).expect("server");
                if sv.inc != inc || sv.node.is_none() {
                    return;
                }
                let zxid = snapshot.zxid;
                if sv.disk.full {
                    sv.refused_in = Some(inc);
                    sv.disk.failures += 1;
                    let error = storage::StorageError {
                        kind: storage::StorageErrorKind::NoSpace,
                        detail: format!(
                            "writing {}: No space left on device (os error 28)",
                            storage::snapshot_file_name(zxid)
                        ),
                    };
                    self.log(format!("server {s} disk: {error}"));
                    self.input(s, Input::StorageFailed { token: None, error });
                    return;
                }
                sv.disk.put_snapshot(snapshot);
                self.input(s, Input::SnapshotWritten { zxid });
            }
            Ev::Fault(i) => {
                let f = self.scn.plan[i].1.clone();
                self.apply_fault(i, f);
            }
            Ev::Restart { s } => {
                if !self.alive(s) {
                    self.start_server(s);
                }
            }
            Ev::Resume { s } => self.resume(s),
            Ev::Unsplit { side } => {
                for a in self.scn.servers() {
                    for b in self.scn.servers() {
                        if side.contains(&a) && !side.contains(&b) {
                            self.net.set_cut(a, b, false);
                            self.at(
                                self.now + MS,
                                Ev::PeerConnect {
                                    a: a.min(b),
                                    b: a.max(b),
                                },
                            );
                        }
                    }
                }
            }
            Ev::ScriptCrash { s, down_ms } => {
                if self.alive(s) {
                    self.crash_for(s, down_ms);
                }
            }
            Ev::Heal => self.heal(),
            Ev::DiskSpace { s } => {
                let sv = self.servers.get_mut(&s).expect("server");
                if sv.disk.full {
                    sv.disk.full = false;
                    self.log(format!("server {s}: disk space freed"));
                }
            }
            Ev::PeerDown { s, peer } => self.input(
                s,
                Input::PeerDisconnected {
                    peer: ServerId(peer),
                },
            ),
        }
    }

    fn gc_conn(&mut self, conn: u64) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| !c.open_client && !c.open_server)
        {
            self.conns.remove(&conn);
        }
    }
}
