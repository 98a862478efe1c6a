//! The client listener: accepts ZooKeeper clients, enforces `maxCnxns`
//! (connections in all) and `maxClientCnxns` (per client IP), and runs one
//! task per connection.
//!
//! As in ZooKeeper's connection factories, both limits count the open
//! connections of one listener (a secure port counts its own), four-letter
//! words included, and a connection past a limit is accepted and closed at
//! once, before anything is read from it.
//!
//! A connection task owns its socket. It reads frames (see [`framing`]) and
//! hands them to the driver in order as [`NetEvent::Frame`]; it writes what
//! the driver queued on its [`ConnHandle`], coalescing everything queued
//! into one write. A framing violation closes only that connection, with a
//! warning naming the peer and the reason; the listener keeps serving.
//!
//! A connection that has not delivered its first complete frame (the
//! ConnectRequest, or a four-letter word and its answer) within
//! [`CONNECT_REQUEST_WAIT_MAX`] of being accepted is closed with a warning
//! naming the peer. This mirrors ZooKeeper's NIO server, which expires a
//! connection without a session after `zookeeper.nio.sessionlessCnxnTimeout`
//! (10 s). Once the first frame is through, the wait no longer applies: an
//! established session is bounded by its own session timeout.
//!
//! Invariants: for one connection the driver sees `Connected`, then its
//! frames in arrival order, then exactly one `Closed`. A four-letter-word
//! connection never produces `Connected`: it is a `Command` and nothing
//! else. Bytes queued on a handle and not yet written never exceed
//! `out_queue_bytes_max` for long: past it, the handle reports overflow and
//! the driver drops that client.

use crate::cnxn_limits::{IpCounts, Refused};
use crate::framing::{self, FrameError};
use crate::tls::TlsAcceptor;
use paddock_core::ConnId;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};
use tracing::{debug, info, warn};

/// Bytes read from a socket per `read` call at most.
const READ_CHUNK: usize = 64 * 1024;

/// How long a fresh connection may take to deliver its first complete
/// frame (the ConnectRequest) before it is closed.
///
/// Why 10 s: it is ZooKeeper's own bound for a connection without a
/// session (`zookeeper.nio.sessionlessCnxnTimeout`, default 10,000 ms), so
/// an operator moving from ZooKeeper sees the same behaviour. Not
/// `initLimit * tickTime`: that window is for a learner syncing with its
/// leader (20 s with the defaults), and tuning it for a slow follower
/// should not change how long an idle client socket is held. Unlike
/// ZooKeeper, the wait runs from accept rather than from the last byte
/// read, so a peer sending one byte at a time cannot hold the connection
/// open either; a real client sends its whole ConnectRequest in its first
/// write, so 10 s is far beyond what it needs even over a slow link.
pub const CONNECT_REQUEST_WAIT_MAX: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    /// `jute.maxbuffer`: the largest frame accepted from a client.
    pub max_buffer: u32,
    /// `maxClientCnxns`: concurrent connections per client IP, 0 = no limit.
    pub max_cnxns_per_ip: u32,
    /// `maxCnxns`: concurrent connections in all, 0 = no limit.
    pub max_cnxns: u32,
    /// Bytes queued for one client before it counts as too slow and is
    /// dropped.
    pub out_queue_bytes_max: usize,
    /// TLS on this port (`secureClientPort`, or `client.portUnification`
    /// on the plain port); `None` is plaintext only.
    pub tls: Option<TlsListen>,
    /// SASL GSSAPI (a Kerberos `Server` login): this listener's connections
    /// run the `sasl` requests' GSSAPI steps themselves and hand the core
    /// each outcome ([`NetEvent::SaslStep`]).
    pub gssapi: Option<Arc<crate::gssapi::Acceptor>>,
}

/// How a listener speaks TLS.
#[derive(Clone, Debug)]
pub struct TlsListen {
    pub acceptor: Arc<TlsAcceptor>,
    /// Plaintext accepted too, told apart by the first byte
    /// (`client.portUnification`).
    pub plaintext_too: bool,
}

