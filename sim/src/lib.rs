//! Deterministic simulator of the real `paddock-core`.
//!
//! One `u64` seed decides everything: the ensemble, the clients and their
//! recipes, the network, disks and clocks, and every fault. Events run in
//! (time, sequence) order on one thread; no clock, thread, global RNG or
//! hash-map iteration is involved, so the same seed and binary give the
//! same trace byte for byte (and the same trace hash).
//!
//! A run has two phases: faults (safety: nothing wrong may be observed),
//! then heal (liveness: the ensemble must converge and serve every client
//! within a bound). Then the checkers (`check`) judge the whole history.

pub mod check;
pub mod client;
pub mod clock;
pub mod disk;
pub mod history;
pub mod model;
pub mod named;
pub mod net;
pub mod profile;
pub mod rng;
pub mod scenario;
pub mod timeline;
pub mod trace;
pub mod workload;
pub mod world;
pub mod zxid_map;

use scenario::{Overrides, Scenario};
use std::collections::BTreeMap;
use world::{Failure, World, MS};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Safety(String),
    Liveness(String),
    Panic(String),
}

impl Verdict {
    /// The process exit code the command uses.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Safety(_) => 2,
            Verdict::Liveness(_) => 3,
            Verdict::Panic(_) => 4,
        }
    }
    pub fn is_ok(&self) -> bool {
        *self == Verdict::Ok
    }
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub describe: String,
    pub verdict: Verdict,
    pub sim_ns: u64,
    pub events: u64,
    pub trace_hash: u64,
    pub trace_lines: u64,
    pub tail: Vec<String>,
    pub full_trace: Option<Vec<String>>,
    pub ops: usize,
    pub acked: usize,
    pub faults: u64,
    pub overrides: Overrides,
}

impl Report {
    pub fn summary(&self) -> String {
        let v = match &self.verdict {
            Verdict::Ok => "ok".to_string(),
            Verdict::Safety(_) => "SAFETY".into(),
            Verdict::Liveness(_) => "LIVENESS".into(),
            Verdict::Panic(_) => "PANIC".into(),
        };
        format!(
            "seed {} {v}: {:.1} sim s, {} events, {} ops ({} acked writes), {} faults; trace {:016x}",
            self.seed,
            self.sim_ns as f64 / 1e9,
            self.events,
            self.ops,
            self.acked,
            self.faults,
            self.trace_hash
        )
    }

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run -p paddock-sim{} -- run --seed {}{}",
            if self.overrides.canary.is_some() {
                " --features canary"
            } else {
                ""
            },
            self.seed,
            self.overrides.flags()
        )
    }
}

/// Runs one seed to its verdict. Panics inside the core are caught and
/// reported as `Verdict::Panic`.
pub fn run(seed: u64, o: &Overrides, keep_trace: bool) -> Report {
    let scn = Scenario::draw(seed, o);
    let w = World::new(scn, keep_trace);
    run_world(w, o).0
}

/// Drives a prepared world to its verdict; returns the report and the
/// world (named scenarios inspect what happened).
pub fn run_world(mut w: World, o: &Overrides) -> (Report, World) {
    let seed = w.scn.seed;
    let describe = w.scn.describe();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(&mut w)));
    let verdict = match res {
        Ok(v) => v,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Verdict::Panic(msg)
        }
    };
    let report = Report {
        seed,
        describe,
        verdict,
        sim_ns: w.now,
        events: w.events,
        trace_hash: w.trace.hash(),
        trace_lines: w.trace.lines(),
        tail: w.trace.tail().cloned().collect(),
        full_trace: w.trace.full().map(|f| f.to_vec()),
        ops: w.hist.ops.len(),
        acked: w.hist.acked_writes().len(),
        faults: w.faults_applied,
        overrides: o.clone(),
    };
    (report, w)
}

fn failed(w: &World) -> Option<Verdict> {
    match &w.failure {
        Some(Failure::Safety(s)) => Some(Verdict::Safety(s.clone())),
        Some(Failure::Liveness(s)) => Some(Verdict::Liveness(s.clone())),
        None => None,
    }
}

