"""Sessions beyond the open-file limit: accepted connections move into the
worker's registered file table (io/loop.c) and close their descriptors, so
ringmta holds more sessions than RLIMIT_NOFILE allows descriptors, the way
this box's 20,000 sessions fit under its hard limit of 20,000 (bench/idle.sh).
Here the limit is 64 and one worker holds 100 sessions: 64 in its table
(the kernel caps a table at the limit) and the rest with descriptors of
their own once the table is full. Each gets the greeting and an answer to
EHLO, one sends a message, and ringmta holds fewer descriptors than the
limit. Before the table, sessions past about 50 waited unaccepted."""
import os
import resource
import socket
import subprocess
import time

from conftest import BIN

LIMIT = 64
SESSIONS = 100


def reply(sock):
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed after %r" % buf)
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return buf


def test_sessions_beyond_open_file_limit(make_server):
    srv = make_server(max_connections=SESSIONS + 10, max_connections_per_ip=0, workers=1)

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))

    srv.log = open(srv.log_path, "ab")
    srv.proc = subprocess.Popen([BIN, "-c", srv.conf], stdout=srv.log, stderr=srv.log,
                                preexec_fn=low_limit)
    deadline = time.time() + 20
    while "ready:" not in srv.read_log() and srv.proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert "ready:" in srv.read_log(), srv.read_log()

    socks = []
    try:
        for i in range(SESSIONS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            socks.append(s)
            assert reply(s).startswith(b"220 "), "session %d: no greeting" % i
            s.sendall(b"EHLO client.test\r\n")
            assert reply(s).startswith(b"250"), "session %d: EHLO" % i
        fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
        assert fds < LIMIT, "ringmta holds %d descriptors" % fds
        # The last session carries a message through the table's slot.
        s = socks[-1]
        for cmd, code in ((b"MAIL FROM:<a@example.org>", b"250"),
                          (b"RCPT TO:<b@example.net>", b"250"), (b"DATA", b"354"),
                          (b"Subject: t\r\n\r\nbody\r\n.", b"250"), (b"QUIT", b"221")):
            s.sendall(cmd + b"\r\n")
            assert reply(s).startswith(code), cmd
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == 0
    assert srv.queue_count() == 1
