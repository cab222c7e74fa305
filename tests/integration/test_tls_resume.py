"""Outbound TLS session resumption (tls/tls_sesscache.c, smtp_client_tls.c)
against real TLS peers: Python's ssl (OpenSSL) sink, which reports on its
side whether a session was resumed, and Postfix. One connection per
message (smtp_reuse_limit = 1), one worker so every connection shares its
cache. A session is offered only to the same name, address, port and
policy: never to another host name, and a "may" session never lets a
"verify" hop skip verification. The cache stays within
smtp_tls_session_cache_size."""
import os
import re
import signal
import smtplib
import ssl
import subprocess
import urllib.request

import pytest

import pfsubmit
from conftest import BIN, free_port, wait_log, wait_until
from dnsfix import Dnsmasq
from pki import Pki
from sink import Sink


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    p.crt, p.key = p.leaf("mx.test.invalid", ["DNS:mx.test.invalid", "IP:127.0.0.1"])
    return p


def sink_ctx(crt, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


def start(make_server, **kw):
    mport = free_port()
    s = dict(delivery="yes", retry_min="1h", retry_max="2h", workers=1, smtp_reuse_limit=1,
             metrics_listen="127.0.0.1:%d" % mport)
    s.update(kw)
    srv = make_server(**s).start()
    srv.metrics_url = "http://127.0.0.1:%d/metrics" % mport
    return srv


def metric(srv, name):
    with urllib.request.urlopen(srv.metrics_url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def deliver(srv, sink, rcpt):
    """Submit one message and wait until sink has it: one connection each,
    one after the other."""
    n = len(sink.messages)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("a@example.org", [rcpt], b"Subject: r\r\n\r\nbody\r\n")
    assert sink.wait_for(n + 1), srv.read_log()
    return sink.messages[n]


HS = "ringmta_tls_outbound_handshakes_total"


@pytest.fixture
def tls_sink(pki):
    sink = Sink(tls_context=sink_ctx(pki.crt, pki.key))
    yield sink
    sink.stop()


def test_second_and_later_handshakes_resume(make_server, tls_sink):
    sink = tls_sink
    srv = start(make_server, relayhost="[127.0.0.1]:%d" % sink.port)
    got = [deliver(srv, sink, "r%d@example.com" % i) for i in range(4)]
    assert [m["tls"] for m in got] == [True] * 4
    assert len({m["conn"] for m in got}) == 4            # a connection each
    assert [m["resumed"] for m in got] == [False, True, True, True]   # the peer's view
    assert metric(srv, HS + '{session="full"}') == 1
    assert metric(srv, HS + '{session="resumed"}') == 3
    # What the sink sent last: one or two tickets (OpenSSL: two after a
    # full handshake, one after a resumption; each used once).
    assert 1 <= metric(srv, "ringmta_tls_outbound_sessions_cached") <= 2
    assert wait_log(srv, r"to=<r3@example\.com> relay=\S+ tls=TLSv1\.3 \S+ resumed "
                    r"attempt=1 .*status=sent")
    assert re.search(r"to=<r0@example\.com> relay=\S+ tls=TLSv1\.3 \S+ attempt=1 ",
                     srv.read_log())


def test_cache_size_zero_turns_it_off(make_server, tls_sink):
    sink = tls_sink
    srv = start(make_server, relayhost="[127.0.0.1]:%d" % sink.port,
                smtp_tls_session_cache_size=0)
    got = [deliver(srv, sink, "off%d@example.com" % i) for i in range(3)]
    assert [m["resumed"] for m in got] == [False] * 3
    assert metric(srv, HS + '{session="full"}') == 3
    assert metric(srv, HS + '{session="resumed"}') == 0
    assert metric(srv, "ringmta_tls_outbound_sessions_cached") == 0


@pytest.mark.parametrize("kind", ["ticket", "session-id"])
def test_tls12_sessions_resume(make_server, pki, kind):
    # TLS 1.2: a ticket, or without tickets the server's session id; the
    # session stays in the cache (not single use) and serves each one.
    ctx = sink_ctx(pki.crt, pki.key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if kind == "session-id":
        ctx.options |= ssl.OP_NO_TICKET
    sink = Sink(tls_context=ctx)
    try:
        srv = start(make_server, relayhost="[127.0.0.1]:%d" % sink.port)
        got = [deliver(srv, sink, "t%d@example.com" % i) for i in range(3)]
        assert [m["resumed"] for m in got] == [False, True, True]
        assert wait_log(srv, r"to=<t2@example\.com> relay=\S+ tls=TLSv1\.2 \S+ resumed ")
        assert metric(srv, "ringmta_tls_outbound_sessions_cached") == 1
    finally:
        sink.stop()


def test_reload_empties_the_cache(make_server, tls_sink):
    # A reload reads the CA store again: sessions verified against the
    # old one are not offered after it.
    sink = tls_sink
    srv = start(make_server, relayhost="[127.0.0.1]:%d" % sink.port)
    assert [deliver(srv, sink, "h%d@example.com" % i)["resumed"] for i in range(2)] == \
        [False, True]
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: TLS certificates reloaded")
    assert [deliver(srv, sink, "h%d@example.com" % i)["resumed"] for i in range(2, 4)] == \
        [False, True]


@pytest.mark.parametrize("value,ok", [("0", True), ("1000000", True), ("-1", False),
                                      ("1000001", False), ("many", False)])
def test_cache_size_is_validated(value, ok):
    r = subprocess.run([BIN, "-o", "smtp_tls_session_cache_size=" + value, "--check"],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode == 0) == ok, r.stderr
    if not ok:
        assert "smtp_tls_session_cache_size" in r.stderr


def test_resumption_turned_on_by_reload(make_server, tls_sink):
    sink = tls_sink
    srv = start(make_server, relayhost="[127.0.0.1]:%d" % sink.port,
                smtp_tls_session_cache_size=0)
    assert deliver(srv, sink, "x0@example.com")["resumed"] is False
    with open(srv.conf, "a") as f:
        f.write("smtp_tls_session_cache_size = 10\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: smtp_tls_session_cache_size: 0 -> 10")
    got = [deliver(srv, sink, "x%d@example.com" % i) for i in range(1, 4)]
    assert [m["resumed"] for m in got] == [False, True, True]


def mx_world(crt, key, names):
    """A TLS sink on 127.0.0.9 with certificate crt, and a DNS server where
    each domain of names (domain -> MX host) has its MX host there."""
    port = free_port()
    sink = Sink(host="127.0.0.9", port=port, tls_context=sink_ctx(crt, key))
    recs = []
    for dom, mx in names.items():
        recs += ["--mx-host=%s,%s,10" % (dom, mx), "--host-record=%s,127.0.0.9" % mx]
    return sink, Dnsmasq(recs), port


def test_not_offered_to_another_host_name(make_server, pki):
    sink, dns, port = mx_world(pki.crt, pki.key, {"a.test": "mx1.a.test",
                                                  "b.test": "mx2.b.test"})
    try:
        srv = start(make_server, dns_servers=dns.server, smtp_port=port, log_level="debug")
        assert deliver(srv, sink, "u@a.test")["resumed"] is False
        assert deliver(srv, sink, "v@a.test")["resumed"] is True
        assert "tls to mx1.a.test[127.0.0.9]:%d: offering a cached session" % port in \
            srv.read_log()
        # Same address and port, another name: a full handshake, nothing offered.
        assert deliver(srv, sink, "w@b.test")["resumed"] is False
        assert "tls to mx2.b.test" in srv.read_log()
        assert "mx2.b.test[127.0.0.9]:%d: offering" % port not in srv.read_log()
        assert metric(srv, HS + '{session="resumed"}') == 1
    finally:
        sink.stop()
        dns.stop()


def test_verify_is_not_skipped_by_a_session_of_may(make_server, pki):
    # One MX host (name, address, port) for two domains: plain.test under
    # the default "may", secure.test under "verify". The certificate lacks
    # the MX name: fine for "may", which caches a session (its second
    # message resumes it). "verify" must still verify and defer, class
    # tls: a resumed session would carry no verification of its own.
    crt, key = pki.leaf("other.test", ["DNS:other.test"])
    sink, dns, port = mx_world(crt, key, {"plain.test": "mx.secure.test",
                                          "secure.test": "mx.secure.test"})
    try:
        srv = start(make_server, dns_servers=dns.server, smtp_port=port, tls_ca_file=pki.ca,
                    smtp_tls_policy_map="secure.test=verify", smtp_tls_fallback="no")
        assert deliver(srv, sink, "a@plain.test")["resumed"] is False
        assert deliver(srv, sink, "b@plain.test")["resumed"] is True
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["c@secure.test"], b"Subject: v\r\n\r\nx\r\n")
        assert wait_log(srv, r"to=<c@secure\.test> .*status=deferred.*class=tls"), \
            srv.read_log()
        assert "TLS handshake with mx.secure.test[127.0.0.9]:%d failed" % port in \
            srv.read_log()
        assert not any("c@secure.test" in m["rcpts"] for m in sink.messages)
        assert metric(srv, HS + '{session="resumed"}') == 1
    finally:
        sink.stop()
        dns.stop()


def test_cache_full_of_hops_stays_bounded(make_server, pki):
    # Four next hops (four addresses), room for two sessions: the least
    # recently stored hop goes first.
    port = free_port()
    sinks = [Sink(host="127.0.0.%d" % (i + 2), port=port,
                  tls_context=sink_ctx(pki.crt, pki.key)) for i in range(4)]
    recs = []
    for i in range(4):
        recs += ["--mx-host=d%d.test,mx.d%d.test,10" % (i, i),
                 "--host-record=mx.d%d.test,127.0.0.%d" % (i, i + 2)]
    dns = Dnsmasq(recs)
    try:
        srv = start(make_server, dns_servers=dns.server, smtp_port=port,
                    smtp_tls_session_cache_size=2)
        for i in range(4):
            assert deliver(srv, sinks[i], "u@d%d.test" % i)["resumed"] is False
            assert 1 <= metric(srv, "ringmta_tls_outbound_sessions_cached") <= 2
        assert deliver(srv, sinks[3], "v@d3.test")["resumed"] is True      # kept
        assert deliver(srv, sinks[0], "v@d0.test")["resumed"] is False     # evicted
        assert metric(srv, "ringmta_tls_outbound_sessions_cached") <= 2
    finally:
        for s in sinks:
            s.stop()
        dns.stop()


def test_verified_session_resumes_under_verify(make_server, pki):
    # A session of a verified handshake resumes the next "verify" one
    # (the leaf it carries names the MX host): "(verified)" both times.
    crt, key = pki.leaf("mx.secure.test", ["DNS:mx.secure.test"])
    sink, dns, port = mx_world(crt, key, {"secure.test": "mx.secure.test"})
    try:
        srv = start(make_server, dns_servers=dns.server, smtp_port=port, tls_ca_file=pki.ca,
                    smtp_tls_policy_map="secure.test=verify")
        got = [deliver(srv, sink, "u%d@secure.test" % i) for i in range(3)]
        assert [m["resumed"] for m in got] == [False, True, True]
        assert srv.read_log().count("(verified)") == 3
    finally:
        sink.stop()
        dns.stop()


# ---------------------------------------------------------------- Postfix

class LoggingPostfix(pfsubmit.PostfixSubmission):
    """pfsubmit's Postfix, logging its TLS session cache use: "Reusing old
    session" on each resumed handshake (smtpd_tls_loglevel 2)."""

    def _write(self):
        super()._write()
        with open(os.path.join(self.etc, "main.cf"), "a") as f:
            f.write("smtpd_tls_loglevel = 2\n")


@pytest.mark.skipif(not pfsubmit.usable(), reason="needs root, postfix and sasl2-bin")
@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_postfix_next_hop_resumes(make_server, pki, mode):
    crt, key = pki.leaf("submission.test", ["DNS:submission.test", "IP:127.0.0.1"])
    for path in (pki.dir, crt, key):
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    sink = Sink()
    user = "relay-user@" + pfsubmit.REALM
    try:
        with LoggingPostfix(sink.port, user, "s3cret-pw", crt, key) as pf:
            port = pf.implicit_port if mode == "implicit" else pf.starttls_port
            srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % port,
                              retry_min="1h", retry_max="2h", workers=1, smtp_reuse_limit=1,
                              smtp_tls_wrappermode_ports="465,%d" % pf.implicit_port)
            creds = os.path.join(srv.tmpdir, "relay-creds")
            with open(creds, "w") as f:
                f.write("[127.0.0.1] %s:s3cret-pw\n" % user)
            os.chmod(creds, 0o600)
            with open(srv.conf, "a") as f:
                f.write("smtp_auth_credentials_file = %s\n" % creds)
            srv.start()
            for i in range(3):
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
                    s.sendmail("a@example.org", ["pf%d@example.com" % i], b"Subject: r\r\n\r\nx\r\n")
                assert sink.wait_for(i + 1, timeout=60), srv.read_log() + pf.log()
            log = srv.read_log()
            assert len(re.findall(r"status=sent", log)) == 3
            assert len(re.findall(r"tls=TLSv1\.3 \S+ resumed attempt", log)) == 2, log
            # postlogd writes Postfix's lines a little after the events
            assert wait_until(lambda: pf.log().count("Reusing old session") == 2, 10), pf.log()
    finally:
        sink.stop()
