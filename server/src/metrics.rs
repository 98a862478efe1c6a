//! Server metrics under ZooKeeper's names, one collection feeding `mntr`,
//! the AdminServer's `monitor` and the Prometheus `/metrics` endpoint.
//!
//! [`ZK_METRICS`] is the key set ZooKeeper 3.8 prints in `mntr`, in its
//! order (a leader's, of which other roles print a subsequence), with
//! ZooKeeper's types: gauges, counters (`ServerMetrics` counters) and
//! summaries (avg/min/max/cnt/sum, plus p50/p95/p99/p999 for ZooKeeper's
//! ADVANCED ones). A key whose ZooKeeper meaning has no counterpart here
//! (its JVM, Netty, request-processor pipeline, TLS, throttling) is
//! printed as 0, as ZooKeeper prints a metric that never moved;
//! `docs/METRICS.md` lists which are measured and why the others are not.
//!
//! The exposition is ZooKeeper's: its provider (simpleclient 0.9 behind
//! a `MetricsServlet`) writes the Prometheus text format 0.0.4 with
//! counters under their bare names (`# TYPE looking_count counter`,
//! `looking_count 3`), summaries as `# TYPE readlatency summary` with
//! `readlatency{quantile="0.5"}`, `readlatency_count` and `readlatency_sum`,
//! and gauges. The `prometheus` crate's text encoder writes exactly that
//! from metric families built here; the `prometheus-client` crate could
//! not (it renames counters `*_total` and has no summary type).

use paddock_core::latency::Latencies;
use prometheus::proto::{
    Counter as PCounter, Gauge as PGauge, Metric, MetricFamily, MetricType, Quantile,
    Summary as PSummary,
};
use prometheus::Encoder;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

pub use crate::metric_names::{Kind, Scope, PADDOCK_METRICS, ZK_METRICS};

/// Figures the storage threads record (shared with them).
#[derive(Debug, Default)]
pub struct Shared {
    /// `fsynctime`: milliseconds per log fsync.
    pub fsync: Mutex<Latencies>,
    /// Log jobs (appends, epochs, truncations) per group commit.
    pub batch: Mutex<Latencies>,
    /// `snapshottime`: milliseconds to write and fsync a snapshot.
    pub snapshot: Mutex<Latencies>,
    pub snapshot_bytes: AtomicU64,
    /// Jobs handed to the log thread and not yet taken.
    pub log_queue: AtomicI64,
}

impl Shared {
    pub fn record(cell: &Mutex<Latencies>, v: u64) {
        if let Ok(mut l) = cell.lock() {
            l.record(v);
        }
    }

    fn read(cell: &Mutex<Latencies>) -> Latencies {
        cell.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Figures the driver keeps (it alone touches them).
#[derive(Debug, Default)]
pub struct Counters {
    pub looking_count: u64,
    pub bytes_received: u64,
    pub response_bytes: u64,
    pub connection_requests: u64,
    /// Txns applied while leading / while following or observing.
    pub commits_led: u64,
    pub commits_learned: u64,
    pub election_time: Latencies,
    pub dbinittime: Latencies,
    pub response_size_last: u64,
    pub response_size_min: u64,
    pub response_size_max: u64,
    role: &'static str,
    /// Monotonic milliseconds when the current role began, and when the
    /// last election began.
    role_since_ms: u64,
    looking_since_ms: Option<u64>,
    last_zxid: u64,
}

impl Counters {
    /// Called once per driver turn: counts role changes (`looking_count`,
    /// `election_time`) and applied txns. Cheap when nothing changed.
    pub fn observe(
        &mut self,
        role: &'static str,
        last_zxid: u64,
        now_ms: u64,
    ) -> Option<&'static str> {
        // Txns applied since the last turn; a new epoch restarts the
        // counter in the zxid's low 32 bits.
        let delta = if last_zxid >> 32 == self.last_zxid >> 32 {
            last_zxid.saturating_sub(self.last_zxid)
        } else {
            last_zxid & 0xffff_ffff
        };
        if delta > 0 && self.last_zxid != 0 {
            match role {
                "leader" | "standalone" => self.commits_led += delta,
                _ => self.commits_learned += delta,
            }
        }
        self.last_zxid = last_zxid;
        if role == self.role {
            return None;
        }
        let before = std::mem::replace(&mut self.role, role);
        self.role_since_ms = now_ms;
        if role == "looking" {
            self.looking_count += 1;
            self.looking_since_ms = Some(now_ms);
        } else if let Some(since) = self.looking_since_ms.take() {
            self.election_time.record(now_ms.saturating_sub(since));
        }
        Some(before)
    }

    pub fn on_response(&mut self, len: u64) {
        self.response_bytes += len;
        self.response_size_last = len;
        self.response_size_min = if self.response_size_min == 0 {
            len
        } else {
            self.response_size_min.min(len)
        };
        self.response_size_max = self.response_size_max.max(len);
    }

    pub fn role_uptime_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.role_since_ms)
    }
}

