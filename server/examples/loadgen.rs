//! A load generator for side-by-side runs against `paddock` and Apache
//! ZooKeeper: C connections, each keeping P requests in flight (pipelined
//! raw jute through `paddock_core::proto`, so both servers face the same
//! bytes), bounded by an op count and a time limit. Prints one line:
//! `op=... ops=... secs=... ops_per_sec=... p50_us=... p99_us=...`.
//!
//! `cargo run --release -p paddock-server --example loadgen -- 127.0.0.1:2181 create 20000 16 8 1024 [base]`
#![allow(clippy::disallowed_methods)]

use paddock_core::proto::{self, op, Acl, ConnectRequest, CreateRequest, ReplyHeader, Request};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

const TIME_LIMIT: Duration = Duration::from_secs(30);

async fn read_frame(s: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

fn request(kind: &str, conn: usize, i: usize, data: &[u8]) -> Request {
    let path = format!("/bench/c{conn}-{i}");
    match kind {
        "create" => Request::Create {
            opcode: op::CREATE,
            req: CreateRequest {
                path,
                data: data.to_vec(),
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        },
        "set" => Request::SetData {
            path: format!("/bench/c{conn}-{}", i % 100),
            data: data.to_vec(),
            version: -1,
        },
        _ => Request::GetData {
            path: format!("/bench/c{conn}-{}", i % 100),
            watch: false,
        },
    }
}

async fn connect(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).ok();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    s.write_all(&framed(req.encode()))
        .await
        .expect("send connect");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("connect response");
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.expect("connect response");
    s
}

/// One connection: `count` ops with up to `depth` in flight; latencies in µs.
async fn worker(
    addr: String,
    kind: String,
    conn: usize,
    count: usize,
    depth: usize,
    data: Vec<u8>,
) -> Vec<u64> {
    let s = connect(&addr).await;
    let (mut rd, wr) = s.into_split();
    let mut wr = BufWriter::new(wr);
    let mut sent: HashMap<i32, Instant> = HashMap::new();
    let mut lat = Vec::with_capacity(count);
    let start = Instant::now();
    let mut next = 0usize;
    while lat.len() < count && start.elapsed() < TIME_LIMIT {
        while next < count && sent.len() < depth {
            let xid = next as i32 + 1;
            let req = request(&kind, conn, next, &data);
            wr.write_all(&framed(proto::encode_request(xid, &req)))
                .await
                .expect("send");
            sent.insert(xid, Instant::now());
            next += 1;
        }
        wr.flush().await.expect("flush");
        let f = read_frame(&mut rd).await.expect("reply");
        let h = ReplyHeader::read(&mut proto::Reader::new(&f)).expect("header");
        if let Some(at) = sent.remove(&h.xid) {
            assert_eq!(h.err, 0, "{kind} failed");
            lat.push(at.elapsed().as_micros() as u64);
        }
    }
    lat
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let addr = a.get(1).cloned().unwrap_or("127.0.0.1:2181".into());
    let kind = a.get(2).cloned().unwrap_or("create".into());
    let total: usize = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let conns: usize = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(16);
    let depth: usize = a.get(5).and_then(|v| v.parse().ok()).unwrap_or(8);
    let size: usize = a.get(6).and_then(|v| v.parse().ok()).unwrap_or(1024);
    // Creates use connection numbers from `base` up, so separate runs
    // create distinct paths.
    let base: usize = a.get(7).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let data = vec![b'x'; size];
    if kind == "setup" {
        // /bench and 100 nodes per connection for set/get.
        let mut s = connect(&addr).await;
        let mut xid = 1;
        let mut send = |r: Request| {
            let f = framed(proto::encode_request(xid, &r));
            xid += 1;
            f
        };
        let mut frames = vec![send(request_create("/bench", &[]))];
        for c in 0..conns {
            for i in 0..100 {
                frames.push(send(request_create(&format!("/bench/c{c}-{i}"), &data)));
            }
        }
        let n = frames.len();
        for f in frames {
            s.write_all(&f).await.expect("send");
        }
        let (mut rd, _wr) = s.into_split();
        for _ in 0..n {
            read_frame(&mut rd).await.expect("setup reply");
        }
        println!("setup done");
        return;
    }
    let per = total / conns;
    let start = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let conn = if kind == "create" { base + c } else { c };
            tokio::spawn(worker(
                addr.clone(),
                kind.clone(),
                conn,
                per,
                depth,
                data.clone(),
            ))
        })
        .collect();
    let mut lat: Vec<u64> = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("worker"));
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "op={kind} ops={} secs={secs:.2} ops_per_sec={:.0} p50_us={} p99_us={}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

fn request_create(path: &str, data: &[u8]) -> Request {
    Request::Create {
        opcode: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: data.to_vec(),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    }
}
