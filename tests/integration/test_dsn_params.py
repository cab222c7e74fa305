"""DSN parameters (RFC 3461) end to end: DSN advertised, RET/ENVID/NOTIFY/
ORCPT checked (bad values 501 5.5.4), honoured in ringmta's own notices
(NOTIFY=SUCCESS gives a "relayed" notice when the next hop does not offer
DSN, NEVER gives none, RET=HDRS returns the header only and RET=FULL the
whole message, ENVID and ORCPT named), and passed on to a next hop that
offers DSN: the scripted sink, and Postfix (which then reports itself).
Every notice is parsed with Python's email package."""
import email
import email.policy
import re
import smtplib
import time

import pytest

from conftest import postfix_next_hop, postfix_usable, relay_server, wait_log
from sink import Sink
BODY = (b"From: a@example.org\r\nSubject: dsn test\r\nMessage-ID: <dsn@x>\r\n\r\n"
        b"the body text\r\n")


def send(srv, rcpts, mail_opts=(), sender="a@example.org", body=BODY):
    """One message; rcpts is a list of (address, [RCPT parameters])."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.example")
        code, msg = s.mail(sender, list(mail_opts))
        assert code == 250, msg
        for addr, opts in rcpts:
            code, msg = s.rcpt(addr, list(opts))
            assert code == 250, msg
        code, msg = s.data(body)
        assert code == 250, msg


def notices(sink, to):
    """The null-sender messages the sink got for to, parsed."""
    return [email.message_from_bytes(m["data"], policy=email.policy.default)
            for m in sink.messages if m["sender"] == "" and m["rcpts"] == [to]]


def report(msg):
    """The report part of a DSN: (per-message fields, [per-recipient fields])."""
    assert msg.get_content_type() == "multipart/report"
    parts = list(msg.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    for p in msg.walk():
        assert not p.defects, (p.get_content_type(), p.defects)
    return blocks[0], blocks[1:], parts


def wait_settled(srv, pattern, timeout=30):
    """The delivery result matching pattern is logged and its queue update
    is durable (the queue is empty): every notice it made was logged."""
    assert wait_log(srv, pattern, timeout), srv.read_log()
    deadline = time.time() + timeout
    while srv.queue_count() != 0 and time.time() < deadline:
        time.sleep(0.1)


def test_dsn_advertised_and_bad_values_refused(make_server, raw_factory):
    server = make_server(max_errors="50").start()
    c = raw_factory(server.port)
    assert "250-DSN" in c.cmd("EHLO client.example")
    bad_mail = ["RET=ALL", "RET=FULL RET=HDRS", "ENVID=a+2", "ENVID=a+ZZ", "ENVID=" + "x" * 101]
    for params in bad_mail:
        reply = c.cmd("MAIL FROM:<a@example.org> " + params)
        assert reply[-1].startswith("501 5.5."), (params, reply)
    assert c.cmd("MAIL FROM:<a@example.org> NOTIFY=NEVER")[-1].startswith("555 5.5.4")
    ok = c.cmd("MAIL FROM:<a@example.org> RET=HDRS ENVID=" + "x" * 100)
    assert ok[-1].startswith("250"), ok
    bad_rcpt = ["NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "NOTIFY=SUCCESS,",
                "ORCPT=x@example.com", "ORCPT=rfc822;", "ORCPT=rfc822;a+1@b",
                "ORCPT=rfc822;" + "x" * 494]
    for params in bad_rcpt:
        reply = c.cmd("RCPT TO:<r@example.com> " + params)
        assert reply[-1].startswith("501 5.5.4"), (params, reply)
    assert c.cmd("RCPT TO:<r@example.com> RET=FULL")[-1].startswith("555 5.5.4")
    # A RCPT line past 512 octets with its DSN parameters (RFC 3461 sec 5).
    line = "RCPT TO:<%s@example.com> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;%s" % (
        "l" * 60, "o" * 493)
    assert len(line) > 600
    assert c.cmd(line)[-1].startswith("250"), line
    # ... but other commands keep the 512 limit.
    assert c.cmd("NOOP " + "a" * 600)[-1].startswith("500")


def test_success_relayed_notice_when_next_hop_has_no_dsn(make_server):
    sink = Sink()      # no DSN keyword
    try:
        srv = relay_server(make_server, sink)
        send(srv, [("to@example.com", ["NOTIFY=SUCCESS", "ORCPT=rfc822;Orig+2Bx@example.com"]),
                   ("quiet@example.com", [])],
             mail_opts=["RET=FULL", "ENVID=QQ+2B314"])
        assert sink.wait_for(2, timeout=30)
        got = [m for m in sink.messages if m["sender"] == "a@example.org"]
        assert len(got) == 1
        # Not offered, not sent.
        wire = b"".join(b"".join(r) for r in sink.reads)
        assert b"NOTIFY=" not in wire and b"ENVID=" not in wire and b"RET=" not in wire
        (dsn,) = notices(sink, "a@example.org")
        assert dsn["Subject"] == "Successful Mail Delivery Report"
        per_msg, rcpts, parts = report(dsn)
        assert per_msg["Original-Envelope-Id"] == "QQ+314"
        assert len(rcpts) == 1      # only the one that asked
        r = rcpts[0]
        assert r["Action"] == "relayed"
        assert r["Final-Recipient"] == "rfc822; to@example.com"
        assert r["Original-Recipient"] == "rfc822;Orig+x@example.com"
        assert r["Status"].startswith("2.")
        # A success notice returns the header only, whatever RET says.
        assert parts[2].get_content_type() == "text/rfc822-headers"
        assert "the body text" not in dsn.as_string()
    finally:
        sink.stop()


def test_parameters_passed_to_a_next_hop_offering_dsn(make_server):
    sink = Sink(ehlo_keywords=("8BITMIME", "SMTPUTF8", "SIZE 50000000", "DSN"))
    try:
        srv = relay_server(make_server, sink)
        send(srv, [("to@example.com", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;o+2Bx@example.com"]),
                   ("two@example.com", ["NOTIFY=NEVER"]), ("three@example.com", [])],
             mail_opts=["RET=HDRS", "ENVID=QQ+2B314"])
        assert sink.wait_for(1, timeout=30)
        wire = b"".join(b"".join(r) for r in sink.reads)
        assert re.search(rb"MAIL FROM:<a@example.org>[^\r]* RET=HDRS ENVID=QQ\+2B314\r\n", wire)
        assert b"RCPT TO:<to@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;o+2Bx@example.com\r\n" in wire
        assert b"RCPT TO:<two@example.com> NOTIFY=NEVER\r\n" in wire
        assert b"RCPT TO:<three@example.com>\r\n" in wire
        # The next hop took the SUCCESS request: it reports, not ringmta.
        wait_settled(srv, r"to=<to@example.com>.*status=sent")
        log = srv.read_log()
        assert not re.search(r"\b(dsn|bounce) id=", log), log
        assert notices(sink, "a@example.org") == []
    finally:
        sink.stop()


def test_notify_never_and_ret(make_server):
    sink = Sink()
    try:
        srv = relay_server(make_server, sink)
        # NEVER alone: no notice for a hard failure.
        send(srv, [("permfail@never.example", ["NOTIFY=NEVER"])], sender="n@example.org")
        wait_settled(srv, r"to=<permfail@never.example>.*status=bounced")
        assert not re.search(r"\b(dsn|bounce) id=", srv.read_log()), srv.read_log()
        # NEVER next to a recipient without NOTIFY; RET=HDRS.
        send(srv, [("permfail@a.example", ["NOTIFY=NEVER"]),
                   ("permfail@b.example", ["ORCPT=rfc822;B@b.example"])],
             sender="h@example.org", mail_opts=["RET=HDRS", "ENVID=env1"])
        # RET=FULL.
        send(srv, [("permfail@c.example", ["NOTIFY=FAILURE"])], sender="f@example.org",
             mail_opts=["RET=FULL"])
        deadline = time.time() + 30
        while time.time() < deadline and not (notices(sink, "h@example.org") and
                                              notices(sink, "f@example.org")):
            time.sleep(0.1)
        (hdrs,) = notices(sink, "h@example.org")
        assert hdrs["Subject"] == "Undelivered Mail Returned to Sender"
        per_msg, rcpts, parts = report(hdrs)
        assert per_msg["Original-Envelope-Id"] == "env1"
        assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; permfail@b.example"]
        assert rcpts[0]["Action"] == "failed"
        assert rcpts[0]["Original-Recipient"] == "rfc822;B@b.example"
        assert parts[2].get_content_type() == "text/rfc822-headers"
        assert "Subject: dsn test" in parts[2].get_content()
        assert "the body text" not in hdrs.as_string()

        (full,) = notices(sink, "f@example.org")
        per_msg, rcpts, parts = report(full)
        assert "Original-Envelope-Id" not in per_msg
        assert [r["Action"] for r in rcpts] == ["failed"]
        assert parts[2].get_content_type() == "message/rfc822"
        inner = parts[2].get_payload()[0]
        assert inner["Subject"] == "dsn test"
        assert inner.get_content().strip() == "the body text"
        assert notices(sink, "n@example.org") == []
    finally:
        sink.stop()


def test_delay_notice_follows_notify(make_server):
    sink = Sink()
    try:
        srv = relay_server(make_server, sink, retry_min="1s", retry_max="1s",
                           delay_warning_time="1s")
        send(srv, [("tempfail@never.example", ["NOTIFY=NEVER"]),
                   ("tempfail@delay.example", ["NOTIFY=DELAY"]),
                   ("tempfail@failure.example", ["NOTIFY=FAILURE"]),
                   ("tempfail@default.example", [])],
             sender="d@example.org", mail_opts=["ENVID=d1"])
        assert sink.wait_for(1, timeout=15)
        (warn,) = notices(sink, "d@example.org")
        assert warn["Subject"] == "Delayed Mail (still being retried)"
        per_msg, rcpts, parts = report(warn)
        assert per_msg["Original-Envelope-Id"] == "d1"
        assert sorted(r["Final-Recipient"] for r in rcpts) == [
            "rfc822; tempfail@default.example", "rfc822; tempfail@delay.example"]
        assert all(r["Action"] == "delayed" for r in rcpts)
        assert parts[2].get_content_type() == "text/rfc822-headers"
    finally:
        sink.stop()


@pytest.mark.skipif(not postfix_usable(), reason="needs root, postfix and ../shared/rig")
def test_dsn_through_postfix(make_server):
    """ringmta -> Postfix (offers DSN) -> sink (does not). ringmta hands
    the parameters on and sends no notice of its own; Postfix reports:
    "relayed" for NOTIFY=SUCCESS, nothing for NOTIFY=NEVER and a bounce
    with the header only for RET=HDRS, naming ENVID and ORCPT as ringmta
    passed them."""
    sink = Sink()
    try:
        with postfix_next_hop(sink) as pport:
            _through_postfix(make_server, sink, pport)
    finally:
        sink.stop()


def _through_postfix(make_server, sink, pport):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % pport,
                      dns_servers="127.0.0.1:9", retry_min="1h", retry_max="2h").start()
    send(srv, [("ok@example.com", ["NOTIFY=SUCCESS", "ORCPT=rfc822;First+2Bok@example.com"])],
         sender="s@example.org", mail_opts=["ENVID=ENV+2B1"])
    # NOTIFY=NEVER, handed on: Postfix's bounce of it goes nowhere. Sent
    # before the next one, whose notice therefore comes after it would.
    send(srv, [("permfail@example.com", ["NOTIFY=NEVER"])], sender="n@example.org")
    wait_settled(srv, r"to=<permfail@example.com>.*status=sent")
    send(srv, [("permfail@example.com", ["NOTIFY=FAILURE", "ORCPT=rfc822;pf@example.com"])],
         sender="f@example.org", mail_opts=["RET=HDRS", "ENVID=ENV2"])
    deadline = time.time() + 60
    while time.time() < deadline and not (notices(sink, "s@example.org") and
                                          notices(sink, "f@example.org")):
        time.sleep(0.2)
    (ok,) = notices(sink, "s@example.org")
    per_msg, rcpts, _ = report(ok)
    assert "rig.localdomain" in per_msg["Reporting-MTA"]
    assert per_msg["Original-Envelope-Id"] == "ENV+1"
    assert rcpts[0]["Action"] == "relayed"
    assert rcpts[0]["Original-Recipient"].replace(" ", "") == "rfc822;First+ok@example.com"

    (bounce,) = notices(sink, "f@example.org")
    per_msg, rcpts, parts = report(bounce)
    assert "rig.localdomain" in per_msg["Reporting-MTA"]
    assert per_msg["Original-Envelope-Id"] == "ENV2"
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Original-Recipient"].replace(" ", "") == "rfc822;pf@example.com"
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert "the body text" not in bounce.as_string()
    time.sleep(1)
    assert notices(sink, "n@example.org") == []
    # ringmta handed them on (Postfix offers DSN) and made no notice.
    wait_settled(srv, r"to=<permfail@example.com>.*status=sent")
    assert not re.search(r"\b(dsn|bounce) id=", srv.read_log()), srv.read_log()
