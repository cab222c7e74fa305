"""Delivery through a relayhost to scripted sinks: byte-exact transfer,
retry by reply class, bounces (RFC 3464), mixed results, connection reuse,
pipelining, the concurrency cap, and kill -9 during delivery."""
import email
import email.policy
import smtplib
import time

import pytest

from sink import Sink


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def relay_server(make_server, sink, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1s", retry_max="2s", dns_servers="127.0.0.1:9")
    settings.update(kw)
    return make_server(**settings).start()


def send(srv, sender, rcpts, body):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)


def wait_queue_empty(srv, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.queue_count() == 0:
            return True
        time.sleep(0.1)
    return False


def test_delivered_byte_exact_and_dequeued(make_server, sink):
    srv = relay_server(make_server, sink)
    body = (b"Subject: exact\r\nMessage-ID: <e@x>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n"
            b".leading dot\r\n..two dots\r\nplain\r\n" + b"x" * 900 + b"\r\n")
    send(srv, "from@example.org", ["to@example.com"], body)
    assert sink.wait_for(1)
    m = sink.messages[0]
    assert m["sender"] == "from@example.org" and m["rcpts"] == ["to@example.com"]
    assert m["data"].startswith(b"Received: from ")
    assert m["data"].endswith(body), m["data"][-200:]
    assert wait_queue_empty(srv)
    assert "status=sent" in srv.read_log()


def test_large_message(make_server, sink):
    srv = relay_server(make_server, sink)
    line = b"abcdefghij" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 1500 + b".dot\r\n" + line * 1500
    send(srv, "from@example.org", ["to@example.com"], body)
    assert sink.wait_for(1)
    assert sink.messages[0]["data"].endswith(body)
    assert wait_queue_empty(srv)


def test_permanent_failure_bounces(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, "sender@example.org", ["permfail@example.com"],
         b"Subject: will bounce\r\nMessage-ID: <orig@x>\r\n\r\nhello\r\n")
    assert sink.wait_for(1)
    dsn = sink.messages[0]
    assert dsn["sender"] == "" and dsn["rcpts"] == ["sender@example.org"]
    msg = email.message_from_bytes(dsn["data"], policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    status = parts[1].as_string()
    assert "Final-Recipient: rfc822; permfail@example.com" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "550 5.1.1" in status
    assert "Subject: will bounce" in parts[2].as_string()
    assert wait_queue_empty(srv)


def test_null_sender_never_bounced(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, "", ["permfail@example.com"], b"Subject: from null\r\n\r\nx\r\n")
    assert wait_queue_empty(srv)
    time.sleep(0.5)
    assert sink.messages == []
    assert "bounce id=" not in srv.read_log()


def test_temporary_failure_then_success(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, "from@example.org", ["tempthenok@example.com"], b"Subject: retry\r\n\r\nx\r\n")
    deadline = time.time() + 10
    deferred = False
    while time.time() < deadline and not deferred:
        deferred = "status=deferred" in srv.read_log()
        time.sleep(0.05)
    assert deferred
    listing = srv.cli("queue", "list").stdout
    assert "<tempthenok@example.com> pending attempts=1" in listing, listing
    assert sink.wait_for(1, timeout=15)
    assert sink.messages[0]["rcpts"] == ["tempthenok@example.com"]
    assert wait_queue_empty(srv)
    log = srv.read_log()
    assert "ecode=4.3.0" in log and "attempt=2" in log


def test_expiry_bounces(make_server, sink):
    srv = relay_server(make_server, sink, max_queue_lifetime="2s")
    send(srv, "sender@example.org", ["tempfail@example.com"], b"Subject: expires\r\n\r\nx\r\n")
    assert sink.wait_for(1, timeout=20)
    dsn = sink.messages[0]
    assert dsn["sender"] == "" and dsn["rcpts"] == ["sender@example.org"]
    text = dsn["data"].decode()
    assert "Action: failed" in text and "Status: 4.2.1" in text, text
    assert "expired" in text
    assert wait_queue_empty(srv)


def test_mixed_recipient_results(make_server, sink):
    srv = relay_server(make_server, sink, retry_min="1h", retry_max="2h")
    send(srv, "sender@example.org",
         ["ok@example.com", "tempfail@example.com", "permfail@example.com"],
         b"Subject: mixed\r\n\r\nx\r\n")
    assert sink.wait_for(2)
    delivered = [m for m in sink.messages if m["sender"] == "sender@example.org"]
    bounces = [m for m in sink.messages if m["sender"] == ""]
    assert delivered[0]["rcpts"] == ["ok@example.com"]
    assert len(bounces) == 1 and b"permfail@example.com" in bounces[0]["data"]
    assert b"tempfail@example.com" not in bounces[0]["data"].split(b"text/rfc822-headers")[0]
    time.sleep(0.5)
    listing = srv.cli("queue", "list").stdout
    assert "<ok@example.com> delivered" in listing
    assert "<tempfail@example.com> pending attempts=1" in listing
    assert "<permfail@example.com> failed" in listing
    assert srv.queue_count() == 1


def test_data_rejection_bounces_that_recipient(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, "sender@example.org", ["datafail@example.com"], b"Subject: d\r\n\r\nx\r\n")
    assert sink.wait_for(1)
    assert sink.messages[0]["sender"] == ""
    assert b"554 5.6.0" in sink.messages[0]["data"]


def test_connection_reuse_and_pipelining(make_server, sink):
    srv = relay_server(make_server, sink, destination_concurrency_limit=2, workers=1)
    n = 40
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i in range(n):
            s.sendmail("from@example.org", ["r%d@example.com" % i, "s%d@example.com" % i],
                       b"Subject: %d\r\n\r\nx\r\n" % i)
    assert sink.wait_for(n)
    assert wait_queue_empty(srv)
    assert sink.connections <= 4, sink.connections      # reused, not one per message
    assert sink.max_active <= 2
    # One transaction carried both recipients of a domain.
    assert all(len(m["rcpts"]) == 2 for m in sink.messages)
    # PIPELINING offered: MAIL, both RCPTs and DATA came in one read.
    grouped = [r for reads in sink.reads for r in reads if r.startswith(b"MAIL FROM:")]
    assert grouped and all(b"RCPT TO:" in r and r.endswith(b"DATA\r\n") for r in grouped), grouped[:3]


def test_no_pipelining_when_not_offered(make_server):
    sink = Sink(pipelining=False)
    try:
        srv = relay_server(make_server, sink)
        send(srv, "from@example.org", ["a@example.com", "b@example.com"], b"Subject: np\r\n\r\nx\r\n")
        assert sink.wait_for(1)
        mails = [r for reads in sink.reads for r in reads if r.startswith(b"MAIL FROM:")]
        assert mails and all(b"RCPT" not in r for r in mails), mails
    finally:
        sink.stop()


def test_concurrency_cap(make_server):
    sink = Sink(data_delay=0.3)
    try:
        srv = relay_server(make_server, sink, destination_concurrency_limit=3, workers=2)
        for i in range(15):
            send(srv, "from@example.org", ["c%d@example.com" % i], b"Subject: c\r\n\r\nx\r\n")
        assert sink.wait_for(15, timeout=30)
        assert sink.max_active <= 3, sink.max_active
        assert sink.max_active >= 2
    finally:
        sink.stop()


def test_unreachable_relay_defers(make_server):
    from conftest import free_port
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % free_port(),
                      retry_min="1h", retry_max="2h", dns_servers="127.0.0.1:9").start()
    send(srv, "from@example.org", ["to@example.com"], b"Subject: u\r\n\r\nx\r\n")
    deadline = time.time() + 10
    while time.time() < deadline and "status=deferred" not in srv.read_log():
        time.sleep(0.05)
    assert "status=deferred" in srv.read_log()
    assert "Connection refused" in srv.read_log()
    assert srv.queue_count() == 1


def test_kill9_during_delivery_loses_nothing(make_server):
    sink = Sink(data_delay=0.05)
    try:
        srv = relay_server(make_server, sink, destination_concurrency_limit=4)
        n = 60
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(n):
                s.sendmail("from@example.org", ["k%d@example.com" % i],
                           b"Subject: k%d\r\n\r\nx\r\n" % i)
        sink.wait_for(10, timeout=20)
        srv.kill9()
        got_before = len(sink.messages)
        assert got_before < n, "delivery finished before the kill; nothing tested"
        srv.start()
        assert wait_queue_empty(srv, timeout=60)
        subjects = {m["data"].split(b"Subject: ")[1].split(b"\r\n")[0] for m in sink.messages}
        missing = [i for i in range(n) if b"k%d" % i not in subjects]
        assert not missing, missing
    finally:
        sink.stop()


def test_queue_flush_retries_now(make_server, sink):
    srv = relay_server(make_server, sink, retry_min="1h", retry_max="2h")
    send(srv, "from@example.org", ["tempthenok@example.com"], b"Subject: flush\r\n\r\nx\r\n")
    deadline = time.time() + 10
    while time.time() < deadline and "status=deferred" not in srv.read_log():
        time.sleep(0.05)
    time.sleep(0.3)
    qid = srv.queue_ids()[0]
    assert not sink.wait_for(1, timeout=1.5)     # an hour away
    out = srv.cli("queue", "flush", qid).stdout
    assert "flushed 1 message" in out
    assert sink.wait_for(1, timeout=10)
    assert wait_queue_empty(srv)
    r = srv.cli("queue", "flush", "--all").stdout
    assert "flushed 0 messages" in r


def test_delay_warning_sent_once(make_server, sink):
    srv = relay_server(make_server, sink, retry_min="1s", retry_max="1s",
                       delay_warning_time="1s")
    send(srv, "sender@example.org", ["tempfail@example.com"], b"Subject: slow\r\n\r\nx\r\n")
    assert sink.wait_for(1, timeout=15)
    dsn = sink.messages[0]
    assert dsn["sender"] == "" and dsn["rcpts"] == ["sender@example.org"]
    text = dsn["data"].decode()
    assert "Subject: Delayed Mail" in text and "Action: delayed" in text, text
    # Later attempts keep deferring, but warn no more.
    deadline = time.time() + 10
    while time.time() < deadline and srv.read_log().count("status=deferred") < 3:
        time.sleep(0.1)
    assert srv.read_log().count("status=deferred") >= 3
    assert len(sink.messages) == 1
    assert srv.queue_count() == 1


def test_dead_destination_no_connection_storm(make_server):
    from conftest import free_port
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % free_port(),
                      retry_min="1h", retry_max="2h", dns_servers="127.0.0.1:9").start()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for i in range(10):
            s.sendmail("from@example.org", ["d%d@example.com" % i], b"Subject: d\r\n\r\nx\r\n")
    deadline = time.time() + 15
    while time.time() < deadline and srv.read_log().count("status=deferred") < 10:
        time.sleep(0.05)
    time.sleep(1.0)
    log = srv.read_log()
    assert log.count("status=deferred") == 10
    # One failed attempt defers what waits: no storm of reconnects.
    assert log.count("Connection refused") <= 20, log.count("Connection refused")


