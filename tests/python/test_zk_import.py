"""Moving from Apache ZooKeeper: a real ZooKeeper 3.8 (low snapCount, TTL
nodes enabled) is driven through every node kind, dumped, and killed with
SIGKILL; `paddock` refuses its dataDir until `paddock import` has run, then
serves the same tree node for node (data, all 11 Stat fields, ACLs), the
open session resumes with ZooKeeper's id and password and keeps its
ephemeral past the session timeout, and a new write gets a zxid above every
imported one. Damaged copies of the dataDir are refused or fall back as
ZooKeeper's own restart does; `paddock inspect` agrees with ZooKeeper's
TxnLogToolkit and SnapshotFormatter."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, ACL, Id

import jute
from servers import PADDOCK_BIN, ZK_CLASSPATH, Server, free_port, ruok

# Long enough that a slow start of paddock cannot expire the session
# before the test resumes it.
SESSION_TIMEOUT_MS = 10000
STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")
DIGEST_AUTH = ("digest", "alice:secret")


def run(cmd, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def kazoo(port):
    c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10, auth_data=[DIGEST_AUTH],
                    connection_retry={"max_tries": 3, "delay": 0.2},
                    command_retry={"max_tries": 3, "delay": 0.2})
    c.start(timeout=15)
    return c


def dump(port):
    """path -> (data, the 11 stat fields, ACLs), the whole tree."""
    c = kazoo(port)
    try:
        out = {}
        stack = ["/"]
        while stack:
            p = stack.pop()
            data, st = c.get(p)
            acls, _ = c.get_acls(p)
            out[p] = (data, tuple(getattr(st, f) for f in STAT_FIELDS),
                      sorted((a.perms, a.id.scheme, a.id.id) for a in acls))
            for ch in c.get_children(p):
                stack.append(("" if p == "/" else p) + "/" + ch)
        return out
    finally:
        c.stop()
        c.close()


def drive(port):
    """Every node kind ZooKeeper has; returns the raw connection holding an
    open session with an ephemeral."""
    c = kazoo(port)
    try:
        c.create("/app", b"config-v1")
        c.create("/app/a/b/c", b"deep", makepath=True)
        c.create("/app/empty", b"")
        c.create("/app/binary", bytes(range(256)))
        for _ in range(5):
            c.create("/app/seq-", b"s", sequence=True)
        c.create("/app/digest", b"d", acl=[make_digest_acl("alice", "secret", all=True)])
        c.create("/app/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
        c.create("/app/readonly", b"r", acl=[ACL(1, Id("world", "anyone"))])
        c.create("/app/acl-changed", b"x")
        c.set_acls("/app/acl-changed", [ACL(31, Id("world", "anyone")), ACL(1, Id("ip", "10.0.0.0/8"))])
        t = c.transaction()
        t.create("/app/multi-1", b"m1")
        t.create("/app/multi-2", b"m2")
        t.set_data("/app", b"config-v2")
        t.commit()
        c.create("/app/create2", b"with stat", include_data=True)  # create2
        t = c.transaction()  # a check inside a multi
        t.check("/app/create2", 0)
        t.set_data("/app/create2", b"checked")
        t.commit()
        t = c.transaction()  # a failing multi: logged as an error txn
        t.create("/app/multi-3", b"m3")
        t.create("/app/multi-1", b"exists")
        t.commit()
        # Churn: enough txns (snapCount=50) for several snapshots and logs.
        c.create("/churn", b"")
        # A quota on it, as zkCli's setquota writes one: ZooKeeper keeps its
        # zookeeper_stats through the churn; the import must carry them
        # (a fuzzy snapshot's figures are recounted, as ZooKeeper does).
        c.create("/zookeeper/quota/churn", b"")
        c.create("/zookeeper/quota/churn/zookeeper_limits", b"count=100,bytes=-1")
        c.create("/zookeeper/quota/churn/zookeeper_stats", b"count=0,bytes=0")
        for i in range(240):
            p = "/churn/n%d" % (i % 17)
            if c.exists(p):
                if i % 3 == 0:
                    c.delete(p)
                else:
                    c.set(p, b"v%d" % i)
            else:
                c.create(p, b"c%d" % i)
        c.delete("/app/multi-2")
    finally:
        c.stop()
        c.close()
    raw = jute.Conn(port)
    raw.connect(timeout_ms=SESSION_TIMEOUT_MS)
    for opcode, body in [
        (jute.CREATE, jute.create_body("/app/eph", b"mine", flags=jute.EPHEMERAL)),
        (jute.CREATE, jute.create_body("/app/eph-seq-", b"", flags=jute.EPHEMERAL_SEQUENTIAL)),
        (jute.CREATE_CONTAINER, jute.create_body("/ctr", b"box", flags=jute.CONTAINER)),
        (jute.CREATE, jute.create_body("/ctr/child", b"keeps the container")),
        (jute.CREATE_TTL, jute.create_ttl_body("/ttl", b"t", ttl=3600 * 1000)),
        (jute.CREATE_TTL, jute.create_ttl_body("/ttl-seq-", b"t", flags=jute.PERSISTENT_SEQUENTIAL_WITH_TTL,
                                               ttl=3600 * 1000)),
        (jute.CREATE, jute.create_body("/app/null", None)),
    ]:
        _, rep = raw.call(opcode, body)
        assert rep[4] == 0, (opcode, rep)
    # A container that lost its child: ZooKeeper's reaper deletes it with
    # a deleteContainer txn (servers.py checks containers every 500 ms).
    for opcode, body in [
        (jute.CREATE_CONTAINER, jute.create_body("/reaped", b"", flags=jute.CONTAINER)),
        (jute.CREATE, jute.create_body("/reaped/c", b"")),
        (jute.DELETE, jute.path_version("/reaped/c")),
    ]:
        _, rep = raw.call(opcode, body)
        assert rep[4] == 0, (opcode, rep)
    deadline = time.monotonic() + 20
    while True:
        _, rep = raw.call(jute.EXISTS, jute.path_watch("/reaped"))
        if rep[4] != 0:
            break
        assert time.monotonic() < deadline, "ZooKeeper did not reap /reaped"
        time.sleep(0.2)
    # A second session that never comes back: its ephemeral must vanish
    # once paddock has served for the session timeout.
    gone = jute.Conn(port)
    gone.connect(timeout_ms=SESSION_TIMEOUT_MS)
    _, rep = gone.call(jute.CREATE, jute.create_body("/app/abandoned", b"", flags=jute.EPHEMERAL))
    assert rep[4] == 0, rep
    raw.abandoned = gone
    return raw


def write_cfg(dirpath, port, extra=""):
    cfg = os.path.join(dirpath, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                "4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n"
                "snapCount=50\nextendedTypesEnabled=true\n%s"
                % (os.path.join(dirpath, "data"), port, extra))
    return cfg


def start_paddock(cfg, port, log_path):
    log = open(log_path, "ab")
    proc = subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("paddock exited %s:\n%s" % (proc.returncode, open(log_path).read()[-3000:]))
        if ruok(port):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("paddock did not start:\n" + open(log_path).read()[-3000:])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def max_zxid(tree):
    return max(max(st[0], st[1], st[10]) for _, st, _ in tree.values())


@pytest.fixture(scope="module")
def killed_zk():
    """A ZooKeeper dataDir as SIGKILL left it, the dump taken just before,
    and the raw connection of the session that was open."""
    zk = Server("zookeeper", {"snapCount": "50", "extendedTypesEnabled": "true"}).start()
    try:
        raw = drive(zk.port)
        before = dump(zk.port)
        session = (raw.session_id, raw.passwd, raw.last_zxid)
        zk.proc.send_signal(signal.SIGKILL)
        zk.proc.wait(timeout=10)
        raw.close_socket()
        raw.abandoned.close_socket()
        yield zk, before, session
    finally:
        zk.cleanup()


def copy_of(zk, tmp_path, name):
    d = tmp_path / name
    shutil.copytree(os.path.join(zk.dir, "data"), d / "data")
    port = free_port()
    return str(d), write_cfg(str(d), port), port


def v2_files(d, prefix):
    v2 = os.path.join(d, "data", "version-2")
    names = [n for n in os.listdir(v2) if n.startswith(prefix + ".")]
    return sorted(names, key=lambda n: int(n.split(".")[1], 16))


def zk_restart(d, cfg, port):
    """Starts the real ZooKeeper on a dataDir; returns (process, log path)."""
    log_path = os.path.join(d, "zk-restart.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen(["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                             "-Dzookeeper.admin.enableServer=false", "-cp", ZK_CLASSPATH,
                             "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc, log_path


def zk_restart_zxid(d):
    """The last zxid ZooKeeper's own restart reaches on this dataDir (its
    `srvr`), or None if it does not start; ZooKeeper runs on a copy."""
    copy = d + "-zk"
    shutil.copytree(d, copy)
    port = free_port()
    cfg = write_cfg(copy, port)
    proc, log_path = zk_restart(copy, cfg, port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return None
            if ruok(port):
                # ZooKeeper listens before it loads its data: srvr says "not
                # currently serving" until then, and a failed load closes
                # the port.
                try:
                    m = re.search(r"Zxid: (0x[0-9a-f]+)", jute.four_letter(port, "srvr"))
                except OSError:
                    m = None
                if m:
                    return int(m.group(1), 16)
            time.sleep(0.1)
        raise AssertionError("ZooKeeper neither started nor exited:\n" + open(log_path).read()[-2000:])
    finally:
        stop(proc)


def log_records(path):
    """(offset, length) of each record of a ZooKeeper log file."""
    b = open(path, "rb").read()
    pos, out = 16, []
    while pos + 12 <= len(b):
        n = int.from_bytes(b[pos + 8:pos + 12], "big", signed=True)
        if n <= 0:
            break
        out.append((pos, 12 + n + 1))
        pos += 12 + n + 1
    return out


def paddock_state(d):
    return sorted(n for n in os.listdir(os.path.join(d, "data"))
                  if re.fullmatch(r"(snapshot|log)\.[0-9a-f]+|acceptedEpoch|currentEpoch", n))


def test_import_serves_the_same_tree_and_resumes_the_session(killed_zk, tmp_path):
    zk, before, (sid, passwd, seen) = killed_zk
    d, cfg, port = copy_of(zk, tmp_path, "standalone")
    assert len(v2_files(d, "snapshot")) >= 3 and len(v2_files(d, "log")) >= 2, os.listdir(d)
    zk_files = {n: open(os.path.join(d, "data", "version-2", n), "rb").read()
                for n in os.listdir(os.path.join(d, "data", "version-2"))}

    # Refuse to guess: no serving an empty tree from ZooKeeper's dataDir.
    r = run([PADDOCK_BIN, cfg], timeout=30)
    out = r.stdout.decode()
    assert r.returncode != 0 and "paddock import" in out and "version-2" in out, out
    assert not ruok(port)

    r = run([PADDOCK_BIN, "import", cfg], timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    summary = [l for l in out.splitlines() if "import: done" in l]
    assert summary, out
    assert "%d znodes" % len(before) in summary[0], (summary, len(before))
    last = int(re.search(r"last zxid (0x[0-9a-f]+)", summary[0]).group(1), 16)
    assert last >= max_zxid(before)
    # ZooKeeper's files are untouched.
    for n, b in zk_files.items():
        assert open(os.path.join(d, "data", "version-2", n), "rb").read() == b, n
    # A second import refuses to write over paddock's state.
    r = run([PADDOCK_BIN, "import", cfg], timeout=60)
    assert r.returncode != 0 and "already holds paddock state" in r.stdout.decode()

    proc = start_paddock(cfg, port, os.path.join(d, "paddock.log"))
    try:
        after = dump(port)
        assert sorted(after) == sorted(before)
        stats = before["/zookeeper/quota/churn/zookeeper_stats"][0]
        assert stats.startswith(b"count=") and stats != b"count=0,bytes=0", stats
        for p in before:
            assert after[p] == before[p], (p, before[p], after[p])

        # The open session resumes with ZooKeeper's id and password, and
        # its ephemerals outlive the session timeout.
        raw = jute.Conn(port)
        rep = raw.connect(session_id=sid, passwd=passwd, timeout_ms=SESSION_TIMEOUT_MS, last_zxid=seen)
        assert rep["sessionId"] == sid and rep["timeOut"] > 0, rep
        deadline = time.monotonic() + SESSION_TIMEOUT_MS / 1000.0 + 3
        while time.monotonic() < deadline:
            raw.ping()
            time.sleep(0.5)
        c = kazoo(port)
        try:
            data, st = c.get("/app/eph")
            assert data == b"mine" and st.ephemeralOwner == sid
            # The session nobody resumed expired with its ephemeral, as it
            # would have on ZooKeeper: nothing is orphaned.
            deadline = time.monotonic() + 15
            while c.exists("/app/abandoned") and time.monotonic() < deadline:
                raw.ping()
                time.sleep(0.5)
            assert not c.exists("/app/abandoned")
            # A wrong password is still refused.
            bad = jute.Conn(port)
            assert bad.connect(session_id=sid, passwd=b"\x01" * 16)["sessionId"] == 0
            bad.close_socket()
            # The next write's zxid is above every imported one.
            c.create("/after-import", b"new")
            _, st = c.get("/after-import")
            assert st.czxid > last >= max_zxid(before)
        finally:
            c.stop()
            c.close()
        raw.close_session()
        raw.close_socket()
    finally:
        stop(proc)


def test_inspect_agrees_with_zookeepers_own_tools(killed_zk, tmp_path):
    zk, before, _ = killed_zk
    d, _, _ = copy_of(zk, tmp_path, "inspect")
    v2 = os.path.join(d, "data", "version-2")
    types = set()
    for name in v2_files(d, "log"):
        path = os.path.join(v2, name)
        ours = run([PADDOCK_BIN, "inspect", path, "--json"])
        assert ours.returncode == 0, ours.stdout.decode()
        lines = [json.loads(l) for l in ours.stdout.decode().splitlines()]
        summary = lines[-1]["summary"]
        zxids = [int(l["zxid"], 16) for l in lines[:-1]]
        types |= {l["type"] for l in lines[:-1]}
        theirs = run(["java", "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.persistence.TxnLogToolkit",
                      "-d", path])
        text = theirs.stdout.decode()
        their_zxids = [int(z, 16) for z in re.findall(r" zxid (0x[0-9a-f]+) ", text)]
        m = re.search(r"(\d+) txns? found", text) or re.search(r"Txnlog size: \d+ bytes, (\d+) txns", text)
        assert their_zxids, text[-2000:]
        assert zxids == their_zxids, (name, zxids[:5], their_zxids[:5], text[-500:])
        assert summary["txns"] == len(their_zxids)
        if m:
            assert int(m.group(1)) == summary["txns"]
    # The workload made ZooKeeper write every kind of txn it has (but
    # reconfig, which needs reconfigEnabled).
    assert types >= {"createSession", "closeSession", "create", "create2", "createContainer",
                     "createTTL", "delete", "deleteContainer", "setData", "setACL", "multi",
                     "error"}, types
    for name in v2_files(d, "snapshot"):
        path = os.path.join(v2, name)
        ours = run([PADDOCK_BIN, "inspect", path, "--json"])
        assert ours.returncode == 0, ours.stdout.decode()
        lines = [json.loads(l) for l in ours.stdout.decode().splitlines()]
        paths = sorted(l["path"] for l in lines[:-1])
        theirs = run(["java", "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.SnapshotFormatter", "-d", path])
        text = theirs.stdout.decode()
        their_paths = sorted(re.findall(r"^----\n(/[^\n]*)$", text, re.M))
        assert their_paths and "/" in their_paths, text[-2000:]
        assert paths == their_paths, (name, set(paths) ^ set(their_paths))
        assert lines[-1]["summary"]["znodes"] == len(their_paths)


def test_damage_is_refused_or_falls_back_as_zookeeper_would(killed_zk, tmp_path):
    zk, before, _ = killed_zk
    d, cfg, _ = copy_of(zk, tmp_path, "reference")
    r = run([PADDOCK_BIN, "import", cfg])
    assert r.returncode == 0, r.stdout.decode()
    reference = re.search(r"paddock digest (0x[0-9a-f]+)", r.stdout.decode()).group(1)
    reference_last = int(re.search(r"last zxid (0x[0-9a-f]+)", r.stdout.decode()).group(1), 16)

    # Logs in a separate dataLogDir, as many operators keep them: the
    # same result.
    d, _, port = copy_of(zk, tmp_path, "separate-log-dir")
    os.makedirs(os.path.join(d, "txnlog", "version-2"))
    for n in v2_files(d, "log"):
        os.rename(os.path.join(d, "data", "version-2", n), os.path.join(d, "txnlog", "version-2", n))
    cfg = write_cfg(d, port, "dataLogDir=%s\n" % os.path.join(d, "txnlog"))
    r = run([PADDOCK_BIN, "import", cfg])
    assert r.returncode == 0, r.stdout.decode()
    assert re.search(r"paddock digest (0x[0-9a-f]+)", r.stdout.decode()).group(1) == reference

    # A truncated newest snapshot: passed over for the one before it, and
    # the logs bring the tree to the same state.
    d, cfg, _ = copy_of(zk, tmp_path, "truncated-snapshot")
    newest = os.path.join(d, "data", "version-2", v2_files(d, "snapshot")[-1])
    size = os.path.getsize(newest)
    with open(newest, "r+b") as f:
        f.truncate(size // 2)
    r = run([PADDOCK_BIN, "import", cfg])
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "passed over" in out and os.path.basename(newest) in out, out
    assert re.search(r"paddock digest (0x[0-9a-f]+)", out).group(1) == reference
    last = int(re.search(r"last zxid (0x[0-9a-f]+)", out).group(1), 16)
    # ZooKeeper's own restart falls back the same way, to the same zxid.
    assert zk_restart_zxid(d) == last

    # A torn last record (a crash during its write): dropped with a note,
    # as ZooKeeper's restart drops it.
    d, cfg, _ = copy_of(zk, tmp_path, "torn-tail")
    last_log = os.path.join(d, "data", "version-2", v2_files(d, "log")[-1])
    records = log_records(last_log)
    assert len(records) >= 2
    at, n = records[-1]
    with open(last_log, "r+b") as f:
        f.truncate(at + n // 2)
    r = run([PADDOCK_BIN, "import", cfg])
    out = r.stdout.decode()
    assert r.returncode == 0 and "torn" in out, out
    torn_last = int(re.search(r"last zxid (0x[0-9a-f]+)", out).group(1), 16)
    assert torn_last == reference_last - 1, (torn_last, reference_last)
    assert zk_restart_zxid(d) == torn_last

    # A flipped byte inside a log record that must be replayed: refused,
    # with the file and offset, and nothing written.
    d, cfg, _ = copy_of(zk, tmp_path, "flipped-byte")
    last_log = os.path.join(d, "data", "version-2", v2_files(d, "log")[-1])
    listing = run([PADDOCK_BIN, "inspect", last_log, "--json"]).stdout.decode().splitlines()
    assert len(listing) >= 3
    with open(last_log, "r+b") as f:
        f.seek(16 + 12 + 20)  # inside the first record's txn header
        b = f.read(1)
        f.seek(16 + 12 + 20)
        f.write(bytes([b[0] ^ 0x20]))
    r = run([PADDOCK_BIN, "import", cfg])
    out = r.stdout.decode()
    assert r.returncode != 0, out
    assert os.path.basename(last_log) in out and "checksum" in out and "nothing written" in out, out
    assert paddock_state(d) == [], paddock_state(d)
    # ZooKeeper's own restart refuses this dataDir too.
    assert zk_restart_zxid(d) is None
    r = run([PADDOCK_BIN, "inspect", last_log])
    assert r.returncode != 0 and "damage at offset 16" in r.stdout.decode(), r.stdout.decode()

    # A missing log in the middle: with only the oldest snapshot left, the
    # replay needs every log, and one in the middle is gone. Refused:
    # ZooKeeper would start without those txns.
    d, cfg, _ = copy_of(zk, tmp_path, "missing-log")
    v2 = os.path.join(d, "data", "version-2")
    for n in v2_files(d, "snapshot")[1:]:
        os.remove(os.path.join(v2, n))
    # First, with every log there: the whole history replays from the
    # snapshot ZooKeeper wrote at zxid 0, every txn's digest checked, to
    # the same tree.
    whole = d + "-whole"
    shutil.copytree(d, whole)
    r = run([PADDOCK_BIN, "import", write_cfg(whole, free_port())])
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert re.search(r"paddock digest (0x[0-9a-f]+)", out).group(1) == reference
    assert int(re.search(r"(\d+) digests checked", out).group(1)) > 100, out
    logs = v2_files(d, "log")
    assert len(logs) >= 3, logs
    os.remove(os.path.join(v2, logs[1]))
    r = run([PADDOCK_BIN, "import", cfg])
    out = r.stdout.decode()
    assert r.returncode != 0, out
    assert "missing" in out and "nothing written" in out, out
    assert paddock_state(d) == []
