//! The faults a run applies, how each is carried out and undone, the
//! span of time each held, and the rule that only slow disks add.
//!
//! Invariants: every fault is undone before the next is applied; a
//! slow-disk fault is undone only after the delay it switched on has
//! run out, so the next fault starts on disks the log thread finds fast.

use crate::cluster::Cluster;
use crate::history::{History, Op, OpKind, Outcome};
use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// kill -9 of the leader, restarted after the hold.
    KillLeader,
    /// kill -9 of a random non-leader.
    KillFollower,
    /// kill -9 of every server at once, all restarted.
    KillAll,
    /// SIGSTOP of the leader, SIGCONT after the hold.
    PauseLeader,
    /// The leader cut off from every other server.
    IsolateLeader,
    /// A random minority cut off from the majority.
    SplitHalves,
    /// Bytes from one server to another held, the other way open.
    OneWay,
    /// A random follower's fsyncs stall for longer than the hold: nothing
    /// the quorum acknowledges during the hold can have waited for them.
    /// Needs [`crate::cluster::ClusterSpec::slow_disk`], as do the two
    /// below.
    StallFollowerDisk,
    /// Every fsync of the leader takes [`SLOW_FSYNC`] longer.
    SlowLeaderDisk,
    /// Every fsync of every server takes [`SLOW_FSYNC`] longer: every
    /// quorum is slow, so no write may be acknowledged sooner (see
    /// [`check_slow_disk_acks`]).
    SlowAllDisks,
}

/// The extra time of one fsync under [`Fault::SlowLeaderDisk`] and
/// [`Fault::SlowAllDisks`].
pub const SLOW_FSYNC: Duration = Duration::from_millis(250);

impl Fault {
    /// The process and network faults, which any cluster can take. The
    /// slow-disk faults are chosen explicitly, with a spec that loads the
    /// shim.
    pub const ALL: [Fault; 7] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::KillAll,
        Fault::PauseLeader,
        Fault::IsolateLeader,
        Fault::SplitHalves,
        Fault::OneWay,
    ];
    pub const SLOW_DISK: [Fault; 3] = [
        Fault::StallFollowerDisk,
        Fault::SlowLeaderDisk,
        Fault::SlowAllDisks,
    ];
}

/// One fault as it happened, on the history's clock.
#[derive(Clone, Debug)]
pub struct FaultSpan {
    pub fault: Fault,
    /// Server indices the fault was applied to.
    pub targets: Vec<usize>,
    /// The leader when the fault began, if there was one.
    pub leader: Option<usize>,
    /// Microseconds since the run began: after the fault was in place,
    /// and before it was lifted.
    pub start_us: u64,
    pub end_us: u64,
    /// For the slow-disk faults: the delay, and the fsyncs the shim
    /// delayed in each target (same order) while the fault held.
    pub fsync_delay: Option<Duration>,
    pub delayed_fsyncs: Vec<u64>,
}

impl FaultSpan {
    /// Whether `op` was invoked and completed while the fault held.
    pub fn contains(&self, op: &Op) -> bool {
        self.start_us <= op.invoke_us && op.complete_us <= self.end_us
    }
}

