//! The peer network: opaque messages between servers over links with a
//! latency distribution, loss, duplication, reordering, partitions (both
//! ways or one way) and clogging.
//!
//! Two semantics. `Stream` is what the core is promised (TCP): per
//! direction FIFO and at most once; a loss is not a dropped message but a
//! reset connection — its in-flight suffix is discarded (stale generation)
//! and both ends hear `PeerDisconnected` before anything of the next
//! connection. `Datagram` drops, duplicates and reorders individual
//! messages; it is kept for protocols that expect no more (and tested
//! here so the model itself is known to work).
//!
//! Invariant: on a `Stream` link, delivery times per direction never
//! decrease, and a message is delivered only in the generation it was sent.

use crate::rng::SimRng;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Semantics {
    Stream,
    Datagram,
}

/// How one direction of a link behaves.
#[derive(Clone, Copy, Debug)]
pub struct LinkModel {
    pub semantics: Semantics,
    pub latency_ns_min: u64,
    pub latency_ns_typical: u64,
    pub latency_ns_max: u64,
    /// Datagram: probability a message is lost.
    pub loss: f64,
    /// Datagram: probability a message is delivered twice.
    pub dup: f64,
}

impl LinkModel {
    pub fn lan(semantics: Semantics) -> LinkModel {
        LinkModel {
            semantics,
            latency_ns_min: 100_000,
            latency_ns_typical: 1_000_000,
            latency_ns_max: 5_000_000,
            loss: 0.0,
            dup: 0.0,
        }
    }
}

/// State of one unordered pair of endpoints.
#[derive(Clone, Debug, Default)]
struct Pair {
    up: bool,
    generation: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Net {
    pairs: BTreeMap<(u64, u64), Pair>,
    /// Per direction: the latest delivery time scheduled (Stream FIFO).
    last_due: BTreeMap<(u64, u64), u64>,
    /// Directions held until the given time (one-way partitions, clogs).
    clogged: BTreeMap<(u64, u64), u64>,
    /// Pairs that may not connect (partitions).
    cut: BTreeSet<(u64, u64)>,
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
}

/// When one message arrives: never, once, or twice (a duplicate). Kept
/// inline: a send is the commonest event, and a vector per send was an
/// allocation per message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    times: [u64; 2],
    n: usize,
}

impl Due {
    fn push(&mut self, t: u64) {
        self.times[self.n] = t;
        self.n += 1;
    }
}

impl std::ops::Deref for Due {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.times[..self.n]
    }
}

impl IntoIterator for Due {
    type Item = u64;
    type IntoIter = std::iter::Take<std::array::IntoIter<u64, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.times.into_iter().take(self.n)
    }
}

