//! The event loop: servers (real `Node`s), their disks and clocks, the
//! peer network, client connections and clients, driven by one queue of
//! events in (time, sequence) order on one thread.
//!
//! Invariants: simulated time never goes backwards; a server sees only
//! events of its current incarnation; events for a paused server wait, in
//! order, until it resumes; every draw comes from a seeded stream.

use crate::client::{Client, Phase};
use crate::clock::Clock;
use crate::disk::Disk;
use crate::history::History;
use crate::net::{LinkModel, Net, Semantics};
use crate::rng::SimRng;
use crate::scenario::{Fault, FaultKind, Scenario};
use crate::trace::Trace;
use crate::zxid_map::ZxidMap;
use paddock_core::boot;
use paddock_core::storage::{self, StorageOp};
use paddock_core::txn::Txn;
use paddock_core::{Config, ConnId, Input, Node, Output, ServerId, Zxid};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

pub const MS: u64 = 1_000_000;
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
    Heal,
    ScriptCrash {
        s: u64,
        down_ms: u64,
    },
}

/// One queued event; ordered so the heap's top is the earliest.
struct Queued {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
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
        // Reversed: BinaryHeap is a max-heap.
        (other.t, other.seq).cmp(&(self.t, self.seq))
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
}

pub struct ConnState {
    pub client: usize,
    pub server: u64,
    pub server_inc: u32,
    pub open_server: bool,
    pub open_client: bool,
    last_to_client: u64,
    last_to_server: u64,
}

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
    connecting: BTreeSet<usize>,
    /// New client requests stop (quiesce before the final checks).
    pub quiet: bool,
    /// The committed history as it happened: every txn a server applied
    /// while it served clients, by zxid, with the first server seen
    /// applying it. Log files get purged and replaced by snapshots, so
    /// the final disks alone cannot say what was committed.
    /// Boxed: an insert then moves pointers, not whole txns.
    pub committed: ZxidMap<(u64, Box<Txn>)>,
    /// The tree digest a serving server had at a zxid (first seen).
    digests: ZxidMap<(u64, u64)>,
    /// The established leader of each epoch (at most one, ever).
    leaders: BTreeMap<u32, u64>,
    /// Scripted faults (named scenarios only).
    pub triggers: Vec<Trigger>,
    /// Every peer message sent, as (time, from, to, kind), when
    /// `record_peer_messages` is set (named scenarios check orderings).
    pub peer_log: Vec<(u64, u64, u64, &'static str)>,
    pub record_peer_messages: bool,
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
                    .signed(skew * 16_000)
                    .clamp(-crate::clock::DRIFT_PPM_MAX, crate::clock::DRIFT_PPM_MAX);
                Clock::new(rng_clock.range(0, 3_600_000 * MS), drift)
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
                },
            );
        }
        let mut peer_link = LinkModel::lan(Semantics::Stream);
        let pl = scn.level(FaultKind::PeerLatency) as u64;
        if pl > 0 {
            peer_link.latency_ns_typical = pl * 5 * MS;
            peer_link.latency_ns_max = pl * 100 * MS;
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
            .collect();
        let mut w = World {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
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
            connecting: BTreeSet::new(),
            quiet: false,
            committed: ZxidMap::default(),
            events_this_instant: 0,
            digests: ZxidMap::default(),
            leaders: BTreeMap::new(),
            triggers: Vec::new(),
            peer_log: Vec::new(),
            record_peer_messages: false,
            scn,
        };
        w.trace
            .line(0, &format!("seed {} {}", w.scn.seed, w.scn.describe()));
        for id in w.scn.servers() {
            w.start_server(id);
        }
        for i in 0..w.scn.plan.len() {
            let at = w.scn.plan[i].0 * MS;
            w.at(at, Ev::Fault(i));
        }
        w.at(w.scn.safety_ms * MS, Ev::Heal);
        for c in 0..w.clients.len() {
            w.at((c as u64 + 1) * MS, Ev::ClientConnect { c });
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
        self.queue.push(Queued {
            t,
            seq: self.seq,
            ev,
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

    fn config(&self, id: u64) -> Config {
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
    fn start_server(&mut self, id: u64) {
        let cfg = self.config(id);
        let sv = self.servers.get_mut(&id).expect("server exists");
        let now = sv.clock.now(self.now);
        let booted = match boot::boot(cfg, &mut sv.disk, now) {
            Ok(b) => b,
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
                let t = self.now + self.rng_net.range(MS, 20 * MS);
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
        self.record_applied(s);
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

    /// Adds what server `s` applied since the last look to the committed
    /// history: a serving server's state is visible to clients, so it must
    /// agree with every other server's at each zxid and never roll back.
    fn record_applied(&mut self, s: u64) {
        let sv = self.servers.get_mut(&s).expect("server");
        let Some(node) = &sv.node else { return };
        let last = node.last_zxid();
        let mut bad = Vec::new();
        if node.role() == "leader" && node.leader().is_some() && self.scn.voters > 1 {
            let epoch = node.epochs().1;
            bad.extend(crate::check::one_leader_per_epoch(
                &mut self.leaders,
                epoch,
                s,
            ));
        }
        if last < sv.recorded_upto {
            bad.push(format!(
                "server {s} applied up to {} while serving, then rolled back to {last}",
                sv.recorded_upto
            ));
        } else if node.leader().is_some() && last > sv.recorded_upto {
            for t in node.applied_since(sv.recorded_upto) {
                match self.committed.get(t.zxid) {
                    Some((other, t0)) if **t0 != *t => bad.push(format!(
                        "zxid {}: server {s} applied {:?}, server {other} applied {:?}",
                        t.zxid, t.kind, t0.kind
                    )),
                    Some(_) => {}
                    None => {
                        self.committed
                            .insert_absent(t.zxid, (s, Box::new(t.clone())));
                    }
                }
            }
            sv.recorded_upto = last;
            let digest = node.digest();
            match self.digests.get(last) {
                Some((other, d)) if *d != digest => bad.push(format!(
                    "at zxid {last} server {s}'s tree digest {digest:#x} differs from server {other}'s {d:#x}"
                )),
                Some(_) => {}
                None => {
                    self.digests.insert_absent(last, (s, digest));
                }
            }
        }
        for why in bad {
            self.fail_safety(why);
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
                self.rng_disk
                    .latency(MS / 2, slow * 10 * MS, slow * 200 * MS)
            } else {
                self.rng_disk.latency(MS / 10, MS, 4 * MS)
            };
            let inc = sv.inc;
            self.at(self.now + d, Ev::DiskDone { s, inc });
        }
    }

    fn on_output(&mut self, s: u64, out: Output) {
        match out {
            Output::SendClient { conn, frame } => self.send_to_client(conn.0, frame),
            Output::CloseClient { conn, reason } => {
                self.log(format!("server {s} closes conn {}: {reason}", conn.0));
                if let Some(c) = self.conns.get_mut(&conn.0) {
                    c.open_server = false;
                    let t = c.last_to_client.max(self.now) + MS / 10;
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
                    let t = self.now + self.rng_disk.range(MS, 30 * MS);
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
        }
    }

    /// Records a peer message and fires the first matching trigger;
    /// returns whether the message is still sent.
    fn scripted_send(&mut self, s: u64, to: u64, bytes: &[u8]) -> bool {
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

    fn client_latency(&mut self) -> u64 {
        let l = self.scn.level(FaultKind::ClientLatency) as u64;
        if l > 0 {
            self.rng_client_net
                .latency(MS / 10, l * 10 * MS, l * 300 * MS)
        } else {
            self.rng_client_net.latency(MS / 20, MS / 2, 3 * MS)
        }
    }

    fn send_to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let lat = self.client_latency();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let t = (self.now + lat).max(c.last_to_client);
        c.last_to_client = t;
        self.at(t, Ev::ToClient { conn, frame });
    }

    fn send_to_server(&mut self, conn: u64, frame: Vec<u8>) {
        let lat = self.client_latency();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let t = (self.now + lat).max(c.last_to_server);
        c.last_to_server = t;
        self.at(t, Ev::ToServer { conn, frame });
    }

    fn reset_link(&mut self, a: u64, b: u64) {
        if self.net.reset(a, b) {
            for (x, y) in [(a, b), (b, a)] {
                self.input_or_defer(x, Input::PeerDisconnected { peer: ServerId(y) });
            }
        }
        let t = self.now + self.rng_net.range(20 * MS, 200 * MS);
        self.at(
            t,
            Ev::PeerConnect {
                a: a.min(b),
                b: a.max(b),
            },
        );
    }

    /// Link-state inputs respect pauses too (queued behind earlier events).
    fn input_or_defer(&mut self, s: u64, input: Input) {
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

    fn alive(&self, s: u64) -> bool {
        self.servers.get(&s).is_some_and(|v| v.node.is_some())
    }

    /// Runs until the queue is empty, `until` passes, or a failure.
    pub fn run_until(&mut self, until: u64) {
        while self.failure.is_none() {
            let Some(&Queued { t, .. }) = self.queue.peek() else {
                break;
            };
            if t > until {
                break;
            }
            let Queued { t, ev, .. } = self.queue.pop().expect("peeked");
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
            .max(until.min(self.queue.peek().map_or(until, |q| q.t)));
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
                    let t = self.now + self.clients[client].rng.range(5 * MS, 200 * MS);
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
                if let Some(token) = sv.disk.complete() {
                    self.input(s, Input::Persisted { token });
                }
                self.kick_disk(s);
            }
            Ev::SnapDone { s, inc, snapshot } => {
                let sv = self.servers.get_mut(&s).expect("server");
                if sv.inc != inc || sv.node.is_none() {
                    return;
                }
                let zxid = snapshot.zxid;
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

    fn on_peer_connect(&mut self, a: u64, b: u64) {
        if !self.alive(a) || !self.alive(b) || self.net.is_up(a, b) {
            return;
        }
        let paused = |w: &World, s: u64| w.servers[&s].paused_until.is_some();
        if paused(self, a) || paused(self, b) || self.net.is_cut(a, b) {
            if !self.net.is_cut(a, b) {
                self.at(self.now + 50 * MS, Ev::PeerConnect { a, b });
            }
            return;
        }
        self.net.connect(a, b);
        self.input(a, Input::PeerConnected { peer: ServerId(b) });
        self.input(b, Input::PeerConnected { peer: ServerId(a) });
    }

    fn on_to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let client = c.client;
        if !c.open_client || self.clients[client].conn != Some(conn) {
            return;
        }
        let was = self.clients[client].phase;
        match self.clients[client].on_frame(self.now, &frame, &mut self.hist) {
            Ok(replies) => {
                for f in replies {
                    self.send_to_server(conn, f);
                }
            }
            Err(e) => {
                self.fail_safety(format!("client {client} on conn {conn}: {e}"));
                return;
            }
        }
        if was == Phase::Handshake {
            let (sid, phase) = (
                self.clients[client].session_id(),
                self.clients[client].phase,
            );
            self.log(format!(
                "client {client} conn {conn}: session {sid:#x} ({phase:?})"
            ));
            if phase == Phase::Handshake {
                // Expired: hang up; the next connect opens a new session.
                self.drop_client_conn(client);
            } else {
                self.at(self.now, Ev::ClientWake { c: client });
            }
        }
    }

    fn on_client_connect(&mut self, c: usize) {
        if self.clients[c].conn.is_some() || !self.connecting.insert(c) {
            return;
        }
        self.connecting.remove(&c);
        let servers = self.scn.servers();
        let s = servers[self.clients[c].rng.index(servers.len())];
        if !self.alive(s) || self.servers[&s].paused_until.is_some() {
            let t = self.now + self.clients[c].rng.range(20 * MS, 300 * MS);
            self.at(t, Ev::ClientConnect { c });
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            ConnState {
                client: c,
                server: s,
                server_inc: self.servers[&s].inc,
                open_server: true,
                open_client: true,
                last_to_client: 0,
                last_to_server: 0,
            },
        );
        self.log(format!("client {c} connects to server {s} as conn {conn}"));
        self.input(
            s,
            Input::ClientConnected {
                conn: ConnId(conn),
                addr: format!("10.0.0.{}", c + 1),
            },
        );
        let hello = self.clients[c].on_connected(conn, self.now);
        self.send_to_server(conn, hello);
    }

    fn on_client_wake(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.conn.is_none() || cl.phase != Phase::Connected {
            return;
        }
        let conn = cl.conn.expect("connected");
        let mut frames = Vec::new();
        if !self.quiet {
            while let Some(f) = cl.next_request(self.now, &mut self.hist) {
                frames.push(f);
                if !cl.rng.chance(0.3) {
                    break;
                }
            }
        }
        if frames.is_empty() {
            if let Some(p) = cl.ping(self.now) {
                frames.push(p);
            }
        }
        let think = cl.rng.latency(MS, 20 * MS, 500 * MS);
        for f in frames {
            self.send_to_server(conn, f);
        }
        self.at(self.now + think, Ev::ClientWake { c });
    }

    fn drop_client_conn(&mut self, client: usize) {
        let Some(conn) = self.clients[client].conn else {
            return;
        };
        self.clients[client].on_closed(&mut self.hist);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.open_client = false;
            let lat = self.rng_client_net.range(MS / 10, 5 * MS);
            self.at(self.now + lat, Ev::ServerSawClose { conn });
        }
        let t = self.now + self.clients[client].rng.range(5 * MS, 300 * MS);
        self.at(t, Ev::ClientConnect { c: client });
    }

    /// Crashes `s` and restarts it `down_ms` later.
    fn crash_for(&mut self, s: u64, down_ms: u64) {
        self.crash(s);
        self.at(self.now + down_ms * MS, Ev::Restart { s });
    }

    fn crash(&mut self, s: u64) {
        let tear = self.scn.enabled(FaultKind::TornWrite);
        let sv = self.servers.get_mut(&s).expect("server");
        if sv.node.is_none() {
            return;
        }
        sv.node = None;
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
            let t = c.last_to_client.max(self.now) + MS;
            self.at(t, Ev::ClientSawClose { conn });
        }
    }

    fn resume(&mut self, s: u64) {
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

    fn apply_fault(&mut self, i: usize, f: Fault) {
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
            Fault::OneWay { from, to, ms } => self.net.clog(from, to, self.now + ms * MS),
            Fault::LinkReset { a, b } => self.reset_link(a, b),
        }
    }

    /// Damages one durable record of a server, only one whose every other
    /// server holds it durably (a healthy copy exists; at most one victim).
    fn corrupt(&mut self, victim: u64, newest: bool) {
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
    fn heal(&mut self) {
        self.healed = true;
        self.log("heal: faults end; liveness phase".into());
        self.net.unclog_all();
        for (a, b) in self.net.cut_pairs() {
            self.net.set_cut(a, b, false);
        }
        for s in self.scn.servers() {
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