/// Carries out one fault; returns how to undo it.
pub(crate) fn apply_fault(
    cluster: &mut Cluster,
    fault: Fault,
    leader: Option<usize>,
    hold_ms_max: u64,
    rng: &mut ChaCha8Rng,
) -> Result<Undo> {
    let n = cluster.servers.len();
    let pick_other = |rng: &mut ChaCha8Rng, not: Option<usize>| loop {
        let i = rng.gen_range(0..n);
        if Some(i) != not {
            break i;
        }
    };
    Ok(match fault {
        Fault::KillLeader => {
            let l = leader.unwrap_or_else(|| rng.gen_range(0..n));
            cluster.kill9(l);
            Undo::Restart(vec![l])
        }
        Fault::KillFollower => {
            let f = pick_other(rng, leader);
            cluster.kill9(f);
            Undo::Restart(vec![f])
        }
        Fault::KillAll => {
            for i in 0..n {
                cluster.kill9(i);
            }
            Undo::Restart((0..n).collect())
        }
        Fault::PauseLeader => {
            let l = leader.unwrap_or_else(|| rng.gen_range(0..n));
            cluster.pause(l)?;
            Undo::Resume(l)
        }
        Fault::IsolateLeader => {
            let l = leader.unwrap_or_else(|| rng.gen_range(0..n));
            for j in 0..n {
                if j != l {
                    cluster.proxy.partition(l, j);
                }
            }
            Undo::Heal
        }
        Fault::SplitHalves => {
            let mut idx: Vec<usize> = (0..n).collect();
            for k in (1..n).rev() {
                idx.swap(k, rng.gen_range(0..=k));
            }
            let minority = &idx[..(n - 1) / 2];
            for &a in minority {
                for &b in &idx[(n - 1) / 2..] {
                    cluster.proxy.partition(a, b);
                }
            }
            Undo::Heal
        }
        Fault::OneWay => {
            let l = leader.unwrap_or_else(|| rng.gen_range(0..n));
            let f = pick_other(rng, Some(l));
            if rng.gen_bool(0.5) {
                cluster.proxy.set_blocked(l, f, true);
            } else {
                cluster.proxy.set_blocked(f, l, true);
            }
            Undo::Heal
        }
        Fault::StallFollowerDisk => {
            let f = pick_other(rng, leader);
            // Longer than any hold, so the stalled call outlives the fault.
            let stall = Duration::from_millis(hold_ms_max) + Duration::from_secs(1);
            cluster.set_fsync_delay(f, Some(stall))?;
            Undo::FastDisks(vec![f], stall, Instant::now())
        }
        Fault::SlowLeaderDisk => {
            let l = leader.unwrap_or_else(|| rng.gen_range(0..n));
            cluster.set_fsync_delay(l, Some(SLOW_FSYNC))?;
            Undo::FastDisks(vec![l], SLOW_FSYNC, Instant::now())
        }
        Fault::SlowAllDisks => {
            for i in 0..n {
                cluster.set_fsync_delay(i, Some(SLOW_FSYNC))?;
            }
            Undo::FastDisks((0..n).collect(), SLOW_FSYNC, Instant::now())
        }
    })
}

pub(crate) enum Undo {
    Restart(Vec<usize>),
    Resume(usize),
    Heal,
    /// Servers whose fsyncs were delayed by this much since then.
    FastDisks(Vec<usize>, Duration, Instant),
}

impl Undo {
    pub(crate) fn targets(&self) -> Vec<usize> {
        match self {
            Undo::Restart(v) | Undo::FastDisks(v, _, _) => v.clone(),
            Undo::Resume(i) => vec![*i],
            Undo::Heal => Vec::new(),
        }
    }
}

pub(crate) fn undo(cluster: &mut Cluster, u: Undo, rng: &mut ChaCha8Rng) -> Result<()> {
    match u {
        Undo::Restart(list) => {
            for i in list {
                cluster.restart(i)?;
            }
        }
        Undo::Resume(i) => cluster.resume(i)?,
        Undo::Heal => cluster.proxy.heal_all(rng.gen_bool(0.5)),
        Undo::FastDisks(list, delay, since) => {
            for i in list {
                cluster.set_fsync_delay(i, None)?;
            }
            // A call that began sleeping when the fault began sleeps on (a
            // stall outlives the hold on purpose); wait it out so the next
            // fault starts on disks the log thread finds fast again.
            std::thread::sleep((since + delay).saturating_duration_since(Instant::now()));
        }
    }
    Ok(())
}

/// Whether `op` is an acknowledged write: a txn every quorum member must
/// have made durable before any server replied.
fn acked_txn(op: &Op) -> bool {
    let txn = op.kind.is_write() || op.kind == OpKind::CloseSession;
    txn && matches!(op.outcome, Outcome::Reply { err: 0, .. })
}

