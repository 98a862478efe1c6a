//! Per-server watch registrations (not replicated: only the server a
//! client is connected to delivers its events).
//!
//! Mirrors ZooKeeper's WatchManager: one-shot data watches (getData and
//! exists), one-shot child watches, persistent watches (data and children
//! of the node itself) and persistent-recursive watches (the node and all
//! its descendants, never NodeChildrenChanged). One trigger sends a
//! connection at most one event. The event's path is always the path of
//! the node that changed.

use crate::ids::ConnId;
use crate::proto::{event_type, watcher_type};
use crate::tree::path;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    Data,
    Child,
    Persistent,
    PersistentRecursive,
}

#[derive(Debug)]
pub struct Watches {
    by_kind: BTreeMap<WatchKind, BTreeMap<String, BTreeSet<ConnId>>>,
    /// conn -> (kind, path): the inverse index, for closing connections.
    by_conn: BTreeMap<ConnId, BTreeSet<(WatchKind, String)>>,
    /// Cheap test that lets triggers skip the ancestor walk.
    recursive_count: usize,
    /// Watches one connection may hold (`limits::WATCHES_PER_CONN_MAX`).
    per_conn_max: usize,
    /// Connections that asked for a watch past `per_conn_max`: refused,
    /// to be closed by the node (`take_over_limit`).
    over: BTreeSet<ConnId>,
}

impl Default for Watches {
    fn default() -> Watches {
        Watches::with_limit(crate::limits::WATCHES_PER_CONN_MAX)
    }
}

impl Watches {
    /// No connection holds more than `per_conn_max` watches.
    pub fn with_limit(per_conn_max: usize) -> Watches {
        Watches {
            by_kind: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            recursive_count: 0,
            per_conn_max,
            over: BTreeSet::new(),
        }
    }

    /// Sets a watch, unless the connection already holds its limit: then
    /// the watch is not set and the connection is reported by
    /// `take_over_limit`.
    pub fn add(&mut self, conn: ConnId, kind: WatchKind, path: &str) {
        if self.by_conn.get(&conn).map_or(0, |s| s.len()) >= self.per_conn_max
            && !self.contains(conn, kind, path)
        {
            self.over.insert(conn);
            return;
        }
        let set = self
            .by_kind
            .entry(kind)
            .or_default()
            .entry(path.to_owned())
            .or_default();
        if set.insert(conn) {
            if kind == WatchKind::PersistentRecursive {
                self.recursive_count += 1;
            }
            self.by_conn
                .entry(conn)
                .or_default()
                .insert((kind, path.to_owned()));
        }
    }

    fn remove(&mut self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        let Some(paths) = self.by_kind.get_mut(&kind) else {
            return false;
        };
        let Some(set) = paths.get_mut(path) else {
            return false;
        };
        if !set.remove(&conn) {
            return false;
        }
        if set.is_empty() {
            paths.remove(path);
        }
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count -= 1;
        }
        if let Some(s) = self.by_conn.get_mut(&conn) {
            s.remove(&(kind, path.to_owned()));
            if s.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        true
    }

    pub fn contains(&self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        self.by_kind
            .get(&kind)
            .and_then(|m| m.get(path))
            .is_some_and(|s| s.contains(&conn))
    }

