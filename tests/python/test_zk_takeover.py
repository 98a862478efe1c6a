"""Takeover from a live Apache ZooKeeper 3.8 ensemble (Debian's) by three
paddock servers that followed it (`migration.followZooKeeper`), under a
kazoo write load whose clients list both ensembles in their connect
string. The operator's steps, as docs/OPERATIONS.md states them:

1. fence ZooKeeper: stop its followers, so its leader can commit nothing
   more (it loses its quorum and steps down);
2. wait until every paddock follower holds the same last zxid, at least
   the last zxid ZooKeeper's leader reported after the fence, and has it
   on disk;
3. stop ZooKeeper's leader and the followers; start the paddock servers
   without the migration key: they elect a leader among themselves with
   an epoch above ZooKeeper's and serve.

Checked: every write ZooKeeper acknowledged is on paddock; each client
keeps its session id, its ephemeral node and the lock it held; writes go
on. Printed: the unavailability window (fence to the first write
acknowledged by paddock, and the longest gap without an acknowledged
write) and, from the same run and load, the longest gap around a kill -9
of ZooKeeper's leader before the takeover."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError

from ensembles import Ensemble, distinct_ports, follow_status, four_letter, mode, wait_for
from servers import PADDOCK_BIN

CLIENTS = 3
ROOT = "/app"


def zk_zxid(port):
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Zxid: "):
            return int(line[len("Zxid: "):], 16)
    return None


class Writer(threading.Thread):
    """Creates nodes one after another until told to stop; records what
    was acknowledged and when the last failure and success were."""

    def __init__(self, zk, k):
        super().__init__(daemon=True)
        self.zk, self.k = zk, k
        self.acked = []
        self.stop = False
        self.ok_times = []
        self.deadline = time.time() + 180

    def run(self):
        i = 0
        while not self.stop and time.time() < self.deadline:
            p = "%s/w%d/n%05d" % (ROOT, self.k, i)
            try:
                try:
                    self.zk.create(p, b"v%d" % i)
                except NodeExistsError:
                    pass
                self.acked.append(p)
                self.ok_times.append(time.time())
                i += 1
            except KazooException:
                time.sleep(0.05)


def ack_gap(writers, at):
    """The longest time without any write acknowledged, from `at` (the
    fault) on, over the acknowledgements after it."""
    times = sorted([at] + [t for w in writers for t in w.ok_times if t >= at])
    return max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0


def test_paddock_takes_over_with_sessions_ephemerals_and_acknowledged_writes():
    ens = Ensemble("zookeeper", n=3)
    root = tempfile.mkdtemp(prefix="paddock-takeover-")
    pads = []
    clients = []
    writers = []
    try:
        zk_leader = ens.start_all()
        ports = distinct_ports(9)
        sids = [101, 102, 103]
        cports, qports, eports = ports[0:3], ports[3:6], ports[6:9]
        servers = "".join("server.%d=127.0.0.1:%d:%d;127.0.0.1:%d\n" % (s, q, e, c)
                          for s, q, e, c in zip(sids, qports, eports, cports))
        follow = "migration.followZooKeeper=%s\n" % ",".join(
            "127.0.0.1:%d" % q for q in ens.quorum)
        dirs = []
        for k, sid in enumerate(sids):
            d = os.path.join(root, "p%d" % sid)
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % sid)
            dirs.append(d)

        def write_cfg(k, following):
            with open(os.path.join(dirs[k], "zoo.cfg"), "w") as f:
                f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n"
                        "4lw.commands.whitelist=*\nclientPortAddress=127.0.0.1\n%s%s"
                        % (os.path.join(dirs[k], "data"), servers, follow if following else ""))

        def start(k):
            log = open(os.path.join(dirs[k], "server.log"), "ab")
            p = subprocess.Popen([PADDOCK_BIN, os.path.join(dirs[k], "zoo.cfg")], stdout=log,
                                 stderr=log, stdin=subprocess.DEVNULL, cwd=dirs[k])
            log.close()
            return p

        def diag():
            out = ""
            for d in dirs:
                out += "--- %s %s\n" % (d, follow_status(os.path.join(d, "data")))
                try:
                    with open(os.path.join(d, "server.log"), "rb") as f:
                        out += f.read().decode("utf-8", "replace")[-2500:]
                except OSError:
                    pass
            return out + ens.log_tail(1500)

        for k in range(3):
            write_cfg(k, True)
            pads.append(start(k))
        datas = [os.path.join(d, "data") for d in dirs]
        wait_for("three followers", lambda: all(follow_status(d).get("phase") == "Following"
                                                 for d in datas), 60, diag)

        hosts = ens.hosts() + "," + ",".join("127.0.0.1:%d" % c for c in cports)
        states = []
        for k in range(CLIENTS):
            zk = KazooClient(hosts=hosts, timeout=20.0,
                             connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
            zk.add_listener(lambda s, k=k: states.append((k, s)))
            zk.start(timeout=30)
            zk.ensure_path("%s/w%d" % (ROOT, k))
            clients.append(zk)
        sessions = [zk.client_id[0] for zk in clients]
        for k, zk in enumerate(clients):
            zk.create("%s/eph%d" % (ROOT, k), b"mine", ephemeral=True)
        lock = clients[0].Lock(ROOT + "/lock", "c0")
        assert lock.acquire(timeout=10)
        for k, zk in enumerate(clients):
            w = Writer(zk, k)
            w.start()
            writers.append(w)
        wait_for("load", lambda: all(len(w.acked) > 50 for w in writers), 60, diag)

        # For comparison, in the same run: a ZooKeeper leader failover
        # (kill -9) under the same load; the window is the longest time
        # with no write acknowledged around it.
        failover = time.time()
        ens.kill9(zk_leader)
        zk_leader = ens.leader()
        n_now = sum(len(w.acked) for w in writers)
        wait_for("writes after the ZooKeeper failover",
                 lambda: sum(len(w.acked) for w in writers) > n_now + 30, 60, diag)
        zk_window = ack_gap(writers, failover)
        wait_for("the paddock followers on the new ZooKeeper leader",
                 lambda: all(follow_status(d).get("phase") == "Following" for d in datas), 60, diag)

        def takeover_check(min_zxid=0):
            r = subprocess.run([PADDOCK_BIN, "takeover-check", "--zookeeper", ens.hosts(),
                                "--paddock", ",".join("127.0.0.1:%d" % c for c in cports),
                                "--min-zxid", hex(min_zxid)],
                               capture_output=True, text=True, timeout=60)
            return r.returncode, r.stdout + r.stderr

        # Before the fence the check refuses, and says why.
        rc, out = takeover_check()
        assert rc == 1 and "ZooKeeper still serves" in out, out

        # 1. Fence: ZooKeeper's followers go; its leader cannot commit.
        pre_fence_zxid = zk_zxid(ens.client_ports[zk_leader])
        fence = time.time()
        for i in ens.alive():
            if i != zk_leader:
                ens.kill9(i)
        # The leader's last zxid as long as it still answers (it stops
        # serving once it notices it lost its quorum).
        fenced_zxid = pre_fence_zxid
        for _ in range(40):
            z = zk_zxid(ens.client_ports[zk_leader])
            if z is None:
                break
            fenced_zxid = max(fenced_zxid or 0, z)
            time.sleep(0.05)
        assert fenced_zxid is not None
        # 2. Every paddock follower holds it all, on disk.
        def caught_up():
            sts = [follow_status(d) for d in datas]
            lasts = {s.get("last_zxid") for s in sts}
            if len(lasts) != 1 or any(s.get("phase") == "Following" for s in sts):
                return None
            last = lasts.pop()
            if last < fenced_zxid:
                return None
            return sts if all(s.get("durable_zxid") == last for s in sts) else None
        sts = wait_for("the followers to hold ZooKeeper's last zxid", caught_up, 30, diag)
        # The same check as one command; a zxid above what they hold is refused.
        rc, out = takeover_check(fenced_zxid)
        assert rc == 0 and "takeover check passed" in out, out
        rc, out = takeover_check(fenced_zxid + 1)
        assert rc == 1 and "something ZooKeeper committed is missing" in out, out
        # 3. ZooKeeper's leader goes; paddock starts as its own ensemble.
        ens.kill9(zk_leader)
        # From here on only paddock can acknowledge a write.
        switched = time.time()
        for k in range(3):
            pads[k].kill()
            pads[k].wait(timeout=10)
            write_cfg(k, False)
            pads[k] = start(k)
        leader = wait_for("a paddock leader", lambda: [mode(c) for c in cports].count("leader") == 1,
                          60, diag)
        assert leader
        ok_after = wait_for("a write acknowledged by paddock",
                            lambda: [t for w in writers for t in w.ok_times if t > switched], 60, diag)
        window = min(ok_after) - fence
        gap = ack_gap(writers, fence)
        # Let writes go on a little, then stop.
        n_before = sum(len(w.acked) for w in writers)
        wait_for("writes to continue", lambda: sum(len(w.acked) for w in writers) > n_before + 30, 30, diag)
        for w in writers:
            w.stop = True
        for w in writers:
            w.join(timeout=30)

        print("takeover: fenced at ZooKeeper zxid %s, followers at %#x, unavailable for %.2f s "
              "(fence to first paddock ack; longest gap without an ack %.2f s); "
              "ZooKeeper leader failover in the same run: longest gap %.2f s"
              % (hex(fenced_zxid), sts[0]["last_zxid"], window, gap, zk_window))
        assert all(s.get("digest_mismatches") == 0 for s in sts)
        lost = [k for k, s in states if s == KazooState.LOST]
        assert not lost, "sessions lost: %s" % lost
        for k, zk in enumerate(clients):
            assert zk.client_id[0] == sessions[k], "client %d has a new session" % k
            data, stat = zk.get("%s/eph%d" % (ROOT, k))
            assert (data, stat.ephemeralOwner) == (b"mine", sessions[k])
        # The lock is still client 0's: its node is the first in line.
        contenders = lock.contenders()
        assert contenders and contenders[0] == "c0", contenders
        checker = clients[1]
        for w in writers:
            for p in w.acked:
                assert checker.exists(p), "acknowledged write %s is missing" % p
        # Paddock's epoch is above ZooKeeper's.
        z = checker.create(ROOT + "/after", b"")
        assert (checker.get(z)[1].czxid >> 32) > (sts[0]["last_zxid"] >> 32)
    finally:
        for w in writers:
            w.stop = True
        for zk in clients:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass
        for p in pads:
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        ens.stop()
        shutil.rmtree(root, ignore_errors=True)
