"""--check runs the validation start-up runs: whatever --check accepts
starts and works, whatever would fail at start (or break mail later) is
refused with a message naming the setting."""
import os
import resource
import smtplib
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, free_port
from sink import Sink


def check(tmp, **settings):
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        for k, v in settings.items():
            f.write("%s = %s\n" % (k, v))
    return subprocess.run([BIN, "-c", conf, "--check", "-v"], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="ringmta-check-")
    yield d
    subprocess.run(["rm", "-rf", d])


@pytest.mark.parametrize("key,value", [
    ("relayhost", "[127.0.0.1]:99999"),
    ("relayhost", "127.0.0.1:0"),
    ("relayhost", "mx.example.com:smtp"),
    ("relayhost", "[mx.example.com]"),
    ("metrics_listen", "localhost:3531"),
    ("metrics_listen", "127.0.0.1"),
    ("dns_servers", "localhost"),
    ("dns_servers", "127.0.0.1:70000"),
])
def test_check_refuses_bad_address_settings(tmp, key, value):
    r = check(tmp, queue_dir=os.path.join(tmp, "q"), **{key: value})
    assert r.returncode != 0, r.stdout
    assert key in r.stderr and "c.conf:2:" in r.stderr, r.stderr      # file, line, setting


def test_check_refuses_missing_queue_parent(tmp):
    r = check(tmp, queue_dir=os.path.join(tmp, "no", "such", "queue"))
    assert r.returncode != 0, r.stdout
    assert "queue_dir" in r.stderr and "parent" in r.stderr, r.stderr
    # The queue directory itself may be missing: start-up creates it.
    r = check(tmp, queue_dir=os.path.join(tmp, "queue"))
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(tmp, "queue")), "--check must not create it"


def test_check_refuses_missing_tls_files(tmp):
    r = check(tmp, queue_dir=os.path.join(tmp, "q"), tls_cert_file=os.path.join(tmp, "c.pem"),
              tls_key_file=os.path.join(tmp, "k.pem"))
    assert r.returncode != 0, r.stdout
    assert "tls_cert_file" in r.stderr and "c.pem" in r.stderr, r.stderr


def test_check_refuses_missing_auth_file(tmp):
    r = check(tmp, queue_dir=os.path.join(tmp, "q"), auth_passwd_file=os.path.join(tmp, "pw"))
    assert r.returncode != 0, r.stdout
    assert "pw" in r.stderr, r.stderr


def test_check_refuses_retry_min_above_retry_max(tmp):
    r = check(tmp, queue_dir=os.path.join(tmp, "q"), retry_min="1h", retry_max="5m")
    assert r.returncode != 0, r.stdout
    assert "retry_min" in r.stderr and "retry_max" in r.stderr, r.stderr


def test_relayhost_ip_without_brackets_means_that_address(tmp, make_server):
    """relayhost = 127.0.0.1:PORT is the address, not an MX lookup of a
    domain named "127.0.0.1" (which bounced every message as NXDOMAIN)."""
    sink = Sink()
    try:
        r = check(tmp, queue_dir=os.path.join(tmp, "q"), relayhost="127.0.0.1:%d" % sink.port)
        assert r.returncode == 0, r.stderr
        assert "relayhost = [127.0.0.1]:%d" % sink.port in r.stdout, r.stdout
        srv = make_server(delivery="yes", relayhost="127.0.0.1:%d" % sink.port,
                          retry_min="1s", retry_max="2s").start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("from@example.org", ["to@example.com"], b"Subject: x\r\n\r\nbody\r\n")
        assert sink.wait_for(1), srv.read_log()
        assert sink.messages[0]["rcpts"] == ["to@example.com"]
        assert "NXDOMAIN" not in srv.read_log()
    finally:
        sink.stop()


def test_dns_servers_list_with_blanks_starts(tmp, make_server):
    r = check(tmp, queue_dir=os.path.join(tmp, "q"), dns_servers="127.0.0.1:9, 127.0.0.2:9")
    assert r.returncode == 0, r.stderr
    assert "dns_servers = 127.0.0.1:9,127.0.0.2:9" in r.stdout, r.stdout
    # What --check accepted starts (the resolver is set up by delivery).
    make_server(delivery="yes", dns_servers="127.0.0.1:9, 127.0.0.2:9  [::1]:9").start()


def test_open_file_warning_names_the_needed_number(tmp):
    conf = os.path.join(tmp, "c.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nqueue_dir = %s\nmax_connections = 2000\n"
                "delivery = no\nqueue_map_size = 64M\nworkers = 1\nadmin_listen =\n"
                % (port, os.path.join(tmp, "q")))

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    p = subprocess.Popen([BIN, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=low_limit, text=True)
    out = ""
    try:
        deadline = time.time() + 20
        while time.time() < deadline and "ready:" not in out:
            line = p.stdout.readline()
            if not line:
                break
            out += line
    finally:
        p.terminate()
        rest, _ = p.communicate(timeout=30)
        out += rest
    warn = [l for l in out.splitlines() if "open file limit" in l]
    assert warn, out
    assert "open file limit 1024 " in warn[0] and "max_connections 2000" in warn[0], warn[0]
    assert p.returncode == 0, out
