"""The delivery scheduler without memory for its bookkeeping. The set of
messages in flight and the list of messages whose round ended both grow
on the heap; when an allocation fails there, a message must neither be
handed to a worker twice (a duplicate at the receiver) nor be lost to
the scheduler (never retried until a restart).

tests/tools/libfailalloc.so (LD_PRELOAD) makes the chosen allocations
fail, made from the chosen functions (their ranges in the binary from
nm): calloc(1024, 8) in dlv_idset_add is the in-flight set's first table
(core/delivery/delivery_ids.c), realloc(NULL, 2048) in dlv_id_list_add
an id list's first array. Release builds only: ASan owns the allocator
in the other."""
import os
import smtplib
import subprocess
import time

import pytest

from conftest import BIN
from sink import Sink

SHIM = os.path.join(os.path.dirname(os.path.dirname(BIN)), "tests", "tools", "libfailalloc.so")


def _sanitized():
    r = subprocess.run(["ldd", BIN], capture_output=True, text=True)
    return "libasan" in r.stdout


pytestmark = pytest.mark.skipif(not os.path.exists(SHIM) or _sanitized(),
                                reason="no libfailalloc.so, or a sanitizer build")


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def symbols():
    """(address, type, name) of the binary's symbols, in address order."""
    out = subprocess.run(["nm", "-n", BIN], capture_output=True, text=True, check=True).stdout
    return [(int(f[0], 16), f[1], f[2]) for f in (ln.split() for ln in out.splitlines())
            if len(f) == 3]


def has_function(name):
    """Whether the compiler kept name as a function of its own (a static
    one may be inlined into its callers, depending on the build)."""
    return any(sym == name and kind in "tT" for _, kind, sym in symbols())


def code_range(*names):
    """'LO-HI' (hex offsets in the binary) of the first of names that nm
    lists as a function, to the next symbol's address."""
    syms = symbols()
    for name in names:
        for i, (addr, kind, sym) in enumerate(syms):
            if sym == name and kind in "tT":
                nxt = next(a for a, _, _ in syms[i + 1:] if a > addr)
                return "%x-%x" % (addr, nxt)
    raise AssertionError("none of %s in %s" % (names, BIN))


def start_failing(make_server, sink, spec, tmp_path, **kw):
    settings = dict(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                    retry_min="1s", retry_max="2s")
    settings.update(kw)
    srv = make_server(**settings)
    log, arm = str(tmp_path / "failalloc.log"), tmp_path / "failalloc.arm"
    os.environ.update(LD_PRELOAD=SHIM, FAILALLOC=spec, FAILALLOC_LOG=log,
                      FAILALLOC_ARM=str(arm))
    try:
        srv.start()
    finally:
        for k in ("LD_PRELOAD", "FAILALLOC", "FAILALLOC_LOG", "FAILALLOC_ARM"):
            del os.environ[k]
    arm.touch()     # from now on: ringmta's start allocates such tables too
    return srv, log


