//! Replicated log entries and the deterministic function that applies them.
//!
//! A `Txn` carries the client's write request itself together with what the
//! checks need (session, auth ids, time), and `apply` performs ZooKeeper's
//! checks in ZooKeeper's order against the committed state. Every replica
//! applying the same txns in zxid order reaches the same state and the same
//! result, so the result is the reply: a failed write consumes a zxid, as
//! in ZooKeeper, and carries its error code.

use crate::ids::{SessionId, Zxid};
use crate::proto::{
    event_type, op, perms, Acl, CreateMode, CreateRequest, ErrorCode, Id, MultiOp, OpResult,
    Request, Response, Stat, CONTAINER_EPHEMERAL_OWNER, TTL_MASK, TTL_MAX_MS,
};
use crate::tree::{acl, kind_of, path, DataTree, NodeKind};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The cxid of txns no client asked for (expiry, reaping): no reply.
pub const INTERNAL_CXID: i32 = i32::MIN;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub zxid: Zxid,
    /// Wall-clock ms stamped by the proposer.
    pub time_ms: i64,
    pub session: SessionId,
    pub cxid: i32,
    pub kind: TxnKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnKind {
    CreateSession {
        timeout_ms: u32,
    },
    /// An explicit closeSession or an expiry decided by the leader.
    CloseSession,
    /// A client write (create/delete/setData/setACL/check/multi) or a
    /// reaper's deleteContainer (session 0). `auth` is the requester's ids.
    Write {
        request: Request,
        auth: Vec<Id>,
    },
    /// A client's reconfig as the leader decided it when proposing (its
    /// checks need the leader's view: the pending configuration, which
    /// learners are synced): the new configuration's text, whose version
    /// is this txn's zxid, or the error the client is answered. Applying
    /// it is the activation: `/zookeeper/config` takes the text.
    Reconfig {
        outcome: Result<String, ErrorCode>,
    },
}

/// What the reply path needs of an applied txn (no payload copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnHeader {
    pub zxid: Zxid,
    pub session: SessionId,
    pub cxid: i32,
    pub tag: TxnTag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnTag {
    CreateSession,
    CloseSession,
    Write,
}

impl Txn {
    pub fn header(&self) -> TxnHeader {
        TxnHeader {
            zxid: self.zxid,
            session: self.session,
            cxid: self.cxid,
            tag: match self.kind {
                TxnKind::CreateSession { .. } => TxnTag::CreateSession,
                TxnKind::CloseSession => TxnTag::CloseSession,
                TxnKind::Write { .. } | TxnKind::Reconfig { .. } => TxnTag::Write,
            },
        }
    }
}

/// Replicated state beyond the tree: the live sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub timeout_ms: u32,
}

/// Everything replicated: the tree and the session table.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub tree: DataTree,
    pub sessions: OrdMap<SessionId, SessionMeta>,
    pub last_zxid: Zxid,
}

/// A watch trigger produced by applying a txn: `event` fired at `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event: i32,
    /// The ACL a watcher needs READ on to be told (CVE-2024-23944, as
    /// ZooKeeper 3.8.4+/3.9.2+ and Debian's patched 3.8.0 check it): the
    /// node's own ACL for its created/deleted/data events, the parent's
    /// for NodeChildrenChanged, as they were when the event fired.
    pub acl: Arc<Vec<Acl>>,
}

/// What applying one txn did.
#[derive(Clone, Debug)]
pub struct Applied {
    pub err: ErrorCode,
    pub response: Response,
    pub triggers: Vec<Trigger>,
    /// A session that this txn created or closed.
    pub session_created: Option<SessionId>,
    pub session_closed: Option<SessionId>,
}

impl Applied {
    fn ok(response: Response) -> Applied {
        Applied {
            err: ErrorCode::Ok,
            response,
            triggers: Vec::new(),
            session_created: None,
            session_closed: None,
        }
    }
    fn err(err: ErrorCode) -> Applied {
        Applied {
            err,
            ..Applied::ok(Response::Empty)
        }
    }
}

