"""SPF at MAIL FROM on smtp listeners (spf_inbound), for clients outside
relay_networks and not authenticated, with dnsmasq answering and clients
bound to 127.0.0.x source addresses (loopback takes all of 127/8), so that
both pass and fail happen. relay_networks is 127.0.0.1/32 here: 127.0.0.2
and 127.0.0.3 are strangers, 127.0.0.1 is trusted."""
import smtplib
import socket

import pytest

from conftest import wait_log
from dnsfix import Dnsmasq

RECORDS = ["--txt-record=pass.test,v=spf1 ip4:127.0.0.2 -all",
           "--txt-record=helo.test,v=spf1 ip4:127.0.0.2 -all",
           "--txt-record=soft.test,v=spf1 ~all"]


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq(RECORDS)
    yield d
    d.stop()


class Client:
    """A raw SMTP client bound to a source address before connect."""

    def __init__(self, port, source):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(15)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.reply()

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError(self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def cmd(self, text):
        self.sock.sendall((text + "\r\n").encode())
        return self.reply()[-1]

    def close(self):
        self.sock.close()


def start(make_server, dns, mode):
    return make_server(spf_inbound=mode, dns_servers=dns.server,
                       relay_networks="127.0.0.1/32").start()


def test_refuse_pass_and_fail(make_server, dns):
    srv = start(make_server, dns, "refuse")
    c = Client(srv.port, "127.0.0.2")
    assert c.cmd("EHLO client.test").startswith("250")
    assert c.cmd("MAIL FROM:<a@pass.test>").startswith("250")
    # A stranger still may not relay: SPF is not authorization.
    assert c.cmd("RCPT TO:<x@example.com>").startswith("554 5.7.1")
    c.close()
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO client.test")
    r = c.cmd("MAIL FROM:<a@pass.test>")
    assert r.startswith("550 5.7.23 SPF validation failed:"), r
    assert "127.0.0.3 is not allowed to send mail for pass.test" in r
    # The transaction did not start.
    assert c.cmd("RCPT TO:<x@example.com>").startswith("503")
    # softfail is not refused.
    assert c.cmd("MAIL FROM:<a@soft.test>").startswith("250")
    c.close()
    assert wait_log(srv, r"spf client=127\.0\.0\.3 helo=client\.test from=<a@pass\.test> result=fail")


def test_refuse_temperror(make_server, dns):
    srv = start(make_server, dns, "refuse")
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO client.test")
    # dnsmasq refuses names outside its zones: a temporary DNS failure.
    r = c.cmd("MAIL FROM:<a@elsewhere.example>")
    assert r.startswith("451 4.7.24 SPF temporary error"), r
    c.close()


def test_null_sender_checks_helo(make_server, dns):
    srv = start(make_server, dns, "refuse")
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO helo.test")
    assert c.cmd("MAIL FROM:<>").startswith("550 5.7.23")
    c.close()
    c = Client(srv.port, "127.0.0.2")
    c.cmd("EHLO helo.test")
    assert c.cmd("MAIL FROM:<>").startswith("250")
    c.close()


def test_header_mode_never_refuses(make_server, dns):
    srv = start(make_server, dns, "header")
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@pass.test>").startswith("250")
    assert c.cmd("RSET").startswith("250")
    assert c.cmd("MAIL FROM:<a@elsewhere.example>").startswith("250")
    c.close()
    assert wait_log(srv, r"spf client=127\.0\.0\.3 .*from=<a@pass\.test> result=fail")
    assert wait_log(srv, r"spf client=127\.0\.0\.3 .*result=temperror")


def test_pipelined_commands_wait_for_the_check(make_server, dns):
    srv = start(make_server, dns, "refuse")
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO client.test")
    c.sock.sendall(b"MAIL FROM:<a@pass.test>\r\nRCPT TO:<x@example.com>\r\nNOOP\r\n")
    assert c.reply()[-1].startswith("550 5.7.23")
    assert c.reply()[-1].startswith("503")
    assert c.reply()[-1].startswith("250")
    c.close()


def test_off_for_relay_networks(make_server, dns):
    srv = start(make_server, dns, "refuse")
    # 127.0.0.1 is in relay_networks: no check, the mail is accepted and
    # stored without an Authentication-Results field.
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10, source_address=("127.0.0.1", 0)) as s:
        s.sendmail("a@pass.test", ["x@example.com"], b"Subject: t\r\n\r\nhi\r\n")
    assert "spf client=127.0.0.1" not in srv.read_log()
    qid = srv.queue_ids()[0]
    assert "Authentication-Results" not in srv.queue_show(qid)


def test_off_by_default(make_server, dns):
    srv = make_server(dns_servers=dns.server, relay_networks="127.0.0.1/32").start()
    c = Client(srv.port, "127.0.0.3")
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@pass.test>").startswith("250")
    c.close()
    assert "spf client=" not in srv.read_log()
