"""A real DNS server on loopback for delivery tests: dnsmasq answering
only from the records a test gives it (no upstream, no /etc/hosts)."""
import os
import signal
import socket
import subprocess
import time

from conftest import free_port


class Dnsmasq:
    def __init__(self, records):
        """records: dnsmasq options, e.g. "--mx-host=a.test,mx.a.test,10"."""
        self.port = free_port()
        args = ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
                "--local=/test/", "--local=/invalid/", "--local-ttl=600",
                "--log-facility=-", "--user=root"] + list(records)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self):
        # A query for anything: any answer means it is up.
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01"
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: %s" % self.proc.stderr.read().decode())
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                s.recvfrom(512)
                return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        raise RuntimeError("dnsmasq did not answer")

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
