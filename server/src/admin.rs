//! ZooKeeper's AdminServer commands as JSON, with ZooKeeper 3.8's command
//! names, aliases and field names (`GET <commandURL>/<name>`), so that
//! scripts and probes written against its AdminServer keep working. Every
//! answer carries `command` and `error` as ZooKeeper's do; an unknown name
//! answers `error: "Unknown command: <name>"`.
//!
//! Only read-only commands and the statistics resets are offered. The
//! state-changing `snapshot` and `restore` of ZooKeeper 3.9 require an
//! authenticated caller there; this AdminServer has no authentication, so
//! they are refused with 403 and a sentence saying why.
//!
//! Fields with a JVM meaning only (`java.*` properties, Jetty and TLS
//! details) are not invented: `environment` and `system_properties` list
//! this process's own facts, and the differential test names each left-out
//! key with its reason.

use crate::disk;
use crate::fourlw::{version, View};
use crate::metrics::{self, Sample};
use paddock_core::ServerRole;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// (name, aliases) in ZooKeeper's `/commands` order.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("observer_connection_stat_reset", &["orst"]),
    ("observers", &["obsr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("system_properties", &["sysp"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// Commands that change state and need an authenticated caller.
const REFUSED: &[&str] = &["snapshot", "restore", "set_trace_mask", "stmk"];

/// The primary name of a command or alias.
pub fn primary(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(n, aliases)| *n == name || aliases.contains(&name))
        .map(|(n, _)| *n)
}

/// What the driver must do besides answering.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    ResetStats,
}

