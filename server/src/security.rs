//! The security keys of zoo.cfg that Paddock honours: client TLS
//! (`secureClientPort`, `secureClientPortAddress`,
//! `client.portUnification`, `ssl.keyStore.*`, `ssl.trustStore.*`,
//! `ssl.clientAuth`, `ssl.protocol`, `ssl.enabledProtocols`,
//! `ssl.ciphersuites`) and the authentication providers
//! (`authProvider.N`, `X509AuthenticationProvider.superUser`).
//!
//! Every other security key stays refused at start by
//! [`crate::failclosed`]: [`is_honoured`] is the one place that says which
//! `ssl.*` keys are in force, so the refusal list shrinks exactly as a key
//! becomes honoured.
//!
//! Mirrors ZooKeeper 3.8's `X509Util` and `QuorumPeerConfig`: `ssl.clientAuth`
//! defaults to `need`; a client certificate is accepted only with the x509
//! provider configured (`authProvider.N=...X509AuthenticationProvider`):
//! ZooKeeper closes every certificate-bearing connection without it, which
//! Paddock refuses at start instead, naming the key.

use crate::config::ConfigError;
use paddock_net::keystore::{StoreSpec, StoreType};
use paddock_net::tls::{ClientAuth, Protocol, TlsSettings};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// ZooKeeper's provider classes Paddock implements.
pub const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
pub const DIGEST_PROVIDER: &str = "org.apache.zookeeper.server.auth.DigestAuthenticationProvider";
pub const IP_PROVIDER: &str = "org.apache.zookeeper.server.auth.IPAuthenticationProvider";
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// The `authProvider.N` classes that are honoured.
pub const HONOURED_PROVIDERS: &[&str] =
    &[X509_PROVIDER, DIGEST_PROVIDER, IP_PROVIDER, SASL_PROVIDER];

/// The SASL and enforcement keys (without `zookeeper.`) in force.
const HONOURED_AUTH: &[&str] = &[
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "superUser",
    "sessionRequireClientSASLAuth",
    "allowSaslFailedClients",
    "java.security.krb5.conf",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "X509AuthenticationProvider.superUser",
    "client.portUnification",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
];

/// The `ssl.*` keys (without `zookeeper.`) in force.
const HONOURED_SSL: &[&str] = &[
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.authProvider",
];

/// Whether a security key (without `zookeeper.`) is honoured, so
/// [`crate::failclosed`] lets it through.
pub fn is_honoured(bare: &str) -> bool {
    HONOURED_SSL.contains(&bare)
        || HONOURED_AUTH.contains(&bare)
        || matches!(
            bare,
            "secureClientPort"
                | "secureClientPortAddress"
                | "sslQuorum"
                | "ssl.quorum.hostnameVerification"
        )
        || bare.strip_prefix("ssl.quorum.").is_some_and(|rest| {
            rest != "authProvider" && HONOURED_SSL.contains(&format!("ssl.{rest}").as_str())
        })
}

/// Whether a `-D` system property (without `zookeeper.`) is one of these
/// keys, so `crate::sysprops` passes it on like a zoo.cfg key.
pub fn is_sysprop(bare: &str) -> bool {
    is_honoured(bare) || bare.starts_with("authProvider.")
}

#[derive(Clone, Debug, Default)]
struct Store {
    location: Option<PathBuf>,
    password: Option<String>,
    kind: Option<String>,
}

/// Client SASL as configured: the core's part, and for GSSAPI the keytab
/// and service principal (`(keyTab, principal)`) the shell accepts with.
#[derive(Clone, Debug)]
pub struct ClientSasl {
    pub core: paddock_core::sasl::SaslConfig,
    pub kerberos: Option<(String, String)>,
}

