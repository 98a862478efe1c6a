"""Client SASL GSSAPI (Kerberos), differential against Apache ZooKeeper:
an MIT KDC (kdc.py) runs on loopback for this module; both servers get the
same JAAS `Server` section (Krb5LoginModule with the service keytab of
zookeeper/localhost), the same krb5.conf (-Djava.security.krb5.conf) and
the same zoo.cfg, and must agree:
- kazoo with `sasl_options={'mechanism': 'GSSAPI'}` (pure-sasl over the
  `kerberos` module) logs in with a ticket and gets the same `sasl` id;
- ZooKeeper's Java CLI with a Krb5LoginModule `Client` section logs in and
  `whoami` prints the same id;
- refusals: a garbage token, a replayed ticket, a ticket for a service key
  the server does not hold: AuthFailed with zxid 0, then closed; a client
  without a ticket cannot start the exchange at all."""

import os
import time
import struct
import subprocess
import tempfile
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

import jute
import kdc as kdcmod
from servers import Server, ZK_CLASSPATH

KINDS = ["zookeeper", "paddock"]
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
AUTH_FAILED = -115
REALM = kdcmod.REALM

missing = kdcmod.available()
try:
    import kerberos  # noqa: F401  (pure-sasl's GSSAPI needs it)
except ImportError:
    missing = missing or "the python kerberos module"
pytestmark = pytest.mark.skipif(
    missing is not None and not os.environ.get("CI"),
    reason="Kerberos tests need %s" % missing)


class Realm:
    """The KDC, its principals and ticket caches, and the JAAS file."""

    def __init__(self):
        self.kdc = kdcmod.Kdc().start()
        k = self.kdc
        self.zk_keytab = k.principal("zookeeper/localhost", "zk.keytab")
        # A service the servers hold no key for: a client that asks for a
        # ticket to it presents one the server cannot read.
        k.principal("zookeeper/127.0.0.1")
        self.keytabs = {u: k.principal(u, u + ".keytab") for u in ("alice", "bob")}
        # One ticket cache collection holds every user's tickets; a client
        # picks its own by principal (pure-sasl's `principal`), so clients of
        # different users can run at once in this process.
        self.ccache = "DIR:" + os.path.join(k.dir, "ccaches")
        os.makedirs(self.ccache[4:])
        for u, kt in self.keytabs.items():
            k.kinit(u, kt, self.ccache)
        self.jaas = os.path.join(k.dir, "jaas.conf")
        with open(self.jaas, "w") as f:
            f.write('Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n'
                    '  useKeyTab=true\n  keyTab="%s"\n  storeKey=true\n  useTicketCache=false\n'
                    '  principal="zookeeper/localhost@%s";\n};\n' % (self.zk_keytab, REALM))
            f.write('Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n'
                    '  useKeyTab=true\n  keyTab="%s"\n  storeKey=true\n  useTicketCache=false\n'
                    '  principal="alice@%s";\n};\n' % (self.keytabs["alice"], REALM))

    def server(self, kind, extra=None):
        cfg = {"authProvider.1": SASL_PROVIDER}
        cfg.update(extra or {})
        env = {"SERVER_JVMFLAGS": "-Djava.security.auth.login.config=%s -Djava.security.krb5.conf=%s"
               % (self.jaas, self.kdc.krb5_conf),
               "KRB5RCACHEDIR": self.kdc.dir}
        return Server(kind, cfg, env=env).start()

    def use(self):
        """Makes this process's Kerberos calls use this realm's tickets."""
        os.environ["KRB5_CONFIG"] = self.kdc.krb5_conf
        os.environ["KRB5CCNAME"] = self.ccache


@pytest.fixture(scope="module")
def realm():
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME")}
    r = Realm()
    yield r
    r.kdc.cleanup()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(params=KINDS, scope="module")
def krb_server(request, realm):
    srv = realm.server(request.param)
    yield srv
    srv.cleanup()


def principal(user):
    return "%s@%s" % (user, REALM)


