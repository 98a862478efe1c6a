//! The command line (used by the `paddock-sim` binary). Like `main.rs`, it
//! may read the wall clock (to report speed-up) and spawn threads (`swarm
//! --jobs`); each run itself stays on one thread and never sees either.

use crate::report::Shard;
use clap::{Args, Parser, Subcommand};
use paddock_sim::scenario::{Overrides, Scenario};
use paddock_sim::{run, Report, Verdict};
use std::collections::BTreeSet;
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> Instant {
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
    /// Draw membership changes (reconfig) into every run.
    #[arg(long)]
    reconfig: bool,
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
            reconfig: self.reconfig,
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
        /// Write the run's timeline here: one self-contained HTML page.
        #[arg(long)]
        html: Option<String>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Many seeds; stops at nothing, reports every failure and details
    /// the first (lowest seed). Exit 1 if any seed failed.
    Swarm {
        /// Seeds in the range (from --from); with --shard, the range the
        /// shards split.
        #[arg(long, required_unless_present = "minutes")]
        seeds: Option<u64>,
        /// Run seeds until this many minutes have passed (and the range,
        /// if --seeds is given too, is not yet done); reports how many ran.
        #[arg(long)]
        minutes: Option<f64>,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// I/N: run only the I-th of N interleaved shares of the range
        /// (seeds from+I-1, from+I-1+N, ...), for N parallel CI jobs.
        #[arg(long, value_parser = Shard::parse)]
        shard: Option<Shard>,
        /// Write a JUnit XML report (a test case per failing seed).
        #[arg(long)]
        junit: Option<String>,
        /// Write a JSON summary (seeds, failures, verdicts, times).
        #[arg(long)]
        json: Option<String>,
        /// With --junit, --json or --html-dir: shrink this many failing
        /// seeds (the lowest) for their fault lists and pages.
        #[arg(long, default_value_t = 3)]
        shrink: usize,
        /// Write each failing seed's timeline here as seed-S.html (the
        /// shrunk run's, when it was shrunk).
        #[arg(long)]
        html_dir: Option<String>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Merges the JSON reports of a sharded swarm's jobs; exit 1 if any
    /// seed failed, 2 if the reports overlap or belong to other swarms.
    Combine {
        /// The shards' `swarm --json` files.
        #[arg(required = true)]
        reports: Vec<String>,
        #[arg(long)]
        json: Option<String>,
        #[arg(long)]
        junit: Option<String>,
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
        /// Write the shrunk run's timeline here (one HTML page).
        #[arg(long)]
        html: Option<String>,
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

pub fn print_failure(r: &Report) {
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
        Cmd::Run {
            seed,
            trace,
            html,
            knobs,
        } => {
            let (r, wall) = match &html {
                Some(path) => {
                    let t0 = wall_now();
                    match crate::html::run_to_html(seed, &knobs.overrides(), path) {
                        Ok(r) => (r, t0.elapsed().as_secs_f64()),
                        Err(e) => {
                            eprintln!("{e}");
                            return 2;
                        }
                    }
                }
                None => timed(seed, &knobs.overrides(), trace.is_some()),
            };
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
            minutes,
            from,
            jobs,
            shard,
            junit,
            json,
            shrink,
            html_dir,
            knobs,
        } => crate::swarm::swarm(
            &crate::swarm::Swarm {
                seeds,
                minutes,
                from,
                jobs,
                shard: shard.unwrap_or(Shard::WHOLE),
                junit,
                json,
                shrink,
                html_dir,
            },
            &knobs.overrides(),
        ),
        Cmd::Combine {
            reports,
            json,
            junit,
        } => crate::swarm::combine(&reports, json.as_deref(), junit.as_deref()),
        Cmd::Shrink { seed, html, knobs } => {
            let (status, shrunk) = crate::shrink::shrink(seed, knobs.overrides());
            match (html, shrunk) {
                (Some(path), Some(s)) => {
                    match crate::html::run_to_html(seed, &s.overrides, &path) {
                        Ok(_) => {
                            println!("timeline of the shrunk run: {path}");
                            status
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            2
                        }
                    }
                }
                _ => status,
            }
        }
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
