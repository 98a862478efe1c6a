//! The data tree: znodes with ZooKeeper's exact `Stat` semantics.
//!
//! - create: the child gets czxid = mzxid = pzxid = zxid, versions 0; the
//!   parent's cversion becomes +1 and its pzxid the zxid.
//! - delete: the parent's pzxid becomes the zxid; its cversion is unchanged
//!   (ZooKeeper's DataTree.deleteNode).
//! - setData: version +1 (skipping -1 on wrap-around), mzxid, mtime.
//! - setACL: aversion +1.
//!
//! The tree is a persistent (structurally shared) map, so a snapshot is an
//! O(1) clone that another thread can serialise while this one goes on
//! applying, and a multi can be tried on a clone and dropped. Nodes are
//! found by a hash of their path (a fixed hash: every replica and build
//! lays the map out alike); each node's children are an ordered set, and
//! every walk of the whole tree that is seen outside (`iter`, the quota
//! nodes) is sorted by path, so what is written and shown is in path
//! order as before.
//!
//! Invariant: every node but "/" has its parent in the map, listed in the
//! parent's `children`; `digest` is the wrapping sum of `node_hash` over
//! all nodes; `data_size` the sum of path and data lengths.

pub mod acl;
pub mod path;
pub mod quota;

use crate::proto::{Acl, Stat, CONTAINER_EPHEMERAL_OWNER, TTL_MASK};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

pub type Name = Arc<str>;

/// The path -> node map: a hash array mapped trie keyed by a fixed hash of
/// the path. A lookup hashes the path once and compares one key; the
/// ordered B-tree it replaced compared whole path strings at every level
/// (paths share long prefixes), about a tenth of the simulator's time
/// under load, spent on every server for every txn.
type NodeMap = imbl::GenericHashMap<Name, Arc<Znode>, PathHash, imbl::shared_ptr::DefaultSharedPtr>;

/// A fixed, seedless hash for paths: xxh3 of the bytes (fixed by its spec,
/// so the map's layout is the same on every replica and in every run).
#[derive(Clone, Copy, Debug, Default)]
pub struct PathHash;

impl BuildHasher for PathHash {
    type Hasher = PathHasher;
    fn build_hasher(&self) -> PathHasher {
        PathHasher(0)
    }
}

/// See `PathHash`. `str` hashes as its bytes then a 0xff marker.
pub struct PathHasher(u64);

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    #[serde(with = "crate::codec::shared_bytes")]
    pub data: Arc<[u8]>,
    pub acl: Arc<Vec<Acl>>,
    #[serde(skip)]
    pub children: OrdSet<Name>,
    /// The data is null rather than empty (created or set with a null
    /// buffer); getData then answers a null buffer, as ZooKeeper does.
    #[serde(default)]
    pub null_data: bool,
}

/// What kind of node an `ephemeralOwner` value marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

pub fn kind_of(owner: i64) -> NodeKind {
    if owner == 0 {
        NodeKind::Persistent
    } else if owner == CONTAINER_EPHEMERAL_OWNER {
        NodeKind::Container
    } else if owner & TTL_MASK == TTL_MASK {
        NodeKind::Ttl(owner & !TTL_MASK)
    } else {
        NodeKind::Ephemeral(owner)
    }
}

impl Znode {
    fn new(zxid: i64, time: i64, owner: i64, data: Arc<[u8]>, acl: Arc<Vec<Acl>>) -> Znode {
        Znode {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            data,
            acl,
            children: OrdSet::new(),
            null_data: false,
        }
    }

    /// The stat clients see (ZooKeeper's DataNode.copyStat): `cversion`
    /// counts creates internally (sequential names use it) and is shown as
    /// creates plus deletes, `2 * cversion - numChildren`; the container
    /// and TTL markers are shown as ephemeralOwner 0.
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match self.kind() {
            NodeKind::Container | NodeKind::Ttl(_) => 0,
            _ => self.ephemeral_owner,
        };
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner,
            data_length: self.data.len() as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }

    pub fn kind(&self) -> NodeKind {
        kind_of(self.ephemeral_owner)
    }
}

/// The next version after `v`, skipping -1 (ZOOKEEPER-4743).
pub fn next_version(v: i32) -> i32 {
    match v.wrapping_add(1) {
        -1 => 0,
        n => n,
    }
}