    /// Drops every watch of a connection (it closed or its session ended).
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(set) = self.by_conn.remove(&conn) {
            for (kind, p) in set {
                if let Some(paths) = self.by_kind.get_mut(&kind) {
                    if let Some(s) = paths.get_mut(&p) {
                        s.remove(&conn);
                        if s.is_empty() {
                            paths.remove(&p);
                        }
                    }
                }
                if kind == WatchKind::PersistentRecursive {
                    self.recursive_count -= 1;
                }
            }
        }
    }

    /// Takes the one-shot watchers of `kind` at `path`.
    fn take(&mut self, kind: WatchKind, p: &str, out: &mut BTreeSet<ConnId>) {
        if let Some(set) = self.by_kind.get_mut(&kind).and_then(|m| m.remove(p)) {
            for c in set {
                if let Some(s) = self.by_conn.get_mut(&c) {
                    s.remove(&(kind, p.to_owned()));
                    if s.is_empty() {
                        self.by_conn.remove(&c);
                    }
                }
                out.insert(c);
            }
        }
    }

    fn peek(&self, kind: WatchKind, p: &str, out: &mut BTreeSet<ConnId>) {
        if let Some(set) = self.by_kind.get(&kind).and_then(|m| m.get(p)) {
            out.extend(set.iter().copied());
        }
    }

    /// The connections to notify of `event` at `path`; one-shot watches
    /// that fire are removed.
    pub fn trigger(&mut self, p: &str, event: i32) -> BTreeSet<ConnId> {
        let mut out = BTreeSet::new();
        match event {
            event_type::NODE_CHILDREN_CHANGED => {
                self.take(WatchKind::Child, p, &mut out);
                self.peek(WatchKind::Persistent, p, &mut out);
            }
            _ => {
                self.take(WatchKind::Data, p, &mut out);
                if event == event_type::NODE_DELETED {
                    self.take(WatchKind::Child, p, &mut out);
                }
                self.peek(WatchKind::Persistent, p, &mut out);
                if self.recursive_count > 0 {
                    let mut at = p;
                    loop {
                        self.peek(WatchKind::PersistentRecursive, at, &mut out);
                        if at == "/" {
                            break;
                        }
                        at = path::parent(at);
                    }
                }
            }
        }
        out
    }

    /// `removeWatches` / `checkWatches`: which kinds a WatcherType covers.
    pub fn kinds_for(watcher_type: i32) -> &'static [WatchKind] {
        match watcher_type {
            watcher_type::CHILDREN => &[WatchKind::Child],
            watcher_type::DATA => &[WatchKind::Data],
            watcher_type::PERSISTENT => &[WatchKind::Persistent],
            watcher_type::PERSISTENT_RECURSIVE => &[WatchKind::PersistentRecursive],
            _ => &[
                WatchKind::Data,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        }
    }

    /// Removes the watches of `conn` at `path` of the given type; false if
    /// there were none.
    pub fn remove_matching(
        &mut self,
        conn: ConnId,
        p: &str,
        watcher_type: i32,
        check_only: bool,
    ) -> bool {
        let mut any = false;
        for &k in Self::kinds_for(watcher_type) {
            if check_only {
                any |= self.contains(conn, k, p);
            } else {
                any |= self.remove(conn, k, p);
            }
        }
        any
    }

    /// Connections refused a watch at their limit since the last call.
    pub fn take_over_limit(&mut self) -> BTreeSet<ConnId> {
        std::mem::take(&mut self.over)
    }

    pub fn count(&self) -> usize {
        self.by_conn.values().map(|s| s.len()).sum()
    }

    pub fn path_count(&self) -> usize {
        let mut paths = BTreeSet::new();
        for m in self.by_kind.values() {
            paths.extend(m.keys());
        }
        paths.len()
    }

    pub fn by_conn(&self) -> impl Iterator<Item = (ConnId, Vec<String>)> + '_ {
        self.by_conn.iter().map(|(c, s)| {
            (
                *c,
                s.iter()
                    .map(|(_, p)| p.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )
        })
    }

    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<ConnId>> {
        let mut out: BTreeMap<String, BTreeSet<ConnId>> = BTreeMap::new();
        for m in self.by_kind.values() {
            for (p, s) in m {
                out.entry(p.clone()).or_default().extend(s.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = Watches::default();
        w.add(ConnId(1), WatchKind::Data, "/a");
        assert_eq!(w.trigger("/a", event_type::NODE_DATA_CHANGED).len(), 1);
        assert!(w.trigger("/a", event_type::NODE_DATA_CHANGED).is_empty());
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn recursive_watches_see_descendants_but_not_child_events() {
        let mut w = Watches::default();
        w.add(ConnId(1), WatchKind::PersistentRecursive, "/a");
        assert_eq!(w.trigger("/a/b/c", event_type::NODE_CREATED).len(), 1);
        assert!(w
            .trigger("/a/b", event_type::NODE_CHILDREN_CHANGED)
            .is_empty());
        assert!(w.trigger("/x", event_type::NODE_CREATED).is_empty());
        assert_eq!(w.count(), 1, "persistent watches stay");
        w.remove_conn(ConnId(1));
        assert_eq!(w.count(), 0);
        assert!(w.trigger("/a/b", event_type::NODE_CREATED).is_empty());
    }

    #[test]
    fn persistent_watch_gets_child_events_and_deletes_clear_child_watches() {
        let mut w = Watches::default();
        w.add(ConnId(1), WatchKind::Persistent, "/a");
        w.add(ConnId(2), WatchKind::Child, "/a");
        assert_eq!(w.trigger("/a", event_type::NODE_CHILDREN_CHANGED).len(), 2);
        w.add(ConnId(2), WatchKind::Child, "/a");
        w.add(ConnId(2), WatchKind::Data, "/a");
        let fired = w.trigger("/a", event_type::NODE_DELETED);
        assert_eq!(fired.len(), 2, "one event per connection");
        assert_eq!(w.count(), 1);
    }
}