#[derive(Clone, Debug)]
pub enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Summary(Box<Latencies>),
}

/// One metric: its name (without `zk_`), kind and value.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: &'static str,
    pub kind: Kind,
    pub value: Value,
}

/// The figures a collection reads, gathered by the driver.
pub struct Inputs<'a> {
    pub stats: &'a paddock_core::NodeStats,
    pub role: &'static str,
    pub ensemble: bool,
    pub version: String,
    pub uptime_ms: u64,
    pub role_uptime_ms: u64,
    pub quorum_size: u64,
    /// (learners, synced followers, synced observers) on the leader;
    /// learners count observers too, as ZooKeeper's do.
    pub learners: (u64, u64, u64),
    pub counters: &'a Counters,
    pub shared: &'a Shared,
}

fn fd_counts() -> (i64, i64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (open, max)
}

/// The value Paddock measures for a ZooKeeper key, if it measures one.
fn measured(name: &str, i: &Inputs<'_>, fds: (i64, i64)) -> Option<Value> {
    let s = i.stats;
    let c = i.counters;
    let int = |v: u64| Some(Value::Int(v as i64));
    match name {
        "version" => Some(Value::Text(i.version.clone())),
        "server_state" => Some(Value::Text(i.role.to_string())),
        "peer_state" => Some(Value::Text(match i.role {
            "leader" => "leading - broadcast".into(),
            "follower" => "following - broadcast".into(),
            "observer" => "observing - broadcast".into(),
            other => format!("{other} - election"),
        })),
        "ephemerals_count" => int(s.ephemerals_count),
        "num_alive_connections" => int(s.connections),
        "avg_latency" => Some(Value::Float(round4(if s.latency_count == 0 {
            0.0
        } else {
            s.latency_total_ms as f64 / s.latency_count as f64
        }))),
        "outstanding_requests" => int(s.outstanding_requests),
        "znode_count" => int(s.node_count),
        "global_sessions" => int(s.sessions),
        "packets_sent" => int(s.packets_sent),
        "packets_received" => int(s.packets_received),
        "watch_count" => int(s.watch_count),
        "min_latency" => int(s.latency_min_ms),
        "max_latency" => int(s.latency_max_ms),
        "approximate_data_size" => int(s.approximate_data_size),
        "open_file_descriptor_count" => Some(Value::Int(fds.0)),
        "max_file_descriptor_count" => Some(Value::Int(fds.1)),
        "uptime" => int(i.uptime_ms),
        "leader_uptime" => int(i.role_uptime_ms),
        "quorum_size" => int(i.quorum_size),
        "learners" => int(i.learners.0),
        "synced_followers" => int(i.learners.1),
        "synced_observers" => int(i.learners.2),
        "last_client_response_size" => int(c.response_size_last),
        "min_client_response_size" => int(c.response_size_min),
        "max_client_response_size" => int(c.response_size_max),
        "looking_count" => int(c.looking_count),
        "bytes_received_count" => int(c.bytes_received),
        "response_bytes" => int(c.response_bytes),
        "connection_request_count" => int(c.connection_requests),
        "proposal_count" | "commit_count" => int(c.commits_led),
        "learner_proposal_received_count" | "learner_commit_received_count" => {
            int(c.commits_learned)
        }
        "readlatency" => Some(Value::Summary(Box::new(s.read_latency.clone()))),
        "updatelatency" => Some(Value::Summary(Box::new(s.update_latency.clone()))),
        "fsynctime" => Some(Value::Summary(Box::new(Shared::read(&i.shared.fsync)))),
        "sync_processor_batch_size" | "paddock_group_commit_batch_size" => {
            Some(Value::Summary(Box::new(Shared::read(&i.shared.batch))))
        }
        "snapshottime" | "paddock_snapshot_duration_ms" => {
            Some(Value::Summary(Box::new(Shared::read(&i.shared.snapshot))))
        }
        "paddock_snapshot_size_bytes" => int(i.shared.snapshot_bytes.load(Ordering::Relaxed)),
        "paddock_storage_queue_depth" => Some(Value::Int(
            i.shared.log_queue.load(Ordering::Relaxed).max(0),
        )),
        "election_time" | "unavailable_time" => {
            Some(Value::Summary(Box::new(c.election_time.clone())))
        }
        "dbinittime" => Some(Value::Summary(Box::new(c.dbinittime.clone()))),
        // -1 before the first proposal, as ZooKeeper's BufferStats.
        "last_proposal_size" | "min_proposal_size" | "max_proposal_size"
            if s.proposal_size_last == 0 =>
        {
            Some(Value::Int(-1))
        }
        "last_proposal_size" => int(s.proposal_size_last),
        "min_proposal_size" => int(s.proposal_size_min),
        "max_proposal_size" => int(s.proposal_size_max),
        "diff_count" => int(s.diff_syncs),
        "snap_count" => int(s.snap_syncs),
        "pending_syncs" => int(s.pending_syncs),
        _ => None,
    }
}

