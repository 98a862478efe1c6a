//! Determinism by construction: core/src and sim/src use no ambient clock,
//! thread, global RNG, filesystem or network, and sim/src no hash map.
//! The command line, which measures wall time and runs seeds on threads
//! (never inside a run), lives outside sim/src, in sim/cli. Core may use hash
//! maps for lookups only, in the files listed below (reviewed: never
//! iterated into an output).

use std::path::Path;

/// `std::net` address types are pure parsing (the `ip` ACL scheme); its
/// sockets are what is forbidden.
const FORBIDDEN: [&str; 11] = [
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "rand::random",
    "std::thread",
    "tokio",
    "std::fs",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "ToSocketAddrs",
];
/// Core files (paths under core/src) allowed a `HashMap`/`HashSet`, for
/// lookups only. tree/mod.rs: the path -> node map, with a fixed seedless
/// hash (`PathHash`, never `RandomState`); the walks of it that are seen
/// (snapshots, exports, quota nodes, snapshot-load errors) are sorted by
/// path, the others sum or collect into ordered sets.
const CORE_HASH_LOOKUP_ONLY: [&str; 4] =
    ["node/clients.rs", "session.rs", "tree/mod.rs", "watch.rs"];

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable source dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn scan(dir: &Path, sim: bool) -> Vec<String> {
    let mut fs = Vec::new();
    files(dir, &mut fs);
    fs.sort();
    let mut bad = Vec::new();
    for f in fs {
        let name = f
            .strip_prefix(dir)
            .expect("under the scanned dir")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&f).expect("readable");
        // Test modules may read files (fixtures); scan the code before them.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            for w in FORBIDDEN {
                if l.contains(w) {
                    bad.push(format!("{}:{}: {w}: {l}", f.display(), i + 1));
                }
            }
            let hash = l.contains("HashMap") || l.contains("HashSet");
            if hash && (sim || !CORE_HASH_LOOKUP_ONLY.contains(&name.as_str())) {
                bad.push(format!("{}:{}: hash collection: {l}", f.display(), i + 1));
            }
        }
    }
    bad
}

#[test]
fn core_and_sim_sources_use_nothing_ambient() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut bad = scan(&root.join("core/src"), false);
    bad.extend(scan(&root.join("sim/src"), true));
    assert!(
        bad.is_empty(),
        "non-deterministic constructs:\n{}",
        bad.join("\n")
    );
}
