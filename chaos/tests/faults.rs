//! Bounded fault runs against real ensembles (fixed seeds, printed), each
//! checked by its client history.

use paddock_chaos::cluster::ClusterSpec;
use paddock_chaos::workload::{run, Fault, RunConfig};
use std::time::Duration;

fn seed(default: u64) -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn assert_clean(r: &paddock_chaos::workload::Report) {
    assert!(
        r.violations.is_empty(),
        "seed {} (rerun with CHAOS_SEED={}): {} violations:\n{}",
        r.seed,
        r.seed,
        r.violations.len(),
        r.violations.join("\n")
    );
    assert!(r.stats.acked_writes > 0, "the workload made progress: {}", r.summary());
    assert_eq!(r.lost, 0);
}

#[test]
fn three_voters_survive_kill9_of_the_leader_under_load() {
    let cfg = RunConfig {
        faults: vec![Fault::KillLeader],
        ..RunConfig::new(seed(11), ClusterSpec::voters(3), Duration::from_secs(15))
    };
    let r = run(&cfg).expect("run");
    assert_clean(&r);
}
