//! End-to-end runs of real `Node`s wired by a perfect in-memory network and
//! an instant disk: standalone service, a 3-voter ensemble electing a
//! leader, writes through a follower, leader loss and re-election, an
//! observer, and a crashed follower rejoining from its disk.
//! (The fault-injecting simulator lives in `sim/`.)

mod harness;

use harness::*;
use paddock_core::proto::{self, ConnectRequest, ReplyHeader, Request};
use paddock_core::storage::StorageErrorKind;
use paddock_core::*;
use std::collections::BTreeSet;

#[test]
fn standalone_serves_and_survives_restart() {
    let mut c = Cluster::new(&[1], &[]);
    c.run_ms(50);
    assert_eq!(c.nodes[&1].role(), ServerRole::Standalone);
    c.connect(10, 1);
    let (h, _) = c.call(10, 1, &create("/a", b"x", 0));
    assert_eq!(h.err, 0);
    let (h, body) = c.call(10, 2, &get("/a"));
    assert_eq!((h.err, data_of(&body)), (0, b"x".to_vec()));
    c.crash(1);
    c.start(1);
    c.run_ms(50);
    c.connect(11, 1);
    let (h, body) = c.call(11, 1, &get("/a"));
    assert_eq!(
        (h.err, data_of(&body)),
        (0, b"x".to_vec()),
        "acknowledged write survives restart"
    );
}

#[test]
fn three_voters_elect_replicate_and_fail_over() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().expect("a leader is elected");
    let roles: Vec<ServerRole> = c.nodes.values().map(|n| n.role()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == ServerRole::Follower).count(),
        2,
        "{roles:?}"
    );
    let epochs: BTreeSet<(u32, u32)> = c.nodes.values().map(|n| n.epochs()).collect();
    assert_eq!(
        epochs,
        BTreeSet::from([(1, 1)]),
        "everyone accepted and entered epoch 1"
    );
    let follower = *c.nodes.keys().find(|k| **k != leader).unwrap();
    c.connect(10, follower);
    let (h, _) = c.call(10, 1, &create("/f", b"via-follower", 0));
    assert_eq!(h.err, 0, "write through a follower");
    c.run_ms(100);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "all replicas equal");

    c.crash(leader);
    c.run_ms(3000);
    let new_leader = c.leader().expect("a new leader after the old one died");
    assert_ne!(new_leader, leader);
    assert_eq!(
        c.nodes[&new_leader].epochs(),
        (2, 2),
        "a new epoch after failover"
    );
    let other = *c.nodes.keys().find(|k| **k != new_leader).unwrap();
    c.connect(11, other);
    let (h, body) = c.call(11, 1, &get("/f"));
    assert_eq!(
        (h.err, data_of(&body)),
        (0, b"via-follower".to_vec()),
        "committed write survives leader loss"
    );
    let (h, _) = c.call(11, 2, &create("/g", b"after", 0));
    assert_eq!(h.err, 0, "writes resume");
    assert_eq!(
        Zxid(h.zxid as u64).epoch(),
        2,
        "the write carries the new epoch"
    );

    c.start(leader);
    c.run_ms(2000);
    assert_eq!(
        c.nodes[&leader].role(),
        ServerRole::Follower,
        "old leader rejoins as follower"
    );
    c.run_ms(200);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "rejoined server caught up");
}

#[test]
fn observer_serves_reads_and_forwards_writes() {
    let mut c = Cluster::new(&[1, 2, 3], &[4]);
    c.run_ms(3000);
    assert_eq!(c.nodes[&4].role(), ServerRole::Observer);
    c.connect(10, 4);
    let (h, _) = c.call(10, 1, &create("/o", b"1", 0));
    assert_eq!(h.err, 0);
    let (h, body) = c.call(10, 2, &get("/o"));
    assert_eq!((h.err, data_of(&body)), (0, b"1".to_vec()));
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1);
}

