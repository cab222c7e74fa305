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


# --- man pages -----------------------------------------------------------

def unescape(text):
    return text.replace("\\-", "-").replace("\\e", "\\")


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_man_page_renders_without_warnings(page):
    r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="")
    r = subprocess.run(["man", "--warnings=w", "-l", page], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "ringmta" in r.stdout


def test_conf_page_names_every_setting_with_its_default():
    shown = settings(run("config", "show").stdout)
    with open(MAN5) as f:
        page = f.read()
    # Each setting is a tagged paragraph: .TP / .BR key " = default".
    documented = {}
    for m in re.finditer(r'^\.TP\n\.BR (\w+) " =(.*)"$', page, re.M):
        documented[m.group(1)] = unescape(m.group(2).strip())
    missing = sorted(set(shown) - set(documented))
    assert not missing, "settings missing from ringmta.conf.5: %s" % missing
    stale = sorted(set(documented) - set(shown))
    assert not stale, "ringmta.conf.5 documents unknown settings: %s" % stale
    wrong = {k: (documented[k], v) for k, v in shown.items()
             if k != "hostname" and documented[k] != v}
    assert not wrong, "ringmta.conf.5 defaults (page, binary): %s" % wrong


def test_command_page_names_every_verb():
    with open(MAN8) as f:
        page = unescape(f.read())
    usage = run("--help").stdout
    for verb in ("config", "queue", "suppress", "domain", "shaping"):
        assert verb in usage
        assert re.search(r"^\.SS %s$" % verb, page, re.M), verb
    for sub in ("summary", "list", "show", "hold", "release", "delete", "bounce", "flush",
                "count", "check", "compact", "shaping"):
        assert "queue %s" % sub in page, sub
    for verb in ("suspend", "resume", "suspensions", "top"):
        assert verb in usage and verb in page, verb
    for sub in ("add", "remove", "check", "list", "purge"):
        assert "suppress %s" % sub in page, sub
    for opt in ("-c", "-o", "--check", "-v", "--version", "config show -n"):
        assert opt in page, opt


# --- the systemd unit, sysusers, tmpfiles, logrotate ------------------------

def test_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    with open(os.path.join(DIST, "ringmta.service.in")) as f:
        unit = f.read()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert "ExecStart=@bindir@/ringmta -c /etc/ringmta/ringmta.conf" in unit
    # The binary under test stands in for the installed one, and the man
    # pages of Documentation= are looked up in a tree of ours.
    (tmp_path / "ringmta.service").write_text(
        unit.replace("@bindir@/ringmta", os.path.abspath(BIN)))
    for page, sect in ((MAN8, "8"), (MAN5, "5")):
        d = tmp_path / "man" / ("man" + sect)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, d)
    env = dict(os.environ, MANPATH=str(tmp_path / "man"))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "ringmta.service")],
                       capture_output=True, text=True, env=env, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "ringmta.service" not in out, out


def test_sysusers_and_tmpfiles_create_user_and_directories(tmp_path):
    if os.geteuid() != 0 or shutil.which("systemd-sysusers") is None:
        pytest.skip("needs root and systemd-sysusers (applied under --root)")
    (tmp_path / "etc").mkdir()
    for tool, name in (("systemd-sysusers", "ringmta.sysusers"),
                       ("systemd-tmpfiles", "ringmta.tmpfiles")):
        args = [tool, "--root=%s" % tmp_path]
        if tool == "systemd-tmpfiles":
            args.append("--create")
        r = subprocess.run(args + [os.path.join(DIST, name)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
    with open(tmp_path / "etc" / "passwd") as f:
        user = [l for l in f if l.startswith("ringmta:")]
    assert user, "no ringmta user"
    uid = int(user[0].split(":")[2])
    for d in ("var/spool/ringmta", "var/log/ringmta"):
        st = os.stat(tmp_path / d)
        assert st.st_uid == uid and st.st_mode & 0o777 == 0o750, d
    assert os.stat(tmp_path / "etc" / "ringmta").st_uid == 0


def test_logrotate_example_parses(tmp_path):
    if shutil.which("logrotate") is None and not os.path.exists("/usr/sbin/logrotate"):
        pytest.skip("logrotate is not installed")
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "events.log").write_text("x\n")
    with open(os.path.join(DIST, "ringmta.logrotate")) as f:
        conf = f.read()
    me = "root" if os.geteuid() == 0 else None
    if me is None:
        pytest.skip("the example's su/create lines need root to check")
    conf = conf.replace("/var/log/ringmta", str(tmp_path / "log")).replace("ringmta ringmta", "root root")
    (tmp_path / "lr.conf").write_text(conf)
    r = subprocess.run([logrotate, "-d", "-s", str(tmp_path / "state"), str(tmp_path / "lr.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr


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
