"""Mail loops and where delivery may go: a hop limit on Received: headers
(Postfix's hopcount_limit: 50 or more, ours included, bounce), a next hop that is ringmta itself (the
relayhost, or an MX on our own address and port) bounces with 5.4.6
instead of looping, and MX hosts on loopback/private addresses are not
delivered to unless smtp_allow_private_destinations is set."""
import re
import smtplib
import time

import pytest

from conftest import free_port, relay_server, wait_log
from dnsfix import Dnsmasq
from sink import Sink


def send(port, sender, rcpts, body):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)



def received_headers(n):
    return b"".join(b"Received: from hop%d.example by hop%d.example; "
                    b"Mon, 30 Nov 2026 10:00:00 +0000\r\n" % (i, i + 1) for i in range(n))


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()



def test_too_many_received_headers_bounce(make_server, sink):
    srv = relay_server(make_server, sink)
    # 51 here, and ringmta adds its own: 52, over the limit of 50.
    send(srv.port, "sender@example.org", ["u@example.com"],
         received_headers(51) + b"Subject: looping\r\n\r\nx\r\n")
    assert sink.wait_for(1)
    time.sleep(0.3)
    assert [m["sender"] for m in sink.messages] == [""], "the looping message was delivered"
    dsn = sink.messages[0]["data"].decode()
    assert "Status: 5.4.6" in dsn and "too many hops" in dsn
    assert wait_log(srv, r"to=<u@example.com> .*status=bounced ecode=5.4.6")


def test_hop_limit_is_50_as_in_postfix(make_server, sink):
    srv = relay_server(make_server, sink)
    # Counted as Postfix does, ringmta's own header included: 48 + 1 = 49
    # is delivered, 49 + 1 = 50 reaches the limit.
    send(srv.port, "sender@example.org", ["ok@example.com"],
         received_headers(48) + b"Subject: long way\r\n\r\nx\r\n")
    assert sink.wait_for(1)
    assert sink.messages[0]["sender"] == "sender@example.org"
    send(srv.port, "sender@example.org", ["u@example.com"],
         received_headers(49) + b"Subject: too long\r\n\r\nx\r\n")
    assert wait_log(srv, r"to=<u@example.com> .*status=bounced ecode=5.4.6")


def hops(srv, rcpt):
    return len(re.findall(r"delivery id=\S+ to=<%s> " % re.escape(rcpt), srv.read_log()))


def test_relayhost_pointing_at_myself_bounces(make_server):
    port = free_port()
    srv = make_server(delivery="yes", listen="127.0.0.1:%d" % port,
                      relayhost="[127.0.0.1]:%d" % port, retry_min="1h", retry_max="2h")
    srv.port = port
    srv.start()
    send(port, "sender@example.org", ["u@example.com"], b"Subject: me\r\n\r\nx\r\n")
    assert wait_log(srv, r"to=<u@example.com> .*status=bounced ecode=5.4.6")
    time.sleep(1.5)                 # a loop would go on meanwhile
    log = srv.read_log()
    assert "loops back to myself" in log
    assert hops(srv, "u@example.com") == 1, hops(srv, "u@example.com")
    # The bounce to the sender takes the same relayhost: it fails too,
    # and a failed bounce is not bounced again.
    assert hops(srv, "sender@example.org") == 1


@pytest.fixture
def world():
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=loop.test,mx.loop.test,10", "--host-record=mx.loop.test,127.0.0.1",
        "--mx-host=worse.test,mx1.worse.test,10", "--mx-host=worse.test,mx2.worse.test,20",
        "--host-record=mx1.worse.test,127.0.0.1", "--host-record=mx2.worse.test,127.0.0.6",
        "--mx-host=priv.test,mx.priv.test,10", "--host-record=mx.priv.test,127.0.0.6",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.7",
    ])
    sinks = {ip: Sink(host=ip, port=port) for ip in ("127.0.0.6", "127.0.0.7")}
    yield dns, sinks, port
    for s in sinks.values():
        s.stop()
    dns.stop()


def mx_server(make_server, dns, port, **kw):
    # ringmta listens on the port the MX hosts are reached on.
    settings = dict(delivery="yes", dns_servers=dns.server, smtp_port=port,
                    listen="127.0.0.1:%d" % port, retry_min="1h", retry_max="2h",
                    smtp_connect_timeout="5s")
    settings.update(kw)
    srv = make_server(**settings)
    srv.port = port
    return srv.start()


def test_mx_on_my_own_address_bounces(make_server, world):
    dns, sinks, port = world
    srv = mx_server(make_server, dns, port)
    send(port, "a@sender.test", ["u@loop.test"], b"Subject: mx loop\r\n\r\nx\r\n")
    assert sinks["127.0.0.7"].wait_for(1)       # the bounce, at the sender's MX
    dsn = sinks["127.0.0.7"].messages[0]
    assert dsn["sender"] == ""
    text = dsn["data"].decode()
    assert "Status: 5.4.6" in text and "mail for loop.test loops back to myself" in text
    time.sleep(0.5)
    assert hops(srv, "u@loop.test") == 1


def test_mx_hosts_worse_than_myself_are_not_used(make_server, world):
    """As in Postfix: when ringmta is an MX host of the domain, hosts of
    lower preference would only relay back to it."""
    dns, sinks, port = world
    srv = mx_server(make_server, dns, port)
    send(port, "a@sender.test", ["u@worse.test"], b"Subject: mx loop\r\n\r\nx\r\n")
    assert sinks["127.0.0.7"].wait_for(1)
    assert "Status: 5.4.6" in sinks["127.0.0.7"].messages[0]["data"].decode()
    assert sinks["127.0.0.6"].messages == []


def test_private_mx_not_delivered_by_default(make_server, world):
    dns, sinks, port = world
    srv = mx_server(make_server, dns, port, smtp_allow_private_destinations="no")
    send(port, "a@sender.test", ["u@priv.test"], b"Subject: inside\r\n\r\nx\r\n")
    assert wait_log(srv, r"to=<u@priv.test> .*status=bounced ecode=5.4.4")
    time.sleep(0.5)
    assert sinks["127.0.0.6"].messages == [] and sinks["127.0.0.6"].connections == 0
    assert "smtp_allow_private_destinations" in srv.read_log()
    # The sender's MX is on loopback too: the bounce is not delivered either.
    assert sinks["127.0.0.7"].connections == 0


def test_private_mx_delivered_when_allowed(make_server, world):
    dns, sinks, port = world
    srv = mx_server(make_server, dns, port, smtp_allow_private_destinations="yes")
    send(port, "a@sender.test", ["u@priv.test"], b"Subject: inside\r\n\r\nx\r\n")
    assert sinks["127.0.0.6"].wait_for(1)


def test_private_relayhost_is_trusted(make_server, sink):
    srv = relay_server(make_server, sink, smtp_allow_private_destinations="no")
    send(srv.port, "sender@example.org", ["u@example.com"], b"Subject: r\r\n\r\nx\r\n")
    assert sink.wait_for(1)
