//! A failing run's timeline page in a real browser: headless Chromium
//! (Debian's `chromium`, which `.ci/run` installs) loads the page written
//! by `run --html`, runs its script, and the DOM it dumps must hold a lane
//! per server and client, message arrows, and the violation marker, with
//! no script error. Run with
//! `cargo test --release -p paddock-sim --features canary --test timeline_html`.
#![cfg(feature = "canary")]

use std::process::Command;

#[test]
fn a_failing_runs_timeline_renders_in_chromium() {
    let dir = std::env::temp_dir().join(format!("paddock-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let page = dir.join("seed-39.html");
    // Seed 39 loses an acknowledged write to this canary with one crash:
    // one server, two clients.
    let out = Command::new(env!("CARGO_BIN_EXE_paddock-sim"))
        .args([
            "run",
            "--seed",
            "39",
            "--canary",
            "commit-with-minority",
            "--html",
        ])
        .arg(&page)
        .output()
        .expect("paddock-sim runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "the canary is caught as a safety violation"
    );
    let html = std::fs::read_to_string(&page).expect("page written");
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no network"
    );
    let browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (apt-get install chromium)");
    let dom = String::from_utf8_lossy(&browser.stdout);
    let log = String::from_utf8_lossy(&browser.stderr);
    assert!(browser.status.success(), "chromium failed: {log}");
    assert!(
        dom.contains("data-rendered=\"1\""),
        "the script drew the page: {log}"
    );
    assert!(!dom.contains("data-errors="), "script errors: {dom:.2000}");
    assert!(!log.contains("Uncaught"), "console errors: {log}");
    for lane in ["s1", "c0", "c1"] {
        assert!(
            dom.contains(&format!("class=\"lane\" data-lane=\"{lane}\"")),
            "lane {lane} drawn"
        );
    }
    assert_eq!(
        dom.matches("class=\"lane\"").count(),
        3,
        "one server, two clients"
    );
    assert!(dom.contains("data-lanes=\"3\""));
    assert!(dom.contains("id=\"violation\""), "the violation is pinned");
    assert!(dom.contains("safety violation"), "the verdict is shown");
    assert!(dom.contains("data-kind=\"crash\""), "the crash is marked");
    assert!(dom.contains("class=\"op\""), "client operations are drawn");
}

#[test]
fn a_multi_server_timeline_has_message_arrows_and_role_bands() {
    let dir = std::env::temp_dir().join(format!("paddock-timeline3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let page = dir.join("seed-7.html");
    let out = Command::new(env!("CARGO_BIN_EXE_paddock-sim"))
        .args([
            "run",
            "--seed",
            "7",
            "--canary",
            "commit-with-minority",
            "--only-faults",
            "29,32,41",
            "--ops",
            "392",
            "--html",
        ])
        .arg(&page)
        .output()
        .expect("paddock-sim runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&browser.stdout);
    assert!(dom.contains("data-rendered=\"1\"") && !dom.contains("data-errors="));
    assert!(
        dom.matches("class=\"msg").count() > 100,
        "peer messages drawn as arrows"
    );
    assert!(dom.contains("leader e"), "a leader's band with its epoch");
    assert!(dom.contains("id=\"violation\""));
}
