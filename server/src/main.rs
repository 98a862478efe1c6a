//! `paddock`: a ZooKeeper-compatible server.
//!
//! `paddock` serves standalone on port 2181 with its data in
//! `./paddock-data`; `paddock path/to/zoo.cfg` reads a ZooKeeper config,
//! the same positional form as ZooKeeper's `QuorumPeerMain`.
//!
//! Start-up order: config, recovery (read every log and snapshot, let the
//! core decide, carry out its repairs), the storage threads, the listener,
//! then the driver. SIGTERM or SIGINT stops accepting, flushes and fsyncs
//! the log, and exits 0.

mod admin;
mod config;
mod disk;
mod driver;
mod failclosed;
mod follow;
mod fourlw;
mod http;
mod import;
mod inspect;
mod jaas;
mod logging;
mod member_list;
mod metric_names;
mod metrics;
mod opsconfig;
mod security;
mod storage;
mod sysprops;
mod takeover;

use anyhow::{Context, Result};
use clap::Parser;
use config::ServerConfig;
use paddock_core::boot::{self, BootError};
use paddock_core::Node;
use paddock_net::{ClientListener, ListenerConfig, TlsListen};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Bytes waiting for one client before it is dropped as too slow.
/// The core allocates per request (frames, txns, tree nodes); mimalloc
/// serves those small, short-lived allocations faster than the system
/// allocator, and returns memory to the OS more readily.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENT_OUT_QUEUE_BYTES_MAX: usize = 64 << 20;
/// Events from the network waiting for the driver (backpressure beyond).
const NET_EVENTS_MAX: usize = 8192;

#[derive(Parser, Debug)]
#[command(
    name = "paddock",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Args {
    /// A ZooKeeper zoo.cfg; without it, serve standalone on port 2181 with
    /// data in ./paddock-data.
    config: Option<PathBuf>,
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = match argv.get(1).and_then(|a| a.to_str()) {
        Some("import") => {
            logging::init(&Default::default(), None);
            match &argv[2..] {
                [cfg] => import::run(std::path::Path::new(cfg)),
                _ => Err(anyhow::anyhow!("usage: paddock import ZOO_CFG")),
            }
        }
        Some("inspect") => {
            logging::init(&Default::default(), None);
            inspect::main(&argv[2..])
        }
        Some("takeover-check") => takeover::main(&argv[2..]),
        _ => run(Args::parse()),
    };
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            error!("{e:#}");
            eprintln!("paddock: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn load_config(args: &Args) -> Result<ServerConfig> {
    // `-D` words ask for capabilities as zoo.cfg keys do: the same refusals.
    let flags: String = sysprops::jvm_flag_properties(|k| std::env::var(k).ok())
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    if let Some(why) = failclosed::refused_key(&flags) {
        anyhow::bail!("refusing to start: {why} (from SERVER_JVMFLAGS or JVMFLAGS)");
    }
    let cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Some(why) = failclosed::refused_key(&text) {
                anyhow::bail!("refusing to start: {why}");
            }
            ServerConfig::from_file(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => ServerConfig::from_pairs(sysprops::known(sysprops::jvm_flag_properties(|k| {
            std::env::var(k).ok()
        })))?,
    };
    Ok(cfg)
}

/// Logs what the configuration means, once the logger is up.
fn report_config(cfg: &ServerConfig) -> Result<()> {
    for k in &cfg.unknown_keys {
        warn!("unknown configuration key {k}: ignored");
    }
    for k in &cfg.ignored_keys {
        let bare = k.strip_prefix("zookeeper.").unwrap_or(k);
        match sysprops::lookup(bare) {
            Some((_, sysprops::Treatment::NoEffect(why))) => {
                info!("configuration key {k} has no effect in paddock: {why}")
            }
            _ if bare == "reconfigEnabled" => warn!(
                "configuration key {k}: dynamic reconfiguration is not served by this \
                 build; reconfig requests are refused with ReconfigDisabled"
            ),
            _ => info!("configuration key {k} has no effect in paddock"),
        }
    }
    for (k, v) in &cfg.system_properties {
        info!("setting {k}={v}");
    }
    if cfg.is_ensemble() {
        let id = cfg
            .validate_ensemble()
            .context("invalid ensemble configuration")?;
        info!(
            "ensemble member {id} of {} (initLimit {}, syncLimit {}, tickTime {} ms)",
            cfg.servers.len(),
            cfg.init_limit,
            cfg.sync_limit,
            cfg.tick_time_ms
        );
    } else if !cfg.servers.is_empty() {
        info!("a single server.N line: serving standalone");
    }
    Ok(())
}

/// Resolves `host:port` of a member (loopback names included).
fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to no address"))
}

