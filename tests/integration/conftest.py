"""Fixtures for integration tests: start the real ringmta binary on a free
loopback port with its own queue directory, talk to it with real clients,
stop it with SIGTERM and require a clean exit."""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

SRCDIR = os.environ.get("RINGMTA_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("RINGMTA_BIN", os.path.join(SRCDIR, "build", "core", "ringmta"))


_ports_given = set()


def free_port():
    """A loopback port nothing listens on now, and never one this run
    handed out before: the kernel may give a port it just gave again (10 of
    20,000 runs of four calls in a row here), and a test that takes one
    port for ringmta and another for a peer that must refuse connections
    would then have ringmta talk to itself."""
    for _ in range(1000):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no loopback port left that was not handed out before")


class Server:
    def __init__(self, tmpdir, **settings):
        self.tmpdir = tmpdir
        self.port = free_port()
        self.admin_port = free_port()
        self.queue_dir = os.path.join(tmpdir, "queue")
        self.log_path = os.path.join(tmpdir, "ringmta.log")
        self.settings = {
            "listen": "127.0.0.1:%d" % self.port,
            "queue_dir": self.queue_dir,
            "hostname": "mx.test.invalid",
            "workers": "2",
            "queue_map_size": "256M",
            "log_level": "info",
            # Inbound tests keep mail in the queue; delivery tests turn
            # this on with loopback sinks and a loopback DNS server.
            "delivery": "no",
            # Never the machine's resolver: tests talk to loopback only.
            "dns_servers": "127.0.0.1:9",
            "smtp_allow_private_destinations": "yes",    # the sinks are on loopback
            # The admin API (the queue CLI's verbs talk to it) on a port of its own.
            "admin_listen": "127.0.0.1:%d" % self.admin_port,
        }
        self.settings.update({k: str(v) for k, v in settings.items()})
        self.conf = os.path.join(tmpdir, "ringmta.conf")
        with open(self.conf, "w") as f:
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))
        self.proc = None
        self.log = None

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        mark = len(self.read_log())     # a restart must see its own "ready:"
        self.proc = subprocess.Popen([BIN, "-c", self.conf], stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ringmta exited %s:\n%s" % (self.proc.returncode, self.read_log()))
            if "ready:" in self.read_log()[mark:]:
                return self
            time.sleep(0.05)
        raise RuntimeError("ringmta did not become ready:\n" + self.read_log())

    def write_conf(self):
        """The file again from self.settings (a test changed them)."""
        with open(self.conf, "w") as f:
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.log.close()
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def cli(self, *args, check=True):
        # "queue list" and "queue show" read the store directly here, in the
        # offline format the tests parse (the admin API's forms of them are
        # tested in test_admin_cli.py).
        args = list(args)
        if args[:1] == ["queue"] and args[1:2] in (["list"], ["show"]):
            args.insert(1, "--offline")
        # Bytes, not text=True: stored messages keep their CRLFs.
        r = subprocess.run([BIN, "-c", self.conf] + args, capture_output=True, timeout=60)
        r.stdout = r.stdout.decode("utf-8", "replace")
        r.stderr = r.stderr.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise AssertionError("ringmta %s failed (%d): %s" % (args, r.returncode, r.stderr))
        return r

    def queue_count(self):
        return int(self.cli("queue", "count").stdout.strip())

    def queue_ids(self):
        out = self.cli("queue", "list").stdout
        return re.findall(r"^([0-9a-f]{16}) ", out, re.M)

    def queue_show(self, qid):
        return self.cli("queue", "show", qid).stdout


@pytest.fixture
def make_server():
    servers = []
    dirs = []

    def make(**settings):
        d = tempfile.mkdtemp(prefix="ringmta-it-")
        dirs.append(d)
        s = Server(d, **settings)
        servers.append(s)
        return s

    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            rc = s.stop()
            assert rc == 0, "ringmta exited %s on SIGTERM:\n%s" % (rc, s.read_log())
        if s.proc is not None and re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error: ",
                                            s.read_log()):
            raise AssertionError("sanitizer report:\n" + s.read_log())
    for d in dirs:
        subprocess.run(["rm", "-rf", d])


@pytest.fixture
def server(make_server):
    return make_server().start()


class Raw:
    """A raw SMTP connection for byte-exact tests."""

    def __init__(self, port, host="127.0.0.1", family=socket.AF_INET, greet=True):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        self.buf = b""
        if greet:
            self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One whole (possibly multi-line) reply, as a list of lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def code(self):
        return self.reply()[-1][:3]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection (after any data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def raw_factory():
    conns = []

    def make(port, **kw):
        c = Raw(port, **kw)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()


def proc_status_kb(pid, field):
    """A size field of /proc/PID/status (VmRSS, RssAnon, VmHWM...) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def wait_until(cond, timeout=15):
    """True once cond() is true, polled every 50 ms for up to timeout s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def wait_log(srv, pattern, timeout=15):
    """True once the regular expression pattern matches the server's log."""
    return wait_until(lambda: re.search(pattern, srv.read_log()), timeout)


def relay_server(make_server, sink, **kw):
    """A started server that delivers everything to sink, retrying only
    after an hour (a test sees one attempt per message)."""
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h")
    settings.update(kw)
    return make_server(**settings).start()


RIG = os.path.join(SRCDIR, "..", "shared", "rig")


def postfix_usable():
    """Whether the shared rig can bring up Debian's Postfix (needs root)."""
    return (shutil.which("postfix") is not None and os.geteuid() == 0 and
            os.path.exists(os.path.join(RIG, "postfix-up.sh")))


class PostfixRig:
    """The rig's Postfix on a free loopback port (self.port), relaying to
    relay_port; purged and stopped on exit. extra_main: more main.cf
    lines (the rig's EXTRA_MAIN)."""

    def __init__(self, relay_port, extra_main=""):
        self.port = free_port()
        self.relay_port = relay_port
        self.extra_main = extra_main

    def __enter__(self):
        env = dict(os.environ, LISTEN="127.0.0.1:%d" % self.port,
                   RELAY="[127.0.0.1]:%d" % self.relay_port, MAILLOG="none", PROCESS_LIMIT="20",
                   EXTRA_MAIN=self.extra_main)
        up = subprocess.run(["bash", os.path.join(RIG, "postfix-up.sh"), "--purge"], env=env,
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        return self

    def __exit__(self, *exc):
        subprocess.run(["bash", os.path.join(RIG, "postfix-down.sh"), "--purge"],
                       capture_output=True, timeout=120)
        return False


@contextlib.contextmanager
def postfix_next_hop(sink, extra_main=""):
    """Postfix (the rig's postfix-up.sh) on a free loopback port, relaying
    everything to sink (with extra_main, more main.cf lines); yields its
    port and takes it down after."""
    with PostfixRig(sink.port, extra_main) as rig:
        yield rig.port
