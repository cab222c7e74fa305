"""Client text that ends up in logs, queue records and headers: a HELO/EHLO
name with control characters is refused (501 5.5.4), never written into
the log or the Received header; an address that is not well-formed UTF-8
(overlong forms, surrogates, stray octets) is refused with 553 5.6.7,
SMTPUTF8 or not."""
import pytest


@pytest.mark.parametrize("name", [b"evil\x01host", b"a\x1b[2Jb", b"x\x7f", b"tab\there",
                                  b"c1\xc2\x85x", b"bad\xffutf8", b"ov\xc0\xafer"])
def test_helo_with_control_or_bad_utf8_is_refused(make_server, raw_factory, name):
    srv = make_server().start()
    c = raw_factory(srv.port)
    c.send(b"EHLO " + name + b"\r\n")
    r = c.reply()
    assert r[0].startswith("501 5.5.4"), r
    c.send(b"HELO " + name + b"\r\n")
    assert c.reply()[0].startswith("501 5.5.4")
    # Not greeted: a transaction needs a proper name first.
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("503")
    assert c.cmd("EHLO good.example")[-1].startswith("250 ")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.net>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    assert c.cmd("Subject: x\r\n\r\nx\r\n.")[0].startswith("250")
    assert c.cmd("QUIT")[0].startswith("221")
    c.close()
    srv.stop()
    log = srv.read_log().encode()
    assert name not in log
    body = srv.queue_show(srv.queue_ids()[0]).encode()
    assert b"Received: from good.example" in body and name not in body


@pytest.mark.parametrize("addr", [
    b"\xff\xfe@example.org",                 # not UTF-8 at all
    b"caf\xc3@example.org",                  # truncated sequence
    b"a\xc0\xaf@example.org",                # overlong "/"
    b"\xed\xa0\x80x@example.org",            # surrogate U+D800
    b"\xf4\x90\x80\x80@example.org",         # above U+10FFFF
    b"user@\xe4\xbe.example",                # truncated, in the domain
])
def test_invalid_utf8_address_is_refused(make_server, raw_factory, addr):
    srv = make_server().start()
    c = raw_factory(srv.port)
    c.cmd("EHLO c.example")
    c.send(b"MAIL FROM:<" + addr + b"> SMTPUTF8\r\n")
    r = c.reply()
    assert r[0].startswith("553 5.6.7"), r
    assert c.cmd("MAIL FROM:<a@example.org> SMTPUTF8")[0].startswith("250")
    c.send(b"RCPT TO:<" + addr + b">\r\n")
    r = c.reply()
    assert r[0].startswith("553 5.6.7"), r
    # Well-formed UTF-8 is still welcome.
    c.send("RCPT TO:<δοκιμή@παράδειγμα.example>\r\n".encode())
    assert c.reply()[0].startswith("250")
    c.close()
