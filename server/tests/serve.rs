//! Black-box tests of the `paddock` binary over loopback: serving,
//! durability across kill -9, recovery from a torn log tail, framing
//! violations, connections that never send a ConnectRequest, four-letter
//! words, and a clean stop on SIGTERM.

mod common;

use common::{dial, four_letter_word, write_config, Client, Paddock};
use paddock_core::proto;
use std::io::{Read, Write};

/// Error codes asserted below (ZooKeeper's).
const NO_NODE: i32 = -101;
const NODE_EXISTS: i32 = -110;
const BAD_VERSION: i32 = -103;

fn newest_log(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let hex = name.strip_prefix("log.")?;
            Some((u64::from_str_radix(hex, 16).ok()?, e.path()))
        })
        .collect();
    logs.sort();
    logs.pop().expect("a log file").1
}

#[test]
fn create_get_set_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(dir.path(), ""));
    let mut c = Client::connect(server.addr);
    assert_eq!(c.create("/a", b"one"), 0);
    assert_eq!(c.create("/a", b"again"), NODE_EXISTS);
    assert_eq!(c.get("/a"), Ok((b"one".to_vec(), 0)));
    assert_eq!(c.set("/a", b"two", 0), 0);
    assert_eq!(c.set("/a", b"three", 0), BAD_VERSION);
    assert_eq!(c.get("/a"), Ok((b"two".to_vec(), 1)));
    assert_eq!(c.get("/missing"), Err(NO_NODE));
    // A second client sees the first one's writes.
    let mut d = Client::connect(server.addr);
    assert_eq!(d.get("/a"), Ok((b"two".to_vec(), 1)));
}

// Goal: a write acknowledged before kill -9 is there after restart.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    for i in 0..20 {
        assert_eq!(c.create(&format!("/n{i}"), format!("v{i}").as_bytes()), 0);
    }
    assert_eq!(c.set("/n3", b"changed", 0), 0);
    server.kill9();

    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    for i in 0..20 {
        let want = if i == 3 {
            b"changed".to_vec()
        } else {
            format!("v{i}").into_bytes()
        };
        assert_eq!(c.get(&format!("/n{i}")).map(|(d, _)| d), Ok(want), "/n{i}");
    }
}

// Goal: garbage after the last record (a torn write) is cut at start, the
// records before it are served, and the server says it truncated.
#[test]
fn torn_log_tail_is_truncated_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.create("/kept", b"yes"), 0);
    server.kill9();

    let log = newest_log(&dir.path().join("data"));
    let good_len = std::fs::metadata(&log).expect("log").len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    f.write_all(&[0x37, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .expect("append garbage");
    drop(f);

    let server = Paddock::start(&cfg);
    assert!(
        server.wait_for_log("truncated"),
        "log mentions the truncation:\n{}",
        server.stderr()
    );
    let mut c = Client::connect(server.addr);
    assert_eq!(c.get("/kept"), Ok((b"yes".to_vec(), 0)));
    assert_eq!(
        std::fs::metadata(&log).expect("log").len(),
        good_len,
        "tail cut back to the last good record"
    );
    // And it keeps accepting writes.
    assert_eq!(c.create("/after", b""), 0);
}

fn expect_closed(s: &mut std::net::TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

// Goal: a negative length and one above jute.maxbuffer close only the
// offending connection; another client keeps working.
#[test]
fn bad_frame_lengths_close_only_that_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(dir.path(), "jute.maxbuffer=4096\n"));
    let mut good = Client::connect(server.addr);
    assert_eq!(good.create("/x", b"1"), 0);

    let mut neg = dial(server.addr);
    neg.write_all(&(-5i32).to_be_bytes()).expect("send");
    expect_closed(&mut neg);

    let mut big = Client::connect(server.addr);
    big.stream.write_all(&5000i32.to_be_bytes()).expect("send");
    expect_closed(&mut big.stream);

    assert!(
        server.wait_for_log("negative frame length"),
        "{}",
        server.stderr()
    );
    assert!(
        server.wait_for_log("exceeds jute.maxbuffer"),
        "{}",
        server.stderr()
    );
    assert_eq!(good.get("/x"), Ok((b"1".to_vec(), 0)));
    assert_eq!(good.create("/y", b"2"), 0);
}

