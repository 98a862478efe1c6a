//! Links between the servers of an ensemble.
//!
//! One TCP link per pair of servers: the server with the larger id dials,
//! the smaller accepts (ZooKeeper's rule, so two servers never keep two
//! links). A link opens with a handshake `PDKP`, a u32 version, the
//! dialler's u64 server id and a u64 digest of the ensemble's server list
//! (two members configured with different `server.N` lines refuse each
//! other); the acceptor answers one byte, `HANDSHAKE_OK` or
//! `HANDSHAKE_MEMBERSHIP`, so both ends log the mismatch and name the
//! key. Then frames of `[u32 BE length][bytes]`, the
//! bytes opaque here (the core encodes and checks them). A dialler retries
//! with backoff forever; a broken link is reported as `PeerEvent::Down`
//! before any message of the next connection, which is the ordering the
//! core relies on. Garbage on the port, an unknown server id or an
//! oversized frame closes that connection with a logged reason.
//!
//! With [`PeerTls`] (`sslQuorum=true`) every link is TLS with mutual
//! authentication before the handshake above; a peer that fails it is
//! refused with a logged reason.

use crate::peer_sasl::{self, PeerSasl};
use crate::peer_tls::PeerTls;
use paddock_core::ServerId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub const PEER_MAGIC: &[u8; 4] = b"PDKP";
pub const PEER_LINK_VERSION: u32 = 2;
/// The acceptor's answer to a handshake: the link is up.
pub const HANDSHAKE_OK: u8 = 0;
/// The acceptor's answer to a handshake: our `server.N` lists differ.
pub const HANDSHAKE_MEMBERSHIP: u8 = 1;
/// The largest peer frame (a SNAP carries a whole snapshot).
pub const PEER_FRAME_MAX: usize = 1 << 30;
/// Messages queued for one peer before new ones are dropped (the core
/// tolerates loss: it times out and re-syncs).
pub const PEER_QUEUE_MAX: usize = 100_000;

/// What the links report to the driver, in order per peer.
#[derive(Debug)]
pub enum PeerEvent {
    Up(ServerId),
    Message(ServerId, Vec<u8>),
    Down(ServerId),
}

