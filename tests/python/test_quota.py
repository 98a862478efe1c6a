"""Quotas, differential against Apache ZooKeeper 3.8: zkCli's setquota
-n/-b/-N/-B, listquota and delquota print the same; the server-maintained
`zookeeper_stats` follow creates, sets and deletes the same way; `mntr`
shows the same quota gauges; with enforceQuota a hard limit refuses a
write with QuotaExceeded (-125) where ZooKeeper does; a 3-server paddock
ensemble keeps the same figures on every member."""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError

from ensembles import Ensemble, four_letter
from servers import Server
from test_cli import normalise, zkcli

SCRIPT = """create /qd d
create /qd/a 12345
setquota -n 5 /qd
listquota /qd
get /zookeeper/quota/qd/zookeeper_limits
get /zookeeper/quota/qd/zookeeper_stats
create /qd/b xyz
create /qd/c
set /qd/a 1
listquota /qd
setquota -b 100 /qd
setquota -N 7 /qd
listquota /qd
setquota -n 3 /qd/a
delquota -n /qd
listquota /qd
delquota /qd
listquota /qd
ls /zookeeper/quota
setquota -n 2 /zookeeper/quota/x
setquota -n 2 /missing
setquota -n 0 /qd
create /qe e
create /qe/x 1234
setquota -N 9 /qe
setquota -B 50 /qe
create /qd/z zz
setquota -n 4 /qd
create /qe/y/ 1
create /qe/y 1
delete /qe/x
listquota /qe
quit
"""


def quota_gauges(port):
    return {k: v for k, v in (l.split("\t", 1) for l in four_letter(port, "mntr").splitlines()
                               if "_quota_" in l)}


def test_zkcli_quota_commands_match_zookeeper(zk, paddock):
    rc_z, out_z = zkcli(zk, SCRIPT)
    rc_p, out_p = zkcli(paddock, SCRIPT)
    for expected in ["Output quota for /qd count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
                     "Output stat for /qd count=2,bytes=6", "Output stat for /qd count=4,bytes=5",
                     "/qd/a has a parent /qd which has a quota",
                     "quota for /qd does not exist.",
                     "Output stat for /qe count=2,bytes=2"]:
        assert expected in out_p, "missing %r in zkCli output:\n%s" % (expected, out_p)
    assert rc_z == rc_p
    assert normalise(out_p) == normalise(out_z)
    gz, gp = quota_gauges(zk.port), quota_gauges(paddock.port)
    assert gp == {
        "zk_qd_quota_count_limit_per_namespace": "4",
        "zk_qd_quota_bytes_limit_per_namespace": "-1",
        "zk_qd_quota_count_usage_per_namespace": "5",
        "zk_qd_quota_bytes_usage_per_namespace": "7",
        "zk_qe_quota_count_limit_per_namespace": "9",
        "zk_qe_quota_bytes_limit_per_namespace": "50",
        "zk_qe_quota_count_usage_per_namespace": "2",
        "zk_qe_quota_bytes_usage_per_namespace": "2",
    }
    assert gp == gz


