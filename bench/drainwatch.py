#!/usr/bin/python3
"""drainwatch.py - watch a queue drain into bench/smtp-sink (bench/fanout.sh).

  drainwatch.py SINK_PID SINK_OUT BASE TARGET T0 TIMEOUT MTA_PID SAMPLES [METRICS_URL [SITES_RE]]

Every POLL (0.2) s it sends the sink SIGUSR1 and reads the counter line it prints on
SINK_OUT; every second it also writes a sample line to SAMPLES: seconds since T0, the
sink's messages (less BASE) and open sessions, the MTA tree's RSS and RssAnon
(bench/proctree.py), and, with METRICS_URL, the sum of the metric series whose names
match SITES_RE (default: ringmta_.*sites?\\b, the engine's count of active sites, when it
has one). It stops when the sink has TARGET messages more than BASE, or TIMEOUT s after
T0, or when the sink is gone, and prints one key=value line:

  end=EPOCH delivered=N status=ok|timeout|sink-gone t_first= t10= t50= t90= (seconds
  after T0 when the first, 10 %, 50 %, 90 % of TARGET had arrived) peak_rss_kb=
  peak_anon_kb= peak_sinksess= (sink sessions open at once, sampled) peak_sites=
  (NA without the metric) rss_at50_kb= anon_at50_kb= sites_at50= (the sample nearest
  to the middle of the drain)

With POST=S in the environment it goes on sampling for up to S seconds once everything
has arrived, until the sink has no session open (the MTA closed its idle connections)
and then AFTER (5) s more, and adds idle_after_s= (when the last session closed, NA if
none did) rss_idle_kb= anon_idle_kb= (the last sample): the memory the MTA keeps for
the destinations it knows without their connections (allocator caches included).

The counts are dated when the signal was sent, as in bench/e2e.sh.
"""
import os
import re
import signal
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import proctree  # noqa: E402  (bench/proctree.py)

POLL = float(os.environ.get("POLL", "0.2"))


def tail(path):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            n = fh.tell()
            fh.seek(max(0, n - 2048))
            return fh.read()
    except OSError:
        return b""


def sink_counts(path):
    for ln in reversed(tail(path).split(b"\n")[:-1]):
        m = re.search(rb"messages=(\d+)", ln)
        if m:
            c = re.search(rb"cur_sessions=(\d+)", ln)
            return int(m.group(1)), int(c.group(1)) if c else 0
    return None, None


def mem(pid):
    d = dict(x.split("=", 1) for x in proctree.snap([pid]).split())
    return int(d.get("rss_kb", 0)), int(d.get("anon_kb", 0))


def sites(url, rx):
    if not url:
        return None
    try:
        text = urllib.request.urlopen(url, timeout=1).read().decode()
    except OSError:
        return None
    tot, seen = 0.0, False
    for ln in text.splitlines():
        if ln.startswith("#"):
            continue
        name = ln.split("{", 1)[0].split(" ", 1)[0]
        if rx.search(name):
            try:
                tot += float(ln.rsplit(" ", 1)[1])
                seen = True
            except (IndexError, ValueError):
                pass
    return tot if seen else None


def main(a):
    if len(a) < 8:
        print(__doc__)
        return 2
    signal.signal(signal.SIGINT, lambda *x: sys.exit(130))
    spid, sout, base, target, t0, timeout, mpid, samples = a[:8]
    spid, base, target, t0, timeout = int(spid), int(base), int(target), float(t0), float(timeout)
    url = a[8] if len(a) > 8 else ""
    rx = re.compile(a[9] if len(a) > 9 else r"^ringmta_.*sites?\b")
    marks = {"t_first": 1, "t10": max(1, target // 10), "t50": max(1, target // 2),
             "t90": max(1, target * 9 // 10)}
    hit = {}
    peak = {"rss": 0, "anon": 0, "sess": 0, "sites": None}
    rows = []
    got, status, next_sample = 0, "timeout", 0.0
    with open(samples, "w") as sf:
        sf.write("t_s delivered sink_sessions rss_kb anon_kb sites\n")
        while True:
            ts = time.time()
            try:
                os.kill(spid, signal.SIGUSR1)
            except ProcessLookupError:
                status = "sink-gone"
                break
            time.sleep(POLL)
            c, cur = sink_counts(sout)
            if c is None:
                continue
            got = c - base
            for k, v in marks.items():
                if k not in hit and got >= v:
                    hit[k] = ts - t0
            peak["sess"] = max(peak["sess"], cur)
            if ts >= next_sample:
                next_sample = ts + 1.0
                rss, anon = mem(mpid)
                st = sites(url, rx)
                peak["rss"], peak["anon"] = max(peak["rss"], rss), max(peak["anon"], anon)
                if st is not None:
                    peak["sites"] = max(peak["sites"] or 0, st)
                rows.append((got, rss, anon, st))
                sf.write(f"{ts - t0:.1f} {got} {cur} {rss} {anon} "
                         f"{'NA' if st is None else f'{st:.0f}'}\n")
                sf.flush()
            if got >= target:
                status = "ok"
                break
            if ts - t0 > timeout:
                break
    post, idle = float(os.environ.get("POST", "0")), {}
    if status == "ok" and post > 0:
        t_end, closed = time.time() + post, None
        while time.time() < t_end:
            time.sleep(1.0)
            try:
                os.kill(spid, signal.SIGUSR1)
            except ProcessLookupError:
                break
            time.sleep(POLL)
            _, cur = sink_counts(sout)
            rss, anon = mem(mpid)
            now = time.time()
            with open(samples, "a") as sf:
                sf.write(f"{now - t0:.1f} {got} {cur} {rss} {anon} NA\n")
            idle["rss_idle_kb"], idle["anon_idle_kb"] = rss, anon
            if cur == 0 and closed is None:
                closed = now
                t_end = min(t_end, now + float(os.environ.get("AFTER", "5")))
        idle["idle_after_s"] = "NA" if closed is None else f"{closed - ts:.1f}"

    mid = min(rows, key=lambda r: abs(r[0] - target / 2)) if rows else (0, 0, 0, None)
    f = lambda x: "NA" if x is None else f"{x:.2f}"
    print(f"end={ts:.6f} delivered={got} status={status} "
          + " ".join(f"{k}={f(hit.get(k))}" for k in marks)
          + f" peak_rss_kb={peak['rss']} peak_anon_kb={peak['anon']} peak_sinksess={peak['sess']}"
          + f" peak_sites={'NA' if peak['sites'] is None else int(peak['sites'])}"
          + f" rss_at50_kb={mid[1]} anon_at50_kb={mid[2]}"
          + f" sites_at50={'NA' if mid[3] is None else int(mid[3])}"
          + "".join(f" {k}={v}" for k, v in idle.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
