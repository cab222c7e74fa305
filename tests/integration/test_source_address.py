"""Outbound source addresses: smtp_bind_address binds delivery sockets to
one local IPv4 address (loopback takes all of 127/8, so 127.0.0.2 is
local), checked at start and by --check."""
import smtplib
import subprocess

import pytest

from conftest import BIN
from sink import Sink


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def send(srv, body=b"Subject: src\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("from@example.org", ["to@example.com"], body)


def test_delivery_binds_smtp_bind_address(make_server, sink):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                      smtp_bind_address="127.0.0.2").start()
    send(srv)
    assert sink.wait_for(1)
    assert sink.messages[0]["peer"] == "127.0.0.2"


def test_default_is_the_kernels_choice(make_server, sink):
    srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port).start()
    send(srv)
    assert sink.wait_for(1)
    assert sink.messages[0]["peer"] == "127.0.0.1"


def test_check_refuses_a_foreign_address(make_server):
    srv = make_server(smtp_bind_address="192.0.2.77")
    r = srv.cli("--check", check=False)
    assert r.returncode == 2
    assert "smtp_bind_address 192.0.2.77" in r.stderr and "not an address of this host" in r.stderr
    # And start-up refuses it too.
    p = subprocess.run([BIN, "-c", srv.conf], capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"not an address of this host" in p.stdout + p.stderr


def test_check_refuses_the_wrong_family(make_server):
    r = make_server(smtp_bind_address="::1").cli("--check", check=False)
    assert r.returncode == 2 and "not a numeric IPv4 address" in r.stderr
    r = make_server(smtp_bind_address6="127.0.0.1").cli("--check", check=False)
    assert r.returncode == 2 and "not a numeric IPv6 address" in r.stderr


def test_check_accepts_local_addresses(make_server):
    r = make_server(smtp_bind_address="127.0.0.2", smtp_bind_address6="::1").cli("--check")
    assert r.returncode == 0
