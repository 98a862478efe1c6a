#!/usr/bin/env python3
"""Differential fuzzer: one seeded random sequence of client operations is
run against Apache ZooKeeper and against Paddock, and every answer is
compared.

A seed decides everything: the clients (3 or 4 sessions, each with its own
auth: none, digest users, ip, super), and a sequence of operations over a
small path space where names collide often. Operations are every client
request ZooKeeper 3.8/3.9 has, sent through the raw-protocol client in
jute.py (so containers, TTL nodes, persistent and recursive watches,
removeWatches/checkWatches, multi and multiRead, getEphemerals,
getAllChildrenNumber, whoAmI and setWatches2 are all reachable), plus bad
paths and bad arguments, closeSession, dropped connections that reconnect
with setWatches2, session expiry, and TTL and container reaping under a
controlled wait.

The comparison covers every reply (error code and body: Stat fields except
times; zxids by rank; ephemeral owners by session identity) and every
client's ordered watch events. After each operation that can fire events,
every other client is flushed (a ping, or a sync in ensemble mode), so each
event is attributed to the step that caused it. The events one step fires
are compared as a sorted set only where ZooKeeper itself has no order
(session close, expiry and reaping delete nodes in hash order).

A divergence prints the seed, a shrunk sequence (the prefix up to the first
difference, then greedy removal of chunks and single operations), and both
transcripts around the difference. Known, deliberate differences are in
fuzz_known.py.

    python3 difffuzz.py --seeds 0-49              # standalone, 50 seeds
    python3 difffuzz.py --minutes 30 --seed-base 1000000
    python3 difffuzz.py --ensemble --minutes 30   # 3 servers each
    python3 difffuzz.py --seeds 17 --show         # print one seed's sequence
"""

import argparse
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fuzz_known  # noqa: E402
import jute  # noqa: E402
from jute import Closed, Timeout, i32, i64, ustr, boolean  # noqa: E402
from servers import PADDOCK_BIN, ZK_CLASSPATH, Server, free_port, ruok  # noqa: E402

TICK_MS = 250
REAP_CHECK_MS = 100
LONG_SESSION_MS = 30000
SHORT_SESSION_MS = 1000
# After a step that may make a container or TTL node reapable: long enough
# for both servers' reapers (every REAP_CHECK_MS) to have run and applied.
SETTLE_S = 0.6
# After dropping a short session: its timeout, ZooKeeper's tick rounding,
# the reaper-like expiry check, and a margin for a loaded machine.
EXPIRE_WAIT_S = (SHORT_SESSION_MS + 2 * TICK_MS) / 1000.0 + 0.9
KEEPALIVE_S = 0.25

SUPER_PW = b"super:fuzz"
AUTHS = {
    "alice": ("digest", b"alice:secret"),
    "bob": ("digest", b"bob:pw"),
    "ip": ("ip", b"127.0.0.1"),
    "super": ("digest", SUPER_PW),
}


def digest_id(user_pw):
    import base64
    import hashlib
    user = user_pw.split(b":")[0]
    return (user + b":" + base64.b64encode(hashlib.sha1(user_pw).digest())).decode()


ALICE_ID = digest_id(b"alice:secret")
BOB_ID = digest_id(b"bob:pw")
SUPER_DIGEST = digest_id(SUPER_PW)

ACLS = {
    "open": [(31, "world", "anyone")],
    "read": [(1, "world", "anyone")],
    "creator": [(31, "auth", "")],
    "alice": [(31, "digest", ALICE_ID)],
    "alice+read": [(31, "digest", ALICE_ID), (1, "world", "anyone")],
    "bob-rw": [(3, "digest", BOB_ID), (12, "world", "anyone")],
    "ip": [(31, "ip", "127.0.0.1")],
    "ip-other": [(31, "ip", "10.0.0.0/8"), (1, "world", "anyone")],
    "nocreate": [(27, "world", "anyone")],
    "nodelete": [(23, "world", "anyone")],
    "empty": [],
    "bad-scheme": [(31, "nosuch", "x")],
    "zero-perms": [(0, "world", "anyone")],
}
ACL_WEIGHTS = {"open": 40, "read": 6, "creator": 6, "alice": 8, "alice+read": 5, "bob-rw": 4,
               "ip": 4, "ip-other": 3, "nocreate": 3, "nodelete": 3, "empty": 1, "bad-scheme": 1,
               "zero-perms": 1}

NAMES = ["a", "b", "c"]
SEQ_NAMES = ["s%010d" % i for i in range(4)]
DATA = ["", "x", "hello", None, "\x00\xff", "d" * 300]  # latin-1 text, JSON-friendly

WRITE_OPS = {"create", "delete", "setData", "setACL", "multi", "close", "expire", "settle",
             "open", "reconnect", "disconnect", "deleteContainer", "reconfig"}


# ------------------------------------------------------------------ generator

