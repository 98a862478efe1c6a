//! ZooKeeper's committed txns as Paddock `Txn`s, so that a server
//! following a ZooKeeper ensemble runs Paddock's own apply path: the same
//! `State::apply`, the same watch triggers, the same replies matched by
//! (session, cxid), and its own log — no second implementation of what
//! a write does to the tree.
//!
//! A ZooKeeper txn is the *result* of a request (a sequential name
//! already chosen, a setData's new version, the ACL already fixed up); a
//! Paddock txn carries a request that `State::apply` checks and performs.
//! The conversion writes the request that has exactly that result:
//! the resolved path with a non-sequential mode, version -1 (ZooKeeper
//! already checked the client's), the node kind as the opcode
//! (createContainer, createTTL), and the `super` id as the requester, so
//! no ACL check refuses what ZooKeeper allowed. Applied to the state
//! ZooKeeper applied it to, it makes the same change; the tests check
//! that against the ZooKeeper-faithful replay of `zk::txn::apply`, digest
//! and Stat for Stat.
//!
//! A txn that failed in ZooKeeper (an `ErrorTxn`, or a multi whose ops
//! are all errors) changes nothing but its zxid. It becomes a no-op (a
//! `check` of `/`, which every state passes and which fires nothing),
//! and [`Converted::failed`] carries ZooKeeper's answer, for the server
//! that owes the client a reply.
//!
//! Validation that is configuration in Paddock (extended types, quotas,
//! the data length bound) must not refuse what ZooKeeper committed:
//! [`followed_apply_options`] is what such txns are applied with.

use super::txn::{ZkEntry, ZkTxn};
use crate::ids::{SessionId, Zxid};
use crate::proto::{op, CreateRequest, Id, MultiOp, Request, NULL_DATA_FLAG};
use crate::txn::{ApplyOptions, Txn, TxnKind};

/// ZooKeeper create flags (`CreateMode`): persistent, ephemeral,
/// container, persistent with TTL.
const FLAG_PERSISTENT: i32 = 0;
const FLAG_EPHEMERAL: i32 = 1;
const FLAG_CONTAINER: i32 = 4;
const FLAG_TTL: i32 = 5;

/// What ZooKeeper answered to a txn that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An `ErrorTxn`: the request's error code.
    Error(i32),
    /// A failed multi: each op's code (0 for the ops before the failing
    /// one, the failing one's code, -2 RuntimeInconsistency after it).
    Multi(Vec<i32>),
}

/// One ZooKeeper txn as Paddock applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    pub txn: Txn,
    /// Set when ZooKeeper's txn was a failure: `txn` is then a no-op.
    pub failed: Option<Failure>,
}

/// The apply options for followed txns: ZooKeeper validated them, so
/// nothing that is configuration here may refuse them.
pub fn followed_apply_options() -> ApplyOptions {
    ApplyOptions {
        extended_types_enabled: true,
        skip_acl: true,
        max_data_len: usize::MAX,
        enforce_quota: false,
        acl_providers: crate::tree::acl::Providers {
            x509: true,
            sasl: true,
        },
    }
}

/// The requester of a converted txn: ZooKeeper's super user, whom no ACL
/// refuses (ZooKeeper already checked the real requester's).
fn decided_auth() -> Vec<Id> {
    vec![Id::new("super", "")]
}

