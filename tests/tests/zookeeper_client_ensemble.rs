//! The `zookeeper-client` crate (0.11), unchanged, against a real ensemble
//! of three `paddock` processes on loopback: writes through any server
//! seen from every server after `sync`, ephemerals and watches across
//! servers, and a session that outlives kill -9 of its server. Every wait
//! is bounded; the fixture kills the processes it started on `Drop`.

mod common;
use common::paddock_bin;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use zookeeper_client as zk;

const WAIT: Duration = Duration::from_secs(15);

struct Ensemble {
    children: Vec<Option<Child>>,
    client_ports: Vec<u16>,
    cfgs: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn four_letter(port: u16, cmd: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(cmd.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn mode(port: u16) -> Option<String> {
    four_letter(port, "srvr")?
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(str::to_string))
}

impl Ensemble {
    fn start() -> Ensemble {
        let dir = tempfile::tempdir().unwrap();
        let n = 3;
        let client_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut servers = String::new();
        for (i, cp) in client_ports.iter().enumerate() {
            servers.push_str(&format!(
                "server.{}=127.0.0.1:{}:{};{cp}\n",
                i + 1,
                free_port(),
                free_port()
            ));
        }
        let mut cfgs = Vec::new();
        for i in 0..n {
            let d = dir.path().join(format!("s{}", i + 1));
            std::fs::create_dir_all(d.join("data")).unwrap();
            std::fs::write(d.join("data/myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = d.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{servers}",
                    d.join("data").display()
                ),
            )
            .unwrap();
            cfgs.push(cfg);
        }
        let mut e = Ensemble {
            children: Vec::new(),
            client_ports,
            cfgs,
            _dir: dir,
        };
        for i in 0..n {
            let child = e.spawn(i);
            e.children.push(Some(child));
        }
        e.wait_for_quorum(&[0, 1, 2]);
        e
    }

    fn spawn(&self, i: usize) -> Child {
        let log = std::fs::File::create(self.cfgs[i].with_file_name("server.log")).unwrap();
        Command::new(paddock_bin())
            .arg(&self.cfgs[i])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start paddock")
    }

    /// Waits until one of `members` leads and the others follow.
    fn wait_for_quorum(&self, members: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let modes: Vec<Option<String>> = members
                .iter()
                .map(|i| mode(self.client_ports[*i]))
                .collect();
            let leaders: Vec<usize> = members
                .iter()
                .zip(&modes)
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(i, _)| *i)
                .collect();
            let followers = modes
                .iter()
                .filter(|m| m.as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers == members.len() - 1 {
                return leaders[0];
            }
            assert!(Instant::now() < deadline, "no quorum: {modes:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn leader(&self) -> usize {
        self.wait_for_quorum(&[0, 1, 2])
    }

    fn kill9(&mut self, i: usize) {
        let mut c = self.children[i].take().expect("running");
        c.kill().expect("kill -9");
        c.wait().expect("reap");
    }

    /// The member whose `cons` lists this session.
    fn server_of(&self, session: i64) -> Option<usize> {
        let needle = format!("sid=0x{:x}", session);
        (0..self.client_ports.len()).find(|i| {
            self.children[*i].is_some()
                && four_letter(self.client_ports[*i], "cons").is_some_and(|o| o.contains(&needle))
        })
    }

    fn connect_string(&self, members: &[usize]) -> String {
        members
            .iter()
            .map(|i| format!("127.0.0.1:{}", self.client_ports[*i]))
            .collect::<Vec<_>>()
            .join(",")
    }
}

async fn connect(hosts: &str) -> zk::Client {
    timeout(
        WAIT,
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(hosts),
    )
    .await
    .expect("connect timed out")
    .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_are_read_from_every_member_after_sync() {
    let e = Ensemble::start();
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(connect(&e.connect_string(&[i])).await);
    }
    for (i, writer) in clients.iter().enumerate() {
        let path = format!("/via-{i}");
        writer
            .create(&path, format!("from {i}").as_bytes(), &persistent())
            .await
            .unwrap();
        for (j, reader) in clients.iter().enumerate() {
            reader.sync(&path).await.unwrap();
            let (data, stat) = reader
                .get_data(&path)
                .await
                .unwrap_or_else(|err| panic!("{path} through member {j}: {err}"));
            assert_eq!(data, format!("from {i}").as_bytes(), "member {j}");
            assert_eq!(stat.version, 0);
        }
    }
    // A versioned update through one member, a stale one through another.
    clients[0].set_data("/via-1", b"v1", Some(0)).await.unwrap();
    clients[2].sync("/via-1").await.unwrap();
    assert_eq!(
        clients[2].set_data("/via-1", b"stale", Some(0)).await,
        Err(zk::Error::BadVersion)
    );
    clients[2].delete("/via-1", Some(1)).await.unwrap();
    clients[1].sync("/via-1").await.unwrap();
    assert_eq!(clients[1].check_stat("/via-1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_and_watches_cross_members() {
    let e = Ensemble::start();
    let leader = e.leader();
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let owner = connect(&e.connect_string(&[followers[0]])).await;
    let watcher = connect(&e.connect_string(&[followers[1]])).await;
    let via_leader = connect(&e.connect_string(&[leader])).await;

    // A data watch set through a follower fires on a write through the leader.
    via_leader
        .create("/cfg", b"a", &persistent())
        .await
        .unwrap();
    watcher.sync("/cfg").await.unwrap();
    let (_, _, data_watch) = watcher.get_and_watch_data("/cfg").await.unwrap();
    via_leader.set_data("/cfg", b"b", None).await.unwrap();
    let ev = timeout(WAIT, data_watch.changed())
        .await
        .expect("data watch");
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(ev.path, "/cfg");

    // An ephemeral made through one follower is seen through the other,
    // and goes with its session everywhere.
    owner.create("/eph", b"", &ephemeral()).await.unwrap();
    watcher.sync("/eph").await.unwrap();
    let (stat, exist_watch) = watcher.check_and_watch_stat("/eph").await.unwrap();
    assert_eq!(
        stat.expect("the ephemeral is visible on another member")
            .ephemeral_owner,
        owner.session_id().0
    );
    drop(owner);
    let ev = timeout(WAIT, exist_watch.changed())
        .await
        .expect("delete watch");
    assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    via_leader.sync("/eph").await.unwrap();
    assert_eq!(via_leader.check_stat("/eph").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_outlives_kill_9_of_its_server() {
    let mut e = Ensemble::start();
    let c = connect(&e.connect_string(&[0, 1, 2])).await;
    let session = c.session_id().0;
    c.create("/before", b"acked", &persistent()).await.unwrap();
    c.create("/mine", b"", &ephemeral()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let victim = loop {
        if let Some(i) = e.server_of(session) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no member lists session {session:#x}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    e.kill9(victim);
    let rest: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    e.wait_for_quorum(&rest);
    // The client reconnects on its own to a surviving member, same session.
    let deadline = Instant::now() + Duration::from_secs(20);
    let data = loop {
        match c.get_data("/before").await {
            Ok((data, _)) => break data,
            Err(err) => {
                assert!(Instant::now() < deadline, "no reconnect: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(data, b"acked", "a write acknowledged before the kill");
    assert_eq!(c.session_id().0, session, "the same session");
    let now_on = e.server_of(session).expect("a member lists the session");
    assert_ne!(now_on, victim);
    let other = connect(&e.connect_string(&rest)).await;
    other.sync("/mine").await.unwrap();
    let stat = other
        .check_stat("/mine")
        .await
        .unwrap()
        .expect("the ephemeral survived its server's death");
    assert_eq!(stat.ephemeral_owner, session);
    c.create("/after", b"", &persistent()).await.unwrap();
}
