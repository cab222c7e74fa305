"""The admin API (core/admin) with curl against the running daemon: routing
and errors, bearer tokens, the token file's permissions, non-loopback
listening without tokens, body limits; then the queue endpoints."""
import json
import re
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, free_port


def curl(srv, path, method="GET", body=None, token=None, headers=(), raw=False):
    """(status, parsed JSON or raw text) of one request made with curl."""
    url = "http://127.0.0.1:%d%s" % (srv.admin_port, path)
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", "20"]
    if token is not None:
        cmd += ["-H", "Authorization: Bearer " + token]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    cmd.append(url)
    r = subprocess.run(cmd, input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out, code = r.stdout.rsplit(b"\n", 1)
    if raw:
        return int(code), out
    return int(code), json.loads(out) if out else None


def token_file(srv, tokens, mode=0o600):
    path = os.path.join(srv.tmpdir, "admin.tokens")
    with open(path, "w") as f:
        f.write("# admin tokens\n\n" + "".join(t + "\n" for t in tokens))
    os.chmod(path, mode)
    return path


def test_status_and_routing_errors(server):
    code, j = curl(server, "/api/v1/status")
    assert code == 200 and j["version"] and j["queue"] == {"ready": 0, "scheduled": 0,
                                                          "oldest_age_s": 0}
    code, j = curl(server, "/api/v1/nope")
    assert code == 404 and j["error"] == "not found" and j["detail"] == "/api/v1/nope"
    code, j = curl(server, "/api/v1/statusx")
    assert code == 404, "a prefix matches at a '/' only"
    code, j = curl(server, "/api/v1/status", method="DELETE")
    assert code == 405 and j["error"] == "method not allowed"


def test_bearer_tokens(make_server):
    srv = make_server()
    srv.settings["admin_token_file"] = token_file(srv, ["s3cret-one", "other-token"])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % srv.settings["admin_token_file"])
    srv.start()
    code, j = curl(srv, "/api/v1/status")
    assert code == 401 and j["error"] == "unauthorized" and "Bearer" in j["detail"]
    for bad in ("s3cret-on", "s3cret-one2", "", "S3CRET-ONE"):
        code, j = curl(srv, "/api/v1/status", token=bad)
        assert code == 401, bad
    code, j = curl(srv, "/api/v1/status", headers=["Authorization: Basic czNjcmV0LW9uZQ=="])
    assert code == 401
    # Unknown paths are 401 too: nothing is told before authentication.
    code, j = curl(srv, "/api/v1/nope")
    assert code == 401
    for good in ("s3cret-one", "other-token"):
        code, j = curl(srv, "/api/v1/status", token=good)
        assert code == 200 and "version" in j


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_token_file_readable_by_others_refused(make_server, mode):
    srv = make_server()
    path = token_file(srv, ["tok"], mode)
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=10)
    assert "admin_token_file" in str(e.value) and "chmod 600" in str(e.value)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_token_file" in r.stderr, r.stderr


def test_token_file_missing_or_empty_refused(make_server):
    srv = make_server()
    path = token_file(srv, [])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "no token" in r.stderr, r.stderr
    os.unlink(path)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_token_file" in r.stderr, r.stderr


@pytest.mark.parametrize("addr", ["0.0.0.0:%d", "[::]:%d", "192.0.2.1:%d"])
def test_non_loopback_without_token_refused(make_server, addr):
    srv = make_server(admin_listen=addr % free_port())
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_listen" in r.stderr and "admin_token_file" in r.stderr
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=10)
    assert "admin_token_file" in str(e.value)


def test_non_loopback_with_token_starts(make_server):
    srv = make_server(admin_listen="0.0.0.0:%d" % free_port())
    path = token_file(srv, ["tok"])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    srv.admin_port = int(srv.settings["admin_listen"].rsplit(":", 1)[1])
    srv.start()
    assert curl(srv, "/api/v1/status")[0] == 401
    assert curl(srv, "/api/v1/status", token="tok")[0] == 200


def test_admin_off(make_server):
    srv = make_server(admin_listen="").start()
    r = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/api/v1/status" % srv.admin_port],
                       capture_output=True, timeout=30)
    assert r.returncode == 7, "nothing listens"


# ---- the queue: reads ----

import smtplib
import time

from conftest import relay_server, wait_log, wait_until
from sink import Sink