class Gen:
    """Seeded generator of one operation sequence."""

    def __init__(self, seed, n_ops):
        self.r = random.Random(seed)
        self.seed = seed
        self.n_ops = n_ops
        r = self.r
        self.n_clients = r.choice([3, 3, 4])
        # Each client's auth profile, and its session timeout kind.
        profiles = ["none", "alice", "bob", "ip", "none", "alice"]
        if r.random() < 0.15:
            profiles.append("super")
        self.auth = [r.choice(profiles) for _ in range(self.n_clients)]
        self.auth[0] = r.choice(["none", "alice"])
        self.short = [r.random() < 0.3 for _ in range(self.n_clients)]
        self.short[0] = False
        # mixed-watch-modes: each (client, path) gets one kind of watch.
        self.watch_kind = {}
        # checkwatches-any-connection: who has ever watched each path.
        self.watchers = {}
        self.paths = self._paths()
        # Generation-time client states: open / closed / dropped (since op i).
        self.state = ["open"] * self.n_clients
        self.dropped_at = {}

    def _paths(self):
        ps = [""]
        for a in NAMES:
            ps.append("/" + a)
            for b in NAMES[:2]:
                ps.append("/%s/%s" % (a, b))
        ps += ["/a/a/a", "/b/a/c"]
        ps += ["/" + s for s in SEQ_NAMES[:3]] + ["/a/" + s for s in SEQ_NAMES[:2]]
        return ps

    def path(self):
        """A path: mostly under the run's root (relative, resolved at run
        time), sometimes special or malformed."""
        r = self.r
        x = r.random()
        if x < 0.90:
            return ["R", r.choice(self.paths)]
        if x < 0.95:
            return ["ABS", r.choice(["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota",
                                     "/zookeeper/x"])]
        bad = ["", "noslash", "R/", "R//a", "R/./a", "R/../a", "R/a\x00b", "R/a\x01b",
               "R/.", "R/a/", "R/a b", "R/\u00e9", "R/\ud83d"]
        if fuzz_known.generated("non-bmp-as-cesu8"):
            bad.append("R/\U0001F600")
        return ["BAD", r.choice(bad)]

    def wkind(self, client, path):
        if not fuzz_known.generated("mixed-watch-modes"):
            key = (client, json.dumps(path))
            if key not in self.watch_kind:
                self.watch_kind[key] = self.r.choice(["oneshot", "oneshot", "persistent", "recursive"])
            return self.watch_kind[key]
        return self.r.choice(["oneshot", "persistent", "recursive"])

    def watch_flag(self, client, path):
        w = self.r.random() < 0.35 and self.wkind(client, path) == "oneshot"
        if w:
            self.watched(client, path)
        return w

    def watched(self, client, path):
        self.watchers.setdefault(json.dumps(path), set()).add(client)

    def others_watch(self, client, path):
        return bool(self.watchers.get(json.dumps(path), set()) - {client})

    def data(self):
        return self.r.choice(DATA)

    def acl(self):
        return self.r.choices(list(ACL_WEIGHTS), weights=list(ACL_WEIGHTS.values()))[0]

    def version(self):
        return self.r.choice([-1, -1, -1, -1, 0, 0, 1, 2])

    def create_args(self):
        r = self.r
        p = self.path()
        x = r.random()
        if x < 0.55:
            opcode = r.choice([jute.CREATE, jute.CREATE2])
            flags = r.choices([0, 1, 2, 3, 4, 5, 6, 7, -1], weights=[40, 20, 10, 8, 4, 2, 2, 1, 1])[0]
        elif x < 0.75:
            opcode, flags = jute.CREATE_CONTAINER, r.choice([4, 4, 4, 0])
        else:
            opcode, flags = jute.CREATE_TTL, r.choice([5, 5, 6, 0, 4])
        ttl = None
        if opcode == jute.CREATE_TTL:
            ttl = r.choice([1, 1, 3600000, 3600000, 0, -1, 1 << 40])
            if flags not in (5, 6) and ttl < 0 and not fuzz_known.generated("createttl-nonttl-mode"):
                ttl = 1  # a negative ttl here makes ZooKeeper 3.8 exit
        elif flags in (5, 6) and fuzz_known.generated("malformed-body") and r.random() < 0.5:
            ttl = 1  # a ttl field after a CreateRequest: trailing bytes
        return [p, self.data(), self.acl(), flags, opcode, ttl]

    def sub_op(self):
        r = self.r
        k = r.choices(["create", "delete", "setData", "check", "getData"], weights=[35, 25, 20, 18, 2])[0]
        if k == "create":
            p, d, a, _, _, _ = self.create_args()
            opcode = r.choice([jute.CREATE, jute.CREATE, jute.CREATE2, jute.CREATE_CONTAINER, jute.CREATE_TTL])
            flags = r.choices([0, 1, 2, 3, 4, 5, 6, 7], weights=[30, 12, 8, 5, 8, 5, 3, 1])[0]
            ttl = r.choice([1, 3600000, 0]) if opcode == jute.CREATE_TTL else None
            return ["create", p, d, a, flags, opcode] + ([ttl] if ttl is not None else [])
        if k == "delete":
            return ["delete", self.path(), self.version()]
        if k == "setData":
            return ["setData", self.path(), self.data(), self.version()]
        if k == "check":
            return ["check", self.path(), self.version()]
        return ["getData", self.path()]

    def op(self, i):
        r = self.r
        # A dropped long session reconnects within a few steps.
        for c, at in list(self.dropped_at.items()):
            if i - at >= 6 or r.random() < 0.25:
                del self.dropped_at[c]
                self.state[c] = "open"
                return ["reconnect", c]
        live = [c for c in range(self.n_clients) if self.state[c] == "open"]
        closed = [c for c in range(self.n_clients) if self.state[c] == "closed"]
        if closed and (not live or r.random() < 0.08):
            c = r.choice(closed)
            self.state[c] = "open"
            return ["open", c]
        if not live:
            c = r.choice(list(self.dropped_at))
            del self.dropped_at[c]
            self.state[c] = "open"
            return ["reconnect", c]
        c = r.choice(live)
        kinds = {
            "create": 22, "delete": 10, "setData": 9, "exists": 9, "getData": 8, "getChildren": 6,
            "getChildren2": 3, "getACL": 3, "setACL": 4, "multi": 6, "multiRead": 2, "sync": 1,
            "addWatch": 3, "removeWatches": 2, "checkWatches": 1, "getEphemerals": 1,
            "getAllChildrenNumber": 1, "whoAmI": 1, "addAuth": 1, "close": 1.2, "disconnect": 1.5,
            "expire": 0.6, "settle": 1.2, "setWatches": 0.5, "unknownOp": 0.2, "deleteContainer": 0.3,
            "reconfig": 0.1,
        }
        k = r.choices(list(kinds), weights=list(kinds.values()))[0]
        if k == "create":
            return ["create", c] + self.create_args()
        if k == "delete":
            return ["delete", c, self.path(), self.version()]
        if k == "setData":
            return ["setData", c, self.path(), self.data(), self.version()]
        if k in ("exists", "getData", "getChildren", "getChildren2"):
            p = self.path()
            return [k, c, p, self.watch_flag(c, p)]
        if k == "getACL":
            return ["getACL", c, self.path()]
        if k == "setACL":
            return ["setACL", c, self.path(), self.acl(), r.choice([-1, -1, 0, 1])]
        if k == "multi":
            return ["multi", c, [self.sub_op() for _ in range(r.randint(0 if r.random() < 0.05 else 1, 4))]]
        if k == "multiRead":
            return ["multiRead", c, [[r.choice(["getData", "getChildren"]), self.path()]
                                     for _ in range(r.randint(1, 3))]]
        if k == "sync":
            return ["sync", c, self.path()]
        if k == "addWatch":
            p = self.path()
            kind = self.wkind(c, p)
            self.watched(c, p)
            if kind == "oneshot":
                return ["exists", c, p, True]
            mode = 1 if kind == "recursive" else 0
            return ["addWatch", c, p, mode]
        if k in ("removeWatches", "checkWatches"):
            p = self.path()
            types = [1, 2, 3, 3, 0, 6]
            if self.wkind(c, p) != "oneshot" and not fuzz_known.generated("watcher-types-3.9"):
                types = [3, 3, 3, 0, 6]
            if fuzz_known.generated("watcher-types-3.9"):
                types += [4, 5]
            if k == "checkWatches" and self.others_watch(c, p) and not fuzz_known.generated(
                    "checkwatches-any-connection"):
                k = "removeWatches"
            return [k, c, p, r.choice(types)]
        if k == "getEphemerals":
            return ["getEphemerals", c, r.choice(["R", "R/a", "/", "", "R/s"])]
        if k == "getAllChildrenNumber":
            return ["getAllChildrenNumber", c, self.path()]
        if k == "whoAmI":
            return ["whoAmI", c]
        if k == "addAuth":
            return ["addAuth", c, r.choice(["alice", "bob", "ip", "alice", "bad-scheme", "bad-digest"])]
        if k == "close":
            self.state[c] = "closed"
            return ["close", c]
        if k == "disconnect":
            if self.short[c]:
                return ["sync", c, self.path()]
            self.state[c] = "dropped"
            self.dropped_at[c] = i
            return ["disconnect", c]
        if k == "expire":
            if not self.short[c]:
                return ["settle"]
            self.state[c] = "closed"
            return ["expire", c]
        if k == "settle":
            return ["settle"]
        if k == "setWatches":
            return ["setWatches", c]
        if k == "unknownOp":
            return ["unknownOp", c, r.choice([10, 23, 99, 108, 1000])]
        if k == "deleteContainer":
            return ["deleteContainer", c, self.path()]
        if k == "reconfig":
            return ["reconfig", c]
        raise AssertionError(k)

    def ops(self):
        out = [self.op(i) for i in range(self.n_ops)]
        return out


