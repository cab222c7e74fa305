"""The outbound client against a hostile receiver (hostile_sink.py),
seeded: refusals of MAIL, RCPT, DATA and the end of data, 421s, closes
before and after a reply, odd replies to RSET, at random points; replies
written one by one, all in one write, or a byte at a time; one or two
workers and connections, LIMITS MAILMAX and RCPTMAX, a low
smtp_reuse_limit. 40 messages of 1-3 recipients per seed, queued before
the first session starts. What must hold whatever the receiver does:
every recipient gets exactly one outcome in the log; "sent" if and only
if the receiver took the message for that recipient, never twice, with
its own body; a recipient refused at RCPT is never "sent"; the queue
holds exactly the messages with a deferred recipient; ringmta stays up
(and exits 0 on SIGTERM: the fixture). HOSTILE_SEEDS="a b" picks the
seeds (default 4, one per write mode); any seed reproduces its run."""
import collections
import os
import random
import re
import smtplib
import time

import pytest

from conftest import free_port, relay_server
from hostile_sink import AdvSink
from test_pipeline_txn import metric

SEEDS = [int(x) for x in os.environ.get("HOSTILE_SEEDS", "0 1 2 3").split()]


def body_of(i):
    return (b"Subject: adv %d\r\nMessage-ID: <adv%d@example.org>\r\n\r\n"
            b"body of message %d\r\n.dot line\r\n" % (i, i, i))


def inject(srv, sink, msgs):
    """msgs: (sender, [rcpts]) each, all NOTIFY=NEVER (no bounces); every
    one handed to delivery before the receiver lets the first session in."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i, (sender, rcpts) in enumerate(msgs):
            s.sendmail(sender, rcpts, body_of(i), rcpt_options=["NOTIFY=NEVER"])
    deadline = time.time() + 15
    while time.time() < deadline and metric(srv, "ringmta_deliveries_in_flight") < len(msgs):
        time.sleep(0.05)
    time.sleep(0.2)
    sink.gate.set()


def statuses(log):
    st = collections.defaultdict(list)
    for rc, s in re.findall(r"delivery id=\S+ to=<([^>]*)>.*?status=(\w+)", log):
        st[rc].append(s)
    return st


class FuzzSink(AdvSink):
    """Each reply drawn from a table by the seed's generator."""

    def __init__(self, seed, **kw):
        self.rng = random.Random(seed)
        super().__init__(**kw)

    def pick(self, table):
        x, acc = self.rng.random(), 0.0
        for p, v in table:
            acc += p
            if x < acc:
                return v
        return table[-1][1]

    def mail(self, ctx, sender):
        return self.pick([(0.84, "250 2.1.0 Ok"), (0.05, "550 5.7.1 sender refused"),
                          (0.05, "451 4.7.1 sender deferred"),
                          (0.03, ("421 4.3.2 bye", "close")), (0.03, (None, "close_before"))])

    def rcpt(self, ctx, rcpt):
        return self.pick([(0.95, super().rcpt(ctx, rcpt)), (0.03, ("421 4.3.2 bye", "close")),
                          (0.02, "452 4.5.3 too many")])

    def data(self, ctx):
        if not ctx.mail_ok or not ctx.accepted:
            return self.pick([(0.6, "554 5.5.1 no valid recipients"), (0.2, "354 go ahead"),
                              (0.1, "503 5.5.1 bad sequence"), (0.05, "421 4.3.2 bye"),
                              (0.05, ("421 4.3.2 bye", "close"))])
        return self.pick([(0.95, "354 go ahead"), (0.03, ("421 4.3.2 bye", "close")),
                          (0.02, "451 4.3.0 later")])

    def dot(self, ctx, data):
        if not ctx.accepted:
            return self.pick([(0.5, "554 5.5.1 nothing"), (0.3, "250 2.0.0 Ok"),
                              (0.2, ("421 4.3.2 bye", "close"))])
        return self.pick([(0.88, "250 2.0.0 Ok: queued"), (0.04, "554 5.6.0 rejected"),
                          (0.03, "451 4.3.0 later"), (0.05, ("250 2.0.0 Ok: queued", "close"))])

    def rset(self, ctx):
        return self.pick([(0.70, "250 2.0.0 Ok"), (0.05, "502 5.5.2 unknown"),
                          (0.05, ("421 4.3.2 bye", "close")), (0.05, ("250 2.0.0 Ok", "close")),
                          (0.04, (None, "close_before")), (0.04, "421 4.3.2 bye (open)"),
                          (0.04, "451 4.3.0 rset trouble"),
                          (0.03, "250-2.0.0 multi\r\n250 2.0.0 Ok")])


