//! Black-box tests of `paddock` ensembles on loopback: election from an
//! unchanged ZooKeeper zoo.cfg, writes through a follower, kill -9 of the
//! leader under load, a restarted server rejoining, garbage on a quorum
//! port, and configuration errors refused at start.

mod common;

use common::{dial, four_letter_word, Client, Paddock};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Layout {
    dirs: Vec<PathBuf>,
    client_ports: Vec<u16>,
    quorum_ports: Vec<u16>,
}

/// Writes zoo.cfg and myid for `n` servers (ids 1..=n) under `root`; the
/// last `observers` of them are observers.
fn layout(root: &Path, n: usize, extra: &str) -> Layout {
    layout_with_observers(root, n, 0, extra)
}

fn layout_with_observers(root: &Path, n: usize, observers: usize, extra: &str) -> Layout {
    // All listeners held until every port is chosen: no port twice.
    let held: Vec<std::net::TcpListener> = (0..3 * n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let port = |i: usize| held[i].local_addr().expect("addr").port();
    let client_ports: Vec<u16> = (0..n).map(port).collect();
    let quorum_ports: Vec<u16> = (n..2 * n).map(port).collect();
    let election_ports: Vec<u16> = (2 * n..3 * n).map(port).collect();
    drop(held);
    let mut servers = String::new();
    for i in 0..n {
        let role = if i >= n - observers { ":observer" } else { "" };
        servers.push_str(&format!(
            "server.{}=127.0.0.1:{}:{}{role};{}\n",
            i + 1,
            quorum_ports[i],
            election_ports[i],
            client_ports[i]
        ));
    }
    let mut dirs = Vec::new();
    for i in 0..n {
        let dir = root.join(format!("s{}", i + 1));
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        std::fs::write(dir.join("data/myid"), format!("{}\n", i + 1)).expect("myid");
        let cfg = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{servers}{extra}",
            dir.join("data").display()
        );
        std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
        dirs.push(dir);
    }
    Layout {
        dirs,
        client_ports,
        quorum_ports,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn mode(port: u16) -> Option<String> {
    let out = std::panic::catch_unwind(|| four_letter_word(addr(port), "srvr")).ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.to_string()))
}

/// Waits (bounded) until exactly one of `ports` leads and the rest follow.
fn wait_for_quorum(ports: &[u16]) -> usize {
    wait_for_roles(ports, 0)
}

