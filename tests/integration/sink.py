"""A scripted SMTP sink for delivery tests: a small asyncio server in a
thread of the test process, so tests read what it received directly.

Replies are chosen by the recipient's local part:
  permfail@   -> RCPT 550 5.1.1
  tempfail@   -> RCPT 450 4.2.1
  tempthenok@ -> RCPT 451 4.3.0 on the first try, 250 after
  datafail@   -> the final DATA reply is 554 5.6.0 when this is the only
                 recipient accepted
anything else -> 250. EHLO keywords, a greeting code and a delay before
the final DATA reply are settings. Every read is recorded per connection,
so tests can tell whether commands came pipelined."""
import asyncio
import threading
import time


class Sink:
    def __init__(self, host="127.0.0.1", port=0, pipelining=True, greeting="220 sink ESMTP",
                 data_delay=0.0, ehlo_keywords=("8BITMIME", "SMTPUTF8", "SIZE 50000000"),
                 tls_context=None):
        self.host, self.port = host, port
        self.pipelining = pipelining
        self.greeting = greeting
        self.data_delay = data_delay
        self.ehlo_keywords = list(ehlo_keywords) + (["PIPELINING"] if pipelining else [])
        self.tls_context = tls_context     # offer STARTTLS with this ssl.SSLContext
        self.messages = []          # dicts: sender, rcpts, data, conn
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.reads = []             # per connection: list of raw reads
        self.seen = {}              # tempthenok bookkeeping
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, self.host, self.port))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        def _stop():
            self.server.close()
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.call_later(0.05, self.loop.stop)
        self.loop.call_soon_threadsafe(_stop)
        self.thread.join(10)

    def wait_for(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return True
            time.sleep(0.05)
        return False

    def rcpt_reply(self, rcpt):
        local = rcpt.split("@")[0].lower()
        if local == "permfail":
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % rcpt
        if local == "tempfail":
            return "450 4.2.1 <%s>: mailbox busy, try later" % rcpt
        if local == "tempthenok":
            with self.lock:
                n = self.seen.get(rcpt, 0)
                self.seen[rcpt] = n + 1
            if n == 0:
                return "451 4.3.0 <%s>: temporary trouble" % rcpt
        return "250 2.1.5 Ok"

    async def _session(self, reader, writer):
        with self.lock:
            self.connections += 1
            conn = self.connections
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            reads = []
            self.reads.append(reads)
        buf = b""
        sender, rcpts, accepted = None, [], []
        tls = False

        async def send(line):
            writer.write((line + "\r\n").encode())
            await writer.drain()

        async def readline():
            nonlocal buf
            while b"\n" not in buf:
                chunk = await reader.read(65536)
                if not chunk:
                    raise EOFError
                reads.append(chunk)
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line.rstrip(b"\r").decode("utf-8", "replace")

        try:
            await send(self.greeting)
            if not self.greeting.startswith("220"):
                return
            while True:
                line = await readline()
                verb = line[:4].upper()
                if verb == "STAR" and line.upper() == "STARTTLS" and self.tls_context and not tls:
                    await send("220 2.0.0 Ready to start TLS")
                    buf = b""
                    await writer.start_tls(self.tls_context)
                    tls = True
                    continue
                if verb in ("EHLO",):
                    lines = ["sink"] + self.ehlo_keywords + (
                        ["STARTTLS"] if self.tls_context and not tls else [])
                    for i, l in enumerate(lines):
                        await send("250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
                elif verb == "HELO":
                    await send("250 sink")
                elif verb == "MAIL":
                    sender = line[10:].split(">")[0].lstrip("<")
                    rcpts, accepted = [], []
                    await send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    rcpt = line[8:].split(">")[0].lstrip("<")
                    rcpts.append(rcpt)
                    r = self.rcpt_reply(rcpt)
                    if r.startswith("250"):
                        accepted.append(rcpt)
                    await send(r)
                elif verb == "DATA":
                    if sender is None or not accepted:
                        await send("554 5.5.1 Error: no valid recipients")
                        continue
                    await send("354 go ahead")
                    while True:
                        if buf.startswith(b".\r\n"):
                            data, buf = b"", buf[3:]
                            break
                        idx = buf.find(b"\r\n.\r\n")
                        if idx >= 0:
                            data, buf = buf[:idx + 2], buf[idx + 5:]
                            break
                        chunk = await reader.read(65536)
                        if not chunk:
                            raise EOFError
                        reads.append(chunk)
                        buf += chunk
                    if self.data_delay:
                        await asyncio.sleep(self.data_delay)
                    unstuffed = b"\r\n".join(l[1:] if l.startswith(b".") else l
                                            for l in data.split(b"\r\n"))
                    if accepted == ["datafail@" + accepted[0].split("@")[1]]:
                        await send("554 5.6.0 Message content rejected")
                    else:
                        with self.lock:
                            self.messages.append({"sender": sender, "rcpts": list(accepted),
                                                  "data": unstuffed, "conn": conn, "tls": tls})
                        await send("250 2.0.0 Ok: queued")
                    sender, rcpts, accepted = None, [], []
                elif verb == "RSET":
                    sender, rcpts, accepted = None, [], []
                    await send("250 2.0.0 Ok")
                elif verb == "NOOP":
                    await send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    await send("221 2.0.0 Bye")
                    return
                else:
                    await send("502 5.5.2 Error: command not recognized")
        except (EOFError, ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            with self.lock:
                self.active -= 1
            try:
                writer.close()
            except RuntimeError:
                pass
