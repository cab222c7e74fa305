"""TLS and AUTH with real clients: openssl s_client (STARTTLS and implicit
TLS), swaks (--tls, --tlsc, --auth), Python's smtplib; the STARTTLS
injection defence (CVE-2011-0411); AUTH failures and their rate limit;
submission policy; outbound STARTTLS with may / encrypt / verify."""
import base64
import crypt
import os
import re
import smtplib
import socket
import ssl
import subprocess
import signal
import time

import pytest

from conftest import Raw, free_port, wait_log
from pki import Pki
from sink import Sink


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    p.server_crt, p.server_key = p.leaf("mx.test.invalid",
                                        ["DNS:mx.test.invalid", "DNS:localhost", "IP:127.0.0.1"])
    return p


@pytest.fixture(scope="module")
def passwd(pki):
    path = os.path.join(pki.dir, "passwd")
    with open(path, "w") as f:
        f.write("# test accounts\n")
        f.write("alice:%s\n" % crypt.crypt("wonderland", crypt.mksalt(crypt.METHOD_SHA512)))
        f.write("bob:%s:cram-md5=builder\n" % crypt.crypt("builder",
                                                          crypt.mksalt(crypt.METHOD_SHA512)))
    return path


def client_ctx(pki):
    ctx = ssl.create_default_context(cafile=pki.ca)
    return ctx


@pytest.fixture
def tls_server(make_server, pki, passwd):
    p587, p465 = free_port(), free_port()
    srv = make_server(tls_cert_file=pki.server_crt, tls_key_file=pki.server_key,
                      auth_passwd_file=passwd, auth_max_failures=3)
    srv.p587, srv.p465 = p587, p465
    srv.settings["listen"] = "127.0.0.1:%d, 127.0.0.1:%d/submission, 127.0.0.1:%d/submissions" % (
        srv.port, p587, p465)
    with open(srv.conf, "w") as f:
        for k, v in srv.settings.items():
            f.write("%s = %s\n" % (k, v))
    return srv.start()


def test_starttls_with_smtplib(tls_server, pki):
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")           # never in cleartext
        s.starttls(context=client_ctx(pki))
        s.ehlo("client.test")
        assert not s.has_extn("starttls")       # not offered inside TLS
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        s.sendmail("a@example.org", ["b@example.com"], b"Subject: tls\r\n\r\nx\r\n")
    qid = tls_server.queue_ids()[0]
    shown = tls_server.queue_show(qid)
    assert "with ESMTPS id" in shown and "(using TLSv1.3 with cipher" in shown
    assert re.search(r"tls client=127\.0\.0\.1 version=TLSv1\.3", tls_server.read_log())


def test_openssl_s_client_starttls(tls_server, pki):
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        "127.0.0.1:%d" % tls_server.port, "-CAfile", pki.ca,
                        "-verify_return_error", "-servername", "mx.test.invalid", "-crlf",
                        "-ign_eof"],
                       input=b"EHLO s-client\nQUIT\n", capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out[-2000:]
    assert "250-AUTH PLAIN LOGIN" in out
    assert "221 2.0.0 Bye" in out


def test_implicit_tls_s_client_and_smtplib(tls_server, pki):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_server.p465,
                        "-CAfile", pki.ca, "-verify_return_error", "-crlf", "-ign_eof"],
                       input=b"EHLO s-client\nQUIT\n", capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out and "220 mx.test.invalid ESMTP" in out, out[-2000:]
    with smtplib.SMTP_SSL("127.0.0.1", tls_server.p465, timeout=10, context=client_ctx(pki)) as s:
        s.ehlo("c")
        assert not s.has_extn("starttls")
        s.login("alice", "wonderland")
        s.sendmail("alice@example.org", ["x@example.com"], b"Subject: 465\r\n\r\nx\r\n")
    shown = tls_server.queue_show(tls_server.queue_ids()[0])
    assert "with ESMTPSA id" in shown and "(Authenticated sender: alice)" in shown
    assert "user=alice" in tls_server.read_log()


def test_tls_session_resumption(tls_server, pki):
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2       # session objects work simply in 1.2
    s1 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_server.p465)),
                         server_hostname="mx.test.invalid")
    s1.recv(1000)
    sess = s1.session
    s1.close()
    s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_server.p465)),
                         server_hostname="mx.test.invalid", session=sess)
    s2.recv(1000)
    assert s2.session_reused
    s2.close()


