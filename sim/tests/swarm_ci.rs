//! The swarm's CI reports, from the real binary: a failing shard's JUnit
//! file read by a real JUnit parser (python's `junitparser`, which
//! `.ci/run` installs), and shards that cover a seed range exactly once
//! when their JSON reports are combined. Run with
//! `cargo test --release -p paddock-sim --features canary --test swarm_ci`.
#![cfg(feature = "canary")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock-sim"))
        .args(args)
        .output()
        .expect("paddock-sim runs");
    eprintln!(
        "paddock-sim {}: {:?}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("paddock-swarm-ci-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d.join(name)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// Seeds 0..20 under a canary that loses committed writes: shard 2/2 runs
/// the odd seeds, and seeds 7 and 13 fail (see the canaries test).
#[test]
fn a_failing_shards_junit_is_read_by_a_junit_parser() {
    let (xml, js) = (scratch("fail.xml"), scratch("fail.json"));
    let out = sim(&[
        "swarm",
        "--seeds",
        "20",
        "--shard",
        "2/2",
        "--jobs",
        "2",
        "--canary",
        "commit-with-minority",
        "--shrink",
        "1",
        "--junit",
        xml.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "a failing swarm exits 1");
    let report = json(&js);
    assert_eq!(report["ran"], 10);
    let failures = report["failures"].as_array().expect("failures");
    assert!(!failures.is_empty(), "the canary is caught: {report}");
    for f in failures {
        assert_eq!(
            f["seed"].as_u64().expect("seed") % 2,
            1,
            "shard 2/2 runs odd seeds"
        );
    }
    assert!(
        failures[0]["shrunk"]["faults"].is_array(),
        "the first failure is shrunk: {}",
        failures[0]
    );
    // The JUnit file as CI systems read it.
    let check = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
want = int(sys.argv[2])
suites = list(xml)
assert len(suites) == 1, suites
s = suites[0]
assert s.failures == want and s.tests == want + 1, (s.failures, s.tests)
failed = []
for case in s:
    res = [r for r in case.result if isinstance(r, Failure)]
    if not res:
        assert case.name == "%d seeds passed" % (10 - want), case.name
        continue
    f = res[0]
    assert f.type == "safety", f.type
    assert case.name.startswith("seed "), case.name
    assert "run --seed " + case.name.split()[1] in f.text, f.text
    assert "--canary commit-with-minority" in f.text, f.text
    failed.append(case.name)
first = [c for c in s if c.name == failed[0]][0]
assert "shrunk faults (" in first.result[0].text, first.result[0].text
print("junit ok:", failed)
"#;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let py = Command::new(python)
        .args(["-c", check, xml.to_str().unwrap()])
        .arg(failures.len().to_string())
        .output()
        .expect("python runs");
    assert!(
        py.status.success(),
        "junitparser rejects the file: {}{}\n{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr),
        std::fs::read_to_string(&xml).unwrap_or_default()
    );
}

#[test]
fn shards_cover_a_range_exactly_once_and_combine() {
    let mut files = Vec::new();
    for i in 1..=3 {
        let f = scratch(&format!("shard{i}.json"));
        let out = sim(&[
            "swarm",
            "--seeds",
            "25",
            "--from",
            "500",
            "--shard",
            &format!("{i}/3"),
            "--json",
            f.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        files.push(f.to_str().unwrap().to_string());
    }
    let ran: Vec<u64> = files
        .iter()
        .map(|f| json(Path::new(f))["ran"].as_u64().unwrap())
        .collect();
    assert_eq!(ran, vec![9, 8, 8]);
    let all = scratch("all.json");
    let mut args = vec!["combine", "--json", all.to_str().unwrap()];
    args.extend(files.iter().map(|s| s.as_str()));
    let out = sim(&args);
    assert_eq!(out.status.code(), Some(0));
    let c = json(&all);
    assert_eq!(c["ran"], 25);
    let mut seeds = Vec::new();
    for s in c["seeds_run"].as_array().unwrap() {
        let (first, stride, count) = (
            s["first"].as_u64().unwrap(),
            s["stride"].as_u64().unwrap(),
            s["count"].as_u64().unwrap(),
        );
        seeds.extend((0..count).map(|k| first + k * stride));
    }
    seeds.sort();
    assert_eq!(seeds, (500..525).collect::<Vec<u64>>());
    // A shard given twice is refused, not counted twice.
    let out = sim(&["combine", &files[0], &files[1], &files[0]]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_time_box_reports_how_many_ran() {
    let js = scratch("minutes.json");
    let out = sim(&[
        "swarm",
        "--minutes",
        "0.05",
        "--jobs",
        "2",
        "--json",
        js.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r = json(&js);
    let ran = r["ran"].as_u64().unwrap();
    assert!(ran > 0, "{r}");
    assert_eq!(r["timed_out"], true);
    assert_eq!(r["seeds_run"][0]["count"].as_u64(), Some(ran));
    let wall = r["wall_s"].as_f64().unwrap();
    assert!((3.0..20.0).contains(&wall), "a 3 s box took {wall} s");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("swarm: {ran} seeds from 0")),
        "{stdout}"
    );
}
