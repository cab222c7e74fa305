"""Storage full: a full filesystem under the queue or a full LMDB map means
452 4.3.1 to new mail, never a crash (MDB_WRITEMAP used to SIGBUS on the
sparse data file); mail already acknowledged stays, delivery and deletes
go on inside the reserve, and new mail is taken again once space returns."""
import errno
import os
import smtplib
import subprocess
import tempfile
import time

import pytest

from conftest import free_port
from sink import Sink


@pytest.fixture
def small_fs():
    """A tmpfs of 40 MiB in a directory the test makes (root only)."""
    d = tempfile.mkdtemp(prefix="ringmta-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40M", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode(errors="replace"))
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def fill(path):
    """Write path (and path.tail for the last partial megabyte) until the
    filesystem is full."""
    for name, size in ((path, 1 << 20), (path + ".tail", 4096)):
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)


def body(token, size=300000):
    head = ("Subject: full %s\r\nMessage-ID: <%s@test>\r\n\r\n" % (token, token)).encode()
    line = (token.encode() + b" ") * 10 + b"\r\n"
    return head + line * (size // len(line))


def try_send(port, token, size=300000):
    """(code, text) of the final reply for one message."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.sendmail("from@example.org", ["to@example.com"], body(token, size))
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")


def test_full_filesystem_is_452_and_delivery_drains(make_server, small_fs):
    sink_port = free_port()
    srv = make_server(queue_dir=os.path.join(small_fs, "queue"), delivery="yes",
                      relayhost="[127.0.0.1]:%d" % sink_port, retry_min="1s",
                      retry_max="1s").start()
    acked = []
    for i in range(3):
        code, _ = try_send(srv.port, "before%d" % i)
        assert code == 250
        acked.append("before%d" % i)
    # Nothing listens at the relay yet: the three stay queued (deferred).
    fill(os.path.join(small_fs, "filler"))
    # What the reserve already holds may take a few more; then 452.
    replies = []
    for i in range(60):
        replies.append(try_send(srv.port, "full%d" % i))
        if replies[-1][0] != 250:
            break
    assert srv.proc.poll() is None, "ringmta died (%s) on a full disk:\n%s" % (
        srv.proc.returncode, srv.read_log()[-2000:])
    code, text = replies[-1]
    assert code == 452 and "4.3.1" in text, replies
    acked += ["full%d" % i for i, (code, _) in enumerate(replies) if code == 250]
    assert try_send(srv.port, "still")[0] == 452      # and it stays so
    time.sleep(2.5)     # a few deferrals committed while full
    assert srv.proc.poll() is None, srv.read_log()[-2000:]
    # Delivery still drains, and its deletes commit, while the disk is full.
    sink = Sink(port=sink_port)
    try:
        assert sink.wait_for(len(acked), timeout=30), srv.read_log()[-2000:]
        deadline = time.time() + 20
        while srv.queue_count() != 0 and time.time() < deadline:
            time.sleep(0.2)
        assert srv.queue_count() == 0
        assert srv.proc.poll() is None
        # Space returns: new mail is accepted again and delivered.
        os.unlink(os.path.join(small_fs, "filler"))
        os.unlink(os.path.join(small_fs, "filler.tail"))
        code, text = try_send(srv.port, "after")
        assert code == 250, (code, text)
        acked.append("after")
        assert sink.wait_for(len(acked), timeout=30)
        got = {}
        for m in sink.messages:
            for tok in acked:
                if ("Subject: full %s\r\n" % tok).encode() in m["data"]:
                    got[tok] = m["data"]
        for tok in acked:
            assert tok in got, "acknowledged %s was not delivered" % tok
            assert got[tok].endswith(body(tok)), tok
        # Each once: a delivery result that cannot be stored while the
        # disk is full is kept and stored later, never taken for a
        # message still to send (which the next scan would send again).
        copies = [tok for m in sink.messages for tok in acked
                  if ("Subject: full %s\r\n" % tok).encode() in m["data"]]
        assert sorted(copies) == sorted(acked), (sorted(copies), srv.read_log()[-3000:])
    finally:
        sink.stop()
    assert "SIGBUS" not in srv.read_log()


def test_full_filesystem_refuses_then_recovers_without_delivery(make_server, small_fs):
    srv = make_server(queue_dir=os.path.join(small_fs, "queue")).start()
    assert try_send(srv.port, "a")[0] == 250
    ids = srv.queue_ids()
    fill(os.path.join(small_fs, "filler"))
    codes = []
    for i in range(60):
        codes.append(try_send(srv.port, "b%d" % i)[0])
        if codes[-1] != 250:
            break
    assert srv.proc.poll() is None, srv.read_log()[-2000:]
    assert codes[-1] == 452, codes
    # The queue tools work on the full disk: show, and delete.
    assert body("a") in srv.cli("queue", "show", ids[0]).stdout.encode()
    assert srv.cli("queue", "delete", ids[0]).returncode == 0
    os.unlink(os.path.join(small_fs, "filler"))
    os.unlink(os.path.join(small_fs, "filler.tail"))
    assert try_send(srv.port, "c")[0] == 250
    # A restart on the same (now roomy) filesystem works: no crash loop.
    assert srv.stop() == 0
    srv.start()
    assert try_send(srv.port, "d")[0] == 250


def test_map_full_is_452_with_lmdb_message(make_server):
    srv = make_server(queue_map_size="16M", max_message_size="4M").start()
    codes = []
    for i in range(12):
        code, text = try_send(srv.port, "m%d" % i, size=2000000)
        codes.append(code)
        if code != 250:
            assert code == 452 and "4.3.1" in text, (code, text)
            break
    assert codes[-1] == 452, codes
    log = srv.read_log()
    assert "Unknown error" not in log, log[-2000:]
    # Room comes back when messages leave the queue.
    for qid in srv.queue_ids():
        srv.cli("queue", "delete", qid)
    assert try_send(srv.port, "again")[0] == 250
