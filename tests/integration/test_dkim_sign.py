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

[user carol]
domain = user.test
"""


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


def test_rsa_alone_simple_and_single(make_server, sink, keys):
    srv = signing(make_server, sink, keys)
    send(srv, message(frm="x@other.test"), sender="x@other.test")
    send(srv, message(frm="x@simple.test"), sender="x@simple.test")
    send(srv, message(frm="x@single.test"), sender="x@single.test")
    assert sink.wait_for(3)
    by = {m["sender"]: m["data"] for m in sink.messages}
    s = sigs_of(by["x@other.test"])
    assert len(s) == 1 and tag(s[0], "c") == "relaxed/relaxed"
    verified(keys, by["x@other.test"], n=1)
    s = sigs_of(by["x@simple.test"])
    assert tag(s[0], "c") == "simple/simple"
    verified(keys, by["x@simple.test"], n=1)
    s = sigs_of(by["x@single.test"])
    assert len(s) == 1 and tag(s[0], "s") == "rsa2026"
    verified(keys, by["x@single.test"], n=1)