def send(srv, sender, rcpts, body=b"Subject: t\r\n\r\nx\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)


def ids_of(srv, **filt):
    q = "&".join("%s=%s" % kv for kv in filt.items())
    code, j = curl(srv, "/api/v1/queue/messages" + ("?" + q if q else ""))
    assert code == 200, j
    return [m["id"] for m in j["messages"]]


@pytest.fixture
def filled(server):
    send(server, "a@one.example", ["x@dest1.example", "y@dest2.example"],
         b"Subject: first\r\nX-Folded: a\r\n b\r\n\r\nbody one\r\n")
    send(server, "b@two.example", ["z@dest1.example"])
    send(server, "", ["w@dest3.example"])
    return server


def test_summary(filled):
    code, j = curl(filled, "/api/v1/queue/summary")
    assert code == 200 and j["by"] == "domain"
    assert j["buckets"][0] == "0-5m" and j["buckets"][-1] == "160m+"
    rows = {r["key"]: r for r in j["rows"]}
    assert rows["dest1.example"]["total"] == 2 and rows["dest1.example"]["0-5m"] == 2
    assert rows["dest2.example"]["total"] == 1 and rows["dest3.example"]["total"] == 1
    assert j["totals"]["total"] == 3 and j["totals"]["0-5m"] == 3
    code, j = curl(filled, "/api/v1/queue/summary?by=sender_domain")
    assert {r["key"]: r["total"] for r in j["rows"]} == {"one.example": 1, "two.example": 1, "<>": 1}
    code, j = curl(filled, "/api/v1/queue/summary?by=domain&top=1")
    assert [r["key"] for r in j["rows"]] == ["dest1.example", "other"]
    assert j["rows"][1]["total"] == 2 and j["rows"][1]["other_keys"] == 2
    code, j = curl(filled, "/api/v1/queue/summary?by=source")
    assert j["rows"][0]["key"] == "default" and j["rows"][0]["total"] == 3
    code, j = curl(filled, "/api/v1/queue/summary?by=site")
    assert code == 200 and {r["key"] for r in j["rows"]} == {"dest1.example", "dest2.example",
                                                             "dest3.example"}
    code, j = curl(filled, "/api/v1/queue/summary?by=sender_domain&domain=dest1.example")
    assert j["totals"]["total"] == 2, "filters apply to the summary"
    for bad in ("by=mx", "top=0", "top=x", "nope=1", "min_age=5x"):
        code, j = curl(filled, "/api/v1/queue/summary?" + bad)
        assert code == 400 and j["error"] == "bad filter" and j["detail"], bad


def test_list_filters_and_paging(filled):
    all_ids = ids_of(filled)
    assert len(all_ids) == 3 and all_ids == sorted(all_ids)
    assert len(ids_of(filled, domain="dest1.example")) == 2
    assert len(ids_of(filled, domain="DEST2.example")) == 1
    assert ids_of(filled, sender="a@one.example") == all_ids[:1]
    assert ids_of(filled, sender="@two.example") == all_ids[1:2]
    assert ids_of(filled, sender="<>") == all_ids[2:]
    assert ids_of(filled, recipient="Z@dest1.example") == all_ids[1:2]
    assert len(ids_of(filled, state="ready")) == 3
    assert ids_of(filled, state="held,scheduled") == []
    assert ids_of(filled, min_age="1h") == [] and len(ids_of(filled, max_age="1h")) == 3
    assert ids_of(filled, **{"class": "invalid-recipient"}) == []
    code, j = curl(filled, "/api/v1/queue/messages?limit=2")
    assert [m["id"] for m in j["messages"]] == all_ids[:2] and j["next_cursor"] == all_ids[1]
    code, j = curl(filled, "/api/v1/queue/messages?limit=2&cursor=" + j["next_cursor"])
    assert [m["id"] for m in j["messages"]] == all_ids[2:] and j["next_cursor"] is None
    m = curl(filled, "/api/v1/queue/messages?sender=a@one.example")[1]["messages"][0]
    assert m["sender"] == "a@one.example" and m["recipients"] == 2 and m["pending"] == 2
    assert m["held"] is False and m["state"] == "ready" and m["size"] > 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", m["arrival"])
    assert m["next_attempt"].endswith("Z") and m["last_reply"] is None and m["class"] is None
    for bad, what in (("state=stuck", "state"), ("min_age=-1", "min_age"), ("limit=0", "limit"),
                      ("limit=100001", "limit"), ("cursor=xyz", "cursor"),
                      ("class=nope", "class"), ("domain=a@b", "domain"), ("colour=red", "colour"),
                      ("sender=", "sender")):
        code, j = curl(filled, "/api/v1/queue/messages?" + bad)
        assert code == 400 and what in j["detail"], (bad, j)


def test_show(filled):
    qid = ids_of(filled, sender="a@one.example")[0]
    code, j = curl(filled, "/api/v1/queue/messages/" + qid)
    assert code == 200 and j["id"] == qid and j["client"] == "127.0.0.1"
    assert [(r["address"], r["state"], r["attempts"]) for r in j["recipients"]] == \
        [("x@dest1.example", "pending", 0), ("y@dest2.example", "pending", 0)]
    hdr = {h["name"]: h["value"] for h in j["headers"]}
    assert hdr["Subject"] == "first" and hdr["X-Folded"] == "a b"
    assert "Received" in hdr and "body" not in j
    code, j = curl(filled, "/api/v1/queue/messages/%s?body=1" % qid)
    assert j["body"].endswith("\r\n\r\nbody one\r\n")
    code, j = curl(filled, "/api/v1/queue/messages/nothex")
    assert code == 400 and j["error"] == "bad id"
    code, j = curl(filled, "/api/v1/queue/messages/0000000000000000")
    assert code == 400
    code, j = curl(filled, "/api/v1/queue/messages/00000000000000ab")
    assert code == 404 and j["error"] == "no such message"
    code, j = curl(filled, "/api/v1/queue/messages/%s?body=2" % qid)
    assert code == 400


# ---- the queue: changes ----

@pytest.fixture
def sink():
    s = Sink(stall_seconds=1.5)
    yield s
    s.stop()


def deferred(srv, rcpt, n=1):
    """Send one message to rcpt and wait until its first attempt deferred it."""
    send(srv, "sender@example.org", [rcpt], b"Subject: to %s\r\n\r\nx\r\n" % rcpt.encode())
    assert wait_log(srv, r"(status=deferred.*){%d}" % n if n > 1 else r"status=deferred"), \
        srv.read_log()
    qid = ids_of(srv, recipient=rcpt)
    assert len(qid) == 1
    return qid[0]


def post(srv, action, body, **kw):
    return curl(srv, "/api/v1/queue/" + action, method="POST", body=body, **kw)


def test_hold_release(make_server, sink):
    srv = relay_server(make_server, sink)
    qid = deferred(srv, "tempthenok@example.com")
    code, j = post(srv, "hold", {"ids": [qid]})
    assert code == 200 and j["affected"] == 1 and j["ids"] == [qid], j
    m = curl(srv, "/api/v1/queue/messages/" + qid)[1]
    assert m["held"] is True and m["state"] == "held" and m["next_attempt"] is None
    assert ids_of(srv, state="held") == [qid]
    # A flush leaves held mail alone, and the scheduler never picks it.
    code, j = post(srv, "flush", {"all": True})
    assert code == 200 and j["affected"] == 0 and j["matched"] == 1
    time.sleep(1.5)     # the scheduler scans every second
    assert len(sink.messages) == 0 and ids_of(srv) == [qid]
    assert post(srv, "hold", {"ids": [qid]})[1]["affected"] == 0, "already held"
    code, j = post(srv, "release", {"state": "held"})
    assert code == 200 and j["ids"] == [qid]
    assert sink.wait_for(1, timeout=15)
    assert sink.messages[0]["rcpts"] == ["tempthenok@example.com"]
    assert wait_log(srv, "admin: release id=" + qid)


def test_flush_retries_now(make_server, sink):
    srv = relay_server(make_server, sink)
    qid = deferred(srv, "tempthenok@example.com")
    m = curl(srv, "/api/v1/queue/messages/" + qid)[1]
    assert m["state"] == "scheduled" and m["last_reply"].startswith("451")
    assert m["recipients"][0]["attempts"] == 1 and m["attempts"] == 1
    code, j = post(srv, "flush", {"ids": [qid]})
    assert code == 200 and j["affected"] == 1
    assert sink.wait_for(1, timeout=15)
    assert wait_log(srv, r"to=<tempthenok@example\.com> .*attempt=2")


def test_delete(make_server, sink):
    srv = relay_server(make_server, sink)
    qid = deferred(srv, "tempfail@example.com")
    code, j = post(srv, "delete", {"recipient": "tempfail@example.com"})
    assert code == 200 and j["ids"] == [qid]
    assert curl(srv, "/api/v1/queue/messages/" + qid)[0] == 404
    code, j = post(srv, "delete", {"ids": [qid]})
    assert code == 404 and j["not_found"] == [qid]
    time.sleep(0.3)
    assert sink.messages == [], "a delete sends no bounce"


def test_bounce_sends_dsn_with_reason(make_server, sink):
    srv = relay_server(make_server, sink)
    qid = deferred(srv, "tempfail@example.com")
    code, j = post(srv, "bounce", {"ids": [qid], "reason": "stale campaign, pulled by ops"})
    assert code == 200 and j["ids"] == [qid] and len(j["dsn_ids"]) == 1, j
    assert sink.wait_for(1, timeout=15)
    dsn = sink.messages[0]
    assert dsn["sender"] == "" and dsn["rcpts"] == ["sender@example.org"]
    text = dsn["data"].decode()
    assert "stale campaign, pulled by ops" in text and "Action: failed" in text
    assert "Status: 5.0.0" in text and "Final-Recipient: rfc822; tempfail@example.com" in text
    assert "Subject: to tempfail@example.com" in text, "the original header is returned"
    assert curl(srv, "/api/v1/queue/messages/" + qid)[0] == 404
    assert wait_log(srv, "admin: bounce id=%s dsn=%s" % (qid, j["dsn_ids"][0]))


def test_in_flight_is_not_deleted(make_server, sink):
    srv = relay_server(make_server, sink)
    send(srv, "sender@example.org", ["stall@example.com"],
         b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 200)
    assert sink.stall_event.wait(15)
    qid = ids_of(srv)[0]
    assert ids_of(srv, state="inflight") == [qid]
    for action in ("delete", "bounce", "flush"):
        code, j = post(srv, action, {"ids": [qid], "reason": "x"} if action == "bounce"
                       else {"ids": [qid]})
        assert code == 409 and j["in_flight"] == [qid] and j["affected"] == 0, (action, j)
    assert sink.wait_for(1, timeout=15)     # the round ends as it would have


def test_changes_while_mail_is_committed_do_not_deadlock(make_server, sink):
    """The committer hands new mail to delivery itself (delivery_on_commit),
    under the lock that an admin change holds while it waits for its own
    commit: were the committer to wait for that lock, a change whose updates
    fall in the next batch would wait forever. Mail keeps arriving while
    changes over 20 deferred messages run, again and again: every change
    answers, every message is accepted and the good ones are delivered."""
    import threading
    srv = relay_server(make_server, sink)
    for i in range(20):
        send(srv, "sender@example.org", ["tempfail@example.com"], b"Subject: d%d\r\n\r\nx\r\n" % i)
    assert wait_until(lambda: srv.read_log().count("status=deferred") >= 20), srv.read_log()
    stop, sent, errors = threading.Event(), [0], []

    def inject():
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as s:
                    for _ in range(10):
                        s.sendmail("sender@example.org", ["ok@example.com"], b"Subject: m\r\n\r\nx\r\n")
                        sent[0] += 1
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=inject) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for round_ in range(30):
            for action in ("hold", "release", "flush"):
                code, j = post(srv, action, {"recipient": "tempfail@example.com"})
                assert code == 200 and j["matched"] == 20, (round_, action, j)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert sent[0] > 0
    assert sink.wait_for(sent[0], timeout=30), (len(sink.messages), sent[0])


