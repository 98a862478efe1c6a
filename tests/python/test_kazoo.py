"""kazoo, unchanged, against paddock: the client API and its recipes."""

import socket
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoAuthError, NoNodeError, NodeExistsError,
                              NotEmptyError, NoChildrenForEphemeralsError)
from kazoo.protocol.states import EventType, KazooState
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, Semaphore
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.security import make_digest_acl

WAIT = 10


@pytest.fixture
def make_client(paddock):
    made = []

    def make(**kw):
        c = KazooClient(hosts=paddock.hosts, timeout=10, connection_retry={"max_tries": 3},
                        **kw)
        c.start(timeout=WAIT)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(make_client):
    return make_client()


@pytest.fixture
def root(zk):
    path = "/kazoo-" + uuid.uuid4().hex[:8]
    zk.create(path)
    return path


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# ------------------------------------------------------------ client API

def test_connected_state_is_not_read_only(zk):
    assert zk.state == KazooState.CONNECTED
    assert zk.client_state == "CONNECTED"


def test_crud_and_stat(zk, root):
    p = zk.create(root + "/a", b"one")
    assert p == root + "/a"
    data, stat = zk.get(p)
    assert data == b"one" and stat.version == 0 and stat.dataLength == 3
    stat2 = zk.set(p, b"two", version=0)
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid
    with pytest.raises(BadVersionError):
        zk.set(p, b"x", version=0)
    with pytest.raises(NodeExistsError):
        zk.create(p)
    with pytest.raises(NoNodeError):
        zk.create(root + "/missing/child")
    zk.create(p + "/c")
    with pytest.raises(NotEmptyError):
        zk.delete(p)
    zk.delete(p, recursive=True)
    assert zk.exists(p) is None


def test_create_with_stat_makepath_and_sequence(zk, root):
    path, stat = zk.create(root + "/x/y/z", b"d", makepath=True, include_data=True)
    assert path == root + "/x/y/z" and stat.dataLength == 1
    s1 = zk.create(root + "/seq-", sequence=True)
    s2 = zk.create(root + "/seq-", sequence=True)
    assert s1 == root + "/seq-0000000001" and s2 == root + "/seq-0000000002"
    zk.ensure_path(root + "/x/y/z")
    assert sorted(zk.get_children(root)) == ["seq-0000000001", "seq-0000000002", "x"]
    children, stat = zk.get_children(root, include_data=True)
    assert stat.numChildren == 3


