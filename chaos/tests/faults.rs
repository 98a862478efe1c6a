//! Bounded fault runs against real ensembles (fixed seeds, printed; rerun
//! one with CHAOS_SEED=<seed>), each checked by its client history. The
//! runs take turns: two ensembles at once on a small machine would turn
//! scheduling delays into elections.

use paddock_chaos::cluster::ClusterSpec;
use paddock_chaos::workload::{run, Fault, Report, RunConfig};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seed(default: u64) -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn run_clean(cfg: RunConfig) -> Report {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let r = run(&cfg).expect("run");
    println!("{}", r.summary());
    assert!(
        r.violations.is_empty(),
        "seed {} (rerun with CHAOS_SEED={}): {} violations:\n{}",
        r.seed,
        r.seed,
        r.violations.len(),
        r.violations
            .iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        r.stats.acked_writes > 0,
        "the workload made progress: {}",
        r.summary()
    );
    assert_eq!(r.lost, 0);
    r
}

#[test]
fn three_voters_survive_kill9_of_the_leader_under_load() {
    let r = run_clean(RunConfig {
        faults: vec![Fault::KillLeader],
        ..RunConfig::new(seed(11), ClusterSpec::voters(3), Duration::from_secs(15))
    });
    assert!(r.faults.get("KillLeader").copied().unwrap_or(0) >= 1);
}

#[test]
fn three_voters_under_every_fault_kind_with_snapshots() {
    let mut spec = ClusterSpec::voters(3);
    spec.extra = "snapCount=1000\n".into();
    let mut cfg = RunConfig::new(seed(23), spec, Duration::from_secs(45));
    cfg.hold_ms = (800, 2_500);
    cfg.quiet_ms = (500, 1_500);
    run_clean(cfg);
}

#[test]
fn five_voters_and_an_observer_under_partitions_and_pauses() {
    let spec = ClusterSpec {
        observers: 1,
        ..ClusterSpec::voters(5)
    };
    let mut cfg = RunConfig::new(seed(37), spec, Duration::from_secs(30));
    cfg.faults = vec![
        Fault::IsolateLeader,
        Fault::SplitHalves,
        Fault::OneWay,
        Fault::PauseLeader,
        Fault::KillLeader,
    ];
    cfg.hold_ms = (800, 2_500);
    cfg.quiet_ms = (500, 1_500);
    run_clean(cfg);
}
