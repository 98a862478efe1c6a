//! `Latencies`: count, sum, min, max and a fixed log-linear histogram of
//! millisecond values, from which ZooKeeper's summaries (`readlatency`,
//! `updatelatency`, `fsynctime`, ... with their p50/p90/p95/p99/p999) are
//! estimated. Fixed size, no allocation per value, plain data: the core
//! records request latencies into it and the shell its fsync and snapshot
//! times.
//!
//! Invariant: `buckets` sums to `count`. Values 0..16 ms have a bucket each;
//! above, each power of two is split in four, so an estimated quantile is
//! within 25% of the true one (ZooKeeper's own summaries allow 5% at the
//! median and 0.1% at p99, over a ten-minute window; this one covers
//! everything since start or the last reset).

/// Buckets: 16 exact ones, then 4 per power of two up to 2^40 ms.
pub const LATENCY_BUCKETS: usize = 16 + 4 * 36;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latencies {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    buckets: [u64; LATENCY_BUCKETS],
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            buckets: [0; LATENCY_BUCKETS],
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < 16 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros() as usize; // >= 4
    let quarter = ((v >> (octave - 2)) & 3) as usize;
    (16 + (octave - 4) * 4 + quarter).min(LATENCY_BUCKETS - 1)
}

/// The largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < 16 {
        return b as u64;
    }
    let octave = (b - 16) / 4 + 4;
    let quarter = ((b - 16) % 4) as u64;
    ((4 + quarter + 1) << (octave - 2)) - 1
}

impl Latencies {
    pub fn record(&mut self, v: u64) {
        self.min = if self.count == 0 { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.buckets[bucket(v)] += 1;
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `q` quantile (0 < q <= 1), as the top of the bucket that holds
    /// it clamped to [min, max]; 0 with no values.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_top(b).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let b = bucket(v);
            assert!(b >= last, "bucket of {v} went back");
            assert!(
                bucket_top(b) >= v,
                "{v} above its bucket's top {}",
                bucket_top(b)
            );
            last = b;
        }
        assert_eq!(bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_close_and_clamped() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), 0);
        for v in 1..=1000 {
            l.record(v);
        }
        assert_eq!((l.count, l.min, l.max, l.sum), (1000, 1, 1000, 500_500));
        let p50 = l.quantile(0.5) as f64;
        assert!((500.0..=625.0).contains(&p50), "p50 {p50}");
        let p99 = l.quantile(0.99) as f64;
        assert!((990.0..=1000.0).contains(&p99), "p99 {p99}");
        assert_eq!(l.quantile(1.0), 1000);
        let mut one = Latencies::default();
        one.record(7);
        assert_eq!((one.quantile(0.5), one.min, one.avg()), (7, 7, 7.0));
    }
}
