//! A cluster of real `paddock` processes on loopback.
//!
//! [`Cluster::start`] writes a zoo.cfg and myid per server under a temp
//! dir (free ports, `4lw.commands.whitelist=*`), puts the [`Proxy`] on the
//! peer links, and starts every server with its stderr appended to
//! `sN/server.log` (kept across restarts so a failure shows the whole
//! story). Faults: [`Cluster::kill9`], [`Cluster::restart`],
//! [`Cluster::pause`] / [`Cluster::resume`] (SIGSTOP/SIGCONT), the proxy's
//! partitions, a tmpfs dataDir ([`ClusterSpec::tmpfs_mb`]) for a full
//! disk, and a slow disk ([`ClusterSpec::slow_disk`], then
//! [`Cluster::set_fsync_delay`]).
//!
//! Invariants: only processes this cluster spawned are signalled, by PID;
//! only mounts it made are unmounted; `Drop` does both, also on panic.
//! Every wait is bounded.

use crate::proxy::{membership_digest, Proxy};
use crate::slowdisk::{self, Shim};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The `paddock` binary: `$PADDOCK_BIN`, else the workspace's build of the
/// same profile as this crate, built once per process if missing.
pub fn paddock_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("PADDOCK_BIN") {
            return PathBuf::from(p);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let release = !cfg!(debug_assertions);
        let bin = root.join(if release {
            "target/release/paddock"
        } else {
            "target/debug/paddock"
        });
        if !bin.exists() {
            let mut args = vec!["build", "-p", "paddock-server", "--bin", "paddock"];
            if release {
                args.push("--release");
            }
            let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
                .args(&args)
                .current_dir(&root)
                .status()
                .expect("run cargo build for the paddock binary");
            assert!(status.success(), "building paddock failed");
        }
        bin
    })
    .clone()
}

/// A loopback port free now and never handed out before by this process:
/// the kernel may return a just-released port to the next `bind(0)`, and
/// two members given the same port make an invalid zoo.cfg.
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if given.insert(port) {
            return port;
        }
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub voters: usize,
    pub observers: usize,
    pub tick_ms: u64,
    /// Extra zoo.cfg lines for every server.
    pub extra: String,
    /// Mount a tmpfs of this many MiB as the dataDir of these servers
    /// (indices), for a full disk.
    pub tmpfs_mb: Option<(Vec<usize>, u32)>,
    /// Load the fsync shim ([`crate::slowdisk`]) into every server, with
    /// no delay until [`Cluster::set_fsync_delay`].
    pub slow_disk: bool,
}

impl ClusterSpec {
    pub fn voters(n: usize) -> ClusterSpec {
        ClusterSpec {
            voters: n,
            observers: 0,
            tick_ms: 300,
            extra: String::new(),
            tmpfs_mb: None,
            slow_disk: false,
        }
    }
    pub fn size(&self) -> usize {
        self.voters + self.observers
    }
}

/// Running state of one server.
pub struct Server {
    pub id: usize,
    pub dir: PathBuf,
    pub data: PathBuf,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    child: Option<Child>,
    paused: bool,
    /// Byte offset of `server.log` where the current incarnation began.
    log_start: u64,
    mounted: bool,
    pub starts: u64,
}