/// Converts one committed ZooKeeper txn. The header's session, cxid, zxid
/// and time carry over, so a reply is matched as for a Paddock txn.
pub fn to_paddock(e: &ZkEntry) -> Result<Converted, String> {
    let h = e.hdr;
    let kind_and_failure = match &e.txn {
        ZkTxn::CreateSession { timeout_ms } => {
            if *timeout_ms < 0 {
                return Err(format!("createSession with timeout {timeout_ms}"));
            }
            (
                TxnKind::CreateSession {
                    timeout_ms: *timeout_ms as u32,
                },
                None,
            )
        }
        ZkTxn::CloseSession { .. } => (TxnKind::CloseSession, None),
        ZkTxn::Error { err } => (noop(), Some(Failure::Error(*err))),
        ZkTxn::Multi(subs) if subs.iter().any(|(t, _)| *t == op::ERROR) => {
            let codes = subs
                .iter()
                .map(|(_, s)| match s {
                    ZkTxn::Error { err } => *err,
                    _ => 0,
                })
                .collect();
            (noop(), Some(Failure::Multi(codes)))
        }
        ZkTxn::Multi(subs) => {
            let ops = subs
                .iter()
                .map(|(_, s)| multi_op(s))
                .collect::<Result<Vec<_>, _>>()?;
            (write(Request::Multi(ops)), None)
        }
        // A reconfig of the followed ensemble changes its member list in
        // /zookeeper/config: not the following server's, which keeps its
        // own until the takeover. Its zxid is taken, nothing changes.
        ZkTxn::SetData { .. } if h.kind == op::RECONFIG => (noop(), None),
        single => (write(single_request(single)?), None),
    };
    let (kind, failed) = kind_and_failure;
    Ok(Converted {
        txn: Txn {
            zxid: Zxid(h.zxid as u64),
            time_ms: h.time,
            session: SessionId(h.client_id),
            cxid: h.cxid,
            kind,
        },
        failed,
    })
}

fn write(request: Request) -> TxnKind {
    TxnKind::Write {
        request,
        auth: decided_auth(),
    }
}

/// A txn that changes nothing and fires nothing: `check /` at any version.
fn noop() -> TxnKind {
    write(Request::Check {
        path: "/".into(),
        version: -1,
    })
}

fn create(
    flags: i32,
    path: &str,
    data: &Option<Vec<u8>>,
    acl: &[crate::proto::Acl],
    ttl: Option<i64>,
) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: data.clone().unwrap_or_default(),
        acl: acl.to_vec(),
        flags: if data.is_none() {
            flags | NULL_DATA_FLAG
        } else {
            flags
        },
        ttl,
    }
}

fn single_request(t: &ZkTxn) -> Result<Request, String> {
    Ok(match t {
        ZkTxn::Create {
            path,
            data,
            acl,
            ephemeral,
            ..
        } => {
            let flags = if *ephemeral {
                FLAG_EPHEMERAL
            } else {
                FLAG_PERSISTENT
            };
            Request::Create {
                opcode: op::CREATE2,
                req: create(flags, path, data, acl, None),
            }
        }
        ZkTxn::CreateContainer {
            path, data, acl, ..
        } => Request::Create {
            opcode: op::CREATE_CONTAINER,
            req: create(FLAG_CONTAINER, path, data, acl, None),
        },
        ZkTxn::CreateTtl {
            path,
            data,
            acl,
            ttl,
            ..
        } => Request::Create {
            opcode: op::CREATE_TTL,
            req: create(FLAG_TTL, path, data, acl, Some(*ttl)),
        },
        ZkTxn::Delete { path } => Request::Delete {
            path: path.clone(),
            version: -1,
        },
        ZkTxn::SetData {
            path, data: None, ..
        } => Request::SetDataNull {
            path: path.clone(),
            version: -1,
        },
        ZkTxn::SetData {
            path,
            data: Some(d),
            ..
        } => Request::SetData {
            path: path.clone(),
            data: d.clone(),
            version: -1,
        },
        ZkTxn::SetAcl { path, acl, .. } => Request::SetAcl {
            path: path.clone(),
            acl: acl.clone(),
            version: -1,
        },
        ZkTxn::Check { path, .. } => Request::Check {
            path: path.clone(),
            version: -1,
        },
        other => return Err(format!("{other:?} is not a single write")),
    })
}

fn multi_op(t: &ZkTxn) -> Result<MultiOp, String> {
    Ok(match single_request(t)? {
        Request::Create { opcode, req } => MultiOp::Create { opcode, req },
        Request::Delete { path, version } => MultiOp::Delete { path, version },
        Request::SetData {
            path,
            data,
            version,
        } => MultiOp::SetData {
            path,
            data,
            version,
        },
        Request::SetDataNull { path, version } => MultiOp::SetDataNull { path, version },
        Request::Check { path, version } => MultiOp::Check { path, version },
        other => return Err(format!("{other:?} inside a multi")),
    })
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
