//! `swarm`: many seeds in parallel, bounded by a seed count, a time limit
//! or both, optionally one shard of the range; progress on stderr (one
//! updating line on a terminal, plain `swarm: N/M ...` lines otherwise);
//! JSON and JUnit reports; `combine` merges shard reports.

use crate::cli::{print_failure, wall_now};
use crate::report::{self, FailureEntry, Shard, ShrunkEntry, Span, SwarmReport};
use crate::shrink;
use paddock_sim::scenario::Overrides;
use paddock_sim::{run, Report, Verdict};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to run and where to report it.
pub struct Swarm {
    pub seeds: Option<u64>,
    pub minutes: Option<f64>,
    pub from: u64,
    pub jobs: usize,
    pub shard: Shard,
    pub junit: Option<String>,
    pub json: Option<String>,
    /// Failing seeds to shrink for the reports (lowest seeds first).
    pub shrink: usize,
    /// Where to write failing seeds' timelines.
    pub html_dir: Option<String>,
}

/// Plain progress lines: one per this many seeds.
const PLAIN_EVERY: u64 = 50;
/// The terminal line is redrawn at most this often.
const TTY_EVERY: Duration = Duration::from_millis(200);

struct Progress {
    tty: bool,
    t0: Instant,
    total: Option<u64>,
    deadline: Option<Duration>,
    last: Mutex<Instant>,
}

impl Progress {
    fn line(&self, done: u64, failed: u64) -> String {
        let el = self.t0.elapsed();
        let rate = done as f64 / el.as_secs_f64().max(1e-9);
        let mut left: Option<f64> = self
            .total
            .map(|t| t.saturating_sub(done) as f64 / rate.max(1e-9));
        if let Some(d) = self.deadline {
            let by_time = d.saturating_sub(el).as_secs_f64();
            left = Some(left.map_or(by_time, |l| l.min(by_time)));
        }
        format!(
            "swarm: {done}/{} seeds, {failed} failed, {rate:.1} seeds/s, {:.0} s elapsed{}",
            self.total.map_or("?".into(), |t| t.to_string()),
            el.as_secs_f64(),
            left.map_or(String::new(), |l| format!(", ~{l:.0} s left"))
        )
    }

    fn seed_done(&self, done: u64, failed: u64) {
        if self.tty {
            let mut last = self.last.lock().expect("lock");
            if last.elapsed() >= TTY_EVERY || Some(done) == self.total {
                *last = wall_now();
                eprint!("\r\x1b[2K{}", self.line(done, failed));
                let _ = std::io::stderr().flush();
            }
        } else if done.is_multiple_of(PLAIN_EVERY) || Some(done) == self.total {
            eprintln!("{}", self.line(done, failed));
        }
    }

    /// Prints a line of output without tearing the progress line.
    fn say(&self, text: &str) {
        let _guard = self.last.lock().expect("lock");
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        println!("{text}");
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Safety(_) => "safety",
        Verdict::Liveness(_) => "liveness",
        Verdict::Panic(_) => "panic",
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Ok => "ok".into(),
        Verdict::Safety(w) | Verdict::Liveness(w) | Verdict::Panic(w) => w.clone(),
    }
}

