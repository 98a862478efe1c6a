#!/usr/bin/env python3
"""Import speed and memory for a large Apache ZooKeeper dataDir, against
ZooKeeper's own restart time on the same dataDir, in the same run.

Makes the dataDir with the real ZooKeeper (Debian's package): N znodes
(default 1,000,000) of 32 bytes under 1,000 parents, written as multis of
500 creates, then a stretch of setData churn so the logs hold txns after
the newest snapshot; ZooKeeper is then killed with SIGKILL. snapCount is
10,000, so most znodes are in a snapshot and the rest in the logs. Two copies of
the dataDir are made, so neither run sees the other's files:

  ZooKeeper restart  time from starting QuorumPeerMain until a client
                     reads the last node written; the JVM's peak RSS
  paddock import     wall time and the importer's peak RSS (its summary)
  paddock start      time from starting paddock on the imported dataDir
                     until a client reads the last node

Only processes started here are stopped, by PID.
Usage: scripts/bench-zk-import.py [znodes]   (uses target/release/paddock)"""

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PADDOCK = os.environ.get("PADDOCK_BIN", os.path.join(REPO, "target/release/paddock"))
ZK_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
PARENTS = 1000
BATCH = 500
CHURN = 20_000
WAIT_S = 1800


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_cfg(d, port):
    cfg = os.path.join(d, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nsnapCount=10000\n"
                % (os.path.join(d, "data"), port))
    return cfg


def start_zk(d, cfg):
    log = open(os.path.join(d, "zk.out"), "ab")
    p = subprocess.Popen(["java", "-Xmx6g", "-Dzookeeper.admin.enableServer=false", "-cp", ZK_CP,
                          "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return p


def vm_hwm_mib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None


def wait_read(port, path, proc, started):
    """Seconds from `started` until `path` is readable on `port`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited with %s" % proc.returncode)
        c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=30,
                        connection_retry={"max_tries": 0}, command_retry={"max_tries": 0})
        try:
            c.start(timeout=2)
            c.get(path)
            return time.monotonic() - started
        except Exception:
            time.sleep(0.05)
        finally:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
    raise SystemExit("not serving %s within %ss" % (path, WAIT_S))


def kill(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)


def main():
    logging.basicConfig(level=logging.CRITICAL)
    if not os.path.exists(PADDOCK):
        raise SystemExit("build it first: cargo build --release -p paddock-server --bin paddock")
    root = tempfile.mkdtemp(prefix="paddock-zk-import-bench-")
    procs = []
    try:
        src = os.path.join(root, "zk")
        os.makedirs(os.path.join(src, "data"))
        port = free_port()
        cfg = write_cfg(src, port)
        zk = start_zk(src, cfg)
        procs.append(zk)
        c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=30)
        c.start(timeout=60)
        t0 = time.monotonic()
        c.create("/bench", b"")
        per_parent = max(1, N // PARENTS)
        for i in range(PARENTS):
            c.create("/bench/p%04d" % i, b"")
        made, last = PARENTS + 1, None
        pending = []
        for i in range(PARENTS):
            for j in range(0, per_parent, BATCH):
                t = c.transaction()
                for k in range(j, min(j + BATCH, per_parent)):
                    last = "/bench/p%04d/n%07d" % (i, k)
                    t.create(last, b"x" * 32)
                pending.append(t.commit_async())
                if len(pending) >= 8:
                    pending.pop(0).get(timeout=120)
            made += per_parent
            if i % 100 == 99:
                print("made %d znodes (%.0f/s)" % (made, made / (time.monotonic() - t0)), flush=True)
        for p in pending:
            p.get(timeout=120)
        for i in range(CHURN):
            c.set_async("/bench/p%04d/n%07d" % (i % PARENTS, i % per_parent), b"y" * 32)
        c.set(last, b"last")
        c.stop()
        c.close()
        kill(zk)
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(src) for f in fs)
        print("dataDir: %d znodes, %d MiB (logs preallocated)" % (made + 4, size >> 20), flush=True)

        copies = {}
        for name in ("zk-restart", "paddock"):
            d = os.path.join(root, name)
            shutil.copytree(os.path.join(src, "data"), os.path.join(d, "data"))
            copies[name] = d

        d = copies["zk-restart"]
        port = free_port()
        cfg = write_cfg(d, port)
        t = time.monotonic()
        zk = start_zk(d, cfg)
        procs.append(zk)
        zk_secs = wait_read(port, last, zk, t)
        zk_rss = vm_hwm_mib(zk.pid)
        kill(zk)

        d = copies["paddock"]
        port = free_port()
        cfg = write_cfg(d, port)
        t = time.monotonic()
        r = subprocess.run([PADDOCK, "import", cfg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=WAIT_S)
        import_secs = time.monotonic() - t
        out = r.stdout.decode()
        if r.returncode != 0:
            raise SystemExit("import failed:\n" + out)
        summary = [l for l in out.splitlines() if "import: done" in l][0]
        rss = re.search(r"peak memory (\d+) MiB", summary)
        t = time.monotonic()
        log = open(os.path.join(d, "paddock.out"), "ab")
        pd = subprocess.Popen([PADDOCK, cfg], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        procs.append(pd)
        pd_secs = wait_read(port, last, pd, t)
        pd_rss = vm_hwm_mib(pd.pid)
        kill(pd)

        print(summary)
        print("ZooKeeper restart until the last node reads: %.1f s (JVM peak RSS %s MiB)" % (zk_secs, zk_rss))
        print("paddock import: %.1f s (peak RSS %s MiB)" % (import_secs, rss.group(1) if rss else "?"))
        print("paddock start on the imported dataDir until the last node reads: %.1f s (peak RSS %s MiB)"
              % (pd_secs, pd_rss))
    finally:
        for p in procs:
            kill(p)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