fn zero(kind: Kind) -> Value {
    match kind {
        Kind::Text => Value::Text(String::new()),
        Kind::Gauge | Kind::Counter => Value::Int(0),
        Kind::Summary | Kind::SummaryAdvanced => Value::Summary(Box::default()),
    }
}

/// Every metric this server prints now, in `mntr` order.
pub fn collect(i: &Inputs<'_>) -> Vec<Sample> {
    let fds = fd_counts();
    let mut out = Vec::with_capacity(ZK_METRICS.len() + PADDOCK_METRICS.len());
    for &(name, kind, scope) in ZK_METRICS {
        let shown = match scope {
            Scope::All => true,
            Scope::Quorum => i.ensemble,
            Scope::Leader => i.role == "leader",
        };
        if !shown {
            continue;
        }
        let value = measured(name, i, fds).unwrap_or_else(|| match name {
            "connection_drop_probability" => Value::Float(0.0),
            _ => zero(kind),
        });
        out.push(Sample { name, kind, value });
    }
    for &(name, kind) in PADDOCK_METRICS {
        let value = measured(name, i, fds).unwrap_or_else(|| zero(kind));
        out.push(Sample { name, kind, value });
    }
    out
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Java prints doubles with at least one decimal (`0.0`, `2.5`).
pub fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// `mntr`'s text: `zk_<name>\t<value>` lines; a summary as ZooKeeper's
/// `zk_avg_/min_/max_/cnt_/sum_<name>` (and p50..p999 when advanced).
pub fn mntr_text(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        match &s.value {
            Value::Text(t) => {
                let _ = writeln!(out, "zk_{}\t{t}", s.name);
            }
            Value::Int(v) => {
                let _ = writeln!(out, "zk_{}\t{v}", s.name);
            }
            Value::Float(v) => {
                let _ = writeln!(out, "zk_{}\t{}", s.name, java_double(*v));
            }
            Value::Summary(l) => {
                let n = s.name;
                let _ = writeln!(out, "zk_avg_{n}\t{}", java_double(round4(l.avg())));
                let _ = writeln!(out, "zk_min_{n}\t{}", l.min);
                let _ = writeln!(out, "zk_max_{n}\t{}", l.max);
                let _ = writeln!(out, "zk_cnt_{n}\t{}", l.count);
                let _ = writeln!(out, "zk_sum_{n}\t{}", l.sum);
                if s.kind == Kind::SummaryAdvanced {
                    for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)]
                    {
                        let _ = writeln!(out, "zk_{label}_{n}\t{}", l.quantile(q));
                    }
                }
            }
        }
    }
    out
}

