"""Sources and pools (traffic shaping, issue 10): a source is a local
address with its own EHLO name; the pool is chosen per message at
acceptance (sender domain, authenticated user, listener, or the pool
header, which never reaches the receiver); weights share the pool's
traffic; a source whose address is not this host's is reported at start
and never used (never replaced by the default address); warm-up caps
make mail wait or spill to another source.

Sources are loopback aliases (all of 127.0.0.0/8 is local on Linux); the
sink records the address that connected and the EHLO name it gave."""
import crypt
import os
import re
import signal
import smtplib
import tempfile
import time
import urllib.request

import pytest

from conftest import free_port, relay_server, wait_log, make_server  # noqa: F401
from dkimverify import KeyDns, make_key, verify_dkimpy
from sink import Sink
from test_inject import post

# The setting that names the rules files.
RULES_KEY = "shaping_rules"

SOURCES = """\
sources:
  sa:
    address: 127.0.0.2
    ehlo: a.sources.test
  sb:
    address: 127.0.0.3
    ehlo: b.sources.test
  far:
    address: 192.0.2.1
    ehlo: far.sources.test
"""


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def rules_file(text):
    d = tempfile.mkdtemp(prefix="ringmta-sources-")
    path = os.path.join(d, "shaping.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def shaping(make_server, sink, rules, **kw):
    kw[RULES_KEY] = rules_file(rules)
    return relay_server(make_server, sink, **kw)


def send(port, sender, body=None, rcpts=("to@dest.test",), login=None):
    body = body or ("From: <%s>\r\nSubject: sources\r\n\r\nhello\r\n" % sender).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        if login:
            c.login(*login)
        c.sendmail(sender, list(rcpts), body)


def peers(sink):
    with sink.lock:
        return [(m["peer"], m["helo"]) for m in sink.messages]


TWO_POOLS = SOURCES + """\
pools:
  pa:
    sources: [sa]
  pb:
    sources: [sb]
default_pool: pa
pool_header: X-Ringmta-Pool
pool_selection:
  - sender_domain: b.example
    pool: pb
"""


# ---- at acceptance: the pool and the strip range in the queue record ----

def accepting(make_server, rules, **kw):
    """A server that keeps mail in the queue (no delivery)."""
    kw[RULES_KEY] = rules_file(rules)
    return make_server(**kw).start()


def stored(srv):
    """(record fields, stored message) of the only queued message."""
    ids = srv.queue_ids()
    assert len(ids) == 1, ids
    out = srv.queue_show(ids[0])
    head, body = out.split("\n\n", 1)
    fields = dict(l.split(": ", 1) for l in head.splitlines() if ": " in l)
    return fields, body


def strip_range(fields):
    off, n = fields["strip"].split("+")
    return int(off), int(n)


def test_record_pool_by_sender_domain_and_default(make_server):
    srv = accepting(make_server, TWO_POOLS)
    send(srv.port, "y@B.Example")
    f, _ = stored(srv)
    assert f.get("pool") == "pb" and "strip" not in f
    srv.cli("queue", "delete", srv.queue_ids()[0])
    send(srv.port, "x@a.example")
    f, _ = stored(srv)
    assert f.get("pool") == "pa" and "strip" not in f


def test_record_pool_by_header_with_its_strip_range(make_server):
    srv = accepting(make_server, TWO_POOLS)
    field = "x-ringmta-POOL :\r\n\tpb \r\n"
    body = ("From: <x@a.example>\r\n" + field + "Subject: h\r\n\r\nX-Ringmta-Pool: pa\r\n")
    send(srv.port, "x@a.example", body.encode())
    f, msg = stored(srv)
    assert f.get("pool") == "pb"
    off, n = strip_range(f)
    assert msg[off:off + n] == field
    # Only that field: the trace header above it, the rest after it.
    assert msg.startswith("Received: ")
    assert msg[off + n:].startswith("Subject: h\r\n\r\nX-Ringmta-Pool: pa")


def test_record_pool_header_across_receives(make_server):
    """The field after 200 KB of other fields, folded over many lines, and
    sent in two writes cut inside it (a pause between them, so that they
    arrive as two receives): its value is read across the slices."""
    srv = accepting(make_server, TWO_POOLS)
    filler = "".join("X-Filler-%03d: %s\r\n" % (i, "f" * 980) for i in range(200))
    field = "X-Ringmta-Pool:" + "".join("\r\n \t" for _ in range(150)) + "pb\r\n"
    head = "From: <x@a.example>\r\n" + filler + field[:300]
    rest = field[300:] + "Subject: deep\r\n\r\nhi\r\n.\r\n"
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.mail("x@a.example")[0] == 250
        assert c.rcpt("to@dest.test")[0] == 250
        assert c.docmd("DATA")[0] == 354
        c.send(head.encode())
        time.sleep(0.3)
        c.send(rest.encode())
        assert c.getreply()[0] == 250
    f, msg = stored(srv)
    off, n = strip_range(f)
    assert f.get("pool") == "pb" and msg[off:off + n] == field


def test_record_strip_range_of_a_bdat_message(make_server):
    srv = accepting(make_server, TWO_POOLS)
    field = "X-Ringmta-Pool: pb\r\n"
    body = ("From: <x@a.example>\r\n" + field + "\r\nbody").encode()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.mail("x@a.example")[0] == 250
        assert c.rcpt("to@dest.test")[0] == 250
        # Two chunks, the field cut in the middle.
        c.send(b"BDAT 30\r\n" + body[:30])
        assert c.getreply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % (len(body) - 30) + body[30:])
        assert c.getreply()[0] == 250
    f, msg = stored(srv)
    off, n = strip_range(f)
    assert f.get("pool") == "pb" and msg[off:off + n] == field


