"""Read-only mode (`-Dreadonlymode.enabled=true`), the same steps against a
3-server Apache ZooKeeper ensemble and a 3-server paddock ensemble: a
member cut off from its quorum serves reads to read-only clients only,
refuses their writes with NOTREADONLY, says `ro` to `isro` and
`read-only` as its state, and once the quorum is back its read-only
clients move to a read-write server (kazoo's read_only=True client looks
for one by itself)."""

import os
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

from ensembles import Ensemble, four_letter, zk_cmd
from servers import PADDOCK_BIN

PROP = "-Dreadonlymode.enabled=true"


class ROEnsemble(Ensemble):
    """An ensemble whose members run with readonlymode.enabled, given as
    ZooKeeper takes it: a Java system property (paddock reads the same
    -D word from SERVER_JVMFLAGS)."""

    def start(self, i):
        d = os.path.dirname(self.cfgs[i])
        log = open(os.path.join(d, "server.log"), "ab")
        env = dict(os.environ)
        if self.kind == "zookeeper":
            cmd = zk_cmd(self.cfgs[i], extra_jvm=[PROP])
        else:
            cmd = [PADDOCK_BIN, self.cfgs[i]]
            env["SERVER_JVMFLAGS"] = PROP
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=d, env=env)
        log.close()


def wait_for(pred, what, timeout=30.0, ens=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s\n%s" % (what, ens.log_tail() if ens else ""))


def srvr_mode(port):
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return four_letter(port, "srvr").strip()


def mntr_state(port):
    for line in four_letter(port, "mntr").splitlines():
        if line.startswith("zk_server_state"):
            return line.split("\t", 1)[1].strip()
    return None


@pytest.fixture(params=["zookeeper", "paddock"])
def ens(request):
    # ZooKeeper creates sessions in read-only mode only as local sessions,
    # which need localSessionsEnabled (kazoo's harness sets both keys for
    # its read-only test); paddock's read-only sessions are always local.
    e = ROEnsemble(request.param,
                   extra="localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n")
    try:
        e.start_all()
        yield e
    finally:
        e.stop()


def run_read_only(ens):
    """The scenario; returns what was observed, for the same-as check."""
    seen = {}
    leader = ens.leader()
    keep = next(i for i in range(3) if i != leader)  # a follower survives
    others = [i for i in range(3) if i != keep]
    # Written through the survivor, which has applied it before it is cut off.
    w = KazooClient(hosts=ens.hosts(keep), timeout=10)
    w.start(timeout=20)
    w.create("/ro", b"before")
    w.stop()
    w.close()
    port = ens.client_ports[keep]
    seen["isro_rw"] = four_letter(port, "isro")

    for i in others:
        ens.kill9(i)
    # ZooKeeper waits max(2 s, tickTime) of looking before it serves read-only.
    wait_for(lambda: four_letter(port, "isro") == "ro", "isro = ro", 30, ens)
    seen["isro"] = four_letter(port, "isro")
    seen["srvr_mode"] = srvr_mode(port)
    seen["mntr_state"] = mntr_state(port)

    # A client that is not read-only is refused.
    plain = KazooClient(hosts=ens.hosts(keep), timeout=4, connection_retry={"max_tries": 1})
    with pytest.raises(Exception):
        plain.start(timeout=4)
    plain.stop()
    plain.close()

    ro = KazooClient(hosts=ens.hosts(keep), timeout=10, read_only=True)
    states = []
    connected_ro = threading.Event()
    connected_rw = threading.Event()

    def listen(state):
        states.append((state, ro.client_state))
        if ro.client_state == KeeperState.CONNECTED_RO:
            connected_ro.set()
        elif ro.client_state == KeeperState.CONNECTED:
            connected_rw.set()

    ro.add_listener(listen)
    ro.start(timeout=20)
    try:
        assert connected_ro.wait(10), states
        seen["client_state"] = ro.client_state
        data, stat = ro.get("/ro")
        seen["read"] = data
        assert stat.mzxid > 0
        with pytest.raises(NotReadOnlyCallError):
            ro.create("/ro-write", b"x")
        with pytest.raises(NotReadOnlyCallError):
            ro.set("/ro", b"after")
        seen["read_after_refusal"] = ro.get("/ro")[0]
        seen["children"] = sorted(ro.get_children("/"))

        # The quorum comes back: the client moves to a read-write server
        # (any member: the survivor itself once it is a follower again).
        ro_hosts_all = ens.hosts()
        ro.set_hosts(ro_hosts_all)
        for i in others:
            ens.start(i)
        ens.leader()
        assert connected_rw.wait(60), (states, ens.log_tail())
        wait_for(lambda: ro.client_state == KeeperState.CONNECTED, "read-write again", 30, ens)
        ro.create("/after-ro", b"y")
        seen["write_after"] = ro.get("/after-ro")[0]
        seen["isro_after"] = four_letter(port, "isro")
        seen["srvr_after"] = srvr_mode(port) in ("leader", "follower")
    finally:
        ro.stop()
        ro.close()
    return seen


def test_read_only_mode(ens):
    seen = run_read_only(ens)
    assert seen == {
        "isro_rw": "rw",
        "isro": "ro",
        "srvr_mode": "read-only",
        "mntr_state": "read-only",
        "client_state": KeeperState.CONNECTED_RO,
        "read": b"before",
        "read_after_refusal": b"before",
        "children": ["ro", "zookeeper"],
        "write_after": b"y",
        "isro_after": "rw",
        "srvr_after": True,
    }, (ens.kind, seen)
