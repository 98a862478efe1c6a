//! Client records of `zookeeper.jute` and their encoding.
//!
//! A request frame (length prefix stripped) is `RequestHeader` + body; a
//! reply is `ReplyHeader` + body, the body present only when `err == 0`.

use super::codes::op;
use super::jute::{DecodeError, Reader, Writer};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    pub fn write(&self, w: &mut Writer) {
        w.i64(self.czxid)
            .i64(self.mzxid)
            .i64(self.ctime)
            .i64(self.mtime)
            .i32(self.version)
            .i32(self.cversion)
            .i32(self.aversion)
            .i64(self.ephemeral_owner)
            .i32(self.data_length)
            .i32(self.num_children)
            .i64(self.pzxid);
    }
    pub fn read(r: &mut Reader) -> Result<Stat, DecodeError> {
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }
}

/// An identity: `scheme:id` (world:anyone, digest:user:hash, ip:addr, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    pub fn write(&self, w: &mut Writer) {
        w.i32(self.perms)
            .ustring(&self.id.scheme)
            .ustring(&self.id.id);
    }
    pub fn read(r: &mut Reader) -> Result<Acl, DecodeError> {
        Ok(Acl {
            perms: r.i32()?,
            id: Id {
                scheme: r.ustring()?,
                id: r.ustring()?,
            },
        })
    }
    /// `world:anyone` with all permissions (`Ids.OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: super::codes::perms::ALL,
            id: Id::new("world", "anyone"),
        }]
    }
}

pub fn write_acls(w: &mut Writer, acls: &[Acl]) {
    w.i32(acls.len() as i32);
    for a in acls {
        a.write(w);
    }
}

pub fn read_acls(r: &mut Reader) -> Result<Vec<Acl>, DecodeError> {
    let n = r.vec_len()?;
    let mut v = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        v.push(Acl::read(r)?);
    }
    Ok(v)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client omitted the trailing flag (old clients).
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn decode(frame: &[u8]) -> Result<ConnectRequest, DecodeError> {
        let mut r = Reader::new(frame);
        let req = ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        };
        r.finish()?;
        Ok(req)
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.into_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// Written only when the request carried the flag.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(40);
        w.i32(self.protocol_version)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.into_vec()
    }
    pub fn decode(frame: &[u8]) -> Result<ConnectResponse, DecodeError> {
        let mut r = Reader::new(frame);
        let resp = ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        };
        r.finish()?;
        Ok(resp)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHeader {
    pub fn write(&self, w: &mut Writer) {
        w.i32(self.xid).i64(self.zxid).i32(self.err);
    }
    pub fn read(r: &mut Reader) -> Result<ReplyHeader, DecodeError> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: r.i32()?,
        })
    }
}

/// A create of any kind; `ttl` is present only for createTTL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub path: String,
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub persistent_recursive: Vec<String>,
}

/// One operation inside a multi or multiRead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiOp {
    /// `opcode` is create, create2, createContainer or createTTL.
    Create {
        opcode: i32,
        req: CreateRequest,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        #[serde(with = "crate::codec::bytes")]
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    GetChildren {
        path: String,
    },
    GetData {
        path: String,
    },
    /// setData with a null buffer: the node's data becomes null. Last, so
    /// logs written before it existed decode unchanged.
    SetDataNull {
        path: String,
        version: i32,
    },
}

impl MultiOp {
    pub fn opcode(&self) -> i32 {
        match self {
            MultiOp::Create { opcode, .. } => *opcode,
            MultiOp::Delete { .. } => op::DELETE,
            MultiOp::SetData { .. } | MultiOp::SetDataNull { .. } => op::SET_DATA,
            MultiOp::Check { .. } => op::CHECK,
            MultiOp::GetChildren { .. } => op::GET_CHILDREN,
            MultiOp::GetData { .. } => op::GET_DATA,
        }
    }
}

/// ZooKeeper's ReconfigRequest: incremental (`joining_servers` /
/// `leaving_servers`, comma-separated) or the whole `new_members` list;
/// `cur_config_id` -1 or the configuration version it expects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigRequest {
    pub joining_servers: Option<String>,
    pub leaving_servers: Option<String>,
    pub new_members: Option<String>,
    pub cur_config_id: i64,
}

