//! The driver: one task owns the `Node` and is its only caller.
//!
//! Each turn waits for the next event (a network event, a storage
//! completion, the node's deadline or a stop signal), feeds it and
//! everything else already queued into the node, then drains every output
//! and carries it out: client frames are gathered per connection and
//! handed over once per turn (one write per connection per batch),
//! persistence and snapshots go to the storage threads.
//!
//! Time: `Now.mono` is nanoseconds since the driver started (monotonic),
//! `Now.wall_ms` the Unix time in milliseconds.

use crate::admin;
use crate::config::ServerConfig;
use crate::fourlw;
use crate::http::{self, Answer, Query};
use crate::metrics::{self, Counters, Shared};
use crate::storage::{Done, LogJob, SnapJob};
use anyhow::{bail, Result};
use paddock_core::storage::StorageOp;
use paddock_core::zk::quorum::bridge::FOLLOWED;
use paddock_core::{ConnId, Input, Instant, Node, Now, Output};
use paddock_net::peer::{PeerEvent, PeerNet};
use paddock_net::{framing, ConnHandle, NetEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Events taken into one turn at most, so outputs flow even under load.
const TURN_EVENTS_MAX: usize = 1024;

struct Conn {
    handle: ConnHandle,
    peer: SocketAddr,
}

pub struct Driver {
    pub node: Node,
    pub config: ServerConfig,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub log: std_mpsc::Sender<LogJob>,
    pub snaps: std_mpsc::Sender<SnapJob>,
    pub started: std::time::Instant,
    conns: HashMap<ConnId, Conn>,
    peers: HashMap<ConnId, SocketAddr>,
    /// Frames gathered this turn, length-prefixed, per connection.
    pending: HashMap<ConnId, Vec<u8>>,
    /// Links to the other members (ensembles only).
    pub peer_net: Option<PeerNet>,
    /// Follow mode: the link to the bridge that plays the followed
    /// ZooKeeper ensemble's part (`follow.rs`).
    pub followed: Option<crate::follow::NodeLink>,
    /// What `mntr` and `/metrics` report beyond the node's own stats.
    pub counters: Counters,
    pub shared: std::sync::Arc<Shared>,
    /// The node stopped (`Output::Stop`): the run ends with this error.
    stopping: Option<String>,
}

/// Why the driver stopped.
pub enum Stop {
    Signal,
}

pub fn now(started: std::time::Instant) -> Now {
    let mono = Instant(started.elapsed().as_nanos() as u64);
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Now::new(mono, wall_ms)
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: Node,
        config: ServerConfig,
        data_dir: PathBuf,
        log_dir: PathBuf,
        log: std_mpsc::Sender<LogJob>,
        snaps: std_mpsc::Sender<SnapJob>,
        started: std::time::Instant,
    ) -> Driver {
        Driver {
            node,
            config,
            data_dir,
            log_dir,
            log,
            snaps,
            started,
            conns: HashMap::new(),
            peers: HashMap::new(),
            pending: HashMap::new(),
            peer_net: None,
            followed: None,
            counters: Counters::default(),
            shared: std::sync::Arc::default(),
            stopping: None,
        }
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.node.poll_timeout()?;
        Some(tokio::time::Instant::from_std(self.started) + Duration::from_nanos(at.0))
    }

    /// Runs until `stop` fires (or a storage thread fails).
    pub async fn run(
        &mut self,
        net: &mut mpsc::Receiver<NetEvent>,
        done: &mut mpsc::UnboundedReceiver<Done>,
        peers: &mut mpsc::UnboundedReceiver<PeerEvent>,
        stop: &mut mpsc::Receiver<Stop>,
        queries: &mut mpsc::Receiver<http::Asked>,
    ) -> Result<Stop> {
        // Outputs the node produced while being built (e.g. epochs).
        self.dispatch();
        self.observe_role();
        loop {
            if let Some(why) = self.stopping.take() {
                bail!("{why}");
            }
            let deadline = self.deadline();
            let t = now(self.started);
            tokio::select! {
                biased;
                s = stop.recv() => return Ok(s.unwrap_or(Stop::Signal)),
                Some(d) = done.recv() => self.on_done(t, d)?,
                Some(ev) = peers.recv() => self.on_peer(t, ev),
                Some(ev) = net.recv() => self.on_net(t, ev),
                Some(q) = queries.recv() => self.on_query(q),
                _ = sleep_until(deadline) => {}
            }
            // Take everything else already queued into the same turn.
            let t = now(self.started);
            for _ in 0..TURN_EVENTS_MAX {
                match done.try_recv() {
                    Ok(d) => self.on_done(t, d)?,
                    Err(_) => break,
                }
            }
            for _ in 0..TURN_EVENTS_MAX {
                match peers.try_recv() {
                    Ok(ev) => self.on_peer(t, ev),
                    Err(_) => break,
                }
            }
            for _ in 0..TURN_EVENTS_MAX {
                match net.try_recv() {
                    Ok(ev) => self.on_net(t, ev),
                    Err(_) => break,
                }
            }
            if self.node.poll_timeout().is_some_and(|at| at <= t.mono) {
                self.node.handle_timeout(t);
            }
            self.dispatch();
            self.observe_role();
        }
    }

    fn on_done(&mut self, t: Now, d: Done) -> Result<()> {
        match d {
            Done::Persisted(token) => self.node.handle(t, Input::Persisted { token }),
            Done::SnapshotWritten(zxid) => self.node.handle(t, Input::SnapshotWritten { zxid }),
            Done::Failed { token, error } => {
                if error.kind == paddock_core::storage::StorageErrorKind::NoSpace {
                    tracing::error!(
                        "the disk is full: {error}. Free space in dataDir/dataLogDir and start \
                         the server again; it recovers from its log and rejoins"
                    );
                }
                self.node.handle(t, Input::StorageFailed { token, error });
            }
        }
        Ok(())
    }

    fn on_peer(&mut self, t: Now, ev: PeerEvent) {
        let input = match ev {
            PeerEvent::Up(peer) => Input::PeerConnected { peer },
            PeerEvent::Down(peer) => Input::PeerDisconnected { peer },
            PeerEvent::Message(from, bytes) => Input::PeerMessage { from, bytes },
        };
        self.node.handle(t, input);
    }

    fn on_net(&mut self, t: Now, ev: NetEvent) {
        match ev {
            NetEvent::Connected {
                conn,
                peer,
                handle,
                x509_subject,
            } => {
                debug!("client {peer} connected as {conn:?}");
                self.counters.connection_requests += 1;
                self.conns.insert(conn, Conn { handle, peer });
                self.peers.insert(conn, peer);
                self.node.handle(
                    t,
                    Input::ClientConnected {
                        conn,
                        addr: peer.ip().to_string(),
                    },
                );
                if let Some(subject) = x509_subject {
                    debug!("client {peer} ({conn:?}) presented a certificate for {subject}");
                    self.node
                        .handle(t, Input::ClientCertificate { conn, subject });
                }
            }
            NetEvent::Frame { conn, frame } => {
                self.counters.bytes_received += frame.len() as u64 + 4;
                if self.conns.contains_key(&conn) {
                    self.node.handle(t, Input::ClientFrame { conn, frame });
                }
            }
            NetEvent::SaslStep { conn, xid, step } => {
                if self.conns.contains_key(&conn) {
                    self.node
                        .handle(t, Input::ClientSaslStep { conn, xid, step });
                }
            }
            NetEvent::Closed { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    debug!("client {} ({conn:?}) closed", c.peer);
                    self.peers.remove(&conn);
                    self.pending.remove(&conn);
                    self.node.handle(t, Input::ClientClosed { conn });
                }
            }
            NetEvent::Command { word, peer, reply } => {
                debug!("processing {word} command from {peer}");
                let text = self.four_letter_word(word);
                let _ = reply.send(text.into_bytes());
            }
        }
    }

    fn four_letter_word(&mut self, word: &str) -> String {
        let allowed = self.config.four_letter_whitelist.contains(word);
        match word {
            "crst" if allowed => {
                self.node.reset_stats();
                "Connection stats reset.\n".into()
            }
            "srst" if allowed => {
                self.node.reset_stats();
                "Server stats reset.\n".into()
            }
            "mntr" if allowed => {
                let mut text = metrics::mntr_text(&self.samples());
                let quotas = self.node.state().tree.quota_metrics();
                for (k, v) in metrics::quota_pairs(&quotas) {
                    text.push_str(&format!("zk_{k}\t{v}\n"));
                }
                // Paddock's own: the last zxid applied, the last durable
                // in the log, and the tree digest, to compare replicas.
                text.push_str(&format!(
                    "zk_last_proposal_zxid\t{:#x}\nzk_persisted_zxid\t{:#x}\nzk_digest\t{}\n",
                    self.node.last_zxid().0,
                    self.node.persisted_upto().0,
                    self.node.digest()
                ));
                text
            }
            _ => fourlw::answer(word, &self.view()),
        }
    }

    fn view(&self) -> fourlw::View<'_> {
        fourlw::View {
            node: &self.node,
            config: &self.config,
            data_dir: &self.data_dir,
            log_dir: &self.log_dir,
            peers: &self.peers,
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }

    /// An HTTP query (`/metrics`, an AdminServer command, a probe).
    fn on_query(&mut self, q: http::Asked) {
        let answer = match q.query {
            Query::Metrics => Answer {
                status: 200,
                content_type: metrics::PROMETHEUS_CONTENT_TYPE,
                body: metrics::prometheus_text(&self.samples()),
            },
            Query::Live => Answer::json(200, &serde_json::json!({"live": true})),
            Query::Ready => {
                // Serving: a leader is known and this server answers clients.
                let ready = self.node.leader().is_some();
                Answer::json(
                    if ready { 200 } else { 503 },
                    &serde_json::json!({"ready": ready, "server_state": self.node.state_name()}),
                )
            }
            Query::Command(name) if name.is_empty() => Answer {
                status: 200,
                content_type: "text/html",
                body: admin::index(&self.config.ops.command_url),
            },
            Query::Command(name) => {
                let (status, json, effect) =
                    admin::command(&name, &self.view(), &|| self.samples());
                if effect == admin::Effect::ResetStats {
                    self.node.reset_stats();
                }
                Answer::json(status, &json)
            }
        };
        let _ = q.reply.send(answer);
    }

    /// Every metric, under ZooKeeper's names (`mntr`, `/metrics`).
    pub fn samples(&self) -> Vec<metrics::Sample> {
        let stats = self.node.stats();
        let now_ms = self.started.elapsed().as_millis() as u64;
        let (followers, synced) = self.node.learner_counts();
        let (observers, synced_observers) = self.node.observer_counts();
        metrics::collect(&metrics::Inputs {
            stats: &stats,
            role: self.node.state_name(),
            ensemble: self.config.is_ensemble(),
            version: fourlw::version(),
            uptime_ms: now_ms,
            role_uptime_ms: self.counters.role_uptime_ms(now_ms),
            quorum_size: self.config.servers.values().filter(|s| !s.observer).count() as u64,
            learners: (
                (followers + observers) as u64,
                synced as u64,
                synced_observers as u64,
            ),
            counters: &self.counters,
            shared: &self.shared,
        })
    }

    /// Counts role changes and applied txns; logs a role change once.
    fn observe_role(&mut self) {
        if let Some(f) = &self.followed {
            f.durable.store(
                self.node.persisted_upto().as_i64(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let role = self.node.state_name();
        let now_ms = self.started.elapsed().as_millis() as u64;
        if let Some(before) = self.counters.observe(role, self.node.last_zxid().0, now_ms) {
            let (accepted, current) = self.node.epochs();
            let zxid = self.node.last_zxid().0;
            if before.is_empty() {
                info!("role {role} (epoch {current}, accepted {accepted}, last zxid {zxid:#x})");
            } else {
                info!(
                    "role {before} -> {role} (epoch {current}, accepted {accepted}, last zxid {zxid:#x})"
                );
            }
        }
    }

    /// Carries out every output the node has, then hands each connection
    /// its gathered frames.
    fn dispatch(&mut self) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::SendClient { conn, frame } => {
                    self.counters.on_response(frame.len() as u64 + 4);
                    framing::push_frame(self.pending.entry(conn).or_default(), &frame);
                }
                Output::CloseClient { conn, reason } => {
                    self.flush_conn(conn);
                    if let Some(c) = self.conns.get(&conn) {
                        debug!("closing {} ({conn:?}): {reason}", c.peer);
                        c.handle.close();
                    }
                }
                Output::Storage(op) => {
                    if let StorageOp::Snapshot(snapshot) = &op {
                        let (zxid, snapshot) = (snapshot.zxid, snapshot.clone());
                        if self.snaps.send(SnapJob::Write { zxid, snapshot }).is_err() {
                            warn!("snapshot thread is gone; snapshot at {zxid} not written");
                        }
                    }
                    self.to_log(LogJob::Op(op));
                }
                Output::SendPeer { to, bytes } => match (&self.peer_net, &self.followed) {
                    (_, Some(f)) if to == FOLLOWED => {
                        // The bridge's thread ends only with the process.
                        let _ = f.to_bridge.send(bytes);
                    }
                    (Some(p), _) => p.send(to, bytes),
                    _ => debug!("standalone: dropping a message for server {}", to.0),
                },
                Output::ClosePeer { peer, reason } => {
                    warn!("dropping the link to server {}: {reason}", peer.0);
                    if let Some(p) = &self.peer_net {
                        p.close(peer);
                    }
                }
                Output::Stop { reason } => self.stopping = Some(reason),
                Output::ConfigActivated { version, text } => {
                    info!("configuration {version:x} in force:\n{text}");
                }
            }
        }
        let conns: Vec<ConnId> = self.pending.keys().copied().collect();
        for conn in conns {
            self.flush_conn(conn);
        }
    }

    fn to_log(&self, job: LogJob) {
        self.shared
            .log_queue
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The log thread only ends on a fatal error, which it reports.
        if self.log.send(job).is_err() {
            warn!("log thread is gone");
        }
    }

    fn flush_conn(&mut self, conn: ConnId) {
        let Some(bytes) = self.pending.remove(&conn) else {
            return;
        };
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let Err(e) = c.handle.send(bytes) {
            warn!("dropping client {}: {e}", c.peer);
            c.handle.kill();
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
