"""More of what shaping rules do, against provider-like sinks on loopback
(see test_shaping_automation.py for the world): a rule that fires only at its
threshold ("3 in 1m"), a bounce action that fails what is queued for the
path with the rule's name, and a path whose rules require TLS deferring
with 4.7.5 when the receiver offers none, a path's idle timeout, and a
provider's connection limit across its sites."""
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
  thr-test:
    match: [".thr-test.example"]
    max_connections: 1
    automation:
      - name: test-slow-down
        match: 'slow down'
        code: "4xx"
        trigger: "3 in 1m"
        actions:
          - suspend: 10m
  blk-test:
    match: [".blk-test.example"]
    max_connections: 1
    automation:
      - name: test-blocked
        match: '(?i)client host \S+ blocked'
        code: "5xx"
        actions:
          - bounce: 10m
  multi-test:
    match: [".multi-test.example"]
    max_connections: 5
    provider_max_connections: 2
domains:
  tlsreq.test:
    tls: required
  idle.test:
    idle_timeout: 1s
"""


@pytest.fixture
def world(tmp_path):
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=thr.test,mx.thr-test.example,10",
        "--host-record=mx.thr-test.example,127.0.0.2",
        "--mx-host=blk.test,mx.blk-test.example,10",
        "--host-record=mx.blk-test.example,127.0.0.3",
        "--mx-host=tlsreq.test,mx.tlsreq.test,10", "--host-record=mx.tlsreq.test,127.0.0.4",
        "--mx-host=idle.test,mx.tlsreq.test,10",
        "--mx-host=m1.test,mx1.multi-test.example,10",
        "--host-record=mx1.multi-test.example,127.0.0.7",
        "--mx-host=m2.test,mx2.multi-test.example,10",
        "--host-record=mx2.multi-test.example,127.0.0.8",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.6",
    ])
    sinks = {
        "thr": ProviderSink("127.0.0.2", port, mail_reply="451 4.7.1 Please slow down (test)"),
        "blk": ProviderSink("127.0.0.3", port, mail_reply=(
            "554 5.7.1 Service unavailable; client host [127.0.0.1] blocked (test)")),
        "tls": ProviderSink("127.0.0.4", port),
        "m1": ProviderSink("127.0.0.7", port, data_delay=0.3),
        "m2": ProviderSink("127.0.0.8", port, data_delay=0.3),
    }
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    yield dns, sinks, port, str(rules)
    for s in sinks.values():
        s.stop()
    dns.stop()


def start(make_server, world, **kw):
    dns, sinks, port, rules = world
    return server(make_server, dns, port, shaping_rules=rules, **kw)


def send_one_by_one(srv, rcpts, pause=0.3):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for r in rcpts:
            s.sendmail("a@sender.test", [r], b"Subject: s\r\n\r\nbody\r\n")
            time.sleep(pause)


def test_rule_fires_at_its_threshold(make_server, world):
    sinks = world[1]
    srv = start(make_server, world)
    send_one_by_one(srv, ["u%d@thr.test" % i for i in range(6)])
    assert wait_log(srv, r"shaping: rule test-slow-down \(\S+:\d+\) fired:"
                    r" site=mx\.thr-test\.example source=default action=suspend")
    deadline = time.time() + 10
    while time.time() < deadline and srv.read_log().count("status=deferred") < 6:
        time.sleep(0.1)
    log = srv.read_log()
    assert log.count("shaping: rule test-slow-down") == 1
    # Two replies did not fire it; the third did; the rest made no attempt.
    assert sinks["thr"].mails == 3, sinks["thr"].mails
    assert len(re.findall(r"attempt=1 .*status=deferred ecode=4\.7\.1", log)) == 3
    assert len(re.findall(r"attempt=0 .*status=deferred ecode=4\.4\.5", log)) == 3


def test_bounce_action_fails_the_path_with_the_rule_name(make_server, world):
    sinks = world[1]
    srv = start(make_server, world)
    send_one_by_one(srv, ["u%d@blk.test" % i for i in range(4)])
    assert wait_log(srv, r"shaping: rule test-blocked \(\S+:\d+\) fired:.* action=bounce")
    deadline = time.time() + 10
    while time.time() < deadline and len(re.findall(r"to=<u\d@blk\.test>.*status=bounced",
                                                    srv.read_log())) < 4:
        time.sleep(0.1)
    log = srv.read_log()
    assert len(re.findall(r"to=<u\d@blk\.test>.*status=bounced", log)) == 4
    assert len(re.findall(r"status=bounced ecode=5\.7\.0 reply=\"mail for site"
                          r" mx\.blk-test\.example bounced by shaping rule test-blocked", log)) == 3
    assert sinks["blk"].mails == 1


def test_tls_required_without_starttls_defers_475(make_server, world):
    sinks = world[1]
    srv = start(make_server, world)
    send_one_by_one(srv, ["u@tlsreq.test"], pause=0)
    assert wait_log(srv, r"to=<u@tlsreq\.test>.*status=deferred ecode=4\.7\.5")
    assert "TLS is required, but was not offered" in srv.read_log()
    assert sinks["tls"].count() == 0


def test_path_idle_timeout_closes_the_session(make_server, world):
    sinks = world[1]
    sink = sinks["tls"]
    srv = start(make_server, world)     # smtp_idle_timeout is 10 s; the path says 1 s
    send_one_by_one(srv, ["u@idle.test"], pause=0)
    assert sink.wait_for(1)
    deadline = time.time() + 8
    while time.time() < deadline:
        with sink.lock:
            closed = sink.conns[0]["closed"]
        if closed is not None:
            break
        time.sleep(0.1)
    with sink.lock:
        last = sink.messages[-1]["time"]
    assert closed is not None and closed - last <= 4.0, (closed, last)


def test_provider_connections_across_its_sites(make_server, world):
    sinks = world[1]
    srv = start(make_server, world)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for i in range(8):
            for dom in ("m1.test", "m2.test"):
                s.sendmail("a@sender.test", ["u%d@%s" % (i, dom)], b"Subject: s\r\n\r\nb\r\n")
    assert sinks["m1"].wait_for(8, timeout=60) and sinks["m2"].wait_for(8, timeout=60)
    # Two sites (5 connections each), one provider (2 in all): never more
    # than 2 open at once over both sinks.
    events = []
    for name in ("m1", "m2"):
        with sinks[name].lock:
            for c in sinks[name].conns:
                events.append((c["opened"], 1))
                events.append((c["closed"] if c["closed"] is not None else 1e18, -1))
    open_now = most = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        open_now += delta
        most = max(most, open_now)
    assert 1 <= most <= 2, most
