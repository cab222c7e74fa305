"""A site whose every connection attempt fails slowly (the receiver takes
the connection and never greets): after the first failed round it is
suspended, then exactly one probe connection is made. While the probe is
under way, the site's other mail waits for its outcome; it is not sent
back to the queue every few seconds (each time a queue write and a log
line per recipient: a storm with thousands of messages queued)."""
import socket
import smtplib
import threading

import pytest

from conftest import free_port, wait_log
from dnsfix import Dnsmasq
from test_routing import server  # noqa: F401 (the same delivery settings)


class SilentSink:
    """Takes connections and never says a word."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(100)
        self.lock = threading.Lock()
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(c)

    def count(self):
        with self.lock:
            return len(self.held)

    def stop(self):
        self.sock.close()
        with self.lock:
            for c in self.held:
                c.close()


@pytest.fixture
def world(tmp_path):
    port = free_port()
    dns = Dnsmasq([
        "--mx-host=silent.test,mx.silent.test,10", "--host-record=mx.silent.test,127.0.0.4",
        "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.6",
    ])
    sink = SilentSink("127.0.0.4", port)
    rules = tmp_path / "rules.yaml"
    rules.write_text("health:\n  backoff: [3s]\n")
    yield dns, sink, port, str(rules)
    sink.stop()
    dns.stop()


def test_mail_waits_for_the_probe_without_churning(make_server, world):
    dns, sink, port, rules = world
    srv = server(make_server, dns, port, shaping_rules=rules, smtp_command_timeout="10s")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        for i in range(20):
            s.sendmail("a@sender.test", ["u%d@silent.test" % i], b"Subject: s\r\n\r\nbody\r\n")
    # The first round fails (10 s), the site is suspended (3 s), the
    # probe fails (10 s): the second suspension.
    assert wait_log(srv, r"(?s)shaping: site mx\.silent\.test suspended until.*"
                    r"shaping: site mx\.silent\.test suspended until", timeout=60)
    log = srv.read_log()
    assert "a probe connection is under way" not in log, log
    assert sink.count() == 2, sink.count()
    # Each message was sent back once per suspension: at most twice.
    assert log.count("status=deferred") <= 40, log.count("status=deferred")
    assert srv.queue_count() == 20
