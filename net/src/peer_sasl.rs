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

use paddock_core::sasl::{self, DigestServer, SaslConfig, Step, QUORUM_REALM};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Both sides' credentials.
#[derive(Clone, Debug)]
pub struct PeerSasl {
    /// `QuorumServer`: who may dial in.
    pub server: SaslConfig,
    /// `QuorumLearner`: who this server is when it dials.
    pub username: String,
    pub password: String,
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
