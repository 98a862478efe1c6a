//! The in-memory cluster the core's end-to-end tests drive: real `Node`s,
//! a perfect network with faults on demand, and an instant disk.
#![allow(dead_code)]

use paddock_core::proto::{self, op, Acl, ConnectRequest, CreateRequest, ReplyHeader, Request};
use paddock_core::storage::MemDir;
use paddock_core::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub struct Cluster {
    pub nodes: BTreeMap<u64, Node>,
    pub disks: BTreeMap<u64, MemDir>,
    pub configs: BTreeMap<u64, Config>,
    pub down: BTreeSet<u64>,
    pub now_ms: u64,
    pub net: VecDeque<(u64, u64, Vec<u8>)>,
    /// conn -> frames received
    pub inbox: BTreeMap<u64, Vec<Vec<u8>>>,
    pub closed: BTreeSet<u64>,
    /// conn -> node
    pub conn_node: BTreeMap<u64, u64>,
    /// (from, to) links whose messages are held, not delivered, until
    /// `release`: a silent, one-way network fault.
    pub hold: BTreeSet<(u64, u64)>,
    pub held: VecDeque<(u64, u64, Vec<u8>)>,
    /// node -> why it stopped (`Output::Stop`)
    pub stopped: BTreeMap<u64, String>,
    /// (node, version) of every configuration activation, in order.
    pub activated: Vec<(u64, u64)>,
}

pub fn now(ms: u64) -> Now {
    Now::new(Instant::from_millis(ms), 1_700_000_000_000 + ms as i64)
}

impl Cluster {
    pub fn new(voters: &[u64], observers: &[u64]) -> Cluster {
        Cluster::with(voters, observers, |_| {})
    }

    /// A cluster whose configurations `tune` adjusts before the start.
    pub fn with(voters: &[u64], observers: &[u64], tune: impl Fn(&mut Config)) -> Cluster {
        let configs = voters
            .iter()
            .chain(observers)
            .map(|&id| {
                let mut cfg = if voters.len() == 1 && observers.is_empty() {
                    Config::standalone(id)
                } else {
                    Config::ensemble(id, voters, observers)
                };
                cfg.tick_time_ms = 100;
                cfg.min_session_timeout_ms = 200;
                cfg.max_session_timeout_ms = 2000;
                tune(&mut cfg);
                cfg
            })
            .collect();
        Cluster::with_configs(configs)
    }

