"""core/dkim's signatures checked by two independent verifiers (dkimpy and
OpenDKIM, see dkimverify.py): messages signed by tests/tools/dkim-sign
with RSA-2048 and Ed25519, relaxed/relaxed and simple/simple, over bodies
and header sections with the awkward cases, then negative controls that
both verifiers must refuse."""
import os
import subprocess

import pytest

from conftest import BIN
from dkimverify import KeyDns, make_key, opendkim_usable, verify_dkimpy, verify_opendkim

DKIM_SIGN = os.path.join(os.path.dirname(os.path.dirname(BIN)), "tests", "tools", "dkim-sign")
DOMAIN = "example.test"

pytestmark = pytest.mark.skipif(not os.access(DKIM_SIGN, os.X_OK), reason="no dkim-sign built")

HEAD = (b"From: Alice <alice@example.test>\r\n"
        b"Date: Fri, 04 Dec 2026 18:00:00 +0000\r\n"
        b"Message-ID: <1@example.test>\r\n")


def msg(extra_headers=b"", body=b"Hello.\r\n", subject=b"Subject: test\r\n"):
    return HEAD + extra_headers + b"To: bob@example.org\r\n" + subject + b"\r\n" + body


RECEIVED = (b"Received: from a by b; Fri, 4 Dec 2026 10:00:00 +0000\r\n"
            b"Received: from c by d; Fri, 4 Dec 2026 10:00:01 +0000\r\n")


MESSAGES = {
    "plain": msg(),
    "trailing-blank-lines": msg(body=b"a  b \t\r\n\r\n \r\n\r\n\r\n"),
    "no-final-crlf": msg(body=b"line one\r\nno end"),
    "empty-body": msg(body=b""),
    "long-folded-headers": msg(
        b"X-Long: " + b"x" * 900 + b"\r\n"
        b"References: " + b"\r\n ".join(b"<%d@example.test>" % i for i in range(40)) + b"\r\n",
        subject=b"Subject: a subject that goes on\r\n\tand on over\r\n   three lines  \r\n"),
    "repeated-received": RECEIVED + msg(b"Keywords: one\r\nKeywords: two\r\n"),
    "8bit-body": msg(body=bytes(range(0x80, 0x100)) + b"\r\n caf\xc3\xa9 \t \r\n"),
    "utf8-headers": msg(b"Reply-To: J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbccher.example>\r\n",
                        body=b"\xe2\x9c\x89\r\n",
                        subject=b"Subject: h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x89\r\n"),
}
# Signed with these header names instead of the default list.
SIGN_HEADERS = {"repeated-received": "From:To:Subject:Date:Received:Keywords"}
# Two To fields: RFC 5322 allows one, and OpenDKIM refuses such a message
# outright ("Syntax error", whatever its signatures), so dkimpy alone
# judges it; bottom-up instance selection is checked by both verifiers
# on repeated Received and Keywords fields above.
TWO_TO = RECEIVED + HEAD + b"To: one@example.org\r\nTo: two@example.org\r\nSubject: twice\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("dkimkeys"))
    k = {"rsa": make_key(d, "rsa", 2048), "ed25519": make_key(d, "ed25519")}
    records = [(alg, DOMAIN, key.record()) for alg, key in k.items()]
    with KeyDns(records) as dns:
        yield k, records, dns


