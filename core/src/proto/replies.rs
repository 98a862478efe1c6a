//! Reply records of `zookeeper.jute` and their encoding: reply bodies,
//! multi results, the reply header and watch events. (Requests are in
//! `records`.)

use super::codes::{op, ErrorCode};
use super::jute::Writer;
use super::records::*;
use std::sync::Arc;

/// Reply bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Empty,
    Path(String),
    PathStat(String, Stat),
    Stat(Stat),
    Data(Vec<u8>, Stat),
    /// getData of a node whose data is null: a null (-1) buffer.
    DataNull(Stat),
    Acl(Vec<Acl>, Stat),
    /// Child names, shared with the tree that answered (a listing then
    /// copies no names).
    Children(Vec<Arc<str>>),
    Children2(Vec<Arc<str>>, Stat),
    Strings(Vec<String>),
    Number(i32),
    WhoAmI(Vec<(String, String)>),
    /// Multi / multiRead results, one per op.
    Multi(Vec<OpResult>),
    /// SetSASLResponse: the server's SASL token (null: none).
    Sasl(Option<Vec<u8>>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<Arc<str>>),
    GetData(Vec<u8>, Stat),
    /// A multiRead getData of a node whose data is null (a -1 buffer).
    GetDataNull(Stat),
    Error(ErrorCode),
}

impl Response {
    pub fn write(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Path(p) => {
                w.ustring(p);
            }
            Response::PathStat(p, s) => {
                w.ustring(p);
                s.write(w);
            }
            Response::Stat(s) => s.write(w),
            Response::Data(d, s) => {
                w.buffer(d);
                s.write(w);
            }
            Response::DataNull(s) => {
                w.buffer_opt(None);
                s.write(w);
            }
            Response::Acl(a, s) => {
                write_acls(w, a);
                s.write(w);
            }
            Response::Children(c) => {
                w.vec_ustring(c);
            }
            Response::Strings(c) => {
                w.vec_ustring(c);
            }
            Response::Children2(c, s) => {
                w.vec_ustring(c);
                s.write(w);
            }
            Response::Number(n) => {
                w.i32(*n);
            }
            Response::Sasl(token) => {
                w.buffer_opt(token.as_deref());
            }
            Response::WhoAmI(ids) => {
                w.i32(ids.len() as i32);
                for (scheme, user) in ids {
                    w.ustring(scheme).ustring(user);
                }
            }
            Response::Multi(results) => {
                for r in results {
                    match r {
                        OpResult::Create(p) => {
                            w.i32(op::CREATE).bool(false).i32(0).ustring(p);
                        }
                        OpResult::Create2(p, s) => {
                            w.i32(op::CREATE2).bool(false).i32(0).ustring(p);
                            s.write(w);
                        }
                        OpResult::Delete => {
                            w.i32(op::DELETE).bool(false).i32(0);
                        }
                        OpResult::SetData(s) => {
                            w.i32(op::SET_DATA).bool(false).i32(0);
                            s.write(w);
                        }
                        OpResult::Check => {
                            w.i32(op::CHECK).bool(false).i32(0);
                        }
                        OpResult::GetChildren(c) => {
                            w.i32(op::GET_CHILDREN).bool(false).i32(0).vec_ustring(c);
                        }
                        OpResult::GetData(d, s) => {
                            w.i32(op::GET_DATA).bool(false).i32(0).buffer(d);
                            s.write(w);
                        }
                        OpResult::GetDataNull(s) => {
                            w.i32(op::GET_DATA).bool(false).i32(0).buffer_opt(None);
                            s.write(w);
                        }
                        OpResult::Error(e) => {
                            w.i32(op::ERROR).bool(false).i32(e.code()).i32(e.code());
                        }
                    }
                }
                w.i32(-1).bool(true).i32(-1);
            }
        }
    }
}

/// A reply frame: header, and the body only when `err == 0`.
pub fn encode_reply(xid: i32, zxid: i64, err: ErrorCode, body: &Response) -> Vec<u8> {
    let mut w = Writer::with_capacity(64);
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .write(&mut w);
    if err == ErrorCode::Ok {
        body.write(&mut w);
    }
    w.into_vec()
}

