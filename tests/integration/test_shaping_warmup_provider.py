"""A source's warm-up cap for one provider (not "default") holds for every
domain of the provider, including domains whose site is not known yet
when their first message picks its source (a cold domain -> site cache:
after a start, or any new domain hosted by the provider). A DNS world on
loopback (dnsmasq): ten domains on one provider's MX host, a sink there,
and a source whose schedule caps that provider at 3 messages today."""
import re
import smtplib
import time

import pytest

from conftest import free_port, wait_log
from dnsfix import Dnsmasq
from shpsink import ProviderSink
from test_routing import server  # noqa: F401 (the same delivery settings)

DOMAINS = ["d%d.test" % i for i in range(10)]

RULES = """\
providers:
  big:
    match: [".big-test.example"]
sources:
  sa:
    address: 127.0.0.2
    ehlo: a.sources.test
    warmup:
      start: {today}
      period: day
      schedule:
        big: [3]
pools:
  default:
    sources: [sa]
    when_capped: wait
"""


@pytest.fixture
def world(tmp_path):
    port = free_port()
    dns = Dnsmasq(["--mx-host=%s,mx.big-test.example,10" % d for d in DOMAINS] + [
        "--host-record=mx.big-test.example,127.0.0.4",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.6",
    ])
    sink = ProviderSink("127.0.0.4", port)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("{today}", time.strftime("%Y-%m-%d", time.gmtime())))
    yield dns, sink, port, str(rules)
    sink.stop()
    dns.stop()


def test_provider_warmup_cap_holds_for_new_domains(make_server, world):
    dns, sink, port, rules = world
    srv = server(make_server, dns, port, shaping_rules=rules)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for d in DOMAINS:
            s.sendmail("a@sender.test", ["u@" + d], b"Subject: s\r\n\r\nbody\r\n")
    assert sink.wait_for(3, timeout=30)
    # The other seven wait for tomorrow's cap, without an attempt each.
    deadline = time.time() + 20
    while time.time() < deadline and \
            srv.read_log().count("status=deferred") + sink.count() < len(DOMAINS):
        time.sleep(0.2)
    time.sleep(1)
    log = srv.read_log()
    assert sink.count() == 3, (sink.count(), log)
    waits = re.findall(r"attempt=0 .*status=deferred ecode=4\.4\.5 reply=\"[^\"]*warm-up cap"
                       r" for big; waiting for the next period\"", log)
    assert len(waits) == 7, log
    assert srv.queue_count() == 7
    # They come back when the source's next period (the next UTC day) starts.
    midnight = (int(time.time()) // 86400 + 1) * 86400
    nexts = [int(n) for n in re.findall(r"pending attempts=0 next=(\d+)",
                                        srv.cli("queue", "list").stdout)]
    assert len(nexts) == 7 and all(midnight <= n <= midnight + 86400 + 120 for n in nexts), nexts