/// The `/commands` page: one link per command, as ZooKeeper lists them.
pub fn index(command_url: &str) -> String {
    let mut out = String::new();
    for (n, _) in COMMANDS {
        out.push_str(&format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n"));
    }
    out
}

/// Runs command `name`: (HTTP status, JSON, effect). `monitor` supplies
/// the metric samples (collected only when asked).
pub fn command(
    name: &str,
    view: &View<'_>,
    monitor: &dyn Fn() -> Vec<Sample>,
) -> (u16, Value, Effect) {
    if REFUSED.contains(&name) {
        let mut m = Map::new();
        m.insert("command".into(), json!(name));
        m.insert(
            "error".into(),
            json!(format!(
                "{name} changes the server's state and needs an authenticated caller; this AdminServer has no authentication, so it is not offered"
            )),
        );
        return (403, Value::Object(m), Effect::None);
    }
    let Some(primary) = primary(name) else {
        return (
            200,
            json!({"command": name, "error": format!("Unknown command: {name}")}),
            Effect::None,
        );
    };
    let mut effect = Effect::None;
    let mut m = match primary {
        "configuration" => configuration(view),
        "connection_stat_reset" | "stat_reset" => {
            effect = Effect::ResetStats;
            Map::new()
        }
        "observer_connection_stat_reset" | "ruok" => Map::new(),
        "connections" => {
            let mut m = Map::new();
            m.insert("connections".into(), connections(view, true));
            m.insert("secure_connections".into(), json!([]));
            m
        }
        "dirs" => obj(json!({
            "datadir_size": disk::dir_size(view.data_dir),
            "logdir_size": disk::dir_size(view.log_dir),
        })),
        "dump" => dump(view),
        "environment" => environment(view),
        "get_trace_mask" => obj(json!({"tracemask": 0})),
        "hash" => obj(json!({"digests": [
            {"zxid": view.node.last_zxid().0, "digest": view.node.digest()}
        ]})),
        "initial_configuration" => {
            obj(json!({"initial_configuration": initial_configuration(view)}))
        }
        "is_read_only" => obj(json!({"read_only": view.node.read_only()})),
        "last_snapshot" => last_snapshot(view),
        "leader" => leader(view),
        "monitor" => {
            let mut m = metrics::monitor_json(&monitor());
            let quotas = view.node.state().tree.quota_metrics();
            for (k, v) in metrics::quota_pairs(&quotas) {
                m.insert(k, json!(v));
            }
            m
        }
        "observers" => observers(view),
        "server_stats" => server_stats(view, false),
        "stats" => server_stats(view, true),
        "system_properties" => system_properties(view),
        "voting_view" => obj(json!({"current_config": voting_view(view)})),
        "watch_summary" => watch_summary(view),
        "watches" => {
            let mut w = Map::new();
            for (sid, paths) in view.node.watches_by_session() {
                w.insert(sid.0.to_string(), json!(paths));
            }
            obj(json!({"session_id_to_watched_paths": w}))
        }
        "watches_by_path" => {
            let mut w = Map::new();
            for (path, sids) in view.node.watches_by_path() {
                w.insert(path, json!(sids.iter().map(|s| s.0).collect::<Vec<_>>()));
            }
            obj(json!({"path_to_session_ids": w}))
        }
        "zabstate" => zabstate(view),
        other => unreachable!("command {other} listed without an answer"),
    };
    m.insert("command".into(), json!(primary));
    m.insert("error".into(), Value::Null);
    (200, Value::Object(m), effect)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn abs(p: &std::path::Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn configuration(view: &View<'_>) -> Map<String, Value> {
    let c = view.config;
    obj(json!({
        "client_port": c.effective_client_port(),
        "data_dir": abs(view.data_dir),
        "data_log_dir": abs(view.log_dir),
        "tick_time": c.tick_time_ms,
        "max_client_cnxns": c.max_client_cnxns,
        "min_session_timeout": c.min_session_timeout(),
        "max_session_timeout": c.max_session_timeout(),
        "server_id": c.my_id.unwrap_or(0),
        "client_port_listen_backlog": -1,
    }))
}

fn connections(view: &View<'_>, full: bool) -> Value {
    let mut out = Vec::new();
    for c in view.node.connections() {
        let addr = view
            .peers
            .get(&c.conn)
            .map(|a| a.to_string())
            .unwrap_or_else(|| c.addr.clone());
        let mut m = obj(json!({
            "remote_socket_address": addr,
            "interest_ops": 1,
            "outstanding_requests": c.queued,
            "packets_received": c.received,
            "packets_sent": c.sent,
        }));
        if full {
            // Per-connection latencies are not kept; ZooKeeper's names
            // with the figures Paddock has.
            m.extend(obj(json!({
                "session_id": c.session.map(|s| s.0).unwrap_or(0),
                "last_operation": "NA",
                "established": 0,
                "session_timeout": c.timeout_ms,
                "last_cxid": -1,
                "last_zxid": c.last_zxid.0 as i64,
                "last_response_time": 0,
                "last_latency": 0,
                "min_latency": 0,
                "avg_latency": 0,
                "max_latency": 0,
            })));
        }
        out.push(Value::Object(m));
    }
    Value::Array(out)
}

fn dump(view: &View<'_>) -> Map<String, Value> {
    let mut expiry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (sid, timeout) in view.node.sessions() {
        expiry.entry(timeout.to_string()).or_default().push(sid.0);
    }
    let mut eph = Map::new();
    for (sid, paths) in view.node.ephemerals_by_session() {
        eph.insert(sid.0.to_string(), json!(paths));
    }
    obj(json!({
        "expiry_time_to_session_ids": expiry,
        "session_id_to_ephemeral_paths": eph,
    }))
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn environment(_view: &View<'_>) -> Map<String, Value> {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    obj(json!({
        "zookeeper.version": version(),
        "host.name": read_trim("/proc/sys/kernel/hostname"),
        "os.name": std::env::consts::OS,
        "os.arch": std::env::consts::ARCH,
        "os.version": read_trim("/proc/sys/kernel/osrelease"),
        "user.name": env("USER"),
        "user.home": env("HOME"),
        "user.dir": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "process.id": std::process::id(),
    }))
}

fn initial_configuration(view: &View<'_>) -> Value {
    match &view.config.source {
        Some(path) => std::fs::read_to_string(path)
            .map(Value::from)
            .unwrap_or(Value::Null),
        None => Value::Null,
    }
}

fn last_snapshot(view: &View<'_>) -> Map<String, Value> {
    let mut best: Option<(u64, u64)> = None;
    if let Ok(dir) = std::fs::read_dir(view.data_dir) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(hex) = name.strip_prefix("snapshot.") else {
                continue;
            };
            let Ok(zxid) = u64::from_str_radix(hex, 16) else {
                continue;
            };
            let secs = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if best.is_none_or(|(z, _)| zxid >= z) {
                best = Some((zxid, secs));
            }
        }
    }
    let (zxid, secs) = best.unwrap_or((0, 0));
    obj(json!({"zxid": format!("{zxid:x}"), "timestamp": secs}))
}

