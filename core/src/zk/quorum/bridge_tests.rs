//! Goal: an unchanged Paddock `Node` behind the bridge serves clients
//! from the followed state — sessions are created by ZooKeeper's leader,
//! writes are forwarded and answered from ZooKeeper's txns in order,
//! watches fire as txns arrive, reconnects are revalidated, PINGs carry
//! the sessions the node's clients touched — against a synthesized
//! ZooKeeper leader stream, deterministically.

use super::*;
use crate::boot;
use crate::config::Config;
use crate::ids::{ConnId, Now};
use crate::node::{Node, Output};
use crate::proto::{
    event_type, op, write_acls, Acl, ConnectRequest, CreateRequest, ErrorCode, Reader, Writer,
};
use crate::storage::MemDir;
use crate::zk::quorum::learner::{initial_tree, FollowConfig};
use crate::zk::quorum::packet::{kind, QuorumPacket};
use crate::zk::quorum::stream::{Item, LeaderStream};
use std::collections::BTreeMap;

const ME: u64 = 101;
const EPOCH: u32 = 3;

fn now(ms: u64) -> Now {
    Now::new(Instant::from_millis(ms), 1_700_000_000_000 + ms as i64)
}

fn zxid(counter: u32) -> i64 {
    crate::ids::Zxid::new(EPOCH, counter).as_i64()
}

/// One txn entry as a ZooKeeper leader writes it (no digest).
fn entry(kind: i32, session: i64, cxid: i32, zxid: i64, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i64(session)
        .i32(cxid)
        .i64(zxid)
        .i64(1_700_000_000_000)
        .i32(kind);
    w.buf.extend_from_slice(body);
    w.into_vec()
}

fn create_body(path: &str, data: &[u8], ephemeral: bool, pcv: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.ustring(path).buffer(data);
    write_acls(&mut w, &Acl::open_unsafe());
    w.bool(ephemeral).i32(pcv);
    w.into_vec()
}

/// A node, its bridge, a synthesized ZooKeeper leader, and clients.
struct World {
    node: Node,
    disk: MemDir,
    bridge: ZkBridge,
    now_ms: u64,
    /// What the bridge wrote to ZooKeeper, decoded.
    to_zk: Vec<QuorumPacket>,
    zk_stream: LeaderStream,
    inbox: BTreeMap<u64, Vec<Vec<u8>>>,
    closed: BTreeMap<u64, String>,
    next_counter: u32,
}

impl World {
    fn new() -> World {
        World::with_tree(initial_tree())
    }

    /// The learner starts from `tree` (what an earlier run left).
    fn with_tree(tree: crate::zk::tree::ZkTree) -> World {
        let mut cfg = Config::ensemble(ME, &[FOLLOWED.0], &[ME]);
        cfg.tick_time_ms = 100;
        cfg.extended_types_enabled = true;
        cfg.zookeeper_session_passwords = true;
        let mut disk = MemDir::new();
        let node = boot::boot(cfg, &mut disk, now(0)).expect("boot").node;
        let fc = FollowConfig {
            sid: ME,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            snapshot_every: u64::MAX,
            bridged: true,
        };
        let learner = ZkLearner::new(fc, tree, 0, 0);
        let mut w = World {
            node,
            disk,
            bridge: ZkBridge::new(learner),
            now_ms: 0,
            to_zk: Vec::new(),
            zk_stream: LeaderStream::new(),
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_counter: 1,
        };
        w.pump();
        w
    }

    fn now(&self) -> Now {
        now(self.now_ms)
    }