/// Whether every server is up and serves clients.
fn serving(w: &World) -> Result<(), String> {
    for (id, s) in &w.servers {
        let Some(n) = &s.node else {
            return Err(format!("server {id} is down"));
        };
        if n.leader().is_none() {
            return Err(format!("server {id} is not serving ({})", n.role_debug()));
        }
    }
    Ok(())
}

/// Whether every server serves and all agree (zxid, digest), with no
/// storage work outstanding.
fn converged(w: &World) -> Result<(), String> {
    serving(w)?;
    let mut zxids = BTreeMap::new();
    for (id, s) in &w.servers {
        let n = s.node.as_ref().expect("serving servers are up");
        if s.disk.queued() > 0 {
            return Err(format!(
                "server {id} has {} storage ops queued",
                s.disk.queued()
            ));
        }
        zxids.insert(*id, (n.last_zxid(), n.digest()));
    }
    let first = zxids.values().next().copied();
    if zxids.values().any(|v| Some(*v) != first) {
        return Err(format!("servers disagree (zxid, digest): {zxids:?}"));
    }
    Ok(())
}

fn drive(w: &mut World) -> Verdict {
    let heal_at = w.scn.safety_ms * MS;
    w.run_until(heal_at);
    if let Some(v) = failed(w) {
        return v;
    }
    // Liveness: within the bound, every server serves and agrees, and every
    // client with budget left gets a write acknowledged after the heal.
    let deadline = heal_at + w.scn.liveness_ms * MS;
    let acked_at_heal: Vec<u64> = w.clients.iter().map(|c| c.acked_writes).collect();
    let mut t = heal_at;
    loop {
        t += 100 * MS;
        w.run_until(t);
        if let Some(v) = failed(w) {
            return v;
        }
        // Under a steady load the servers need not agree at any sampled
        // instant; agreement is required once the clients are quiet.
        let state = serving(w);
        let stuck: Vec<usize> = w
            .clients
            .iter()
            .filter(|c| c.ops_done < c.ops_max && c.acked_writes == acked_at_heal[c.id])
            .map(|c| c.id)
            .collect();
        if state.is_ok() && stuck.is_empty() {
            break;
        }
        if t >= deadline {
            let detail: Vec<String> = stuck
                .iter()
                .map(|&c| {
                    let cl = &w.clients[c];
                    let server = cl.conn.and_then(|k| w.conns.get(&k)).map(|k| k.server);
                    let role = server
                        .and_then(|s| w.servers.get(&s))
                        .and_then(|s| s.node.as_ref())
                        .map(|n| n.role_debug());
                    format!(
                        "client {c}: {:?} on conn {:?} (server {server:?}: {role:?}), {} in flight",
                        cl.phase,
                        cl.conn,
                        cl.inflight()
                    )
                })
                .collect();
            let roles: Vec<String> = w
                .servers
                .iter()
                .map(|(id, s)| {
                    let role = s.node.as_ref().map_or("down".into(), |n| n.role_debug());
                    format!("server {id}: {role}")
                })
                .collect();
            let ids: Vec<u64> = w.servers.keys().copied().collect();
            let mut down_links = Vec::new();
            for &a in &ids {
                for &b in &ids {
                    if a < b && !w.net.is_up(a, b) {
                        down_links.push((a, b));
                    }
                }
            }
            let roles = [roles, vec![format!("peer links down: {down_links:?}")]].concat();
            return Verdict::Liveness(format!(
                "{} ms after healing: {}; clients without progress {stuck:?} {}\n  {}",
                w.scn.liveness_ms,
                state.err().unwrap_or_else(|| "servers agree".into()),
                detail.join("; "),
                roles.join("\n  ")
            ));
        }
    }
    // Quiesce, then idle long enough for abandoned sessions to expire.
    w.quiet = true;
    let idle = 3 * w.scn.session_timeout_ms as u64 + 5_000;
    w.run_until(t + idle * MS);
    let end = w.now + 10_000 * MS;
    loop {
        if let Some(v) = failed(w) {
            return v;
        }
        let pending = w.clients.iter().map(|c| c.inflight()).sum::<usize>();
        if converged(w).is_ok() && pending == 0 {
            break;
        }
        if w.now >= end {
            return Verdict::Liveness(format!(
                "no quiescence: {:?}, {pending} requests in flight",
                converged(w).err()
            ));
        }
        let next = w.now + 100 * MS;
        w.run_until(next);
    }
    final_checks(w)
}