def test_record_without_a_pool_header_setting(make_server):
    """Rules without pool_header: the field is text like any other."""
    rules = TWO_POOLS.replace("pool_header: X-Ringmta-Pool\n", "")
    srv = accepting(make_server, rules)
    send(srv.port, "x@a.example", b"From: <x@a.example>\r\nX-Ringmta-Pool: pb\r\n\r\nhi\r\n")
    f, msg = stored(srv)
    assert f.get("pool") == "pa" and "strip" not in f and "X-Ringmta-Pool: pb" in msg


def test_record_strip_range_after_the_dkim_signature(make_server):
    """Signed at acceptance: the signature goes above the trace header,
    and the range still points at the field."""
    kdir = tempfile.mkdtemp(prefix="ringmta-sources-dkim-")
    key = make_key(kdir, "rsa", name="rsa.pem")
    table = os.path.join(kdir, "dkim.ini")
    with open(table, "w") as f:
        f.write("[a.example]\nkeys = rsa2026:%s\n" % key.path)
    srv = accepting(make_server, TWO_POOLS, dkim_key_table=table)
    field = "X-Ringmta-Pool: pb\r\n"
    send(srv.port, "x@a.example", ("From: <x@a.example>\r\n" + field + "\r\nhi\r\n").encode())
    f, msg = stored(srv)
    off, n = strip_range(f)
    assert msg.startswith("DKIM-Signature:") and msg[off:off + n] == field


@pytest.mark.parametrize("value,shown", [("nope", "nope"), ("", ""), (" \t", ""),
                                          ("p" * 200, "(too long)"), ('a"b\\c', "a?b?c")])
def test_unknown_pool_in_the_header_is_refused(make_server, value, shown):
    srv = accepting(make_server, TWO_POOLS)
    body = ("From: <x@a.example>\r\nX-Ringmta-Pool: %s\r\n\r\nhi\r\n" % value).encode()
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv.port, "x@a.example", body)
    assert e.value.smtp_code == 550
    assert e.value.smtp_error == ('5.7.1 unknown pool "%s"' % shown).encode()
    assert srv.queue_count() == 0
    assert wait_log(srv, r'reject client=127\.0\.0\.1 from=<x@a\.example> reason="unknown pool %s"'
                    % re.escape(shown))


def test_record_pool_by_authenticated_user_and_listener(make_server):
    d = tempfile.mkdtemp(prefix="ringmta-sources-auth-")
    passwd = os.path.join(d, "passwd")
    with open(passwd, "w") as f:
        f.write("carol:%s\n" % crypt.crypt("secret", crypt.mksalt(crypt.METHOD_SHA512)))
    other = free_port()
    rules = TWO_POOLS + ("  - user: carol\n    pool: pb\n"
                         "  - listener: 127.0.0.1:%d\n    pool: pb\n" % other)
    srv = make_server(auth_passwd_file=passwd, auth_plaintext_loopback="yes",
                      **{RULES_KEY: rules_file(rules)})
    listen_on(srv, other)
    srv.start()
    for port, login in ((srv.port, ("carol", "secret")), (other, None), (srv.port, None)):
        send(port, "x@a.example", login=login)
        f, _ = stored(srv)
        srv.cli("queue", "delete", srv.queue_ids()[0])
        assert f.get("pool") == ("pb" if login or port == other else "pa"), (port, login, f)