/// A decoded client request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// `opcode` is create (1), create2 (15), createContainer (19) or createTTL (21).
    Create {
        opcode: i32,
        req: CreateRequest,
    },
    Delete {
        path: String,
        version: i32,
    },
    DeleteContainer {
        path: String,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        #[serde(with = "crate::codec::bytes")]
        data: Vec<u8>,
        version: i32,
    },
    /// setData with a null buffer: the node's data becomes null.
    SetDataNull {
        path: String,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    /// A reconfig logged before the request's body was read (it applies
    /// as ReconfigDisabled); kept so that such logs still decode.
    Reconfig,
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    SetWatches(SetWatches),
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    Auth {
        auth_type: i32,
        scheme: String,
        #[serde(with = "crate::codec::bytes")]
        auth: Vec<u8>,
    },
    /// GetSASLRequest: the client's next SASL token.
    Sasl {
        #[serde(with = "crate::codec::bytes")]
        token: Vec<u8>,
    },
    CloseSession,
    /// The reconfig request (op 16). Last, so that the variants before it
    /// keep their encoding in logs.
    Reconfigure(ReconfigRequest),
}

impl Request {
    /// Whether this request changes replicated state (goes through the log).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Delete { .. }
                | Request::DeleteContainer { .. }
                | Request::SetData { .. }
                | Request::SetDataNull { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_)
                | Request::Reconfig
                | Request::Reconfigure(_)
                | Request::CloseSession
        )
    }
}

/// Marks, inside `CreateRequest::flags`, a create whose data buffer was
/// null (-1) on the wire: ZooKeeper keeps null data null, and getData then
/// answers a null buffer. Real create modes use the low bits only.
pub const NULL_DATA_FLAG: i32 = 1 << 24;

fn read_create(r: &mut Reader, opcode: i32) -> Result<CreateRequest, DecodeError> {
    let path = r.ustring()?;
    let raw = r.buffer_opt()?;
    let null = raw.is_none();
    let data = raw.map(|b| b.to_vec()).unwrap_or_default();
    let acl = read_acls(r)?;
    let mut flags = r.i32()?;
    if null && (0..=6).contains(&flags) {
        flags |= NULL_DATA_FLAG;
    }
    let ttl = if opcode == op::CREATE_TTL {
        Some(r.i64()?)
    } else {
        None
    };
    Ok(CreateRequest {
        path,
        data,
        acl,
        flags,
        ttl,
    })
}

pub fn write_create(w: &mut Writer, req: &CreateRequest) {
    w.ustring(&req.path);
    if req.flags & NULL_DATA_FLAG != 0 {
        w.buffer_opt(None);
    } else {
        w.buffer(&req.data);
    }
    write_acls(w, &req.acl);
    w.i32(req.flags & !NULL_DATA_FLAG);
    if let Some(ttl) = req.ttl {
        w.i64(ttl);
    }
}

fn read_path_watch(r: &mut Reader) -> Result<(String, bool), DecodeError> {
    Ok((r.ustring()?, r.bool()?))
}

fn read_multi(r: &mut Reader, read_only: bool) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let t = r.i32()?;
        let done = r.bool()?;
        let _err = r.i32()?;
        if done {
            break;
        }
        // Like ZooKeeper's MultiOperationRecord, any op type decodes here;
        // a read in a multi or a write in a multiRead is refused later with
        // MarshallingError, as ZooKeeper does.
        let _ = read_only;
        let o = match t {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => MultiOp::Create {
                opcode: t,
                req: read_create(r, t)?,
            },
            op::DELETE => MultiOp::Delete {
                path: r.ustring()?,
                version: r.i32()?,
            },
            op::SET_DATA => {
                let path = r.ustring()?;
                match r.buffer_opt()? {
                    Some(data) => MultiOp::SetData {
                        path,
                        data: data.to_vec(),
                        version: r.i32()?,
                    },
                    None => MultiOp::SetDataNull {
                        path,
                        version: r.i32()?,
                    },
                }
            }
            op::CHECK => MultiOp::Check {
                path: r.ustring()?,
                version: r.i32()?,
            },
            // GetChildrenRequest / GetDataRequest: a path and a watch flag.
            op::GET_CHILDREN => {
                let path = r.ustring()?;
                r.bool()?;
                MultiOp::GetChildren { path }
            }
            op::GET_DATA => {
                let path = r.ustring()?;
                r.bool()?;
                MultiOp::GetData { path }
            }
            _ => return Err(DecodeError::BadMulti("unknown operation type")),
        };
        ops.push(o);
        if ops.len() > 1_000_000 {
            return Err(DecodeError::BadMulti("too many operations"));
        }
    }
    Ok(ops)
}

