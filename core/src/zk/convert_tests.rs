//! Goal: a ZooKeeper txn stream applied through `to_paddock` and Paddock's
//! `State::apply` leaves exactly the state ZooKeeper's own replay
//! (`zk::txn::apply`) leaves — every node's data, ACL and Stat, the
//! session table, the digest — and fires the watch events ZooKeeper fires.

use super::*;
use crate::proto::{event_type, Acl, Id};
use crate::txn::{Applied, State};
use crate::zk::quorum::learner::initial_tree;
use crate::zk::tree::ZkTree;
use crate::zk::txn::{apply, TxnHeader};

struct Pair {
    zk: ZkTree,
    paddock: State,
    zxid: i64,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            zk: initial_tree(),
            paddock: initial_tree().into_state().unwrap(),
            zxid: 0x1_0000_0000,
        }
    }

    /// The cversion ZooKeeper's prep puts in a CreateTxn.
    fn pcv(&self, path: &str) -> i32 {
        let parent = match path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &path[..i],
        };
        self.zk.get(parent).unwrap().stat.cversion + 1
    }

    /// The version ZooKeeper's prep puts in a SetDataTxn (the new one).
    fn next_version(&self, path: &str) -> i32 {
        self.zk.get(path).unwrap().stat.version + 1
    }

    /// Applies one txn both ways and checks the two states are one.
    fn step(&mut self, session: i64, kind: i32, txn: ZkTxn) -> (Converted, Applied) {
        self.zxid += 1;
        let e = ZkEntry {
            hdr: TxnHeader {
                client_id: session,
                cxid: 7,
                zxid: self.zxid,
                time: 1_700_000_000_000 + self.zxid % 1000,
                kind,
            },
            txn,
            digest: None,
        };
        apply(&mut self.zk, &e);
        let c = to_paddock(&e).unwrap();
        assert_eq!(c.txn.zxid.as_i64(), self.zxid);
        assert_eq!((c.txn.session.0, c.txn.cxid), (session, 7));
        let applied = self.paddock.apply(&c.txn, &followed_apply_options());
        let back = ZkTree::from_state(&self.paddock).unwrap();
        let zk_nodes: Vec<_> = self.zk.nodes().collect();
        let paddock_nodes: Vec<_> = back.nodes().collect();
        assert_eq!(paddock_nodes, zk_nodes, "after {kind} at {:#x}", self.zxid);
        assert_eq!(back.digest(), self.zk.digest());
        assert_eq!(back.sessions, self.zk.sessions);
        assert_eq!(back.last_zxid, self.zk.last_zxid);
        (c, applied)
    }

    fn create(&mut self, session: i64, path: &str, ephemeral: bool) -> Applied {
        let txn = ZkTxn::Create {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral,
            parent_cversion: self.pcv(path),
        };
        self.step(session, op::CREATE2, txn).1
    }
}

fn events(a: &Applied) -> Vec<(String, i32)> {
    a.triggers
        .iter()
        .map(|t| (t.path.clone(), t.event))
        .collect()
}

const S1: i64 = 0x0100_0000_0000_0001;
const S2: i64 = 0x0200_0000_0000_0002;

