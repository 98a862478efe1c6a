//! Follow mode (`migration.followZooKeeper=host:quorumPort,...`): this
//! server attaches to a running Apache ZooKeeper ensemble as an observer
//! and follows its txn stream, keeping a Paddock copy of its state on
//! disk. The protocol and the state live in the core
//! (`paddock_core::zk::quorum::learner`); this file is the connection:
//!
//! - find the leader: try each listed quorum address in turn (only a
//!   ZooKeeper leader listens on its quorum port), one second to connect;
//! - move bytes between the socket and the learner, call its timeout;
//! - carry out its storage operations: Paddock snapshots (named by zxid,
//!   the two newest kept) and ZooKeeper's epochs, both durable;
//! - when the link closes (the learner's reason is logged) or the leader
//!   dies, try the list again, so a new ZooKeeper leader is found;
//! - at start, resume from the newest Paddock snapshot an earlier run
//!   wrote (the leader then sends a DIFF from its zxid);
//! - `follow.status` in the data directory (JSON, replaced atomically a
//!   few times a second) says where it stands, for operators and tests.
//!
//! One thread, blocking sockets with a short read timeout: a follower has
//! one connection and no clients yet.

use crate::config::ServerConfig;
use crate::disk;
use anyhow::{Context, Result};
use paddock_core::ids::Instant as CoreInstant;
use paddock_core::storage::{read_snapshot, snapshot_file_name, StorageOp};
use paddock_core::zk::quorum::learner::{
    initial_tree, FollowConfig, FollowOutput, Phase, ZkLearner, SNAPSHOT_EVERY,
};
use paddock_core::zk::tree::ZkTree;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Lag samples kept for the status percentiles (the newest).
const LAG_SAMPLES_MAX: usize = 200_000;
/// Paddock snapshots kept in the data directory.
const SNAPSHOTS_KEPT: usize = 2;
/// A snapshot is written after this long without a txn, if any arrived
/// since the last one, so an idle follower's disk holds all it applied.
const IDLE_SNAPSHOT_MS: u64 = 500;