    /// Moves outputs between the node, the bridge and the disk until
    /// nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.node.poll_output() {
                moved = true;
                match o {
                    Output::SendPeer { to, bytes } => {
                        assert_eq!(to, FOLLOWED);
                        self.bridge.from_node(&bytes);
                    }
                    Output::Storage(op) => {
                        let done = self.disk.execute(op);
                        self.node.handle(self.now(), done.into());
                    }
                    Output::SendClient { conn, frame } => {
                        self.inbox.entry(conn.0).or_default().push(frame)
                    }
                    Output::CloseClient { conn, reason } => {
                        self.closed.insert(conn.0, reason);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            while let Some(o) = self.bridge.poll_output() {
                moved = true;
                match o {
                    BridgeOutput::ToZooKeeper(b) => {
                        self.zk_stream.push(&b);
                        while let Ok(Some(Item::Packet(p))) = self.zk_stream.next_item() {
                            self.to_zk.push(p);
                        }
                    }
                    BridgeOutput::ToNode(input) => self.node.handle(self.now(), input),
                    BridgeOutput::CloseZooKeeper(why) => panic!("closed: {why}"),
                    BridgeOutput::Warn(w) => panic!("warning: {w}"),
                    BridgeOutput::Synced { .. } | BridgeOutput::Applied { .. } => {}
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now_ms += 10;
            self.node.handle_timeout(self.now());
            self.bridge
                .handle_timeout(Instant::from_millis(self.now_ms));
            self.pump();
        }
    }

    fn leader_sends(&mut self, p: QuorumPacket) {
        self.bridge
            .zk_bytes(Instant::from_millis(self.now_ms), &p.encode());
        self.pump();
    }

    /// A ZooKeeper leader syncs the learner by DIFF with `txns`.
    fn attach(&mut self, txns: &[Vec<u8>]) {
        self.to_zk.clear();
        self.bridge.zk_connected(Instant::from_millis(self.now_ms));
        self.pump();
        assert_eq!(self.to_zk[0].kind, kind::OBSERVERINFO);
        self.leader_sends(QuorumPacket::new(
            kind::LEADERINFO,
            zxid(0),
            Some(vec![0, 1, 0, 0]),
        ));
        self.leader_sends(QuorumPacket::new(kind::DIFF, 0, None));
        for t in txns {
            let z = Reader::new(&t[12..]).i64().unwrap();
            self.leader_sends(QuorumPacket::new(kind::PROPOSAL, z, Some(t.clone())));
            self.leader_sends(QuorumPacket::new(kind::COMMIT, z, None));
        }
        self.leader_sends(QuorumPacket::new(kind::NEWLEADER, zxid(0), None));
        self.leader_sends(QuorumPacket::new(kind::UPTODATE, -1, None));
        self.advance(200);
    }

    /// ZooKeeper commits a txn: an INFORM.
    fn inform(&mut self, kind_: i32, session: i64, cxid: i32, body: &[u8]) -> i64 {
        let z = zxid(self.next_counter);
        self.next_counter += 1;
        let e = entry(kind_, session, cxid, z, body);
        self.leader_sends(QuorumPacket::new(kind::INFORM, z, Some(e)));
        z
    }

    fn client(&mut self, conn: u64, session: i64, passwd: Vec<u8>) {
        self.node.handle(
            self.now(),
            Input::ClientConnected {
                conn: ConnId(conn),
                addr: "127.0.0.1".into(),
            },
        );
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 6000,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        self.frame(conn, req.encode());
    }

    fn frame(&mut self, conn: u64, frame: Vec<u8>) {
        self.node.handle(
            self.now(),
            Input::ClientFrame {
                conn: ConnId(conn),
                frame,
            },
        );
        self.pump();
    }

    fn take(&mut self, conn: u64) -> Vec<Vec<u8>> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// REQUEST packets sent since the last call: (session, cxid, type, body).
    fn requests(&mut self) -> Vec<(i64, i32, i32, Vec<u8>)> {
        let out = self
            .to_zk
            .iter()
            .filter(|p| p.kind == kind::REQUEST)
            .map(|p| {
                let d = p.data.clone().unwrap();
                let mut r = Reader::new(&d);
                (
                    r.i64().unwrap(),
                    r.i32().unwrap(),
                    r.i32().unwrap(),
                    d[16..].to_vec(),
                )
            })
            .collect();
        self.to_zk.retain(|p| p.kind != kind::REQUEST);
        out
    }
}

/// (xid, zxid, err) of a reply frame.
fn header(frame: &[u8]) -> (i32, i64, i32) {
    let mut r = Reader::new(frame);
    (r.i32().unwrap(), r.i64().unwrap(), r.i32().unwrap())
}

fn create_request(xid: i32, opcode: i32, path: &str, flags: i32) -> Vec<u8> {
    encode_request(
        xid,
        &Request::Create {
            opcode,
            req: CreateRequest {
                path: path.into(),
                data: b"d".to_vec(),
                acl: Acl::open_unsafe(),
                flags,
                ttl: None,
            },
        },
    )
}

/// The node, synced, with one client whose session ZooKeeper created.
fn serving_with_session() -> (World, i64) {
    let mut w = World::new();
    w.attach(&[]);
    assert!(w.node.leader() == Some(FOLLOWED), "{}", w.node.role_debug());
    w.client(1, 0, vec![0; 16]);
    let reqs = w.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (session, cxid, ty, body) = reqs[0].clone();
    assert_eq!((cxid, ty), (0, op::CREATE_SESSION));
    assert_eq!(body, 6000i32.to_be_bytes());
    assert_eq!(session >> 56, ME as i64, "the session id carries our sid");
    assert!(w.take(1).is_empty(), "no answer before ZooKeeper commits");
    w.inform(op::CREATE_SESSION, session, 0, &6000i32.to_be_bytes());
    let frames = w.take(1);
    assert_eq!(frames.len(), 1);
    let mut r = Reader::new(&frames[0]);
    let (_, timeout, id) = (r.i32().unwrap(), r.i32().unwrap(), r.i64().unwrap());
    assert_eq!((timeout, id), (6000, session));
    assert_eq!(
        r.buffer().unwrap(),
        crate::zk::password::zookeeper_password(SessionId(session)).to_vec(),
        "ZooKeeper's password, so the client may move to a ZooKeeper server"
    );
    (w, session)
}

#[test]
fn a_session_is_created_by_zookeepers_leader_and_writes_are_answered_from_its_txns() {
    let (mut w, session) = serving_with_session();
    // create (opcode 1): forwarded as is, answered as create once the
    // txn is back, in the client's order.
    w.frame(1, create_request(1, op::CREATE, "/a", 0));
    w.frame(1, create_request(2, op::CREATE2, "/a/e", 1));
    let reqs = w.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].0, reqs[0].1, reqs[0].2), (session, 1, op::CREATE));
    assert_eq!(
        &reqs[1].3[..],
        &create_request(2, op::CREATE2, "/a/e", 1)[8..]
    );
    assert!(w.take(1).is_empty());
    let z1 = w.inform(op::CREATE, session, 1, &create_body("/a", b"d", false, 1));
    let z2 = w.inform(op::CREATE2, session, 2, &create_body("/a/e", b"d", true, 1));
    let frames = w.take(1);
    assert_eq!(frames.len(), 2);
    assert_eq!(header(&frames[0]), (1, z1, 0));
    assert_eq!(header(&frames[1]), (2, z2, 0));
    let mut r = Reader::new(&frames[1][16..]);
    assert_eq!(r.ustring().unwrap(), "/a/e");
    let stat = crate::proto::Stat::read(&mut r).unwrap();
    assert_eq!((stat.czxid, stat.ephemeral_owner), (z2, session));
    // A write ZooKeeper failed: the client's own request, same code.
    w.frame(1, create_request(3, op::CREATE, "/a", 0));
    assert_eq!(w.requests().len(), 1);
    let z3 = w.inform(op::ERROR, session, 3, &(-110i32).to_be_bytes());
    let frames = w.take(1);
    assert_eq!(header(&frames[0]), (3, z3, ErrorCode::NodeExists.code()));
    assert_eq!(w.node.last_zxid().as_i64(), z3);
}

