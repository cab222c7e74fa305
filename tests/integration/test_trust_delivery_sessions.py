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

from conftest import wait_log, relay_server

from sink import Sink




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