/// The parsed security keys.
#[derive(Clone, Debug, Default)]
pub struct SecurityConfig {
    pub secure_client_port: Option<u16>,
    pub secure_client_port_address: Option<IpAddr>,
    /// `client.portUnification`: TLS and plaintext on the plain port.
    pub port_unification: bool,
    key_store: Store,
    trust_store: Store,
    client_auth: Option<String>,
    protocol: Option<String>,
    enabled_protocols: Option<String>,
    ciphersuites: Option<String>,
    ssl_auth_provider: Option<String>,
    /// `authProvider.N` -> class.
    pub auth_providers: BTreeMap<String, String>,
    pub x509_super_user: Option<String>,
    jaas_file: Option<PathBuf>,
    /// `java.security.krb5.conf`: the Kerberos configuration file (MIT's
    /// library reads it through `KRB5_CONFIG`).
    pub krb5_conf: Option<PathBuf>,
    sasl_section: Option<String>,
    remove_host: bool,
    remove_realm: bool,
    sasl_super_user: Option<String>,
    require_sasl: bool,
    allow_sasl_failed_clients: bool,
    enforce_enabled: bool,
    enforce_schemes: Option<String>,
    /// `sslQuorum`: TLS between the servers of an ensemble.
    pub ssl_quorum: bool,
    /// `ssl.quorum.hostnameVerification=false` was given (the check is on
    /// by default).
    quorum_hostname_verification_set_false: bool,
    /// The `ssl.quorum.*` stores and settings, read as `ssl.*` ones.
    quorum: Option<Box<SecurityConfig>>,
    /// Whether this holds the `ssl.quorum.*` keys (for key names in
    /// messages).
    quorum_keys: bool,
    quorum_sasl: bool,
    quorum_sasl_server_section: Option<String>,
    quorum_sasl_learner_section: Option<String>,
    /// `quorum.auth.kerberos.servicePrincipal`.
    quorum_service_principal: Option<String>,
}

/// A key's name as the operator wrote it: `ssl.X`, or `ssl.quorum.X`.
fn key_name(quorum: bool, key: &'static str) -> &'static str {
    if !quorum {
        return key;
    }
    match key {
        "ssl.keyStore" => "ssl.quorum.keyStore",
        "ssl.trustStore" => "ssl.quorum.trustStore",
        "ssl.keyStore.location" => "ssl.quorum.keyStore.location",
        "ssl.clientAuth" => "ssl.quorum.clientAuth",
        "ssl.protocol" => "ssl.quorum.protocol",
        "ssl.enabledProtocols" => "ssl.quorum.enabledProtocols",
        "ssl.ciphersuites" => "ssl.quorum.ciphersuites",
        other => other,
    }
}

fn bad(key: &str, v: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key: key.into(),
        value: v.into(),
        why: why.into(),
    }
}