/// ZooKeeper's quota gauge sets, by namespace, as `(key, value)` pairs
/// under the names its `mntr` prints (`<ns>_quota_count_limit_per_namespace`
/// and so on, without `zk_`): a set's keys go before the metric's name.
pub fn quota_pairs(
    figures: &std::collections::BTreeMap<String, paddock_core::tree::quota::QuotaFigures>,
) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (ns, f) in figures {
        for (name, v) in [
            ("quota_count_limit_per_namespace", f.count_limit),
            ("quota_bytes_limit_per_namespace", f.bytes_limit),
            ("quota_count_usage_per_namespace", f.count_usage),
            ("quota_bytes_usage_per_namespace", f.bytes_usage),
        ] {
            out.push((format!("{ns}_{name}"), v));
        }
    }
    out
}

/// The same samples as (key, JSON value) pairs, as the AdminServer's
/// `monitor` answers them (summaries flattened as in `mntr`).
pub fn monitor_json(samples: &[Sample]) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    let mut out = serde_json::Map::new();
    for s in samples {
        match &s.value {
            Value::Text(t) => {
                out.insert(s.name.to_string(), J::from(t.clone()));
            }
            Value::Int(v) => {
                out.insert(s.name.to_string(), J::from(*v));
            }
            Value::Float(v) => {
                out.insert(s.name.to_string(), J::from(*v));
            }
            Value::Summary(l) => {
                let n = s.name;
                out.insert(format!("avg_{n}"), J::from(round4(l.avg())));
                out.insert(format!("min_{n}"), J::from(l.min));
                out.insert(format!("max_{n}"), J::from(l.max));
                out.insert(format!("cnt_{n}"), J::from(l.count));
                out.insert(format!("sum_{n}"), J::from(l.sum));
                if s.kind == Kind::SummaryAdvanced {
                    for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)]
                    {
                        out.insert(format!("{label}_{n}"), J::from(l.quantile(q)));
                    }
                }
            }
        }
    }
    out
}

/// The content type ZooKeeper's provider answers `/metrics` with.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(name: &str, kind: MetricType, metric: Metric) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    // ZooKeeper's provider uses the name as the help text too.
    f.set_help(name.to_string());
    f.set_field_type(kind);
    f.set_metric(vec![metric]);
    f
}

fn gauge(v: f64) -> Metric {
    let mut g = PGauge::default();
    g.set_value(v);
    Metric::from_gauge(g)
}

