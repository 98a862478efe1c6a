//! A fault-injecting TCP proxy on the peer links of an ensemble.
//!
//! Paddock links each pair of servers with one TCP connection, dialled by
//! the larger id. Server `i`'s zoo.cfg names, for every smaller `j`, a
//! proxy port `P(i, j)` instead of `j`'s quorum port; the proxy forwards to
//! the real port. So every byte between two servers passes through one
//! [`Link`], which can, per direction:
//!
//! - **stall**: stop forwarding (bytes wait in the proxy and in the kernel
//!   buffers, as on a partitioned network where TCP keeps retransmitting;
//!   nothing is lost or reordered, and on healing the backlog arrives late),
//! - **sever**: reset the current connections (both sides see the link
//!   break), and
//! - **refuse**: close new connections at once (while a partition lasts, a
//!   dialler cannot get through by reconnecting).
//!
//! The link handshake carries a digest of the dialler's `server.N` list;
//! as each server's list names different proxy ports, the proxy replaces
//! that digest with the one the accepting server computes over its own
//! list ([`membership_digest`], the same FNV-1a as the server's
//! `ServerConfig::membership_digest`), so the membership check still
//! refuses real mismatches between configurations this harness did not
//! write.
//!
//! Invariant: every thread here loops only while the proxy is alive, with
//! sockets on short timeouts, so dropping the proxy ends them all.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a pump blocks in one read or write before checking its state.
const POLL: Duration = Duration::from_millis(20);
/// The peer handshake: magic, version, server id, membership digest.
const HANDSHAKE_LEN: usize = 24;
const DIGEST_AT: usize = 16;

/// FNV-1a of `n=host:quorum:election:observer;` over the server list in id
/// order: the digest a paddock server compares in the peer handshake.
pub fn membership_digest(servers: &[(u64, String, u16, u16, bool)]) -> u64 {
    let mut text = String::new();
    for (n, host, q, e, observer) in servers {
        text.push_str(&format!("{n}={host}:{q}:{e}:{observer};"));
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Default)]
struct LinkState {
    /// Bytes from the dialler to the acceptor are held.
    stall_forward: bool,
    /// Bytes from the acceptor to the dialler are held.
    stall_back: bool,
    refuse: bool,
}

/// One proxied peer link: dialler `from` (larger id) to acceptor `to`.
pub struct Link {
    pub from: usize,
    pub to: usize,
    pub listen: SocketAddr,
    state: Mutex<LinkState>,
    /// Bumped by `sever`: pumps of an older generation close their sockets.
    generation: AtomicU64,
    alive: Arc<AtomicBool>,
    pub connections: AtomicU64,
}

impl Link {
    fn stalled(&self, forward: bool) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if forward {
            s.stall_forward
        } else {
            s.stall_back
        }
    }
}

/// Listeners bound for the links, as (dialler, acceptor, listener).
pub type Listeners = Vec<(usize, usize, TcpListener)>;

/// Every proxied link of an ensemble, keyed by (dialler, acceptor).
pub struct Proxy {
    links: BTreeMap<(usize, usize), Arc<Link>>,
    alive: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    /// Binds a listener for every pair `(i, j)`, `i > j`, of `servers`
    /// (indices); targets and digests are given later by [`Proxy::start`].
    pub fn bind(servers: usize) -> std::io::Result<(Proxy, Listeners)> {
        let alive = Arc::new(AtomicBool::new(true));
        let mut links = BTreeMap::new();
        let mut listeners = Vec::new();
        for i in 0..servers {
            for j in 0..i {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                let link = Arc::new(Link {
                    from: i,
                    to: j,
                    listen: l.local_addr()?,
                    state: Mutex::new(LinkState::default()),
                    generation: AtomicU64::new(0),
                    alive: alive.clone(),
                    connections: AtomicU64::new(0),
                });
                links.insert((i, j), link);
                listeners.push((i, j, l));
            }
        }
        Ok((
            Proxy {
                links,
                alive,
                threads: Mutex::new(Vec::new()),
            },
            listeners,
        ))
    }

    /// Starts forwarding: `targets[j]` is server j's real quorum address,
    /// `digests[j]` the membership digest server j expects.
    pub fn start(&self, listeners: Listeners, targets: Vec<SocketAddr>, digests: Vec<u64>) {
        for (i, j, listener) in listeners {
            let link = self.links[&(i, j)].clone();
            let target = targets[j];
            let digest = digests[j];
            let h = std::thread::spawn(move || accept_loop(link, listener, target, digest));
            self.threads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(h);
        }
    }

    pub fn listen_addr(&self, from: usize, to: usize) -> SocketAddr {
        self.links[&(from, to)].listen
    }

    fn link(&self, a: usize, b: usize) -> Option<(&Arc<Link>, bool)> {
        if a > b {
            self.links.get(&(a, b)).map(|l| (l, true))
        } else {
            self.links.get(&(b, a)).map(|l| (l, false))
        }
    }

