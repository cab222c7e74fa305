"""A reload (SIGHUP, POST /api/v1/reload) reads ringmta.conf again: under
load from 20 sessions sending without pause to a relayhost sink, a new
log_level, relay_networks, max_message_size, AUTH account file and TLS
certificate take effect at once while no session is dropped and every
accepted message arrives; a bad file (syntax, value, a value that no
longer fits a kept one) changes nothing and says why in the log and the
API's answer; a changed listen address needs a restart and the daemon
keeps listening where it was; the per-address cap stays balanced when
relay_networks changes under open sessions; a new relayhost takes the
next message; HTTP injection trusts the new relay_networks and accounts;
the admin API's tokens rotate; -o values still win over the file; the
settings config show -r lists are the ones ringmta.conf(5) marks as
needing a restart."""
import crypt
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, SRCDIR, free_port, wait_log
from pki import Pki
from sink import Sink


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    p.first = p.leaf("first.test", ["DNS:first.test", "IP:127.0.0.1"])
    p.second = p.leaf("second.test", ["DNS:second.test", "IP:127.0.0.1"])
    return p


def write_conf(srv, extra=""):
    with open(srv.conf, "w") as f:
        for k, v in srv.settings.items():
            f.write("%s = %s\n" % (k, v))
        f.write(extra)


def rewrite(srv, **kw):
    srv.settings.update({k: str(v) for k, v in kw.items()})
    write_conf(srv)


def reload_api(srv, token=None, path="/api/v1/reload", method="POST"):
    """POST /api/v1/reload: (HTTP status, the JSON answer)."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.admin_port, path),
                                 data=b"" if method == "POST" else None, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def parts_of(answer):
    return {p["name"]: p for p in answer["parts"]}


def passwd_file(path, user, password):
    with open(path, "w") as f:
        f.write("%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))))


def peer_cn(srv, ca):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        s.starttls(context=ctx)
        return dict(x[0] for x in s.sock.getpeercert()["subject"])["commonName"]


def can_login(srv, user, password):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.test")
        try:
            s.login(user, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


def relay_code(srv, source):
    """The reply to RCPT for a remote domain from a client at source."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10, source_address=(source, 0)) as s:
        s.ehlo("client.test")
        s.mail("a@example.org")
        code, _ = s.rcpt("far@example.net")
        s.rset()
        return code