pub fn swarm(a: &Swarm, o: &Overrides) -> i32 {
    let jobs = a.jobs.max(1);
    let total = a.seeds.map(|n| a.shard.share(n));
    let deadline = a
        .minutes
        .map(|m| Duration::from_secs_f64(m.max(0.0) * 60.0));
    let t0 = wall_now();
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
        t0,
        total,
        deadline,
        last: Mutex::new(t0),
    };
    // Every index taken below `total` is run to its end, so the seeds run
    // are the shard's first `done` seeds, whichever job ran each.
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let failures: Mutex<Vec<(Report, f64)>> = Mutex::new(Vec::new());
    let totals = Mutex::new((0u64, 0u64, BTreeMap::<String, u64>::new()));
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                if deadline.is_some_and(|d| t0.elapsed() >= d) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                if total.is_some_and(|t| k >= t) {
                    return;
                }
                let seed = a.shard.seed(a.from, k);
                let t = wall_now();
                let r = run(seed, o, false);
                let wall = t.elapsed().as_secs_f64();
                {
                    let mut t = totals.lock().expect("lock");
                    t.0 += r.sim_ns;
                    t.1 += r.events;
                    *t.2.entry(verdict_name(&r.verdict).into()).or_insert(0) += 1;
                }
                let f = if r.verdict.is_ok() {
                    failed.load(Ordering::SeqCst)
                } else {
                    progress.say(&r.summary());
                    failures.lock().expect("lock").push((r, wall));
                    failed.fetch_add(1, Ordering::SeqCst) + 1
                };
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress.seed_done(n, f);
            });
        }
    });
    progress.finish();
    let wall = t0.elapsed().as_secs_f64();
    let ran = done.load(Ordering::SeqCst);
    let (sim_ns, events, verdicts) = totals.into_inner().expect("lock");
    let mut failures = failures.into_inner().expect("lock");
    failures.sort_by_key(|(r, _)| r.seed);
    let sim_s = sim_ns as f64 / 1e9;
    let timed_out = total.is_none_or(|t| ran < t);
    let shard = if a.shard == Shard::WHOLE {
        String::new()
    } else {
        format!(" (shard {}/{})", a.shard.index, a.shard.count)
    };
    let bound = match (a.seeds, a.minutes) {
        (Some(n), None) => format!("{n} seeds"),
        (None, Some(m)) => format!("{m} min"),
        (Some(n), Some(m)) => format!("{n} seeds or {m} min"),
        (None, None) => "nothing".into(),
    };
    println!(
        "swarm: {ran} seeds from {}{shard}, {} failed; {sim_s:.0} sim s, {events} events in {wall:.1} wall s (x{:.0} with {jobs} jobs); asked for {bound}{}",
        a.from,
        failures.len(),
        sim_s / wall.max(1e-9),
        if timed_out && a.minutes.is_some() {
            ", stopped by the time limit"
        } else {
            ""
        },
    );
    let reporting = a.junit.is_some() || a.json.is_some() || a.html_dir.is_some();
    let mut entries = Vec::new();
    let mut status = 0;
    for (i, (r, wall)) in failures.iter().enumerate() {
        let reduced = (reporting && i < a.shrink)
            .then(|| shrink::reduce(r.seed, o.clone()))
            .flatten();
        if let Some(dir) = &a.html_dir {
            let page = format!("{dir}/seed-{}.html", r.seed);
            let ov = reduced.as_ref().map_or(o, |s| &s.overrides);
            let written = std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {dir}: {e}"))
                .and_then(|_| crate::html::run_to_html(r.seed, ov, &page));
            match written {
                Ok(_) => println!("timeline of seed {}: {page}", r.seed),
                Err(e) => {
                    eprintln!("{e}");
                    status = 2;
                }
            }
        }
        let shrunk = reduced.map(|s| ShrunkEntry {
            repro: s.report.replay_command(),
            faults: s.fault_list(),
            ops_max: s.overrides.ops_max,
            clients: s.overrides.clients,
            verdict: verdict_text(&s.report.verdict),
        });
        entries.push(FailureEntry {
            seed: r.seed,
            verdict: verdict_name(&r.verdict).into(),
            message: verdict_text(&r.verdict),
            summary: r.summary(),
            repro: r.replay_command(),
            wall_s: *wall,
            shrunk,
        });
    }
    let rep = SwarmReport {
        from: a.from,
        seeds: a.seeds,
        minutes: a.minutes,
        shards: vec![a.shard],
        flags: o.flags(),
        jobs,
        ran,
        seeds_run: vec![Span {
            first: a.shard.seed(a.from, 0),
            stride: a.shard.count,
            count: ran,
        }],
        timed_out,
        failures: entries,
        verdicts,
        sim_s,
        wall_s: wall,
        speedup: sim_s / wall.max(1e-9),
        events,
    };
    status = status.max(write_reports(&rep, a.json.as_deref(), a.junit.as_deref()));
    if let Some((r, _)) = failures.first() {
        print_failure(r);
        status = status.max(1);
    }
    status
}

/// Writes the JSON and JUnit files asked for; 2 if one cannot be written.
fn write_reports(rep: &SwarmReport, json: Option<&str>, junit: Option<&str>) -> i32 {
    let mut status = 0;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(rep).expect("a report serialises");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("cannot write {path}: {e}");
            status = 2;
        }
    }
    if let Some(path) = junit {
        if let Err(e) = std::fs::write(path, report::junit(rep)) {
            eprintln!("cannot write {path}: {e}");
            status = 2;
        }
    }
    status
}

/// `combine`: merges shard reports into one (JSON and/or JUnit), prints
/// the totals, the seeds of the range no shard ran, and the failures.
/// Exit 1 if any seed failed, 2 if the reports do not fit together.
pub fn combine(inputs: &[String], json: Option<&str>, junit: Option<&str>) -> i32 {
    let mut reports = Vec::new();
    for p in inputs {
        let parsed = std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<SwarmReport>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("cannot read swarm report {p}: {e}");
                return 2;
            }
        }
    }
    let rep = match report::combine(&reports) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot combine: {e}");
            return 2;
        }
    };
    let (gone, first_gone) = report::missing(&rep);
    println!(
        "combined {} reports: {} seeds ran, {} failed; {:.0} sim s in {:.1} wall s summed (x{:.0}){}",
        reports.len(),
        rep.ran,
        rep.failures.len(),
        rep.sim_s,
        rep.wall_s,
        rep.speedup,
        if gone > 0 {
            format!("; {gone} seeds of the range not run (time limit or missing shards), first {first_gone:?}")
        } else {
            String::new()
        }
    );
    for f in &rep.failures {
        println!("{}\n  replay: {}", f.summary, f.repro);
        if let Some(s) = &f.shrunk {
            println!("  shrunk: {}", s.repro);
        }
    }
    let status = write_reports(&rep, json, junit);
    if status != 0 {
        return status;
    }
    i32::from(!rep.failures.is_empty())
}
