//! Start-up checks that refuse to guess: a start that would silently
//! serve something other than what the operator configured stops here,
//! before any port is bound, with a message that says what to do.
//!
//! - Security and enforcement keys of zoo.cfg that ask for a capability
//!   Paddock does not have yet (Kerberos for the quorum, `ssl.*` keys
//!   other than those `crate::security` honours, unknown authentication
//!   providers) are
//!   refused: serving without the authentication the operator configured
//!   would let every client in. [`REFUSED_KEYS`] is the one list to shrink
//!   as each capability lands.
//! - A dataDir or dataLogDir holding Apache ZooKeeper's state
//!   (`version-2/` with `snapshot.*`, `log.*`, `acceptedEpoch`,
//!   `currentEpoch`) and no Paddock state is refused: starting would serve
//!   an empty tree. The message names the directory and `paddock import`.

use crate::config::properties;
use std::path::{Path, PathBuf};

/// How a refused key is matched, and when its value asks for something.
#[derive(Clone, Copy, Debug)]
pub enum Match {
    /// Exactly this key (also with the `zookeeper.` prefix).
    Key(&'static str),
    /// Any key starting with this (also with the `zookeeper.` prefix).
    Prefix(&'static str),
}

/// When a refused key's value is harmless.
#[derive(Clone, Copy, Debug)]
pub enum Harmless {
    /// Every value asks for the capability.
    Never,
    /// `false` (any case) or empty asks for nothing.
    WhenFalse,
    /// These values ask only for what Paddock has.
    Values(&'static [&'static str]),
}

/// One refused key: how to match it, which values are harmless, and the
/// capability it asks for.
pub struct Refused {
    pub key: Match,
    pub harmless: Harmless,
    pub needs: &'static str,
}

/// Keys Paddock refuses at start until it has what they ask for.
pub const REFUSED_KEYS: &[Refused] = &[
    // Host name checks of client certificates: Paddock does not do them,
    // so only `false` is accepted.
    Refused {
        key: Match::Key("ssl.hostnameVerification"),
        harmless: Harmless::WhenFalse,
        needs: "checking client certificates against the client's host name (set it to false)",
    },
    Refused {
        key: Match::Key("ssl.clientHostnameVerification"),
        harmless: Harmless::WhenFalse,
        needs: "checking client certificates against the client's host name (set it to false)",
    },
    Refused {
        key: Match::Prefix("ssl."),
        harmless: Harmless::Never,
        needs: "TLS",
    },
    Refused {
        key: Match::Key("sslQuorum"),
        harmless: Harmless::WhenFalse,
        needs: "TLS between servers",
    },
    Refused {
        key: Match::Prefix("authProvider."),
        harmless: Harmless::Values(crate::security::HONOURED_PROVIDERS),
        needs: "an authentication provider paddock does not implement",
    },
    Refused {
        key: Match::Key("requireClientAuthScheme"),
        harmless: Harmless::Never,
        needs: "SASL authentication of clients",
    },
    Refused {
        key: Match::Prefix("quorum.auth."),
        harmless: Harmless::WhenFalse,
        needs: "SASL authentication between servers",
    },
];

fn matches(m: Match, key: &str) -> bool {
    let bare = key.strip_prefix("zookeeper.").unwrap_or(key);
    match m {
        Match::Key(k) => bare == k,
        Match::Prefix(p) => bare.starts_with(p),
    }
}

/// The first zoo.cfg line that asks for a capability Paddock lacks, as
/// an error message naming the key.
pub fn refused_key(cfg_text: &str) -> Option<String> {
    'keys: for (key, value) in properties(cfg_text) {
        for r in REFUSED_KEYS {
            if !matches(r.key, &key) {
                continue;
            }
            let bare = key.strip_prefix("zookeeper.").unwrap_or(&key);
            if crate::security::is_honoured(bare) {
                continue;
            }
            let harmless = match r.harmless {
                Harmless::Never => false,
                Harmless::WhenFalse => value.is_empty() || value.eq_ignore_ascii_case("false"),
                Harmless::Values(ok) => ok.contains(&value.trim()),
            };
            if harmless && matches!(r.key, Match::Key(_)) {
                // An exact entry that finds the value harmless settles it.
                continue 'keys;
            }
            if !harmless {
                return Some(format!(
                    "zoo.cfg sets {key}={value}, which asks for {}; paddock does not provide it yet \
                     and will not serve without it. Remove the key to run without it.",
                    r.needs
                ));
            }
        }
    }
    None
}

