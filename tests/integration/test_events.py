"""Delivery events: webhooks that fail, stall and recover, a kill -9 of
ringmta during a burst (each alone, and both in one run), mail flowing
while the endpoint hangs, the event type filter, batches, long URLs alike,
the JSON event log and its reopening on SIGUSR1. Every event must arrive, in order, with no id
missing; duplicates are allowed (at-least-once) and dropped by id here, as
a receiver would."""
import http.server
import json
import os
import re
import signal
import ssl
import smtplib
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import free_port, wait_log, wait_until
from pki import Pki
from sink import Sink

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Receiver:
    """A webhook endpoint on loopback. plan: a list of what to do with the
    next requests, "fail" (500) or "stall" (answer after stall_s), then
    200 for everything. Only records answered 200 count as received."""

    def __init__(self, plan=(), stall_s=2.5, port=None, tls=None):
        self.plan = list(plan)
        self.headers = []       # of each request
        self.stall_s = stall_s
        self.requests = 0
        self.bodies = []        # raw JSON bodies answered 200
        self.events = []        # records answered 200, in arrival order
        self.by_path = {}       # the same, by the request's path
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    rec.requests += 1
                    rec.headers.append(dict(self.headers))
                    action = rec.plan.pop(0) if rec.plan else "ok"
                if action == "stall":
                    time.sleep(rec.stall_s)
                if action in ("fail", "stall"):
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.loads(body)
                with rec.lock:
                    rec.bodies.append(data)
                    rec.events.extend(data if isinstance(data, list) else [data])
                    rec.by_path.setdefault(self.path, []).extend(
                        data if isinstance(data, list) else [data])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = port or free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    @property
    def https_url(self):
        return "https://localhost:%d/hook" % self.port

    def unique(self):
        """Records by id (first arrival), and the ids in arrival order."""
        with self.lock:
            evs = list(self.events)
        seen, order = {}, []
        for e in evs:
            if e["id"] not in seen:
                seen[e["id"]] = e
                order.append(int(e["id"]))
        return seen, order

    def wait(self, cond, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond(self):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def relay(make_server, sink, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h")
    settings.update(kw)
    return make_server(**settings)


def send(srv, sender, rcpts, subject="t"):
    body = "Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\nhello\r\n" % (subject, subject)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)


def of_type(events, t):
    return [e for e in events.values() if e["type"] == t]


def check_ids_dense(order):
    """Every id from 1 to the highest arrived, first arrivals in order."""
    assert order == sorted(order), order
    assert set(order) == set(range(1, max(order) + 1)), sorted(set(order))


def test_webhook_fails_stalls_and_recovers(make_server, sink):
    rec = Receiver(plan=["fail", "fail", "stall", "fail"], stall_s=2.5)
    try:
        srv = relay(make_server, sink, webhook_url=rec.url, webhook_timeout="1").start()
        for i in range(4):
            send(srv, "from@example.org", ["a%d@example.com" % i, "b%d@example.com" % i],
                 "m%d" % i)
        # 4 receptions, 8 attempts, 8 deliveries.
        assert rec.wait(lambda r: len(r.unique()[0]) >= 20, timeout=40), rec.unique()[1]
        events, order = rec.unique()
        check_ids_dense(order)
        assert rec.requests >= 20 + 4       # the failed and stalled ones came again
        recs = of_type(events, "reception")
        assert sorted(e["message_id"] for e in recs) == ["<m%d@test>" % i for i in range(4)]
        for e in recs:
            assert e["sender"] == "from@example.org" and len(e["recipients"]) == 2
            assert e["client"] == "127.0.0.1" and e["identity"] is None
            assert e["listener"] == "127.0.0.1:%d" % srv.port and e["size"] > 0
            assert RFC3339_MS.match(e["time"])
        delivered = of_type(events, "delivered")
        attempts = of_type(events, "attempt")
        assert len(delivered) == 8 and len(attempts) == 8
        for a in attempts:
            assert a["status"] == "delivered" and a["attempt"] == 1
            assert a["mx"].endswith(":%d" % sink.port) and a["reply"].startswith("250")
            assert a["site"] == "[127.0.0.1]:%d" % sink.port
        # A reception comes before the delivery events of its message.
        first = {}
        for e in sorted(events.values(), key=lambda e: int(e["id"])):
            first.setdefault(e["queue_id"], e["type"])
        assert set(first.values()) == {"reception"}
        assert wait_log(srv, r"events: http://127\.0\.0\.1:%d/hook: .*retrying" % rec.port)
    finally:
        rec.stop()


def test_long_urls_alike_keep_their_own_cursors_and_names(make_server, sink):
    """Two webhook URLs alike in their first 100 bytes, one with a token in
    its query: each has its own cursor file and its own sink label (they
    shared both: the name was cut at 95 bytes), the token shows in neither
    the metrics nor the log, and after a restart each endpoint gets what
    it had not had. A URL listed twice is refused at start."""
    rec = Receiver()
    try:
        common = rec.url + "/" + "x" * 100
        url_a, url_b = common + "/a", common + "/b?token=s3cret"
        port = free_port()
        srv = relay(make_server, sink, webhook_url="%s,\n %s" % (url_a, url_b),  # a line each
                    webhook_events="reception",
                    metrics_listen="127.0.0.1:%d" % port).start()
        path_a, path_b = url_a[len(rec.url) - 5:], url_b[len(rec.url) - 5:]

        def receptions(path):
            with rec.lock:
                return {e["queue_id"] for e in rec.by_path.get(path, [])}

        send(srv, "from@example.org", ["a@example.com"], "n1")
        send(srv, "from@example.org", ["b@example.com"], "n2")
        assert rec.wait(lambda r: len(receptions(path_a)) == 2 and
                        len(receptions(path_b)) == 2, timeout=20), rec.by_path.keys()
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                      timeout=5).read().decode()
        labels = re.findall(r'^ringmta_event_sink_requests_total\{sink="([^"]*)"\}', text, re.M)
        assert len(labels) == 2 and len(set(labels)) == 2, labels
        assert "s3cret" not in text
        srv.stop()
        cursors = [f for f in os.listdir(srv.queue_dir) if f.startswith("events.webhook.")]
        assert len(cursors) == 2, cursors
        srv.start()
        send(srv, "from@example.org", ["c@example.com"], "n3")
        assert rec.wait(lambda r: len(receptions(path_a)) == 3 and
                        len(receptions(path_b)) == 3, timeout=20)
        srv.stop()
        with open(srv.log_path) as f:
            assert "s3cret" not in f.read()
        srv.settings["webhook_url"] = "%s,\n %s" % (url_a, url_a)
        srv.write_conf()
        with pytest.raises(RuntimeError):
            srv.start(timeout=10)
        assert wait_log(srv, r"webhook_url: .* is listed twice")
    finally:
        rec.stop()


