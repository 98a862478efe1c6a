//! Apache ZooKeeper's DataTree as its own restart rebuilds it: the nodes
//! of a fuzzy snapshot, then *finalized* txns applied the way
//! `DataTree.processTxn` applies them while replaying the log —
//! idempotently, with its exact `StatPersisted` updates (a create sets the
//! parent's cversion and pzxid only when the txn's `parentCVersion` is
//! larger; a delete of a missing node still moves the parent's pzxid; a
//! create that meets an existing node moves the parent's cversion and
//! pzxid forward), and ZooKeeper's tree digest kept as it keeps it.
//!
//! Paths are kept as clients see them ("/" for the root, which
//! ZooKeeper's snapshot names ""). Converting to Paddock's tree
//! (`into_state`) keeps every stat field, ACL and byte of data.
//!
//! Invariant: `digest` is the wrapping sum of `node_digest` over every
//! node outside `/zookeeper/`, as ZooKeeper's `NodeHashMapImpl` keeps it.

use crate::ids::{SessionId, Zxid};
use crate::proto::{Acl, CONTAINER_EPHEMERAL_OWNER, TTL_MASK};
use crate::tree::{DataTree, Znode};
use crate::txn::{SessionMeta, State};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// ZooKeeper's `StatPersisted`: the stat as stored (cversion counts
/// creates; clients see `2 * cversion - numChildren`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    fn new(zxid: i64, time: i64, owner: i64) -> StatPersisted {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkNode {
    /// `None` is ZooKeeper's null data.
    pub data: Option<Arc<[u8]>>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
}

impl ZkNode {
    /// The ZooKeeper node a Paddock node is (data, ACL and every stored
    /// stat field; null data stays null). The ACL is shared, not interned.
    pub fn from_paddock(n: &Znode) -> ZkNode {
        ZkNode {
            data: (!n.null_data).then(|| n.data.clone()),
            acl: n.acl.clone(),
            stat: StatPersisted {
                czxid: n.czxid,
                mzxid: n.mzxid,
                ctime: n.ctime,
                mtime: n.mtime,
                version: n.version,
                cversion: n.cversion,
                aversion: n.aversion,
                ephemeral_owner: n.ephemeral_owner,
                pzxid: n.pzxid,
            },
        }
    }
}

/// ZooKeeper's per-node digest (`DigestCalculator`, digest version 2):
/// CRC-32 of the path ("" for the root), the data and the stat fields.
pub fn node_digest(path: &str, node: &ZkNode) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let s = &node.stat;
    let mut b = [0u8; 60];
    let mut at = 0;
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
        at += 8;
    }
    for v in [s.version, s.cversion, s.aversion] {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        at += 4;
    }
    b[at..at + 8].copy_from_slice(&s.ephemeral_owner.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    if let Some(d) = &node.data {
        h.update(d);
    }
    h.update(&b);
    h.finalize() as u64
}

