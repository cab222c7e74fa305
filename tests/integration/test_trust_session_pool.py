"""Receive buffers are a shared, bounded pool per worker: what one session
can keep of it is bounded, a starved worker still makes progress (new
clients are served, timeouts fire, SIGTERM finishes). The pool is made
tiny (recv_buffers_max = 64 per worker) so that starvation is quick to
reach."""
import socket
import threading
import time

from conftest import Raw


def open_data(port, name):
    c = Raw(port)
    c.cmd("EHLO %s" % name)
    assert c.cmd("MAIL FROM:<%s@example.org>" % name)[0].startswith("250")
    assert c.cmd("RCPT TO:<rcpt@example.org>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def trickle(c, data, gap=0.001):
    """Send data one byte per segment (the gap lets each arrive alone)."""
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(gap)


def test_one_byte_segments_do_not_wedge_the_worker(make_server):
    srv = make_server(recv_buffers_max=64, shutdown_timeout="1s").start()
    n = 8
    flood = [open_data(srv.port, "flood%d" % i) for i in range(n)]
    head = b"Subject: trickle\r\n\r\n"
    body = head + b"".join(b"line %03d of the trickled body\r\n" % i for i in range(8))
    threads = [threading.Thread(target=trickle, args=(c, body)) for c in flood]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Each flood session has sent ~270 one-byte segments, far more than
    # the 2 x 64 buffers of the pool. Fresh clients (on either worker) are
    # still served in full.
    for i in range(4):
        c = Raw(srv.port)
        c.sock.settimeout(5)
        assert c.cmd("EHLO fresh%d" % i)[0].startswith("250")
        assert c.cmd("MAIL FROM:<fresh@example.org>")[0].startswith("250")
        assert c.cmd("RCPT TO:<rcpt@example.org>")[0].startswith("250")
        assert c.cmd("DATA")[0].startswith("354")
        c.send(b"Subject: fresh\r\n\r\nhello\r\n.\r\n")
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
        assert c.cmd("QUIT")[0].startswith("221")
        c.close()
    # Half of the flood sessions finish their message; it is intact.
    for c in flood[: n // 2]:
        c.sock.settimeout(5)
        c.send(b".\r\n")
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
    # The rest stay in the middle of DATA: SIGTERM still ends the server
    # (after shutdown_timeout), with a clean exit.
    assert srv.stop(timeout=20) == 0
    for c in flood:
        c.close()
    assert srv.queue_count() == 4 + n // 2
    trickled = [q for q in srv.queue_ids() if "Subject: trickle" in srv.queue_show(q)]
    assert len(trickled) == n // 2
    for q in trickled:
        assert body[len(head):].decode() in srv.queue_show(q)


def test_slow_many_lines_message(make_server):
    srv = make_server(recv_buffers_max=64).start()
    c = open_data(srv.port, "slow")
    lines = [b"paced line %05d with some text after it to fill it up a bit\r\n" % i
             for i in range(600)]
    c.send(b"Subject: paced\r\n\r\n")
    for ln in lines:            # one line per segment: 600 >> 64 buffers
        c.send(ln)
        time.sleep(0.0005)
    c.sock.settimeout(10)
    c.send(b".\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
    assert c.cmd("QUIT")[0].startswith("221")
    c.close()
    ids = srv.queue_ids()
    assert len(ids) == 1
    stored = srv.queue_show(ids[0])
    assert b"".join(lines).decode() in stored
    # And a message sent the usual way, in large segments, still works.
    c = open_data(srv.port, "bulk")
    c.send(b"Subject: bulk\r\n\r\n" + b"".join(lines) + b".\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
    c.close()


def test_many_large_bodies_do_not_exhaust_the_pool(make_server):
    # 8 sessions each hold most of a 1 MB body (sent in large segments)
    # at once: 8 MB against 2 x 64 buffers of 8 KiB.
    srv = make_server(recv_buffers_max=64).start()
    n = 8
    body = b"Subject: large\r\n\r\n" + b"".join(
        b"%07d %s\r\n" % (i, b"z" * 90) for i in range(10000))
    conns = [open_data(srv.port, "large%d" % i) for i in range(n)]
    for c in conns:
        c.sock.settimeout(10)
        c.send(body)
    time.sleep(0.5)
    # A fresh client is served while all of them are mid-DATA.
    for i in range(4):
        f = Raw(srv.port)
        f.sock.settimeout(5)
        assert f.cmd("EHLO fresh%d" % i)[0].startswith("250")
        assert f.cmd("QUIT")[0].startswith("221")
        f.close()
    for c in conns:
        c.send(b".\r\n")
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
        c.close()
    ids = srv.queue_ids()
    assert len(ids) == n
    for q in ids:
        assert body[len(b"Subject: large\r\n\r\n"):].decode() in srv.queue_show(q)
