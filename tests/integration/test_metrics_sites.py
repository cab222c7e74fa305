"""Metrics per site, provider and source with bounded cardinality
(metrics_top_sites), ringmta_build_info and the event backlog metrics.

Mail to 10,025 destination domains on loopback: a DNS server of the test
(dnsbulk.py) answers A and no MX (implicit MX, so each domain is a site
of its own); 10,000 domains point at an address where nothing listens
(each is deferred after its connection is refused, cheaply), 25 busier
ones at the scripted sink (which refuses permfail@ and defers tempfail@). What is
asserted on the real /metrics output: promtool accepts it, every per-site
family has at most N+1 site values, the N busiest are named, "other"
carries the rest, the series of each family add up to the totals; later,
with new busy sites, every series only grows and the bound is 2N+1."""
import os
import re
import smtplib
import subprocess
import time
import urllib.request
import zlib

import pytest

from conftest import free_port
from dnsbulk import BulkDns
from sink import Sink
from test_routing import server  # noqa: F401 (the same delivery settings)

TOP = 20
NBULK = 10000
NBIG = 25

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        return r.read().decode()


def promtool_ok(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out[:2000]
    # Nor a lint remark on the families of this file.
    mine = re.compile(r"ringmta_(site|provider|source)_(recipients|bounced|connections|ready|"
                      r"in_flight|suspended)|ringmta_build_info")
    assert not [line for line in out.splitlines() if mine.search(line)], out[:2000]


def samples(text):
    """[(name, {label: value}, float)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def series(text, name):
    """{frozenset(labels): value} of one family."""
    return {frozenset(l.items()): v for n, l, v in samples(text) if n == name}


def value(text, name, **labels):
    return series(text, name)[frozenset(labels.items())]


def by(text, name, label, **match):
    """{label value: value} of a family's samples matching match."""
    out = {}
    for n, l, v in samples(text):
        if n == name and all(l.get(k) == x for k, x in match.items()):
            out[l[label]] = out.get(l[label], 0) + v
    return out


def big_rcpts(i):
    """Recipients of big site i: 45 - i of them, the busiest first."""
    n = 45 - i
    rcpts = ["u%d@big%02d.test" % (k, i) for k in range(n)]
    if i == 0:
        rcpts[0] = "permfail@big00.test"    # bounced, invalid-recipient
    if i == 1:
        rcpts[0] = "tempfail@big01.test"    # deferred
    if i == NBIG - 1:
        rcpts[0] = "permfail@big%02d.test" % i  # a bounce in "other"
    return rcpts


def send_all(srv, rcpts, per_msg=1000):
    """From the null sender (no DSN comes back), up to per_msg each."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=120) as s:
        for k in range(0, len(rcpts), per_msg):
            s.sendmail("", rcpts[k:k + per_msg], b"Subject: s\r\n\r\nbody\r\n")


def wait_outcomes(srv, n, timeout):
    """Until the log has n recipients' outcomes (not through /metrics: a
    scrape chooses the names shown)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = srv.read_log().count(" status=")
        if got >= n:
            return got
        time.sleep(0.5)
    return srv.read_log().count(" status=")


@pytest.fixture
def world():
    port = free_port()
    records = {"bulk%05d.test" % j: "127.0.0.2" for j in range(NBULK)}
    records.update({"big%02d.test" % i: "127.0.0.3" for i in range(NBIG)})
    records.update({"hot%d.test" % i: "127.0.0.3" for i in range(5)})
    dns = BulkDns(records)
    big = Sink("127.0.0.3", port)
    yield dns, port, big
    big.stop()
    dns.stop()


def outcomes(log):
    """{domain: {delivered, deferred, bounced}} from the log's lines."""
    names = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced"}
    out = {}
    for dom, st in re.findall(r" to=<[^@>]*@([^>]+)> .* status=(sent|deferred|bounced) ", log):
        d = out.setdefault(dom, {"delivered": 0, "deferred": 0, "bounced": 0})
        d[names[st]] += 1
    return out


