//! Shared by the test files that start real `paddock` processes.

use std::path::PathBuf;
use std::process::Command;

/// The `paddock` binary: `$PADDOCK_BIN`, else the workspace's debug build
/// (built once if missing).
pub fn paddock_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PADDOCK_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/debug/paddock");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "paddock-server", "--bin", "paddock"])
            .current_dir(&root)
            .status()
            .expect("run cargo build for the paddock binary");
        assert!(status.success(), "building paddock failed");
    }
    bin
}
