"""Bounce classes end to end: a sink answering real providers' replies,
each failed or deferred recipient's class in the delivery log line, stored
with the recipient (ringmta queue show), named in the DSN, counted in the
metrics (promtool-valid); ringmta's own failures (connection refused,
null MX and NXDOMAIN against dnsmasq: bad-domain and suppressed, DNS
trouble: dns);
operator rules before the built-in ones, --check reporting rule errors as
file:line, and SIGHUP reloading them (keeping the old rules on error)."""
import email
import email.policy
import os
import re
import smtplib
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port, wait_log
from sink import Sink

# Replies as Gmail, Yahoo and Microsoft send them (see tests/unit/test_bclass.c
# for the sources), chosen by the recipient's local part.
REPLIES = {
    "gone": "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
            "550 5.1.1 double-checking the recipient's email address for typos - gsmtp",
    "full": "552 5.2.2 <full@example.com>: Recipient address rejected: Mailbox full",
    "auth": "550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n"
            "550 5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
    "rate": "450-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n"
            "450 4.7.28 from your DKIM domain. a1si1 - gsmtp",
    "tss": "451 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected"
           " volume or user complaints - 4.16.55.1",
}
CLASSES = {"gone": "invalid-recipient", "full": "mailbox-full", "auth": "authentication",
           "rate": "reputation-or-rate", "tss": "reputation-or-rate"}


class CodeSink(Sink):
    """A sink whose RCPT reply comes from REPLIES (or replies) by local part."""

    def __init__(self, replies=None, **kw):
        self.replies = dict(REPLIES if replies is None else replies)
        super().__init__(**kw)

    def rcpt_reply(self, rcpt):
        return self.replies.get(rcpt.split("@")[0].lower(), "250 2.1.5 Ok")


@pytest.fixture
def sink():
    s = CodeSink()
    yield s
    s.stop()


def start(make_server, port, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % port,
                    retry_min="1h", retry_max="2h")
    settings.update(kw)
    return make_server(**settings).start()