#[test]
fn minority_cannot_commit() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().unwrap();
    let followers: Vec<u64> = c.nodes.keys().copied().filter(|k| *k != leader).collect();
    c.connect(10, leader);
    for f in &followers {
        c.crash(*f);
    }
    let node = c.nodes.get_mut(&leader).unwrap();
    node.handle(
        now(c.now_ms),
        Input::ClientFrame {
            conn: ConnId(10),
            frame: proto::encode_request(1, &create("/lost", b"", 0)),
        },
    );
    c.run_ms(200);
    let replied = c
        .inbox
        .get(&10)
        .map(|fs| {
            fs.iter()
                .any(|f| i32::from_be_bytes([f[0], f[1], f[2], f[3]]) == 1)
        })
        .unwrap_or(false);
    assert!(
        !replied,
        "a write must not be acknowledged without a quorum"
    );
}

#[test]
fn uncommitted_tail_of_a_dead_leader_is_truncated_when_it_rejoins() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let old = c.leader().unwrap();
    c.connect(10, old);
    let (h, _) = c.call(10, 1, &create("/kept", b"", 0));
    assert_eq!(h.err, 0);
    let followers: Vec<u64> = c.nodes.keys().copied().filter(|k| *k != old).collect();
    for f in &followers {
        c.crash(*f);
    }
    // Logged on the old leader only: never committed.
    let t = now(c.now_ms);
    c.nodes.get_mut(&old).unwrap().handle(
        t,
        Input::ClientFrame {
            conn: ConnId(10),
            frame: proto::encode_request(2, &create("/ghost", b"", 0)),
        },
    );
    c.run_ms(50);
    let ghost_zxid = c.nodes[&old].last_logged();
    c.crash(old);
    for f in &followers {
        c.start(*f);
    }
    c.run_ms(3000);
    let new_leader = c.leader().expect("the two survivors elect a leader");
    c.connect(11, new_leader);
    let (h, _) = c.call(11, 1, &create("/after", b"", 0));
    assert_eq!(h.err, 0);
    c.start(old);
    c.run_ms(3000);
    assert_eq!(c.nodes[&old].role(), ServerRole::Follower);
    assert!(c.nodes[&old].last_logged() > ghost_zxid);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(
        digests.len(),
        1,
        "the old leader dropped its uncommitted txn"
    );
    assert!(c.nodes[&old].state().tree.get("/ghost").is_none());
    assert!(c.nodes[&old].state().tree.get("/kept").is_some());
    // And its disk agrees: restart it and compare again.
    c.crash(old);
    c.start(old);
    c.run_ms(3000);
    assert!(
        c.nodes[&old].state().tree.get("/ghost").is_none(),
        "the truncation reached the disk"
    );
}

#[test]
fn one_voter_with_an_observer_leads() {
    let mut c = Cluster::new(&[1], &[2]);
    c.run_ms(2000);
    assert_eq!(c.nodes[&1].role(), ServerRole::Leader);
    assert_eq!(c.nodes[&2].role(), ServerRole::Observer);
    c.connect(10, 2);
    let (h, _) = c.call(10, 1, &create("/x", b"", 0));
    assert_eq!(h.err, 0);
}

fn exists_watch(path: &str) -> Request {
    Request::Exists {
        path: path.into(),
        watch: true,
    }
}

#[test]
fn five_voters_expire_a_session_everywhere_and_watches_fire_on_followers() {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[]);
    c.run_ms(3000);
    let leader = c.leader().unwrap();
    let fs: Vec<u64> = c.nodes.keys().copied().filter(|k| *k != leader).collect();
    c.connect(10, fs[0]);
    c.connect(11, fs[1]);
    let (h, _) = c.call(11, 1, &exists_watch("/eph"));
    assert_eq!(
        h.err,
        proto::ErrorCode::NoNode.code(),
        "exists-watch on a missing node"
    );
    let (h, _) = c.call(10, 1, &create("/eph", b"", 1));
    assert_eq!(h.err, 0);
    // The watcher on another follower gets NodeCreated.
    c.run_ms(50);
    let events: Vec<Vec<u8>> = c.inbox.remove(&11).unwrap_or_default();
    let created = events.iter().any(|f| {
        let mut r = proto::Reader::new(f);
        let h = ReplyHeader::read(&mut r).unwrap();
        h.xid == -1 && r.i32().unwrap() == proto::event_type::NODE_CREATED
    });
    assert!(created, "NodeCreated delivered on the watcher's follower");
    let sync = Request::Sync { path: "/".into() };
    let (h, _) = c.call(11, 2, &sync);
    assert_eq!(h.err, 0, "sync through a follower");
    // Client 10 vanishes: its session expires (leader-owned) on every server.
    c.closed.insert(10);
    let t = now(c.now_ms);
    c.nodes
        .get_mut(&fs[0])
        .unwrap()
        .handle(t, Input::ClientClosed { conn: ConnId(10) });
    c.run_ms(3000);
    for (id, n) in &c.nodes {
        assert!(
            n.state().tree.get("/eph").is_none(),
            "ephemeral gone on server {id} (role {}, sessions {:?}, leader {leader})",
            n.role(),
            n.sessions()
        );
    }
    assert!(
        c.closed.contains(&11),
        "the idle watcher's session expired too and its connection was closed"
    );
    c.connect(12, fs[2]);
    let (h, _) = c.call(12, 1, &get("/eph"));
    assert_eq!(h.err, proto::ErrorCode::NoNode.code());
}

