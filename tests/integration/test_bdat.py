"""CHUNKING / BDAT (RFC 3030), including pipelined chunks and refusals
that must still consume the chunk."""


def setup_txn(c):
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250")


def test_bdat_chunks(server, raw_factory):
    c = raw_factory(server.port)
    setup_txn(c)
    p1 = b"Subject: chunked\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\nfirst "
    p2 = b"second\r\n.leading dot kept\r\n"
    c.send(b"BDAT %d\r\n" % len(p1) + p1)
    assert c.reply()[0] == "250 2.0.0 %d octets received" % len(p1)
    c.send(b"BDAT %d LAST\r\n" % len(p2) + p2)
    r = c.reply()[0]
    assert r.startswith("250 2.0.0 Ok: queued as"), r
    stored = server.queue_show(r.split()[-1]).encode().split(b"\n\n", 1)[1]
    assert stored.endswith(p1 + p2)


def test_bdat_pipelined_with_next_transaction(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    body = b"Subject: p\r\n\r\nbody\r\n"
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT %d LAST\r\n" % len(body)
           + body + b"MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nBDAT 0 LAST\r\nQUIT\r\n")
    codes = [c.reply()[0] for _ in range(7)]
    assert codes[0].startswith("250 2.1.0") and codes[1].startswith("250 2.1.5")
    assert codes[2].startswith("250 2.0.0 Ok: queued")
    assert codes[3].startswith("250 2.1.0") and codes[4].startswith("250 2.1.5")
    assert codes[5].startswith("250 2.0.0 Ok: queued")
    assert codes[6].startswith("221")
    assert server.queue_count() == 2


def test_bdat_without_mail_consumes_chunk(server, raw_factory):
    c = raw_factory(server.port)
    c.cmd("EHLO x")
    junk = b"RSET\r\nNOOP\r\n"     # looks like commands but is chunk data
    c.send(b"BDAT %d\r\n" % len(junk) + junk)
    assert c.reply()[0].startswith("503 5.5.1")
    # Had the chunk been read as commands we'd see two more replies first.
    assert c.cmd("HELP")[0].startswith("214")


def test_data_after_bdat_refused(server, raw_factory):
    c = raw_factory(server.port)
    setup_txn(c)
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("503 5.5.1")


def test_bdat_bare_lf_refused(server, raw_factory):
    c = raw_factory(server.port)
    setup_txn(c)
    body = b"Subject: x\r\n\r\nbad\nline\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    assert c.reply()[0].startswith("550 5.6.0")
    assert server.queue_count() == 0


def test_bad_bdat_size_closes(server, raw_factory):
    c = raw_factory(server.port)
    setup_txn(c)
    c.send(b"BDAT twelve\r\n")
    assert c.reply()[0].startswith("501")
    assert c.reply()[0].startswith("421")
    assert c.closed()
