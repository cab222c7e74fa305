"""The suppression list end to end: a 550 5.1.1 user unknown at the sink
suppresses the address (in the failure's own queue update); the next
message to it is refused at RCPT with 550 5.1.1; per sender-domain scope
lets another sender domain through, global scope does not; drop mode
answers 250, logs and does not deliver (nothing stored when no recipient
remains); entries expire; "ringmta suppress" works beside the running
daemon."""
import re
import smtplib
import time

import pytest

from conftest import wait_log
from sink import Sink

UNKNOWN = "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table"


class UnknownSink(Sink):
    """gone@ and gone2@ are unknown users (550 5.1.1); everyone else is taken."""

    def rcpt_reply(self, rcpt):
        if rcpt.split("@")[0].lower() in ("gone", "gone2"):
            return UNKNOWN % rcpt
        return "250 2.1.5 Ok"


@pytest.fixture
def sink():
    s = UnknownSink()
    yield s
    s.stop()


def start(make_server, sink, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h")
    settings.update(kw)
    return make_server(**settings).start()


def rcpt_replies(srv, sender, rcpts):
    """(code, text) of each RCPT, in one transaction that is then reset."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail(sender)
        out = [s.rcpt(r) for r in rcpts]
        s.rset()
    return [(c, t.decode()) for c, t in out]


def fail_once(srv, sink, sender, rcpt):
    """Mail rcpt, let the sink refuse it, wait for the entry and the DSN."""
    n = len(sink.messages)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, [rcpt], b"Subject: first\r\n\r\nhello\r\n")
    assert wait_log(srv, r"suppress add to=<%s>" % re.escape(rcpt)), srv.read_log()
    assert sink.wait_for(n + 1)        # the bounce to the sender


def test_user_unknown_suppresses_per_sender_domain(make_server, sink):
    srv = start(make_server, sink)
    fail_once(srv, sink, "news@shop.example", "gone@example.com")
    assert re.search(r"(?m)to=<gone@example\.com> .*status=bounced .* class=invalid-recipient$",
                     srv.read_log())
    r = srv.cli("suppress", "check", "gone@example.com", "--sender-domain", "shop.example")
    assert r.returncode == 0 and "scope=shop.example class=invalid-recipient" in r.stdout
    # The same sender domain: refused at RCPT, with the class and since when.
    (code, text), = rcpt_replies(srv, "other@shop.example", ["gone@example.com"])
    assert code == 550, text
    assert re.match(r"5\.1\.1 <gone@example\.com>: recipient suppressed \(invalid-recipient,"
                    r" since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$", text), text
    assert wait_log(srv, r"suppressed client=127\.0\.0\.1 from=<other@shop\.example>"
                         r" to=<gone@example\.com> class=invalid-recipient .* action=refuse")
    # Case does not matter; another sender domain goes through.
    (code, _), = rcpt_replies(srv, "x@shop.example", ["Gone@Example.COM"])
    assert code == 550
    (code, text), = rcpt_replies(srv, "news@another.example", ["gone@example.com"])
    assert code == 250, text
    r = srv.cli("suppress", "check", "gone@example.com", "--sender-domain", "another.example",
                check=False)
    assert r.returncode == 1 and "not suppressed" in r.stdout


def test_global_scope_refuses_every_sender(make_server, sink):
    srv = start(make_server, sink, suppression_scope="global")
    fail_once(srv, sink, "news@shop.example", "gone@example.com")
    for sender in ("a@shop.example", "b@another.example", ""):
        (code, text), = rcpt_replies(srv, sender, ["gone@example.com"])
        assert code == 550 and "recipient suppressed (invalid-recipient" in text, (sender, text)
    listed = srv.cli("suppress", "list").stdout
    assert re.search(r"(?m)^gone@example\.com scope=global class=invalid-recipient"
                     r" added=\S+ expires=\S+ reason=\"550 5\.1\.1 ", listed), listed


def test_off_adds_nobody_and_checks_nothing(make_server, sink):
    srv = start(make_server, sink, suppression="off")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("news@shop.example", ["gone@example.com"], b"Subject: x\r\n\r\nx\r\n")
    assert sink.wait_for(1)     # the bounce
    assert wait_log(srv, r"to=<gone@example\.com> .*status=bounced")
    assert "suppress add" not in srv.read_log()
    assert srv.cli("suppress", "list").stdout == ""
    srv.cli("suppress", "add", "gone@example.com")
    (code, _), = rcpt_replies(srv, "news@shop.example", ["gone@example.com"])
    assert code == 250



def test_cli_takes_an_address_as_log_lines_write_it(make_server, sink):
    """`suppress add <a@b>` (copied from a to=<...> log field) suppresses
    a@b; the brackets are not part of what RCPT compares."""
    srv = start(make_server, sink)
    srv.cli("suppress", "add", "<copied@example.com>")
    assert "suppressed <copied@example.com>" in srv.cli("suppress", "check",
                                                        "copied@example.com").stdout
    (code, _), = rcpt_replies(srv, "news@shop.example", ["copied@example.com"])
    assert code == 550
    assert srv.cli("suppress", "remove", "<copied@example.com>").returncode == 0
    for bad in ("a b@example.com", "<>", "x<y@example.com"):
        r = srv.cli("suppress", "add", bad, check=False)
        assert r.returncode != 0 and "is not an address" in r.stderr, (bad, r.stderr)
    assert srv.cli("suppress", "list").stdout == ""


def test_drop_mode_logs_and_does_not_deliver(make_server, sink):
    srv = start(make_server, sink, suppression="drop")
    fail_once(srv, sink, "news@shop.example", "gone@example.com")
    bounces = len(sink.messages)
    # Only a suppressed recipient: 250 all the way, nothing stored or sent.
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("news@shop.example")
        code, _ = s.rcpt("gone@example.com")
        assert code == 250
        code, text = s.data(b"Subject: dropped\r\n\r\nbody\r\n")
        assert code == 250 and b"not queued" in text, text
    assert wait_log(srv, r"suppressed client=\S+ from=<news@shop\.example> to=<gone@example\.com>"
                         r" class=invalid-recipient .* action=drop")
    assert wait_log(srv, r"dropped client=\S+ from=<news@shop\.example> recipients=1")
    assert srv.queue_count() == 0
    # With another recipient: delivered to that one only.
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        refused = s.sendmail("news@shop.example", ["gone@example.com", "ok@example.com"],
                             b"Subject: half\r\n\r\nbody\r\n")
    assert refused == {}
    assert sink.wait_for(bounces + 1)
    # The message was stored for ok@ alone: once it left the queue, gone@
    # has had exactly one delivery attempt (the first message's).
    deadline = time.time() + 15
    while time.time() < deadline and srv.queue_count() != 0:
        time.sleep(0.1)
    assert srv.queue_count() == 0
    assert len(re.findall(r"delivery id=\S+ to=<gone@example\.com>", srv.read_log())) == 1
    got = sink.messages[bounces:]
    assert len(got) == 1 and got[0]["rcpts"] == ["ok@example.com"], got
    assert b"Subject: half" in got[0]["data"]


def test_expiry_of_entries(make_server, sink):
    srv = start(make_server, sink, suppression_expire="2")
    fail_once(srv, sink, "news@shop.example", "gone@example.com")
    listed = srv.cli("suppress", "list").stdout
    added, expires = re.search(r"added=(\S+) expires=(\S+)", listed).groups()
    assert expires != "never"
    (code, _), = rcpt_replies(srv, "news@shop.example", ["gone@example.com"])
    # Refused while it lasts (unless the 2 s already passed on a slow machine).
    assert code == 550 or "(expired)" in srv.cli("suppress", "list").stdout
    deadline = time.time() + 15
    while time.time() < deadline and "(expired)" not in srv.cli("suppress", "list").stdout:
        time.sleep(0.2)
    assert "(expired)" in srv.cli("suppress", "list").stdout
    (code, _), = rcpt_replies(srv, "news@shop.example", ["gone@example.com"])
    assert code == 250
    assert srv.cli("suppress", "purge").stdout.strip() == "purged 1 expired entry"
    assert srv.cli("suppress", "list").stdout == ""


def test_cli_beside_running_daemon(make_server, sink):
    srv = start(make_server, sink)
    (code, _), = rcpt_replies(srv, "a@shop.example", ["vip@example.com"])
    assert code == 250
    r = srv.cli("suppress", "add", "VIP@example.com", "--class", "policy", "--reason",
                "asked us to stop", "--expire", "30d")
    assert "suppressed <VIP@example.com> scope=global class=policy" in r.stdout
    (code, text), = rcpt_replies(srv, "a@shop.example", ["vip@example.com"])
    assert code == 550 and "recipient suppressed (policy, since " in text, text
    listed = srv.cli("suppress", "list").stdout
    assert re.search(r"(?m)^vip@example\.com scope=global class=policy added=\S+ expires=\S+"
                     r" reason=\"asked us to stop\"$", listed), listed
    assert "expires=never" not in listed
    # Scoped to one sender domain: others pass.
    srv.cli("suppress", "add", "two@example.com", "--sender-domain", "shop.example")
    assert rcpt_replies(srv, "a@shop.example", ["two@example.com"])[0][0] == 550
    assert rcpt_replies(srv, "a@else.example", ["two@example.com"])[0][0] == 250
    r = srv.cli("suppress", "remove", "two@example.com", check=False)
    assert r.returncode == 1        # not on the global list
    srv.cli("suppress", "remove", "two@example.com", "--sender-domain", "shop.example")
    srv.cli("suppress", "remove", "vip@example.com")
    assert rcpt_replies(srv, "a@shop.example", ["vip@example.com", "two@example.com"]) == \
        [(250, "2.1.5 Ok"), (250, "2.1.5 Ok")]
    r = srv.cli("suppress", "add", "x@example.com", "--class", "nonsense", check=False)
    assert r.returncode == 2 and "unknown class 'nonsense'" in r.stderr


def test_many_suppressed_rcpts_are_not_client_errors(make_server, sink):
    srv = start(make_server, sink, max_errors="3")
    for i in range(5):
        srv.cli("suppress", "add", "s%d@example.com" % i)
    rcpts = ["s%d@example.com" % i for i in range(5)] + ["ok@example.com"]
    got = rcpt_replies(srv, "news@shop.example", rcpts)
    assert [c for c, _ in got] == [550] * 5 + [250], got
    assert "too many errors" not in srv.read_log()


def test_refused_sender_adds_no_recipient(make_server):
    """A 5xx to MAIL FROM is about the sender, whatever its words: its
    recipients fail (and bounce), but none of them is suppressed, and
    their class is not a recipient's hard class."""
    sink = Sink(mail_reply="550 5.1.1 <news@shop.example>... Sender unknown")
    try:
        srv = start(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("news@shop.example", ["a@example.com", "b@example.com"],
                       b"Subject: x\r\n\r\nx\r\n")
        for rcpt in ("a", "b"):
            assert wait_log(srv, r"to=<%s@example\.com> .*status=bounced" % rcpt), \
                srv.read_log()
        log = srv.read_log()
        assert re.search(r"(?m)to=<a@example\.com> .*status=bounced .* class=policy$", log), log
        assert "suppress add" not in log
        assert srv.cli("suppress", "list").stdout == ""
        (code, text), = rcpt_replies(srv, "news@shop.example", ["a@example.com"])
        assert code == 250, text
    finally:
        sink.stop()