pub fn write_multi(w: &mut Writer, ops: &[MultiOp]) {
    for o in ops {
        w.i32(o.opcode()).bool(false).i32(-1);
        match o {
            MultiOp::Create { req, .. } => write_create(w, req),
            MultiOp::Delete { path, version } | MultiOp::Check { path, version } => {
                w.ustring(path).i32(*version);
            }
            MultiOp::SetData {
                path,
                data,
                version,
            } => {
                w.ustring(path).buffer(data).i32(*version);
            }
            MultiOp::SetDataNull { path, version } => {
                w.ustring(path).buffer_opt(None).i32(*version);
            }
            MultiOp::GetChildren { path } | MultiOp::GetData { path } => {
                w.ustring(path).bool(false);
            }
        }
    }
    w.i32(-1).bool(true).i32(-1);
}

/// Decodes a request body for `opcode`. Refuses short and trailing data.
pub fn decode_request(opcode: i32, body: &[u8]) -> Result<Request, DecodeError> {
    let mut r = Reader::new(body);
    let req = match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => Request::Create {
            opcode,
            req: read_create(&mut r, opcode)?,
        },
        op::DELETE => Request::Delete {
            path: r.ustring()?,
            version: r.i32()?,
        },
        op::DELETE_CONTAINER => Request::DeleteContainer { path: r.ustring()? },
        op::EXISTS => {
            let (path, watch) = read_path_watch(&mut r)?;
            Request::Exists { path, watch }
        }
        op::GET_DATA => {
            let (path, watch) = read_path_watch(&mut r)?;
            Request::GetData { path, watch }
        }
        op::SET_DATA => {
            let path = r.ustring()?;
            match r.buffer_opt()? {
                Some(data) => Request::SetData {
                    path,
                    data: data.to_vec(),
                    version: r.i32()?,
                },
                None => Request::SetDataNull {
                    path,
                    version: r.i32()?,
                },
            }
        }
        op::GET_ACL => Request::GetAcl { path: r.ustring()? },
        op::SET_ACL => Request::SetAcl {
            path: r.ustring()?,
            acl: read_acls(&mut r)?,
            version: r.i32()?,
        },
        op::GET_CHILDREN => {
            let (path, watch) = read_path_watch(&mut r)?;
            Request::GetChildren { path, watch }
        }
        op::GET_CHILDREN2 => {
            let (path, watch) = read_path_watch(&mut r)?;
            Request::GetChildren2 { path, watch }
        }
        op::SYNC => Request::Sync { path: r.ustring()? },
        op::PING => Request::Ping,
        op::CHECK => Request::Check {
            path: r.ustring()?,
            version: r.i32()?,
        },
        op::MULTI => Request::Multi(read_multi(&mut r, false)?),
        op::MULTI_READ => Request::MultiRead(read_multi(&mut r, true)?),
        op::RECONFIG => Request::Reconfigure(ReconfigRequest {
            joining_servers: r.ustring_opt()?,
            leaving_servers: r.ustring_opt()?,
            new_members: r.ustring_opt()?,
            cur_config_id: r.i64()?,
        }),
        op::CHECK_WATCHES => Request::CheckWatches {
            path: r.ustring()?,
            watcher_type: r.i32()?,
        },
        op::REMOVE_WATCHES => Request::RemoveWatches {
            path: r.ustring()?,
            watcher_type: r.i32()?,
        },
        op::GET_EPHEMERALS => Request::GetEphemerals {
            prefix: r.ustring()?,
        },
        op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber { path: r.ustring()? },
        op::SET_WATCHES | op::SET_WATCHES2 => {
            let relative_zxid = r.i64()?;
            let data = r.vec_ustring()?;
            let exist = r.vec_ustring()?;
            let child = r.vec_ustring()?;
            let (persistent, persistent_recursive) = if opcode == op::SET_WATCHES2 {
                (r.vec_ustring()?, r.vec_ustring()?)
            } else {
                (Vec::new(), Vec::new())
            };
            Request::SetWatches(SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            })
        }
        op::ADD_WATCH => Request::AddWatch {
            path: r.ustring()?,
            mode: r.i32()?,
        },
        op::WHO_AM_I => Request::WhoAmI,
        op::AUTH => Request::Auth {
            auth_type: r.i32()?,
            scheme: r.ustring()?,
            auth: r.buffer()?,
        },
        op::SASL => {
            // GetSASLRequest { buffer token }; ZooKeeper ignores bytes after it.
            let token = r.buffer_opt()?.map(<[u8]>::to_vec).unwrap_or_default();
            return Ok(Request::Sasl { token });
        }
        op::CLOSE_SESSION => Request::CloseSession,
        other => return Err(DecodeError::UnknownOpcode(other)),
    };
    r.finish()?;
    Ok(req)
}

