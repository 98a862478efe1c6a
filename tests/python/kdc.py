"""A throwaway MIT Kerberos KDC for tests: realm PADDOCK.TEST in a temp
dir, on a free loopback port, with its own krb5.conf (KRB5_CONFIG) and
kdc.conf (KRB5_KDC_PROFILE). Needs Debian's krb5-kdc (krb5kdc, kdb5_util,
kadmin.local) and krb5-user (kinit). The KDC runs in the foreground (-n)
and is stopped by its PID; every command is bounded in time."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from servers import free_port

REALM = "PADDOCK.TEST"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")  # krb5-kdc, krb5-admin-server, krb5-user


def available():
    """The tools this fixture needs, or the first one missing."""
    for t in TOOLS:
        if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t):
            return t
    return None


def _tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


class Kdc:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="paddock-test-kdc-")
        self.port = free_port()
        self.proc = None
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        with open(self.krb5_conf, "w") as f:
            f.write(
                "[libdefaults]\n"
                "  default_realm = %(r)s\n"
                "  dns_lookup_realm = false\n"
                "  dns_lookup_kdc = false\n"
                "  dns_canonicalize_hostname = false\n"
                "  rdns = false\n"
                "  udp_preference_limit = 1\n"
                "  ticket_lifetime = 1h\n"
                "[realms]\n"
                "  %(r)s = {\n    kdc = 127.0.0.1:%(p)d\n  }\n"
                "[domain_realm]\n"
                "  localhost = %(r)s\n"
                "  127.0.0.1 = %(r)s\n" % {"r": REALM, "p": self.port})
        with open(self.kdc_conf, "w") as f:
            f.write(
                "[kdcdefaults]\n"
                "  kdc_listen = 127.0.0.1:%(p)d\n"
                "  kdc_tcp_listen = 127.0.0.1:%(p)d\n"
                "[realms]\n"
                "  %(r)s = {\n"
                "    database_name = %(d)s/principal\n"
                "    key_stash_file = %(d)s/stash\n"
                "    acl_file = %(d)s/kadm5.acl\n"
                "    max_life = 1h\n"
                "  }\n"
                "[logging]\n"
                "  kdc = FILE:%(d)s/kdc.log\n" % {"r": REALM, "p": self.port, "d": self.dir})
        self.env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf,
                        KRB5RCACHEDIR=self.dir)

    def run(self, *args, stdin=None):
        r = subprocess.run(list(args), env=self.env, input=stdin, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%s): %s %s" % (args, r.returncode, r.stdout, r.stderr))
        return r.stdout

    def kadmin(self, query):
        return self.run(_tool("kadmin.local"), "-r", REALM, "-q", query)

    def start(self):
        self.run(_tool("kdb5_util"), "create", "-s", "-r", REALM, "-P", "master-" + os.urandom(6).hex())
        log = open(os.path.join(self.dir, "krb5kdc.out"), "ab")
        self.proc = subprocess.Popen([_tool("krb5kdc"), "-n", "-r", REALM], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("krb5kdc exited with %s: %s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("krb5kdc did not listen within 20 s: " + self.log())

    def log(self):
        out = ""
        for n in ("krb5kdc.out", "kdc.log"):
            try:
                with open(os.path.join(self.dir, n)) as f:
                    out += f.read()[-3000:]
            except OSError:
                pass
        return out

    def principal(self, name, keytab=None, password=None):
        """Adds `name` (random key, or `password`); exports its keys to
        `keytab` (a file name in the KDC's dir) when given; returns the
        keytab's path."""
        if password is None:
            self.kadmin("addprinc -randkey %s" % name)
        else:
            self.kadmin("addprinc -pw %s %s" % (password, name))
        if keytab is None:
            return None
        path = os.path.join(self.dir, keytab)
        # -norandkey keeps the password's key valid for kinit -p too.
        self.kadmin("ktadd -k %s -norandkey %s" % (path, name))
        return path

    def kinit(self, principal, keytab, ccache):
        """Gets a TGT for `principal` into the ticket cache (or collection)
        named `ccache` (e.g. `DIR:/path`)."""
        env = dict(self.env, KRB5CCNAME=ccache)
        r = subprocess.run([_tool("kinit"), "-kt", keytab, principal], env=env,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("kinit %s failed: %s %s" % (principal, r.stdout, r.stderr))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
