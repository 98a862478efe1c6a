import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers import Server  # noqa: E402

_servers = {}


def _server(kind, extra=None, key=None):
    key = key or kind
    srv = _servers.get(key)
    if srv is None:
        srv = Server(kind, extra).start()
        _servers[key] = srv
    else:
        srv.ensure_alive()
    return srv


TTL = {"extendedTypesEnabled": "true"}


@pytest.fixture
def zk():
    return _server("zookeeper")


@pytest.fixture
def zk_ttl():
    return _server("zookeeper", TTL, key="zookeeper-ttl")


@pytest.fixture
def paddock():
    return _server("paddock")


@pytest.fixture
def paddock_ttl():
    return _server("paddock", TTL, key="paddock-ttl")


@pytest.fixture
def fresh_paddock():
    """A paddock of the test's own, for tests that may break the server."""
    srv = Server("paddock").start()
    yield srv
    srv.cleanup()


def pytest_sessionfinish(session, exitstatus):
    for srv in _servers.values():
        srv.cleanup()
    _servers.clear()
