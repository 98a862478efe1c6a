"""Moving a 3-server Apache ZooKeeper ensemble to a 3-server Paddock
ensemble: each member imports its own dataDir with its unchanged zoo.cfg,
the ensemble starts as usual, and every member serves ZooKeeper's tree node
for node; the session that was open resumes with ZooKeeper's password.
Also: snapshots ZooKeeper compressed with gzip and snappy import alike."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import jute
from servers import PADDOCK_BIN, ZK_CLASSPATH, Server, free_port, ruok
from test_zk_import import (SESSION_TIMEOUT_MS, drive, dump, kazoo, max_zxid, run, start_paddock,
                            stop, write_cfg)

SNAPPY_JAR = "/usr/share/java/snappy-java.jar"
WAIT_S = 60.0


def srvr_mode(port):
    try:
        out = jute.four_letter(port, "srvr")
    except Exception:
        return None
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    m = re.search(r"Mode: (\w+)", out or "")
    return m.group(1) if m else None


def without_config(tree):
    return {k: v for k, v in tree.items() if k != "/zookeeper/config"}


def wait_for_quorum(ports, logs=()):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        modes = [srvr_mode(p) for p in ports]
        if modes.count("leader") == 1 and all(m in ("leader", "follower") for m in modes):
            return modes
        time.sleep(0.2)
    tails = []
    for f in logs:
        try:
            with open(f, "rb") as fh:
                lines = fh.read().decode(errors="replace").splitlines()
            tails.append("--- %s\n%s" % (f, "\n".join(lines[-25:])))
        except OSError as e:
            tails.append("--- %s: %s" % (f, e))
    raise AssertionError("no quorum: modes %r\n%s" % ([srvr_mode(p) for p in ports], "\n".join(tails)))


class ZkEnsemble:
    def __init__(self, n=3):
        self.root = tempfile.mkdtemp(prefix="paddock-zk-ensemble-")
        self.client_ports = [free_port() for _ in range(n)]
        q = [free_port() for _ in range(n)]
        e = [free_port() for _ in range(n)]
        servers = "".join("server.%d=127.0.0.1:%d:%d;127.0.0.1:%d\n" % (i + 1, q[i], e[i], self.client_ports[i])
                          for i in range(n))
        self.dirs, self.cfgs, self.procs = [], [], []
        for i in range(n):
            d = os.path.join(self.root, "s%d" % (i + 1))
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = os.path.join(d, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir=%s\n"
                        "4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n"
                        "snapCount=50\nextendedTypesEnabled=true\n%s" % (os.path.join(d, "data"), servers))
            self.dirs.append(d)
            self.cfgs.append(cfg)

    def start_zookeeper(self):
        for d, cfg in zip(self.dirs, self.cfgs):
            props = os.path.join(d, "log4j.properties")
            with open(props, "w") as f:
                f.write("log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n"
                        "log4j.appender.F.File=%s\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                        % os.path.join(d, "zookeeper.log"))
            log = open(os.path.join(d, "server.log"), "ab")
            self.procs.append(subprocess.Popen(
                ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 "-Dlog4j.configuration=file:" + props, "-Dzookeeper.admin.enableServer=false",
                 "-Dznode.container.checkIntervalMs=500",
                 "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            log.close()
        wait_for_quorum(self.client_ports)

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
        self.procs = []

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def test_a_zookeeper_ensemble_moves_to_a_paddock_ensemble():
    ens = ZkEnsemble()
    paddocks = []
    try:
        ens.start_zookeeper()
        raw = drive(ens.client_ports[0])
        c = kazoo(ens.client_ports[0])
        c.sync("/")
        c.stop()
        c.close()
        before = dump(ens.client_ports[0])
        for p in ens.client_ports[1:]:
            c = kazoo(p)
            c.sync("/")
            c.stop()
            c.close()
            # Each ZooKeeper member stamps /zookeeper/config itself.
            assert without_config(dump(p)) == without_config(before)
        sid, passwd, seen = raw.session_id, raw.passwd, raw.last_zxid
        ens.kill()
        raw.close_socket()
        raw.abandoned.close_socket()

        lasts = []
        for cfg in ens.cfgs:
            r = run([PADDOCK_BIN, "import", cfg])
            out = r.stdout.decode()
            assert r.returncode == 0, out
            lasts.append(int(re.search(r"last zxid (0x[0-9a-f]+)", out).group(1), 16))
        assert max(lasts) >= max_zxid(before)
        # The most advanced member's import, served by a standalone paddock:
        # ZooKeeper's member list in its /zookeeper/config is not taken as
        # the standalone's membership (were it, the standalone would wait
        # for a quorum of ZooKeeper's servers and never serve).
        solo = os.path.join(ens.root, "solo")
        shutil.copytree(os.path.join(ens.dirs[lasts.index(max(lasts))], "data"), os.path.join(solo, "data"))
        os.remove(os.path.join(solo, "data", "myid"))
        solo_port = free_port()
        solo_proc = start_paddock(write_cfg(solo, solo_port), solo_port, os.path.join(solo, "paddock.log"))
        try:
            alone = dump(solo_port)
        except Exception as e:
            raise AssertionError("the standalone import does not serve: %r\n%s"
                                 % (e, open(os.path.join(solo, "paddock.log")).read()[-3000:]))
        finally:
            stop(solo_proc)
        assert without_config(alone) == without_config(before)
        for i, cfg in enumerate(ens.cfgs):
            log = open(os.path.join(ens.dirs[i], "paddock.log"), "ab")
            paddocks.append(subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL))
            log.close()
        wait_for_quorum(ens.client_ports, [os.path.join(d, "paddock.log") for d in ens.dirs])
        for p in ens.client_ports:
            c = kazoo(p)
            c.sync("/")
            c.stop()
            c.close()
            after = dump(p)
            # /zookeeper/config is the ensemble's own membership, which
            # each server writes; everything else is ZooKeeper's data.
            for path in set(before) | set(after):
                if path == "/zookeeper/config":
                    continue
                assert after.get(path) == before.get(path), (p, path, before.get(path), after.get(path))

        conn = jute.Conn(ens.client_ports[1])
        rep = conn.connect(session_id=sid, passwd=passwd, timeout_ms=SESSION_TIMEOUT_MS, last_zxid=seen)
        assert rep["sessionId"] == sid, rep
        deadline = time.monotonic() + SESSION_TIMEOUT_MS / 1000.0 + 3
        while time.monotonic() < deadline:
            conn.ping()
            time.sleep(0.5)
        c = kazoo(ens.client_ports[2])
        try:
            _, st = c.get("/app/eph")
            assert st.ephemeralOwner == sid
            deadline = time.monotonic() + 15
            while c.exists("/app/abandoned") and time.monotonic() < deadline:
                conn.ping()
                time.sleep(0.5)
            assert not c.exists("/app/abandoned")
            c.create("/after-import", b"x")
            _, st = c.get("/after-import")
            assert st.czxid > max(lasts)
        finally:
            c.stop()
            c.close()
        conn.close_session()
        conn.close_socket()
    finally:
        for p in paddocks:
            stop(p)
        ens.cleanup()


@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_compressed_snapshots_import(method, tmp_path):
    if method == "snappy" and not os.path.exists(SNAPPY_JAR):
        pytest.skip("snappy-java is not installed")
    zk = Server("zookeeper", {"snapCount": "50", "extendedTypesEnabled": "true"})
    import servers
    saved = servers.ZK_CLASSPATH
    # SnapStream reads the method from a system property when it loads.
    saved_opts = os.environ.get("JAVA_TOOL_OPTIONS")
    try:
        servers.ZK_CLASSPATH = saved + ":" + SNAPPY_JAR
        os.environ["JAVA_TOOL_OPTIONS"] = "-Dzookeeper.snapshot.compression.method=" + method
        try:
            zk.start()
        finally:
            if saved_opts is None:
                del os.environ["JAVA_TOOL_OPTIONS"]
            else:
                os.environ["JAVA_TOOL_OPTIONS"] = saved_opts
        raw = drive(zk.port)
        before = dump(zk.port)
        zk.proc.send_signal(signal.SIGKILL)
        zk.proc.wait(timeout=10)
        raw.close_socket()
        raw.abandoned.close_socket()
        v2 = os.path.join(zk.dir, "data", "version-2")
        ext = "." + method
        snaps = [n for n in os.listdir(v2) if n.startswith("snapshot.")]
        assert snaps and all(n.endswith(ext) for n in snaps), snaps
        d = str(tmp_path)
        shutil.copytree(os.path.join(zk.dir, "data"), os.path.join(d, "data"))
        port = free_port()
        cfg = write_cfg(d, port)
        r = run([PADDOCK_BIN, "import", cfg])
        assert r.returncode == 0, r.stdout.decode()
        for n in snaps:
            r = run([PADDOCK_BIN, "inspect", os.path.join(v2, n)])
            assert r.returncode == 0 and "sealed" in r.stdout.decode(), r.stdout.decode()
        proc = start_paddock(cfg, port, os.path.join(d, "paddock.log"))
        try:
            assert dump(port) == before
        finally:
            stop(proc)
    finally:
        servers.ZK_CLASSPATH = saved
        zk.cleanup()
