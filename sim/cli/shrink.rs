//! `shrink`: reduces a failing run to the fewest faults, clients and
//! operations that still fail the same way. `swarm` uses it too, for the
//! fault list its JUnit and JSON reports give each failing seed.

use paddock_sim::scenario::{Overrides, Scenario};
use paddock_sim::{run, Report, Verdict};

/// A failing run and its reduction.
pub struct Shrunk {
    pub seed: u64,
    /// What reproduces the reduced failure.
    pub overrides: Overrides,
    pub base: Report,
    pub report: Report,
    pub clients_before: usize,
}

impl Shrunk {
    /// The kept faults, one line each: plan index, time and fault.
    pub fn fault_list(&self) -> Vec<String> {
        fault_list(self.seed, &self.overrides)
    }
}

/// The faults `o` keeps from `seed`'s plan, one line each.
pub fn fault_list(seed: u64, o: &Overrides) -> Vec<String> {
    let plan = Scenario::draw(
        seed,
        &Overrides {
            only_faults: None,
            ..o.clone()
        },
    )
    .plan;
    plan.iter()
        .enumerate()
        .filter(|(i, _)| o.only_faults.as_ref().is_none_or(|k| k.contains(i)))
        .map(|(i, (at_ms, f))| format!("#{i} at {at_ms} ms: {f:?}"))
        .collect()
}

fn same_failure(a: &Verdict, b: &Verdict) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b) && !b.is_ok()
}

/// Reduces `seed`'s failure under `o`; `None` if the seed passes.
pub fn reduce(seed: u64, mut o: Overrides) -> Option<Shrunk> {
    let base = run(seed, &o, false);
    if base.verdict.is_ok() {
        return None;
    }
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
    let report = run(seed, &o, false);
    Some(Shrunk {
        seed,
        overrides: o,
        base,
        report,
        clients_before,
    })
}

/// The `shrink` command: prints the reduction and the failure it keeps.
pub fn shrink(seed: u64, o: Overrides) -> (i32, Option<Shrunk>) {
    let Some(s) = reduce(seed, o) else {
        println!("seed {seed} passes; nothing to shrink");
        return (0, None);
    };
    println!("shrinking {}", s.base.summary());
    let (base, r, o) = (&s.base, &s.report, &s.overrides);
    let keep: Vec<usize> = o.only_faults.iter().flatten().copied().collect();
    println!(
        "reduced to {} faults {:?}, {} ops per client at most:",
        keep.len(),
        keep,
        o.ops_max.map_or("unbounded".into(), |x| x.to_string())
    );
    for f in s.fault_list() {
        println!("  {f}");
    }
    println!(
        "shrunk seed {seed}: faults applied {} -> {}, clients {} -> {}, ops {} -> {} (acked writes {} -> {})",
        base.faults,
        r.faults,
        s.clients_before,
        Scenario::draw(seed, o).recipes.len(),
        base.ops,
        r.ops,
        base.acked,
        r.acked
    );
    crate::cli::print_failure(r);
    (1, Some(s))
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
