//! Test harness: starts the real `paddock` binary on loopback with a
//! temporary data dir, and speaks raw ZooKeeper jute to it.
//!
//! Every socket read has a timeout and every wait for the process is
//! bounded, so a hung server fails a test instead of hanging it.

#![allow(dead_code)]

use paddock_core::proto::{
    self, Acl, ConnectRequest, ConnectResponse, CreateRequest, Reader, ReplyHeader, Request,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One running `paddock` process, killed on drop if still alive.
pub struct Paddock {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// Writes a zoo.cfg in `dir` (data in `dir/data`) and returns its path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "tickTime=2000\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&cfg, text).expect("writing zoo.cfg");
    cfg
}

impl Paddock {
    pub fn start(cfg: &Path) -> Paddock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .arg(cfg)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning paddock");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(at) = text.find("serving clients on ") {
                let rest = &text[at + "serving clients on ".len()..];
                let addr = rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .parse()
                    .expect("a socket address");
                return Paddock {
                    child,
                    addr,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("paddock exited during start ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "paddock did not start in time:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (bounded) until the server's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaping");
    }

    /// Sends `signal` (by number, to this PID only) and waits for the exit.
    pub fn signal_and_wait(mut self, signal: &str) -> ExitStatus {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(ok.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "paddock did not exit after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Paddock {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Opens a TCP connection with read and write timeouts set.
pub fn dial(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Sends a four-letter word and reads the answer until the server closes.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> String {
    let mut s = dial(addr);
    s.write_all(word.as_bytes()).expect("send word");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read answer");
    out
}

pub fn write_frame(s: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    let mut buf = (frame.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(frame);
    s.write_all(&buf)
}

pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    assert!((0..=(1 << 22)).contains(&len), "frame length {len}");
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// A session over one connection, with its own xid counter.
pub struct Client {
    pub stream: TcpStream,
    pub session_id: i64,
    xid: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let mut stream = dial(addr);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        write_frame(&mut stream, &req.encode()).expect("send connect");
        let resp = ConnectResponse::decode(&read_frame(&mut stream).expect("connect response"))
            .expect("decodes");
        assert_ne!(resp.session_id, 0, "session established");
        assert!(resp.timeout_ms > 0);
        Client {
            stream,
            session_id: resp.session_id,
            xid: 0,
        }
    }

    /// Sends one request and returns its reply header and body, skipping
    /// watch notifications (xid -1).
    pub fn call(&mut self, req: &Request) -> std::io::Result<(ReplyHeader, Vec<u8>)> {
        self.xid += 1;
        write_frame(&mut self.stream, &proto::encode_request(self.xid, req))?;
        loop {
            let frame = read_frame(&mut self.stream)?;
            let mut r = Reader::new(&frame);
            let h = ReplyHeader::read(&mut r).expect("reply header");
            if h.xid == -1 {
                continue;
            }
            assert_eq!(h.xid, self.xid, "replies come in order");
            let body = frame[16..].to_vec();
            return Ok((h, body));
        }
    }

    pub fn create(&mut self, path: &str, data: &[u8]) -> i32 {
        let req = Request::Create {
            opcode: proto::op::CREATE,
            req: CreateRequest {
                path: path.into(),
                data: data.to_vec(),
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        };
        let (h, body) = self.call(&req).expect("create");
        if h.err == 0 {
            let mut r = Reader::new(&body);
            assert_eq!(r.ustring().expect("created path"), path);
        }
        h.err
    }

    /// getData: `Ok((data, version))` or the error code.
    pub fn get(&mut self, path: &str) -> Result<(Vec<u8>, i32), i32> {
        let (h, body) = self
            .call(&Request::GetData {
                path: path.into(),
                watch: false,
            })
            .expect("getData");
        if h.err != 0 {
            return Err(h.err);
        }
        let mut r = Reader::new(&body);
        let data = r.buffer().expect("data");
        let stat = proto::Stat::read(&mut r).expect("stat");
        Ok((data, stat.version))
    }

    pub fn set(&mut self, path: &str, data: &[u8], version: i32) -> i32 {
        let (h, _) = self
            .call(&Request::SetData {
                path: path.into(),
                data: data.to_vec(),
                version,
            })
            .expect("setData");
        h.err
    }
}
