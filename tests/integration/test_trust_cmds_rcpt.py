"""Recipients past max_recipients get 452 (RFC 5321 4.5.3.1.10: the client
may send more and must handle 452); those 452s are not errors, so they
never reach max_errors and close the session, losing the transaction."""
import re

from conftest import Raw


def test_1010_pipelined_rcpts_keep_the_transaction(make_server):
    srv = make_server().start()      # max_recipients 1000, max_errors 10
    c = Raw(srv.port)
    assert c.cmd("EHLO client.test")[-1].startswith("250 ")
    lines = ["MAIL FROM:<s@example.org>"]
    lines += ["RCPT TO:<r%d@example.net>" % i for i in range(1010)]
    lines += ["DATA"]
    c.send("".join(l + "\r\n" for l in lines))
    assert c.code() == "250"                 # MAIL
    codes = [c.code() for _ in range(1010)]
    assert codes[:1000] == ["250"] * 1000
    assert codes[1000:] == ["452"] * 10
    assert c.code() == "354", "the session did not survive the 452s"
    c.send("Subject: many\r\n\r\nhello\r\n.\r\n")
    r = c.reply()[-1]
    assert r.startswith("250 "), r
    assert c.cmd("QUIT")[-1].startswith("221")
    c.close()
    ids = srv.queue_ids()
    assert len(ids) == 1
    show = srv.queue_show(ids[0])
    assert len(re.findall(r"^recipient: ", show, re.M)) == 1000
    assert "nrcpt=1000" in srv.read_log()


def test_recipient_overshoot_is_still_bounded(make_server):
    """Past the overshoot allowance excess recipients count as errors again."""
    srv = make_server(max_recipients=100, max_errors=3).start()
    c = Raw(srv.port)
    c.cmd("EHLO client.test")
    c.send("MAIL FROM:<s@example.org>\r\n" +
           "".join("RCPT TO:<r%d@example.net>\r\n" % i for i in range(100 + 1000 + 3)))
    assert c.code() == "250"
    codes = [c.code() for _ in range(100 + 1000 + 3)]
    assert codes[:100] == ["250"] * 100 and set(codes[100:]) == {"452"}
    assert c.code() == "421"
    assert c.closed()
