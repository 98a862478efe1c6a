"""kazoo's recipes against a 3-server paddock ensemble while its leader is
killed with SIGKILL: the recipes finish, no acknowledged write is lost, and
every server ends with the same data (zk_digest from mntr)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry

from servers import PADDOCK_BIN, free_port

WAIT_S = 30.0
N_WRITES = 1000


def four_letter(port, word, timeout=1.0):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return ""
    try:
        s.settimeout(timeout)
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    except OSError:
        return ""
    finally:
        s.close()


def mode(port):
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return None


class Ensemble:
    def __init__(self, n=3):
        self.root = tempfile.mkdtemp(prefix="paddock-ensemble-")
        self.client_ports = [free_port() for _ in range(n)]
        quorum = [free_port() for _ in range(n)]
        election = [free_port() for _ in range(n)]
        servers = "".join(
            "server.%d=127.0.0.1:%d:%d;%d\n" % (i + 1, quorum[i], election[i], self.client_ports[i])
            for i in range(n))
        self.cfgs = []
        for i in range(n):
            d = os.path.join(self.root, "s%d" % (i + 1))
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = os.path.join(d, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n"
                        "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n%s"
                        % (os.path.join(d, "data"), servers))
            self.cfgs.append(cfg)
        self.procs = [None] * n

    def start(self, i):
        log = open(os.path.join(os.path.dirname(self.cfgs[i]), "server.log"), "ab")
        self.procs[i] = subprocess.Popen([PADDOCK_BIN, self.cfgs[i]], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)

    def kill9(self, i):
        p = self.procs[i]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self.procs[i] = None

    def leader(self, alive=None):
        alive = [i for i in range(len(self.procs)) if self.procs[i]] if alive is None else alive
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            modes = [mode(self.client_ports[i]) for i in alive]
            if modes.count("leader") == 1 and modes.count("follower") == len(alive) - 1:
                return alive[modes.index("leader")]
            time.sleep(0.05)
        raise AssertionError("no stable leader among %s: %s" % (alive, modes))

    def hosts(self):
        return ",".join("127.0.0.1:%d" % p for p in self.client_ports)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def ensemble():
    e = Ensemble(3)
    try:
        for i in range(3):
            e.start(i)
        e.leader()
        yield e
    finally:
        e.stop()


def client(e):
    retry = KazooRetry(max_tries=-1, deadline=WAIT_S, max_delay=0.2)
    zk = KazooClient(hosts=e.hosts(), timeout=6.0, connection_retry=dict(max_tries=-1, max_delay=0.2),
                     command_retry=retry)
    zk.start(timeout=WAIT_S)
    return zk


def test_recipes_survive_the_leader_being_killed(ensemble):
    e = ensemble
    zk = client(e)
    try:
        counter = zk.Counter("/counter")
        acked = []
        errors = []

        def writer():
            # Each create is retried by kazoo across the failover; a create
            # that reports NodeExists after a retry was applied before.
            for i in range(N_WRITES):
                path = "/w/%04d" % i
                try:
                    zk.retry(zk.ensure_path, "/w")
                    try:
                        zk.retry(zk.create, path, b"%d" % i)
                    except Exception as ex:  # NodeExists after a retried create
                        if "NodeExists" not in type(ex).__name__:
                            raise
                    acked.append((path, time.time()))
                except Exception as ex:
                    errors.append(repr(ex))
                    return

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        old = e.leader()
        e.kill9(old)
        killed_at = time.time()
        assert acked, "writes were flowing before the kill"
        lock = zk.Lock("/lock", "me")
        assert lock.acquire(timeout=WAIT_S), "the lock recipe works after failover"
        for _ in range(10):
            zk.retry(counter.__add__, 1)
        lock.release()
        election = zk.Election("/election", "me")
        won = []
        th = threading.Thread(target=lambda: election.run(lambda: won.append(True)))
        th.start()
        th.join(WAIT_S)
        assert won, "the election recipe elected us"
        q = zk.Queue("/queue")
        for i in range(5):
            q.put(b"item%d" % i)
        got = [q.get() for _ in range(5)]
        assert got == [b"item%d" % i for i in range(5)], got
        t.join(WAIT_S * 2)
        assert not errors, errors
        assert len(acked) == N_WRITES
        assert any(at > killed_at for _, at in acked), "some writes were acknowledged after the kill"
        acked = [p for p, _ in acked]
        assert zk.retry(zk.get, "/counter")[0] == b"10"

        # The killed leader comes back and catches up; all replicas agree.
        e.start(old)
        e.leader(alive=[0, 1, 2])
        for path in acked:
            assert zk.retry(zk.exists, path) is not None, path
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            digests = set()
            for p in e.client_ports:
                for line in four_letter(p, "mntr").splitlines():
                    if line.startswith("zk_digest\t"):
                        digests.add(line.split()[1])
            if len(digests) == 1:
                break
            time.sleep(0.1)
        assert len(digests) == 1, digests
    finally:
        zk.stop()
        zk.close()