    /// Holds (or releases) the bytes from server `a` to server `b`.
    pub fn set_blocked(&self, a: usize, b: usize, blocked: bool) {
        if let Some((link, forward)) = self.link(a, b) {
            let mut s = link.state.lock().unwrap_or_else(|p| p.into_inner());
            if forward {
                s.stall_forward = blocked;
            } else {
                s.stall_back = blocked;
            }
        }
    }

    /// Refuses (or again accepts) new connections between `a` and `b`.
    pub fn set_refused(&self, a: usize, b: usize, refused: bool) {
        if let Some((link, _)) = self.link(a, b) {
            link.state.lock().unwrap_or_else(|p| p.into_inner()).refuse = refused;
        }
    }

    /// Resets the current connections between `a` and `b`.
    pub fn sever(&self, a: usize, b: usize) {
        if let Some((link, _)) = self.link(a, b) {
            link.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Cuts `a` and `b` apart both ways (stalled, new links refused).
    pub fn partition(&self, a: usize, b: usize) {
        self.set_blocked(a, b, true);
        self.set_blocked(b, a, true);
        self.set_refused(a, b, true);
    }

    /// Every link back to normal; `reset` also breaks the connections
    /// that were stalled (TCP gave up) instead of delivering the backlog.
    pub fn heal_all(&self, reset: bool) {
        for link in self.links.values() {
            let mut s = link.state.lock().unwrap_or_else(|p| p.into_inner());
            let was = s.stall_forward || s.stall_back || s.refuse;
            *s = LinkState::default();
            if was && reset {
                link.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Connections accepted so far, over all links.
    pub fn connections(&self) -> u64 {
        self.links
            .values()
            .map(|l| l.connections.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
        for h in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = h.join();
        }
    }
}

fn accept_loop(link: Arc<Link>, listener: TcpListener, target: SocketAddr, digest: u64) {
    let mut pumps: Vec<JoinHandle<()>> = Vec::new();
    while link.alive.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((dialler, _)) => {
                pumps.retain(|h| !h.is_finished());
                if link.state.lock().unwrap_or_else(|p| p.into_inner()).refuse {
                    let _ = dialler.shutdown(Shutdown::Both);
                    continue;
                }
                link.connections.fetch_add(1, Ordering::Relaxed);
                let link = link.clone();
                pumps.push(std::thread::spawn(move || {
                    connect_pair(link, dialler, target, digest)
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for h in pumps {
        let _ = h.join();
    }
}

fn connect_pair(link: Arc<Link>, dialler: TcpStream, target: SocketAddr, digest: u64) {
    let generation = link.generation.load(Ordering::SeqCst);
    let Ok(acceptor) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        let _ = dialler.shutdown(Shutdown::Both);
        return;
    };
    let _ = dialler.set_nonblocking(false);
    for s in [&dialler, &acceptor] {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(POLL));
        let _ = s.set_write_timeout(Some(POLL));
    }
    let (Ok(d2), Ok(a2)) = (dialler.try_clone(), acceptor.try_clone()) else {
        return;
    };
    let back_link = link.clone();
    let back = std::thread::spawn(move || pump(&back_link, a2, d2, false, generation, false, 0));
    pump(&link, dialler, acceptor, true, generation, true, digest);
    let _ = back.join();
}

/// Copies `src` to `dst` until EOF, an error, a sever or the proxy's end,
/// holding bytes while the direction is stalled.
fn pump(
    link: &Link,
    mut src: TcpStream,
    mut dst: TcpStream,
    forward: bool,
    generation: u64,
    rewrite_handshake: bool,
    digest: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut seen: usize = 0;
    let close = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    loop {
        if !link.alive.load(Ordering::SeqCst)
            || link.generation.load(Ordering::SeqCst) != generation
        {
            close(&src, &dst);
            return;
        }
        if link.stalled(forward) {
            std::thread::sleep(POLL);
            continue;
        }
        if !pending.is_empty() {
            match dst.write(&pending) {
                Ok(0) => {
                    close(&src, &dst);
                    return;
                }
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {
                    close(&src, &dst);
                    return;
                }
            }
            continue;
        }
        match src.read(&mut buf) {
            Ok(0) => {
                let _ = dst.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if rewrite_handshake && seen < HANDSHAKE_LEN {
                    // Replace the digest bytes that arrive in this chunk.
                    for (k, b) in pending.iter_mut().enumerate() {
                        let at = seen + k;
                        if (DIGEST_AT..HANDSHAKE_LEN).contains(&at) {
                            *b = digest.to_be_bytes()[at - DIGEST_AT];
                        }
                    }
                }
                seen += n;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                close(&src, &dst);
                return;
            }
        }
    }
}