/// Connection ids, unique across every listener of the process (a server
/// may listen on a plain and a secure port).
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// What the network tells the driver.
#[derive(Debug)]
pub enum NetEvent {
    /// A client connection that is not a four-letter word.
    Connected {
        conn: ConnId,
        peer: SocketAddr,
        handle: ConnHandle,
        /// The subject of the client's TLS certificate (RFC 2253, as
        /// ZooKeeper's `x509` scheme names it), when it presented one.
        x509_subject: Option<String>,
    },
    /// One client frame, length prefix stripped.
    Frame { conn: ConnId, frame: Vec<u8> },
    /// One GSSAPI step of a `sasl` request (with this xid), in the place of
    /// that request's frame.
    SaslStep {
        conn: ConnId,
        xid: i32,
        step: paddock_core::sasl::ShellStep,
    },
    /// The connection is gone; nothing more will come from or go to it.
    Closed { conn: ConnId },
    /// A four-letter word on a fresh connection; the answer sent on
    /// `reply` is written and the connection closed.
    Command {
        word: &'static str,
        peer: SocketAddr,
        reply: oneshot::Sender<Vec<u8>>,
    },
}

enum Outgoing {
    Bytes(Vec<u8>),
    Close,
}

/// The driver's side of one connection.
#[derive(Debug)]
pub struct ConnHandle {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    kill: Arc<Notify>,
    queued_max: usize,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outgoing::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Outgoing::Close => write!(f, "Close"),
        }
    }
}

/// The client reads too slowly: too many bytes wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{queued} bytes queued for a slow client (max {max})")]
pub struct Overflow {
    pub queued: usize,
    pub max: usize,
}

impl ConnHandle {
    /// Queues already-framed bytes (one or more length-prefixed frames).
    pub fn send(&self, bytes: Vec<u8>) -> Result<(), Overflow> {
        let n = bytes.len();
        let queued = self.queued.fetch_add(n, Ordering::Relaxed) + n;
        if queued > self.queued_max {
            return Err(Overflow {
                queued,
                max: self.queued_max,
            });
        }
        // A send error means the task already ended; its `Closed` is on
        // its way, so there is nothing to do here.
        let _ = self.tx.send(Outgoing::Bytes(bytes));
        Ok(())
    }

    /// Writes everything queued so far, then closes.
    pub fn close(&self) {
        let _ = self.tx.send(Outgoing::Close);
    }

