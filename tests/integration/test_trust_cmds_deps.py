"""tests/deps.sh installs with --no-install-recommends, so it must name
what the tests rely on that Debian only recommends: swaks's TLS
(Net::SSLeay, IO::Socket::SSL) above all, or swaks --tls fails with "TLS
not available: requires Net::SSLeay" on a fresh Debian 12 machine."""
import os
import re
import subprocess

from conftest import SRCDIR


def _test_pkgs():
    text = open(os.path.join(SRCDIR, "tests", "deps.sh")).read()
    m = re.search(r'test_pkgs="([^"]*)"', text)
    assert m, "tests/deps.sh has no test_pkgs list"
    return set(m.group(1).split())


def test_deps_names_recommends_the_tests_use():
    pkgs = _test_pkgs()
    for p in ("swaks", "libnet-ssleay-perl", "libio-socket-ssl-perl", "libio-socket-inet6-perl",
              "testssl.sh", "bind9-dnsutils", "bsdextrautils", "prometheus", "dnsmasq-base",
              "python3-aiosmtpd", "postfix", "openssl", "mount"):
        assert p in pkgs, "tests/deps.sh does not install %s" % p


def test_swaks_has_tls():
    r = subprocess.run(["swaks", "--support"], capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert "=== TLS supported" in out, out
