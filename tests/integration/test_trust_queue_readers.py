"""Dead LMDB readers: a `queue list` killed inside its read transaction (by
SIGPIPE from `| head -1`, or by kill -9) must not pin old pages for ever,
or the queue file grows without bound even when the queue is empty."""
import os
import signal
import smtplib
import subprocess
import time

from conftest import BIN


def data_bytes(srv):
    """Bytes the data file really occupies (it is sparse)."""
    return os.stat(os.path.join(srv.queue_dir, "data.mdb")).st_blocks * 512


def send(srv, n, size, rcpts=1, tag="m"):
    body = (b"Subject: readers\r\n\r\n" + (b"x" * 998 + b"\r\n") * (size // 1000))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as s:
        for i in range(n):
            s.sendmail("from@example.org",
                       ["%s%d-%d@example.com" % (tag, i, j) for j in range(rcpts)], body)


def round_trip(srv, keep):
    """Queue 4 MB and delete it again: the file should reuse those pages."""
    send(srv, 20, 200000)
    for qid in srv.queue_ids():
        if qid not in keep:
            srv.cli("queue", "delete", qid)


def test_head_and_kill9_leave_no_growing_queue(server):
    srv = server
    # Enough to list that `queue list` outgrows a pipe.
    send(srv, 40, 1000, rcpts=50, tag="keep")
    keep = set(srv.queue_ids())
    assert len(keep) == 40
    sizes = []
    for rnd in range(6):
        # SIGPIPE inside the listing's read transaction.
        r = subprocess.run("'%s' -c '%s' queue --offline list | head -1" % (BIN, srv.conf), shell=True,
                           capture_output=True, timeout=30)
        assert r.stdout.strip(), r.stderr
        # kill -9 while the listing blocks on a full pipe.
        p = subprocess.Popen([BIN, "-c", srv.conf, "queue", "--offline", "list"], stdout=subprocess.PIPE)
        time.sleep(0.3)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        round_trip(srv, keep)
        sizes.append(data_bytes(srv))
    assert srv.queue_count() == 40
    # One round queues 4 MB; after the first, the file must stop growing.
    growth = sizes[-1] - sizes[0]
    assert growth < 2 << 20, "data.mdb grew by %d bytes over rounds: %s" % (growth, sizes)
    assert srv.proc.poll() is None


def test_list_into_closed_pipe_is_quiet(server):
    send(server, 40, 1000, rcpts=50)
    r = subprocess.run("'%s' -c '%s' queue --offline list | head -1; echo \"rc=${PIPESTATUS[0]}\"" % (BIN, server.conf),
                       shell=True, executable="/bin/bash", capture_output=True, timeout=30)
    # Not killed by SIGPIPE (141): it ends its transaction and exits.
    assert "rc=141" not in r.stdout.decode(), r.stdout


def test_compact_refuses_beside_daemon_then_shrinks(server):
    srv = server
    send(srv, 20, 200000)
    ids = srv.queue_ids()
    keep = ids[:2]
    shown = {qid: srv.queue_show(qid) for qid in keep}
    for qid in ids[2:]:
        srv.cli("queue", "delete", qid)
    r = srv.cli("queue", "compact", check=False)
    assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    assert srv.stop() == 0
    before = data_bytes(srv)
    r = srv.cli("queue", "compact")
    assert "compacted" in r.stdout
    after = data_bytes(srv)
    assert after < before, (before, after)
    assert sorted(srv.queue_ids()) == sorted(keep)
    for qid in keep:
        assert srv.queue_show(qid) == shown[qid]
    assert srv.cli("queue", "check").returncode == 0
    srv.start()
    send(srv, 1, 1000)
    assert srv.queue_count() == 3


def test_compact_and_queue_tools_exclude_each_other(server):
    # A queue tool that runs while compact copies and replaces data.mdb
    # would have its change undone (or keep lock.mdb open over the new
    # file): a tool holds ringmta.tools.lock shared, compact alone.
    import fcntl
    srv = server
    send(srv, 3, 1000)
    first = srv.queue_ids()[0]
    assert srv.stop() == 0
    path = os.path.join(srv.queue_dir, "ringmta.tools.lock")
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_SH)          # as a running "queue list" does
        r = srv.cli("queue", "compact", check=False)
        assert r.returncode != 0 and "tools are in use" in r.stderr, r.stderr
        fcntl.flock(f, fcntl.LOCK_UN)
        fcntl.flock(f, fcntl.LOCK_EX)          # as a running compact does
        r = srv.cli("queue", "delete", first, check=False)
        assert r.returncode != 0 and "compact is running" in r.stderr, r.stderr
        fcntl.flock(f, fcntl.LOCK_UN)
    assert "compacted" in srv.cli("queue", "compact").stdout
    assert srv.queue_count() == 3
