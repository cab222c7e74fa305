"""The queue's store failing beyond repair inside the process: LMDB answers
MDB_PANIC to every transaction once a write of its meta page failed (a
dying disk). A test hook makes LMDB's answer from the Nth write
transaction on (RINGMTA_TEST_LMDB_PANIC; the real one needs an I/O error
on the device). The message of that commit gets 4xx, never 250; ringmta
stops by itself with exit status 1, so that a service manager restarts it
(dist/ringmta.service: Restart=on-failure), and the restart finds every
acknowledged message, as LMDB reopens at its last good commit."""
import os

from conftest import Raw


def send(srv, token):
    """One message on its own connection; the reply to its end of data."""
    c = Raw(srv.port)
    c.cmd("EHLO fatal")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    c.cmd("DATA")
    c.send(("Subject: %s\r\n\r\nbody %s\r\n.\r\n" % (token, token)).encode())
    r = c.reply()[-1]
    c.close()
    return r


def test_lmdb_panic_stops_with_status_1_and_loses_nothing(make_server):
    # queue_journal = no: every message is its own LMDB write transaction.
    srv = make_server(queue_journal="no")
    os.environ["RINGMTA_TEST_LMDB_PANIC"] = "4"
    try:
        srv.start()
    finally:
        del os.environ["RINGMTA_TEST_LMDB_PANIC"]
    acked, refused = [], None
    for i in range(10):
        r = send(srv, "fatal%d" % i)
        if not r.startswith("250"):
            refused = r
            break
        acked.append("fatal%d" % i)
    assert refused is not None and refused.startswith("4"), (refused, srv.read_log())
    assert acked, srv.read_log()
    rc = srv.proc.wait(timeout=60)
    srv.log.close()
    log = srv.read_log()
    assert rc == 1, log
    assert "the store failed beyond repair in this process (MDB_PANIC" in log, log
    assert "stopped: the queue's store failed (above); exit status 1" in log, log

    srv.start()     # no hook now: LMDB opens at its last commit
    assert srv.queue_count() == len(acked)
    shown = "".join(srv.queue_show(q) for q in srv.queue_ids())
    for t in acked:
        assert "Subject: %s\r\n" % t in shown
    assert "Subject: fatal%d\r\n" % len(acked) not in shown
    assert send(srv, "after").startswith("250")
