"""What an operator of a 3-server ensemble reads: /zookeeper/config holds
the member list on every member, in the form Apache ZooKeeper 3.8 writes
(compared against a real ZooKeeper ensemble with the same server.N lines)."""

import re

import pytest
from kazoo.client import KazooClient

from ensembles import Ensemble


def config_node(e, i):
    zk = KazooClient(hosts=e.hosts(i), timeout=10.0)
    zk.start(timeout=30)
    try:
        return zk.get("/zookeeper/config")
    finally:
        zk.stop()
        zk.close()


def normalised(e, text):
    """The member list with each port replaced by its role in the ensemble."""
    for i in range(len(e.client_ports)):
        text = text.replace(":%d" % e.quorum[i], ":Q%d" % i)
        text = text.replace(":%d" % e.election[i], ":E%d" % i)
        text = text.replace(":%d" % e.client_ports[i], ":C%d" % i)
    return text


@pytest.fixture(scope="module")
def zk_config():
    e = Ensemble("zookeeper")
    try:
        e.start_all()
        yield [(normalised(e, d.decode()), s) for d, s in (config_node(e, i) for i in range(3))]
    finally:
        e.stop()


@pytest.fixture(scope="module")
def paddock_ensemble():
    e = Ensemble("paddock")
    try:
        e.start_all()
        yield e
    finally:
        e.stop()


def test_config_node_holds_the_member_list_like_zookeeper(zk_config, paddock_ensemble):
    e = paddock_ensemble
    ours = [config_node(e, i) for i in range(3)]
    texts = [normalised(e, d.decode()) for d, _ in ours]
    assert len(set(texts)) == 1, texts
    theirs = {t for t, _ in zk_config}
    assert len(theirs) == 1, theirs
    assert texts[0] == theirs.pop()
    assert re.search(r"^server\.2=127\.0\.0\.1:Q1:E1:participant;0\.0\.0\.0:C1$", texts[0], re.M), texts[0]
    assert texts[0].endswith("\nversion=0")
    for (_, st), (_, zst) in zip(ours, zk_config):
        assert (st.version, st.mzxid, st.czxid, st.data_length) == \
            (zst.version, zst.mzxid, zst.czxid, zst.data_length)
