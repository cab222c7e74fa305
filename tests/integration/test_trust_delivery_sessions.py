"""Outbound sessions: how many are opened, and what the logs and DSNs say
about them. Jobs that arrive while a session is still connecting wait
for it rather than each opening more (the cause of the flaky
test_dead_destination_no_connection_storm: 11 connects for 10 messages);
an address-literal relay is shown once, not as "[ip][ip]:port"; a timeout
after the final dot says it was waiting for the reply."""
import re
import smtplib
import time

import pytest

from conftest import wait_log, wait_until, relay_server

from shpsink import ProviderSink
from sink import Sink
from test_admin_api import curl




def test_jobs_during_connect_open_no_extra_sessions(make_server):
    # Each session takes 1 s to become ready; five messages arrive one by
    # one meanwhile. Five sessions at most: one per message, not one per
    # waiting message every time another arrives (1+2+3+4+5).
    sink = Sink(greeting_delay=1.0)
    try:
        srv = relay_server(make_server, sink, workers=1)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(5):
                s.sendmail("from@example.org", ["c%d@example.com" % i], b"Subject: c\r\n\r\nx\r\n")
        assert sink.wait_for(5, timeout=20)
        time.sleep(1.5)
        assert sink.connections <= 5, sink.connections
    finally:
        sink.stop()


def test_literal_relay_shown_once(make_server):
    sink = Sink()
    try:
        srv = relay_server(make_server, sink)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("sender@example.org", ["permfail@example.com"], b"Subject: x\r\n\r\nx\r\n")
        assert sink.wait_for(1)
        assert wait_log(srv, r"status=bounced")
        log = srv.read_log()
        assert "relay=[127.0.0.1]:%d " % sink.port in log, log
        assert "[127.0.0.1][127.0.0.1]" not in log
        dsn = sink.messages[0]["data"].decode()
        assert "[127.0.0.1][127.0.0.1]" not in dsn
        assert re.search(r"Remote-MTA: dns; 127\.0\.0\.1\r\n", dsn), dsn
    finally:
        sink.stop()


def test_timeout_after_final_dot_says_waiting_for_reply(make_server):
    sink = Sink(data_delay=4.0)
    try:
        srv = relay_server(make_server, sink, smtp_data_done_timeout="1s")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("from@example.org", ["slow@example.com"], b"Subject: x\r\n\r\nx\r\n")
        assert wait_log(srv, r"to=<slow@example.com> .*status=deferred")
        log = srv.read_log()
        assert "timed out waiting for the reply to the end of the message" in log, log
        assert "timed out sending the message" not in log
    finally:
        sink.stop()


def test_a_reset_while_the_body_goes_out_defers_and_retries(make_server):
    """The receiver resets the connection while the body is being sent:
    the message is deferred as a lost connection and tried again. (Which
    of the failed send and the failed receive the loop sees first is the
    kernel's choice; tests/unit/test_io_conn.c makes the send first.)"""
    sink = Sink(stall_after=200000)
    try:
        srv = relay_server(make_server, sink, retry_min="1s", retry_max="2s")
        body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 4000
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
            s.sendmail("from@example.org", ["resetonce@example.com"], body)
        assert wait_log(srv, r"to=<resetonce@example\.com> .*status=deferred", timeout=20), \
            srv.read_log()
        assert sink.resets == 1
        assert sink.wait_for(1, timeout=30), srv.read_log()
        assert wait_log(srv, r"to=<resetonce@example\.com> .*attempt=2 .*status=sent")
    finally:
        sink.stop()


def test_after_a_421_to_the_dot_the_next_message_takes_a_new_session(make_server):
    """A 421 to the end of data says the server closes (RFC 5321 3.8): the
    next message must not start on that session (its MAIL met a closed
    connection, which cost it an attempt and a retry an hour later, and
    could leave it held by the freed session). No PIPELINING, so no
    transaction went out behind the dot."""
    sink = ProviderSink("127.0.0.7", 0, pipelining=False,
                        data_reply_close="421 4.3.2 Shutting down, closing connection.")
    port = sink.server.sockets[0].getsockname()[1]
    site = "[127.0.0.7]:%d" % port
    try:
        srv = make_server(delivery="yes", relayhost=site, retry_min="1h", retry_max="2h",
                          destination_concurrency_limit=1).start()
        assert curl(srv, "/api/v1/suspend", "POST", {"site": site, "duration": "1h"})[0] == 200
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
            for i in range(5):
                s.sendmail("a@example.org", ["n%d@example.com" % i], b"Subject: s\r\n\r\nb\r\n")
        assert wait_until(lambda: srv.read_log().count("suspended by admin\"") == 5, 20), \
            srv.read_log()
        code, j = curl(srv, "/api/v1/resume", "POST", {"site": site})
        assert code == 200 and j["messages_due_now"] == 5, j
        assert sink.wait_for(4, timeout=20), srv.read_log()
        log = srv.read_log()
        assert len(re.findall(r"relay=\S+ .*status=deferred .*421 4\.3\.2", log)) == 1, log
        assert "lost connection" not in log, log
        assert len(re.findall(r"relay=\S+ .*status=sent", log)) == 4, log
    finally:
        sink.stop()