def test_ephemerals(make_client, root):
    a = make_client()
    b = make_client()
    a.create(root + "/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        a.create(root + "/e/c")
    assert b.exists(root + "/e").ephemeralOwner == a.client_id[0]
    gone = threading.Event()
    b.exists(root + "/e", watch=lambda ev: ev.type == EventType.DELETED and gone.set())
    a.stop()
    assert gone.wait(WAIT)
    assert b.exists(root + "/e") is None


def test_session_resumes_with_same_id(make_client, root):
    a = make_client()
    a.create(root + "/keep", ephemeral=True)
    sid, pwd = a.client_id
    b = make_client(client_id=(sid, pwd))
    assert b.client_id[0] == sid
    assert b.exists(root + "/keep").ephemeralOwner == sid


def test_acl_and_auth(make_client, root):
    a = make_client(auth_data=[("digest", "alice:pw")])
    acl = make_digest_acl("alice", "pw", all=True)
    a.create(root + "/secret", b"s", acl=[acl])
    acls, _ = a.get_acls(root + "/secret")
    assert acls[0].id.scheme == "digest" and acls[0].id.id.startswith("alice:")
    b = make_client()
    with pytest.raises(NoAuthError):
        b.get(root + "/secret")
    b.add_auth("digest", "alice:pw")
    assert b.get(root + "/secret")[0] == b"s"


def test_transactions(zk, root):
    t = zk.transaction()
    t.create(root + "/t1", b"1")
    t.create(root + "/t2", b"2")
    t.check(root + "/t1", 0)
    t.set_data(root + "/t1", b"1b")
    t.delete(root + "/t2")
    results = t.commit()
    assert results[0] == root + "/t1" and results[1] == root + "/t2"
    assert results[2] is True and results[4] is True
    assert zk.get(root + "/t1")[0] == b"1b" and zk.exists(root + "/t2") is None
    t = zk.transaction()
    t.create(root + "/t3")
    t.check(root + "/t1", 99)
    results = t.commit()
    assert isinstance(results[1], BadVersionError)
    assert zk.exists(root + "/t3") is None


def test_sync_and_server_version(zk, root):
    assert zk.sync(root) == root
    assert zk.command(b"ruok") == "imok"


def test_one_shot_watches(make_client, root):
    zk = make_client()
    other = make_client()
    zk.create(root + "/w", b"0")
    events = []
    zk.get(root + "/w", watch=events.append)
    zk.get_children(root, watch=events.append)
    other.set(root + "/w", b"1")
    other.create(root + "/new")
    wait_for(lambda: len(events) == 2, "two watch events")
    assert {(e.type, e.path) for e in events} == {(EventType.CHANGED, root + "/w"),
                                                  (EventType.CHILD, root)}
    other.set(root + "/w", b"2")
    time.sleep(0.3)
    assert len(events) == 2


# kazoo 2.11 has no addWatch API: persistent watches are covered by
# test_differential.py with the raw client.


def test_data_and_children_watch_recipes(make_client, root):
    zk = make_client()
    other = make_client()
    zk.create(root + "/dw", b"v0")
    seen, kids = [], []
    zk.DataWatch(root + "/dw")(lambda data, stat: seen.append(data))
    zk.ChildrenWatch(root)(lambda children: kids.append(sorted(children)))
    other.set(root + "/dw", b"v1")
    other.create(root + "/k1")
    wait_for(lambda: seen[-1:] == [b"v1"], "DataWatch v1")
    wait_for(lambda: kids and "k1" in kids[-1], "ChildrenWatch k1")
    other.delete(root + "/dw")
    wait_for(lambda: seen[-1:] == [None], "DataWatch deletion")


def test_lock(make_client, root):
    a, b = make_client(), make_client()
    la, lb = Lock(a, root + "/lock", "a"), Lock(b, root + "/lock", "b")
    assert la.acquire(timeout=WAIT)
    assert not lb.acquire(blocking=False)
    assert lb.contenders() == ["a"]
    got = threading.Event()
    t = threading.Thread(target=lambda: lb.acquire(timeout=WAIT) and got.set())
    t.start()
    time.sleep(0.2)
    assert not got.is_set()
    la.release()
    assert got.wait(WAIT)
    t.join(WAIT)
    lb.release()


def test_lock_released_when_holder_session_ends(make_client, root):
    a, b = make_client(), make_client()
    assert Lock(a, root + "/l2").acquire(timeout=WAIT)
    a.stop()
    assert Lock(b, root + "/l2").acquire(timeout=WAIT)


def test_semaphore(make_client, root):
    clients = [make_client() for _ in range(3)]
    sems = [Semaphore(c, root + "/sem", "c%d" % i, max_leases=2) for i, c in enumerate(clients)]
    assert sems[0].acquire(timeout=WAIT) and sems[1].acquire(timeout=WAIT)
    assert not sems[2].acquire(blocking=False)
    sems[0].release()
    assert sems[2].acquire(timeout=WAIT)
    assert sorted(sems[2].lease_holders()) == ["c1", "c2"]


def test_election(make_client, root):
    a, b = make_client(), make_client()
    ea, eb = Election(a, root + "/elect", "A"), Election(b, root + "/elect", "B")
    leader = []
    ta = threading.Thread(target=ea.run, args=(lambda: leader.append("A") or time.sleep(0.5),))
    ta.start()
    wait_for(lambda: leader == ["A"], "A to lead")
    tb = threading.Thread(target=eb.run, args=(lambda: leader.append("B"),))
    tb.start()
    assert eb.contenders()[0] == "A"
    ta.join(WAIT)
    tb.join(WAIT)
    assert leader == ["A", "B"]


def test_queue_and_locking_queue(make_client, root):
    a, b = make_client(), make_client()
    q = Queue(a, root + "/q")
    for i in range(5):
        q.put(b"item%d" % i, priority=100 - i)
    assert len(q) == 5
    assert q.get() == b"item4"
    lq_a, lq_b = LockingQueue(a, root + "/lq"), LockingQueue(b, root + "/lq")
    lq_a.put_all([b"x", b"y"])
    assert lq_b.get(timeout=WAIT) == b"x"
    assert lq_a.get(timeout=1) == b"y"
    assert lq_b.consume() and lq_a.consume()
    assert len(lq_a) == 0


def test_barrier_and_double_barrier(make_client, root):
    a, b = make_client(), make_client()
    bar = Barrier(a, root + "/bar")
    bar.create()
    passed = threading.Event()
    t = threading.Thread(target=lambda: Barrier(b, root + "/bar").wait(WAIT) and passed.set())
    t.start()
    time.sleep(0.2)
    assert not passed.is_set()
    bar.remove()
    assert passed.wait(WAIT)
    t.join(WAIT)
    d1, d2 = DoubleBarrier(a, root + "/dbar", 2), DoubleBarrier(b, root + "/dbar", 2)
    entered = threading.Event()
    t = threading.Thread(target=lambda: (d2.enter(), entered.set(), d2.leave()))
    t.start()
    time.sleep(0.2)
    assert not entered.is_set()
    d1.enter()
    assert entered.wait(WAIT)
    d1.leave()
    t.join(WAIT)
    assert not t.is_alive()


def test_counter(make_client, root):
    a, b = make_client(), make_client()
    ca, cb = Counter(a, root + "/cnt"), Counter(b, root + "/cnt")
    threads = [threading.Thread(target=lambda c=c: [c.__add__(1) for _ in range(20)]) for c in (ca, cb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    assert Counter(a, root + "/cnt").value == 40
    f = Counter(a, root + "/fcnt", default=0.5)
    f += 2.0
    assert f.value == 2.5


def test_party(make_client, root):
    a, b = make_client(), make_client()
    pa, pb = Party(a, root + "/party", "a"), Party(b, root + "/party", "b")
    pa.join()
    pb.join()
    assert sorted(pa) == ["a", "b"] and len(pb) == 2
    pb.leave()
    assert list(pa) == ["a"]
    sp = ShallowParty(a, root + "/sparty", "s")
    sp.join()
    assert list(ShallowParty(b, root + "/sparty")) == ["s"]


def test_reconnect_keeps_session(paddock, make_client, root):
    """kazoo loses its TCP connection, reconnects with the same session id
    and password; the session's ephemeral survives and a DataWatch sees the
    change made while it was away (as with ZooKeeper, kazoo first fires the
    one-shot watch with a NONE/CONNECTING event)."""
    zk = make_client()
    other = make_client()
    zk.create(root + "/rw", b"0")
    zk.create(root + "/mine", ephemeral=True)
    events, seen = [], []
    zk.get(root + "/rw", watch=events.append)
    zk.DataWatch(root + "/rw")(lambda data, stat: seen.append(data))
    sid = zk.client_id[0]
    states = []
    zk.add_listener(states.append)
    # A dropped TCP connection: shut the socket down under kazoo (it sees
    # EOF, suspends and reconnects with its session id and password).
    zk._connection._socket.shutdown(socket.SHUT_RDWR)
    other.set(root + "/rw", b"1")
    wait_for(lambda: KazooState.SUSPENDED in states and zk.state == KazooState.CONNECTED,
             "reconnect")
    assert zk.client_id[0] == sid
    assert [(e.type, e.state) for e in events] == [(EventType.NONE, "CONNECTING")]
    assert zk.exists(root + "/mine").ephemeralOwner == sid
    wait_for(lambda: seen[-1:] == [b"1"], "DataWatch to see the change")
    assert zk.get(root + "/rw")[0] == b"1"