def make_msgs(rng, n):
    msgs = []
    for i in range(n):
        rs = ["%s%d_%d@example.com" % (rng.choice(["ok", "ok", "bad", "bad", "tmp"]), i, j)
              for j in range(rng.choice([1, 1, 1, 2, 3]))]
        msgs.append(("s%d@example.org" % i, rs))
    return msgs


def problems(srv, sink, msgs, st):
    """What broke an invariant (the module's docstring), as text."""
    probs = []
    got = collections.Counter(r for m in sink.messages for r in m["rcpts"])
    for _, rs in msgs:
        for r in rs:
            s = st.get(r, [])
            if len(s) != 1:
                probs.append("%s: outcomes %s" % (r, s))
            if got[r] > 1:
                probs.append("%s: taken %d times" % (r, got[r]))
            if ("sent" in s) != (got[r] > 0):
                probs.append("%s: log %s, receiver took it %d times" % (r, s, got[r]))
            if r.startswith(("bad", "tmp")) and "sent" in s:
                probs.append("%s: refused at RCPT, logged sent" % r)
    idx = {r: i for i, (_, rs) in enumerate(msgs) for r in rs}
    for m in sink.messages:
        i = idx.get(m["rcpts"][0])
        if i is None or not m["data"].endswith(body_of(i)) or \
                any(idx.get(x) != i for x in m["rcpts"]):
            probs.append("receiver took %r with the wrong body or recipients" % (m["rcpts"],))
    if srv.proc.poll() is not None:
        return probs + ["ringmta died: %s" % srv.proc.returncode]
    ndef = sum(1 for _, rs in msgs if any("deferred" in st.get(r, []) for r in rs))
    deadline = time.time() + 5
    while srv.queue_count() != ndef and time.time() < deadline:
        time.sleep(0.2)
    if srv.queue_count() != ndef:
        probs.append("queue %d, expected %d" % (srv.queue_count(), ndef))
    return probs


@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_receiver(make_server, seed):
    rng = random.Random(1000 + seed)
    mode = ["immediate", "batch", "bytewise", "immediate"][seed % 4]
    sink = FuzzSink(seed, mode=mode,
                    keywords=rng.choice([[], [], ["LIMITS MAILMAX=3"], ["LIMITS RCPTMAX=2"]]))
    port = free_port()
    relay = dict(smtp_command_timeout="5s", destination_concurrency_limit=rng.choice([1, 2]),
                 workers=rng.choice([1, 2]), smtp_reuse_limit=rng.choice([100, 100, 3, 2]))
    msgs = make_msgs(rng, 40)
    allr = [r for _, rs in msgs for r in rs]
    try:
        srv = relay_server(make_server, sink, dns_servers="127.0.0.1:9",
                           metrics_listen="127.0.0.1:%d" % port, **relay)
        srv.metrics_url = "http://127.0.0.1:%d" % port
        inject(srv, sink, msgs)
        deadline = time.time() + 60
        while time.time() < deadline and not all(r in statuses(srv.read_log()) for r in allr):
            time.sleep(0.1)
        time.sleep(1.0)     # an outcome too many, if one came, is in the log by now
        probs = problems(srv, sink, msgs, statuses(srv.read_log()))
        assert not probs, "seed=%d mode=%s relay=%s keywords=%s\n%s\n%s" % (
            seed, mode, relay, sink.keywords, "\n".join(probs), srv.read_log()[-6000:])
    finally:
        sink.stop()
