//! The command line (used by the `paddock-sim` binary). Like `main.rs`, it
//! may read the wall clock (to report speed-up) and spawn threads (`swarm
//! --jobs`); each run itself stays on one thread and never sees either.

use clap::{Args, Parser, Subcommand};
use paddock_sim::scenario::{Overrides, Scenario};
use paddock_sim::{run, Report, Verdict};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "paddock-sim",
    about = "Deterministic simulation of Paddock's core"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone, Default)]
struct Knobs {
    /// Keep only these fault-plan indices (comma-separated; '' for none).
    #[arg(long)]
    only_faults: Option<String>,
    /// Cap on operations per client.
    #[arg(long)]
    ops: Option<u64>,
    #[arg(long)]
    clients: Option<usize>,
    /// Voters (1, 3 or 5).
    #[arg(long)]
    servers: Option<u64>,
    /// Observers (0 or 1, with 3 or 5 voters).
    #[arg(long)]
    observers: Option<u64>,
    /// Plant a core bug by name (build with `--features canary`).
    #[arg(long)]
    canary: Option<String>,
}

impl Knobs {
    fn overrides(&self) -> Overrides {
        Overrides {
            only_faults: self.only_faults.as_ref().map(|s| {
                s.split(',')
                    .filter(|x| !x.trim().is_empty())
                    .map(|x| x.trim().parse().expect("fault indices are numbers"))
                    .collect()
            }),
            ops_max: self.ops,
            clients: self.clients,
            servers: self.servers,
            observers: self.observers,
            canary: self.canary.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// One run; prints a summary ending in the trace hash.
    Run {
        #[arg(long)]
        seed: u64,
        /// Write the full trace here.
        #[arg(long)]
        trace: Option<String>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Many seeds; stops at nothing, reports the first failure.
    Swarm {
        #[arg(long)]
        seeds: u64,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// One run with its full trace on stdout.
    Replay {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Reduces a failing run to the fewest faults and operations.
    Shrink {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Lists the planted bugs `--canary` accepts.
    Canaries,
    /// A named fault schedule (a data-loss bug Apache ZooKeeper shipped):
    /// NAME, `all`, or `--list`.
    Scenario {
        name: Option<String>,
        #[arg(long)]
        list: bool,
        /// Print the full trace of each.
        #[arg(long)]
        trace: bool,
    },
    /// Simulated-time / wall-time speed-up under a steady client load:
    /// no faults, clients busy for the whole loaded phase; then the run
    /// goes on to its checks, which must pass.
    Bench {
        #[arg(long, default_value_t = 3)]
        servers: u64,
        /// Client counts to measure, one line each (the load's steps).
        #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3, 6])]
        clients: Vec<usize>,
        /// Simulated seconds of load per run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 5)]
        runs: u64,
        /// Times each seed's loaded phase this often after a first, cold
        /// timing, and keeps the median.
        #[arg(long, default_value_t = 3)]
        repeat: u64,
        /// Also print a line per seed (its recipes, load and speed-up).
        #[arg(long, short)]
        verbose: bool,
    },
}

fn figures(r: &Report, wall_s: f64) -> String {
    let sim_s = r.sim_ns as f64 / 1e9;
    format!(
        "{sim_s:.1} sim s in {wall_s:.2} wall s (x{:.0}), {} events",
        sim_s / wall_s.max(1e-9),
        r.events
    )
}

fn print_failure(r: &Report) {
    let (kind, why) = match &r.verdict {
        Verdict::Ok => return,
        Verdict::Safety(w) => ("safety violation", w),
        Verdict::Liveness(w) => ("liveness failure", w),
        Verdict::Panic(w) => ("panic", w),
    };
    println!("seed {}: {kind}:\n  {why}", r.seed);
    println!("scenario: {}", r.describe);
    println!("last events:");
    for l in &r.tail {
        println!("  {l}");
    }
    println!("replay: {}", r.replay_command());
}

fn timed(seed: u64, o: &Overrides, keep: bool) -> (Report, f64) {
    let t0 = wall_now();
    let r = run(seed, o, keep);
    (r, t0.elapsed().as_secs_f64())
}

pub fn main() -> i32 {
    // Panics are reported as verdicts; keep the default hook's noise short.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
    }));
    match Cli::parse().cmd {
        Cmd::Run { seed, trace, knobs } => {
            let (r, wall) = timed(seed, &knobs.overrides(), trace.is_some());
            if let (Some(path), Some(lines)) = (trace, &r.full_trace) {
                let mut text = lines.join("\n");
                text.push('\n');
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("cannot write {path}: {e}");
                }
            }
            print_failure(&r);
            println!("{}; {}", figures(&r, wall), r.summary());
            r.verdict.exit_code()
        }
        Cmd::Replay { seed, knobs } => {
            let (r, wall) = timed(seed, &knobs.overrides(), true);
            for l in r.full_trace.iter().flatten() {
                println!("{l}");
            }
            print_failure(&r);
            println!("{}; {}", figures(&r, wall), r.summary());
            r.verdict.exit_code()
        }
        Cmd::Swarm {
            seeds,
            from,
            jobs,
            knobs,
        } => swarm(seeds, from, jobs.max(1), &knobs.overrides()),
        Cmd::Shrink { seed, knobs } => shrink(seed, knobs.overrides()),
        Cmd::Scenario { name, list, trace } => scenario(name, list, trace),
        Cmd::Canaries => {
            let names = canary_names();
            if names.is_empty() {
                println!("(none: build with --features canary)");
            }
            for n in names {
                println!("{n}");
            }
            0
        }
        Cmd::Bench {
            servers,
            clients,
            seconds,
            runs,
            repeat,
            verbose,
        } => clients
            .into_iter()
            .map(|c| bench(servers, c, seconds, runs, repeat, verbose))
            .max()
            .unwrap_or(0),
    }
}

/// Runs `runs` seeds of a fault-free ensemble under load for `seconds`
/// simulated seconds each; times the loaded phase alone (the figure
/// reported as the speed-up) and the whole run with its idle tail and
/// final checks. Exit 1 if any run fails its checks.
fn bench(servers: u64, clients: usize, seconds: u64, runs: u64, repeat: u64, verbose: bool) -> i32 {
    use paddock_sim::world::{World, MS};
    let o = Overrides {
        only_faults: Some(BTreeSet::new()),
        servers: Some(servers),
        // The ensemble the bench names: voters only.
        observers: Some(0),
        clients: Some(clients),
        ..Overrides::default()
    };
    let (mut loaded_wall, mut cold_wall, mut total_wall) = (0f64, 0f64, 0f64);
    let (mut loaded_events, mut ops, mut total_sim) = (0u64, 0usize, 0u64);
    let mut status = 0;
    for seed in 0..runs {
        let mut scn = Scenario::draw(seed, &o);
        scn.safety_ms = seconds * 1_000;
        let recipes = format!("{:?}", scn.recipes);
        // The loaded phase is timed once cold, then `repeat` times more (a
        // seed replays exactly, so each run does the same work), and the
        // median of those kept. The cold run pays for the process's first
        // touch of its memory: on this kind of virtual machine the kernel
        // zeroing fresh pages took up to a sixth of a run, a cost a swarm
        // pays once. Single timings of one seed varied by 40%.
        let mut cold = None;
        let mut walls = Vec::new();
        let w = loop {
            let mut w = World::new(scn.clone(), false);
            let t0 = wall_now();
            w.run_until(seconds * 1_000 * MS);
            let took = t0.elapsed().as_secs_f64();
            match cold {
                None => cold = Some(took),
                Some(_) => walls.push(took),
            }
            if walls.len() as u64 >= repeat.max(1) {
                break w;
            }
        };
        walls.sort_by(f64::total_cmp);
        let wall = walls[walls.len() / 2];
        loaded_wall += wall;
        cold_wall += cold.expect("timed first");
        loaded_events += w.events;
        ops += w.hist.ops.len();
        if verbose {
            println!(
                "  seed {seed} {recipes}: {} ops ({:.0} per sim s), {} events, x{:.0}",
                w.hist.ops.len(),
                w.hist.ops.len() as f64 / seconds as f64,
                w.events,
                seconds as f64 / wall
            );
        }
        let t0 = wall_now();
        let (r, _) = paddock_sim::run_world(w, &o);
        total_wall += wall + t0.elapsed().as_secs_f64();
        total_sim += r.sim_ns;
        if !r.verdict.is_ok() {
            print_failure(&r);
            status = 1;
        }
    }
    let loaded_s = (seconds * runs) as f64;
    println!(
        "bench: {servers} servers, {clients} clients, no faults, {runs} runs of {seconds} loaded sim s: \
         {ops} client ops ({:.0} ops per sim s), {loaded_events} events in {loaded_wall:.2} wall s \
         (median of {repeat} timings per seed after a cold one): \
         speed-up x{:.0} under load ({:.0} events/s; the cold timings alone: x{:.0}); \
         whole runs with idle tail and checks: {:.0} sim s in {total_wall:.2} wall s (x{:.0})",
        ops as f64 / loaded_s,
        loaded_s / loaded_wall,
        loaded_events as f64 / loaded_wall,
        loaded_s / cold_wall,
        total_sim as f64 / 1e9,
        total_sim as f64 / 1e9 / total_wall,
    );
    status
}

fn scenario(name: Option<String>, list: bool, trace: bool) -> i32 {
    use paddock_sim::named;
    if list || name.is_none() {
        for n in named::all() {
            println!("{:8} {}", n.name, n.about);
        }
        return if list { 0 } else { 2 };
    }
    let name = name.expect("checked");
    let chosen: Vec<named::Named> = if name == "all" {
        named::all()
    } else {
        match named::find(&name) {
            Some(n) => vec![n],
            None => {
                eprintln!("no scenario {name}; `paddock-sim scenario --list` names them");
                return 2;
            }
        }
    };
    let mut worst = 0;
    for n in &chosen {
        let t0 = wall_now();
        let r = named::run_named(n);
        let wall = t0.elapsed().as_secs_f64();
        if trace {
            for l in r.report.full_trace.iter().flatten() {
                println!("{l}");
            }
        }
        print_failure(&r.report);
        match &r.moments {
            Ok(notes) => println!("{}: schedule played out: {notes}", n.name),
            Err(why) => println!("{}: SCHEDULE DID NOT PLAY OUT: {why}", n.name),
        }
        println!(
            "{} {}: {} ({}); {}",
            n.name,
            if r.ok() { "ok" } else { "FAILED" },
            n.about,
            figures(&r.report, wall),
            r.report.summary()
        );
        if !r.ok() {
            println!(
                "replay: cargo run -p paddock-sim -- scenario {} --trace",
                n.name
            );
            worst = worst.max(r.exit_code());
        }
    }
    worst
}

pub fn canary_names() -> Vec<&'static str> {
    #[cfg(feature = "canary")]
    {
        paddock_core::canary::Canary::ALL
            .iter()
            .map(|c| c.name())
            .collect()
    }
    #[cfg(not(feature = "canary"))]
    {
        Vec::new()
    }
}

fn swarm(seeds: u64, from: u64, jobs: usize, o: &Overrides) -> i32 {
    let next = AtomicU64::new(from);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let first: Mutex<Option<Report>> = Mutex::new(None);
    let failures = AtomicU64::new(0);
    let totals = Mutex::new((0u64, 0u64));
    let t0 = wall_now();
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= from + seeds {
                    return;
                }
                let r = run(seed, o, false);
                {
                    let mut t = totals.lock().expect("lock");
                    t.0 += r.sim_ns;
                    t.1 += r.events;
                }
                if !r.verdict.is_ok() {
                    failures.fetch_add(1, Ordering::SeqCst);
                    println!("{}", r.summary());
                    let mut f = first.lock().expect("lock");
                    if f.as_ref().is_none_or(|x| x.seed > r.seed) {
                        *f = Some(r);
                    }
                    failed.store(true, Ordering::SeqCst);
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(50) || n == seeds {
                    eprintln!(
                        "swarm: {n}/{seeds} seeds, {} failed, {:.1} s",
                        failures.load(Ordering::SeqCst),
                        t0.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let (sim, events) = *totals.lock().expect("lock");
    println!(
        "swarm: {seeds} seeds from {from}, {} failed; {:.0} sim s, {events} events in {wall:.1} wall s (x{:.0} with {jobs} jobs)",
        failures.load(Ordering::SeqCst),
        sim as f64 / 1e9,
        sim as f64 / 1e9 / wall
    );
    if let Some(r) = first.lock().expect("lock").take() {
        print_failure(&r);
        return 1;
    }
    0
}

fn same_failure(a: &Verdict, b: &Verdict) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b) && !b.is_ok()
}

fn shrink(seed: u64, mut o: Overrides) -> i32 {
    let base = run(seed, &o, false);
    if base.verdict.is_ok() {
        println!("seed {seed} passes; nothing to shrink");
        return 0;
    }
    println!("shrinking {}", base.summary());
    let target = base.verdict.clone();
    let fails = |o: &Overrides| same_failure(&target, &run(seed, o, false).verdict);
    let plan_len = Scenario::draw(
        seed,
        &Overrides {
            only_faults: None,
            ..o.clone()
        },
    )
    .plan
    .len();
    let clients_before = Scenario::draw(seed, &o).recipes.len();
    if o.only_faults.is_none() {
        o.only_faults = Some((0..plan_len).collect());
    }
    // Each cut changes the timing the others see (fewer operations end a
    // client's load sooner, fewer faults let others land elsewhere), so the
    // passes repeat until one changes nothing.
    for _ in 0..SHRINK_PASSES_MAX {
        let before = o.clone();
        o = shrink_faults(o, &fails);
        o = shrink_clients(seed, o, &fails);
        o = shrink_ops(seed, o, &fails);
        if o == before {
            break;
        }
    }
    let r = run(seed, &o, false);
    let keep: Vec<usize> = o.only_faults.iter().flatten().copied().collect();
    println!(
        "reduced to {} faults {:?}, {} ops per client at most:",
        keep.len(),
        keep,
        o.ops_max.map_or("unbounded".into(), |x| x.to_string())
    );
    println!(
        "shrunk seed {seed}: faults applied {} -> {}, clients {} -> {}, ops {} -> {} (acked writes {} -> {})",
        base.faults,
        r.faults,
        clients_before,
        Scenario::draw(seed, &o).recipes.len(),
        base.ops,
        r.ops,
        base.acked,
        r.acked
    );
    print_failure(&r);
    1
}

/// Rounds of (faults, clients, operations) cuts `shrink` makes at most.
const SHRINK_PASSES_MAX: usize = 4;

/// Drops faults from the plan: halves first, then one at a time.
fn shrink_faults(mut o: Overrides, fails: &dyn Fn(&Overrides) -> bool) -> Overrides {
    let mut keep: Vec<usize> = o.only_faults.iter().flatten().copied().collect();
    let mut chunk = keep.len().div_ceil(2).max(1);
    while !keep.is_empty() {
        let mut i = 0;
        while i < keep.len() {
            let trial: Vec<usize> = keep
                .iter()
                .enumerate()
                .filter(|(j, _)| *j < i || *j >= i + chunk)
                .map(|(_, f)| *f)
                .collect();
            let t = Overrides {
                only_faults: Some(trial.iter().copied().collect()),
                ..o.clone()
            };
            if fails(&t) {
                keep = trial;
                o = t;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    o
}

/// The fewest clients (the first ones drawn) that still fail.
fn shrink_clients(seed: u64, o: Overrides, fails: &dyn Fn(&Overrides) -> bool) -> Overrides {
    let clients = Scenario::draw(seed, &o).recipes.len();
    for c in 1..clients {
        let t = Overrides {
            clients: Some(c),
            ..o.clone()
        };
        if fails(&t) {
            return t;
        }
    }
    o
}

/// A cap on operations per client, by bisection (failing is not monotone
/// in the cap, so this finds a small failing cap, not the smallest).
fn shrink_ops(seed: u64, mut o: Overrides, fails: &dyn Fn(&Overrides) -> bool) -> Overrides {
    let (mut lo, mut hi) = (0u64, run(seed, &o, false).ops as u64 + 1);
    if let Some(cap) = o.ops_max {
        hi = hi.min(cap);
    }
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fails(&Overrides {
            ops_max: Some(mid),
            ..o.clone()
        }) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let t = Overrides {
        ops_max: Some(hi),
        ..o.clone()
    };
    if o.ops_max != Some(hi) && fails(&t) {
        o = t;
    }
    o
}
