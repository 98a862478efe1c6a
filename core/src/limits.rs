//! Bounds on what clients and peers can make the core hold.
//!
//! Every collection in the core that grows with input has a bound: a
//! named constant here or next to its owner, or another bound it follows
//! from. Reaching a named one has a defined effect, never a silent loss,
//! and costs only the client that reached it; the server keeps serving
//! the others.
//!
//! | what grows | bound | when reached |
//! |---|---|---|
//! | client connections (`Clients.conns`) | [`CONNS_MAX`] (`Limits::conns`); the shell also caps each IP (`maxClientCnxns`) | the new connection is closed at once |
//! | sessions (`State.sessions`) | [`SESSIONS_MAX`] (`Limits::sessions`) | a new session is refused: its connection is closed before a CreateSession is proposed (a reconnect to an existing session is still served); in flight CreateSessions may pass it by at most one per connection of the ensemble |
//! | watches of one connection (`Watches`) | [`WATCHES_PER_CONN_MAX`] (`Limits::watches_per_conn`) | the watch is not set and the connection is closed (its watches dropped); the client learns it was disconnected, as after any connection loss |
//! | requests waiting on one connection (`Conn.queue`, frames held while revalidating) | `node::QUEUED_PER_CONN_MAX` (`Config::outstanding_per_conn_max`) | the connection is closed |
//! | one frame, one znode's data | `Config::max_buffer` (`jute.maxbuffer`) | the connection is closed / the write refused, as ZooKeeper |
//! | the log kept for DIFF syncs (`Log`) | `log::WINDOW_MAX` committed entries | older entries are dropped; a learner further behind gets a SNAP |
//! | shared ACL lists (`DataTree.acls`) | `tree::ACL_CACHE_MAX` | new lists are not cached (each node keeps its own) |
//! | SASL tokens and directives | `sasl::TOKEN_BYTES_MAX`, `sasl::DIRECTIVES_MAX` | the exchange fails with an error |
//! | a storage record | `storage::format::RECORD_LEN_MAX` | a longer one is read as corruption |
//!
//! Bounded by the ones above, so without a constant of their own:
//! `session_conn`, the learner's pending revalidations (one per
//! connection), the learner's `touched` sessions and the leader's
//! `closing` set and expiry queue (at most the sessions); the leader's
//! `learners` and the election's votes (the configured members);
//! persistence tokens, the persist buffer and outputs (drained at every
//! poll).
//!
//! Bounded in time, not by a count (an open gap): the leader's
//! uncommitted proposals (its log past the last applied zxid) and its
//! `sync_waiters`. While every requester stays connected they follow the
//! queues above: a write or a learner's `sync` holds its connection's
//! slot until answered, so at most the ensemble's connections times
//! `QUEUED_PER_CONN_MAX`, plus one CloseSession per session and
//! `Config::container_max_per_minute` reaped nodes. But a slot goes with
//! its connection, while a write already submitted (or forwarded) stays
//! proposed and a learner's SyncRequest stays waiting at the leader until
//! the zxid it waits for is committed: a client that fills its queue,
//! closes and reconnects adds a queue's worth each time. What ends them is
//! time: they are answered once a quorum has them durable (group commit:
//! one fsync covers everything buffered), and a leader that hears no
//! quorum steps down within syncLimit and drops them. What does not end
//! them: a quorum of followers that answer pings while their disks do not
//! complete (ZooKeeper's leader behaves the same; ZooKeeper bounds the
//! intake instead, with `globalOutstandingLimit`, counting a request until
//! it is finished even after its connection closed). A bound of that shape
//! here would count each server's submitted, not yet applied writes apart
//! from connections, reset at every role change, and refuse a write past
//! it as the other bounds do (closing the connection that sent it).
//!
//! Deliberately unbounded, as in ZooKeeper: the data tree itself (its
//! size is the user's data; quotas and memory sizing are the operator's).

/// Client connections one server holds.
pub const CONNS_MAX: usize = 60_000;

/// Live sessions of the ensemble (ZooKeeper sets none; a session costs a
/// few hundred bytes on every server and an entry in every snapshot).
pub const SESSIONS_MAX: usize = 1_000_000;

/// Watches one connection may hold (a tree of two million znodes watched
/// for data and children by one client).
pub const WATCHES_PER_CONN_MAX: usize = 4_000_000;

/// The bounds a node enforces (the constants above unless a test or an
/// operator lowers them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub conns: usize,
    pub sessions: usize,
    pub watches_per_conn: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            conns: CONNS_MAX,
            sessions: SESSIONS_MAX,
            watches_per_conn: WATCHES_PER_CONN_MAX,
        }
    }
}
