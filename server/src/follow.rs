//! Follow mode (`migration.followZooKeeper=host:quorumPort,...`): this
//! server attaches to a running Apache ZooKeeper ensemble as an observer,
//! follows its txn stream and serves its own clients from it. The server
//! is the ordinary one (client listener, driver, `Node`, log and snapshot
//! threads); its node is configured as an observer of [`FOLLOWED`], and
//! the core's `ZkBridge` (`paddock_core::zk::quorum::bridge`) plays that
//! leader. This file is the connection to ZooKeeper:
//!
//! - find the leader: try each listed quorum address in turn (only a
//!   ZooKeeper leader listens on its quorum port), one second to connect;
//! - move bytes between the socket and the bridge, call its timeout; hand
//!   the bridge's messages for the node to the driver (as peer events of
//!   `FOLLOWED`) and the node's messages for `FOLLOWED` to the bridge;
//! - when the link closes (the reason is logged) or the leader dies, try
//!   the list again, so a new ZooKeeper leader is found;
//! - `follow.status` in the data directory (JSON, replaced a few times a
//!   second) says where it stands, for operators and tests.
//!
//! Two threads share the bridge behind a mutex: one reads the ZooKeeper
//! socket (and finds the leader), one takes the node's messages; each
//! writes what the bridge has to send while it holds the lock, so bytes
//! leave in the bridge's order.

use crate::config::ServerConfig;
use crate::disk;
use anyhow::Result;
use paddock_core::ids::Instant as CoreInstant;
use paddock_core::zk::quorum::bridge::{BridgeOutput, ZkBridge, FOLLOWED};
use paddock_core::zk::quorum::learner::{FollowConfig, ZkLearner};
use paddock_core::zk::tree::ZkTree;
use paddock_core::{Config, Input, Node};
use paddock_net::peer::PeerEvent;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Lag samples kept for the status percentiles (the newest).
const LAG_SAMPLES_MAX: usize = 200_000;

/// The node's side of the link: what the driver needs.
pub struct NodeLink {
    /// The node's messages for `FOLLOWED`, to the bridge.
    pub to_bridge: std_mpsc::Sender<Vec<u8>>,
    /// The highest zxid durable in the node's log (the driver keeps it).
    pub durable: Arc<AtomicI64>,
}

/// The core configuration of a following server: an observer whose only
/// voter is the followed ensemble; sessions get ZooKeeper's passwords;
/// nothing that ZooKeeper committed may be refused by local settings.
pub fn core_config(mut c: Config) -> Config {
    c.voters = [FOLLOWED].into_iter().collect();
    c.observers = [c.server_id].into_iter().collect();
    c.zookeeper_session_passwords = true;
    c.extended_types_enabled = true;
    c.enforce_quota = false;
    // ZooKeeper validated the ACLs it committed, whatever their scheme.
    c.acl_providers = paddock_core::tree::acl::Providers {
        x509: true,
        sasl: true,
    };
    // ZooKeeper's own /zookeeper/config comes with its snapshot.
    c.member_list = None;
    c
}

/// Refuses what follow mode cannot run with.
pub fn check(cfg: &ServerConfig) -> Result<u64> {
    // The id ZooKeeper's leader logs us under. It must differ from every
    // ZooKeeper member's: the leader keys its learners by it.
    cfg.my_id.ok_or_else(|| {
        anyhow::anyhow!(
            "refusing to start: follow mode needs this server's id (dataDir/myid), one that \
             no ZooKeeper member uses"
        )
    })
}

