//! ZooKeeper's settings that operators pass as Java system properties:
//! `-Dkey=value` words in `SERVER_JVMFLAGS` and `JVMFLAGS` (as
//! `zookeeper-env.sh` or a unit's `Environment=` sets them), so an existing
//! environment file works unchanged.
//!
//! zkServer.sh puts `SERVER_JVMFLAGS` before `JVMFLAGS` on the java command
//! line, and the JVM keeps the last `-D` of a name; zoo.cfg keys win over
//! both (ZooKeeper copies unknown zoo.cfg keys into `zookeeper.<key>`
//! system properties at start). Every property is read with and without
//! its `zookeeper.` prefix, as zoo.cfg keys are.
//!
//! [`PROPERTIES`] lists the properties of ZooKeeper's administrator's guide
//! Paddock knows, each marked as honoured or as accepted without effect
//! (with the reason, logged at start). `-D` words naming anything else
//! (the JVM's own, log4j's) are left alone.

/// Environment variables read for `-D` words, in command-line order.
pub const JVM_FLAG_VARS: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// How Paddock treats a ZooKeeper system property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// In force: parsed as the zoo.cfg key of the same name.
    Honoured,
    /// Accepted and shown; changes nothing here, for the reason given.
    NoEffect(&'static str),
}

/// (property name as ZooKeeper reads it, treatment).
pub const PROPERTIES: &[(&str, Treatment)] = &[
    ("znode.container.checkIntervalMs", Treatment::Honoured),
    ("znode.container.maxPerMinute", Treatment::Honoured),
    ("zookeeper.snapCount", Treatment::Honoured),
    ("zookeeper.maxCnxns", Treatment::Honoured),
    ("jute.maxbuffer", Treatment::Honoured),
    ("zookeeper.forceSync", Treatment::Honoured),
    ("zookeeper.skipACL", Treatment::Honoured),
    ("zookeeper.extendedTypesEnabled", Treatment::Honoured),
    (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        Treatment::Honoured,
    ),
    ("zookeeper.4lw.commands.whitelist", Treatment::Honoured),
    ("zookeeper.admin.enableServer", Treatment::Honoured),
    ("zookeeper.admin.serverAddress", Treatment::Honoured),
    ("zookeeper.admin.serverPort", Treatment::Honoured),
    ("zookeeper.admin.commandURL", Treatment::Honoured),
    ("zookeeper.log.dir", Treatment::Honoured),
    ("zookeeper.log.file", Treatment::Honoured),
    ("zookeeper.log.format", Treatment::Honoured),
    ("zookeeper.log.maxFiles", Treatment::Honoured),
    ("readonlymode.enabled", Treatment::Honoured),
    ("zookeeper.enforceQuota", Treatment::Honoured),
    (
        "zookeeper.globalOutstandingLimit",
        Treatment::NoEffect(
            "requests are throttled by the bounded event queue and a per-connection limit",
        ),
    ),
    (
        "zookeeper.commitLogCount",
        Treatment::NoEffect("the leader keeps a fixed window of 10,000 txns for DIFF syncs"),
    ),
    (
        "zookeeper.preAllocSize",
        Treatment::NoEffect("log files are appended, not preallocated"),
    ),
    (
        "zookeeper.snapSizeLimitInKb",
        Treatment::NoEffect("snapshots are taken every snapCount txns only"),
    ),
    (
        "zookeeper.txnLogSizeLimitInKb",
        Treatment::NoEffect("the log rolls at each snapshot"),
    ),
    (
        "zookeeper.flushDelay",
        Treatment::NoEffect("the log thread group-commits whatever is queued"),
    ),
    (
        "zookeeper.maxBatchSize",
        Treatment::NoEffect("the log thread group-commits whatever is queued"),
    ),
    (
        "zookeeper.cnxTimeout",
        Treatment::NoEffect("peer links reconnect by themselves"),
    ),
    (
        "zookeeper.electionPortBindRetry",
        Treatment::NoEffect("a peer port that cannot be bound stops the start"),
    ),
    (
        "zookeeper.leaderServes",
        Treatment::NoEffect("the leader always serves clients"),
    ),
    (
        "zookeeper.syncEnabled",
        Treatment::NoEffect("observers always log what they apply"),
    ),
    (
        "zookeeper.serverCnxnFactory",
        Treatment::NoEffect("there is one connection layer, on tokio"),
    ),
];

/// The property ZooKeeper reads for a bare key, and its treatment.
pub fn lookup(bare: &str) -> Option<(&'static str, Treatment)> {
    PROPERTIES
        .iter()
        .find(|(name, _)| name.strip_prefix("zookeeper.").unwrap_or(name) == bare)
        .copied()
}

/// The `-Dkey=value` words of the JVM flag variables, in command-line
/// order (a later word for the same key wins when applied in order).
/// `-Dkey` alone is the empty string, as in Java.
pub fn jvm_flag_properties(var: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in JVM_FLAG_VARS {
        let Some(flags) = var(name) else { continue };
        for word in flags.split_whitespace() {
            let word = word.trim_matches(|c| c == '"' || c == '\'');
            let Some(prop) = word.strip_prefix("-D") else {
                continue;
            };
            let (k, v) = prop.split_once('=').unwrap_or((prop, ""));
            if !k.is_empty() {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

/// The `-D` properties ZooKeeper knows, with their bare zoo.cfg key.
pub fn known(props: Vec<(String, String)>) -> Vec<(String, String)> {
    props
        .into_iter()
        .filter(|(k, _)| {
            let bare = k.strip_prefix("zookeeper.").unwrap_or(k);
            lookup(bare).is_some() || crate::security::is_sysprop(bare)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_d_words_in_command_line_order() {
        let env = |k: &str| match k {
            "SERVER_JVMFLAGS" => {
                Some("-Xmx1g -Dznode.container.checkIntervalMs=500 -Dzookeeper.snapCount=10".into())
            }
            "JVMFLAGS" => {
                Some("-Dzookeeper.snapCount=20 -Dlog4j.configuration=x -Djute.maxbuffer".into())
            }
            _ => None,
        };
        let all = jvm_flag_properties(env);
        assert_eq!(all.len(), 5);
        assert_eq!(
            all[0],
            ("znode.container.checkIntervalMs".into(), "500".into())
        );
        assert_eq!(all[4], ("jute.maxbuffer".into(), String::new()));
        let known = known(all);
        assert_eq!(
            known.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            vec![
                "znode.container.checkIntervalMs",
                "zookeeper.snapCount",
                "zookeeper.snapCount",
                "jute.maxbuffer"
            ]
        );
    }

    #[test]
    fn bare_keys_find_their_property() {
        assert_eq!(
            lookup("snapCount").map(|p| p.0),
            Some("zookeeper.snapCount")
        );
        assert_eq!(
            lookup("jute.maxbuffer").map(|p| p.0),
            Some("jute.maxbuffer")
        );
        assert!(matches!(
            lookup("preAllocSize"),
            Some((_, Treatment::NoEffect(_)))
        ));
        assert_eq!(lookup("tickTime"), None);
    }
}
