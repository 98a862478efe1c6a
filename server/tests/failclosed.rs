//! Fail-closed start: `paddock ZOO_CFG` refuses, before binding any port,
//! a zoo.cfg whose security keys ask for what Paddock does not do yet
//! (client TLS keys are honoured: see tests/python/test_tls.py), and
//! a dataDir holding Apache ZooKeeper's state but no Paddock state.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `paddock cfg` to its exit (bounded) and returns (status, stderr).
fn run(cfg: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning paddock");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            let out = child.wait_with_output().expect("stderr");
            return (status, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("paddock did not exit: it must refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A zoo.cfg on a port this test holds: had paddock tried to bind it, the
/// error would be about binding, not the refusal.
fn config(dir: &Path, held: &TcpListener, extra: &str) -> std::path::PathBuf {
    let port = held.local_addr().expect("addr").port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n{extra}",
            dir.join("data").display()
        ),
    )
    .expect("writing zoo.cfg");
    cfg
}

fn assert_refused(status: std::process::ExitStatus, stderr: &str, needle: &str) {
    assert!(!status.success(), "paddock started:\n{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains(needle), "no mention of {needle}:\n{stderr}");
    assert!(!stderr.contains("serving clients"), "{stderr}");
    assert!(!stderr.contains("binding"), "it tried to bind:\n{stderr}");
}

#[test]
fn each_security_key_asking_for_a_missing_capability_is_refused_before_binding() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    for line in [
        "ssl.crl=true",
        "ssl.quorum.ocsp=true",
        "authProvider.2=com.example.CustomAuthenticationProvider",
        "enforce.auth.enabled=true",
        "sessionRequireClientSASLAuth=true",
        "zookeeper.sessionRequireClientSASLAuth=true",
        "requireClientAuthScheme=sasl",
        "quorum.auth.kerberos.unknownKey=x",
    ] {
        let d = tempfile::tempdir().expect("tempdir");
        let cfg = config(d.path(), &held, &format!("{line}\n"));
        let (status, stderr) = run(&cfg);
        let key = line.split('=').next().unwrap_or_default();
        let key = key.strip_prefix("zookeeper.").unwrap_or(key);
        assert_refused(status, &stderr, key);
        assert!(
            !d.path().join("data").exists(),
            "refused before touching the dataDir"
        );
    }
}

#[test]
fn a_zookeeper_data_dir_without_paddock_state_is_refused_with_the_import_command() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = config(d.path(), &held, "");
    let v2 = d.path().join("data").join("version-2");
    std::fs::create_dir_all(&v2).expect("mkdir");
    std::fs::write(v2.join("log.1"), b"ZKLG\0\0\0\x02").expect("write");
    std::fs::write(v2.join("currentEpoch"), b"1").expect("write");
    let (status, stderr) = run(&cfg);
    assert_refused(status, &stderr, "paddock import");
    assert!(stderr.contains(&v2.display().to_string()), "{stderr}");
    assert!(stderr.contains(&cfg.display().to_string()), "{stderr}");
    // ZooKeeper's files are untouched and nothing of paddock's was written.
    let mut names: Vec<String> = std::fs::read_dir(d.path().join("data"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["version-2".to_string()]);

    // The same files under a separate dataLogDir are found too.
    let d2 = tempfile::tempdir().expect("tempdir");
    let logs = d2.path().join("txnlogs");
    std::fs::create_dir_all(logs.join("version-2")).expect("mkdir");
    std::fs::write(logs.join("version-2").join("log.1"), b"ZKLG").expect("write");
    let cfg = config(
        d2.path(),
        &held,
        &format!("dataLogDir={}\n", logs.display()),
    );
    let (status, stderr) = run(&cfg);
    assert_refused(status, &stderr, "paddock import");
}

#[test]
fn harmless_values_of_security_keys_start_normally() {
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = d.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             sslQuorum=false\nenforce.auth.enabled=false\nquorum.auth.enableSasl=false\n",
            d.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("serving clients") => {
                served = true;
                break;
            }
            _ => {}
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "paddock did not start with harmless security keys");
}