#[test]
fn a_follower_far_behind_gets_a_snapshot_and_keeps_it() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().unwrap();
    let lagger = *c.nodes.keys().find(|k| **k != leader).unwrap();
    c.crash(lagger);
    c.connect(10, leader);
    // Past the in-memory window, in pipelined batches.
    let n = paddock_core::log::WINDOW_MAX as i32 + 2_500;
    let mut xid = 1;
    while xid <= n {
        let t = now(c.now_ms);
        let node = c.nodes.get_mut(&leader).unwrap();
        for _ in 0..500 {
            let frame = proto::encode_request(xid, &create(&format!("/n{xid}"), b"v", 0));
            node.handle(
                t,
                Input::ClientFrame {
                    conn: ConnId(10),
                    frame,
                },
            );
            xid += 1;
        }
        c.pump();
        c.inbox.remove(&10);
    }
    c.run_ms(100);
    assert_eq!(c.nodes[&leader].state().tree.node_count(), 4 + n as usize);
    c.start(lagger);
    c.run_ms(3000);
    assert_eq!(c.nodes[&lagger].role(), ServerRole::Follower);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "the lagging follower caught up");
    assert!(
        !c.disks[&lagger].snapshots.is_empty(),
        "a SNAP sync is written to disk before NEWLEADER is acknowledged"
    );
    c.crash(lagger);
    c.start(lagger);
    c.run_ms(3000);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "and it recovers from that snapshot");
}

#[test]
fn a_connection_past_the_outstanding_limit_is_dropped_alone() {
    let mut c = Cluster::new(&[1], &[]);
    c.run_ms(50);
    c.connect(10, 1);
    c.connect(11, 1);
    let limit = Config::standalone(1).outstanding_per_conn_max as i32;
    let t = now(c.now_ms);
    let node = c.nodes.get_mut(&1).unwrap();
    for xid in 1..=limit + 1 {
        let frame = proto::encode_request(xid, &create(&format!("/p{xid}"), b"", 0));
        node.handle(
            t,
            Input::ClientFrame {
                conn: ConnId(10),
                frame,
            },
        );
    }
    c.run_ms(20);
    assert!(c.closed.contains(&10), "the flooding connection is closed");
    let (h, _) = c.call(11, 1, &create("/other", b"", 0));
    assert_eq!(h.err, 0, "another client keeps working");
}

#[test]
fn a_session_reattached_elsewhere_closes_its_old_connection() {
    let mut c = Cluster::new(&[1], &[]);
    c.run_ms(50);
    let session = c.connect(10, 1);
    c.conn_node.insert(11, 1);
    let t = now(c.now_ms);
    let n = c.nodes.get_mut(&1).unwrap();
    n.handle(
        t,
        Input::ClientConnected {
            conn: ConnId(11),
            addr: "127.0.0.1".into(),
        },
    );
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 4000,
        session_id: session,
        passwd: paddock_core::session::password(SessionId(session)).to_vec(),
        read_only: None,
    };
    n.handle(
        t,
        Input::ClientFrame {
            conn: ConnId(11),
            frame: req.encode(),
        },
    );
    c.run_ms(20);
    let resp = proto::ConnectResponse::decode(&c.inbox.remove(&11).unwrap()[0]).unwrap();
    assert_eq!(resp.session_id, session);
    assert!(
        c.closed.contains(&10),
        "ZooKeeper closes the connection that held the session"
    );
    let (h, _) = c.call(11, 1, &create("/b", b"", 0));
    assert_eq!(h.err, 0, "the session works on its new connection");
}

