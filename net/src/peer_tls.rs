//! TLS between the servers of an ensemble (`sslQuorum=true` with the
//! `ssl.quorum.*` stores), always mutual: the accepting server requires a
//! certificate its trust store vouches for, the dialling server checks the
//! acceptor's certificate against the same kind of store and, unless
//! `ssl.quorum.hostnameVerification=false`, against the address it dialled
//! (the IP of the `server.N` line: the certificate needs it as an IP
//! subject alternative name).
//!
//! A peer that fails the handshake (no certificate, one from a foreign CA,
//! plaintext) is refused with a logged reason; the links of the others are
//! untouched, so the quorum goes on without it.

use crate::keystore;
use crate::tls::{protocol_versions, provider_for, TlsAcceptor, TlsError, TlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::net::SocketAddr;
use std::sync::Arc;

/// Both ends of peer TLS.
#[derive(Clone)]
pub struct PeerTls {
    pub acceptor: Arc<TlsAcceptor>,
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

/// Accepts a certificate for any name: `ssl.quorum.hostnameVerification=false`.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl PeerTls {
    /// Loads the quorum stores (an error stops the server at start).
    /// `settings.client_auth` is ignored: peers always authenticate both
    /// ways.
    pub fn new(mut settings: TlsSettings, verify_hostname: bool) -> Result<PeerTls, TlsError> {
        settings.client_auth = crate::tls::ClientAuth::Need;
        let trust = settings
            .trust_store
            .clone()
            .ok_or(TlsError::NoTrustStore("need"))?;
        let acceptor = Arc::new(TlsAcceptor::new(settings.clone())?);
        let provider = Arc::new(provider_for(&settings)?);
        let mut roots = RootCertStore::empty();
        for cert in keystore::load_trust_store(&trust)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Rustls(format!("ssl.quorum.trustStore: {e}")))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = if verify_hostname {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        };
        let (chain, key) = keystore::load_key_store(&settings.key_store)?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&protocol_versions(&settings))
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                TlsError::Rustls(format!("the quorum key store's key and certificate: {e}"))
            })?;
        Ok(PeerTls {
            acceptor,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The name a dialled peer's certificate must carry.
    pub fn server_name(addr: SocketAddr) -> ServerName<'static> {
        ServerName::IpAddress(addr.ip().into())
    }
}