/// Waits until one of `ports` leads, `observers` observe, the rest follow.
fn wait_for_roles(ports: &[u16], observers: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<Option<String>> = ports.iter().map(|p| mode(*p)).collect();
        let count = |m: &str| modes.iter().filter(|x| x.as_deref() == Some(m)).count();
        let leaders: Vec<usize> = (0..ports.len())
            .filter(|i| modes[*i].as_deref() == Some("leader"))
            .collect();
        if leaders.len() == 1
            && count("follower") == ports.len() - 1 - observers
            && count("observer") == observers
        {
            return leaders[0];
        }
        assert!(Instant::now() < deadline, "no stable leader: {modes:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the value appears (a follower may lag its leader briefly).
fn eventually_get(port: u16, path: &str, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = Client::connect(addr(port));
    loop {
        if let Ok((data, _)) = c.get(path) {
            if data == want {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path} never read back as {want:?} on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(l: &Layout, i: usize) -> Paddock {
    Paddock::start(&l.dirs[i].join("zoo.cfg"))
}

#[test]
fn three_servers_elect_replicate_fail_over_and_rejoin() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "");
    let mut servers: Vec<Option<Paddock>> = (0..3).map(|i| Some(start(&l, i))).collect();
    let leader = wait_for_quorum(&l.client_ports);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    let mut c = Client::connect(addr(l.client_ports[follower]));
    for i in 0..50 {
        assert_eq!(
            c.create(&format!("/k{i}"), format!("v{i}").as_bytes()),
            0,
            "write {i} via a follower"
        );
    }
    eventually_get(l.client_ports[other], "/k49", b"v49");
    let mntr = four_letter_word(addr(l.client_ports[leader]), "mntr");
    assert!(mntr.contains("zk_synced_followers\t2"), "{mntr}");

    // kill -9 of the leader: a new one is elected and writes resume.
    servers[leader].take().expect("leader").kill9();
    let survivors = [l.client_ports[follower], l.client_ports[other]];
    let new_leader = wait_for_quorum(&survivors);
    let mut c = Client::connect(addr(survivors[1 - new_leader]));
    assert_eq!(c.create("/after", b"failover"), 0);
    for i in 0..50 {
        eventually_get(
            survivors[new_leader],
            &format!("/k{i}"),
            format!("v{i}").as_bytes(),
        );
    }

    // The old leader comes back as a follower with everything.
    servers[leader] = Some(start(&l, leader));
    let all = l.client_ports.clone();
    wait_for_quorum(&all);
    assert_eq!(mode(l.client_ports[leader]).as_deref(), Some("follower"));
    eventually_get(l.client_ports[leader], "/after", b"failover");
    eventually_get(l.client_ports[leader], "/k0", b"v0");
}

#[test]
fn garbage_on_a_quorum_port_is_refused_and_the_ensemble_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "");
    let servers: Vec<Paddock> = (0..3).map(|i| start(&l, i)).collect();
    let leader = wait_for_quorum(&l.client_ports);
    for (i, p) in l.quorum_ports.iter().enumerate() {
        let mut s = dial(addr(*p));
        let _ = s.write_all(b"\x00\x00\x00\x05hello, not a peer");
        drop(s);
        assert!(
            servers[i].wait_for_log("refused"),
            "server {} logs why it dropped the link",
            i + 1
        );
    }
    let mut c = Client::connect(addr(l.client_ports[(leader + 1) % 3]));
    assert_eq!(c.create("/still", b"ok"), 0);
    assert_eq!(
        wait_for_quorum(&l.client_ports),
        leader,
        "the leader was not disturbed"
    );
}

#[test]
fn a_myid_missing_from_the_server_list_is_refused_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "");
    std::fs::write(l.dirs[0].join("data/myid"), "7\n").expect("myid");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(l.dirs[0].join("zoo.cfg"))
        .output()
        .expect("run paddock");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("myid") && err.contains("server.7"), "{err}");
}

#[test]
fn five_voters_and_an_observer_survive_the_loss_of_their_leader() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout_with_observers(root.path(), 6, 1, "");
    let mut servers: Vec<Option<Paddock>> = (0..6).map(|i| Some(start(&l, i))).collect();
    let leader = wait_for_roles(&l.client_ports, 1);
    let observer = 5;
    let mut c = Client::connect(addr(l.client_ports[observer]));
    for i in 0..20 {
        assert_eq!(
            c.create(&format!("/o{i}"), b"x"),
            0,
            "write {i} through the observer"
        );
    }
    for p in &l.client_ports {
        eventually_get(*p, "/o19", b"x");
    }
    // The leader's mntr counts the observer among its learners, as
    // ZooKeeper's does: 4 followers and 1 observer, all synced (the
    // observer just served a write).
    let mntr = four_letter_word(addr(l.client_ports[leader]), "mntr");
    for line in [
        "zk_learners\t5\n",
        "zk_synced_followers\t4\n",
        "zk_synced_observers\t1\n",
    ] {
        assert!(mntr.contains(line), "{line:?} in\n{mntr}");
    }
    servers[leader].take().expect("leader").kill9();
    let rest: Vec<u16> = (0..6)
        .filter(|i| *i != leader)
        .map(|i| l.client_ports[i])
        .collect();
    wait_for_roles(&rest, 1);
    let mut c = Client::connect(addr(l.client_ports[observer]));
    assert_eq!(
        c.create("/after", b"y"),
        0,
        "the observer serves writes under the new leader"
    );
    for p in &rest {
        eventually_get(*p, "/after", b"y");
    }
}