#[derive(Debug, thiserror::Error)]
pub enum PeerLinkError {
    #[error("bad handshake magic {0:?}")]
    Magic([u8; 4]),
    #[error("peer link version {0}, this server speaks {PEER_LINK_VERSION}")]
    Version(u32),
    #[error("server id {0} is not a member that dials this server")]
    UnknownPeer(u64),
    #[error("server {peer} has a different server.N list (digest {theirs:x}, ours {ours:x}): check the server.N lines of both zoo.cfg files")]
    Membership { peer: u64, theirs: u64, ours: u64 },
    #[error("quorum SASL: {0}")]
    Sasl(String),
    #[error("frame of {0} bytes exceeds the peer frame limit")]
    FrameTooLarge(usize),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Per peer: the current connection's generation and sender. Every event
/// is emitted under this lock after checking the generation, so nothing of
/// a replaced connection reaches the driver after its successor's `Up`.
#[derive(Default)]
struct Link {
    generation: u64,
    sender: Option<mpsc::Sender<Vec<u8>>>,
}

type Senders = Arc<Mutex<BTreeMap<ServerId, Link>>>;

/// The running links of this server.
#[derive(Clone)]
pub struct PeerNet {
    senders: Senders,
}

impl PeerNet {
    /// Starts listening on `listen` (every address given: ZooKeeper's
    /// quorum and election ports both accept links) and dialling the
    /// members with smaller ids.
    pub async fn start(
        me: ServerId,
        members: BTreeMap<ServerId, SocketAddr>,
        listen: Vec<SocketAddr>,
        membership: u64,
        events: mpsc::UnboundedSender<PeerEvent>,
        tls: Option<PeerTls>,
        sasl: Option<Arc<PeerSasl>>,
    ) -> std::io::Result<PeerNet> {
        let senders: Senders = Arc::new(Mutex::new(BTreeMap::new()));
        for addr in listen {
            let listener = TcpListener::bind(addr).await?;
            info!("peer links: listening on {addr}");
            let (senders, events, members) = (senders.clone(), events.clone(), members.clone());
            let tls = tls.clone();
            let sasl = sasl.clone();
            tokio::spawn(async move {
                loop {
                    let (stream, from) = match listener.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            warn!("peer accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let (senders, events, members) =
                        (senders.clone(), events.clone(), members.clone());
                    let tls = tls.clone();
                    let sasl = sasl.clone();
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        let Some(tls) = tls else {
                            match accept_handshake(
                                stream,
                                me,
                                &members,
                                membership,
                                sasl.as_deref(),
                            )
                            .await
                            {
                                Ok((peer, stream)) => {
                                    let (rd, wr) = stream.into_split();
                                    run_link(peer, rd, wr, senders, events).await;
                                }
                                Err(e) => log_refused(from, e),
                            }
                            return;
                        };
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls.acceptor.config());
                        let stream = match tokio::time::timeout(
                            HANDSHAKE_WAIT,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                warn!("peer connection from {from} refused: TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                warn!("peer connection from {from} refused: no TLS handshake within {} s", HANDSHAKE_WAIT.as_secs());
                                return;
                            }
                        };
                        match accept_handshake(stream, me, &members, membership, sasl.as_deref())
                            .await
                        {
                            Ok((peer, stream)) => {
                                let (rd, wr) = tokio::io::split(stream);
                                run_link(peer, rd, wr, senders, events).await;
                            }
                            Err(e) => log_refused(from, e),
                        }
                    });
                }
            });
        }
        for (&peer, &addr) in members.iter().filter(|(p, _)| **p < me) {
            let (senders, events) = (senders.clone(), events.clone());
            let tls = tls.clone();
            let sasl = sasl.clone();
            tokio::spawn(async move {
                let mut backoff = Duration::from_millis(20);
                // A refusal is logged once until a link succeeds (the
                // dialler retries every second).
                let mut refused_logged = false;
                loop {
                    match TcpStream::connect(addr).await {
                        Ok(stream) => {
                            let _ = stream.set_nodelay(true);
                            let mut hello = Vec::with_capacity(24);
                            hello.extend_from_slice(PEER_MAGIC);
                            hello.extend_from_slice(&PEER_LINK_VERSION.to_be_bytes());
                            hello.extend_from_slice(&me.0.to_be_bytes());
                            hello.extend_from_slice(&membership.to_be_bytes());
                            let answer = match &tls {
                                None => {
                                    let mut stream = stream;
                                    match dial_handshake(&mut stream, &hello, sasl.as_deref()).await
                                    {
                                        Ok(HANDSHAKE_OK) => {
                                            backoff = Duration::from_millis(20);
                                            refused_logged = false;
                                            let (rd, wr) = stream.into_split();
                                            run_link(peer, rd, wr, senders.clone(), events.clone())
                                                .await;
                                            Ok(HANDSHAKE_OK)
                                        }
                                        other => other,
                                    }
                                }
                                Some(tls) => {
                                    let name = PeerTls::server_name(addr);
                                    match tokio::time::timeout(
                                        HANDSHAKE_WAIT,
                                        tls.connector.connect(name, stream),
                                    )
                                    .await
                                    {
                                        Ok(Ok(mut stream)) => {
                                            match dial_handshake(
                                                &mut stream,
                                                &hello,
                                                sasl.as_deref(),
                                            )
                                            .await
                                            {
                                                Ok(HANDSHAKE_OK) => {
                                                    backoff = Duration::from_millis(20);
                                                    refused_logged = false;
                                                    let (rd, wr) = tokio::io::split(stream);
                                                    run_link(
                                                        peer,
                                                        rd,
                                                        wr,
                                                        senders.clone(),
                                                        events.clone(),
                                                    )
                                                    .await;
                                                    Ok(HANDSHAKE_OK)
                                                }
                                                other => other,
                                            }
                                        }
                                        Ok(Err(e)) => {
                                            if !refused_logged {
                                                refused_logged = true;
                                                warn!("TLS handshake with server {} at {addr} failed: {e}", peer.0);
                                            }
                                            Err(e)
                                        }
                                        Err(_) => Err(std::io::Error::new(
                                            std::io::ErrorKind::TimedOut,
                                            "no TLS handshake within 5 s",
                                        )),
                                    }
                                }
                            };
                            match answer {
                                Ok(HANDSHAKE_OK) => {}
                                Ok(HANDSHAKE_MEMBERSHIP) if !refused_logged => {
                                    refused_logged = true;
                                    tracing::error!(
                                        "server {} at {addr} refuses our link: it has a different server.N list; check the server.N lines of both zoo.cfg files",
                                        peer.0
                                    );
                                }
                                Ok(other) => debug!(
                                    "server {} at {addr} refused our link (answer {other})",
                                    peer.0
                                ),
                                Err(e) => debug!("handshake with server {} at {addr}: {e}", peer.0),
                            }
                        }
                        Err(e) => debug!("dial of server {} at {addr} failed: {e}", peer.0),
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(1000));
                }
            });
        }
        Ok(PeerNet { senders })
    }

    /// Queues a message for a peer; dropped if the link is down or full.
    pub fn send(&self, to: ServerId, bytes: Vec<u8>) {
        let tx = self
            .senders
            .lock()
            .expect("peer senders lock")
            .get(&to)
            .and_then(|l| l.sender.clone());
        if let Some(tx) = tx {
            if tx.try_send(bytes).is_err() {
                debug!("dropping a message to server {}: link down or full", to.0);
            }
        }
    }

    /// Drops the current link to a peer (it is re-established).
    pub fn close(&self, peer: ServerId) {
        if let Some(l) = self
            .senders
            .lock()
            .expect("peer senders lock")
            .get_mut(&peer)
        {
            l.sender = None;
        }
    }
}

