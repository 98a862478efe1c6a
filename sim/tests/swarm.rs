//! A bounded swarm: many short seeded runs (all fault kinds, 1, 3 and 5
//! servers) must pass every checker. Debug build: well under a minute.

use paddock_sim::{run, scenario::Overrides};

#[test]
fn a_bounded_swarm_passes() {
    let o = Overrides {
        ops_max: Some(60),
        ..Overrides::default()
    };
    let mut failures = Vec::new();
    let mut acked = 0;
    for seed in 100..250u64 {
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

/// Found by the swarm: damage in a log file that a snapshot already
/// covered made recovery set aside the later, good log files, so a server
/// that had acknowledged txns lost them on restart and the ensemble lost
/// committed writes (sequential suffixes then ran ahead of the model).
/// Fixed in `core/src/storage.rs` (`recover` skips covered files).
#[test]
fn regression_seed_101_covered_log_damage_loses_nothing() {
    let r = run(101, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}

/// Found by the swarm: a voter whose log lost durable records to
/// corruption truncated it at the damage and went on voting with its
/// currentEpoch intact, so it won an election against servers that held
/// the lost (acknowledged) writes, and TRUNC'd them away. A server that
/// lost durable records now sets a durable `repairing` mark and takes part
/// in no quorum until it has synced with a leader elected without it
/// (`Recovered::damaged`, `Election` abstain). Seed 644 lost an
/// acknowledged create; seed 747 rolled a serving follower back.
#[test]
fn regression_seeds_644_747_a_damaged_voter_abstains() {
    for seed in [644, 747] {
        let r = run(seed, &Overrides::default(), false);
        assert!(r.verdict.is_ok(), "seed {seed}: {:?}", r.verdict);
    }
}

/// Found by the checker's applied-history recording: a rebase dropped the
/// log entries behind the new base at once (the window kept for DIFF
/// syncs was never kept), so the applied txns of that step were nowhere.
/// `Log::rebase` now keeps `WINDOW_MAX` entries behind the base.
#[test]
fn regression_seed_939_rebase_keeps_the_diff_window() {
    let r = run(939, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}

/// Liveness bugs the swarm found once its checker stopped blaming the
/// slow disk (which now groups commits as the server does):
/// - 11: slow-disk seed that needed group commit in the simulated disk;
/// - 887: proposals pending when a learner's sync was cut were never
///   counted as acknowledged by its NEWLEADER ack, so they waited for a
///   later write (`LearnerView::synced_upto`);
/// - 1672: a lone looking voter ignored reports of its own round, so two
///   half-formed leaders and it stalled for initLimit (ZooKeeper counts
///   them with the round's votes);
/// - 4810: an election whose support fell below a quorum after its settle
///   time kept a deadline in the past and spun (an event storm).
#[test]
fn regression_liveness_seeds() {
    for seed in [11, 887, 1672, 4810] {
        let r = run(seed, &Overrides::default(), false);
        assert!(r.verdict.is_ok(), "seed {seed}: {:?}", r.verdict);
    }
}

/// Found by the swarm once snapCount was drawn per seed: a crash during a
/// SNAP sync left a log that starts after a snapshot that never landed;
/// recovery refused the disk and the server stayed down although its
/// `repairing` mark already made its files untrusted. Under the mark such
/// a disk is set aside and the server starts empty (`recover_marked`).
#[test]
fn regression_seed_4660_an_unfinished_repair_restarts_empty() {
    let r = run(4660, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}

/// Found by the swarm: a looking server decided for a server that had
/// itself moved to a later round and followed another leader, then resent
/// FOLLOWERINFO into silence until initLimit, past the liveness bound. A
/// server that is not leading now answers FOLLOWERINFO with its vote, and
/// the learner goes back to election.
#[test]
fn regression_seed_4169_a_learner_leaves_a_leader_that_moved_on() {
    let r = run(4169, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}

/// Found by the 10,000-seed swarm once disk errors were drawn: a leader
/// that steps down (here it re-elects because a returning learner had
/// accepted a newer epoch) broadcast its new round's vote, but its
/// learners only left a leader whose vote was from a round above their
/// *own* round, and only while still in Discovery. A serving follower
/// waited out syncLimit and a discovering one initLimit (it may be many
/// rounds ahead of a leader it joined), past the liveness bound. A learner
/// now compares with the round its leader leads in, in every phase.
/// - 1549, 4641, 6271: a learner stays in Discovery with a former leader
///   that is now itself a follower;
/// - 3326: both at once; it also needs the leader's round, when a learner
///   won among its own round's votes, to be that round (not an older
///   "leading" report of the same server, against which the winner's
///   still-looking answer would send the learner back at once).
#[test]
fn regression_seeds_1549_3326_4641_6271_learners_leave_a_leader_that_stepped_down() {
    for seed in [1549, 3326, 4641, 6271] {
        let r = run(seed, &Overrides::default(), false);
        assert!(r.verdict.is_ok(), "seed {seed}: {:?}", r.verdict);
    }
}

/// Found by the same swarm: a leader sent each learner its sync as soon
/// as that learner acknowledged the epoch, before a quorum had. A learner
/// takes the epoch as its currentEpoch from its sync, so after the epoch
/// failed one server held currentEpoch 4 over an older log while servers
/// that never heard of epoch 4 established epoch 3 and committed in it.
/// Ranked first by currentEpoch, the epoch-4 server won a later election
/// and sent TRUNC to the servers holding epoch 3's committed txns (they
/// refused only because the cut fell below their base snapshot, and the
/// ensemble never formed: a liveness failure hiding a safety one). Syncs
/// now wait for a quorum of epoch acknowledgements (`maybe_sync_learners`).
#[test]
fn regression_seed_7163_no_sync_before_a_quorum_acknowledged_the_epoch() {
    let r = run(7163, &Overrides::default(), false);
    assert!(r.verdict.is_ok(), "{:?}", r.verdict);
}
