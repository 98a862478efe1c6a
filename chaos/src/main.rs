//! `paddock-chaos soak`: runs fault rounds against real ensembles until the
//! time is up and prints the counts (operations, faults by kind,
//! acknowledged writes, lost). Exits non-zero on any violation.

use anyhow::Result;
use clap::{Parser, Subcommand};
use paddock_chaos::cluster::ClusterSpec;
use paddock_chaos::workload::{run, RunConfig};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Fault tests of real paddock ensembles")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rounds of 3 voters, 5 voters and 3 voters + an observer under every
    /// fault kind, each round a fresh cluster, until `minutes` pass.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Length of one round (one cluster) in seconds.
        #[arg(long, default_value_t = 120)]
        round_secs: u64,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
}

fn main() -> Result<()> {
    let Cmd::Soak {
        minutes,
        seed,
        round_secs,
        clients,
    } = Cli::parse().cmd;
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut round = 0u64;
    println!("soak: seed={seed} minutes={minutes} (repeat with the same command)");
    while Instant::now() + Duration::from_secs(30) < end {
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let secs = round_secs.min(left.saturating_sub(25)).max(10);
        let spec = match round % 3 {
            0 => ClusterSpec::voters(3),
            1 => ClusterSpec::voters(5),
            _ => ClusterSpec {
                observers: 1,
                ..ClusterSpec::voters(3)
            },
        };
        let mut spec = spec;
        spec.extra = "snapCount=1000\n".into();
        let round_seed = seed.wrapping_mul(1_000_003).wrapping_add(round);
        let mut cfg = RunConfig::new(round_seed, spec, Duration::from_secs(secs));
        cfg.clients = clients;
        let report = run(&cfg)?;
        println!("round {round}: {}", report.summary());
        *totals.entry("operations".into()).or_default() += report.stats.ops as u64;
        *totals.entry("reads".into()).or_default() += report.stats.reads as u64;
        *totals.entry("acknowledged_writes".into()).or_default() +=
            report.stats.acked_writes as u64;
        *totals.entry("unknown_outcome".into()).or_default() += report.stats.unknown as u64;
        *totals.entry("lost".into()).or_default() += report.lost as u64;
        *totals.entry("violations".into()).or_default() += report.violations.len() as u64;
        for (k, v) in &report.faults {
            *faults.entry(k.clone()).or_default() += v;
        }
        for v in &report.violations {
            println!("  VIOLATION (round {round}, seed {round_seed}): {v}");
            failures.push(v.clone());
        }
        round += 1;
    }
    println!("soak done: rounds={round} seed={seed}");
    for (k, v) in &totals {
        println!("  {k} = {v}");
    }
    for (k, v) in &faults {
        println!("  fault {k} = {v}");
    }
    if !failures.is_empty() {
        anyhow::bail!("{} violations", failures.len());
    }
    Ok(())
}
