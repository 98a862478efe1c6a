"""TLS between paddock servers (sslQuorum=true, ssl.quorum.* stores,
mutual authentication): a 3-server ensemble over TLS keeps acknowledged
writes through kill -9 of its leader, and a member presenting a
certificate from a foreign CA is refused by the others with a logged
reason while the quorum goes on without it. (Paddock's peer protocol is
its own, so there is no ZooKeeper to compare with here.)"""

import tempfile
import time

from kazoo.client import KazooClient

from certs import Certs
from ensembles import Ensemble, mode

WAIT = 30


def quorum_lines(certs, key_store):
    return ("sslQuorum=true\n"
            "ssl.quorum.keyStore.location=%s\n"
            "ssl.quorum.trustStore.location=%s\n" % (key_store, certs.ca))


def client(hosts):
    c = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": 5, "delay": 0.2})
    c.start(timeout=WAIT)
    return c


def test_ensemble_over_tls_survives_leader_kill_and_keeps_a_foreign_cert_out():
    certs = Certs(tempfile.mkdtemp(prefix="paddock-test-qtls-"))
    ens = Ensemble("paddock", 3, extra=quorum_lines(certs, certs.server_pem))
    try:
        leader = ens.start_all()
        assert "peer links over TLS" in ens.log_tail(100000)
        c = client(ens.hosts())
        for i in range(50):
            c.create("/q%02d" % i, b"v%d" % i)
        c.stop()
        c.close()
        ens.kill9(leader)
        rest = ens.alive()
        ens.leader(rest)
        c = client(",".join("127.0.0.1:%d" % ens.client_ports[i] for i in rest))
        try:
            c.sync("/")
            assert sorted(c.get_children("/")) == sorted(["zookeeper"] + ["q%02d" % i for i in range(50)])
            assert c.get("/q49")[0] == b"v49"
        finally:
            c.stop()
            c.close()
    finally:
        ens.stop()

    foreign = lambda i, e: (quorum_lines(certs, certs.foreign_pem) if i == 2
                            else quorum_lines(certs, certs.server_pem))
    ens = Ensemble("paddock", 3, per_server=foreign)
    try:
        for i in range(3):
            ens.start(i)
        ens.leader([0, 1])
        time.sleep(2)
        assert mode(ens.client_ports[2]) not in ("leader", "follower"), ens.log_tail()
        logs = ens.log_tail(200000)
        assert "refused: TLS handshake failed" in logs, logs
        c = client(ens.hosts(0))
        try:
            c.create("/without-3", b"ok")
        finally:
            c.stop()
            c.close()
    finally:
        ens.stop()


QUORUM_JAAS = """
QuorumServer {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_peer="%s";
};
QuorumLearner {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="peer"
       password="%s";
};
"""


# Goal: quorum SASL (DIGEST-MD5, quorum.auth.enableSasl with JAAS
# QuorumServer/QuorumLearner sections): members with the shared password
# form the quorum and serve; a member with a wrong password is refused with
# a logged reason and kept out.
def test_quorum_sasl_digest_md5_keeps_a_wrong_password_out():
    import os
    d = tempfile.mkdtemp(prefix="paddock-test-qsasl-")
    files = []
    for name, pw in (("good", "s3cret"), ("bad", "wrong")):
        p = os.path.join(d, name + ".conf")
        with open(p, "w") as f:
            f.write(QUORUM_JAAS % ("s3cret", pw))
        files.append(p)
    ens = Ensemble("paddock", 3, extra="quorum.auth.enableSasl=true\n"
                   "quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n")
    saved = os.environ.get("SERVER_JVMFLAGS")
    try:
        for i in range(3):
            os.environ["SERVER_JVMFLAGS"] = "-Djava.security.auth.login.config=" + files[1 if i == 2 else 0]
            ens.start(i)
        ens.leader([0, 1])
        time.sleep(2)
        assert mode(ens.client_ports[2]) not in ("leader", "follower"), ens.log_tail()
        logs = ens.log_tail(200000)
        assert "authenticated by quorum SASL as peer" in logs, logs
        assert "quorum SASL" in logs and "refused" in logs, logs
        c = client(ens.hosts(0))
        try:
            c.create("/sasl-quorum", b"ok")
        finally:
            c.stop()
            c.close()
    finally:
        if saved is None:
            os.environ.pop("SERVER_JVMFLAGS", None)
        else:
            os.environ["SERVER_JVMFLAGS"] = saved
        ens.stop()
