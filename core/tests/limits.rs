//! Each bound of `paddock_core::limits`, reached: the client that reaches
//! it is refused or disconnected, the others keep being served. The bounds
//! are lowered through `Config::limits` so that a test reaches them in a
//! few requests; the code path is the one the constants guard.

use paddock_core::proto::{self, op, Acl, ConnectRequest, CreateRequest, ReplyHeader, Request};
use paddock_core::storage::MemDir;
use paddock_core::*;
use std::collections::BTreeMap;

fn now(ms: u64) -> Now {
    Now::new(Instant::from_millis(ms), 1_700_000_000_000 + ms as i64)
}

/// One standalone node over an instant in-memory disk.
struct One {
    node: Node,
    disk: MemDir,
    now_ms: u64,
    inbox: BTreeMap<u64, Vec<Vec<u8>>>,
    closed: BTreeMap<u64, String>,
}

impl One {
    fn new(tune: impl Fn(&mut Config)) -> One {
        let mut cfg = Config::standalone(1);
        tune(&mut cfg);
        let mut disk = MemDir::new();
        let node = boot::boot(cfg, &mut disk, now(1000)).expect("boot").node;
        let mut o = One {
            node,
            disk,
            now_ms: 1000,
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
        };
        o.pump();
        o
    }

    fn pump(&mut self) {
        loop {
            let mut done = Vec::new();
            let mut moved = false;
            while let Some(out) = self.node.poll_output() {
                moved = true;
                match out {
                    Output::SendClient { conn, frame } => {
                        self.inbox.entry(conn.0).or_default().push(frame)
                    }
                    Output::CloseClient { conn, reason } => {
                        self.closed.insert(conn.0, reason);
                    }
                    Output::Storage(op) => done.push(self.disk.execute(op)),
                    other => panic!("unexpected output {other:?}"),
                }
            }
            for d in done {
                self.node.handle(now(self.now_ms), d.into());
            }
            if !moved {
                return;
            }
        }
    }

    fn input(&mut self, i: Input) {
        self.node.handle(now(self.now_ms), i);
        self.pump();
    }

    /// The shell reports a closed connection as gone.
    fn gone(&mut self, conn: u64) {
        self.input(Input::ClientClosed { conn: ConnId(conn) });
    }

    fn open(&mut self, conn: u64) {
        self.input(Input::ClientConnected {
            conn: ConnId(conn),
            addr: "127.0.0.1".into(),
        });
    }

    /// Opens `conn` and asks for a new session; true if one was granted.
    fn connect(&mut self, conn: u64) -> bool {
        self.open(conn);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        self.input(Input::ClientFrame {
            conn: ConnId(conn),
            frame: req.encode(),
        });
        let granted = self.inbox.remove(&conn).is_some_and(|f| f.len() == 1);
        assert_eq!(
            granted,
            !self.closed.contains_key(&conn),
            "a connection is answered or closed"
        );
        granted
    }

    /// Sends a request; its reply header, if one came.
    fn call(&mut self, conn: u64, xid: i32, req: &Request) -> Option<ReplyHeader> {
        self.input(Input::ClientFrame {
            conn: ConnId(conn),
            frame: proto::encode_request(xid, req),
        });
        let frames = self.inbox.remove(&conn).unwrap_or_default();
        let f = frames
            .into_iter()
            .find(|f| i32::from_be_bytes([f[0], f[1], f[2], f[3]]) == xid)?;
        Some(ReplyHeader::read(&mut proto::Reader::new(&f)).unwrap())
    }
}

fn create(path: &str) -> Request {
    Request::Create {
        opcode: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    }
}

fn watch(path: &str) -> Request {
    Request::Exists {
        path: path.into(),
        watch: true,
    }
}

#[test]
fn the_defaults_are_the_named_constants() {
    let l = Config::standalone(1).limits;
    assert_eq!(l.conns, limits::CONNS_MAX);
    assert_eq!(l.sessions, limits::SESSIONS_MAX);
    assert_eq!(l.watches_per_conn, limits::WATCHES_PER_CONN_MAX);
}

#[test]
fn a_connection_past_the_connection_limit_is_closed_at_once() {
    let mut o = One::new(|c| c.limits.conns = 3);
    for c in 1..=3 {
        o.open(c);
    }
    o.open(4);
    assert!(o.closed[&4].contains("connections"), "{:?}", o.closed);
    assert_eq!(o.closed.len(), 1, "only the one past the limit");
    assert_eq!(o.node.stats().connections, 3);
    // A frame on the refused connection is ignored, not served.
    o.input(Input::ClientFrame {
        conn: ConnId(4),
        frame: vec![0; 40],
    });
    assert!(!o.inbox.contains_key(&4));
    // Once one goes, a new one is taken.
    o.gone(1);
    assert!(
        o.connect(5),
        "a slot freed by a closed connection is reused"
    );
}

#[test]
fn a_new_session_past_the_session_limit_is_refused_and_others_are_served() {
    let mut o = One::new(|c| c.limits.sessions = 2);
    assert!(o.connect(1));
    assert!(o.connect(2));
    let zxid_before = o.node.stats().last_zxid;
    assert!(!o.connect(3), "the third session is refused");
    assert!(o.closed[&3].contains("sessions"), "{:?}", o.closed);
    assert_eq!(
        o.node.stats().last_zxid,
        zxid_before,
        "nothing was proposed for it"
    );
    assert_eq!(o.node.stats().sessions, 2);
    // The sessions that exist keep working.
    assert_eq!(o.call(1, 1, &create("/a")).map(|h| h.err), Some(0));
    // A closed session frees its place.
    let h = o.call(2, 2, &Request::CloseSession).expect("close reply");
    assert_eq!(h.err, 0);
    o.gone(2);
    assert!(o.connect(4), "a new session once one has closed");
}

#[test]
fn a_watch_past_the_per_connection_limit_closes_only_that_connection() {
    let mut o = One::new(|c| c.limits.watches_per_conn = 3);
    assert!(o.connect(1));
    assert!(o.connect(2));
    for (xid, p) in [(1, "/a"), (2, "/b"), (3, "/c")] {
        assert!(o.call(1, xid, &watch(p)).is_some());
    }
    // The same watch again is not a new one.
    assert!(o.call(1, 4, &watch("/a")).is_some());
    assert!(!o.closed.contains_key(&1));
    assert_eq!(o.node.stats().watch_count, 3);
    // A fourth distinct watch is past the limit: not set, connection closed.
    o.call(1, 5, &watch("/d"));
    assert!(o.closed[&1].contains("watch"), "{:?}", o.closed);
    assert_eq!(o.node.stats().watch_count, 3, "the fourth was not set");
    o.gone(1);
    assert_eq!(o.node.stats().watch_count, 0, "its watches went with it");
    // Another client is not affected.
    for (xid, p) in [(1, "/a"), (2, "/b"), (3, "/c")] {
        assert!(o.call(2, xid, &watch(p)).is_some());
    }
    assert!(!o.closed.contains_key(&2));
    assert_eq!(o.node.stats().watch_count, 3);
}