class Load:
    """n sessions, each sending one message after another on the same
    connection until stopped: small ones, and every third one of 40 KB.
    Every reply is kept; a session that breaks is an error."""

    def __init__(self, port, n=20):
        self.port = port
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.accepted = set()       # tokens of messages answered 250
        self.refused_552 = 0
        self.errors = []
        self.sent = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                s.ehlo("load%d.test" % i)
                k = 0
                while not self.stop_ev.is_set():
                    token = "load-%d-%d" % (i, k)
                    body = ("x" * 78 + "\r\n") * (500 if k % 3 == 2 else 3)
                    msg = ("Subject: %s\r\n\r\n%s\r\n" % (token, body)).encode()
                    k += 1
                    try:
                        s.sendmail("load@example.org", ["rcpt%d@example.net" % i], msg)
                        with self.lock:
                            self.accepted.add(token)
                    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
                        if e.smtp_code != 552:
                            raise
                        with self.lock:
                            self.refused_552 += 1
                        s.rset()
                    with self.lock:
                        self.sent += 1
                    time.sleep(0.01)
        except Exception as e:      # noqa: BLE001 (any break is the failure)
            with self.lock:
                self.errors.append("session %d: %r" % (i, e))

    def wait_sent(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if self.sent >= n:
                    return True
            time.sleep(0.02)
        return False

    def finish(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)


def tokens(sink):
    with sink.lock:
        return {re.search(rb"Subject: (\S+)", m["data"]).group(1).decode()
                for m in sink.messages}


def test_reload_under_load(make_server, sink, pki, tmp_path):
    passwd = str(tmp_path / "passwd")
    passwd_file(passwd, "olduser", "oldpass")
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      retry_min="1h", retry_max="2h", workers=2,
                      tls_cert_file=pki.first[0], tls_key_file=pki.first[1],
                      auth_passwd_file=passwd, auth_plaintext_loopback="yes",
                      relay_networks="127.0.0.0/8, ::1").start()
    assert peer_cn(srv, pki.ca) == "first.test"
    assert can_login(srv, "olduser", "oldpass")
    assert relay_code(srv, "127.0.0.2") == 250

    load = Load(srv.port)
    try:
        assert load.wait_sent(100), load.errors
        assert "debug:" not in srv.read_log()       # no debug lines yet
        passwd_file(passwd, "newuser", "newpass")
        rewrite(srv, log_level="debug", max_message_size="20k",
                relay_networks="127.0.0.1/32, ::1", queue_commit_delay="0",
                tls_cert_file=pki.second[0], tls_key_file=pki.second[1])
        code, answer = reload_api(srv)
        assert code == 200 and answer["ok"] is True, answer
        parts = parts_of(answer)
        changed = {c["key"]: c for c in parts["config"]["changed"]}
        assert set(changed) == {"max_message_size", "relay_networks", "log_level",
                                "queue_commit_delay", "tls_cert_file", "tls_key_file"}, changed
        assert changed["log_level"]["old"] == "info" and changed["log_level"]["new"] == "debug"
        assert changed["max_message_size"]["new"] == "20480"
        assert parts["config"]["needs_restart"] == []
        assert parts["auth"]["ok"] and parts["auth"]["detail"] == "accounts reloaded", parts
        assert parts["tls"]["ok"], parts

        # In force as soon as the API answered.
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            with pytest.raises(smtplib.SMTPSenderRefused) as e:
                s.sendmail("a@example.org", ["b@example.net"],
                           b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 400)
            assert e.value.smtp_code == 552
        assert relay_code(srv, "127.0.0.2") == 554
        assert relay_code(srv, "127.0.0.1") == 250
        assert can_login(srv, "newuser", "newpass")
        assert not can_login(srv, "olduser", "oldpass")
        assert peer_cn(srv, pki.ca) == "second.test"
        assert wait_log(srv, r"debug: connect client=127\.0\.0\.1"), srv.read_log()[-2000:]
        before = load.sent
        assert load.wait_sent(before + 100), load.errors
    finally:
        load.finish()

    assert load.errors == [], load.errors
    print("load: %d sent, %d accepted, %d refused 552" % (load.sent, len(load.accepted),
                                                        load.refused_552))
    assert load.refused_552 > 0         # the 40 KB messages after the reload
    log = srv.read_log()
    for line in (r"reload: log_level: info -> debug",
                 r"reload: max_message_size: 10240000 -> 20480",
                 r"reload: relay_networks: 127\.0\.0\.0/8, ::1/128 -> 127\.0\.0\.1/32, ::1/128",
                 r"reload: tls_cert_file: \S+first\.test\.pem -> \S+second\.test\.pem",
                 r"reload: queue_commit_delay: 1000 -> 0",
                 r"reload: 6 settings changed, 0 of them need a restart"):
        assert re.search(line, log), line
    # Every message a client saw accepted arrives; nothing else does.
    deadline = time.time() + 60
    while time.time() < deadline and not load.accepted <= tokens(sink):
        time.sleep(0.1)
    got = tokens(sink)
    assert load.accepted <= got, sorted(load.accepted - got)[:10]
    assert {t for t in got if t.startswith("load-")} == load.accepted


