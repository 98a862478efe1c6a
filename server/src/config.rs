//! zoo.cfg: ZooKeeper's `key=value` properties file, read the way
//! `QuorumPeerConfig` reads it, into [`ServerConfig`].
//!
//! Keys ZooKeeper takes as system properties are accepted both bare and
//! with the `zookeeper.` prefix (`forceSync`, `snapCount`, `skipACL`,
//! `extendedTypesEnabled`, `DigestAuthenticationProvider.superDigest`,
//! `4lw.commands.whitelist`). Unknown keys are warned about, never fatal.
//! Replication keys (`server.N`, `initLimit`, `syncLimit`, `myid`) are
//! parsed and kept; standalone serving ignores them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Every four-letter word ZooKeeper knows; `*` in the whitelist means these.
pub const ALL_FOUR_LETTER_WORDS: &[&str] = paddock_net::framing::FOUR_LETTER_WORDS;

/// Keys ZooKeeper knows that change nothing here (admin server, metrics,
/// TLS, tuning of its own thread pools): noted, not warned about.
const KNOWN_IGNORED: &[&str] = &[
    "standaloneEnabled",
    "reconfigEnabled",
    "audit.enable",
    "electionAlg",
    "peerType",
    "quorumListenOnAllIPs",
    "preAllocSize",
    "syncEnabled",
    "globalOutstandingLimit",
    "leaderServes",
    "cnxTimeout",
    "clientPortListenBacklog",
    "dynamicConfigFile",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "serverCnxnFactory",
];