/// Options that shape validation but are not part of the txn. Made from
/// the `Config` only (`from_config`), so recovery, the simulator and the
/// server validate exactly as the node that logged the txn did; there is
/// no `Default` (a zero `max_data_len` would refuse every payload).
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions {
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    pub max_data_len: usize,
    /// `enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// The optional authentication providers: their schemes are valid in
    /// ACLs.
    pub acl_providers: acl::Providers,
}

impl ApplyOptions {
    pub fn from_config(config: &crate::Config) -> ApplyOptions {
        ApplyOptions {
            extended_types_enabled: config.extended_types_enabled,
            skip_acl: config.skip_acl,
            max_data_len: config.max_buffer as usize,
            enforce_quota: config.enforce_quota,
            acl_providers: config.acl_providers,
        }
    }
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Applies `txn` (whose zxid must follow `last_zxid`).
    pub fn apply(&mut self, txn: &Txn, opts: &ApplyOptions) -> Applied {
        assert!(
            txn.zxid > self.last_zxid,
            "txn {} applied after {}",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        match &txn.kind {
            TxnKind::CreateSession { timeout_ms } => {
                self.sessions.insert(
                    txn.session,
                    SessionMeta {
                        timeout_ms: *timeout_ms,
                    },
                );
                Applied {
                    session_created: Some(txn.session),
                    ..Applied::ok(Response::Empty)
                }
            }
            TxnKind::CloseSession => {
                let mut out = Applied::ok(Response::Empty);
                let mut ephemerals = self.tree.ephemerals_of(txn.session.0);
                // Deepest first cannot matter (ephemerals have no
                // children), but a fixed order keeps triggers deterministic.
                ephemerals.sort();
                for p in ephemerals {
                    push_delete_triggers(&self.tree, &mut out.triggers, &p);
                    self.tree.delete(&p, txn.zxid.as_i64());
                }
                self.sessions.remove(&txn.session);
                out.session_closed = Some(txn.session);
                out
            }
            TxnKind::Reconfig { outcome } => {
                if txn.session.0 != 0 && !self.sessions.contains_key(&txn.session) {
                    return Applied::err(ErrorCode::SessionExpired);
                }
                match outcome {
                    Ok(text) => {
                        let data: Arc<[u8]> = Arc::from(text.as_bytes());
                        let stat =
                            self.tree
                                .set_config_by_reconfig(data, txn.zxid.as_i64(), txn.time_ms);
                        let node = crate::tree::CONFIG_NODE;
                        Applied {
                            triggers: vec![Trigger {
                                path: node.to_owned(),
                                event: event_type::NODE_DATA_CHANGED,
                                acl: acl_of(&self.tree, node),
                            }],
                            ..Applied::ok(Response::Data(text.as_bytes().to_vec(), stat))
                        }
                    }
                    Err(e) => Applied::err(*e),
                }
            }
            TxnKind::Write { request, auth } => {
                let ctx = Ctx {
                    zxid: txn.zxid.as_i64(),
                    time: txn.time_ms,
                    session: txn.session,
                    auth,
                    opts,
                };
                if txn.session.0 != 0 && !self.sessions.contains_key(&txn.session) {
                    return Applied::err(ErrorCode::SessionExpired);
                }
                match request {
                    // ZooKeeper's prep fails on a read inside a multi and
                    // answers MarshallingError for the whole request.
                    Request::Multi(ops)
                        if ops.iter().any(|o| {
                            matches!(o, MultiOp::GetChildren { .. } | MultiOp::GetData { .. })
                        }) =>
                    {
                        Applied::err(ErrorCode::MarshallingError)
                    }
                    Request::Multi(ops) => self.apply_multi(ops, &ctx),
                    other => {
                        let mut triggers = Vec::new();
                        match apply_one(&mut self.tree, &self.sessions, other, &ctx, &mut triggers)
                        {
                            Ok(r) => Applied {
                                triggers,
                                ..Applied::ok(r)
                            },
                            Err(e) => Applied::err(e),
                        }
                    }
                }
            }
        }
    }

    /// A multi is all or nothing: tried on an O(1) clone of the tree, kept
    /// only if every op succeeds. On failure the ops before the failing one
    /// report Ok, the failing one its error, the rest RuntimeInconsistency,
    /// and the reply header carries Ok (ZooKeeper's MultiResponse).
    fn apply_multi(&mut self, ops: &[MultiOp], ctx: &Ctx) -> Applied {
        let mut scratch = self.tree.clone();
        let mut triggers = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for (i, o) in ops.iter().enumerate() {
            // A TTL mode in a create whose record has no ttl field: when
            // ZooKeeper reaches it (no earlier op failed) it fails to build
            // the op and answers the whole request with MarshallingError.
            if ttl_mode_without_ttl(o) {
                return Applied::err(ErrorCode::MarshallingError);
            }
            let req = multi_op_request(o);
            match apply_one(&mut scratch, &self.sessions, &req, ctx, &mut triggers) {
                Ok(resp) => results.push(multi_result(o, resp)),
                Err(e) => {
                    let mut failed: Vec<OpResult> =
                        (0..i).map(|_| OpResult::Error(ErrorCode::Ok)).collect();
                    failed.push(OpResult::Error(e));
                    failed.extend(
                        (i + 1..ops.len())
                            .map(|_| OpResult::Error(ErrorCode::RuntimeInconsistency)),
                    );
                    return Applied::ok(Response::Multi(failed));
                }
            }
        }
        self.tree = scratch;
        Applied {
            triggers,
            ..Applied::ok(Response::Multi(results))
        }
    }
}

struct Ctx<'a> {
    zxid: i64,
    time: i64,
    session: SessionId,
    auth: &'a [Id],
    opts: &'a ApplyOptions,
}

