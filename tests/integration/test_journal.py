"""The queue journal with the real daemon (README "Queue journal"): kill -9
in the middle of a segment write, inside a checkpoint and right after one
loses no acknowledged message; mail delivered from the journal arrives
byte-exact without a checkpoint; the tools see journal messages beside the
running daemon; queue_journal = no stores in LMDB alone."""
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import BIN, Raw, free_port, wait_until
from sink import Sink


def body_for(token, size=900):
    head = ("Subject: jnl %s\r\nMessage-ID: <%s@test>\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n" % (token, token)).encode()
    out = head
    while len(out) < size:
        out += (("%s " % token) * 10).encode()[:70] + b"\r\n"
    return out


def start_with_env(srv, **env):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        return srv.start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def send_one(srv, token):
    """One message on its own connection: its queue id, or None when no
    250 came (the daemon died under it)."""
    try:
        c = Raw(srv.port)
        c.cmd("EHLO jnl")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.org>")
        c.cmd("DATA")
        c.send(body_for(token) + b".\r\n")
        r = c.reply()[0]
        c.close()
        return r.split()[-1] if r.startswith("250") else None
    except (OSError, EOFError):
        return None


def stored(srv):
    """token -> stored body, through `ringmta queue list/show --offline`."""
    found = {}
    for qid in srv.queue_ids():
        r = subprocess.run([BIN, "-c", srv.conf, "queue", "--offline", "show", qid],
                           capture_output=True, timeout=30)
        raw = r.stdout.split(b"\n\n", 1)[1]
        m = re.search(rb"Subject: jnl (\S+)\r\n", raw)
        if m:
            found.setdefault(m.group(1).decode(), []).append(raw)
    return found


def segments(srv):
    d = os.path.join(srv.queue_dir, "journal")
    return sorted(f for f in os.listdir(d) if f.endswith(".seg")) if os.path.isdir(d) else []


def check_all_there(srv, acked):
    found = stored(srv)
    missing = [t for t in acked if t not in found]
    assert not missing, "acknowledged but lost: %s" % missing
    for t in acked:
        assert len(found[t]) == 1, "stored twice: %s" % t
        assert found[t][0].endswith(body_for(t)), "not byte-exact: %s" % t
    r = subprocess.run([BIN, "-c", srv.conf, "queue", "check"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kill_in_the_middle_of_a_segment_write(make_server):
    srv = start_with_env(make_server(), RINGMTA_TEST_JOURNAL_TEAR=12)
    acked = []
    for i in range(20):
        qid = send_one(srv, "tear%d" % i)
        if qid is None:
            break
        acked.append("tear%d" % i)
    srv.proc.wait(timeout=10)
    srv.log.close()
    # One message per group: eleven acknowledged, the twelfth torn.
    assert srv.proc.returncode == -9, srv.read_log()
    assert len(acked) == 11, acked
    assert segments(srv), "the killed daemon left its journal"
    srv.start()
    assert "11 messages replayed" in srv.read_log()
    check_all_there(srv, acked)
    assert "tear11" not in stored(srv), "a torn, unacknowledged group came back"
    assert srv.queue_count() == 11
    assert send_one(srv, "after") is not None
    assert srv.queue_count() == 12


@pytest.mark.parametrize("hook", ["RINGMTA_TEST_JOURNAL_CP_KILL",
                                  "RINGMTA_TEST_JOURNAL_CP_KILL_AFTER"])
def test_kill_inside_and_after_a_checkpoint(make_server, hook):
    srv = start_with_env(make_server(), **{hook: 1})
    acked = []
    for i in range(6):
        assert send_one(srv, "cp%d" % i) is not None
        acked.append("cp%d" % i)
    # Delivery is off: the messages age in the journal, and the first
    # checkpoint (half a second) kills the daemon.
    srv.proc.wait(timeout=15)
    srv.log.close()
    assert srv.proc.returncode == -9, srv.read_log()
    srv.start()
    check_all_there(srv, acked)
    assert srv.queue_count() == 6
    # And the daemon goes on: more mail, a clean stop, a clean start.
    assert send_one(srv, "cp-after") is not None
    assert srv.stop() == 0
    assert segments(srv) == [], "a clean stop leaves no segment to replay"
    srv.start()
    check_all_there(srv, acked + ["cp-after"])


def metric(srv, name):
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % srv.settings["metrics_listen"],
                                timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\d+)" % name, text, re.M)
    return int(m.group(1)) if m else None


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def test_delivered_from_the_journal_byte_exact(make_server, sink):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      retry_min="1s", retry_max="2s",
                      metrics_listen="127.0.0.1:%d" % free_port()).start()
    tokens = ["d%d" % i for i in range(30)]
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        for t in tokens:
            s.sendmail("a@example.org", ["b@example.com"], body_for(t))
    assert sink.wait_for(30)
    got = {re.search(rb"Subject: jnl (\S+)\r\n", m["data"]).group(1).decode(): m["data"]
           for m in sink.messages}
    for t in tokens:
        assert got[t].endswith(body_for(t)), t
    assert wait_until(lambda: srv.queue_count() == 0)
    groups = metric(srv, "ringmta_queue_journal_groups_total")
    assert groups is not None and groups >= 30, groups


def test_tools_see_journal_messages_beside_the_daemon(make_server):
    srv = make_server().start()
    acked = []
    for i in range(5):
        assert send_one(srv, "view%d" % i) is not None
        acked.append("view%d" % i)
    # Right away (younger than any checkpoint) and after one.
    assert srv.queue_count() == 5
    check_all_there(srv, acked)
    time.sleep(0.8)
    assert srv.queue_count() == 5
    check_all_there(srv, acked)


def test_journal_off_stores_in_lmdb_alone(make_server):
    srv = make_server(queue_journal="no").start()
    for i in range(3):
        assert send_one(srv, "off%d" % i) is not None
    assert segments(srv) == []
    assert srv.queue_count() == 3
    srv.kill9()
    srv.start()
    check_all_there(srv, ["off0", "off1", "off2"])
