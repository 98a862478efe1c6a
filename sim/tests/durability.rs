//! Acknowledged writes survive crash and restart: standalone runs with
//! crashes (torn tails on) restart through `storage::recover`, and every
//! acknowledged write is checked against the recovered history.

use paddock_sim::run;
use paddock_sim::scenario::{FaultKind, Overrides, Scenario};

#[test]
fn acknowledged_writes_survive_crashes() {
    let o = Overrides {
        servers: Some(1),
        ops_max: Some(80),
        ..Overrides::default()
    };
    let mut crashed = 0;
    for seed in 0..200u64 {
        let s = Scenario::draw(seed, &o);
        if !s.enabled(FaultKind::Crash) || !s.enabled(FaultKind::TornWrite) {
            continue;
        }
        let r = run(seed, &o, false);
        assert!(
            r.verdict.is_ok(),
            "{}: {:?}; replay: {}",
            r.summary(),
            r.verdict,
            r.replay_command()
        );
        assert!(r.acked > 0, "seed {seed} acknowledged nothing");
        crashed += 1;
        if crashed == 12 {
            break;
        }
    }
    assert!(
        crashed >= 5,
        "only {crashed} seeds crashed with torn writes"
    );
}