impl Ctx<'_> {
    fn check(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.opts.skip_acl || acl::check(acl, perm, self.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }
}

fn ttl_mode_without_ttl(o: &MultiOp) -> bool {
    matches!(o, MultiOp::Create { opcode, req }
        if *opcode != op::CREATE_TTL
            && CreateMode::from_flag(req.flags & !crate::proto::NULL_DATA_FLAG).is_some_and(|m| m.ttl))
}

/// A create inside a multi, as ZooKeeper 3.8 runs it: the flags alone
/// choose the mode (a createContainer op with flags 0 makes a persistent
/// node; a create op with the container flag, a container), the ttl field
/// counts only for a TTL mode, and only container and TTL creates answer
/// with a Stat.
fn multi_create(req: &CreateRequest) -> Request {
    let mode = CreateMode::from_flag(req.flags & !crate::proto::NULL_DATA_FLAG);
    let opcode = match mode {
        Some(m) if m.ttl => op::CREATE_TTL,
        Some(m) if m.container => op::CREATE_CONTAINER,
        _ => op::CREATE,
    };
    let mut req = req.clone();
    if opcode != op::CREATE_TTL {
        req.ttl = None;
    }
    Request::Create { opcode, req }
}

fn multi_op_request(o: &MultiOp) -> Request {
    match o {
        MultiOp::Create { req, .. } => multi_create(req),
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
        MultiOp::SetDataNull { path, version } => Request::SetDataNull {
            path: path.clone(),
            version: *version,
        },
        MultiOp::Check { path, version } => Request::Check {
            path: path.clone(),
            version: *version,
        },
        MultiOp::GetChildren { path } | MultiOp::GetData { path } => {
            Request::Sync { path: path.clone() }
        }
    }
}

fn multi_result(o: &MultiOp, resp: Response) -> OpResult {
    match (o, resp) {
        // See `multi_create`: the shape follows the mode, not the opcode.
        (MultiOp::Create { .. }, Response::PathStat(p, s)) => OpResult::Create2(p, s),
        (MultiOp::Create { .. }, Response::Path(p)) => OpResult::Create(p),
        (MultiOp::Delete { .. }, _) => OpResult::Delete,
        (MultiOp::SetData { .. } | MultiOp::SetDataNull { .. }, Response::Stat(s)) => {
            OpResult::SetData(s)
        }
        (MultiOp::Check { .. }, _) => OpResult::Check,
        (_, r) => unreachable!("multi op {o:?} answered {r:?}"),
    }
}

fn validate(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// `getParentPathAndValidate`: a slash, no NUL, not a system node.
fn parent_for_delete(p: &str) -> Result<&str, ErrorCode> {
    if !p.contains('/')
        || p.contains('\0')
        || matches!(
            p,
            "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
        )
    {
        return Err(ErrorCode::BadArguments);
    }
    Ok(path::parent(p))
}

fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(())
    }
}

