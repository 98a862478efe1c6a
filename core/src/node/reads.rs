//! Reads against the tree (with their ACL checks) and watch registration,
//! including setWatches replay.
//!
//! A `Reader` is what a read needs of the server: the applied tree, its
//! zxid and whether ACLs are skipped. The asking connection's ids,
//! session and the watch table are passed in by the client pipeline, so a
//! read changes nothing but the watches it sets.

use super::reply_frame;
use crate::config::Config;
use crate::ids::*;
use crate::log::Log;
use crate::proto::{
    self, event_type, keeper_state, perms, xid, Acl, ErrorCode, Id, MultiOp, OpResult, Request,
    Response,
};
use crate::tree::{acl, DataTree};
use crate::watch::{WatchKind, Watches};

/// The server's side of a read.
pub(super) struct Reader<'a> {
    pub(super) tree: &'a DataTree,
    /// The last applied zxid: every reply and event is stamped with it.
    pub(super) zxid: Zxid,
    pub(super) skip_acl: bool,
}

/// The asking connection's side of a read.
struct Asker<'a> {
    conn: ConnId,
    auth: &'a [Id],
    session: SessionId,
}

impl<'a> Reader<'a> {
    pub(super) fn of(log: &'a Log, config: &Config) -> Reader<'a> {
        Reader {
            tree: &log.state().tree,
            zxid: log.last_applied(),
            skip_acl: config.skip_acl,
        }
    }

    /// Answers one read of `conn`; events setWatches fires are pushed to
    /// `events`, to leave before the reply.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read(
        &self,
        conn: ConnId,
        auth: &[Id],
        session: SessionId,
        watches: &mut Watches,
        xid_v: i32,
        request: &Request,
        events: &mut Vec<Vec<u8>>,
    ) -> Vec<u8> {
        let zxid = self.zxid;
        let who = Asker {
            conn,
            auth,
            session,
        };
        match request {
            Request::Ping => reply_frame(xid::PING, zxid, ErrorCode::Ok, &Response::Empty),
            Request::SetWatches(sw) => {
                self.set_watches(conn, watches, sw, events);
                reply_frame(xid_v, zxid, ErrorCode::Ok, &Response::Empty)
            }
            other => match self.evaluate(&who, watches, other) {
                Ok(body) => reply_frame(xid_v, zxid, ErrorCode::Ok, &body),
                Err(e) => reply_frame(xid_v, zxid, e, &Response::Empty),
            },
        }
    }