/// A deterministic 64-bit hash of one node. xxh3 is fixed by its spec, so
/// every replica and every build computes the same digest.
fn node_hash(path: &str, n: &Znode) -> u64 {
    if path == CONFIG_NODE && (!n.data.is_empty() || n.version != 0 || n.mzxid != 0) {
        // The member list is each server's own (written locally, and
        // members may name each other by different addresses): it counts
        // in the digest as created, as ZooKeeper leaves /zookeeper out of
        // its digest. Snapshots of a fresh tree keep their digest.
        let mut created = n.clone();
        created.data = Arc::from(&[][..]);
        created.version = 0;
        created.mzxid = 0;
        created.mtime = 0;
        return node_hash(path, &created);
    }
    // One-shot xxh3 over a stack buffer when the bytes fit (nearly every
    // node): no allocation, and far cheaper than the streaming hasher on
    // this many small pieces. This runs several times per write on every
    // server.
    const STACK: usize = 512;
    let acl_len: usize = n
        .acl
        .iter()
        .map(|a| a.id.scheme.len() + a.id.id.len() + 6)
        .sum();
    let len = path.len() + 1 + n.data.len() + 6 * 8 + 4 * 4 + 1 + acl_len;
    let mut stack = [0u8; STACK];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= STACK {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    let mut put = |b: &[u8]| {
        buf[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    put(path.as_bytes());
    put(&[0]);
    put(&n.data);
    for v in [
        n.czxid,
        n.mzxid,
        n.pzxid,
        n.ctime,
        n.mtime,
        n.ephemeral_owner,
    ] {
        put(&v.to_le_bytes());
    }
    for v in [n.version, n.cversion, n.aversion, n.children.len() as i32] {
        put(&v.to_le_bytes());
    }
    put(&[n.null_data as u8]);
    for a in n.acl.iter() {
        put(&a.perms.to_le_bytes());
        put(a.id.scheme.as_bytes());
        put(&[0]);
        put(a.id.id.as_bytes());
        put(&[0]);
    }
    debug_assert_eq!(at, len);
    xxhash_rust::xxh3::xxh3_64(buf)
}

#[derive(Clone, Debug)]
pub struct DataTree {
    /// Values are shared: a trie node then holds small entries, and a
    /// copy-on-write of one (after a snapshot or in a multi) bumps counts
    /// instead of cloning every znode in it.
    nodes: NodeMap,
    /// session id -> its ephemeral paths.
    ephemerals: OrdMap<i64, OrdSet<Name>>,
    containers: OrdSet<Name>,
    ttls: OrdSet<Name>,
    digest: u64,
    data_size: u64,
    /// Shared ACL lists (ZooKeeper's ReferenceCountedACLCache, without the
    /// counts): most znodes carry one of a handful of lists.
    acls: OrdMap<Vec<Acl>, Arc<Vec<Acl>>>,
}

/// The system node holding the ensemble's member list.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// Distinct ACL lists kept shared; past this, new lists are not cached.
pub const ACL_CACHE_MAX: usize = 4096;

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: "/", "/zookeeper", "/zookeeper/quota" and
    /// "/zookeeper/config", as ZooKeeper starts.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: NodeMap::default(),
            ephemerals: OrdMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            digest: 0,
            data_size: 0,
            acls: OrdMap::new(),
        };
        let open = t.intern_acl(Acl::open_unsafe());
        let read_only = Arc::new(vec![Acl {
            perms: crate::proto::perms::READ,
            id: crate::proto::Id::new("world", "anyone"),
        }]);
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        t.insert_raw("/", Znode::new(0, 0, 0, empty.clone(), open.clone()));
        for (p, acl) in [
            ("/zookeeper", open.clone()),
            ("/zookeeper/quota", open),
            (CONFIG_NODE, read_only),
        ] {
            let mut node = Znode::new(0, 0, 0, empty.clone(), acl);
            if p == "/zookeeper/config" {
                // ZooKeeper sets this node's ACL with version -1 as it
                // starts, and a setACL stores the version it was given.
                node.aversion = -1;
            }
            t.insert_raw(p, node);
            t.link_child(p);
        }
        t
    }

    /// One shared `Arc` per distinct ACL list.
    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acls.get(&acl) {
            return a.clone();
        }
        let a = Arc::new(acl);
        if self.acls.len() < ACL_CACHE_MAX {
            self.acls.insert((*a).clone(), a.clone());
        }
        a
    }

    /// Inserts a node, counting it in the digest and size; returns the node
    /// it replaced (callers insert only new paths and check this).
    fn insert_raw(&mut self, path: &str, node: Znode) -> Option<Arc<Znode>> {
        self.insert_named(Arc::from(path), node)
    }

    /// `insert_raw` with the path already shared (the caller keeps a copy).
    fn insert_named(&mut self, path: Name, node: Znode) -> Option<Arc<Znode>> {
        self.digest = self.digest.wrapping_add(node_hash(&path, &node));
        self.data_size += (path.len() + node.data.len()) as u64;
        self.nodes.insert(path, Arc::new(node))
    }

    /// Adds `path` to its parent's children (no stat change).
    fn link_child(&mut self, path: &str) {
        let parent = path::parent(path);
        let name: Name = Arc::from(path::name(path));
        self.update(parent, |p| {
            p.children.insert(name);
        });
    }

    /// Applies `f` to the node at `path`, keeping the digest exact.
    /// Panics if the node is missing: callers check existence first.
    fn update(&mut self, path: &str, f: impl FnOnce(&mut Znode)) {
        let node = Arc::make_mut(
            self.nodes
                .get_mut(path)
                .unwrap_or_else(|| panic!("update of missing node {path}")),
        );
        let before = node_hash(path, node);
        let size_before = node.data.len() as u64;
        f(node);
        let after = node_hash(path, node);
        self.data_size = self.data_size - size_before + node.data.len() as u64;
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
    }

    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path).map(|n| &**n)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// Creates a node whose parent exists and is not ephemeral (callers
    /// check, in ZooKeeper's order). Returns the new node's stat.
    pub fn create(
        &mut self,
        path: &str,
        data: Arc<[u8]>,
        acl: Arc<Vec<Acl>>,
        owner: i64,
        zxid: i64,
        time: i64,
    ) -> Stat {
        let len = data.len();
        let node = Znode::new(zxid, time, owner, data, acl);
        let stat = node.stat();
        let key: Name = Arc::from(path);
        let old = self.insert_named(key.clone(), node);
        assert!(old.is_none(), "create of existing node {path}");
        let name: Name = Arc::from(path::name(path));
        self.update(path::parent(path), |p| {
            p.children.insert(name);
            p.cversion = p.cversion.wrapping_add(1);
            p.pzxid = zxid;
        });
        match kind_of(owner) {
            NodeKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(key);
            }
            NodeKind::Container => {
                self.containers.insert(key);
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(key);
            }
            NodeKind::Persistent => {}
        }
        self.quota_on_create(path, len);
        stat
    }

    /// Deletes a childless node.
    pub fn delete(&mut self, path: &str, zxid: i64) {
        let node = self
            .nodes
            .remove(path)
            .unwrap_or_else(|| panic!("delete of missing node {path}"));
        assert!(node.children.is_empty(), "delete of {path} with children");
        self.digest = self.digest.wrapping_sub(node_hash(path, &node));
        self.data_size -= (path.len() + node.data.len()) as u64;
        let name = path::name(path);
        self.update(path::parent(path), |p| {
            p.children.remove(name);
            if zxid > p.pzxid {
                p.pzxid = zxid;
            }
        });
        match node.kind() {
            NodeKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Persistent => {}
        }
        self.quota_on_delete(path, node.data.len());
    }

    pub fn set_data(&mut self, path: &str, data: Arc<[u8]>, zxid: i64, time: i64) -> Stat {
        let mut stat = Stat::default();
        let mut before = 0;
        let after = data.len();
        self.update(path, |n| {
            before = n.data.len();
            n.data = data;
            n.version = next_version(n.version);
            n.mzxid = zxid;
            n.mtime = time;
            stat = n.stat();
        });
        self.quota_on_set(path, before, after);
        stat
    }

    /// Fills `/zookeeper/config` with the member list, as each ZooKeeper
    /// server does locally at start (no txn): version -1 and mzxid 0 as
    /// ZooKeeper leaves them for a static configuration. mtime stays 0
    /// (ZooKeeper stamps its start time). The node counts in the digest as
    /// created (see `node_hash`), so members' digests agree whatever list
    /// each holds.
    pub fn set_config_node(&mut self, data: Arc<[u8]>) {
        self.update(CONFIG_NODE, |n| {
            n.data = data;
            n.version = -1;
            n.mzxid = 0;
            n.null_data = false;
        });
    }

    /// A committed reconfig's new member list: ZooKeeper applies it as a
    /// setData of version -1, so the stored version is -1, and stamps the
    /// txn's zxid and time.
    pub fn set_config_by_reconfig(&mut self, data: Arc<[u8]>, zxid: i64, time: i64) -> Stat {
        let mut stat = Stat::default();
        self.update(CONFIG_NODE, |n| {
            n.data = data;
            n.version = -1;
            n.mzxid = zxid;
            n.mtime = time;
            n.null_data = false;
            stat = n.stat();
        });
        stat
    }

    /// Marks the node's data as null (or not); see `Znode::null_data`.
    pub fn mark_null_data(&mut self, path: &str, null: bool) {
        if self.get(path).is_some_and(|n| n.null_data != null) {
            self.update(path, |n| n.null_data = null);
        }
    }

    pub fn set_acl(&mut self, path: &str, acl: Arc<Vec<Acl>>) -> Stat {
        let mut stat = Stat::default();
        self.update(path, |n| {
            n.acl = acl;
            n.aversion = next_version(n.aversion);
            stat = n.stat();
        });
        stat
    }

    /// Children names of a node, in name order.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.get(path)
            .map(|n| n.children.iter().map(|c| String::from(&**c)).collect())
    }

    /// Number of all descendants (`getAllChildrenNumber`).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.get(&p) {
                for c in n.children.iter() {
                    count += 1;
                    stack.push(path::join(&p, c));
                }
            }
        }
        count
    }

    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn ephemeral_sessions(&self) -> impl Iterator<Item = (i64, usize)> + '_ {
        self.ephemerals.iter().map(|(s, set)| (*s, set.len()))
    }

    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &Name> {
        self.containers.iter()
    }

    pub fn ttls(&self) -> impl Iterator<Item = &Name> {
        self.ttls.iter()
    }

    /// Whether any container or TTL node exists (the reaper has work to
    /// look at). Asked on every leader step: starting an iterator to find
    /// out cost more than the step's own work.
    pub fn has_reapable(&self) -> bool {
        !self.containers.is_empty() || !self.ttls.is_empty()
    }

    /// Every node in path order (for snapshots and exports; sorted here,
    /// as the map itself is in hash order).
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &Znode)> {
        let mut all: Vec<(&Name, &Znode)> = self.nodes.iter().map(|(p, n)| (p, &**n)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }

    /// Rebuilds a tree from nodes in any order (snapshot load). Children
    /// sets and the side indexes are derived from the paths.
    pub fn from_nodes(nodes: Vec<(String, Znode)>) -> Result<DataTree, String> {
        let mut t = DataTree {
            nodes: NodeMap::default(),
            ephemerals: OrdMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            digest: 0,
            data_size: 0,
            acls: OrdMap::new(),
        };
        for (p, mut n) in nodes {
            n.children = OrdSet::new();
            n.acl = t.intern_acl((*n.acl).clone());
            t.nodes.insert(Arc::from(p.as_str()), Arc::new(n));
        }
        if !t.nodes.contains_key("/") {
            return Err("snapshot has no root node".into());
        }
        // In path order, so a broken snapshot names the same node first
        // whatever the map's order.
        let mut paths: Vec<Name> = t.nodes.keys().cloned().collect();
        paths.sort_unstable();
        for p in &paths {
            if &**p == "/" {
                continue;
            }
            let parent = path::parent(p);
            let name: Name = Arc::from(path::name(p));
            match t.nodes.get_mut(parent) {
                Some(pn) => {
                    Arc::make_mut(pn).children.insert(name);
                }
                None => return Err(format!("snapshot node {p} has no parent")),
            }
        }
        let mut digest = 0u64;
        let mut size = 0u64;
        for (p, n) in t.nodes.iter() {
            digest = digest.wrapping_add(node_hash(p, n));
            size += (p.len() + n.data.len()) as u64;
            match n.kind() {
                NodeKind::Ephemeral(s) => {
                    t.ephemerals.entry(s).or_default().insert(p.clone());
                }
                NodeKind::Container => {
                    t.containers.insert(p.clone());
                }
                NodeKind::Ttl(_) => {
                    t.ttls.insert(p.clone());
                }
                NodeKind::Persistent => {}
            }
        }
        t.digest = digest;
        t.data_size = size;
        Ok(t)
    }

    /// Recomputes every derived figure and compares (debug/simulator check).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut digest = 0u64;
        for (p, n) in self.nodes.iter() {
            digest = digest.wrapping_add(node_hash(p, n));
            if &**p != "/" {
                let parent = self
                    .nodes
                    .get(path::parent(p))
                    .ok_or_else(|| format!("{p} has no parent"))?;
                if !parent.children.contains(path::name(p)) {
                    return Err(format!("{p} missing from its parent's children"));
                }
            }
            for c in n.children.iter() {
                if !self.nodes.contains_key(path::join(p, c).as_str()) {
                    return Err(format!("{p} lists missing child {c}"));
                }
            }
        }
        if digest != self.digest {
            return Err(format!("digest drift: {:x} != {:x}", digest, self.digest));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Arc<[u8]> {
        Arc::from(s.as_bytes())
    }

    /// The node hash is part of every snapshot file (its digest is checked
    /// on load), so it must stay the xxh3 of this exact byte layout.
    #[test]
    fn node_hash_is_xxh3_of_the_documented_layout() {
        let mut t = DataTree::new();
        let acl = t.intern_acl(vec![Acl {
            perms: 31,
            id: crate::proto::Id::new("digest", "u:p"),
        }]);
        t.create("/n", data("payload"), acl, 0x55, 7, 9);
        let n = t.get("/n").unwrap();
        let mut buf = b"/n\0payload".to_vec();
        for v in [7i64, 7, 7, 9, 9, 0x55] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        for v in [0i32, 0, 0, 0] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.push(0);
        buf.extend_from_slice(&31i32.to_le_bytes());
        buf.extend_from_slice(b"digest\0u:p\0");
        assert_eq!(node_hash("/n", n), xxhash_rust::xxh3::xxh3_64(&buf));
    }

    #[test]
    fn config_node_takes_the_member_list_and_keeps_digests_equal() {
        let mut a = DataTree::new();
        let mut b = DataTree::new();
        let text: Arc<[u8]> = Arc::from(&b"server.1=h:1:2:participant;0.0.0.0:3\nversion=0"[..]);
        a.set_config_node(text.clone());
        b.set_config_node(text.clone());
        let n = a.get(CONFIG_NODE).unwrap();
        assert_eq!(&*n.data, &*text);
        assert_eq!((n.version, n.mzxid), (-1, 0));
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest(), DataTree::new().digest());
        b.set_config_node(Arc::from(&b"server.1=other:1:2:participant\nversion=0"[..]));
        assert_eq!(a.digest(), b.digest(), "the list is each member's own");
    }

    #[test]
    fn fresh_tree_has_zookeeper_nodes() {
        let t = DataTree::new();
        assert_eq!(t.children("/").unwrap(), vec!["zookeeper"]);
        assert_eq!(t.children("/zookeeper").unwrap(), vec!["config", "quota"]);
        t.check_invariants().unwrap();
    }

    #[test]
    fn stat_semantics_of_create_set_delete() {
        let mut t = DataTree::new();
        let acl = Arc::new(Acl::open_unsafe());
        let s = t.create("/a", data("x"), acl.clone(), 0, 5, 100);
        assert_eq!(
            (s.czxid, s.mzxid, s.pzxid, s.version, s.data_length),
            (5, 5, 5, 0, 1)
        );
        t.create("/a/b", data(""), acl.clone(), 0, 6, 101);
        let a = t.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (1, 6, 1));
        let s = t.set_data("/a", data("yy"), 7, 102);
        assert_eq!((s.version, s.mzxid, s.mtime, s.data_length), (1, 7, 102, 2));
        t.delete("/a/b", 8);
        let a = t.get("/a").unwrap().stat();
        assert_eq!(
            (a.cversion, a.pzxid, a.num_children),
            (2, 8, 0),
            "a create and a delete"
        );
        assert_eq!(t.get("/a").unwrap().cversion, 1, "internally: creates only");
        t.check_invariants().unwrap();
    }

    #[test]
    fn digest_is_order_independent_and_exact() {
        let acl = Arc::new(Acl::open_unsafe());
        let mut a = DataTree::new();
        a.create("/x", data("1"), acl.clone(), 0, 1, 1);
        a.create("/y", data("2"), acl.clone(), 0, 2, 1);
        let rebuilt =
            DataTree::from_nodes(a.iter().map(|(p, n)| (p.to_string(), n.clone())).collect())
                .unwrap();
        assert_eq!(rebuilt.digest(), a.digest());
        let mut b = a.clone();
        b.set_data("/x", data("changed"), 3, 2);
        assert_ne!(b.digest(), a.digest());
        b.check_invariants().unwrap();
    }

    #[test]
    fn versions_skip_minus_one() {
        assert_eq!(next_version(i32::MAX), i32::MIN);
        assert_eq!(next_version(-2), 0);
    }
}
