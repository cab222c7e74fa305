"""Two daemons on one queue (or one port) must not both run: the second
refuses with a clear message, while the queue tools still work beside the
first. Without this both start (SO_REUSEPORT), every message is delivered
twice and queue ids collide."""
import subprocess
import time

import pytest

from conftest import BIN, Server, free_port


def start_fails(srv, timeout=10):
    """Start srv's binary; it must exit by itself. Returns (rc, log)."""
    log = open(srv.log_path, "ab")
    p = subprocess.Popen([BIN, "-c", srv.conf], stdout=log, stderr=log)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait()
        rc = None
    log.close()
    return rc, srv.read_log()


def test_second_daemon_on_same_queue_refuses(make_server, tmp_path):
    first = make_server().start()
    second = Server(str(tmp_path), queue_dir=first.queue_dir)     # another port
    rc, log = start_fails(second)
    assert rc not in (None, 0), "a second ringmta started on the same queue:\n" + log
    assert "in use by another ringmta" in log and first.queue_dir in log, log
    # The tools still work beside the running daemon.
    assert first.queue_count() == 0
    assert first.proc.poll() is None


def test_second_daemon_on_same_port_refuses(make_server, tmp_path):
    first = make_server().start()
    second = Server(str(tmp_path), listen="127.0.0.1:%d" % first.port)   # another queue
    rc, log = start_fails(second)
    assert rc not in (None, 0), "a second ringmta joined the port:\n" + log
    assert "127.0.0.1:%d" % first.port in log and "in use" in log, log


def test_restart_after_stop_takes_the_queue(make_server):
    srv = make_server().start()
    assert srv.stop() == 0
    srv.start()     # the lock went with the old process
    assert srv.proc.poll() is None


def test_daemon_keeps_lmdb_lock_file_lock(make_server):
    """LMDB knows that another process uses the environment by a POSIX
    (fcntl) read lock each process holds on lock.mdb; the first process to
    open it alone re-initializes the lock region (its mutexes and reader
    table). POSIX locks go with ANY close() of the file in the process, so
    the daemon must never open and close lock.mdb beside LMDB: once it
    did, every `ringmta queue`/`suppress` beside it re-initialized the
    lock region under the running committer (a lost wake-up hung
    shutdown; readers wiped from the table let pages in use be reused)."""
    import fcntl
    import os
    srv = make_server().start()
    fd = os.open(os.path.join(srv.queue_dir, "lock.mdb"), os.O_RDWR)
    try:
        with pytest.raises(OSError):
            # What LMDB's mdb_env_excl_lock tries: a write lock on byte 0.
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
    finally:
        os.close(fd)
    # The tools beside it see a shared environment and leave it as it is.
    assert srv.queue_count() == 0
    assert srv.proc.poll() is None
