"""HTTP injection, POST /api/v1/inject (core/inject): requests sent with
curl; accepted mail relayed to a capturing sink (sink.py, the next hop)
and parsed with Python's email package; raw messages pass through
byte-exact; per-recipient substitution; DKIM verified by dkimpy; the
refusals (bad JSON, missing fields, bad address, oversize, no or wrong
credentials) answer the right 4xx and queue nothing; 202 ids exist in
the queue."""
import base64
import email
import email.policy
import json
import os
import re
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import (PostfixRig, free_port, make_server, postfix_usable,  # noqa: F401
                      relay_server, wait_log)
from dkimverify import KeyDns, make_key, verify_dkimpy
from sink import Sink


def post(srv, body, user=None, password=None, raw=None):
    """(status, parsed JSON answer) of a curl POST of body (an object, or
    raw bytes)."""
    d = tempfile.mkdtemp(prefix="ringmta-inject-")
    path = os.path.join(d, "req.json")
    with open(path, "wb") as f:
        f.write(raw if raw is not None else json.dumps(body).encode())
    cmd = ["curl", "-s", "-o", os.path.join(d, "out"), "-w", "%{http_code}",
           "-H", "Content-Type: application/json", "--data-binary", "@" + path,
           "http://127.0.0.1:%d/api/v1/inject" % srv.http_port]
    if user is not None:
        cmd[1:1] = ["-u", "%s:%s" % (user, password)]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    status = int(r.stdout.decode() or 0)
    with open(os.path.join(d, "out"), "rb") as f:
        out = f.read()
    subprocess.run(["rm", "-rf", d])
    try:
        return status, json.loads(out)
    except ValueError:
        return status, out


def injecting(make_server, sink=None, **kw):
    port = free_port()
    kw.setdefault("http_listen", "127.0.0.1:%d" % port)
    if sink is not None:
        srv = relay_server(make_server, sink, **kw)
    else:
        srv = make_server(**kw).start()
    srv.http_port = port
    return srv


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


ATTACHMENT = bytes(range(256)) * 40 + b"\x00end"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def builder_request(rcpts, subst=None):
    return {
        "envelope_sender": "alice@example.test",
        "recipients": rcpts,
        "substitutions": subst or {},
        "content": {
            "from": {"email": "alice@example.test", "name": "Alice Ä"},
            "reply_to": "replies@example.test",
            "subject": "Hello {{ name }}, ünïcode",
            "text_body": "Dear {{name}},\nthe report is attached.\n" + "x" * 1200 + "\n",
            "html_body": "<p>Dear {{ name }}, <img src=\"cid:logo\"></p>\n",
            "headers": {"X-Campaign": "c-{{ name }}"},
            "attachments": [
                {"data": base64.b64encode(ATTACHMENT).decode(), "file_name": "report.bin",
                 "content_type": "application/octet-stream"},
                {"data": base64.b64encode(IMAGE).decode(), "content_type": "image/png",
                 "content_id": "logo", "file_name": "logo.png"},
            ],
        },
    }


