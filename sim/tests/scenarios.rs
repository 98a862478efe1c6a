//! The named scenarios (`paddock-sim scenario all`): each fault schedule
//! must pass every checker, and its moments of interest must have
//! happened (the trigger fired, the crash hit, the damage was noticed).

use paddock_sim::named;

#[test]
fn every_named_scenario_passes_and_plays_out() {
    let mut bad = Vec::new();
    for n in named::all() {
        let r = named::run_named(&n);
        if !r.ok() {
            bad.push(format!(
                "{}: verdict {:?}; schedule {:?}",
                n.name, r.report.verdict, r.moments
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn named_scenarios_are_deterministic() {
    for n in named::all().into_iter().take(2) {
        let a = named::run_named(&n).report.trace_hash;
        let b = named::run_named(&n).report.trace_hash;
        assert_eq!(a, b, "{}", n.name);
    }
}
