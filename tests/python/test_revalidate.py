"""A follower confirms a reconnecting client's session only with its
leader's word (ZooKeeper's REVALIDATE), on Paddock as on Apache ZooKeeper
3.8: while the leader is stopped (SIGSTOP: no reset, nothing heard, as
when its host hangs), a follower that still believes in it does not
confirm a session from its own records; once it gives up on the leader
(syncLimit) it closes the connection. After the leader resumes, the same
session is confirmed through it."""

import os
import signal
import time

import pytest

from ensembles import Ensemble
from jute import Closed, Conn, Reader, Timeout, boolean, buf, i32, i64


def send_connect(c, session_id, passwd, timeout_ms=10000):
    body = i32(0) + i64(0) + i32(timeout_ms) + i64(session_id) + buf(passwd) + boolean(False)
    c.send_frame(body)


def connect_reply(c):
    r = Reader(c.recv_frame())
    r.i32()  # protocolVersion
    timeout_ms = r.i32()
    return {"timeOut": timeout_ms, "sessionId": r.i64()}


@pytest.mark.parametrize("kind", ["paddock", "zookeeper"])
def test_a_follower_does_not_confirm_a_session_while_its_leader_is_silent(kind):
    ens = Ensemble(kind)
    stopped = None
    try:
        leader = ens.start_all()
        f = next(i for i in range(3) if i != leader)
        first = Conn(ens.client_ports[f])
        rep = first.connect(timeout_ms=10000)
        sid, pw = rep["sessionId"], rep["passwd"]
        assert sid != 0 and rep["timeOut"] > 0
        first.close_socket()

        os.kill(ens.procs[leader].pid, signal.SIGSTOP)
        stopped = leader
        c = Conn(ens.client_ports[f], timeout=8.0)
        send_connect(c, sid, pw)
        t0 = time.time()
        try:
            got = connect_reply(c)
        except (Closed, Timeout):
            got = None
        # syncLimit is 5 ticks of 200 ms: the follower gives up on its
        # leader after about a second and closes its clients.
        assert got is None or got["sessionId"] == 0, (
            "follower %d confirmed session 0x%x after %.2fs while its leader was stopped: %r"
            % (f + 1, sid, time.time() - t0, got))
        c.close_socket()

        os.kill(ens.procs[leader].pid, signal.SIGCONT)
        stopped = None
        deadline = time.time() + 30.0
        confirmed = None
        while time.time() < deadline and confirmed is None:
            try:
                c = Conn(ens.client_ports[f], timeout=3.0)
                send_connect(c, sid, pw)
                got = connect_reply(c)
                if got["sessionId"] == sid and got["timeOut"] > 0:
                    confirmed = got
                c.close_socket()
            except (OSError, Closed, Timeout):
                pass
            if confirmed is None:
                time.sleep(0.2)
        assert confirmed, "the live session is confirmed once a leader answers\n" + ens.log_tail()
    finally:
        if stopped is not None:
            os.kill(ens.procs[stopped].pid, signal.SIGCONT)
        ens.stop()
