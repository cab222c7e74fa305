"""SMTP session behaviour of the real binary: verbs, extensions, order of
commands, pipelining, replies with enhanced status codes."""
import re
import smtplib
import socket
import time

import pytest

from conftest import Raw


def test_greeting_and_ehlo_extensions(server, raw_factory):
    c = raw_factory(server.port)
    assert c.greeting[0].startswith("220 mx.test.invalid ")
    r = c.cmd("EHLO client.example")
    assert r[0] == "250-mx.test.invalid"
    exts = [l[4:].split()[0] for l in r[1:]]
    for e in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
        assert e in exts, r
    size_line = [l for l in r if l[4:].startswith("SIZE")][0]
    assert size_line[4:] == "SIZE 10240000"
    assert r[-1].startswith("250 ")


def test_helo_and_simple_verbs(server, raw_factory):
    c = raw_factory(server.port)
    assert c.cmd("HELO client.example") == ["250 mx.test.invalid"]
    assert c.cmd("NOOP")[0].startswith("250 2.0.0")
    assert c.cmd("VRFY someone")[0].startswith("252 2.")
    assert c.cmd("EXPN list")[0].startswith("502 5.5.1")
    assert c.cmd("HELP")[0].startswith("214 ")
    assert c.cmd("RSET")[0].startswith("250 2.0.0")
    assert c.cmd("FOO bar")[0].startswith("500 5.5.1")
    assert c.cmd("QUIT")[0].startswith("221 2.0.0")
    assert c.closed()


@pytest.mark.parametrize("cmd,code", [
    ("MAIL FROM:<a@example.org>", "503 5.5.1"),
    ("RCPT TO:<b@example.org>", "503 5.5.1"),
    ("DATA", "503 5.5.1"),
])
def test_commands_out_of_order_before_helo(server, raw_factory, cmd, code):
    c = raw_factory(server.port)
    assert c.cmd(cmd)[0].startswith(code)


def test_transaction_order(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("503 5.5.1")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250 2.1.0")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("503 5.5.1")
    assert c.cmd("DATA")[0].startswith("554 5.5.1")
    assert c.cmd("RCPT TO:<>")[0][:1] == "5"
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250 2.1.5")
    assert c.cmd("RCPT TO:<postmaster>")[0].startswith("250 2.1.5")
    assert c.cmd("DATA")[0].startswith("354 ")
    c.send("Subject: t\r\n\r\nhello\r\n.\r\n")
    r = c.reply()[0]
    assert re.match(r"250 2\.0\.0 Ok: queued as [0-9a-f]{16}$", r), r
    assert c.cmd("QUIT")[0].startswith("221")


def test_null_sender_accepted(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<>")[0].startswith("250")


def test_smtplib_send(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("pipelining") and s.has_extn("enhancedstatuscodes")
        refused = s.sendmail("from@example.org", ["to1@example.com", "to2@example.net"],
                             b"Subject: smtplib\r\n\r\nbody\r\n")
        assert refused == {}
    assert server.queue_count() == 1


def test_pipelined_group_answered_in_one_send(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
           "RCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n")
    time.sleep(0.3)
    c.sock.settimeout(5)
    first = c.sock.recv(65536)
    lines = first.split(b"\r\n")
    assert [l[:3] for l in lines if l] == [b"250", b"250", b"250", b"250", b"354"], first
    # Body, end, and the next transaction pipelined behind the dot.
    c.send("Subject: p\r\n\r\nx\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nQUIT\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued as")
    assert c.reply()[0].startswith("250 2.1.0")
    assert c.reply()[0].startswith("250 2.1.5")
    assert c.reply()[0].startswith("221")
    assert server.queue_count() == 1


def test_every_reply_has_enhanced_code(server, raw_factory):
    c = raw_factory(server.port)
    replies = [c.cmd(x) for x in ("EHLO x", "NOOP", "MAIL FROM:<a@b.c>", "RCPT TO:<d@e.f>",
                                   "RSET", "VRFY x", "EXPN x", "BOGUS", "MAIL FROM:bad")]
    for r in replies[1:]:
        assert re.match(r"^\d{3} [245]\.\d{1,3}\.\d{1,3} ", r[-1]), r


def test_ipv6_loopback(make_server, raw_factory):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        s6 = socket.socket(socket.AF_INET6)
        s6.bind(("::1", 0))
        s6.close()
    except OSError:
        pytest.skip("no ::1")
    from conftest import free_port
    p6 = free_port()
    srv = make_server()
    srv.settings["listen"] = "127.0.0.1:%d, [::1]:%d" % (srv.port, p6)
    with open(srv.conf, "w") as f:
        for k, v in srv.settings.items():
            f.write("%s = %s\n" % (k, v))
    srv.start()
    c = raw_factory(p6, host="::1", family=socket.AF_INET6)
    c.cmd("EHLO x")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250")  # ::1 is a relay network


def test_swaks(server):
    import subprocess
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.port),
                        "--from", "sender@example.org", "--to", "rcpt@example.com",
                        "--header", "Subject: swaks test", "--body", "hello from swaks",
                        "--pipeline"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"<-\s+250 2\.0\.0 Ok: queued as [0-9a-f]{16}", r.stdout), r.stdout
    ids = server.queue_ids()
    assert len(ids) == 1
    body = server.queue_show(ids[0])
    assert "hello from swaks" in body and "Subject: swaks test" in body
