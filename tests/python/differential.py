"""Record a scripted conversation with a server, then normalise it so that
transcripts from Apache ZooKeeper and from Paddock compare field by field.

Normalisation keeps everything a client can rely on and replaces only what
legitimately differs between two servers:
- zxids (reply headers, czxid, mzxid, pzxid) become their rank among the
  distinct non-zero zxids of the transcript, so equality and relative order
  must match but absolute values need not;
- session ids (ConnectResponse, ephemeralOwner) become S0, S1, ... in order
  of first appearance; a passwd becomes its length;
- ctime/mtime become "T" when they are a plausible wall-clock time (0 stays
  0, anything else stays visible as a difference).
"""

import time

import jute
from jute import Closed, Conn, Timeout

ZXID_KEYS = {"czxid", "mzxid", "pzxid", "zxid"}
TIME_KEYS = {"ctime", "mtime"}
SESSION_KEYS = {"sessionId", "ephemeralOwner"}
EVENT_WAIT_S = 1.0


class Recorder:
    def __init__(self, server, root):
        self.server = server
        self.port = server.port
        self.root = root
        self.log = []
        self.conns = {}
        self.connect_args = {}
        self.dropped = []

    # -- connections
    def open(self, name, **kw):
        c = Conn(self.port)
        self.conns[name] = c
        self.connect_args[name] = kw
        try:
            rep = c.connect(**kw)
        except (Closed, Timeout) as e:
            self.log.append({"t": "connect-failed", "conn": name, "why": type(e).__name__})
            return None
        self.log.append(dict(rep, t="connect", conn=name))
        return rep

    def drop(self, name):
        """Close the socket without closeSession (the session survives; it
        is closed explicitly at the end so its expiry cannot land in the
        middle of a later transcript)."""
        c = self.conns.pop(name)
        self.dropped.append((c.session_id, c.passwd, c.last_zxid))
        c.close_socket()

    def close(self, name):
        """closeSession, then expect the server to close the socket."""
        self.req(name, jute.CLOSE_SESSION)
        c = self.conns.pop(name, None)
        if c is not None:
            self.log.append({"t": "socket-closed-after-closeSession", "conn": name,
                             "closed": c.is_closed(wait=3.0)})
            c.close_socket()

    def close_all(self):
        for name in list(self.conns):
            c = self.conns.pop(name)
            try:
                c.close_session()
            except Exception:
                pass
            c.close_socket()
        for sid, passwd, last in self.dropped:
            c = Conn(self.port)
            try:
                c.connect(session_id=sid, passwd=passwd, last_zxid=last)
                c.close_session()
            except Exception:
                pass
            c.close_socket()

    # -- requests
    def _record_events(self, name, events):
        for e in events:
            self.log.append({"t": "event", "conn": name, "type": e[1], "state": e[2], "path": e[3]})

    def req(self, name, opcode, body=b"", xid=None, reopen=False, err_only=False):
        """Send one request, record the events before its reply and the reply.
        Returns (err, body) or None if the connection closed."""
        c = self.conns.get(name)
        if c is None:
            self.log.append({"t": "not-connected", "conn": name, "op": opcode})
            return None
        try:
            events, rep = c.call(opcode, body, xid)
        except (Closed, Timeout) as e:
            # The events received before the close were consumed by call(); a
            # closed connection is what we compare here.
            self.log.append({"t": "no-reply", "conn": name, "op": opcode, "why": type(e).__name__})
            self.conns.pop(name).close_socket()
            if reopen:
                self.open(name, **self.connect_args.get(name, {}))
            return None
        self._record_events(name, events)
        _, _xid, op, zxid, err, value = rep
        shown = unordered(op, value)
        if err_only:
            shown = "<not compared>"
        self.log.append({"t": "reply", "conn": name, "op": op, "zxid": zxid, "err": err, "body": shown})
        return err, value

    def flush(self, name):
        """Collect the events queued for `name`: ping, record what precedes the
        ping's reply."""
        return self.req(name, jute.PING, xid=jute.XID_PING)

    def wait_event(self, name, wait=EVENT_WAIT_S):
        """Record the next packet if one arrives within `wait` seconds."""
        c = self.conns[name]
        c.sock.settimeout(wait)
        try:
            pkt = c.recv()
        except Timeout:
            self.log.append({"t": "no-event", "conn": name})
            return None
        except Closed:
            self.log.append({"t": "closed", "conn": name})
            return None
        finally:
            c.sock.settimeout(c.timeout)
        if pkt[0] == "event":
            self._record_events(name, [pkt])
        else:
            self.log.append({"t": "unexpected-reply", "conn": name, "op": pkt[2], "err": pkt[4]})
        return pkt

    def note(self, **kw):
        self.log.append(dict(kw, t="note"))

    # -- shorthands
    def create(self, name, path, data=b"", acl=jute.OPEN_ACL_UNSAFE, flags=0, op=jute.CREATE, ttl=None):
        if ttl is not None:
            return self.req(name, op, jute.create_ttl_body(path, data, acl, flags, ttl))
        return self.req(name, op, jute.create_body(path, data, acl, flags))

    def get(self, name, path, watch=False):
        return self.req(name, jute.GET_DATA, jute.path_watch(path, watch))

    def exists(self, name, path, watch=False):
        return self.req(name, jute.EXISTS, jute.path_watch(path, watch))

    def children2(self, name, path, watch=False):
        return self.req(name, jute.GET_CHILDREN2, jute.path_watch(path, watch))

    def set(self, name, path, data, version=-1):
        return self.req(name, jute.SET_DATA, jute.set_data_body(path, data, version))

    def delete(self, name, path, version=-1):
        return self.req(name, jute.DELETE, jute.path_version(path, version))


