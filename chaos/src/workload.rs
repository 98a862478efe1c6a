//! Concurrent clients and the fault driver: one run is a cluster, a fixed
//! seed, a workload of real clients recording a history, faults (chosen by
//! the seed, or taken in turn) until the time is up, then healing,
//! convergence (same zxid and `zk_digest` everywhere) and final reads of
//! every znode on every server, all checked by [`crate::history::check`]
//! and, for slow disks, [`crate::fault::check_slow_disk_acks`].
//!
//! The seed decides the fault schedule and the clients' choices; the
//! processes' own timing does not repeat exactly, so a seed reproduces the
//! same kinds and order of faults, not the same interleaving.

use crate::client::{self, Conn, ConnectError, Session};
use crate::cluster::{Cluster, ClusterSpec};
use crate::fault::{apply_fault, check_slow_disk_acks, undo, FaultSpan, Undo};
pub use crate::fault::{Fault, SLOW_FSYNC};
use crate::history::{self, History, Op, OpKind, Outcome, ReadResult, SessionEnd, VERIFIER};
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ROOT: &str = "/chaos";
/// Requested session timeout (the server clamps it to [2, 20] ticks).
pub const SESSION_TIMEOUT_MS: i32 = 5_000;
/// How long a client waits for one reply before calling it lost.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a healed cluster may take to elect a leader and converge.
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub spec: ClusterSpec,
    pub duration: Duration,
    pub clients: usize,
    pub keys: usize,
    pub faults: Vec<Fault>,
    /// Hold of one fault, and quiet time after healing (ms ranges).
    pub hold_ms: (u64, u64),
    pub quiet_ms: (u64, u64),
    /// Take `faults` in the listed order, round and round, rather than at
    /// random from the seed.
    pub faults_in_turn: bool,
}

impl RunConfig {
    pub fn new(seed: u64, spec: ClusterSpec, duration: Duration) -> RunConfig {
        RunConfig {
            seed,
            spec,
            duration,
            clients: 4,
            keys: 5,
            faults: Fault::ALL.to_vec(),
            hold_ms: (1_000, 4_000),
            quiet_ms: (1_000, 2_500),
            faults_in_turn: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub faults: BTreeMap<String, u64>,
    pub fault_spans: Vec<FaultSpan>,
    pub stats: history::Stats,
    pub violations: Vec<String>,
    pub lost: usize,
    pub final_zxid: String,
    pub digest: String,
    /// Snapshot and log files in every dataDir at the end.
    pub snapshots: usize,
    pub logs: usize,
    pub history: History,
}

impl Report {
    pub fn summary(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "seed={} snapshots={} logs={} operations={} reads={} acknowledged_writes={} unknown_outcome={} error_replies={} {:?} faults[{}] lost={} violations={} final_zxid={} digest={}",
            self.seed,
            self.snapshots,
            self.logs,
            self.stats.ops,
            self.stats.reads,
            self.stats.acked_writes,
            self.stats.unknown,
            self.stats.errors,
            self.stats.errors_by_code,
            faults.join(" "),
            self.lost,
            self.violations.len(),
            self.final_zxid,
            self.digest
        )
    }
}

/// Shared by the clients of a run.
struct Shared {
    start: Instant,
    stop: AtomicBool,
    ops: Mutex<Vec<Op>>,
    ends: Mutex<Vec<SessionEnd>>,
    servers: Vec<SocketAddr>,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }
    /// Records that a session ended now: closed at `closed_at_zxid`, or
    /// abandoned (`None`).
    fn end_session(&self, session: i64, timeout_ms: i32, closed_at_zxid: Option<i64>) {
        self.ends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SessionEnd {
                session,
                at_us: self.now_us(),
                closed_at_zxid,
                timeout_ms,
            });
    }
}

