"""A scripted SMTP receiver that can be hostile, for adversarial tests of
ringmta's outbound client (test_trust_delivery_hostile.py): refusals,
421s, closes and odd replies at any step, written in several ways.

Behaviour per command is given by overridable methods (mail, rcpt, data,
dot, rset) returning a reply string, or (reply, action) with action in
{"close", "close_before", "hang"}; None as reply sends nothing.
Write modes:
  immediate  each reply written (and drained) as produced
  batch      replies held while more complete command lines are buffered,
             then written in ONE write
  bytewise   each reply written one byte at a time with drain + 1 ms sleep
  lockstep   read one line, sleep `delay`, reply (PIPELINING still offered)
"""
import asyncio
import re
import threading

from sink import Sink


class Ctx:
    def __init__(self, conn):
        self.conn = conn
        self.sender = None
        self.mail_ok = False
        self.rcpts = []         # all RCPT addresses of the txn
        self.accepted = []      # those answered 2xx
        self.nmail = 0          # MAIL commands on this connection
        self.nrset = 0
        self.tls = False

    def reset(self):
        self.sender, self.mail_ok, self.rcpts, self.accepted = None, False, [], []


class AdvSink:
    def __init__(self, pipelining=True, keywords=(), mode="immediate", delay=0.0,
                 greeting="220 adv ESMTP", gate=True, base=("SIZE 50000000", "8BITMIME"), tls=None):
        self.tls = tls
        self.base = list(base)
        self.pipelining, self.keywords, self.mode, self.delay = pipelining, list(keywords), mode, delay
        self.greeting = greeting
        self.gate = threading.Event()
        if not gate:
            self.gate.set()
        self.lock = threading.Lock()
        self.connections = 0
        self.cmds = []          # (conn, line) every command line received
        self.reads = {}         # conn -> list of raw reads
        self.messages = []      # dict(conn, sender, rcpts, data, reply)
        self.sent_replies = []  # (conn, reply)
        self.empty = []         # (conn, sender, rcpts): empty messages ("." only) taken
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    # ---- policy (override) ----
    def mail(self, ctx, sender):
        return "250 2.1.0 Ok"

    def rcpt(self, ctx, rcpt):
        local = rcpt.split("@")[0].lower()
        if local.startswith("bad"):
            return "550 5.1.1 <%s>: no such user" % rcpt
        if local.startswith("tmp"):
            return "450 4.2.1 <%s>: busy" % rcpt
        return "250 2.1.5 Ok"

    def data(self, ctx):
        if not ctx.mail_ok or not ctx.accepted:
            return "554 5.5.1 Error: no valid recipients"
        return "354 go ahead"

    def dot(self, ctx, data):
        return "250 2.0.0 Ok: queued"

    def rset(self, ctx):
        return "250 2.0.0 Ok"

    def other(self, ctx, line):
        return "502 5.5.2 Error: command not recognized"

    # ---- machinery ----
    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self._close_loop()

    # The same thread, loop and lists as sink.Sink: its stop, wait_for
    # and the loop's end.
    _close_loop = Sink._close_loop
    stop = Sink.stop
    wait_for = Sink.wait_for

    def delivered_rcpts(self):
        out = []
        with self.lock:
            for m in self.messages:
                out.extend(m["rcpts"])
        return out

    async def _session(self, reader, writer):
        with self.lock:
            self.connections += 1
            conn = self.connections
            self.reads[conn] = []
        ctx = Ctx(conn)
        in_tls = False
        buf = bytearray()
        pending = []

        async def flush():
            if not pending:
                return
            data = "".join(pending).encode()
            pending.clear()
            if self.mode == "bytewise":
                for i in range(len(data)):
                    writer.write(data[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(0.001)
            else:
                writer.write(data)
                await writer.drain()

        async def send(text):
            if text is None:
                return
            with self.lock:
                self.sent_replies.append((conn, text))
            pending.append(text + "\r\n")
            if self.mode == "batch" and b"\n" in buf:
                return      # more commands buffered: hold for one write
            if self.mode == "lockstep" and self.delay:
                await asyncio.sleep(self.delay)
            await flush()

        async def fill():
            chunk = await reader.read(65536)
            if not chunk:
                raise EOFError
            with self.lock:
                self.reads[conn].append(bytes(chunk))
            buf.extend(chunk)

        async def readline():
            while b"\n" not in buf:
                await flush()
                await fill()
            i = buf.index(b"\n")
            line = bytes(buf[:i]).rstrip(b"\r").decode("utf-8", "replace")
            del buf[:i + 1]
            with self.lock:
                self.cmds.append((conn, line))
            return line

        async def act(res):
            """Send res; True if the session must end."""
            action = None
            if isinstance(res, tuple):
                res, action = res
            if action == "close_before":
                await flush()
                writer.close()
                return True
            await send(res)
            if action == "close":
                await flush()
                writer.close()
                return True
            if action == "hang":
                await flush()
                await asyncio.sleep(3600)
            return False

        try:
            if conn == 1:
                while not self.gate.is_set():
                    await asyncio.sleep(0.02)
            await send(self.greeting)
            await flush()
            while True:
                line = await readline()
                verb = line[:4].upper()
                if line.upper() == "STARTTLS" and self.tls and not in_tls:
                    await send("220 2.0.0 Ready to start TLS")
                    await flush()
                    buf.clear()
                    await writer.start_tls(self.tls)
                    in_tls = True
                    ctx.tls = True
                    continue
                if verb == "EHLO":
                    kws = ["adv"] + self.base + self.keywords + (
                        ["PIPELINING"] if self.pipelining else []) + (
                        ["STARTTLS"] if self.tls and not in_tls else [])
                    for i, k in enumerate(kws):
                        await send("250%s%s" % ("-" if i < len(kws) - 1 else " ", k))
                elif verb == "HELO":
                    await send("250 adv")
                elif verb == "MAIL":
                    ctx.reset()
                    ctx.nmail += 1
                    ctx.sender = re.search(r"<(.*?)>", line).group(1)
                    res = self.mail(ctx, ctx.sender)
                    r = res[0] if isinstance(res, tuple) else res
                    ctx.mail_ok = bool(r) and r.startswith("2")
                    if await act(res):
                        return
                elif verb == "RCPT":
                    rc = re.search(r"<(.*?)>", line).group(1)
                    ctx.rcpts.append(rc)
                    res = self.rcpt(ctx, rc)
                    r = res[0] if isinstance(res, tuple) else res
                    if r and r.startswith("2"):
                        ctx.accepted.append(rc)
                    if await act(res):
                        return
                elif verb == "DATA":
                    res = self.data(ctx)
                    r = res[0] if isinstance(res, tuple) else res
                    if await act(res):
                        return
                    if r and r.startswith("354"):
                        await flush()
                        while True:
                            if buf.startswith(b".\r\n"):
                                data = b""
                                del buf[:3]
                                break
                            i = buf.find(b"\r\n.\r\n")
                            if i >= 0:
                                data = bytes(buf[:i + 2])
                                del buf[:i + 5]
                                break
                            await fill()
                        data = re.sub(rb"(?m)^\.\.", b".", data)
                        res = self.dot(ctx, data)
                        r = res[0] if isinstance(res, tuple) else res
                        if r and r.startswith("250") and data == b"":
                            with self.lock:
                                self.empty.append((conn, ctx.sender, list(ctx.rcpts)))
                        elif r and r.startswith("250"):
                            with self.lock:
                                self.messages.append(dict(conn=conn, sender=ctx.sender,
                                                          rcpts=list(ctx.accepted), data=data,
                                                          mail_ok=ctx.mail_ok, tls=ctx.tls))
                        ctx.reset()
                        if await act(res):
                            return
                elif verb == "RSET":
                    ctx.reset()
                    ctx.nrset += 1
                    if await act(self.rset(ctx)):
                        return
                elif verb == "NOOP":
                    await send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    await send("221 2.0.0 Bye")
                    await flush()
                    writer.close()
                    return
                else:
                    if await act(self.other(ctx, line)):
                        return
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass
