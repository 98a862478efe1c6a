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

/// The proxy really partitions: an isolated leader stops leading, the
/// majority elects another and takes writes, and after healing the old
/// leader follows and has every write.
#[test]
fn an_isolated_leader_steps_down_and_the_majority_moves_on() {
    use paddock_chaos::client::{self, Conn};
    use paddock_chaos::cluster::Cluster;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = Cluster::start(ClusterSpec::voters(3)).expect("cluster");
    let wait = Duration::from_secs(60);
    let old = c.wait_for_all(wait).expect("leader");
    for j in 0..3 {
        if j != old {
            c.proxy.partition(old, j);
        }
    }
    let rest: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_for_roles(&rest, wait).expect("the majority elects");
    assert_ne!(new, old);
    let deadline = std::time::Instant::now() + wait;
    while c.mode(old).as_deref() == Some("leader") {
        assert!(
            std::time::Instant::now() < deadline,
            "the isolated leader never stepped down"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut conn, _) = Conn::connect(
        c.servers[new].client_addr(),
        new + 1,
        None,
        10_000,
        Duration::from_secs(10),
    )
    .expect("session");
    let r = conn
        .call(&client::create_req("/during", b"majority", false))
        .expect("create");
    assert_eq!(r.err, 0);
    c.proxy.heal_all(true);
    c.wait_for_all(wait).expect("healed");
    c.wait_for_convergence(wait).expect("converged");
    assert_eq!(c.mode(old).as_deref(), Some("follower"));
    let (mut conn, _) = Conn::connect(
        c.servers[old].client_addr(),
        old + 1,
        None,
        10_000,
        Duration::from_secs(10),
    )
    .expect("session on the old leader");
    let r = conn.call(&client::get_req("/during")).expect("read");
    assert_eq!(r.err, 0, "the old leader has the majority's write");
}
