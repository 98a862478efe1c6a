//! Named scenarios: hand-written fault schedules for data-loss bugs that
//! Apache ZooKeeper shipped and later fixed, and for Paddock's own past
//! bugs (`snap-lead`), kept as permanent tests
//! (`paddock-sim scenario NAME`). Each runs a 3-voter ensemble under a
//! steady client load through the same checkers as a seeded run, with
//! faults fired at the protocol moment of interest by `Trigger`s (when a
//! server sends a given peer message), and then checks that those moments
//! really happened: a scenario whose crash never fired proves nothing.

use crate::scenario::{Fault, FaultKind, Overrides, Recipe, Scenario};
use crate::world::{Action, Trigger, World};
use crate::{run_world, Report, Verdict};
use paddock_core::ServerRole;
use std::collections::BTreeMap;

pub struct Named {
    pub name: &'static str,
    pub about: &'static str,
    build: fn() -> (Scenario, Vec<Trigger>),
    /// What must have happened, checked after the run: Ok(notes) or Err.
    expect: fn(&World) -> Result<String, String>,
}

/// A named scenario's outcome: the run's report, and whether its
/// schedule played out (`moments`: Ok with what was observed).
pub struct NamedReport {
    pub report: Report,
    pub moments: Result<String, String>,
}

impl NamedReport {
    pub fn ok(&self) -> bool {
        self.report.verdict.is_ok() && self.moments.is_ok()
    }
    pub fn exit_code(&self) -> i32 {
        match (&self.report.verdict, &self.moments) {
            (Verdict::Ok, Err(_)) => 5,
            (v, _) => v.exit_code(),
        }
    }
}

pub fn all() -> Vec<Named> {
    vec![
        Named {
            name: "zk-4643",
            about: "a follower dies after its new currentEpoch is durable, before its NEWLEADER ack leaves",
            build: zk_4643,
            expect: expect_4643,
        },
        Named {
            name: "zk-4646",
            about: "a follower dies right after acknowledging NEWLEADER, with a disk write in flight",
            build: zk_4646,
            expect: expect_4646,
        },
        Named {
            name: "zk-4785",
            about: "proposals reach a follower while it is still in its DIFF sync",
            build: zk_4785,
            expect: expect_4785,
        },
        Named {
            name: "zk-4685",
            about: "no proposal ACK may overtake the NEWLEADER ack of a syncing follower",
            build: zk_4785,
            expect: expect_4685,
        },
        Named {
            name: "zk-4925",
            about: "the leader dies with its own log write in flight after sending proposals, and rejoins",
            build: zk_4925,
            expect: expect_4925,
        },
        Named {
            name: "zk-4882",
            about: "a voter's log record is corrupted (a transient disk error); it restarts and rejoins",
            build: zk_4882,
            expect: expect_4882,
        },
        Named {
            name: "read-only",
            about: "a member cut off from its quorum serves a read-only client (reads, NOTREADONLY for writes) until the quorum is back",
            build: read_only,
            expect: expect_read_only,
        },
        Named {
            name: "snap-lead",
            about: "a server synced by SNAP, with nothing logged since, is elected and must lead",
            build: snap_lead,
            expect: expect_snap_lead,
        },
    ]
}

pub fn find(name: &str) -> Option<Named> {
    all().into_iter().find(|n| n.name == name)
}

/// Runs one named scenario (deterministic: no seed to choose).
pub fn run_named(n: &Named) -> NamedReport {
    let (scn, triggers) = (n.build)();
    let mut w = World::new(scn, true);
    w.triggers = triggers;
    w.record_peer_messages = true;
    let (report, w) = run_world(w, &Overrides::default());
    let moments = (n.expect)(&w);
    NamedReport { report, moments }
}

/// Three voters, three clients (config, queue, lock), fixed timing.
fn base(seed: u64, plan: Vec<(u64, Fault)>, intensity: &[(FaultKind, u8)]) -> Scenario {
    Scenario {
        seed,
        voters: 3,
        observers: 0,
        recipes: vec![Recipe::Config, Recipe::Queue, Recipe::Lock],
        ops_max: 400,
        intensity: intensity.iter().copied().collect::<BTreeMap<_, _>>(),
        safety_ms: 8_000,
        liveness_ms: 30_000,
        plan,
        session_timeout_ms: 10_000,
        canary: None,
        snap_count: 64,
        read_only_client_at_ms: None,
        spares: 0,
        reconfig: false,
    }
}

