"""A 3-server ensemble of either kind (Apache ZooKeeper or paddock) on
loopback ports, written from one member list so that both kinds get the
same server.N lines. Only processes started here are stopped, by PID."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from servers import PADDOCK_BIN, ZK_CLASSPATH

WAIT_S = 30.0

# What ZooKeeper's AdminServer needs on the classpath besides zookeeper.jar
# (Debian's libjetty9-java, libjackson2-*, libservlet-api-java).
ADMIN_JARS = [
    "/usr/share/java/jetty9-server.jar",
    "/usr/share/java/jetty9-servlet.jar",
    "/usr/share/java/jetty9-http.jar",
    "/usr/share/java/jetty9-io.jar",
    "/usr/share/java/jetty9-util.jar",
    "/usr/share/java/jetty9-security.jar",
    "/usr/share/java/servlet-api.jar",
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
    "/usr/share/java/metrics-core.jar",
    "/usr/share/java/commons-cli.jar",
]


def wait_for(what, pred, timeout, diag=lambda: ""):
    """Polls `pred` until it returns something true (returned), or fails
    after `timeout` seconds with `diag()` in the message."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s\n%s" % (what, diag()))


def follow_status(data):
    """A following server's dataDir/follow.status, or {} before it exists."""
    try:
        with open(os.path.join(data, "follow.status")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def distinct_ports(k):
    """k free loopback ports, all held open until chosen: none twice."""
    held = []
    try:
        for _ in range(k):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def four_letter(port, word, timeout=2.0):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return ""
    try:
        s.settimeout(timeout)
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    except OSError:
        return ""
    finally:
        s.close()


def mode(port):
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return None


def zk_cmd(cfg, extra_jvm=()):
    props = os.path.join(os.path.dirname(cfg), "log4j.properties")
    with open(props, "w") as f:
        f.write("log4j.rootLogger=INFO, F\n"
                "log4j.appender.F=org.apache.log4j.FileAppender\n"
                "log4j.appender.F.File=%s\n"
                "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.F.layout.ConversionPattern=%%d %%p %%c{1} %%m%%n\n"
                % os.path.join(os.path.dirname(cfg), "zookeeper.log"))
    cp = ":".join([ZK_CLASSPATH] + [j for j in ADMIN_JARS if os.path.exists(j)])
    return (["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dlog4j.configuration=file:" + props] + list(extra_jvm)
            + ["-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg])


class Ensemble:
    """n members; `bare_client_port` members get `;port` (ZooKeeper then
    binds 0.0.0.0), the others `;127.0.0.1:port`. `extra` lines go into
    every zoo.cfg; `per_server(i, ensemble)` returns more lines for member
    i; `more_ports` distinct ports more are drawn into `more_ports`."""

    def __init__(self, kind, n=3, extra="", per_server=None, bare_client_port=(1,), more_ports=0):
        self.kind = kind
        self.root = tempfile.mkdtemp(prefix="paddock-ens-%s-" % kind)
        ports = distinct_ports(3 * n + more_ports)
        self.client_ports = ports[:n]
        self.quorum = ports[n:2 * n]
        self.election = ports[2 * n:3 * n]
        self.more_ports = ports[3 * n:]
        self.lines = []
        for i in range(n):
            client = ("%d" % self.client_ports[i] if i in bare_client_port
                      else "127.0.0.1:%d" % self.client_ports[i])
            self.lines.append("server.%d=127.0.0.1:%d:%d;%s"
                              % (i + 1, self.quorum[i], self.election[i], client))
        self.cfgs = []
        for i in range(n):
            d = os.path.join(self.root, "s%d" % (i + 1))
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = os.path.join(d, "zoo.cfg")
            text = ("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n"
                    "4lw.commands.whitelist=*\n" % os.path.join(d, "data"))
            if kind == "paddock":
                text += "clientPortAddress=127.0.0.1\n"
            text += extra + (per_server(i, self) if per_server else "")
            text += "".join(l + "\n" for l in self.lines)
            with open(cfg, "w") as f:
                f.write(text)
            self.cfgs.append(cfg)
        self.procs = [None] * n

    def start(self, i):
        d = os.path.dirname(self.cfgs[i])
        log = open(os.path.join(d, "server.log"), "ab")
        cmd = zk_cmd(self.cfgs[i]) if self.kind == "zookeeper" else [PADDOCK_BIN, self.cfgs[i]]
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=d)
        log.close()

    def start_all(self):
        for i in range(len(self.procs)):
            self.start(i)
        return self.leader()

    def kill9(self, i):
        p = self.procs[i]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self.procs[i] = None

    def alive(self):
        return [i for i in range(len(self.procs)) if self.procs[i]]

    def leader(self, alive=None):
        alive = self.alive() if alive is None else alive
        deadline = time.time() + 60.0
        modes = []
        while time.time() < deadline:
            modes = [mode(self.client_ports[i]) for i in alive]
            if modes.count("leader") == 1 and modes.count("follower") == len(alive) - 1:
                return alive[modes.index("leader")]
            time.sleep(0.1)
        raise AssertionError("no stable leader among %s: %s\n%s" % (alive, modes, self.log_tail()))

    def log_tail(self, n=3000):
        out = ""
        for i in range(len(self.procs)):
            d = os.path.dirname(self.cfgs[i])
            for name in ("server.log", "zookeeper.log"):
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        out += "--- s%d %s\n" % (i + 1, name) + f.read().decode("utf-8", "replace")[-n:]
                except OSError:
                    pass
        return out

    def hosts(self, i=None):
        ports = self.client_ports if i is None else [self.client_ports[i]]
        return ",".join("127.0.0.1:%d" % p for p in ports)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.procs = [None] * len(self.procs)
        shutil.rmtree(self.root, ignore_errors=True)