/// Listens on this server's quorum and election ports and dials the
/// members with smaller ids.
async fn start_peers(
    cfg: &ServerConfig,
    events: mpsc::UnboundedSender<paddock_net::peer::PeerEvent>,
) -> Result<paddock_net::peer::PeerNet> {
    let me = cfg.my_id.context("myid")?;
    let mut members = std::collections::BTreeMap::new();
    for (n, s) in &cfg.servers {
        members.insert(paddock_core::ServerId(*n), resolve(&s.host, s.quorum_port)?);
    }
    let mine = &cfg.servers[&me];
    let mut listen = Vec::new();
    for port in [mine.quorum_port, mine.election_port] {
        let addr = if cfg.quorum_listen_on_all_ips {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
        } else {
            resolve(&mine.host, port)?
        };
        listen.push(addr);
    }
    let tls = match cfg.security.quorum_tls()? {
        Some((settings, verify_hostname)) => {
            info!(
                "peer links over TLS (sslQuorum), mutual authentication{}",
                if verify_hostname {
                    ", peer addresses checked against their certificates"
                } else {
                    ""
                }
            );
            Some(
                paddock_net::peer_tls::PeerTls::new(settings, verify_hostname)
                    .context("quorum TLS (ssl.quorum.*)")?,
            )
        }
        None => None,
    };
    let hosts = cfg.servers.values().map(|s| s.host.clone()).collect();
    let sasl = cfg.security.quorum_sasl(hosts)?.map(std::sync::Arc::new);
    match sasl.as_ref().and_then(|s| s.kerberos.as_ref()) {
        Some(k) => info!(
            "peer links authenticated by quorum SASL (GSSAPI): accepting as {}, dialling as {} to {}",
            k.acceptor.principal(),
            k.initiator.principal(),
            k.service_principal
        ),
        None if sasl.is_some() => info!("peer links authenticated by quorum SASL (DIGEST-MD5)"),
        None => {}
    }
    paddock_net::peer::PeerNet::start(paddock_core::ServerId(me), members, listen.clone(), cfg.membership_digest(), events, tls, sasl)
        .await
        .with_context(|| {
            format!(
                "binding the peer ports {listen:?} of server.{me}: is another server running with myid {me}, or is the port taken?"
            )
        })
}

/// Per-process randomness for session passwords (the core's generator is
/// seeded from it).
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn run(args: Args) -> Result<()> {
    let started = std::time::Instant::now();
    let cfg = load_config(&args)?;
    // Held to the end: it flushes the log file.
    let _log_guard = logging::init(&cfg.log, cfg.my_id.filter(|_| cfg.is_ensemble()));
    report_config(&cfg)?;
    if !cfg.follow_zookeeper.is_empty() {
        follow::check(&cfg)?;
    }
    // Java reads the Kerberos configuration named by
    // -Djava.security.krb5.conf; MIT's library reads KRB5_CONFIG. An
    // explicit KRB5_CONFIG wins. Set before the runtime starts any thread
    // that could read the environment.
    if let Some(conf) = &cfg.security.krb5_conf {
        if std::env::var_os("KRB5_CONFIG").is_none() {
            std::env::set_var("KRB5_CONFIG", conf);
        }
    }
    // Authentication that cannot be honoured stops the start here, before
    // the data directory is touched.
    let sasl = cfg
        .security
        .sasl_config()
        .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    let enforced = cfg
        .security
        .enforced_schemes()
        .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    let dirs = disk::Dirs {
        data: cfg.data_dir.clone(),
        log: cfg.log_dir().to_path_buf(),
    };
    failclosed::check_data_dirs(&dirs.data, &dirs.log, args.config.as_deref())
        .map_err(|why| anyhow::anyhow!("refusing to start: {why}"))?;
    dirs.create()
        .with_context(|| format!("creating {}", dirs.data.display()))?;
    // Held for the life of the process: recovery repairs files, so two
    // processes must never share a data directory.
    let _lock = disk::lock_data_dir(&dirs)?;

    let mut core_config = cfg.core_config(seed());
    // A Kerberos login is taken now, so a missing library or a keytab
    // without the principal's key stops the start (ZooKeeper's login fails
    // at start too).
    let gssapi = match sasl.as_ref().and_then(|s| s.kerberos.as_ref()) {
        Some((keytab, principal)) => {
            let acceptor = paddock_net::gssapi::Acceptor::new(keytab, principal).map_err(|e| {
                anyhow::anyhow!(
                    "refusing to start: java.security.auth.login.config: the Kerberos login of {principal} failed: {e}"
                )
            })?;
            info!("client SASL (GSSAPI) as {principal}, keys from {keytab}");
            Some(acceptor)
        }
        None => None,
    };
    if let Some(s) = sasl.as_ref().filter(|s| s.kerberos.is_none()) {
        info!(
            "client SASL (DIGEST-MD5) with {} user(s) from the JAAS file",
            s.core.users.len()
        );
    }
    core_config.sasl = sasl.map(|s| s.core);
    core_config.enforce_auth_schemes = enforced;
    if !core_config.enforce_auth_schemes.is_empty() {
        info!(
            "clients must authenticate with one of {:?}",
            core_config.enforce_auth_schemes
        );
    }
    // Local, as in ZooKeeper: every member writes the same list, so the
    // tree digests stay equal.
    core_config.member_list =
        member_list::config_node_text(&cfg).map(|text| std::sync::Arc::from(text.into_bytes()));
    if !cfg.follow_zookeeper.is_empty() {
        core_config = follow::core_config(core_config);
    }
    let mut dir = dirs.clone();
    let booted = boot::boot(core_config, &mut dir, driver::now(started)).map_err(|e| match e {
        BootError::Recovery(e) => anyhow::anyhow!(
            "refusing to start: recovery of {} failed: {e}. Restore the missing files or move the data directory away.",
            dirs.data.display()
        ),
        BootError::Io(e) => anyhow::anyhow!(
            "refusing to start: reading or repairing the data directory {} failed: {e}. Nothing is served from a partial read; fix the disk and start again.",
            dirs.data.display()
        ),
    })?;
    if booted.marked {
        warn!("durable records were lost: this server syncs from a leader before it votes again");
    }
    let node = booted.node;
    // ZooKeeper's dbinittime: loading the data directory into memory.
    let db_init_ms = started.elapsed().as_millis() as u64;

    // One thread runs the driver and every connection and peer task. The
    // node is single-threaded anyway, and on a work-stealing runtime each
    // hand-off between a connection task and the driver (on this thread)
    // is a cross-thread wake-up: with clients that send a few requests per
    // wake-up, those futex wake-ups and context switches were most of the
    // server's CPU per operation (docs/DESIGN-NOTES.md, "The cost of one
    // operation"). Storage keeps its own threads: fsync blocks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("paddock-net")
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(cfg, dirs, node, started, db_init_ms, gssapi))
}

