//! An independent model of ZooKeeper's data tree, written from the
//! protocol's rules rather than from core's tree: it is fed the committed
//! history in zxid order and says what each write should have answered and
//! what each read should see at a given zxid.
//!
//! Not modelled: ACL checks (the workload uses OPEN_ACL_UNSAFE only),
//! containers and TTL nodes (the workload creates none), quotas.
//! `cversion` follows ZooKeeper's copyStat: the parent counts creates
//! internally (sequential suffixes use that count) and shows
//! `2 * creates - numChildren` (creates plus deletes).

use paddock_core::proto::{
    create_mode, op, CreateRequest, ErrorCode, MultiOp, OpResult, Request, Response, Stat,
};
use paddock_core::txn::{Txn, TxnKind};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MNode {
    pub data: Vec<u8>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Children ever created here.
    pub creates: i32,
    pub aversion: i32,
    pub owner: i64,
    pub children: BTreeSet<String>,
}

impl MNode {
    pub fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: 2 * self.creates - n,
            aversion: self.aversion,
            ephemeral_owner: self.owner,
            data_length: self.data.len() as i32,
            num_children: n,
            pzxid: self.pzxid,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Model {
    pub nodes: BTreeMap<String, MNode>,
    pub sessions: BTreeMap<i64, u32>,
    pub last_zxid: i64,
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "/",
    }
}

