"""Where issue 11's parts meet: HTTP injection's mail and the admin API's
actions reach the event stream as SMTP's do, and the admin API's bounce
follows the sender's DSN request (RFC 3461: NOTIFY, ENVID, ORCPT)."""
import json
import os
import smtplib
import time

from conftest import free_port, make_server  # noqa: F401
from test_admin_api import curl
from test_inject import post


def event_lines(path, want, timeout=20):
    """The JSON event log's records once want(records) holds."""
    deadline = time.time() + timeout
    recs = []
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                recs = [json.loads(x) for x in f.read().splitlines() if x]
            if want(recs):
                return recs
        time.sleep(0.05)
    raise AssertionError("events never matched: %r" % recs)


def test_http_injection_and_admin_actions_are_events(make_server, tmp_path):
    log = str(tmp_path / "events.log")
    http_port = free_port()
    # Delivery on (suspensions need it), to a next hop that refuses
    # connections: the message defers and waits an hour.
    srv = make_server(event_log=log, event_log_format="json", delivery="yes",
                      relayhost="[127.0.0.1]:%d" % free_port(), retry_min="1h",
                      retry_max="2h", http_listen="127.0.0.1:%d" % http_port).start()
    srv.http_port = http_port
    status, ans = post(srv, {"envelope_sender": "from@example.org",
                             "recipients": [{"email": "to@example.com"}],
                             "content": "Subject: hi\r\nMessage-ID: <inj@test>\r\n\r\nbody\r\n"})
    assert status == 202, ans
    qid = ans["queue_ids"][0]
    recs = event_lines(log, lambda r: any(e["type"] == "reception" for e in r))
    rec = [e for e in recs if e["type"] == "reception"][0]
    assert rec["queue_id"] == qid and rec["listener"] == "http", rec
    assert rec["sender"] == "from@example.org" and rec["recipients"] == ["to@example.com"]
    assert rec["message_id"] == "<inj@test>" and rec["client"] == "127.0.0.1"

    status, _ = curl(srv, "/api/v1/suspend", "POST",
                     {"domain": "example.net", "duration": "1h", "reason": "asked"})
    assert status == 200
    status, ans = curl(srv, "/api/v1/queue/hold", "POST", {"ids": [qid]})
    # This once answered 404 in a full run (a flake not seen since): say why.
    assert status == 200, (status, ans, srv.read_log()[-4000:])
    # A read or a refused request changes nothing and is no event.
    assert curl(srv, "/api/v1/suspensions")[0] == 200
    assert curl(srv, "/api/v1/suspend", "POST", {"domain": "x", "duration": "soon"})[0] == 400
    recs = event_lines(log, lambda r: len([e for e in r if e["type"] == "admin"]) >= 2)
    time.sleep(0.5)
    recs = event_lines(log, lambda r: True)
    admin = [e for e in recs if e["type"] == "admin"]
    assert [a["action"] for a in admin] == ["POST /api/v1/suspend", "POST /api/v1/queue/hold"]
    assert admin[0]["detail"] == {"domain": "example.net", "duration": "1h", "reason": "asked"}
    assert admin[1]["detail"] == {"ids": [qid]}
    ids = [int(e["id"]) for e in recs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def queue_with(srv, rcpt_options, envid=None):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        mail_opts = ["ENVID=" + envid] if envid else []
        assert s.mail("from@example.org", mail_opts)[0] == 250
        assert s.rcpt("to@example.com", rcpt_options)[0] == 250
        assert s.data(b"Subject: t\r\n\r\nx\r\n")[0] == 250
    ids = [m["id"] for m in curl(srv, "/api/v1/queue/messages")[1]["messages"]]
    return ids


def test_admin_bounce_follows_notify_envid_and_orcpt(make_server):
    srv = make_server(delivery="no").start()
    (never,) = queue_with(srv, ["NOTIFY=NEVER"])
    status, ans = curl(srv, "/api/v1/queue/bounce", "POST", {"ids": [never], "reason": "r1"})
    assert status == 200 and ans["affected"] == 1, ans
    assert ans.get("dsn_ids", []) == [], ans
    # The message left the queue without a notice.
    assert curl(srv, "/api/v1/queue/messages/" + never)[0] == 404
    assert curl(srv, "/api/v1/queue/messages")[1]["messages"] == []

    (asked,) = queue_with(srv, ["NOTIFY=FAILURE", "ORCPT=rfc822;orig@example.com"],
                          envid="env-42")
    status, ans = curl(srv, "/api/v1/queue/bounce", "POST", {"ids": [asked], "reason": "r2"})
    assert status == 200 and len(ans["dsn_ids"]) == 1, ans
    status, dsn = curl(srv, "/api/v1/queue/messages/%s?body=1" % ans["dsn_ids"][0])
    assert status == 200
    text = json.dumps(dsn)
    assert "Original-Envelope-Id: env-42" in text, text
    assert "Original-Recipient: rfc822;orig@example.com" in text, text
    assert "returned by the mail administrator: r2" in text


def test_admin_bounce_and_delete_name_their_messages_in_events(make_server, tmp_path):
    """An operator's bounce gives each pending recipient a "bounced" record
    (no attempt, the reason as the reply, 5.0.0) and a "dsn_sent" record
    naming the DSN, stored with the bounce; the "admin" record of a bounce
    or delete carries its result: the ids it changed and the DSNs it
    queued. Before, the admin record held only the request (a filter), so
    a consumer never learnt which messages left the queue."""
    log = str(tmp_path / "events.log")
    srv = make_server(event_log=log, event_log_format="json", delivery="no").start()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("from@example.org", ["a@example.com", "b@example.com"],
                   b"Subject: one\r\n\r\nx\r\n")
    first = {m["id"] for m in curl(srv, "/api/v1/queue/messages")[1]["messages"]}
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("other@example.org", ["c@example.com"], b"Subject: two\r\n\r\nx\r\n")
    (bounced,) = first
    (deleted,) = {m["id"] for m in curl(srv, "/api/v1/queue/messages")[1]["messages"]} - first
    status, ans = curl(srv, "/api/v1/queue/bounce", "POST",
                       {"sender": "from@example.org", "reason": "campaign withdrawn"})
    assert status == 200 and ans["ids"] == [bounced] and len(ans["dsn_ids"]) == 1, ans
    dsn_id = ans["dsn_ids"][0]
    status, ans = curl(srv, "/api/v1/queue/delete", "POST", {"ids": [deleted]})
    assert status == 200 and ans["ids"] == [deleted], ans
    recs = event_lines(log, lambda r: len([e for e in r if e["type"] == "admin"]) >= 2)
    of = lambda t: [e for e in recs if e["type"] == t]  # noqa: E731
    b = sorted(of("bounced"), key=lambda e: e["recipient"])
    assert [e["recipient"] for e in b] == ["a@example.com", "b@example.com"], b
    for e in b:
        assert e["queue_id"] == bounced and e["sender"] == "from@example.org"
        assert e["ecode"] == "5.0.0" and e["attempts"] == 0
        assert e["reply"] == "returned by the mail administrator: campaign withdrawn"
    assert of("attempt") == []
    (d,) = of("dsn_sent")
    assert d["queue_id"] == bounced and d["dsn_queue_id"] == dsn_id
    assert d["kind"] == "bounce" and d["to"] == "from@example.org"
    admin = of("admin")
    assert [a["action"] for a in admin] == ["POST /api/v1/queue/bounce",
                                            "POST /api/v1/queue/delete"]
    assert admin[0]["detail"]["sender"] == "from@example.org"
    assert admin[0]["result"]["ids"] == [bounced] and admin[0]["result"]["dsn_ids"] == [dsn_id]
    assert admin[1]["result"]["ids"] == [deleted]
    # The records of the bounce come before the admin record that reports it.
    assert max(int(e["id"]) for e in b + [d]) < int(admin[0]["id"])