def sign(key, selector, message, canon, *extra):
    p = subprocess.run([DKIM_SIGN, "-k", key.path, "-d", DOMAIN, "-s", selector,
                        "-c", canon] + list(extra), input=message, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def check(signed, records, dns, want, opendkim=True):
    res = verify_dkimpy(signed, dns.server)
    assert len(res) == 1
    assert res[0][0] == want, res[0][1]
    if opendkim and opendkim_usable():
        ok, out = verify_opendkim(signed, records)
        assert ok == want, out


@pytest.mark.parametrize("canon", ["relaxed", "simple"])
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_verifies(keys, name, alg, canon):
    k, records, dns = keys
    extra = ["-h", SIGN_HEADERS[name]] if name in SIGN_HEADERS else []
    check(sign(k[alg], alg, MESSAGES[name], canon, *extra), records, dns, True)


@pytest.mark.parametrize("canon", ["relaxed", "simple"])
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_two_to_dkimpy(keys, alg, canon):
    k, records, dns = keys
    signed = sign(k[alg], alg, TWO_TO, canon, "-h", "From:To:Subject:Received")
    check(signed, records, dns, True, opendkim=False)
    check(signed.replace(b"To: one@", b"To: One@"), records, dns, False, opendkim=False)


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_large_body(keys, alg):
    """10 MB, both canonicalizations, signed once each."""
    k, records, dns = keys
    line = b"0123456789 abcdefghij\t klmnopqrstuvwxyz  ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 \r\n"
    body = line * (10 * 1024 * 1024 // len(line) + 1)
    m = msg(body=body)
    for canon in ("relaxed", "simple"):
        check(sign(k[alg], alg, m, canon), records, dns, True)


def test_opendkim_available():
    """OpenDKIM is one of the two verifiers: say so when it cannot run."""
    if not opendkim_usable():
        pytest.skip("opendkim-testmsg needs root, unshare and opendkim-tools")


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed", "simple"])
def test_tampered_fails(keys, alg, canon):
    k, records, dns = keys
    m = RECEIVED + msg(subject=b"Subject: twice\r\n", body=b"body\r\n")
    signed = sign(k[alg], alg, m, canon, "-o", "From")
    check(signed, records, dns, True)
    # One body byte.
    check(signed.replace(b"\r\n\r\nbody", b"\r\n\r\nbodY"), records, dns, False)
    # One signed header.
    check(signed.replace(b"Subject: twice", b"Subject: twicE"), records, dns, False)
    # A second From, added after signing: From was oversigned.
    check(signed.replace(b"\r\n\r\nbody", b"\r\nFrom: Mallory <m@evil.example>\r\n\r\nbody"),
          records, dns, False)
    check(signed.replace(b"Received: from a", b"From: Mallory <m@evil.example>\r\nReceived: from a"),
          records, dns, False)


def test_expiry_and_two_signatures(keys):
    """x= is accepted by both verifiers; an RSA and an Ed25519 signature on
    one message (RFC 8463 recommends both) each verify."""
    k, records, dns = keys
    m = MESSAGES["plain"]
    check(sign(k["rsa"], "rsa", m, "relaxed", "-x", "3600"), records, dns, True)
    both = sign(k["rsa"], "rsa", sign(k["ed25519"], "ed25519", m, "relaxed"), "simple")
    assert [ok for ok, _ in verify_dkimpy(both, dns.server)] == [True, True]
    if opendkim_usable():
        ok, out = verify_opendkim(both, records)
        assert ok, out
    expired = sign(k["ed25519"], "ed25519", m, "relaxed", "-t", "1000000000", "-x", "60")
    res = verify_dkimpy(expired, dns.server)
    assert not res[0][0], res


def test_random_messages_dkimpy(keys):
    """150 messages made from a fixed seed: folded fields of odd bytes,
    repeated names, bodies of WSP runs, blank lines, lone CRs and 8-bit
    bytes, with or without a final CRLF; every canonicalization pair.
    dkimpy alone judges them: OpenDKIM refuses repeated To/Cc/Subject and
    differs on an unterminated last line that ends in whitespace (see
    core/dkim/dkim_canon.c)."""
    import random
    k, records, dns = keys
    rng = random.Random(6376)

    def text(n):
        return bytes(rng.choice(b"ab \t:;<>@\"()\\,.x\xc3\xa9") for _ in range(n))

    def value():
        parts = [text(rng.randint(0, 12)) for _ in range(rng.randint(1, 3))]
        return b"\r\n".join([parts[0]] + [rng.choice([b" ", b"\t", b"  \t"]) + p for p in parts[1:]])

    failed = []
    for i in range(150):
        fields = [b"From: a@example.test", b"Date: x"]
        for _ in range(rng.randint(0, 6)):
            fields.append(rng.choice([b"To", b"Subject", b"X-A", b"Received", b"Cc", b"x-a"])
                          + rng.choice([b":", b":\t"]) + value())
        rng.shuffle(fields)
        body = b"".join(rng.choice([b"a", b" ", b"\t", b"\r\n", b"\r\n", b"b c", b"\xff",
                                    b"  \r\n", b"\r", b" \r"]) for _ in range(rng.randint(0, 40)))
        m = b"\r\n".join(fields) + b"\r\n\r\n" + body
        alg = rng.choice(["rsa", "ed25519"])
        canon = rng.choice(["relaxed", "simple", "relaxed/simple", "simple/relaxed"])
        signed = sign(k[alg], alg, m, canon, "-h", "From:To:Subject:X-A:Received:Cc:Date", "-o", "Subject")
        res = verify_dkimpy(signed, dns.server)
        if not res[0][0]:
            failed.append((i, alg, canon, res[0][1], m))
    assert not failed, failed[:3]