async fn serve(
    cfg: ServerConfig,
    dirs: disk::Dirs,
    node: Node,
    started: std::time::Instant,
    db_init_ms: u64,
    gssapi: Option<std::sync::Arc<paddock_net::gssapi::Acceptor>>,
) -> Result<()> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let shared = std::sync::Arc::new(metrics::Shared::default());
    let (log_tx, log_thread) = storage::spawn_log_thread(
        dirs.clone(),
        cfg.force_sync,
        done_tx.clone(),
        shared.clone(),
    );
    let (snap_tx, _snap_thread) =
        storage::spawn_snapshot_thread(dirs.clone(), done_tx, shared.clone());
    if !cfg.force_sync {
        warn!("forceSync=no: the log is not fsynced; a crash may lose acknowledged writes");
    }

    let (net_tx, mut net_rx) = mpsc::channel(NET_EVENTS_MAX);
    let ip = cfg
        .client_port_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let tls = match cfg.security.tls_settings()? {
        Some(settings) => Some(std::sync::Arc::new(
            paddock_net::tls::TlsAcceptor::new(settings).context("client TLS")?,
        )),
        None => None,
    };
    let listen = |addr, tls| ListenerConfig {
        addr,
        max_buffer: cfg.jute_max_buffer,
        max_cnxns_per_ip: cfg.max_client_cnxns,
        max_cnxns: cfg.max_cnxns,
        out_queue_bytes_max: CLIENT_OUT_QUEUE_BYTES_MAX,
        tls,
        gssapi: gssapi.clone(),
    };
    let secure_listener = match (cfg.security.secure_client_port, &tls) {
        (Some(port), Some(acceptor)) => {
            let addr = SocketAddr::new(
                cfg.security
                    .secure_client_port_address
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                port,
            );
            let l = ClientListener::bind(
                listen(
                    addr,
                    Some(TlsListen {
                        acceptor: acceptor.clone(),
                        plaintext_too: false,
                    }),
                ),
                net_tx.clone(),
            )
            .await
            .with_context(|| format!("binding the secure client port {addr}"))?;
            info!("serving TLS clients on {}", l.local_addr());
            Some(l)
        }
        _ => None,
    };
    let unified = match (&tls, cfg.security.port_unification) {
        (Some(acceptor), true) => Some(TlsListen {
            acceptor: acceptor.clone(),
            plaintext_too: true,
        }),
        _ => None,
    };
    let listener = ClientListener::bind(
        listen(SocketAddr::new(ip, cfg.effective_client_port()), unified),
        net_tx,
    )
    .await
    .with_context(|| match cfg.my_id.filter(|_| cfg.is_ensemble()) {
        Some(me) => format!(
            "binding the client port {ip}:{} of server.{me}: is another server running with myid {me}, or is the port taken?",
            cfg.effective_client_port()
        ),
        None => format!("binding {ip}:{}", cfg.effective_client_port()),
    })?;
    let (peer_tx, mut peer_rx) = mpsc::unbounded_channel();
    let mut followed = None;
    let peer_net = if !cfg.follow_zookeeper.is_empty() {
        // The node's only peer is the followed ensemble; the paddock
        // servers listed become an ensemble at takeover.
        let sid = follow::check(&cfg)?;
        followed = Some(follow::start(&cfg, sid, &node, peer_tx)?);
        None
    } else if cfg.is_ensemble() {
        Some(start_peers(&cfg, peer_tx).await?)
    } else {
        drop(peer_tx);
        None
    };
    info!(
        "paddock {} serving clients on {} ({}); data in {}, logs in {}",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr(),
        if cfg.is_ensemble() {
            "ensemble member"
        } else {
            "standalone"
        },
        absolute(&dirs.data).display(),
        absolute(&dirs.log).display()
    );

    let (stop_tx, mut stop_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        if let Err(e) = wait_for_signal().await {
            error!("cannot listen for signals: {e}");
            return;
        }
        let _ = stop_tx.send(driver::Stop::Signal).await;
    });
    if cfg.purge_interval_hours > 0 {
        let snaps = snap_tx.clone();
        let retain = cfg.snap_retain_count as usize;
        let every = Duration::from_secs(u64::from(cfg.purge_interval_hours) * 3600);
        info!(
            "autopurge every {} h keeping {retain} snapshots",
            cfg.purge_interval_hours
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if snaps.send(storage::SnapJob::Purge { retain }).is_err() {
                    return;
                }
            }
        });
    }

    let mut d = driver::Driver::new(
        node,
        cfg.clone(),
        dirs.data.clone(),
        dirs.log.clone(),
        log_tx.clone(),
        snap_tx,
        started,
    );
    d.peer_net = peer_net;
    d.followed = followed;
    d.shared = shared;
    d.counters.dbinittime.record(db_init_ms);
    let (query_tx, mut query_rx) = mpsc::channel(http::QUERIES_MAX);
    start_http(&cfg, query_tx).await;
    let result = d
        .run(
            &mut net_rx,
            &mut done_rx,
            &mut peer_rx,
            &mut stop_rx,
            &mut query_rx,
        )
        .await;
    listener.stop();
    if let Some(l) = &secure_listener {
        l.stop();
    }
    info!("stopping: flushing the log");
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    if log_tx.send(storage::LogJob::Stop(ack_tx)).is_ok() {
        let waited =
            tokio::task::spawn_blocking(move || ack_rx.recv_timeout(Duration::from_secs(60))).await;
        if !matches!(waited, Ok(Ok(()))) {
            warn!("the log thread did not confirm the final flush");
        }
    }
    let _ = log_thread.join();
    result?;
    info!("stopped");
    Ok(())
}

