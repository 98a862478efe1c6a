"""A small hand-written ZooKeeper wire client (jute over TCP).

It is deliberately independent of Paddock's codec and of kazoo: every byte
on the wire is built here with `struct`, so tests can send what a polite
client never would (paths kazoo refuses, a ConnectRequest without the
trailing readOnly byte, unknown opcodes, broken frames).

Every socket read has a timeout; a missing reply raises `Timeout`.
"""

import socket
import struct

# Opcodes (ZooDefs.OpCode)
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL = 1, 2, 3, 4, 5, 6, 7
GET_CHILDREN, SYNC, PING, GET_CHILDREN2, CHECK, MULTI = 8, 9, 11, 12, 13, 14
CREATE2, RECONFIG, CHECK_WATCHES, REMOVE_WATCHES = 15, 16, 17, 18
CREATE_CONTAINER, DELETE_CONTAINER, CREATE_TTL, MULTI_READ = 19, 20, 21, 22
AUTH, SET_WATCHES, SASL, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER = 100, 101, 102, 103, 104
SET_WATCHES2, ADD_WATCH, WHO_AM_I = 105, 106, 107
CLOSE_SESSION, ERROR = -11, -1

XID_NOTIFICATION, XID_PING, XID_AUTH, XID_SET_WATCHES = -1, -2, -4, -8

OPEN_ACL_UNSAFE = [(31, "world", "anyone")]
READ_ACL_UNSAFE = [(1, "world", "anyone")]

# Create modes
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

DEFAULT_TIMEOUT_S = 10.0


class Timeout(Exception):
    pass


class Closed(Exception):
    """The server closed the connection."""


# ---------------------------------------------------------------- encoding