/// Which sessions own ephemerals: ZooKeeper's rule (`EphemeralType`).
fn ephemeral_session(owner: i64) -> Option<i64> {
    if owner == 0 || owner == CONTAINER_EPHEMERAL_OWNER || owner & TTL_MASK == TTL_MASK {
        None
    } else {
        Some(owner)
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

/// Why a txn changed nothing (ZooKeeper's KeeperException codes, which
/// replay ignores as `processTxn` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    NoNode,
    NodeExists,
}

#[derive(Clone, Debug, Default)]
pub struct ZkTree {
    nodes: BTreeMap<String, ZkNode>,
    /// session -> its ephemeral paths.
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    digest: u64,
    /// Live sessions and their timeouts (ms), as the snapshot and the
    /// createSession / closeSession txns say.
    pub sessions: BTreeMap<i64, i32>,
    /// The last zxid applied (or the snapshot's).
    pub last_zxid: i64,
    /// Shared ACL lists, one `Arc` per distinct list.
    acls: BTreeMap<Vec<Acl>, Arc<Vec<Acl>>>,
}

impl ZkTree {
    pub fn new() -> ZkTree {
        ZkTree::default()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// ZooKeeper's tree digest.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn get(&self, path: &str) -> Option<&ZkNode> {
        self.nodes.get(path)
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&String, &ZkNode)> {
        self.nodes.iter()
    }

    /// One shared copy per distinct ACL list.
    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acls.get(&acl) {
            return a.clone();
        }
        let a = Arc::new(acl.clone());
        self.acls.insert(acl, a.clone());
        a
    }

    /// Inserts a node read from a snapshot (its parent must be present).
    pub fn insert_loaded(&mut self, path: String, node: ZkNode) -> Result<(), String> {
        if path != "/" && !self.nodes.contains_key(parent_of(&path)) {
            return Err(format!("node {path} has no parent in the snapshot"));
        }
        self.put(path, node);
        Ok(())
    }

    fn put(&mut self, path: String, node: ZkNode) {
        self.digest = self.digest.wrapping_add(node_digest(&path, &node));
        if let Some(s) = ephemeral_session(node.stat.ephemeral_owner) {
            self.ephemerals.entry(s).or_default().insert(path.clone());
        }
        if let Some(old) = self.nodes.insert(path.clone(), node) {
            self.digest = self.digest.wrapping_sub(node_digest(&path, &old));
        }
    }

    /// Applies `f` to an existing node, keeping the digest exact.
    fn change(&mut self, path: &str, f: impl FnOnce(&mut ZkNode)) -> bool {
        let Some(n) = self.nodes.get_mut(path) else {
            return false;
        };
        let before = node_digest(path, n);
        f(n);
        let after = node_digest(path, n);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        true
    }

    /// `DataTree.createNode`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<Arc<[u8]>>,
        acl: Arc<Vec<Acl>>,
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<(), Skip> {
        let parent = parent_of(path);
        let Some(p) = self.nodes.get(parent) else {
            return Err(Skip::NoNode);
        };
        if path == "/" || self.nodes.contains_key(path) {
            return Err(Skip::NodeExists);
        }
        let cv = if parent_cversion == -1 {
            p.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if cv > p.stat.cversion {
            self.change(parent, |p| {
                p.stat.cversion = cv;
                p.stat.pzxid = zxid;
            });
        }
        let node = ZkNode {
            data,
            acl,
            stat: StatPersisted::new(zxid, time, owner),
        };
        self.put(path.to_string(), node);
        Ok(())
    }

    /// `DataTree.setCversionPzxid`: after a create met an existing node.
    pub fn set_cversion_pzxid(&mut self, path: &str, cversion: i32, zxid: i64) {
        let Some(n) = self.nodes.get(path) else {
            return;
        };
        let cv = if cversion == -1 {
            n.stat.cversion.wrapping_add(1)
        } else {
            cversion
        };
        if cv > n.stat.cversion {
            self.change(path, |n| {
                n.stat.cversion = cv;
                n.stat.pzxid = zxid;
            });
        }
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves even when the node
    /// is already gone (a fuzzy snapshot may not hold it).
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), Skip> {
        if path == "/" {
            return Err(Skip::NoNode);
        }
        let parent = parent_of(path);
        let Some(p) = self.nodes.get(parent) else {
            return Err(Skip::NoNode);
        };
        if zxid > p.stat.pzxid {
            self.change(parent, |p| p.stat.pzxid = zxid);
        }
        let Some(node) = self.nodes.remove(path) else {
            return Err(Skip::NoNode);
        };
        self.digest = self.digest.wrapping_sub(node_digest(path, &node));
        if let Some(s) = ephemeral_session(node.stat.ephemeral_owner) {
            if let Some(set) = self.ephemerals.get_mut(&s) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&s);
                }
            }
        }
        Ok(())
    }

    /// `DataTree.setData`: the version is the txn's, not an increment.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Arc<[u8]>>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<(), Skip> {
        let done = self.change(path, |n| {
            n.data = data;
            n.stat.mtime = time;
            n.stat.mzxid = zxid;
            n.stat.version = version;
        });
        if done {
            Ok(())
        } else {
            Err(Skip::NoNode)
        }
    }

    /// `DataTree.setACL`.
    pub fn set_acl(&mut self, path: &str, acl: Arc<Vec<Acl>>, version: i32) -> Result<(), Skip> {
        if self.change(path, |n| {
            n.acl = acl;
            n.stat.aversion = version;
        }) {
            Ok(())
        } else {
            Err(Skip::NoNode)
        }
    }

    /// `DataTree.killSession`: deletes the paths the closeSession txn
    /// names (3.6+) and every ephemeral still owned by the session.
    pub fn kill_session(&mut self, session: i64, zxid: i64, in_txn: Option<&[String]>) {
        let local = self.ephemerals.remove(&session).unwrap_or_default();
        if let Some(paths) = in_txn {
            for p in paths {
                let _ = self.delete_node(p, zxid);
            }
        }
        for p in local {
            let _ = self.delete_node(&p, zxid);
        }
    }

    /// Sessions that own ephemerals but are not live: ZooKeeper's
    /// `loadData` kills them after a restart.
    pub fn dead_sessions(&self) -> Vec<i64> {
        self.ephemerals
            .keys()
            .filter(|s| !self.sessions.contains_key(s))
            .copied()
            .collect()
    }

    /// The ZooKeeper tree a Paddock state holds (the inverse of
    /// `into_state`): how a follower that wrote its followed state as a
    /// Paddock snapshot starts again from it.
    pub fn from_state(state: &State) -> Result<ZkTree, String> {
        let mut t = ZkTree::new();
        // Paths in order: a parent sorts before its children.
        for (path, n) in state.tree.iter() {
            let mut node = ZkNode::from_paddock(n);
            node.acl = t.intern_acl(n.acl.as_ref().clone());
            t.insert_loaded(path.to_string(), node)?;
        }
        for (id, meta) in state.sessions.iter() {
            t.sessions
                .insert(id.0, meta.timeout_ms.min(i32::MAX as u32) as i32);
        }
        t.last_zxid = state.last_zxid.0 as i64;
        Ok(t)
    }

    /// Paddock's state holding exactly this tree and these sessions.
    pub fn into_state(self) -> Result<State, String> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (path, n) in self.nodes {
            let null_data = n.data.is_none();
            let s = n.stat;
            nodes.push((
                path,
                Znode {
                    czxid: s.czxid,
                    mzxid: s.mzxid,
                    pzxid: s.pzxid,
                    ctime: s.ctime,
                    mtime: s.mtime,
                    version: s.version,
                    cversion: s.cversion,
                    aversion: s.aversion,
                    ephemeral_owner: s.ephemeral_owner,
                    data: n.data.unwrap_or_else(|| Arc::from(&[][..])),
                    acl: n.acl,
                    children: Default::default(),
                    null_data,
                },
            ));
        }
        let mut tree = DataTree::from_nodes(nodes)?;
        // ZooKeeper's /zookeeper/config holds its ensemble's member list
        // (each member stamps it at start). It is not Paddock's: each
        // Paddock server fills the node from its own zoo.cfg at start, and a
        // list left here would be taken as this server's membership.
        // (A standalone ZooKeeper leaves the node as created: kept as is.)
        if tree
            .get(crate::tree::CONFIG_NODE)
            .is_some_and(|n| !n.data.is_empty() || n.mzxid != 0)
        {
            tree.set_config_node(Arc::from(&[][..]));
        }
        // ZooKeeper recomputes its quota figures when it loads a database:
        // those in a (fuzzy) snapshot need not match the replayed txns.
        tree.quota_recount_all();
        let sessions = self
            .sessions
            .iter()
            .map(|(id, t)| {
                (
                    SessionId(*id),
                    SessionMeta {
                        timeout_ms: (*t).max(0) as u32,
                    },
                )
            })
            .collect();
        Ok(State {
            tree,
            sessions,
            last_zxid: Zxid(self.last_zxid as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Arc<Vec<Acl>> {
        Arc::new(Acl::open_unsafe())
    }

    fn tree() -> ZkTree {
        let mut t = ZkTree::new();
        let root = ZkNode {
            data: None,
            acl: open(),
            stat: StatPersisted::default(),
        };
        t.insert_loaded("/".into(), root).unwrap();
        t
    }

    #[test]
    fn replay_over_a_fuzzy_snapshot_is_idempotent_as_in_zookeeper() {
        let mut t = tree();
        t.create_node("/a", Some(Arc::from(&b"x"[..])), open(), 0, 1, 5, 100)
            .unwrap();
        // The snapshot already held /a: replaying its create changes nothing.
        let before = t.digest();
        assert_eq!(
            t.create_node("/a", None, open(), 0, 1, 5, 100),
            Err(Skip::NodeExists)
        );
        assert_eq!(t.digest(), before);
        // A create with an older parentCVersion leaves the parent alone.
        t.create_node("/b", None, open(), 0, 1, 6, 100).unwrap();
        assert_eq!(t.get("/").unwrap().stat.cversion, 1);
        assert_eq!(t.get("/").unwrap().stat.pzxid, 5);
        // A delete of a node the snapshot lacks still moves the pzxid.
        assert_eq!(t.delete_node("/gone", 9), Err(Skip::NoNode));
        assert_eq!(t.get("/").unwrap().stat.pzxid, 9);
        t.set_data("/a", None, 7, 10, 200).unwrap();
        let a = t.get("/a").unwrap();
        assert_eq!(
            (a.stat.version, a.stat.mzxid, a.data.clone()),
            (7, 10, None)
        );
    }

    #[test]
    fn digest_is_zookeepers_crc32_sum_and_tracks_changes() {
        let mut t = tree();
        t.create_node("/a", Some(Arc::from(&b"x"[..])), open(), 0, 1, 5, 100)
            .unwrap();
        t.create_node("/zookeeper", None, open(), 0, 2, 6, 100)
            .unwrap();
        t.create_node("/zookeeper/q", None, open(), 0, 1, 7, 100)
            .unwrap();
        let sum = t
            .nodes()
            .fold(0u64, |d, (p, n)| d.wrapping_add(node_digest(p, n)));
        assert_eq!(t.digest(), sum);
        assert_eq!(
            node_digest("/zookeeper/q", t.get("/zookeeper/q").unwrap()),
            0
        );
        t.delete_node("/a", 8).unwrap();
        let sum = t
            .nodes()
            .fold(0u64, |d, (p, n)| d.wrapping_add(node_digest(p, n)));
        assert_eq!(t.digest(), sum);
    }

    #[test]
    fn into_state_leaves_zookeepers_member_list_out() {
        // Each ZooKeeper member stamps its ensemble's list (with the
        // version as mzxid once a reconfig ran); it must not become the
        // importing server's membership.
        let mut t = tree();
        t.create_node("/zookeeper", None, open(), 0, 1, 5, 100)
            .unwrap();
        let list = b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000000";
        t.create_node(
            crate::tree::CONFIG_NODE,
            Some(Arc::from(&list[..])),
            open(),
            0,
            1,
            6,
            100,
        )
        .unwrap();
        t.set_data(
            crate::tree::CONFIG_NODE,
            Some(Arc::from(&list[..])),
            -1,
            0x1_0000_0000,
            100,
        )
        .unwrap();
        let s = t.into_state().unwrap();
        let c = s.tree.get(crate::tree::CONFIG_NODE).unwrap();
        assert!(c.data.is_empty(), "{:?}", c.data);
        assert_eq!(c.mzxid, 0);
    }

    #[test]
    fn kill_session_removes_its_ephemerals_and_into_state_keeps_stats() {
        let mut t = tree();
        t.create_node("/e", Some(Arc::from(&b""[..])), open(), 0x55, 1, 5, 100)
            .unwrap();
        t.sessions.insert(0x55, 4000);
        t.last_zxid = 5;
        let s = t.clone().into_state().unwrap();
        let e = s.tree.get("/e").unwrap();
        assert_eq!((e.ephemeral_owner, e.czxid, e.null_data), (0x55, 5, false));
        assert_eq!(s.sessions[&SessionId(0x55)].timeout_ms, 4000);
        assert!(s.tree.get("/").unwrap().null_data);
        let back = ZkTree::from_state(&s).unwrap();
        assert_eq!(
            (back.digest(), back.node_count()),
            (t.digest(), t.node_count())
        );
        assert_eq!(
            (back.sessions.clone(), back.last_zxid),
            (t.sessions.clone(), 5)
        );
        assert_eq!(back.get("/e"), t.get("/e"));
        assert_eq!(back.get("/").unwrap().data, None, "null data stays null");
        t.kill_session(0x55, 6, None);
        assert!(t.get("/e").is_none());
        assert_eq!(t.get("/").unwrap().stat.pzxid, 6);
    }
}