// Goal: connections that open TCP and never complete a ConnectRequest
// (silent, a length prefix only, half a ConnectRequest) are closed by the
// server after its connect wait, each with a warning naming the peer,
// while a session opened before them keeps working on its connection
// throughout.
#[test]
fn stalled_connections_are_closed_after_the_connect_wait() {
    use paddock_net::client::CONNECT_REQUEST_WAIT_MAX;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    // Generous: the server closes at the wait; this only catches "never".
    const SLACK: Duration = Duration::from_secs(15);
    const STALLED: usize = 12;

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(dir.path(), ""));
    let mut worker_client = Client::connect(server.addr);
    assert_eq!(worker_client.create("/w", b""), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let worker = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            let mut c = worker_client;
            while !stop.load(Ordering::SeqCst) {
                let n = rounds.load(Ordering::SeqCst);
                let value = n.to_string().into_bytes();
                assert_eq!(c.set("/w", &value, -1), 0, "set in round {n}");
                assert_eq!(c.get("/w").map(|(d, _)| d), Ok(value), "get in round {n}");
                rounds.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let connect = proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
    .encode();
    let mut half_connect = (connect.len() as u32).to_be_bytes().to_vec();
    half_connect.extend_from_slice(&connect[..connect.len() / 2]);
    let opened = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let mut s = dial(server.addr);
        match i % 3 {
            0 => {}
            1 => s.write_all(&100u32.to_be_bytes()).expect("send a length"),
            _ => s.write_all(&half_connect).expect("send half a connect"),
        }
        stalled.push(s);
    }
    // Not closed at once: what closes them is the wait, not their bytes.
    std::thread::sleep(Duration::from_millis(500));
    for (i, s) in stalled.iter_mut().enumerate() {
        s.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("stalled connection {i} ended early: {other:?}"),
        }
        s.set_nonblocking(false).expect("blocking");
    }
    let round_before = rounds.load(Ordering::SeqCst);
    let deadline = opened + CONNECT_REQUEST_WAIT_MAX + SLACK;
    for (i, s) in stalled.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!(
                "stalled connection {i} not closed by the server within {:?}: {other:?}\n{}",
                CONNECT_REQUEST_WAIT_MAX + SLACK,
                server.stderr()
            ),
        }
    }
    let round_after = rounds.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    worker.join().expect("the session kept working throughout");
    assert!(
        round_after > round_before,
        "the session made progress while the stalled connections were open: {round_before} then {round_after} rounds"
    );
    assert!(
        server.wait_for_log("no complete ConnectRequest"),
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    for s in &stalled {
        let peer = s.local_addr().expect("local addr");
        assert!(
            log.contains(&format!(
                "closing connection from {peer}: no complete ConnectRequest"
            )),
            "the close of {peer} is logged with its reason:\n{log}"
        );
    }
    // And new sessions are still served.
    let mut c = Client::connect(server.addr);
    assert_eq!(c.get("/w").map(|(d, _)| d.is_empty()), Ok(false));
}

#[test]
fn four_letter_words_and_whitelist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(
        dir.path(),
        "4lw.commands.whitelist=ruok, mntr\n",
    ));
    assert_eq!(four_letter_word(server.addr, "ruok"), "imok");
    let srvr = four_letter_word(server.addr, "srvr");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert!(srvr.contains("\nMode: standalone\n"), "{srvr}");
    assert!(srvr.contains("\nZxid: 0x"), "{srvr}");
    let mntr = four_letter_word(server.addr, "mntr");
    assert!(mntr.contains("zk_server_state\tstandalone\n"), "{mntr}");
    assert!(mntr.contains("zk_znode_count\t"), "{mntr}");
    assert_eq!(
        four_letter_word(server.addr, "conf"),
        "conf is not executed because it is not in the whitelist.\n"
    );
}