def test_kill9_during_a_burst_loses_no_event(make_server, sink):
    rec = Receiver()
    try:
        srv = relay(make_server, sink, webhook_url=rec.url, webhook_batch_max="7",
                    webhook_batch_wait="50").start()
        accepted, stop = [], threading.Event()

        def burst():
            try:
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
                    s.ehlo()
                    for i in range(400):
                        if stop.is_set():
                            return
                        s.mail("burst@example.org")
                        s.rcpt("r%d@example.com" % i)
                        code, msg = s.data(("Subject: b%d\r\n\r\nx\r\n" % i).encode())
                        if code == 250:
                            accepted.append(msg.decode().split()[-1])
            except (smtplib.SMTPException, OSError):
                pass

        t = threading.Thread(target=burst)
        t.start()
        assert rec.wait(lambda r: len(of_type(r.unique()[0], "reception")) >= 20, timeout=20)
        srv.kill9()
        stop.set()
        t.join()
        assert 0 < len(accepted) < 400      # killed mid-burst
        srv.start()
        want = set(accepted)
        assert rec.wait(lambda r: want <= {e["queue_id"] for e in
                                           of_type(r.unique()[0], "reception")}, timeout=40)
        # Mail accepted before the kill is delivered after the restart, and
        # its delivery events arrive too; so is mail committed whose 250 the
        # kill cut off (it has a reception event): a reception event exists
        # only for a message that was stored.
        def all_delivered(r):
            ev = r.unique()[0]
            got = {e["queue_id"] for e in of_type(ev, "delivered")}
            return want | {e["queue_id"] for e in of_type(ev, "reception")} <= got
        assert rec.wait(all_delivered, timeout=40)
        events, order = rec.unique()
        check_ids_dense(order)
        assert len(of_type(events, "reception")) - len(want) <= 2
        assert all(isinstance(b, list) and 1 <= len(b) <= 7 for b in rec.bodies)
    finally:
        rec.stop()


