//! `paddock inspect` on Paddock's own files: the log lists every txn the
//! server wrote, the snapshot every znode, and a damaged log prints what
//! it could read, where the damage starts, and exits non-zero.

mod common;

use common::{write_config, Client, Paddock};
use std::process::Command;

fn inspect(file: &std::path::Path, json: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.arg("inspect").arg(file);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("running paddock inspect");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn files(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            n.starts_with(prefix) && !n.ends_with(".tmp")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn inspect_lists_paddocks_logs_and_snapshots_and_reports_damage() {
    let d = tempfile::tempdir().expect("tempdir");
    // snapCount=10: a snapshot is written after a few txns.
    let cfg = write_config(d.path(), "snapCount=10\n");
    let p = Paddock::start(&cfg);
    let mut c = Client::connect(p.addr);
    for i in 0..30 {
        assert_eq!(c.create(&format!("/n{i}"), b"data"), 0);
    }
    drop(c);
    let _ = p.signal_and_wait("TERM");
    let data = d.path().join("data");

    let logs = files(&data, "log.");
    assert!(!logs.is_empty());
    let mut creates = 0;
    for log in &logs {
        let (ok, out) = inspect(log, true);
        assert!(ok, "{out}");
        creates += out.matches("\"type\":\"create\"").count();
        assert!(
            out.lines().last().unwrap_or("").contains("\"summary\""),
            "{out}"
        );
    }
    assert_eq!(creates, 30, "every create is listed once");

    let snaps = files(&data, "snapshot.");
    assert!(!snaps.is_empty(), "no snapshot written");
    let (ok, out) = inspect(snaps.last().expect("a snapshot"), false);
    assert!(ok, "{out}");
    assert!(out.contains("/n0 czxid"), "{out}");
    assert!(out.contains("paddock snapshot:"), "{out}");

    // Damage: flip a byte in the last record of the last log.
    let log = logs.last().expect("a log");
    let mut bytes = std::fs::read(log).expect("read");
    let (_, listing) = inspect(log, true);
    let listed = listing.lines().count() - 1;
    assert!(listed >= 1);
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    let damaged = d.path().join(log.file_name().expect("name"));
    std::fs::write(&damaged, &bytes).expect("write");
    let (ok, out) = inspect(&damaged, true);
    assert!(!ok, "a damaged log must exit non-zero:\n{out}");
    assert!(out.contains("damage at offset"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("\"zxid\"")).count(),
        listed - 1,
        "every record before the damage is still printed:\n{out}"
    );

    let junk = d.path().join("junk");
    std::fs::write(&junk, b"hello").expect("write");
    assert!(!inspect(&junk, false).0);
}
