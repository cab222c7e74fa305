"""A scripted SMTP sink for delivery tests: a small asyncio server in a
thread of the test process, so tests read what it received directly.

Replies are chosen by the recipient's local part:
  permfail@   -> RCPT 550 5.1.1
  tempfail@   -> RCPT 450 4.2.1
  tempthenok@ -> RCPT 451 4.3.0 on the first try, 250 after
  datafail@   -> the final DATA reply is 554 5.6.0 when this is the only
                 recipient accepted
  early@      -> after reading early_after bytes of the body, answer 250
                 at once, then read slowly (early_chunk bytes every
                 early_delay s) until the client closes or early_limit s
                 pass; what arrived is in early_data (bytes, per conn)
  stall@      -> after reading stall_after bytes of the body, stop
                 reading for stall_seconds (stall_event is set then),
                 then go on as usual
  resetonce@  -> the first time: after reading stall_after bytes of the
                 body, the connection is dropped with a TCP reset (SO_LINGER
                 0) while the client is still sending; later tries as usual
  dup354@     -> DATA is answered with two 354 replies in one write
  data250@    -> DATA is answered 250 (no 354), the body is not read
anything else -> 250. EHLO keywords, a greeting code and a delay before
the final DATA reply are settings. rcpt_max and mail_max make it strict
about a limit it may advertise (LIMITS, RFC 9422): a RCPT past rcpt_max
in a transaction, or naming a domain past rcpt_domain_max different
ones, gets 452 4.5.3, a MAIL past mail_max in a connection 451 4.5.3;
mails[conn] counts the MAIL commands of each connection.
Every read is recorded per connection, so tests can tell whether
commands came pipelined; each message records the client's address
(peer) and its EHLO/HELO name (helo)."""
import asyncio
import socket
import struct
import threading
import time