#[test]
fn watches_fire_on_txns_of_other_zookeeper_clients_and_reads_are_local() {
    let (mut w, session) = serving_with_session();
    let other = 0x0100_0000_0000_0007;
    w.inform(op::CREATE_SESSION, other, 0, &4000i32.to_be_bytes());
    w.inform(op::CREATE, other, 1, &create_body("/cfg", b"v1", false, 1));
    // getData with a watch: answered here, nothing sent to ZooKeeper.
    let get = encode_request(
        5,
        &Request::GetData {
            path: "/cfg".into(),
            watch: true,
        },
    );
    w.frame(1, get);
    assert!(w.requests().is_empty());
    let frames = w.take(1);
    assert_eq!(header(&frames[0]).2, 0);
    let mut r = Reader::new(&frames[0][16..]);
    assert_eq!(r.buffer().unwrap(), b"v1");
    // Another ZooKeeper client sets it: the event comes with the INFORM.
    let mut b = Writer::new();
    b.ustring("/cfg").buffer(b"v2").i32(1);
    let z = w.inform(op::SET_DATA, other, 2, &b.into_vec());
    let frames = w.take(1);
    assert_eq!(frames.len(), 1);
    let mut r = Reader::new(&frames[0]);
    assert_eq!((r.i32().unwrap(), r.i64().unwrap()), (-1, z));
    r.i32().unwrap();
    assert_eq!(
        (r.i32().unwrap(), r.i32().unwrap()),
        (event_type::NODE_DATA_CHANGED, 3)
    );
    assert_eq!(r.ustring().unwrap(), "/cfg");
    // The other session expires on ZooKeeper: a closeSession txn.
    let mut b = Writer::new();
    b.vec_ustring::<&str>(&[]);
    w.inform(op::CLOSE_SESSION, other, 0, &b.into_vec());
    assert!(!w.node.session_is_live(SessionId(other)));
    assert!(w.node.session_is_live(SessionId(session)));
}