impl Server {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
    pub fn client_addr(&self) -> SocketAddr {
        addr(self.client_port)
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
    pub fn paused(&self) -> bool {
        self.paused
    }
}

pub struct Cluster {
    pub spec: ClusterSpec,
    pub servers: Vec<Server>,
    pub proxy: Proxy,
    pub root: tempfile::TempDir,
    /// The fsync shim, when the spec asks for a slow disk.
    shim: Option<Shim>,
}

/// How long a started server may take to load the fsync shim.
const SHIM_LOAD_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// Lays out and starts every server; does not wait for a leader.
    pub fn start(spec: ClusterSpec) -> Result<Cluster> {
        let root = tempfile::Builder::new()
            .prefix("paddock-chaos-")
            .tempdir()
            .context("temp dir")?;
        let n = spec.size();
        let (proxy, listeners) = Proxy::bind(n).context("binding proxy ports")?;
        let mut servers = Vec::new();
        for i in 0..n {
            let dir = root.path().join(format!("s{}", i + 1));
            let data = dir.join("data");
            std::fs::create_dir_all(&data)?;
            servers.push(Server {
                id: i + 1,
                dir,
                data,
                client_port: free_port(),
                quorum_port: free_port(),
                election_port: free_port(),
                observer: i >= spec.voters,
                child: None,
                paused: false,
                log_start: 0,
                mounted: false,
                starts: 0,
            });
        }
        let shim = if spec.slow_disk {
            Some(Shim::build(root.path())?)
        } else {
            None
        };
        let mut cluster = Cluster {
            spec,
            servers,
            proxy,
            root,
            shim,
        };
        let mut digests = Vec::new();
        for i in 0..n {
            digests.push(cluster.write_config(i)?);
        }
        let targets = cluster
            .servers
            .iter()
            .map(|s| addr(s.quorum_port))
            .collect();
        cluster.proxy.start(listeners, targets, digests);
        if let Some((which, mb)) = cluster.spec.tmpfs_mb.clone() {
            for i in which {
                cluster.mount_tmpfs(i, mb)?;
            }
        }
        for i in 0..n {
            cluster.spawn(i)?;
        }
        if cluster.shim.is_some() {
            cluster.wait_for_shim()?;
        }
        Ok(cluster)
    }