/// Starts the link to ZooKeeper for `node` (booted from this data
/// directory, not yet serving): events for the node go to `to_node`.
pub fn start(
    cfg: &ServerConfig,
    sid: u64,
    node: &Node,
    to_node: mpsc::UnboundedSender<PeerEvent>,
) -> Result<NodeLink> {
    let tree = ZkTree::from_state(node.state())
        .map_err(|e| anyhow::anyhow!("the recovered state is not a ZooKeeper tree: {e}"))?;
    if tree.last_zxid > 0 {
        info!(
            "resuming from the followed state at zxid {:#x} ({} znodes)",
            tree.last_zxid,
            tree.node_count()
        );
    }
    let (accepted, current) = node.epochs();
    let fc = FollowConfig {
        sid,
        tick_ms: cfg.tick_time_ms as u64,
        init_limit: cfg.init_limit as u64,
        sync_limit: cfg.sync_limit as u64,
        snapshot_every: u64::MAX,
        bridged: true,
    };
    let bridge = ZkBridge::new(ZkLearner::new(fc, tree, accepted, current));
    let durable = Arc::new(AtomicI64::new(node.persisted_upto().as_i64()));
    let shared = Arc::new(Mutex::new(Shared {
        bridge,
        sock: None,
        to_node,
        status: Status::default(),
    }));
    let addrs = cfg.follow_zookeeper.clone();
    info!(
        "following the ZooKeeper ensemble at {} as observer sid {sid}, serving clients",
        addrs.join(",")
    );
    let (tx, rx) = std_mpsc::channel::<Vec<u8>>();
    let started = Instant::now();
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("paddock-follow-node".into())
            .spawn(move || {
                while let Ok(bytes) = rx.recv() {
                    let mut s = shared.lock().expect("follow lock");
                    s.bridge.from_node(&bytes);
                    s.carry_out();
                }
            })?;
    }
    {
        let data = cfg.data_dir.clone();
        let durable = durable.clone();
        std::thread::Builder::new()
            .name("paddock-follow-link".into())
            .spawn(move || link_loop(&shared, &addrs, &data, &durable, started))?;
    }
    Ok(NodeLink {
        to_bridge: tx,
        durable,
    })
}

struct Shared {
    bridge: ZkBridge,
    /// The write side of the current ZooKeeper link.
    sock: Option<TcpStream>,
    to_node: mpsc::UnboundedSender<PeerEvent>,
    status: Status,
}