/// The Prometheus exposition of the samples, as ZooKeeper's provider
/// writes it (see the module header): no `zk_` prefix, text values left
/// out, summaries with ZooKeeper's quantiles (0.5; and 0.9, 0.99 for the
/// advanced ones).
pub fn prometheus_text(samples: &[Sample]) -> String {
    let mut families = Vec::with_capacity(samples.len());
    for s in samples {
        let n = s.name;
        match (&s.value, s.kind) {
            (Value::Text(_), _) => {}
            (Value::Int(v), Kind::Counter) => {
                let mut c = PCounter::default();
                c.set_value(*v as f64);
                let mut m = Metric::default();
                m.set_counter(c);
                families.push(family(n, MetricType::COUNTER, m));
            }
            (Value::Int(v), _) => families.push(family(n, MetricType::GAUGE, gauge(*v as f64))),
            (Value::Float(v), _) => families.push(family(n, MetricType::GAUGE, gauge(*v))),
            (Value::Summary(l), kind) => {
                let qs: &[f64] = if kind == Kind::SummaryAdvanced {
                    &[0.5, 0.9, 0.99]
                } else {
                    &[0.5]
                };
                let mut sum = PSummary::default();
                sum.set_sample_count(l.count);
                sum.set_sample_sum(l.sum as f64);
                sum.set_quantile(
                    qs.iter()
                        .map(|q| {
                            let mut x = Quantile::default();
                            x.set_quantile(*q);
                            x.set_value(l.quantile(*q) as f64);
                            x
                        })
                        .collect(),
                );
                let mut m = Metric::default();
                m.set_summary(sum);
                families.push(family(n, MetricType::SUMMARY, m));
            }
        }
    }
    let mut out = Vec::new();
    // Families built above are well formed and a Vec cannot fail to grow;
    // an error would leave the exposition empty, which a scrape shows.
    let _ = prometheus::TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        stats: &'a paddock_core::NodeStats,
        c: &'a Counters,
        sh: &'a Shared,
        role: &'static str,
    ) -> Inputs<'a> {
        Inputs {
            stats,
            role,
            ensemble: role != "standalone",
            version: "v".into(),
            uptime_ms: 5,
            role_uptime_ms: 4,
            quorum_size: 3,
            learners: (2, 1, 0),
            counters: c,
            shared: sh,
        }
    }

    #[test]
    fn leader_prints_every_key_and_others_a_subsequence() {
        let stats = paddock_core::NodeStats::default();
        let (c, sh) = (Counters::default(), Shared::default());
        let leader = collect(&inputs(&stats, &c, &sh, "leader"));
        assert_eq!(leader.len(), ZK_METRICS.len() + PADDOCK_METRICS.len());
        let alone = collect(&inputs(&stats, &c, &sh, "standalone"));
        let text = mntr_text(&alone);
        assert!(!text.contains("zk_learners") && !text.contains("zk_quorum_size"));
        assert!(
            text.starts_with("zk_version\tv\nzk_server_state\tstandalone\n"),
            "{text}"
        );
        assert!(text.contains("zk_p99_readlatency\t0\n") && text.contains("zk_sum_fsynctime\t0\n"));
    }

    #[test]
    fn role_changes_count_elections() {
        let mut c = Counters::default();
        c.observe("looking", 0, 10);
        assert_eq!(c.observe("follower", 5, 35), Some("looking"));
        assert_eq!(c.observe("follower", 9, 40), None);
        assert_eq!(
            (c.looking_count, c.election_time.count, c.election_time.max),
            (1, 1, 25)
        );
        assert_eq!(c.commits_learned, 4);
        c.observe("follower", (1 << 32) + 2, 45);
        assert_eq!(c.commits_learned, 6);
        assert_eq!(c.role_uptime_ms(50), 15);
    }

    #[test]
    fn exposition_keeps_zookeepers_names() {
        let mut stats = paddock_core::NodeStats {
            node_count: 7,
            ..Default::default()
        };
        stats.read_latency.record(3);
        let (c, sh) = (Counters::default(), Shared::default());
        let text = prometheus_text(&collect(&inputs(&stats, &c, &sh, "leader")));
        for line in [
            "# TYPE znode_count gauge\n",
            "znode_count 7\n",
            "# TYPE readlatency summary\n",
            "readlatency{quantile=\"0.99\"} 3\n",
            "readlatency_count 1\n",
            "# TYPE looking_count counter\n",
            "looking_count 0\n",
            "# TYPE fsynctime summary\n",
            "fsynctime_sum 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("_total") && !text.contains("unknown"));
    }
}