def unordered(op, value):
    """ZooKeeper promises no order for children, ephemerals or auth ids
    (they come from hash sets), so those lists are compared sorted."""
    if value is None:
        return value
    if op in (jute.GET_CHILDREN, jute.GET_EPHEMERALS, jute.WHO_AM_I):
        return sorted(value)
    if op == jute.GET_CHILDREN2:
        return (sorted(value[0]), value[1])
    if op == jute.MULTI_READ:
        return [(r[0], sorted(r[1])) if r[0] == "getChildren" else r for r in value]
    return value


def normalise(log):
    zxids = set()
    now_ms = time.time() * 1000

    def scan(v, key=None):
        if isinstance(v, dict):
            for k, x in v.items():
                scan(x, k)
        elif isinstance(v, (list, tuple)):
            for x in v:
                scan(x, key)
        elif key in ZXID_KEYS and isinstance(v, int) and v > 0:
            zxids.add(v)

    scan(log)
    rank = {z: i + 1 for i, z in enumerate(sorted(zxids))}
    sessions = {}

    def session(v):
        if v == 0 or v < 0:  # 0, container and TTL markers are compared raw
            return v
        if v not in sessions:
            sessions[v] = "S%d" % len(sessions)
        return sessions[v]

    def norm(v, key=None):
        if isinstance(v, dict):
            return {k: norm(x, k) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x, key) for x in v]
        if isinstance(v, bytes) and key == "passwd":
            return "passwd[%d]%s" % (len(v), "-zero" if v == b"\x00" * len(v) else "")
        if key in ZXID_KEYS and isinstance(v, int):
            return rank.get(v, v) if v > 0 else v
        if key in TIME_KEYS and isinstance(v, int):
            if v == 0:
                return 0
            return "T" if abs(v - now_ms) < 86400000 else "T?%d" % v
        if key in SESSION_KEYS and isinstance(v, int):
            return session(v)
        return v

    # Session ids first as they appear in ConnectResponses, so ephemeralOwner
    # values map to the same names.
    for e in log:
        if e.get("t") == "connect":
            session(e["sessionId"])
    return sort_event_runs([norm(e) for e in log])


def sort_event_runs(log):
    """Watch events that arrive together (no reply between them) are
    compared as a set: ZooKeeper deletes a closed session's ephemerals in
    hash-set order, so the order of the events one close fires depends on
    the paths' hashes, not on anything a client may rely on."""
    out, run_ = [], []
    for e in log:
        if e.get("t") == "event":
            run_.append(e)
            continue
        out.extend(sorted(run_, key=repr))
        run_ = []
        out.append(e)
    out.extend(sorted(run_, key=repr))
    return out


def run(server, scenario, root):
    rec = Recorder(server, root)
    try:
        scenario(rec)
    finally:
        rec.close_all()
    return normalise(rec.log)


def diff(a, b, names=("zookeeper", "paddock")):
    """Human-readable first differences between two normalised transcripts."""
    out = []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            out.append("#%d\n  %s: %r\n  %s: %r" % (i, names[0], x, names[1], y))
            if len(out) >= 6:
                break
    return "\n".join(out)
