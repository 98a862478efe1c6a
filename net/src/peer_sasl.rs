//! Quorum SASL: DIGEST-MD5 between the servers of an ensemble
//! (`quorum.auth.enableSasl=true`), in ZooKeeper's quorum realm
//! (`zk-quorum-sasl-md5`), with the users of the JAAS `QuorumServer`
//! section and the credentials of the `QuorumLearner` section.
//!
//! It runs on a new link right after the link handshake (and after TLS
//! when `sslQuorum` is on): the dialling server is the SASL client, the
//! accepting one the server. Messages are `[u32 BE length][token]`; the
//! server's last message starts with a status byte (0: authenticated,
//! then `rspauth=...`; 1: refused, then the reason). A failure closes the
//! link with a logged reason on both ends; nothing is sent on the link
//! before the exchange succeeded.
//!
//! With Kerberos logins in those sections (Krb5LoginModule), the exchange
//! is SASL GSSAPI instead (RFC 4752, as for clients): the dialler asks a
//! ticket for `quorum.auth.kerberos.servicePrincipal` with its
//! `QuorumLearner` keys and sends its tokens; every answer starts with a
//! status byte (2: a token follows, 0: authenticated, 1: refused and why).
//! The accepting side then checks, as ZooKeeper's quorum server does, that
//! the dialler's principal names one of the ensemble's hosts.

use crate::gssapi::{Acceptor, Context};
use crate::sasl_gssapi::GssapiServer;
use paddock_core::sasl::{self, DigestServer, SaslConfig, ShellStep, Step, QUORUM_REALM};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Both sides' credentials.
#[derive(Clone, Debug)]
pub struct PeerSasl {
    /// `QuorumServer`: who may dial in.
    pub server: SaslConfig,
    /// `QuorumLearner`: who this server is when it dials.
    pub username: String,
    pub password: String,
    /// Kerberos (GSSAPI) instead of DIGEST-MD5, when the JAAS quorum
    /// sections hold Krb5LoginModule logins.
    pub kerberos: Option<Arc<QuorumKerberos>>,
}

/// Quorum GSSAPI: ZooKeeper's `QuorumServer`/`QuorumLearner` Kerberos
/// logins and `quorum.auth.kerberos.servicePrincipal`.
#[derive(Debug)]
pub struct QuorumKerberos {
    /// The `QuorumServer` login: accepts the dialling servers' tickets.
    pub acceptor: Arc<Acceptor>,
    /// The `QuorumLearner` login: gets tickets to dial with.
    pub initiator: Arc<Acceptor>,
    /// The principal a dialling server asks a ticket for.
    pub service_principal: String,
    /// The host names of the ensemble's servers: a dialling server's
    /// principal must name one as its host (`learner/host@REALM`), as
    /// ZooKeeper's quorum server authorizes it.
    pub authorized_hosts: Vec<String>,
}

/// Messages of a Kerberos exchange from the accepting side start with one
/// of these.
const KRB_OK: u8 = 0;
const KRB_REFUSED: u8 = 1;
const KRB_CONTINUE: u8 = 2;
/// Round trips of a Kerberos exchange at most (it takes three).
const KRB_ROUNDS_MAX: usize = 8;

/// Runs a GSSAPI call off the runtime's threads (it may read a keytab or
/// ask the KDC).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the GSSAPI call did not finish: {e}"))
}

async fn krb_server<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    krb: &QuorumKerberos,
) -> Result<String, String> {
    let mut server = Some(GssapiServer::new(Context::new(krb.acceptor.clone())));
    for _ in 0..KRB_ROUNDS_MAX {
        let token = read_token(s).await?;
        let mut srv = server.take().expect("kept between rounds");
        let (srv, step) = blocking(move || {
            let step = srv.step(&token);
            (srv, step)
        })
        .await?;
        server = Some(srv);
        let refuse = |why: String| {
            let mut reply = vec![KRB_REFUSED];
            reply.extend_from_slice(why.as_bytes());
            reply
        };
        match step {
            ShellStep::Challenge(t) => {
                let mut reply = vec![KRB_CONTINUE];
                reply.extend_from_slice(&t);
                write_token(s, &reply).await?;
            }
            ShellStep::Success { principal, .. } => {
                let host = principal_host(&principal);
                if !host.is_some_and(|h| krb.authorized_hosts.iter().any(|a| a == h)) {
                    let why = format!(
                        "{principal} is not a server of this ensemble: its host is none of {:?}",
                        krb.authorized_hosts
                    );
                    let _ = write_token(s, &refuse(why.clone())).await;
                    return Err(why);
                }
                write_token(s, &[KRB_OK]).await?;
                return Ok(principal);
            }
            ShellStep::Failed(why) => {
                let _ = write_token(s, &refuse(why.clone())).await;
                return Err(why);
            }
        }
    }
    Err("the Kerberos exchange took too many rounds".into())
}

