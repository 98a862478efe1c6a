"""Start and stop the servers under test: Apache ZooKeeper (the reference)
and the `paddock` binary, each on a free loopback port with a temporary
dataDir. Only processes started here are stopped, by PID."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PADDOCK_BIN = os.environ.get("PADDOCK_BIN", os.path.join(REPO, "target", "debug", "paddock"))
ZK_CLASSPATH = ":".join([
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    # Netty: ZooKeeper's TLS needs its Netty connection factory
    # (serverCnxnFactory=...NettyServerCnxnFactory); Debian's libnetty-java.
] + ["/usr/share/java/netty-%s.jar" % j for j in (
    "buffer", "codec", "common", "handler", "resolver", "transport",
    "transport-native-epoll", "transport-native-unix-common")])
START_TIMEOUT_S = 60.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ruok(port, timeout=1.0):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        s.settimeout(timeout)
        s.sendall(b"ruok")
        return s.recv(16) == b"imok"
    except OSError:
        return False
    finally:
        s.close()


def serving(port, timeout=1.0):
    """False while the server answers srvr with "not currently serving"."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        s.settimeout(timeout)
        s.sendall(b"srvr")
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        return False
    finally:
        s.close()
    return bool(out) and b"not currently serving" not in out


class Server:
    """One server process. kind is "zookeeper" or "paddock"."""

    def __init__(self, kind, extra=None, tick_ms=2000, env=None):
        self.kind = kind
        self.env = env
        self.extra = dict(extra or {})
        self.tick_ms = tick_ms
        self.dir = tempfile.mkdtemp(prefix="paddock-test-%s-" % kind)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "server.log")

    def config_text(self):
        lines = {
            "tickTime": str(self.tick_ms),
            "dataDir": os.path.join(self.dir, "data"),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
            "maxClientCnxns": "0",
        }
        lines.update(self.extra)
        return "".join("%s=%s\n" % kv for kv in lines.items())

    def start(self):
        self.port = free_port()
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(self.config_text())
        if self.kind == "zookeeper":
            props = os.path.join(self.dir, "log4j.properties")
            with open(props, "w") as f:
                f.write("log4j.rootLogger=INFO, F\n"
                        "log4j.appender.F=org.apache.log4j.FileAppender\n"
                        "log4j.appender.F.File=%s\n"
                        "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.F.layout.ConversionPattern=%%d %%p %%c{1} %%m%%n\n"
                        % os.path.join(self.dir, "zookeeper.log"))
            cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   "-Dlog4j.configuration=file:" + props,
                   "-Dzookeeper.admin.enableServer=false",
                   # A system property in ZooKeeper, a zoo.cfg key in paddock.
                   "-Dznode.container.checkIntervalMs=%s"
                   % self.extra.get("znode.container.checkIntervalMs", "500"),
                   # -D words of SERVER_JVMFLAGS, as zkServer.sh passes them
                   # (paddock reads the same variable).
                   ] + (self.env or {}).get("SERVER_JVMFLAGS", "").split() + [
                   "-cp", ZK_CLASSPATH,
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            if not os.path.exists(PADDOCK_BIN):
                raise RuntimeError("paddock binary not found at %s (build it or set PADDOCK_BIN)" % PADDOCK_BIN)
            cmd = [PADDOCK_BIN, cfg]
        log = open(self.log_path, "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before serving; log:\n%s"
                                   % (self.kind, self.proc.returncode, self.log_tail()))
            # ZooKeeper answers ruok before it serves sessions (it closes
            # them until then), so wait for srvr to say it serves too.
            if ruok(self.port) and serving(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("%s did not answer ruok within %ss; log:\n%s"
                           % (self.kind, START_TIMEOUT_S, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and ruok(self.port, timeout=3.0)

    def ensure_alive(self):
        """Restart (fresh data) if a previous test crashed or wedged it."""
        if not self.alive():
            self.stop()
            shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
            self.start()

    def log_tail(self, n=4000):
        out = ""
        for p in (self.log_path, os.path.join(self.dir, "zookeeper.log")):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")[-n:]
            except OSError:
                pass
        return out

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

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port
