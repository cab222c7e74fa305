"""ringmta domain check: DKIM, SPF, DMARC, MX, PTR/FCrDNS and alignment of
a domain through dns_servers, against dnsmasq zones on loopback. One good
domain (exit 0, every line pass) and broken ones, each reported with what
to fix. Source addresses are 127.0.0.x given with --source.

The DKIM checks need the key table (core/dkim/dkim_table.c, branch
dkim-daemon); without it those tests are skipped and the others assert
their own lines rather than the exit status."""
import base64
import os
import re
import subprocess
import tempfile

import pytest

from conftest import BIN
from dnsfix import Dnsmasq

SRC = "127.0.0.2"       # PTR mx.good.test, which resolves back to it
SRC_BADPTR = "127.0.0.4"  # PTR bad.ptr.test, which resolves to 127.0.0.5


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                          check=True).stdout


def make_key(d, name, alg):
    path = os.path.join(d, name + ".pem")
    if alg == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "ed25519", "-out", path)
    os.chmod(path, 0o600)
    der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
    if alg == "ed25519":
        der = der[-32:]         # the raw key (RFC 8463), not the SPKI
    return path, base64.b64encode(der).decode()


def txt(name, text):
    """A --txt-record; a text longer than 255 bytes as several strings,
    comma-separated (quotes would be literal on dnsmasq's command line;
    the texts here hold no commas)."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)] or [""]
    return "--txt-record=%s,%s" % (name, ",".join(parts))


def dkim_supported():
    r = subprocess.run([BIN, "-o", "dkim_key_table=/nonexistent", "--check"],
                       capture_output=True, text=True)
    return "unknown key" not in r.stderr


DKIM = dkim_supported()
need_dkim = pytest.mark.skipif(not DKIM, reason="no DKIM key table in this build (dkim-daemon)")


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="ringmta-dc-")
    keys = {}
    for n, alg in (("good", "rsa"), ("other", "rsa"), ("ed", "ed25519")):
        keys[n] = make_key(d, n, alg)
    records = ["--local=/in-addr.arpa/", "--local=/ip6.arpa/",
               "--host-record=mx6.good.test,::1",
               "--ptr-record=%s,mx6.good.test" % ".".join(reversed("0" * 31 + "1")) + ".ip6.arpa",
               "--host-record=mx.good.test,127.0.0.2",
               "--ptr-record=2.0.0.127.in-addr.arpa,mx.good.test",
               "--ptr-record=4.0.0.127.in-addr.arpa,bad.ptr.test",
               "--host-record=bad.ptr.test,127.0.0.5"]
    table = []
    domains = {
        # domain: (dkim record text or None, spf or None, dmarc or None, mx, key)
        "good.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                      "v=DMARC1; p=reject; rua=mailto:dmarc@good.test", "mx", "good"),
        "wrongkey.test": ("v=DKIM1; k=rsa; p=" + keys["other"][1], "v=spf1 ip4:127.0.0.2 -all",
                          "v=DMARC1; p=reject; rua=mailto:d@wrongkey.test", "mx", "good"),
        "nodkim.test": (None, "v=spf1 ip4:127.0.0.2 -all",
                        "v=DMARC1; p=reject; rua=mailto:d@nodkim.test", "mx", "good"),
        "revoked.test": ("v=DKIM1; k=rsa; p=", "v=spf1 ip4:127.0.0.2 -all",
                         "v=DMARC1; p=reject; rua=mailto:d@revoked.test", "mx", "good"),
        "edgood.test": ("v=DKIM1; k=ed25519; p=" + keys["ed"][1], "v=spf1 ip4:127.0.0.2 -all",
                        "v=DMARC1; p=quarantine; rua=mailto:d@edgood.test", "mx", "ed"),
        "six.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip6:::1 -all",
                     "v=DMARC1; p=reject; rua=mailto:d@six.test", "mx", "good"),
        "kmismatch.test": ("v=DKIM1; k=rsa; p=" + keys["ed"][1], "v=spf1 ip4:127.0.0.2 -all",
                           "v=DMARC1; p=reject; rua=mailto:d@kmismatch.test", "mx", "ed"),
        "spfsrc.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:192.0.2.1 ~all",
                        "v=DMARC1; p=reject; rua=mailto:d@spfsrc.test", "mx", "good"),
        "nospf.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], None,
                       "v=DMARC1; p=reject; rua=mailto:d@nospf.test", "mx", "good"),
        "nodmarc.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                         None, "mx", "good"),
        "pnone.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                       "v=DMARC1; p=none", "mx", "good"),
        "ptrbad.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1],
                        "v=spf1 ip4:127.0.0.2 ip4:127.0.0.4 -all",
                        "v=DMARC1; p=reject; rua=mailto:d@ptrbad.test", "mx", "good"),
        "nullmx.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                        "v=DMARC1; p=reject; rua=mailto:d@nullmx.test", "null", "good"),
        "baddmarc.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                          "v=DMARC1; p=bogus", "mx", "good"),
        "vlast.test": ("v=DKIM1; k=rsa; p=" + keys["good"][1], "v=spf1 ip4:127.0.0.2 -all",
                       "p=reject; v=DMARC1", "mx", "good"),
        "nokey.test": (None, "v=spf1 ip4:127.0.0.2 -all",
                       "v=DMARC1; p=reject; rua=mailto:d@nokey.test", "mx", None),
    }
    for dom, (dk, spf, dmarc, mx, key) in domains.items():
        if dk is not None:
            records.append(txt("sel1._domainkey." + dom, dk))
        if spf is not None:
            records.append(txt(dom, spf))
        if dmarc is not None:
            records.append(txt("_dmarc." + dom, dmarc))
        records.append("--mx-host=%s,mx.good.test,10" % dom if mx == "mx"
                       else "--mx-host=%s,,0" % dom)
        if key is not None:
            table.append("[%s]\nkeys = sel1:%s\n" % (dom, keys[key][0]))
    # A subdomain with no records of its own but the MX: DMARC falls back
    # to the organizational domain's record (good.test, not in the PSL).
    records.append("--mx-host=sub.good.test,mx.good.test,10")
    # A subdomain without its own key: the table signs it as good.test.
    records += ["--mx-host=sub2.good.test,mx.good.test,10",
                txt("sub2.good.test", "v=spf1 ip4:127.0.0.2 -all")]
    dns = Dnsmasq(records)
    conf = os.path.join(d, "ringmta.conf")
    with open(os.path.join(d, "keys.ini"), "w") as f:
        f.write("\n".join(table))
    with open(conf, "w") as f:
        f.write("dns_servers = %s\nhostname = mx.good.test\nqueue_dir = %s/q\n"
                % (dns.server, d))
        if DKIM:
            f.write("dkim_key_table = %s/keys.ini\n" % d)
    yield conf
    dns.stop()
    subprocess.run(["rm", "-rf", d])


def check(conf, domain, *sources):
    args = [BIN, "-c", conf, "domain", "check", domain]
    for s in sources or (SRC,):
        args += ["--source", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    lines = [l for l in r.stdout.splitlines() if re.match(r"^(pass|warn|fail) ", l)]
    return r, lines


def line(lines, verdict, check_name, text=""):
    return [l for l in lines if l.split()[0] == verdict and l.split()[1] == check_name
            and text in l]


@need_dkim
def test_good_domain_passes(world):
    r, lines = check(world, "good.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert lines and all(l.startswith("pass ") for l in lines), r.stdout
    for c in ("dkim", "spf", "dmarc", "mx", "ptr", "align"):
        assert line(lines, "pass", c), (c, r.stdout)
    assert line(lines, "pass", "align", "d=good.test, the From domain"), r.stdout


def test_good_domain_without_dkim(world):
    """Everything but DKIM passes (the DKIM line needs the key table)."""
    r, lines = check(world, "good.test")
    for c in ("spf", "dmarc", "mx", "ptr", "align"):
        assert line(lines, "pass", c), (c, r.stdout)
    assert not [l for l in lines if l.split()[1] != "dkim" and not l.startswith("pass")], r.stdout


@need_dkim
def test_ed25519_key_passes(world):
    r, lines = check(world, "edgood.test")
    assert r.returncode == 0, r.stdout
    assert line(lines, "pass", "dkim", "k=ed25519 key matches"), r.stdout
    assert line(lines, "pass", "dmarc", "p=quarantine"), r.stdout


def test_ipv6_source(world):
    r, lines = check(world, "six.test", "::1")
    assert line(lines, "pass", "spf", "::1: pass for postmaster@six.test"), r.stdout
    assert line(lines, "pass", "ptr", "::1 -> mx6.good.test -> ::1"), r.stdout
    r, lines = check(world, "six.test", "::1", SRC)
    assert line(lines, "fail", "spf", "add ip4:127.0.0.2 to the SPF record of six.test"), r.stdout


@need_dkim
def test_parent_domain_key_aligns_relaxed(world):
    r, lines = check(world, "sub2.good.test")
    assert r.returncode == 0, r.stdout
    assert line(lines, "pass", "dkim", "sel1._domainkey.good.test: k=rsa key matches"), r.stdout
    assert line(lines, "pass", "align", "with d=good.test: relaxed alignment holds"), r.stdout


@need_dkim
def test_default_domain_key_does_not_align(world):
    r = subprocess.run([BIN, "-c", world, "-o", "dkim_default_domain=good.test", "domain",
                        "check", "nokey.test", "--source", SRC], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "fail align  DKIM signs mail From nokey.test with d=good.test, which does not" \
        " align" in r.stdout, r.stdout


@need_dkim
def test_wrong_dkim_key(world):
    r, lines = check(world, "wrongkey.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dkim", "p= is not the public key of"), r.stdout


@need_dkim
def test_no_dkim_record(world):
    r, lines = check(world, "nodkim.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dkim", "sel1._domainkey.nodkim.test: no DKIM record; publish"), \
        r.stdout


@need_dkim
def test_revoked_dkim_key(world):
    r, lines = check(world, "revoked.test")
    assert r.returncode == 1 and line(lines, "fail", "dkim", "revoked"), r.stdout


@need_dkim
def test_dkim_k_mismatch(world):
    r, lines = check(world, "kmismatch.test")
    assert r.returncode == 1 and line(lines, "fail", "dkim", "k=rsa but"), r.stdout


def test_no_key_configured(world):
    r, lines = check(world, "nokey.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dkim", "no key in dkim_key_table"), r.stdout


def test_spf_without_the_source(world):
    r, lines = check(world, "spfsrc.test")
    assert r.returncode == 1
    assert line(lines, "fail", "spf", "softfail"), r.stdout
    assert line(lines, "fail", "spf", "add ip4:127.0.0.2 to the SPF record"), r.stdout


def test_no_spf(world):
    r, lines = check(world, "nospf.test")
    assert r.returncode == 1
    assert line(lines, "fail", "spf", 'no SPF record for nospf.test; publish TXT'
                ' "v=spf1 ip4:127.0.0.2 -all"'), r.stdout


def test_no_dmarc(world):
    r, lines = check(world, "nodmarc.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dmarc", "no DMARC record at _dmarc.nodmarc.test"), r.stdout


def test_dmarc_invalid_policy(world):
    r, lines = check(world, "baddmarc.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dmarc", "invalid record"), r.stdout


def test_dmarc_version_not_first_is_no_record(world):
    r, lines = check(world, "vlast.test")
    assert r.returncode == 1
    assert line(lines, "fail", "dmarc", "must start with v=DMARC1"), r.stdout


def test_dmarc_p_none_and_no_rua_warn(world):
    r, lines = check(world, "pnone.test")
    assert line(lines, "warn", "dmarc", "p=none"), r.stdout
    assert line(lines, "warn", "dmarc", "no rua="), r.stdout
    assert not line(lines, "fail", "dmarc"), r.stdout
    if DKIM:
        assert r.returncode == 0, r.stdout     # warnings do not fail


def test_dmarc_organizational_fallback(world):
    r, lines = check(world, "sub.good.test")
    assert line(lines, "pass", "dmarc", "_dmarc.good.test (the organizational domain's)"), \
        r.stdout


def test_ptr_mismatch(world):
    r, lines = check(world, "ptrbad.test", SRC, SRC_BADPTR)
    assert r.returncode == 1
    assert line(lines, "pass", "ptr", "127.0.0.2 -> mx.good.test -> 127.0.0.2"), r.stdout
    assert line(lines, "fail", "ptr", "127.0.0.4 -> bad.ptr.test, but bad.ptr.test does not"
                " resolve back"), r.stdout
    assert line(lines, "pass", "spf", "127.0.0.4"), r.stdout


def test_no_ptr(world):
    r, lines = check(world, "good.test", "127.0.0.9")
    assert r.returncode == 1
    assert line(lines, "fail", "ptr", "127.0.0.9: no PTR record"), r.stdout
    assert line(lines, "fail", "spf", "add ip4:127.0.0.9"), r.stdout


def test_null_mx(world):
    r, lines = check(world, "nullmx.test")
    assert r.returncode == 1
    assert line(lines, "fail", "mx", "null MX"), r.stdout


def test_usage_errors(world):
    for args in (["domain"], ["domain", "check"], ["domain", "frob", "x.test"],
                 ["domain", "check", "good.test", "--source", "not-an-ip"],
                 ["domain", "check", "good.test", "--bogus"]):
        r = subprocess.run([BIN, "-c", world] + args, capture_output=True, text=True)
        assert r.returncode == 2, (args, r.stdout, r.stderr)


def test_source_defaults_to_smtp_bind_address(world):
    r = subprocess.run([BIN, "-c", world, "-o", "smtp_bind_address=127.0.0.2", "domain",
                        "check", "good.test"], capture_output=True, text=True, timeout=60)
    assert "pass ptr    127.0.0.2 -> mx.good.test" in r.stdout, r.stdout


def test_config_after_the_verb(world):
    """-c and -o may follow the domain check's arguments."""
    r = subprocess.run([BIN, "domain", "check", "good.test", "--source", SRC, "-c", world,
                        "-o", "hostname=other.test"], capture_output=True, text=True, timeout=60)
    assert "pass spf    127.0.0.2: pass for postmaster@good.test" in r.stdout, r.stdout + r.stderr
