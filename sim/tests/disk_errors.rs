//! The disk's own errors (`FaultKind::DiskError`, `ReadError`): transient
//! EIO on write and on fsync, a full disk for a while, a read error while
//! a restarting server recovers. The rule checked by the simulator: a
//! server whose disk refuses an operation acknowledges nothing of it and
//! stops (it never retries the fsync), restarts from what its disk holds
//! and recovers at least all it had been told was durable; a server whose
//! data dir cannot be read refuses to start. These runs show the faults
//! really happen and the core passes under them.

use paddock_sim::run;
use paddock_sim::scenario::{FaultKind, Overrides, Scenario};

#[test]
fn servers_stop_on_disk_errors_refuse_unreadable_disks_and_lose_nothing() {
    let o = Overrides::default();
    let (mut runs, mut stops, mut full, mut fsync, mut write, mut refusals) = (0, 0, 0, 0, 0, 0);
    for seed in 0..400u64 {
        let s = Scenario::draw(seed, &o);
        if !s.enabled(FaultKind::DiskError) && !s.enabled(FaultKind::ReadError) {
            continue;
        }
        let r = run(seed, &o, true);
        assert!(
            r.verdict.is_ok(),
            "{}: {:?}; replay: {}",
            r.summary(),
            r.verdict,
            r.replay_command()
        );
        let trace = r.full_trace.expect("kept");
        let count = |needle: &str| trace.iter().filter(|l| l.contains(needle)).count();
        stops += count(" stops: ");
        full += count("disk: disk full");
        fsync += count("disk: fsync failed");
        write += count("disk: write failed");
        refusals += count("refuses to start: read failed");
        // Every refused operation stopped its server: nothing ran on.
        let refused =
            count("disk: fsync failed") + count("disk: write failed") + count("disk: disk full");
        assert!(
            count(" stops: ") >= refused,
            "seed {seed}: a server kept running after its disk refused an operation"
        );
        runs += 1;
        if runs >= 40 {
            break;
        }
    }
    println!("{runs} runs: {stops} stops ({fsync} fsync EIO, {write} write EIO, {full} full), {refusals} refused starts");
    assert!(runs >= 40, "only {runs} seeds drew disk errors");
    assert!(fsync > 0 && write > 0 && full > 0, "every kind happened");
    assert!(
        stops >= fsync + write + full,
        "every refused operation stopped its server"
    );
    assert!(refusals > 0, "a start was refused over an unreadable disk");
}
