//! The four-letter words (`ruok`, `srvr`, `stat`, `mntr`, ...), answered in
//! ZooKeeper's text formats so that its scripts and monitoring keep working.
//!
//! A word that ZooKeeper knows but the whitelist does not enable is
//! answered with ZooKeeper's refusal sentence; enabling follows
//! `4lw.commands.whitelist` exactly (see `config::whitelist`).

use crate::config::ServerConfig;
use crate::disk;
use paddock_core::node::ConnInfo;
use paddock_core::{ConnId, Node, NodeStats};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::SocketAddr;

/// What `srvr` and `mntr` print as the version.
pub fn version() -> String {
    format!(
        "3.9.0-paddock-{}, built on unknown",
        env!("CARGO_PKG_VERSION")
    )
}

/// Everything a word may look at.
pub struct View<'a> {
    pub node: &'a Node,
    pub config: &'a ServerConfig,
    pub data_dir: &'a std::path::Path,
    pub log_dir: &'a std::path::Path,
    /// Client address with port, by connection (the core knows only IPs).
    pub peers: &'a HashMap<ConnId, SocketAddr>,
    pub uptime_ms: u64,
}

/// Whether the word runs and the text to answer.
pub fn answer(word: &str, view: &View<'_>) -> String {
    if !view.config.four_letter_whitelist.contains(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    match word {
        "ruok" => "imok".into(),
        // ZooKeeper's answers: "null" while no server (read-write or
        // read-only) is running.
        "isro" if view.node.read_only() => "ro".into(),
        "isro" if view.node.leader().is_none() => "null".into(),
        "isro" => "rw".into(),
        "srvr" => srvr(view, false),
        "stat" => srvr(view, true),
        "conf" => conf(view),
        "cons" => {
            let mut s = cons(view, false);
            s.push('\n');
            s
        }
        "envi" => envi(),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            disk::dir_size(view.data_dir),
            disk::dir_size(view.log_dir)
        ),
        "wchs" => wchs(view),
        "wchc" => wchc(view),
        "wchp" => wchp(view),
        "dump" => dump(view),
        "gtmk" | "stmk" => "0\n".into(),
        "hash" => format!("0x{:x}: {}\n", view.node.last_zxid().0, view.node.digest()),
        // crst and srst change state: the driver handles them.
        other => format!("{other} is not supported\n"),
    }
}

/// Java prints doubles with at least one decimal (`0.0`, `2.5`).
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn avg_latency(s: &NodeStats) -> f64 {
    if s.latency_count == 0 {
        0.0
    } else {
        s.latency_total_ms as f64 / s.latency_count as f64
    }
}

fn cons(view: &View<'_>, brief: bool) -> String {
    let mut out = String::new();
    for c in view.node.connections() {
        out.push_str(&conn_line(view, &c, brief));
        out.push('\n');
    }
    out
}

fn conn_line(view: &View<'_>, c: &ConnInfo, brief: bool) -> String {
    let addr = view
        .peers
        .get(&c.conn)
        .map(|a| a.to_string())
        .unwrap_or_else(|| c.addr.clone());
    let mut s = format!(
        " /{addr}[1](queued={},recved={},sent={}",
        c.queued, c.received, c.sent
    );
    if let (false, Some(sid)) = (brief, c.session) {
        let _ = write!(
            s,
            ",sid=0x{:x},to={},lzxid=0x{:x}",
            sid.0 as u64, c.timeout_ms, c.last_zxid.0
        );
    }
    s.push(')');
    s
}

fn srvr(view: &View<'_>, with_clients: bool) -> String {
    if view.node.leader().is_none() && !view.node.read_only() {
        // ZooKeeper's answer while an election or a sync is under way.
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    let s = view.node.stats();
    let mut out = format!("Zookeeper version: {}\n", version());
    if with_clients {
        out.push_str("Clients:\n");
        out.push_str(&cons(view, true));
        out.push('\n');
    }
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        s.latency_min_ms,
        java_double(avg_latency(&s)),
        s.latency_max_ms,
        s.packets_received,
        s.packets_sent,
        s.connections,
        s.outstanding_requests,
        s.last_zxid.0,
        view.node.state_name(),
        s.node_count,
    );
    out
}

fn conf(view: &View<'_>) -> String {
    let c = view.config;
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = format!(
        "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
        c.client_port,
        abs(view.data_dir).display(),
        disk::dir_size(view.data_dir),
        abs(view.log_dir).display(),
        disk::dir_size(view.log_dir),
        c.tick_time_ms,
        c.max_client_cnxns,
        c.min_session_timeout(),
        c.max_session_timeout(),
        c.my_id.unwrap_or(0),
    );
    // The settings taken as system properties, in force (ZooKeeper's conf
    // has no place for them; its scripts read key=value lines).
    for (k, v) in &c.system_properties {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

fn envi() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut out = String::from("Environment:\n");
    let _ = writeln!(out, "zookeeper.version={}", version());
    let _ = writeln!(out, "host.name={}", read("/proc/sys/kernel/hostname"));
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(out, "os.version={}", read("/proc/sys/kernel/osrelease"));
    let _ = writeln!(out, "user.name={}", env("USER"));
    let _ = writeln!(out, "user.home={}", env("HOME"));
    let _ = writeln!(out, "user.dir={cwd}");
    let _ = writeln!(out, "process.id={}", std::process::id());
    out
}

fn wchs(view: &View<'_>) -> String {
    let by_session = view.node.watches_by_session();
    let paths: std::collections::BTreeSet<&String> =
        by_session.iter().flat_map(|(_, p)| p.iter()).collect();
    let total: usize = by_session.iter().map(|(_, p)| p.len()).sum();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        by_session.len(),
        paths.len(),
        total
    )
}

fn wchc(view: &View<'_>) -> String {
    let mut out = String::new();
    for (sid, paths) in view.node.watches_by_session() {
        let _ = writeln!(out, "0x{:x}", sid.0 as u64);
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

fn wchp(view: &View<'_>) -> String {
    let mut out = String::new();
    for (path, sids) in view.node.watches_by_path() {
        let _ = writeln!(out, "{path}");
        for sid in sids {
            let _ = writeln!(out, "\t0x{:x}", sid.0 as u64);
        }
    }
    out.push('\n');
    out
}

fn dump(view: &View<'_>) -> String {
    let sessions = view.node.sessions();
    let mut by_timeout: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for (sid, to) in &sessions {
        by_timeout.entry(*to).or_default().push(*sid);
    }
    let mut out = String::from("SessionTracker dump:\n");
    let _ = writeln!(
        out,
        "Session Sets ({})/({}):",
        by_timeout.len(),
        sessions.len()
    );
    for (to, sids) in &by_timeout {
        let _ = writeln!(out, "{} expire within {to} ms:", sids.len());
        for sid in sids {
            let _ = writeln!(out, "\t0x{:x}", sid.0 as u64);
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let eph = view.node.ephemerals_by_session();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", eph.len());
    for (sid, paths) in eph {
        let _ = writeln!(out, "0x{:x}:", sid.0 as u64);
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    out.push_str(&cons(view, false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.5), "2.5");
    }
}
