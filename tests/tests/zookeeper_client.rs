//! The `zookeeper-client` crate (0.11), unchanged, against the real
//! `paddock` binary on a free loopback port with a temporary dataDir.
//! Every wait is bounded; the server is killed by the fixture's `Drop`.

mod common;
use common::paddock_bin;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use zookeeper_client as zk;

const WAIT: Duration = Duration::from_secs(10);

struct Paddock {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Paddock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ruok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"ruok").is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf == b"imok"
}

fn start() -> Paddock {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new(paddock_bin())
        .arg(&cfg)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start paddock");
    let mut server = Paddock {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ruok(port) {
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "paddock exited before serving"
        );
        assert!(
            Instant::now() < deadline,
            "paddock did not answer ruok within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

async fn connect(p: &Paddock) -> zk::Client {
    timeout(
        WAIT,
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(6))
            .connect(&format!("127.0.0.1:{}", p.port)),
    )
    .await
    .expect("connect timed out")
    .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_set_delete() {
    let p = start();
    let c = connect(&p).await;
    let (stat, seq) = c.create("/a", b"one", &persistent()).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(seq.into_i64(), -1);
    let (data, got) = c.get_data("/a").await.unwrap();
    assert_eq!((data.as_slice(), got), (&b"one"[..], stat));
    let stat2 = c.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(stat2.version, 1);
    assert!(stat2.mzxid > stat.mzxid);
    assert_eq!(
        c.set_data("/a", b"x", Some(0)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    assert_eq!(
        c.create("/a", b"", &persistent()).await.unwrap_err(),
        zk::Error::NodeExists
    );
    assert_eq!(
        c.create("/no/child", b"", &persistent()).await.unwrap_err(),
        zk::Error::NoNode
    );
    c.create("/a/b", b"", &persistent()).await.unwrap();
    assert_eq!(c.delete("/a", None).await.unwrap_err(), zk::Error::NotEmpty);
    c.delete("/a/b", Some(0)).await.unwrap();
    c.delete("/a", None).await.unwrap();
    assert_eq!(c.check_stat("/a").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_sequential_and_counts() {
    let p = start();
    let c = connect(&p).await;
    c.create("/kids", b"", &persistent()).await.unwrap();
    let seq_opts = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, s1) = c.create("/kids/s-", b"", &seq_opts).await.unwrap();
    let (_, s2) = c.create("/kids/s-", b"", &seq_opts).await.unwrap();
    assert_eq!((s1.into_i64(), s2.into_i64()), (0, 1));
    c.create("/kids/x", b"", &persistent()).await.unwrap();
    let mut kids = c.list_children("/kids").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["s-0000000000", "s-0000000001", "x"]);
    let (_, stat) = c.get_children("/kids").await.unwrap();
    assert_eq!(stat.num_children, 3);
    assert_eq!(c.count_descendants_number("/kids").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_fire_once_with_the_right_event() {
    let p = start();
    let c = connect(&p).await;
    let other = connect(&p).await;
    let (_, exist_watch) = c.check_and_watch_stat("/w").await.unwrap();
    other.create("/w", b"0", &persistent()).await.unwrap();
    let ev = timeout(WAIT, exist_watch.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, "/w")
    );

    let (_, _, data_watch) = c.get_and_watch_data("/w").await.unwrap();
    let (_, _, child_watch) = c.get_and_watch_children("/w").await.unwrap();
    other.set_data("/w", b"1", None).await.unwrap();
    other.create("/w/c", b"", &persistent()).await.unwrap();
    let ev = timeout(WAIT, data_watch.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w")
    );
    let ev = timeout(WAIT, child_watch.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeChildrenChanged, "/w")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch_reports_the_changed_node() {
    let p = start();
    let c = connect(&p).await;
    let other = connect(&p).await;
    other.create("/r", b"", &persistent()).await.unwrap();
    let mut w = c
        .watch("/r", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    other.create("/r/a", b"", &persistent()).await.unwrap();
    other.create("/r/a/b", b"", &persistent()).await.unwrap();
    other.set_data("/r/a/b", b"x", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = timeout(WAIT, w.changed()).await.unwrap();
        seen.push((ev.event_type, ev.path));
    }
    assert_eq!(
        seen,
        vec![
            (zk::EventType::NodeCreated, "/r/a".to_string()),
            (zk::EventType::NodeCreated, "/r/a/b".to_string()),
            (zk::EventType::NodeDataChanged, "/r/a/b".to_string()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_is_atomic() {
    let p = start();
    let c = connect(&p).await;
    c.create("/m", b"0", &persistent()).await.unwrap();
    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"a", &persistent()).unwrap();
    w.add_check_version("/m", 0).unwrap();
    w.add_set_data("/m", b"1", Some(0)).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(matches!(results[1], zk::MultiWriteResult::Check));
    assert_eq!(c.get_data("/m").await.unwrap().0, b"1");

    let mut w = c.new_multi_writer();
    w.add_create("/m/b", b"", &persistent()).unwrap();
    w.add_check_version("/m", 0).unwrap(); // stale: the whole multi fails
    let err = w.commit().await.unwrap_err();
    assert!(
        matches!(
            err,
            zk::MultiWriteError::OperationFailed {
                index: 1,
                source: zk::Error::BadVersion
            }
        ),
        "{err:?}"
    );
    assert_eq!(c.check_stat("/m/b").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_live_exactly_as_long_as_their_session() {
    let p = start();
    let owner = connect(&p).await;
    let other = connect(&p).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    owner.create("/e", b"", &eph).await.unwrap();
    assert_eq!(
        owner.create("/e/c", b"", &persistent()).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    let stat = other.check_stat("/e").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(
        owner.list_ephemerals("/").await.unwrap(),
        vec!["/e".to_string()]
    );
    let (_, watch) = other.check_and_watch_stat("/e").await.unwrap();
    drop(owner); // closes the session
    let ev = timeout(WAIT, watch.changed()).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDeleted, "/e")
    );
    assert_eq!(other.check_stat("/e").await.unwrap(), None);
}

// into_session() drops the client, whose session task then closes the
// session: as with ZooKeeper, the session cannot be resumed afterwards, and
// its ephemeral is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_closed_by_its_dropped_client_cannot_be_resumed() {
    let p = start();
    let first = connect(&p).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    first.create("/mine", b"", &eph).await.unwrap();
    let session = first.session().clone();
    drop(first);
    let watcher = connect(&p).await;
    let deadline = std::time::Instant::now() + WAIT;
    while watcher.check_stat("/mine").await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped client's session never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = timeout(
        WAIT,
        zk::Client::connector()
            .with_session(session)
            .connect(&format!("127.0.0.1:{}", p.port)),
    )
    .await
    .unwrap();
    assert_eq!(again.err(), Some(zk::Error::SessionExpired));
}

// Digest auth through a client that does not use xid -4 for auth: the
// reply must carry the request's own xid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_and_acl() {
    let p = start();
    let alice = connect(&p).await;
    alice.auth("digest", b"alice:pw").await.unwrap();
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/secret", b"s", &opts).await.unwrap();
    let users = alice.list_auth_users().await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user() == "alice"),
        "{users:?}"
    );
    let stranger = connect(&p).await;
    assert_eq!(
        stranger.get_data("/secret").await.unwrap_err(),
        zk::Error::NoAuth
    );
    stranger.auth("digest", b"alice:pw").await.unwrap();
    assert_eq!(stranger.get_data("/secret").await.unwrap().0, b"s");
    stranger.sync("/secret").await.unwrap();
}
