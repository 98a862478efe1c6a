//! Resource bounds on a live ensemble: maxClientCnxns per address, the cap
//! on outstanding requests per connection, and a client that never reads
//! its replies. Each time only the offending connection is dropped, with a
//! logged reason, and everyone else keeps being served.

use paddock_chaos::client::{self, Conn};
use paddock_chaos::cluster::{Cluster, ClusterSpec};
use paddock_core::proto;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn session(c: &Cluster, i: usize) -> Conn {
    session_with_id(c, i).0
}

/// A new session on server `i + 1`, and its id. A loaded machine may see a
/// member drop its clients for a moment (a missed tick, a re-election), so
/// a refused handshake is retried for a while, as a real client would.
fn session_with_id(c: &Cluster, i: usize) -> (Conn, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Conn::connect(
            c.servers[i].client_addr(),
            i + 1,
            None,
            10_000,
            Duration::from_secs(10),
        ) {
            Ok((conn, s)) => return (conn, s.id),
            Err(e) if Instant::now() < deadline => {
                eprintln!("session on server {}: {e:?}; retrying", i + 1);
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("session on server {}: {e:?}", i + 1),
        }
    }
}

fn works(c: &Cluster, i: usize, path: &str) {
    let mut conn = session(c, i);
    let r = conn
        .call(&client::create_req(path, b"ok", false))
        .expect("create");
    assert_eq!(r.err, 0, "create {path} on server {}", i + 1);
}

/// Reads until EOF or reset (bounded); true when the server closed it.
fn closed_by_server(s: &mut TcpStream, timeout: Duration) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn cluster(extra: &str) -> Cluster {
    let mut spec = ClusterSpec::voters(3);
    spec.extra = extra.into();
    let c = Cluster::start(spec).expect("cluster");
    c.wait_for_all(WAIT).expect("leader");
    c
}

#[test]
fn max_client_cnxns_refuses_only_the_extra_connection_from_that_address() {
    let c = cluster("maxClientCnxns=10\n");
    let mut conns: Vec<Conn> = (0..10).map(|_| session(&c, 0)).collect();
    let extra = Conn::connect(
        c.servers[0].client_addr(),
        1,
        None,
        10_000,
        Duration::from_secs(5),
    );
    assert!(
        extra.is_err(),
        "the 11th connection from 127.0.0.1 is refused"
    );
    assert!(
        c.log(0)
            .contains("too many connections from 127.0.0.1 - max is 10"),
        "server 1 logs the refusal:\n{}",
        c.log(0)
    );
    // The ten already open still work; another server is not affected.
    for (k, conn) in conns.iter_mut().enumerate() {
        let r = conn
            .call(&client::create_req(&format!("/m{k}"), b"x", false))
            .expect("create");
        assert_eq!(r.err, 0);
    }
    works(&c, 1, "/other-server");
    // One closes: there is room again.
    drop(conns.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Conn::connect(
            c.servers[0].client_addr(),
            1,
            None,
            10_000,
            Duration::from_secs(5),
        )
        .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot is reused");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_connection_over_the_outstanding_cap_is_dropped_and_no_one_else() {
    let mut c = cluster("");
    let leader = c.leader().expect("leader");
    let f = (leader + 1) % 3;
    works(&c, f, "/x");
    let mut conn = session(&c, f);
    // With the leader frozen no write can commit, so every request of a
    // burst stays outstanding: 20,000 of them, far over any per-connection
    // cap (ZooKeeper's default is 1,000).
    c.pause(leader).expect("SIGSTOP");
    let s = conn.raw();
    let mut burst = Vec::new();
    for xid in 1..=20_000 {
        let frame = proto::encode_request(
            xid,
            &proto::Request::SetData {
                path: "/x".into(),
                data: b"y".to_vec(),
                version: -1,
            },
        );
        burst.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        burst.extend_from_slice(&frame);
    }
    let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
    let _ = s.write_all(&burst);
    let closed = closed_by_server(s, Duration::from_secs(30));
    c.resume(leader).expect("SIGCONT");
    assert!(
        closed,
        "the connection with 20,000 outstanding requests is closed"
    );
    let log = c.log(f);
    assert!(
        log.contains("over the per-connection limit"),
        "server {} logs that the cap closed it:\n{}",
        f + 1,
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    c.wait_for_all(WAIT).expect("the ensemble recovers");
    works(&c, f, "/after-burst");
    works(&c, leader, "/after-burst-2");
    assert!(c.panicked().is_empty());
}

#[test]
fn a_client_that_never_reads_is_dropped_not_the_ensemble() {
    let c = cluster("");
    // A 400 KB node, then 300 getData of it (120 MB of replies) never read.
    let mut w = session(&c, 1);
    let big = vec![b'z'; 400_000];
    let r = w
        .call(&client::create_req("/big", &big, false))
        .expect("create");
    assert_eq!(r.err, 0);
    let (mut slow, slow_id) = session_with_id(&c, 0);
    let s = slow.raw();
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    for xid in 1..=300 {
        let frame = proto::encode_request(
            xid,
            &proto::Request::GetData {
                path: "/big".into(),
                watch: false,
            },
        );
        let mut b = (frame.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&frame);
        if s.write_all(&b).is_err() {
            break;
        }
    }
    // Meanwhile the server serves others.
    works(&c, 0, "/during-slow");
    // Either bound ends it: the replies queued past the connection's cap
    // (the server drops the client), or the server stopped reading it
    // while its socket was full (backpressure) and the session, no longer
    // touched, expires. Which one comes first depends on how the requests
    // arrive in the server's reads; both free the connection.
    let expired = format!("{slow_id:#x} expired");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = c.log(0);
        if log.contains("dropping client") || log.contains(&expired) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server 1 neither dropped the client that does not read nor expired its session:\n{}",
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        closed_by_server(s, Duration::from_secs(60)),
        "the slow connection is closed"
    );
    works(&c, 0, "/after-slow");
    c.wait_for_all(WAIT).expect("the ensemble is intact");
    assert!(c.panicked().is_empty());
}