fn leader_host(view: &View<'_>, id: u64) -> String {
    view.config
        .servers
        .get(&id)
        .map(|s| s.host.clone())
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn leader(view: &View<'_>) -> Map<String, Value> {
    let me = view.config.my_id.unwrap_or(0);
    match view.node.leader() {
        Some(l) => obj(json!({
            "is_leader": l.0 == me || view.node.role() == ServerRole::Standalone,
            "leader_id": l.0,
            "leader_ip": leader_host(view, l.0),
        })),
        None => obj(json!({"is_leader": false, "leader_id": -1, "leader_ip": ""})),
    }
}

fn observers(view: &View<'_>) -> Map<String, Value> {
    let list: Vec<Value> = view
        .config
        .servers
        .iter()
        .filter(|(_, s)| s.observer)
        .map(|(id, _)| json!({"sid": id}))
        .collect();
    obj(json!({"synced_observers": view.node.observer_counts().1, "observers": list}))
}

fn server_stats(view: &View<'_>, with_connections: bool) -> Map<String, Value> {
    let s = view.node.stats();
    let avg = if s.latency_count == 0 {
        0.0
    } else {
        ((s.latency_total_ms as f64 / s.latency_count as f64) * 10_000.0).round() / 10_000.0
    };
    let buffers = json!({"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1});
    let mut m = obj(json!({
        "version": version(),
        "read_only": view.node.read_only(),
        "server_stats": {
            "packets_sent": s.packets_sent,
            "packets_received": s.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": buffers,
            "provider_null": false,
            "server_state": view.node.state_name(),
            "outstanding_requests": s.outstanding_requests,
            "min_latency": s.latency_min_ms,
            "avg_latency": avg,
            "max_latency": s.latency_max_ms,
            "data_dir_size": disk::dir_size(view.data_dir),
            "log_dir_size": disk::dir_size(view.log_dir),
            "last_processed_zxid": s.last_zxid.0,
            "num_alive_client_connections": s.connections,
            "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
            "uptime": view.uptime_ms,
        },
        "client_response": buffers,
        "node_count": s.node_count,
    }));
    if view.node.role() == ServerRole::Leader {
        m.insert("proposal_stats".into(), buffers);
    }
    if with_connections {
        m.insert("connections".into(), connections(view, false));
        m.insert("secure_connections".into(), json!([]));
    }
    m
}

fn system_properties(view: &View<'_>) -> Map<String, Value> {
    let mut m = environment(view);
    m.insert("file.separator".into(), json!("/"));
    m.insert("line.separator".into(), json!("\n"));
    m.insert("path.separator".into(), json!(":"));
    for (k, v) in &view.config.system_properties {
        m.insert(k.clone(), json!(v));
    }
    m
}

fn voting_view(view: &View<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    for (id, s) in &view.config.servers {
        let client = s.client_port.map(|p| {
            let a = s
                .client_address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "0.0.0.0".into());
            format!("{a}:{p}")
        });
        m.insert(
            id.to_string(),
            json!({
                "server_addresses": [format!("{}:{}", s.host, s.quorum_port)],
                "election_addresses": [format!("{}:{}", s.host, s.election_port)],
                "client_address": client,
                "learner_type": if s.observer { "observer" } else { "participant" },
            }),
        );
    }
    m
}

fn watch_summary(view: &View<'_>) -> Map<String, Value> {
    let by_session = view.node.watches_by_session();
    let paths: std::collections::BTreeSet<&String> =
        by_session.iter().flat_map(|(_, p)| p.iter()).collect();
    let total: usize = by_session.iter().map(|(_, p)| p.len()).sum();
    obj(json!({
        "num_connections": by_session.len(),
        "num_paths": paths.len(),
        "num_total_watches": total,
    }))
}

fn address(host: &str, port: u16) -> Value {
    let a = format!("{host}:{port}");
    json!({
        "empty": false,
        "all_addresses": [a],
        "all_reachable_addresses": [a],
        "one": a,
        "reachable_address": a,
        "wildcard_addresses": [format!("0.0.0.0:{port}")],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [a],
        "reachable_or_one": a,
    })
}

fn zabstate(view: &View<'_>) -> Map<String, Value> {
    let me = view.config.my_id.unwrap_or(0);
    let role = view.node.role();
    let zxid = view.node.last_zxid().0;
    let mut m = obj(json!({
        "myid": me,
        "is_leader": role.is_leading(),
    }));
    if let Some(s) = view.config.servers.get(&me) {
        m.insert("quorum_address".into(), address(&s.host, s.quorum_port));
        m.insert("election_address".into(), address(&s.host, s.election_port));
        m.insert(
            "client_address".into(),
            json!(format!(
                "{}:{}",
                s.client_address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                view.config.effective_client_port()
            )),
        );
        m.insert("voting".into(), json!(!s.observer));
    }
    m.insert("last_zxid".into(), json!(format!("{zxid:#x}")));
    m.insert("zab_epoch".into(), json!(zxid >> 32));
    m.insert("zab_counter".into(), json!(zxid & 0xffff_ffff));
    let state = if view.node.leader().is_some() {
        "broadcast"
    } else {
        "election"
    };
    m.insert("zabstate".into(), json!(state));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_name_their_command() {
        assert_eq!(primary("mntr"), Some("monitor"));
        assert_eq!(primary("srvr"), Some("server_stats"));
        assert_eq!(primary("stat"), Some("stats"));
        assert_eq!(primary("voting_view"), Some("voting_view"));
        assert_eq!(primary("nope"), None);
        assert!(index("/commands").contains("<a href=\"/commands/zabstate\">zabstate</a>"));
    }
}
