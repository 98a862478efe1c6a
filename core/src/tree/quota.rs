//! Quotas, as ZooKeeper keeps them in the tree itself.
//!
//! A quota on `/p` is the node `/zookeeper/quota/p/zookeeper_limits`
//! (written by clients: zkCli's `setquota`), whose data is a StatsTrack
//! text (`count=10,bytes=-1`, with hard limits after `=;`), and the node
//! `/zookeeper/quota/p/zookeeper_stats`, which the server maintains:
//! when it is created its data becomes the subtree's count and bytes
//! (the node `/p` included), and every create, delete and setData under
//! `/p` adjusts it. Only the deepest quota above a node counts it, as
//! ZooKeeper's path trie decides.
//!
//! Every replica applies the same txns, so every replica keeps the same
//! figures: they are a consequence of the replicated txns, not txns of
//! their own (as in ZooKeeper, the stats node's data changes without its
//! version or mzxid moving). The quota roots are found from the limit
//! nodes themselves (no separate index to rebuild after a snapshot load),
//! and nothing is looked up while `/zookeeper/quota` has no children.
//!
//! With `enforceQuota`, a create or setData that would take a subtree past
//! a hard limit (`-N`, `-B`) fails with QuotaExceeded; soft limits (`-n`,
//! `-b`) are only figures, as in ZooKeeper.

use super::{path, DataTree};
use crate::proto::ErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where quota nodes live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The limit node's name under a quota path.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// The stats node's name under a quota path.
pub const STAT_NODE: &str = "zookeeper_stats";

/// ZooKeeper's StatsTrack: `key=value` pairs, `count` and `bytes` first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses StatsTrack text: pairs separated by `,` or `;`. A pair
    /// ZooKeeper would choke on (no `=`, not a number) is skipped here.
    pub fn parse(data: &[u8]) -> StatsTrack {
        let mut values = BTreeMap::new();
        let text = String::from_utf8_lossy(data);
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                continue;
            };
            let v = if v.is_empty() { Ok(-1) } else { v.parse() };
            if let Ok(v) = v {
                values.insert(k.to_string(), v);
            }
        }
        StatsTrack { values }
    }

    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.values.insert(key.to_string(), v);
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }

    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    /// The limit that counts for nodes: the hard one if set.
    pub fn count_limit(&self) -> i64 {
        match self.get("countHardLimit") {
            -1 => self.count(),
            h => h,
        }
    }

    /// The limit that counts for bytes: the hard one if set.
    pub fn bytes_limit(&self) -> i64 {
        match self.get("byteHardLimit") {
            -1 => self.bytes(),
            h => h,
        }
    }

    /// ZooKeeper's text: `count=N,bytes=M`, then (if any other key) `=`
    /// and `;key=value` in key order.
    pub fn to_text(&self) -> String {
        let mut s = format!("count={},bytes={}", self.count(), self.bytes());
        let rest: Vec<_> = self
            .values
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .collect();
        if !rest.is_empty() {
            s.push('=');
            for (k, v) in rest {
                s.push_str(&format!(";{k}={v}"));
            }
        }
        s
    }
}

/// One namespace's quota metrics (`zk_<ns>_quota_*_per_namespace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaFigures {
    pub count_limit: i64,
    pub bytes_limit: i64,
    pub count_usage: i64,
    pub bytes_usage: i64,
}

/// `/zookeeper/quota/p/zookeeper_limits` for `/p`.
pub fn limit_path(p: &str) -> String {
    format!("{QUOTA_ROOT}{p}/{LIMIT_NODE}")
}

/// `/zookeeper/quota/p/zookeeper_stats` for `/p`.
pub fn stat_path(p: &str) -> String {
    format!("{QUOTA_ROOT}{p}/{STAT_NODE}")
}

impl DataTree {
    /// Whether any quota node exists at all (the cheap test every write
    /// makes before looking further).
    fn has_quotas(&self) -> bool {
        self.get(QUOTA_ROOT).is_some_and(|n| !n.children.is_empty())
    }

    /// The deepest path at or above `p` with a quota (a limit node), if
    /// any; never the root.
    pub fn quota_prefix(&self, p: &str) -> Option<String> {
        if !self.has_quotas() {
            return None;
        }
        let mut at = p;
        while at != "/" && !at.is_empty() {
            if self.contains(&limit_path(at)) {
                return Some(at.to_string());
            }
            at = path::parent(at);
        }
        None
    }

    /// Adds to the figures of the quota that counts `p` (after `p` was
    /// created, deleted or set).
    fn quota_adjust(&mut self, p: &str, bytes: i64, count: i64) {
        let Some(prefix) = self.quota_prefix(p) else {
            return;
        };
        let sp = stat_path(&prefix);
        let Some(node) = self.get(&sp) else {
            return;
        };
        let mut st = StatsTrack::parse(&node.data);
        st.set("count", st.count() + count);
        st.set("bytes", st.bytes() + bytes);
        let data: Arc<[u8]> = Arc::from(st.to_text().into_bytes());
        self.update(&sp, |n| n.data = data);
    }

