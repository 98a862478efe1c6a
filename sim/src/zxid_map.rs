//! A map keyed by zxid for histories that grow at their end: a sorted
//! vector whose lookups scan back from the newest entry first. Servers
//! report what they applied in zxid order, so nearly every lookup and
//! insert lands at or near the end; a B-tree paid a full descent (and a
//! node shuffle) for each.

use paddock_core::Zxid;

/// How far back from the end a lookup scans before binary search.
const SCAN_BACK: usize = 16;

#[derive(Clone, Debug)]
pub struct ZxidMap<V> {
    entries: Vec<(Zxid, V)>,
}

impl<V> Default for ZxidMap<V> {
    fn default() -> Self {
        ZxidMap {
            entries: Vec::new(),
        }
    }
}

impl<V> ZxidMap<V> {
    /// Where `z` is (`Ok`) or would go (`Err`).
    fn find(&self, z: Zxid) -> Result<usize, usize> {
        let n = self.entries.len();
        for i in (n.saturating_sub(SCAN_BACK)..n).rev() {
            let k = self.entries[i].0;
            if k == z {
                return Ok(i);
            }
            if k < z {
                return Err(i + 1);
            }
        }
        self.entries.binary_search_by_key(&z, |e| e.0)
    }

    pub fn get(&self, z: Zxid) -> Option<&V> {
        self.find(z).ok().map(|i| &self.entries[i].1)
    }

    /// Adds `v` at `z` unless `z` is present (then keeps the first).
    pub fn insert_absent(&mut self, z: Zxid, v: V) {
        if let Err(i) = self.find(z) {
            self.entries.insert(i, (z, v));
        }
    }

    /// Values in zxid order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|e| &e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn agrees_with_a_btree_map_in_any_insert_order() {
        // In order, out of order by a little and by a lot (beyond the
        // scan-back window), and repeats (the first value stays).
        let mut keys: Vec<u64> = (1..200).collect();
        keys.extend([150, 3, 1, 500, 499, 250, 60, 201, 202, 205, 203]);
        let (mut m, mut b) = (ZxidMap::default(), BTreeMap::new());
        for (n, k) in keys.iter().enumerate() {
            m.insert_absent(Zxid(*k), n);
            b.entry(Zxid(*k)).or_insert(n);
            for probe in [*k, k - 1, k + 1, 0, 1000] {
                assert_eq!(m.get(Zxid(probe)), b.get(&Zxid(probe)), "probe {probe}");
            }
        }
        assert_eq!(m.values().count(), b.len());
        assert!(m.values().eq(b.values()));
    }
}
