"""Protocol hygiene: SMTP smuggling endings, bare CR/LF, dot-stuffing,
pre-greeting input, relay policy, trace and added headers."""
import re

import pytest


def start_data(c):
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r\n.\n", b"\r.\r\n",
             b".\r\r\n", b"\r\n.\r\r\n", b"\n.\r"]


@pytest.mark.parametrize("ending", SMUGGLING, ids=[repr(e) for e in SMUGGLING])
def test_smuggling_endings_do_not_end_data(server, raw_factory, ending):
    c = raw_factory(server.port)
    start_data(c)
    # A fake end followed by a smuggled transaction, then the real end.
    c.send(b"Subject: a\r\n\r\nfirst" + ending +
           b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
           b"smuggled\r\n.\r\n")
    r = c.reply()
    if r[0].startswith("250"):
        pytest.fail("fake ending %r was accepted as a message: %r" % (ending, r))
    assert r[0][0] == "5", r
    # Exactly one reply: the smuggled commands were body, not commands.
    assert c.cmd("NOOP")[0].startswith("250")
    assert server.queue_count() == 0


def test_nul_dot_line_is_body_not_an_ending(server, raw_factory):
    # Some receivers drop NULs and would end DATA at "\0.": here it is body.
    c = raw_factory(server.port)
    start_data(c)
    c.send(b"Subject: a\r\n\r\nfirst\r\n\x00.\r\nMAIL FROM:<evil@example.org>\r\n.\r\n")
    r = c.reply()
    assert r[0].startswith("250 2.0.0"), r
    assert c.cmd("NOOP")[0].startswith("250")   # nothing else was answered
    ids = server.queue_ids()
    assert len(ids) == 1
    assert "MAIL FROM:<evil@example.org>" in server.queue_show(ids[0])


def test_bare_lf_in_command_refused(server, raw_factory):
    c = raw_factory(server.port)
    c.send("EHLO x\n")
    assert c.reply()[0].startswith("500 5.5.2")
    c.send("NOOP\rNOOP\r\n")
    assert c.reply()[0].startswith("500 5.5.2")
    assert c.cmd("NOOP")[0].startswith("250")


def test_bare_lf_in_body_refused_not_queued(server, raw_factory):
    c = raw_factory(server.port)
    start_data(c)
    c.send(b"Subject: a\r\n\r\nline one\nline two\r\n.\r\n")
    assert c.reply()[0].startswith("550 5.6.0")
    assert server.queue_count() == 0


def test_dot_stuffing_exact(server, raw_factory):
    c = raw_factory(server.port)
    start_data(c)
    body = (b"Subject: dots\r\nMessage-ID: <x@y>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n"
            b"..\r\n...two\r\n.leading\r\nmiddle . dot\r\n..\r\nend\r\n")
    c.send(body + b".\r\n")
    r = c.reply()[0]
    assert r.startswith("250 2.0.0"), r
    qid = r.split()[-1]
    shown = server.queue_show(qid).encode()
    stored = shown.split(b"\n\n", 1)[1]
    expect = (b"Subject: dots\r\nMessage-ID: <x@y>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n"
              b".\r\n..two\r\nleading\r\nmiddle . dot\r\n.\r\nend\r\n")
    assert stored.endswith(expect), stored
    # Only the trace header is added when Date and Message-ID are present.
    prefix = stored[:-len(expect)]
    assert prefix.startswith(b"Received: from x ([127.0.0.1])\r\n\tby mx.test.invalid (ringmta) with ESMTP id " + qid.encode())
    assert b"Message-ID" not in prefix and b"\r\nDate:" not in prefix


def test_terminator_split_across_packets(server, raw_factory):
    import time
    c = raw_factory(server.port)
    start_data(c)
    c.send(b"Subject: s\r\n\r\nbody\r")
    time.sleep(0.05)
    c.send(b"\n.")
    time.sleep(0.05)
    c.send(b"\r")
    time.sleep(0.05)
    c.send(b"\n")
    assert c.reply()[0].startswith("250 2.0.0")
    assert server.queue_count() == 1


def test_missing_headers_added(server, raw_factory):
    c = raw_factory(server.port)
    start_data(c)
    c.send(b"Subject: nothing else\r\n\r\nbody\r\n.\r\n")
    qid = c.reply()[0].split()[-1]
    stored = server.queue_show(qid).split("\n\n", 1)[1]
    assert re.search(r"^Message-ID: <%s@mx\.test\.invalid>\r$" % qid, stored, re.M), stored
    assert re.search(r"^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$", stored, re.M)
    assert stored.startswith("Received: ")
    assert "\tfor <b@example.org>; " in stored


def test_input_before_greeting_refused(make_server, raw_factory):
    srv = make_server(greeting_delay="700ms").start()
    c = raw_factory(srv.port, greet=False)
    c.send("EHLO eager\r\n")
    r = c.reply()
    assert r[0].startswith("554 5.5.0"), r
    assert c.closed()
    # A patient client gets the greeting.
    d = raw_factory(srv.port)
    assert d.greeting[0].startswith("220 ")


def test_relay_denied_outside_networks(make_server, raw_factory):
    srv = make_server(relay_networks="192.0.2.0/24").start()
    c = raw_factory(srv.port)
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    r = c.cmd("RCPT TO:<victim@example.com>")
    assert r[0].startswith("554 5.7.1"), r
    assert c.cmd("DATA")[0].startswith("554 5.5.1")
    assert srv.queue_count() == 0


def test_8bit_address_needs_smtputf8(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<jös@example.org>")[0].startswith("553 5.6.7")
    assert c.cmd("MAIL FROM:<jös@example.org> SMTPUTF8")[0].startswith("250")
    assert c.cmd("RCPT TO:<ü@example.org>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    c.send("Subject: ü\r\n\r\nü\r\n.\r\n".encode())
    assert c.reply()[0].startswith("250")