/// Sends one request and records it; returns the reply (None: unknown).
fn invoke(
    sh: &Shared,
    client: usize,
    conn: &mut Conn,
    session: &mut Session,
    kind: OpKind,
) -> Option<client::Reply> {
    let req = match &kind {
        OpKind::Set { path, value } => client::set_req(path, value),
        OpKind::Create {
            path,
            value,
            ephemeral,
        } => client::create_req(path, value, *ephemeral),
        OpKind::Get { path } => client::get_req(path),
        OpKind::List { path } => client::children_req(path),
        OpKind::CloseSession => paddock_core::proto::Request::CloseSession,
    };
    let invoke_us = sh.now_us();
    let res = conn.call(&req);
    let complete_us = sh.now_us();
    let (outcome, reply) = match res {
        Ok(r) => {
            let read = if r.err == 0 {
                match &kind {
                    OpKind::Get { .. } => {
                        client::parse_get(&r.body)
                            .ok()
                            .map(|(value, stat)| ReadResult::Data {
                                value,
                                mzxid: stat.mzxid,
                                czxid: stat.czxid,
                                ephemeral_owner: stat.ephemeral_owner,
                            })
                    }
                    OpKind::List { .. } => client::parse_children(&r.body)
                        .ok()
                        .map(ReadResult::Children),
                    _ => None,
                }
            } else if r.err == -101 && matches!(kind, OpKind::Get { .. } | OpKind::List { .. }) {
                Some(ReadResult::NoNode)
            } else {
                None
            };
            session.last_zxid = session.last_zxid.max(r.zxid);
            (
                Outcome::Reply {
                    zxid: r.zxid,
                    err: r.err,
                    read,
                },
                Some(r),
            )
        }
        Err(_) => (Outcome::Unknown, None),
    };
    sh.record(Op {
        client,
        session: session.id,
        server: conn.server,
        kind,
        invoke_us,
        complete_us,
        outcome,
    });
    reply
}

fn worker(sh: Arc<Shared>, client: usize, seed: u64, keys: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut session: Option<Session> = None;
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    let mut created: Vec<String> = Vec::new();
    while !sh.stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            let server = rng.gen_range(0..sh.servers.len());
            match Conn::connect(
                sh.servers[server],
                server + 1,
                session.as_ref(),
                SESSION_TIMEOUT_MS,
                IO_TIMEOUT,
            ) {
                Ok((c, s)) => {
                    let fresh = session.is_none();
                    session = Some(s);
                    conn = Some(c);
                    if fresh {
                        n += 1;
                        let path = format!("{ROOT}/e-{client}-{n}");
                        let value = format!("e-{client}-{n}").into_bytes();
                        let kind = OpKind::Create {
                            path,
                            value,
                            ephemeral: true,
                        };
                        let (c, s) = (conn.as_mut().expect("conn"), session.as_mut().expect("s"));
                        if invoke(&sh, client, c, s, kind).is_none() {
                            conn = None;
                        }
                    }
                }
                Err(ConnectError::Expired) => {
                    if let Some(s) = session.take() {
                        sh.end_session(s.id, s.timeout_ms, None);
                    }
                }
                Err(ConnectError::Io(_)) => {
                    std::thread::sleep(Duration::from_millis(rng.gen_range(20..150)));
                }
            }
            continue;
        }
        let (c, s) = (
            conn.as_mut().expect("conn"),
            session.as_mut().expect("session"),
        );
        n += 1;
        let roll = rng.gen_range(0..1000);
        let kind = if roll < 400 {
            OpKind::Set {
                path: format!("{ROOT}/k{}", rng.gen_range(0..keys)),
                value: format!("c{client}-{n}").into_bytes(),
            }
        } else if roll < 750 {
            OpKind::Get {
                path: format!("{ROOT}/k{}", rng.gen_range(0..keys)),
            }
        } else if roll < 880 {
            let path = format!("{ROOT}/n-{client}-{n}");
            created.push(path.clone());
            OpKind::Create {
                path,
                value: format!("n-{client}-{n}").into_bytes(),
                ephemeral: false,
            }
        } else if roll < 990 && !created.is_empty() {
            OpKind::Get {
                path: created[rng.gen_range(0..created.len())].clone(),
            }
        } else if roll < 995 {
            OpKind::CloseSession
        } else {
            // Abandon the session: its ephemeral must go after its timeout.
            sh.end_session(s.id, s.timeout_ms, None);
            conn = None;
            session = None;
            continue;
        };
        let closing = kind == OpKind::CloseSession;
        match invoke(&sh, client, c, s, kind) {
            None => conn = None,
            Some(r) => {
                if closing {
                    sh.end_session(s.id, s.timeout_ms, (r.err == 0).then_some(r.zxid));
                    conn = None;
                    session = None;
                } else if r.err == -112 || r.err == -118 || r.err == -4 {
                    // Expired, moved or connection loss: start over.
                    if r.err == -112 {
                        session = None;
                    }
                    conn = None;
                }
            }
        }
    }
}

