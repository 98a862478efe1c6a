//! Reading ZooKeeper's key and trust stores: PEM and PKCS12 files.
//!
//! Mirrors `X509Util`/`KeyStoreFileType`: the type is `ssl.keyStore.type`
//! (`PEM`, `PKCS12`, `JKS`, `BCFKS`, any case) or, unset, inferred from the
//! file name (`.pem`, `.p12`/`.pfx`, `.jks`, `.bcfks`). A PEM key store is
//! one file with the private key (PKCS#8, PKCS#1 or SEC1, unencrypted) and
//! the certificate chain; a PEM trust store is certificates. PKCS12 is read
//! with `p12-keystore` (pure Rust, PBES1 and PBES2 as Java and OpenSSL 3
//! write them).
//!
//! JKS is Java's own format and no maintained Rust crate reads it; a true
//! JKS file is refused with the `keytool` command that converts it. Java 9
//! and later write PKCS12 even for a file named `.jks` and Java reads such
//! a file as JKS transparently; so does Paddock (the content decides).

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

/// The store formats ZooKeeper names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
    Bcfks,
}

impl StoreType {
    /// `ssl.*Store.type` as ZooKeeper spells it (any case).
    pub fn parse(s: &str) -> Option<StoreType> {
        match s.to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "JKS" => Some(StoreType::Jks),
            "BCFKS" => Some(StoreType::Bcfks),
            _ => None,
        }
    }

    fn from_file_name(path: &Path) -> Option<StoreType> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pem" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "jks" => Some(StoreType::Jks),
            "bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }
}

/// One configured store: `ssl.keyStore.*` or `ssl.trustStore.*` (or the
/// `ssl.quorum.` ones).
#[derive(Clone, Debug)]
pub struct StoreSpec {
    /// The keys' common prefix, for messages (`ssl.keyStore`).
    pub key_prefix: &'static str,
    pub path: PathBuf,
    pub password: Option<String>,
    pub kind: Option<StoreType>,
}

/// A store that cannot be used, naming the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}.location={}: cannot read it: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}.location={}: its type is not known from the file name; set {key}.type to PEM or PKCS12", path.display())]
    UnknownType { key: &'static str, path: PathBuf },
    #[error("{key}.location={}: a JKS store, which paddock cannot read. Convert it to PKCS12 with \
             `keytool -importkeystore -srckeystore {} -srcstoretype JKS -destkeystore {}.p12 -deststoretype PKCS12`, \
             then set {key}.location to the new file and {key}.type=PKCS12", path.display(), path.display(), path.display())]
    Jks { key: &'static str, path: PathBuf },
    #[error("{key}.type=BCFKS ({}): BouncyCastle FIPS stores are not supported; convert to PKCS12 or PEM", path.display())]
    Bcfks { key: &'static str, path: PathBuf },
    #[error("{key}.location={}: {why}", path.display())]
    Content {
        key: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// The magic number opening a Java KeyStore (JKS) file.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

fn read(spec: &StoreSpec) -> Result<(StoreType, Vec<u8>), StoreError> {
    let kind = match spec.kind.or_else(|| StoreType::from_file_name(&spec.path)) {
        Some(k) => k,
        None => {
            return Err(StoreError::UnknownType {
                key: spec.key_prefix,
                path: spec.path.clone(),
            })
        }
    };
    let bytes = std::fs::read(&spec.path).map_err(|source| StoreError::Read {
        key: spec.key_prefix,
        path: spec.path.clone(),
        source,
    })?;
    let kind = match kind {
        // A DER SEQUENCE: Java 9+ wrote PKCS12 under a JKS name.
        StoreType::Jks if bytes.first() == Some(&0x30) => StoreType::Pkcs12,
        StoreType::Jks => {
            return Err(StoreError::Jks {
                key: spec.key_prefix,
                path: spec.path.clone(),
            })
        }
        StoreType::Bcfks => {
            return Err(StoreError::Bcfks {
                key: spec.key_prefix,
                path: spec.path.clone(),
            })
        }
        StoreType::Pkcs12 if bytes.starts_with(&JKS_MAGIC) => {
            return Err(StoreError::Jks {
                key: spec.key_prefix,
                path: spec.path.clone(),
            })
        }
        k => k,
    };
    Ok((kind, bytes))
}

fn content(spec: &StoreSpec, why: impl Into<String>) -> StoreError {
    StoreError::Content {
        key: spec.key_prefix,
        path: spec.path.clone(),
        why: why.into(),
    }
}

fn pkcs12(
    spec: &StoreSpec,
    bytes: &[u8],
    policy: Pkcs12ImportPolicy,
) -> Result<KeyStore, StoreError> {
    let password = spec.password.as_deref().unwrap_or("");
    KeyStore::from_pkcs12(bytes, password, policy).map_err(|e| {
        content(
            spec,
            format!(
                "not a PKCS12 store this password ({}.password) opens: {e}",
                spec.key_prefix
            ),
        )
    })
}

/// The certificate chain and private key of a key store.
pub fn load_key_store(
    spec: &StoreSpec,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StoreError> {
    let (kind, bytes) = read(spec)?;
    match kind {
        StoreType::Pem => {
            if bytes
                .windows(b"ENCRYPTED PRIVATE KEY".len())
                .any(|w| w == b"ENCRYPTED PRIVATE KEY")
            {
                return Err(content(
                    spec,
                    "an encrypted PEM private key; paddock reads unencrypted PEM keys (decrypt it with \
                     `openssl pkcs8 -topk8 -nocrypt`) or a PKCS12 store with its password",
                ));
            }
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| content(spec, format!("bad PEM certificate: {e}")))?;
            if chain.is_empty() {
                return Err(content(spec, "no certificate in the PEM key store"));
            }
            let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                content(
                    spec,
                    format!("no usable private key in the PEM key store: {e}"),
                )
            })?;
            Ok((chain, key))
        }
        _ => {
            let store = pkcs12(spec, &bytes, Pkcs12ImportPolicy::Strict)?;
            let Some((_, chain)) = store.private_key_chain() else {
                return Err(content(
                    spec,
                    "no private key with its certificate in the PKCS12 store",
                ));
            };
            let certs: Vec<CertificateDer<'static>> = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            if certs.is_empty() {
                return Err(content(spec, "the PKCS12 store's key has no certificate"));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certs, key))
        }
    }
}

