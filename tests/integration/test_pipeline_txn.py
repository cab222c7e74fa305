"""Transactions pipelined behind the end of data (RFC 2920 3.1): on a
reused connection to a next hop that offers PIPELINING, the next MAIL,
RCPT and DATA follow the final "." in the same write, so a message costs
one round trip. The receiver here holds its reply to each end of data
until the next MAIL FROM is in what it has read: a client that waits for
that reply before sending MAIL makes the hold run out (recorded, and the
tests fail on it). Replies are matched in order; an error reply to the
"." settles only that transaction; a 421 or a close after the "." gives
the pipelined one back untried, for another connection."""
import asyncio
import re
import smtplib
import threading
import time
import urllib.request

import pytest

from conftest import free_port, postfix_next_hop, postfix_usable, relay_server
from sink import Sink
from test_delivery import wait_queue_empty
from test_tls import pki, sink_ctx  # noqa: F401 (a test CA and server certificate)


class HoldSink(Sink):
    """An asyncio SMTP receiver in a thread of the test (sink.Sink's
    thread, counters and messages, its own session). With pipelining it
    offers PIPELINING and holds each reply to an end of data until the
    client's next MAIL FROM has arrived, or hold_s passed; holds[i] says
    which, for the i-th end of data. Without pipelining it waits as long
    for a MAIL that must not come. The reply to an end of data depends on
    the first recipient's local part: dot5xx 554, dot4xx 451, dot421 421
    and close, dotclose 250 and close; anything else 250 (then the
    message is in messages, its data unstuffed). A recipient whose local
    part is rcpt5xx gets 550 at RCPT, and DATA without recipients 503;
    the reply to RSET is held like that to an end of data (rset_holds),
    and with close_after_rset the connection is closed right after it.
    The first connection's
    greeting waits for gate (so every test message is queued before the
    session is ready). keywords are extra EHLO keywords; mail_max makes a
    MAIL past it 451; tls (an ssl.SSLContext) offers STARTTLS."""

    def __init__(self, pipelining=True, keywords=(), hold_s=5.0, mail_max=0, tls=None,
                 close_after_rset=False):
        self.keywords, self.hold_s, self.tls = list(keywords), hold_s, tls
        self.close_after_rset = close_after_rset
        self.gate = threading.Event()
        self.dots = []          # (conn, first recipient, reply code)
        self.holds = []         # per end of data: the next MAIL came while held
        self.rset_holds = []    # per RSET: the same
        super().__init__(pipelining=pipelining, mail_max=mail_max)

    async def _session(self, reader, writer):
        with self.lock:
            self.connections += 1
            conn = self.connections
        buf = bytearray()

        async def fill(timeout=None):
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                raise EOFError
            buf.extend(chunk)

        async def line():
            while b"\n" not in buf:
                await fill()
            i = buf.index(b"\n")
            text = bytes(buf[:i]).rstrip(b"\r").decode("utf-8", "replace")
            del buf[:i + 1]
            return text

        async def send(text):
            writer.write((text + "\r\n").encode())
            await writer.drain()

        async def hold():
            """Wait for the next MAIL FROM; True when it came."""
            deadline = time.monotonic() + self.hold_s
            while b"MAIL FROM" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                try:
                    await fill(left)
                except asyncio.TimeoutError:
                    return False
            return True

        try:
            if conn == 1:
                await self.loop.run_in_executor(None, self.gate.wait, 30)
            await send("220 holdsink ESMTP")
            sender, rcpts, in_tls = None, [], False
            while True:
                cmd = await line()
                verb = cmd[:4].upper()
                if cmd.upper() == "STARTTLS" and self.tls and not in_tls:
                    await send("220 2.0.0 Ready to start TLS")
                    buf.clear()
                    await writer.start_tls(self.tls)
                    in_tls = True
                elif verb == "EHLO":
                    kws = ["holdsink", "8BITMIME", "SIZE 50000000"] + self.keywords + (
                        ["PIPELINING"] if self.pipelining else []) + (
                        ["STARTTLS"] if self.tls and not in_tls else [])
                    for i, k in enumerate(kws):
                        await send("250%s%s" % ("-" if i < len(kws) - 1 else " ", k))
                elif verb == "MAIL":
                    with self.lock:
                        self.mails[conn] = self.mails.get(conn, 0) + 1
                        over = self.mail_max and self.mails[conn] > self.mail_max
                    sender, rcpts = None, []
                    if over:
                        await send("451 4.5.3 Too many transactions in this session")
                        continue
                    sender = cmd[10:].split(">")[0].lstrip("<")
                    await send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    rcpt = cmd[8:].split(">")[0].lstrip("<")
                    if rcpt.startswith("rcpt5xx@"):
                        await send("550 5.1.1 <%s>: Recipient address rejected" % rcpt)
                        continue
                    rcpts.append(rcpt)
                    await send("250 2.1.5 Ok")
                elif verb == "DATA":
                    if sender is None or not rcpts:
                        await send("503 5.5.1 No valid recipients")
                        continue
                    await send("354 End data with <CR><LF>.<CR><LF>")
                    while b"\r\n.\r\n" not in buf:
                        await fill()
                    i = buf.index(b"\r\n.\r\n")
                    data = bytes(buf[:i + 2])
                    del buf[:i + 5]
                    data = re.sub(rb"(?m)^\.\.", b".", data)
                    local = rcpts[0].split("@")[0]
                    held = await hold()
                    code = {"dot5xx": 554, "dot4xx": 451, "dot421": 421}.get(local, 250)
                    with self.lock:
                        self.holds.append(held)
                        self.dots.append((conn, rcpts[0], code))
                        if code == 250:
                            self.messages.append(dict(conn=conn, sender=sender,
                                                      rcpts=list(rcpts), data=data))
                    await send({554: "554 5.6.0 Message rejected", 451: "451 4.3.0 Try later",
                                421: "421 4.3.2 Shutting down", 250: "250 2.0.0 Ok queued"}[code])
                    if code == 421 or local == "dotclose":
                        writer.close()
                        return
                    sender, rcpts = None, []
                elif verb == "RSET":
                    sender, rcpts = None, []
                    held = await hold()
                    with self.lock:
                        self.rset_holds.append(held)
                    await send("250 2.0.0 Ok")
                    if self.close_after_rset:
                        writer.close()
                        return
                elif verb == "QUIT":
                    await send("221 2.0.0 Bye")
                    writer.close()
                    return
                else:
                    await send("502 5.5.2 Error: command not recognized")
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass


