"""A damaged queue is caught at start: truncated to 0 bytes, truncated in
the middle, or garbage over its pages, the daemon exits non-zero with a
message naming data.mdb, never starting an empty queue over it nor dying
later; `ringmta queue check` says the same, and passes a sound queue."""
import os
import random
import smtplib
import subprocess

import pytest

from conftest import BIN


def fill_queue(srv):
    body = b"Subject: corrupt\r\n\r\n" + (b"y" * 998 + b"\r\n") * 100
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as s:
        for i in range(60):
            s.sendmail("from@example.org", ["r%d-%d@example.com" % (i, j) for j in range(20)],
                       body)
    assert srv.queue_count() == 60


def used_bytes(srv):
    """Where LMDB's pages end (the file itself is as long as the map)."""
    out = subprocess.run(["mdb_stat", "-e", srv.queue_dir], capture_output=True,
                         text=True, check=True).stdout
    info = dict(l.strip().split(": ", 1) for l in out.splitlines() if ": " in l)
    return (int(info["Number of pages used"])) * int(info["Page size"])


def start_must_fail(srv):
    log_mark = len(srv.read_log())
    log = open(srv.log_path, "ab")
    p = subprocess.Popen([BIN, "-c", srv.conf], stdout=log, stderr=log)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait()
        rc = None
    log.close()
    return rc, srv.read_log()[log_mark:]


@pytest.fixture
def damaged(make_server):
    """A stopped server whose queue holds 60 messages."""
    srv = make_server().start()
    fill_queue(srv)
    assert srv.stop() == 0
    return srv


def test_sound_queue_checks_ok_and_restarts(damaged):
    r = damaged.cli("queue", "check")
    assert "ok" in r.stdout
    damaged.start()
    assert damaged.queue_count() == 60


def check_refused(srv, data):
    rc, log = start_must_fail(srv)
    assert rc not in (None, 0), "ringmta started over a damaged queue:\n" + log
    assert data in log, log
    r = srv.cli("queue", "check", check=False)
    assert r.returncode != 0 and data in r.stderr, (r.returncode, r.stdout, r.stderr)
    r = srv.cli("queue", "count", check=False)
    assert r.returncode != 0 and data in r.stderr, (r.returncode, r.stdout, r.stderr)


def test_truncated_to_zero(damaged):
    data = os.path.join(damaged.queue_dir, "data.mdb")
    os.truncate(data, 0)
    check_refused(damaged, data)
    assert os.path.getsize(data) == 0   # not replaced by an empty queue


def test_truncated_mid_file(damaged):
    data = os.path.join(damaged.queue_dir, "data.mdb")
    os.truncate(data, used_bytes(damaged) // 2)
    check_refused(damaged, data)


def test_garbage_pages(damaged):
    data = os.path.join(damaged.queue_dir, "data.mdb")
    used = used_bytes(damaged)
    rnd = random.Random(1234)
    with open(data, "r+b") as f:
        # Every page but the two meta pages: the trees cannot be read.
        f.seek(8192)
        f.write(bytes(rnd.getrandbits(8) for _ in range(used - 8192)))
    check_refused(damaged, data)