/// A voter whose log lost durable records (a corrupt record) must not
/// count in any quorum until it has synced: with only it and one healthy
/// voter up there is no leader; once a second healthy voter returns, it
/// syncs as an observer, then rejoins as a follower with everything.
#[test]
fn a_voter_that_lost_records_abstains_until_it_has_synced() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().expect("a leader is elected");
    c.connect(10, leader);
    for i in 0..20 {
        let (h, _) = c.call(10, i + 1, &create(&format!("/n{i}"), b"x", 0));
        assert_eq!(h.err, 0);
    }
    c.run_ms(200);
    let damaged = *c.nodes.keys().find(|k| **k != leader).unwrap();
    let healthy = *c
        .nodes
        .keys()
        .find(|k| **k != leader && **k != damaged)
        .unwrap();
    c.crash(damaged);
    c.crash(leader);
    {
        let d = c.disks.get_mut(&damaged).unwrap();
        let bytes = d.logs.values_mut().next().expect("a log file");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x5a;
    }
    c.start(damaged);
    assert_eq!(c.nodes[&damaged].role(), ServerRole::Looking);
    c.run_ms(5000);
    assert_eq!(
        c.leader(),
        None,
        "the damaged voter's vote counted: {} and {} formed a quorum",
        damaged,
        healthy
    );
    c.start(leader);
    c.run_ms(5000);
    assert!(c.leader().is_some(), "two healthy voters elect a leader");
    assert_eq!(
        c.nodes[&damaged].role(),
        ServerRole::Follower,
        "the repaired server rejoined as a voter"
    );
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "everyone holds the same tree");
    c.connect(11, damaged);
    for i in 0..20 {
        let (h, body) = c.call(11, i + 1, &get(&format!("/n{i}")));
        assert_eq!((h.err, data_of(&body)), (0, b"x".to_vec()), "/n{i}");
    }
    assert!(!c.disks[&damaged].repair_mark, "the repair mark is cleared");
}

/// A follower that has not yet learned that the leader closed a session
/// must not confirm it to a reconnecting client from its own records: it
/// asks the leader (REVALIDATE) and answers with the leader's word. A live
/// session is confirmed the same way, through the leader.
#[test]
fn a_follower_confirms_a_reconnecting_session_only_on_the_leaders_word() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(3000);
    let leader = c.leader().unwrap();
    let fs: Vec<u64> = c.nodes.keys().copied().filter(|k| *k != leader).collect();
    let (f, g) = (fs[0], fs[1]);
    let live = c.connect(10, f);
    let doomed = c.connect(11, g);

    // A live session moves to the follower through the leader's answer.
    let frames = c.reconnect(12, f, live);
    let resp = proto::ConnectResponse::decode(&frames[0]).unwrap();
    assert_eq!(
        resp.session_id, live,
        "the leader revalidated a live session"
    );
    assert!(c.closed.contains(&10), "its older connection is closed");

    // The leader closes `doomed` (its client says goodbye through g) while
    // nothing the leader sends reaches f.
    c.hold.insert((leader, f));
    let (h, _) = c.call(11, 1, &Request::CloseSession);
    assert_eq!(h.err, 0, "the close commits without f");
    assert!(
        c.nodes[&f].sessions().iter().any(|(s, _)| s.0 == doomed),
        "f has not applied the close yet"
    );
    let frames = c.reconnect(13, f, doomed);
    assert!(
        frames.is_empty(),
        "f waits for the leader's word; it does not confirm from its own records"
    );
    assert!(!c.closed.contains(&13));

    // The leader's answer (behind the close) arrives: the session is gone.
    c.release();
    c.run_ms(20);
    let frames = c.inbox.remove(&13).unwrap_or_default();
    let resp = proto::ConnectResponse::decode(&frames[0]).unwrap();
    assert_eq!(resp.session_id, 0, "an expired session is refused");
    assert_eq!(resp.timeout_ms, 0);
    assert!(c.closed.contains(&13));
}

