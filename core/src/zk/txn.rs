//! Apache ZooKeeper's txn records (`zookeeper.jute`, module txn) and how
//! its restart applies them: `FileTxnSnapLog.processTransaction` (the
//! session table) and `DataTree.processTxn` (the tree), over a fuzzy
//! snapshot, so every txn is applied idempotently and a failure of one
//! (the node already there, or already gone) is skipped as ZooKeeper
//! skips it.
//!
//! A logged entry is `TxnHeader` (long clientId, int cxid, long zxid,
//! long time, int type), the txn record of that type, and (3.6+) a
//! `TxnDigest` (int version, long treeDigest): ZooKeeper's tree digest
//! right after the txn.

use super::tree::{Skip, ZkTree};
use crate::proto::{op, read_acls, Acl, DecodeError, Reader, TTL_MASK};
use std::sync::Arc;

/// `TxnHeader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time: i64,
    pub kind: i32,
}

/// A txn record, by the header's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkTxn {
    /// create / create2 (`CreateTxn`; a V0 record has no parentCVersion,
    /// read as -1 like ZooKeeper does).
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral: bool,
        parent_cversion: i32,
    },
    CreateContainer {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
    },
    CreateTtl {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
        ttl: i64,
    },
    /// delete / deleteContainer.
    Delete {
        path: String,
    },
    /// setData / reconfig (which sets /zookeeper/config).
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    CreateSession {
        timeout_ms: i32,
    },
    /// The paths to delete (3.6+); `None` for an older empty record.
    CloseSession {
        paths: Option<Vec<String>>,
    },
    Error {
        err: i32,
    },
    /// (sub-txn type, record).
    Multi(Vec<(i32, ZkTxn)>),
}

/// One logged entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkEntry {
    pub hdr: TxnHeader,
    pub txn: ZkTxn,
    /// `TxnDigest` (version, tree digest after this txn).
    pub digest: Option<(i32, u64)>,
}

/// ZooKeeper's name of a txn type, for listings.
pub fn type_name(kind: i32) -> &'static str {
    match kind {
        op::CREATE => "create",
        op::CREATE2 => "create2",
        op::CREATE_CONTAINER => "createContainer",
        op::CREATE_TTL => "createTTL",
        op::DELETE => "delete",
        op::DELETE_CONTAINER => "deleteContainer",
        op::SET_DATA => "setData",
        op::SET_ACL => "setACL",
        op::CHECK => "check",
        op::MULTI => "multi",
        op::RECONFIG => "reconfig",
        op::CREATE_SESSION => "createSession",
        op::CLOSE_SESSION => "closeSession",
        op::ERROR => "error",
        _ => "unknown",
    }
}

impl ZkTxn {
    /// The path the txn acts on, if one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ZkTxn::Create { path, .. }
            | ZkTxn::CreateContainer { path, .. }
            | ZkTxn::CreateTtl { path, .. }
            | ZkTxn::Delete { path }
            | ZkTxn::SetData { path, .. }
            | ZkTxn::SetAcl { path, .. }
            | ZkTxn::Check { path, .. } => Some(path),
            _ => None,
        }
    }
}

fn data(r: &mut Reader) -> Result<Option<Vec<u8>>, DecodeError> {
    Ok(r.buffer_opt()?.map(|b| b.to_vec()))
}