class Sink:
    def __init__(self, host="127.0.0.1", port=0, pipelining=True, greeting="220 sink ESMTP",
                 data_delay=0.0, ehlo_keywords=("8BITMIME", "SMTPUTF8", "SIZE 50000000"),
                 tls_context=None, mail_reply="250 2.1.0 Ok", early_after=200000,
                 early_chunk=65536, early_delay=0.05, early_limit=15.0,
                 stall_after=100000, stall_seconds=4.0, rcvbuf=0, greeting_delay=0.0,
                 rcpt_max=0, mail_max=0, rcpt_domain_max=0, ehlo_keywords_tls=None):
        self.host, self.port = host, port
        self.pipelining = pipelining
        self.greeting = greeting
        self.data_delay = data_delay
        self.ehlo_keywords = list(ehlo_keywords) + (["PIPELINING"] if pipelining else [])
        self.tls_context = tls_context     # offer STARTTLS with this ssl.SSLContext
        # EHLO keywords after STARTTLS (None: the same as before)
        self.ehlo_keywords_tls = None if ehlo_keywords_tls is None else (
            list(ehlo_keywords_tls) + (["PIPELINING"] if pipelining else []))
        self.mail_reply = mail_reply
        self.early_after, self.early_chunk = early_after, early_chunk
        self.early_delay, self.early_limit = early_delay, early_limit
        self.early_data = {}        # conn -> bytes read in an early@ session
        self.early_event = threading.Event()    # the early reply went out
        self.early_done = threading.Event()     # that session is over
        self.stall_after, self.stall_seconds = stall_after, stall_seconds
        self.stall_event = threading.Event()
        self.resets = 0             # resetonce@ connections reset
        self.rcvbuf = rcvbuf        # SO_RCVBUF of accepted sockets; 0 = system default
        self.greeting_delay = greeting_delay    # seconds before the greeting
        self.messages = []          # dicts: sender, rcpts, data, conn
        self.rcpt_max, self.mail_max = rcpt_max, mail_max   # 0 = no limit
        self.rcpt_domain_max = rcpt_domain_max
        self.mails = {}             # conn -> MAIL commands received
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
        if self.rcvbuf:
            # Set on the listener, so the TCP window is small from the start.
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((self.host, self.port))
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._session, sock=sock))
        else:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._session, self.host, self.port))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self._close_loop()

    def _close_loop(self):
        """In the loop's thread once stop() ended it: what is left is
        cancelled and the loop closed. A loop left open is closed by the
        garbage collector as the interpreter exits, and its complaint can
        land after pytest's summary line."""
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

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
        tls = resumed = False       # resumed: the TLS session was resumed
        helo = None

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
            if self.greeting_delay:
                await asyncio.sleep(self.greeting_delay)
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
                    resumed = writer.get_extra_info("ssl_object").session_reused
                    continue
                if verb in ("EHLO", "HELO"):
                    helo = line[5:].strip()
                if verb in ("EHLO",):
                    kws = self.ehlo_keywords
                    if tls and self.ehlo_keywords_tls is not None:
                        kws = self.ehlo_keywords_tls
                    lines = ["sink"] + kws + (
                        ["STARTTLS"] if self.tls_context and not tls else [])
                    for i, l in enumerate(lines):
                        await send("250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
                elif verb == "HELO":
                    await send("250 sink")
                elif verb == "MAIL":
                    with self.lock:
                        self.mails[conn] = self.mails.get(conn, 0) + 1
                        over = self.mail_max and self.mails[conn] > self.mail_max
                    sender, rcpts, accepted = None, [], []
                    if over:
                        await send("451 4.5.3 Too many transactions in this session")
                        continue
                    sender = line[10:].split(">")[0].lstrip("<")
                    await send(self.mail_reply)
                elif verb == "RCPT":
                    rcpt = line[8:].split(">")[0].lstrip("<")
                    rcpts.append(rcpt)
                    if self.rcpt_max and len(rcpts) > self.rcpt_max:
                        await send("452 4.5.3 Too many recipients")
                        continue
                    domains = {r.split("@")[-1].lower() for r in accepted}
                    if (self.rcpt_domain_max and rcpt.split("@")[-1].lower() not in domains
                            and len(domains) >= self.rcpt_domain_max):
                        await send("452 4.5.3 Too many recipient domains")
                        continue
                    r = self.rcpt_reply(rcpt)
                    if r.startswith("250"):
                        accepted.append(rcpt)
                    await send(r)
                elif verb == "DATA":
                    if sender is None or not accepted:
                        await send("554 5.5.1 Error: no valid recipients")
                        continue
                    local = accepted[0].split("@")[0].lower()
                    if local == "data250":
                        await send("250 2.0.0 Ok: nothing read")
                        continue
                    if local == "early":
                        await send("354 go ahead")
                        got = bytearray(buf)
                        while len(got) < self.early_after:
                            chunk = await reader.read(65536)
                            if not chunk:
                                break
                            got += chunk
                        await send("250 2.0.0 Ok: taken early")
                        self.early_event.set()
                        deadline = time.time() + self.early_limit
                        try:
                            while time.time() < deadline:
                                await asyncio.sleep(self.early_delay)
                                try:
                                    chunk = await asyncio.wait_for(
                                        reader.read(self.early_chunk),
                                        max(0.01, deadline - time.time()))
                                except asyncio.TimeoutError:
                                    break
                                if not chunk:
                                    break
                                got += chunk
                        finally:
                            with self.lock:
                                self.early_data[conn] = bytes(got)
                            self.early_done.set()
                        return
                    await send("354 go ahead\r\n354 again" if local == "dup354" else "354 go ahead")
                    if local == "stall":
                        while len(buf) < self.stall_after:
                            chunk = await reader.read(65536)
                            if not chunk:
                                raise EOFError
                            buf += chunk
                        self.stall_event.set()
                        await asyncio.sleep(self.stall_seconds)
                    if local == "resetonce" and self.resets == 0:
                        while len(buf) < self.stall_after:
                            chunk = await reader.read(65536)
                            if not chunk:
                                raise EOFError
                            buf += chunk
                        with self.lock:
                            self.resets += 1
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                        writer.transport.abort()
                        return
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
                                                  "data": unstuffed, "conn": conn, "tls": tls,
                                                  "peer": writer.get_extra_info("peername")[0],
                                                  "helo": helo, "resumed": resumed})
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