def test_bad_reload_changes_nothing(make_server, sink):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      retry_min="1h", retry_max="2h").start()
    good = dict(srv.settings)

    def big_message_ok():
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.net"],
                       b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 400)
        return True

    cases = [
        ("this line is not a setting\n", r"ringmta\.conf:\d+: syntax error"),
        ("max_message_size = lots\n", r"ringmta\.conf:\d+: max_message_size: "),
        ("log_level = chatty\n", r"ringmta\.conf:\d+: log_level: "),
        # queue_map_size needs a restart and keeps 256M: too small for this.
        ("max_message_size = 300M\nqueue_map_size = 1G\n",
         r"max_message_size \(300M\) must be smaller than queue_map_size \(256M\)"),
    ]
    for extra, why in cases:
        srv.settings = dict(good)
        srv.settings["max_message_size"] = "2k"     # would change, if it loaded
        srv.settings["log_level"] = "debug"
        write_conf(srv, extra)
        code, answer = reload_api(srv)
        assert code == 422 and answer["ok"] is False, answer
        assert [p["name"] for p in answer["parts"]] == ["config"], answer
        config = answer["parts"][0]
        assert not config["ok"] and re.search(why, config["detail"]), config
        assert config["changed"] == [] and config["needs_restart"] == [], config
        assert wait_log(srv, r"error: reload: .*(%s).* \(keeping the running settings\)" % why)
        assert big_message_ok()
    # SIGHUP says the same in the log.
    mark = len(srv.read_log())
    os.kill(srv.proc.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and "keeping the running settings" not in srv.read_log()[mark:]:
        time.sleep(0.05)
    assert re.search(r"reload: .*must be smaller than queue_map_size.*keeping the running",
                     srv.read_log()[mark:])
    assert big_message_ok()
    assert "debug:" not in srv.read_log()
    assert "reload: max_message_size:" not in srv.read_log()     # no change logged
    assert sink.wait_for(len(cases) + 1)


def test_listen_change_needs_restart(make_server):
    srv = make_server().start()
    old = srv.settings["listen"]
    other = free_port()
    rewrite(srv, listen="127.0.0.1:%d" % other, workers=4, max_recipients=100)
    code, answer = reload_api(srv)
    assert code == 200 and answer["ok"] is True, answer
    config = parts_of(answer)["config"]
    assert {c["key"]: (c["running"], c["wanted"]) for c in config["needs_restart"]} == {
        "listen": (old, "127.0.0.1:%d" % other), "workers": ("2", "4")}, config
    assert [c["key"] for c in config["changed"]] == ["max_recipients"], config
    assert wait_log(srv, r"warning: reload: listen changed: needs a restart \(keeping %s\)"
                    % re.escape(old))
    assert wait_log(srv, r"reload: workers changed: needs a restart \(keeping 2\)")
    assert wait_log(srv, r"reload: max_recipients: 1000 -> 100")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        assert s.noop()[0] == 250
        s.ehlo("client.test")
        s.mail("a@example.org")
        for i in range(100):
            assert s.rcpt("r%d@example.net" % i)[0] == 250
        assert s.rcpt("over@example.net")[0] == 452     # the new max_recipients
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", other), timeout=2).close()
    # The same file again: nothing more changes, the restart note stays.
    code, answer = reload_api(srv)
    config = parts_of(answer)["config"]
    assert code == 200 and config["changed"] == [] and len(config["needs_restart"]) == 2


def test_restart_keys_in_man_page():
    page = open(os.path.join(SRCDIR, "docs", "man", "ringmta.conf.5")).read()
    marked = set()
    for entry in re.split(r"^\.TP\n", page, flags=re.M)[1:]:
        m = re.match(r'\.BR (\w+) " =', entry)
        if m and re.search(r"^Needs a restart\.", entry, re.M):
            marked.add(m.group(1))
    r = subprocess.run([BIN, "config", "show", "-r"], capture_output=True, text=True,
                       timeout=30, check=True)
    keys = {line.split(" = ")[0] for line in r.stdout.splitlines() if " = " in line}
    assert "listen" in keys and "log_level" not in keys
    assert marked == keys, (sorted(marked - keys), sorted(keys - marked))


def test_per_address_cap_stays_balanced_across_reloads(make_server):
    """Sessions opened under one relay_networks and closed under another
    release exactly what they took: the cap then counts right."""
    srv = make_server(max_connections_per_ip=2, relay_networks="127.0.0.0/8, ::1").start()

    def session():
        s = smtplib.SMTP(timeout=10, source_address=("127.0.0.2", 0))
        code, _ = s.connect("127.0.0.1", srv.port)
        return s, code

    held = [session() for _ in range(3)]     # exempt: in relay_networks
    assert [code for _, code in held] == [220, 220, 220]
    rewrite(srv, relay_networks="127.0.0.1/32, ::1")
    code, answer = reload_api(srv)
    assert code == 200 and answer["ok"], answer
    for s, _ in held:
        s.quit()
    deadline = time.time() + 10
    while time.time() < deadline and srv.read_log().count("disconnect client=127.0.0.2 ") < 3:
        time.sleep(0.05)
    assert srv.read_log().count("disconnect client=127.0.0.2 ") == 3, srv.read_log()
    held = [session() for _ in range(3)]     # capped now: two, then 421
    assert [code for _, code in held] == [220, 220, 421], held
    for s, code in held:
        s.close()


def test_relayhost_follows_a_reload(make_server, sink):
    """Delivery's scheduler and workers route with the new settings."""
    other = Sink()
    try:
        srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                          retry_min="1h", retry_max="2h").start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.net"], b"Subject: before\r\n\r\nx\r\n")
        assert sink.wait_for(1)
        rewrite(srv, relayhost="[127.0.0.1]:%d" % other.port)
        code, answer = reload_api(srv)
        assert code == 200 and [c["key"] for c in parts_of(answer)["config"]["changed"]] == [
            "relayhost"], answer
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.net"], b"Subject: after\r\n\r\nx\r\n")
        assert other.wait_for(1)
        assert tokens(other) == {"after"} and tokens(sink) == {"before"}
        # A deferred message is grouped under the new relay host by the
        # admin API's summary too.
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["tempfail@example.net"], b"Subject: t\r\n\r\nx\r\n")
        assert wait_log(srv, r"to=<tempfail@example\.net> .*status=deferred"), srv.read_log()
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/queue/summary?by=site"
                                    % srv.admin_port, timeout=10) as r:
            rows = json.load(r)["rows"]
        assert [(r["key"], r["total"]) for r in rows] == [
            ("[127.0.0.1]:%d" % other.port, 1)], rows
    finally:
        other.stop()