def listen_on(srv, other):
    """Add a second listener (before start)."""
    srv.settings["listen"] = "127.0.0.1:%d, 127.0.0.1:%d" % (srv.port, other)
    with open(srv.conf, "w") as f:
        for k, v in srv.settings.items():
            f.write("%s = %s\n" % (k, v))


# ---- end to end: the sink sees the source address and EHLO name ----

def test_pool_by_sender_domain(make_server, sink):
    srv = shaping(make_server, sink, TWO_POOLS)
    send(srv.port, "x@a.example")
    send(srv.port, "y@b.example")
    assert sink.wait_for(2)
    got = {m["sender"]: (m["peer"], m["helo"]) for m in sink.messages}
    assert got["x@a.example"] == ("127.0.0.2", "a.sources.test")
    assert got["y@b.example"] == ("127.0.0.3", "b.sources.test")


def test_pool_by_header_and_the_header_is_not_sent(make_server, sink):
    srv = shaping(make_server, sink, TWO_POOLS)
    body = (b"From: <x@a.example>\r\nX-RINGMTA-Pool:\r\n pb\r\nSubject: by header\r\n"
            b"\r\nX-Ringmta-Pool: pa (in the body: text, not a field)\r\n")
    send(srv.port, "x@a.example", body)
    assert sink.wait_for(1)
    m = sink.messages[0]
    assert (m["peer"], m["helo"]) == ("127.0.0.3", "b.sources.test")
    head, text = m["data"].split(b"\r\n\r\n", 1)
    assert b"ringmta-pool" not in head.lower()
    assert b"From: <x@a.example>\r\nSubject: by header" in head
    assert text == b"X-Ringmta-Pool: pa (in the body: text, not a field)\r\n"


def test_pool_by_authenticated_user(make_server, sink):
    d = tempfile.mkdtemp(prefix="ringmta-sources-auth-")
    passwd = os.path.join(d, "passwd")
    with open(passwd, "w") as f:
        f.write("carol:%s\n" % crypt.crypt("secret", crypt.mksalt(crypt.METHOD_SHA512)))
    rules = TWO_POOLS + "  - user: carol\n    pool: pb\n"
    srv = shaping(make_server, sink, rules, auth_passwd_file=passwd,
                  auth_plaintext_loopback="yes")
    send(srv.port, "x@a.example", login=("carol", "secret"))
    send(srv.port, "x@a.example")
    assert sink.wait_for(2)
    assert sorted(peers(sink)) == [("127.0.0.2", "a.sources.test"),
                                   ("127.0.0.3", "b.sources.test")]


def test_pool_by_listener(make_server, sink):
    other = free_port()
    rules = TWO_POOLS + "  - listener: 127.0.0.1:%d\n    pool: pb\n" % other
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      retry_min="1h", retry_max="2h", **{RULES_KEY: rules_file(rules)})
    listen_on(srv, other)
    srv.start()
    send(srv.port, "x@a.example")
    send(other, "x@a.example")
    assert sink.wait_for(2)
    assert sorted(peers(sink)) == [("127.0.0.2", "a.sources.test"),
                                   ("127.0.0.3", "b.sources.test")]


WEIGHTED = SOURCES + """\
pools:
  w:
    sources: [{name: sa, weight: 2}, {name: sb, weight: 1}]
default_pool: w
"""


def test_weights_over_60_messages(make_server, sink):
    srv = shaping(make_server, sink, WEIGHTED)
    for i in range(60):
        send(srv.port, "x%d@a.example" % i)
    assert sink.wait_for(60, timeout=60)
    got = peers(sink)
    na = sum(1 for p, _ in got if p == "127.0.0.2")
    nb = sum(1 for p, _ in got if p == "127.0.0.3")
    assert na + nb == 60, got      # never the default address
    assert 32 <= na <= 48, (na, nb)     # 2:1 is 40:20
    assert all(h == {"127.0.0.2": "a.sources.test", "127.0.0.3": "b.sources.test"}[p]
               for p, h in got)


NOT_LOCAL = SOURCES + """\
pools:
  mixed:
    sources: [far, sa]
  faronly:
    sources: [far]
pool_selection:
  - sender_domain: far.example
    pool: faronly
default_pool: mixed
"""