/// Kills the leader (the sender of a proposal) once load is flowing.
fn kill_leader(down_ms: u64) -> Trigger {
    trigger(
        "kill the leader",
        "Proposal",
        1_000,
        Action::CrashBeforeSend { down_ms },
    )
}

fn trigger(label: &'static str, kind: &'static str, not_before_ms: u64, action: Action) -> Trigger {
    Trigger {
        label,
        from: None,
        to: None,
        kind,
        not_before_ms,
        action,
        fired: None,
    }
}

fn fired(w: &World, label: &str) -> Result<(u64, u64, u64), String> {
    w.triggers
        .iter()
        .find(|t| t.label == label)
        .and_then(|t| t.fired)
        .ok_or_else(|| format!("trigger '{label}' never fired"))
}

fn trace_has(w: &World, needle: &str) -> bool {
    w.trace
        .full()
        .is_some_and(|lines| lines.iter().any(|l| l.contains(needle)))
}

/// Server 3 is cut off from 1 s to 11 s; a read-only client pinned to it
/// first connects at 6 s (a fresh client: a read-only server refuses the
/// ensemble's sessions, as ZooKeeper's does).
fn read_only() -> (Scenario, Vec<Trigger>) {
    let plan = vec![(
        1_000,
        Fault::Split {
            side: vec![3],
            ms: 10_000,
        },
    )];
    let mut scn = base(17, plan, &[]);
    scn.safety_ms = 14_000;
    scn.read_only_client_at_ms = Some(6_000);
    (scn, vec![])
}

fn expect_read_only(w: &World) -> Result<String, String> {
    use crate::history::Outcome;
    let ro = &w.hist.read_only_conns;
    if ro.is_empty() {
        return Err("no connection was admitted read-only".into());
    }
    let on_ro = || w.hist.ops.iter().filter(|o| ro.contains(&o.conn));
    let reads = on_ro()
        .filter(|o| !o.request.is_write())
        .filter(|o| matches!(o.outcome, Outcome::Reply { err: 0, .. }))
        .count();
    let refused = on_ro()
        .filter(|o| {
            matches!(o.outcome, Outcome::Reply { err, .. }
                if err == paddock_core::proto::ErrorCode::NotReadOnly.code())
        })
        .count();
    if reads == 0 || refused == 0 {
        return Err(format!(
            "read-only connections {ro:?}: {reads} reads answered, {refused} writes refused"
        ));
    }
    Ok(format!(
        "{} read-only connection(s): {reads} reads answered, {refused} writes refused with NOTREADONLY",
        ro.len()
    ))
}

fn zk_4643() -> (Scenario, Vec<Trigger>) {
    let scn = base(4643, vec![], &[]);
    let t = vec![
        kill_leader(3_000),
        // In Paddock the NEWLEADER ack is sent only once the synced txns
        // and then currentEpoch are durable; dying before it leaves is
        // exactly "currentEpoch persisted, NEWLEADER not acknowledged".
        trigger(
            "follower dies before its NEWLEADER ack",
            "AckNewLeader",
            1_000,
            Action::CrashBeforeSend { down_ms: 1_000 },
        ),
    ];
    (scn, t)
}

fn expect_4643(w: &World) -> Result<String, String> {
    let (t0, leader, _) = fired(w, "kill the leader")?;
    let (t1, f, _) = fired(w, "follower dies before its NEWLEADER ack")?;
    if t1 <= t0 || f == leader {
        return Err(format!(
            "the follower's crash ({f} at {t1}) did not follow the leader's ({leader} at {t0})"
        ));
    }
    Ok(format!(
        "leader {leader} killed at {:.3} s; follower {f} killed at {:.3} s before its NEWLEADER ack left",
        t0 as f64 / 1e9,
        t1 as f64 / 1e9
    ))
}

fn zk_4646() -> (Scenario, Vec<Trigger>) {
    // Torn writes: what the follower had in flight is torn or lost.
    let scn = base(4646, vec![], &[(FaultKind::TornWrite, 2)]);
    let t = vec![
        kill_leader(3_000),
        trigger(
            "follower dies after its NEWLEADER ack",
            "AckNewLeader",
            1_000,
            Action::CrashAfterSend {
                delay_ms: 0,
                down_ms: 1_000,
            },
        ),
    ];
    (scn, t)
}

