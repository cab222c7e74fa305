"""One destination on every worker (core/delivery/delivery_spread.c): with
workers = 2 and a relayhost (a provider-like sink on loopback that records
every connection, every message and the most connections it saw at once),
the mail to the one next hop is carried by both workers' sessions, while
the limits stay those of one site: never more connections at once than the
limit, never more messages or connections per time than the rules' rates,
and every message delivered exactly once."""
import smtplib
import time
import urllib.request

from conftest import free_port, relay_server
from shpsink import ProviderSink


def worker_sessions(srv):
    """ringmta_delivery_worker_sessions_total per worker, from /metrics."""
    with urllib.request.urlopen(srv.metrics_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("ringmta_delivery_worker_sessions_total{"):
            w = line.split('worker="', 1)[1].split('"', 1)[0]
            out[int(w)] = int(float(line.rsplit(" ", 1)[1]))
    return out


def start(make_server, sink, **kw):
    mport = free_port()
    srv = relay_server(make_server, sink, workers="2",
                       metrics_listen="127.0.0.1:%d" % mport, **kw)
    srv.metrics_url = "http://127.0.0.1:%d" % mport
    return srv


def send(srv, n, tag):
    rcpts = ["%s%03d@dest.test" % (tag, i) for i in range(n)]
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        for r in rcpts:
            c.sendmail("a@sender.test", [r], "Subject: %s\r\n\r\nbody\r\n" % r)
    return rcpts


def wait_all(sink, n, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and sink.count() < n:
        time.sleep(0.1)
    time.sleep(0.5)     # anything sent twice would show now
    return sink.count()


def delivered_rcpts(sink):
    with sink.lock:
        return sorted(r.strip("<>") for m in sink.messages for r in m["rcpts"])


def max_in_window(times, window):
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_relayhost_on_both_workers_within_the_connection_limit(make_server):
    port = free_port()
    sink = ProviderSink("127.0.0.1", port, data_delay=0.1)
    try:
        srv = start(make_server, sink, destination_concurrency_limit="4")
        rcpts = send(srv, 150, "c")
        assert wait_all(sink, len(rcpts)) == len(rcpts)
        # (c) each message exactly once
        assert delivered_rcpts(sink) == sorted(rcpts)
        # (b) the one site's limit, whatever the number of workers
        assert 1 <= sink.max_active <= 4, sink.max_active
        # (a) both workers opened sessions to the one next hop
        ws = worker_sessions(srv)
        assert sorted(ws) == [0, 1] and ws[0] > 0 and ws[1] > 0, ws
        # Handing units between workers costs a few connections, never
        # a storm (a unit handed back and taken again by its own worker
        # would open one per ready session).
        assert len(sink.conns) <= 30, len(sink.conns)
        deadline = time.time() + 20
        while time.time() < deadline and srv.queue_count() != 0:
            time.sleep(0.2)
        assert srv.queue_count() == 0
    finally:
        sink.stop()


def test_rates_hold_across_workers(make_server, tmp_path):
    """The rules' message and connection rates are one site's, however
    many workers send: the receiver sees no more per second than the rule
    allows (burst 1: one every 1/rate seconds), and the whole run lasts at
    least as long as the rate says (two workers each at the full rate
    would take half)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("default:\n"
                     "  max_connections: 3\n"
                     "  message_rate: 5/s burst 1\n"
                     "  connection_rate: 2/s burst 1\n"
                     "  max_messages_per_connection: 4\n")
    port = free_port()
    sink = ProviderSink("127.0.0.1", port)
    try:
        srv = start(make_server, sink, shaping_rules=str(rules))
        rcpts = send(srv, 30, "r")
        assert wait_all(sink, len(rcpts)) == len(rcpts)
        assert delivered_rcpts(sink) == sorted(rcpts)
        assert sink.max_active <= 3, sink.max_active
        with sink.lock:
            msg_times = [m["time"] for m in sink.messages]
            opens = [c["opened"] for c in sink.conns]
        # 5/s burst 1: 0.2 s apart; a second's window holds 5 (6 with
        # both ends), one more for a message held up on its way.
        assert max_in_window(msg_times, 1.0) <= 7, sorted(msg_times)
        assert max(msg_times) - min(msg_times) >= 29 / 5 - 1.0
        # 2/s burst 1 for connections, the same way.
        assert max_in_window(opens, 1.0) <= 4, sorted(opens)
        assert max(opens) - min(opens) >= (len(opens) - 1) / 2 - 1.0
        ws = worker_sessions(srv)
        assert ws.get(0, 0) > 0 and ws.get(1, 0) > 0, ws
    finally:
        sink.stop()