def test_a_source_that_is_not_local(make_server, sink):
    srv = shaping(make_server, sink, NOT_LOCAL)
    log = srv.read_log()
    assert re.search(r"source far .*192\.0\.2\.1", log), log
    for i in range(6):
        send(srv.port, "x%d@a.example" % i)
    assert sink.wait_for(6)
    assert set(peers(sink)) == {("127.0.0.2", "a.sources.test")}
    # A pool with only that source: deferred, with the reason, never sent
    # from the default address.
    send(srv.port, "y@far.example")
    assert wait_log(srv, r"to=<to@dest\.test> relay=none .*status=deferred ecode=4\.4\.0"
                    r" reply=\"no source of pool faronly can be used \(out of service\)\"", 20), \
        srv.read_log()
    time.sleep(0.5)
    assert len(sink.messages) == 6
    assert srv.queue_count() == 1


def test_check_and_start_report_a_source_that_is_not_local(make_server):
    srv = make_server(**{RULES_KEY: rules_file(NOT_LOCAL)})
    r = srv.cli("--check", check=False)
    assert r.returncode == 0, r.stderr     # a warning: the other sources work
    assert ("warning: shaping rules: bind to source far address 192.0.2.1: Cannot assign"
            " requested address (not an address of this host): it will be out of service"
            in r.stderr), r.stderr
    assert "source sa" not in r.stderr and "source sb" not in r.stderr
    # The daemon starts, says so once, and takes the source out of service.
    srv = make_server(delivery="yes", **{RULES_KEY: rules_file(NOT_LOCAL)}).start()
    assert wait_log(srv, r"warning: source far address 192\.0\.2\.1 cannot be bound \(Cannot"
                    r" assign requested address\): out of service until the rules are reloaded")
    assert len(re.findall(r"192\.0\.2\.1", srv.read_log())) == 1, srv.read_log()


WARMUP = """\
sources:
  sa:
    address: 127.0.0.2
    ehlo: a.sources.test
    warmup:
      start: {today}
      period: day
      schedule:
        default: [5, 10, 20]
  sb:
    address: 127.0.0.3
    ehlo: b.sources.test
pools:
  wait:
    sources: [sa]
    when_capped: wait
  spill:
    sources: [{name: sa, weight: 100}, {name: sb, weight: 1}]
    when_capped: spill
pool_selection:
  - sender_domain: spill.example
    pool: spill
default_pool: wait
"""


def warmup_rules():
    return WARMUP.replace("{today}", time.strftime("%Y-%m-%d", time.gmtime()))