def kazoo(srv, realm, user, host="localhost"):
    """A kazoo client logged in with `user`'s ticket (a user without one
    cannot log in)."""
    realm.use()
    c = KazooClient(hosts="%s:%d" % (host, srv.port), timeout=10,
                    connection_retry={"max_tries": 1},
                    sasl_options={"mechanism": "GSSAPI", "service": "zookeeper",
                                  "principal": principal(user)})
    c.start(timeout=15)
    return c


def sasl_reply(conn, xid, token):
    """One sasl request; (err, token or None, zxid)."""
    conn.send_frame(struct.pack(">ii", xid, jute.SASL) + jute.buf(token))
    r = jute.Reader(conn.recv_frame())
    got, zxid, err = r.i32(), r.i64(), r.i32()
    assert got == xid
    return err, (r.buf() if r.remaining() else None), zxid


def raw_gssapi(port, realm, user, service_host="localhost", first_token=None):
    """A raw-protocol GSSAPI exchange as kazoo runs it (pure-sasl). With
    `first_token`, that token is sent first instead of the client's own.
    Returns (err, zxid, closed, first token sent)."""
    from puresasl.client import SASLClient
    realm.use()
    c = jute.Conn(port, timeout=5)
    c.connect()
    cli = SASLClient(service_host, service="zookeeper", mechanism="GSSAPI",
                     principal=principal(user))
    challenge, xid, sent_first = None, 0, None
    try:
        while True:
            response = cli.process(challenge)
            if xid == 0:
                sent_first = response
                if first_token is not None:
                    response = first_token
            if cli.complete and not response:
                return 0, 0, False, sent_first
            xid += 1
            err, challenge, zxid = sasl_reply(c, xid, response or b"")
            if err != 0:
                return err, zxid, c.is_closed(wait=5), sent_first
            if cli.complete:
                # The server's last answer (null token) came: logged in.
                return 0, zxid, False, sent_first
    finally:
        c.close_socket()