#[test]
fn every_kind_of_txn_leaves_zookeepers_state_and_fires_its_events() {
    let mut p = Pair::new();
    for s in [S1, S2] {
        let (c, a) = p.step(
            s,
            op::CREATE_SESSION,
            ZkTxn::CreateSession { timeout_ms: 4000 },
        );
        assert_eq!(a.session_created, Some(SessionId(s)));
        assert_eq!(c.failed, None);
    }
    let a = p.create(S1, "/app", false);
    assert_eq!(
        events(&a),
        vec![
            ("/app".into(), event_type::NODE_CREATED),
            ("/".into(), event_type::NODE_CHILDREN_CHANGED)
        ]
    );
    // A sequential create arrives with its name chosen.
    p.create(S1, "/app/job-0000000001", false);
    p.create(S2, "/app/lock-0000000002", true);
    // Null data, a container, a TTL node.
    let pcv = p.pcv("/null");
    p.step(
        S1,
        op::CREATE,
        ZkTxn::Create {
            path: "/null".into(),
            data: None,
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: pcv,
        },
    );
    let pcv = p.pcv("/box");
    p.step(
        S1,
        op::CREATE_CONTAINER,
        ZkTxn::CreateContainer {
            path: "/box".into(),
            data: Some(vec![]),
            acl: Acl::open_unsafe(),
            parent_cversion: pcv,
        },
    );
    let pcv = p.pcv("/ttl");
    p.step(
        S1,
        op::CREATE_TTL,
        ZkTxn::CreateTtl {
            path: "/ttl".into(),
            data: Some(b"t".to_vec()),
            acl: Acl::open_unsafe(),
            parent_cversion: pcv,
            ttl: 60_000,
        },
    );
    // setData (twice: the version moves), to null, setACL to a digest
    // id that the requester could not have passed.
    for d in [&b"v1"[..], b"v2"] {
        let version = p.next_version("/app");
        let (_, a) = p.step(
            S1,
            op::SET_DATA,
            ZkTxn::SetData {
                path: "/app".into(),
                data: Some(d.to_vec()),
                version,
            },
        );
        assert_eq!(
            events(&a),
            vec![("/app".into(), event_type::NODE_DATA_CHANGED)]
        );
    }
    let version = p.next_version("/null");
    p.step(
        S1,
        op::SET_DATA,
        ZkTxn::SetData {
            path: "/null".into(),
            data: None,
            version,
        },
    );
    let locked = vec![Acl {
        perms: crate::proto::perms::READ,
        id: Id::new("digest", "someone:hash"),
    }];
    p.step(
        S1,
        op::SET_ACL,
        ZkTxn::SetAcl {
            path: "/null".into(),
            acl: locked.clone(),
            version: 1,
        },
    );
    // ...and then a write under that ACL, which ZooKeeper allowed (its
    // requester had the right id): the conversion must not refuse it.
    let version = p.next_version("/null");
    p.step(
        S2,
        op::SET_DATA,
        ZkTxn::SetData {
            path: "/null".into(),
            data: Some(b"ok".to_vec()),
            version,
        },
    );
    // A multi: creates, setData, check, delete.
    let (pcv_m, pcv_k) = (p.pcv("/m"), 1);
    let (c, a) = p.step(
        S1,
        op::MULTI,
        ZkTxn::Multi(vec![
            (
                op::CREATE,
                ZkTxn::Create {
                    path: "/m".into(),
                    data: Some(b"m".to_vec()),
                    acl: Acl::open_unsafe(),
                    ephemeral: false,
                    parent_cversion: pcv_m,
                },
            ),
            (
                op::CREATE,
                ZkTxn::Create {
                    path: "/m/k".into(),
                    data: Some(b"k".to_vec()),
                    acl: Acl::open_unsafe(),
                    ephemeral: false,
                    parent_cversion: pcv_k,
                },
            ),
            (
                op::SET_DATA,
                ZkTxn::SetData {
                    path: "/m".into(),
                    data: Some(b"m2".to_vec()),
                    version: 1,
                },
            ),
            (
                op::CHECK,
                ZkTxn::Check {
                    path: "/app".into(),
                    version: 2,
                },
            ),
            (
                op::DELETE,
                ZkTxn::Delete {
                    path: "/m/k".into(),
                },
            ),
        ]),
    );
    assert_eq!(c.failed, None);
    assert_eq!(a.err, crate::proto::ErrorCode::Ok);
    assert!(events(&a).contains(&("/m/k".into(), event_type::NODE_DELETED)));
    // Failures change nothing and carry ZooKeeper's answer.
    let before = p.zk.digest();
    let (c, a) = p.step(
        S1,
        op::MULTI,
        ZkTxn::Multi(vec![
            (op::ERROR, ZkTxn::Error { err: 0 }),
            (op::ERROR, ZkTxn::Error { err: -110 }),
            (op::ERROR, ZkTxn::Error { err: -2 }),
        ]),
    );
    assert_eq!(c.failed, Some(Failure::Multi(vec![0, -110, -2])));
    assert!(a.triggers.is_empty());
    let (c, a) = p.step(S2, op::ERROR, ZkTxn::Error { err: -101 });
    assert_eq!(c.failed, Some(Failure::Error(-101)));
    assert!(a.triggers.is_empty());
    assert_eq!(p.zk.digest(), before);
    // The container reaper's delete (session 0).
    p.step(
        0,
        op::DELETE_CONTAINER,
        ZkTxn::Delete {
            path: "/box".into(),
        },
    );
    // A session's close removes its ephemerals, with their events.
    let (_, a) = p.step(
        S2,
        op::CLOSE_SESSION,
        ZkTxn::CloseSession {
            paths: Some(vec!["/app/lock-0000000002".into()]),
        },
    );
    assert_eq!(a.session_closed, Some(SessionId(S2)));
    assert!(events(&a).contains(&("/app/lock-0000000002".into(), event_type::NODE_DELETED)));
    assert!(events(&a).contains(&("/app".into(), event_type::NODE_CHILDREN_CHANGED)));
    assert!(p.zk.get("/app/lock-0000000002").is_none());
}

#[test]
fn a_recreated_node_and_deleted_parents_keep_stats_equal() {
    // Deletes move the parent's pzxid and cversion as ZooKeeper does; a
    // node deleted and created again starts a fresh Stat.
    let mut p = Pair::new();
    p.step(
        S1,
        op::CREATE_SESSION,
        ZkTxn::CreateSession { timeout_ms: 6000 },
    );
    for round in 0..3 {
        p.create(S1, "/q", false);
        for i in 0..4 {
            let path = format!("/q/n-{round}-{i}");
            p.create(S1, &path, i % 2 == 0);
        }
        for i in 0..4 {
            let path = format!("/q/n-{round}-{i}");
            p.step(S1, op::DELETE, ZkTxn::Delete { path });
        }
        p.step(S1, op::DELETE, ZkTxn::Delete { path: "/q".into() });
    }
    p.step(
        S1,
        op::CLOSE_SESSION,
        ZkTxn::CloseSession {
            paths: Some(vec![]),
        },
    );
    assert!(p.zk.sessions.is_empty());
}

#[test]
fn a_negative_session_timeout_is_refused_not_applied() {
    let e = ZkEntry {
        hdr: TxnHeader {
            client_id: S1,
            cxid: 0,
            zxid: 5,
            time: 0,
            kind: op::CREATE_SESSION,
        },
        txn: ZkTxn::CreateSession { timeout_ms: -1 },
        digest: None,
    };
    assert!(to_paddock(&e).unwrap_err().contains("timeout -1"));
}
