"""DKIM signing in the daemon: ringmta signs at acceptance (before the
250) and relays to a capturing sink; every delivered message is checked
by dkimpy and by OpenDKIM (tests/integration/dkimverify.py), key records
served by a loopback dnsmasq. Also: no-key actions, DMARC alignment,
RFC 8058 fields, reload, refusals at start, kill -9 after the 250, and
back-pressure with one signing thread."""
import os
import re
import signal
import smtplib
import socket
import tempfile
import threading
import time

import pytest

from conftest import Raw, relay_server, wait_log, make_server  # noqa: F401
from dkimverify import KeyDns, make_key, opendkim_usable, verify_dkimpy, verify_opendkim
from sink import Sink


class Keys:
    pass


@pytest.fixture(scope="module")
def keys():
    k = Keys()
    k.dir = tempfile.mkdtemp(prefix="ringmta-dkim-keys-")
    k.rsa = make_key(k.dir, "rsa", name="rsa.pem")
    k.ed = make_key(k.dir, "ed25519", name="ed.pem")
    k.rsa2 = make_key(k.dir, "rsa", name="rsa2.pem")
    k.records = [
        ("rsa2026", "example.test", k.rsa.record()),
        ("ed2026", "example.test", k.ed.record()),
        ("new2026", "example.test", k.rsa2.record()),
        ("rsa2026", "other.test", k.rsa.record()),
        ("rsa2026", "parent.test", k.rsa.record()),
        ("rsa2026", "default.test", k.rsa.record()),
        ("rsa2026", "user.test", k.rsa.record()),
        ("rsa2026", "list.test", k.rsa.record()),
        ("rsa2026", "simple.test", k.rsa.record()),
        ("rsa2026", "single.test", k.rsa.record()),
        ("rsa2026", "rep.test", k.rsa.record()),
        ("ed2026", "edonly.test", k.ed.record()),
        ("ed2026", "single.test", k.ed.record()),
    ]
    k.dns = KeyDns(k.records)
    yield k
    k.dns.stop()
    os.system("rm -rf %s" % k.dir)


TABLE = """\
[example.test]
keys = rsa2026:{rsa} ed2026:{ed}

[other.test]
keys = rsa2026:{rsa}
expire = 1d

[parent.test]
keys = rsa2026:{rsa}

[default.test]
keys = rsa2026:{rsa}

[user.test]
keys = rsa2026:{rsa}

[list.test]
keys = rsa2026:{rsa}
unsubscribe_url = https://u.list.test/u?r={{rcpt}}&q={{queue_id}}
unsubscribe_mailto = unsub@list.test

[simple.test]
keys = rsa2026:{rsa}
canonicalization = simple/simple

[single.test]
keys = rsa2026:{rsa}, ed2026:{ed}
single_signature = yes

[rep.test]
keys = rsa2026:{rsa}
headers = from:to:subject:date:message-id:keywords:comments

[edonly.test]
keys = ed2026:{ed}

[user carol]
domain = user.test
"""


def slow_key(keys):
    """An RSA-4096 key (slow to sign with), made once per module."""
    if not hasattr(keys, "slow"):
        keys.slow = make_key(keys.dir, "rsa", bits=4096, name="slow.pem")
    return keys.slow


def table_file(keys, text=None, name="dkim.ini"):
    d = tempfile.mkdtemp(prefix="ringmta-dkim-table-")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write((text or TABLE).format(rsa=keys.rsa.path, ed=keys.ed.path, rsa2=keys.rsa2.path))
    return path


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def signing(make_server, sink, keys, table=None, **kw):
    kw.setdefault("dkim_key_table", table or table_file(keys))
    return relay_server(make_server, sink, **kw)


def message(frm="Alice <alice@example.test>", extra="", body="Hello.\r\n", to="bob@dest.test"):
    return ("From: %s\r\nTo: %s\r\nSubject: test\r\n%s\r\n%s" % (frm, to, extra, body)).encode()


def send(srv, msg, sender="alice@example.test", rcpts=("bob@dest.test",), opts=()):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        c.ehlo("client.test")
        c.sendmail(sender, list(rcpts), msg, mail_options=list(opts))