fn name(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

type Answer = Result<Response, ErrorCode>;

impl Model {
    /// ZooKeeper's initial tree: "/", "/zookeeper", its quota and config.
    pub fn new() -> Model {
        let blank = MNode {
            data: Vec::new(),
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            creates: 0,
            aversion: 0,
            owner: 0,
            children: BTreeSet::new(),
        };
        let mut nodes = BTreeMap::new();
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            nodes.insert(p.to_owned(), blank.clone());
        }
        // ZooKeeper starts /zookeeper/config with aversion -1.
        nodes.get_mut("/zookeeper/config").expect("config").aversion = -1;
        for p in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let n = name(p).to_owned();
            nodes.get_mut(parent(p)).expect("parent").children.insert(n);
        }
        Model {
            nodes,
            sessions: BTreeMap::new(),
            last_zxid: 0,
        }
    }

    /// Applies one committed txn; returns the answer its writer is owed
    /// (`None` for session and no-op txns).
    pub fn apply(&mut self, t: &Txn) -> Option<(ErrorCode, Response)> {
        let z = t.zxid.as_i64();
        assert!(
            z > self.last_zxid,
            "model fed zxid {z:#x} after {:#x}",
            self.last_zxid
        );
        self.last_zxid = z;
        match &t.kind {
            TxnKind::CreateSession { timeout_ms } => {
                self.sessions.insert(t.session.0, *timeout_ms);
                None
            }
            TxnKind::CloseSession => {
                let mine: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.owner == t.session.0)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in mine {
                    self.remove(&p, z);
                }
                self.sessions.remove(&t.session.0);
                Some((ErrorCode::Ok, Response::Empty))
            }
            TxnKind::Reconfig { outcome } => {
                if t.session.0 != 0 && !self.sessions.contains_key(&t.session.0) {
                    return Some((ErrorCode::SessionExpired, Response::Empty));
                }
                Some(match outcome {
                    // ZooKeeper stores the new member list as a setData of
                    // version -1 on /zookeeper/config and answers it.
                    Ok(text) => {
                        let n = self
                            .nodes
                            .get_mut("/zookeeper/config")
                            .expect("/zookeeper/config");
                        n.data = text.as_bytes().to_vec();
                        n.version = -1;
                        n.mzxid = z;
                        n.mtime = t.time_ms;
                        (ErrorCode::Ok, Response::Data(n.data.clone(), n.stat()))
                    }
                    Err(e) => (*e, Response::Empty),
                })
            }
            TxnKind::Write { request, .. } => {
                if t.session.0 != 0 && !self.sessions.contains_key(&t.session.0) {
                    return Some((ErrorCode::SessionExpired, Response::Empty));
                }
                let r = match request {
                    Request::Multi(ops) => Ok(self.multi(ops, t)),
                    other => self.one(other, t),
                };
                Some(match r {
                    Ok(resp) => (ErrorCode::Ok, resp),
                    Err(e) => (e, Response::Empty),
                })
            }
        }
    }

    fn remove(&mut self, p: &str, z: i64) {
        self.nodes.remove(p);
        let par = self
            .nodes
            .get_mut(parent(p))
            .expect("a node's parent exists");
        par.children.remove(name(p));
        par.pzxid = z;
    }

    fn one(&mut self, req: &Request, t: &Txn) -> Answer {
        let z = t.zxid.as_i64();
        match req {
            Request::Create { opcode, req } => self.create(*opcode, req, t),
            Request::Delete { path, version } => {
                if path == "/" || path.starts_with("/zookeeper") {
                    return Err(ErrorCode::BadArguments);
                }
                let n = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != n.version {
                    return Err(ErrorCode::BadVersion);
                }
                if !n.children.is_empty() {
                    return Err(ErrorCode::NotEmpty);
                }
                self.remove(path, z);
                Ok(Response::Empty)
            }
            Request::SetData {
                path,
                data,
                version,
            } => {
                let n = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != n.version {
                    return Err(ErrorCode::BadVersion);
                }
                n.data = data.clone();
                n.version += 1;
                n.mzxid = z;
                n.mtime = t.time_ms;
                Ok(Response::Stat(n.stat()))
            }
            Request::Check { path, version } => {
                let n = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != n.version {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(Response::Empty)
            }
            Request::SetAcl { path, version, .. } => {
                let n = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != n.aversion {
                    return Err(ErrorCode::BadVersion);
                }
                n.aversion += 1;
                Ok(Response::Stat(n.stat()))
            }
            other => panic!("the model does not know the write {other:?}"),
        }
    }

    fn create(&mut self, opcode: i32, c: &CreateRequest, t: &Txn) -> Answer {
        let z = t.zxid.as_i64();
        let mode = c.flags & 0xff;
        let par_path = parent(&c.path).to_owned();
        let par = self.nodes.get(&par_path).ok_or(ErrorCode::NoNode)?;
        let mut path = c.path.clone();
        if mode == create_mode::PERSISTENT_SEQUENTIAL || mode == create_mode::EPHEMERAL_SEQUENTIAL {
            path += &format!("{:010}", par.creates);
        }
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if par.owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let ephemeral = mode == create_mode::EPHEMERAL || mode == create_mode::EPHEMERAL_SEQUENTIAL;
        let node = MNode {
            data: c.data.clone(),
            czxid: z,
            mzxid: z,
            pzxid: z,
            ctime: t.time_ms,
            mtime: t.time_ms,
            version: 0,
            creates: 0,
            aversion: 0,
            owner: if ephemeral { t.session.0 } else { 0 },
            children: BTreeSet::new(),
        };
        let stat = node.stat();
        self.nodes.insert(path.clone(), node);
        let par = self.nodes.get_mut(&par_path).expect("checked above");
        par.children.insert(name(&path).to_owned());
        par.creates += 1;
        par.pzxid = z;
        Ok(if opcode == op::CREATE {
            Response::Path(path)
        } else {
            Response::PathStat(path, stat)
        })
    }

    /// All or nothing; on failure: Ok before, the error, then
    /// RuntimeInconsistency (header Ok, as ZooKeeper's MultiResponse).
    fn multi(&mut self, ops: &[MultiOp], t: &Txn) -> Response {
        if ops
            .iter()
            .any(|o| matches!(o, MultiOp::GetChildren { .. } | MultiOp::GetData { .. }))
        {
            return Response::Multi(vec![OpResult::Error(ErrorCode::MarshallingError)]);
        }
        // Undo journal: (path, its node before the multi touched it).
        // An op that fails changes nothing, and a multi changes only the
        // nodes its ops name and their parents (plus what a create made),
        // so restoring those in reverse undoes it without copying the tree.
        let mut undo: Vec<(String, Option<MNode>)> = Vec::new();
        let mut results = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            let named = match o {
                MultiOp::Create { req, .. } => &req.path,
                MultiOp::Delete { path, .. }
                | MultiOp::SetData { path, .. }
                | MultiOp::SetDataNull { path, .. }
                | MultiOp::Check { path, .. } => path,
                MultiOp::GetChildren { .. } | MultiOp::GetData { .. } => unreachable!(),
            };
            for p in [named.as_str(), parent(named)] {
                undo.push((p.to_owned(), self.nodes.get(p).cloned()));
            }
            let req = match o {
                MultiOp::Create { opcode, req } => Request::Create {
                    opcode: *opcode,
                    req: req.clone(),
                },
                MultiOp::Delete { path, version } => Request::Delete {
                    path: path.clone(),
                    version: *version,
                },
                MultiOp::SetData {
                    path,
                    data,
                    version,
                } => Request::SetData {
                    path: path.clone(),
                    data: data.clone(),
                    version: *version,
                },
                // The model does not tell null data from empty data.
                MultiOp::SetDataNull { path, version } => Request::SetData {
                    path: path.clone(),
                    data: Vec::new(),
                    version: *version,
                },
                MultiOp::Check { path, version } => Request::Check {
                    path: path.clone(),
                    version: *version,
                },
                MultiOp::GetChildren { .. } | MultiOp::GetData { .. } => unreachable!(),
            };
            let answer = self.one(&req, t);
            if let Ok(Response::Path(p) | Response::PathStat(p, _)) = &answer {
                undo.push((p.clone(), None));
            }
            match answer {
                Ok(resp) => results.push(match (o, resp) {
                    // create2 inside a multi answers the path only.
                    (MultiOp::Create { opcode, .. }, Response::PathStat(p, _))
                        if *opcode == op::CREATE2 =>
                    {
                        OpResult::Create(p)
                    }
                    (MultiOp::Create { .. }, Response::PathStat(p, s)) => OpResult::Create2(p, s),
                    (MultiOp::Create { .. }, Response::Path(p)) => OpResult::Create(p),
                    (MultiOp::Delete { .. }, _) => OpResult::Delete,
                    (MultiOp::SetData { .. } | MultiOp::SetDataNull { .. }, Response::Stat(s)) => {
                        OpResult::SetData(s)
                    }
                    (MultiOp::Check { .. }, _) => OpResult::Check,
                    (o, r) => panic!("model: multi op {o:?} answered {r:?}"),
                }),
                Err(e) => {
                    for (p, before) in undo.into_iter().rev() {
                        match before {
                            Some(n) => self.nodes.insert(p, n),
                            None => self.nodes.remove(&p),
                        };
                    }
                    let mut failed: Vec<OpResult> =
                        (0..i).map(|_| OpResult::Error(ErrorCode::Ok)).collect();
                    failed.push(OpResult::Error(e));
                    failed.extend(
                        (i + 1..ops.len())
                            .map(|_| OpResult::Error(ErrorCode::RuntimeInconsistency)),
                    );
                    return Response::Multi(failed);
                }
            }
        }
        Response::Multi(results)
    }

    /// What a read should answer in this state: (err, body).
    pub fn read(&self, req: &Request) -> Option<(ErrorCode, Response)> {
        let node = |p: &str| self.nodes.get(p).ok_or(ErrorCode::NoNode);
        let kids = |n: &MNode| {
            n.children
                .iter()
                .map(|c| c.as_str().into())
                .collect::<Vec<_>>()
        };
        let r: Answer = match req {
            Request::Exists { path, .. } => node(path).map(|n| Response::Stat(n.stat())),
            Request::GetData { path, .. } => {
                node(path).map(|n| Response::Data(n.data.clone(), n.stat()))
            }
            Request::GetChildren { path, .. } => node(path).map(|n| Response::Children(kids(n))),
            Request::GetChildren2 { path, .. } => {
                node(path).map(|n| Response::Children2(kids(n), n.stat()))
            }
            _ => return None,
        };
        Some(match r {
            Ok(b) => (ErrorCode::Ok, b),
            Err(e) => (e, Response::Empty),
        })
    }

    /// Differences between this model and a server's tree (empty: equal).
    pub fn diff_tree(&self, tree: &paddock_core::tree::DataTree) -> Vec<String> {
        let mut out = Vec::new();
        let theirs: BTreeMap<String, Stat> = tree
            .iter()
            .map(|(p, n)| (p.to_string(), n.stat()))
            .collect();
        for (p, n) in &self.nodes {
            // Until a reconfig writes it, the member list is each server's
            // own (filled locally from its zoo.cfg, as ZooKeeper does).
            if p == "/zookeeper/config" && n.mzxid == 0 {
                continue;
            }
            match (theirs.get(p), tree.get(p)) {
                (Some(s), Some(zn)) => {
                    if *s != n.stat() {
                        out.push(format!("{p}: server stat {s:?}, model {:?}", n.stat()));
                    }
                    if *zn.data != n.data[..] {
                        out.push(format!("{p}: data differs"));
                    }
                }
                _ => out.push(format!("{p}: in the model, missing on the server")),
            }
        }
        for p in theirs.keys() {
            if !self.nodes.contains_key(p) {
                out.push(format!("{p}: on the server, not in the model"));
            }
        }
        out
    }
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}
