//! TLS for client connections, on rustls (no OpenSSL).
//!
//! Owns: building a rustls server configuration from ZooKeeper's `ssl.*`
//! settings (key and trust stores read by [`crate::keystore`]), the
//! handshake of one accepted socket, telling TLS from plaintext on a
//! unified port, and the client certificate's subject as ZooKeeper names it
//! (the `x509` id).
//!
//! Mirrors ZooKeeper's `X509Util` and `NettyServerCnxnFactory`:
//! - `ssl.clientAuth` is `need` unless set (ZooKeeper's default): a client
//!   without a certificate the trust store vouches for fails the handshake;
//!   `want` asks and accepts none; `none` does not ask.
//! - `ssl.protocol` / `ssl.enabledProtocols` name TLSv1.2 and TLSv1.3 (or
//!   `TLS` for both); anything older is refused at start, naming the key.
//! - `ssl.ciphersuites` take the IANA names Java uses; a name rustls does
//!   not offer is refused at start, naming it.
//! - The stores are re-read when their files change (certificate rotation
//!   without a restart): each handshake looks at the files' modification
//!   times at most once per [`RELOAD_CHECK_EVERY`]; a store that no longer
//!   loads keeps the previous configuration serving, with a warning.
//!
//! Invariant: a connection reaches the frame loop over TLS only after a
//! completed handshake; a handshake that has not completed by the
//! connection's first-frame deadline is abandoned and the socket closed.

use crate::keystore::{self, StoreSpec};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::{info, warn};
use x509_parser::prelude::{FromDer, X509Certificate};

/// How often a handshake may look for changed store files.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The first byte of a TLS record carrying a handshake (ClientHello). A
/// ZooKeeper frame starting with it would announce more than 369 MB, far
/// past any `jute.maxbuffer`, so the two cannot be confused.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// `ssl.clientAuth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    Need,
    Want,
    None,
}

/// TLS protocol versions rustls offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tls12,
    Tls13,
}

/// Everything the TLS configuration is built from (zoo.cfg's `ssl.*`).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub key_store: StoreSpec,
    pub trust_store: Option<StoreSpec>,
    pub client_auth: ClientAuth,
    /// Enabled versions, at least one.
    pub protocols: Vec<Protocol>,
    /// IANA cipher suite names, or `None` for rustls' defaults.
    pub cipher_suites: Option<Vec<String>>,
}

/// A TLS setting Paddock cannot honour, or a store it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Store(#[from] keystore::StoreError),
    #[error("{key}={value}: {why}")]
    Setting {
        key: &'static str,
        value: String,
        why: String,
    },
    #[error("ssl.clientAuth={0} needs a trust store (ssl.trustStore.location) to check client certificates against")]
    NoTrustStore(&'static str),
    #[error("building the TLS configuration: {0}")]
    Rustls(String),
}

/// The ring provider restricted to `ssl.ciphersuites`.
pub fn provider_for(settings: &TlsSettings) -> Result<CryptoProvider, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = &settings.cipher_suites {
        let mut chosen = Vec::new();
        for name in names {
            let found = p.cipher_suites.iter().find(|s| {
                let ours = s.suite().as_str().unwrap_or("");
                // rustls spells TLS 1.3 suites TLS13_*, IANA and Java TLS_*.
                ours == name || ours.replacen("TLS13_", "TLS_", 1) == *name
            });
            match found {
                Some(s) => chosen.push(*s),
                None => {
                    return Err(TlsError::Setting {
                        key: "ssl.ciphersuites",
                        value: names.join(","),
                        why: format!(
                            "{name} is not offered by paddock's TLS library (rustls); offered: {}",
                            offered_suites().join(", ")
                        ),
                    })
                }
            }
        }
        p.cipher_suites = chosen;
    }
    Ok(p)
}

/// The cipher suites rustls offers, in IANA spelling.
pub fn offered_suites() -> Vec<String> {
    rustls::crypto::ring::default_provider()
        .cipher_suites
        .iter()
        .map(|s| {
            s.suite()
                .as_str()
                .unwrap_or("?")
                .replacen("TLS13_", "TLS_", 1)
        })
        .collect()
}