def metric(srv, name):
    with urllib.request.urlopen(srv.metrics_url + "/metrics", timeout=5) as r:
        for ln in r.read().decode().splitlines():
            if ln.startswith(name + " "):
                return int(float(ln.split()[1]))
    raise KeyError(name)


def start_relay(make_server, sink, **kw):
    """One worker, one connection at a time to the sink: every message of
    the test waits for the same session."""
    port = free_port()
    srv = relay_server(make_server, sink, workers=1, destination_concurrency_limit=1,
                       dns_servers="127.0.0.1:9", metrics_listen="127.0.0.1:%d" % port, **kw)
    srv.metrics_url = "http://127.0.0.1:%d" % port
    return srv


def body_of(i):
    return (b"Subject: pipelined %d\r\nMessage-ID: <p%d@example.org>\r\n\r\n"
            b".leading dot %d\r\n..two dots\r\n" % (i, i, i) + b"x" * (300 + i) + b"\r\n")


def inject(srv, sink, rcpts, never=()):
    """Queue one message per recipient (body_of(i)), then let the first
    session in: when it is ready, every message waits for it. Recipients
    in never get NOTIFY=NEVER (no bounce)."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i, r in enumerate(rcpts):
            s.sendmail("from@example.org", [r], body_of(i),
                       rcpt_options=["NOTIFY=NEVER"] if r in never else [])
    # Every message handed to delivery (then its worker's inbox, drained
    # in the same loop turn); the gate holds the session's greeting.
    deadline = time.time() + 15
    while time.time() < deadline and metric(srv, "ringmta_deliveries_in_flight") < len(rcpts):
        time.sleep(0.05)
    time.sleep(0.2)
    sink.gate.set()


def status_of(log, rcpt):
    return re.findall(r"to=<%s>.*?status=(\w+)" % re.escape(rcpt), log)


def run_n(make_server, sink, prefix, n):
    """n messages through one session of the relay, delivered in order
    and byte-exact; returns the relay and the recipients."""
    srv = start_relay(make_server, sink)
    rcpts = ["%s%d@example.com" % (prefix, i) for i in range(n)]
    inject(srv, sink, rcpts)
    assert sink.wait_for(n)
    assert wait_queue_empty(srv)
    assert sink.connections == 1
    assert [m["rcpts"] for m in sink.messages] == [[r] for r in rcpts]
    for i, m in enumerate(sink.messages):
        assert m["data"].endswith(body_of(i)), m["data"]
    return srv, rcpts


def test_pipelined_run_one_round_trip_per_message(make_server):
    n = 5
    sink = HoldSink()
    try:
        srv, _ = run_n(make_server, sink, "p", n)
        # Each next MAIL arrived before the reply to the "." before it;
        # the last one had none to wait for.
        assert sink.holds == [True] * (n - 1) + [False], sink.holds
        # Greeting, EHLO, the first MAIL group, then one per message.
        assert metric(srv, "ringmta_outbound_transactions_total") == n
        assert metric(srv, "ringmta_outbound_round_trips_total") == 3 + n
    finally:
        sink.stop()


def test_pipelined_over_starttls(make_server, pki):
    n = 3
    sink = HoldSink(tls=sink_ctx(pki.server_crt, pki.server_key))
    try:
        srv, rcpts = run_n(make_server, sink, "t", n)
        assert sink.holds == [True] * (n - 1) + [False], sink.holds
        log = srv.read_log()
        assert all(re.search(r"to=<%s>.*TLSv1\.3.*status=sent" % r, log) for r in rcpts), log
        # Greeting, EHLO, STARTTLS, EHLO, the first MAIL group, one per message.
        assert metric(srv, "ringmta_outbound_round_trips_total") == 5 + n
    finally:
        sink.stop()


def test_without_pipelining_lock_step(make_server):
    n = 3
    sink = HoldSink(pipelining=False, hold_s=1.0)
    try:
        srv, _ = run_n(make_server, sink, "l", n)
        assert sink.holds == [False] * n    # no MAIL before the "."'s reply
        # Greeting, EHLO, then MAIL, RCPT, DATA and "." each wait.
        assert metric(srv, "ringmta_outbound_round_trips_total") == 2 + 4 * n
    finally:
        sink.stop()


def test_next_transaction_behind_rset(make_server):
    """A transaction whose only recipient is refused ends with RSET; the
    next one's MAIL, RCPT and DATA go out in the same write as the RSET,
    so the refusal costs no round trip of its own."""
    sink = HoldSink()
    try:
        srv = start_relay(make_server, sink)
        rcpts = ["rcpt5xx@example.com", "ok0@example.com", "ok1@example.com"]
        # NOTIFY=NEVER: no bounce to join the session.
        inject(srv, sink, rcpts, never=rcpts[:1])
        assert sink.wait_for(2)
        assert wait_queue_empty(srv)
        assert sink.connections == 1
        assert [m["rcpts"] for m in sink.messages] == [["ok0@example.com"],
                                                       ["ok1@example.com"]]
        assert sink.messages[0]["data"].endswith(body_of(1))
        assert sink.messages[1]["data"].endswith(body_of(2))
        # The next MAIL came while the reply to RSET was held.
        assert sink.rset_holds == [True], sink.rset_holds
        assert sink.holds == [True, False], sink.holds
        log = srv.read_log()
        assert status_of(log, "rcpt5xx@example.com") == ["bounced"], log
        assert status_of(log, "ok0@example.com") == ["sent"], log
        assert status_of(log, "ok1@example.com") == ["sent"], log
        # Greeting, EHLO, the first MAIL group (refused), RSET with the
        # second group, then one per message; lock-step after RSET: 7.
        assert metric(srv, "ringmta_outbound_round_trips_total") == 6
    finally:
        sink.stop()


@pytest.mark.parametrize("pipelining", [True, False])
def test_close_after_a_refusal_is_no_limit(make_server, pipelining):
    """A receiver that answers the RSET after a refused recipient and
    closes: no limit of messages per connection is learned from it (the
    refused transaction is not a message), and a transaction sent before
    the close was seen (pipelined behind the RSET, or the next MAIL in
    lock-step) goes back untried, to be sent at once on a new connection,
    never deferred as a lost connection."""
    sink = HoldSink(pipelining=pipelining, close_after_rset=True, hold_s=1.0)
    try:
        srv = start_relay(make_server, sink)
        rcpts = ["rcpt5xx@example.com", "ok0@example.com", "ok1@example.com",
                 "ok2@example.com"]
        inject(srv, sink, rcpts, never=rcpts[:1])
        assert sink.wait_for(3, timeout=20), srv.read_log()
        assert wait_queue_empty(srv)
        log = srv.read_log()
        assert "max messages per connection lowered" not in log, log
        for r in rcpts[1:]:
            assert status_of(log, r) == ["sent"], log
        # The three accepted messages share the second connection.
        assert [m["conn"] for m in sink.messages] == [2, 2, 2], sink.messages
    finally:
        sink.stop()


def pipelined_pair(make_server, sink, first, second):
    """first's message, then second's pipelined behind its end of data;
    returns the relay once the sink has one message."""
    srv = start_relay(make_server, sink)
    inject(srv, sink, [first, second])
    assert sink.wait_for(1)
    assert sink.holds[0] is True        # second's MAIL followed first's "."
    return srv


def wait_status(srv, rcpt):
    deadline = time.time() + 10
    while time.time() < deadline and not status_of(srv.read_log(), rcpt):
        time.sleep(0.1)
    return srv.read_log()


def test_dot_5xx_settles_only_its_transaction(make_server):
    sink = HoldSink()
    try:
        srv = pipelined_pair(make_server, sink, "dot5xx@example.com", "ok@example.com")
        assert sink.messages[0]["rcpts"] == ["ok@example.com"]
        assert sink.messages[0]["conn"] == 1
        assert wait_queue_empty(srv)        # the bounce is out too
        log = srv.read_log()
        assert status_of(log, "dot5xx@example.com") == ["bounced"], log
        assert status_of(log, "ok@example.com") == ["sent"], log
    finally:
        sink.stop()


def test_dot_4xx_defers_only_its_transaction(make_server):
    sink = HoldSink()
    try:
        srv = pipelined_pair(make_server, sink, "dot4xx@example.com", "ok@example.com")
        assert sink.messages[0]["rcpts"] == ["ok@example.com"]
        log = wait_status(srv, "dot4xx@example.com")
        assert status_of(log, "dot4xx@example.com") == ["deferred"], log
        assert status_of(log, "ok@example.com") == ["sent"], log
        assert srv.queue_count() == 1       # dot4xx@ waits for its retry
    finally:
        sink.stop()


def test_421_after_dot_returns_pipelined_untried(make_server):
    sink = HoldSink()
    try:
        srv = pipelined_pair(make_server, sink, "dot421@example.com", "next@example.com")
        m = sink.messages[0]
        assert m["rcpts"] == ["next@example.com"] and m["conn"] == 2
        assert m["data"].endswith(body_of(1))
        log = wait_status(srv, "dot421@example.com")
        assert status_of(log, "dot421@example.com") == ["deferred"], log
        # Untried on the first connection: its only outcome is the delivery.
        assert status_of(log, "next@example.com") == ["sent"], log
    finally:
        sink.stop()


def test_close_after_dot_returns_pipelined_untried(make_server):
    """A receiver that closes after answering the "." with 250 (its
    messages per connection): the pipelined transaction goes on a new
    connection, never deferred."""
    sink = HoldSink()
    try:
        srv = pipelined_pair(make_server, sink, "dotclose@example.com", "next@example.com")
        assert sink.wait_for(2)
        assert [(m["rcpts"], m["conn"]) for m in sink.messages] == \
            [(["dotclose@example.com"], 1), (["next@example.com"], 2)]
        assert wait_queue_empty(srv)
        log = srv.read_log()
        assert status_of(log, "dotclose@example.com") == ["sent"], log
        assert status_of(log, "next@example.com") == ["sent"], log
    finally:
        sink.stop()


def test_mailmax_1_never_pipelines_a_second_mail(make_server):
    n = 3
    sink = HoldSink(keywords=("LIMITS MAILMAX=1",), hold_s=1.0, mail_max=1)
    try:
        srv = start_relay(make_server, sink)
        rcpts = ["m%d@example.com" % i for i in range(n)]
        inject(srv, sink, rcpts)
        assert sink.wait_for(n)
        assert wait_queue_empty(srv)
        assert sink.holds == [False] * n
        assert sink.mails == {c: 1 for c in range(1, n + 1)}, sink.mails
        assert sorted(m["rcpts"][0] for m in sink.messages) == rcpts
    finally:
        sink.stop()


def postfix_run(make_server, pport, rcpts, never=()):
    """One message per recipient (body_of(i)) queued with delivery off,
    then delivery on: every one is ready when the one session to Postfix
    at pport starts. Returns the relay."""
    mport = free_port()
    srv = make_server(relayhost="[127.0.0.1]:%d" % pport, retry_min="1h",
                      retry_max="2h", workers=1, destination_concurrency_limit=1,
                      metrics_listen="127.0.0.1:%d" % mport).start()
    srv.metrics_url = "http://127.0.0.1:%d" % mport
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i, r in enumerate(rcpts):
            s.sendmail("from@example.org", [r], body_of(i),
                       rcpt_options=["NOTIFY=NEVER"] if r in never else [])
    # Queued with delivery off; on again, every message is ready at once.
    assert srv.stop() == 0
    with open(srv.conf) as f:
        conf = f.read()
    with open(srv.conf, "w") as f:
        f.write(conf.replace("delivery = no\n", "delivery = yes\n"))
    return srv.start()


def check_postfix_bodies(sink, rcpts):
    """What Postfix relayed to sink is each message's body, and its header
    fields among Postfix's."""
    got = {m["rcpts"][0]: m["data"] for m in sink.messages}
    assert sorted(got) == sorted(rcpts)
    for r in rcpts:
        i = int(r.split("@")[0][2:])
        head, body = got[r].split(b"\r\n\r\n", 1)
        want_head, want_body = body_of(i).split(b"\r\n\r\n", 1)
        assert body == want_body
        assert all(h in head for h in want_head.split(b"\r\n"))


