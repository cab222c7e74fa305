"""The operator's suspensions, the shaping state, the suppression list and
reload over the admin API (curl), against a relayhost sink on loopback: a
suspended domain's mail waits with no connection and no attempt counted,
across a restart, until resume makes it due now; expiry; sender domain and
source selectors; bad selectors and durations; the shaping endpoint's view
of an admin suspension; suppressions added, listed and removed; reload with
a good and a bad rules file."""
import json
import re
import smtplib
import time

import pytest

from conftest import wait_log
from test_admin_api import curl, token_file
from test_delivery import sink  # noqa: F401 (a Sink on loopback)


def relay(make_server, sink, **kw):
    """Delivery to sink, retrying only after an hour: a message that moves
    sooner was made due by the engine, not by the retry schedule."""
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1h", retry_max="2h")
    settings.update(kw)
    return make_server(**settings).start()


def send(srv, sender, rcpts, subject="x"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


def attempts(srv):
    """The attempts counters of every queued recipient."""
    out = "".join(srv.queue_show(q) for q in srv.queue_ids())
    return [int(n) for n in re.findall(r"attempts=(\d+)", out)]


def test_suspended_domain_waits_across_restart_until_resumed(make_server, sink):
    srv = relay(make_server, sink)
    code, j = curl(srv, "/api/v1/suspend", "POST",
                   {"domain": "Hold.Example", "duration": "2h", "reason": "customer\nasked"})
    assert code == 200, j
    s = j["suspended"]
    assert s["selector"] == "domain" and s["name"] == "hold.example" and s["who"] == "admin"
    assert s["reason"] == "customer asked" and 7100 < s["remaining_s"] <= 7200
    assert wait_log(srv, r"domain hold\.example suspended by admin: customer asked for 7200s")
    assert not re.search(r"^asked", srv.read_log(), re.M), "a reason cannot forge a log line"
    send(srv, "a@sender.example", ["rcpt@hold.example"])
    assert wait_log(srv, r"status=deferred.*domain hold\.example suspended by admin")
    assert sink.connections == 0, "no connection to the next hop"
    assert attempts(srv) == [0], "a wait is not an attempt"
    # The suspension is saved: it holds after a restart.
    assert srv.stop() == 0
    srv.start()
    code, j = curl(srv, "/api/v1/suspensions")
    assert code == 200 and [x["name"] for x in j["suspensions"]] == ["hold.example"]
    send(srv, "a@sender.example", ["other@hold.example"], "second")
    assert wait_log(srv, r"to=<other@hold\.example>.*status=deferred.*suspended by admin")
    assert sink.connections == 0 and srv.queue_count() == 2
    # Resume: both are due now, not in an hour.
    code, j = curl(srv, "/api/v1/resume", "POST", {"domain": "hold.example"})
    assert code == 200 and j["resumed"] == {"selector": "domain", "name": "hold.example"}
    assert j["messages_due_now"] == 2
    assert sink.wait_for(2, timeout=15)
    code, j = curl(srv, "/api/v1/resume", "POST", {"domain": "hold.example"})
    assert code == 404 and j["error"] == "not suspended"


def test_a_suspension_answered_200_survives_kill9(make_server, sink):
    """The API answers 200 only once the suspension is stored: a kill -9
    right after the answer keeps it, and mail for the site still waits."""
    srv = relay(make_server, sink)
    code, j = curl(srv, "/api/v1/suspend", "POST", {"site": "[127.0.0.1]:%d" % sink.port,
                                                   "duration": "2h", "reason": "k9"})
    assert code == 200, j
    srv.kill9()
    srv.start()
    code, j = curl(srv, "/api/v1/suspensions")
    assert code == 200 and [(x["selector"], x["reason"]) for x in j["suspensions"]] == \
        [("site", "k9")], j
    send(srv, "a@sender.example", ["rcpt@any.example"])
    assert wait_log(srv, r"status=deferred.*suspended by admin")
    assert sink.connections == 0


def test_a_relayhost_job_holds_only_the_suspended_domain(make_server, sink):
    srv = relay(make_server, sink)
    assert curl(srv, "/api/v1/suspend", "POST", {"domain": "hold.example", "duration": "1h"})[0] == 200
    send(srv, "a@sender.example", ["x@hold.example", "y@go.example"])
    assert sink.wait_for(1, timeout=10)
    assert sink.messages[0]["rcpts"] == ["y@go.example"]
    assert wait_log(srv, r"to=<x@hold\.example>.*attempt=0.*status=deferred")
    assert re.search(r"<x@hold\.example> \w+ attempts=0", srv.queue_show(srv.queue_ids()[0]))


def test_suspended_site_waits_without_a_connection(make_server, sink):
    srv = relay(make_server, sink)
    site = "[127.0.0.1]:%d" % sink.port     # a relayhost is a site of its own
    assert curl(srv, "/api/v1/suspend", "POST", {"site": site, "duration": "1h"})[0] == 200
    send(srv, "a@sender.example", ["r@dest.example"])
    assert wait_log(srv, r"status=deferred.*site \[127\.0\.0\.1\]:\d+ suspended by admin")
    assert sink.connections == 0 and attempts(srv) == [0]
    code, j = curl(srv, "/api/v1/top")
    assert code == 200 and j["sites"][0]["site"] == site and j["sites"][0]["suspended"], j
    assert "suspended by admin" in j["sites"][0]["why"]
    code, j = curl(srv, "/api/v1/resume", "POST", {"site": site})
    assert code == 200 and j["messages_due_now"] == 1
    assert sink.wait_for(1, timeout=10)


def test_suspension_expires_by_itself(make_server, sink):
    srv = relay(make_server, sink)
    assert curl(srv, "/api/v1/suspend", "POST", {"domain": "brief.example", "duration": "2s"})[0] == 200
    send(srv, "a@sender.example", ["r@brief.example"])
    assert wait_log(srv, r"status=deferred.*brief\.example suspended")
    assert sink.connections == 0
    assert sink.wait_for(1, timeout=15), "delivered when the suspension ended"
    code, j = curl(srv, "/api/v1/suspensions")
    assert code == 200 and j["suspensions"] == []


def test_suspend_by_sender_domain_and_by_source(make_server, sink):
    srv = relay(make_server, sink)
    assert curl(srv, "/api/v1/suspend", "POST",
                {"sender_domain": "news.example", "duration": "1h"})[0] == 200
    send(srv, "list@news.example", ["r@dest.example"], "newsletter")
    send(srv, "boss@corp.example", ["r@dest.example"], "memo")
    assert sink.wait_for(1, timeout=10)
    assert wait_log(srv, r"status=deferred.*sender_domain news\.example suspended by admin")
    assert [m["sender"] for m in sink.messages] == ["boss@corp.example"]
    assert srv.queue_count() == 1
    # The source every message uses without rules of its own: "default".
    assert curl(srv, "/api/v1/suspend", "POST",
                {"source": "default", "duration": "1h", "reason": "ip warm-up"})[0] == 200
    send(srv, "boss@corp.example", ["r@dest.example"], "held")
    assert wait_log(srv, r"status=deferred.*source default suspended by admin: ip warm-up")
    assert len(sink.messages) == 1 and srv.queue_count() == 2
    code, j = curl(srv, "/api/v1/resume", "POST", {"source": "default"})
    assert code == 200 and j["messages_due_now"] >= 1
    assert sink.wait_for(2, timeout=10)
    assert srv.queue_count() == 1, "the sender domain's mail still waits"


def test_a_shorter_suspension_replaces_a_longer_one(make_server, sink):
    srv = relay(make_server, sink)
    assert curl(srv, "/api/v1/suspend", "POST",
                {"sender_domain": "news.example", "duration": "2h"})[0] == 200
    send(srv, "list@news.example", ["r@dest.example"])
    assert wait_log(srv, r"status=deferred.*sender_domain news\.example suspended")
    code, j = curl(srv, "/api/v1/suspend", "POST",
                   {"sender_domain": "news.example", "duration": "3s", "reason": "shorter"})
    assert code == 200 and j["suspended"]["reason"] == "shorter"
    assert wait_log(srv, r"status=deferred.*suspended by admin: shorter"), "held again at once"
    assert sink.connections == 0
    assert sink.wait_for(1, timeout=15), "sent when the new, shorter one ended"
    assert re.search(r"attempt=1 .*status=sent", srv.read_log())


@pytest.mark.parametrize("body,why", [
    ({"planet": "x", "duration": "1h"}, "unknown field"),
    ({"duration": "1h"}, "exactly one"),
    ({"domain": "a.example", "site": "b", "duration": "1h"}, "exactly one"),
    ({"domain": "a.example"}, "duration"),
    ({"domain": "a.example", "duration": "2w"}, "duration"),
    ({"domain": "a.example", "duration": "0h"}, "duration"),
    ({"domain": "a.example", "duration": "400d"}, "duration"),
    ({"domain": "a.example", "duration": 3600}, "duration"),
    ({"domain": "a b", "duration": "1h"}, "not a name"),
    ({"domain": "", "duration": "1h"}, "non-empty"),
    ({"domain": 7, "duration": "1h"}, "non-empty"),
    ({"domain": "a.example", "duration": "1h", "reason": 5}, "reason"),
])
def test_bad_selector_or_duration_is_400(make_server, sink, body, why):
    srv = relay(make_server, sink)
    code, j = curl(srv, "/api/v1/suspend", "POST", body)
    assert code == 400 and why in j["detail"], j
    code, j = curl(srv, "/api/v1/suspensions")
    assert j["suspensions"] == []


def test_bad_bodies_and_paths(server):
    code, j = curl(server, "/api/v1/suspend", "POST", "not json")
    assert code == 400
    code, j = curl(server, "/api/v1/suspend", "POST", {"domain": "a", "duration": "1h"})
    assert code == 503 and j["error"] == "delivery is off"
    code, j = curl(server, "/api/v1/top/x")
    assert code == 404
    code, j = curl(server, "/api/v1/suspend")
    assert code == 405


def test_shaping_endpoint_shows_who_when_and_expiry(make_server, sink):
    srv = relay(make_server, sink)
    before = time.time()
    assert curl(srv, "/api/v1/suspend", "POST",
                {"site": "mx.big.example", "duration": "30m", "reason": "maintenance"})[0] == 200
    send(srv, "a@sender.example", ["r@dest.example"])
    assert sink.wait_for(1, timeout=10)
    code, j = curl(srv, "/api/v1/shaping")
    assert code == 200, j
    [s] = j["suspensions"]
    assert s["selector"] == "site" and s["name"] == "mx.big.example" and s["who"] == "admin"
    assert s["reason"] == "maintenance"
    t = lambda v: time.mktime(time.strptime(v, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before - 2 <= t(s["set"]) <= time.time() + 1
    assert 1790 <= t(s["until"]) - t(s["set"]) <= 1800
    # The relayhost is a site of its own, with the limits in force.
    sites = {x["site"]: x for x in j["sites"]}
    relayhost = "[127.0.0.1]:%d" % sink.port
    assert relayhost in sites and "max_connections" in sites[relayhost]["limits"], j
    assert j["truncated"] is False


def test_suppressions_add_list_remove(make_server, sink):
    srv = relay(make_server, sink)
    code, j = curl(srv, "/api/v1/suppressions", "POST",
                   {"address": "<Gone@Example.com>", "reason": "asked to stop", "expires": "30d"})
    assert code == 200 and j["suppressed"]["address"] == "Gone@Example.com", j
    code, j = curl(srv, "/api/v1/suppressions", "POST",
                   {"address": "x@y.example", "scope": "news.example", "class": "invalid-recipient"})
    assert code == 200, j
    code, j = curl(srv, "/api/v1/suppressions", "POST", {"address": "a b@c"})
    assert code == 400
    code, j = curl(srv, "/api/v1/suppressions", "POST", {"address": "a@c", "class": "nope"})
    assert code == 400
    code, j = curl(srv, "/api/v1/suppressions")
    assert code == 200 and j["total"] == 2
    by = {e["address"]: e for e in j["suppressions"]}
    assert by["gone@example.com"]["reason"] == "asked to stop" and by["gone@example.com"]["expires"]
    assert by["x@y.example"]["scope"] == "news.example" and by["x@y.example"]["class"] == "invalid-recipient"
    code, j = curl(srv, "/api/v1/suppressions?address=GONE")
    assert [e["address"] for e in j["suppressions"]] == ["gone@example.com"]
    code, j = curl(srv, "/api/v1/suppressions?scope=news.example")
    assert [e["address"] for e in j["suppressions"]] == ["x@y.example"]
    code, j = curl(srv, "/api/v1/suppressions?limit=1&offset=1")
    assert j["total"] == 2 and len(j["suppressions"]) == 1
    code, j = curl(srv, "/api/v1/suppressions?limit=0")
    assert code == 400
    # The list is the one RCPT checks: the suppressed address is refused.
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@sender.example")
        assert s.rcpt("gone@example.com")[0] >= 500
    code, j = curl(srv, "/api/v1/suppressions?address=gone@example.com", "DELETE")
    assert code == 200, j
    code, j = curl(srv, "/api/v1/suppressions?address=gone@example.com", "DELETE")
    assert code == 404
    code, j = curl(srv, "/api/v1/suppressions?address=x@y.example&scope=news.example", "DELETE")
    assert code == 200
    code, j = curl(srv, "/api/v1/suppressions")
    assert j["total"] == 0


GOOD_RULES = """
sites:
  mx.reload.example:
    max_connections: 3
"""

BAD_RULES = """
sites:
  mx.reload.example:
    max_connections: lots
"""


def test_reload_good_and_bad_rules(make_server, sink, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULES)
    srv = relay(make_server, sink, shaping_rules=str(rules))
    code, j = curl(srv, "/api/v1/reload", "POST")
    assert code == 200 and j["ok"] is True, j
    parts = {p["name"]: p for p in j["parts"]}
    assert parts["shaping_rules"]["ok"] and "site" in parts["shaping_rules"]["detail"]
    rules.write_text(BAD_RULES)
    code, j = curl(srv, "/api/v1/reload", "POST")
    assert code == 422 and j["ok"] is False and j["error"] == "reload failed", j
    parts = {p["name"]: p for p in j["parts"]}
    assert not parts["shaping_rules"]["ok"]
    assert "rules.yaml:4" in parts["shaping_rules"]["detail"], parts
    assert parts["tls"]["ok"] and parts["bounce_classes"]["ok"], "the other parts still load"
    assert wait_log(srv, r"keeping the old rules")
    # Nothing changed: the good rules of the first reload stay in force.
    assert srv.read_log().count("reload: shaping rules reloaded") == 1
    rules.write_text(GOOD_RULES)
    code, j = curl(srv, "/api/v1/reload", "POST")
    assert code == 200 and j["ok"] is True


def test_cli_suspend_resume_suspensions_and_top(make_server, sink):
    srv = relay(make_server, sink)
    r = srv.cli("suspend", "--domain", "cli.example", "--duration", "1h", "--reason", "by hand")
    assert "cli.example" in r.stdout and "by hand" in r.stdout and "admin" in r.stdout
    r = srv.cli("suspensions")
    assert r.stdout.startswith("SELECTOR") and re.search(r"^domain\s+cli\.example\s", r.stdout, re.M)
    j = json.loads(srv.cli("suspensions", "--json").stdout)
    assert [s["name"] for s in j["suspensions"]] == ["cli.example"]
    send(srv, "a@sender.example", ["r@go.example"])
    assert sink.wait_for(1, timeout=10)
    site = "[127.0.0.1]:%d" % sink.port
    r = srv.cli("top", "--once")
    assert r.stdout.startswith("ringmta top") and "READY" in r.stdout
    assert re.search(r"^%s\s+\d+" % re.escape(site), r.stdout, re.M), r.stdout
    j = json.loads(srv.cli("top", "--once", "--json").stdout)
    assert j["sites"][0]["site"] == site and j["sites"][0]["delivered"] == 1
    r = srv.cli("resume", "--domain", "cli.example")
    assert "resumed domain cli.example: 0 messages due now" in r.stdout
    # Clear errors: what the API said, usage, no daemon.
    r = srv.cli("resume", "--domain", "cli.example", check=False)
    assert r.returncode == 1 and "not suspended" in r.stderr
    r = srv.cli("suspend", "--domain", "x.example", "--duration", "2w", check=False)
    assert r.returncode == 1 and "duration" in r.stderr and "HTTP 400" in r.stderr
    r = srv.cli("suspend", "--domain", "x.example", check=False)
    assert r.returncode == 2 and "--duration is required" in r.stderr
    r = srv.cli("suspend", "--domain", "a", "--site", "b", "--duration", "1h", check=False)
    assert r.returncode == 2
    r = srv.cli("top", "--limit", "0", check=False)
    assert r.returncode == 2
    assert srv.stop() == 0
    r = srv.cli("suspensions", check=False)
    assert r.returncode == 1 and "cannot reach the daemon's admin API" in r.stderr


def test_cli_sends_the_token(make_server, sink):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port)
    path = token_file(srv, ["first-token", "second"])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    srv.start()
    assert curl(srv, "/api/v1/suspensions")[0] == 401
    r = srv.cli("suspensions")
    assert r.stdout == "no suspensions\n"
    with open(path, "w") as f:
        f.write("wrong-token\n")
    r = srv.cli("suspensions", check=False)
    assert r.returncode == 1 and "unauthorized" in r.stderr and "HTTP 401" in r.stderr
