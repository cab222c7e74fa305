"""Outbound AUTH and implicit TLS to a relayhost (smtp_auth_credentials_file,
smtp_auth_plaintext, smtp_tls_wrappermode_ports).

Two submission servers: Postfix with Cyrus SASL over a sasldb (pfsubmit.py:
an instance of its own, STARTTLS and implicit TLS, relaying on to a sink
only for authenticated clients; needs root), and aiosmtpd with an
authenticator (Debian's python3-aiosmtpd), which records what the client
sent and can be set up the ways Postfix is not asked to be (AUTH offered
without TLS, a wrapper-mode port that speaks cleartext).

Cases: PLAIN and LOGIN (when only LOGIN is offered) succeed over STARTTLS;
a wrong password defers the mail with class authentication (no bounce,
no hand-over); port-465-style implicit TLS; AUTH offered only after
STARTTLS; credentials never sent in cleartext unless the policy is none
and smtp_auth_plaintext is set; a credentials file that others may read
refuses the start; SIGHUP reloads the file; no password in the log."""
import os
import signal
import smtplib
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import pfsubmit
from conftest import BIN, free_port, wait_log, wait_until
from dnsfix import Dnsmasq
from pki import Pki
from sink import Sink

USER, PASSWORD = "relay-user", "s3cret pass:word"


@pytest.fixture(scope="module")
def pki():
    return Pki()


class Relay:
    """An aiosmtpd submission server: AUTH with USER/PASSWORD, messages
    and AUTH attempts recorded."""

    def __init__(self, pki, implicit=False, starttls=True, mechanisms=("PLAIN", "LOGIN"),
                 auth_require_tls=True):
        crt, key = pki.leaf("relay.test", ["DNS:relay.test", "IP:127.0.0.1"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(crt, key)
        self.messages, self.attempts = [], []
        self.port = free_port()
        exclude = [m for m in ("PLAIN", "LOGIN") if m not in mechanisms]
        kw = dict(hostname="127.0.0.1", port=self.port, authenticator=self.check,
                  auth_require_tls=auth_require_tls, auth_exclude_mechanism=exclude,
                  ready_timeout=10)
        if implicit:
            # aiosmtpd's auth_require_tls looks for STARTTLS only.
            kw["ssl_context"] = ctx
            kw["auth_require_tls"] = False
        elif starttls:
            kw["tls_context"] = ctx
        self.ctl = Controller(self, **kw)

    def check(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and
              auth_data.password == PASSWORD.encode())
        self.attempts.append((mechanism, bool(ok), self.tls(server)))
        # handled=False: aiosmtpd itself answers 535 to a refusal.
        return AuthResult(success=ok, handled=False)

    @staticmethod
    def tls(server):
        # Implicit TLS leaves session.ssl unset: ask the transport.
        return server.transport.get_extra_info("ssl_object") is not None

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(dict(rcpts=list(envelope.rcpt_tos), auth=session.authenticated,
                                  tls=self.tls(server), data=envelope.content))
        return "250 2.0.0 Ok: queued"

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()
        return False


def creds_file(srv_dir, text, mode=0o600):
    path = os.path.join(srv_dir, "relay-creds")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def start_relaying(make_server, relay, creds_line=None, mode=0o600, **kw):
    port = relay.port
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % port, retry_min="1h",
                    retry_max="2h")
    settings.update(kw)
    srv = make_server(**settings)
    if creds_line is None:
        creds_line = "[127.0.0.1]:%d %s %s\n" % (port, USER, PASSWORD)
    path = creds_file(srv.tmpdir, creds_line, mode)
    srv.settings["smtp_auth_credentials_file"] = path
    with open(srv.conf, "a") as f:
        f.write("smtp_auth_credentials_file = %s\n" % path)
    return srv


def send(srv, rcpt="rcpt@example.com"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("sender@example.org", [rcpt], b"Subject: relay auth\r\n\r\nhello\r\n")


def test_plain_over_starttls(make_server, pki):
    with Relay(pki) as relay:
        srv = start_relaying(make_server, relay).start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("PLAIN", True, True)]
        m = relay.messages[0]
        assert m["auth"] and m["tls"] and m["rcpts"] == ["rcpt@example.com"]
        assert wait_log(srv, r"delivery: authenticated to \[127\.0\.0\.1\]:%d with PLAIN" %
                        relay.port)
        assert wait_log(srv, r"status=sent")
        log = srv.read_log()
        assert PASSWORD not in log and USER not in log


def test_login_when_only_login_is_offered(make_server, pki):
    with Relay(pki, mechanisms=("LOGIN",)) as relay:
        # The key without a port matches the relayhost on any port;
        # "user:password" is the sasl_passwd form.
        srv = start_relaying(make_server, relay,
                             creds_line="# relay\n[127.0.0.1] %s:%s\n" % (USER, PASSWORD)).start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("LOGIN", True, True)]
        assert relay.messages[0]["auth"]
        assert wait_log(srv, r"authenticated to \S+ with LOGIN")


