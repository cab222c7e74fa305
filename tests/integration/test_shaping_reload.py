"""A rules reload (SIGHUP) while a destination is busy: its sessions keep
the rules they were opened with (their source lives there), but its
limits follow the reload at once, even though its sessions never all
close. A DNS world on loopback (dnsmasq) with one slow receiver."""
import signal
import smtplib
import time

import pytest

from conftest import free_port, wait_log
from dnsfix import Dnsmasq
from shpsink import ProviderSink
from test_routing import server  # noqa: F401 (the same delivery settings)

BEFORE = "default:\n  max_connections: 1\n"
AFTER = "default:\n  max_connections: 4\n"


@pytest.fixture
def world(tmp_path):
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=busy.test,mx.busy-test.example,10",
        "--host-record=mx.busy-test.example,127.0.0.4",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.6",
    ])
    sink = ProviderSink("127.0.0.4", port, data_delay=0.4)
    rules = tmp_path / "rules.yaml"
    rules.write_text(BEFORE)
    yield dns, sink, port, rules
    sink.stop()
    dns.stop()


def test_limits_follow_a_reload_while_sessions_are_open(make_server, world):
    dns, sink, port, rules = world
    srv = server(make_server, dns, port, shaping_rules=str(rules))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for i in range(24):
            s.sendmail("a@sender.test", ["u%d@busy.test" % i], b"Subject: s\r\n\r\nbody\r\n")
    assert sink.wait_for(2, timeout=30)
    with sink.lock:
        assert sink.max_active == 1 and len(sink.conns) == 1, (sink.max_active, sink.conns)
    rules.write_text(AFTER)
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: shaping rules reloaded")
    assert sink.wait_for(24, timeout=60)
    # The first session never closed, yet more were opened at once after
    # the reload, up to its new limit.
    with sink.lock:
        assert 2 <= sink.max_active <= 4, (sink.max_active, sink.conns)
    assert srv.queue_count() == 0


def test_a_faster_message_rate_applies_at_once(make_server, world):
    """An operator who finds a rate too slow (1/h) and reloads a faster
    one: the mail waiting goes now, not after the old rate's interval."""
    dns, sink, port, rules = world
    rules.write_text("default:\n  message_rate: 1/h burst 1\n")
    srv = server(make_server, dns, port, shaping_rules=str(rules))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for i in range(3):
            s.sendmail("a@sender.test", ["u%d@busy.test" % i], b"Subject: s\r\n\r\nbody\r\n")
    assert sink.wait_for(1, timeout=30)
    time.sleep(2)
    assert sink.count() == 1        # the other two wait for the rate
    rules.write_text("default:\n  message_rate: 100/s\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: shaping rules reloaded")
    assert sink.wait_for(3, timeout=30), sink.count()
    # The sink counts a message at its end of data; the queue update of
    # the last one may be a group commit later.
    deadline = time.time() + 10
    while time.time() < deadline and srv.queue_count() != 0:
        time.sleep(0.1)
    assert srv.queue_count() == 0