def own_id(client):
    """The client's sasl id, as the server names it: the `auth` ACL is
    expanded to the creator's ids."""
    path = "/krb-id-" + uuid.uuid4().hex[:8]
    client.create(path, b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
    ids = [a.id for a in client.get_acls(path)[0]]
    return [(i.scheme, i.id) for i in ids]


# Goal: a kazoo client with alice's ticket logs in on both servers and
# gets the id sasl:alice@PADDOCK.TEST; an ACL naming it keeps bob and an
# anonymous client out.
def test_gssapi_login_and_sasl_acl(krb_server, realm):
    alice = kazoo(krb_server, realm, "alice")
    bob = kazoo(krb_server, realm, "bob")
    anon = KazooClient(hosts=krb_server.hosts, timeout=10, connection_retry={"max_tries": 1})
    anon.start(timeout=15)
    try:
        assert own_id(alice) == [("sasl", "alice@" + REALM)]
        assert own_id(bob) == [("sasl", "bob@" + REALM)]
        path = "/krb-" + uuid.uuid4().hex[:8]
        acl = [ACL(Permissions.ALL, Id("sasl", "alice@" + REALM))]
        alice.create(path, b"for alice", acl=acl)
        assert alice.get(path)[0] == b"for alice"
        for other in (bob, anon):
            with pytest.raises(NoAuthError):
                other.get(path)
    finally:
        for c in (alice, bob, anon):
            c.stop()
            c.close()


# Goal: kerberos.removeRealmFromPrincipal names the client without its
# realm, on both servers.
@pytest.mark.parametrize("kind", KINDS)
def test_remove_realm_from_principal(kind, realm):
    srv = realm.server(kind, {"kerberos.removeRealmFromPrincipal": "true"})
    try:
        alice = kazoo(srv, realm, "alice")
        try:
            assert own_id(alice) == [("sasl", "alice")]
        finally:
            alice.stop()
            alice.close()
    finally:
        srv.cleanup()


# Goal: tokens the server must not accept are refused alike on both
# servers: AuthFailed, zxid 0, connection closed; the server goes on
# serving a good client.
def test_bad_tokens_are_auth_failed_and_closed(krb_server, realm):
    # Not a Kerberos token at all.
    assert raw_gssapi(krb_server.port, realm, "alice", first_token=b"\x60\x03garbage")[:3] == \
        (AUTH_FAILED, 0, True)
    # A good exchange, then its first token (the AP-REQ) replayed.
    err, zxid, closed, ap_req = raw_gssapi(krb_server.port, realm, "alice")
    assert (err, zxid, closed) == (0, 0, False)
    assert raw_gssapi(krb_server.port, realm, "alice", first_token=ap_req)[:3] == \
        (AUTH_FAILED, 0, True)
    # A ticket for zookeeper/127.0.0.1, whose key the server does not hold.
    assert raw_gssapi(krb_server.port, realm, "bob", service_host="127.0.0.1")[:3] == \
        (AUTH_FAILED, 0, True)
    assert raw_gssapi(krb_server.port, realm, "bob")[:3] == (0, 0, False)


# Goal: hostile first tokens (random bytes, and a real AP-REQ truncated or
# with bytes flipped) are each refused with AuthFailed, zxid 0 and a
# close, on both servers, and a good client logs in afterwards.
# PADDOCK_GSSAPI_FUZZ_TOKENS sets how many (60 here; longer runs by hand).
def test_hostile_gssapi_tokens(krb_server, realm):
    import random
    rng = random.Random(int(os.environ.get("PADDOCK_GSSAPI_FUZZ_SEED", "1604")))
    ap_req = raw_gssapi(krb_server.port, realm, "alice")[3]
    tokens = []
    for i in range(int(os.environ.get("PADDOCK_GSSAPI_FUZZ_TOKENS", "60"))):
        kind = i % 3
        if kind == 0:
            tokens.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))))
        elif kind == 1:
            tokens.append(ap_req[:rng.randrange(1, len(ap_req))])
        else:
            t = bytearray(ap_req)
            for _ in range(rng.randrange(1, 6)):
                t[rng.randrange(len(t))] ^= 1 << rng.randrange(8)
            tokens.append(bytes(t))
    for t in tokens:
        c = jute.Conn(krb_server.port, timeout=5)
        c.connect()
        try:
            err, _, zxid = sasl_reply(c, 1, t)
            assert (err, zxid, c.is_closed(wait=5)) == (AUTH_FAILED, 0, True), t.hex()
        finally:
            c.close_socket()
    assert raw_gssapi(krb_server.port, realm, "bob")[:3] == (0, 0, False)


# Goal: without a ticket the client cannot make its first token (nothing
# reaches the server); such a client, served without SASL, is anonymous and
# kept out of a node whose ACL names alice, on both servers.
def test_no_ticket_cannot_log_in(krb_server, realm):
    import kerberos
    with pytest.raises(kerberos.GSSError):
        raw_gssapi(krb_server.port, realm, "carol")
    alice = kazoo(krb_server, realm, "alice")
    anon = KazooClient(hosts=krb_server.hosts, timeout=10, connection_retry={"max_tries": 1})
    anon.start(timeout=15)
    try:
        path = "/krb-" + uuid.uuid4().hex[:8]
        alice.create(path, b"x", acl=[ACL(Permissions.ALL, Id("sasl", principal("alice")))])
        with pytest.raises(NoAuthError):
            anon.get(path)
    finally:
        for c in (alice, anon):
            c.stop()
            c.close()


# Goal: ZooKeeper's own Java client (ZooKeeperMain, with a Krb5LoginModule
# `Client` section and alice's keytab) logs in on both servers and `whoami`
# prints the same sasl id.
def test_zookeeper_cli_gssapi_whoami(krb_server, realm):
    cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1",
           "-Djava.security.auth.login.config=" + realm.jaas,
           "-Djava.security.krb5.conf=" + realm.kdc.krb5_conf,
           "-cp", ZK_CLASSPATH, "org.apache.zookeeper.ZooKeeperMain",
           "-server", "localhost:%d" % krb_server.port]
    path = "/cli-krb-" + uuid.uuid4().hex[:8]
    script = "create %s v1\nget %s\nwhoami\nquit\n" % (path, path)
    r = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=90)
    out = r.stdout + "\n" + r.stderr
    assert "Created " + path in out, out[-3000:]
    assert "sasl: alice@" + REALM in out, out[-3000:]


