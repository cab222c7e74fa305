"""Traffic shaping in delivery without any rules file (ringmta.conf's
limits apply per site): a DNS world on loopback (dnsmasq) where several
domains share MX hosts, with provider-like sinks on 127.0.0.x. What the
sinks saw is asserted: connections at once per site (shared by the
domains of the site), a refusing site seeing a handful of connection
attempts rather than one per message, the learned per-connection limit,
and the state kept across kill -9 and a restart."""
import re
import smtplib
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port, wait_log
from dnsfix import Dnsmasq
from shpsink import ProviderSink
from test_routing import server  # noqa: F401 (the same delivery settings)


def send_many(srv, rcpts, sender="a@sender.test"):
    """One message per recipient, over one SMTP session."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for r in rcpts:
            s.sendmail(sender, [r], b"Subject: s\r\n\r\nbody\r\n")


@pytest.fixture
def world():
    port = free_port()
    dns = Dnsmasq([
        # Two domains on one MX host: one site.
        "--mx-host=a.test,mx.shared.test,10", "--mx-host=b.test,mx.shared.test,10",
        "--host-record=mx.shared.test,127.0.0.2",
        # A site that accepts and drops every connection at once.
        "--mx-host=dead.test,mx.dead.test,10", "--host-record=mx.dead.test,127.0.0.3",
        # A receiver that closes after 20 messages per connection.
        "--mx-host=yahoo.test,mx1.yahoo-test.example,10",
        "--host-record=mx1.yahoo-test.example,127.0.0.4",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.5",
    ])
    sinks = {
        "shared": ProviderSink("127.0.0.2", port, data_delay=0.3),
        "dead": ProviderSink("127.0.0.3", port, accept_close=True),
        "yahoo": ProviderSink("127.0.0.4", port, close_after=20),
    }
    yield dns, sinks, port
    for s in sinks.values():
        s.stop()
    dns.stop()


def test_domains_of_one_site_share_its_connection_limit(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port, destination_concurrency_limit=2)
    rcpts = ["u%d@a.test" % i for i in range(12)] + ["u%d@b.test" % i for i in range(12)]
    send_many(srv, rcpts)
    assert sinks["shared"].wait_for(24, timeout=60)
    # Per domain that would be 4 at once; per site it is 2.
    assert 1 <= sinks["shared"].max_active <= 2, sinks["shared"].max_active
    assert "status=deferred" not in srv.read_log()


def test_refusing_site_is_suspended_not_hammered(make_server, world):
    dns, sinks, port = world
    mport = free_port()
    srv = server(make_server, dns, port, metrics_listen="127.0.0.1:%d" % mport)
    send_many(srv, ["u%d@dead.test" % i for i in range(20)])
    assert wait_log(srv, r"shaping: site mx\.dead\.test suspended until", timeout=20)
    # Every message has had its turn: all 20 are deferred, in the queue.
    deadline = time.time() + 20
    while time.time() < deadline and srv.read_log().count("status=deferred") < 20:
        time.sleep(0.1)
    assert srv.read_log().count("status=deferred") == 20
    # A handful of connection attempts, not one per message.
    with sinks["dead"].lock:
        attempts = len(sinks["dead"].conns)
    assert 1 <= attempts <= 3, attempts
    assert srv.queue_count() == 20
    # Deferred without an attempt each: no attempt counted, and the next
    # try is when the suspension ends (a minute, not retry_min's hour).
    listing = srv.cli("queue", "list").stdout
    nexts = [int(n) for n in re.findall(r"attempts=0 next=(\d+)", listing)]
    assert len(nexts) == 20, listing
    assert all(n < time.time() + 300 for n in nexts), listing
    # `ringmta queue` shows the suspension (saved within a second or so).
    deadline = time.time() + 10
    while time.time() < deadline:
        out = srv.cli("queue", "shaping").stdout
        if re.search(r"site=mx\.dead\.test .*action=health", out):
            break
        time.sleep(0.2)
    assert re.search(r"site=mx\.dead\.test source=\* action=health value=1", out), out
    # The metrics say so too, in a format promtool accepts.
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
        text = r.read().decode()
    assert "ringmta_shaping_health_suspensions_total 1\n" in text
    assert 'ringmta_shaping_active_paths{action="health"} 1\n' in text
    assert "ringmta_shaping_suspended_paths 1\n" in text
    m = re.search(r"^ringmta_shaping_deferred_without_attempt_total (\d+)$", text, re.M)
    assert m and 19 <= int(m.group(1)) <= 20, text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_learned_messages_per_connection(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port, destination_concurrency_limit=1)
    send_many(srv, ["u%d@yahoo.test" % i for i in range(50)])
    assert sinks["yahoo"].wait_for(50, timeout=60)
    with sinks["yahoo"].lock:
        per_conn = [c["msgs"] for c in sinks["yahoo"].conns]
    assert max(per_conn) <= 20, per_conn
    assert sum(per_conn) == 50
    deadline = time.time() + 15
    while time.time() < deadline and srv.read_log().count("status=sent") < 50:
        time.sleep(0.1)
    log = srv.read_log()
    assert "max messages per connection lowered to 20" in log
    assert "status=deferred" not in log
    assert log.count("status=sent") == 50
    # The learned limit is kept across kill -9 and a restart.
    time.sleep(2.5)     # saved at most a second after it changed
    srv.kill9()
    srv.start()
    out = srv.cli("queue", "shaping").stdout
    assert re.search(r"site=mx1\.yahoo-test\.example source=default"
                     r" action=learned_max_messages value=20", out), out
