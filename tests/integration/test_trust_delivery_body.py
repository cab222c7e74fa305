"""Outbound DATA against receivers that answer out of turn or read slowly:
a message's bytes go only to its own recipients, a reply before the end
of data (or a 354 / 250 where it cannot belong) is a protocol error that
defers and is never logged as sent, and no LMDB read snapshot stays open
while a receiver is slow."""
import re
import smtplib
import ssl
import subprocess
import threading
import time

import pytest

from conftest import wait_log

from pki import Pki
from sink import Sink


def relay_server(make_server, sink, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h", max_message_size="50M")
    settings.update(kw)
    return make_server(**settings).start()


def send(srv, rcpts, body, sender="from@example.org"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        s.sendmail(sender, rcpts, body)



def results(srv, rcpt):
    return re.findall(r"delivery id=\S+ to=<%s> .*status=(\w+)" % re.escape(rcpt), srv.read_log())


def big_body(tag, size):
    line_len = 80
    n = size // line_len
    return b"Subject: %s\r\n\r\n" % tag + b"".join(
        b"%s-%08d-%s\r\n" % (tag, i, b"x" * (line_len - len(tag) - 12)) for i in range(n))


@pytest.fixture
def sink():
    # A small receive window: most of a large body is still in the
    # sender's hands when the early reply comes.
    s = Sink(rcvbuf=65536, early_chunk=65536, early_delay=0.02)
    yield s
    s.stop()


def test_early_reply_sends_no_foreign_bytes_and_is_not_sent(make_server, sink):
    """The receiver answers 250 after ~200 KB of a 12 MB body, then reads
    slowly; meanwhile other messages are stored and delivered. Nothing
    but the big message may reach that connection, and the early 250
    must not count as delivery."""
    srv = relay_server(make_server, sink)
    # Bigger than what the socket buffers can take (tcp_wmem's 4 MB).
    send(srv, ["early@example.com"], big_body(b"BIG", 12 * 1024 * 1024))
    assert sink.early_event.wait(20), "the early reply never went out"
    for i in range(30):
        send(srv, ["other%d@example.com" % i], big_body(b"FOREIGN%02d" % i, 120 * 1024))
    assert sink.early_done.wait(30)
    data = b"".join(sink.early_data.values())
    assert b"FOREIGN" not in data, "other messages' bytes reached the early receiver: %r" % (
        data[data.find(b"FOREIGN") - 80:data.find(b"FOREIGN") + 80])
    # Every body line that arrived is one of the big message's own lines.
    assert b"\r\n\r\n" in data
    for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[:-1]:
        assert line.startswith(b"BIG-"), line[:100]
    assert wait_log(srv, r"to=<early@example.com> .*status=deferred", timeout=20)
    log = srv.read_log()
    assert "status=sent" not in " ".join(l for l in log.splitlines() if "to=<early@" in l)
    assert "replied before the end of the message" in log
    assert sink.wait_for(30)        # the others still arrive, whole
    for m in sink.messages:
        tag = m["data"].split(b"Subject: ")[1][:9]
        assert tag.startswith(b"FOREIGN") and m["data"].count(tag) > 1000


def test_second_354_is_not_delivery(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, ["dup354@example.com"], b"Subject: dup\r\n\r\nx\r\n")
    assert wait_log(srv, r"to=<dup354@example.com> .*status=\w+", timeout=20)
    time.sleep(0.3)
    assert results(srv, "dup354@example.com") == ["deferred"]


def test_354_to_mail_is_not_delivery(make_server):
    sink = Sink(mail_reply="354 send it")
    try:
        srv = relay_server(make_server, sink)
        send(srv, ["a@example.com", "b@example.com"], b"Subject: m\r\n\r\nx\r\n")
        assert wait_log(srv, r"to=<b@example.com> .*status=\w+", timeout=20)
        assert results(srv, "a@example.com") == ["deferred"]
        assert results(srv, "b@example.com") == ["deferred"]
        assert "answered MAIL FROM with 354" in srv.read_log()
    finally:
        sink.stop()


def test_250_to_data_is_not_delivery(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, ["data250@example.com"], b"Subject: d\r\n\r\nx\r\n")
    assert wait_log(srv, r"to=<data250@example.com> .*status=\w+", timeout=20)
    assert results(srv, "data250@example.com") == ["deferred"]
    assert "answered DATA with 250" in srv.read_log()


def active_readers(queue_dir):
    """(pid, txnid) of every reader slot with an open read transaction."""
    out = subprocess.run(["mdb_stat", "-r", queue_dir], capture_output=True, text=True,
                         timeout=10).stdout
    found = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].isdigit() and f[2] != "-":
            found.add((f[0], f[2]))
    return found


def test_slow_receiver_pins_no_snapshot(make_server):
    """While a receiver has stopped reading in the middle of an 8 MB body,
    no read transaction of ringmta stays open across a commit (such a
    reader stops LMDB from reusing freed pages); the message still
    arrives whole once the receiver reads again."""
    sink = Sink(stall_after=100000, stall_seconds=4.0)
    try:
        srv = relay_server(make_server, sink)
        body = big_body(b"SLOW", 8 * 1024 * 1024)
        send(srv, ["stall@example.com"], body)
        assert sink.stall_event.wait(20)
        time.sleep(0.5)
        before = active_readers(srv.queue_dir)
        # A commit in between: a snapshot seen twice is one held open.
        send(srv, ["after@example.com"], b"Subject: later\r\n\r\nx\r\n")
        time.sleep(0.5)
        after = active_readers(srv.queue_dir)
        held = before & after
        assert not held, "read transactions held while the receiver stalls: %s" % held
        assert sink.wait_for(2, timeout=40)
        got = [m for m in sink.messages if m["rcpts"] == ["stall@example.com"]]
        assert len(got) == 1 and got[0]["data"].endswith(body)
        assert wait_log(srv, r"to=<stall@example.com> .*status=sent", timeout=20)
    finally:
        sink.stop()


def test_dot_lines_across_windows_byte_exact(make_server, sink):
    """Every line starts with a dot, over several body windows: some
    window boundary falls at the start of such a line, and stuffing must
    carry over it."""
    srv = relay_server(make_server, sink)
    body = b"Subject: dots\r\n\r\n" + b".\r\n" * 400000 + b"..x\r\n.end"
    send(srv, ["dots@example.com"], body + b"\r\n")
    assert sink.wait_for(1)
    assert sink.messages[0]["data"].endswith(body + b"\r\n")
    assert wait_log(srv, r"to=<dots@example.com> .*status=sent", timeout=20)


@pytest.fixture(scope="module")
def tls_ctx():
    p = Pki()
    crt, key = p.leaf("sink.test.invalid", ["DNS:sink.test.invalid", "IP:127.0.0.1"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


def test_tls_dot_lines_across_windows_byte_exact(make_server, tls_ctx):
    sink = Sink(tls_context=tls_ctx)
    try:
        srv = relay_server(make_server, sink)
        body = b"Subject: dots\r\n\r\n" + b".\r\n" * 400000 + b"..x\r\n.end"
        send(srv, ["dots@example.com"], body + b"\r\n")
        assert sink.wait_for(1)
        assert sink.messages[0]["tls"] is True
        assert sink.messages[0]["data"].endswith(body + b"\r\n")
    finally:
        sink.stop()


def test_tls_early_reply_is_not_sent(make_server, tls_ctx):
    sink = Sink(tls_context=tls_ctx, rcvbuf=65536, early_chunk=65536, early_delay=0.02)
    try:
        srv = relay_server(make_server, sink)
        # Bigger than what the socket buffers can take (tcp_wmem's 4 MB).
        send(srv, ["early@example.com"], big_body(b"BIG", 12 * 1024 * 1024))
        assert sink.early_event.wait(20)
        for i in range(5):
            send(srv, ["other%d@example.com" % i], big_body(b"FOREIGN%02d" % i, 120 * 1024))
        assert sink.early_done.wait(30)
        assert b"FOREIGN" not in b"".join(sink.early_data.values())
        assert wait_log(srv, r"to=<early@example.com> .*status=deferred", timeout=20)
        assert results(srv, "early@example.com") == ["deferred"]
        assert sink.wait_for(5, timeout=30)
    finally:
        sink.stop()
