"""A sink that behaves like a large receiving provider, for the traffic
shaping tests: an asyncio SMTP server in a thread of the test process that
records, with times, every connection (open/close), every message and the
most connections it saw at once. Behaviours (all optional):

  close_after=N      after N messages on a connection, the next MAIL is
                     not answered: the connection is closed (Yahoo's
                     per-connection limit, no error reply)
  rate_limit=(N, W)  more than N messages accepted within W seconds: MAIL
                     gets "421 4.7.28 ... unusual rate" and the
                     connection is closed (Gmail); with trip_once, only
                     the first time
  accept_close may be changed while the sink runs (the site comes back)
  mail_reply=TEXT    every MAIL gets this reply (e.g. a [TSS04] 421)
  accept_close=True  accept the TCP connection and close it at once, no
                     greeting (a refusing site whose attempts are counted)
  data_delay=S       wait S seconds before answering the end of data
  data_reply_close=TEXT  the first end of data the sink sees gets TEXT
                     (e.g. "421 4.7.0 try later") and the connection is
                     closed; later messages are accepted
  pipelining=False        no PIPELINING in the EHLO reply
"""
import asyncio
import threading
import time

from sink import Sink


class ProviderSink:
    def __init__(self, host, port, close_after=0, rate_limit=None, mail_reply=None,
                 accept_close=False, data_delay=0.0, trip_once=False, data_reply_close=None,
                 pipelining=True):
        self.host, self.port = host, port
        self.close_after = close_after
        self.rate_limit = rate_limit
        self.trip_once = trip_once
        self.tripped = 0
        self.mail_reply = mail_reply
        self.accept_close = accept_close
        self.data_delay = data_delay
        self.data_reply_close = data_reply_close
        self.pipelining = pipelining
        self.data_closed = False
        self.lock = threading.Lock()
        self.conns = []         # dicts: opened, closed, msgs
        self.messages = []      # dicts: time, rcpts, conn
        self.accepted_times = []
        self.active = 0
        self.max_active = 0
        self.mails = 0          # MAIL commands seen
        self.events = []        # (time, "open"/"close"/"msg"/"421", connections open)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("sink did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, self.host, self.port, reuse_address=True))
        self.ready.set()
        self.loop.run_forever()
        self._close_loop()

    # The same thread, loop and lists as sink.Sink: its stop, wait_for
    # and the loop's end.
    stop = Sink.stop
    wait_for = Sink.wait_for
    _close_loop = Sink._close_loop

    def count(self):
        with self.lock:
            return len(self.messages)

    def _over_rate(self, now):
        n, window = self.rate_limit
        recent = [t for t in self.accepted_times if t > now - window]
        return len(recent) >= n

    async def _session(self, reader, writer):
        now = time.time()
        conn = {"opened": now, "closed": None, "msgs": 0}
        with self.lock:
            self.conns.append(conn)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.events.append((now, "open", self.active))
        try:
            if self.accept_close:
                return
            await self._talk(reader, writer, conn)
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with self.lock:
                self.active -= 1
                conn["closed"] = time.time()
                self.events.append((conn["closed"], "close", self.active))
            try:
                writer.close()
            except Exception:
                pass

    async def _talk(self, reader, writer, conn):
        buf = b""

        async def send(line):
            writer.write((line + "\r\n").encode())
            await writer.drain()

        async def readline():
            nonlocal buf
            while b"\n" not in buf:
                chunk = await reader.read(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line.rstrip(b"\r").decode("utf-8", "replace")

        await send("220 provider ESMTP")
        rcpts = []
        while True:
            line = await readline()
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                await send("250-provider\r\n" + ("250-PIPELINING\r\n" if self.pipelining else "") +
                           "250-8BITMIME\r\n250 SIZE 50000000")
            elif verb == "MAIL":
                rcpts = []
                with self.lock:
                    self.mails += 1
                if self.close_after and conn["msgs"] >= self.close_after:
                    return      # no reply: the connection just ends
                if (self.rate_limit and not (self.trip_once and self.tripped) and
                        self._over_rate(time.time())):
                    with self.lock:
                        self.tripped += 1
                        self.events.append((time.time(), "421", self.active))
                    await send("421 4.7.28 Our system has detected an unusual rate of"
                               " unsolicited mail originating from your IP address.")
                    return
                if self.mail_reply:
                    await send(self.mail_reply)
                    if self.mail_reply.startswith("421"):
                        return
                    continue
                await send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(line[8:].strip())
                await send("250 2.1.5 Ok")
            elif verb == "DATA":
                await send("354 go ahead")
                while True:
                    l = await readline()
                    if l == ".":
                        break
                if self.data_delay:
                    await asyncio.sleep(self.data_delay)
                if self.data_reply_close and not self.data_closed:
                    self.data_closed = True
                    await send(self.data_reply_close)
                    return
                now = time.time()
                with self.lock:
                    conn["msgs"] += 1
                    self.messages.append({"time": now, "rcpts": rcpts, "conn": conn})
                    self.accepted_times.append(now)
                    self.events.append((now, "msg", self.active))
                await send("250 2.0.0 Ok: queued")
            elif verb == "RSET" or verb == "NOOP":
                await send("250 2.0.0 Ok")
            elif verb == "QUIT":
                await send("221 2.0.0 Bye")
                return
            else:
                await send("502 5.5.2 Error: command not recognized")