def test_warmup_cap_wait(make_server, sink):
    srv = shaping(make_server, sink, warmup_rules())
    midnight = (int(time.time()) // 86400 + 1) * 86400     # the next period
    for i in range(6):
        send(srv.port, "x%d@wait.example" % i)
    assert sink.wait_for(5)
    assert wait_log(srv, r"status=deferred ecode=4\.4\.5 reply=\"every source of pool wait"
                    r" reached its warm-up cap; waiting for the next period\"")
    assert len(sink.messages) == 5
    assert set(peers(sink)) == {("127.0.0.2", "a.sources.test")}
    # The sixth waits, without an attempt, for the next day (UTC).
    out = srv.cli("queue", "list").stdout
    m = re.search(r"pending attempts=0 next=(\d+)", out)
    # (a run across midnight UTC waits for the day after)
    assert m and midnight <= int(m.group(1)) <= midnight + 86400 + 120, out


def test_warmup_cap_spill(make_server, sink):
    srv = shaping(make_server, sink, warmup_rules())
    for i in range(6):
        send(srv.port, "x%d@spill.example" % i)
    assert sink.wait_for(6)
    got = peers(sink)
    assert got.count(("127.0.0.2", "a.sources.test")) == 5
    assert got.count(("127.0.0.3", "b.sources.test")) == 1
    assert srv.queue_count() == 0


def test_dkim_signature_verifies_without_the_pool_header(make_server, sink):
    kdir = tempfile.mkdtemp(prefix="ringmta-sources-dkim-")
    key = make_key(kdir, "rsa", name="rsa.pem")
    table = os.path.join(kdir, "dkim.ini")
    with open(table, "w") as f:
        # The domain lists the pool header: it is left out all the same.
        f.write("[a.example]\nkeys = rsa2026:%s\nheaders = from:subject:x-ringmta-pool\n"
                % key.path)
    with KeyDns([("rsa2026", "a.example", key.record())]) as dns:
        srv = shaping(make_server, sink, TWO_POOLS, dkim_key_table=table)
        body = b"From: <x@a.example>\r\nX-Ringmta-Pool: pb\r\nSubject: signed\r\n\r\nhi\r\n"
        send(srv.port, "x@a.example", body)
        assert sink.wait_for(1)
        data = sink.messages[0]["data"]
        assert b"ringmta-pool" not in data.lower()
        assert sink.messages[0]["peer"] == "127.0.0.3"
        res = verify_dkimpy(data, dns.server)
        assert res and all(ok for ok, _ in res), (res, data)


def test_sources_in_metrics_and_queue_shaping(make_server, sink):
    """The warm-up counts and the sources out of service: /metrics while
    running, `ringmta queue shaping` from what was saved."""
    port = free_port()
    rules = warmup_rules().replace(
        "pools:\n", "  far:\n    address: 192.0.2.1\npools:\n  farpool:\n    sources: [far, sb]\n")
    srv = shaping(make_server, sink, rules, metrics_listen="127.0.0.1:%d" % port)
    for i in range(6):
        send(srv.port, "x%d@spill.example" % i)
    assert sink.wait_for(6)
    deadline = time.time() + 10
    while True:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        if 'ringmta_source_warmup_messages{source="sb",provider="-"} 1' in text or \
                time.time() > deadline:
            break
        time.sleep(0.1)
    assert 'ringmta_source_warmup_messages{source="sa",provider="-"} 5\n' in text, text
    assert 'ringmta_source_warmup_messages{source="sb",provider="-"} 1\n' in text, text
    assert 'ringmta_source_out_of_service{source="far"} 1\n' in text, text
    assert 'ringmta_source_out_of_service{source="sa"} 0\n' in text, text
    assert srv.stop() == 0      # saves the counters
    out = srv.cli("queue", "shaping").stdout
    assert "  source=sa provider=- sent=5\n" in out and "  source=sb provider=- sent=1\n" in out, out


RELOAD_BEFORE = SOURCES.replace("""  far:
    address: 192.0.2.1
    ehlo: far.sources.test
""", "") + """\
default:
  message_rate: 1/3s burst 1
pools:
  default:
    sources: [sb]
"""

RELOAD_AFTER = """\
sources:
  sa:
    address: 127.0.0.2
    ehlo: a.sources.test
default:
  message_rate: 1/3s burst 1
pools:
  default:
    sources: [sa]
"""


def test_reload_removing_the_source_in_use(make_server, sink):
    """Mail waiting on a path whose source a reload removed (its address
    taken out of the rules) goes out from its pool's sources in the new
    rules, never from the removed address nor the default one."""
    path = rules_file(RELOAD_BEFORE)
    srv = relay_server(make_server, sink, **{RULES_KEY: path})
    for i in range(3):
        send(srv.port, "x%d@reload.example" % i)
    assert sink.wait_for(1)
    assert peers(sink) == [("127.0.0.3", "b.sources.test")]
    with open(path, "w") as f:
        f.write(RELOAD_AFTER)
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: shaping rules reloaded")
    assert sink.wait_for(3, timeout=40)
    got = peers(sink)
    assert got[1:] == [("127.0.0.2", "a.sources.test")] * 2, got
    assert srv.queue_count() == 0
    # What waited was deferred without an attempt, saying why, then sent.
    log = srv.read_log()
    assert re.search(r"attempt=0 .*status=deferred ecode=4\.4\.0 reply=\"source sb was"
                     r" removed from the shaping rules; picking a source again\"", log), log
    assert log.count("status=sent") == 3, log


def test_http_injection_chooses_pools_as_smtp_does(make_server, sink):
    """Mail injected over HTTP gets its pool by the same rules as SMTP's
    (sender domain, the pool header, the default pool), leaves from that
    pool's source, and the pool header never reaches the receiver."""
    http_port = free_port()
    srv = shaping(make_server, sink, TWO_POOLS, http_listen="127.0.0.1:%d" % http_port)
    srv.http_port = http_port
    for sender, extra in (("y@b.example", ""), ("x@a.example", "X-Ringmta-Pool: pb\r\n"),
                          ("z@a.example", "")):
        status, ans = post(srv, {"envelope_sender": sender,
                                 "recipients": [{"email": "to@dest.test"}],
                                 "content": "From: <%s>\r\n%sSubject: http\r\n\r\nhi\r\n" %
                                            (sender, extra)})
        assert status == 202, ans
    assert sink.wait_for(3)
    got = {m["sender"]: m for m in sink.messages}
    assert (got["y@b.example"]["peer"], got["y@b.example"]["helo"]) == \
        ("127.0.0.3", "b.sources.test")
    assert (got["x@a.example"]["peer"], got["x@a.example"]["helo"]) == \
        ("127.0.0.3", "b.sources.test")
    assert (got["z@a.example"]["peer"], got["z@a.example"]["helo"]) == \
        ("127.0.0.2", "a.sources.test")
    assert b"ringmta-pool" not in got["x@a.example"]["data"].lower()