def test_type_filter_batches_and_metrics(make_server, sink):
    rec = Receiver()
    port = free_port()
    try:
        srv = relay(make_server, sink, webhook_url=rec.url,
                    webhook_events="reception, bounced", webhook_batch_max="50",
                    webhook_batch_wait="300", metrics_listen="127.0.0.1:%d" % port).start()
        send(srv, "from@example.org", ["ok@example.com", "permfail@example.com"], "f1")
        assert rec.wait(lambda r: len(r.unique()[0]) >= 2, timeout=20)
        time.sleep(0.5)     # a wrongly sent delivered/attempt record would be here by now
        events, order = rec.unique()
        assert sorted(e["type"] for e in events.values()) == ["bounced", "reception"]
        b = of_type(events, "bounced")[0]
        assert b["recipient"] == "permfail@example.com" and b["ecode"] == "5.1.1"
        assert b["class"] == "invalid-recipient"
        assert all(isinstance(x, list) for x in rec.bodies)
        # Ids skip the filtered records: the receiver sees gaps by design.
        assert order == sorted(order)
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
        assert re.search(r'^ringmta_event_sink_requests_total\{sink="%s"\} [1-9]' %
                         re.escape(rec.url), text, re.M), text
        assert re.search(r"^ringmta_events_dropped_total 0$", text, re.M)
        assert re.search(r"^ringmta_events_last_id [1-9]", text, re.M)
    finally:
        rec.stop()


def test_event_log_json_and_reopen_on_sigusr1(make_server, sink):
    srv = relay(make_server, sink, event_log="PLACEHOLDER", event_log_format="json")
    path = os.path.join(srv.tmpdir, "events.log")
    srv.settings["event_log"] = path
    srv.write_conf()
    srv.start()

    def lines(p):
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(x) for x in f.read().splitlines()]

    send(srv, "from@example.org", ["to@example.com"], "l1")
    deadline = time.time() + 20
    while time.time() < deadline and len(lines(path)) < 3:
        time.sleep(0.05)
    first = lines(path)
    assert [e["type"] for e in first] == ["reception", "attempt", "delivered"], first
    assert [e["id"] for e in first] == ["1", "2", "3"]
    os.rename(path, path + ".1")
    srv.proc.send_signal(signal.SIGUSR1)
    assert wait_log(srv, "event log reopened")
    send(srv, "from@example.org", ["to@example.com"], "l2")
    deadline = time.time() + 20
    while time.time() < deadline and len(lines(path)) < 3:
        time.sleep(0.05)
    second = lines(path)
    assert [e["id"] for e in second] == ["4", "5", "6"], second
    assert second[0]["message_id"] == "<l2@test>"
    assert len(lines(path + ".1")) == 3


def test_suppressed_recipient_in_the_text_log(make_server):
    srv = make_server(event_log="stderr")
    srv.start()
    srv.cli("suppress", "add", "gone@example.com")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        s.mail("from@example.org")
        assert s.rcpt("gone@example.com")[0] == 550
        assert s.rcpt("here@example.com")[0] == 250
        assert s.data(b"Subject: s\r\n\r\nx\r\n")[0] == 250
    assert wait_log(srv, r"event id=\d+ type=suppressed .*recipient=gone@example.com"
                    r" action=refuse class=\S+ scope=global")
    assert wait_log(srv, r"event id=\d+ type=reception .*recipients=here@example.com ")


def test_no_sink_stores_nothing(make_server):
    srv = make_server().start()
    send(srv, "from@example.org", ["to@example.com"], "n1")
    srv.stop()
    assert not [f for f in os.listdir(srv.queue_dir) if f.startswith("events.")]
    out = srv.cli("queue", "count").stdout.strip()
    assert out == "1"