def test_wrong_password_defers_not_bounces(make_server, pki):
    with Relay(pki) as relay:
        srv = start_relaying(make_server, relay,
                             creds_line="[127.0.0.1]:%d %s wrong\n" % (relay.port, USER)).start()
        send(srv)
        assert wait_log(srv, r"delivery id=\S+ to=<rcpt@example\.com> .*status=deferred.*"
                        r"class=authentication"), srv.read_log()
        log = srv.read_log()
        assert "SMTP AUTH with [127.0.0.1]:%d failed: 535" % relay.port in log
        assert relay.attempts == [("PLAIN", False, True)]
        assert relay.messages == []
        # Deferred and kept: one message in the queue (no bounce queued),
        # the recipient pending, its class stored.
        assert srv.queue_count() == 1
        shown = srv.queue_show(srv.queue_ids()[0])
        assert "<rcpt@example.com> pending" in shown and "class=authentication" in shown, shown
        assert "ecode=4.7.8" in log
        assert "wrong" not in log


def test_implicit_tls_port(make_server, pki):
    with Relay(pki, implicit=True) as relay:
        # relay.port stands for 465: smtp_tls_wrappermode_ports names it.
        srv = start_relaying(make_server, relay,
                             smtp_tls_wrappermode_ports="465, %d" % relay.port).start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("PLAIN", True, True)]
        assert relay.messages[0]["tls"] and relay.messages[0]["auth"]
        assert wait_log(srv, r"tls to \[127\.0\.0\.1\]:%d: TLS" % relay.port)


def test_implicit_tls_without_credentials(make_server, pki):
    with Relay(pki, implicit=True) as relay:
        srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % relay.port,
                          retry_min="1h", retry_max="2h",
                          smtp_tls_wrappermode_ports=str(relay.port)).start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.messages[0]["tls"] and not relay.messages[0]["auth"]


def test_implicit_tls_port_never_falls_back_to_cleartext(make_server, pki):
    # A wrapper-mode port that speaks cleartext: the handshake fails and
    # the mail waits; no cleartext retry (smtp_tls_fallback is for "may"
    # over STARTTLS), so the password never goes out in clear.
    with Relay(pki, starttls=False, auth_require_tls=False) as relay:
        srv = start_relaying(make_server, relay, smtp_tls_wrappermode_ports=str(relay.port),
                             smtp_tls_fallback="yes").start()
        send(srv)
        assert wait_log(srv, r"delivery id=\S+ to=<rcpt@example\.com> .*status=deferred.*"
                        r"class=tls"), srv.read_log()
        log = srv.read_log()
        assert "TLS handshake with [127.0.0.1]:%d failed" % relay.port in log
        assert "in cleartext" not in log
        assert relay.attempts == [] and relay.messages == []


def test_auth_offered_only_after_starttls(make_server, pki):
    # aiosmtpd's auth_require_tls: no AUTH in the first EHLO reply; the
    # client does STARTTLS, then AUTH.
    with Relay(pki, auth_require_tls=True) as relay:
        ehlo = smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
        ehlo.ehlo("probe")
        assert not ehlo.has_extn("auth") and ehlo.has_extn("starttls")
        ehlo.quit()
        srv = start_relaying(make_server, relay).start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("PLAIN", True, True)]


def test_no_credentials_in_cleartext(make_server, pki):
    # A relay that offers AUTH without TLS and no STARTTLS: under the
    # default policy (may) the password is not sent; the mail waits.
    with Relay(pki, starttls=False, auth_require_tls=False) as relay:
        srv = start_relaying(make_server, relay).start()
        send(srv)
        assert wait_log(srv, r"delivery id=\S+ to=<rcpt@example\.com> .*status=deferred.*"
                        r"class=authentication"), srv.read_log()
        assert "SMTP AUTH with [127.0.0.1]:%d not attempted: the session is not encrypted" % \
            relay.port in srv.read_log()
        assert relay.attempts == [] and relay.messages == []
        assert srv.queue_count() == 1


