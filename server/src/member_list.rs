//! The text of `/zookeeper/config`: the ensemble's member list, one
//! `server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]`
//! line per member in id order, then `version=<hex>`, with no final
//! newline — what ZooKeeper's `QuorumMaj.toString` writes there on every
//! member (Curator's ensemble tracker, zkCli `config` and client
//! `getConfig` read it).
//!
//! A client address appears only when the `server.N` line gave one; a bare
//! `;port` is written as `0.0.0.0:port`, as ZooKeeper binds it. A static
//! configuration has version 0. A standalone server leaves the node empty,
//! as ZooKeeper's standalone server does.

use crate::config::{ServerConfig, ServerEntry};
use std::fmt::Write;

/// The member list, or `None` when the node stays empty (standalone).
pub fn config_node_text(cfg: &ServerConfig) -> Option<String> {
    if !cfg.is_ensemble() {
        return None;
    }
    let mut out = String::new();
    for (id, s) in &cfg.servers {
        let _ = writeln!(out, "server.{id}={}", member(s));
    }
    // The configuration's version in hex; a static zoo.cfg is version 0.
    out.push_str("version=0");
    Some(out)
}

fn host(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

fn member(s: &ServerEntry) -> String {
    let mut out = format!(
        "{}:{}:{}:{}",
        host(&s.host),
        s.quorum_port,
        s.election_port,
        if s.observer {
            "observer"
        } else {
            "participant"
        }
    );
    if let Some(port) = s.client_port {
        let addr = s
            .client_address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "0.0.0.0".to_string());
        let _ = write!(out, ";{}:{port}", host(&addr));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_zookeepers_member_list() {
        let cfg = ServerConfig::from_text(
            "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
             server.2=zk2:2888:3888:participant;2182\n\
             server.3=zk3:2888:3888:observer\n",
        )
        .expect("parses");
        assert_eq!(
            config_node_text(&cfg).as_deref(),
            Some(
                "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                 server.2=zk2:2888:3888:participant;0.0.0.0:2182\n\
                 server.3=zk3:2888:3888:observer\n\
                 version=0"
            )
        );
    }

    #[test]
    fn standalone_leaves_it_empty() {
        let cfg = ServerConfig::from_text("clientPort=2181\n").expect("parses");
        assert_eq!(config_node_text(&cfg), None);
    }
}