/// A watch notification frame (xid -1).
pub fn encode_event(zxid: i64, event_type: i32, state: i32, path: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(32 + path.len());
    ReplyHeader {
        xid: super::codes::xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .write(&mut w);
    w.i32(event_type).i32(state).ustring(path);
    w.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Reader;
    use proptest::prelude::*;

    fn arb_path() -> impl Strategy<Value = String> {
        "(/[a-z0-9]{1,6}){1,4}"
    }

    fn arb_acl() -> impl Strategy<Value = Acl> {
        (0..32i32, "[a-z]{1,6}", "[a-z:]{1,10}").prop_map(|(perms, s, i)| Acl {
            perms,
            id: Id { scheme: s, id: i },
        })
    }

    fn arb_create() -> impl Strategy<Value = (i32, CreateRequest)> {
        (
            prop::sample::select(vec![
                op::CREATE,
                op::CREATE2,
                op::CREATE_CONTAINER,
                op::CREATE_TTL,
            ]),
            arb_path(),
            prop::collection::vec(any::<u8>(), 0..16),
            prop::collection::vec(arb_acl(), 0..3),
            0..7i32,
            any::<i64>(),
        )
            .prop_map(|(opcode, path, data, acl, flags, ttl)| {
                (
                    opcode,
                    CreateRequest {
                        path,
                        data,
                        acl,
                        flags,
                        ttl: (opcode == op::CREATE_TTL).then_some(ttl),
                    },
                )
            })
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            arb_create().prop_map(|(opcode, req)| Request::Create { opcode, req }),
            (arb_path(), any::<i32>())
                .prop_map(|(path, version)| Request::Delete { path, version }),
            (arb_path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
            (arb_path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
            (arb_path(), any::<bool>())
                .prop_map(|(path, watch)| Request::GetChildren2 { path, watch }),
            (
                arb_path(),
                prop::collection::vec(any::<u8>(), 0..16),
                any::<i32>()
            )
                .prop_map(|(path, data, version)| Request::SetData {
                    path,
                    data,
                    version
                }),
            (
                arb_path(),
                prop::collection::vec(arb_acl(), 0..3),
                any::<i32>()
            )
                .prop_map(|(path, acl, version)| Request::SetAcl {
                    path,
                    acl,
                    version
                }),
            (arb_path(), 0..2i32).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
            prop::collection::vec(arb_create(), 0..4).prop_map(|cs| Request::Multi(
                cs.into_iter()
                    .map(|(opcode, req)| MultiOp::Create { opcode, req })
                    .collect()
            )),
            (arb_path(), any::<i32>(), any::<bool>()).prop_map(|(path, version, null)| {
                Request::Multi(vec![if null {
                    MultiOp::SetDataNull { path, version }
                } else {
                    MultiOp::SetData {
                        path,
                        data: vec![7],
                        version,
                    }
                }])
            }),
            prop::collection::vec(arb_path(), 0..4).prop_map(|ps| Request::MultiRead(
                ps.into_iter()
                    .map(|path| MultiOp::GetData { path })
                    .collect()
            )),
            (
                any::<i64>(),
                prop::collection::vec(arb_path(), 0..3),
                prop::collection::vec(arb_path(), 0..3)
            )
                .prop_map(|(z, d, p)| Request::SetWatches(SetWatches {
                    relative_zxid: z,
                    data: d.clone(),
                    exist: vec![],
                    child: d,
                    persistent: p,
                    persistent_recursive: vec![],
                })),
            Just(Request::Ping),
            Just(Request::CloseSession),
            Just(Request::WhoAmI),
        ]
    }

    proptest! {
        #[test]
        fn request_round_trips(xid in any::<i32>(), req in arb_request()) {
            let frame = encode_request(xid, &req);
            let mut r = Reader::new(&frame);
            prop_assert_eq!(r.i32().unwrap(), xid);
            let opcode = r.i32().unwrap();
            let back = decode_request(opcode, &frame[8..]).unwrap();
            prop_assert_eq!(back, req);
        }

        #[test]
        fn truncated_requests_are_errors(req in arb_request(), cut in 1usize..8) {
            let frame = encode_request(1, &req);
            let body = &frame[8..];
            if body.len() >= cut {
                let opcode = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                prop_assert!(decode_request(opcode, &body[..body.len() - cut]).is_err());
            }
        }

        #[test]
        fn decoder_never_panics(opcode in -12i32..110, body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(opcode, &body);
        }
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        let mut c = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 5,
            timeout_ms: 30000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: None,
        };
        assert_eq!(ConnectRequest::decode(&c.encode()).unwrap(), c);
        c.read_only = Some(false);
        assert_eq!(ConnectRequest::decode(&c.encode()).unwrap(), c);
        let mut bytes = c.encode();
        bytes.push(0);
        assert!(ConnectRequest::decode(&bytes).is_err());
    }
}