/// Encodes a request (header + body): used by tests and the simulator's
/// clients, so both directions of the codec are exercised.
pub fn encode_request(xid: i32, req: &Request) -> Vec<u8> {
    let mut w = Writer::with_capacity(64);
    let opcode = match req {
        Request::Create { opcode, .. } => *opcode,
        Request::Delete { .. } => op::DELETE,
        Request::DeleteContainer { .. } => op::DELETE_CONTAINER,
        Request::Exists { .. } => op::EXISTS,
        Request::GetData { .. } => op::GET_DATA,
        Request::SetData { .. } | Request::SetDataNull { .. } => op::SET_DATA,
        Request::GetAcl { .. } => op::GET_ACL,
        Request::SetAcl { .. } => op::SET_ACL,
        Request::GetChildren { .. } => op::GET_CHILDREN,
        Request::GetChildren2 { .. } => op::GET_CHILDREN2,
        Request::Sync { .. } => op::SYNC,
        Request::Ping => op::PING,
        Request::Check { .. } => op::CHECK,
        Request::Multi(_) => op::MULTI,
        Request::MultiRead(_) => op::MULTI_READ,
        Request::Reconfig | Request::Reconfigure(_) => op::RECONFIG,
        Request::CheckWatches { .. } => op::CHECK_WATCHES,
        Request::RemoveWatches { .. } => op::REMOVE_WATCHES,
        Request::GetEphemerals { .. } => op::GET_EPHEMERALS,
        Request::GetAllChildrenNumber { .. } => op::GET_ALL_CHILDREN_NUMBER,
        Request::SetWatches(sw) => {
            if sw.persistent.is_empty() && sw.persistent_recursive.is_empty() {
                op::SET_WATCHES
            } else {
                op::SET_WATCHES2
            }
        }
        Request::AddWatch { .. } => op::ADD_WATCH,
        Request::WhoAmI => op::WHO_AM_I,
        Request::Auth { .. } => op::AUTH,
        Request::Sasl { .. } => op::SASL,
        Request::CloseSession => op::CLOSE_SESSION,
    };
    w.i32(xid).i32(opcode);
    match req {
        Request::Create { req, .. } => write_create(&mut w, req),
        Request::Delete { path, version } | Request::Check { path, version } => {
            w.ustring(path).i32(*version);
        }
        Request::DeleteContainer { path }
        | Request::GetAcl { path }
        | Request::Sync { path }
        | Request::GetAllChildrenNumber { path } => {
            w.ustring(path);
        }
        Request::GetEphemerals { prefix } => {
            w.ustring(prefix);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch }
        | Request::GetChildren2 { path, watch } => {
            w.ustring(path).bool(*watch);
        }
        Request::SetData {
            path,
            data,
            version,
        } => {
            w.ustring(path).buffer(data).i32(*version);
        }
        Request::SetAcl { path, acl, version } => {
            w.ustring(path);
            write_acls(&mut w, acl);
            w.i32(*version);
        }
        Request::SetDataNull { path, version } => {
            w.ustring(path).buffer_opt(None).i32(*version);
        }
        Request::Multi(ops) | Request::MultiRead(ops) => write_multi(&mut w, ops),
        Request::CheckWatches { path, watcher_type }
        | Request::RemoveWatches { path, watcher_type } => {
            w.ustring(path).i32(*watcher_type);
        }
        Request::SetWatches(sw) => {
            w.i64(sw.relative_zxid)
                .vec_ustring(&sw.data)
                .vec_ustring(&sw.exist)
                .vec_ustring(&sw.child);
            if opcode == op::SET_WATCHES2 {
                w.vec_ustring(&sw.persistent)
                    .vec_ustring(&sw.persistent_recursive);
            }
        }
        Request::AddWatch { path, mode } => {
            w.ustring(path).i32(*mode);
        }
        Request::Auth {
            auth_type,
            scheme,
            auth,
        } => {
            w.i32(*auth_type).ustring(scheme).buffer(auth);
        }
        Request::Ping | Request::Reconfig | Request::WhoAmI | Request::CloseSession => {}
        Request::Reconfigure(rc) => {
            for s in [&rc.joining_servers, &rc.leaving_servers, &rc.new_members] {
                match s {
                    Some(s) => w.ustring(s),
                    None => w.i32(-1),
                };
            }
            w.i64(rc.cur_config_id);
        }
        Request::Sasl { token } => {
            w.buffer(token);
        }
    }
    w.into_vec()
}