/// Starts `/metrics` and the AdminServer as zoo.cfg asks. A port that
/// cannot be bound is logged and the server goes on, as ZooKeeper's does.
async fn start_http(cfg: &ServerConfig, queries: mpsc::Sender<http::Asked>) {
    let ops = &cfg.ops;
    if ops.export_jvm_info_given {
        info!("metricsProvider.exportJvmInfo has no effect: there is no JVM to report on");
    }
    let mut endpoints = Vec::new();
    if ops.prometheus() {
        endpoints.push((
            "/metrics",
            ops.metrics_host.clone(),
            ops.metrics_port,
            http::Routes::Metrics,
        ));
    } else if let Some(class) = &ops.metrics_class {
        info!(
            "metricsProvider.className={class}: no /metrics endpoint (only {} serves one)",
            opsconfig::PROMETHEUS_PROVIDER
        );
    }
    if ops.admin_enabled {
        endpoints.push((
            "AdminServer",
            ops.admin_address.clone(),
            ops.admin_port,
            http::Routes::Admin {
                command_url: ops.command_url.clone(),
            },
        ));
    }
    for (what, host, port, routes) in endpoints {
        let addr = match resolve(&host, port) {
            Ok(a) => a,
            Err(e) => {
                error!("{what} not started: {e:#}");
                continue;
            }
        };
        match http::serve(addr, routes, queries.clone()).await {
            Ok(bound) => info!("{what} listening on http://{bound}"),
            Err(e) => error!("{what} not started: cannot bind {addr}: {e}"),
        }
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    Ok(())
}