/// While every server's fsync is delayed ([`Fault::SlowAllDisks`]), a
/// write invoked after the delay was switched on and acknowledged before
/// it was switched off cannot have been acknowledged sooner than the
/// delay after its invocation: making it durable needs an fsync called
/// after it arrived, on every server of some quorum, and every such call
/// sleeps the delay first. A faster reply means a server counted the write
/// as durable before its fsync returned. This is causality, not speed: a
/// slow machine only makes replies later.
pub fn check_slow_disk_acks(history: &History, spans: &[FaultSpan]) -> Vec<String> {
    let mut bad = Vec::new();
    for span in spans.iter().filter(|s| s.fault == Fault::SlowAllDisks) {
        let Some(delay) = span.fsync_delay else {
            continue;
        };
        let delay_us = delay.as_micros() as u64;
        for op in history
            .ops
            .iter()
            .filter(|op| acked_txn(op) && span.contains(op))
        {
            let took_us = op.complete_us - op.invoke_us;
            if took_us < delay_us {
                bad.push(format!(
                    "slow disk: {} by client {} via server {} acknowledged {took_us} us after its invocation, while every fsync took {delay_us} us longer (fault from {} to {} us): acknowledged before durable on a quorum",
                    describe(&op.kind), op.client, op.server, span.start_us, span.end_us
                ));
            }
        }
    }
    bad
}

/// A write for a message: what, where, and its (unique) value.
fn describe(kind: &OpKind) -> String {
    match kind {
        OpKind::Set { path, value } => {
            format!("setData {path} = {}", String::from_utf8_lossy(value))
        }
        OpKind::Create { path, value, .. } => {
            format!("create {path} = {}", String::from_utf8_lossy(value))
        }
        other => format!("{other:?}"),
    }
}

/// Acknowledged writes (and closeSessions) invoked and completed while
/// `span` held.
pub fn acked_writes_within<'h>(history: &'h History, span: &FaultSpan) -> Vec<&'h Op> {
    history
        .ops
        .iter()
        .filter(|op| acked_txn(op) && span.contains(op))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(value: &str, invoke_us: u64, complete_us: u64, err: i32) -> Op {
        Op {
            client: 0,
            session: 1,
            server: 1,
            kind: OpKind::Set {
                path: "/chaos/k0".into(),
                value: value.as_bytes().to_vec(),
            },
            invoke_us,
            complete_us,
            outcome: Outcome::Reply {
                zxid: 7,
                err,
                read: None,
            },
        }
    }

    fn all_slow(start_us: u64, end_us: u64) -> FaultSpan {
        FaultSpan {
            fault: Fault::SlowAllDisks,
            targets: vec![0, 1, 2],
            leader: Some(0),
            start_us,
            end_us,
            fsync_delay: Some(Duration::from_millis(250)),
            delayed_fsyncs: vec![1, 1, 1],
        }
    }

    // Goal: the slow-disk rule flags a write acknowledged inside the span
    // sooner than the delay, and only that: not a slower one, not a failed
    // one, not one invoked before the span or completed after it.
    #[test]
    fn an_acknowledgement_faster_than_every_fsync_is_flagged() {
        let span = all_slow(1_000_000, 3_000_000);
        let h = History {
            ops: vec![
                set("too-fast", 1_100_000, 1_200_000, 0),
                set("durable", 1_100_000, 1_400_000, 0),
                set("failed", 1_100_000, 1_150_000, -101),
                set("invoked-before", 900_000, 1_050_000, 0),
                set("completed-after", 2_990_000, 3_010_000, 0),
            ],
            session_ends: Vec::new(),
        };
        let bad = check_slow_disk_acks(&h, std::slice::from_ref(&span));
        assert_eq!(bad.len(), 1, "{bad:#?}");
        assert!(bad[0].contains("too-fast"), "{bad:#?}");
        let within: Vec<&Op> = acked_writes_within(&h, &span);
        assert_eq!(within.len(), 2, "{within:#?}");
        let other = FaultSpan {
            fault: Fault::SlowLeaderDisk,
            ..span
        };
        assert!(
            check_slow_disk_acks(&h, &[other]).is_empty(),
            "only an all-disks span bounds every quorum"
        );
    }
}