def sigs_of(data):
    """The DKIM-Signature fields (unfolded) of a message, top first."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = re.split(r"\r\n(?![ \t])", head)
    return [re.sub(r"\r\n[ \t]", " ", f) for f in fields if f.lower().startswith("dkim-signature:")]


def tag(sig, name):
    m = re.search(r"[;:]\s*%s=([^;]*)" % name, sig)
    return re.sub(r"\s+", "", m.group(1)) if m else None


def verified(keys, data, n=None, opendkim=True):
    """Both verifiers accept data; n: how many signatures it must carry."""
    res = verify_dkimpy(data, keys.dns.server)
    assert res and all(ok for ok, _ in res), (res, data[:3000])
    if n is not None:
        assert len(res) == n, res
    if opendkim and opendkim_usable():
        ok, out = verify_opendkim(data, keys.records)
        assert ok, (out, data[:3000])
    return res


def delivered(sink, n=1):
    assert sink.wait_for(n, timeout=30), "sink got %d" % len(sink.messages)
    return sink.messages[n - 1]["data"]


def test_rsa_and_ed25519_from_one_keys_line(make_server, sink, keys):
    srv = signing(make_server, sink, keys)
    send(srv, message())
    data = delivered(sink)
    sigs = sigs_of(data)
    assert [tag(s, "s") for s in sigs] == ["rsa2026", "ed2026"], sigs
    assert [tag(s, "a") for s in sigs] == ["rsa-sha256", "ed25519-sha256"]
    assert all(tag(s, "d") == "example.test" for s in sigs)
    h = tag(sigs[0], "h").lower().split(":")
    # oversigned: From once per instance and once more
    assert h.count("from") == 2 and h.count("subject") == 2, h
    assert tag(sigs[0], "t") is not None
    verified(keys, data, n=2)
    assert wait_log(srv, r"queued id=\S+ .* dkim=example.test/rsa2026,ed2026")


def test_rsa_alone_simple_single_and_ed25519_alone(make_server, sink, keys):
    srv = signing(make_server, sink, keys)
    send(srv, message(frm="x@other.test"), sender="x@other.test")
    send(srv, message(frm="x@simple.test"), sender="x@simple.test")
    send(srv, message(frm="x@single.test"), sender="x@single.test")
    send(srv, message(frm="x@edonly.test"), sender="x@edonly.test")
    assert sink.wait_for(4)
    by = {m["sender"]: m["data"] for m in sink.messages}
    s = sigs_of(by["x@other.test"])
    assert len(s) == 1 and tag(s[0], "c") == "relaxed/relaxed"
    assert int(tag(s[0], "x")) == int(tag(s[0], "t")) + 86400
    assert abs(int(tag(s[0], "t")) - time.time()) < 120
    verified(keys, by["x@other.test"], n=1)
    s = sigs_of(by["x@simple.test"])
    assert tag(s[0], "c") == "simple/simple"
    verified(keys, by["x@simple.test"], n=1)
    s = sigs_of(by["x@single.test"])
    assert len(s) == 1 and tag(s[0], "s") == "rsa2026"
    verified(keys, by["x@single.test"], n=1)
    # Ed25519 alone: OpenDKIM must verify it too
    s = sigs_of(by["x@edonly.test"])
    assert len(s) == 1 and tag(s[0], "a") == "ed25519-sha256"
    verified(keys, by["x@edonly.test"], n=1)


def test_bdat_and_body_edges(make_server, sink, keys):
    """BDAT; trailing blank lines; a last line without CRLF before the
    dot; long folded and repeated headers; both canonicalizations."""
    srv = signing(make_server, sink, keys)
    body = b"Line one.\r\n\r\n\r\n\r\n"
    c = Raw(srv.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<alice@example.test>")[-1][:3] == "250"
    assert c.cmd("RCPT TO:<bob@dest.test>")[-1][:3] == "250"
    msg = message(body="bdat body\r\n")
    c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    assert c.reply()[-1][:3] == "250"
    c.close()
    long_subject = "Subject: " + " ".join("word%d" % i for i in range(60)).replace(
        "word20 ", "word20\r\n\t").replace("word40 ", "word40\r\n  ")
    hdrs = ("From: Alice <alice@rep.test>\r\nTo: bob@dest.test,\r\n carol@dest.test\r\n"
            "%s\r\nKeywords: one\r\nKeywords: two\r\nKeywords:   three   \r\n"
            "Comments: a\r\nComments: b\r\n\r\n" % long_subject).encode()
    send(srv, hdrs + body, sender="alice@rep.test")
    # No CRLF at the end of the last line: the server ends it (the CRLF
    # before the dot is the terminator's).
    c = Raw(srv.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<alice@example.test>")
    c.cmd("RCPT TO:<bob@dest.test>")
    assert c.cmd("DATA")[0][:3] == "354"
    c.send(message(body="no final newline") + b"\r\n.\r\n")
    assert c.reply()[-1][:3] == "250"
    c.close()
    # BDAT may end the body without CRLF, after blanks: signed as it is
    # sent (the client adds the CRLF before the dot), in both
    # canonicalizations, so that both verifiers agree.
    for frm in ("alice@example.test", "x@simple.test"):
        c = Raw(srv.port)
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<%s>" % frm)[-1][:3] == "250"
        assert c.cmd("RCPT TO:<bob@dest.test>")[-1][:3] == "250"
        msg = message(frm=frm, body="last line, blanks, no CRLF \t ")
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        assert c.reply()[-1][:3] == "250"
        c.close()
    assert sink.wait_for(5)
    for m in sink.messages:
        verified(keys, m["data"], n=1 if m["sender"] in ("alice@rep.test", "x@simple.test")
                 else 2)
    rep = [m["data"] for m in sink.messages if b"Keywords" in m["data"]][0]
    h = tag(sigs_of(rep)[0], "h").lower().split(":")
    # repeated fields: each instance signed; unique ones oversigned
    assert h.count("keywords") == 3 and h.count("comments") == 2, h
    assert h.count("to") == 2 and h.count("from") == 2, h


def test_8bit_smtputf8_and_10mb(make_server, sink, keys):
    srv = signing(make_server, sink, keys, max_message_size="20M")
    send(srv, message(body="Gr\u00fc\u00dfe, caf\u00e9 \u2603\r\n"), opts=["BODY=8BITMIME"])
    utf8 = ("From: J\u00f6rg <j\u00f6rg@example.test>\r\nTo: b\u00f8b@dest.test\r\n"
            "Subject: \u00fcber\r\n\r\nK\u00e4se\r\n").encode()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        c.ehlo("client.test")
        c.sendmail("j\u00f6rg@example.test", ["b\u00f8b@dest.test"], utf8,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;-_+=!?\r\n"
    big = line * (10 * 1000 * 1000 // len(line))
    send(srv, message(body=big.decode()))
    assert sink.wait_for(3, timeout=60)
    for m in sink.messages:
        verified(keys, m["data"], n=2)
    assert any(len(m["data"]) > 10 * 1000 * 1000 - 100 for m in sink.messages)


def test_parent_default_and_user_override(make_server, sink, keys):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    d = tempfile.mkdtemp(prefix="ringmta-dkim-pw-")
    pw = os.path.join(d, "passwd")
    with open(pw, "w") as f:
        f.write("carol:%s\n" % crypt.crypt("pw", crypt.mksalt(crypt.METHOD_SHA512)))
    srv = signing(make_server, sink, keys, dkim_default_domain="default.test",
                  auth_passwd_file=pw, auth_plaintext_loopback="yes")
    send(srv, message(frm="x@a.b.parent.test"), sender="x@a.b.parent.test")
    send(srv, message(frm="x@nokey.test"), sender="x@nokey.test")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        c.ehlo("client.test")
        c.login("carol", "pw")
        c.sendmail("carol@user.test", ["bob@dest.test"], message(frm="carol@user.test"))
    assert sink.wait_for(3)
    by = {m["sender"]: m["data"] for m in sink.messages}
    assert tag(sigs_of(by["x@a.b.parent.test"])[0], "d") == "parent.test"
    assert tag(sigs_of(by["x@nokey.test"])[0], "d") == "default.test"
    assert tag(sigs_of(by["carol@user.test"])[0], "d") == "user.test"
    for data in by.values():
        verified(keys, data, n=1)


@pytest.mark.parametrize("action", ["unsigned", "defer", "reject"])
def test_no_key_actions(make_server, sink, keys, action):
    srv = signing(make_server, sink, keys, dkim_no_key_action=action)
    msg = message(frm="x@nokey.test")
    if action == "unsigned":
        send(srv, msg, sender="x@nokey.test")
        data = delivered(sink)
        assert sigs_of(data) == []
        assert wait_log(srv, r"queued id=\S+ .* dkim=none\(no key\)")
        return
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, msg, sender="x@nokey.test")
    want = (451, "4.7.0") if action == "defer" else (550, "5.7.0")
    assert e.value.smtp_code == want[0], e.value
    text = e.value.smtp_error.decode()
    assert text.startswith(want[1]) and "no DKIM key for From domain nokey.test" in text, text
    assert srv.queue_count() == 0


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_unaligned(make_server, sink, keys, action):
    """From nokey.test signed by the default domain, sent by else.test:
    aligned with neither."""
    srv = signing(make_server, sink, keys, dkim_default_domain="default.test",
                  dmarc_unaligned_action=action)
    msg = message(frm="x@nokey.test")
    if action == "accept":
        send(srv, msg, sender="y@else.test")
        verified(keys, delivered(sink), n=1)
        assert wait_log(srv, r"dmarc: unaligned id=\S+ .*header_from=nokey.test")
        return
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, msg, sender="y@else.test")
    assert e.value.smtp_code == 550
    assert ("5.7.1 Error: From domain nokey.test is not aligned with the DKIM domain or the"
            " envelope sender (DMARC)") in e.value.smtp_error.decode()
    # aligned through the envelope sender: accepted
    send(srv, msg, sender="y@mail.nokey.test")
    verified(keys, delivered(sink), n=1)


def test_list_unsubscribe(make_server, sink, keys):
    srv = signing(make_server, sink, keys)
    send(srv, message(frm="news@list.test"), sender="news@list.test", rcpts=["a+b@dest.test"])
    data = delivered(sink)
    head = data.split(b"\r\n\r\n")[0].decode()
    m = re.search(r"List-Unsubscribe: <https://u\.list\.test/u\?r=a%2Bb%40dest\.test&q=([0-9a-f]{16})>,"
                  r"\r\n <mailto:unsub@list\.test\?subject=unsubscribe>", head)
    assert m, head
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
    h = tag(sigs_of(data)[0], "h").lower().split(":")
    assert "list-unsubscribe" in h and "list-unsubscribe-post" in h, h
    verified(keys, data, n=1)
    # two recipients: the URL names {rcpt}, so only the mailto form
    send(srv, message(frm="news@list.test"), sender="news@list.test",
         rcpts=["a@dest.test", "b@dest.test"])
    data = delivered(sink, 2)
    head = data.split(b"\r\n\r\n")[0].decode()
    assert "List-Unsubscribe: <mailto:unsub@list.test?subject=unsubscribe>" in head, head
    assert "\r\nList-Unsubscribe-Post:" not in head and "https://" not in head
    verified(keys, data, n=1)
    assert wait_log(srv, r"dkim: id=\S+ unsubscribe_url names \{rcpt\} and the message has 2"
                    r" recipients: mailto only")
    # the sender's own List-Unsubscribe stays as it is
    send(srv, message(frm="news@list.test", extra="List-Unsubscribe: <mailto:own@list.test>\r\n"),
         sender="news@list.test")
    data = delivered(sink, 3)
    assert len(re.findall(rb"\r\nList-Unsubscribe:", data)) == 1
    assert b"<mailto:own@list.test>" in data and b"unsub@list.test" not in data
    verified(keys, data, n=1)


def test_negative_controls(make_server, sink, keys):
    srv = signing(make_server, sink, keys)
    send(srv, message(frm="x@other.test", body="The body.\r\n"), sender="x@other.test")
    data = delivered(sink)
    verified(keys, data, n=1)
    for bad in (data.replace(b"The body.", b"The body!"),
                data.replace(b"Subject: test", b"Subject: tesT")):
        res = verify_dkimpy(bad, keys.dns.server)
        assert res and not any(ok for ok, _ in res), res
        if opendkim_usable():
            ok, out = verify_opendkim(bad, keys.records)
            assert not ok, out


def test_sighup_good_and_bad_table(make_server, sink, keys):
    path = table_file(keys)
    srv = signing(make_server, sink, keys, table=path)
    send(srv, message())
    assert [tag(s, "s") for s in sigs_of(delivered(sink))] == ["rsa2026", "ed2026"]
    with open(path, "w") as f:
        f.write("[example.test]\nkeys = new2026:%s\n" % keys.rsa2.path)
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: DKIM key table reloaded: 1 domains")
    send(srv, message())
    data = delivered(sink, 2)
    assert [tag(s, "s") for s in sigs_of(data)] == ["new2026"]
    verified(keys, data, n=1)
    with open(path, "w") as f:
        f.write("[example.test]\nkeys = broken\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_log(srv, r"reload: .*dkim.ini:2: keys: 'broken': expected selector:path"
                    r" \(keeping the old DKIM key table\)")
    send(srv, message())
    assert [tag(s, "s") for s in sigs_of(delivered(sink, 3))] == ["new2026"]


def test_refusals_at_start_and_check(make_server, keys):
    bad = table_file(keys, "[example.test]\nkeys = rsa2026:{rsa}\nflavour = mint\n")
    srv = make_server(dkim_key_table=bad)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "dkim.ini:3: unknown key 'flavour' in [example.test]" in str(e.value), str(e.value)
    srv = make_server(dkim_key_table=table_file(keys), dkim_default_domain="missing.test")
    r = srv.cli("--check", check=False)
    assert r.returncode != 0 and "dkim_default_domain missing.test: no [missing.test]" in r.stderr

    d = tempfile.mkdtemp(prefix="ringmta-dkim-perm-")
    key = os.path.join(d, "open.pem")
    with open(keys.rsa.path, "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    os.chmod(key, 0o640)
    path = table_file(keys, "[example.test]\nkeys = s:%s\n" % key)
    srv = make_server(dkim_key_table=path)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert key in str(e.value), str(e.value)
    r = srv.cli("--check", check=False)
    assert r.returncode != 0 and key in r.stderr, r.stderr
    os.chmod(key, 0o600)
    assert srv.cli("--check").returncode == 0
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    r = srv.cli("--check", check=False)
    assert r.returncode != 0 and key in r.stderr, r.stderr


def test_kill9_after_250_message_is_signed(make_server, sink, keys):
    """kill -9 right after the 250: the stored message is signed, and after
    a restart it is delivered signed (never signed again)."""
    import subprocess
    from conftest import BIN
    srv = make_server(dkim_key_table=table_file(keys)).start()     # delivery off
    send(srv, message())
    srv.kill9()
    ids = srv.queue_ids()
    assert len(ids) == 1
    raw = subprocess.run([BIN, "-c", srv.conf, "queue", "show", ids[0]], capture_output=True,
                         timeout=30).stdout.split(b"\n\n", 1)[1]
    verified(keys, raw, n=2)
    with open(srv.conf, "a") as f:
        f.write("delivery = yes\nrelayhost = [127.0.0.1]:%d\n" % sink.port)
    srv.start()
    data = delivered(sink)
    assert data == raw
    verified(keys, data, n=2)


def test_back_pressure_one_thread(make_server, sink, keys):
    """One signing thread with a slow key (RSA-4096) and many clients at
    once: the queue fills, sessions wait for their 250, none is lost."""
    slow = slow_key(keys)
    records = keys.records + [("slow", "example.test", slow.record())]
    table = table_file(keys, "[example.test]\nkeys = slow:%s ed2026:{ed}\n" % slow.path)
    srv = signing(make_server, sink, keys, table=table, dkim_sign_threads=1, workers=2,
                  metrics_listen="127.0.0.1:%d" % __import__("conftest").free_port())
    n_clients, per = 24, 3
    errors = []

    def client(i):
        try:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=60) as c:
                c.ehlo("c%d.test" % i)
                for k in range(per):
                    c.sendmail("alice@example.test", ["bob@dest.test"],
                               message(extra="X-N: %d-%d\r\n" % (i, k)))
        except Exception as e:      # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    total = n_clients * per
    assert sink.wait_for(total, timeout=60)
    tags = set()
    with KeyDns(records) as dns:
        for m in sink.messages:
            res = verify_dkimpy(m["data"], dns.server)
            assert len(res) == 2 and all(ok for ok, _ in res), res
            tags.add(re.search(rb"X-N: (\S+)", m["data"]).group(1))
    assert len(tags) == total
    import urllib.request
    met = urllib.request.urlopen("http://%s/metrics" % srv.settings["metrics_listen"],
                                 timeout=10).read().decode()
    assert "ringmta_dkim_signed_total %d" % total in met, met
    assert "ringmta_dkim_sign_threads 1" in met
    full = int(re.search(r"^ringmta_dkim_sign_full_total (\d+)$", met, re.M).group(1))
    assert full > 0, "the signing queue never filled: back-pressure not exercised"
    import subprocess
    p = subprocess.run(["promtool", "check", "metrics"], input=met.encode(), capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_8bit_to_a_hop_without_8bitmime_bounces(make_server, keys):
    plain = Sink(ehlo_keywords=("SIZE 50000000",))
    try:
        srv = signing(make_server, plain, keys)
        send(srv, message(body="caf\u00e9\r\n"), opts=["BODY=8BITMIME"])
        send(srv, message(body="plain ascii\r\n"))
        # the ASCII one goes through; the 8-bit one bounces to alice
        assert plain.wait_for(2, timeout=30)
        assert wait_log(srv, r"5\.6\.3.*next hop does not support 8BITMIME; ringmta does not"
                        r" convert 8-bit mail, which would break its DKIM signature")
        dsn = [m for m in plain.messages if m["sender"] == ""]
        assert dsn and dsn[0]["rcpts"] == ["alice@example.test"]
        sent = [m for m in plain.messages if m["sender"] != ""]
        assert len(sent) == 1 and b"plain ascii" in sent[0]["data"]
        assert all(b"BODY=8BITMIME" not in b"".join(r) for r in plain.reads)
    finally:
        plain.stop()


def bodies_at_once(srv, n, body):
    """n sessions brought to DATA, then each sends its body and the dot
    (X-N: i), without reading the final reply. Returns the connections."""
    socks = []
    for i in range(n):
        c = Raw(srv.port)
        c.cmd("EHLO many.test")
        c.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\n")
        c.reply(), c.reply(), c.reply()
        socks.append(c)
    for i, c in enumerate(socks):
        c.send(message(extra="X-N: %d\r\n" % i, body=body) + b".\r\n")
    return socks


def test_clients_gone_while_signing(make_server, sink, keys):
    """Clients that close right after the dot, while one signing thread is
    busy: every message is either queued (and signed) or dropped with a
    log line, nothing leaks, and the server goes on."""
    srv = signing(make_server, sink, keys, dkim_sign_threads=1)
    body = ("x" * 998 + "\r\n") * 500
    n = 20
    socks = bodies_at_once(srv, n, body)
    for c in socks:
        c.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        log = srv.read_log()
        queued = len(re.findall(r"info: queued id=\S+ client=\S+ from=<alice", log))
        gone = len(re.findall(r"info: not queued id=\S+ .*: client gone while signing", log))
        done = queued + gone
        if done >= n:
            break
        time.sleep(0.1)
    assert done == n, log[-3000:]
    send(srv, message(extra="X-N: after\r\n"))
    assert wait_log(srv, r"queued id=\S+ client=127.0.0.1 from=<alice@example.test> .*dkim=")
    assert sink.wait_for(queued + 1)


def test_sigterm_with_jobs_waiting(make_server, keys):
    """SIGTERM while sessions wait for one slow signing thread: the daemon
    exits cleanly, and every message that got its 250 is stored signed."""
    import subprocess
    from conftest import BIN
    table = table_file(keys, "[example.test]\nkeys = slow:%s\n" % slow_key(keys).path)
    srv = make_server(dkim_key_table=table, dkim_sign_threads=1).start()
    socks = bodies_at_once(srv, 16, "Hello.\r\n")
    assert wait_log(srv, r"info: queued id=")
    srv.proc.send_signal(signal.SIGTERM)
    got = 0
    for c in socks:
        try:
            if c.reply()[-1].startswith("250"):
                got += 1
        except (EOFError, OSError):
            pass
        c.close()
    assert srv.proc.wait(60) == 0, srv.read_log()[-3000:]
    srv.log.close()
    ids = srv.queue_ids()
    assert len(ids) >= got > 0
    for qid in ids:
        raw = subprocess.run([BIN, "-c", srv.conf, "queue", "show", qid], capture_output=True,
                             timeout=30).stdout.split(b"\n\n", 1)[1]
        assert len(sigs_of(raw)) == 1