def s_client_session(pki, port, sess_file, resume):
    """One implicit-TLS 1.3 connection by openssl s_client, reading the
    banner (TLS 1.3 tickets come after the handshake); its output."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-CAfile", pki.ca, "-tls1_3", "-crlf", "-ign_eof",
                        "-sess_in" if resume else "-sess_out", sess_file],
                       input=b"QUIT\n", capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace")


def test_tickets_resume_across_a_reload(tls_server, pki, tmp_path):
    # The ticket keys belong to the process (tls/tls_ticket.c), not to the
    # contexts a reload replaces: sessions from before SIGHUP resume after
    # it, TLS 1.2 (Python) and TLS 1.3 (s_client) alike.
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s1 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_server.p465)),
                         server_hostname="mx.test.invalid")
    s1.recv(1000)
    sess12 = s1.session
    s1.close()
    sess13 = str(tmp_path / "sess13.pem")
    out = s_client_session(pki, tls_server.p465, sess13, False)
    assert "220 mx.test.invalid" in out and "TLSv1.3" in out, out[-2000:]
    assert "Reused" in s_client_session(pki, tls_server.p465, sess13, True)   # before the reload

    tls_server.proc.send_signal(signal.SIGHUP)
    assert wait_log(tls_server, r"reload: TLS certificates reloaded")
    s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_server.p465)),
                         server_hostname="mx.test.invalid", session=sess12)
    s2.recv(1000)
    assert s2.session_reused, "TLS 1.2 session not resumed after the reload"
    s2.close()
    out = s_client_session(pki, tls_server.p465, sess13, True)
    assert "Reused, TLSv1.3" in out, out[-2000:]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_auth_mechanisms(tls_server, mech):
    user, pw = ("bob", "builder") if mech == "CRAM-MD5" else ("alice", "wonderland")
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(tls_server.p587),
                        "--tls", "--auth", mech, "--auth-user", user, "--auth-password", pw,
                        "--from", "%s@example.org" % user, "--to", "far@example.net",
                        "--body", "auth " + mech], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout and re.search(r"250 2\.0\.0 Ok: queued", r.stdout)


def test_swaks_tlsc_implicit(tls_server):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(tls_server.p465),
                        "--tlsc", "--auth", "PLAIN", "--auth-user", "alice",
                        "--auth-password", "wonderland", "--from", "alice@example.org",
                        "--to", "far@example.net"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_submission_requires_auth(tls_server, pki):
    with smtplib.SMTP("127.0.0.1", tls_server.p587, timeout=10) as s:
        s.starttls(context=client_ctx(pki))
        s.ehlo("c")
        code, msg = s.mail("a@example.org")
        assert code == 530 and b"5.7.0" in msg


def test_starttls_injection_is_not_executed(tls_server, pki):
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    # STARTTLS and a command in the same packet: the command must vanish.
    raw.sendall(b"STARTTLS\r\nRSET\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    tls = client_ctx(pki).wrap_socket(raw, server_hostname="mx.test.invalid")
    tls.sendall(b"NOOP\r\n")
    first = tls.recv(1000)
    assert first.startswith(b"250 2.0.0 Ok\r\n") and first.count(b"\r\n") == 1, first
    # And the session forgot EHLO: MAIL needs a new one.
    tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
    assert tls.recv(1000).startswith(b"503 5.5.1")
    tls.close()


def test_auth_failures_and_rate_limit(tls_server, pki):
    with smtplib.SMTP("127.0.0.1", tls_server.p587, timeout=10) as s:
        s.starttls(context=client_ctx(pki))
        s.ehlo("c")
        code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0wrong").decode())
        assert code == 535
        code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0nobody\0x").decode())
        assert code == 535
        code, _ = s.docmd("AUTH", "PLAIN not*base64")
        assert code == 501
        # Three failures: the address is now held off.
        code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0wonderland").decode())
        assert code == 454 and b"4.7.0" in msg
        code, _ = s.docmd("AUTH", "FOO")
        assert code == 504 or code == 454


def test_auth_not_in_cleartext(tls_server):
    c = Raw(tls_server.p587)
    c.cmd("EHLO x")
    r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wonderland").decode())
    assert r[0].startswith("538 5.7.11")
    c.close()


# ---- outbound ----

def sink_ctx(crt, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


def relay(make_server, sink, **kw):
    s = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port, retry_min="1h",
             retry_max="2h", dns_servers="127.0.0.1:9")
    s.update(kw)
    return make_server(**s).start()


def test_outbound_opportunistic_tls(make_server, pki):
    sink = Sink(tls_context=sink_ctx(pki.server_crt, pki.server_key))
    try:
        srv = relay(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"],
                       b"Subject: out\r\n\r\n" + (b"y" * 70 + b"\r\n") * 500)
        assert sink.wait_for(1)
        assert sink.messages[0]["tls"] is True
        assert sink.messages[0]["data"].endswith((b"y" * 70 + b"\r\n") * 500)
        assert re.search(r"status=sent", srv.read_log())
        assert re.search(r"tls=TLSv1\.3 ", srv.read_log())
    finally:
        sink.stop()


def test_outbound_policy_none_stays_clear(make_server, pki):
    sink = Sink(tls_context=sink_ctx(pki.server_crt, pki.server_key))
    try:
        srv = relay(make_server, sink, smtp_tls_policy="none")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: out\r\n\r\nx\r\n")
        assert sink.wait_for(1)
        assert sink.messages[0]["tls"] is False
    finally:
        sink.stop()


def test_outbound_encrypt_required_but_not_offered(make_server):
    sink = Sink()
    try:
        srv = relay(make_server, sink, smtp_tls_policy="encrypt")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: out\r\n\r\nx\r\n")
        deadline = time.time() + 10
        while time.time() < deadline and "status=deferred" not in srv.read_log():
            time.sleep(0.05)
        assert "TLS is required, but was not offered" in srv.read_log()
        assert sink.messages == []
    finally:
        sink.stop()


def _verify_world(make_server, pki, cert_names):
    from dnsfix import Dnsmasq
    port = free_port()
    crt, key = pki.leaf(cert_names[0], ["DNS:" + n for n in cert_names])
    sink = Sink(host="127.0.0.9", port=port, tls_context=sink_ctx(crt, key))
    dns = Dnsmasq(["--mx-host=secure.test,mx.secure.test,10",
                   "--host-record=mx.secure.test,127.0.0.9"])
    srv = make_server(delivery="yes", dns_servers=dns.server, smtp_port=port,
                      tls_ca_file=pki.ca, smtp_tls_policy_map="secure.test=verify",
                      retry_min="1h", retry_max="2h").start()
    return sink, dns, srv


def test_outbound_verify_succeeds(make_server, pki):
    sink, dns, srv = _verify_world(make_server, pki, ["mx.secure.test"])
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["u@secure.test"], b"Subject: v\r\n\r\nx\r\n")
        assert sink.wait_for(1)
        assert sink.messages[0]["tls"] is True
        assert "(verified)" in srv.read_log()
    finally:
        sink.stop()
        dns.stop()


def test_outbound_verify_wrong_name_fails(make_server, pki):
    sink, dns, srv = _verify_world(make_server, pki, ["other.test"])
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["u@secure.test"], b"Subject: v\r\n\r\nx\r\n")
        deadline = time.time() + 15
        while time.time() < deadline and "status=deferred" not in srv.read_log():
            time.sleep(0.05)
        assert "status=deferred" in srv.read_log()
        assert "TLS handshake with mx.secure.test" in srv.read_log()
        assert sink.messages == []
    finally:
        sink.stop()
        dns.stop()


def test_testssl_no_weak_protocol_or_cipher(tls_server):
    import shutil
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    assert exe, "testssl.sh (Debian package testssl.sh) is required"
    r = subprocess.run([exe, "--quiet", "--color", "0", "--warnings", "off", "-p", "-s", "-f",
                        "--starttls", "smtp", "127.0.0.1:%d" % tls_server.port],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout
    for line in ("SSLv2      not offered", "SSLv3      not offered", "TLS 1      not offered",
                 "TLS 1.1    not offered", "TLS 1.2    offered", "TLS 1.3    offered"):
        assert line in out, out
    for cat in ("NULL ciphers", "Anonymous NULL", "Export ciphers", "LOW: 64 Bit",
                "Triple DES Ciphers", "Obsolete CBC ciphers"):
        assert re.search(re.escape(cat) + r".*not offered", out), out
    assert "PFS is offered (OK)" in out


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _jwt(key, claims):
    import json
    head = _b64u(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64u(json.dumps(claims).encode())
    signed = ("%s.%s" % (head, body)).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed,
                         capture_output=True, check=True).stdout
    return "%s.%s.%s" % (head, body, _b64u(sig))


@pytest.fixture
def oauth_server(make_server, pki):
    key = os.path.join(pki.dir, "jwt.key")
    pub = os.path.join(pki.dir, "jwt.pub")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    srv = make_server(tls_cert_file=pki.server_crt, tls_key_file=pki.server_key,
                      auth_jwt_keys_file=pub, auth_jwt_issuer="https://issuer.test/",
                      auth_jwt_audience="smtp.test").start()
    srv.jwt_key = key
    return srv


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_bearer_tokens(oauth_server, pki, mech):
    now = int(time.time())
    good = _jwt(oauth_server.jwt_key, {"iss": "https://issuer.test/", "aud": "smtp.test",
                                      "sub": "carol", "exp": now + 300})
    expired = _jwt(oauth_server.jwt_key, {"iss": "https://issuer.test/", "aud": "smtp.test",
                                         "sub": "carol", "exp": now - 10})

    def msg(tok):
        if mech == "XOAUTH2":
            raw = "user=carol\x01auth=Bearer %s\x01\x01" % tok
        else:
            raw = "n,a=carol,\x01auth=Bearer %s\x01\x01" % tok
        return base64.b64encode(raw.encode()).decode()

    with smtplib.SMTP("127.0.0.1", oauth_server.port, timeout=10) as s:
        s.starttls(context=client_ctx(pki))
        s.ehlo("c")
        assert mech in s.esmtp_features["auth"]
        code, _ = s.docmd("AUTH", "%s %s" % (mech, msg(expired)))
        assert code == 334                       # the error challenge
        code, _ = s.docmd("AQ==" if mech == "OAUTHBEARER" else "")
        assert code == 535
        code, _ = s.docmd("AUTH", "%s %s" % (mech, msg(good)))
        assert code == 235
        s.sendmail("carol@example.org", ["far@example.net"], b"Subject: oauth\r\n\r\nx\r\n")
    assert "auth client=127.0.0.1 user=carol mechanism=%s" % mech in oauth_server.read_log()


def test_sighup_reloads_certificate(make_server, pki):
    crt2, key2 = pki.leaf("reloaded.test", ["DNS:reloaded.test", "IP:127.0.0.1"])
    d = pki.dir
    live_crt, live_key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    shutil_copy = __import__("shutil").copy
    shutil_copy(pki.server_crt, live_crt)
    shutil_copy(pki.server_key, live_key)
    srv = make_server(tls_cert_file=live_crt, tls_key_file=live_key).start()

    def peer_cn():
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            ctx = ssl.create_default_context(cafile=pki.ca)
            ctx.check_hostname = False
            s.starttls(context=ctx)
            cert = s.sock.getpeercert()
            return dict(x[0] for x in cert["subject"])["commonName"]

    assert peer_cn() == "mx.test.invalid"
    shutil_copy(crt2, live_crt)
    shutil_copy(key2, live_key)
    srv.proc.send_signal(__import__("signal").SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and "TLS certificates reloaded" not in srv.read_log():
        time.sleep(0.05)
    assert peer_cn() == "reloaded.test"


def cbc_only_sink(pki):
    """A sink offering STARTTLS whose only cipher ringmta will not use."""
    ctx = sink_ctx(pki.server_crt, pki.server_key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA")       # CBC only: ringmta offers AEAD only
    return Sink(tls_context=ctx)


def test_outbound_handshake_failure_falls_back_to_cleartext(make_server, pki):
    sink = cbc_only_sink(pki)
    try:
        srv = relay(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: fb\r\n\r\nx\r\n")
        assert sink.wait_for(1, timeout=20)
        assert sink.messages[0]["tls"] is False
        assert "trying again in cleartext" in srv.read_log()
    finally:
        sink.stop()


def test_outbound_no_fallback_when_disabled(make_server, pki):
    sink = cbc_only_sink(pki)
    try:
        srv = relay(make_server, sink, smtp_tls_fallback="no")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: fb\r\n\r\nx\r\n")
        deadline = time.time() + 15
        while time.time() < deadline and "status=deferred" not in srv.read_log():
            time.sleep(0.05)
        assert "status=deferred" in srv.read_log()
        assert sink.messages == []
    finally:
        sink.stop()