/// The triggers of deleting `p`, taken before the delete: the event
/// carries the ACLs of the node and its parent as they were.
fn push_delete_triggers(tree: &DataTree, triggers: &mut Vec<Trigger>, p: &str) {
    let parent = path::parent(p);
    triggers.push(Trigger {
        path: p.to_owned(),
        event: event_type::NODE_DELETED,
        acl: acl_of(tree, p),
    });
    triggers.push(Trigger {
        path: parent.to_owned(),
        event: event_type::NODE_CHILDREN_CHANGED,
        acl: acl_of(tree, parent),
    });
}

fn acl_of(tree: &DataTree, p: &str) -> Arc<Vec<Acl>> {
    tree.get(p)
        .map(|n| n.acl.clone())
        .unwrap_or_else(|| Arc::new(Vec::new()))
}

fn apply_one(
    tree: &mut DataTree,
    sessions: &OrdMap<SessionId, SessionMeta>,
    req: &Request,
    ctx: &Ctx,
    triggers: &mut Vec<Trigger>,
) -> Result<Response, ErrorCode> {
    match req {
        Request::Create { opcode, req } => {
            apply_create(tree, sessions, *opcode, req, ctx, triggers)
        }
        Request::Delete { path: p, version } => {
            let parent = parent_for_delete(p)?;
            let pnode = tree.get(parent).ok_or(ErrorCode::NoNode)?;
            ctx.check(&pnode.acl, perms::DELETE)?;
            let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
            check_version(node.version, *version)?;
            if !node.children.is_empty() {
                return Err(ErrorCode::NotEmpty);
            }
            push_delete_triggers(tree, triggers, p);
            tree.delete(p, ctx.zxid);
            Ok(Response::Empty)
        }
        Request::DeleteContainer { .. } if ctx.session.0 != 0 => {
            // ZooKeeper 3.8 reads a client's deleteContainer body as raw
            // path bytes, so the jute-encoded path (length prefix, NULs)
            // always fails its path check: only the reaper deletes.
            Err(ErrorCode::BadArguments)
        }
        // A reconfig reaches the log only as `TxnKind::Reconfig`; this is
        // one logged before reconfiguration was served.
        Request::Reconfig | Request::Reconfigure(_) => Err(ErrorCode::ReconfigDisabled),
        Request::DeleteContainer { path: p } => {
            let parent = parent_for_delete(p)?;
            let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
            if !node.children.is_empty() {
                return Err(ErrorCode::NotEmpty);
            }
            if !matches!(node.kind(), NodeKind::Container | NodeKind::Ttl(_)) {
                return Err(ErrorCode::BadVersion);
            }
            tree.get(parent).ok_or(ErrorCode::NoNode)?;
            push_delete_triggers(tree, triggers, p);
            tree.delete(p, ctx.zxid);
            Ok(Response::Empty)
        }
        Request::SetDataNull { path: p, version } => {
            let setdata = Request::SetData {
                path: p.clone(),
                data: Vec::new(),
                version: *version,
            };
            let r = apply_one(tree, sessions, &setdata, ctx, triggers)?;
            tree.mark_null_data(p, true);
            Ok(r)
        }
        Request::SetData {
            path: p,
            data,
            version,
        } => {
            validate(p)?;
            let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
            ctx.check(&node.acl, perms::WRITE)?;
            if ctx.opts.enforce_quota {
                let diff = data.len() as i64 - node.data.len() as i64;
                tree.quota_check(p, diff, 0)?;
            }
            check_version(node.version, *version)?;
            let stat = tree.set_data(p, Arc::from(data.as_slice()), ctx.zxid, ctx.time);
            tree.mark_null_data(p, false);
            triggers.push(Trigger {
                path: p.clone(),
                event: event_type::NODE_DATA_CHANGED,
                acl: acl_of(tree, p),
            });
            Ok(Response::Stat(stat))
        }
        Request::SetAcl {
            path: p,
            acl: acls,
            version,
        } => {
            validate(p)?;
            let fixed = acl::fixup(acls, ctx.auth, ctx.opts.acl_providers)?;
            let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
            ctx.check(&node.acl, perms::ADMIN)?;
            check_version(node.aversion, *version)?;
            Ok(Response::Stat({
                let shared = tree.intern_acl(fixed);
                tree.set_acl(p, shared)
            }))
        }
        Request::Check { path: p, version } => {
            validate(p)?;
            let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
            ctx.check(&node.acl, perms::READ)?;
            check_version(node.version, *version)?;
            Ok(Response::Empty)
        }
        other => unreachable!("not a write: {other:?}"),
    }
}

