"""A small authoritative DNS server on loopback for tests with many
domains: A records from a dict, no MX (so each domain is its own implicit
MX), nothing else. dnsmasq loses answers when ten thousand domains are
resolved at once (its socket's receive buffer overflows); this one asks
the kernel for a large buffer and answers from a thread of the test."""
import socket
import struct
import threading


class BulkDns:
    def __init__(self, records):
        """records: {name: "a.b.c.d"}; names are matched without case."""
        self.records = {k.lower().rstrip("."): socket.inet_aton(v) for k, v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, opt, 32 << 20)
                break
            except OSError:
                continue
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        if flags & 0x8000 or qd != 1:
            return None
        labels, i = [], 12
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        if i + 5 > len(q):
            return None
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        addr = self.records.get(name)
        rcode = 0 if addr is not None else 3            # NXDOMAIN
        answers = b""
        if addr is not None and qtype == 1:
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 600, 4) + addr
        head = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1,
                           1 if answers else 0, 0, 0)
        return head + question + answers

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                q, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            a = self._answer(q)
            if a is not None:
                self.sock.sendto(a, peer)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