def test_destination_rate_limit(make_server):
    sink = Sink()
    try:
        srv = relay_server(make_server, sink, destination_rate_limit=1)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(3):
                s.sendmail("from@example.org", ["r%d@example.com" % i], b"Subject: r\r\n\r\nx\r\n")
        t0 = time.time()
        assert sink.wait_for(3, timeout=20)
        # One send per second at most: three sends span at least two
        # rate windows (a lower bound, so a slow machine cannot fail it).
        assert time.time() - t0 >= 1.0
        assert wait_queue_empty(srv)
    finally:
        sink.stop()


def test_smtputf8_needed_but_not_offered_bounces(make_server):
    sink = Sink(ehlo_keywords=("8BITMIME", "SIZE 50000000"))     # no SMTPUTF8
    try:
        srv = relay_server(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("c")
            s.sendmail("sender@example.org", ["jürgen@example.com"],
                       "Subject: ü\r\n\r\nü\r\n".encode(), mail_options=["SMTPUTF8"])
        assert sink.wait_for(1)
        dsn = sink.messages[0]
        assert dsn["sender"] == "" and dsn["rcpts"] == ["sender@example.org"]
        assert b"Status: 5.6.7" in dsn["data"] and b"SMTPUTF8" in dsn["data"]
        assert wait_queue_empty(srv)
    finally:
        sink.stop()