#[test]
fn all_servers_killed_together_lose_no_acknowledged_write() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "snapCount=40\n");
    let servers: Vec<Paddock> = (0..3).map(|i| start(&l, i)).collect();
    let leader = wait_for_quorum(&l.client_ports);
    let mut acked = Vec::new();
    for (k, i) in (0..3).cycle().take(120).enumerate() {
        let mut c = Client::connect(addr(l.client_ports[i]));
        let path = format!("/w{k}");
        if c.create(&path, format!("{k}").as_bytes()) == 0 {
            acked.push((path, format!("{k}")));
        }
    }
    assert_eq!(acked.len(), 120);
    let _ = leader;
    for s in servers {
        s.kill9();
    }
    let _servers: Vec<Paddock> = (0..3).map(|i| start(&l, i)).collect();
    wait_for_quorum(&l.client_ports);
    for p in &l.client_ports {
        for (path, v) in &acked {
            eventually_get(*p, path, v.as_bytes());
        }
    }
}

#[test]
fn a_second_server_with_the_same_myid_is_refused_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "");
    let servers: Vec<Paddock> = (0..3).map(|i| start(&l, i)).collect();
    wait_for_quorum(&l.client_ports);
    // A copy of server 2's configuration with its own data dir: the same
    // myid, so the same peer ports.
    let twin = root.path().join("twin");
    std::fs::create_dir_all(twin.join("data")).expect("mkdir");
    std::fs::write(twin.join("data/myid"), "2\n").expect("myid");
    let cfg = std::fs::read_to_string(l.dirs[1].join("zoo.cfg")).expect("zoo.cfg");
    let cfg = cfg.replace(
        &l.dirs[1].join("data").display().to_string(),
        &twin.join("data").display().to_string(),
    );
    std::fs::write(twin.join("zoo.cfg"), cfg).expect("zoo.cfg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(twin.join("zoo.cfg"))
        .output()
        .expect("run paddock");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("myid 2") && err.contains("server.2"),
        "the error names the key: {err}"
    );
    // The ensemble never noticed.
    let leader = wait_for_quorum(&l.client_ports);
    let mut c = Client::connect(addr(l.client_ports[leader]));
    assert_eq!(
        c.create("/after-twin", b"ok"),
        0,
        "the ensemble keeps serving"
    );
    drop(servers);
}

#[test]
fn a_member_with_a_different_server_list_is_refused_by_its_peers() {
    let root = tempfile::tempdir().expect("tempdir");
    let l = layout(root.path(), 3, "");
    // Server 3 believes in a fourth voter the others have never heard of.
    let cfg_path = l.dirs[2].join("zoo.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).expect("zoo.cfg");
    let extra = format!("server.4=127.0.0.1:{}:{}\n", free_port(), free_port());
    std::fs::write(&cfg_path, format!("{cfg}{extra}")).expect("zoo.cfg");
    let servers: Vec<Paddock> = (0..3).map(|i| start(&l, i)).collect();
    // Servers 1 and 2 form a quorum of their three and serve.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<Option<String>> = l.client_ports[..2].iter().map(|p| mode(*p)).collect();
        let mut sorted: Vec<String> = modes.iter().flatten().cloned().collect();
        sorted.sort();
        if sorted == ["follower", "leader"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "servers 1 and 2 never formed a quorum: {modes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        servers[2].wait_for_log("different server.N list"),
        "server 3 says why its links are refused: {}",
        servers[2].stderr()
    );
    assert!(
        servers[0].wait_for_log("different server.N list")
            || servers[1].wait_for_log("different server.N list"),
        "its peers say why they refuse it"
    );
    assert_ne!(mode(l.client_ports[2]).as_deref(), Some("follower"));
    assert_ne!(mode(l.client_ports[2]).as_deref(), Some("leader"));
}