fn apply_create(
    tree: &mut DataTree,
    sessions: &OrdMap<SessionId, SessionMeta>,
    opcode: i32,
    req: &CreateRequest,
    ctx: &Ctx,
    triggers: &mut Vec<Trigger>,
) -> Result<Response, ErrorCode> {
    // validateCreateRequest
    // As ZooKeeper 3.8's PrepRequestProcessor: the flags are validated (and
    // choose ephemeral, sequential and the TTL check), but the opcode
    // chooses the kind of node: createContainer makes a container whatever
    // its flags, create/create2 with the container flag a persistent node.
    let mode = CreateMode::from_flag(req.flags & !crate::proto::NULL_DATA_FLAG)
        .ok_or(ErrorCode::BadArguments)?;
    if mode.ttl && !ctx.opts.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl = req.ttl.unwrap_or(-1);
    let ttl_ok = if mode.ttl {
        ttl > 0 && ttl <= TTL_MAX_MS
    } else {
        ttl < 0
    };
    if !ttl_ok {
        return Err(ErrorCode::BadArguments);
    }
    if mode.ephemeral && ctx.session.0 != 0 && !sessions.contains_key(&ctx.session) {
        return Err(ErrorCode::SessionExpired);
    }
    // validatePathForCreate
    let last_slash = path::last_slash(&req.path).ok_or(ErrorCode::BadArguments)?;
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = if last_slash == 0 {
        "/"
    } else {
        &req.path[..last_slash]
    };
    let fixed = acl::fixup(&req.acl, ctx.auth, ctx.opts.acl_providers)?;
    let parent = tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&parent.acl, perms::CREATE)?;
    let path = if mode.sequential {
        path::sequential(&req.path, parent.cversion)
    } else {
        req.path.clone()
    };
    validate(&path)?;
    if tree.contains(&path) {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(kind_of(parent.ephemeral_owner), NodeKind::Ephemeral(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    if ctx.opts.enforce_quota {
        tree.quota_check(&path, req.data.len() as i64, 1)?;
    }
    if req.data.len() > ctx.opts.max_data_len {
        return Err(ErrorCode::BadArguments);
    }
    if opcode == op::CREATE_TTL && !mode.ttl {
        // ZooKeeper 3.8 accepts this far, then fails to apply a TTL txn
        // with a negative ttl and exits; here it is refused.
        return Err(ErrorCode::BadArguments);
    }
    let owner = if opcode == op::CREATE_CONTAINER {
        CONTAINER_EPHEMERAL_OWNER
    } else if opcode == op::CREATE_TTL {
        TTL_MASK | ttl
    } else if mode.ephemeral {
        ctx.session.0
    } else {
        0
    };
    let acl = tree.intern_acl(fixed);
    let stat: Stat = tree.create(
        &path,
        Arc::from(req.data.as_slice()),
        acl,
        owner,
        ctx.zxid,
        ctx.time,
    );
    if req.flags & crate::proto::NULL_DATA_FLAG != 0 {
        tree.mark_null_data(&path, true);
    }
    triggers.push(Trigger {
        path: path.clone(),
        event: event_type::NODE_CREATED,
        acl: acl_of(tree, &path),
    });
    triggers.push(Trigger {
        path: parent_path.to_owned(),
        event: event_type::NODE_CHILDREN_CHANGED,
        acl: acl_of(tree, parent_path),
    });
    Ok(if opcode == op::CREATE {
        Response::Path(path)
    } else {
        Response::PathStat(path, stat)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ApplyOptions {
        ApplyOptions {
            extended_types_enabled: true,
            skip_acl: false,
            max_data_len: 1 << 20,
            enforce_quota: false,
            acl_providers: acl::Providers::default(),
        }
    }

    fn write(state: &State, session: i64, request: Request) -> Txn {
        Txn {
            zxid: Zxid(state.last_zxid.0 + 1),
            time_ms: 1000,
            session: SessionId(session),
            cxid: 1,
            kind: TxnKind::Write {
                request,
                auth: vec![],
            },
        }
    }

    fn create(path: &str, flags: i32) -> Request {
        Request::Create {
            opcode: op::CREATE,
            req: CreateRequest {
                path: path.into(),
                data: vec![],
                acl: Acl::open_unsafe(),
                flags,
                ttl: None,
            },
        }
    }

    fn session(state: &mut State, id: i64) {
        let t = Txn {
            zxid: Zxid(state.last_zxid.0 + 1),
            time_ms: 0,
            session: SessionId(id),
            cxid: 0,
            kind: TxnKind::CreateSession { timeout_ms: 4000 },
        };
        state.apply(&t, &opts());
    }

    #[test]
    fn sequential_names_use_parent_cversion() {
        let mut s = State::new();
        session(&mut s, 7);
        assert_eq!(
            s.apply(&write(&s, 7, create("/q", 0)), &opts()).err,
            ErrorCode::Ok
        );
        let r = s.apply(&write(&s, 7, create("/q/", 2)), &opts());
        assert_eq!(r.response, Response::Path("/q/0000000000".into()));
        let r = s.apply(&write(&s, 7, create("/q/n-", 2)), &opts());
        assert_eq!(r.response, Response::Path("/q/n-0000000001".into()));
    }

    #[test]
    fn error_order_matches_zookeeper() {
        let mut s = State::new();
        session(&mut s, 7);
        assert_eq!(
            s.apply(&write(&s, 7, create("/a/b", 0)), &opts()).err,
            ErrorCode::NoNode
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/e", 1)), &opts()).err,
            ErrorCode::Ok
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/e", 0)), &opts()).err,
            ErrorCode::NodeExists
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/e/c", 0)), &opts()).err,
            ErrorCode::NoChildrenForEphemerals
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/bad/", 0)), &opts()).err,
            ErrorCode::NoNode
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/x/", 0)), &opts()).err,
            ErrorCode::NoNode
        );
        assert_eq!(
            s.apply(&write(&s, 7, create("/", 0)), &opts()).err,
            ErrorCode::NodeExists
        );
        assert_eq!(
            s.apply(&write(&s, 99, create("/z", 0)), &opts()).err,
            ErrorCode::SessionExpired
        );
    }

    #[test]
    fn close_session_removes_ephemerals() {
        let mut s = State::new();
        session(&mut s, 7);
        s.apply(&write(&s, 7, create("/e1", 1)), &opts());
        s.apply(&write(&s, 7, create("/e2", 3)), &opts());
        assert_eq!(s.tree.ephemerals_of(7).len(), 2);
        let t = Txn {
            zxid: Zxid(s.last_zxid.0 + 1),
            time_ms: 0,
            session: SessionId(7),
            cxid: 0,
            kind: TxnKind::CloseSession,
        };
        let r = s.apply(&t, &opts());
        assert_eq!(r.triggers.len(), 4);
        assert!(s.tree.get("/e1").is_none());
        assert!(s.sessions.is_empty());
        s.tree.check_invariants().unwrap();
    }

    #[test]
    fn failed_multi_changes_nothing() {
        let mut s = State::new();
        session(&mut s, 7);
        let before = s.tree.digest();
        let ops = vec![
            MultiOp::Create {
                opcode: op::CREATE,
                req: CreateRequest {
                    path: "/m".into(),
                    data: vec![],
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: None,
                },
            },
            MultiOp::Delete {
                path: "/missing".into(),
                version: -1,
            },
            MultiOp::Check {
                path: "/m".into(),
                version: 0,
            },
        ];
        let r = s.apply(&write(&s, 7, Request::Multi(ops)), &opts());
        assert_eq!(r.err, ErrorCode::Ok);
        assert_eq!(
            r.response,
            Response::Multi(vec![
                OpResult::Error(ErrorCode::Ok),
                OpResult::Error(ErrorCode::NoNode),
                OpResult::Error(ErrorCode::RuntimeInconsistency)
            ])
        );
        assert_eq!(s.tree.digest(), before);
        assert!(r.triggers.is_empty());
    }
}