# Goal: a Kerberos login that cannot accept tickets stops paddock's start,
# naming the reason: a keytab without the principal's key.
def test_kerberos_login_without_the_key_is_refused_at_start(realm):
    d = tempfile.mkdtemp(prefix="paddock-test-krb-")
    jaas = os.path.join(d, "jaas.conf")
    with open(jaas, "w") as f:
        f.write('Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true '
                'storeKey=true keyTab="%s" principal="zookeeper/other@%s"; };'
                % (realm.zk_keytab, REALM))
    srv = Server("paddock", {"authProvider.1": SASL_PROVIDER},
                 env={"SERVER_JVMFLAGS": "-Djava.security.auth.login.config=%s -Djava.security.krb5.conf=%s"
                      % (jaas, realm.kdc.krb5_conf)})
    with pytest.raises(RuntimeError) as e:
        srv.start()
    srv.cleanup()
    msg = str(e.value)
    assert "refusing to start" in msg and "zookeeper/other@" + REALM in msg, msg


QUORUM_JAAS = """
QuorumServer {
  com.sun.security.auth.module.Krb5LoginModule required
  useKeyTab=true keyTab="%s" storeKey=true principal="zkquorum/localhost@%s";
};
QuorumLearner {
  com.sun.security.auth.module.Krb5LoginModule required
  useKeyTab=true keyTab="%s" storeKey=true principal="%s";
};
"""


# Goal: quorum SASL with Kerberos between paddock servers (Paddock's peer
# protocol is its own, so paddock only): members whose QuorumLearner
# principal names an ensemble host (learner/127.0.0.1) form the quorum and
# serve; a member whose principal names another host is refused with a
# logged reason and kept out, as ZooKeeper's quorum server authorizes.
def test_quorum_kerberos_keeps_a_foreign_learner_out(realm):
    from ensembles import Ensemble, mode
    k = realm.kdc
    qs = k.principal("zkquorum/localhost", "zkquorum.keytab")
    files = []
    for name in ("learner/127.0.0.1", "learner/evil.example"):
        kt = k.principal(name, name.replace("/", "_") + ".keytab")
        p = os.path.join(k.dir, name.replace("/", "_") + ".jaas")
        with open(p, "w") as f:
            f.write(QUORUM_JAAS % (qs, REALM, kt, "%s@%s" % (name, REALM)))
        files.append(p)
    ens = Ensemble("paddock", 3, extra="quorum.auth.enableSasl=true\n"
                   "quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n"
                   "quorum.auth.kerberos.servicePrincipal=zkquorum/localhost@%s\n" % REALM)
    saved = {v: os.environ.get(v) for v in ("SERVER_JVMFLAGS", "KRB5RCACHEDIR")}
    try:
        os.environ["KRB5RCACHEDIR"] = k.dir
        for i in range(3):
            os.environ["SERVER_JVMFLAGS"] = (
                "-Djava.security.auth.login.config=%s -Djava.security.krb5.conf=%s"
                % (files[1 if i == 2 else 0], k.krb5_conf))
            ens.start(i)
        ens.leader([0, 1])
        time.sleep(2)
        assert mode(ens.client_ports[2]) not in ("leader", "follower"), ens.log_tail()
        logs = ens.log_tail(200000)
        assert "authenticated by quorum SASL as learner/127.0.0.1@" + REALM in logs, logs
        assert "learner/evil.example@%s is not a server of this ensemble" % REALM in logs, logs
        c = KazooClient(hosts=ens.hosts(0), timeout=10, connection_retry={"max_tries": 1})
        c.start(timeout=15)
        try:
            c.create("/krb-quorum", b"ok")
        finally:
            c.stop()
            c.close()
    finally:
        for v, val in saved.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val
        ens.stop()
