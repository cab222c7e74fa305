"""What a message body costs the server beyond its own octets stays
small: dot-stuffed lines do not turn into one 16-octet slice per 3
octets."""
import time

from conftest import Raw, proc_status_kb


def test_dot_lines_body_memory_bounded(make_server):
    srv = make_server().start()
    c = Raw(srv.port)
    c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.org>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    base = proc_status_kb(srv.proc.pid, "RssAnon")
    # 2.4 M lines of "..": 9.6 MB on the wire, 7.2 MB of message.
    c.send(b"Subject: dots\r\n\r\n" + b"..\r\n" * 2400000)
    # Wait until the server has taken it all in (RSS stops moving).
    last, stable = -1, 0
    deadline = time.time() + 15
    while time.time() < deadline and stable < 5:
        time.sleep(0.1)
        now = proc_status_kb(srv.proc.pid, "RssAnon")
        stable = stable + 1 if now == last else 0
        last = now
    grown = last - base
    c.send(b".\r\n")
    c.sock.settimeout(20)
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
    # The body itself needs ~7 MB; 16-byte slices for every 3 bytes would
    # add ~38 MB more.
    assert grown < 24 * 1024, "RssAnon grew by %d KiB" % grown
    ids = srv.queue_ids()
    assert len(ids) == 1