fn key(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl Net {
    pub fn new() -> Net {
        Net::default()
    }

    pub fn is_up(&self, a: u64, b: u64) -> bool {
        self.pairs.get(&key(a, b)).is_some_and(|p| p.up)
    }

    pub fn is_cut(&self, a: u64, b: u64) -> bool {
        self.cut.contains(&key(a, b))
    }

    pub fn generation(&self, a: u64, b: u64) -> u64 {
        self.pairs.get(&key(a, b)).map_or(0, |p| p.generation)
    }

    /// A connection is established (a new generation); false if the pair
    /// is cut or already up.
    pub fn connect(&mut self, a: u64, b: u64) -> bool {
        if self.is_cut(a, b) {
            return false;
        }
        let p = self.pairs.entry(key(a, b)).or_default();
        if p.up {
            return false;
        }
        p.up = true;
        p.generation += 1;
        true
    }

    /// The connection breaks: what is in flight is lost. True if it was up.
    pub fn reset(&mut self, a: u64, b: u64) -> bool {
        let p = self.pairs.entry(key(a, b)).or_default();
        let was = p.up;
        p.up = false;
        p.generation += 1;
        self.last_due.remove(&(a, b));
        self.last_due.remove(&(b, a));
        was
    }

    /// Forbids (`true`) or allows connecting the pair.
    pub fn set_cut(&mut self, a: u64, b: u64, cut: bool) {
        if cut {
            self.cut.insert(key(a, b));
        } else {
            self.cut.remove(&key(a, b));
        }
    }

    pub fn cut_pairs(&self) -> Vec<(u64, u64)> {
        self.cut.iter().copied().collect()
    }

    /// Holds messages from `from` to `to` until `until`.
    pub fn clog(&mut self, from: u64, to: u64, until: u64) {
        let e = self.clogged.entry((from, to)).or_insert(0);
        *e = (*e).max(until);
    }

    pub fn unclog_all(&mut self) {
        self.clogged.clear();
    }

    /// When the copies of one message sent now from `from` to `to` arrive
    /// (empty: lost), and the generation they belong to.
    pub fn send(
        &mut self,
        rng: &mut SimRng,
        now: u64,
        from: u64,
        to: u64,
        m: &LinkModel,
    ) -> (Due, u64) {
        self.sent += 1;
        let generation = self.generation(from, to);
        let mut out = Due::default();
        if m.semantics == Semantics::Stream && !self.is_up(from, to) {
            self.lost += 1;
            return (out, generation);
        }
        let held = self.clogged.get(&(from, to)).copied().unwrap_or(0);
        let due = |rng: &mut SimRng| {
            now.max(held) + rng.latency(m.latency_ns_min, m.latency_ns_typical, m.latency_ns_max)
        };
        match m.semantics {
            Semantics::Stream => {
                let last = self.last_due.get(&(from, to)).copied().unwrap_or(0);
                let d = due(rng).max(last);
                self.last_due.insert((from, to), d);
                out.push(d);
                (out, generation)
            }
            Semantics::Datagram => {
                if self.is_cut(from, to) || rng.chance(m.loss) {
                    self.lost += 1;
                    return (out, generation);
                }
                out.push(due(rng));
                if rng.chance(m.dup) {
                    self.duplicated += 1;
                    out.push(due(rng));
                }
                (out, generation)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jittery(semantics: Semantics) -> LinkModel {
        LinkModel {
            semantics,
            latency_ns_min: 0,
            latency_ns_typical: 1_000,
            latency_ns_max: 50_000,
            loss: 0.2,
            dup: 0.2,
        }
    }

    #[test]
    fn stream_links_are_fifo_and_exactly_once_while_up() {
        let mut net = Net::new();
        let mut rng = SimRng::stream(1, "t");
        assert!(net.connect(1, 2));
        let m = jittery(Semantics::Stream);
        let mut last = 0;
        for i in 0..1_000u64 {
            let (due, _) = net.send(&mut rng, i * 10, 1, 2, &m);
            assert_eq!(due.len(), 1, "message {i}: stream delivers exactly once");
            assert!(due[0] >= last, "message {i} overtakes: {} < {last}", due[0]);
            last = due[0];
        }
    }

    #[test]
    fn a_reset_starts_a_new_generation_and_drops_until_reconnected() {
        let mut net = Net::new();
        let mut rng = SimRng::stream(2, "t");
        let m = LinkModel::lan(Semantics::Stream);
        assert!(net.connect(1, 2));
        let (_, g1) = net.send(&mut rng, 0, 1, 2, &m);
        assert!(net.reset(2, 1));
        let (due, _) = net.send(&mut rng, 1, 1, 2, &m);
        assert!(due.is_empty(), "a down link delivers nothing");
        net.set_cut(1, 2, true);
        assert!(!net.connect(1, 2), "a cut pair cannot connect");
        net.set_cut(2, 1, false);
        assert!(net.connect(1, 2));
        let (_, g2) = net.send(&mut rng, 2, 1, 2, &m);
        assert!(g2 > g1, "generations {g1} then {g2}");
    }

    #[test]
    fn datagrams_are_lost_duplicated_and_reordered() {
        let mut net = Net::new();
        let mut rng = SimRng::stream(3, "t");
        let m = jittery(Semantics::Datagram);
        let mut deliveries = Vec::new();
        for i in 0..2_000u64 {
            let (due, _) = net.send(&mut rng, i, 1, 2, &m);
            deliveries.extend(due.into_iter().map(|d| (d, i)));
        }
        deliveries.sort();
        let reordered = deliveries.windows(2).filter(|w| w[1].1 < w[0].1).count();
        assert!(net.lost > 200 && net.lost < 600, "lost {}", net.lost);
        assert!(net.duplicated > 200, "duplicated {}", net.duplicated);
        assert!(reordered > 50, "reordered pairs {reordered}");
    }

    #[test]
    fn a_clogged_direction_holds_messages_until_released() {
        let mut net = Net::new();
        let mut rng = SimRng::stream(4, "t");
        let m = LinkModel::lan(Semantics::Stream);
        net.connect(1, 2);
        net.clog(1, 2, 1_000_000_000);
        let (a, _) = net.send(&mut rng, 0, 1, 2, &m);
        let (b, _) = net.send(&mut rng, 0, 2, 1, &m);
        assert!(
            a[0] >= 1_000_000_000,
            "held direction delivered at {}",
            a[0]
        );
        assert!(b[0] < 1_000_000_000, "other direction flows: {}", b[0]);
    }
}