def test_builder_multipart_with_attachments_reaches_next_hop(make_server, sink):
    srv = injecting(make_server, sink)
    st, ans = post(srv, builder_request([{"email": "bob@dest.test",
                                          "substitutions": {"name": "Bob"}}]))
    assert st == 202, ans
    assert ans["accepted"] == 1 and ans["rejected"] == [] and len(ans["queue_ids"]) == 1
    assert sink.wait_for(1)
    m = sink.messages[0]
    assert m["sender"] == "alice@example.test" and m["rcpts"] == ["bob@dest.test"]
    data = m["data"]
    # CRLF everywhere, no line over 998 octets
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(l) for l in data.split(b"\r\n")) <= 998
    assert data.startswith(b"Received: from [127.0.0.1] ([127.0.0.1])\r\n\tby mx.test.invalid"
                           b" (ringmta) with HTTP id " + ans["queue_ids"][0].encode())
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert str(msg["Subject"]) == "Hello Bob, ünïcode"
    assert msg["From"].addresses[0].display_name == "Alice Ä"
    assert msg["From"].addresses[0].addr_spec == "alice@example.test"
    assert str(msg["To"]) == "bob@dest.test"
    assert str(msg["Reply-To"]) == "replies@example.test"
    assert str(msg["X-Campaign"]) == "c-Bob"
    assert msg["Message-ID"] == "<%s@mx.test.invalid>" % ans["queue_ids"][0]
    assert msg["Date"] is not None and msg["MIME-Version"] == "1.0"
    related, att = msg.get_payload()
    assert related.get_content_type() == "multipart/related"
    alt, img = related.get_payload()
    assert alt.get_content_type() == "multipart/alternative"
    text, html = alt.get_payload()
    assert text.get_content().replace("\r\n", "\n") == "Dear Bob,\nthe report is attached.\n" + "x" * 1200 + "\n"
    assert text["Content-Transfer-Encoding"] == "quoted-printable"   # a long line
    assert html.get_content().startswith("<p>Dear Bob, <img")
    assert img["Content-ID"] == "<logo>" and img.get_content() == IMAGE
    assert att.get_filename() == "report.bin" and att.get_content() == ATTACHMENT
    # base64 in lines of 76
    enc = att.get_payload(decode=False).split("\n")
    assert all(len(l.rstrip("\r")) <= 76 for l in enc)
    assert wait_log(srv, r"queued id=%s client=127.0.0.1 from=<alice@example.test> nrcpt=1 .*via=http"
                    % ans["queue_ids"][0])


RAW = (b"From: Alice <alice@example.test>\r\nTo: bob@dest.test\r\nSubject: raw\r\n"
       b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <raw-1@example.test>\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n\r\n"
       b"H\xc3\xa9llo {{ name }} stays as written.\r\n.a line with a dot\r\n")


def test_raw_message_passes_through_unchanged(make_server, sink):
    srv = injecting(make_server, sink)
    st, ans = post(srv, {"envelope_sender": "alice@example.test",
                         "recipients": [{"email": "bob@dest.test"}, "carol@dest.test"],
                         "content": RAW.decode()})
    assert st == 202, ans
    assert len(ans["queue_ids"]) == 1 and ans["accepted"] == 2
    assert sink.wait_for(1)
    data = sink.messages[0]["data"]
    assert sorted(sink.messages[0]["rcpts"]) == ["bob@dest.test", "carol@dest.test"]
    head, rest = data.split(b"\r\n", 1)
    assert head == b"Received: from [127.0.0.1] ([127.0.0.1])"
    # the trace field (folded lines) and then the message byte for byte
    trace = re.match(rb"(\t[^\r]*\r\n)+", rest)
    assert trace is not None and rest[trace.end():] == RAW, data


def test_per_recipient_substitution_gives_each_its_own_message(make_server, sink):
    srv = injecting(make_server, sink)
    st, ans = post(srv, {
        "envelope_sender": "news@example.test",
        "recipients": [{"email": "ann@dest.test", "substitutions": {"name": "Ann"}},
                       {"email": "ben@dest.test", "substitutions": {"name": "Ben"}},
                       {"email": "cy@dest.test", "substitutions": {"name": "Çy"}}],
        "substitutions": {"shop": "The Shop", "name": "nobody"},
        "content": {"from": "news@example.test", "subject": "{{ shop }} for {{ name }}",
                    "text_body": "Hi {{ name }}, from {{ shop }}.{{ missing }}\n"}})
    assert st == 202, ans
    assert ans["accepted"] == 3 and len(set(ans["queue_ids"])) == 3
    assert sink.wait_for(3)
    got = {}
    for m in sink.messages:
        assert len(m["rcpts"]) == 1
        msg = email.message_from_bytes(m["data"], policy=email.policy.default)
        got[m["rcpts"][0]] = (str(msg["Subject"]), msg.get_content().replace("\r\n", "\n"),
                              str(msg["To"]))
    assert got == {
        "ann@dest.test": ("The Shop for Ann", "Hi Ann, from The Shop.\n", "ann@dest.test"),
        "ben@dest.test": ("The Shop for Ben", "Hi Ben, from The Shop.\n", "ben@dest.test"),
        "cy@dest.test": ("The Shop for Çy", "Hi Çy, from The Shop.\n", "cy@dest.test"),
    }