/// Why zoo.cfg could not be used.
#[derive(Debug)]
pub enum ConfigError {
    Io {
        path: PathBuf,
        err: std::io::Error,
    },
    Value {
        key: String,
        value: String,
        why: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Io { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            ConfigError::Value { key, value, why } => write!(f, "{key}={value}: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One `server.N=host:peerPort:electionPort[:role][;[clientAddr:]clientPort]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub spec: String,
    pub observer: bool,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    /// The client port given after `;`, if any.
    pub client_port: Option<u16>,
    pub client_address: Option<IpAddr>,
}

impl ServerEntry {
    pub fn parse(key: &str, spec: &str) -> Result<ServerEntry, ConfigError> {
        let bad = |why: &str| ConfigError::Value {
            key: key.to_string(),
            value: spec.to_string(),
            why: why.to_string(),
        };
        let (peer_part, client_part) = match spec.split_once(';') {
            Some((a, b)) => (a.trim(), Some(b.trim())),
            None => (spec.trim(), None),
        };
        let parts: Vec<&str> = peer_part.split(':').collect();
        if parts.len() < 3 || parts.len() > 4 {
            return Err(bad(
                "expected host:quorumPort:electionPort[:participant|:observer]",
            ));
        }
        let observer = match parts.get(3) {
            None | Some(&"participant") => false,
            Some(&"observer") => true,
            Some(_) => return Err(bad("the role must be participant or observer")),
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad("ports must be numbers from 1 to 65535"))
        };
        let (client_address, client_port) = match client_part {
            None | Some("") => (None, None),
            Some(c) => match c.rsplit_once(':') {
                Some((addr, p)) => (
                    Some(addr.parse().map_err(|_| bad("bad client address"))?),
                    Some(port(p)?),
                ),
                None => (None, Some(port(c)?)),
            },
        };
        Ok(ServerEntry {
            spec: spec.to_string(),
            observer,
            host: parts[0].to_string(),
            quorum_port: port(parts[1])?,
            election_port: port(parts[2])?,
            client_port,
            client_address,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    /// `dataLogDir`; the logs go to `data_dir` when absent.
    pub data_log_dir: Option<PathBuf>,
    pub client_port: u16,
    /// `clientPortAddress`; all interfaces when absent, as ZooKeeper does.
    pub client_port_address: Option<IpAddr>,
    pub max_client_cnxns: u32,
    /// `maxCnxns` / `zookeeper.maxCnxns`: client connections in all (per
    /// client port), 0 = no limit.
    pub max_cnxns: u32,
    pub min_session_timeout_ms: Option<u32>,
    pub max_session_timeout_ms: Option<u32>,
    pub jute_max_buffer: u32,
    /// Enabled four-letter words (always holds `srvr`, as ZooKeeper's).
    pub four_letter_whitelist: BTreeSet<String>,
    pub snap_retain_count: u32,
    /// Hours between purges; 0 disables autopurge (ZooKeeper's default).
    pub purge_interval_hours: u32,
    pub force_sync: bool,
    pub snap_count: u64,
    pub super_digest: Option<String>,
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    /// `readonlymode.enabled` (a Java system property in ZooKeeper).
    pub read_only_mode: bool,
    /// `enforceQuota` / `zookeeper.enforceQuota`.
    pub enforce_quota: bool,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub servers: BTreeMap<u64, ServerEntry>,
    pub my_id: Option<u64>,
    /// `peerType=observer`.
    pub peer_type_observer: bool,
    /// `quorumListenOnAllIPs`: bind the peer ports on every interface.
    pub quorum_listen_on_all_ips: bool,
    /// `znode.container.checkIntervalMs` and `znode.container.maxPerMinute`.
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u64,
    /// `zookeeper.log.dir`, `.file`, `.format`, `.maxFiles`.
    pub log: crate::logging::LogSettings,
    /// The zoo.cfg this came from, if any.
    pub source: Option<PathBuf>,
    /// ZooKeeper settings given as Java system properties, in force
    /// (`system_properties` shows them).
    pub system_properties: BTreeMap<String, String>,
    /// The AdminServer and `/metrics` (see `opsconfig`).
    pub ops: crate::opsconfig::OpsConfig,
    /// TLS and authentication providers (`crate::security`).
    pub security: crate::security::SecurityConfig,
    /// `migration.followZooKeeper`: quorum addresses (host:port) of a
    /// ZooKeeper ensemble to follow as an observer (`crate::follow`).
    pub follow_zookeeper: Vec<String>,
    /// Keys that were not understood, for the startup warning.
    pub unknown_keys: Vec<String>,
    /// Keys understood but without effect here.
    pub ignored_keys: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            tick_time_ms: 2000,
            data_dir: PathBuf::from("paddock-data"),
            data_log_dir: None,
            client_port: 2181,
            client_port_address: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            jute_max_buffer: 0xfffff,
            four_letter_whitelist: whitelist(None),
            snap_retain_count: 3,
            purge_interval_hours: 0,
            force_sync: true,
            snap_count: 100_000,
            super_digest: None,
            extended_types_enabled: false,
            skip_acl: false,
            read_only_mode: false,
            enforce_quota: false,
            init_limit: 10,
            sync_limit: 5,
            servers: BTreeMap::new(),
            my_id: None,
            peer_type_observer: false,
            quorum_listen_on_all_ips: false,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            log: crate::logging::LogSettings::default(),
            source: None,
            system_properties: BTreeMap::new(),
            ops: crate::opsconfig::OpsConfig::default(),
            security: Default::default(),
            follow_zookeeper: Vec::new(),
            unknown_keys: Vec::new(),
            ignored_keys: Vec::new(),
        }
    }
}

/// ZooKeeper's whitelist rule: comma-separated words, `*` for all, and
/// `srvr` always on (its scripts depend on it).
pub fn whitelist(spec: Option<&str>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    if let Some(spec) = spec {
        for w in spec.split(',').map(str::trim) {
            if w == "*" {
                set.extend(ALL_FOUR_LETTER_WORDS.iter().map(|s| s.to_string()));
                break;
            }
            if !w.is_empty() {
                set.insert(w.to_string());
            }
        }
    }
    set.insert("srvr".to_string());
    set
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse::<T>().map_err(|e| ConfigError::Value {
        key: key.into(),
        value: value.into(),
        why: e.to_string(),
    })
}

/// Splits a Java properties file into (key, value) pairs: `#`/`!`
/// comments, `=` or `:` separators, surrounding blanks trimmed.
pub fn properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let cut = line.find(['=', ':']).unwrap_or(line.len());
        let key = line[..cut].trim();
        let value = line.get(cut + 1..).unwrap_or("").trim();
        out.push((key.to_string(), value.to_string()));
    }
    out
}

impl ServerConfig {
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io {
            path: path.to_path_buf(),
            err,
        })?;
        // `-D` words of SERVER_JVMFLAGS/JVMFLAGS first: zoo.cfg keys win.
        let mut pairs = crate::sysprops::known(crate::sysprops::jvm_flag_properties(|k| {
            std::env::var(k).ok()
        }));
        pairs.extend(properties(&text));
        let mut cfg = ServerConfig::from_pairs(pairs)?;
        cfg.source = Some(path.to_path_buf());
        if !cfg.servers.is_empty() || !cfg.follow_zookeeper.is_empty() {
            let myid = cfg.data_dir.join("myid");
            if let Ok(text) = std::fs::read_to_string(&myid) {
                cfg.my_id = Some(parse_num("myid", text.trim())?);
            }
        }
        Ok(cfg)
    }

    #[cfg(test)]
    pub fn from_text(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_pairs(properties(text))
    }

    /// The configuration from `key=value` pairs in order (a later pair for
    /// the same key wins).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<ServerConfig, ConfigError> {
        let mut cfg = ServerConfig::default();
        let mut whitelist_spec = None;
        for (key, value) in pairs {
            let bare = key.strip_prefix("zookeeper.").unwrap_or(&key);
            let v = value.as_str();
            if let Some((name, _)) = crate::sysprops::lookup(bare) {
                cfg.system_properties
                    .insert(name.to_string(), value.clone());
            }
            match bare {
                "znode.container.checkIntervalMs" => {
                    cfg.container_check_interval_ms = parse_positive(&key, v)?
                }
                "znode.container.maxPerMinute" => {
                    cfg.container_max_per_minute = parse_positive(&key, v)?
                }
                k if cfg.log.set(k, v).map_err(|why| ConfigError::Value {
                    key: key.clone(),
                    value: value.clone(),
                    why,
                })? => {}
                "tickTime" => cfg.tick_time_ms = parse_num(&key, v)?,
                "dataDir" => cfg.data_dir = PathBuf::from(v),
                "dataLogDir" => cfg.data_log_dir = Some(PathBuf::from(v)),
                "clientPort" => cfg.client_port = parse_num(&key, v)?,
                "clientPortAddress" => cfg.client_port_address = Some(parse_num(&key, v)?),
                "maxClientCnxns" => cfg.max_client_cnxns = parse_num(&key, v)?,
                // ZooKeeper takes a negative value as 0: no limit.
                "maxCnxns" => {
                    cfg.max_cnxns = parse_num::<i64>(&key, v)?.clamp(0, u32::MAX as i64) as u32
                }
                "minSessionTimeout" => cfg.min_session_timeout_ms = Some(parse_num(&key, v)?),
                "maxSessionTimeout" => cfg.max_session_timeout_ms = Some(parse_num(&key, v)?),
                "jute.maxbuffer" => cfg.jute_max_buffer = parse_jute_max_buffer(&key, v)?,
                "4lw.commands.whitelist" => whitelist_spec = Some(value.clone()),
                "autopurge.snapRetainCount" => cfg.snap_retain_count = parse_num(&key, v)?,
                "autopurge.purgeInterval" => cfg.purge_interval_hours = parse_num(&key, v)?,
                // ZooKeeper: anything but "no" keeps fsync on.
                "forceSync" => cfg.force_sync = v != "no",
                "snapCount" => cfg.snap_count = parse_num(&key, v)?,
                "DigestAuthenticationProvider.superDigest" => {
                    cfg.super_digest = Some(value.clone())
                }
                "extendedTypesEnabled" => {
                    cfg.extended_types_enabled = v.eq_ignore_ascii_case("true")
                }
                "skipACL" => cfg.skip_acl = v == "yes" || v.eq_ignore_ascii_case("true"),
                "readonlymode.enabled" => cfg.read_only_mode = v.eq_ignore_ascii_case("true"),
                "enforceQuota" => cfg.enforce_quota = v.eq_ignore_ascii_case("true"),
                "initLimit" => cfg.init_limit = parse_num(&key, v)?,
                "syncLimit" => cfg.sync_limit = parse_num(&key, v)?,
                "myid" => cfg.my_id = Some(parse_num(&key, v)?),
                k if k.starts_with("server.") => {
                    let id: u64 = parse_num(&key, &k["server.".len()..])?;
                    let entry = ServerEntry::parse(&key, v)?;
                    if cfg.servers.insert(id, entry).is_some() {
                        return Err(ConfigError::Value {
                            key: key.clone(),
                            value: value.clone(),
                            why: format!("server.{id} is given twice"),
                        });
                    }
                }
                "peerType" => cfg.peer_type_observer = v == "observer",
                "migration.followZooKeeper" => {
                    cfg.follow_zookeeper = parse_follow_list(&key, v)?;
                }
                "quorumListenOnAllIPs" => {
                    cfg.quorum_listen_on_all_ips = v.eq_ignore_ascii_case("true")
                }
                k if cfg.ops.set(k, v)? => {}
                k if cfg.security.set(k, v)? => {}
                k if matches!(
                    crate::sysprops::lookup(k),
                    Some((_, crate::sysprops::Treatment::NoEffect(_)))
                ) =>
                {
                    cfg.ignored_keys.push(key.clone())
                }
                k if KNOWN_IGNORED.contains(&k)
                    || k.starts_with("metricsProvider.")
                    || k.starts_with("ssl.") =>
                {
                    cfg.ignored_keys.push(key.clone())
                }
                _ => cfg.unknown_keys.push(key.clone()),
            }
        }
        cfg.four_letter_whitelist = whitelist(whitelist_spec.as_deref());
        if cfg.snap_retain_count < 3 {
            // ZooKeeper refuses fewer than 3 and falls back to 3.
            cfg.snap_retain_count = 3;
        }
        if cfg.tick_time_ms == 0 {
            return Err(ConfigError::Value {
                key: "tickTime".into(),
                value: "0".into(),
                why: "must be positive".into(),
            });
        }
        Ok(cfg)
    }

    /// Where the logs live: `dataLogDir`, else `dataDir`.
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    pub fn min_session_timeout(&self) -> u32 {
        self.min_session_timeout_ms.unwrap_or(2 * self.tick_time_ms)
    }

    pub fn max_session_timeout(&self) -> u32 {
        self.max_session_timeout_ms
            .unwrap_or(20 * self.tick_time_ms)
    }

    /// Whether this is a member of an ensemble (more than one server.N, or
    /// observers).
    pub fn is_ensemble(&self) -> bool {
        self.servers.len() > 1 || self.servers.values().any(|s| s.observer)
    }

    /// Checks an ensemble configuration at start: this server's id, its
    /// role, and that no two members share a peer port.
    pub fn validate_ensemble(&self) -> Result<u64, ConfigError> {
        let err = |key: &str, value: String, why: String| ConfigError::Value {
            key: key.to_string(),
            value,
            why,
        };
        let Some(id) = self.my_id else {
            return Err(err(
                "myid",
                format!("{}", self.data_dir.join("myid").display()),
                "an ensemble member needs its id in dataDir/myid".into(),
            ));
        };
        let Some(me) = self.servers.get(&id) else {
            let ids: Vec<String> = self.servers.keys().map(|k| k.to_string()).collect();
            return Err(err(
                "myid",
                id.to_string(),
                format!(
                    "no server.{id} line; the server.N lines name {}",
                    ids.join(", ")
                ),
            ));
        };
        if self.peer_type_observer && !me.observer {
            return Err(err(
                &format!("server.{id}"),
                me.spec.clone(),
                "peerType=observer but this server's line does not end in :observer".into(),
            ));
        }
        if !self.servers.values().any(|s| !s.observer) {
            return Err(err(
                "server.N",
                String::new(),
                "at least one member must be a participant".into(),
            ));
        }
        let mut seen = BTreeMap::new();
        for (n, s) in &self.servers {
            for port in [s.quorum_port, s.election_port] {
                if let Some(other) = seen.insert((s.host.clone(), port), *n) {
                    return Err(err(
                        &format!("server.{n}"),
                        s.spec.clone(),
                        format!("{}:{port} is also used by server.{other}", s.host),
                    ));
                }
            }
        }
        Ok(id)
    }

    /// The port clients use: this server's `;clientPort` or `clientPort`.
    pub fn effective_client_port(&self) -> u16 {
        self.my_id
            .and_then(|id| self.servers.get(&id))
            .and_then(|s| s.client_port)
            .unwrap_or(self.client_port)
    }

    /// A digest of the member list, compared in the peer handshake.
    pub fn membership_digest(&self) -> u64 {
        let mut text = String::new();
        for (n, s) in &self.servers {
            text.push_str(&format!(
                "{n}={}:{}:{}:{};",
                s.host, s.quorum_port, s.election_port, s.observer
            ));
        }
        // FNV-1a: stable across builds and machines, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    /// The core's configuration.
    pub fn core_config(&self, seed: u64) -> paddock_core::Config {
        let mut c = if self.is_ensemble() {
            let voters: Vec<u64> = self
                .servers
                .iter()
                .filter(|(_, s)| !s.observer)
                .map(|(n, _)| *n)
                .collect();
            let observers: Vec<u64> = self
                .servers
                .iter()
                .filter(|(_, s)| s.observer)
                .map(|(n, _)| *n)
                .collect();
            paddock_core::Config::ensemble(self.my_id.unwrap_or(0), &voters, &observers)
        } else {
            paddock_core::Config::standalone(self.my_id.unwrap_or(0))
        };
        c.tick_time_ms = self.tick_time_ms;
        c.min_session_timeout_ms = self.min_session_timeout();
        c.max_session_timeout_ms = self.max_session_timeout();
        c.max_buffer = self.jute_max_buffer;
        c.seed = seed;
        c.super_digest = self.super_digest.clone();
        c.x509_super_user = self.security.x509_super_user.clone();
        c.acl_providers = self.security.acl_providers();
        c.extended_types_enabled = self.extended_types_enabled;
        c.snap_count = self.snap_count;
        c.skip_acl = self.skip_acl;
        c.read_only_mode = self.read_only_mode;
        c.enforce_quota = self.enforce_quota;
        c.init_limit_ticks = self.init_limit;
        c.sync_limit_ticks = self.sync_limit;
        c.container_check_interval_ms = self.container_check_interval_ms;
        c.container_max_per_minute = self.container_max_per_minute;
        c
    }
}

