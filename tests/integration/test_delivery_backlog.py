"""The backlog bound (delivery_inflight_max): however many messages wait in
the queue, no more than the bound are in flight (read from the queue into
memory) at once, and the rest are still all delivered.

Two ways a backlog builds up: mail keeps arriving faster than a slow
receiver takes it (the committer hands every new message to the scheduler),
and a queue filled with delivery off is drained after a restart (the
scheduler's once-a-second scan of the schedule finds them all due). The
in-flight count is ringmta_deliveries_in_flight on the metrics endpoint,
sampled while the queue drains into a sink that answers each message slowly."""
import smtplib
import threading
import time
import urllib.request

import pytest

from conftest import free_port
from sink import Sink

BOUND = 4
MESSAGES = 30


def in_flight(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("ringmta_deliveries_in_flight "):
                return int(float(line.split()[1]))
    raise KeyError("ringmta_deliveries_in_flight")


def inject(srv, n):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i in range(n):
            s.sendmail("a@example.org", ["r%d@example.net" % i],
                       "Subject: backlog %d\r\n\r\nbody %d\r\n" % (i, i))


def watch(url, sink, n, timeout=90):
    """Sample the in-flight gauge until the sink has n messages; the samples."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(sink.messages) < n:
        seen.append(in_flight(url))
        time.sleep(0.02)
    return seen


def relay(make_server, sink, **kw):
    port = free_port()
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h", metrics_listen="127.0.0.1:%d" % port,
                    destination_concurrency_limit=2, smtp_reuse_limit=1000)
    settings.update(kw)
    srv = make_server(**settings)
    srv.metrics_url = "http://127.0.0.1:%d/metrics" % port
    return srv


@pytest.fixture
def slow_sink():
    s = Sink(data_delay=0.15)
    yield s
    s.stop()


@pytest.mark.parametrize("how", ["arriving", "restart"])
def test_inflight_bounded_while_backlog_drains(make_server, slow_sink, how):
    if how == "arriving":
        # Delivery on while mail arrives faster than the sink takes it.
        srv = relay(make_server, slow_sink, delivery_inflight_max=BOUND).start()
        seen = []
        t = threading.Thread(target=lambda: seen.extend(
            watch(srv.metrics_url, slow_sink, MESSAGES)))
        t.start()
        inject(srv, MESSAGES)
        t.join()
    else:
        # A queue filled with delivery off, drained after a restart.
        first = make_server(delivery="no")
        first.start()
        inject(first, MESSAGES)
        assert first.stop() == 0
        assert first.queue_count() == MESSAGES
        srv = relay(make_server, slow_sink, queue_dir=first.queue_dir,
                    delivery_inflight_max=BOUND).start()
        seen = watch(srv.metrics_url, slow_sink, MESSAGES)
    assert len(slow_sink.messages) == MESSAGES, "delivered %d of %d" % (
        len(slow_sink.messages), MESSAGES)
    assert max(seen) == BOUND, "in flight at most %d, bound %d: %s" % (max(seen), BOUND, seen)
    deadline = time.time() + 20
    while srv.queue_count() and time.time() < deadline:
        time.sleep(0.1)
    assert srv.queue_count() == 0


def test_inflight_max_reload(make_server, slow_sink):
    """A reload (SIGHUP) applies a new bound to the messages read after it."""
    srv = relay(make_server, slow_sink, delivery_inflight_max=BOUND).start()
    inject(srv, MESSAGES)
    seen = watch(srv.metrics_url, slow_sink, 8)
    assert max(seen) <= BOUND
    with open(srv.conf) as f:
        conf = f.read().replace("delivery_inflight_max = %d" % BOUND, "delivery_inflight_max = 1")
    with open(srv.conf, "w") as f:
        f.write(conf)
    srv.proc.send_signal(1)     # SIGHUP
    deadline = time.time() + 15
    while time.time() < deadline and "reload: delivery_inflight_max" not in srv.read_log():
        time.sleep(0.05)
    # What was dispatched before the reload finishes; then at most 1 at once.
    while in_flight(srv.metrics_url) > 1 and time.time() < deadline:
        time.sleep(0.02)
    seen = watch(srv.metrics_url, slow_sink, MESSAGES)
    assert len(slow_sink.messages) == MESSAGES
    assert max(seen) == 1, seen


def test_inflight_max_validated(make_server):
    srv = make_server(delivery_inflight_max=0)
    r = srv.cli("--check", check=False)
    assert r.returncode != 0 and "delivery_inflight_max" in r.stderr