def test_accepted_ids_are_in_the_queue(make_server):
    srv = injecting(make_server)
    st, ans = post(srv, {"envelope_sender": "",
                         "recipients": [{"email": "a@dest.test", "substitutions": {"n": "1"}},
                                        {"email": "b@dest.test", "substitutions": {"n": "2"}}],
                         "content": "Subject: n={{n}}\n\nbody {{ n }}\n"})
    assert st == 202, ans
    assert sorted(srv.queue_ids()) == sorted(ans["queue_ids"])
    shown = srv.queue_show(ans["queue_ids"][1])
    assert "Subject: n=2\r\n" in shown and "body 2\r\n" in shown
    assert "sender: <>" in shown


BASIC = {"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"}],
         "content": "Subject: x\r\n\r\nhi\r\n"}


@pytest.mark.parametrize("body,raw,status,words", [
    (None, b"{not json", 400, "bad JSON"),
    (None, b"[1, 2]", 400, "JSON object"),
    ({"recipients": [{"email": "b@dest.test"}], "content": "x"}, None, 400, "envelope_sender"),
    ({"envelope_sender": "a@example.test", "content": "x"}, None, 400, "recipients"),
    ({"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"}]}, None, 400,
     "content"),
    ({"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"},
                                                          {"email": "no at sign"}],
      "content": "x"}, None, 400, "recipients[1].email"),
    ({"envelope_sender": "a@@example.test", "recipients": [{"email": "b@dest.test"}],
      "content": "x"}, None, 400, "envelope_sender"),
    ({"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"}],
      "content": {"subject": "no from"}}, None, 400, "content.from"),
    ({"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"}],
      "content": {"from": "a@example.test", "attachments": [{"data": "!!"}]}}, None, 400,
     "not base64"),
    ({"envelope_sender": "a@example.test", "recipients": [{"email": "b@dest.test"}],
      "content": "Subject: x\r\n\r\n" + "y" * 3000 + "\r\n"}, None, 400, "line"),
])
def test_bad_requests_answer_400_and_queue_nothing(make_server, body, raw, status, words):
    srv = injecting(make_server)
    st, ans = post(srv, body, raw=raw)
    assert st == status, ans
    assert words in ans["error"], ans
    assert srv.queue_count() == 0


def test_oversize_request_and_message(make_server):
    srv = injecting(make_server, http_max_request_size="4096", max_message_size="2048")
    big = dict(BASIC, content="Subject: x\r\n\r\n" + ("y" * 70 + "\r\n") * 100)
    st, ans = post(srv, big)
    assert st == 413 and "request too large" in ans["error"], ans
    # a request under the limit whose message is over max_message_size
    mid = dict(BASIC, content="Subject: x\r\n\r\n" + ("y" * 70 + "\r\n") * 40)
    st, ans = post(srv, mid)
    assert st == 413 and "max_message_size" in ans["error"], ans
    assert srv.queue_count() == 0
    st, ans = post(srv, BASIC)
    assert st == 202, ans


def passwd_file(user, password):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    d = tempfile.mkdtemp(prefix="ringmta-inject-pw-")
    pw = os.path.join(d, "passwd")
    with open(pw, "w") as f:
        f.write("%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))))
    return pw


def test_authentication(make_server, sink):
    # loopback is not a relay network here: only an account may inject
    srv = injecting(make_server, sink, relay_networks="192.0.2.0/24",
                    auth_passwd_file=passwd_file("carol", "s3cret"))
    st, ans = post(srv, BASIC)
    assert st == 401 and "authentication required" in ans["error"], ans
    st, ans = post(srv, BASIC, user="carol", password="wrong")
    assert st == 401 and "bad credentials" in ans["error"], ans
    st, ans = post(srv, BASIC, user="nobody", password="s3cret")
    assert st == 401, ans
    assert srv.queue_count() == 0
    st, ans = post(srv, BASIC, user="carol", password="s3cret")
    assert st == 202, ans
    assert sink.wait_for(1)
    assert b"(Authenticated sender: carol)" in sink.messages[0]["data"]
    assert b"with HTTPA id " in sink.messages[0]["data"]


def test_suppressed_recipient_is_rejected_in_the_answer(make_server):
    srv = injecting(make_server)
    srv.cli("suppress", "add", "gone@dest.test")
    st, ans = post(srv, dict(BASIC, recipients=["gone@dest.test", "here@dest.test"]))
    assert st == 202, ans
    assert ans["accepted"] == 1 and ans["rejected"][0]["email"] == "gone@dest.test"
    assert "suppressed" in ans["rejected"][0]["reason"]
    assert "gone@dest.test" not in srv.queue_show(ans["queue_ids"][0])
    st, ans = post(srv, dict(BASIC, recipients=["gone@dest.test"]))
    assert st == 422 and ans["queue_ids"] == [], ans
    assert srv.queue_count() == 1


def test_wrong_path_and_method(make_server):
    srv = injecting(make_server)
    url = "http://127.0.0.1:%d" % srv.http_port
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/api/v1/inject", timeout=10)
    assert e.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url + "/nope", data=b"{}"), timeout=10)
    assert e.value.code == 404


