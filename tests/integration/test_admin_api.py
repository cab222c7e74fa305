"""The admin API (core/admin) with curl against the running daemon: routing
and errors, bearer tokens, the token file's permissions, non-loopback
listening without tokens, body limits; then the queue endpoints."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, free_port


def curl(srv, path, method="GET", body=None, token=None, headers=(), raw=False):
    """(status, parsed JSON or raw text) of one request made with curl."""
    url = "http://127.0.0.1:%d%s" % (srv.admin_port, path)
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", "20"]
    if token is not None:
        cmd += ["-H", "Authorization: Bearer " + token]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    cmd.append(url)
    r = subprocess.run(cmd, input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out, code = r.stdout.rsplit(b"\n", 1)
    if raw:
        return int(code), out
    return int(code), json.loads(out) if out else None


def token_file(srv, tokens, mode=0o600):
    path = os.path.join(srv.tmpdir, "admin.tokens")
    with open(path, "w") as f:
        f.write("# admin tokens\n\n" + "".join(t + "\n" for t in tokens))
    os.chmod(path, mode)
    return path


def test_status_and_routing_errors(server):
    code, j = curl(server, "/api/v1/status")
    assert code == 200 and j["version"] and j["queue"] == {"ready": 0, "scheduled": 0,
                                                          "oldest_age_s": 0}
    code, j = curl(server, "/api/v1/nope")
    assert code == 404 and j["error"] == "not found" and j["detail"] == "/api/v1/nope"
    code, j = curl(server, "/api/v1/statusx")
    assert code == 404, "a prefix matches at a '/' only"
    code, j = curl(server, "/api/v1/status", method="DELETE")
    assert code == 405 and j["error"] == "method not allowed"


def test_bearer_tokens(make_server):
    srv = make_server()
    srv.settings["admin_token_file"] = token_file(srv, ["s3cret-one", "other-token"])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % srv.settings["admin_token_file"])
    srv.start()
    code, j = curl(srv, "/api/v1/status")
    assert code == 401 and j["error"] == "unauthorized" and "Bearer" in j["detail"]
    for bad in ("s3cret-on", "s3cret-one2", "", "S3CRET-ONE"):
        code, j = curl(srv, "/api/v1/status", token=bad)
        assert code == 401, bad
    code, j = curl(srv, "/api/v1/status", headers=["Authorization: Basic czNjcmV0LW9uZQ=="])
    assert code == 401
    # Unknown paths are 401 too: nothing is told before authentication.
    code, j = curl(srv, "/api/v1/nope")
    assert code == 401
    for good in ("s3cret-one", "other-token"):
        code, j = curl(srv, "/api/v1/status", token=good)
        assert code == 200 and "version" in j


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_token_file_readable_by_others_refused(make_server, mode):
    srv = make_server()
    path = token_file(srv, ["tok"], mode)
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=10)
    assert "admin_token_file" in str(e.value) and "chmod 600" in str(e.value)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_token_file" in r.stderr, r.stderr


def test_token_file_missing_or_empty_refused(make_server):
    srv = make_server()
    path = token_file(srv, [])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "no token" in r.stderr, r.stderr
    os.unlink(path)
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_token_file" in r.stderr, r.stderr


@pytest.mark.parametrize("addr", ["0.0.0.0:%d", "[::]:%d", "192.0.2.1:%d"])
def test_non_loopback_without_token_refused(make_server, addr):
    srv = make_server(admin_listen=addr % free_port())
    r = subprocess.run([BIN, "-c", srv.conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "admin_listen" in r.stderr and "admin_token_file" in r.stderr
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=10)
    assert "admin_token_file" in str(e.value)


def test_non_loopback_with_token_starts(make_server):
    srv = make_server(admin_listen="0.0.0.0:%d" % free_port())
    path = token_file(srv, ["tok"])
    with open(srv.conf, "a") as f:
        f.write("admin_token_file = %s\n" % path)
    srv.admin_port = int(srv.settings["admin_listen"].rsplit(":", 1)[1])
    srv.start()
    assert curl(srv, "/api/v1/status")[0] == 401
    assert curl(srv, "/api/v1/status", token="tok")[0] == 200


def test_admin_off(make_server):
    srv = make_server(admin_listen="").start()
    r = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/api/v1/status" % srv.admin_port],
                       capture_output=True, timeout=30)
    assert r.returncode == 7, "nothing listens"
