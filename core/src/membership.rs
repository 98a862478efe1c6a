//! The ensemble's configuration as dynamic reconfiguration sees it: its
//! members (voters and observers, each with its addresses as text), its
//! version, and the one quorum rule every decision uses.
//!
//! The text form is ZooKeeper's `QuorumMaj.toString`, what `/zookeeper/config`
//! holds on every member: one `server.N=host:quorumPort:electionPort:role
//! [;clientHost:clientPort]` line per member in id order, then
//! `version=<hex>` with no final newline. The version of a configuration
//! made by a reconfig is the zxid of the txn that made it; a static
//! configuration has version 0.
//!
//! The quorum rule over these configurations is `zab::quorum`.

use crate::ids::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// One member: its role and its addresses as ZooKeeper prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub observer: bool,
    /// `host:quorumPort:electionPort` (IPv6 hosts in brackets).
    pub addr: String,
    /// `clientHost:clientPort`, if the member has a client address.
    pub client: Option<String>,
}

/// A configuration: members by id and its version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub members: BTreeMap<ServerId, Member>,
    pub version: u64,
}

/// Why a configuration text or a reconfig request was refused (the client
/// sees BadArguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("not a server line: {0:?}")]
    Line(String),
    #[error("bad server id in {0:?}")]
    Id(String),
    #[error("wrong format of server string {0:?}")]
    Spec(String),
    #[error("each joining server needs a client address: {0:?}")]
    NoClientAddress(String),
    #[error("bad version {0:?}")]
    Version(String),
    #[error("leaving server {0:?} is not a number")]
    Leaving(String),
}

/// Members (and voters) a configuration may hold at most.
pub const MEMBERS_MAX: usize = 255;

impl Member {
    /// Parses a `server.N` value: `host:port:port[:role][;[host:]port]`.
    pub fn parse(spec: &str) -> Result<Member, MembershipError> {
        let bad = || MembershipError::Spec(spec.to_string());
        let (server, client) = match spec.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (spec.trim(), None),
        };
        let parts = split_host_ports(server).ok_or_else(bad)?;
        let (host, ports, role) = match parts.as_slice() {
            [h, q, e] => (*h, [*q, *e], None),
            [h, q, e, r] => (*h, [*q, *e], Some(*r)),
            _ => return Err(bad()),
        };
        if host.is_empty() || ports.iter().any(|p| p.parse::<u16>().is_err()) {
            return Err(bad());
        }
        let observer = match role {
            None | Some("participant") => false,
            Some("observer") => true,
            Some(_) => return Err(bad()),
        };
        let client = match client {
            None | Some("") => None,
            Some(c) => Some(client_addr(c).ok_or_else(bad)?),
        };
        Ok(Member {
            observer,
            addr: format!("{host}:{}:{}", ports[0], ports[1]),
            client,
        })
    }

    fn render(&self) -> String {
        let role = if self.observer {
            "observer"
        } else {
            "participant"
        };
        match &self.client {
            Some(c) => format!("{}:{role};{c}", self.addr),
            None => format!("{}:{role}", self.addr),
        }
    }
}

/// Splits `host:a:b[:c]` where host may be `[v6]`.
fn split_host_ports(s: &str) -> Option<Vec<&str>> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let tail = tail.strip_prefix(':')?;
        let mut v = vec![&s[..h.len() + 2]];
        v.extend(tail.split(':'));
        Some(v)
    } else {
        Some(s.split(':').collect())
    }
}

/// `port`, `host:port` or `[v6]:port`; a bare port binds every address.
fn client_addr(c: &str) -> Option<String> {
    if c.parse::<u16>().is_ok() {
        return Some(format!("0.0.0.0:{c}"));
    }
    let (h, p) = c.rsplit_once(':')?;
    p.parse::<u16>().ok()?;
    (!h.is_empty()).then(|| format!("{h}:{p}"))
}

fn parse_server_line(line: &str) -> Result<(ServerId, Member), MembershipError> {
    let (key, value) = line
        .split_once('=')
        .ok_or_else(|| MembershipError::Line(line.to_string()))?;
    let id = key
        .trim()
        .strip_prefix("server.")
        .ok_or_else(|| MembershipError::Line(line.to_string()))?;
    let id: u64 = id
        .parse()
        .map_err(|_| MembershipError::Id(line.to_string()))?;
    Ok((ServerId(id), Member::parse(value.trim())?))
}