fn decode_body(kind: i32, r: &mut Reader) -> Result<ZkTxn, String> {
    let e = |e: DecodeError| e.to_string();
    Ok(match kind {
        op::CREATE | op::CREATE2 => {
            let path = r.ustring().map_err(e)?;
            let data = data(r).map_err(e)?;
            let acl = read_acls(r).map_err(e)?;
            let ephemeral = r.bool().map_err(e)?;
            // CreateTxnV0 ends here.
            let parent_cversion = if r.remaining() >= 4 {
                r.i32().map_err(e)?
            } else {
                -1
            };
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => ZkTxn::CreateContainer {
            path: r.ustring().map_err(e)?,
            data: data(r).map_err(e)?,
            acl: read_acls(r).map_err(e)?,
            parent_cversion: r.i32().map_err(e)?,
        },
        op::CREATE_TTL => ZkTxn::CreateTtl {
            path: r.ustring().map_err(e)?,
            data: data(r).map_err(e)?,
            acl: read_acls(r).map_err(e)?,
            parent_cversion: r.i32().map_err(e)?,
            ttl: r.i64().map_err(e)?,
        },
        op::DELETE | op::DELETE_CONTAINER => ZkTxn::Delete {
            path: r.ustring().map_err(e)?,
        },
        op::SET_DATA | op::RECONFIG => ZkTxn::SetData {
            path: r.ustring().map_err(e)?,
            data: data(r).map_err(e)?,
            version: r.i32().map_err(e)?,
        },
        op::SET_ACL => ZkTxn::SetAcl {
            path: r.ustring().map_err(e)?,
            acl: read_acls(r).map_err(e)?,
            version: r.i32().map_err(e)?,
        },
        op::CHECK => ZkTxn::Check {
            path: r.ustring().map_err(e)?,
            version: r.i32().map_err(e)?,
        },
        op::CREATE_SESSION => ZkTxn::CreateSession {
            timeout_ms: r.i32().map_err(e)?,
        },
        op::CLOSE_SESSION => ZkTxn::CloseSession {
            paths: if r.remaining() >= 4 {
                Some(r.vec_ustring().map_err(e)?)
            } else {
                None
            },
        },
        op::ERROR => ZkTxn::Error {
            err: r.i32().map_err(e)?,
        },
        op::MULTI => {
            let n = r.vec_len().map_err(e)?;
            let mut subs = Vec::with_capacity(n);
            for _ in 0..n {
                let t = r.i32().map_err(e)?;
                let body = r.buffer().map_err(e)?;
                let mut sr = Reader::new(&body);
                let sub = match t {
                    op::CREATE
                    | op::CREATE2
                    | op::CREATE_TTL
                    | op::CREATE_CONTAINER
                    | op::DELETE
                    | op::DELETE_CONTAINER
                    | op::SET_DATA
                    | op::ERROR
                    | op::CHECK => decode_body(t, &mut sr)?,
                    _ => return Err(format!("multi holds a sub-txn of type {t}")),
                };
                subs.push((t, sub));
            }
            ZkTxn::Multi(subs)
        }
        _ => return Err(format!("unknown txn type {kind}")),
    })
}

/// Decodes one logged entry (`SerializeUtils.deserializeTxn`).
pub fn decode_entry(bytes: &[u8]) -> Result<ZkEntry, String> {
    let mut r = Reader::new(bytes);
    let e = |e: DecodeError| format!("txn header: {e}");
    let hdr = TxnHeader {
        client_id: r.i64().map_err(e)?,
        cxid: r.i32().map_err(e)?,
        zxid: r.i64().map_err(e)?,
        time: r.i64().map_err(e)?,
        kind: r.i32().map_err(e)?,
    };
    let txn = decode_body(hdr.kind, &mut r)
        .map_err(|why| format!("{} txn at zxid {:#x}: {why}", type_name(hdr.kind), hdr.zxid))?;
    let digest = if r.remaining() >= 12 {
        let v = r.i32().map_err(|e| e.to_string())?;
        Some((v, r.i64().map_err(|e| e.to_string())? as u64))
    } else {
        None
    };
    Ok(ZkEntry { hdr, txn, digest })
}

fn shared(d: Option<Vec<u8>>) -> Option<Arc<[u8]>> {
    d.map(Arc::from)
}

/// Applies one entry as ZooKeeper's restart does. Returns whether it
/// changed nothing because of a `Skip` (counted, never an error).
pub fn apply(tree: &mut ZkTree, e: &ZkEntry) -> bool {
    match &e.txn {
        ZkTxn::CreateSession { timeout_ms } => {
            tree.sessions.insert(e.hdr.client_id, *timeout_ms);
        }
        ZkTxn::CloseSession { .. } => {
            tree.sessions.remove(&e.hdr.client_id);
        }
        _ => {}
    }
    let skipped = apply_txn(tree, e.hdr, e.hdr.kind, &e.txn);
    if e.hdr.zxid > tree.last_zxid {
        tree.last_zxid = e.hdr.zxid;
    }
    skipped
}

fn apply_txn(tree: &mut ZkTree, h: TxnHeader, kind: i32, txn: &ZkTxn) -> bool {
    let r: Result<(), Skip> = match txn {
        ZkTxn::Create {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        } => {
            let acl = tree.intern_acl(acl.clone());
            let owner = if *ephemeral { h.client_id } else { 0 };
            let r = tree.create_node(
                path,
                shared(data.clone()),
                acl,
                owner,
                *parent_cversion,
                h.zxid,
                h.time,
            );
            // A node deleted by a closed session and re-created by
            // another after the parent was written to the snapshot:
            // ZooKeeper moves the parent's cversion and pzxid on.
            if kind == op::CREATE && r == Err(Skip::NodeExists) {
                let parent = match path.rfind('/') {
                    Some(0) | None => "/",
                    Some(i) => &path[..i],
                };
                tree.set_cversion_pzxid(parent, *parent_cversion, h.zxid);
            }
            r
        }
        ZkTxn::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => {
            let acl = tree.intern_acl(acl.clone());
            tree.create_node(
                path,
                shared(data.clone()),
                acl,
                crate::proto::CONTAINER_EPHEMERAL_OWNER,
                *parent_cversion,
                h.zxid,
                h.time,
            )
        }
        ZkTxn::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl,
        } => {
            let acl = tree.intern_acl(acl.clone());
            tree.create_node(
                path,
                shared(data.clone()),
                acl,
                TTL_MASK | ttl,
                *parent_cversion,
                h.zxid,
                h.time,
            )
        }
        ZkTxn::Delete { path } => tree.delete_node(path, h.zxid),
        ZkTxn::SetData {
            path,
            data,
            version,
        } => tree.set_data(path, shared(data.clone()), *version, h.zxid, h.time),
        ZkTxn::SetAcl { path, acl, version } => {
            let acl = tree.intern_acl(acl.clone());
            tree.set_acl(path, acl, *version)
        }
        ZkTxn::CloseSession { paths } => {
            tree.kill_session(h.client_id, h.zxid, paths.as_deref());
            Ok(())
        }
        ZkTxn::Check { .. } | ZkTxn::Error { .. } | ZkTxn::CreateSession { .. } => Ok(()),
        ZkTxn::Multi(subs) => {
            // A failed multi is logged with every op an error: no change.
            if subs.iter().any(|(t, _)| *t == op::ERROR) {
                return false;
            }
            let mut skipped = false;
            for (t, sub) in subs {
                let sh = TxnHeader { kind: *t, ..h };
                skipped |= apply_txn(tree, sh, *t, sub);
            }
            return skipped;
        }
    };
    r.is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{write_acls, Writer};
    use crate::zk::tree::{StatPersisted, ZkNode};

    fn entry(kind: i32, zxid: i64, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.i64(0x55).i32(1).i64(zxid).i64(1000).i32(kind);
        let mut b = w.into_vec();
        b.extend_from_slice(body);
        b
    }

    fn create_body(path: &str, ephemeral: bool, pcv: i32) -> Vec<u8> {
        let mut w = Writer::new();
        w.ustring(path).buffer(b"d");
        write_acls(&mut w, &Acl::open_unsafe());
        w.bool(ephemeral).i32(pcv);
        w.into_vec()
    }

    fn root() -> ZkTree {
        let mut t = ZkTree::new();
        t.insert_loaded(
            "/".into(),
            ZkNode {
                data: Some(Arc::from(&[][..])),
                acl: Arc::new(Acl::open_unsafe()),
                stat: StatPersisted::default(),
            },
        )
        .unwrap();
        t
    }

    #[test]
    fn create_multi_and_close_session_apply_as_zookeeper_does() {
        let mut t = root();
        let e = decode_entry(&entry(op::CREATE_SESSION, 1, &4000i32.to_be_bytes())).unwrap();
        apply(&mut t, &e);
        let mut body = create_body("/e", true, 1);
        let mut w = Writer::new();
        w.i32(2).i64(7); // TxnDigest
        body.extend(w.into_vec());
        let e = decode_entry(&entry(op::CREATE2, 2, &body)).unwrap();
        assert_eq!(e.digest, Some((2, 7)));
        apply(&mut t, &e);
        assert_eq!(t.get("/e").unwrap().stat.ephemeral_owner, 0x55);
        // multi: create /m and /m/c.
        let mut w = Writer::new();
        w.i32(2);
        for (p, pcv) in [("/m", 2), ("/m/c", 1)] {
            w.i32(op::CREATE).buffer(&create_body(p, false, pcv));
        }
        let e = decode_entry(&entry(op::MULTI, 3, &w.into_vec())).unwrap();
        apply(&mut t, &e);
        assert!(t.get("/m/c").is_some());
        assert_eq!(t.get("/").unwrap().stat.cversion, 2);
        // A failed multi changes nothing.
        let mut w = Writer::new();
        w.i32(2);
        w.i32(op::ERROR).buffer(&0i32.to_be_bytes());
        w.i32(op::ERROR).buffer(&(-110i32).to_be_bytes());
        let e = decode_entry(&entry(op::MULTI, 4, &w.into_vec())).unwrap();
        let before = t.digest();
        apply(&mut t, &e);
        assert_eq!(t.digest(), before);
        // closeSession deletes the ephemeral and ends the session.
        let mut w = Writer::new();
        w.vec_ustring(&["/e"]);
        let e = decode_entry(&entry(op::CLOSE_SESSION, 5, &w.into_vec())).unwrap();
        apply(&mut t, &e);
        assert!(t.get("/e").is_none());
        assert!(t.sessions.is_empty());
        assert_eq!(t.last_zxid, 5);
    }

    #[test]
    fn unknown_types_and_short_records_are_errors() {
        assert!(decode_entry(&entry(77, 1, &[])).is_err());
        assert!(decode_entry(&entry(op::DELETE, 1, &[0, 0])).is_err());
        assert!(decode_entry(&[1, 2, 3]).is_err());
    }
}
