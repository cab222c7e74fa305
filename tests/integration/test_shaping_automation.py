"""Traffic shaping driven by a rules file (shaping_rules) in a DNS world on
loopback: sinks that behave like providers (their MX names end in the
suffixes the test's rules give "gmail-test" and "yahoo-test"), and what
they saw over time: Gmail's 4.7.28 pause and the one-at-a-time ramp, a
[TSS04] deferral suspending the path (kept across kill -9 and a restart),
a message rate (counts in windows), max_recipients, and the single probe
of a site that refuses everything until it comes back."""
import re
import smtplib
import time

import pytest

from conftest import free_port, wait_log
from dnsfix import Dnsmasq
from shpsink import ProviderSink
from test_routing import server  # noqa: F401 (the same delivery settings)

RULES = r"""
providers:
  gmail-test:
    match: [".gmail-test.example"]
    max_connections: 4
    automation:
      - name: test-gmail-4.7.28
        match: '^4\.7\.28 '
        code: "421"
        actions:
          - ramp: {pause: 3s, step: 1}
  yahoo-test:
    match: [".yahoo-test.example"]
    max_connections: 2
    automation:
      - name: test-tss04
        match: '\[TSS04\]'
        code: "4xx"
        actions:
          - suspend: 10m
domains:
  rate.test:
    message_rate: "10/s burst 1"
    max_connections: 3
  many.test:
    max_recipients: 3
health:
  backoff: [2s]
automation:
  # Words of the reasons ringmta writes itself (a suspended site, a lost
  # or refused connection, a timeout): they must never trigger a rule.
  - name: test-never-ours
    match: '(?i)suspended|lost connection|refused|timed out|probe'
    actions:
      - suspend_site: 1h
"""


@pytest.fixture
def world(tmp_path):
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=gm.test,mx1.gmail-test.example,10",
        "--host-record=mx1.gmail-test.example,127.0.0.2",
        "--mx-host=yh.test,mx1.yahoo-test.example,10",
        "--host-record=mx1.yahoo-test.example,127.0.0.3",
        "--mx-host=rate.test,mx.rate.test,10", "--host-record=mx.rate.test,127.0.0.4",
        "--mx-host=many.test,mx.rate.test,10",
        "--mx-host=dead.test,mx.dead.test,10", "--host-record=mx.dead.test,127.0.0.5",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.6",
    ])
    sinks = {
        "gmail": ProviderSink("127.0.0.2", port, rate_limit=(10, 60), trip_once=True,
                              data_delay=0.05),
        "yahoo": ProviderSink("127.0.0.3", port, mail_reply=(
            "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to"
            " unexpected volume or user complaints")),
        "rate": ProviderSink("127.0.0.4", port),
        "dead": ProviderSink("127.0.0.5", port, accept_close=True),
    }
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    yield dns, sinks, port, str(rules)
    for s in sinks.values():
        s.stop()
    dns.stop()


def send_many(srv, rcpts, per_message=1):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for i in range(0, len(rcpts), per_message):
            s.sendmail("a@sender.test", rcpts[i:i + per_message],
                       b"Subject: s\r\n\r\nbody\r\n")


def start(make_server, world, **kw):
    dns, sinks, port, rules = world
    return server(make_server, dns, port, shaping_rules=rules, retry_min="2s",
                  retry_max="4s", **kw)