/// How long a peer has for the TLS handshake and for the link handshake.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(5);

fn log_refused(from: SocketAddr, e: PeerLinkError) {
    match e {
        e @ PeerLinkError::Membership { .. } => {
            tracing::error!("peer connection from {from} refused: {e}")
        }
        e => warn!("peer connection from {from} refused: {e}"),
    }
}

/// Sends the dialler's hello and returns the acceptor's one-byte answer.
async fn dial_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    hello: &[u8],
    sasl: Option<&PeerSasl>,
) -> std::io::Result<u8> {
    let answer = dial_hello(stream, hello).await?;
    if let (HANDSHAKE_OK, Some(sasl)) = (answer, sasl) {
        tokio::time::timeout(HANDSHAKE_WAIT, peer_sasl::as_client(stream, sasl))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "quorum SASL: no answer within 5 s",
                )
            })?
            .map_err(|e| {
                warn!("quorum SASL with a peer failed: {e}");
                std::io::Error::other(format!("quorum SASL: {e}"))
            })?;
    }
    Ok(answer)
}

async fn dial_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    hello: &[u8],
) -> std::io::Result<u8> {
    stream.write_all(hello).await?;
    stream.flush().await?;
    let mut answer = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut answer))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 5 s"))??;
    Ok(answer[0])
}

async fn accept_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    me: ServerId,
    members: &BTreeMap<ServerId, SocketAddr>,
    membership: u64,
    sasl: Option<&PeerSasl>,
) -> Result<(ServerId, S), PeerLinkError> {
    let (peer, mut stream) = accept_hello(stream, me, members, membership).await?;
    if let Some(sasl) = sasl {
        let id = tokio::time::timeout(HANDSHAKE_WAIT, peer_sasl::as_server(&mut stream, sasl))
            .await
            .map_err(|_| PeerLinkError::Sasl("no answer within 5 s".into()))?
            .map_err(PeerLinkError::Sasl)?;
        info!("server {} authenticated by quorum SASL as {id}", peer.0);
    }
    Ok((peer, stream))
}

