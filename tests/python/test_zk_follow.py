"""Follow mode against the real thing: a 3-server Apache ZooKeeper 3.8
ensemble (Debian's) under a kazoo write load; one paddock server follows
it as an observer (`migration.followZooKeeper`); the ZooKeeper leader is
killed with kill -9 mid-load and paddock must find the new leader and
catch up. Afterwards every node ZooKeeper holds under the load's root is
compared, data and every Stat field, with what paddock holds: paddock is
stopped and its data directory served by a standalone paddock, so what is
compared is what follow mode made durable."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError

from ensembles import Ensemble, distinct_ports, follow_status, wait_for
from servers import PADDOCK_BIN, serving

FOLLOWER_SID = 101
WRITERS = 3
OPS_PER_WRITER = 240
ROOT = "/load"
STAT_FIELDS = ("czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion",
               "aversion", "ephemeralOwner", "dataLength", "numChildren")


def writer(hosts, k, progress, errors, stop_at, seen=None):
    """`seen`, if given, gets the client's states and its session id at
    the start and at the end."""
    zk = KazooClient(hosts=hosts, timeout=10.0, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
                     command_retry={"max_tries": 50, "delay": 0.1, "max_delay": 1.0})
    if seen is not None:
        seen.setdefault("states", [])
        # Until the load ends: stop() itself ends the session (LOST).
        zk.add_listener(lambda st: None if seen.get("done") else seen["states"].append(st))
    zk.start(timeout=30)
    if seen is not None:
        seen["sessions"] = [zk.client_id[0]]
    try:
        zk.ensure_path("%s/w%d" % (ROOT, k))
        lock = zk.Lock("%s/lock" % ROOT, "w%d" % k)
        for i in range(OPS_PER_WRITER):
            if time.time() > stop_at:
                break
            p = "%s/w%d/n%04d" % (ROOT, k, i)
            try:
                try:
                    zk.retry(zk.create, p, b"v%d" % i, ephemeral=(i % 7 == 0))
                except NodeExistsError:
                    pass  # a retried create that had been applied
                if i % 3 == 0:
                    zk.retry(zk.set, p, b"set%d" % i)
                if i % 5 == 0 and i % 7 != 0:
                    try:
                        zk.retry(zk.delete, p)
                    except NoNodeError:
                        pass
                if i % 40 == 0:
                    with lock:
                        zk.retry(zk.set, "%s/w%d" % (ROOT, k), b"locked %d" % i)
            except KazooException as e:
                errors.append(repr(e))
            progress[k] = i + 1
    finally:
        if seen is not None:
            seen["sessions"].append(zk.client_id[0] if zk.client_id else None)
            seen["done"] = True
        zk.stop()
        zk.close()


def walk(zk, path, out):
    data, stat = zk.get(path)
    out[path] = (data, {f: getattr(stat, f) for f in STAT_FIELDS})
    for c in zk.get_children(path):
        walk(zk, path.rstrip("/") + "/" + c, out)


def test_paddock_follows_zookeeper_through_a_leader_kill():
    ens = Ensemble("zookeeper", n=3)
    root = tempfile.mkdtemp(prefix="paddock-follow-")
    follower = standalone = None
    try:
        leader = ens.start_all()
        pre = KazooClient(hosts=ens.hosts())
        pre.start(timeout=30)
        pre.ensure_path(ROOT)
        for i in range(50):
            pre.create("%s/pre%02d" % (ROOT, i), b"before the follower")
        pre.stop()
        pre.close()

        data = os.path.join(root, "data")
        os.makedirs(data)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write("%d\n" % FOLLOWER_SID)
        client_port, = distinct_ports(1)
        cfg = os.path.join(root, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                    "clientPortAddress=127.0.0.1\nmigration.followZooKeeper=%s\n"
                    % (data, client_port, ",".join("127.0.0.1:%d" % q for q in ens.quorum)))
        log_path = os.path.join(root, "paddock.log")
        log = open(log_path, "ab")
        follower = subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, cwd=root)
        log.close()

        def diag():
            with open(log_path, "rb") as f:
                t = f.read().decode("utf-8", "replace")[-4000:]
            return "status %s\n--- paddock\n%s\n%s" % (follow_status(data), t, ens.log_tail())

        wait_for("the first sync", lambda: follow_status(data).get("phase") == "Following", 60, diag)
        # ZooKeeper serves a learner whose sid is not in its configuration.
        zk_log = os.path.join(os.path.dirname(ens.cfgs[leader]), "zookeeper.log")
        with open(zk_log, "rb") as f:
            lines = [l for l in f.read().splitlines() if b"sid: %d" % FOLLOWER_SID in l]
        assert any(b"not in the current config" in l for l in lines), lines

        progress = [0] * WRITERS
        errors = []
        stop_at = time.time() + 120
        threads = [threading.Thread(target=writer, args=(ens.hosts(), k, progress, errors, stop_at))
                   for k in range(WRITERS)]
        for t in threads:
            t.start()
        wait_for("a third of the load", lambda: sum(progress) >= WRITERS * OPS_PER_WRITER // 3, 90, diag)
        syncs_before = follow_status(data).get("syncs", 0)
        ens.kill9(leader)
        for t in threads:
            t.join(timeout=150)
        assert not any(t.is_alive() for t in threads)
        assert sum(progress) == WRITERS * OPS_PER_WRITER, (progress, errors[:5])
        new_leader = ens.leader()
        assert new_leader != leader

        zk = KazooClient(hosts=ens.hosts(new_leader))
        zk.start(timeout=30)
        zk.sync(ROOT)
        last = zk.create(ROOT + "/done", b"", ).rstrip("/")
        last_zxid = zk.get(last)[1].czxid
        want = {}
        walk(zk, ROOT, want)

        st = wait_for("paddock to apply and snapshot zxid %#x" % last_zxid,
                      lambda: (lambda s: s if s.get("durable_zxid", 0) >= last_zxid
                               and s.get("last_zxid") == s.get("durable_zxid") else None)(follow_status(data)),
                      60, diag)
        print("follow status:", json.dumps(st))
        assert st["syncs"] > syncs_before, "re-attached to the new leader"
        assert st["digest_mismatches"] == 0
        assert st["digests_checked"] > 0
        # kill -9 and start again: it resumes from its own snapshot and
        # the leader sends only a DIFF.
        follower.kill()
        follower.wait(timeout=10)
        os.remove(os.path.join(data, "follow.status"))
        log = open(log_path, "ab")
        follower = subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, cwd=root)
        log.close()
        again = wait_for("the restarted follower", lambda: (lambda s: s if s.get("phase") == "Following"
                                                             else None)(follow_status(data)), 60, diag)
        assert (again["diffs"], again["snaps"], again["syncs"]) == (1, 0, 1), again
        assert again["last_zxid"] >= last_zxid
        with open(log_path, "rb") as f:
            assert b"resuming from the followed state at zxid" in f.read()
        follower.kill()
        follower.wait(timeout=10)
        follower = None

        # What follow mode made durable, served by a plain paddock.
        scfg = os.path.join(root, "standalone.cfg")
        with open(scfg, "w") as f:
            f.write("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    % (data, client_port))
        os.remove(os.path.join(data, "myid"))
        log = open(os.path.join(root, "standalone.log"), "ab")
        standalone = subprocess.Popen([PADDOCK_BIN, scfg], stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, cwd=root)
        log.close()
        wait_for("the standalone paddock", lambda: serving(client_port), 30, diag)
        pz = KazooClient(hosts="127.0.0.1:%d" % client_port)
        pz.start(timeout=30)
        got = {}
        walk(pz, ROOT, got)
        pz.stop()
        pz.close()
        zk.stop()
        zk.close()
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        assert not missing and not extra, (missing[:10], extra[:10])
        diff = [p for p in want if want[p] != got[p]]
        assert not diff, [(p, want[p], got[p]) for p in diff[:5]]
        assert len(want) > WRITERS * OPS_PER_WRITER // 2
    finally:
        for p in (follower, standalone):
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        ens.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_leader_sending_malformed_packets_gets_its_link_closed_with_a_reason():
    """A peer on a listed quorum address that answers OBSERVERINFO with a
    valid LEADERINFO and then a packet with a hostile length: paddock
    closes the link, logs why, keeps running and tries again."""
    import socket
    import struct

    root = tempfile.mkdtemp(prefix="paddock-follow-bad-")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(30)
    port = lsock.getsockname()[1]
    proc = None
    conns = []
    try:
        data = os.path.join(root, "data")
        os.makedirs(data)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write("%d\n" % FOLLOWER_SID)
        cfg = os.path.join(root, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n"
                    "migration.followZooKeeper=127.0.0.1:%d\n" % (data, port))
        log_path = os.path.join(root, "paddock.log")
        log = open(log_path, "ab")
        proc = subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, cwd=root)
        log.close()
        c, _ = lsock.accept()
        conns.append(c)
        c.settimeout(10)
        hello = b""
        while len(hello) < 4 + 8 + 4 + 20 + 4:
            hello += c.recv(4096)
        kind, zxid, dlen = struct.unpack(">iqi", hello[:16])
        sid, version, _cfgver = struct.unpack(">qiq", hello[16:36])
        # OBSERVERINFO (16) with LearnerInfo: sid, protocol 0x10000.
        assert (kind, dlen, sid, version) == (16, 20, FOLLOWER_SID, 0x10000)
        leaderinfo = struct.pack(">iqi", 17, 1 << 32, 4) + struct.pack(">i", 0x10000) + struct.pack(">i", -1)
        hostile = struct.pack(">iqi", 13, 0, 0x7fffffff)
        c.sendall(leaderinfo + hostile)
        # The ACKEPOCH comes back, then the link is closed on us.
        got = b""
        while True:
            b = c.recv(4096)
            if not b:
                break
            got += b
        assert struct.unpack(">i", got[:4])[0] == 18, got[:16]
        # It tries again: the server keeps going.
        c2, _ = lsock.accept()
        conns.append(c2)
        assert proc.poll() is None
        deadline = time.time() + 10
        text = ""
        while time.time() < deadline and "exceeds the limit" not in text:
            with open(log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            time.sleep(0.1)
        assert "closing the link to the ZooKeeper leader" in text and "exceeds the limit" in text, text[-2000:]
    finally:
        for c in conns:
            c.close()
        lsock.close()
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def start_follower(root, ens, extra=""):
    data = os.path.join(root, "data")
    os.makedirs(data)
    with open(os.path.join(data, "myid"), "w") as f:
        f.write("%d\n" % FOLLOWER_SID)
    client_port, = distinct_ports(1)
    cfg = os.path.join(root, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                "clientPortAddress=127.0.0.1\nmaxSessionTimeout=20000\n4lw.commands.whitelist=*\n"
                "migration.followZooKeeper=%s\n%s"
                % (data, client_port, ",".join("127.0.0.1:%d" % q for q in ens.quorum), extra))
    log_path = os.path.join(root, "paddock.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([PADDOCK_BIN, cfg], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, cwd=root)
    log.close()
    return proc, data, client_port, log_path


def test_clients_of_a_following_paddock_read_watch_and_write_through_zookeeper():
    """Kazoo clients connected only to the following paddock: their
    sessions are ZooKeeper sessions, reads and watches are served by
    paddock from the followed state, writes go to ZooKeeper's leader and
    are answered in order; the ZooKeeper leader is killed with kill -9
    mid-load and the clients keep their sessions and ephemerals. Every
    node under the root then has equal data and Stat through paddock and
    through ZooKeeper."""
    ens = Ensemble("zookeeper", n=3)
    root = tempfile.mkdtemp(prefix="paddock-follow-serve-")
    proc = None
    opened = []
    try:
        leader = ens.start_all()
        proc, data, port, log_path = start_follower(root, ens)

        def diag():
            with open(log_path, "rb") as f:
                t = f.read().decode("utf-8", "replace")[-4000:]
            return "status %s\n--- paddock\n%s\n%s" % (follow_status(data), t, ens.log_tail())

        wait_for("the first sync", lambda: follow_status(data).get("phase") == "Following", 60, diag)
        wait_for("paddock to serve", lambda: serving(port), 30, diag)
        pz = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0)
        pz.start(timeout=30)
        opened.append(pz)
        zc = KazooClient(hosts=ens.hosts(), timeout=10.0)
        zc.start(timeout=30)
        opened.append(zc)
        session = pz.client_id[0]
        # A session created through paddock is a ZooKeeper session,
        # numbered by paddock's sid as a ZooKeeper observer would.
        assert session >> 56 == FOLLOWER_SID, hex(session)
        # Writes through paddock, answered in order, seen by ZooKeeper.
        pz.ensure_path(ROOT)
        eph = pz.create(ROOT + "/eph", b"mine", ephemeral=True)
        seqs = [pz.create(ROOT + "/job-", b"%d" % i, sequence=True) for i in range(5)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5, seqs
        pz.set(ROOT + "/eph", b"changed")
        zc.sync(ROOT)
        data_z, stat_z = zc.get(eph)
        assert (data_z, stat_z.ephemeralOwner) == (b"changed", session)
        assert pz.get(eph) == zc.get(eph)
        # A failed write comes back with ZooKeeper's error.
        try:
            pz.create(ROOT + "/eph", b"again")
            assert False, "created twice"
        except NodeExistsError:
            pass
        # A watch set through paddock fires on a ZooKeeper client's write.
        fired = threading.Event()
        seen = []
        zc.create(ROOT + "/cfg", b"v1")
        pz.sync(ROOT)

        def on_change(event):
            seen.append(event)
            fired.set()
        assert pz.get(ROOT + "/cfg", watch=on_change)[0] == b"v1"
        zc.set(ROOT + "/cfg", b"v2")
        assert fired.wait(10), "the data watch did not fire"
        assert seen[0].type == "CHANGED" and seen[0].path == ROOT + "/cfg"
        assert pz.get(ROOT + "/cfg")[0] == b"v2", "the event comes before the data"
        children = []
        pz.ChildrenWatch(ROOT, lambda c: children.append(sorted(c)))
        zc.create(ROOT + "/kid", b"")
        wait_for("the child watch", lambda: any("kid" in c for c in children), 10, diag)

        # Load: two writers through paddock, one through ZooKeeper; the
        # ZooKeeper leader is killed a third of the way in.
        progress = [0] * WRITERS
        errors = []
        seen_by = [dict() for _ in range(WRITERS)]
        stop_at = time.time() + 120
        hosts = ["127.0.0.1:%d" % port, "127.0.0.1:%d" % port, ens.hosts()]
        threads = [threading.Thread(target=writer, args=(hosts[k], k, progress, errors, stop_at, seen_by[k]))
                   for k in range(WRITERS)]
        for t in threads:
            t.start()
        wait_for("a third of the load", lambda: sum(progress) >= WRITERS * OPS_PER_WRITER // 3, 90, diag)
        syncs_before = follow_status(data).get("syncs", 0)
        t_kill = time.time()
        ens.kill9(leader)
        for t in threads:
            t.join(timeout=150)
        if any(t.is_alive() for t in threads) or sum(progress) != WRITERS * OPS_PER_WRITER:
            print(diag())
        assert not any(t.is_alive() for t in threads), progress
        assert sum(progress) == WRITERS * OPS_PER_WRITER, (progress, errors[:5])
        st = follow_status(data)
        assert st["syncs"] > syncs_before, "re-attached to the new leader"
        assert st["digest_mismatches"] == 0 and st["digests_checked"] > 0
        for k in (0, 1):
            states = [str(x) for x in seen_by[k]["states"]]
            if "LOST" in states:
                print(diag())
            assert "LOST" not in states, (k, states)
            s0, s1 = seen_by[k]["sessions"]
            assert s0 == s1 and s0 >> 56 == FOLLOWER_SID, (k, hex(s0), s1)
        # The first client kept its session and its ephemeral through it.
        assert pz.client_id[0] == session
        assert pz.get(eph)[1].ephemeralOwner == session

        # Equal data and Stat through paddock and through ZooKeeper.
        new_leader = ens.leader()
        zn = KazooClient(hosts=ens.hosts(new_leader), timeout=10.0)
        zn.start(timeout=30)
        opened.append(zn)
        last = zn.create(ROOT + "/done", b"")
        zn.sync(ROOT)
        wait_for("paddock to apply the last write",
                 lambda: pz.exists(last) is not None, 30, diag)
        want, got = {}, {}
        walk(zn, ROOT, want)
        walk(pz, ROOT, got)
        assert sorted(want) == sorted(got), (sorted(set(want) ^ set(got)))[:10]
        diff = [p for p in want if want[p] != got[p]]
        assert not diff, [(p, want[p], got[p]) for p in diff[:5]]
        assert len(want) > WRITERS * OPS_PER_WRITER // 2
        print("served while following: forwarded %d, revalidations %d, node syncs diff/snap %d/%d, "
              "leader killed %.1f s before the end"
              % (st["forwarded"], st["revalidations"], st["node_syncs_diff"], st["node_syncs_snap"],
                 time.time() - t_kill))
    finally:
        for c in opened:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        ens.stop()
        shutil.rmtree(root, ignore_errors=True)