def send(srv, sender, rcpts, body=b"Subject: classes\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail(sender, rcpts, body)


def delivery_line(srv, rcpt):
    for line in srv.read_log().splitlines():
        if "delivery id=" in line and "to=<%s>" % rcpt in line:
            return line
    return None


def get_metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def test_classes_logged_stored_in_dsn_and_counted(make_server, sink):
    mport = free_port()
    srv = start(make_server, sink.port, metrics_listen="127.0.0.1:%d" % mport)
    rcpts = ["%s@example.com" % k for k in REPLIES] + ["ok@example.com"]
    send(srv, "sender@example.org", rcpts)
    # The accepted recipient, then the DSN for the three failures.
    assert sink.wait_for(2)
    for local, cls in CLASSES.items():
        assert wait_log(srv, r"(?m)delivery id=\S+ to=<%s@example\.com> .* class=%s$" % (local, cls),
                        timeout=10), (local, srv.read_log())
    line = delivery_line(srv, "ok@example.com")
    assert line is not None and "status=sent" in line and "class=" not in line

    # Stored with the recipients that wait (the record keeps the class).
    ids = srv.queue_ids()
    assert len(ids) == 1
    shown = srv.queue_show(ids[0])
    for local in ("rate", "tss"):
        assert re.search(r"recipient: <%s@example\.com> pending attempts=1 next=\d+ "
                         r"class=reputation-or-rate" % local, shown), shown
    listed = srv.cli("queue", "list").stdout
    assert "<rate@example.com> pending attempts=1" in listed and "class=reputation-or-rate" in listed

    # The DSN names each failed recipient's class.
    dsn = [m for m in sink.messages if m["sender"] == ""]
    assert len(dsn) == 1 and dsn[0]["rcpts"] == ["sender@example.org"]
    msg = email.message_from_bytes(dsn[0]["data"], policy=email.policy.default)
    status = list(msg.iter_parts())[1].as_string()
    for local in ("gone", "full", "auth"):
        block = status.split("Final-Recipient: rfc822; %s@example.com" % local)[1].split("\n\n")[0]
        assert "X-Ringmta-Bounce-Class: %s" % CLASSES[local] in block, block
    assert "rate@example.com" not in status       # deferred: no delay warning configured

    # Counted by class and result, and promtool accepts the output.
    text = get_metrics(mport)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    bc = "ringmta_delivery_bounce_class_total"
    assert metric(text, bc + '{class="invalid-recipient",result="failed"}') == 1
    assert metric(text, bc + '{class="mailbox-full",result="failed"}') == 1
    assert metric(text, bc + '{class="authentication",result="failed"}') == 1
    assert metric(text, bc + '{class="reputation-or-rate",result="deferred"}') == 2
    assert metric(text, bc + '{class="invalid-recipient",result="deferred"}') == 0


def test_own_failure_connection_refused(make_server):
    port = free_port()      # nothing listens there
    srv = start(make_server, port)
    send(srv, "sender@example.org", ["a@example.com"])
    assert wait_log(srv, r"(?m)delivery id=\S+ to=<a@example\.com> .*status=deferred ecode=4\.4\.1"
                         r" .* class=connection$"), srv.read_log()
    ids = srv.queue_ids()
    assert len(ids) == 1 and "class=connection" in srv.queue_show(ids[0])


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_operator_rules_first_check_and_reload(make_server, tmp_path, sink):
    rules = str(tmp_path / "mine.yaml")
    # Operator: Gmail's 4.7.28 is "policy" here; the built-in rules say otherwise.
    write(rules, "rules:\n  - class: policy\n    status: [4.7.28]\n")
    srv = start(make_server, sink.port, bounce_class_rules=rules)
    send(srv, "sender@example.org", ["rate@example.com"])
    assert wait_log(srv, r"(?m)to=<rate@example\.com> .* class=policy$"), srv.read_log()

    # --check names the broken file and line; the daemon keeps its rules.
    write(rules, "rules:\n  - class: policy\n    status: [4.7.28]\n  - class: nope\n"
                 "    reply: x\n")
    r = srv.cli("--check", check=False)
    assert r.returncode == 2 and "%s:4: class: unknown class 'nope'" % rules in r.stderr, r.stderr
    # ... and every error of every file, one per line, not only the first.
    other = str(tmp_path / "other.yaml")
    write(other, "rules:\n  - status: 5.1.1\n  - class: dns\n    reply: 'a(b'\n")
    r = srv.cli("-o", "bounce_class_rules=%s %s" % (rules, other), "--check", check=False)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and "%s:4: class: unknown class 'nope'" % rules in lines, r.stderr
    assert "%s:2: a rule needs a class" % other in lines, r.stderr
    assert any(l.startswith("%s:4: reply: bad regular expression" % other) for l in lines), \
        r.stderr
    srv.proc.send_signal(1)     # SIGHUP
    assert wait_log(srv, r"reload: %s:4: class: unknown class 'nope' \(keeping the old bounce"
                         r" class rules\)" % re.escape(rules)), srv.read_log()
    srv.cli("queue", "flush", "--all")
    assert wait_log(srv, r"(?m)to=<rate@example\.com> .*attempt=2 .* class=policy$"), srv.read_log()

    # A good file takes effect on the next SIGHUP.
    write(rules, "rules:\n  - class: spam-or-content\n    status: [4.7.28]\n")
    srv.proc.send_signal(1)
    assert wait_log(srv, "reload: bounce class rules reloaded")
    srv.cli("queue", "flush", "--all")
    assert wait_log(srv, r"(?m)to=<rate@example\.com> .*attempt=3 .* class=spam-or-content$"), \
        srv.read_log()
    ids = srv.queue_ids()
    assert "class=spam-or-content" in srv.queue_show(ids[0])


def test_daemon_refuses_to_start_with_broken_rules(make_server, tmp_path):
    rules = str(tmp_path / "bad.yaml")
    write(rules, "rules:\n  - class: dns\n    reply: 'a(b'\n")
    srv = make_server(bounce_class_rules=rules)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "%s:3: reply: bad regular expression" % rules in str(e.value)


@pytest.fixture
def dns_world():
    """dnsmasq with a null MX domain and the sender's MX (a sink on
    127.0.0.7), for ringmta's own DNS failures."""
    from dnsfix import Dnsmasq
    port = free_port()
    dns = Dnsmasq(["--mx-host=nullmx.test,.,0",
                   "--mx-host=sender.test,mx.sender.test,10",
                   "--host-record=mx.sender.test,127.0.0.7"])
    s = Sink(host="127.0.0.7", port=port)
    yield dns, s, port
    s.stop()
    dns.stop()


def test_own_dns_failures_are_bad_domain_and_suppressed(make_server, dns_world):
    dns, s, port = dns_world
    srv = make_server(delivery="yes", dns_servers=dns.server, smtp_port=port,
                      retry_min="1h", retry_max="2h").start()
    send(srv, "a@sender.test", ["u@nullmx.test", "v@nosuchdomain.test"])
    assert s.wait_for(1)        # one DSN for both, to the sender's MX
    for rcpt in (r"u@nullmx\.test", r"v@nosuchdomain\.test"):
        assert wait_log(srv, r"(?m)to=<%s> .*status=bounced .* class=bad-domain$" % rcpt), \
            srv.read_log()
    text = s.messages[0]["data"].decode()
    assert text.count("X-Ringmta-Bounce-Class: bad-domain") == 2, text
    # A hard class: both are suppressed for mail from sender.test.
    for rcpt in ("u@nullmx.test", "v@nosuchdomain.test"):
        r = srv.cli("suppress", "check", rcpt, "--sender-domain", "sender.test")
        assert r.returncode == 0 and "class=bad-domain" in r.stdout, r.stdout


def test_own_dns_timeout_is_dns(make_server, dns_world):
    dns, s, port = dns_world
    srv = make_server(delivery="yes", dns_servers="127.0.0.1:%d" % free_port(),
                      smtp_port=port, retry_min="1h", retry_max="2h").start()
    send(srv, "a@sender.test", ["u@pref.test"])
    assert wait_log(srv, r"(?m)to=<u@pref\.test> .*status=deferred ecode=4\.4\.3 .* class=dns$",
                    timeout=20), srv.read_log()
    assert srv.cli("suppress", "list").stdout == ""
