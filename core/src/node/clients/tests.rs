//! `Clients` alone: no server, a tree and an output queue.

use super::*;
use crate::proto::{Reader as Bytes, ReplyHeader};
use crate::tree::DataTree;
use crate::txn::TxnTag;

const MAX_BUFFER: usize = 1 << 20;

fn reader(tree: &DataTree) -> Reader<'_> {
    Reader {
        tree,
        zxid: Zxid::new(1, 7),
        skip_acl: false,
    }
}

/// The reply headers sent to `conn`, in order, and whether it was closed.
fn sent(out: &mut VecDeque<Output>, conn: ConnId) -> (Vec<i32>, bool) {
    let mut xids = Vec::new();
    let mut closed = false;
    for o in out.drain(..) {
        match o {
            Output::SendClient { conn: c, frame } if c == conn => {
                let h = ReplyHeader::read(&mut Bytes::new(&frame)).expect("a reply header");
                xids.push(h.xid);
            }
            Output::CloseClient { conn: c, .. } if c == conn => closed = true,
            _ => {}
        }
    }
    (xids, closed)
}

fn with_session(c: &mut Clients, conn: u64, session: i64, out: &mut VecDeque<Output>) -> ConnId {
    let conn = ConnId(conn);
    c.connect(conn, "127.0.0.1".into(), 10, out);
    c.attach(conn, SessionId(session), out);
    conn
}

#[test]
fn replies_leave_in_request_order() {
    let tree = DataTree::new();
    let rd = reader(&tree);
    let mut c = Clients::new(10);
    let mut out = VecDeque::new();
    let conn = with_session(&mut c, 1, 5, &mut out);
    c.push_write(conn, 1, Instant(10));
    let get = Request::GetData {
        path: "/".into(),
        watch: false,
    };
    c.push_read(Instant(11), conn, 2, get, &rd, &mut out);
    // The read waits behind the unanswered write.
    assert_eq!(sent(&mut out, conn), (vec![], false));
    let header = TxnHeader {
        zxid: Zxid::new(1, 7),
        session: SessionId(5),
        cxid: 1,
        tag: TxnTag::Write,
    };
    assert_eq!(c.writer_of(&header), Some(conn));
    let reply =
        super::super::reply_frame(1, rd.zxid, proto::ErrorCode::Ok, &proto::Response::Empty);
    c.finish_write(Instant(12), conn, reply, None, &rd, &mut out);
    assert_eq!(sent(&mut out, conn), (vec![1, 2], false));
    // No write is pending any more: no connection waits for another txn.
    assert_eq!(c.writer_of(&header), None);
}

#[test]
fn a_session_lives_on_one_connection() {
    let mut c = Clients::new(10);
    let mut out = VecDeque::new();
    let first = with_session(&mut c, 1, 5, &mut out);
    let second = ConnId(2);
    c.connect(second, "127.0.0.1".into(), 10, &mut out);
    c.attach(second, SessionId(5), &mut out);
    assert_eq!(
        sent(&mut out, first),
        (vec![], true),
        "the older connection closes"
    );
    // Nothing is sent on a closing connection.
    c.send(first, vec![0; 16], Zxid::ZERO, &mut out);
    assert!(out.is_empty());
    // The socket goes: the session stays with the newer connection.
    assert_eq!(c.remove(first), None);
    assert!(c.has_session(SessionId(5)));
    assert_eq!(c.remove(second), Some(SessionId(5)));
    assert!(!c.has_session(SessionId(5)));
}

#[test]
fn frames_are_bounded_and_held_while_revalidating() {
    let mut c = Clients::new(10);
    let mut out = VecDeque::new();
    let conn = ConnId(1);
    c.connect(conn, "127.0.0.1".into(), 10, &mut out);
    assert!(matches!(
        c.admit(conn, vec![1], MAX_BUFFER, 2, &mut out),
        Some(Admitted::Connect(_))
    ));
    c.start_revalidating(conn);
    assert!(c.admit(conn, vec![2], MAX_BUFFER, 2, &mut out).is_none());
    assert!(c.admit(conn, vec![3], MAX_BUFFER, 2, &mut out).is_none());
    assert!(out.is_empty(), "held, not refused");
    assert_eq!(c.end_revalidating(conn), Some(vec![vec![2], vec![3]]));
    // Over the queue bound: the connection closes.
    c.start_revalidating(conn);
    c.admit(conn, vec![4], MAX_BUFFER, 1, &mut out);
    assert!(c.admit(conn, vec![5], MAX_BUFFER, 1, &mut out).is_none());
    assert_eq!(sent(&mut out, conn), (vec![], true));
    assert_eq!(c.end_revalidating(conn), None, "closed: nothing to replay");
    // A frame over jute.maxbuffer closes a connection too.
    let other = ConnId(2);
    c.connect(other, "127.0.0.1".into(), 10, &mut out);
    assert!(c.admit(other, vec![0; 9], 8, 10, &mut out).is_none());
    assert_eq!(sent(&mut out, other), (vec![], true));
}

#[test]
fn connections_are_bounded() {
    let mut c = Clients::new(10);
    let mut out = VecDeque::new();
    c.connect(ConnId(1), "127.0.0.1".into(), 1, &mut out);
    c.connect(ConnId(2), "127.0.0.1".into(), 1, &mut out);
    assert!(c.get(ConnId(1)).is_some());
    assert!(c.get(ConnId(2)).is_none());
    assert_eq!(sent(&mut out, ConnId(2)), (vec![], true));
}
