"""The command line: --check names the bad line or key, -o overrides any
setting, the example configuration is valid, --version."""
import os
import subprocess
import tempfile

from conftest import BIN, SRCDIR


def run(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=30)


def test_example_config_is_valid():
    r = run("-c", os.path.join(SRCDIR, "docs", "ringmta.conf.example"), "--check")
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_check_names_bad_line_and_key():
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("# comment\nworkers = 2\nlisten_on = 127.0.0.1:25\n")
        path = f.name
    try:
        r = run("-c", path, "--check")
        assert r.returncode != 0
        assert "%s:3:" % path in r.stderr and "listen_on" in r.stderr, r.stderr
    finally:
        os.unlink(path)


def test_check_names_bad_value():
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("max_recipients = 10\n")
        path = f.name
    try:
        r = run("-c", path, "--check")
        assert r.returncode != 0
        assert ":1:" in r.stderr and "max_recipients" in r.stderr, r.stderr
    finally:
        os.unlink(path)


def test_override_applies_and_is_checked():
    r = run("-o", "max_recipients=500", "-o", "hostname=o.example", "--check", "-v")
    assert r.returncode == 0, r.stderr
    assert "max_recipients = 500" in r.stdout and "hostname = o.example" in r.stdout
    r = run("-o", "no_such_key=1", "--check")
    assert r.returncode != 0 and "no_such_key" in r.stderr


def test_version_names_tls_library():
    r = run("--version")
    assert r.returncode == 0 and "BoringSSL" in r.stdout


def test_unknown_argument():
    r = run("--frobnicate")
    assert r.returncode == 2 and "unknown argument" in r.stderr


def test_links_boringssl_and_jemalloc_not_openssl():
    out = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    assert "/android/libssl.so" in out and "/android/libcrypto.so" in out, out
    assert "libssl.so.3" not in out and "libcrypto.so.3" not in out, out
    if "asan" not in BIN:
        assert "libjemalloc" in out, out