/// Connects a fresh session to server `i` (bounded retries).
fn connect_to(cluster: &Cluster, i: usize) -> Result<(Conn, Session)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Conn::connect(
            cluster.servers[i].client_addr(),
            i + 1,
            None,
            SESSION_TIMEOUT_MS,
            IO_TIMEOUT,
        ) {
            Ok(x) => return Ok(x),
            Err(e) if Instant::now() > deadline => {
                anyhow::bail!("cannot open a session on server {}: {e:?}", i + 1)
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Creates /chaos and its keys (through the leader), recorded.
fn setup(cluster: &Cluster, sh: &Shared, keys: usize) -> Result<()> {
    let leader = cluster.leader().context("no leader for setup")?;
    let (mut c, mut s) = connect_to(cluster, leader)?;
    let mut paths = vec![ROOT.to_string()];
    paths.extend((0..keys).map(|k| format!("{ROOT}/k{k}")));
    for path in paths {
        let value = format!("init-{path}").into_bytes();
        let r = invoke(
            sh,
            VERIFIER - 1,
            &mut c,
            &mut s,
            OpKind::Create {
                path: path.clone(),
                value,
                ephemeral: false,
            },
        )
        .with_context(|| format!("setup create of {path}: connection lost"))?;
        anyhow::ensure!(r.err == 0, "setup create of {path}: error {}", r.err);
    }
    Ok(())
}

/// Reads every znode the history knows of, on every running server.
pub fn final_reads(
    cluster: &Cluster,
    sh_ops: &Mutex<Vec<Op>>,
    start: Instant,
    keys: usize,
) -> Result<()> {
    let sh = Shared {
        start,
        stop: AtomicBool::new(false),
        ops: Mutex::new(Vec::new()),
        ends: Mutex::new(Vec::new()),
        servers: Vec::new(),
    };
    let mut paths: Vec<String> = (0..keys).map(|k| format!("{ROOT}/k{k}")).collect();
    for op in sh_ops.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if let OpKind::Create { path, .. } = &op.kind {
            paths.push(path.clone());
        }
    }
    paths.sort();
    paths.dedup();
    for i in 0..cluster.servers.len() {
        if !cluster.servers[i].running() {
            continue;
        }
        let (mut c, mut s) = connect_to(cluster, i)?;
        let r = invoke(
            &sh,
            VERIFIER,
            &mut c,
            &mut s,
            OpKind::List { path: ROOT.into() },
        );
        anyhow::ensure!(r.is_some(), "final list on server {} lost", i + 1);
        for p in &paths {
            let r = invoke(
                &sh,
                VERIFIER,
                &mut c,
                &mut s,
                OpKind::Get { path: p.clone() },
            );
            anyhow::ensure!(r.is_some(), "final read of {p} on server {} lost", i + 1);
        }
        let _ = invoke(&sh, VERIFIER, &mut c, &mut s, OpKind::CloseSession);
    }
    let ops = sh.ops.into_inner().unwrap_or_else(|p| p.into_inner());
    sh_ops.lock().unwrap_or_else(|p| p.into_inner()).extend(ops);
    Ok(())
}

/// One run: see the module header. Errors are harness failures (a
/// cluster that never elects is reported as a violation instead).
pub fn run(cfg: &RunConfig) -> Result<Report> {
    eprintln!(
        "chaos: run seed={} voters={} observers={} duration={:?} faults={:?}",
        cfg.seed, cfg.spec.voters, cfg.spec.observers, cfg.duration, cfg.faults
    );
    let mut cluster = Cluster::start(cfg.spec.clone())?;
    let mut report = Report {
        seed: cfg.seed,
        ..Report::default()
    };
    if let Err(e) = cluster.wait_for_all(HEAL_TIMEOUT) {
        anyhow::bail!("{e}\n{}", cluster.all_logs_tail(30));
    }
    let sh = Arc::new(Shared {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        ops: Mutex::new(Vec::new()),
        ends: Mutex::new(Vec::new()),
        servers: cluster.servers.iter().map(|s| s.client_addr()).collect(),
    });
    setup(&cluster, &sh, cfg.keys)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let workers: Vec<_> = (0..cfg.clients)
        .map(|c| {
            let sh = sh.clone();
            let seed = cfg.seed.wrapping_mul(31).wrapping_add(c as u64 + 1);
            let keys = cfg.keys;
            std::thread::spawn(move || worker(sh, c, seed, keys))
        })
        .collect();
    let deadline = Instant::now() + cfg.duration;
    let mut liveness = Vec::new();
    let mut turn = 0usize;
    while Instant::now() < deadline && !cfg.faults.is_empty() {
        let fault = if cfg.faults_in_turn {
            cfg.faults[turn % cfg.faults.len()]
        } else {
            cfg.faults[rng.gen_range(0..cfg.faults.len())]
        };
        turn += 1;
        let leader = cluster.leader();
        let u = apply_fault(&mut cluster, fault, leader, cfg.hold_ms.1, &mut rng)?;
        let targets = u.targets();
        let (fsync_delay, fsyncs_before) = match &u {
            Undo::FastDisks(list, d, _) => (
                Some(*d),
                list.iter().map(|i| cluster.delayed_fsyncs(*i)).collect(),
            ),
            _ => (None, Vec::new()),
        };
        let start_us = sh.now_us();
        *report.faults.entry(format!("{fault:?}")).or_default() += 1;
        std::thread::sleep(Duration::from_millis(
            rng.gen_range(cfg.hold_ms.0..=cfg.hold_ms.1),
        ));
        let end_us = sh.now_us();
        let delayed_fsyncs = targets
            .iter()
            .zip(&fsyncs_before)
            .map(|(i, before)| cluster.delayed_fsyncs(*i) - before)
            .collect();
        undo(&mut cluster, u, &mut rng)?;
        report.fault_spans.push(FaultSpan {
            fault,
            targets,
            leader,
            start_us,
            end_us,
            fsync_delay,
            delayed_fsyncs,
        });
        if let Err(e) = cluster.wait_for_all(HEAL_TIMEOUT) {
            liveness.push(format!("after healing {fault:?}: {e}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(
            rng.gen_range(cfg.quiet_ms.0..=cfg.quiet_ms.1),
        ));
    }
    if cfg.faults.is_empty() {
        std::thread::sleep(cfg.duration);
    }
    sh.stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    // Heal everything; every server must come back and converge.
    cluster.proxy.heal_all(false);
    for i in 0..cluster.servers.len() {
        cluster.resume(i)?;
        if let Some(st) = cluster.exited(i) {
            report
                .violations
                .push(format!("server {} exited on its own: {st}", i + 1));
        }
        cluster.restart(i)?;
    }
    report.violations.extend(liveness);
    match cluster
        .wait_for_all(HEAL_TIMEOUT)
        .and_then(|_| cluster.wait_for_convergence(HEAL_TIMEOUT))
    {
        Ok((z, d)) => {
            report.final_zxid = z;
            report.digest = d;
        }
        Err(e) => report.violations.push(format!("after healing: {e}")),
    }
    // Abandoned sessions must have expired before the final reads.
    let wait_ms = SESSION_TIMEOUT_MS as u64 * 3 + history::EXPIRY_SLACK_US / 1000 + 500;
    std::thread::sleep(Duration::from_millis(wait_ms.min(25_000)));
    if report.violations.is_empty() {
        if let Err(e) = final_reads(&cluster, &sh.ops, sh.start, cfg.keys) {
            report.violations.push(format!("final reads: {e}"));
        }
    }
    for i in 0..cluster.servers.len() {
        let (s, l) = cluster.data_files(i);
        report.snapshots += s;
        report.logs += l;
    }
    for i in cluster.panicked() {
        report
            .violations
            .push(format!("server {} panicked (see its log)", i + 1));
    }
    let history = History {
        ops: std::mem::take(&mut *sh.ops.lock().unwrap_or_else(|p| p.into_inner())),
        session_ends: std::mem::take(&mut *sh.ends.lock().unwrap_or_else(|p| p.into_inner())),
    };
    let found = history::check(&history);
    report.lost = found.iter().filter(|v| v.contains(": lost")).count();
    report.violations.extend(found);
    report
        .violations
        .extend(check_slow_disk_acks(&history, &report.fault_spans));
    report.stats = history.stats();
    report.history = history;
    if !report.violations.is_empty() {
        eprintln!("{}", cluster.all_logs_tail(40));
        eprintln!(
            "chaos: data kept in {} (CHAOS_KEEP)",
            cluster.root.path().display()
        );
        if std::env::var_os("CHAOS_KEEP").is_none() {
            // Keep the evidence of a failure.
            std::mem::forget(std::mem::replace(&mut cluster.root, tempfile::tempdir()?));
        }
    }
    eprintln!("chaos: {}", report.summary());
    Ok(report)
}