def test_log_next_retry_is_an_rfc3339_time(make_server, sink):
    """Issue 11: next= in delivery log lines was epoch seconds."""
    rec = Receiver()
    try:
        srv = relay(make_server, sink, webhook_url=rec.url).start()
        send(srv, "from@example.org", ["tempfail@example.com"], "d1")
        assert wait_log(srv, r"status=deferred .*next=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        assert not re.search(r"next=\d+ ", srv.read_log())
        assert rec.wait(lambda r: of_type(r.unique()[0], "deferred"), timeout=20)
        d = of_type(rec.unique()[0], "deferred")[0]
        assert RFC3339_MS.match(d["next_retry"]) and d["ecode"] == "4.2.1"
        a = of_type(rec.unique()[0], "attempt")[0]
        assert a["status"] == "deferred" and a["next_retry"] == d["next_retry"]
    finally:
        rec.stop()


def test_backlog_bound_drops_the_oldest(make_server, sink):
    port = free_port()      # nobody listens there yet: the endpoint is down
    srv = relay(make_server, sink, webhook_url="http://127.0.0.1:%d/hook" % port,
                events_max_backlog="100").start()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        for i in range(45):     # 135 events: reception, attempt, delivered
            s.sendmail("from@example.org", ["r%d@example.com" % i], b"Subject: b\r\n\r\nx\r\n")
    assert wait_log(srv, r"events: backlog over events_max_backlog=100: dropped the \d+"
                    r" oldest events", timeout=20)
    rec = Receiver(port=port)
    try:
        assert rec.wait(lambda r: max(r.unique()[1] or [0]) >= 135, timeout=30)
        events, order = rec.unique()
        # The batch the sink held while the endpoint was down (one record)
        # goes first, then what the bound left: the newest, all of them.
        assert order == sorted(order) and order[1] > order[0] + 1
        assert set(order[1:]) == set(range(order[1], 136))
        assert len(order) <= 1 + 100 + 3 * 2    # the bound, give or take a round
    finally:
        rec.stop()


def test_https_webhook_verified_with_headers_from_a_file(make_server, sink):
    pki = Pki()
    crt, key = pki.leaf("localhost", ["DNS:localhost"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    rec = Receiver(tls=ctx)
    try:
        hdr = os.path.join(pki.dir, "headers")
        with open(hdr, "w") as f:
            f.write("# the receiver's secret\nAuthorization: Bearer s3cret\n")
        srv = relay(make_server, sink, webhook_url=rec.https_url, tls_ca_file=pki.ca,
                    webhook_header_file=hdr, webhook_events="reception").start()
        send(srv, "from@example.org", ["to@example.com"], "h1")
        assert rec.wait(lambda r: of_type(r.unique()[0], "reception"), timeout=20)
        assert rec.headers[0]["Authorization"] == "Bearer s3cret"
        assert rec.headers[0]["Content-Type"] == "application/json"
    finally:
        rec.stop()


def test_https_webhook_with_an_unknown_ca_is_refused_and_retried(make_server, sink):
    pki = Pki()
    crt, key = pki.leaf("localhost", ["DNS:localhost"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    rec = Receiver(tls=ctx)
    try:
        srv = relay(make_server, sink, webhook_url=rec.https_url).start()   # system CAs
        send(srv, "from@example.org", ["to@example.com"], "h2")
        assert wait_log(srv, r"events: https://localhost:%d/hook: TLS handshake with"
                        r" localhost failed: .*CERTIFICATE_VERIFY_FAILED" % rec.port)
        assert rec.requests == 0 and not rec.events
    finally:
        rec.stop()


def test_a_stalled_endpoint_never_holds_mail_back(make_server, sink):
    """The webhook hangs past its timeout on every request while 40
    messages go through: every one is accepted and delivered while not
    one event has been taken, and once the endpoint answers again every
    event arrives, in order, none missing."""
    rec = Receiver(plan=["stall"] * 10000, stall_s=2)
    try:
        srv = relay(make_server, sink, webhook_url=rec.url, webhook_timeout="1",
                    webhook_batch_max="20", webhook_batch_wait="100").start()
        for i in range(40):
            send(srv, "from@example.org", ["s%d@example.com" % i], "s%d" % i)
        assert wait_until(lambda: len(sink.messages) == 40, 60), len(sink.messages)
        assert rec.requests >= 1 and rec.unique()[0] == {}     # stalled all along
        with rec.lock:
            rec.plan = []
        # 40 receptions, 40 attempts, 40 deliveries (the backoff is at most 30 s).
        assert rec.wait(lambda r: len(r.unique()[0]) >= 120, timeout=60), len(rec.unique()[0])
        events, order = rec.unique()
        check_ids_dense(order)
        assert len(of_type(events, "delivered")) == 40
    finally:
        rec.stop()


def test_failing_stalling_endpoint_across_a_kill9_during_a_burst(make_server, sink):
    """The issue's scenario in one run: the endpoint fails, stalls and
    recovers while a burst is cut by kill -9; after the restart every
    event of every stored message arrives, in order, no id missing."""
    rec = Receiver(plan=["fail", "stall", "fail", "ok", "stall", "fail"] * 3, stall_s=1.5)
    try:
        srv = relay(make_server, sink, webhook_url=rec.url, webhook_timeout="1",
                    webhook_batch_max="5", webhook_batch_wait="50").start()
        accepted, stop, cut = [], threading.Event(), threading.Event()

        def burst():       # until the kill cuts it
            try:
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
                    s.ehlo()
                    for i in range(1000000):
                        if stop.is_set():
                            return
                        s.mail("burst@example.org")
                        s.rcpt("k%d@example.com" % i)
                        code, msg = s.data(("Subject: k%d\r\n\r\nx\r\n" % i).encode())
                        if code == 250:
                            accepted.append(msg.decode().split()[-1])
            except (smtplib.SMTPException, OSError):
                cut.set()

        t = threading.Thread(target=burst)
        t.start()
        # Killed once the endpoint has failed or stalled a few times and
        # taken some records: both kinds of trouble are behind and ahead.
        assert rec.wait(lambda r: r.requests >= 4 and len(r.unique()[0]) >= 1, timeout=30)
        srv.kill9()
        stop.set()
        t.join()
        assert cut.is_set() and len(accepted) > 0     # killed mid-burst
        srv.start()
        want = set(accepted)

        def complete(r):
            ev = r.unique()[0]
            stored = want | {e["queue_id"] for e in of_type(ev, "reception")}
            return stored <= {e["queue_id"] for e in of_type(ev, "delivered")}
        assert rec.wait(complete, timeout=120)
        events, order = rec.unique()
        check_ids_dense(order)
        assert rec.plan == []      # every failure and stall of the plan was met
        assert all(isinstance(b, list) and 1 <= len(b) <= 5 for b in rec.bodies)
    finally:
        rec.stop()


def test_expiry_is_an_expired_record_and_its_notice_a_dsn_sent(make_server, sink, tmp_path):
    """A recipient that only ever gets 4xx until max_queue_lifetime passes:
    its deferrals, then one "expired" record (class expired) and a
    "dsn_sent" record for the bounce to the sender."""
    log = str(tmp_path / "events.log")
    srv = relay(make_server, sink, event_log=log, event_log_format="json",
                max_queue_lifetime="2s", retry_min="1s", retry_max="1s").start()
    send(srv, "sender@example.org", ["tempfail@example.com"], "exp")
    deadline, recs = time.time() + 30, []
    while time.time() < deadline:
        if os.path.exists(log):
            with open(log) as f:
                recs = [json.loads(x) for x in f.read().splitlines() if x]
            if any(e["type"] == "dsn_sent" for e in recs):
                break
        time.sleep(0.1)
    by = lambda t: [e for e in recs if e["type"] == t]  # noqa: E731
    (exp,) = by("expired")
    (qid,) = {e["queue_id"] for e in by("reception")
              if e["sender"] == "sender@example.org"}
    assert exp["queue_id"] == qid and exp["recipient"] == "tempfail@example.com"
    assert exp["class"] == "expired" and exp["sender"] == "sender@example.org", exp
    assert by("deferred") and all(e["queue_id"] == qid for e in by("deferred"))
    (d,) = by("dsn_sent")
    assert d["queue_id"] == qid and d["kind"] == "bounce" and d["to"] == "sender@example.org"
    assert by("bounced") == []


def test_reload_changes_the_sinks_and_loses_nothing(make_server, sink, tmp_path):
    """SIGHUP with a second webhook and a rotated header file: the first
    endpoint goes on from its cursor with the new header and no record
    missing (receptions only: the ids have gaps by design), the second
    starts with what is stored; a reload that names a bad URL keeps the
    running sinks."""
    hdr = str(tmp_path / "headers")
    with open(hdr, "w") as f:
        f.write("X-Token: one\n")
    a, b = Receiver(), Receiver()
    try:
        srv = relay(make_server, sink, webhook_url=a.url, webhook_header_file=hdr,
                    webhook_events="reception").start()
        for i in range(3):
            send(srv, "from@example.org", ["r%d@example.com" % i], "before%d" % i)
        assert a.wait(lambda r: len(r.unique()[0]) == 3, timeout=20)
        with open(hdr, "w") as f:
            f.write("X-Token: two\n")
        srv.settings["webhook_url"] = "%s, %s" % (a.url, b.url)
        srv.write_conf()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: event sinks reloaded: 2")
        for i in range(3):
            send(srv, "from@example.org", ["s%d@example.com" % i], "after%d" % i)
        assert a.wait(lambda r: len(r.unique()[0]) == 6, timeout=20)
        # b starts with what is stored (the three before), so wait for the
        # three after themselves, not for any three records.
        after = {"<after%d@test>" % i for i in range(3)}
        assert b.wait(lambda r: {e["message_id"] for e in r.unique()[0].values()} >= after,
                      timeout=20)
        events, order = a.unique()
        assert order == sorted(order)
        assert sorted(e["message_id"] for e in events.values()) == sorted(
            ["<before%d@test>" % i for i in range(3)] + ["<after%d@test>" % i for i in range(3)])
        tokens = [h.get("X-Token") for h in a.headers]
        assert tokens[0] == "one" and tokens[-1] == "two", tokens
        assert all(h.get("X-Token") == "two" for h in b.headers)
        got_b, order_b = b.unique()
        assert order_b == sorted(order_b) and set(order_b) <= set(order)
        assert {e["message_id"] for e in got_b.values()} >= after
        # A URL that cannot be: the running sinks stay, mail and records flow.
        srv.settings["webhook_url"] = "%s, ftp://nowhere.example/x" % a.url
        srv.write_conf()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: .*scheme.*\(keeping the running event sinks\)")
        send(srv, "from@example.org", ["t@example.com"], "later")
        assert a.wait(lambda r: len(r.unique()[0]) == 7, timeout=20)
        assert b.wait(lambda r: "<later@test>" in {e["message_id"] for e in
                                                  r.unique()[0].values()}, timeout=20)
        assert a.unique()[1] == sorted(a.unique()[1])
    finally:
        a.stop()
        b.stop()


def test_turning_events_on_by_reload_needs_a_restart(make_server, sink):
    srv = relay(make_server, sink).start()
    rec = Receiver()
    try:
        srv.settings["webhook_url"] = rec.url
        srv.settings["log_level"] = "debug"
        srv.write_conf()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: webhook_url: delivery events were off at start;"
                             r" turning them on needs a restart \(keeping the running settings\)")
        assert "reload: log_level" not in srv.read_log()    # nothing changed
    finally:
        rec.stop()


SYSLOG_NS = r'''set -e
t=$1; shift
mkdir -p "$t/olddev"
mount --bind /dev "$t/olddev"
mount -t tmpfs tmpfs /dev
for n in null zero urandom random; do touch "/dev/$n"; mount --bind "$t/olddev/$n" "/dev/$n"; done
touch /dev/log
mount --bind "$t/log" /dev/log
exec "$@"
'''


def mount_ns_usable():
    return os.geteuid() == 0 and os.path.exists("/usr/bin/unshare") and \
        subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not mount_ns_usable(),
                    reason="a mount namespace needs root and unshare (util-linux)")
def test_event_log_to_syslog(make_server, sink, tmp_path, monkeypatch):
    """event_log = syslog: each record one message at facility mail,
    severity info, tagged ringmta[pid]. ringmta runs in a mount namespace
    of its own whose /dev/log is a datagram socket of this test."""
    import conftest
    import socket
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(tmp_path / "log"))
    rx.settimeout(0.2)
    wrapper = tmp_path / "in-ns.sh"
    wrapper.write_text("#!/bin/sh\nexec unshare -m sh -c '%s' sh %s %s \"$@\"\n" % (
        SYSLOG_NS.replace("'", "'\\''"), tmp_path, conftest.BIN))
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "BIN", str(wrapper))
    srv = relay(make_server, sink, event_log="syslog", event_log_format="json").start()
    send(srv, "from@example.org", ["to@example.com"], "sys1")
    got = []
    deadline = time.time() + 20
    while time.time() < deadline and len(got) < 3:
        try:
            got.append(rx.recv(65536).decode())
        except socket.timeout:
            pass
    rx.close()
    assert len(got) == 3, (got, srv.read_log())
    recs = []
    for m in got:
        # <22>: facility mail (2) * 8 + severity info (6); the tag and pid.
        g = re.match(r"<22>\w{3} [ \d]\d \d\d:\d\d:\d\d ringmta\[(\d+)\]: (\{.*\})$", m)
        assert g, m
        assert int(g.group(1)) == srv.proc.pid
        recs.append(json.loads(g.group(2)))
    assert [r["type"] for r in recs] == ["reception", "attempt", "delivered"], recs
    assert [r["id"] for r in recs] == ["1", "2", "3"]
    assert recs[0]["message_id"] == "<sys1@test>"