def test_plaintext_auth_only_when_allowed(make_server, pki):
    with Relay(pki, starttls=False, auth_require_tls=False) as relay:
        # smtp_auth_plaintext without policy none: still refused.
        srv = start_relaying(make_server, relay, smtp_auth_plaintext="yes").start()
        send(srv)
        assert wait_log(srv, r"not attempted: the session is not encrypted"), srv.read_log()
        assert relay.attempts == []
        srv.stop()
    with Relay(pki, starttls=False, auth_require_tls=False) as relay:
        srv = start_relaying(make_server, relay, smtp_auth_plaintext="yes",
                             smtp_tls_policy="none").start()
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("PLAIN", True, False)]
        assert wait_log(srv, r"authenticated to \S+ with PLAIN \(no TLS\)")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_readable_credentials_file_refused(make_server, pki, mode):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:9")
    path = creds_file(srv.tmpdir, "[127.0.0.1]:9 %s %s\n" % (USER, PASSWORD), mode)
    with open(srv.conf, "a") as f:
        f.write("smtp_auth_credentials_file = %s\n" % path)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "mode %04o gives group or others access to passwords; chmod 600 it" % mode in \
        str(e.value)
    assert PASSWORD not in str(e.value)
    # --check says the same.
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "chmod 600" in r.stdout + r.stderr


def test_malformed_credentials_file_refused(make_server):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:9")
    path = creds_file(srv.tmpdir, "[127.0.0.1]:9 only-a-user-and-no-password-here\n")
    with open(srv.conf, "a") as f:
        f.write("smtp_auth_credentials_file = %s\n" % path)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "%s:1: expected user password or user:password" % path in str(e.value)


def test_sighup_reloads_credentials(make_server, pki):
    with Relay(pki) as relay:
        srv = start_relaying(make_server, relay,
                             creds_line="[127.0.0.1]:%d %s old-wrong\n" % (relay.port, USER))
        srv.start()
        path = srv.settings["smtp_auth_credentials_file"]
        creds_file(srv.tmpdir, "[127.0.0.1]:%d %s %s\n" % (relay.port, USER, PASSWORD))
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: outbound AUTH credentials reloaded: 1 next hops")
        # A reload that fails (now readable by others) keeps what it had.
        os.chmod(path, 0o644)
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: smtp_auth_credentials_file \S+: mode 0644 .*"
                        r"\(keeping the old credentials\)")
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == [("PLAIN", True, True)]


def test_a_reload_without_the_credentials_file_turns_auth_off(make_server, pki):
    with Relay(pki) as relay:
        srv = start_relaying(make_server, relay)
        srv.start()
        # The same configuration less smtp_auth_credentials_file.
        with open(srv.conf) as f:
            lines = [ln for ln in f if not ln.startswith("smtp_auth_credentials_file")]
        with open(srv.conf, "w") as f:
            f.writelines(lines)
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_log(srv, r"reload: outbound AUTH credentials removed")
        send(srv)
        assert wait_until(lambda: relay.messages), srv.read_log()
        assert relay.attempts == []     # this relay takes mail without AUTH


# ---------------------------------------------------------------- Postfix

PF_USER = "relay-user@" + pfsubmit.REALM


@pytest.fixture(scope="module")
def postfix_sub(pki):
    if not pfsubmit.usable():
        pytest.skip("needs root, postfix and sasl2-bin")
    crt, key = pki.leaf("submission.test", ["DNS:submission.test", "DNS:relay.test",
                                            "IP:127.0.0.1"])
    for path in (pki.dir, crt, key):
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    sink = Sink()
    try:
        with pfsubmit.PostfixSubmission(sink.port, PF_USER, PASSWORD, crt, key) as pf:
            pf.sink = sink
            yield pf
    finally:
        sink.stop()


def pf_relaying(make_server, port, password=PASSWORD, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % port, retry_min="1h",
                    retry_max="2h")
    settings.update(kw)
    srv = make_server(**settings)
    # The key without a port: every service of this Postfix.
    path = creds_file(srv.tmpdir, "[127.0.0.1] %s:%s\n" % (PF_USER, password))
    with open(srv.conf, "a") as f:
        f.write("smtp_auth_credentials_file = %s\n" % path)
    return srv.start()


def sink_got(sink, rcpt, timeout=30):
    return wait_until(lambda: any(rcpt in m["rcpts"] for m in sink.messages), timeout)


def test_postfix_plain_over_starttls(make_server, postfix_sub):
    pf = postfix_sub
    r = smtplib.SMTP("127.0.0.1", pf.starttls_port, timeout=10)
    r.ehlo("probe")
    assert not r.has_extn("auth") and r.has_extn("starttls")   # AUTH only inside TLS
    r.quit()
    srv = pf_relaying(make_server, pf.starttls_port)
    send(srv, "pf-plain@example.com")
    assert sink_got(pf.sink, "pf-plain@example.com"), srv.read_log() + pf.log()
    assert pf.wait_log("sasl_method=PLAIN, sasl_username=%s" % PF_USER), pf.log()
    assert wait_log(srv, r"authenticated to \S+ with PLAIN")
    assert PASSWORD not in srv.read_log()


