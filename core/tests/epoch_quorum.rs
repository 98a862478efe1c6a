//! A leader syncs no learner before a quorum of voters has acknowledged its
//! new epoch (ZooKeeper's waitForEpochAck). A learner takes the epoch as its
//! currentEpoch from its sync, and elections rank by currentEpoch first: an
//! epoch held by a minority that then fails would let that minority outrank
//! servers holding a later leader's committed history (the simulator found
//! it: seed 7163, where such a server later won and sent TRUNC to servers
//! with committed txns of a lower, established epoch).
//!
//! One 5-voter `Node` is driven by hand: it wins an election, hears
//! FOLLOWERINFO from two voters, proposes an epoch, and then hears
//! ACKEPOCH from one, then the other.

use paddock_core::peer::{self, PeerMsg, PeerState, Vote};
use paddock_core::storage::MemDir;
use paddock_core::*;

fn now(ms: u64) -> Now {
    Now::new(Instant::from_millis(ms), 1_700_000_000_000 + ms as i64)
}

/// Carries out the node's outputs (storage on `disk`, completions fed
/// back) until it is quiet; returns the peer messages it sent.
fn drain(n: &mut Node, disk: &mut MemDir, t: Now) -> Vec<(u64, PeerMsg)> {
    let mut sent = Vec::new();
    loop {
        let mut done = Vec::new();
        while let Some(out) = n.poll_output() {
            match out {
                Output::SendPeer { to, bytes } => {
                    sent.push((to.0, peer::decode(&bytes).expect("a valid message")))
                }
                Output::Storage(op) => done.push(disk.execute(op)),
                other => panic!("unexpected {other:?}"),
            }
        }
        if done.is_empty() {
            return sent;
        }
        for d in done {
            n.handle(t, d.into());
        }
    }
}

fn msg(n: &mut Node, t: Now, from: u64, m: &PeerMsg) {
    n.handle(
        t,
        Input::PeerMessage {
            from: ServerId(from),
            bytes: peer::encode(m),
        },
    );
}

fn syncs(sent: &[(u64, PeerMsg)]) -> Vec<u64> {
    sent.iter()
        .filter(|(_, m)| matches!(m, PeerMsg::Sync { .. }))
        .map(|(to, _)| *to)
        .collect()
}

#[test]
fn no_learner_is_synced_before_a_quorum_acknowledged_the_epoch() {
    let cfg = Config::ensemble(5, &[1, 2, 3, 4, 5], &[]);
    let mut disk = MemDir::new();
    let mut n = boot::boot(cfg, &mut disk, now(0)).expect("boot").node;
    for p in 1..=4 {
        n.handle(now(0), Input::PeerConnected { peer: ServerId(p) });
    }
    drain(&mut n, &mut disk, now(0));
    // Voters 1 and 2 back server 5 in round 1: with itself, a quorum of 3.
    let back = Vote {
        leader: ServerId(5),
        zxid: Zxid::ZERO,
        peer_epoch: 0,
        round: 1,
        state: PeerState::Looking,
    };
    for p in [1, 2] {
        msg(&mut n, now(1), p, &PeerMsg::Vote(back));
    }
    drain(&mut n, &mut disk, now(1));
    let t = now(1_000);
    n.handle_timeout(t);
    drain(&mut n, &mut disk, t);
    assert!(n.role_debug().starts_with("leading"), "{}", n.role_debug());
    for p in [1, 2] {
        let info = PeerMsg::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: Zxid::ZERO,
            observer: false,
        };
        msg(&mut n, t, p, &info);
    }
    let sent = drain(&mut n, &mut disk, t);
    let infos: Vec<u64> = sent
        .iter()
        .filter(|(_, m)| matches!(m, PeerMsg::LeaderInfo { epoch: 1 }))
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(infos, vec![1, 2], "epoch 1 proposed to both: {sent:?}");
    let ack = PeerMsg::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
        history: vec![Zxid::ZERO],
    };
    msg(&mut n, t, 1, &ack);
    let sent = drain(&mut n, &mut disk, t);
    assert!(
        syncs(&sent).is_empty(),
        "two of five acknowledged the epoch (the leader and voter 1): no sync may go out, sent {sent:?}"
    );
    msg(&mut n, t, 2, &ack);
    let sent = drain(&mut n, &mut disk, t);
    assert_eq!(
        syncs(&sent),
        vec![1, 2],
        "a quorum acknowledged: both learners are synced, sent {sent:?}"
    );
}