// Goal: without the whitelist key, only srvr runs (ZooKeeper's default).
#[test]
fn default_whitelist_is_srvr_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(dir.path(), ""));
    assert!(four_letter_word(server.addr, "srvr").starts_with("Zookeeper version: "));
    assert_eq!(
        four_letter_word(server.addr, "ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
}

// Goal: SIGTERM stops the server cleanly (exit 0) with its data durable.
#[test]
fn sigterm_is_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.create("/before-stop", b"x"), 0);
    let status = server.signal_and_wait("TERM");
    assert_eq!(status.code(), Some(0), "exit status {status}");

    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.get("/before-stop"), Ok((b"x".to_vec(), 0)));
}

fn names(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(prefix) && !n.ends_with(".tmp"))
        .collect();
    v.sort();
    v
}

// Goal: with a small snapCount, snapshots are written, the log rolls to a
// new file after each, autopurge keeps the newest snapRetainCount
// snapshots, and a restart rebuilds the same tree from snapshot + log.
#[test]
fn snapshots_roll_the_log_and_restart_uses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        "snapCount=20\nautopurge.purgeInterval=1\nautopurge.snapRetainCount=3\n",
    );
    let data = dir.path().join("data");
    let server = Paddock::start(&cfg);
    let mut c = Client::connect(server.addr);
    for i in 0..200 {
        assert_eq!(c.create(&format!("/s{i}"), &[i as u8; 8]), 0);
    }
    assert!(
        server.wait_for_log("wrote "),
        "a snapshot was written:\n{}",
        server.stderr()
    );
    assert!(
        names(&data, "log.").len() >= 2,
        "the log rolled: {:?}",
        names(&data, "")
    );
    assert_eq!(
        server.signal_and_wait("INT").code(),
        Some(0),
        "SIGINT is a clean stop too"
    );

    // The purge runs at start.
    let server = Paddock::start(&cfg);
    assert!(server.wait_for_log("autopurge"), "{}", server.stderr());
    let mut c = Client::connect(server.addr);
    for i in 0..200 {
        assert_eq!(
            c.get(&format!("/s{i}")).map(|(d, _)| d),
            Ok(vec![i as u8; 8]),
            "/s{i}"
        );
    }
    let deadline = std::time::Instant::now() + common::IO_TIMEOUT;
    while names(&data, "snapshot.").len() > 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        names(&data, "snapshot.").len() <= 3,
        "purged: {:?}",
        names(&data, "")
    );
    assert!(
        server.stderr().contains("recovery: loaded snapshot."),
        "{}",
        server.stderr()
    );
}

// Goal: maxClientCnxns is a per-IP cap enforced at accept.
#[test]
fn max_client_cnxns_refuses_extra_connections_from_one_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Paddock::start(&write_config(dir.path(), "maxClientCnxns=2\n"));
    let mut a = Client::connect(server.addr);
    let _b = Client::connect(server.addr);
    let mut third = dial(server.addr);
    let _ = third.write_all(&[0, 0, 0, 0]);
    expect_closed(&mut third);
    assert!(
        server.wait_for_log("too many connections"),
        "{}",
        server.stderr()
    );
    assert_eq!(a.create("/still-served", b""), 0);
}

// Goal: a data dir recovery cannot make whole is refused with a clear
// message instead of serving with data missing.
#[test]
fn unrecoverable_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    // A log that starts mid-history, with no snapshot before it.
    std::fs::write(data.join("log.5"), b"PDKLOG01").expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run paddock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("paddock served a data dir it should have refused");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr text");
    assert!(err.contains("refusing to start"), "{err}");
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = common::write_config(dir.path(), "");
    let p = Paddock::start(&cfg);
    let mut c = Client::connect(p.addr);
    assert_eq!(c.create("/mine", b"1"), 0);
    // clientPort=0: the second process would bind a port of its own, so
    // only the data directory can stop it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(&cfg)
        .output()
        .expect("run paddock");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another paddock process"),
        "the error says why: {err}"
    );
    let (data, _) = c.get("/mine").expect("the first server keeps serving");
    assert_eq!(data, b"1");
}