pub fn run(cfg: &ServerConfig, addrs: &[String]) -> Result<()> {
    let dirs = disk::Dirs {
        data: cfg.data_dir.clone(),
        log: cfg.log_dir().to_path_buf(),
    };
    dirs.create()
        .with_context(|| format!("creating {}", dirs.data.display()))?;
    let _lock = disk::lock_data_dir(&dirs)?;
    // The id ZooKeeper's leader logs us under. It must differ from every
    // ZooKeeper member's: the leader keys its learners by it.
    let Some(sid) = cfg.my_id else {
        anyhow::bail!(
            "refusing to start: follow mode needs this server's id (dataDir/myid), one that \
             no ZooKeeper member uses"
        );
    };
    let fc = FollowConfig {
        sid,
        tick_ms: cfg.tick_time_ms as u64,
        init_limit: cfg.init_limit as u64,
        sync_limit: cfg.sync_limit as u64,
        snapshot_every: SNAPSHOT_EVERY,
    };
    let (tree, accepted, current) = recover(&dirs)?;
    if tree.last_zxid > 0 {
        info!(
            "resuming from the followed state at zxid {:#x} ({} znodes, epochs {accepted}/{current})",
            tree.last_zxid,
            tree.node_count()
        );
    }
    let mut learner = ZkLearner::new(fc, tree, accepted, current);
    info!(
        "following the ZooKeeper ensemble at {} as observer sid {sid}",
        addrs.join(",")
    );
    let started = Instant::now();
    let mut st = Status::default();
    let mut next = 0usize;
    loop {
        let addr = &addrs[next % addrs.len()];
        next += 1;
        match connect(addr) {
            Ok(sock) => {
                st.leader = addr.clone();
                if let Err(e) = follow_link(&mut learner, sock, &dirs, started, &mut st) {
                    warn!("link to {addr}: {e}");
                }
                learner.disconnected();
                st.leader.clear();
                // What arrived last is on disk before the next attempt: a
                // takeover may start from this directory at any moment.
                if st.snapshot_txns != learner.stats.txns_applied {
                    learner.snapshot_now();
                    if let Err(e) = carry_out(&mut learner, None, &dirs, &mut st) {
                        warn!("writing the followed state: {e}");
                    }
                }
                st.write(&dirs.data, &learner);
            }
            Err(e) => {
                // A follower or a down server: not the leader.
                tracing::debug!("{addr}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The followed state an earlier run wrote: the newest Paddock snapshot
/// that reads back whole, and ZooKeeper's epochs; ZooKeeper's empty
/// database on a first start. The leader then sends what is missing.
fn recover(dirs: &disk::Dirs) -> Result<(ZkTree, u32, u32)> {
    if let Some((_, name)) = disk::list(&dirs.log, "log")?.first() {
        anyhow::bail!(
            "refusing to start: {} holds a paddock server's log ({name}); follow mode needs a \
             data directory of its own",
            dirs.log.display()
        );
    }
    let mut tree = None;
    for (_, name) in disk::list(&dirs.data, "snapshot")?.iter().rev() {
        let bytes =
            std::fs::read(dirs.data.join(name)).with_context(|| format!("reading {name}"))?;
        match read_snapshot(&bytes).and_then(|s| ZkTree::from_state(&s)) {
            Ok(t) => {
                tree = Some(t);
                break;
            }
            Err(e) => warn!("{name} is not usable ({e}); trying an older one"),
        }
    }
    let tree = tree.unwrap_or_else(initial_tree);
    let (a, c) = disk::read_epochs(dirs).context("reading the epoch files")?;
    let parse = |b: Option<Vec<u8>>| -> Result<u32> {
        match b {
            None => Ok(0),
            Some(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse()
                .context("an epoch file does not hold a number"),
        }
    };
    let floor = (tree.last_zxid as u64 >> 32) as u32;
    let current = parse(c)?.max(floor);
    Ok((tree, parse(a)?.max(current), current))
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
    learner: &mut ZkLearner,
    mut sock: TcpStream,
    dirs: &disk::Dirs,
    started: Instant,
    st: &mut Status,
) -> Result<()> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    learner.connected(now(started));
    let mut buf = vec![0u8; 256 << 10];
    let mut last_status = Instant::now();
    let mut last_txn = Instant::now();
    loop {
        if !carry_out(learner, Some(&mut sock), dirs, st)? {
            return Ok(());
        }
        match sock.read(&mut buf) {
            Ok(0) => anyhow::bail!("the leader closed the connection"),
            Ok(n) => learner.handle_bytes(now(started), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        learner.handle_timeout(now(started));
        if st.txns != learner.stats.txns_applied {
            st.txns = learner.stats.txns_applied;
            last_txn = Instant::now();
        }
        if st.snapshot_txns != st.txns
            && learner.phase() == Phase::Following
            && last_txn.elapsed() >= Duration::from_millis(IDLE_SNAPSHOT_MS)
        {
            learner.snapshot_now();
        }
        if last_status.elapsed() >= Duration::from_millis(200) {
            st.write(&dirs.data, learner);
            last_status = Instant::now();
        }
    }
}

/// Carries out the learner's outputs; false once it closed the link.
fn carry_out(
    learner: &mut ZkLearner,
    mut sock: Option<&mut TcpStream>,
    dirs: &disk::Dirs,
    st: &mut Status,
) -> Result<bool> {
    let mut out = Vec::new();
    while let Some(o) = learner.poll_output() {
        match o {
            FollowOutput::Send(b) => out.extend_from_slice(&b),
            FollowOutput::Close(why) => {
                warn!(
                    "closing the link to the ZooKeeper leader {}: {why}",
                    st.leader
                );
                if let Some(sock) = sock {
                    sock.write_all(&out).ok();
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                }
                return Ok(false);
            }
            FollowOutput::Storage(StorageOp::Snapshot(s)) => {
                let name = snapshot_file_name(s.zxid);
                disk::replace_file(&dirs.data, &name, &s.encode(), true)
                    .with_context(|| format!("writing {name}"))?;
                st.snapshot_zxid = s.zxid.0 as i64;
                st.snapshot_txns = learner.stats.txns_applied;
                prune_snapshots(&dirs.data)?;
            }
            FollowOutput::Storage(StorageOp::Epochs {
                accepted_epoch,
                current_epoch,
                ..
            }) => disk::write_epochs(dirs, accepted_epoch, current_epoch, true)
                .context("writing the epoch files")?,
            FollowOutput::Storage(other) => warn!("follow mode ignores {other:?}"),
            FollowOutput::Synced { mode, zxid, epoch } => info!(
                "synced with the ZooKeeper leader {} by {mode:?} at zxid {zxid:#x}, epoch {epoch}",
                st.leader
            ),
            FollowOutput::Applied { txn_time_ms, .. } => {
                if st.lags.len() < LAG_SAMPLES_MAX {
                    st.lags.push((wall_ms() - txn_time_ms).max(0) as u32);
                }
            }
            FollowOutput::Revalidated { session, valid } => {
                info!("session {session:#x} revalidated: {valid}")
            }
            FollowOutput::Warn(w) => warn!("following {}: {w}", st.leader),
        }
    }
    if let (Some(sock), false) = (sock.as_mut(), out.is_empty()) {
        sock.write_all(&out)?;
    }
    Ok(true)
}

fn prune_snapshots(dir: &Path) -> Result<()> {
    let snaps = disk::list(dir, "snapshot")?;
    for (_, name) in snaps.iter().rev().skip(SNAPSHOTS_KEPT) {
        std::fs::remove_file(dir.join(name))?;
    }
    Ok(())
}

#[derive(Default)]
struct Status {
    leader: String,
    txns: u64,
    snapshot_zxid: i64,
    /// `txns_applied` when the last snapshot was taken.
    snapshot_txns: u64,
    /// ZooKeeper commit (the txn's time) to our apply, ms.
    lags: Vec<u32>,
}

impl Status {
    fn write(&mut self, dir: &Path, l: &ZkLearner) {
        let mut lags = self.lags.clone();
        lags.sort_unstable();
        let pct = |p: f64| -> u32 {
            if lags.is_empty() {
                0
            } else {
                lags[((lags.len() - 1) as f64 * p) as usize]
            }
        };
        let s = &l.stats;
        let (accepted, current) = l.epochs();
        let json = serde_json::json!({
            "phase": format!("{:?}", l.phase()),
            "leader": self.leader,
            "last_zxid": l.last_zxid(),
            "snapshot_zxid": self.snapshot_zxid,
            "accepted_epoch": accepted,
            "current_epoch": current,
            "znodes": l.tree().node_count(),
            "syncs": s.syncs, "snaps": s.snaps, "diffs": s.diffs, "truncs": s.truncs,
            "txns_applied": s.txns_applied,
            "pings_answered": s.pings_answered,
            "digests_checked": s.digests_checked,
            "digest_mismatches": s.digest_mismatches,
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