def check_bounded(text, limit):
    """Every ringmta_site_* family: at most limit site values."""
    fams = {n for n, _, _ in samples(text) if n.startswith("ringmta_site_")}
    assert {"ringmta_site_recipients_total", "ringmta_site_connections_total",
            "ringmta_site_ready", "ringmta_site_in_flight"} <= fams, fams
    for fam in fams:
        sites = {l["site"] for n, l, _ in samples(text) if n == fam}
        assert len(sites) <= limit, (fam, len(sites))


def check_sums(text):
    """Each dimension's series add up to the totals."""
    for res in ("delivered", "deferred", "bounced"):
        total = value(text, "ringmta_recipients_total", result=res)
        for dim in ("site", "provider", "source"):
            got = sum(by(text, "ringmta_%s_recipients_total" % dim, dim, result=res).values())
            assert got == total, (dim, res, got, total)
    for res in ("opened", "failed"):
        per = [sum(by(text, "ringmta_%s_connections_total" % dim, dim, result=res).values())
               for dim in ("site", "provider", "source")]
        assert per[0] == per[1] == per[2], (res, per)


def test_ten_thousand_destinations_stay_bounded(make_server, world):
    dns, port, big = world
    mport = free_port()
    url = "http://127.0.0.1:%d" % mport
    srv = server(make_server, dns, port, metrics_listen="127.0.0.1:%d" % mport,
                 metrics_top_sites=TOP, max_recipients=1000)
    rcpts = ["u@bulk%05d.test" % j for j in range(NBULK)]
    for i in range(NBIG):
        rcpts += big_rcpts(i)
    nbig = sum(45 - i for i in range(NBIG))
    # Mixed, so no site is done before the others start.
    rcpts.sort(key=lambda r: (zlib.crc32(r.encode()) & 0xffff, r))
    send_all(srv, rcpts)
    got = wait_outcomes(srv, len(rcpts), timeout=120)
    assert got == len(rcpts), got
    # What the log says per domain and outcome: what the series must say.
    # (A burst of 30,000 DNS queries on loopback loses a few answers:
    # some domains are deferred after a DNS timeout; the counts hold.)
    want = outcomes(srv.read_log())
    assert sum(want["bulk%05d.test" % j]["deferred"] for j in range(NBULK)) == NBULK
    time.sleep(1.5)     # the workers publish their gauges once a second

    text = scrape(url)
    promtool_ok(text)
    check_bounded(text, TOP + 1)
    sites = by(text, "ringmta_site_recipients_total", "site", result="delivered")
    # The N busiest by name, the rest in "other".
    assert set(sites) == {"big%02d.test" % i for i in range(TOP)} | {"other"}, sorted(sites)
    named = ["big%02d.test" % i for i in range(TOP)]
    for i, site in enumerate(named):
        assert sum(want[site].values()) == 45 - i, (site, want[site])
        for res in ("delivered", "deferred", "bounced"):
            assert value(text, "ringmta_site_recipients_total", site=site,
                         result=res) == want[site][res], (site, res, want[site])
    for res in ("delivered", "deferred", "bounced"):
        rest = sum(v[res] for d, v in want.items() if d not in named)
        assert value(text, "ringmta_site_recipients_total", site="other",
                     result=res) == rest, res
    assert value(text, "ringmta_site_recipients_total", site="other",
                 result="deferred") >= NBULK
    if want["big00.test"]["bounced"]:       # permfail@ got its 550
        assert value(text, "ringmta_site_bounced_total", site="big00.test",
                     **{"class": "invalid-recipient"}) == 1
    # A site that delivered had a session; a bulk site whose address was
    # known, one that failed (the rest timed out in DNS: no connection).
    opened = by(text, "ringmta_site_connections_total", "site", result="opened")
    failed = by(text, "ringmta_site_connections_total", "site", result="failed")
    assert all(opened[s] >= 1 for s in named if want[s]["delivered"]), opened
    assert 0 < failed["other"] <= NBULK, failed
    assert by(text, "ringmta_site_ready", "site")["other"] == 0
    assert set(by(text, "ringmta_site_suspended", "site").values()) == {0}
    # Providers: none (sites of no provider, "-"); one source.
    assert set(by(text, "ringmta_provider_recipients_total", "provider")) <= {"-", "other"}
    assert set(by(text, "ringmta_source_recipients_total", "source")) <= {"default", "other"}
    check_sums(text)
    before = {(n, frozenset(l.items())): v for n, l, v in samples(text)
              if n.endswith("_total") and any(k in l for k in ("site", "provider", "source"))}

    # New busy sites join while there is room; nothing goes down.
    more = ["u%d@hot%d.test" % (k, i) for i in range(5) for k in range(60)]
    send_all(srv, more)
    got = wait_outcomes(srv, NBULK + nbig + len(more), timeout=120)
    assert got == NBULK + nbig + len(more), got
    want2 = outcomes(srv.read_log())
    time.sleep(1.5)
    text2 = scrape(url)
    promtool_ok(text2)
    check_bounded(text2, 2 * TOP + 1)
    sites2 = by(text2, "ringmta_site_recipients_total", "site", result="delivered")
    assert all(sites2["hot%d.test" % i] == want2["hot%d.test" % i]["delivered"]
               and sum(want2["hot%d.test" % i].values()) == 60 for i in range(5)), sites2
    assert sites2["other"] == sites["other"]
    for (n, labels), v in before.items():
        now = series(text2, n).get(labels)
        assert now is not None and now >= v, (n, dict(labels), v, now)
    check_sums(text2)
    # A third scrape with nothing new: the same names, the same values.
    text3 = scrape(url)
    assert by(text3, "ringmta_site_recipients_total", "site", result="delivered") == sites2
    # The operator suspends a named site and the source: 1 while in force.
    srv.cli("suspend", "--site", "big03.test", "--duration", "1h")
    srv.cli("suspend", "--source", "default", "--duration", "1h")
    text4 = scrape(url)
    promtool_ok(text4)
    susp = by(text4, "ringmta_site_suspended", "site")
    assert susp["big03.test"] == 1 and sum(susp.values()) == 1, susp
    assert by(text4, "ringmta_source_suspended", "source") == {"default": 1}