def generate(seed, n_ops):
    g = Gen(seed, n_ops)
    return {"seed": seed, "clients": [{"auth": g.auth[i], "short": g.short[i]} for i in range(g.n_clients)],
            "ops": g.ops()}


# ------------------------------------------------------------------ servers

def base_config():
    return {
        "tickTime": str(TICK_MS),
        "maxSessionTimeout": "60000",
        "extendedTypesEnabled": "true",
        "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
        "znode.container.checkIntervalMs": str(REAP_CHECK_MS),
    }


class Ensemble:
    """Three members of one kind on loopback."""

    def __init__(self, kind, n=3):
        self.kind = kind
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="difffuzz-%s-" % kind)
        self.ports = [free_port() for _ in range(n)]
        self.procs = [None] * n

    def start(self):
        quorum = [free_port() for _ in range(self.n)]
        election = [free_port() for _ in range(self.n)]
        servers = "".join("server.%d=127.0.0.1:%d:%d;127.0.0.1:%d\n" % (i + 1, quorum[i], election[i], self.ports[i])
                          for i in range(self.n))
        for i in range(self.n):
            d = os.path.join(self.dir, "s%d" % (i + 1))
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = dict(base_config())
            cfg.update({"initLimit": "20", "syncLimit": "10", "dataDir": os.path.join(d, "data"),
                        "4lw.commands.whitelist": "*",
                        "admin.enableServer": "false", "maxClientCnxns": "0"})
            path = os.path.join(d, "zoo.cfg")
            with open(path, "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in cfg.items()) + servers)
            log = open(os.path.join(d, "server.log"), "ab")
            if self.kind == "zookeeper":
                props = os.path.join(d, "log4j.properties")
                with open(props, "w") as f:
                    f.write("log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n"
                            "log4j.appender.F.File=%s\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                            "log4j.appender.F.layout.ConversionPattern=%%d %%p %%c{1} %%m%%n\n"
                            % os.path.join(d, "zookeeper.log"))
                cmd = ["java", "-Xmx200m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                       "-Dlog4j.configuration=file:" + props, "-Dzookeeper.admin.enableServer=false",
                       "-Dznode.container.checkIntervalMs=%d" % REAP_CHECK_MS,
                       "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", path]
            else:
                cmd = [PADDOCK_BIN, path]
            self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d,
                                             stdin=subprocess.DEVNULL)
            log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if all(self._serving(p) for p in self.ports):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("%s ensemble did not serve within 90 s (logs in %s)" % (self.kind, self.dir))

    @staticmethod
    def _serving(port):
        try:
            out = jute.four_letter(port, "srvr", timeout=1.0)
        except OSError:
            return False
        return "Mode: leader" in out or "Mode: follower" in out

    def stop(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        self.procs = [None] * self.n

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Standalone:
    def __init__(self, kind):
        extra = dict(base_config())
        self.srv = Server(kind, extra, tick_ms=TICK_MS)
        self.kind = kind

    def start(self):
        self.srv.start()
        self.ports = [self.srv.port]
        return self

    def cleanup(self):
        self.srv.cleanup()


def wait_serving(cluster, timeout_s=60):
    """ruok answers before ZooKeeper takes sessions: wait until every member
    opens and closes one."""
    deadline = time.monotonic() + timeout_s
    for port in cluster.ports:
        while True:
            try:
                c = FConn(port, timeout=5.0)
                try:
                    if c.connect(timeout_ms=LONG_SESSION_MS)["sessionId"] != 0:
                        c.close_session()
                        break
                finally:
                    c.close_socket()
            except (Closed, Timeout, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("%s on port %d takes no session" % (cluster.kind, port))
            time.sleep(0.3)
    return cluster


def start_pair(ensemble):
    kinds = ("zookeeper", "paddock")
    made = []
    try:
        for k in kinds:
            made.append(wait_serving((Ensemble(k) if ensemble else Standalone(k)).start()))
    except Exception:
        for m in made:
            m.cleanup()
        raise
    return made


# ------------------------------------------------------------------ executor

class FConn(jute.Conn):
    """jute.Conn that keeps the zxid of notifications too."""

    def recv(self):
        r = jute.Reader(self.recv_frame())
        xid, zxid, err = r.i32(), r.i64(), r.i32()
        if xid == jute.XID_NOTIFICATION:
            return ("event", r.i32(), r.i32(), r.ustr(), zxid)
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        opcode = self.pending.pop(xid, None)
        if opcode is None:
            raise ValueError("reply for unknown xid %d (err %d)" % (xid, err))
        body = None
        if err == 0:
            body = jute.decode_body(opcode, r)
            if r.remaining():
                raise ValueError("%d trailing bytes in reply to op %d" % (r.remaining(), opcode))
        return ("reply", xid, opcode, zxid, err, body)


class Client:
    def __init__(self, idx, spec, port):
        self.idx = idx
        self.auth = spec["auth"]
        self.timeout = SHORT_SESSION_MS if spec["short"] else LONG_SESSION_MS
        self.port = port
        self.conn = None
        self.session = None
        self.passwd = None
        self.generation = -1
        self.extra_auth = []
        self.last_sent = 0.0
        # Watches as a client library tracks them, for setWatches2.
        self.w = {"data": set(), "exist": set(), "child": set(), "persistent": set(), "recursive": set()}
        self.last_zxid = 0


class Run:
    """Executes one sequence against one cluster and records a transcript."""

    def __init__(self, cluster, seq, root, ensemble):
        self.cluster = cluster
        self.seq = seq
        self.root = root
        self.ensemble = ensemble
        ports = cluster.ports
        self.clients = [Client(i, spec, ports[i % len(ports)]) for i, spec in enumerate(seq["clients"])]
        self.log = []
        self.sessions = {}
        self.step = -1
        self.reapable = False
        self.last_err = None
        self.applied = {}

    # -- helpers
    def rec(self, **kw):
        kw["step"] = self.step
        self.log.append(kw)

    def resolve(self, p):
        kind, v = p
        if kind == "R":
            return self.root + v
        if kind == "ABS":
            return v
        return v.replace("R", self.root, 1) if v.startswith("R") else v

    def keepalive(self):
        now = time.monotonic()
        for c in self.clients:
            if c.conn is not None and c.timeout == SHORT_SESSION_MS and now - c.last_sent > KEEPALIVE_S:
                self._quiet_ping(c)

    def _quiet_ping(self, c):
        try:
            events, _ = self._call(c, jute.PING, b"", xid=jute.XID_PING)
        except (Closed, Timeout, OSError):
            return
        # Steps flush every client, so nothing should be pending; if it is,
        # the transcript must show it.
        for e in events:
            self.rec(t="event-during-keepalive", c=c.idx, type=e[1], state=e[2], path=e[3])

    def _call(self, c, opcode, body=b"", xid=None):
        c.last_sent = time.monotonic()
        events, rep = c.conn.call(opcode, body, xid)
        c.last_zxid = max(c.last_zxid, c.conn.last_zxid)
        return events, rep

    def connect(self, c, resume):
        try:
            conn = FConn(c.port, timeout=15.0)
        except OSError as e:
            self.rec(t="connect-refused", c=c.idx, why=str(e)[:40])
            return False
        try:
            if resume:
                rep = conn.connect(session_id=c.session, passwd=c.passwd, timeout_ms=c.timeout,
                                   last_zxid=c.last_zxid)
            else:
                rep = conn.connect(timeout_ms=c.timeout)
        except (Closed, Timeout) as e:
            conn.close_socket()
            self.rec(t="connect-failed", c=c.idx, why=type(e).__name__)
            return False
        c.last_sent = time.monotonic()
        if rep["sessionId"] == 0:
            self.rec(t="connect-rejected", c=c.idx, timeOut=rep["timeOut"])
            conn.close_socket()
            return False
        if not resume:
            c.generation += 1
            c.session = rep["sessionId"]
            c.passwd = rep["passwd"]
            c.last_zxid = 0
            c.extra_auth = []
            for k in c.w:
                c.w[k] = set()
            self.sessions[rep["sessionId"]] = "c%d.%d" % (c.idx, c.generation)
        conn.last_zxid = c.last_zxid
        c.conn = conn
        self.rec(t="connect", c=c.idx, resume=resume, timeOut=rep["timeOut"],
                 session=self.sessions.get(rep["sessionId"], "?"), readOnly=rep.get("readOnly"))
        for a in ([c.auth] if c.auth != "none" else []) + c.extra_auth:
            self.add_auth(c, a, record=not resume)
        return True

    def add_auth(self, c, name, record=True):
        if name == "bad-scheme":
            scheme, cred = "nosuch", b"x"
        elif name == "bad-digest":
            scheme, cred = "digest", b"nocolon"
        else:
            scheme, cred = AUTHS[name]
        self.request(c, jute.AUTH, i32(0) + ustr(scheme) + jute.buf(cred), xid=jute.XID_AUTH, record=record)

    def reopen(self, c):
        """The server closed the connection: reconnect with the same session,
        as a client library does, and re-register auth and watches."""
        if c.conn is not None:
            c.conn.close_socket()
            c.conn = None
        if c.session is None:
            return
        if self.connect(c, resume=True):
            self.set_watches(c, record=True)

    def request(self, c, opcode, body=b"", xid=None, record=True, reopen=True):
        if c.conn is None:
            self.rec(t="not-connected", c=c.idx, op=opcode)
            return None
        try:
            events, rep = self._call(c, opcode, body, xid)
        except (Closed, Timeout, OSError) as e:
            self.rec(t="no-reply", c=c.idx, op=opcode, why=type(e).__name__)
            c.conn.close_socket()
            c.conn = None
            if reopen:
                self.reopen(c)
            return None
        self.events(c, events)
        _, _, op, zxid, err, value = rep
        self.last_err = err if not (op == jute.MULTI and err == 0 and value and
                                    any(x[0] == "error" for x in value)) else -1
        if record:
            # fuzz_known: follower-sync-zxid. A ZooKeeper follower may answer
            # a sync before it has applied a commit of another session.
            zkey = "szxid" if self.ensemble and op == jute.SYNC else "zxid"
            self.rec(t="reply", c=c.idx, op=op, err=err, body=unordered(op, value), **{zkey: zxid})
        if err == 0 and opcode == jute.AUTH and xid == jute.XID_AUTH:
            pass
        return err, value

    def events(self, c, events):
        for e in events:
            _, typ, state, path, zxid = e
            self.rec(t="event", c=c.idx, type=typ, state=state, path=path, ezxid=zxid)
            self.forget_watch(c, typ, path)

    def forget_watch(self, c, typ, path):
        if typ in (1, 2, 3):
            c.w["data"].discard(path)
            c.w["exist"].discard(path)
        if typ in (2, 4):
            c.w["child"].discard(path)

    def flush_others(self, skip=None, sort_events=False):
        start = len(self.log)
        for c in self.clients:
            if c.idx == skip or c.conn is None:
                continue
            if self.ensemble:
                self.request(c, jute.SYNC, ustr("/"))
            else:
                self.request(c, jute.PING, xid=jute.XID_PING)
        if sort_events:
            self.sort_events_since(start)

    def sort_events_since(self, start):
        """ZooKeeper deletes a closed session's ephemerals (and reaps
        nodes) in hash-set order: the events of one such step are a set."""
        tail = self.log[start:]
        out, run_ = [], []
        for e in tail:
            if e["t"] == "event":
                run_.append(e)
                continue
            out.extend(sorted(run_, key=lambda x: (x["c"], x["path"] or "", x["type"])))
            run_ = []
            out.append(e)
        out.extend(sorted(run_, key=lambda x: (x["c"], x["path"] or "", x["type"])))
        self.log[start:] = out

    def set_watches(self, c, record=True, old=False):
        w = c.w
        if old:
            body = jute.set_watches_body(c.last_zxid, sorted(w["data"]), sorted(w["exist"]), sorted(w["child"]))
            opcode = jute.SET_WATCHES
        else:
            body = jute.set_watches_body(c.last_zxid, sorted(w["data"]), sorted(w["exist"]), sorted(w["child"]),
                                         sorted(w["persistent"]), sorted(w["recursive"]))
            opcode = jute.SET_WATCHES2
        if not any(w.values()) and not old:
            return
        self.request(c, opcode, body, xid=jute.XID_SET_WATCHES, record=record)

    def settle(self, wait_s=SETTLE_S):
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            self.keepalive()
            time.sleep(0.05)

    # -- operations
    def execute(self):
        for c in self.clients:
            self.step = -1
            self.connect(c, resume=False)
            self.flush_others(skip=c.idx)
        # The run's root, so most paths have a parent.
        self.request(self.clients[0], jute.CREATE, jute.create_body(self.root))
        self.flush_others(skip=0)
        for i, op in enumerate(self.seq["ops"]):
            self.step = i
            self.keepalive()
            self.do(op)
        self.step = len(self.seq["ops"])
        self.finish()
        return self.log

    def do(self, op):
        kind = op[0]
        if kind == "settle":
            self.settle()
            self.flush_others(sort_events=True)
            return
        c = self.clients[op[1]]
        if kind == "open":
            if c.conn is None:
                self.connect(c, resume=False)
                self.flush_others(skip=c.idx)
            return
        if kind == "reconnect":
            if c.conn is None and c.session is not None:
                if self.connect(c, resume=True):
                    self.set_watches(c)
            return
        if c.conn is None:
            self.rec(t="not-connected", c=c.idx, op=kind)
            return
        self.last_err = None
        getattr(self, "op_" + kind)(c, *op[2:])
        if kind in WRITE_OPS:
            # Only a write that took effect can make a node reapable.
            mutating = kind in ("close", "expire") or (self.last_err == 0 and (
                kind in ("delete", "multi", "deleteContainer")
                or (kind == "create" and op[6] in (jute.CREATE_CONTAINER, jute.CREATE_TTL))))
            sort = kind in ("close", "expire")
            if self.reapable and mutating:
                self.settle()
                sort = True
            self.flush_others(skip=c.idx if kind not in ("close", "expire", "disconnect") else None,
                              sort_events=sort)
            # The writer's own events arrive before its next reply.
            if c.conn is not None and kind not in ("close", "expire", "disconnect"):
                pass

    def note_reapable(self, opcode, flags, err):
        if err == 0 and (opcode in (jute.CREATE_CONTAINER, jute.CREATE_TTL) or flags in (4, 5, 6)):
            self.reapable = True

    def op_create(self, c, p, data, acl, flags, opcode, ttl):
        path = self.resolve(p)
        body = ustr(path) + jute.buf(raw(data)) + jute.acls(ACLS[acl]) + i32(flags)
        if ttl is not None:
            body += i64(ttl)
        r = self.request(c, opcode, body)
        if r:
            self.note_reapable(opcode, flags, r[0])

    def op_delete(self, c, p, version):
        self.request(c, jute.DELETE, jute.path_version(self.resolve(p), version))

    def op_setData(self, c, p, data, version):
        self.request(c, jute.SET_DATA, jute.set_data_body(self.resolve(p), raw(data), version))

    def _watch_read(self, c, opcode, p, watch):
        path = self.resolve(p)
        r = self.request(c, opcode, jute.path_watch(path, watch))
        if r and watch:
            err = r[0]
            if opcode == jute.EXISTS and err in (0, -101):
                c.w["data" if err == 0 else "exist"].add(path)
            elif err == 0 and opcode == jute.GET_DATA:
                c.w["data"].add(path)
            elif err == 0:
                c.w["child"].add(path)

    def op_exists(self, c, p, watch):
        self._watch_read(c, jute.EXISTS, p, watch)

    def op_getData(self, c, p, watch):
        self._watch_read(c, jute.GET_DATA, p, watch)

    def op_getChildren(self, c, p, watch):
        self._watch_read(c, jute.GET_CHILDREN, p, watch)

    def op_getChildren2(self, c, p, watch):
        self._watch_read(c, jute.GET_CHILDREN2, p, watch)

    def op_getACL(self, c, p):
        self.request(c, jute.GET_ACL, ustr(self.resolve(p)))

    def op_setACL(self, c, p, acl, version):
        self.request(c, jute.SET_ACL, jute.set_acl_body(self.resolve(p), ACLS[acl], version))

    def op_multi(self, c, subs):
        ops = []
        for s in subs:
            k = s[0]
            if k == "create":
                _, p, data, acl, flags, opcode = s[:6]
                body = ustr(self.resolve(p)) + jute.buf(raw(data)) + jute.acls(ACLS[acl]) + i32(flags)
                if opcode == jute.CREATE_TTL:
                    body += i64(s[6])
                ops.append((opcode, body))
            elif k == "delete":
                ops.append((jute.DELETE, jute.path_version(self.resolve(s[1]), s[2])))
            elif k == "setData":
                ops.append((jute.SET_DATA, jute.set_data_body(self.resolve(s[1]), raw(s[2]), s[3])))
            elif k == "check":
                ops.append((jute.CHECK, jute.path_version(self.resolve(s[1]), s[2])))
            else:
                ops.append((jute.GET_DATA, jute.path_watch(self.resolve(s[1]), False)))
        r = self.request(c, jute.MULTI, jute.multi_body(ops))
        if r and r[0] == 0 and r[1] and all(x[0] != "error" for x in r[1]):
            for s in subs:
                if s[0] == "create":
                    self.note_reapable(s[5] if s[4] in (4, 5, 6) else jute.CREATE, s[4], 0)

    def op_multiRead(self, c, subs):
        ops = [(jute.GET_DATA if k == "getData" else jute.GET_CHILDREN, jute.path_watch(self.resolve(p), False))
               for k, p in subs]
        self.request(c, jute.MULTI_READ, jute.multi_body(ops))

    def op_sync(self, c, p):
        self.request(c, jute.SYNC, ustr(self.resolve(p)))

    def op_addWatch(self, c, p, mode):
        path = self.resolve(p)
        r = self.request(c, jute.ADD_WATCH, ustr(path) + i32(mode))
        if r and r[0] == 0:
            c.w["recursive" if mode == 1 else "persistent"].add(path)

    def op_removeWatches(self, c, p, wtype):
        path = self.resolve(p)
        r = self.request(c, jute.REMOVE_WATCHES, ustr(path) + i32(wtype))
        if r and r[0] == 0:
            keys = {1: ["child"], 2: ["data", "exist"], 3: ["data", "exist", "child", "persistent", "recursive"],
                    4: ["persistent"], 5: ["recursive"]}.get(wtype, [])
            for k in keys:
                c.w[k].discard(path)

    def op_checkWatches(self, c, p, wtype):
        self.request(c, jute.CHECK_WATCHES, ustr(self.resolve(p)) + i32(wtype))

    def op_getEphemerals(self, c, prefix):
        self.request(c, jute.GET_EPHEMERALS, ustr(prefix.replace("R", self.root, 1) if prefix.startswith("R")
                                                  else prefix))

    def op_getAllChildrenNumber(self, c, p):
        self.request(c, jute.GET_ALL_CHILDREN_NUMBER, ustr(self.resolve(p)))

    def op_whoAmI(self, c):
        self.request(c, jute.WHO_AM_I)

    def op_addAuth(self, c, name):
        before = c.conn
        self.add_auth(c, name)
        if c.conn is before and c.conn is not None and name in AUTHS:
            c.extra_auth.append(name)

    def op_setWatches(self, c):
        self.set_watches(c, old=True)

    def op_unknownOp(self, c, opcode):
        """Both servers answer Unimplemented, then close the connection; a
        request sent before the close lands would race it, so wait for the
        close and reopen, as a client library does after a drop."""
        if self.request(c, opcode, b"") is None or c.conn is None:
            return
        self.rec(t="closed-after-unknown-op", c=c.idx, closed=c.conn.is_closed(wait=3.0))
        c.conn.close_socket()
        c.conn = None
        self.reopen(c)

    def op_deleteContainer(self, c, p):
        self.request(c, jute.DELETE_CONTAINER, ustr(self.resolve(p)))

    def op_reconfig(self, c):
        body = ustr("") + ustr("") + ustr(None) + i64(-1)
        self.request(c, jute.RECONFIG, body)

    def op_close(self, c):
        start = len(self.log)
        self.request(c, jute.CLOSE_SESSION, reopen=False)
        # The closing session's own events (its ephemerals deleted) come
        # before the reply in ZooKeeper's hash-set order: a set here too.
        self.sort_events_since(start)
        if c.conn is not None:
            self.rec(t="closed-after-closeSession", c=c.idx, closed=c.conn.is_closed(wait=3.0))
            c.conn.close_socket()
            c.conn = None
        c.session = None

    def op_disconnect(self, c):
        c.conn.close_socket()
        c.conn = None
        self.rec(t="disconnected", c=c.idx)

    def op_expire(self, c):
        c.conn.close_socket()
        c.conn = None
        c.session = None
        self.rec(t="dropped-to-expire", c=c.idx)
        self.settle(EXPIRE_WAIT_S)

    def finish(self):
        for c in self.clients:
            if c.conn is None and c.session is not None:
                self.connect(c, resume=True)
        for c in self.clients:
            if c.conn is not None:
                self.op_close(c)
                self.flush_others(skip=c.idx, sort_events=True)

    def close_sockets(self):
        for c in self.clients:
            if c.conn is not None:
                c.conn.close_socket()
                c.conn = None


def raw(data):
    return None if data is None else data.encode("latin-1")


def unordered(op, value):
    if value is None:
        return value
    if op in (jute.GET_CHILDREN, jute.GET_EPHEMERALS, jute.WHO_AM_I):
        return sorted(value)
    if op == jute.GET_CHILDREN2:
        return [sorted(value[0]), value[1]]
    if op == jute.MULTI_READ:
        return [[r[0], sorted(r[1])] if r[0] == "getChildren" and r[1] is not None else list(r) for r in value]
    return value


def cleanup_tree(cluster, root):
    """Deletes what a run left (as the super user): the root's subtree and
    anything created under /zookeeper."""
    c = FConn(cluster.ports[0], timeout=15.0)
    try:
        c.connect(timeout_ms=LONG_SESSION_MS)
        c.call(jute.AUTH, i32(0) + ustr("digest") + jute.buf(SUPER_PW), xid=jute.XID_AUTH)

        def rm(p):
            _, rep = c.call(jute.GET_CHILDREN, jute.path_watch(p, False))
            if rep[4] == 0:
                for k in rep[5]:
                    rm(p.rstrip("/") + "/" + k)
            if p not in ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"):
                c.call(jute.DELETE, jute.path_version(p, -1))

        rm(root)
        # Anything a run made at the top (a sequential create at "/").
        _, rep = c.call(jute.GET_CHILDREN, jute.path_watch("/", False))
        for k in rep[5] or []:
            if k != "zookeeper":
                rm("/" + k)
        _, rep = c.call(jute.GET_CHILDREN, jute.path_watch("/zookeeper", False))
        for k in rep[5] or []:
            if k not in ("config", "quota"):
                rm("/zookeeper/" + k)
        _, rep = c.call(jute.GET_CHILDREN, jute.path_watch("/zookeeper/quota", False))
        for k in rep[5] or []:
            rm("/zookeeper/quota/" + k)
        c.close_session()
    finally:
        c.close_socket()


# ------------------------------------------------------------------ comparison

ZXID_KEYS = {"czxid", "mzxid", "pzxid", "zxid"}
TIME_KEYS = {"ctime", "mtime"}


def normalise(log, sessions, root):
    """zxids by rank, times masked, session ids by client identity, the
    run's root path by a fixed name."""
    zx = set()

    def scan(v, key=None):
        if isinstance(v, dict):
            for k, x in v.items():
                scan(x, k)
        elif isinstance(v, (list, tuple)):
            for x in v:
                scan(x, key)
        elif key in ZXID_KEYS and isinstance(v, int) and v > 0:
            zx.add(v)

    scan(log)
    rank = {z: i + 1 for i, z in enumerate(sorted(zx))}
    def norm(v, key=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if k == "ezxid":  # fuzz_known: event-zxid
                    continue
                if k == "szxid":  # fuzz_known: follower-sync-zxid
                    continue
                out[k] = norm(x, k)
            return out
        if isinstance(v, (list, tuple)):
            return [norm(x, key) for x in v]
        if isinstance(v, bytes):
            return v.hex() if len(v) < 40 else "bytes[%d]:%s" % (len(v), v[:8].hex())
        if isinstance(v, str):
            return v.replace(root, "<R>")
        if key in ZXID_KEYS and isinstance(v, int):
            return rank.get(v, v)
        if key in TIME_KEYS and isinstance(v, int):
            # Times are not compared (each server stamps its own clock; the
            # config node's mtime is ZooKeeper's start time, 0 in Paddock).
            return "T"
        if key == "ephemeralOwner" and isinstance(v, int) and v > 0:
            return sessions.get(v, "unknown-session")
        return v

    return [norm(e) for e in log]


def first_difference(a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            return i
    return None


# ------------------------------------------------------------------ driver

class Pair:
    """A ZooKeeper and a Paddock (each standalone or an ensemble) that runs
    sequences side by side, each run under its own root path."""

    def __init__(self, ensemble=False):
        self.ensemble = ensemble
        self.counter = 0
        self.zk, self.pd = start_pair(ensemble)

    def restart(self):
        self.close()
        self.zk, self.pd = start_pair(self.ensemble)

    def close(self):
        for s in (self.zk, self.pd):
            try:
                s.cleanup()
            except Exception:
                pass

    def run_one(self, cluster, seq, root):
        r = Run(cluster, seq, root, self.ensemble)
        try:
            log = r.execute()
        finally:
            r.close_sockets()
        try:
            cleanup_tree(cluster, root)
        except Exception as e:  # the transcript already shows what went wrong
            log.append({"t": "cleanup-failed", "why": repr(e)[:80], "step": len(seq["ops"])})
        return normalise(log, r.sessions, root)

    def compare(self, seq):
        """(zookeeper transcript, paddock transcript, index of the first
        difference or None)."""
        self.counter += 1
        root = "/f%d_%d" % (seq["seed"] % 100000, self.counter)
        a = self.run_one(self.zk, seq, root)
        b = self.run_one(self.pd, seq, root)
        return a, b, first_difference(a, b)


def signature(a, b, d):
    """What kind of difference: the entry kinds and opcodes on both sides."""
    def sig(t):
        e = t[d] if d < len(t) else {}
        return (e.get("t"), e.get("op"))
    return sig(a), sig(b)


def shrink(pair, seq, diff_step, sig, budget_s, say):
    """Reduces a divergent sequence while the same kind of difference stays:
    the prefix up to the divergent step, then the shortest window that ends
    there, then greedy removal of chunks and single operations."""
    deadline = time.monotonic() + budget_s
    ops = list(seq["ops"])

    def diverges(candidate):
        if not candidate:
            return False
        a, b, d = pair.compare(dict(seq, ops=candidate))
        return d is not None and signature(a, b, d) == sig

    if diff_step is not None and 0 <= diff_step < len(ops):
        prefix = ops[:diff_step + 1]
        if diverges(prefix):
            ops = prefix
            k = 1
            while k < len(ops) and time.monotonic() < deadline:
                if diverges(ops[-k:]):
                    ops = ops[-k:]
                    break
                k *= 2
    chunk = max(1, len(ops) // 2)
    while chunk >= 1 and len(ops) > 1 and time.monotonic() < deadline:
        i = 0
        changed = False
        while i < len(ops) and time.monotonic() < deadline:
            cand = ops[:i] + ops[i + chunk:]
            if diverges(cand):
                ops = cand
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return dict(seq, ops=ops)


def context(a, b, d, width=4):
    lines = []
    for i in range(max(0, d - width), min(max(len(a), len(b)), d + width + 1)):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        mark = "!!" if x != y else "  "
        lines.append("%s #%d zookeeper: %s" % (mark, i, json.dumps(x, sort_keys=True)))
        if x != y:
            lines.append("%s #%d paddock:   %s" % (mark, i, json.dumps(y, sort_keys=True)))
    return "\n".join(lines)


def entry_step(a, b, d):
    for t in (a, b):
        if d < len(t):
            return t[d].get("step")
    return None


def check_seed(pair, seed, n_ops, shrink_s, say, confirm=2):
    """Runs one seed; returns None or a report of a confirmed divergence."""
    seq = generate(seed, n_ops)
    a, b, d = pair.compare(seq)
    if d is None:
        return None
    first = context(a, b, d)
    step = entry_step(a, b, d)
    # A timing accident (a reaper or an expiry outside its wait) does not
    # reproduce; a real difference does.
    seen = 0
    for _ in range(confirm):
        _, _, d2 = pair.compare(seq)
        if d2 is not None:
            seen += 1
    if seen == 0:
        say("seed %d: a difference at step %s that did not reproduce in %d reruns (timing):\n%s"
            % (seed, step, confirm, first))
        return {"seed": seed, "confirmed": False, "context": first}
    say("seed %d: DIVERGES at step %s (reproduced %d/%d)\n%s" % (seed, step, seen, confirm, first))
    small = shrink(pair, seq, step, signature(a, b, d), shrink_s, say)
    a2, b2, d2 = pair.compare(small)
    report = {"seed": seed, "confirmed": True, "step": step, "context": first,
              "shrunk_ops": small["ops"], "clients": small["clients"]}
    say("seed %d shrunk to %d ops (clients %s):" % (seed, len(small["ops"]), json.dumps(small["clients"])))
    for i, op in enumerate(small["ops"]):
        say("  %3d %s" % (i, json.dumps(op)))
    say("replay: python3 difffuzz.py --replay '%s'" % json.dumps(
        {"seed": seed, "clients": small["clients"], "ops": small["ops"]}).replace("'", "\\u0027"))
    if d2 is not None:
        report["shrunk_context"] = context(a2, b2, d2)
        say(report["shrunk_context"])
    return report


def parse_seeds(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", help="seeds: 5, 0-99, 1,4,9")
    ap.add_argument("--minutes", type=float, help="run fresh seeds for this long")
    ap.add_argument("--seed-base", type=int, default=None, help="first seed of a --minutes run (default: from the clock)")
    ap.add_argument("--ops", type=int, default=200, help="operations per seed")
    ap.add_argument("--ensemble", action="store_true", help="3 servers each; clients spread over members")
    ap.add_argument("--shrink-seconds", type=float, default=120)
    ap.add_argument("--show", action="store_true", help="print the generated sequences and exit")
    ap.add_argument("--replay", help="run one sequence given as JSON (as a divergence prints it) and "
                                     "print both transcripts")
    ap.add_argument("--stop-after", type=int, default=5, help="stop after this many confirmed divergences")
    args = ap.parse_args(argv)

    def say(msg):
        print(msg, flush=True)

    if args.replay:
        seq = json.loads(args.replay)
        pair = Pair(ensemble=args.ensemble)
        try:
            a, b, d = pair.compare(seq)
        finally:
            pair.close()
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            say("%s #%d zookeeper: %s" % ("  " if x == y else "!!", i, json.dumps(x, sort_keys=True)))
            if x != y:
                say("!! #%d paddock:   %s" % (i, json.dumps(y, sort_keys=True)))
        say("same" if d is None else "differs from #%d" % d)
        return 0 if d is None else 1
    if args.seeds is None and args.minutes is None:
        ap.error("give --seeds, --minutes or --replay")
    if args.show:
        for s in parse_seeds(args.seeds):
            print(json.dumps(generate(s, args.ops), indent=1))
        return 0
    say("known differences (fuzz_known.py):\n" + fuzz_known.describe())
    import signal

    def on_term(*_):
        raise KeyboardInterrupt("terminated")
    signal.signal(signal.SIGTERM, on_term)
    pair = Pair(ensemble=args.ensemble)
    found, unconfirmed, done = [], [], 0
    t0 = time.monotonic()
    try:
        if args.minutes is not None:
            base = args.seed_base if args.seed_base is not None else int(time.time()) % 10 ** 6 * 1000
            seeds = iter(range(base, base + 10 ** 9))
            end = t0 + args.minutes * 60
        else:
            seeds = iter(parse_seeds(args.seeds))
            end = None
        for seed in seeds:
            if end is not None and time.monotonic() >= end:
                break
            rep = check_seed(pair, seed, args.ops, args.shrink_seconds, say)
            done += 1
            if rep is not None:
                (found if rep["confirmed"] else unconfirmed).append(rep)
                pair.restart()  # a divergent history would spill into later seeds
                if len(found) >= args.stop_after:
                    break
            if done % 10 == 0:
                say("%d seeds, %d divergent, %d unconfirmed, %.0f s" % (done, len(found), len(unconfirmed),
                                                                         time.monotonic() - t0))
    finally:
        pair.close()
    say("done: %d seeds (%s), %d ops each, %d divergent %s, %d unconfirmed %s, %.0f s"
        % (done, "ensemble" if args.ensemble else "standalone", args.ops, len(found),
           [r["seed"] for r in found], len(unconfirmed), [r["seed"] for r in unconfirmed],
           time.monotonic() - t0))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
