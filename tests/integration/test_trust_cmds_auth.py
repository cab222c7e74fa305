"""AUTH: password checks (crypt_r, tens of milliseconds for yescrypt) run
off the worker's ring, so one client's AUTH attempts never stall the other
sessions of its worker; an over-long SASL line split across receives ends
the exchange without leaking it (run under the ASan build with
detect_leaks=1: the process must exit 0 at SIGTERM); the auth-failed log
line names the user that was tried."""
import base64
import crypt
import ctypes
import os
import re
import socket
import tempfile

import pytest

from conftest import Raw


def _yescrypt(pw, cost):
    lc = ctypes.CDLL("libcrypt.so.1")
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    setting = lc.crypt_gensalt(b"$y$", cost, None, 0)
    assert setting, "libcrypt has no yescrypt"
    return crypt.crypt(pw, setting.decode())


@pytest.fixture(scope="module")
def passwd():
    d = tempfile.mkdtemp(prefix="ringmta-auth-")
    path = os.path.join(d, "passwd")
    with open(path, "w") as f:
        # Cost 7: about 60 ms a check, so a burst of them takes seconds.
        f.write("alice:%s\n" % _yescrypt("wonderland", 7))
    yield path
    os.unlink(path)
    os.rmdir(d)


def _plain(user, pw):
    return base64.b64encode(b"\0" + user + b"\0" + pw).decode()


def _separate_receive(c, wait=0.3):
    """Pause so that what was sent arrives as a receive of its own (the
    server answers nothing meanwhile: the peek only waits)."""
    c.sock.settimeout(wait)
    try:
        c.sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        pass
    c.sock.settimeout(10)


def _auth_server(make_server, passwd, **kw):
    s = dict(auth_passwd_file=passwd, auth_plaintext_loopback="yes",
             auth_max_failures=1000, max_errors=1000)
    s.update(kw)
    return make_server(**s).start()


def test_auth_does_not_stall_other_sessions(make_server, passwd):
    srv = _auth_server(make_server, passwd, workers=1)
    n = 40
    a = Raw(srv.port)
    assert "AUTH PLAIN" in " ".join(a.cmd("EHLO a.test"))
    # One session pipelines many failing attempts (about 60 ms each).
    a.send(("AUTH PLAIN %s\r\n" % _plain(b"alice", b"wrong")) * n)
    # Meanwhile another session on the same (only) worker does a whole
    # transaction. With the checks on the worker's thread it could not even
    # be greeted before the whole burst was answered.
    b = Raw(srv.port)
    assert b.cmd("EHLO b.test")[-1].startswith("250 ")
    assert b.cmd("MAIL FROM:<b@example.org>")[0].startswith("250")
    assert b.cmd("RCPT TO:<c@example.net>")[0].startswith("250")
    assert b.cmd("DATA")[0].startswith("354")
    assert b.cmd("Subject: b\r\n\r\nhi\r\n.")[0].startswith("250 2.0.0 Ok: queued")
    assert b.cmd("QUIT")[0].startswith("221")
    # The burst is not finished yet: fewer than n answers have come.
    a.sock.setblocking(False)
    try:
        while True:
            chunk = a.sock.recv(65536)
            if not chunk:
                break
            a.buf += chunk
    except BlockingIOError:
        pass
    a.sock.setblocking(True)
    a.sock.settimeout(60)
    done = a.buf.count(b"\r\n")
    assert done < n, "all %d AUTH answers came before the other session's transaction" % n
    # And every attempt is answered, in order, with the session still usable.
    assert [a.code() for _ in range(n)] == ["535"] * n
    assert a.cmd("AUTH PLAIN " + _plain(b"alice", b"wonderland"))[0].startswith("235")
    assert a.cmd("QUIT")[0].startswith("221")


def test_auth_client_gone_while_checking(make_server, passwd):
    """A session that closes while its check runs is not touched when the
    result arrives (ASan build: no use after free, no leak)."""
    srv = _auth_server(make_server, passwd)
    for _ in range(5):
        c = Raw(srv.port)
        c.cmd("EHLO x.test")
        c.send(("AUTH PLAIN %s\r\n" % _plain(b"alice", b"wrong")) * 3)
        c.close()
    c = Raw(srv.port)
    c.cmd("EHLO x.test")
    assert c.cmd("AUTH PLAIN " + _plain(b"alice", b"wonderland"))[0].startswith("235")
    c.close()
    rc = srv.stop()
    log = srv.read_log()
    assert rc == 0 and "Sanitizer" not in log, log


def test_split_overlong_sasl_line_does_not_leak(make_server, passwd):
    srv = _auth_server(make_server, passwd)
    c = Raw(srv.port)
    c.cmd("EHLO x.test")
    assert c.cmd("AUTH PLAIN")[0].startswith("334")
    # Longer than the 12288-octet SASL line limit, in several receives.
    for _ in range(4):
        c.send("A" * 4000)
        _separate_receive(c)
    c.send("\r\n")
    r = c.reply()
    assert r[0].startswith("500 5.5.2"), r
    # The exchange ended: a new AUTH starts afresh and works.
    assert c.cmd("AUTH PLAIN")[0].startswith("334")
    assert c.cmd(_plain(b"alice", b"wonderland"))[0].startswith("235")
    assert c.cmd("QUIT")[0].startswith("221")
    c.close()
    rc = srv.stop()
    log = srv.read_log()
    assert rc == 0 and "LeakSanitizer" not in log, log


def test_overlong_sasl_line_in_one_receive_ends_the_exchange(make_server, passwd):
    srv = _auth_server(make_server, passwd)
    c = Raw(srv.port)
    c.cmd("EHLO x.test")
    assert c.cmd("AUTH PLAIN")[0].startswith("334")
    assert c.cmd("A" * 13000)[0].startswith("500 5.5.2")
    # Back to commands: NOOP is a command, not a SASL response.
    assert c.cmd("NOOP")[0].startswith("250")
    c.close()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_failed_log_names_user(make_server, passwd, mech):
    srv = _auth_server(make_server, passwd)
    c = Raw(srv.port)
    c.cmd("EHLO x.test")
    if mech == "PLAIN":
        r = c.cmd("AUTH PLAIN " + _plain(b"alice", b"wrong"))
    else:
        assert c.cmd("AUTH LOGIN")[0].startswith("334")
        assert c.cmd(base64.b64encode(b"alice").decode())[0].startswith("334")
        r = c.cmd(base64.b64encode(b"wrong").decode())
    assert r[0].startswith("535"), r
    # A name with control characters is logged escaped, on one line.
    r = c.cmd("AUTH PLAIN " + _plain(b"ev\nil\x01", b"x"))
    assert r[0].startswith("535"), r
    c.close()
    log = srv.read_log()
    assert "auth-failed client=127.0.0.1 user=alice" in log, log
    assert re.search(r"auth-failed client=127\.0\.0\.1 user=ev\\x0ail\\x01$", log, re.M), log


def test_long_auth_line_split_inside_the_verb(make_server, passwd):
    # "AU" in one receive, "TH PLAIN <600+ octets>" in the next: still a
    # SASL line with its 12288-octet limit, not a 512-octet command.
    srv = _auth_server(make_server, passwd)
    c = Raw(srv.port)
    c.cmd("EHLO x.test")
    c.send("AU")
    _separate_receive(c)
    line = "TH PLAIN %s" % _plain(b"alice", b"p" * 600)
    assert len(line) > 512
    r = c.cmd(line)
    assert r[0].startswith("535"), r
    assert c.cmd("QUIT")[0].startswith("221")
    c.close()