/// A server whose disk refused an operation and that kept running (it
/// should have stopped) must still find on its disk all it was told was
/// durable: a retried fsync can report success over pages the kernel
/// already dropped.
fn refused_disks_hold_their_claims(w: &mut World) -> Vec<String> {
    let mut bad = Vec::new();
    for (id, s) in w.servers.iter_mut() {
        let Some(node) = &s.node else { continue };
        if s.refused_in != Some(s.inc) || s.corrupted {
            continue;
        }
        let opts =
            paddock_core::txn::ApplyOptions::from_config(&paddock_core::Config::standalone(*id));
        let claimed = node.persisted_upto();
        match paddock_core::storage::recover(&s.disk.image(), &opts) {
            Ok(r) if r.state.last_zxid >= claimed => {}
            Ok(r) => bad.push(format!(
                "server {id} kept running after its disk refused an operation; it was told zxid {claimed} was durable, but its disk recovers to {}",
                r.state.last_zxid
            )),
            Err(e) => bad.push(format!(
                "server {id} kept running after its disk refused an operation; its disk no longer recovers: {e}"
            )),
        }
    }
    bad
}

fn final_checks(w: &mut World) -> Verdict {
    let refused = refused_disks_hold_their_claims(w);
    if !refused.is_empty() {
        return Verdict::Safety(refused.join("\n  "));
    }
    // The durable logs must agree with each other and with what servers
    // applied; the history itself is what they applied while serving.
    let mut logs: BTreeMap<u64, Vec<paddock_core::txn::Txn>> = w
        .servers
        .iter()
        .map(|(id, s)| (*id, s.disk.logged_txns()))
        .collect();
    logs.insert(
        0,
        w.checker
            .committed
            .values()
            .map(|(_, t)| (**t).clone())
            .collect(),
    );
    if let Err(v) = check::committed_history(&logs) {
        return Verdict::Safety(format!(
            "servers' logs disagree (server 0: the applied history): {}",
            v.join("; ")
        ));
    }
    let txns: Vec<paddock_core::txn::Txn> = w
        .checker
        .committed
        .values()
        .map(|(_, t)| (**t).clone())
        .collect();
    let mut v = Vec::new();
    let complete = txns
        .first()
        .is_none_or(|t| t.zxid.counter() == 1 && t.zxid.epoch() <= 1);
    if complete {
        let (model, mut found) = check::replay(&txns, &w.hist);
        v.append(&mut found);
        for (id, s) in &w.servers {
            let n = s.node.as_ref().expect("converged servers are up");
            if n.last_zxid().as_i64() != model.last_zxid {
                v.push(format!(
                    "server {id} last zxid {} != committed history's {:#x}",
                    n.last_zxid(),
                    model.last_zxid
                ));
            }
            // The tree's whole-state check, which the core itself runs
            // only in its unit tests: children lists, parents and the
            // digest recomputed from scratch.
            if let Err(e) = n.state().tree.check_invariants() {
                v.push(format!("server {id} tree invariants: {e}"));
            }
            for d in model.diff_tree(&n.state().tree).into_iter().take(5) {
                v.push(format!("server {id} tree vs model: {d}"));
            }
        }
        let live: Vec<i64> = w.clients.iter().map(|c| c.session_id()).collect();
        v.append(&mut check::ephemerals(&model, &w.hist, &live));
    }
    v.append(&mut check::session_order(&w.hist));
    v.append(&mut check::read_only_writes(&w.hist));
    if v.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Safety(v.join("\n  "))
    }
}
