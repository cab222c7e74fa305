"""What ships beside the binary and what a service manager sees: the
systemd unit passes systemd-analyze verify, the man pages render without
warnings and ringmta.conf(5) names every setting the binary knows (with
its default), "config show [-n]" prints the settings like postconf, and
the daemon speaks sd_notify (READY, RELOADING, STOPPING, WATCHDOG) to a
fake NOTIFY_SOCKET."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import BIN, SRCDIR

DIST = os.path.join(SRCDIR, "dist")
MAN8 = os.path.join(SRCDIR, "docs", "man", "ringmta.8")
MAN5 = os.path.join(SRCDIR, "docs", "man", "ringmta.conf.5")


def run(*args, env=None):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=30,
                          env=env)


def settings(text):
    """key -> value of "key = value" lines, continuation lines joined."""
    out, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key is not None:
            out[key] += " " + line.strip()
        elif " = " in line or line.endswith(" ="):
            key, _, value = line.partition(" =")
            out[key] = value.strip()
    return out


# --- config show ----------------------------------------------------------

def test_config_show_prints_every_setting_and_loads_back(tmp_path):
    r = run("-o", "max_recipients=500", "config", "show")
    assert r.returncode == 0, r.stderr
    check = run("-o", "max_recipients=500", "--check", "-v")
    assert check.returncode == 0, check.stderr
    # The same settings as --check -v prints, in the same form.
    assert settings(r.stdout) == settings(check.stdout)
    assert settings(r.stdout)["max_recipients"] == "500"
    conf = tmp_path / "shown.conf"
    conf.write_text(r.stdout)
    again = run("-c", str(conf), "config", "show")
    assert again.returncode == 0, again.stderr
    assert again.stdout == r.stdout


def test_config_show_n_prints_only_changed_settings(tmp_path):
    r = run("config", "show", "-n")
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    conf = tmp_path / "ringmta.conf"
    # queue_map_size equals the default written another way: no change.
    conf.write_text("workers = 3\nqueue_map_size = 16384M\nrelay_networks = 10.0.0.0/8\n")
    r = run("-c", str(conf), "-o", "log_level=debug", "config", "show", "-n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "workers = 3\nrelay_networks = 10.0.0.0/8\nlog_level = debug\n"


def test_config_show_bad_arguments():
    r = run("config", "list")
    assert r.returncode == 2 and "config show" in r.stderr
    r = run("config", "show", "-x")
    assert r.returncode == 2 and "'-x'" in r.stderr


# --- sd_notify ------------------------------------------------------------

def linked_with_libsystemd():
    out = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    return "libsystemd.so" in out


class Notify:
    """A fake service manager's NOTIFY_SOCKET: a unix datagram socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(20)
        self.seen = []

    def next(self):
        msg = self.sock.recv(4096).decode()
        self.seen.append(msg)
        return dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)

    def until(self, key):
        """Messages up to and including the first that sets key."""
        got = []
        while True:
            m = self.next()
            got.append(m)
            if key in m:
                return got


@pytest.mark.skipif(not linked_with_libsystemd(), reason="built without libsystemd")
def test_sd_notify_ready_watchdog_reload_stop(make_server):
    s = make_server()
    sock_path = os.path.join(s.tmpdir, "notify")
    n = Notify(sock_path)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    s.log = open(s.log_path, "ab")
    s.proc = subprocess.Popen([BIN, "-c", s.conf], stdout=s.log, stderr=s.log, env=env)

    ready = n.until("READY")[-1]
    assert ready["READY"] == "1" and ready["STATUS"].startswith("ready"), n.seen
    # READY=1 comes once the listener is bound: the port answers now.
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        assert c.recv(512).startswith(b"220 "), "no greeting after READY=1"

    # Pings at half of WATCHDOG_USEC while the workers run.
    assert n.until("WATCHDOG")[-1]["WATCHDOG"] == "1"
    assert n.until("WATCHDOG")[-1]["WATCHDOG"] == "1"
    assert "watchdog: pinging every 200ms" in s.read_log()

    s.proc.send_signal(signal.SIGHUP)
    got = [m for m in n.until("RELOADING") if "WATCHDOG" not in m]
    assert got[-1]["RELOADING"] == "1" and "MONOTONIC_USEC" in got[-1], n.seen
    got = [m for m in n.until("READY") if "WATCHDOG" not in m]
    assert len(got) == 1 and got[0]["READY"] == "1", n.seen

    s.proc.send_signal(signal.SIGTERM)
    stopping = n.until("STOPPING")[-1]
    assert stopping["STOPPING"] == "1" and stopping["STATUS"].startswith("stopping"), n.seen
    assert s.proc.wait(timeout=30) == 0, s.read_log()
    s.log.close()
    n.sock.close()