    /// Count and bytes of the subtree at `p` (`p` included; zero if absent).
    pub fn subtree_figures(&self, p: &str) -> (i64, i64) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![p.to_owned()];
        while let Some(at) = stack.pop() {
            if let Some(n) = self.get(&at) {
                count += 1;
                bytes += n.data.len() as i64;
                for c in n.children.iter() {
                    stack.push(path::join(&at, c));
                }
            }
        }
        (count, bytes)
    }

    /// Writes the subtree's real figures into the stats node of `p`.
    fn quota_recount(&mut self, p: &str) {
        let sp = stat_path(p);
        if !self.contains(&sp) {
            return;
        }
        let (count, bytes) = self.subtree_figures(p);
        let data: Arc<[u8]> = Arc::from(format!("count={count},bytes={bytes}").into_bytes());
        self.update(&sp, |n| n.data = data);
    }

    /// Quota bookkeeping after `p` was created with `len` bytes of data.
    pub(super) fn quota_on_create(&mut self, p: &str, len: usize) {
        if !self.has_quotas() {
            return;
        }
        let parent = path::parent(p);
        if path::name(p) == STAT_NODE {
            if let Some(real) = parent.strip_prefix(QUOTA_ROOT) {
                if !real.is_empty() {
                    self.quota_recount(real);
                }
            }
        }
        self.quota_adjust(p, len as i64, 1);
    }

    /// Quota bookkeeping after `p` (holding `len` bytes) was deleted.
    pub(super) fn quota_on_delete(&mut self, p: &str, len: usize) {
        self.quota_adjust(p, -(len as i64), -1);
    }

    /// Quota bookkeeping after `p`'s data went from `before` to `after`
    /// bytes.
    pub(super) fn quota_on_set(&mut self, p: &str, before: usize, after: usize) {
        if before != after {
            self.quota_adjust(p, after as i64 - before as i64, 0);
        }
    }

    /// Recomputes every stats node from the tree, as ZooKeeper does when
    /// it loads a database (used after importing ZooKeeper's files, whose
    /// snapshot is fuzzy: the stats data in it may not match the replayed
    /// txns).
    pub fn quota_recount_all(&mut self) {
        let limits: Vec<String> = self
            .quota_nodes()
            .filter_map(|(p, _)| {
                let real = p.strip_prefix(QUOTA_ROOT)?;
                let real = real.strip_suffix(LIMIT_NODE)?.strip_suffix('/')?;
                (!real.is_empty()).then(|| real.to_string())
            })
            .collect();
        for real in limits {
            self.quota_recount(&real);
        }
    }

    /// Paths of the nodes under `/zookeeper/quota/` (in path order,
    /// without walking the rest of the tree: down from the quota root
    /// through the children sets, then sorted).
    fn quota_nodes(&self) -> impl Iterator<Item = (&super::Name, &super::Znode)> {
        let mut out = Vec::new();
        let mut stack = vec![QUOTA_ROOT.to_string()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.get(&p) else { continue };
            for c in n.children.iter() {
                let child = path::join(&p, c);
                if let Some((name, node)) = self.nodes.get_key_value(child.as_str()) {
                    out.push((name, &**node));
                }
                stack.push(child);
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.into_iter()
    }

    /// ZooKeeper's quota metrics (`QuotaMetricsUtils`), by top-level
    /// namespace: the sum of the limits (hard if set, else soft) and of
    /// the usage figures of every limit and stats node that is a leaf.
    pub fn quota_metrics(&self) -> BTreeMap<String, QuotaFigures> {
        let mut out: BTreeMap<String, QuotaFigures> = BTreeMap::new();
        for (p, n) in self.quota_nodes() {
            if !n.children.is_empty() {
                continue;
            }
            let real = &p[QUOTA_ROOT.len()..];
            let Some(ns) = real.split('/').nth(1).filter(|s| !s.is_empty()) else {
                continue;
            };
            let st = StatsTrack::parse(&n.data);
            if p.ends_with(&format!("/{LIMIT_NODE}")) {
                let f = out.entry(ns.to_string()).or_default();
                f.count_limit += st.count_limit();
                f.bytes_limit += st.bytes_limit();
            } else if p.ends_with(&format!("/{STAT_NODE}")) {
                let f = out.entry(ns.to_string()).or_default();
                f.count_usage += st.count();
                f.bytes_usage += st.bytes();
            }
        }
        out
    }

    /// `enforceQuota`: whether adding `count` nodes and `bytes` bytes at
    /// `p` stays within the hard limits of the quota that counts `p`.
    pub fn quota_check(&self, p: &str, bytes: i64, count: i64) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quota_prefix(p) else {
            return Ok(());
        };
        let Some(limit) = self.get(&limit_path(&prefix)) else {
            return Ok(());
        };
        let limits = StatsTrack::parse(&limit.data);
        let check_count = count != 0 && limits.count_limit() > -1;
        let check_bytes = bytes != 0 && limits.bytes_limit() > -1;
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stats) = self.get(&stat_path(&prefix)) else {
            return Ok(());
        };
        let now = StatsTrack::parse(&stats.data);
        let hard_count = limits.get("countHardLimit");
        if check_count && hard_count > -1 && now.count() + count > hard_count {
            return Err(ErrorCode::QuotaExceeded);
        }
        let hard_bytes = limits.get("byteHardLimit");
        if check_bytes && hard_bytes > -1 && now.bytes() + bytes > hard_bytes {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    fn mk(t: &mut DataTree, p: &str, data: &str, zxid: i64) {
        let acl = t.intern_acl(Acl::open_unsafe());
        t.create(p, Arc::from(data.as_bytes()), acl, 0, zxid, 0);
    }

    fn stats(t: &DataTree, p: &str) -> String {
        String::from_utf8(t.get(&stat_path(p)).unwrap().data.to_vec()).unwrap()
    }

    #[test]
    fn stats_track_text_is_zookeepers() {
        let mut s = StatsTrack::parse(b"count=10,bytes=-1");
        assert_eq!((s.count(), s.bytes()), (10, -1));
        assert_eq!(s.to_text(), "count=10,bytes=-1");
        s.set("countHardLimit", 5);
        s.set("byteHardLimit", -1);
        assert_eq!(
            s.to_text(),
            "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=5"
        );
        let back = StatsTrack::parse(s.to_text().as_bytes());
        assert_eq!(back, s);
        assert_eq!(back.count_limit(), 5);
        assert_eq!(StatsTrack::parse(b"garbage,count=x,bytes=3").bytes(), 3);
    }

    #[test]
    fn stats_follow_creates_sets_and_deletes_under_the_deepest_quota() {
        let mut t = DataTree::new();
        mk(&mut t, "/a", "12", 1);
        mk(&mut t, "/a/b", "345", 2);
        mk(&mut t, "/zookeeper/quota/a", "", 3);
        mk(&mut t, &limit_path("/a"), "count=10,bytes=-1", 4);
        mk(&mut t, &stat_path("/a"), "count=0,bytes=0", 5);
        assert_eq!(stats(&t, "/a"), "count=2,bytes=5");
        let v = t.get(&stat_path("/a")).unwrap().version;
        mk(&mut t, "/a/b/c", "6789", 6);
        assert_eq!(stats(&t, "/a"), "count=3,bytes=9");
        t.set_data("/a/b", Arc::from(&b"x"[..]), 7, 0);
        assert_eq!(stats(&t, "/a"), "count=3,bytes=7");
        t.delete("/a/b/c", 8);
        assert_eq!(stats(&t, "/a"), "count=2,bytes=3");
        assert_eq!(t.get(&stat_path("/a")).unwrap().version, v);
        mk(&mut t, "/other", "zz", 9);
        assert_eq!(stats(&t, "/a"), "count=2,bytes=3");
        let m = t.quota_metrics();
        assert_eq!(
            m["a"],
            QuotaFigures {
                count_limit: 10,
                bytes_limit: -1,
                count_usage: 2,
                bytes_usage: 3
            }
        );
        let digest = t.digest();
        t.quota_recount_all();
        assert_eq!(t.digest(), digest, "the kept figures are the real ones");
        t.check_invariants().unwrap();
        // Without the limit node, nothing is counted any more.
        t.delete(&limit_path("/a"), 10);
        mk(&mut t, "/a/d", "1", 11);
        assert_eq!(stats(&t, "/a"), "count=2,bytes=3");
    }

    #[test]
    fn hard_limits_refuse_and_soft_limits_do_not() {
        let mut t = DataTree::new();
        mk(&mut t, "/q", "", 1);
        mk(&mut t, "/zookeeper/quota/q", "", 2);
        mk(
            &mut t,
            &limit_path("/q"),
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
            3,
        );
        mk(&mut t, &stat_path("/q"), "", 4);
        assert_eq!(t.quota_check("/q/a", 0, 1), Ok(()));
        mk(&mut t, "/q/a", "", 5);
        assert_eq!(t.quota_check("/q/b", 0, 1), Err(ErrorCode::QuotaExceeded));
        assert_eq!(t.quota_check("/elsewhere", 0, 1), Ok(()));
        t.update(&limit_path("/q"), |n| {
            n.data = Arc::from(&b"count=1,bytes=1"[..])
        });
        assert_eq!(
            t.quota_check("/q/b", 100, 1),
            Ok(()),
            "soft limits only warn"
        );
    }
}
