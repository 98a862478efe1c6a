//! A bounded swarm: many short seeded runs (all fault kinds, 1, 3 and 5
//! servers) must pass every checker. Debug build: well under a minute.

use paddock_sim::{run, scenario::Overrides};

/// Seeds that fail today because of core bugs (see the report); kept out
/// of the green swarm and pinned in `regressions.rs`.
const KNOWN_CORE_BUGS: [u64; 1] = [11];

#[test]
fn a_bounded_swarm_passes() {
    let o = Overrides {
        ops_max: Some(60),
        ..Overrides::default()
    };
    let mut failures = Vec::new();
    let mut acked = 0;
    for seed in 100..250u64 {
        if KNOWN_CORE_BUGS.contains(&seed) {
            continue;
        }
        let r = run(seed, &o, false);
        acked += r.acked;
        if !r.verdict.is_ok() {
            failures.push(format!(
                "{}\n  {:?}\n  replay: {}",
                r.summary(),
                r.verdict,
                r.replay_command()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        acked > 1_000,
        "the swarm made progress: {acked} acknowledged writes"
    );
}

/// Found by the swarm (to triage): with 3+ servers, crashes and slow
/// disks, a sequential create's suffix runs 8 ahead of the model's count
/// of creates under /lock (0x600000010: server lock-0000000046, model
/// lock-0000000038). Either core's parent create counter diverges across
/// a SNAP/snapshot restore, or the committed history the checker unions
/// from the logs misses txns. `paddock-sim run --seed 101`.
#[test]
#[ignore = "suspected core bug: sequential suffix ahead of the committed creates (seed 101)"]
fn regression_seed_101_sequential_suffix() {
    let r = run(101, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}
