//! The leader alone: steps driven by hand, their actions checked.

use super::*;
use crate::txn::{State, TxnKind};

const T0: Instant = Instant(0);

fn cx<'a>(cfg: &'a Config, log: &'a Log, current_epoch: u32, persisted: Zxid) -> Ctx<'a> {
    Ctx {
        cfg,
        log,
        now: Now {
            mono: T0,
            wall_ms: 0,
        },
        accepted_epoch: current_epoch,
        current_epoch,
        persisted_upto: persisted,
        canary: None,
    }
}

fn info(observer: bool) -> PeerMsg {
    PeerMsg::FollowerInfo {
        accepted_epoch: 0,
        last_zxid: Zxid::ZERO,
        observer,
    }
}

fn names(step: &Step) -> Vec<String> {
    step.iter()
        .map(|a| match a {
            Action::Send(to, m) => format!("send {} {}", to.0, m.kind()),
            Action::SendAll(to, m) => format!("send {:?} {}", to, m.kind()),
            Action::Sync(to, _) => format!("sync {}", to.0),
            Action::Propose(t, to) => format!("propose {} {:?}", t.zxid, to),
            Action::Apply(z) => format!("apply {z}"),
            Action::AcceptEpoch(e) => format!("accept {e}"),
            Action::NewEpoch(e) => format!("new {e}"),
            Action::ClosePeer(p, _) => format!("close {}", p.0),
            Action::Serving => "serving".into(),
            Action::Look => "look".into(),
            Action::CommitQuorum(from, upto, ids) => format!("quorum {from}..={upto} {ids:?}"),
        })
        .collect()
}

/// A leader of voters 1, 2, 3 (and observer 4) established with
/// follower 2, at epoch 1.
fn established(log: &Log, cfg: &Config) -> Leader {
    let mut l = Leader::new(cfg, 0, Zxid::ZERO, Zxid::ZERO, std::iter::empty(), T0);
    assert!(l.start(&cx(cfg, log, 0, Zxid::ZERO)).is_empty());
    // An observer is no quorum: no epoch yet.
    let s = l.on_message(&cx(cfg, log, 0, Zxid::ZERO), ServerId(4), info(true));
    assert!(names(&s).is_empty(), "{:?}", names(&s));
    let s = l.on_message(&cx(cfg, log, 0, Zxid::ZERO), ServerId(2), info(false));
    assert_eq!(names(&s), ["accept 1"]);
    l.epoch_issued(PersistToken(1));
    l.check();
    let s = l.on_persisted(&cx(cfg, log, 0, Zxid::ZERO), PersistToken(1));
    assert_eq!(names(&s), ["send 2 LeaderInfo", "send 4 LeaderInfo"]);
    let ack_epoch = PeerMsg::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        history: vec![],
    };
    let s = l.on_message(&cx(cfg, log, 0, Zxid::ZERO), ServerId(2), ack_epoch);
    assert_eq!(names(&s), ["sync 2", "new 1"]);
    l.newleader_issued(PersistToken(2));
    let s = l.on_message(
        &cx(cfg, log, 1, Zxid::ZERO),
        ServerId(2),
        PeerMsg::AckNewLeader { epoch: 1 },
    );
    assert!(s.is_empty(), "not established before its own ack");
    let s = l.on_persisted(&cx(cfg, log, 1, Zxid::ZERO), PersistToken(2));
    assert_eq!(
        names(&s),
        ["apply 0x0", "send 2 UpToDate", "serving"].map(String::from)
    );
    assert!(l.established);
    l.check();
    l
}

#[test]
fn discovery_sync_and_commit_need_a_quorum_of_voters() {
    let cfg = Config::ensemble(1, &[1, 2, 3], &[4]);
    let mut log = Log::new(State::new(), vec![], State::new());
    let mut l = established(&log, &cfg);
    let write = TxnKind::CreateSession { timeout_ms: 30_000 };
    let s = l.submit(&cx(&cfg, &log, 1, Zxid::ZERO), SessionId(9), 1, write);
    let z = Zxid::new(1, 1);
    assert_eq!(names(&s), [format!("propose {z} [ServerId(2)]")]);
    let Some(Action::Propose(txn, _)) = s.into_iter().next() else {
        unreachable!()
    };
    log.append(txn);
    // The follower's ack alone is one vote of three: nothing commits.
    let s = l.on_message(
        &cx(&cfg, &log, 1, Zxid::ZERO),
        ServerId(2),
        PeerMsg::Ack { zxid: z },
    );
    assert!(s.is_empty(), "{:?}", names(&s));
    // With the leader's own durable copy it is two: commit, in order.
    let s = l.on_persisted(&cx(&cfg, &log, 1, z), PersistToken(3));
    assert_eq!(
        names(&s),
        [
            "send [ServerId(2)] Commit".to_string(),
            format!("apply {z}")
        ]
    );
    assert_eq!(l.committed, z);
    l.check();
    // An ack of what was never proposed costs the link.
    let beyond = PeerMsg::Ack {
        zxid: Zxid::new(1, 2),
    };
    let s = l.on_message(&cx(&cfg, &log, 1, z), ServerId(2), beyond);
    assert_eq!(names(&s), ["close 2"]);
}

#[test]
fn leader_alone_commits_only_what_it_has_durable() {
    let cfg = Config::ensemble(1, &[1, 2, 3], &[4]);
    let mut log = Log::new(State::new(), vec![], State::new());
    let mut l = established(&log, &cfg);
    let s = l.submit(
        &cx(&cfg, &log, 1, Zxid::ZERO),
        SessionId(9),
        1,
        TxnKind::CloseSession,
    );
    assert!(l.is_closing(SessionId(9)));
    let Some(Action::Propose(txn, _)) = s.into_iter().next() else {
        unreachable!()
    };
    let z = txn.zxid;
    log.append(txn);
    // Durable here but not acknowledged by any follower: one vote.
    let s = l.on_persisted(&cx(&cfg, &log, 1, z), PersistToken(3));
    assert!(s.is_empty(), "{:?}", names(&s));
    assert_eq!(l.committed, Zxid::ZERO);
    // The observer's acknowledgement never counts.
    let s = l.on_message(&cx(&cfg, &log, 1, z), ServerId(4), PeerMsg::Ack { zxid: z });
    assert!(s.is_empty(), "{:?}", names(&s));
}

#[test]
fn a_learner_ahead_of_the_leader_makes_it_abdicate() {
    let cfg = Config::ensemble(1, &[1, 2, 3], &[]);
    let log = Log::new(State::new(), vec![], State::new());
    let mut l = Leader::new(&cfg, 0, Zxid::ZERO, Zxid::ZERO, std::iter::empty(), T0);
    l.on_message(&cx(&cfg, &log, 0, Zxid::ZERO), ServerId(2), info(false));
    l.epoch_issued(PersistToken(1));
    l.on_persisted(&cx(&cfg, &log, 0, Zxid::ZERO), PersistToken(1));
    let ahead = PeerMsg::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::new(0, 5),
        history: vec![Zxid::new(0, 5)],
    };
    let s = l.on_message(&cx(&cfg, &log, 0, Zxid::ZERO), ServerId(2), ahead);
    assert_eq!(names(&s), ["look"]);
}