async fn krb_client<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    krb: &QuorumKerberos,
) -> Result<(), String> {
    let target = krb.service_principal.clone();
    let me = krb.initiator.principal().to_string();
    let mut ctx = Some(Context::new(krb.initiator.clone()));
    let mut established = false;
    let mut input: Vec<u8> = Vec::new();
    for _ in 0..KRB_ROUNDS_MAX {
        let mut c = ctx.take().expect("kept between rounds");
        let (target, me) = (target.clone(), me.clone());
        let (c, out) = blocking(move || {
            let out = if !established {
                c.initiate(&target, &input)
            } else {
                // The wrapped offer: take "no security layer".
                c.unwrap(&input).and_then(|offer| {
                    if offer.len() != 4 || offer[0] & crate::sasl_gssapi::LAYER_NONE == 0 {
                        return Err(format!("the peer offered no usable layer: {offer:?}"));
                    }
                    let mut choice = vec![crate::sasl_gssapi::LAYER_NONE, 0, 0, 0];
                    choice.extend_from_slice(me.as_bytes());
                    c.wrap(&choice).map(|t| (t, true))
                })
            };
            (c, out)
        })
        .await?;
        ctx = Some(c);
        let (token, done) = out?;
        established = done;
        write_token(s, &token).await?;
        let reply = read_token(s).await?;
        match reply.split_first() {
            Some((&KRB_CONTINUE, t)) => input = t.to_vec(),
            Some((&KRB_OK, _)) => return Ok(()),
            Some((_, why)) => return Err(format!("refused: {}", String::from_utf8_lossy(why))),
            None => return Err("empty answer".into()),
        }
    }
    Err("the Kerberos exchange took too many rounds".into())
}

/// The host of a principal `primary/host@REALM`, if it has one.
fn principal_host(principal: &str) -> Option<&str> {
    let name = principal.split_once('@').map_or(principal, |(n, _)| n);
    name.split_once('/').map(|(_, h)| h)
}

async fn read_token<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let n = u32::from_be_bytes(len) as usize;
    if n > sasl::TOKEN_BYTES_MAX + 1 {
        return Err(format!("SASL token of {n} bytes"));
    }
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}

async fn write_token<S: AsyncWrite + Unpin>(s: &mut S, token: &[u8]) -> Result<(), String> {
    let mut frame = Vec::with_capacity(4 + token.len());
    frame.extend_from_slice(&(token.len() as u32).to_be_bytes());
    frame.extend_from_slice(token);
    s.write_all(&frame).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system's secure generator, through the TLS library's provider.
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .is_err()
    {
        panic!("the system's random number generator failed");
    }
    b
}

/// The accepting side; returns the peer's authorization id.
pub async fn as_server<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &PeerSasl,
) -> Result<String, String> {
    if let Some(krb) = &cfg.kerberos {
        return krb_server(s, krb).await;
    }
    let mut server = DigestServer::Start;
    let first = read_token(s).await?;
    let challenge = match server.step_in(&QUORUM_REALM, &first, &cfg.server, random()) {
        Ok(Step::Challenge(c)) => c,
        other => return Err(format!("unexpected first step: {other:?}")),
    };
    write_token(s, &challenge).await?;
    let response = read_token(s).await?;
    match server.step_in(&QUORUM_REALM, &response, &cfg.server, random()) {
        Ok(Step::Success {
            token,
            authorization_id,
        }) => {
            let mut reply = vec![0u8];
            reply.extend_from_slice(&token);
            write_token(s, &reply).await?;
            Ok(authorization_id)
        }
        Ok(Step::Challenge(_)) => Err("a second challenge".into()),
        Err(e) => {
            let mut reply = vec![1u8];
            reply.extend_from_slice(e.to_string().as_bytes());
            let _ = write_token(s, &reply).await;
            Err(e.to_string())
        }
    }
}

/// The dialling side.
pub async fn as_client<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &PeerSasl,
) -> Result<(), String> {
    if let Some(krb) = &cfg.kerberos {
        return krb_client(s, krb).await;
    }
    write_token(s, b"").await?;
    let challenge = read_token(s).await?;
    let cnonce: String = random::<16>().iter().map(|b| format!("{b:02x}")).collect();
    let (response, rspauth) = sasl::client_response(
        &QUORUM_REALM,
        &challenge,
        &cfg.username,
        &cfg.password,
        &cnonce,
    )
    .map_err(|e| e.to_string())?;
    write_token(s, &response).await?;
    let reply = read_token(s).await?;
    match reply.split_first() {
        Some((0, token)) if token == rspauth.as_slice() => Ok(()),
        Some((0, _)) => {
            Err("the peer's rspauth does not match: it does not know our password".into())
        }
        Some((_, why)) => Err(format!("refused: {}", String::from_utf8_lossy(why))),
        None => Err("empty answer".into()),
    }
}