def enforce_steps(server):
    """Writes against hard and soft limits; returns each outcome."""
    out = []
    c = KazooClient(hosts=server.hosts, timeout=10)
    c.start(timeout=20)
    try:
        c.create("/eq", b"")
        c.create("/zookeeper/quota/eq", b"")
        c.create("/zookeeper/quota/eq/zookeeper_limits",
                 b"count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=3")
        c.create("/zookeeper/quota/eq/zookeeper_stats", b"count=0,bytes=0")
        c.create("/soft", b"")
        c.create("/zookeeper/quota/soft", b"")
        c.create("/zookeeper/quota/soft/zookeeper_limits", b"count=1,bytes=1")
        c.create("/zookeeper/quota/soft/zookeeper_stats", b"count=0,bytes=0")

        def attempt(name, f):
            try:
                f()
                out.append((name, "ok"))
            except QuotaExceededError:
                out.append((name, "QuotaExceeded"))

        attempt("create a", lambda: c.create("/eq/a", b"0123456789"))
        attempt("create b", lambda: c.create("/eq/b", b""))
        attempt("create c (4th node)", lambda: c.create("/eq/c", b""))
        attempt("set a to 30 bytes", lambda: c.set("/eq/a", b"x" * 30))
        attempt("set a to 20 bytes", lambda: c.set("/eq/a", b"x" * 20))
        attempt("set b to 1 byte", lambda: c.set("/eq/b", b"y"))
        attempt("delete b", lambda: c.delete("/eq/b"))
        attempt("create c", lambda: c.create("/eq/c", b""))
        t = c.transaction()
        t.create("/eq/d", b"")
        r = t.commit()
        out.append(("multi past the limit", [type(x).__name__ for x in r]))
        attempt("soft limits do not refuse", lambda: c.create("/soft/x", b"many bytes"))
        out.append(("stats", c.get("/zookeeper/quota/eq/zookeeper_stats")[0]))
        out.append(("soft stats", c.get("/zookeeper/quota/soft/zookeeper_stats")[0]))
    finally:
        c.stop()
        c.close()
    return out


@pytest.fixture(params=["zookeeper", "paddock"])
def enforcing(request):
    # zoo.cfg's enforceQuota: ZooKeeper takes an unknown key as the system
    # property zookeeper.enforceQuota.
    s = Server(request.param, {"enforceQuota": "true"}).start()
    try:
        yield s
    finally:
        s.stop()
        s.cleanup()


def test_enforce_quota_refuses_past_hard_limits(enforcing):
    got = enforce_steps(enforcing)
    assert got == [
        ("create a", "ok"),
        ("create b", "ok"),
        ("create c (4th node)", "QuotaExceeded"),
        ("set a to 30 bytes", "QuotaExceeded"),
        ("set a to 20 bytes", "ok"),
        ("set b to 1 byte", "QuotaExceeded"),
        ("delete b", "ok"),
        ("create c", "ok"),
        ("multi past the limit", ["QuotaExceededError"]),
        ("soft limits do not refuse", "ok"),
        ("stats", b"count=3,bytes=20"),
        ("soft stats", b"count=2,bytes=10"),
    ], (enforcing.kind, got)


def test_ensemble_members_keep_the_same_figures():
    e = Ensemble("paddock")
    try:
        e.start_all()
        c = KazooClient(hosts=e.hosts(0), timeout=10)
        c.start(timeout=20)
        c.create("/ens", b"12")
        c.create("/zookeeper/quota/ens", b"")
        c.create("/zookeeper/quota/ens/zookeeper_limits", b"count=100,bytes=-1")
        c.create("/zookeeper/quota/ens/zookeeper_stats", b"count=0,bytes=0")
        for i in range(20):
            c.create("/ens/n%02d" % i, b"x" * i)
        for i in range(0, 20, 3):
            c.delete("/ens/n%02d" % i)
        c.set("/ens/n01", b"longer data")
        c.stop()
        c.close()
        want = None
        for i in range(3):
            r = KazooClient(hosts=e.hosts(i), timeout=10)
            r.start(timeout=20)
            r.sync("/")
            data, _ = r.get("/zookeeper/quota/ens/zookeeper_stats")
            r.stop()
            r.close()
            want = want or data
            assert data == want, (i, data, want)
        # 1 + 20 - 7 nodes; bytes: 2 + sum(0..19) - deleted (0+3+..+18) - 1 + 11
        assert want == b"count=14,bytes=%d" % (2 + sum(range(20)) - sum(range(0, 20, 3)) - 1 + 11)
        digests = {four_letter(p, "mntr").split("zk_digest\t")[1].split()[0] for p in e.client_ports}
        assert len(digests) == 1, digests
    finally:
        e.stop()