def test_gmail_4728_pauses_then_ramps_one_connection_at_a_time(make_server, world):
    sinks = world[1]
    sink = sinks["gmail"]
    srv = start(make_server, world)
    send_many(srv, ["u%d@gm.test" % i for i in range(40)])
    assert sink.wait_for(40, timeout=60)
    assert wait_log(srv, r"shaping: rule test-gmail-4\.7\.28 \(\S+:\d+\) fired:"
                    r" site=mx1\.gmail-test\.example source=default action=ramp")
    with sink.lock:
        events = list(sink.events)
    t421 = [e[0] for e in events if e[1] == "421"][0]
    assert sink.max_active <= 4
    # The pause: no new connection for (most of) the 3 s after the 421.
    opens_after = [e for e in events if e[1] == "open" and e[0] > t421]
    assert opens_after and opens_after[0][0] >= t421 + 2.5, (t421, opens_after[:3])
    # The ramp: the first connection after the pause is alone, and each
    # further one opens only after one more delivery (step 1).
    assert opens_after[0][2] == 1, opens_after[0]
    resumed = opens_after[0][0]
    msgs_after = [e[0] for e in events if e[1] == "msg" and e[0] > resumed]
    for k, o in enumerate(opens_after[1:4], start=1):
        delivered_before = len([t for t in msgs_after if t < o[0]])
        assert delivered_before >= k, (k, delivered_before)
        assert o[2] <= k + 1, o
    with sink.lock:
        assert len(sink.messages) == 40


def test_tss04_suspends_the_path_and_survives_a_restart(make_server, world):
    sinks = world[1]
    srv = start(make_server, world)
    send_many(srv, ["u%d@yh.test" % i for i in range(10)])
    assert wait_log(srv, r"shaping: rule test-tss04 \(\S+rules\.yaml:\d+\) fired:"
                    r" site=mx1\.yahoo-test\.example source=default action=suspend until=\S+"
                    r" reply=\"421 4\.7\.0 \[TSS04\]")
    deadline = time.time() + 20
    while time.time() < deadline and srv.read_log().count("status=deferred") < 10:
        time.sleep(0.1)
    time.sleep(3)       # the retry of the first ones (2 s) is deferred again
    with sinks["yahoo"].lock:
        conns = len(sinks["yahoo"].conns)
    # The suspension stops attempts: at most the connections that were
    # open when the rule fired (max_connections 2), not one per message.
    assert conns <= 2, conns
    listing = srv.cli("queue", "list").stdout
    assert len(re.findall(r"attempts=0 ", listing)) >= 8, listing
    time.sleep(1.5)     # saved within a second
    srv.kill9()
    srv.start()
    out = srv.cli("queue", "shaping").stdout
    assert re.search(r"rule=test-tss04 site=mx1\.yahoo-test\.example source=default"
                     r" action=suspend", out), out
    assert "test-tss04" in srv.cli("queue", "list").stdout


def test_message_rate_and_max_recipients(make_server, world):
    sinks = world[1]
    sink = sinks["rate"]
    srv = start(make_server, world)
    send_many(srv, ["u%d@rate.test" % i for i in range(30)])
    send_many(srv, ["m%d@many.test" % i for i in range(7)], per_message=7)
    assert sink.wait_for(30 + 3, timeout=60)
    with sink.lock:
        times = sorted(m["time"] for m in sink.messages if m["rcpts"][0].find("rate.test") > 0)
        many = [len(m["rcpts"]) for m in sink.messages if "many.test" in m["rcpts"][0]]
    # 10/s, burst 1: no second holds more than 10 (+1 at its edge).
    for t in times:
        assert len([u for u in times if t <= u < t + 1.0]) <= 11
    # max_recipients 3: 7 recipients in transactions of 3, 3 and 1.
    assert sorted(many) == [1, 3, 3], many
    assert wait_log(srv, r"status=sent", timeout=5)


def test_refusing_site_gets_one_probe_at_a_time_then_reopens(make_server, world):
    sinks = world[1]
    sink = sinks["dead"]
    srv = start(make_server, world)
    send_many(srv, ["u%d@dead.test" % i for i in range(15)])
    assert wait_log(srv, r"shaping: site mx\.dead\.test suspended until")
    time.sleep(7)       # a few 2 s backoffs: a probe each
    with sink.lock:
        attempts = len(sink.conns)
    assert 2 <= attempts <= 6, attempts     # a handful, not one per message
    assert sink.count() == 0
    sink.accept_close = False               # the site comes back
    assert sink.wait_for(15, timeout=30)
    log = srv.read_log()
    assert "answered the probe: open again" in log
    assert "test-never-ours" not in log     # our own reasons match no rule
