"""STARTTLS pipelined right after the end of a message: the command waits
in the session's queued input while the message commits; when the commit
returns, the STARTTLS must still start TLS (not be dropped with the
ClientHello), and plaintext pipelined after STARTTLS is still thrown away
(CVE-2011-0411)."""
import socket
import ssl

import pytest

from pki import Pki


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    p.server_crt, p.server_key = p.leaf("mx.test.invalid",
                                        ["DNS:mx.test.invalid", "IP:127.0.0.1"])
    return p


def _read_reply(f):
    lines = [f.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(f.readline())
    return lines


@pytest.mark.parametrize("after", [b"", b"RSET\r\n"])
def test_starttls_pipelined_after_final_dot(make_server, pki, after):
    srv = make_server(tls_cert_file=pki.server_crt, tls_key_file=pki.server_key).start()
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO c.test\r\n")
    assert b"STARTTLS" in b"".join(_read_reply(f))
    # One packet: the whole transaction, its end and STARTTLS (and, in the
    # second case, a plaintext command that must never run).
    raw.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: t\r\n\r\nbody\r\n.\r\nSTARTTLS\r\n" + after)
    assert f.readline().startswith(b"250")   # MAIL
    assert f.readline().startswith(b"250")   # RCPT
    assert f.readline().startswith(b"354")
    assert f.readline().startswith(b"250 2.0.0 Ok: queued")
    assert f.readline().startswith(b"220 2.0.0")
    ctx = ssl.create_default_context(cafile=pki.ca)
    tls = ctx.wrap_socket(raw, server_hostname="mx.test.invalid")   # raises on a hang
    tls.sendall(b"NOOP\r\n")
    first = tls.recv(1000)
    # Only NOOP's answer: the pipelined RSET was not executed.
    assert first == b"250 2.0.0 Ok\r\n", first
    tls.sendall(b"QUIT\r\n")
    assert tls.recv(1000).startswith(b"221")
    tls.close()
    assert srv.queue_count() == 1