#[test]
fn pings_carry_the_sessions_our_clients_touched() {
    let (mut w, session) = serving_with_session();
    w.to_zk.clear();
    w.frame(1, encode_request(-2, &Request::Ping));
    w.take(1);
    w.leader_sends(QuorumPacket::new(kind::PING, zxid(1), None));
    let pings: Vec<_> = w.to_zk.iter().filter(|p| p.kind == kind::PING).collect();
    assert_eq!(pings.len(), 1);
    let d = pings[0].data.clone().unwrap();
    let mut r = Reader::new(&d);
    assert_eq!((r.i64().unwrap(), r.i32().unwrap()), (session, 6000));
    // Nothing touched since: an empty list, still an answer.
    w.to_zk.clear();
    w.leader_sends(QuorumPacket::new(kind::PING, zxid(1), None));
    let pings: Vec<_> = w.to_zk.iter().filter(|p| p.kind == kind::PING).collect();
    assert_eq!(pings[0].data.as_deref(), Some(&[][..]));
}

#[test]
fn a_sync_is_answered_after_zookeepers_sync_packet() {
    let (mut w, _) = serving_with_session();
    w.frame(1, encode_request(9, &Request::Sync { path: "/".into() }));
    let reqs = w.requests();
    assert_eq!(reqs[0].2, op::SYNC);
    assert!(w.take(1).is_empty());
    w.leader_sends(QuorumPacket::new(kind::SYNC, 0, None));
    let frames = w.take(1);
    assert_eq!(header(&frames[0]).0, 9);
}

#[test]
fn after_a_zookeeper_leader_change_the_client_reconnects_and_is_revalidated() {
    let (mut w, session) = serving_with_session();
    w.frame(1, create_request(1, op::CREATE, "/x", 0));
    w.inform(op::CREATE, session, 1, &create_body("/x", b"d", false, 1));
    w.take(1);
    // The ZooKeeper leader dies: the node drops its clients, as a
    // ZooKeeper observer does.
    w.bridge.zk_disconnected();
    w.pump();
    assert!(w.closed.contains_key(&1));
    assert!(w.node.leader().is_none());
    // A new leader (same history plus one txn) syncs the learner by DIFF;
    // the node catches up from the backlog.
    let z = zxid(w.next_counter);
    w.next_counter += 1;
    let t = entry(
        op::CREATE,
        0x0100_0000_0000_0009,
        1,
        z,
        &create_body("/y", b"", false, 2),
    );
    w.attach(&[t]);
    assert_eq!(w.node.leader(), Some(FOLLOWED));
    assert_eq!(w.node.last_zxid().as_i64(), z);
    assert_eq!(w.bridge.stats.node_syncs_snap, 0, "{:?}", w.bridge.stats);
    // The client comes back with its session: REVALIDATE, then served.
    let passwd = crate::zk::password::zookeeper_password(SessionId(session)).to_vec();
    w.to_zk.clear();
    w.client(2, session, passwd);
    let rv: Vec<_> = w
        .to_zk
        .iter()
        .filter(|p| p.kind == kind::REVALIDATE)
        .collect();
    assert_eq!(rv.len(), 1);
    assert!(w.take(2).is_empty());
    let mut b = Writer::new();
    b.i64(session).bool(true);
    w.leader_sends(QuorumPacket::new(kind::REVALIDATE, -1, Some(b.into_vec())));
    let frames = w.take(2);
    let mut r = Reader::new(&frames[0]);
    r.i32().unwrap();
    r.i32().unwrap();
    assert_eq!(r.i64().unwrap(), session);
    // One ZooKeeper says is gone is refused.
    let gone = SessionId(0x0100_0000_0000_0042);
    let passwd = crate::zk::password::zookeeper_password(gone).to_vec();
    w.client(3, gone.0, passwd);
    let mut b = Writer::new();
    b.i64(0x0100_0000_0000_0042).bool(false);
    w.leader_sends(QuorumPacket::new(kind::REVALIDATE, -1, Some(b.into_vec())));
    assert!(w.closed.contains_key(&3));
}

