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