impl SecurityConfig {
    /// Takes `key` (without a `zookeeper.` prefix) if it is one of these;
    /// `Ok(false)` when it is not.
    pub fn set(&mut self, key: &str, v: &str) -> Result<bool, ConfigError> {
        let v = v.trim();
        match key {
            "secureClientPort" => {
                self.secure_client_port = Some(v.parse().map_err(|e| bad(key, v, format!("{e}")))?)
            }
            "secureClientPortAddress" => {
                self.secure_client_port_address =
                    Some(v.parse().map_err(|e| bad(key, v, format!("{e}")))?)
            }
            "client.portUnification" => self.port_unification = v.eq_ignore_ascii_case("true"),
            "ssl.keyStore.location" => self.key_store.location = Some(PathBuf::from(v)),
            "ssl.keyStore.password" => self.key_store.password = Some(v.to_string()),
            "ssl.keyStore.type" => self.key_store.kind = Some(v.to_string()),
            "ssl.trustStore.location" => self.trust_store.location = Some(PathBuf::from(v)),
            "ssl.trustStore.password" => self.trust_store.password = Some(v.to_string()),
            "ssl.trustStore.type" => self.trust_store.kind = Some(v.to_string()),
            "ssl.clientAuth" => self.client_auth = Some(v.to_string()),
            "ssl.protocol" => self.protocol = Some(v.to_string()),
            "ssl.enabledProtocols" => self.enabled_protocols = Some(v.to_string()),
            "ssl.ciphersuites" => self.ciphersuites = Some(v.to_string()),
            "ssl.authProvider" => self.ssl_auth_provider = Some(v.to_string()),
            "X509AuthenticationProvider.superUser" => self.x509_super_user = Some(v.to_string()),
            "java.security.auth.login.config" => self.jaas_file = Some(PathBuf::from(v)),
            "java.security.krb5.conf" => self.krb5_conf = Some(PathBuf::from(v)),
            "sasl.serverconfig" => self.sasl_section = Some(v.to_string()),
            // Java's Boolean.parseBoolean / Boolean.getBoolean: "true", any case.
            "kerberos.removeHostFromPrincipal" => self.remove_host = v.eq_ignore_ascii_case("true"),
            "kerberos.removeRealmFromPrincipal" => {
                self.remove_realm = v.eq_ignore_ascii_case("true")
            }
            "superUser" => self.sasl_super_user = Some(v.to_string()),
            "sessionRequireClientSASLAuth" => self.require_sasl = v.eq_ignore_ascii_case("true"),
            "allowSaslFailedClients" => {
                self.allow_sasl_failed_clients = v.eq_ignore_ascii_case("true")
            }
            "enforce.auth.enabled" => self.enforce_enabled = v.eq_ignore_ascii_case("true"),
            "enforce.auth.schemes" => self.enforce_schemes = Some(v.to_string()),
            "sslQuorum" => self.ssl_quorum = v.eq_ignore_ascii_case("true"),
            "quorum.auth.enableSasl" => self.quorum_sasl = v.eq_ignore_ascii_case("true"),
            // With quorum SASL on, paddock always requires it both ways
            // (stricter than ZooKeeper's rolling-upgrade modes).
            "quorum.auth.learnerRequireSasl" | "quorum.auth.serverRequireSasl" => {}
            "quorum.auth.server.saslLoginContext" => {
                self.quorum_sasl_server_section = Some(v.to_string())
            }
            "quorum.auth.kerberos.servicePrincipal" => {
                self.quorum_service_principal = Some(v.to_string())
            }
            "quorum.auth.learner.saslLoginContext" => {
                self.quorum_sasl_learner_section = Some(v.to_string())
            }
            "ssl.quorum.hostnameVerification" => {
                self.quorum_hostname_verification_set_false = v.eq_ignore_ascii_case("false")
            }
            k if k.starts_with("ssl.quorum.") => {
                let q = self.quorum.get_or_insert_with(|| {
                    Box::new(SecurityConfig {
                        quorum_keys: true,
                        ..Default::default()
                    })
                });
                let inner = format!("ssl.{}", &k["ssl.quorum.".len()..]);
                if !q.set(&inner, v)? || !HONOURED_SSL.contains(&inner.as_str()) {
                    return Err(bad(k, v, "not an ssl.quorum key paddock honours"));
                }
            }
            k if k.starts_with("authProvider.") => {
                self.auth_providers.insert(k.to_string(), v.to_string());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The optional providers `authProvider.N` names: their schemes are
    /// valid in ACLs.
    pub fn acl_providers(&self) -> paddock_core::tree::acl::Providers {
        let has = |class: &str| self.auth_providers.values().any(|v| v.trim() == class);
        paddock_core::tree::acl::Providers {
            x509: has(X509_PROVIDER),
            sasl: has(SASL_PROVIDER),
        }
    }

    /// Whether any client port speaks TLS.
    pub fn client_tls(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }

    /// Client SASL from the JAAS file's server section; `None` without a
    /// file or without that section (ZooKeeper then has no SASL login).
    /// With a Kerberos login, the keytab and principal come too (the core's
    /// config then holds no users: every `sasl` request is GSSAPI).
    pub fn sasl_config(&self) -> Result<Option<ClientSasl>, ConfigError> {
        let Some(path) = &self.jaas_file else {
            return Ok(None);
        };
        let section = self.sasl_section.as_deref().unwrap_or("Server");
        let login = crate::jaas::server_login(path, section).map_err(|why| {
            bad(
                "java.security.auth.login.config",
                &path.display().to_string(),
                why,
            )
        })?;
        let (users, kerberos) = match login {
            None => return Ok(None),
            Some(crate::jaas::ServerLogin::Digest(users)) => (users, None),
            Some(crate::jaas::ServerLogin::Kerberos { keytab, principal }) => {
                (BTreeMap::new(), Some((keytab, principal)))
            }
        };
        Ok(Some(ClientSasl {
            core: paddock_core::sasl::SaslConfig {
                users,
                remove_host_from_principal: self.remove_host,
                remove_realm_from_principal: self.remove_realm,
                super_user: self.sasl_super_user.clone(),
                allow_failed_clients: self.allow_sasl_failed_clients,
            },
            kerberos,
        }))
    }

    /// Quorum SASL's credentials (`quorum.auth.enableSasl=true`): DIGEST-MD5,
    /// or Kerberos when the `QuorumServer` section holds a Krb5LoginModule
    /// (then `hosts`, the ensemble's server host names, are the hosts a
    /// dialling server's principal may name).
    pub fn quorum_sasl(
        &self,
        hosts: Vec<String>,
    ) -> Result<Option<paddock_net::peer_sasl::PeerSasl>, ConfigError> {
        if !self.quorum_sasl {
            return Ok(None);
        }
        let Some(path) = &self.jaas_file else {
            return Err(bad(
                "quorum.auth.enableSasl",
                "true",
                "needs a JAAS file (-Djava.security.auth.login.config=... in SERVER_JVMFLAGS) with QuorumServer and QuorumLearner sections",
            ));
        };
        let server_section = self
            .quorum_sasl_server_section
            .as_deref()
            .unwrap_or("QuorumServer");
        let learner_section = self
            .quorum_sasl_learner_section
            .as_deref()
            .unwrap_or("QuorumLearner");
        let krb = crate::jaas::quorum_kerberos(path, server_section, learner_section)
            .map_err(|why| bad("quorum.auth.enableSasl", "true", why))?;
        if let Some(((s_keytab, s_principal), (l_keytab, l_principal))) = krb {
            // ZooKeeper's default service principal.
            let service = self
                .quorum_service_principal
                .clone()
                .unwrap_or_else(|| "zkquorum/localhost".to_string());
            if service.contains("_HOST") {
                return Err(bad(
                    "quorum.auth.kerberos.servicePrincipal",
                    &service,
                    "_HOST is not substituted by paddock: name the principal every server holds the key of",
                ));
            }
            let key = "java.security.auth.login.config";
            let login =
                |what: &str, r: Result<std::sync::Arc<paddock_net::gssapi::Acceptor>, String>| {
                    r.map_err(|e| bad(key, &path.display().to_string(), format!("{what}: {e}")))
                };
            let acceptor = login(
                server_section,
                paddock_net::gssapi::Acceptor::new(&s_keytab, &s_principal),
            )?;
            let initiator = login(
                learner_section,
                paddock_net::gssapi::Acceptor::initiator(&l_keytab, &l_principal),
            )?;
            return Ok(Some(paddock_net::peer_sasl::PeerSasl {
                server: Default::default(),
                username: String::new(),
                password: String::new(),
                kerberos: Some(std::sync::Arc::new(
                    paddock_net::peer_sasl::QuorumKerberos {
                        acceptor,
                        initiator,
                        service_principal: service,
                        authorized_hosts: hosts,
                    },
                )),
            }));
        }
        let (users, username, password) =
            crate::jaas::quorum_credentials(path, server_section, learner_section)
                .map_err(|why| bad("quorum.auth.enableSasl", "true", why))?;
        Ok(Some(paddock_net::peer_sasl::PeerSasl {
            server: paddock_core::sasl::SaslConfig {
                users,
                ..Default::default()
            },
            username,
            password,
            kerberos: None,
        }))
    }

    /// The schemes every client must hold an id of (empty: none), as
    /// ZooKeeper's `AuthenticationHelper` reads them; a scheme without its
    /// provider is refused at start, as ZooKeeper refuses it.
    pub fn enforced_schemes(&self) -> Result<Vec<String>, ConfigError> {
        let (key, schemes) = if self.require_sasl {
            ("sessionRequireClientSASLAuth", vec!["sasl".to_string()])
        } else if self.enforce_enabled {
            let list: Vec<String> = self
                .enforce_schemes
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                return Err(bad(
                    "enforce.auth.enabled",
                    "true",
                    "enforce.auth.schemes must name the schemes to enforce",
                ));
            }
            ("enforce.auth.schemes", list)
        } else {
            return Ok(Vec::new());
        };
        for s in &schemes {
            let provided = match s.as_str() {
                "digest" | "ip" => true,
                "x509" => self.x509_provider(),
                "sasl" => self.auth_providers.values().any(|c| c == SASL_PROVIDER),
                _ => false,
            };
            if !provided {
                return Err(bad(
                    key,
                    &schemes.join(","),
                    format!(
                        "authentication scheme {s} is not available (configure its authProvider.N)"
                    ),
                ));
            }
        }
        Ok(schemes)
    }

    /// Whether the x509 provider is configured.
    pub fn x509_provider(&self) -> bool {
        self.auth_providers.values().any(|c| c == X509_PROVIDER)
    }

    /// The TLS settings for client ports, or `None` when no port speaks
    /// TLS; an error names the key that cannot be honoured.
    pub fn tls_settings(&self) -> Result<Option<TlsSettings>, ConfigError> {
        if !self.client_tls() {
            return Ok(None);
        }
        self.build_settings().map(Some)
    }

    /// The peer TLS settings (`sslQuorum=true`) and whether the dialled
    /// peer's address is checked against its certificate.
    pub fn quorum_tls(&self) -> Result<Option<(TlsSettings, bool)>, ConfigError> {
        if !self.ssl_quorum {
            return Ok(None);
        }
        let q = self
            .quorum
            .as_deref()
            .cloned()
            .unwrap_or_else(|| SecurityConfig {
                quorum_keys: true,
                ..Default::default()
            });
        if let Some(a) = q
            .client_auth
            .as_deref()
            .filter(|a| !a.eq_ignore_ascii_case("need"))
        {
            return Err(bad(
                "ssl.quorum.clientAuth",
                a,
                "servers always authenticate each other (need)",
            ));
        }
        if q.trust_store.location.is_none() {
            return Err(bad(
                "ssl.quorum.trustStore.location",
                "",
                "sslQuorum=true needs the trust store that vouches for the other servers",
            ));
        }
        let mut s = q.build_settings()?;
        s.client_auth = ClientAuth::Need;
        Ok(Some((s, !self.quorum_hostname_verification_set_false)))
    }

    fn build_settings(&self) -> Result<TlsSettings, ConfigError> {
        let q = self.quorum_keys;
        let store = |s: &Store, prefix: &'static str| -> Result<Option<StoreSpec>, ConfigError> {
            let Some(path) = &s.location else {
                return Ok(None);
            };
            let kind = match &s.kind {
                None => None,
                Some(t) if t.is_empty() => None,
                Some(t) => Some(StoreType::parse(t).ok_or_else(|| {
                    bad(
                        &format!("{prefix}.type"),
                        t,
                        "not a store type ZooKeeper knows (PEM, PKCS12, JKS, BCFKS)",
                    )
                })?),
            };
            Ok(Some(StoreSpec {
                key_prefix: prefix,
                path: path.clone(),
                password: s.password.clone(),
                kind,
            }))
        };
        let key_store = store(&self.key_store, key_name(q, "ssl.keyStore"))?.ok_or_else(|| {
            bad(
                key_name(q, "ssl.keyStore.location"),
                "",
                "TLS (secureClientPort, client.portUnification or sslQuorum) needs the server's key store",
            )
        })?;
        let trust_store = store(&self.trust_store, key_name(q, "ssl.trustStore"))?;
        let client_auth = match self.client_auth.as_deref().map(str::to_ascii_lowercase) {
            None => ClientAuth::Need,
            Some(a) if a.is_empty() || a == "need" => ClientAuth::Need,
            Some(a) if a == "want" => ClientAuth::Want,
            Some(a) if a == "none" => ClientAuth::None,
            Some(a) => {
                return Err(bad(
                    key_name(q, "ssl.clientAuth"),
                    &a,
                    "one of need, want, none",
                ))
            }
        };
        if client_auth != ClientAuth::None && !q {
            if let Some(p) = self.ssl_auth_provider.as_deref().filter(|p| *p != "x509") {
                return Err(bad(
                    "ssl.authProvider",
                    p,
                    "paddock authenticates client certificates with the x509 scheme only",
                ));
            }
            if !self.x509_provider() {
                return Err(bad(
                    "ssl.clientAuth",
                    self.client_auth.as_deref().unwrap_or("need (the default)"),
                    format!(
                        "client certificates are checked by the x509 provider, which is not configured: \
                         add authProvider.x509={X509_PROVIDER} (ZooKeeper closes such connections without it), \
                         or set ssl.clientAuth=none"
                    ),
                ));
            }
        }
        let protocols = self.protocols()?;
        let cipher_suites = self.ciphersuites.as_ref().map(|c| {
            c.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        Ok(TlsSettings {
            key_store,
            trust_store,
            client_auth,
            protocols,
            cipher_suites,
        })
    }

    fn protocols(&self) -> Result<Vec<Protocol>, ConfigError> {
        let parse = |key: &'static str, name: &str| -> Result<Vec<Protocol>, ConfigError> {
            match name {
                "TLSv1.2" => Ok(vec![Protocol::Tls12]),
                "TLSv1.3" => Ok(vec![Protocol::Tls13]),
                "TLS" => Ok(vec![Protocol::Tls12, Protocol::Tls13]),
                other => Err(bad(
                    key_name(self.quorum_keys, key),
                    other,
                    "paddock's TLS library offers TLSv1.2 and TLSv1.3 only",
                )),
            }
        };
        let mut out = Vec::new();
        if let Some(list) = &self.enabled_protocols {
            for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                out.extend(parse("ssl.enabledProtocols", p)?);
            }
        } else if let Some(p) = &self.protocol {
            out = parse("ssl.protocol", p.trim())?;
        } else {
            out = vec![Protocol::Tls12, Protocol::Tls13];
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(bad(
                key_name(self.quorum_keys, "ssl.enabledProtocols"),
                "",
                "names no protocol",
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> SecurityConfig {
        let mut c = SecurityConfig::default();
        for (k, v) in pairs {
            assert!(c.set(k, v).expect("valid"), "{k}");
        }
        c
    }

    #[test]
    fn defaults_and_refusals_name_the_key() {
        assert!(cfg(&[]).tls_settings().expect("ok").is_none());
        let base = [
            ("secureClientPort", "2281"),
            ("ssl.keyStore.location", "/k.p12"),
            ("ssl.trustStore.location", "/t.p12"),
        ];
        let e = cfg(&base).tls_settings().expect_err("x509 provider needed");
        assert!(e.to_string().contains("authProvider.x509"), "{e}");
        let mut c = cfg(&base);
        c.set("authProvider.x509", X509_PROVIDER).unwrap();
        let s = c.tls_settings().expect("ok").expect("tls");
        assert_eq!(s.client_auth, ClientAuth::Need);
        assert_eq!(s.protocols, vec![Protocol::Tls12, Protocol::Tls13]);
        c.set("ssl.enabledProtocols", "TLSv1.1,TLSv1.2").unwrap();
        let e = c.tls_settings().expect_err("old protocol");
        assert!(e.to_string().contains("ssl.enabledProtocols"), "{e}");
        let c = cfg(&[
            ("client.portUnification", "true"),
            ("ssl.keyStore.location", "/k.pem"),
            ("ssl.clientAuth", "none"),
            ("ssl.protocol", "TLSv1.3"),
        ]);
        let s = c.tls_settings().expect("ok").expect("tls");
        assert_eq!(
            (s.client_auth, s.protocols),
            (ClientAuth::None, vec![Protocol::Tls13])
        );
        let e = cfg(&[("secureClientPort", "1")])
            .tls_settings()
            .expect_err("no key store");
        assert!(e.to_string().contains("ssl.keyStore.location"), "{e}");
        assert!(is_honoured("ssl.clientAuth") && is_honoured("ssl.quorum.keyStore.location"));
        assert!(!is_honoured("ssl.quorum.crl") && !is_honoured("ssl.crl"));
    }

    #[test]
    fn quorum_keys_are_read_like_client_ones_and_named_as_given() {
        let mut c = cfg(&[("sslQuorum", "true")]);
        let e = c.quorum_tls().expect_err("no trust store");
        assert!(
            e.to_string().contains("ssl.quorum.trustStore.location"),
            "{e}"
        );
        c.set("ssl.quorum.trustStore.location", "/t.pem").unwrap();
        let e = c.quorum_tls().expect_err("no key store");
        assert!(
            e.to_string().contains("ssl.quorum.keyStore.location"),
            "{e}"
        );
        c.set("ssl.quorum.keyStore.location", "/k.p12").unwrap();
        c.set("ssl.quorum.enabledProtocols", "TLSv1.3").unwrap();
        let (s, verify) = c.quorum_tls().expect("ok").expect("tls");
        assert_eq!(
            (s.client_auth, s.protocols, verify),
            (ClientAuth::Need, vec![Protocol::Tls13], true)
        );
        assert_eq!(s.key_store.key_prefix, "ssl.quorum.keyStore");
        c.set("ssl.quorum.hostnameVerification", "false").unwrap();
        assert!(!c.quorum_tls().expect("ok").expect("tls").1);
        c.set("ssl.quorum.clientAuth", "none").unwrap();
        assert!(c.quorum_tls().is_err());
        assert!(c.set("ssl.quorum.crl", "true").is_err());
    }

    // Goal: quorum Kerberos with `_HOST` in the service principal is
    // refused, naming the key (Paddock would not know the host to put).
    #[test]
    fn quorum_kerberos_host_placeholder_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("jaas.conf");
        let m = crate::jaas::KRB5_LOGIN_MODULE;
        std::fs::write(
            &p,
            format!(
                "QuorumServer {{ {m} required useKeyTab=true storeKey=true keyTab=\"/s\" principal=\"zkquorum/h@R\"; }};\n\
                 QuorumLearner {{ {m} required useKeyTab=true keyTab=\"/l\" principal=\"learner/h@R\"; }};"
            ),
        )
        .expect("write");
        let c = cfg(&[
            ("quorum.auth.enableSasl", "true"),
            (
                "java.security.auth.login.config",
                p.to_str().expect("utf-8"),
            ),
            ("quorum.auth.kerberos.servicePrincipal", "zkquorum/_HOST@R"),
        ]);
        let e = c.quorum_sasl(vec!["h".into()]).expect_err("refused");
        assert!(
            e.to_string()
                .contains("quorum.auth.kerberos.servicePrincipal"),
            "{e}"
        );
    }
}