/// The rustls versions of the enabled protocols.
pub fn protocol_versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|p| match p {
            Protocol::Tls12 => &rustls::version::TLS12,
            Protocol::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// Builds the rustls server configuration from the stores as they are now.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider_for(settings)?);
    let versions = protocol_versions(settings);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(format!("{e} (ssl.ciphersuites vs ssl.enabledProtocols)")))?;
    let (chain, key) = keystore::load_key_store(&settings.key_store)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let label = if auth == ClientAuth::Need {
                "need"
            } else {
                "want"
            };
            let spec = settings
                .trust_store
                .as_ref()
                .ok_or(TlsError::NoTrustStore(label))?;
            let mut roots = RootCertStore::empty();
            for cert in keystore::load_trust_store(spec)? {
                roots.add(cert).map_err(|e| keystore::StoreError::Content {
                    key: spec.key_prefix,
                    path: spec.path.clone(),
                    why: format!("a trusted certificate is not usable: {e}"),
                })?;
            }
            let mut vb = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if auth == ClientAuth::Want {
                vb = vb.allow_unauthenticated();
            }
            let verifier = vb.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(format!("the key store's key and certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The files a configuration was built from and when they last changed.
fn stamps(settings: &TlsSettings) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut paths = vec![settings.key_store.path.clone()];
    if let Some(t) = &settings.trust_store {
        paths.push(t.path.clone());
    }
    paths
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect()
}

struct Current {
    config: Arc<ServerConfig>,
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    checked: Instant,
}

/// The acceptor side of client TLS: the current configuration, rebuilt
/// when the store files change.
pub struct TlsAcceptor {
    settings: TlsSettings,
    current: Mutex<Current>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("settings", &self.settings)
            .finish()
    }
}

impl TlsAcceptor {
    /// Loads the stores; an error here stops the server at start.
    pub fn new(settings: TlsSettings) -> Result<TlsAcceptor, TlsError> {
        let config = server_config(&settings)?;
        let stamps = stamps(&settings);
        Ok(TlsAcceptor {
            settings,
            current: Mutex::new(Current {
                config,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.settings.client_auth
    }

    /// The configuration for the next handshake, re-read first if a store
    /// file changed.
    pub fn config(&self) -> Arc<ServerConfig> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.checked.elapsed() >= RELOAD_CHECK_EVERY {
            cur.checked = Instant::now();
            let now = stamps(&self.settings);
            if now != cur.stamps {
                match server_config(&self.settings) {
                    Ok(c) => {
                        info!("TLS key or trust store changed on disk: reloaded");
                        cur.config = c;
                        cur.stamps = now;
                    }
                    Err(e) => {
                        warn!("TLS key or trust store changed on disk but does not load ({e}); serving with the previous one");
                        cur.stamps = now;
                    }
                }
            }
        }
        cur.config.clone()
    }
}

/// Whether a fresh connection on a unified port speaks TLS, from its
/// first byte (left unread). `None`: the peer closed or sent nothing
/// before `deadline`.
pub async fn sniff_tls(stream: &TcpStream, deadline: tokio::time::Instant) -> Option<bool> {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0] == TLS_HANDSHAKE_BYTE),
        _ => None,
    }
}

/// Why a TLS connection did not get past its handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    #[error("no completed TLS handshake within {} ms of accepting it", .0.as_millis())]
    Stalled(Duration),
}

/// Runs the server side of the handshake, bounded by `deadline`; returns
/// the stream and the client certificate's subject (the `x509` id), if
/// the client presented one.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    deadline: tokio::time::Instant,
    wait_max: Duration,
) -> Result<(TlsStream<TcpStream>, Option<String>), HandshakeError> {
    let a = tokio_rustls::TlsAcceptor::from(acceptor.config());
    let tls = match tokio::time::timeout_at(deadline, a.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(HandshakeError::Failed(e)),
        Err(_) => return Err(HandshakeError::Stalled(wait_max)),
    };
    let subject = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|c| subject_rfc2253(c.as_ref()));
    Ok((tls, subject))
}

/// The subject of a DER certificate as Java's
/// `X500Principal.getName()` (RFC 2253) writes it, which is the id
/// ZooKeeper's `x509` scheme gives a client: RDNs most specific first,
/// separated by `,`; the attribute keywords RFC 2253 defines, other types
/// as dotted OIDs with the value as `#` and the hex of its DER encoding.
pub fn subject_rfc2253(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let keyword = match oid.as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.9" => Some("STREET"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            let text = match (keyword, ava.as_str()) {
                (Some(k), Ok(s)) => format!("{k}={}", escape_rfc2253(s)),
                _ => {
                    let v = ava.attr_value();
                    let mut der = Vec::with_capacity(v.data.len() + 4);
                    push_der_header(&mut der, v.header.raw_tag(), v.data.len(), v.tag().0);
                    der.extend_from_slice(v.data);
                    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{}=#{hex}", keyword.map(str::to_owned).unwrap_or(oid))
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The identifier and length octets of a DER value (universal, primitive
/// string types: one tag byte).
fn push_der_header(out: &mut Vec<u8>, raw: Option<&[u8]>, len: usize, tag: u32) {
    match raw {
        Some(r) if !r.is_empty() => out.push(r[0]),
        _ => out.push(tag as u8),
    }
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn escape_rfc2253(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_escapes_what_java_escapes() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("#1"), "\\#1");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }

    #[test]
    fn tls13_suites_are_named_as_java_names_them() {
        let names = offered_suites();
        assert!(
            names.iter().any(|n| n == "TLS_AES_128_GCM_SHA256"),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "{names:?}"
        );
    }
}