def send(srv, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("from@example.org", [rcpt], "Subject: %s\r\n\r\nbody\r\n" % subject)


def failures(log):
    try:
        with open(log) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def delivered_once(srv, sink):
    """The one message arrives, leaves the queue, and no second copy
    follows within a scan and a half."""
    assert sink.wait_for(1, timeout=20), srv.read_log()
    deadline = time.time() + 20
    while time.time() < deadline and srv.queue_count() != 0:
        time.sleep(0.1)
    assert srv.queue_count() == 0, srv.read_log()
    time.sleep(1.5)
    assert srv.proc.poll() is None, srv.read_log()
    assert len(sink.messages) == 1, ([m["data"][:60] for m in sink.messages], srv.read_log())


def test_inflight_set_without_memory_never_sends_twice(make_server, tmp_path):
    # The receiver holds the final DATA reply 2.5 s, longer than the
    # scheduler's scan (1 s): a message handed out while the in-flight set
    # could not take its id would be handed out again by that scan.
    sink = Sink(data_delay=2.5)
    try:
        srv, log = start_failing(make_server, sink, "calloc:1024:8:2:" +
                                 code_range("idset_grow", "dlv_idset_add"), tmp_path)
        send(srv, "once@example.com", "once")
        delivered_once(srv, sink)
        assert failures(log) == ["calloc 1024 8"] * 2, failures(log)
        assert srv.read_log().count("status=sent") == 1, srv.read_log()
    finally:
        sink.stop()


def test_done_list_without_memory_still_retries(make_server, tmp_path, sink):
    # An id list's first array fails three times: the first is where the
    # message's deferral ended its round (an id list once; now nothing is
    # allocated there), the others the next scans' lists of due mail
    # (dropped ids: the scan after finds them). The round must end in the
    # scheduler, so that a retry happens and the message is delivered.
    srv, log = start_failing(make_server, sink, "realloc0:2048:3:" +
                             code_range("dlv_id_list_add"), tmp_path)
    send(srv, "tempthenok@example.com", "retried")
    assert sink.wait_for(1, timeout=20), srv.read_log() + "\n".join(failures(log))
    assert failures(log) == ["realloc0 2048"] * 3, failures(log)
    log_text = srv.read_log()
    assert "status=deferred" in log_text and "status=sent" in log_text, log_text


def test_message_without_memory_for_its_recipients_waits(make_server, tmp_path, sink):
    # The scheduler reads a message to hand it out: the struct (let
    # through), then its recipients' array, which fails once. Before, the
    # half-built message was freed as if it had its recipients (a NULL
    # read: the process died); now it stays in the schedule and the next
    # scan hands it out.
    srv, log = start_failing(make_server, sink,
                             "calloc:1:0:1:%s:1" % code_range("dlv_build_cb"), tmp_path)
    send(srv, "alive@example.com", "alive")
    delivered_once(srv, sink)
    got = failures(log)
    assert len(got) == 1 and got[0].startswith("calloc 1 "), got


def test_result_not_stored_is_kept_not_sent_again(make_server, tmp_path, sink):
    # The delivery result's update fails once for want of memory (the
    # record's recipients, read in the committer's transaction). Before,
    # the message was let go as if nothing had been tried, and the next
    # scan sent it again; now the same update is submitted again.
    # queue_journal = no: the update is an LMDB write (with the journal,
    # a delivered message's removal is a journal record).
    srv, log = start_failing(make_server, sink,
                             "calloc:1:0:1:%s" % code_range("queue_apply", "queue_apply_update"),
                             tmp_path, queue_journal="no")
    send(srv, "stored@example.com", "stored")
    delivered_once(srv, sink)
    assert len(failures(log)) == 1, failures(log)
    text = srv.read_log()
    assert "kept, and submitted again" in text and "stored after 1 failed tries" in text, text


def test_suspension_not_saved_leaves_the_old_one(make_server, tmp_path, sink):
    # A suspension replaced, or lifted, whose save fails (the buffer of
    # the saved table: the second and third saves, those of the second
    # suspend and the first resume): the caller is told, and the one in
    # force stays as saved. Before, a replaced one was gone from memory
    # (mail flowed to a site the operator had suspended) while the saved
    # table still had it.
    from test_admin_api import curl
    if has_function("dlv_susp_save"):   # every save's malloc is made there
        spec = "malloc:0:2:%s:1" % code_range("dlv_susp_save")
    else:                               # inlined into its two callers
        spec = "malloc:0:1:%s:1,malloc:0:1:%s" % (code_range("delivery_suspend"),
                                                   code_range("delivery_resume"))
    srv, log = start_failing(make_server, sink, spec, tmp_path)
    code, j = curl(srv, "/api/v1/suspend", "POST",
                   {"domain": "hold.example", "duration": "2h", "reason": "first"})
    assert code == 200, j
    code, j = curl(srv, "/api/v1/suspend", "POST",
                   {"domain": "hold.example", "duration": "5h", "reason": "second"})
    assert code != 200, j
    code, j = curl(srv, "/api/v1/suspensions")
    assert code == 200 and [(x["name"], x["reason"]) for x in j["suspensions"]] == \
        [("hold.example", "first")], j
    assert 7000 < j["suspensions"][0]["remaining_s"] <= 7200, j
    code, j = curl(srv, "/api/v1/resume", "POST", {"domain": "hold.example"})
    assert code != 200, j
    code, j = curl(srv, "/api/v1/suspensions")
    assert [x["reason"] for x in j["suspensions"]] == ["first"], j
    assert failures(log) == [f for f in failures(log) if f.startswith("malloc ")]
    assert len(failures(log)) == 2, failures(log)
    # The next save works: resume lifts it.
    assert curl(srv, "/api/v1/resume", "POST", {"domain": "hold.example"})[0] == 200
    assert curl(srv, "/api/v1/suspensions")[1]["suspensions"] == []


def test_flush_of_the_whole_queue_without_memory_says_so(make_server, tmp_path):
    # `queue flush --all` lists every message first: a list that stops
    # short for want of memory is an error, not "flushed 0 messages".
    srv = make_server().start()
    send(srv, "later@example.com", "later")
    assert srv.stop() == 0
    env = dict(os.environ, LD_PRELOAD=SHIM, FAILALLOC_LOG=str(tmp_path / "failalloc.log"),
               FAILALLOC="realloc0:2048:1:" + code_range("queue_flush_collect"))
    r = subprocess.run([BIN, "-c", srv.conf, "queue", "flush", "--all"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "flushed" not in r.stdout and "memory" in r.stderr, (r.stdout, r.stderr)
    assert failures(str(tmp_path / "failalloc.log")) == ["realloc0 2048"]
    r = subprocess.run([BIN, "-c", srv.conf, "queue", "flush", "--all"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "flushed 1 message" in r.stdout, (r.stdout, r.stderr)
