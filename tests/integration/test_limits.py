"""Limits from RFC 5321 4.5.3 and the configuration: line and path
lengths, SIZE, message size, recipient cap, error cap, connection caps,
timeouts; and a next hop's LIMITS (RFC 9422) on delivery: RCPTMAX,
RCPTDOMAINMAX and MAILMAX."""
import re
import smtplib
import socket
import time

import pytest

from conftest import relay_server
from sink import Sink
from test_delivery import wait_queue_empty
from test_tls import pki, sink_ctx  # noqa: F401 (a test CA and server certificate)


def ehlo_mail_rcpt(c):
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250")


def test_command_line_512_limit(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    ok = "NOOP " + "a" * (510 - 5)            # 510 + CRLF = 512
    assert c.cmd(ok)[0].startswith("250")
    too_long = "NOOP " + "a" * (511 - 5)      # 511 + CRLF = 513
    assert c.cmd(too_long)[0].startswith("500 5.5.2")
    huge = "NOOP " + "a" * 5000
    assert c.cmd(huge)[0].startswith("500 5.5.2")
    assert c.cmd("NOOP")[0].startswith("250")  # still in step


def test_path_and_part_limits(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    local64 = "l" * 64
    assert c.cmd("MAIL FROM:<%s@example.org>" % local64)[0].startswith("250")
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<%s@example.org>" % ("l" * 65))[0].startswith("501 5.1.3")
    dom = ".".join(["d" * 60] * 4) + ".org"    # 248 octets
    assert c.cmd("MAIL FROM:<a@%s>" % dom)[0].startswith("250")
    c.cmd("RSET")
    longdom = ".".join(["d" * 63] * 4) + ".org"  # 259 octets
    assert c.cmd("MAIL FROM:<a@%s>" % longdom)[0].startswith("501 5.1.3")


def test_size_declared_too_big(make_server, raw_factory):
    srv = make_server(max_message_size=2048).start()
    c = raw_factory(srv.port)
    r = c.cmd("EHLO x")
    assert "250-SIZE 2048" in r
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=2049")[0].startswith("552 5.3.4")
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=2048")[0].startswith("250")


def test_message_too_big_answered_after_terminator(make_server, raw_factory):
    srv = make_server(max_message_size=2048).start()
    c = raw_factory(srv.port)
    ehlo_mail_rcpt(c)
    assert c.cmd("DATA")[0].startswith("354")
    line = b"x" * 76 + b"\r\n"
    c.send(b"Subject: big\r\n\r\n" + line * 100)   # ~7.8 KiB, no answer yet
    time.sleep(0.3)
    c.sock.settimeout(0.5)
    try:
        early = c.sock.recv(100)
    except socket.timeout:
        early = b""
    assert early == b"", "answered before the terminator: %r" % early
    c.sock.settimeout(10)
    c.send(b".\r\n")
    assert c.reply()[0].startswith("552 5.3.4")
    assert c.cmd("NOOP")[0].startswith("250")
    assert srv.queue_count() == 0


def test_message_at_exact_limit_accepted(make_server, raw_factory):
    srv = make_server(max_message_size=1024).start()
    c = raw_factory(srv.port)
    ehlo_mail_rcpt(c)
    c.cmd("DATA")
    body = b"Subject: s\r\n\r\n"
    body += (b"x" * 98 + b"\r\n") * 10 + b"y" * 8 + b"\r\n"
    assert len(body) == 1024
    c.send(body + b".\r\n")
    assert c.reply()[0].startswith("250")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    c.cmd("DATA")
    c.send(b"z" + body + b".\r\n")
    assert c.reply()[0].startswith("552 5.3.4")


def test_long_text_line_refused(server, raw_factory):
    c = raw_factory(server.port)
    ehlo_mail_rcpt(c)
    c.cmd("DATA")
    c.send(b"Subject: l\r\n\r\n" + b"q" * 998 + b"\r\n" + b"w" * 999 + b"\r\n.\r\n")
    assert c.reply()[0].startswith("500 5.5.2")
    assert server.queue_count() == 0


def test_recipient_cap(make_server, raw_factory):
    srv = make_server(max_recipients=100, max_errors=50).start()
    c = raw_factory(srv.port)
    c.cmd("EHLO x")
    c.cmd("MAIL FROM:<a@example.org>")
    c.send("".join("RCPT TO:<r%d@example.org>\r\n" % i for i in range(101)))
    codes = [c.reply()[0][:9] for _ in range(101)]
    assert codes[:100] == ["250 2.1.5"] * 100
    assert codes[100] == "452 4.5.3"
    assert c.cmd("DATA")[0].startswith("354")
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0].startswith("250")
    ids = srv.queue_ids()
    assert len(ids) == 1
    assert srv.queue_show(ids[0]).count("recipient: <r") == 100


def test_too_many_errors_closes(make_server, raw_factory):
    srv = make_server(max_errors=3).start()
    c = raw_factory(srv.port)
    assert c.cmd("BAD1")[0].startswith("500")
    assert c.cmd("BAD2")[0].startswith("500")
    r = c.cmd("BAD3")
    assert r[0].startswith("500")
    assert c.reply()[0].startswith("421 4.7.0")
    assert c.closed()


def test_per_ip_connection_cap(make_server, raw_factory):
    # 127.0.0.1 outside the relay networks, so the cap applies to it.
    srv = make_server(relay_networks="192.0.2.0/24", max_connections_per_ip=2).start()
    a = raw_factory(srv.port)
    b = raw_factory(srv.port)
    c = raw_factory(srv.port, greet=False)
    assert c.reply()[0].startswith("421 4.7.0")
    assert c.closed()
    assert a.cmd("NOOP")[0].startswith("250") and b.cmd("NOOP")[0].startswith("250")
    a.cmd("QUIT")
    assert a.closed()
    time.sleep(0.2)
    d = raw_factory(srv.port)
    assert d.greeting[0].startswith("220")


def test_total_connection_cap(make_server, raw_factory):
    srv = make_server(max_connections=2).start()
    raw_factory(srv.port)
    raw_factory(srv.port)
    c = raw_factory(srv.port, greet=False)
    assert c.reply()[0].startswith("421 4.7.0")


def test_command_timeout(make_server, raw_factory):
    srv = make_server(timeout_command="1s").start()
    c = raw_factory(srv.port)
    c.sock.settimeout(10)
    t0 = time.time()
    r = c.reply()
    assert r[0].startswith("421 4.4.2"), r
    assert time.time() - t0 < 5
    assert c.closed()


def test_data_timeout(make_server, raw_factory):
    srv = make_server(timeout_data="1s", timeout_command="60s").start()
    c = raw_factory(srv.port)
    ehlo_mail_rcpt(c)
    c.cmd("DATA")
    c.send(b"Subject: slow\r\n\r\npartial")
    c.sock.settimeout(10)
    assert c.reply()[0].startswith("421 4.4.2")
    assert srv.queue_count() == 0


def test_split_lines_and_long_auth_line(make_server, raw_factory, tmp_path):
    import base64
    import crypt
    pw = tmp_path / "passwd"
    pw.write_text("alice:%s\n" % crypt.crypt("secret", crypt.mksalt(crypt.METHOD_SHA512)))
    srv = make_server(auth_passwd_file=str(pw), auth_plaintext_loopback="yes").start()
    c = raw_factory(srv.port)
    # A command cut in three receives is one command.
    for part in (b"EH", b"LO split.exa", b"mple\r\n"):
        c.send(part)
        time.sleep(0.05)
    assert c.reply()[0] == "250-mx.test.invalid"
    # An AUTH line longer than 512 octets (RFC 4954 allows 12288), split.
    resp = base64.b64encode(b"\0alice\0" + b"x" * 600).decode()
    line = ("AUTH PLAIN %s\r\n" % resp).encode()
    assert len(line) > 512
    c.send(line[:300])
    time.sleep(0.05)
    c.send(line[300:])
    assert c.reply()[0].startswith("535 5.7.8")          # wrong password, not "too long"
    resp = base64.b64encode(b"\0alice\0secret").decode()
    assert c.cmd("AUTH PLAIN " + resp)[0].startswith("235 2.7.0")
    # A command over 512 octets is still refused, split or not.
    c.send(b"NOOP " + b"a" * 300)
    time.sleep(0.05)
    c.send(b"a" * 300 + b"\r\n")
    assert c.reply()[0].startswith("500 5.5.2")
    assert c.cmd("NOOP")[0].startswith("250")


# LIMITS (RFC 9422) of a next hop: RCPTMAX, RCPTDOMAINMAX and MAILMAX.
# The sink advertises them and is strict about them, as a server that
# sets them would be: a RCPT past RCPTMAX (or naming a domain past
# RCPTDOMAINMAX) gets 452, a MAIL past MAILMAX 451, and with retries an
# hour away either would leave mail in the queue.

def limits_relay(make_server, sink):
    """One worker and one connection at a time to the sink, so every
    transaction would share one connection if nothing split them."""
    return relay_server(make_server, sink, workers=1, destination_concurrency_limit=1,
                        dns_servers="127.0.0.1:9")


def limits_sink(keywords, **kw):
    return Sink(ehlo_keywords=("8BITMIME", "SIZE 50000000") + keywords, **kw)


def limits_deliver(srv, sink, rcpts, parts):
    """Send one message to rcpts; once the sink has parts messages and the
    queue is empty (and a moment later nothing more came), the recipients
    of each transaction, in the order they arrived."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("from@example.org", rcpts, b"Subject: limits\r\n\r\nx\r\n")
    assert sink.wait_for(parts)
    assert wait_queue_empty(srv)
    time.sleep(0.3)
    return [m["rcpts"] for m in sink.messages]


def test_rfc9422_rcptmax_splits_transactions(make_server):
    sink = limits_sink(("LIMITS RCPTMAX=5 RCPTDOMAINMAX=100 X-UNKNOWN=1",), rcpt_max=5)
    try:
        srv = limits_relay(make_server, sink)
        rcpts = ["r%02d@example.com" % i for i in range(12)]
        got = limits_deliver(srv, sink, rcpts, 3)
        assert sorted(len(r) for r in got) == [2, 5, 5], got
        flat = [r for part in got for r in part]
        assert sorted(flat) == rcpts, got   # every recipient once
        assert sum(sink.mails.values()) == 3, sink.mails
        # RCPT commands sent: 12, none refused for being one too many.
        sent = b"".join(r for reads in sink.reads for r in reads)
        assert sent.count(b"RCPT TO:") == 12
        log = srv.read_log()
        assert all(re.search(r"to=<%s>.*status=sent" % re.escape(r), log) for r in rcpts), log
    finally:
        sink.stop()


def test_rfc9422_rcptmax_results_per_recipient(make_server):
    """Outcomes stay with their recipients across the parts: a deferral
    in the second transaction is that recipient's alone."""
    sink = limits_sink(("LIMITS RCPTMAX=3",), rcpt_max=3)
    try:
        srv = limits_relay(make_server, sink)
        rcpts = ["a@example.com", "b@example.com", "c@example.com", "d@example.com",
                 "tempfail@example.com", "e@example.com", "f@example.com"]
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("from@example.org", rcpts, b"Subject: parts\r\n\r\nx\r\n")
        assert sink.wait_for(3)
        deadline = time.time() + 10
        while time.time() < deadline:
            listing = srv.cli("queue", "list").stdout
            if "<tempfail@example.com> pending attempts=1" in listing:
                break
            time.sleep(0.1)
        for r in rcpts:
            want = "pending attempts=1" if r.startswith("tempfail") else "delivered"
            assert "<%s> %s" % (r, want) in listing, listing
        got = sorted(r for m in sink.messages for r in m["rcpts"])
        assert got == sorted(r for r in rcpts if not r.startswith("tempfail")), got
        assert all(len(m["rcpts"]) <= 3 for m in sink.messages)
        assert srv.queue_count() == 1
    finally:
        sink.stop()


def test_rfc9422_mailmax_new_connection(make_server):
    sink = limits_sink(("LIMITS MAILMAX=2",), mail_max=2)
    try:
        srv = limits_relay(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(5):
                s.sendmail("from@example.org", ["m%d@example.com" % i],
                           b"Subject: %d\r\n\r\nx\r\n" % i)
        assert sink.wait_for(5)
        assert wait_queue_empty(srv)
        time.sleep(0.3)
        assert sorted(m["rcpts"][0] for m in sink.messages) == \
            ["m%d@example.com" % i for i in range(5)]
        assert sink.connections >= 3, sink.connections
        assert max(sink.mails.values()) <= 2, sink.mails
        assert sum(sink.mails.values()) == 5, sink.mails    # none refused, none again
    finally:
        sink.stop()


def test_rfc9422_rcptdomainmax_splits_by_domain(make_server):
    sink = limits_sink(("LIMITS RCPTDOMAINMAX=2",), rcpt_domain_max=2)
    try:
        srv = limits_relay(make_server, sink)
        rcpts = ["a@x.example", "b@y.example", "c@x.example", "d@z.example", "e@y.example",
                 "f@z.example", "g@w.example"]
        got = limits_deliver(srv, sink, rcpts, 3)
        assert all(len({r.split("@")[1] for r in part}) <= 2 for part in got), got
        assert sorted(r for part in got for r in part) == sorted(rcpts), got
        # In order, each part as long as the limit allows.
        assert got == [rcpts[:3], rcpts[3:6], rcpts[6:]], got
        assert sum(sink.mails.values()) == 3, sink.mails
    finally:
        sink.stop()


def test_rfc9422_limits_after_starttls_replace_those_before(make_server, pki):
    """The EHLO after STARTTLS says RCPTMAX=4 where the one before said 2:
    8 recipients go in two transactions of 4, over TLS."""
    sink = Sink(ehlo_keywords=("8BITMIME", "LIMITS RCPTMAX=2"),
                ehlo_keywords_tls=("8BITMIME", "LIMITS RCPTMAX=4"), rcpt_max=4,
                tls_context=sink_ctx(pki.server_crt, pki.server_key))
    try:
        srv = limits_relay(make_server, sink)
        rcpts = ["t%d@example.com" % i for i in range(8)]
        assert limits_deliver(srv, sink, rcpts, 2) == [rcpts[:4], rcpts[4:]]
        assert all(m["tls"] for m in sink.messages)
        assert sum(sink.mails.values()) == 2, sink.mails
    finally:
        sink.stop()