def test_selection_errors(filled):
    for action in ("hold", "release", "delete", "bounce", "flush"):
        code, j = post(filled, action, {})
        assert code == 400 and j["error"] == "no selection", (action, j)
        code, j = post(filled, action, None)
        assert code == 400 and j["error"] == "no selection", (action, j)
    qid = ids_of(filled)[0]
    cases = [
        ("hold", {"ids": [qid], "domain": "dest1.example"}, "bad selection"),
        ("hold", {"ids": [qid], "all": True}, "bad selection"),
        ("bounce", {"all": True}, "bad selection"),
        ("hold", {"ids": "x"}, "bad ids"),
        ("hold", {"ids": []}, "bad ids"),
        ("hold", {"ids": ["nothex"]}, "bad id"),
        ("hold", {"ids": ["0000000000000000"]}, "bad id"),
        ("hold", {"state": "nope"}, "bad filter"),
        ("hold", {"colour": "red"}, "bad filter"),
        ("hold", {"domain": 5}, "bad filter"),
        ("hold", {"limit": 5}, "bad filter"),
        ("bounce", {"ids": [qid], "reason": "two\nlines"}, "bad reason"),
        ("bounce", {"ids": [qid], "reason": ""}, "bad reason"),
    ]
    for action, body, err in cases:
        code, j = post(filled, action, body)
        assert code == 400 and j["error"] == err, (action, body, j)
    for raw in ("{", "[1]", "{\"ids\": [\"%s\"], \"ids\": []}" % qid, "\xff"):
        code, j = post(filled, "hold", raw)
        assert code == 400 and j["error"] == "bad JSON", (raw, j)
    code, j = post(filled, "hold", "{\"ids\": [\"%s\"], \"pad\": \"%s\"}" % (qid, "x" * (1 << 20)))
    assert code == 413 and j["error"] == "request body too large"
    assert ids_of(filled, state="held") == [], "nothing was held by any of those"
    code, j = post(filled, "hold", {"min_age": 0, "sender": "@one.example"})
    assert code == 200 and j["affected"] == 1
    code, j = post(filled, "hold", {"all": False, "domain": "dest3.example"})
    assert code == 200 and j["affected"] == 1
    assert len(ids_of(filled, state="held")) == 2
    code, j = post(filled, "release", {"all": True})
    assert code == 200 and j["affected"] == 2 and j["matched"] == 3
    code, j = curl(filled, "/api/v1/queue/hold")
    assert code == 405