fn expect_4646(w: &World) -> Result<String, String> {
    let (t0, leader, _) = fired(w, "kill the leader")?;
    let (t1, f, to) = fired(w, "follower dies after its NEWLEADER ack")?;
    if t1 <= t0 || f == leader {
        return Err("the follower's crash did not follow the leader's".into());
    }
    Ok(format!(
        "follower {f} acknowledged NEWLEADER to {to} at {:.3} s and died at once",
        t1 as f64 / 1e9
    ))
}

fn zk_4785() -> (Scenario, Vec<Trigger>) {
    let scn = base(4785, vec![], &[]);
    let t = vec![
        kill_leader(1_500),
        // When the returning server is sent its Sync, hold the leader's
        // link to it: the Sync and the proposals behind it arrive together.
        Trigger {
            label: "hold the sync",
            from: None,
            to: None,
            kind: "Sync",
            not_before_ms: 2_400,
            action: Action::HoldLink { ms: 300 },
            fired: None,
        },
    ];
    (scn, t)
}

/// Peer messages between `a` and `b` (either way) after `from_ns`.
fn between(w: &World, a: u64, b: u64, from_ns: u64) -> Vec<(u64, u64, u64, &str)> {
    w.peer_log
        .iter()
        .filter(|(t, f, to, _)| *t >= from_ns && ((*f == a && *to == b) || (*f == b && *to == a)))
        .map(|(t, f, to, k)| (*t, *f, *to, *k))
        .collect()
}

/// The messages between the leader and the follower whose Sync was held,
/// from the Sync on, and where the follower's NEWLEADER ack is among them.
type Window<'a> = (u64, u64, Vec<(u64, u64, u64, &'a str)>, usize);

fn sync_window(w: &World) -> Result<Window<'_>, String> {
    let (t, leader, f) = fired(w, "hold the sync")?;
    let msgs = between(w, leader, f, t);
    let ack_at = msgs
        .iter()
        .position(|(_, from, _, k)| *from == f && *k == "AckNewLeader")
        .ok_or("the follower never acknowledged NEWLEADER")?;
    Ok((leader, f, msgs, ack_at))
}

fn count(msgs: &[(u64, u64, u64, &str)], from: u64, kind: &str) -> usize {
    msgs.iter()
        .filter(|(_, f, _, k)| *f == from && *k == kind)
        .count()
}

fn expect_4785(w: &World) -> Result<String, String> {
    let (leader, f, msgs, ack_at) = sync_window(w)?;
    let during = count(&msgs[..ack_at], leader, "Proposal");
    if during == 0 {
        return Err("no proposal was sent to the follower during its sync".into());
    }
    Ok(format!(
        "{during} proposals sent to follower {f} between its Sync and its NEWLEADER ack"
    ))
}

fn expect_4685(w: &World) -> Result<String, String> {
    let (leader, f, msgs, ack_at) = sync_window(w)?;
    if let Some(m) = msgs[..ack_at]
        .iter()
        .find(|(_, from, _, k)| *from == f && *k == "Ack")
    {
        return Err(format!(
            "follower {f} sent a proposal ACK before its NEWLEADER ack: {m:?}"
        ));
    }
    let proposals = count(&msgs[..ack_at], leader, "Proposal");
    let acks_after = count(&msgs[ack_at..], f, "Ack");
    if proposals == 0 || acks_after == 0 {
        return Err(format!(
            "the window did not open: {proposals} proposals during sync, {acks_after} ACKs after"
        ));
    }
    Ok(format!(
        "follower {f}: {proposals} proposals during sync, no ACK before its NEWLEADER ack, {acks_after} ACKs after"
    ))
}

fn zk_4925() -> (Scenario, Vec<Trigger>) {
    // A slow disk keeps the leader's own append in flight when it dies;
    // torn writes may leave half of it.
    let scn = base(
        4925,
        vec![],
        &[(FaultKind::SlowDisk, 1), (FaultKind::TornWrite, 2)],
    );
    let t = vec![trigger(
        "leader dies after sending proposals",
        "Proposal",
        1_500,
        Action::CrashAfterSend {
            delay_ms: 0,
            down_ms: 800,
        },
    )];
    (scn, t)
}

fn expect_4925(w: &World) -> Result<String, String> {
    let (t, leader, _) = fired(w, "leader dies after sending proposals")?;
    let lost = w.trace.full().and_then(|lines| {
        lines
            .iter()
            .find(|l| l.contains(&format!("server {leader} crashes; disk:")))
            .cloned()
    });
    let lost = lost.ok_or("the leader's crash is not in the trace")?;
    if lost.ends_with("disk: Nothing") {
        return Err(format!(
            "the leader had no write in flight when it died: {lost}"
        ));
    }
    Ok(format!(
        "leader {leader} died at {:.3} s: {}",
        t as f64 / 1e9,
        lost.trim()
    ))
}