def test_build_info_and_event_backlog(make_server, tmp_path):
    sink = Sink()
    try:
        mport = free_port()
        evlog = tmp_path / "events.log"
        srv = make_server(delivery="yes", relayhost="[127.0.0.1]:%d" % sink.port,
                          retry_min="1h", retry_max="2h", event_log=str(evlog),
                          metrics_listen="127.0.0.1:%d" % mport, metrics_top_sites=0).start()
        send_all(srv, ["a@x.test", "permfail@y.test"])
        assert wait_outcomes(srv, 2, timeout=30) == 2
        deadline = time.time() + 10
        while time.time() < deadline:
            text = scrape("http://127.0.0.1:%d" % mport)
            if value(text, "ringmta_events_pending", sink="log") == 0:
                break
            time.sleep(0.1)
        promtool_ok(text)
        info = series(text, "ringmta_build_info")
        assert len(info) == 1
        labels, v = dict(next(iter(info))), next(iter(info.values()))
        assert v == 1 and labels["version"] == "0.1.0", labels
        assert re.fullmatch(r"\d+", labels["boringssl"]) and labels["microhttpd"], labels
        # The event store and its sink: stored, drained, nothing dropped.
        assert value(text, "ringmta_events_stored") >= 2
        assert value(text, "ringmta_events_last_id") >= 2
        assert value(text, "ringmta_events_dropped_total") == 0
        assert value(text, "ringmta_events_pending", sink="log") == 0
        assert value(text, "ringmta_event_sink_requests_total", sink="log") >= 1
        assert value(text, "ringmta_event_sink_failures_total", sink="log") == 0
        assert value(text, "ringmta_event_sink_last_success_seconds", sink="log") > 0
        # metrics_top_sites = 0: only "other", which still adds up.
        assert set(by(text, "ringmta_site_recipients_total", "site")) == {"other"}
        check_sums(text)
    finally:
        sink.stop()
