"""ZooKeeper's settings passed as Java system properties (-D words in
SERVER_JVMFLAGS / JVMFLAGS, or zoo.cfg keys with and without the
`zookeeper.` prefix) take effect and are shown by `conf` and the
AdminServer; logs go to a file, as JSON when asked."""

import json
import os
import time
import urllib.request

import pytest
from kazoo.client import KazooClient

import jute

from ensembles import four_letter
from servers import Server, free_port


def client(srv):
    zk = KazooClient(hosts=srv.hosts, timeout=10.0)
    zk.start(timeout=30)
    return zk


def emptied_container_gone_within(srv, seconds):
    """Makes a container, gives it a child and deletes it; whether the
    emptied container is reaped within `seconds`."""
    conn = jute.Conn(srv.port)
    try:
        conn.connect()
        conn.send(jute.CREATE_CONTAINER, jute.create_body("/box", flags=jute.CONTAINER))
        conn.recv()
    finally:
        conn.close_socket()
    zk = client(srv)
    try:
        assert zk.exists("/box") is not None, "the container was made"
        zk.create("/box/x", b"")
        zk.delete("/box/x")
        deadline = time.time() + seconds
        while time.time() < deadline:
            if zk.exists("/box") is None:
                return True
            time.sleep(0.1)
        return False
    finally:
        zk.stop()
        zk.close()


@pytest.fixture
def started():
    servers = []

    def start(extra=None, env=None):
        srv = Server("paddock", extra, env=env).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.cleanup()


def test_container_check_interval_from_server_jvmflags(started):
    admin = free_port()
    srv = started({"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                   "admin.serverPort": str(admin)},
                  env={"SERVER_JVMFLAGS": "-Xmx1g -Dznode.container.checkIntervalMs=200",
                       "JVMFLAGS": "-Dzookeeper.commitLogCount=100 -Dlog4j.configuration=file:x"})
    assert emptied_container_gone_within(srv, 5.0)
    conf = four_letter(srv.port, "conf")
    assert "znode.container.checkIntervalMs=200\n" in conf, conf
    assert "zookeeper.commitLogCount=100\n" in conf, conf
    with urllib.request.urlopen("http://127.0.0.1:%d/commands/system_properties" % admin) as r:
        props = json.loads(r.read())
    assert props["znode.container.checkIntervalMs"] == "200"
    assert "log4j.configuration" not in props
    log = open(srv.log_path).read()
    assert "zookeeper.commitLogCount has no effect in paddock: " in log, log


def test_container_check_interval_from_zoo_cfg_with_prefix(started):
    srv = started({"zookeeper.znode.container.checkIntervalMs": "200"})
    assert emptied_container_gone_within(srv, 5.0)


def test_without_the_setting_containers_wait_for_the_default_minute(started):
    srv = started()
    assert not emptied_container_gone_within(srv, 2.0)


def test_json_log_file_with_rolling(started, tmp_path):
    logs = tmp_path / "logs"
    srv = started({"zookeeper.log.dir": str(logs), "zookeeper.log.format": "json",
                   "zookeeper.log.file": "paddock.log"})
    four_letter(srv.port, "ruok")
    deadline = time.time() + 10
    lines = []
    while time.time() < deadline:
        files = sorted(os.listdir(logs)) if logs.exists() else []
        lines = [l for f in files for l in open(logs / f).read().splitlines()]
        if any("serving clients" in l for l in lines):
            break
        time.sleep(0.1)
    assert files and all(f.startswith("paddock.log") for f in files), files
    records = [json.loads(l) for l in lines]
    assert records, "log lines in %s" % logs
    for r in records:
        assert {"time", "level", "myid", "component", "message"} <= set(r), r
    assert any("serving clients" in r["message"] for r in records)
    assert any(r["message"].startswith("role standalone") for r in records), records
    # Nothing but the startup line went to stderr.
    assert "serving clients" not in open(srv.log_path).read()


def _connects(port, source="127.0.0.4"):
    """A raw connection and whether the server answers its ConnectRequest."""
    try:
        c = jute.Conn(port, timeout=5.0, source=source)
    except OSError:
        # Refused while the socket connected (a reset), or a local port clash.
        return None, False
    try:
        c.connect()
        return c, True
    except (jute.Closed, jute.Timeout, OSError):
        c.close_socket()
        return None, False


@pytest.mark.parametrize("kind", ["zookeeper", "paddock"])
def test_max_cnxns_limits_connections_in_all(kind):
    """maxCnxns (zookeeper.maxCnxns) caps the server's open client
    connections, from any address: one past it is closed before its
    ConnectRequest is answered, and a slot that comes free is taken again.
    The same test runs against ZooKeeper, whose behaviour this mirrors."""
    srv = Server(kind, {"maxCnxns": "3"}).start()
    conns = []

    def connect_soon(source):
        # A slot counts until the server has seen its connection close
        # (ZooKeeper still counts the start-up probes for a moment).
        deadline = time.time() + 10
        while True:
            c, ok = _connects(srv.port, source)
            if ok:
                return c
            assert time.time() < deadline, "no slot for %s" % source
            time.sleep(0.2)

    try:
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            conns.append(connect_soon(source))
        _, ok = _connects(srv.port)
        assert not ok, "a fourth connection is refused"
        conns.pop().close_session()
        conns.append(connect_soon("127.0.0.4"))
    finally:
        for c in conns:
            c.close_socket()
        srv.cleanup()
