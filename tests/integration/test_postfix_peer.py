"""Postfix as a real receiving MTA: ringmta relays to a Postfix (brought
up by the shared rig's postfix-up.sh on a loopback port), which relays on
to a scripted sink. The sink sees Postfix's own Received header above
ringmta's, and the body intact. Needs root and Debian's postfix."""
import smtplib

import pytest

from conftest import postfix_next_hop, postfix_usable
from sink import Sink


@pytest.mark.skipif(not postfix_usable(), reason="needs root, postfix and ../shared/rig")
def test_delivery_to_postfix(make_server):
    sink = Sink()
    try:
        with postfix_next_hop(sink) as pport:
            srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % pport,
                              dns_servers="127.0.0.1:9", retry_min="1h", retry_max="2h").start()
            body = b"Subject: via postfix\r\nMessage-ID: <pf@x>\r\n\r\n.dot line\r\nend\r\n"
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
                s.sendmail("from@example.org", ["to@example.com", "cc@example.net"], body)
            assert sink.wait_for(1, timeout=60)
            got = b"".join(m["data"] for m in sink.messages)
            assert b"by rig.localdomain (Postfix)" in got
            assert b"(ringmta) with ESMTP" in got
            assert got.endswith(b".dot line\r\nend\r\n")
            rcpts = sorted(r for m in sink.messages for r in m["rcpts"])
            assert rcpts == ["cc@example.net", "to@example.com"]
            assert "status=sent" in srv.read_log()
    finally:
        sink.stop()
