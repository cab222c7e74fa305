#!/usr/bin/python3
"""Self-test for bench/smtp-sink: starts the real binary on a loopback port
the kernel picks and talks to it with smtplib and raw sockets.

Run alone (/usr/bin/python3 bench/sink_test.py; exit 77 means skipped) or
under pytest (the test_* functions). The binary is $SMTP_SINK, else
build/bench/smtp-sink (when newer than its sources), else compiled from
bench/sink_*.c into a temporary directory.
"""
import glob
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCS = sorted(glob.glob(os.path.join(HERE, "sink_*.c")))
HDRS = [os.path.join(HERE, "sink.h")]
SKIP = 77


class Skip(Exception):
    pass


def skip(why):
    """Skip the test: pytest's way under pytest, exit 77 when run alone."""
    if "pytest" in sys.modules:
        import pytest
        pytest.skip(why)
    raise Skip(why)


_binary = None


def sink_binary():
    """Path of a smtp-sink binary; raises Skip when none can be had."""
    global _binary
    if _binary:
        return _binary
    cand = os.environ.get("SMTP_SINK")
    if not cand:
        built = os.path.join(HERE, "..", "build", "bench", "smtp-sink")
        if os.access(built, os.X_OK) and \
                os.path.getmtime(built) >= max(os.path.getmtime(p) for p in SRCS + HDRS):
            cand = built
    if not cand:
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            skip("no C compiler")
        out = os.path.join(tempfile.mkdtemp(prefix="sink-test-"), "smtp-sink")
        r = subprocess.run([gcc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                            "-Wshadow", "-Wmissing-prototypes", "-Wstrict-prototypes",
                            *SRCS, "-luring", "-lpthread", "-o", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            if "liburing.h" in r.stderr:
                skip("liburing headers missing")
            raise AssertionError("compile failed:\n" + r.stderr)
        cand = out
    _binary = cand
    return cand


class Sink:
    """A running smtp-sink; stop() sends SIGTERM and returns (rc, stdout)."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="sink-run-")
        self.stats = os.path.join(self.dir, "counters.json")
        self.proc = subprocess.Popen([sink_binary(), "-s", self.stats, *args,
                                      "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            rest = line + self.proc.stderr.read()
            self.proc.wait()
            if "io_uring" in rest:
                skip("io_uring unavailable: " + rest.strip())
            raise AssertionError("sink did not start: " + rest)
        self.port = int(m.group(1))

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, timeout=10)

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        return s, f

    def counters(self, want=None, timeout=5.0):
        """The counters file, waiting (it is rewritten every second) until
        it contains every key=value of want."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.stats) as f:
                    c = json.load(f)
            except (OSError, ValueError):
                c = None
            if c is not None and all(c.get(k) == v for k, v in (want or {}).items()):
                return c
            if time.monotonic() > deadline:
                raise AssertionError("counters %r, wanted %r" % (c, want))
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode, out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)


def hang_up(s, f):
    """Close both: the socket stays open while its makefile() object is."""
    f.close()
    s.close()


def replies(f, n):
    """Read n SMTP replies (multi-line ones folded), return their codes."""
    codes = []
    while len(codes) < n:
        line = f.readline()
        assert line, "connection closed after %r" % codes
        if line[3:4] == b" ":
            codes.append(int(line[:3]))
    return codes


def test_protocol_and_counters():
    sink = Sink()
    try:
        with sink.smtp() as s:
            code, text = s.ehlo("client.test")
            assert code == 250
            for ext in ("pipelining", "8bitmime", "size", "smtputf8",
                        "enhancedstatuscodes"):
                assert s.has_extn(ext), ext
            assert not s.has_extn("chunking")
            assert s.mail("from@client.test")[0] == 250
            assert s.rcpt("someone@dest.test")[0] == 250
            assert s.rcpt("tempfail@dest.test") == (
                450, b"4.2.1 mailbox temporarily unavailable")
            assert s.rcpt("PermFail@dest.test") == (550, b"5.1.1 no such user")
            assert s.data(b"Subject: t\r\n\r\n.leading dot\r\nbody\r\n")[0] == 250
            # A second message with only bad recipients fails as a whole.
            try:
                s.sendmail("a@b", ["tempfail@x.test", "permfail@x.test"], b"x\r\n")
                raise AssertionError("sendmail should have failed")
            except smtplib.SMTPRecipientsRefused as e:
                assert e.recipients["tempfail@x.test"][0] == 450
                assert e.recipients["permfail@x.test"][0] == 550
            assert s.noop()[0] == 250
            assert s.rset()[0] == 250
            assert s.docmd("BDAT 10 LAST")[0] == 502
            assert s.docmd("DATA")[0] == 503
        c = sink.counters({"messages": 1, "cur_sessions": 0})
        assert c["sessions"] == 1 and c["rcpt_2xx"] == 1, c
        assert c["mail"] == 2, c		# both transactions started
        assert c["rcpt_4xx"] == 2 and c["rcpt_5xx"] == 2, c
        assert c["data_2xx"] == 1 and c["peak_sessions"] == 1, c
        assert c["bytes"] > 0
        rc, out, _ = sink.stop()
        assert rc == 0
        assert "messages=1 " in out and "rcpt_4xx=2 " in out, out
    finally:
        sink.kill()


def test_pipelining_and_split_input():
    """A pipelined group answered in order; commands and the end of data
    cut at every point across receives."""
    sink = Sink()
    try:
        s, f = sink.raw()
        s.sendall(b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@d.test>\r\n"
                  b"RCPT TO:<tempfail@d.test>\r\nDATA\r\n")
        assert replies(f, 5) == [250, 250, 250, 450, 354]
        body = b"Subject: split\r\n\r\n..stuffed\r\n..\r\n.x\r\nnot the end\r\n"
        end = b".\r\n"
        s.sendall(body)
        time.sleep(0.05)
        s.sendall(end + b"MA")		# the end, then half a command
        time.sleep(0.05)
        s.sendall(b"IL FROM:<a@c.test>\r\nRCPT TO:<b@d.test>\r\nDATA\r\n")
        assert replies(f, 4) == [250, 250, 250, 354]
        term = b"\r\n.\r\n"
        for cut in range(1, len(term)):
            s.sendall(b"line" + term[:cut])
            time.sleep(0.05)
            s.sendall(term[cut:] + b"MAIL FROM:<a@c.test>\r\n"
                      b"RCPT TO:<b@d.test>\r\nDATA\r\n")
            assert replies(f, 4) == [250, 250, 250, 354], cut
        s.sendall(b"x\r\n.\r\nQUIT\r\n")
        assert replies(f, 2) == [250, 221]
        assert f.readline() == b""
        hang_up(s, f)
        sink.counters({"messages": 1 + (len(term) - 1) + 1, "cur_sessions": 0})
        assert sink.stop()[0] == 0
    finally:
        sink.kill()


def test_reply_mix_all_rcpt_4xx():
    sink = Sink("-r", "rcpt:4xx=100")
    try:
        with sink.smtp() as s:
            s.ehlo("c.test")
            s.mail("a@c.test")
            for i in range(5):
                assert s.rcpt("u%d@d.test" % i) == (451, b"4.3.0 temporary failure")
            # Local parts still win over the mix.
            assert s.rcpt("permfail@d.test")[0] == 550
            assert s.docmd("DATA")[0] == 554
        c = sink.counters({"rcpt_4xx": 5, "rcpt_5xx": 1, "cur_sessions": 0})
        assert c["rcpt_2xx"] == 0 and c["messages"] == 0, c
        assert sink.stop()[0] == 0
    finally:
        sink.kill()


def test_reply_mix_data_and_domains():
    sink = Sink("-r", "data:5xx=100",
                "-d", "bad.test=rcpt:550,busy.test=rcpt:450,soft.test=data:451,"
                "slow.test=latency:200")
    try:
        with sink.smtp() as s:
            s.ehlo("c.test")
            s.mail("a@c.test")
            assert s.rcpt("x@bad.test") == (550, b"5.1.1 no such user")
            assert s.rcpt("x@BUSY.test")[0] == 450
            assert s.rcpt("x@ok.test")[0] == 250
            code, _ = s.data(b"x\r\n")
            assert code == 554, code		# the mix
            s.mail("a@c.test")
            assert s.rcpt("x@soft.test")[0] == 250
            assert s.data(b"x\r\n")[0] == 451	# the domain beats the mix
            s.mail("a@c.test")
            assert s.rcpt("x@slow.test")[0] == 250
            t = time.monotonic()
            assert s.data(b"x\r\n")[0] == 554
            assert time.monotonic() - t >= 0.2
        c = sink.counters({"data_5xx": 2, "data_4xx": 1, "cur_sessions": 0})
        assert c["messages"] == 0 and c["rcpt_5xx"] == 1 and c["rcpt_4xx"] == 1, c
        assert sink.stop()[0] == 0
    finally:
        sink.kill()


def test_data_421_closes_and_mail_counts():
    """-r data:421=100: every message gets Gmail's 4.7.28 rate deferral
    (two lines) after its data, and the sink closes the session; MAIL
    commands are counted as transactions started."""
    sink = Sink("-r", "data:421=100")
    try:
        s, f = sink.raw()
        s.sendall(b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@d.test>\r\nDATA\r\n")
        assert replies(f, 4) == [250, 250, 250, 354]
        s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@c.test>\r\n")
        first = f.readline()
        assert first.startswith(b"421-4.7.28 "), first
        last = f.readline()
        assert last.startswith(b"421 4.7.28 "), last
        assert f.readline() == b""		# closed; the MAIL after it is ignored
        hang_up(s, f)
        with sink.smtp() as c:
            c.ehlo("c.test")
            assert c.mail("a@c.test")[0] == 250
            assert c.rcpt("b@d.test")[0] == 250
            code, text = c.data(b"x\r\n")
            assert code == 421 and b"4.7.28" in text, (code, text)
        cnt = sink.counters({"mail": 2, "data_4xx": 2, "cur_sessions": 0})
        assert cnt["messages"] == 0 and cnt["data_2xx"] == 0, cnt
        assert sink.stop()[0] == 0
    finally:
        sink.kill()


def test_latency():
    sink = Sink("-L", "300")
    try:
        with sink.smtp() as s:
            s.ehlo("c.test")
            s.mail("a@c.test")
            t = time.monotonic()
            assert s.rcpt("b@d.test")[0] == 250
            assert time.monotonic() - t < 0.3	# only DATA is delayed
            s.docmd("DATA")
            t = time.monotonic()
            s.send(b"x\r\n.\r\n")
            assert s.getreply()[0] == 250
            assert time.monotonic() - t >= 0.3
        # Input pipelined behind the delayed reply waits, in order.
        r, f = sink.raw()
        r.sendall(b"EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@d>\r\nDATA\r\n")
        assert replies(f, 4) == [250, 250, 250, 354]
        t = time.monotonic()
        r.sendall(b"x\r\n.\r\nNOOP\r\nQUIT\r\n")
        assert replies(f, 3) == [250, 250, 221]
        assert time.monotonic() - t >= 0.3
        hang_up(r, f)
        # A client that leaves during the delay is cleaned up.
        r, f = sink.raw()
        r.sendall(b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@d>\r\nDATA\r\n")
        assert replies(f, 4) == [250, 250, 250, 354]
        r.sendall(b"x\r\n.\r\n")
        hang_up(r, f)
        # Its message was never acknowledged, so it does not count.
        sink.counters({"messages": 2, "sessions": 3, "cur_sessions": 0})
        assert sink.stop()[0] == 0
    finally:
        sink.kill()


def test_session_cap():
    sink = Sink("-c", "2")
    try:
        a, fa = sink.raw()
        b, fb = sink.raw()
        c = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
        fc = c.makefile("rb")
        assert fc.readline() == b"421 4.7.0 too many sessions\r\n"
        assert fc.readline() == b""
        hang_up(c, fc)
        try:
            smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
            raise AssertionError("a third session was accepted")
        except smtplib.SMTPConnectError as e:
            assert e.smtp_code == 421
        a.sendall(b"QUIT\r\n")
        assert replies(fa, 1) == [221]
        hang_up(a, fa)
        sink.counters({"cur_sessions": 1})
        with sink.smtp() as s:		# room again
            assert s.noop()[0] == 250
        hang_up(b, fb)		# vanishes without QUIT
        cnt = sink.counters({"cur_sessions": 0, "rejected": 2})
        assert cnt["peak_sessions"] == 2 and cnt["sessions"] == 3, cnt
        rc, out, _ = sink.stop()
        assert rc == 0 and "rejected=2 " in out
    finally:
        sink.kill()


def test_sigterm_with_open_sessions():
    sink = Sink("-w", "2")
    try:
        open_ = [sink.raw() for _ in range(4)]
        s, f = open_[0]
        s.sendall(b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@d>\r\nDATA\r\nhalf a bo")
        assert replies(f, 4) == [250, 250, 250, 354]
        sink.counters({"cur_sessions": 4})
        rc, out, _ = sink.stop()
        assert rc == 0
        assert "sessions=4 " in out and "cur_sessions=0 " in out, out
        for s, f in open_:
            assert f.read() == b""		# closed by the sink
            hang_up(s, f)
    finally:
        sink.kill()


def main():
    tests = [(k, v) for k, v in sorted(globals().items())
             if k.startswith("test_") and callable(v)]
    failed = 0
    for name, fn in tests:
        t = time.monotonic()
        try:
            fn()
            print("ok   %s (%.2fs)" % (name, time.monotonic() - t))
        except Skip as e:
            print("skip: %s" % e)
            return SKIP
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
