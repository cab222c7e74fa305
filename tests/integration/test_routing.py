"""Routing by DNS (RFC 5321 section 5) against dnsmasq on loopback: MX
preference, fallback to the next MX, implicit MX, null MX (RFC 7505),
NXDOMAIN. Each MX host is a loopback address with a sink on one port."""
import smtplib
import time

import pytest

from conftest import free_port
from dnsfix import Dnsmasq
from sink import Sink


def send(srv, sender, rcpts, body=b"Subject: r\r\n\r\nx\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)


def wait_log(srv, text, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in srv.read_log():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def world():
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=pref.test,mx1.pref.test,10", "--mx-host=pref.test,mx2.pref.test,20",
        "--host-record=mx1.pref.test,127.0.0.2", "--host-record=mx2.pref.test,127.0.0.3",
        "--mx-host=fallback.test,down.fallback.test,10",
        "--mx-host=fallback.test,up.fallback.test,20",
        "--host-record=down.fallback.test,127.0.0.4", "--host-record=up.fallback.test,127.0.0.5",
        "--host-record=implicit.test,127.0.0.6",
        "--mx-host=nullmx.test,.,0",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.7",
    ])
    sinks = {ip: Sink(host=ip, port=port) for ip in
             ("127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6", "127.0.0.7")}
    yield dns, sinks, port
    for s in sinks.values():
        s.stop()
    dns.stop()


def server(make_server, dns, port, **kw):
    settings = dict(delivery="yes", dns_servers=dns.server, smtp_port=port,
                    retry_min="1h", retry_max="2h", smtp_connect_timeout="5s")
    settings.update(kw)
    return make_server(**settings).start()


def test_mx_preference(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port)
    send(srv, "a@sender.test", ["u@pref.test"])
    assert sinks["127.0.0.2"].wait_for(1)
    assert sinks["127.0.0.3"].messages == []
    assert "relay=mx1.pref.test[127.0.0.2]:%d" % port in srv.read_log()


def test_fallback_to_next_mx(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port)      # nothing listens on 127.0.0.4
    send(srv, "a@sender.test", ["u@fallback.test"])
    assert sinks["127.0.0.5"].wait_for(1)
    assert wait_log(srv, "status=sent")


def test_implicit_mx(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port)
    send(srv, "a@sender.test", ["u@implicit.test"])
    assert sinks["127.0.0.6"].wait_for(1)


def test_null_mx_bounces_at_once(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port)
    send(srv, "a@sender.test", ["u@nullmx.test"])
    assert sinks["127.0.0.7"].wait_for(1)        # the bounce, to the sender's MX
    dsn = sinks["127.0.0.7"].messages[0]
    assert dsn["sender"] == "" and dsn["rcpts"] == ["a@sender.test"]
    text = dsn["data"].decode()
    assert "Status: 5.1.10" in text and "null MX" in text
    assert "attempt=1" in srv.read_log()


def test_nxdomain_bounces(make_server, world):
    dns, sinks, port = world
    srv = server(make_server, dns, port)
    send(srv, "a@sender.test", ["u@nosuchdomain.test"])
    assert sinks["127.0.0.7"].wait_for(1)
    assert "Status: 5.1.2" in sinks["127.0.0.7"].messages[0]["data"].decode()


def test_dns_failure_defers(make_server, world):
    dns, sinks, port = world
    silent = free_port()                          # nothing answers there
    srv = server(make_server, dns, port, dns_servers="127.0.0.1:%d" % silent)
    send(srv, "a@sender.test", ["u@pref.test"])
    assert wait_log(srv, "status=deferred", timeout=20)
    assert "ecode=4.4.3" in srv.read_log()
    assert srv.queue_count() == 1
