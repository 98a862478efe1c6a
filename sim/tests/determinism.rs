//! Same seed, same binary: the same trace, hash for hash.

use paddock_sim::{run, scenario::Overrides};

#[test]
fn a_seed_replays_to_the_same_trace_hash() {
    for seed in [1u64, 3, 7, 12] {
        let o = Overrides::default();
        let a = run(seed, &o, false);
        let b = run(seed, &o, true);
        assert_eq!(
            (a.trace_hash, a.events, a.trace_lines),
            (b.trace_hash, b.events, b.trace_lines),
            "seed {seed} diverged"
        );
        assert!(
            a.events > 100,
            "seed {seed} did something: {} events",
            a.events
        );
    }
}

#[test]
fn different_seeds_give_different_traces() {
    let o = Overrides::default();
    assert_ne!(run(1, &o, false).trace_hash, run(2, &o, false).trace_hash);
}