    /// A cluster of servers with these configurations, all started.
    pub fn with_configs(configs: Vec<Config>) -> Cluster {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            configs: BTreeMap::new(),
            down: BTreeSet::new(),
            now_ms: 1000,
            net: VecDeque::new(),
            inbox: BTreeMap::new(),
            closed: BTreeSet::new(),
            conn_node: BTreeMap::new(),
            hold: BTreeSet::new(),
            held: VecDeque::new(),
            stopped: BTreeMap::new(),
            activated: Vec::new(),
        };
        for cfg in configs {
            c.add(cfg);
        }
        c
    }

    /// Starts one more server (with an empty disk).
    pub fn add(&mut self, cfg: Config) {
        let id = cfg.server_id.0;
        self.configs.insert(id, cfg);
        self.disks.insert(id, MemDir::new());
        self.start(id);
    }

    pub fn start(&mut self, id: u64) {
        let d = self.disks.get_mut(&id).unwrap();
        d.restart();
        let node = boot::boot(self.configs[&id].clone(), d, now(self.now_ms))
            .expect("boot")
            .node;
        self.nodes.insert(id, node);
        self.down.remove(&id);
        let peers: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|p| *p != id && !self.down.contains(p))
            .collect();
        for p in peers {
            self.nodes.get_mut(&p).unwrap().handle(
                now(self.now_ms),
                Input::PeerConnected { peer: ServerId(id) },
            );
            self.nodes
                .get_mut(&id)
                .unwrap()
                .handle(now(self.now_ms), Input::PeerConnected { peer: ServerId(p) });
        }
    }

    pub fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.down.insert(id);
        self.net.retain(|(f, t, _)| *f != id && *t != id);
        let t = now(self.now_ms);
        for (_, n) in self.nodes.iter_mut() {
            n.handle(t, Input::PeerDisconnected { peer: ServerId(id) });
        }
        let conns: Vec<u64> = self
            .conn_node
            .iter()
            .filter(|(_, n)| **n == id)
            .map(|(c, _)| *c)
            .collect();
        for c in conns {
            self.closed.insert(c);
        }
    }

    /// Runs outputs until nothing moves; returns whether anything happened.
    pub fn pump(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut progress = false;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                let mut completions = Vec::new();
                let mut resets = Vec::new();
                while let Some(out) = self.nodes.get_mut(&id).unwrap().poll_output() {
                    progress = true;
                    match out {
                        Output::SendClient { conn, frame } => {
                            self.inbox.entry(conn.0).or_default().push(frame)
                        }
                        Output::CloseClient { conn, .. } => {
                            self.closed.insert(conn.0);
                        }
                        Output::Storage(op) => {
                            completions.push(self.disks.get_mut(&id).unwrap().execute(op))
                        }
                        Output::Stop { reason } => {
                            self.stopped.insert(id, reason);
                        }
                        Output::SendPeer { to, bytes } => {
                            if !self.down.contains(&to.0) {
                                self.net.push_back((id, to.0, bytes));
                            }
                        }
                        Output::ClosePeer { peer, reason } => {
                            // Only a leader handing over drops links on
                            // purpose; anything else is a protocol error.
                            assert!(
                                reason.starts_with("leaving the lead"),
                                "peer {} closed: {reason}",
                                peer.0
                            );
                            resets.push((id, peer.0));
                        }
                        Output::ConfigActivated { version, .. } => {
                            self.activated.push((id, version));
                        }
                    }
                }
                let t = now(self.now_ms);
                let n = self.nodes.get_mut(&id).unwrap();
                for done in completions {
                    n.handle(t, done.into());
                }
                for (a, b) in resets {
                    self.reset_link(a, b);
                }
            }
            while let Some((from, to, bytes)) = self.net.pop_front() {
                progress = true;
                if self.hold.contains(&(from, to)) {
                    self.held.push_back((from, to, bytes));
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&to) {
                    n.handle(
                        now(self.now_ms),
                        Input::PeerMessage {
                            from: ServerId(from),
                            bytes,
                        },
                    );
                }
            }
            if !progress {
                return moved;
            }
            moved = true;
        }
    }

    /// Breaks the link between `a` and `b` (what was in flight on it is
    /// lost) and brings it up again, as the shell re-dials.
    pub fn reset_link(&mut self, a: u64, b: u64) {
        self.net
            .retain(|(f, t, _)| !((*f == a && *t == b) || (*f == b && *t == a)));
        let t = now(self.now_ms);
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                n.handle(t, Input::PeerDisconnected { peer: ServerId(y) });
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = self.nodes.get_mut(&x) {
                n.handle(t, Input::PeerConnected { peer: ServerId(y) });
            }
        }
    }

    /// Advances time in small steps, firing timeouts.
    pub fn run_ms(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.pump();
            self.now_ms += 5;
            let t = now(self.now_ms);
            for n in self.nodes.values_mut() {
                if n.poll_timeout().is_some_and(|d| d <= t.mono) {
                    n.handle_timeout(t);
                }
            }
        }
        self.pump();
    }

    /// Lifts every hold; what was held arrives first, in order.
    pub fn release(&mut self) {
        self.hold.clear();
        let mut held = std::mem::take(&mut self.held);
        held.append(&mut self.net);
        self.net = held;
        self.pump();
    }

    /// Opens `conn` on `node` with an existing session; returns what the
    /// server answered so far (nothing while it waits for the leader).
    pub fn reconnect(&mut self, conn: u64, node: u64, session: i64) -> Vec<Vec<u8>> {
        self.conn_node.insert(conn, node);
        let t = now(self.now_ms);
        let n = self.nodes.get_mut(&node).unwrap();
        n.handle(
            t,
            Input::ClientConnected {
                conn: ConnId(conn),
                addr: "127.0.0.1".into(),
            },
        );
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 4000,
            session_id: session,
            passwd: paddock_core::session::password(SessionId(session)).to_vec(),
            read_only: None,
        };
        n.handle(
            t,
            Input::ClientFrame {
                conn: ConnId(conn),
                frame: req.encode(),
            },
        );
        self.run_ms(20);
        self.inbox.remove(&conn).unwrap_or_default()
    }

    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(_, n)| n.role() == ServerRole::Leader || n.role() == ServerRole::Standalone)
            .map(|(id, _)| *id)
    }

    pub fn connect(&mut self, conn: u64, node: u64) -> i64 {
        connect_read_only(self, conn, node, false)
            .unwrap_or_else(|| panic!("one ConnectResponse on conn {conn}, closed: true"))
            .session_id
    }

    /// Sends a request and returns (reply header, body bytes).
    pub fn call(&mut self, conn: u64, xid: i32, req: &Request) -> (ReplyHeader, Vec<u8>) {
        let node = self.conn_node[&conn];
        let t = now(self.now_ms);
        self.nodes.get_mut(&node).unwrap().handle(
            t,
            Input::ClientFrame {
                conn: ConnId(conn),
                frame: proto::encode_request(xid, req),
            },
        );
        self.run_ms(20);
        let frames = self.inbox.remove(&conn).unwrap_or_default();
        let f = frames
            .into_iter()
            .find(|f| i32::from_be_bytes([f[0], f[1], f[2], f[3]]) == xid)
            .unwrap_or_else(|| panic!("no reply to xid {xid} on conn {conn}"));
        let mut r = proto::Reader::new(&f);
        let h = ReplyHeader::read(&mut r).unwrap();
        (h, f[16..].to_vec())
    }
}

pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create {
        opcode: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: data.to_vec(),
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        },
    }
}

pub fn get(path: &str) -> Request {
    Request::GetData {
        path: path.into(),
        watch: false,
    }
}

pub fn data_of(body: &[u8]) -> Vec<u8> {
    let mut r = proto::Reader::new(body);
    r.buffer().unwrap()
}

/// Opens `conn` on `node` as a client that can live with a read-only
/// server; returns the ConnectResponse, or `None` if the server closed.
pub fn connect_read_only(
    c: &mut Cluster,
    conn: u64,
    node: u64,
    read_only: bool,
) -> Option<proto::ConnectResponse> {
    c.conn_node.insert(conn, node);
    let t = now(c.now_ms);
    let n = c.nodes.get_mut(&node).unwrap();
    n.handle(
        t,
        Input::ClientConnected {
            conn: ConnId(conn),
            addr: "127.0.0.1".into(),
        },
    );
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 4000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(read_only),
    };
    n.handle(
        t,
        Input::ClientFrame {
            conn: ConnId(conn),
            frame: req.encode(),
        },
    );
    c.run_ms(20);
    let frames = c.inbox.remove(&conn).unwrap_or_default();
    if c.closed.contains(&conn) {
        assert!(
            frames.is_empty(),
            "a refused client gets no ConnectResponse"
        );
        return None;
    }
    assert_eq!(frames.len(), 1);
    Some(proto::ConnectResponse::decode(&frames[0]).unwrap())
}