#[test]
fn a_node_behind_the_backlog_gets_a_snapshot_of_the_followed_tree() {
    let mut w = World::new();
    // The learner syncs by SNAP-equivalent: a DIFF whose txns the node
    // missed while its link was down cannot be served from the backlog
    // once the tree was replaced; force it by emptying the backlog.
    w.attach(&[]);
    let s = 0x0100_0000_0000_0005;
    w.inform(op::CREATE_SESSION, s, 0, &4000i32.to_be_bytes());
    w.inform(op::CREATE, s, 1, &create_body("/n", b"x", false, 1));
    w.bridge.zk_disconnected();
    w.pump();
    w.bridge.backlog.clear();
    w.bridge.backlog_base = w.bridge.last();
    // Make the node's log lag: a fresh node with an empty disk.
    let mut cfg = Config::ensemble(ME, &[FOLLOWED.0], &[ME]);
    cfg.tick_time_ms = 100;
    w.disk = MemDir::new();
    let t = w.now();
    w.node = boot::boot(cfg, &mut w.disk, t).expect("boot").node;
    w.pump();
    w.attach(&[]);
    assert_eq!(w.bridge.stats.node_syncs_snap, 1, "{:?}", w.bridge.stats);
    assert!(w.node.state().tree.get("/n").is_some());
    assert!(w.node.session_is_live(SessionId(s)));
    assert_eq!(w.node.last_zxid(), w.bridge.last());
}

#[test]
fn zookeepers_member_list_never_becomes_the_nodes() {
    // ZooKeeper keeps its members in /zookeeper/config; were the node to
    // take them as its configuration it would be no member of its own
    // ensemble and never find its leader again after a leader change.
    let mut tree = initial_tree();
    let text = b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=0";
    let acl = tree.intern_acl(Acl::open_unsafe());
    tree.insert_loaded(
        "/zookeeper/config".into(),
        crate::zk::tree::ZkNode {
            data: Some(std::sync::Arc::from(&text[..])),
            acl,
            stat: Default::default(),
        },
    )
    .unwrap();
    tree.last_zxid = zxid(0);
    let mut w = World::with_tree(tree);
    w.attach(&[]);
    assert_eq!(w.node.leader(), Some(FOLLOWED));
    assert_eq!(w.bridge.stats.node_syncs_snap, 1);
    let cfg = w.node.state().tree.get("/zookeeper/config").unwrap();
    assert!(cfg.data.is_empty(), "{:?}", cfg.data);
    // A reconfig txn of the followed ensemble takes its zxid only.
    let mut b = Writer::new();
    b.ustring("/zookeeper/config").buffer(b"server.9=x").i32(1);
    let z = w.inform(op::RECONFIG, 0x0100_0000_0000_0001, 1, &b.into_vec());
    assert_eq!(w.node.last_zxid().as_i64(), z);
    assert!(w
        .node
        .state()
        .tree
        .get("/zookeeper/config")
        .unwrap()
        .data
        .is_empty());
    // The leader changes: the node finds it again.
    w.bridge.zk_disconnected();
    w.pump();
    assert!(w.node.leader().is_none());
    w.attach(&[]);
    assert_eq!(w.node.leader(), Some(FOLLOWED), "{}", w.node.role_debug());
}
