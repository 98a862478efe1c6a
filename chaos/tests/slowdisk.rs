//! A slow disk under a real 3-voter ensemble: an `LD_PRELOAD` shim
//! (`paddock_chaos::slowdisk`) delays `fsync`/`fdatasync` in chosen
//! servers while the workload runs, in turn: a follower whose fsyncs stall
//! for longer than the fault lasts, the leader's fsyncs slowed, and every
//! server's fsyncs slowed. Checked by the client history like every fault
//! run (seed printed; rerun with CHAOS_SEED=<seed>).

use paddock_chaos::cluster::ClusterSpec;
use paddock_chaos::fault::{acked_writes_within, Fault};
use paddock_chaos::workload::{run, RunConfig};
use std::time::Duration;

fn seed(default: u64) -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// Goal: with one follower's disk stalled the quorum (leader and the other
// follower) keeps acknowledging writes; with the leader's or every disk
// slow nothing is acknowledged before a quorum made it durable; no
// acknowledged write is lost, the history is valid and every server
// converges to one digest once the disks are fast again.
#[test]
fn three_voters_with_a_slow_follower_leader_and_quorum_disk() {
    let mut spec = ClusterSpec::voters(3);
    spec.slow_disk = true;
    spec.extra = "snapCount=1000\n".into();
    let mut cfg = RunConfig::new(seed(53), spec, Duration::from_secs(18));
    cfg.faults = Fault::SLOW_DISK.to_vec();
    cfg.faults_in_turn = true;
    cfg.clients = 5;
    cfg.hold_ms = (1_500, 2_500);
    cfg.quiet_ms = (500, 1_000);
    let r = run(&cfg).expect("run");
    println!("{}", r.summary());
    for span in &r.fault_spans {
        let within = acked_writes_within(&r.history, span);
        println!(
            "{:?} on servers {:?} (leader {:?}) from {} to {} us: {} writes acknowledged within (fastest {:?} us), fsyncs delayed {:?}",
            span.fault,
            span.targets.iter().map(|i| i + 1).collect::<Vec<_>>(),
            span.leader.map(|l| l + 1),
            span.start_us,
            span.end_us,
            within.len(),
            within.iter().map(|op| op.complete_us - op.invoke_us).min(),
            span.delayed_fsyncs
        );
    }

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
    assert_eq!(r.lost, 0, "no acknowledged write lost");
    assert!(
        !r.digest.is_empty(),
        "every server converged to one digest: {}",
        r.summary()
    );
    for fault in Fault::SLOW_DISK {
        assert!(
            r.fault_spans.iter().any(|s| s.fault == fault),
            "{fault:?} happened: {}",
            r.summary()
        );
    }
    // The shim really slowed every target while its fault held.
    for span in &r.fault_spans {
        assert!(
            span.delayed_fsyncs.iter().all(|n| *n > 0),
            "{span:?}: every target's fsyncs were delayed"
        );
    }
    // While a follower's fsync was stalled past the end of the fault, the
    // leader and the other follower still acknowledged writes: none of
    // those can have waited for the stalled disk.
    let stalled: Vec<_> = r
        .fault_spans
        .iter()
        .filter(|s| s.fault == Fault::StallFollowerDisk && s.leader.is_some())
        .filter(|s| !s.targets.contains(&s.leader.expect("leader")))
        .collect();
    assert!(!stalled.is_empty(), "a follower's disk was stalled");
    let during_stall: usize = stalled
        .iter()
        .map(|s| acked_writes_within(&r.history, s).len())
        .sum();
    assert!(
        during_stall > 0,
        "writes were acknowledged while a follower's disk was stalled"
    );
    // The leader keeps committing with a slow disk of its own.
    let during_slow_leader: usize = r
        .fault_spans
        .iter()
        .filter(|s| s.fault == Fault::SlowLeaderDisk)
        .map(|s| acked_writes_within(&r.history, s).len())
        .sum();
    assert!(
        during_slow_leader > 0,
        "writes were acknowledged while the leader's disk was slow"
    );
    // The durable-before-acknowledged check ran on real writes.
    let during_all_slow: usize = r
        .fault_spans
        .iter()
        .filter(|s| s.fault == Fault::SlowAllDisks)
        .map(|s| acked_writes_within(&r.history, s).len())
        .sum();
    assert!(
        during_all_slow > 0,
        "writes were acknowledged while every disk was slow"
    );
}