    /// Fails unless every server loaded the fsync shim (it creates its
    /// count file on load): a statically linked or setuid binary would
    /// ignore LD_PRELOAD and the slow disk would silently be a fast one.
    fn wait_for_shim(&self) -> Result<()> {
        let deadline = Instant::now() + SHIM_LOAD_TIMEOUT;
        for s in &self.servers {
            while slowdisk::delayed_fsyncs(&s.dir).is_none() {
                if Instant::now() > deadline {
                    bail!(
                        "server {} did not load the fsync shim in {SHIM_LOAD_TIMEOUT:?} (LD_PRELOAD ignored?)\n{}",
                        s.id,
                        self.all_logs_tail(20)
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Delays every fsync and fdatasync of server i by `delay` (None: no
    /// delay) from its next call on, across restarts. A call already
    /// sleeping finishes its sleep.
    pub fn set_fsync_delay(&self, i: usize, delay: Option<Duration>) -> Result<()> {
        anyhow::ensure!(
            self.shim.is_some(),
            "a slow disk needs ClusterSpec::slow_disk"
        );
        slowdisk::set_delay(&self.servers[i].dir, delay)
    }

    /// Makes every fsync and fdatasync of server i fail with EIO or ENOSPC
    /// (None: succeed again), from its next call on, across restarts.
    pub fn set_fsync_failure(
        &self,
        i: usize,
        failure: Option<slowdisk::FsyncFailure>,
    ) -> Result<()> {
        anyhow::ensure!(
            self.shim.is_some(),
            "a failing disk needs ClusterSpec::slow_disk"
        );
        slowdisk::set_failure(&self.servers[i].dir, failure)
    }

    /// How many fsyncs the shim has delayed in server i so far.
    pub fn delayed_fsyncs(&self, i: usize) -> u64 {
        slowdisk::delayed_fsyncs(&self.servers[i].dir).unwrap_or(0)
    }

    /// Writes server i's zoo.cfg and myid; returns its membership digest.
    fn write_config(&self, i: usize) -> Result<u64> {
        let me = &self.servers[i];
        let mut lines = String::new();
        let mut members = Vec::new();
        for (j, s) in self.servers.iter().enumerate() {
            // Server i dials only smaller ids, through the proxy.
            let q = if j < i {
                self.proxy.listen_addr(i, j).port()
            } else {
                s.quorum_port
            };
            let role = if s.observer { ":observer" } else { "" };
            lines.push_str(&format!(
                "server.{}=127.0.0.1:{q}:{}{role};{}\n",
                s.id, s.election_port, s.client_port
            ));
            members.push((
                s.id as u64,
                "127.0.0.1".to_string(),
                q,
                s.election_port,
                s.observer,
            ));
        }
        let peer_type = if me.observer {
            "peerType=observer\n"
        } else {
            ""
        };
        let cfg = format!(
            "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{peer_type}{lines}{}\n",
            self.spec.tick_ms,
            me.data.display(),
            self.spec.extra
        );
        std::fs::write(me.dir.join("zoo.cfg"), cfg)?;
        std::fs::write(me.data.join("myid"), format!("{}\n", me.id))?;
        Ok(membership_digest(&members))
    }

    fn mount_tmpfs(&mut self, i: usize, mb: u32) -> Result<()> {
        let data = self.servers[i].data.clone();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&data)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.servers[i].mounted = true;
        std::fs::write(data.join("myid"), format!("{}\n", self.servers[i].id))?;
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let bin = paddock_bin();
        let s = &mut self.servers[i];
        assert!(s.child.is_none(), "server {} already running", s.id);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.log_path())?;
        s.log_start = log.metadata()?.len();
        writeln!(
            log,
            "==== chaos: start #{} of server {} ====",
            s.starts + 1,
            s.id
        )?;
        let shim_env = self.shim.as_ref().map(|shim| shim.env(&s.dir));
        let child = Command::new(bin)
            .arg(s.dir.join("zoo.cfg"))
            .envs(shim_env.into_iter().flatten())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning paddock")?;
        s.child = Some(child);
        s.paused = false;
        s.starts += 1;
        Ok(())
    }

    /// SIGKILL of server i (a crash), reaped.
    pub fn kill9(&mut self, i: usize) {
        let s = &mut self.servers[i];
        if let Some(mut c) = s.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        s.paused = false;
    }

    /// Starts server i again on the same data dir.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.servers[i].running() {
            return Ok(());
        }
        self.spawn(i)
    }

    fn signal(&self, i: usize, sig: &str) -> Result<()> {
        let pid = self.servers[i].pid().context("not running")?;
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()?;
        if !ok.success() {
            bail!("kill -{sig} {pid} failed");
        }
        Ok(())
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.signal(i, "STOP")?;
        self.servers[i].paused = true;
        Ok(())
    }

    pub fn resume(&mut self, i: usize) -> Result<()> {
        if self.servers[i].paused {
            self.signal(i, "CONT")?;
            self.servers[i].paused = false;
        }
        Ok(())
    }

    /// Whether server i's process died on its own (reaped if so).
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let s = &mut self.servers[i];
        let st = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if st.is_some() {
            s.child = None;
        }
        st
    }

    /// server.log of server i, all incarnations.
    pub fn log(&self, i: usize) -> String {
        std::fs::read(self.servers[i].log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// server.log of server i's current incarnation.
    pub fn current_log(&self, i: usize) -> String {
        let mut out = Vec::new();
        if let Ok(mut f) = File::open(self.servers[i].log_path()) {
            use std::io::Seek;
            let _ = f.seek(std::io::SeekFrom::Start(self.servers[i].log_start));
            let _ = f.read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every server's log, with a heading, for failure messages.
    pub fn all_logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.servers.len() {
            let log = self.log(i);
            let all: Vec<&str> = log.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "---- server {} ({}) last {} lines ----\n{}\n",
                i + 1,
                self.servers[i].log_path().display(),
                all.len() - from,
                all[from..].join("\n")
            ));
        }
        out
    }

    pub fn four_letter_word(&self, i: usize, word: &str) -> Option<String> {
        four_letter_word(self.servers[i].client_addr(), word)
    }

    /// `Mode:` from srvr; None when down, paused or not serving.
    pub fn mode(&self, i: usize) -> Option<String> {
        if !self.servers[i].running() || self.servers[i].paused {
            return None;
        }
        let out = self.four_letter_word(i, "srvr")?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
    }

    /// `key value` pairs of mntr.
    pub fn mntr(&self, i: usize) -> Option<Vec<(String, String)>> {
        let out = self.four_letter_word(i, "mntr")?;
        Some(
            out.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once('\t')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect(),
        )
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.servers.len()).find(|i| self.mode(*i).as_deref() == Some("leader"))
    }

    /// Waits until exactly one of `members` leads and every other member
    /// follows or observes; returns the leader.
    pub fn wait_for_roles(&self, members: &[usize], timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let modes: Vec<Option<String>> = members.iter().map(|i| self.mode(*i)).collect();
            let leaders: Vec<usize> = members
                .iter()
                .zip(&modes)
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(i, _)| *i)
                .collect();
            let all_ok = members.iter().zip(&modes).all(|(i, m)| {
                let want = if self.servers[*i].observer {
                    "observer"
                } else {
                    "follower"
                };
                m.as_deref() == Some(want) || m.as_deref() == Some("leader")
            });
            if leaders.len() == 1 && all_ok {
                return Ok(leaders[0]);
            }
            if Instant::now() > deadline {
                bail!("no stable leader among {members:?} in {timeout:?}: modes {modes:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for every running, unpaused server to have a role.
    pub fn wait_for_all(&self, timeout: Duration) -> Result<usize> {
        let members: Vec<usize> = (0..self.servers.len())
            .filter(|i| self.servers[*i].running() && !self.servers[*i].paused)
            .collect();
        self.wait_for_roles(&members, timeout)
    }

    /// Waits until every running server reports the same last zxid and
    /// the same tree digest; returns (zxid, digest) or why not.
    pub fn wait_for_convergence(&self, timeout: Duration) -> Result<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for i in 0..self.servers.len() {
                if !self.servers[i].running() {
                    continue;
                }
                let m = self.mntr(i).unwrap_or_default();
                let get = |k: &str| {
                    m.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                seen.push((i + 1, get("zk_last_proposal_zxid"), get("zk_digest")));
            }
            let first = seen.first().cloned();
            if let Some((_, z, d)) = &first {
                if !z.is_empty()
                    && !d.is_empty()
                    && seen.iter().all(|(_, z2, d2)| z2 == z && d2 == d)
                {
                    return Ok((z.clone(), d.clone()));
                }
            }
            // Same zxid but different digests is divergence, not lag.
            let same_zxid = first
                .as_ref()
                .is_some_and(|(_, z, _)| !z.is_empty() && seen.iter().all(|(_, z2, _)| z2 == z));
            if same_zxid && Instant::now() + timeout / 2 > deadline {
                bail!("servers at the same zxid disagree on the digest: {seen:?}");
            }
            if Instant::now() > deadline {
                bail!("servers did not converge in {timeout:?}: (server, zxid, digest) {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Indices of servers whose logs say they panicked.
    pub fn panicked(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|i| self.log(*i).contains("panicked at"))
            .collect()
    }

    pub fn voters(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|i| !self.servers[*i].observer)
            .collect()
    }

    /// Grows server i's tmpfs dataDir to `mb` MiB (space freed on a full
    /// disk), keeping its files.
    pub fn grow_tmpfs(&mut self, i: usize, mb: u32) -> Result<()> {
        anyhow::ensure!(self.servers[i].mounted, "server {} has no tmpfs", i + 1);
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={mb}m")])
            .arg(&self.servers[i].data)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "remount refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// (snapshot files, log files) in server i's dataDir.
    pub fn data_files(&self, i: usize) -> (usize, usize) {
        let d = &self.servers[i].data;
        (files(d, "snapshot.").len(), files(d, "log.").len())
    }

    pub fn unmount(&mut self, i: usize) {
        if self.servers[i].mounted {
            self.kill9(i);
            let ok = Command::new("umount")
                .arg(&self.servers[i].data)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                self.servers[i].mounted = false;
            } else {
                eprintln!(
                    "chaos: could not unmount {}",
                    self.servers[i].data.display()
                );
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill9(i);
        }
        for i in 0..self.servers.len() {
            self.unmount(i);
        }
        if std::env::var_os("CHAOS_KEEP").is_some() {
            let path = self.root.path().to_path_buf();
            eprintln!("chaos: keeping {}", path.display());
            std::mem::forget(std::mem::replace(
                &mut self.root,
                tempfile::tempdir().expect("tempdir"),
            ));
        }
    }
}

/// Sends a four-letter word; None when the server does not answer.
pub fn four_letter_word(a: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Files of a data dir whose names start with `prefix`, sorted by name.
pub fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with(prefix) && !n.ends_with(".corrupt") && !n.ends_with(".tmp")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('.'))
            .and_then(|(_, h)| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    });
    v
}
