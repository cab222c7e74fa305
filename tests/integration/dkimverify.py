"""DKIM checks for every test of the project: keys, a DNS server with the
key records, and two independent verifiers.

Keys:
    key = make_key(tmpdir, "rsa")        # or "ed25519"; bits=2048 for RSA
    key.path       the PEM private key (mode 600), for ringmta or dkim-sign
    key.p          the p= value (base64 of the RSA SubjectPublicKeyInfo DER,
                   or of the 32-byte Ed25519 public key)
    key.record()   the TXT value "v=DKIM1; k=rsa; p=..."

DNS: records are (selector, domain, txt) triples, served as TXT at
SELECTOR._domainkey.DOMAIN; a value longer than 255 bytes is split into
several character-strings, as DNS requires. Use a domain under .test (or
.invalid): dnsmasq answers only from these records, with no upstream.
    with KeyDns([("sel", "example.test", key.record())]) as dns:
        dns.server                           "127.0.0.1:PORT"
        verify_dkimpy(msg, dns.server)       [(ok, detail), ...] per signature

Verifiers (msg: the signed message, bytes with CRLF line ends):
  - verify_dkimpy(msg, dns_server): python3-dkim (dkimpy) verifies every
    DKIM-Signature field in turn; returns one (ok, detail) per signature,
    top first ([] when there is none; one failure when dkimpy cannot
    parse the header section, e.g. a space before a colon). Handles rsa-sha256 and
    ed25519-sha256.
  - verify_opendkim(msg, records): Debian's OpenDKIM (opendkim-testmsg in
    verify mode). Returns (ok, output); ok means exit status 0, i.e. the
    message verified (OpenDKIM judges the message, not each signature).
    opendkim-testmsg resolves through libresolv on port 53, so it runs
    inside a fresh network and mount namespace (`unshare --net --mount`)
    with loopback up, a resolv.conf saying "nameserver 127.0.0.1"
    bind-mounted over /etc/resolv.conf and its own dnsmasq on
    127.0.0.1:53. Needs root (the tests run as root); opendkim_usable()
    says whether it can run here.
    Debian 12's opendkim-testmsg (2.11.0~beta2) does verify
    ed25519-sha256: tests/integration/test_dkim_lib.py checks both
    algorithms with both verifiers. It checks headers strictly: a message
    without exactly one Date and one From field, or with more than one
    To, Cc, Bcc, Subject, Reply-To, Message-ID, In-Reply-To or References
    field, fails (exit 70, "Syntax error") whatever its signatures, so
    test messages need a Date, and repeated-instance tests use Received
    or other repeatable fields (or dkimpy alone).

Packages (tests/deps.sh): python3-dkim, python3-nacl, python3-dnspython,
opendkim-tools, dnsmasq-base, iproute2, openssl.
"""
import base64
import functools
import os
import shutil
import subprocess
import tempfile

import dkim
import dns.resolver

from dnsfix import Dnsmasq

OPENDKIM_TESTMSG = "/usr/sbin/opendkim-testmsg"
DNSMASQ = "/usr/sbin/dnsmasq"


class DkimKey:
    def __init__(self, path, kind, p):
        self.path = path
        self.kind = kind        # "rsa" or "ed25519"
        self.p = p

    def record(self):
        return "v=DKIM1; k=%s; p=%s" % (self.kind, self.p)