fn zk_4882() -> (Scenario, Vec<Trigger>) {
    let plan = vec![
        // Server 1 falls behind: for a while, writes commit on 2 and 3 only.
        (
            1_000,
            Fault::Split {
                side: vec![1],
                ms: 2_500,
            },
        ),
        // A record of server 3's that every other server also holds goes
        // bad (the newest such: the last one server 1 has). Recovery must
        // truncate there, losing the writes only 2 and 3 hold from 3's disk.
        (2_500, Fault::CorruptNewest { server: 3 }),
        (
            2_600,
            Fault::Crash {
                server: 3,
                down_ms: 300,
            },
        ),
        // Then, before 3 is back, the last healthy holder of those writes
        // dies: if server 3's vote counted, 1 and 3 would form a quorum
        // without them once the partition heals.
        (
            2_700,
            Fault::Crash {
                server: 2,
                down_ms: 3_000,
            },
        ),
    ];
    let mut scn = base(4882, plan, &[(FaultKind::Corrupt, 1)]);
    // No snapshot may cover the damaged record: recovery needs the log.
    scn.snap_count = 1_000_000;
    (scn, vec![])
}

fn expect_4882(w: &World) -> Result<String, String> {
    if !trace_has(w, "server 3: corrupted") {
        return Err("no record of server 3 was corrupted".into());
    }
    if !trace_has(w, "server 3: durable records lost") {
        return Err("server 3 did not notice its lost records".into());
    }
    let s3 = &w.servers[&3];
    let role = s3.node.as_ref().map(|n| n.role());
    let name = role.map_or("down", ServerRole::zk_name);
    if !matches!(role, Some(ServerRole::Follower | ServerRole::Leader)) {
        return Err(format!("server 3 ended as {name}, not a voter"));
    }
    if s3.disk.repair_mark {
        return Err("server 3's repair mark is still set".into());
    }
    Ok(format!(
        "server 3 lost records, repaired, and ended as {name} with its mark cleared"
    ))
}

/// Ported from the core's retired randomized harness (its regression seed
/// 4039): a follower synced by SNAP never counted the snapshot as
/// durable, so once it led with nothing new to append, its own NEWLEADER
/// ack waited forever and the ensemble re-elected it in a loop. Here
/// server 3 loses a record, so it repairs by SNAP; its leader dies just
/// after telling it UPTODATE (when 3 becomes a whole voter again), and 3
/// (ahead on ties by its id) is elected with the snapshot behind it.
fn snap_lead() -> (Scenario, Vec<Trigger>) {
    let plan = vec![
        (1_000, Fault::CorruptNewest { server: 3 }),
        (
            1_100,
            Fault::Crash {
                server: 3,
                down_ms: 300,
            },
        ),
    ];
    let mut scn = base(4039, plan, &[(FaultKind::Corrupt, 1)]);
    scn.snap_count = 1_000_000;
    let t = vec![Trigger {
        to: Some(3),
        ..trigger(
            "the leader dies after UPTODATE reaches 3",
            "UpToDate",
            1_300,
            Action::CrashAfterSend {
                delay_ms: 20,
                down_ms: 2_000,
            },
        )
    }];
    (scn, t)
}

fn expect_snap_lead(w: &World) -> Result<String, String> {
    let (t, dead, _) = fired(w, "the leader dies after UPTODATE reaches 3")?;
    if !trace_has(w, "server 3: durable records lost") {
        return Err("server 3 did not notice its lost records".into());
    }
    let leaders = w.checker.leaders();
    let dead_epoch = leaders
        .iter()
        .filter(|(_, l)| **l == dead)
        .map(|(e, _)| *e)
        .max()
        .ok_or(format!("server {dead} never led an epoch"))?;
    let led = leaders
        .iter()
        .find(|(e, l)| **e > dead_epoch && **l == 3)
        .map(|(e, _)| *e)
        .ok_or(format!(
            "server 3 never led after leader {dead} (epoch {dead_epoch}) died: {leaders:?}"
        ))?;
    Ok(format!(
        "leader {dead} sent UPTODATE to 3 at {:.3} s and died; 3 led epoch {led}",
        t as f64 / 1e9
    ))
}