def test_metrics_count_injection(make_server):
    mport = free_port()
    srv = injecting(make_server, metrics_listen="127.0.0.1:%d" % mport)
    assert post(srv, BASIC)[0] == 202
    assert post(srv, None, raw=b"{")[0] == 400
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    assert "ringmta_inject_messages_total 1\n" in text
    assert 'ringmta_inject_refused_total{reason="bad_request"} 1\n' in text
    assert "ringmta_inject_requests_total 2\n" in text


@pytest.fixture(scope="module")
def keys():
    class K:
        pass
    k = K()
    k.dir = tempfile.mkdtemp(prefix="ringmta-inject-keys-")
    k.rsa = make_key(k.dir, "rsa", name="rsa.pem")
    k.dns = KeyDns([("rsa2026", "example.test", k.rsa.record())])
    yield k
    k.dns.stop()
    subprocess.run(["rm", "-rf", k.dir])


def test_dkim_signature_verifies(make_server, sink, keys):
    table = os.path.join(keys.dir, "dkim.ini")
    with open(table, "w") as f:
        f.write("[example.test]\nkeys = rsa2026:%s\n" % keys.rsa.path)
    srv = injecting(make_server, sink, dkim_key_table=table)
    req = builder_request([{"email": "bob@dest.test", "substitutions": {"name": "Bob"}}])
    st, ans = post(srv, req)
    assert st == 202, ans
    st, ans = post(srv, {"envelope_sender": "alice@example.test", "recipients": ["bob@dest.test"],
                         "content": RAW.decode()})
    assert st == 202, ans
    assert sink.wait_for(2)
    for m in sink.messages:
        assert m["data"].startswith(b"DKIM-Signature:"), m["data"][:200]
        res = verify_dkimpy(m["data"], keys.dns.server)
        assert res and all(ok for ok, _ in res), res
    assert wait_log(srv, r"queued id=\S+ .*via=http dkim=example.test/rsa2026")



@pytest.mark.skipif(not postfix_usable(), reason="needs root, postfix and ../shared/rig")
def test_multipart_reaches_postfix_byte_exact(make_server):
    """The issue's check: injected over HTTP with curl, relayed through a
    real Postfix (the rig's) to the sink, the message after Postfix's own
    Received field is byte for byte what ringmta queued, and it parses."""
    first = injecting(make_server)
    st, ans = post(first, builder_request([{"email": "bob@dest.test",
                                            "substitutions": {"name": "Bob"}}]))
    assert st == 202, ans
    stored = first.queue_show(ans["queue_ids"][0]).encode()
    stored = stored.split(b"\n\n", 1)[1]      # past the record's summary
    assert first.stop() == 0
    sink = Sink()
    try:
        with PostfixRig(sink.port) as pf:
            make_server(queue_dir=first.queue_dir, delivery="yes",
                        relayhost="[127.0.0.1]:%d" % pf.port, retry_min="1h",
                        retry_max="2h").start()
            assert sink.wait_for(1, timeout=60)
        data = sink.messages[0]["data"]
        assert data.startswith(b"Received: ") and b"(Postfix)" in data.split(b"\r\n\r\n")[0]
        at = data.index(b"Received: from [127.0.0.1]")
        assert data[at:] == stored
        msg = email.message_from_bytes(data, policy=email.policy.default)
        att = msg.get_payload()[1]
        assert att.get_filename() == "report.bin" and att.get_content() == ATTACHMENT
    finally:
        sink.stop()