def test_postfix_login_when_only_login_is_offered(make_server, postfix_sub):
    pf = postfix_sub
    srv = pf_relaying(make_server, pf.login_port)
    send(srv, "pf-login@example.com")
    assert sink_got(pf.sink, "pf-login@example.com"), srv.read_log() + pf.log()
    assert pf.wait_log("sasl_method=LOGIN, sasl_username=%s" % PF_USER), pf.log()
    assert wait_log(srv, r"authenticated to \S+ with LOGIN")


def test_postfix_implicit_tls(make_server, postfix_sub):
    pf = postfix_sub
    srv = pf_relaying(make_server, pf.implicit_port,
                      smtp_tls_wrappermode_ports="465,%d" % pf.implicit_port)
    send(srv, "pf-implicit@example.com")
    assert sink_got(pf.sink, "pf-implicit@example.com"), srv.read_log() + pf.log()
    assert wait_log(srv, r"tls to \[127\.0\.0\.1\]:%d: TLS" % pf.implicit_port)
    assert wait_log(srv, r"authenticated to \[127\.0\.0\.1\]:%d with PLAIN" %
                    pf.implicit_port)


def test_postfix_wrong_password_defers(make_server, postfix_sub):
    pf = postfix_sub
    srv = pf_relaying(make_server, pf.starttls_port, password="not-the-password")
    send(srv, "pf-wrong@example.com")
    assert wait_log(srv, r"delivery id=\S+ to=<pf-wrong@example\.com> .*status=deferred"
                    r".*ecode=4\.7\.8.*class=authentication"), srv.read_log()
    assert "SMTP AUTH with [127.0.0.1]:%d failed: 535 5.7.8" % pf.starttls_port in \
        srv.read_log()
    assert pf.wait_log("SASL PLAIN authentication failed"), pf.log()
    assert srv.queue_count() == 1
    assert not any("pf-wrong@example.com" in m["rcpts"] for m in pf.sink.messages)
    assert "not-the-password" not in srv.read_log()


def verify_relaying(make_server, name, port, common):
    """A started server relaying to name:port under the verify policy, with
    credentials for name."""
    srv = make_server(delivery="yes", relayhost="%s:%d" % (name, port), retry_min="1h",
                      retry_max="2h", smtp_tls_policy_map="%s=verify" % name, **common)
    path = creds_file(srv.tmpdir, "%s %s:%s\n" % (name, PF_USER, PASSWORD))
    with open(srv.conf, "a") as f:
        f.write("smtp_auth_credentials_file = %s\n" % path)
    return srv.start()


def test_postfix_implicit_tls_verified_by_policy(make_server, postfix_sub, pki):
    # relayhost by name: smtp_tls_policy_map's verify checks the chain
    # against tls_ca_file and the name, in wrapper mode too; a name the
    # certificate does not carry fails before any credentials go out.
    pf = postfix_sub
    dns = Dnsmasq(["--host-record=relay.test,127.0.0.1", "--host-record=other.test,127.0.0.1"])
    try:
        common = dict(dns_servers=dns.server, tls_ca_file=pki.ca,
                      smtp_tls_wrappermode_ports=str(pf.implicit_port))
        srv = verify_relaying(make_server, "relay.test", pf.implicit_port, common)
        send(srv, "pf-verified@example.com")
        assert sink_got(pf.sink, "pf-verified@example.com"), srv.read_log() + pf.log()
        assert wait_log(srv, r"tls to relay\.test\[127\.0\.0\.1\]:%d: TLS\S* \S+ "
                        r"\(verified\)" % pf.implicit_port), srv.read_log()
        srv.stop()

        bad = verify_relaying(make_server, "other.test", pf.implicit_port, common)
        assert pf.wait_log("sasl_method="), pf.log()    # the first delivery's line is in
        before = pf.log().count("sasl_method=")
        send(bad, "pf-unverified@example.com")
        assert wait_log(bad, r"delivery id=\S+ to=<pf-unverified@example\.com> "
                        r".*status=deferred.*class=tls"), bad.read_log()
        assert "TLS handshake with other.test[127.0.0.1]:%d failed" % pf.implicit_port in \
            bad.read_log()
        assert pf.log().count("sasl_method=") == before
    finally:
        dns.stop()