    fn check(&self, who: &Asker, acl_list: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.skip_acl || acl::check(acl_list, perm, who.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn evaluate(
        &self,
        who: &Asker,
        watches: &mut Watches,
        request: &Request,
    ) -> Result<Response, ErrorCode> {
        let conn = who.conn;
        let tree = self.tree;
        // ZooKeeper's tree also files the root under "", so reads of the
        // empty path answer the root.
        let node = |p: &str| tree.get(if p.is_empty() { "/" } else { p });
        match request {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                // No ACL check, as in ZooKeeper up to 3.8.3 / 3.9.1 and the
                // Debian 3.8.0 this is tested against: exists answers (and
                // sets its watch) on nodes the client cannot read, and
                // clients rely on it (kazoo's ensure_path, Curator's
                // EnsurePath). ZooKeeper 3.8.4+ / 3.9.2+ check READ here
                // (ZOOKEEPER-2590).
                let stat = node(path).map(|n| n.stat());
                if *watch {
                    watches.add(conn, WatchKind::Data, path);
                }
                stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
            }
            Request::GetData { path, watch } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check(who, &n.acl, perms::READ)?;
                let resp = if n.null_data {
                    Response::DataNull(n.stat())
                } else {
                    Response::Data(n.data.to_vec(), n.stat())
                };
                if *watch {
                    watches.add(conn, WatchKind::Data, path);
                }
                Ok(resp)
            }
            Request::GetAcl { path } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check(who, &n.acl, perms::READ | perms::ADMIN)?;
                let mut list: Vec<Acl> = n.acl.to_vec();
                if !self.skip_acl && !acl::has_admin(&n.acl, who.auth) {
                    for a in list.iter_mut().filter(|a| a.id.scheme == "digest") {
                        let user = a.id.id.split(':').next().unwrap_or("").to_owned();
                        a.id.id = format!("{user}:x");
                    }
                }
                Ok(Response::Acl(list, n.stat()))
            }
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check(who, &n.acl, perms::READ)?;
                let children: Vec<std::sync::Arc<str>> = n.children.iter().cloned().collect();
                let stat = n.stat();
                if *watch {
                    watches.add(conn, WatchKind::Child, path);
                }
                Ok(if matches!(request, Request::GetChildren { .. }) {
                    Response::Children(children)
                } else {
                    Response::Children2(children, stat)
                })
            }
            Request::GetAllChildrenNumber { path } => {
                let n = node(path).ok_or(ErrorCode::NoNode)?;
                self.check(who, &n.acl, perms::READ)?;
                // ZooKeeper counts the keys of its node map that start with
                // path + "/": for the empty path (its alias of the root)
                // that is every node, the root included.
                let count = if path.is_empty() {
                    tree.descendant_count("/") + 1
                } else {
                    tree.descendant_count(path)
                };
                Ok(Response::Number(count as i32))
            }
            Request::GetEphemerals { prefix } => {
                let all = tree.ephemerals_of(who.session.0);
                let p = prefix.trim();
                Ok(Response::Strings(if p.is_empty() || p == "/" {
                    all
                } else {
                    all.into_iter()
                        .filter(|e| e.starts_with(prefix.as_str()))
                        .collect()
                }))
            }
            Request::Sync { path } => Ok(Response::Path(path.clone())),
            Request::AddWatch { path, mode } => {
                let kind = if *mode == proto::add_watch_mode::PERSISTENT_RECURSIVE {
                    WatchKind::PersistentRecursive
                } else {
                    WatchKind::Persistent
                };
                watches.add(conn, kind, path);
                Ok(Response::Number(0))
            }
            Request::CheckWatches { watcher_type, .. }
            | Request::RemoveWatches { watcher_type, .. }
                if !(1..=5).contains(watcher_type) =>
            {
                // WatcherType.fromInt throws; ZooKeeper answers that as
                // MarshallingError and keeps the connection.
                Err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches { path, .. } if !path.is_empty() && !path.contains('/') => {
                // ZooKeeper 3.8's checkWatches walks the path's parents and
                // throws on a non-empty path without a '/', which it answers
                // as MarshallingError (removeWatches does not walk them).
                Err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches { path, watcher_type }
            | Request::RemoveWatches { path, watcher_type } => {
                let check_only = matches!(request, Request::CheckWatches { .. });
                if watches.remove_matching(conn, path, *watcher_type, check_only) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            // Every id the connection holds, the super user's too (as
            // ZooKeeper's AuthUtil lists it: scheme "super", user "").
            Request::WhoAmI => Ok(Response::WhoAmI(
                who.auth
                    .iter()
                    .map(|id| (id.scheme.clone(), acl::user_name(id)))
                    .collect(),
            )),
            Request::MultiRead(ops)
                if ops.iter().any(|o| {
                    !matches!(o, MultiOp::GetChildren { .. } | MultiOp::GetData { .. })
                }) =>
            {
                // ZooKeeper fails the whole multiRead ("Invalid type of
                // readOp") with MarshallingError.
                Err(ErrorCode::MarshallingError)
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for o in ops {
                    let (req, data) = match o {
                        MultiOp::GetChildren { path } => (
                            Request::GetChildren {
                                path: path.clone(),
                                watch: false,
                            },
                            false,
                        ),
                        MultiOp::GetData { path } => (
                            Request::GetData {
                                path: path.clone(),
                                watch: false,
                            },
                            true,
                        ),
                        _ => {
                            results.push(OpResult::Error(ErrorCode::BadArguments));
                            continue;
                        }
                    };
                    results.push(match (self.evaluate(who, watches, &req), data) {
                        (Ok(Response::Data(d, s)), true) => OpResult::GetData(d, s),
                        (Ok(Response::DataNull(s)), true) => OpResult::GetDataNull(s),
                        (Ok(Response::Children(c)), false) => OpResult::GetChildren(c),
                        (Ok(_), _) => unreachable!("read answered with another shape"),
                        (Err(e), _) => OpResult::Error(e),
                    });
                }
                Ok(Response::Multi(results))
            }
            other => unreachable!("not a read: {other:?}"),
        }
    }

    /// setWatches after a reconnect: fire what the client missed since
    /// `relative_zxid`, register the rest.
    fn set_watches(
        &self,
        conn: ConnId,
        watches: &mut Watches,
        sw: &proto::SetWatches,
        events: &mut Vec<Vec<u8>>,
    ) {
        let rel = sw.relative_zxid;
        let mut fire: Vec<(i32, String)> = Vec::new();
        // As in `evaluate`: ZooKeeper's tree files the root under ""
        // too, so a watch on "" sees the root (events keep the path "").
        fn alias(p: &str) -> &str {
            if p.is_empty() {
                "/"
            } else {
                p
            }
        }
        for p in &sw.data {
            match self.tree.get(alias(p)) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.mzxid > rel => fire.push((event_type::NODE_DATA_CHANGED, p.clone())),
                Some(_) => watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &sw.exist {
            if self.tree.contains(alias(p)) {
                fire.push((event_type::NODE_CREATED, p.clone()));
            } else {
                watches.add(conn, WatchKind::Data, p);
            }
        }
        for p in &sw.child {
            match self.tree.get(alias(p)) {
                None => fire.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.pzxid > rel => {
                    fire.push((event_type::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in &sw.persistent {
            watches.add(conn, WatchKind::Persistent, p);
        }
        for p in &sw.persistent_recursive {
            watches.add(conn, WatchKind::PersistentRecursive, p);
        }
        let zxid = self.zxid.as_i64();
        for (t, p) in fire {
            events.push(proto::encode_event(
                zxid,
                t,
                keeper_state::SYNC_CONNECTED,
                &p,
            ));
        }
    }
}