def test_http_injection_follows_a_reload(make_server, sink, tmp_path):
    """POST /api/v1/inject trusts the new relay_networks and checks the
    new accounts, as SMTP does."""
    from test_inject import BASIC, post     # curl, as that file's tests post
    passwd = str(tmp_path / "passwd")
    passwd_file(passwd, "olduser", "oldpass")
    port = free_port()
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      retry_min="1h", retry_max="2h", http_listen="127.0.0.1:%d" % port,
                      auth_passwd_file=passwd).start()
    srv.http_port = port
    st, ans = post(srv, BASIC)
    assert st == 202, ans               # loopback is in relay_networks
    passwd_file(passwd, "newuser", "newpass")
    rewrite(srv, relay_networks="192.0.2.0/24")
    code, answer = reload_api(srv)
    assert code == 200 and answer["ok"], answer
    st, ans = post(srv, BASIC)
    assert st == 401 and "authentication required" in ans["error"], ans
    st, ans = post(srv, BASIC, user="olduser", password="oldpass")
    assert st == 401, ans
    st, ans = post(srv, BASIC, user="newuser", password="newpass")
    assert st == 202, ans
    assert sink.wait_for(2)


def test_admin_tokens_rotate_on_reload(make_server, tmp_path):
    tokens = str(tmp_path / "admin.tokens")

    def write_tokens(*toks, mode=0o600):
        with open(tokens, "w") as f:
            f.write("".join(t + "\n" for t in toks))
        os.chmod(tokens, mode)

    write_tokens("old-token")
    srv = make_server(admin_token_file=tokens).start()
    status = "/api/v1/status"
    assert reload_api(srv, "old-token", status, "GET")[0] == 200
    assert reload_api(srv, None, status, "GET")[0] == 401
    write_tokens("new-token", "second-token")
    code, answer = reload_api(srv, "old-token")
    assert code == 200 and answer["ok"], answer
    assert parts_of(answer)["admin_tokens"]["detail"] == "admin tokens reloaded: 2 tokens"
    assert reload_api(srv, "old-token", status, "GET")[0] == 401
    assert reload_api(srv, "new-token", status, "GET")[0] == 200
    assert reload_api(srv, "second-token", status, "GET")[0] == 200
    # A file others may read is refused; the tokens in force stay.
    write_tokens("third-token", mode=0o644)
    code, answer = reload_api(srv, "new-token")
    assert code == 422 and not parts_of(answer)["admin_tokens"]["ok"], answer
    assert "mode 0644" in parts_of(answer)["admin_tokens"]["detail"]
    assert wait_log(srv, r"reload: admin_token_file .*mode 0644.* \(keeping the old admin tokens\)")
    assert reload_api(srv, "new-token", status, "GET")[0] == 200
    assert reload_api(srv, "third-token", status, "GET")[0] == 401
    # Unchanged tokens: nothing new is made.
    write_tokens("new-token", "second-token")
    code, answer = reload_api(srv, "new-token")
    assert parts_of(answer)["admin_tokens"]["detail"] == "admin tokens unchanged: 2 tokens"


def test_command_line_overrides_still_win(make_server):
    """A reload reads the file and then every -o again, as start-up did."""
    srv = make_server()
    srv.log = open(srv.log_path, "ab")
    srv.proc = subprocess.Popen([BIN, "-c", srv.conf, "-o", "max_recipients=100"],
                                stdout=srv.log, stderr=srv.log)
    assert wait_log(srv, "ready:"), srv.read_log()
    rewrite(srv, max_recipients=200, max_errors=5)
    code, answer = reload_api(srv)
    assert code == 200 and [c["key"] for c in parts_of(answer)["config"]["changed"]] == [
        "max_errors"], answer


def test_turning_dkim_signing_on_needs_a_restart(make_server, tmp_path):
    srv = make_server().start()
    rewrite(srv, dkim_key_table=str(tmp_path / "dkim.ini"), max_errors=5)
    code, answer = reload_api(srv)
    assert code == 422 and [p["name"] for p in answer["parts"]] == ["config"], answer
    assert "turning it on needs a restart" in answer["parts"][0]["detail"]
    assert wait_log(srv, r"reload: dkim_key_table: DKIM signing was off at start; turning it"
                         r" on needs a restart \(keeping the running settings\)")