def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buf(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def ustr(s):
    if s is None:
        return i32(-1)
    if isinstance(s, str):
        # surrogatepass keeps lone surrogates encodable (CESU-8 tests pass bytes).
        s = s.encode("utf-8", "surrogatepass")
    return i32(len(s)) + s


def vec(items, enc):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def acl(a):
    perms, scheme, ident = a
    return i32(perms) + ustr(scheme) + ustr(ident)


def acls(lst):
    return vec(lst, acl)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short record: need %d at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def boolean(self):
        return self.take(1) != b"\x00"

    def buf(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def ustr(self):
        b = self.buf()
        return None if b is None else b.decode("utf-8", "surrogateescape")

    def vec(self, dec):
        n = self.i32()
        return None if n < 0 else [dec(self) for _ in range(n)]

    def stat(self):
        keys = ["czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                "ephemeralOwner", "dataLength", "numChildren", "pzxid"]
        kinds = "qqqqiiiqiiq"
        return {k: (self.i64() if t == "q" else self.i32()) for k, t in zip(keys, kinds)}

    def acl(self):
        return (self.i32(), self.ustr(), self.ustr())

    def remaining(self):
        return len(self.data) - self.pos


# ---------------------------------------------------------------- requests

def create_body(path, data=b"", acl_list=OPEN_ACL_UNSAFE, flags=0):
    return ustr(path) + buf(data) + acls(acl_list) + i32(flags)


def create_ttl_body(path, data=b"", acl_list=OPEN_ACL_UNSAFE, flags=5, ttl=1000):
    return create_body(path, data, acl_list, flags) + i64(ttl)


def path_watch(path, watch=False):
    return ustr(path) + boolean(watch)


def path_version(path, version=-1):
    return ustr(path) + i32(version)


def set_data_body(path, data, version=-1):
    return ustr(path) + buf(data) + i32(version)


def set_acl_body(path, acl_list, version=-1):
    return ustr(path) + acls(acl_list) + i32(version)


def multi_body(ops):
    """ops: list of (opcode, body bytes)."""
    out = b""
    for opcode, body in ops:
        out += i32(opcode) + boolean(False) + i32(-1) + body
    return out + i32(-1) + boolean(True) + i32(-1)


def set_watches_body(rel_zxid, data=(), exist=(), child=(), persistent=None, recursive=None):
    b = i64(rel_zxid) + vec(list(data), ustr) + vec(list(exist), ustr) + vec(list(child), ustr)
    if persistent is not None or recursive is not None:
        b += vec(list(persistent or ()), ustr) + vec(list(recursive or ()), ustr)
    return b


# ---------------------------------------------------------------- replies

def _multi_results(r):
    out = []
    while True:
        typ, done, err = r.i32(), r.boolean(), r.i32()
        if done:
            break
        if typ == CREATE:
            out.append(("create", r.ustr()))
        elif typ in (CREATE2, CREATE_TTL, CREATE_CONTAINER):
            out.append(("create2", typ, r.ustr(), r.stat()))
        elif typ == DELETE:
            out.append(("delete",))
        elif typ == SET_DATA:
            out.append(("setData", r.stat()))
        elif typ == CHECK:
            out.append(("check",))
        elif typ == ERROR:
            out.append(("error", r.i32()))
        elif typ == GET_CHILDREN:
            out.append(("getChildren", r.vec(lambda x: x.ustr())))
        elif typ == GET_DATA:
            out.append(("getData", r.buf(), r.stat()))
        else:
            raise ValueError("unknown multi result type %d (header err %d)" % (typ, err))
    return out


def decode_body(opcode, r):
    """Decode a successful reply body for `opcode`."""
    if opcode in (CREATE, SYNC):
        return r.ustr()
    if opcode in (CREATE2, CREATE_CONTAINER, CREATE_TTL):
        return (r.ustr(), r.stat())
    if opcode in (EXISTS, SET_DATA, SET_ACL):
        return r.stat()
    if opcode == GET_DATA:
        return (r.buf(), r.stat())
    if opcode == GET_ACL:
        return (r.vec(lambda x: x.acl()), r.stat())
    if opcode in (GET_CHILDREN, GET_EPHEMERALS):
        return r.vec(lambda x: x.ustr())
    if opcode == GET_CHILDREN2:
        return (r.vec(lambda x: x.ustr()), r.stat())
    if opcode in (GET_ALL_CHILDREN_NUMBER, ADD_WATCH):  # addWatch: ErrorResponse(0)
        return r.i32()
    if opcode == WHO_AM_I:
        return r.vec(lambda x: (x.ustr(), x.ustr()))
    if opcode in (MULTI, MULTI_READ):
        return _multi_results(r)
    return None  # empty bodies: delete, check, watches, auth, close, ping


# ---------------------------------------------------------------- connection

class Conn:
    """One TCP connection speaking the ZooKeeper client protocol."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT_S, source=None):
        """source: the local address to connect from (another 127.0.0.x
        looks like another client host to the server)."""
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.xid = 0
        self.pending = {}  # xid -> opcode
        self.session_id = None
        self.passwd = None
        self.last_zxid = 0
        self.connect_reply = None

    # -- framing
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send_raw(i32(len(payload)) + payload)

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except socket.timeout:
                raise Timeout("no data within %.1fs (have %d of %d bytes)" % (self.timeout, len(out), n))
            except ConnectionResetError:
                raise Closed("connection reset")
            if not chunk:
                raise Closed("closed by server after %d of %d bytes" % (len(out), n))
            out += chunk
        return out

    def recv_frame(self):
        n = struct.unpack(">i", self._recv_exact(4))[0]
        if n < 0 or n > 64 * 1024 * 1024:
            raise ValueError("bad frame length %d from server" % n)
        return self._recv_exact(n)

    def is_closed(self, wait=3.0):
        """True if the server closes this connection within `wait` seconds
        (any data that arrives first is discarded)."""
        self.sock.settimeout(wait)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- handshake
    def connect(self, session_id=0, passwd=b"\x00" * 16, timeout_ms=10000, read_only=False,
                last_zxid=0, protocol_version=0):
        """Send a ConnectRequest. read_only=None omits the trailing byte."""
        body = i32(protocol_version) + i64(last_zxid) + i32(timeout_ms) + i64(session_id) + buf(passwd)
        if read_only is not None:
            body += boolean(read_only)
        self.send_frame(body)
        data = self.recv_frame()
        r = Reader(data)
        rep = {"protocolVersion": r.i32(), "timeOut": r.i32(), "sessionId": r.i64(), "passwd": r.buf()}
        if r.remaining() >= 1:
            rep["readOnly"] = r.boolean()
        rep["trailing"] = r.remaining()
        rep["length"] = len(data)
        self.session_id = rep["sessionId"]
        self.passwd = rep["passwd"]
        self.connect_reply = rep
        return rep

    # -- requests
    def send(self, opcode, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.pending[xid] = opcode
        self.send_frame(i32(xid) + i32(opcode) + body)
        return xid

    def recv(self):
        """Next packet: ('event', type, state, path) or
        ('reply', xid, opcode, zxid, err, body)."""
        r = Reader(self.recv_frame())
        xid, zxid, err = r.i32(), r.i64(), r.i32()
        if xid == XID_NOTIFICATION:
            return ("event", r.i32(), r.i32(), r.ustr())
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        opcode = self.pending.pop(xid, None)
        if opcode is None:
            raise ValueError("reply for unknown xid %d (err %d)" % (xid, err))
        body = None
        if err == 0:
            body = decode_body(opcode, r)
            if r.remaining():
                raise ValueError("%d trailing bytes in reply to op %d" % (r.remaining(), opcode))
        return ("reply", xid, opcode, zxid, err, body)

    def call(self, opcode, body=b"", xid=None):
        """Send one request; return (events received before its reply, reply)."""
        xid = self.send(opcode, body, xid)
        events = []
        while True:
            pkt = self.recv()
            if pkt[0] == "event":
                events.append(pkt)
                continue
            if pkt[1] != xid:
                raise ValueError("reply out of order: wanted xid %d, got %r" % (xid, pkt))
            return events, pkt

    def ping(self):
        return self.call(PING, b"", xid=XID_PING)

    def close_session(self):
        return self.call(CLOSE_SESSION)


def four_letter(port, word, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode("utf-8", "replace")
            out += chunk
    finally:
        s.close()