@pytest.mark.skipif(not postfix_usable(), reason="needs root, postfix and ../shared/rig")
def test_postfix_next_hop_one_round_trip_per_message(make_server):
    """Postfix's smtpd (PIPELINING) as the next hop, relaying on to a
    sink: n messages queued before delivery starts go over one
    connection, byte-exact, one round trip each past the session's start
    (greeting, EHLO, and with STARTTLS its reply and the second EHLO)."""
    n = 8
    sink = Sink()
    try:
        with postfix_next_hop(sink) as pport:
            rcpts = ["pf%d@example.com" % i for i in range(n)]
            srv = postfix_run(make_server, pport, rcpts)
            assert sink.wait_for(n, timeout=60)
            assert wait_queue_empty(srv)
            check_postfix_bodies(sink, rcpts)
            assert metric(srv, "ringmta_outbound_transactions_total") == n
            # Lock-step after the "." would be 2 per message: at least 2 + 2n.
            assert metric(srv, "ringmta_outbound_round_trips_total") <= n + 5
    finally:
        sink.stop()


@pytest.mark.skipif(not postfix_usable(), reason="needs root, postfix and ../shared/rig")
def test_postfix_next_hop_refused_recipient_costs_no_round_trip(make_server):
    """Postfix refuses the first message's only recipient
    (check_recipient_access) and then its DATA ("no valid recipients"):
    that transaction ends with RSET, and the next one goes out behind the
    RSET in the same write: n messages, one refused, take the round trips
    of n accepted ones."""
    n = 5
    sink = Sink()
    refuse = ("smtpd_recipient_restrictions = check_recipient_access"
              " inline:{ refused@example.com=REJECT }, permit_mynetworks, reject")
    try:
        with postfix_next_hop(sink, refuse) as pport:
            rcpts = ["refused@example.com"] + ["pf%d@example.com" % i for i in range(1, n)]
            srv = postfix_run(make_server, pport, rcpts, never=rcpts[:1])
            assert sink.wait_for(n - 1, timeout=60)
            assert wait_queue_empty(srv)
            check_postfix_bodies(sink, rcpts[1:])
            log = srv.read_log()
            assert status_of(log, "refused@example.com") == ["bounced"], log
            assert "Recipient address rejected" in log, log
            assert metric(srv, "ringmta_outbound_transactions_total") == n
            # Greeting, EHLO, the first MAIL group (refused), RSET with the
            # second group, then one per message, as if none was refused;
            # lock-step after the RSET would be n + 4.
            assert metric(srv, "ringmta_outbound_round_trips_total") == n + 3
    finally:
        sink.stop()
