"""Flow control on an inbound session: a client that does not read its
replies stops being read (its replies are neither piled up without bound
nor dropped); pipelined input behind a pending commit waits instead of
ending the session."""
import signal
import threading
import time

from conftest import Raw, proc_status_kb

NOOP_REPLY = b"250 2.0.0 Ok\r\n"


def sender(sock, data, done):
    try:
        sock.sendall(data)
    except OSError:
        pass
    done.set()


def test_unread_replies_apply_backpressure(make_server):
    srv = make_server().start()
    probe = Raw(srv.port)
    help_reply = ("\r\n".join(probe.cmd("HELP")) + "\r\n").encode()
    probe.close()
    base = proc_status_kb(srv.proc.pid, "RssAnon")
    # 3M commands: blocks of 999 NOOPs and a HELP, so order shows.
    blocks = 3000
    n = blocks * 1000
    conns, threads = [], []
    for i in range(2):
        c = Raw(srv.port)
        done = threading.Event()
        data = (b"NOOP\r\n" * 999 + b"HELP\r\n") * blocks + b"QUIT\r\n"
        t = threading.Thread(target=sender, args=(c.sock, data, done), daemon=True)
        t.start()
        conns.append((c, done))
        threads.append(t)
    # Nobody reads. Give the server time to take in what it will take.
    deadline = time.time() + 4
    while time.time() < deadline and not all(d.is_set() for _, d in conns):
        time.sleep(0.1)
    time.sleep(0.5)
    grown = proc_status_kb(srv.proc.pid, "RssAnon") - base
    # 2 x 3M replies would be 85 MB if buffered; a bounded server keeps
    # a small window per client and leaves the rest in the sockets.
    assert grown < 24 * 1024, "RssAnon grew by %d KiB" % grown
    # Now read: every reply is there, in order, none dropped.
    for c, _ in conns:
        c.sock.settimeout(20)
        want = (NOOP_REPLY * 999 + help_reply) * blocks
        got = bytearray(c.buf)
        while len(got) < len(want) + 5:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        assert got[:len(want)] == want, "replies lost: %d of %d bytes" % (len(got), len(want))
        assert bytes(got[len(want):]).startswith(b"221 ")
        c.close()
    for t in threads:
        t.join(timeout=10)


def test_sigterm_with_a_client_that_does_not_read(make_server):
    srv = make_server(shutdown_timeout="1s").start()
    c = Raw(srv.port)
    done = threading.Event()
    t = threading.Thread(target=sender, args=(c.sock, b"NOOP\r\n" * 2000000, done), daemon=True)
    t.start()
    time.sleep(1.5)
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        assert srv.proc.wait(timeout=20) == 0
    finally:
        c.close()
    assert time.time() - t0 < 20


def test_bdat_pipelined_past_pending_commit(make_server):
    srv = make_server().start()
    c = Raw(srv.port)
    c.cmd("EHLO x")
    big = b"Subject: first\r\n\r\n" + (b"x" * 998 + b"\r\n") * 8000     # 8 MB
    second = b"Subject: second\r\n\r\n" + (b"y" * 998 + b"\r\n") * 2000  # 2 MB
    data = (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT %d LAST\r\n" % len(big)
            + big
            + b"MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nBDAT %d LAST\r\n" % len(second)
            + second + b"QUIT\r\n")
    done = threading.Event()
    t = threading.Thread(target=sender, args=(c.sock, data, done), daemon=True)
    t.start()
    c.sock.settimeout(30)
    codes = []
    try:
        while len(codes) < 7:
            codes.append(c.reply()[0])
    except EOFError:
        pass
    t.join(timeout=10)
    assert len(codes) == 7, codes
    assert codes[0].startswith("250 2.1.0") and codes[1].startswith("250 2.1.5")
    assert codes[2].startswith("250 2.0.0 Ok: queued"), codes
    assert codes[3].startswith("250 2.1.0") and codes[4].startswith("250 2.1.5"), codes
    assert codes[5].startswith("250 2.0.0 Ok: queued"), codes
    assert codes[6].startswith("221"), codes
    assert srv.queue_count() == 2