/// `host:port,host:port,...`, each with a port.
fn parse_follow_list(key: &str, v: &str) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for a in &list {
        let port = a.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(ConfigError::Value {
                key: key.to_string(),
                value: v.to_string(),
                why: format!("{a:?} is not host:quorumPort"),
            });
        }
    }
    if list.is_empty() {
        return Err(ConfigError::Value {
            key: key.to_string(),
            value: v.to_string(),
            why: "no address".into(),
        });
    }
    Ok(list)
}

fn parse_positive(key: &str, v: &str) -> Result<u64, ConfigError> {
    match parse_num::<u64>(key, v)? {
        0 => Err(ConfigError::Value {
            key: key.into(),
            value: v.into(),
            why: "must be positive".into(),
        }),
        n => Ok(n),
    }
}

/// `jute.maxbuffer` may be written in hex (`0xfffff`) or decimal.
fn parse_jute_max_buffer(key: &str, v: &str) -> Result<u32, ConfigError> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|e| ConfigError::Value {
            key: key.into(),
            value: v.into(),
            why: e.to_string(),
        }),
        None => parse_num(key, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_zookeeper_zoo_cfg() {
        let cfg = ServerConfig::from_text(
            "# comment\ntickTime=1000\ndataDir=/var/zk\nclientPort=2182\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n4lw.commands.whitelist=ruok, mntr\nforceSync=no\n\
             zookeeper.extendedTypesEnabled=true\nzookeeper.DigestAuthenticationProvider.superDigest=super:x\n\
             jute.maxbuffer=0x100000\nserver.1=a:2888:3888\nserver.2=b:2888:3888:observer\ninitLimit=7\n\
             autopurge.snapRetainCount=1\nwhatever=1\nadmin.enableServer=false\n",
        )
        .expect("parses");
        assert_eq!(cfg.tick_time_ms, 1000);
        assert_eq!(cfg.data_dir, PathBuf::from("/var/zk"));
        assert_eq!(cfg.log_dir(), Path::new("/var/zk"));
        assert_eq!(cfg.client_port, 2182);
        assert_eq!(cfg.max_client_cnxns, 0);
        assert_eq!(cfg.min_session_timeout(), 2000);
        assert_eq!(cfg.max_session_timeout(), 20000);
        assert!(!cfg.force_sync);
        assert!(cfg.extended_types_enabled);
        assert_eq!(cfg.super_digest.as_deref(), Some("super:x"));
        assert_eq!(cfg.jute_max_buffer, 0x100000);
        assert_eq!(
            cfg.four_letter_whitelist
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            vec!["mntr", "ruok", "srvr"]
        );
        assert_eq!(cfg.servers.len(), 2);
        assert!(cfg.servers[&2].observer);
        assert_eq!(cfg.init_limit, 7);
        assert_eq!(cfg.snap_retain_count, 3);
        assert_eq!(cfg.unknown_keys, vec!["whatever".to_string()]);
        assert!(cfg.ignored_keys.is_empty(), "{:?}", cfg.ignored_keys);
        assert!(!cfg.ops.admin_enabled);
    }

    #[test]
    fn default_whitelist_is_only_srvr_and_star_is_all() {
        assert_eq!(
            whitelist(None).into_iter().collect::<Vec<_>>(),
            vec!["srvr".to_string()]
        );
        assert!(whitelist(Some("*")).contains("wchp"));
    }

    #[test]
    fn system_property_keys_with_and_without_prefix() {
        let cfg = ServerConfig::from_pairs(vec![
            ("znode.container.checkIntervalMs".into(), "500".into()),
            ("zookeeper.znode.container.maxPerMinute".into(), "60".into()),
            ("zookeeper.snapCount".into(), "10".into()),
            ("snapCount".into(), "20".into()),
            ("zookeeper.commitLogCount".into(), "100".into()),
            ("zookeeper.log.format".into(), "json".into()),
        ])
        .expect("parses");
        assert_eq!(cfg.container_check_interval_ms, 500);
        assert_eq!(cfg.container_max_per_minute, 60);
        assert_eq!(cfg.snap_count, 20, "a later key wins");
        assert!(cfg.log.json);
        assert_eq!(cfg.system_properties["zookeeper.snapCount"], "20");
        assert_eq!(cfg.system_properties["zookeeper.commitLogCount"], "100");
        assert_eq!(
            cfg.ignored_keys,
            vec!["zookeeper.commitLogCount".to_string()]
        );
        assert!(cfg.unknown_keys.is_empty());
        let core = cfg.core_config(1);
        assert_eq!(
            (
                core.container_check_interval_ms,
                core.container_max_per_minute
            ),
            (500, 60)
        );
        assert!(ServerConfig::from_text("znode.container.checkIntervalMs=0\n").is_err());
    }

    #[test]
    fn bad_numbers_are_errors() {
        assert!(ServerConfig::from_text("clientPort=abc\n").is_err());
    }
}
