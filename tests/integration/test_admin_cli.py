"""The queue CLI: the verbs that ask the daemon's admin API (summary, list,
show, hold, release, delete, bounce, flush, with filters, --json and
tokens), its errors, and the offline verbs' fixed defects: "queue list"
shows the last reply, "queue flush" flushes only the ids named (id 0 and
no ids are errors; the whole queue needs --all)."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN, relay_server, wait_log
from sink import Sink


def q(srv, *args, check=True):
    r = subprocess.run([BIN, "-c", srv.conf, "queue"] + list(args), capture_output=True,
                       text=True, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def deferred(srv, rcpts, n):
    """n messages from sender@example.org, each deferred once."""
    import smtplib
    for i in range(n):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("sender@example.org", rcpts, b"Subject: m%d\r\n\r\nx\r\n" % i)
    assert wait_log(srv, r"(?s)(status=deferred.*){%d}" % (n * len(rcpts))), srv.read_log()
    out = q(srv, "list").stdout
    ids = re.findall(r"^([0-9a-f]{16}) ", out, re.M)
    assert len(ids) == n, out
    return ids


def test_offline_list_shows_last_reply_and_flush_takes_ids(make_server, sink):
    srv = relay_server(make_server, sink)
    ids = deferred(srv, ["tempfail@example.com"], 3)
    assert srv.stop() == 0
    out = q(srv, "list").stdout     # the daemon is down: the store itself
    assert out.count('reply="450 4.2.1') == 3, out
    for bad in (["flush"], ["flush", "0000000000000000"], ["flush", ids[0], "nothex"],
                ["flush", "--all", ids[0]]):
        r = q(srv, *bad, check=False)
        assert r.returncode == 2 and r.stderr, (bad, r.stderr)
    r = q(srv, "flush", ids[0], ids[1])
    assert "flushed 2 messages" in r.stdout
    nexts = dict(re.findall(r"^([0-9a-f]{16}) .*\n    <tempfail@example\.com> pending "
                            r"attempts=1 next=(\d+)", q(srv, "--offline", "list").stdout, re.M))
    now = time.time()
    assert int(nexts[ids[0]]) <= now and int(nexts[ids[1]]) <= now, nexts
    assert int(nexts[ids[2]]) > now + 600, "the third was not named: not flushed"
    assert "flushed 3 messages" in q(srv, "flush", "--all").stdout


def test_api_verbs(make_server, sink):
    srv = relay_server(make_server, sink)
    ids = deferred(srv, ["tempfail@example.com", "tempfail@other.example"], 2)
    out = q(srv, "summary").stdout
    assert re.search(r"^example\.com\s+2\s+2 ", out, re.M) and re.search(r"^TOTAL\s+2 ", out, re.M)
    j = json.loads(q(srv, "summary", "--by", "sender_domain", "--json").stdout)
    assert j["rows"][0]["key"] == "example.org" and j["rows"][0]["total"] == 2
    out = q(srv, "list").stdout
    assert re.findall(r"^([0-9a-f]{16}) \d+ \d+s <sender@example\.org> scheduled pending=2/2",
                      out, re.M) == ids
    assert 'class=mailbox-full reply="450 4.2.1' in out or 'reply="450 4.2.1' in out, out
    j = json.loads(q(srv, "list", "--json", "--limit", "1").stdout)
    assert [m["id"] for m in j["messages"]] == ids[:1] and j["next_cursor"] == ids[0]
    j = json.loads(q(srv, "list", "--json", "--cursor", ids[0]).stdout)
    assert [m["id"] for m in j["messages"]] == ids[1:]
    out = q(srv, "show", ids[0]).stdout
    head, body = out.split("\n\n", 1)
    assert "sender: <sender@example.org>" in head and "state: scheduled" in head
    assert "recipient: <tempfail@other.example> pending attempts=1" in head
    assert body.startswith("Received: ") and "Subject: m0" in body
    j = json.loads(q(srv, "show", ids[0], "--json", "--body").stdout)
    assert j["id"] == ids[0] and "Subject: m0" in j["body"]
    assert q(srv, "hold", ids[0]).stdout == "held %s\n" % ids[0]
    assert "held" in q(srv, "list", "--state", "held").stdout
    assert q(srv, "release", "--state", "held").stdout == "released %s\n" % ids[0]
    assert q(srv, "flush", ids[1]).stdout == "flushed 1 message\n"
    out = q(srv, "bounce", ids[0], "--reason", "pulled by ops").stdout
    assert out.startswith("bounced %s\ndsn " % ids[0]), out
    assert sink.wait_for(1, timeout=15)
    assert "pulled by ops" in sink.messages[0]["data"].decode()
    assert q(srv, "delete", "--sender", "sender@example.org").stdout == "deleted %s\n" % ids[1]
    assert q(srv, "list").stdout == ""


def test_cli_errors(make_server):
    srv = make_server().start()
    for args, code, what in (
            (["show", "nothex"], 2, "not a queue id"),
            (["hold", "0000000000000000"], 2, "not a queue id"),
            (["list", "--state", "stuck"], 2, "state"),
            (["list", "--min-age", "5x"], 2, "min_age"),
            (["hold"], 2, "never everything"),
            (["bounce", "--all"], 2, "never all"),
            (["hold", "--all", "--domain", "a.example"], 2, "one of them"),
            (["summary", "--by", "mx"], 2, "by:"),
            (["show", "00000000000000ab"], 1, "no message 00000000000000ab"),
            (["delete", "00000000000000ab"], 1, "no message 00000000000000ab"),
            (["frobnicate"], 2, "usage"),
            (["list", "--colour", "red"], 2, "unknown option"),
            (["summary", "--offline"], 2, "needs the running daemon"),
            (["list", "--offline", "--domain", "a.example"], 2, "admin API")):
        r = q(srv, *args, check=False)
        assert r.returncode == code and what in r.stderr, (args, r.returncode, r.stderr)
    assert srv.stop() == 0
    r = q(srv, "summary", check=False)
    assert r.returncode == 1 and "does not answer" in r.stderr and "running" in r.stderr
    r = q(srv, "hold", "--all", check=False)
    assert r.returncode == 1 and "does not answer" in r.stderr
    assert q(srv, "list").returncode == 0, "list reads the store when there is no daemon"
    # Asked for, the usage is an answer: on stdout, status 0, no complaint.
    r = q(srv, "--help", check=False)
    assert r.returncode == 0 and r.stdout.startswith("usage: ringmta queue") and r.stderr == "", r


def test_cli_tokens(make_server):
    srv = make_server()
    tok = os.path.join(srv.tmpdir, "tokens")
    with open(tok, "w") as f:
        f.write("# ops\ns3cret\n")
    os.chmod(tok, 0o600)
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % tok)
    srv.start()
    assert q(srv, "summary").returncode == 0, "the token comes from admin_token_file"
    bad = os.path.join(srv.tmpdir, "bad")
    with open(bad, "w") as f:
        f.write("wrong\n")
    r = q(srv, "summary", "--token-file", bad, check=False)
    assert r.returncode == 1 and "unauthorized" in r.stderr and "token" in r.stderr
    r = q(srv, "summary", "--token-file", tok, "--api",
          "http://127.0.0.1:%d" % srv.admin_port, "--json")
    assert json.loads(r.stdout)["totals"]["total"] == 0
    r = q(srv, "summary", "--token-file", os.path.join(srv.tmpdir, "none"), check=False)
    assert r.returncode == 1 and "No such file" in r.stderr