/// Sends a request without waiting for its reply.
fn send(c: &mut Cluster, conn: u64, xid: i32, req: &Request) {
    let node = c.conn_node[&conn];
    let t = now(c.now_ms);
    c.nodes.get_mut(&node).unwrap().handle(
        t,
        Input::ClientFrame {
            conn: ConnId(conn),
            frame: proto::encode_request(xid, req),
        },
    );
}

fn replied(c: &Cluster, conn: u64, xid: i32) -> bool {
    c.inbox
        .get(&conn)
        .is_some_and(|fs| fs.iter().any(|f| f[..4] == xid.to_be_bytes()))
}

// Goal: a write whose fsync failed is never acknowledged; the node stops
// (says why, emits nothing more, wants no timer) instead of retrying; a
// restart from the disk serves every acknowledged write.
#[test]
fn a_failed_fsync_acknowledges_nothing_and_stops_the_node() {
    let mut c = Cluster::new(&[1], &[]);
    c.run_ms(50);
    c.connect(10, 1);
    let (h, _) = c.call(10, 1, &create("/a", b"x", 0));
    assert_eq!(h.err, 0);
    c.disks.get_mut(&1).unwrap().fail_next = Some(StorageErrorKind::Fsync);
    send(&mut c, 10, 2, &create("/b", b"y", 0));
    c.run_ms(200);
    assert!(!replied(&c, 10, 2), "the failed write was answered");
    let why = c.stopped.get(&1).expect("the node stopped");
    assert!(why.contains("fsync failed"), "{why}");
    assert!(c.nodes[&1].stopped().is_some());
    assert_eq!(c.nodes[&1].poll_timeout(), None);
    // Stopped means stopped: a new request is not even read.
    send(&mut c, 10, 3, &get("/a"));
    c.run_ms(50);
    assert!(!replied(&c, 10, 3));
    c.crash(1);
    c.start(1);
    c.run_ms(50);
    c.connect(11, 1);
    let (h, body) = c.call(11, 1, &get("/a"));
    assert_eq!((h.err, data_of(&body)), (0, b"x".to_vec()));
}

// Goal: in an ensemble a follower whose disk is full stops alone; the
// leader and the other follower go on committing, and the follower,
// restarted with space back, catches up.
#[test]
fn a_follower_with_a_full_disk_stops_alone_and_catches_up() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().expect("leader");
    let f = *c.nodes.keys().find(|k| **k != leader).unwrap();
    c.connect(10, leader);
    c.disks.get_mut(&f).unwrap().fail_next = Some(StorageErrorKind::NoSpace);
    let (h, _) = c.call(10, 1, &create("/w", b"1", 0));
    assert_eq!(h.err, 0, "the quorum without the full disk commits");
    assert!(c
        .stopped
        .get(&f)
        .expect("the follower stopped")
        .contains("disk full"));
    assert!(!c.stopped.contains_key(&leader));
    let (h, _) = c.call(10, 2, &create("/w2", b"2", 0));
    assert_eq!(h.err, 0);
    c.crash(f);
    c.start(f);
    c.run_ms(2000);
    let digests: BTreeSet<u64> = c.nodes.values().map(|n| n.digest()).collect();
    assert_eq!(digests.len(), 1, "the restarted follower caught up");
}

