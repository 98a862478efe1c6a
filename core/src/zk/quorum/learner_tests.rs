//! Deterministic tests of the ZooKeeper-protocol learner: synthesized
//! leader streams (as ZooKeeper 3.8's LearnerHandler writes them), fed in
//! any split, with faults between packets.

use super::learner::*;
use super::packet::{kind, QuorumPacket};
use crate::ids::Instant;
use crate::proto::{op, write_acls, Acl, Writer};
use crate::storage::StorageOp;
use crate::zk::tree::ZkTree;
use crate::zk::txn::{apply, decode_entry};

const SID: u64 = 101;

fn cfg() -> FollowConfig {
    FollowConfig {
        sid: SID,
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        snapshot_every: 3,
        bridged: false,
    }
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn entry(kind: i32, session: i64, zxid: i64, body: &[u8], digest: Option<u64>) -> Vec<u8> {
    let mut w = Writer::new();
    w.i64(session)
        .i32(1)
        .i64(zxid)
        .i64(1_700_000_000_000)
        .i32(kind);
    w.buf.extend_from_slice(body);
    if let Some(d) = digest {
        w.i32(2).i64(d as i64);
    }
    w.into_vec()
}

fn create(path: &str, data: &[u8], ephemeral: bool, pcv: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.ustring(path).buffer(data);
    write_acls(&mut w, &Acl::open_unsafe());
    w.bool(ephemeral).i32(pcv);
    w.into_vec()
}

/// A txn entry with the digest the leader would put in it (its tree
/// after the txn), computed on a model tree that follows along.
struct Leader {
    model: ZkTree,
}

impl Leader {
    fn txn(&mut self, kind: i32, session: i64, zxid: i64, body: &[u8]) -> Vec<u8> {
        let e = decode_entry(&entry(kind, session, zxid, body, None)).unwrap();
        apply(&mut self.model, &e);
        entry(kind, session, zxid, body, Some(self.model.digest()))
    }
}

fn pkt(k: i32, zxid: i64, data: Option<Vec<u8>>) -> Vec<u8> {
    QuorumPacket::new(k, zxid, data).encode()
}

fn drain(l: &mut ZkLearner) -> Vec<FollowOutput> {
    std::iter::from_fn(|| l.poll_output()).collect()
}

fn sent(outs: &[FollowOutput]) -> Vec<QuorumPacket> {
    outs.iter()
        .filter_map(|o| match o {
            FollowOutput::Send(b) => Some(QuorumPacket::decode(b).unwrap()),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[FollowOutput]) -> Option<&str> {
    outs.iter().find_map(|o| match o {
        FollowOutput::Close(r) => Some(r.as_str()),
        _ => None,
    })
}

const E2: i64 = 2 << 32;

/// LEADERINFO for epoch 2, DIFF, two committed proposals, NEWLEADER,
/// UPTODATE, then three INFORMs (an ephemeral, its session's close) and a
/// PING: everything after the handshake, as one byte string.
fn diff_stream(leader: &mut Leader) -> Vec<u8> {
    let mut b = pkt(
        kind::LEADERINFO,
        E2,
        Some(0x10000i32.to_be_bytes().to_vec()),
    );
    b.extend(pkt(kind::DIFF, E2 + 2, None));
    let s1 = leader.txn(op::CREATE_SESSION, 0x77, E2 + 1, &4000i32.to_be_bytes());
    let c1 = leader.txn(op::CREATE, 0x77, E2 + 2, &create("/a", b"one", false, 1));
    for (z, e) in [(E2 + 1, s1), (E2 + 2, c1)] {
        b.extend(pkt(kind::PROPOSAL, z, Some(e)));
        b.extend(pkt(kind::COMMIT, z, None));
    }
    b.extend(pkt(kind::NEWLEADER, E2, Some(b"server.1=x".to_vec())));
    b.extend(pkt(kind::UPTODATE, -1, None));
    let i1 = leader.txn(op::CREATE, 0x77, E2 + 3, &create("/a/e", b"", true, 1));
    let i2 = leader.txn(op::CREATE, 0x77, E2 + 4, &create("/b", b"two", false, 2));
    // CloseSessionTxn: the ephemerals the leader deletes with it.
    let mut w = Writer::new();
    w.vec_ustring(&["/a/e"]);
    let i3 = leader.txn(op::CLOSE_SESSION, 0x77, E2 + 5, &w.into_vec());
    for (z, e) in [(E2 + 3, i1), (E2 + 4, i2), (E2 + 5, i3)] {
        b.extend(pkt(kind::INFORM, z, Some(e)));
    }
    b.extend(pkt(kind::PING, E2 + 5, None));
    b
}

fn new_leader() -> Leader {
    Leader {
        model: initial_tree(),
    }
}

#[test]
fn handshake_diff_and_informs_as_zookeeper_sends_them_in_any_split() {
    let mut want_tree = None;
    for chunk in [1usize, 5, 17, 1 << 20] {
        let mut leader = new_leader();
        let stream = diff_stream(&mut leader);
        let mut l = ZkLearner::new(cfg(), initial_tree(), 1, 1);
        l.connected(t(0));
        let hello = sent(&drain(&mut l));
        assert_eq!(hello.len(), 1);
        assert_eq!(hello[0].kind, kind::OBSERVERINFO);
        assert_eq!(hello[0].zxid, 1 << 32, "acceptedEpoch 1, counter 0");
        let info = hello[0].data.as_ref().unwrap();
        assert_eq!(
            i64::from_be_bytes(info[..8].try_into().unwrap()),
            SID as i64
        );
        let mut outs = Vec::new();
        for c in stream.chunks(chunk) {
            l.handle_bytes(t(10), c);
            outs.extend(drain(&mut l));
        }
        assert_eq!(closed(&outs), None);
        let s = sent(&outs);
        let kinds: Vec<i32> = s.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [kind::ACKEPOCH, kind::ACK, kind::ACK, kind::PING],
            "ACKEPOCH, NEWLEADER ack, UPTODATE ack, the PING answer"
        );
        // ACKEPOCH: our last zxid (0) and our currentEpoch (1).
        assert_eq!(s[0].zxid, 0);
        assert_eq!(s[0].data.as_deref(), Some(&1i32.to_be_bytes()[..]));
        assert_eq!((s[1].zxid, s[2].zxid), (E2, E2));
        assert_eq!((s[3].zxid, s[3].data.as_deref()), (E2 + 5, Some(&[][..])));
        assert!(outs.iter().any(|o| matches!(
            o,
            FollowOutput::Synced { mode: SyncMode::Diff, zxid, epoch: 2 } if *zxid == E2 + 2
        )));
        assert_eq!(l.phase(), Phase::Following);
        assert_eq!(l.epochs(), (2, 2));
        assert_eq!(l.last_zxid(), E2 + 5);
        let st = &l.stats;
        assert_eq!(
            (st.txns_applied, st.digests_checked, st.digest_mismatches),
            (5, 3, 0)
        );
        // The ephemeral went with its session; /a's cversion counts it.
        assert!(l.tree().get("/a/e").is_none());
        let a = l.tree().get("/a").unwrap();
        assert_eq!((a.stat.cversion, a.stat.pzxid), (1, E2 + 5));
        assert_eq!(l.tree().digest(), leader.model.digest());
        // snapshot_every = 3: one Paddock snapshot after the third txn.
        let snaps = outs
            .iter()
            .filter(|o| matches!(o, FollowOutput::Storage(StorageOp::Snapshot(_))))
            .count();
        assert_eq!(snaps, 1);
        let digest = l.tree().digest();
        assert_eq!(*want_tree.get_or_insert(digest), digest);
    }
}

#[test]
fn snap_sync_decodes_the_streamed_snapshot_and_replays_over_it() {
    let mut leader = new_leader();
    // The leader's database: /a created at E2+1.
    let c1 = leader.txn(op::CREATE, 0, E2 + 1, &create("/a", b"snap", false, 1));
    let _ = c1;
    let mut b = pkt(
        kind::LEADERINFO,
        E2,
        Some(0x10000i32.to_be_bytes().to_vec()),
    );
    b.extend(pkt(kind::SNAP, E2 + 1, None));
    // ZKDatabase.serializeSnapshot: no sessions, one ACL list, nodes.
    let mut w = Writer::new();
    w.i32(0).i32(1).i64(1);
    write_acls(&mut w, &Acl::open_unsafe());
    for (path, n) in leader.model.nodes() {
        let p = if path == "/" { "" } else { path.as_str() };
        w.ustring(p).buffer(n.data.as_deref().unwrap_or(&[])).i64(1);
        let s = n.stat;
        w.i64(s.czxid).i64(s.mzxid).i64(s.ctime).i64(s.mtime);
        w.i32(s.version).i32(s.cversion).i32(s.aversion);
        w.i64(s.ephemeral_owner).i64(s.pzxid);
    }
    w.ustring("/").ustring("BenWasHere");
    b.extend(w.into_vec());
    b.extend(pkt(kind::NEWLEADER, E2, None));
    b.extend(pkt(kind::UPTODATE, -1, None));
    let i = leader.txn(op::SET_DATA, 0, E2 + 2, &{
        let mut w = Writer::new();
        w.ustring("/a").buffer(b"after").i32(1);
        w.into_vec()
    });
    b.extend(pkt(kind::INFORM, E2 + 2, Some(i)));

    let mut l = ZkLearner::new(cfg(), initial_tree(), 1, 1);
    l.connected(t(0));
    drain(&mut l);
    l.handle_bytes(t(1), &b);
    let outs = drain(&mut l);
    assert_eq!(closed(&outs), None);
    assert!(outs.iter().any(|o| matches!(
        o,
        FollowOutput::Synced {
            mode: SyncMode::Snap,
            ..
        }
    )));
    // A SNAP is made durable at NEWLEADER, as a Paddock snapshot.
    assert!(outs
        .iter()
        .any(|o| matches!(o, FollowOutput::Storage(StorageOp::Snapshot(s)) if s.zxid.0 == (E2 + 1) as u64)));
    let a = l.tree().get("/a").unwrap();
    assert_eq!(a.data.as_deref(), Some(&b"after"[..]));
    assert_eq!(
        (a.stat.version, a.stat.mzxid, a.stat.czxid),
        (1, E2 + 2, E2 + 1)
    );
    assert_eq!(l.stats.digest_mismatches, 0);
    assert_eq!(l.stats.digests_checked, 1);
}

#[test]
fn a_link_broken_between_any_two_bytes_resyncs_to_the_same_state() {
    let mut leader = new_leader();
    let full = diff_stream(&mut leader);
    let want = leader.model.digest();
    for cut in (0..full.len()).step_by(7) {
        let mut l = ZkLearner::new(cfg(), initial_tree(), 1, 1);
        l.connected(t(0));
        l.handle_bytes(t(1), &full[..cut]);
        l.disconnected();
        drain(&mut l);
        // The next leader (same history) sends what we lack: a DIFF from
        // our last zxid, here simply everything again (replay is skipped
        // for zxids we hold).
        let applied = l.last_zxid();
        let (acc, _) = l.epochs();
        l.connected(t(2));
        let hello = sent(&drain(&mut l));
        assert_eq!(hello[0].zxid, (acc as i64) << 32);
        let mut again = new_leader();
        l.handle_bytes(t(3), &diff_stream(&mut again));
        let outs = drain(&mut l);
        if acc == 2 {
            // accepted == the leader's epoch: ACKEPOCH says -1.
            let s = sent(&outs);
            assert_eq!(s[0].data.as_deref(), Some(&(-1i32).to_be_bytes()[..]));
            assert_eq!(s[0].zxid, applied);
        }
        assert_eq!(closed(&outs), None, "cut at {cut}");
        assert_eq!(l.tree().digest(), want, "cut at {cut}");
        assert_eq!(l.stats.digest_mismatches, 0);
    }
}

#[test]
fn malformed_packets_close_the_link_with_a_reason_and_change_nothing() {
    let mut leader = new_leader();
    let good = diff_stream(&mut leader);
    let mut l = ZkLearner::new(cfg(), initial_tree(), 1, 1);
    l.connected(t(0));
    l.handle_bytes(t(1), &good);
    drain(&mut l);
    let before = (l.last_zxid(), l.tree().digest());
    // An INFORM whose txn is garbage.
    l.handle_bytes(t(2), &pkt(kind::INFORM, E2 + 6, Some(vec![9; 7])));
    let outs = drain(&mut l);
    let why = closed(&outs).expect("closed");
    assert!(why.contains("txn in INFORM"), "{why}");
    assert_eq!(l.phase(), Phase::Disconnected);
    // A hostile length, on a fresh link, closes it before its bytes come.
    l.connected(t(3));
    drain(&mut l);
    let mut b = 17i32.to_be_bytes().to_vec();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    l.handle_bytes(t(4), &b);
    let why = closed(&drain(&mut l)).map(String::from).expect("closed");
    assert!(why.contains("exceeds the limit"), "{why}");
    // Out of order: UPTODATE before LEADERINFO.
    l.connected(t(5));
    drain(&mut l);
    l.handle_bytes(t(6), &pkt(kind::UPTODATE, -1, None));
    let why = closed(&drain(&mut l)).map(String::from).expect("closed");
    assert!(
        why.contains("UPTODATE from the leader while AwaitLeaderInfo"),
        "{why}"
    );
    assert_eq!((l.last_zxid(), l.tree().digest()), before);
}

#[test]
fn an_older_epoch_a_trunc_below_us_and_silence_close_the_link() {
    let mut l = ZkLearner::new(cfg(), initial_tree(), 5, 5);
    l.connected(t(0));
    drain(&mut l);
    l.handle_bytes(
        t(1),
        &pkt(kind::LEADERINFO, 3 << 32, Some(vec![0, 1, 0, 0])),
    );
    assert!(closed(&drain(&mut l)).unwrap().contains("epoch 3 is below"));

    let mut leader = new_leader();
    let mut l = ZkLearner::new(cfg(), initial_tree(), 1, 1);
    l.connected(t(0));
    l.handle_bytes(t(1), &diff_stream(&mut leader));
    drain(&mut l);
    l.connected(t(2));
    drain(&mut l);
    let mut b = pkt(kind::LEADERINFO, 3 << 32, Some(vec![0, 1, 0, 0]));
    b.extend(pkt(kind::TRUNC, E2 + 2, None));
    l.handle_bytes(t(3), &b);
    let outs = drain(&mut l);
    assert!(closed(&outs).unwrap().contains("TRUNC to"));
    assert_eq!(l.last_zxid(), 0, "the tree starts over");

    // Silence: initLimit ticks while syncing, syncLimit once following.
    l.connected(t(10_000));
    drain(&mut l);
    assert_eq!(l.poll_timeout(), Some(t(11_000)));
    l.handle_timeout(t(10_999));
    assert!(drain(&mut l).is_empty());
    l.handle_timeout(t(11_000));
    assert!(closed(&drain(&mut l))
        .unwrap()
        .contains("nothing from the leader for 1000 ms"));
}