    /// Closes at once, dropping whatever is queued.
    pub fn kill(&self) {
        self.kill.notify_one();
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The accept loop, running on its own task.
pub struct ClientListener {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ClientListener {
    /// Binds and starts accepting; events go to `events`.
    pub async fn bind(
        cfg: ListenerConfig,
        events: mpsc::Sender<NetEvent>,
    ) -> io::Result<ClientListener> {
        Self::bind_with_connect_wait(cfg, CONNECT_REQUEST_WAIT_MAX, events).await
    }

    /// [`ClientListener::bind`] with another bound on the wait for a
    /// connection's first frame (tests use a short one).
    async fn bind_with_connect_wait(
        cfg: ListenerConfig,
        connect_wait_max: Duration,
        events: mpsc::Sender<NetEvent>,
    ) -> io::Result<ClientListener> {
        assert!(
            !connect_wait_max.is_zero(),
            "a zero wait would close every connection at once"
        );
        let listener = TcpListener::bind(cfg.addr).await?;
        let local_addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, cfg, connect_wait_max, events));
        Ok(ClientListener { local_addr, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting new connections (open ones keep running).
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    cfg: ListenerConfig,
    connect_wait_max: Duration,
    events: mpsc::Sender<NetEvent>,
) {
    let counts = Arc::new(IpCounts::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off, keep serving.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let guard = match counts.try_add(peer.ip(), cfg.max_cnxns_per_ip, cfg.max_cnxns) {
            Ok(g) => g,
            Err(Refused::Total(n)) => {
                warn!(
                    "too many connections {n} - max is {}; refusing {peer}",
                    cfg.max_cnxns
                );
                drop(stream);
                continue;
            }
            Err(Refused::PerIp(_)) => {
                warn!(
                    "too many connections from {} - max is {}; refusing {peer}",
                    peer.ip(),
                    cfg.max_cnxns_per_ip
                );
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        let events = events.clone();
        let cfg = cfg.clone();
        // Measured from accept, so time spent waiting for the driver to
        // take `Connected` counts too.
        let connect_wait = ConnectWait {
            deadline: Instant::now() + connect_wait_max,
            max: connect_wait_max,
        };
        tokio::spawn(async move {
            match &cfg.tls {
                None => {
                    let (rd, wr) = stream.into_split();
                    run_conn(conn, rd, wr, peer, None, connect_wait, &cfg, &events).await;
                }
                Some(tls) => serve_tls(conn, stream, peer, tls, connect_wait, &cfg, &events).await,
            }
            drop(guard);
        });
    }
}

/// A connection on a TLS port: the handshake (bounded by the first-frame
/// wait), then the same frame loop as plaintext over the TLS stream. On a
/// unified port a first byte that is not a TLS handshake means plaintext.
async fn serve_tls(
    conn: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    tls: &TlsListen,
    connect_wait: ConnectWait,
    cfg: &ListenerConfig,
    events: &mpsc::Sender<NetEvent>,
) {
    if tls.plaintext_too {
        match crate::tls::sniff_tls(&stream, connect_wait.deadline).await {
            Some(true) => {}
            Some(false) => {
                let (rd, wr) = stream.into_split();
                run_conn(conn, rd, wr, peer, None, connect_wait, cfg, events).await;
                return;
            }
            None => {
                if Instant::now() >= connect_wait.deadline {
                    log_no_connect_request(peer, connect_wait.max);
                }
                return;
            }
        }
    }
    match crate::tls::accept(
        &tls.acceptor,
        stream,
        connect_wait.deadline,
        connect_wait.max,
    )
    .await
    {
        Ok((s, subject)) => {
            let (rd, wr) = tokio::io::split(s);
            run_conn(conn, rd, wr, peer, subject, connect_wait, cfg, events).await;
        }
        Err(e) => warn!("closing connection from {peer}: {e}"),
    }
}

/// The bound on a fresh connection's first frame.
#[derive(Clone, Copy, Debug)]
struct ConnectWait {
    deadline: Instant,
    max: Duration,
}

/// Why a connection task ended.
#[derive(Debug)]
enum End {
    Eof,
    Io(io::Error),
    Framing(FrameError),
    /// No complete first frame within this long of the accept.
    NoConnectRequest(Duration),
    ClosedByServer,
    Killed,
    DriverGone,
}

fn log_no_connect_request(peer: SocketAddr, max: Duration) {
    warn!(
        "closing connection from {peer}: no complete ConnectRequest within {} ms of accepting it",
        max.as_millis()
    );
}

/// One connection's frame loop, over any byte stream (a TCP socket's
/// halves, or a TLS stream's).
#[allow(clippy::too_many_arguments)]
async fn run_conn<R, W>(
    conn: ConnId,
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    x509_subject: Option<String>,
    connect_wait: ConnectWait,
    cfg: &ListenerConfig,
    events: &mpsc::Sender<NetEvent>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // The first four bytes decide: a four-letter word or a frame length.
    while inbuf.len() < 4 {
        match timeout_at(connect_wait.deadline, rd.read_buf(&mut inbuf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                log_no_connect_request(peer, connect_wait.max);
                return;
            }
        }
    }
    let first = [inbuf[0], inbuf[1], inbuf[2], inbuf[3]];
    if let Some(word) = framing::four_letter_word(first) {
        // The same bound covers the answer: a client that asks and never
        // reads a long answer must not hold the connection either.
        let answered = timeout_at(connect_wait.deadline, async {
            let (reply, answer) = oneshot::channel();
            if events
                .send(NetEvent::Command { word, peer, reply })
                .await
                .is_err()
            {
                return;
            }
            if let Ok(text) = answer.await {
                let _ = wr.write_all(&text).await;
            }
            let _ = wr.shutdown().await;
        })
        .await;
        if answered.is_err() {
            warn!(
                "closing connection from {peer}: its {word} answer was not taken within {} ms of accepting it",
                connect_wait.max.as_millis()
            );
        }
        return;
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let handle = ConnHandle {
        tx,
        queued: queued.clone(),
        kill: kill.clone(),
        queued_max: cfg.out_queue_bytes_max,
    };
    if events
        .send(NetEvent::Connected {
            conn,
            peer,
            handle,
            x509_subject,
        })
        .await
        .is_err()
    {
        return;
    }
    let mut start = 0usize;
    let mut outbuf: Vec<u8> = Vec::new();
    // Armed until the first frame is handed to the driver; after that the
    // session's own timeout governs the connection.
    let mut awaiting_first_frame = true;
    // The connection's GSSAPI exchange, once a `sasl` request came.
    let mut gss: Option<crate::sasl_gssapi::ConnGss> = None;
    let connect_timer = sleep_until(connect_wait.deadline);
    tokio::pin!(connect_timer);
    let end = 'conn: loop {
        loop {
            match framing::split_frame(&inbuf, &mut start, cfg.max_buffer) {
                Ok(Some(frame)) => {
                    let first = std::mem::replace(&mut awaiting_first_frame, false);
                    let ev = match (&cfg.gssapi, first) {
                        // Not the ConnectRequest: maybe a `sasl` request.
                        (Some(acceptor), false) => {
                            crate::sasl_gssapi::on_frame(acceptor, &mut gss, conn, peer, frame)
                                .await
                        }
                        _ => NetEvent::Frame { conn, frame },
                    };
                    if events.send(ev).await.is_err() {
                        break 'conn End::DriverGone;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn End::Framing(e),
            }
        }
        framing::compact(&mut inbuf, &mut start);
        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = rd.read_buf(&mut inbuf) => match r {
                Ok(0) => break End::Eof,
                Ok(_) => {}
                Err(e) => break End::Io(e),
            },
            msg = rx.recv() => {
                let mut close = false;
                match msg {
                    Some(Outgoing::Bytes(b)) => outbuf = b,
                    Some(Outgoing::Close) => close = true,
                    None => break End::DriverGone,
                }
                // Coalesce everything already queued into one write.
                while !close {
                    match rx.try_recv() {
                        Ok(Outgoing::Bytes(b)) => outbuf.extend_from_slice(&b),
                        Ok(Outgoing::Close) => close = true,
                        Err(_) => break,
                    }
                }
                if !outbuf.is_empty() {
                    let n = outbuf.len();
                    tokio::select! {
                        // The flush is a no-op on a TCP socket; a TLS stream may
                        // hold records back until it.
                        r = async {
                            wr.write_all(&outbuf).await?;
                            wr.flush().await
                        } => if let Err(e) = r { break End::Io(e) },
                        _ = kill.notified() => break End::Killed,
                    }
                    queued.fetch_sub(n, Ordering::Relaxed);
                    outbuf.clear();
                }
                if close {
                    let _ = wr.shutdown().await;
                    break End::ClosedByServer;
                }
            }
            _ = kill.notified() => break End::Killed,
            _ = &mut connect_timer, if awaiting_first_frame => {
                break End::NoConnectRequest(connect_wait.max)
            }
        }
    };
    match &end {
        End::Framing(e) => warn!("closing connection from {peer}: {e}"),
        End::NoConnectRequest(max) => log_no_connect_request(peer, *max),
        End::Io(e) => debug!("connection from {peer} failed: {e}"),
        End::Killed => info!("dropped connection from {peer}"),
        End::Eof | End::ClosedByServer | End::DriverGone => {
            debug!("connection from {peer} ended: {end:?}")
        }
    }
    let _ = events.send(NetEvent::Closed { conn }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn cfg(max_cnxns_per_ip: u32) -> ListenerConfig {
        ListenerConfig {
            addr: "127.0.0.1:0".parse().expect("addr"),
            max_buffer: 1000,
            max_cnxns_per_ip,
            max_cnxns: 0,
            out_queue_bytes_max: 1 << 20,
            tls: None,
            gssapi: None,
        }
    }

    /// A connection from loopback address `from` (127.0.0.x).
    async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{from}:0").parse().expect("addr"))
            .expect("bind");
        sock.connect(to).await.expect("connect")
    }

    async fn closed_by_server(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("in time")
            .unwrap_or(0);
        n == 0
    }

    // Goal: maxCnxns counts connections from every address; one past it
    // is closed at once, and a slot that comes free is taken again.
    #[tokio::test]
    async fn total_limit_refuses_connections_from_any_address() {
        let (tx, mut rx) = mpsc::channel(64);
        let l = ClientListener::bind(
            ListenerConfig {
                max_cnxns: 2,
                ..cfg(0)
            },
            tx,
        )
        .await
        .expect("bind");
        let mut a = connect_from("127.0.0.1", l.local_addr()).await;
        a.write_all(&[0, 0, 0, 0]).await.expect("write");
        let NetEvent::Connected { handle: ha, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let NetEvent::Frame { .. } = next(&mut rx).await else {
            panic!("frame")
        };
        let mut b = connect_from("127.0.0.2", l.local_addr()).await;
        b.write_all(&[0, 0, 0, 0]).await.expect("write");
        let NetEvent::Connected { handle: _hb, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let NetEvent::Frame { .. } = next(&mut rx).await else {
            panic!("frame")
        };
        let mut c = connect_from("127.0.0.3", l.local_addr()).await;
        assert!(
            closed_by_server(&mut c).await,
            "a third connection is closed"
        );
        // The first one ends; its slot is free once its task is done.
        ha.kill();
        assert!(closed_by_server(&mut a).await);
        loop {
            if let NetEvent::Closed { .. } = next(&mut rx).await {
                break;
            }
        }
        let mut d = connect_from("127.0.0.3", l.local_addr()).await;
        d.write_all(&[0, 0, 0, 0]).await.expect("write");
        let NetEvent::Connected { .. } = next(&mut rx).await else {
            panic!("the freed slot is taken")
        };
    }

    async fn next(rx: &mut mpsc::Receiver<NetEvent>) -> NetEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event in time")
            .expect("channel open")
    }

    // Goal: frames arrive in order and replies are written with a prefix;
    // a bad length closes only the offending connection.
    #[tokio::test]
    async fn frames_round_trip_and_bad_length_closes_one() {
        let (tx, mut rx) = mpsc::channel(64);
        let l = ClientListener::bind(cfg(0), tx).await.expect("bind");
        let mut good = TcpStream::connect(l.local_addr()).await.expect("connect");
        let mut wire = Vec::new();
        framing::push_frame(&mut wire, b"hello");
        good.write_all(&wire).await.expect("write");
        let NetEvent::Connected { conn, handle, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let NetEvent::Frame { conn: c, frame } = next(&mut rx).await else {
            panic!("frame")
        };
        assert_eq!((c, frame.as_slice()), (conn, &b"hello"[..]));

        let mut bad = TcpStream::connect(l.local_addr()).await.expect("connect");
        bad.write_all(&2000i32.to_be_bytes()).await.expect("write");
        let NetEvent::Connected { conn: bad_conn, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let NetEvent::Closed { conn: closed } = next(&mut rx).await else {
            panic!("closed")
        };
        assert_eq!(closed, bad_conn);

        let mut out = Vec::new();
        framing::push_frame(&mut out, b"reply");
        handle.send(out.clone()).expect("queued");
        let mut got = vec![0u8; out.len()];
        tokio::time::timeout(Duration::from_secs(5), good.read_exact(&mut got))
            .await
            .expect("in time")
            .expect("read");
        assert_eq!(got, out);
    }

    #[tokio::test]
    async fn per_ip_limit_refuses_extra_connections() {
        let (tx, mut rx) = mpsc::channel(64);
        let l = ClientListener::bind(cfg(1), tx).await.expect("bind");
        let mut a = TcpStream::connect(l.local_addr()).await.expect("connect");
        a.write_all(&[0, 0, 0, 0]).await.expect("write");
        // Keep the handle: dropping it would end the first connection.
        let NetEvent::Connected { handle: _kept, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let mut b = TcpStream::connect(l.local_addr()).await.expect("connect");
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), b.read(&mut buf))
            .await
            .expect("in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "second connection from the same IP is closed");
    }

    // Goal: a connection that does not deliver its first frame in time is
    // closed (silent, and half a frame), while one that sent its first
    // frame stays open past the same wait.
    #[tokio::test]
    async fn connections_without_a_first_frame_are_closed_after_the_wait() {
        let wait = Duration::from_millis(300);
        let (tx, mut rx) = mpsc::channel(64);
        let l = ClientListener::bind_with_connect_wait(cfg(0), wait, tx)
            .await
            .expect("bind");
        let mut good = TcpStream::connect(l.local_addr()).await.expect("connect");
        let mut wire = Vec::new();
        framing::push_frame(&mut wire, b"connect");
        good.write_all(&wire).await.expect("write");
        let NetEvent::Connected {
            conn: good_conn,
            handle: _kept,
            ..
        } = next(&mut rx).await
        else {
            panic!("connected")
        };
        let NetEvent::Frame { .. } = next(&mut rx).await else {
            panic!("frame")
        };

        let mut silent = TcpStream::connect(l.local_addr()).await.expect("connect");
        let mut half = TcpStream::connect(l.local_addr()).await.expect("connect");
        half.write_all(&[0, 0, 0, 100, 1, 2, 3])
            .await
            .expect("write");
        let NetEvent::Connected {
            conn: half_conn, ..
        } = next(&mut rx).await
        else {
            panic!("connected")
        };
        // The silent one never becomes a connection the driver knows of,
        // so the only `Closed` is the half frame's.
        let NetEvent::Closed { conn: closed } = next(&mut rx).await else {
            panic!("closed")
        };
        assert_eq!(closed, half_conn);
        for s in [&mut silent, &mut half] {
            let mut buf = [0u8; 16];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("closed in time")
                .unwrap_or(0);
            assert_eq!(n, 0, "the server closed the stalled connection");
        }

        // Well past the wait, the connection that sent a frame is open.
        tokio::time::sleep(wait * 2).await;
        assert!(
            rx.try_recv().is_err(),
            "nothing happened to connection {good_conn:?}"
        );
        wire.clear();
        framing::push_frame(&mut wire, b"ping");
        good.write_all(&wire).await.expect("write");
        let NetEvent::Frame { conn, frame } = next(&mut rx).await else {
            panic!("frame")
        };
        assert_eq!((conn, frame.as_slice()), (good_conn, &b"ping"[..]));
    }

    // Goal: a client that does not read cannot make the server buffer
    // without bound: past the cap the handle reports overflow, and killing
    // the connection ends it with one `Closed`.
    #[tokio::test]
    async fn slow_reader_overflows_and_is_dropped() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut c = cfg(0);
        c.out_queue_bytes_max = 64 * 1024;
        let l = ClientListener::bind(c, tx).await.expect("bind");
        let mut s = TcpStream::connect(l.local_addr()).await.expect("connect");
        s.write_all(&[0, 0, 0, 0]).await.expect("write");
        let NetEvent::Connected { conn, handle, .. } = next(&mut rx).await else {
            panic!("connected")
        };
        let NetEvent::Frame { .. } = next(&mut rx).await else {
            panic!("frame")
        };
        let mut overflow = None;
        for _ in 0..10_000 {
            if let Err(e) = handle.send(vec![0u8; 32 * 1024]) {
                overflow = Some(e);
                break;
            }
            tokio::task::yield_now().await;
        }
        let e = overflow.expect("the cap is reached while the client does not read");
        assert!(e.queued > e.max);
        handle.kill();
        let NetEvent::Closed { conn: closed } = next(&mut rx).await else {
            panic!("closed")
        };
        assert_eq!(closed, conn);
    }
}
