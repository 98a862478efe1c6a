"""Paddock alone: ZooKeeper 3.9 behaviour the 3.8 reference cannot judge,
hostile input, and slow server-side timers."""

import socket
import struct
import time

import jute
from jute import Closed, Conn, i32, i64, path_version, path_watch, ustr


def session(port, **kw):
    c = Conn(port)
    c.connect(**kw)
    return c


def ok(c, op, body=b""):
    events, rep = c.call(op, body)
    assert rep[4] == 0, "op %d failed with %d" % (op, rep[4])
    return events, rep[5]


def err(c, op, body=b""):
    return c.call(op, body)[1][4]


# ------------------------------------------------------------ 3.9 semantics

def test_standalone_check_3_9(paddock):
    c = session(paddock.port)
    ok(c, jute.CREATE, jute.create_body("/chk39", b"x"))
    assert err(c, jute.CHECK, path_version("/chk39", 0)) == 0
    assert err(c, jute.CHECK, path_version("/chk39", -1)) == 0
    assert err(c, jute.CHECK, path_version("/chk39", 4)) == -103
    assert err(c, jute.CHECK, path_version("/chk39-missing", -1)) == -101


def test_remove_persistent_watches_3_9(paddock):
    w = session(paddock.port)
    a = session(paddock.port)
    ok(a, jute.CREATE, jute.create_body("/rw39"))
    ok(w, jute.ADD_WATCH, ustr("/rw39") + i32(0))
    ok(w, jute.ADD_WATCH, ustr("/rw39") + i32(1))
    assert err(w, jute.CHECK_WATCHES, ustr("/rw39") + i32(4)) == 0
    assert err(w, jute.CHECK_WATCHES, ustr("/rw39") + i32(5)) == 0
    assert err(w, jute.REMOVE_WATCHES, ustr("/rw39") + i32(4)) == 0
    assert err(w, jute.REMOVE_WATCHES, ustr("/rw39") + i32(4)) == -121
    ok(a, jute.SET_DATA, jute.set_data_body("/rw39", b"1"))
    events, _ = w.ping()
    # only the recursive watch is left: one NodeDataChanged
    assert [(e[1], e[3]) for e in events] == [(3, "/rw39")]
    assert err(w, jute.REMOVE_WATCHES, ustr("/rw39") + i32(5)) == 0
    ok(a, jute.SET_DATA, jute.set_data_body("/rw39", b"2"))
    events, _ = w.ping()
    assert events == []


def test_exists_answers_without_read_permission(paddock):
    """As ZooKeeper up to 3.8.3/3.9.1 and Debian's patched 3.8.0 do (the
    differential reference); 3.8.4+/3.9.2+ answer NoAuth (ZOOKEEPER-2590).
    getData still needs READ."""
    a = session(paddock.port)
    a.call(jute.AUTH, i32(0) + ustr("digest") + jute.buf(b"u:p"), xid=jute.XID_AUTH)
    ok(a, jute.CREATE, jute.create_body("/private39", b"s", [(31, "auth", "")]))
    b = session(paddock.port)
    assert err(b, jute.EXISTS, path_watch("/private39")) == 0
    assert err(b, jute.GET_DATA, path_watch("/private39")) == -102


def test_empty_container_is_reaped(paddock):
    """A container that had a child and lost it goes away (ZooKeeper's
    default check interval is 60 s; allow 75 s)."""
    c = session(paddock.port)
    ok(c, jute.CREATE_CONTAINER, jute.create_body("/reap", b"", flags=jute.CONTAINER))
    ok(c, jute.CREATE, jute.create_body("/reap/child"))
    ok(c, jute.DELETE, path_version("/reap/child"))
    deadline = time.monotonic() + 75
    while time.monotonic() < deadline:
        if err(c, jute.EXISTS, path_watch("/reap")) == -101:
            return
        time.sleep(0.5)
    raise AssertionError("empty container /reap still exists after 75 s")


# ------------------------------------------------------------ hostile input

def canary(port):
    """A real session that must keep working, with data that must survive."""
    c = session(port)
    name = "/canary-%d" % int(time.monotonic() * 1e6)
    ok(c, jute.CREATE, jute.create_body(name, b"alive"))
    return c, name


def assert_still_serving(port, c, name):
    _, (data, stat) = ok(c, jute.GET_DATA, path_watch(name))
    assert data == b"alive"
    ok(c, jute.SET_DATA, jute.set_data_body(name, b"alive"))
    fresh = session(port)
    _, (data, _) = ok(fresh, jute.GET_DATA, path_watch(name))
    assert data == b"alive"


def raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def closed_within(s, wait=5.0):
    s.settimeout(wait)
    try:
        while True:
            if not s.recv(4096):
                return True
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.close()


def test_garbage_instead_of_connect_request(paddock):
    c, name = canary(paddock.port)
    s = raw(paddock.port)
    s.sendall(struct.pack(">i", 12) + b"\xde\xad\xbe\xef" * 3)
    assert closed_within(s)
    assert_still_serving(paddock.port, c, name)


def test_truncated_connect_frame(paddock):
    c, name = canary(paddock.port)
    s = raw(paddock.port)
    s.sendall(struct.pack(">i", 44) + b"\x00" * 10)  # promise 44 bytes, send 10, then hang up
    s.shutdown(socket.SHUT_WR)
    assert closed_within(s)
    assert_still_serving(paddock.port, c, name)


def test_negative_frame_length(paddock):
    c, name = canary(paddock.port)
    s = raw(paddock.port)
    s.sendall(struct.pack(">i", -5))
    assert closed_within(s)
    assert_still_serving(paddock.port, c, name)


def test_negative_length_after_session(paddock):
    c, name = canary(paddock.port)
    v = session(paddock.port)
    v.send_raw(struct.pack(">i", -1))
    assert v.is_closed(wait=5)
    assert_still_serving(paddock.port, c, name)


def test_frame_longer_than_jute_maxbuffer(paddock):
    c, name = canary(paddock.port)
    v = session(paddock.port)
    v.send_raw(struct.pack(">i", 0xfffff + 1) + b"\x00" * 1024)
    assert v.is_closed(wait=5)
    assert_still_serving(paddock.port, c, name)


def test_truncated_request_body(paddock):
    c, name = canary(paddock.port)
    v = session(paddock.port)
    # a create whose body stops in the middle of the path string
    v.send_frame(i32(1) + i32(jute.CREATE) + i32(100) + b"/abc")
    assert v.is_closed(wait=5)
    assert_still_serving(paddock.port, c, name)


def test_request_before_connect(paddock):
    c, name = canary(paddock.port)
    s = raw(paddock.port)
    s.sendall(i32(8) + i32(1) + i32(jute.GET_DATA))
    assert closed_within(s)
    assert_still_serving(paddock.port, c, name)


def test_unknown_opcode_does_not_hurt_others(paddock):
    c, name = canary(paddock.port)
    v = session(paddock.port)
    try:
        _, rep = v.call(12345, b"\x01\x02")
        assert rep[4] == -6  # Unimplemented, as ZooKeeper answers
    except Closed:
        pass  # ZooKeeper closes after answering; either way the server lives on
    assert_still_serving(paddock.port, c, name)


def test_max_size_data_is_accepted_and_oversize_refused(paddock):
    c, name = canary(paddock.port)
    big = b"x" * (1024 * 1024 - 1024)  # just under jute.maxbuffer with headers
    ok(c, jute.CREATE, jute.create_body(name + "-big", big))
    _, (data, _) = ok(c, jute.GET_DATA, path_watch(name + "-big"))
    assert data == big
    v = session(paddock.port)
    v.send(jute.CREATE, jute.create_body(name + "-huge", b"y" * (1024 * 1024 + 10)))
    assert v.is_closed(wait=5)
    assert_still_serving(paddock.port, c, name)
    assert err(c, jute.EXISTS, path_watch(name + "-huge")) == -101


def test_many_garbage_connections_then_work(paddock):
    c, name = canary(paddock.port)
    for i in range(50):
        s = raw(paddock.port)
        s.sendall(struct.pack(">i", i * 7919 - 100) + bytes(range(i % 256)) * 3)
        s.close()
    assert_still_serving(paddock.port, c, name)


def test_connect_without_readonly_then_full_session(paddock):
    c = Conn(paddock.port)
    rep = c.connect(read_only=None)
    assert rep["length"] == 36 and "readOnly" not in rep
    ok(c, jute.CREATE, jute.create_body("/noro", b"1", flags=jute.EPHEMERAL))
    _, (data, stat) = ok(c, jute.GET_DATA, path_watch("/noro"))
    assert data == b"1" and stat["ephemeralOwner"] == rep["sessionId"]
    ok(c, jute.CLOSE_SESSION)
    other = session(paddock.port)
    assert err(other, jute.EXISTS, path_watch("/noro")) == -101