async fn accept_hello<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    me: ServerId,
    members: &BTreeMap<ServerId, SocketAddr>,
    membership: u64,
) -> Result<(ServerId, S), PeerLinkError> {
    let mut hello = [0u8; 24];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut hello))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no handshake within 5 s")
        })??;
    let magic: [u8; 4] = hello[..4].try_into().expect("4 bytes");
    if &magic != PEER_MAGIC {
        return Err(PeerLinkError::Magic(magic));
    }
    let version = u32::from_be_bytes(hello[4..8].try_into().expect("4 bytes"));
    if version != PEER_LINK_VERSION {
        return Err(PeerLinkError::Version(version));
    }
    let id = u64::from_be_bytes(hello[8..16].try_into().expect("8 bytes"));
    let peer = ServerId(id);
    if !members.contains_key(&peer) || peer <= me {
        return Err(PeerLinkError::UnknownPeer(id));
    }
    let theirs = u64::from_be_bytes(hello[16..24].try_into().expect("8 bytes"));
    if theirs != membership {
        let _ = stream.write_all(&[HANDSHAKE_MEMBERSHIP]).await;
        let _ = stream.flush().await;
        return Err(PeerLinkError::Membership {
            peer: id,
            theirs,
            ours: membership,
        });
    }
    stream.write_all(&[HANDSHAKE_OK]).await?;
    stream.flush().await?;
    Ok((peer, stream))
}

/// Runs one connection until it breaks: reports Up, its messages, Down.
async fn run_link<R, W>(
    peer: ServerId,
    mut rd: R,
    wr: W,
    senders: Senders,
    events: mpsc::UnboundedSender<PeerEvent>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PEER_QUEUE_MAX);
    let my_gen = {
        let mut table = senders.lock().expect("peer senders lock");
        let link = table.entry(peer).or_default();
        if link.sender.is_some() {
            // The previous connection is replaced: it is down for the core.
            let _ = events.send(PeerEvent::Down(peer));
        }
        link.generation += 1;
        link.sender = Some(tx);
        let _ = events.send(PeerEvent::Up(peer));
        link.generation
    };
    info!("link to server {} up", peer.0);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(wr);
        while let Some(msg) = rx.recv().await {
            if w.write_all(&(msg.len() as u32).to_be_bytes())
                .await
                .is_err()
                || w.write_all(&msg).await.is_err()
            {
                return;
            }
            // Coalesce whatever else is queued into the same flush.
            while let Ok(more) = rx.try_recv() {
                if w.write_all(&(more.len() as u32).to_be_bytes())
                    .await
                    .is_err()
                    || w.write_all(&more).await.is_err()
                {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });
    let reason = loop {
        let mut len = [0u8; 4];
        if let Err(e) = rd.read_exact(&mut len).await {
            break PeerLinkError::Io(e);
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > PEER_FRAME_MAX {
            break PeerLinkError::FrameTooLarge(n);
        }
        let mut buf = vec![0u8; n];
        if let Err(e) = rd.read_exact(&mut buf).await {
            break PeerLinkError::Io(e);
        }
        let table = senders.lock().expect("peer senders lock");
        let current = table
            .get(&peer)
            .is_some_and(|l| l.generation == my_gen && l.sender.is_some());
        if !current {
            break PeerLinkError::Io(std::io::Error::other("replaced or closed"));
        }
        if events.send(PeerEvent::Message(peer, buf)).is_err() {
            break PeerLinkError::Io(std::io::Error::other("driver gone"));
        }
    };
    writer.abort();
    let mut table = senders.lock().expect("peer senders lock");
    if let Some(link) = table.get_mut(&peer) {
        if link.generation == my_gen {
            link.sender = None;
            let _ = events.send(PeerEvent::Down(peer));
        }
    }
    drop(table);
    info!("link to server {} down: {reason}", peer.0);
}