// Goal: with readonlymode.enabled, a follower cut off from its quorum
// serves read-only clients (after ZooKeeper's grace period) from what it
// has committed, with a local session; refuses writes and syncs with
// NOTREADONLY; refuses clients that are not read-only; and sends its
// read-only clients away when the quorum is back.
#[test]
fn a_partitioned_member_serves_read_only_clients_until_the_quorum_returns() {
    let mut c = Cluster::with(&[1, 2, 3], &[], |cfg| cfg.read_only_mode = true);
    c.run_ms(2000);
    let leader = c.leader().unwrap();
    let f = *c.nodes.keys().find(|k| **k != leader).unwrap();
    let gone: Vec<u64> = c.nodes.keys().copied().filter(|k| *k != f).collect();
    c.connect(10, f);
    assert_eq!(c.call(10, 1, &create("/a", b"committed", 0)).0.err, 0);
    assert!(!c.nodes[&f].read_only());
    for g in &gone {
        c.crash(*g);
    }
    c.run_ms(500);
    assert!(
        connect_read_only(&mut c, 20, f, true).is_none(),
        "no read-only service inside the grace period"
    );
    c.run_ms(2000);
    assert!(c.nodes[&f].read_only());
    assert_eq!(c.nodes[&f].state_name(), "read-only");
    assert!(
        connect_read_only(&mut c, 21, f, false).is_none(),
        "a client that is not read-only is refused"
    );
    let resp = connect_read_only(&mut c, 22, f, true).expect("read-only client admitted");
    assert_eq!(resp.read_only, Some(true));
    assert_ne!(resp.session_id, 0);
    let (h, body) = c.call(22, 1, &get("/a"));
    assert_eq!(h.err, 0);
    assert_eq!(data_of(&body), b"committed");
    let last = c.nodes[&f].last_zxid();
    let (h, _) = c.call(22, 2, &create("/b", b"", 0));
    assert_eq!(h.err, proto::ErrorCode::NotReadOnly.code());
    let (h, _) = c.call(22, 3, &Request::Sync { path: "/a".into() });
    assert_eq!(h.err, proto::ErrorCode::NotReadOnly.code());
    assert_eq!(c.nodes[&f].last_zxid(), last, "nothing was proposed");
    assert!(!c.closed.contains(&22));
    for g in &gone {
        c.start(*g);
    }
    c.run_ms(3000);
    assert!(!c.nodes[&f].read_only());
    assert!(c.leader().is_some());
    assert!(
        c.closed.contains(&22),
        "read-only clients are sent away when the quorum is back"
    );
}

#[test]
fn figures_come_from_the_parts_that_keep_them() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.run_ms(2000);
    let leader = c.leader().expect("a leader is elected");
    let follower = *c.nodes.keys().find(|k| **k != leader).unwrap();
    c.connect(10, follower);
    let (h, _) = c.call(10, 1, &create("/f", b"0123456789", 0));
    assert_eq!(h.err, 0);
    let (h, _) = c.call(10, 2, &get("/f"));
    assert_eq!(h.err, 0);
    c.run_ms(100);

    // The leader's own figures: two learners synced, proposals sent.
    let l = c.nodes[&leader].stats();
    assert_eq!(l.mode, ServerRole::Leader);
    assert_eq!(l.diff_syncs + l.snap_syncs, 2, "{l:?}");
    assert!(l.proposal_size_last > 10, "{l:?}");
    assert!(l.proposal_size_min <= l.proposal_size_last, "{l:?}");
    assert!(l.proposal_size_last <= l.proposal_size_max, "{l:?}");
    assert_eq!(l.connections, 0);

    // The client pipeline's figures, on the follower the client uses:
    // connect, create and get in, three replies out.
    let f = c.nodes[&follower].stats();
    assert_eq!(f.mode, ServerRole::Follower);
    assert_eq!(f.connections, 1);
    assert_eq!(f.sessions, 1);
    assert_eq!((f.packets_received, f.packets_sent), (3, 3), "{f:?}");
    assert_eq!(
        (
            f.update_latency.count,
            f.read_latency.count,
            f.latency_count
        ),
        (2, 1, 3),
        "the session's creation and a create are writes, a get a read"
    );
    assert_eq!(f.outstanding_requests, 0);
    let conns = c.nodes[&follower].connections();
    assert_eq!((conns.len(), conns[0].received, conns[0].sent), (1, 3, 3));

    c.nodes.get_mut(&follower).unwrap().reset_stats();
    let f = c.nodes[&follower].stats();
    assert_eq!(
        (f.packets_received, f.packets_sent, f.latency_count),
        (0, 0, 0)
    );
    assert_eq!(f.latency_min_ms, 0, "no latency recorded since the reset");
    assert_eq!(f.connections, 1, "a reset keeps the connections");
}