/// The certificates of a trust store.
pub fn load_trust_store(spec: &StoreSpec) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let (kind, bytes) = read(spec)?;
    let certs: Vec<CertificateDer<'static>> = match kind {
        StoreType::Pem => CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| content(spec, format!("bad PEM certificate: {e}")))?,
        _ => {
            let store = pkcs12(spec, &bytes, Pkcs12ImportPolicy::Raw)?;
            let mut out = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    KeyStoreEntry::Certificate(c) => {
                        out.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    KeyStoreEntry::PrivateKeyChain(ch) => out.extend(
                        ch.certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec())),
                    ),
                    KeyStoreEntry::Secret(_) => {}
                }
            }
            out
        }
    };
    if certs.is_empty() {
        return Err(content(spec, "no certificate in the trust store"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &Path, kind: Option<StoreType>) -> StoreSpec {
        StoreSpec {
            key_prefix: "ssl.keyStore",
            path: path.to_path_buf(),
            password: Some("pw".into()),
            kind,
        }
    }

    // Goal: a real JKS file is refused with the conversion command; a
    // PKCS12 body under a .jks name is read as PKCS12 (as Java does), so
    // its failure here is about the content, not the type.
    #[test]
    fn jks_is_refused_naming_keytool() {
        let d = tempfile::tempdir().expect("tempdir");
        let jks = d.path().join("server.jks");
        std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).expect("write");
        let e = load_key_store(&spec(&jks, None))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("keytool -importkeystore"), "{e}");
        assert!(e.contains("ssl.keyStore"), "{e}");
        let e = load_key_store(&spec(&jks, Some(StoreType::Pkcs12)))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("JKS"), "{e}");
        std::fs::write(&jks, [0x30, 0x03, 0x02, 0x01, 0x03]).expect("write");
        let e = load_key_store(&spec(&jks, None))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("PKCS12"), "{e}");
    }

    #[test]
    fn unknown_extension_asks_for_the_type() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("server.key");
        std::fs::write(&f, b"x").expect("write");
        let e = load_key_store(&spec(&f, None))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("ssl.keyStore.type"), "{e}");
        assert_eq!(StoreType::parse("pkcs12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::parse("PEM"), Some(StoreType::Pem));
        assert_eq!(StoreType::parse("foo"), None);
    }
}