def make_key(directory, kind="rsa", bits=2048, name=None):
    """A new private key in directory (mode 600) and its p= value."""
    path = os.path.join(directory, name or ("dkim-%s-%d.pem" % (kind, len(os.listdir(directory)))))
    if kind == "rsa":
        args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits]
    elif kind == "ed25519":
        args = ["-algorithm", "ed25519"]
    else:
        raise ValueError(kind)
    subprocess.run(["openssl", "genpkey"] + args + ["-out", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    if kind == "ed25519":
        der = der[-32:]     # the raw key ends the SubjectPublicKeyInfo
    return DkimKey(path, kind, base64.b64encode(der).decode())


def txt_record_option(selector, domain, txt, quote=False):
    """dnsmasq's --txt-record for one key record, split into strings of
    at most 255 bytes (each comma-separated item is one string). Quoted
    for a configuration file; on the command line quotes would stay in the
    data, and a key record has no comma."""
    parts = [txt[i:i + 255] for i in range(0, len(txt), 255)] or [""]
    q = '"' if quote else ""
    return "--txt-record=%s._domainkey.%s,%s" % (
        selector, domain, ",".join(q + s + q for s in parts))


class KeyDns(Dnsmasq):
    """A dnsmasq on a free loopback port serving the key records."""

    def __init__(self, records, extra=()):
        super().__init__([txt_record_option(*r) for r in records] + list(extra))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def dnsfunc_for(dns_server):
    """A dkimpy dnsfunc asking only dns_server ("127.0.0.1:PORT")."""
    host, port = dns_server.rsplit(":", 1)
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [host]
    res.port = int(port)
    res.lifetime = 5

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            ans = res.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        for rr in ans:
            return b"".join(rr.strings)
        return None
    return dnsfunc


def count_signatures(msg):
    headers, _ = dkim.rfc822_parse(msg)
    return sum(1 for name, _ in headers if name.lower() == b"dkim-signature")


def verify_dkimpy(msg, dns_server):
    """dkimpy's verdict on each DKIM-Signature of msg, top first:
    a list of (ok, detail)."""
    func = dnsfunc_for(dns_server)
    results = []
    try:
        n = count_signatures(msg)
    except dkim.DKIMException as e:     # dkimpy cannot parse the header
        return [(False, "%s: %s" % (type(e).__name__, e))]
    for idx in range(n):
        d = dkim.DKIM(msg)
        try:
            ok = bool(d.verify(idx=idx, dnsfunc=func))
            detail = "ok" if ok else "bad signature"
        except dkim.DKIMException as e:
            ok, detail = False, "%s: %s" % (type(e).__name__, e)
        results.append((ok, detail))
    return results


@functools.lru_cache(maxsize=None)
def opendkim_usable():
    """Whether verify_opendkim can run here: root, the tools, and a new
    network and mount namespace (tried once)."""
    if not (os.geteuid() == 0 and os.access(OPENDKIM_TESTMSG, os.X_OK)
            and shutil.which("unshare") is not None and shutil.which("ip") is not None
            and os.access(DNSMASQ, os.X_OK)):
        return False
    p = subprocess.run(["unshare", "--net", "--mount", "ip", "link", "set", "lo", "up"],
                       capture_output=True)
    return p.returncode == 0


_NS_SCRIPT = r"""
set -e
ip link set lo up
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
"$DNSMASQ" --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
    --no-hosts --pid-file="$WORK/dnsmasq.pid" --user=root \
    --local-ttl=600 --conf-file="$WORK/records.conf"
set +e
"$TESTMSG" -C < "$WORK/msg.eml"
rc=$?
kill "$(cat "$WORK/dnsmasq.pid")" 2>/dev/null
exit $rc
"""


def verify_opendkim(msg, records, timeout=60):
    """opendkim-testmsg's verdict on msg, with records ((selector,
    domain, txt) triples) served on port 53 in a private namespace:
    (ok, output)."""
    work = tempfile.mkdtemp(prefix="dkimv-")
    try:
        with open(os.path.join(work, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
        with open(os.path.join(work, "records.conf"), "w") as f:
            for r in records:
                f.write(txt_record_option(*r, quote=True)[2:] + "\n")
        with open(os.path.join(work, "msg.eml"), "wb") as f:
            f.write(msg)
        env = dict(os.environ, WORK=work, DNSMASQ=DNSMASQ, TESTMSG=OPENDKIM_TESTMSG)
        p = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", _NS_SCRIPT],
                           env=env, capture_output=True, timeout=timeout)
        out = (p.stdout + p.stderr).decode(errors="replace")
        return p.returncode == 0, "exit %d: %s" % (p.returncode, out.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)
