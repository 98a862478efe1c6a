//! In-process cost of the core alone: one standalone `Node`, N creates
//! through the full propose -> persist -> commit -> apply path with an
//! instant disk, then N reads, then the time an O(1) snapshot clone takes.
//! `cargo run --release -p paddock-core --example throughput -- 1000000`
//!
//! A measurement harness, not core code: it reads the wall clock to time
//! the core, which the core itself never does.
#![allow(clippy::disallowed_methods)]

use paddock_core::proto::{self, op, Acl, ConnectRequest, CreateRequest, Request};
use paddock_core::storage::{Recovered, StorageOp};
use paddock_core::*;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let t = Now::new(Instant::from_millis(1), 1_700_000_000_000);
    let mut node = Node::new(Config::standalone(1), Recovered::empty(), t);
    let conn = ConnId(1);
    node.handle(
        t,
        Input::ClientConnected {
            conn,
            addr: "127.0.0.1".into(),
        },
    );
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    node.handle(
        t,
        Input::ClientFrame {
            conn,
            frame: req.encode(),
        },
    );
    drain(&mut node, t);
    let start = std::time::Instant::now();
    let batch = 64;
    let mut i = 0;
    while i < n {
        for j in i..(i + batch).min(n) {
            let frame = proto::encode_request(
                j as i32 + 1,
                &Request::Create {
                    opcode: op::CREATE,
                    req: CreateRequest {
                        path: format!("/n{j:08}"),
                        data: vec![7u8; 16],
                        acl: Acl::open_unsafe(),
                        flags: 0,
                        ttl: None,
                    },
                },
            );
            node.handle(t, Input::ClientFrame { conn, frame });
        }
        drain(&mut node, t);
        i += batch;
    }
    let write = start.elapsed();
    let start = std::time::Instant::now();
    for j in 0..n {
        let frame = proto::encode_request(
            j as i32,
            &Request::GetData {
                path: format!("/n{j:08}"),
                watch: false,
            },
        );
        node.handle(t, Input::ClientFrame { conn, frame });
        if j % batch == 0 {
            drain(&mut node, t);
        }
    }
    drain(&mut node, t);
    let read = start.elapsed();
    rss("after load");
    let start = std::time::Instant::now();
    let snap = paddock_core::storage::Snapshot::of(node.state());
    let clone = start.elapsed();
    let start = std::time::Instant::now();
    let bytes = snap.encode();
    let encode = start.elapsed();
    println!(
        "{n} creates: {:.0}/s; {n} reads: {:.0}/s; snapshot clone {:?} (the only stall); encode {:?} off-thread, {} MB",
        n as f64 / write.as_secs_f64(),
        n as f64 / read.as_secs_f64(),
        clone,
        encode,
        bytes.len() / 1_000_000
    );
    rss("after snapshot encode");
}

fn rss(when: &str) {
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        for l in s.lines().filter(|l| l.starts_with("VmRSS")) {
            println!("{when}: {l}");
        }
    }
}

fn drain(node: &mut Node, t: Now) {
    let mut tokens = Vec::new();
    loop {
        let mut any = false;
        while let Some(out) = node.poll_output() {
            any = true;
            match out {
                Output::Storage(StorageOp::Snapshot(s)) => {
                    node.handle(t, Input::SnapshotWritten { zxid: s.zxid })
                }
                Output::Storage(op) => tokens.extend(op.token()),
                _ => {}
            }
        }
        for token in tokens.drain(..) {
            node.handle(t, Input::Persisted { token });
            any = true;
        }
        if !any {
            break;
        }
    }
}