impl Shared {
    /// Carries out the bridge's outputs.
    fn carry_out(&mut self) {
        let mut out = Vec::new();
        while let Some(o) = self.bridge.poll_output() {
            match o {
                BridgeOutput::ToZooKeeper(b) => out.extend_from_slice(&b),
                BridgeOutput::CloseZooKeeper(why) => {
                    warn!(
                        "closing the link to the ZooKeeper leader {}: {why}",
                        self.status.leader
                    );
                    if let Some(s) = self.sock.take() {
                        s.try_clone()
                            .and_then(|mut w| w.write_all(&out))
                            .ok();
                        out.clear();
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
                BridgeOutput::ToNode(input) => {
                    let ev = match input {
                        Input::PeerConnected { peer } => PeerEvent::Up(peer),
                        Input::PeerDisconnected { peer } => PeerEvent::Down(peer),
                        Input::PeerMessage { from, bytes } => PeerEvent::Message(from, bytes),
                        other => {
                            warn!("follow mode: unexpected input for the node {other:?}");
                            continue;
                        }
                    };
                    // The driver is gone only when the server stops.
                    let _ = self.to_node.send(ev);
                }
                BridgeOutput::Synced { mode, zxid, epoch } => info!(
                    "synced with the ZooKeeper leader {} by {mode:?} at zxid {zxid:#x}, epoch {epoch}",
                    self.status.leader
                ),
                BridgeOutput::Applied { txn_time_ms, .. } => {
                    if self.status.lags.len() < LAG_SAMPLES_MAX {
                        self.status
                            .lags
                            .push((wall_ms() - txn_time_ms).max(0) as u32);
                    }
                }
                BridgeOutput::Warn(w) => warn!("following {}: {w}", self.status.leader),
            }
        }
        if let (Some(s), false) = (self.sock.as_mut(), out.is_empty()) {
            if let Err(e) = s.write_all(&out) {
                // The reading thread sees the broken link too.
                warn!("writing to the ZooKeeper leader: {e}");
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn link_loop(
    shared: &Mutex<Shared>,
    addrs: &[String],
    data: &Path,
    durable: &AtomicI64,
    started: Instant,
) {
    let mut next = 0usize;
    loop {
        let addr = &addrs[next % addrs.len()];
        next += 1;
        match connect(addr) {
            Ok(sock) => {
                if let Err(e) = follow_link(shared, sock, addr, data, durable, started) {
                    warn!("link to {addr}: {e}");
                }
                let mut s = shared.lock().expect("follow lock");
                s.sock = None;
                s.bridge.zk_disconnected();
                s.carry_out();
                let Shared { status, bridge, .. } = &mut *s;
                status.leader.clear();
                status.write(data, bridge, durable);
            }
            Err(e) => {
                // A follower or a down server: not the leader.
                tracing::debug!("{addr}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, Duration::from_secs(1)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn now(started: Instant) -> CoreInstant {
    CoreInstant(started.elapsed().as_nanos() as u64)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn follow_link(
    shared: &Mutex<Shared>,
    mut sock: TcpStream,
    addr: &str,
    data: &Path,
    durable: &AtomicI64,
    started: Instant,
) -> Result<()> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    {
        let mut s = shared.lock().expect("follow lock");
        s.sock = Some(sock.try_clone()?);
        s.status.leader = addr.to_owned();
        s.bridge.zk_connected(now(started));
        s.carry_out();
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut last_status = Instant::now();
    loop {
        let read = sock.read(&mut buf);
        let mut s = shared.lock().expect("follow lock");
        if s.sock.is_none() {
            return Ok(());
        }
        match read {
            Ok(0) => anyhow::bail!("the leader closed the connection"),
            Ok(n) => s.bridge.zk_bytes(now(started), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        s.bridge.handle_timeout(now(started));
        s.carry_out();
        if last_status.elapsed() >= Duration::from_millis(200) {
            let Shared { status, bridge, .. } = &mut *s;
            status.write(data, bridge, durable);
            last_status = Instant::now();
        }
    }
}

#[derive(Default)]
struct Status {
    leader: String,
    /// ZooKeeper commit (the txn's time) to our apply, ms.
    lags: Vec<u32>,
}

impl Status {
    fn write(&mut self, dir: &Path, b: &ZkBridge, durable: &AtomicI64) {
        let mut lags = self.lags.clone();
        lags.sort_unstable();
        let pct = |p: f64| -> u32 {
            if lags.is_empty() {
                0
            } else {
                lags[((lags.len() - 1) as f64 * p) as usize]
            }
        };
        let l = b.learner();
        let s = &l.stats;
        let bs = &b.stats;
        let (accepted, current) = l.epochs();
        let json = serde_json::json!({
            "phase": format!("{:?}", l.phase()),
            "leader": self.leader,
            "last_zxid": l.last_zxid(),
            "durable_zxid": durable.load(Ordering::Relaxed),
            "accepted_epoch": accepted,
            "current_epoch": current,
            "znodes": l.tree().node_count(),
            "syncs": s.syncs, "snaps": s.snaps, "diffs": s.diffs, "truncs": s.truncs,
            "txns_applied": s.txns_applied,
            "pings_answered": s.pings_answered,
            "digests_checked": s.digests_checked,
            "digest_mismatches": s.digest_mismatches,
            "forwarded": bs.forwarded,
            "revalidations": bs.revalidations,
            "syncs_forwarded": bs.syncs,
            "failed_txns": bs.failed_txns,
            "node_syncs_diff": bs.node_syncs_diff,
            "node_syncs_snap": bs.node_syncs_snap,
            "lag_samples": lags.len(),
            "lag_ms_p50": pct(0.5),
            "lag_ms_p99": pct(0.99),
            "lag_ms_max": lags.last().copied().unwrap_or(0),
        });
        if let Err(e) = disk::replace_file(dir, "follow.status", json.to_string().as_bytes(), false)
        {
            warn!("writing follow.status: {e}");
        }
    }
}
