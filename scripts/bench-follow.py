#!/usr/bin/env python3
"""Measures follow mode against a 3-server Apache ZooKeeper 3.8 ensemble
(opt-in; see README "Measure it"):

- follow lag: ZooKeeper's txn time to paddock's apply, p50/p99/max, under
  a kazoo write load (from paddock's follow.status);
- the load a following paddock adds to the ZooKeeper leader, against a
  ZooKeeper observer doing the same: the leader JVM's CPU seconds over the
  same load, with one paddock follower attached, and with one ZooKeeper
  observer instead;
- a ZooKeeper leader failover window (kill -9 to the next acknowledged
  write), for comparison with the takeover window that
  tests/python/test_zk_takeover.py prints.

    scripts/bench-follow.py --writes 20000 --paddock target/release/paddock
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException  # noqa: E402

from ensembles import Ensemble, distinct_ports  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(data):
    try:
        with open(os.path.join(data, "follow.status")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def load(hosts, writes, size=100):
    zk = KazooClient(hosts=hosts, timeout=30)
    zk.start(timeout=30)
    zk.ensure_path("/bench")
    t0 = time.time()
    batch = 200
    done = 0
    while done < writes:
        rs = [zk.create_async("/bench/n", b"x" * size, sequence=True)
              for _ in range(min(batch, writes - done))]
        for r in rs:
            r.get(timeout=30)
        done += len(rs)
    secs = time.time() - t0
    zk.stop()
    zk.close()
    return secs


def run(kind, writes, paddock):
    n = 4 if kind == "observer" else 3
    ens = Ensemble("zookeeper", n=n)
    root = tempfile.mkdtemp(prefix="paddock-bench-follow-")
    proc = None
    try:
        if kind == "observer":
            q, e = ens.quorum[3], ens.election[3]
            for i, cfg in enumerate(ens.cfgs):
                with open(cfg) as f:
                    text = f.read()
                text = text.replace("server.4=127.0.0.1:%d:%d;" % (q, e),
                                    "server.4=127.0.0.1:%d:%d:observer;" % (q, e))
                if i == 3:
                    text += "peerType=observer\n"
                with open(cfg, "w") as f:
                    f.write(text)
        for i in range(n):
            ens.start(i)
        leader = ens.leader(alive=[0, 1, 2])
        if kind == "paddock":
            data = os.path.join(root, "data")
            os.makedirs(data)
            with open(os.path.join(data, "myid"), "w") as f:
                f.write("101\n")
            cfg = os.path.join(root, "zoo.cfg")
            port, = distinct_ports(1)
            with open(cfg, "w") as f:
                f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                        "migration.followZooKeeper=%s\n"
                        % (data, port, ",".join("127.0.0.1:%d" % p for p in ens.quorum)))
            log = open(os.path.join(root, "paddock.log"), "ab")
            proc = subprocess.Popen([paddock, cfg], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            deadline = time.time() + 60
            while status(data).get("phase") != "Following":
                assert time.time() < deadline, "paddock did not sync"
                time.sleep(0.1)
        time.sleep(2)
        pid = ens.procs[leader].pid
        c0 = cpu_seconds(pid)
        secs = load(ens.hosts(leader), writes)
        c1 = cpu_seconds(pid)
        out = {"kind": kind, "writes": writes, "load_s": round(secs, 2),
               "writes_per_s": round(writes / secs), "leader_cpu_s": round(c1 - c0, 2)}
        if kind == "paddock":
            deadline = time.time() + 60
            while status(data).get("txns_applied", 0) < writes:
                assert time.time() < deadline, status(data)
                time.sleep(0.1)
            time.sleep(0.5)
            st = status(data)
            out.update({k: st[k] for k in ("lag_ms_p50", "lag_ms_p99", "lag_ms_max", "lag_samples",
                                           "digests_checked", "digest_mismatches")})
        return out, ens, leader
    except Exception:
        if proc:
            proc.kill()
        ens.stop()
        raise
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def failover_window(ens, leader):
    """kill -9 the ZooKeeper leader; seconds to the next acknowledged write."""
    others = [i for i in range(3) if i != leader]
    zk = KazooClient(hosts=",".join("127.0.0.1:%d" % ens.client_ports[i] for i in others), timeout=10)
    zk.start(timeout=30)
    zk.create("/probe", b"")
    t0 = time.time()
    ens.kill9(leader)
    while time.time() - t0 < 60:
        try:
            zk.set("/probe", b"x")
            if time.time() - t0 > 0.05:
                break
        except KazooException:
            time.sleep(0.01)
    secs = time.time() - t0
    zk.stop()
    zk.close()
    return secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=20000)
    ap.add_argument("--paddock", default=os.path.join(os.path.dirname(__file__), "..",
                                                       "target", "release", "paddock"))
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    for r in range(a.rounds):
        for kind in ("paddock", "observer", "none"):
            out, ens, leader = run(kind, a.writes, os.path.abspath(a.paddock))
            if kind == "none":
                out["failover_s"] = round(failover_window(ens, leader), 2)
            ens.stop()
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