/// Apache ZooKeeper's files found under a directory's `version-2/`.
pub fn zookeeper_files(dir: &Path) -> Vec<PathBuf> {
    let v2 = dir.join("version-2");
    let Ok(rd) = std::fs::read_dir(&v2) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name == "acceptedEpoch"
                || name == "currentEpoch"
                || paddock_core::zk::parse_zk_name(&name).is_some()
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Whether Paddock's own state (a snapshot or a log) is in the dirs.
pub fn has_paddock_state(data: &Path, log: &Path) -> bool {
    let any = |dir: &Path, kind: &str| crate::disk::list(dir, kind).is_ok_and(|l| !l.is_empty());
    any(data, "snapshot") || any(log, "log") || any(data, "log")
}

/// Refuses a data directory that holds ZooKeeper's state but not
/// Paddock's: an error naming the directory and the import command.
pub fn check_data_dirs(data: &Path, log: &Path, cfg_path: Option<&Path>) -> Result<(), String> {
    if has_paddock_state(data, log) {
        return Ok(());
    }
    let mut found = zookeeper_files(data);
    if log != data {
        found.extend(zookeeper_files(log));
    }
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found
        .iter()
        .take(4)
        .map(|p| p.display().to_string())
        .collect();
    let more = if found.len() > 4 {
        format!(" and {} more", found.len() - 4)
    } else {
        String::new()
    };
    let cfg = cfg_path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "ZOO_CFG".into());
    Err(format!(
        "{} holds Apache ZooKeeper state ({}{more}) and no paddock state: starting would serve an \
         empty tree. Import it first with `paddock import {cfg}` (ZooKeeper's files are left as \
         they are), then start again.",
        data.join("version-2").display(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refused_key_is_named_and_false_is_harmless() {
        for text in [
            "ssl.quorum.crl=true\n",
            "zookeeper.ssl.crl=true\n",
            "ssl.context.supplier.class=x.Y\n",
            "ssl.hostnameVerification=true\n",
            "authProvider.2=com.example.Custom\n",
            "requireClientAuthScheme=sasl\n",
            "quorum.auth.kerberos.unknownKey=x\n",
        ] {
            let key = text.split('=').next().unwrap_or_default();
            let msg = refused_key(&format!("tickTime=2000\n{text}")).expect(text);
            assert!(msg.contains(key), "{msg}");
        }
        for text in [
            "sslQuorum=false\n",
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.p12\n",
            "enforce.auth.enabled=false\n",
            "quorum.auth.enableSasl=false\n",
            "sessionRequireClientSASLAuth=false\n",
            "tickTime=2000\nclientPort=2181\n",
            "secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n",
            "ssl.keyStore.location=/k.p12\nzookeeper.ssl.trustStore.location=/t\n",
            "ssl.clientAuth=want\nssl.enabledProtocols=TLSv1.3\n",
            "ssl.hostnameVerification=false\nssl.clientHostnameVerification=false\n",
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n",
            "zookeeper.sessionRequireClientSASLAuth=true\n",
        ] {
            assert_eq!(refused_key(text), None, "{text}");
        }
    }

    #[test]
    fn a_zookeeper_data_dir_without_paddock_state_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(check_data_dirs(d.path(), d.path(), None).is_ok());
        std::fs::create_dir(d.path().join("version-2")).expect("mkdir");
        std::fs::write(d.path().join("version-2/snapshot.0"), b"ZKSN").expect("write");
        let err = check_data_dirs(d.path(), d.path(), Some(Path::new("/etc/zoo.cfg")))
            .expect_err("refused");
        assert!(err.contains("paddock import /etc/zoo.cfg"), "{err}");
        assert!(err.contains("version-2"), "{err}");
        std::fs::write(d.path().join("snapshot.5"), b"x").expect("write");
        assert!(check_data_dirs(d.path(), d.path(), None).is_ok());
    }
}