impl Membership {
    /// Parses the text of `/zookeeper/config` (or a dynamic config file).
    /// Lines other than `server.N=` and `version=` are refused.
    pub fn parse(text: &str) -> Result<Membership, MembershipError> {
        let mut m = Membership::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("version=") {
                m.version = u64::from_str_radix(v.trim(), 16)
                    .map_err(|_| MembershipError::Version(v.to_string()))?;
                continue;
            }
            let (id, member) = parse_server_line(line)?;
            m.members.insert(id, member);
        }
        Ok(m)
    }

    /// The text ZooKeeper writes to `/zookeeper/config`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, m) in &self.members {
            out.push_str(&format!("server.{}={}\n", id.0, m.render()));
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    pub fn voters(&self) -> BTreeSet<ServerId> {
        self.members
            .iter()
            .filter(|(_, m)| !m.observer)
            .map(|(s, _)| *s)
            .collect()
    }

    pub fn observers(&self) -> BTreeSet<ServerId> {
        self.members
            .iter()
            .filter(|(_, m)| m.observer)
            .map(|(s, _)| *s)
            .collect()
    }

    /// ZooKeeper's incremental reconfig: `leaving` ids removed, then each
    /// `server.N=spec` of `joining` added or replacing N. Both are
    /// comma-separated lists, as the request carries them.
    pub fn incremental(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
    ) -> Result<Membership, MembershipError> {
        let mut next = self.clone();
        for l in leaving.into_iter().flat_map(|s| s.split(',')) {
            let l = l.trim();
            if l.is_empty() {
                continue;
            }
            let id: u64 = l
                .parse()
                .map_err(|_| MembershipError::Leaving(l.to_string()))?;
            next.members.remove(&ServerId(id));
        }
        for j in joining.into_iter().flat_map(|s| s.split(',')) {
            let j = j.trim();
            if j.is_empty() {
                continue;
            }
            let (id, member) = parse_server_line(j)?;
            if member.client.is_none() {
                return Err(MembershipError::NoClientAddress(j.to_string()));
            }
            next.members.insert(id, member);
        }
        Ok(next)
    }

    /// ZooKeeper's non-incremental reconfig: the whole member list, lines
    /// separated by commas or newlines.
    pub fn from_members(new_members: &str) -> Result<Membership, MembershipError> {
        let text = new_members.replace(',', "\n");
        let mut m = Membership::parse(&text)?;
        m.version = 0;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<ServerId> {
        v.iter().map(|&i| ServerId(i)).collect()
    }
    #[test]
    fn text_round_trips_in_zookeepers_form() {
        let text = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                    server.2=[::1]:2889:3889:observer;[::1]:2182\n\
                    server.3=zk3:2890:3890:participant\n\
                    version=10000000a";
        let m = Membership::parse(text).expect("parses");
        assert_eq!(m.version, 0x1_0000_000a);
        assert_eq!(m.voters(), ids(&[1, 3]));
        assert_eq!(m.observers(), ids(&[2]));
        assert_eq!(m.render(), text);
    }

    #[test]
    fn incremental_adds_replaces_and_removes() {
        let m = Membership::parse(
            "server.1=h:1:2:participant;h:3\nserver.2=h:4:5:participant;h:6\nversion=0",
        )
        .expect("parses");
        let next = m
            .incremental(
                Some("server.3=h:7:8;9,server.2=h:4:5:observer;h:6"),
                Some("1"),
            )
            .expect("valid");
        assert_eq!(
            next.render(),
            "server.2=h:4:5:observer;h:6\nserver.3=h:7:8:participant;0.0.0.0:9\nversion=0"
        );
        // A joiner without a client address is refused, as ZooKeeper does.
        assert!(m.incremental(Some("server.4=h:1:2"), None).is_err());
        assert!(m.incremental(None, Some("x")).is_err());
        assert!(m.incremental(Some("server.4=h:1"), None).is_err());
        assert!(m.incremental(Some("server.4=h:1:2:boss;5"), None).is_err());
    }

    #[test]
    fn non_incremental_takes_commas_or_newlines() {
        let m = Membership::from_members("server.1=h:1:2;3,server.2=h:4:5;6\nserver.3=h:7:8;9")
            .expect("valid");
        assert_eq!(m.voters(), ids(&[1, 2, 3]));
        assert!(Membership::from_members("server.1=h:1:2;3,garbage").is_err());
    }
}
