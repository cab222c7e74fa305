#!/usr/bin/python3
"""shapetable.py - the tables of the traffic-shaping measurements (issue 10) from their
raw logs (system python3, stdlib only; the parsing helpers are benchtable.py's).

  shapetable.py ab RAW.log       bench/rules-ab.sh: e2e runs without rules (A) and with
                                 the shipped rules + generated overrides (B), interleaved
  shapetable.py fanout RAW.log   bench/fanout.sh: the drain to many domains against one
  shapetable.py defer RAW.log    bench/defer.sh: attempts per delivered message, per MTA

Medians where a variant ran more than once; ratios are B / A and fan / one.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchtable import fnum, fmt, parse  # noqa: E402


def runs_of(path, tool):
    with open(path) as f:
        return [d for d in (parse(ln) for ln in f) if d.get("tool") == tool]


def per(r, key, n_key="delivered", scale=1.0):
    x, n = fnum(r.get(key)), fnum(r.get(n_key))
    return x / n * scale if x is not None and n else None


def row(cells):
    print("| " + " | ".join(cells) + " |")


def head(cells):
    row(cells)
    print("|" + "---|" * len(cells))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(a, b):
    return f"{a / b * 100:.1f} %" if a is not None and b else "n/a"


# ---------------------------------------------------------------- rules A/B
AB_COLS = [("e2e msg/s", lambda r: fnum(r.get("e2e_msgs_per_sec")), 0),
           ("ringmta CPU ms/msg", lambda r: per(r, "mta_cpu_s", scale=1000), 3),
           ("disk KiB/msg (ringmta)", lambda r: per(r, "mta_wbytes", scale=1 / 1024), 2),
           ("disk KiB/msg (box)", lambda r: per(r, "disk_wbytes", scale=1 / 1024), 2),
           ("ctx switches/msg", lambda r: per(r, "mta_ctxsw"), 2),
           ("syscalls/msg", lambda r: per(r, "mta_syscalls"), 2),
           ("RSS MiB at end", lambda r: (fnum(r.get("mta_rss_kb")) or 0) / 1024 or None, 1)]


def ab(path):
    rs = runs_of(path, "e2e")
    scen = []
    for r in rs:
        if r.get("scenario") not in scen:
            scen.append(r.get("scenario"))
    for sc in scen:
        mine = [r for r in rs if r.get("scenario") == sc]
        print(f"\n{sc}: every run, in the order they ran\n")
        head(["pair", "variant"] + [c[0] for c in AB_COLS] + ["delivered / status"])
        for r in mine:
            bad = []
            if r.get("e2e_status") != "ok":
                bad.append(r.get("e2e_status", "?"))
            if r.get("exit_rc", "0") != "0":
                bad.append("rc=" + r["exit_rc"])
            if r.get("queued", "0") != "0":
                bad.append("queued=" + r.get("queued", "?"))
            row([r.get("pair", "?"), r.get("variant", "?")] +
                [fmt(fn(r), nd) for _, fn, nd in AB_COLS] +
                [f"{r.get('delivered')}/{r.get('messages')} " + (" ".join(bad) or "ok")])
        print(f"\n{sc}: medians, B (shipped rules + overrides) against A (no rules)\n")
        head(["figure", "A", "B", "B / A"])
        for name, fn, nd in AB_COLS:
            a = med([fn(r) for r in mine if r.get("variant") == "A"])
            b = med([fn(r) for r in mine if r.get("variant") == "B"])
            row([name, fmt(a, nd), fmt(b, nd), pct(b, a)])
        pairs = sorted({r.get("pair") for r in mine})
        ratios = []
        for p in pairs:
            a = [fnum(r.get("e2e_msgs_per_sec")) for r in mine
                 if r.get("pair") == p and r.get("variant") == "A"]
            b = [fnum(r.get("e2e_msgs_per_sec")) for r in mine
                 if r.get("pair") == p and r.get("variant") == "B"]
            if a and b and a[0] and b[0]:
                ratios.append(f"pair {p}: {b[0] / a[0] * 100:.1f} %")
        if ratios:
            print("\nmsg/s B / A per pair: " + ", ".join(ratios))


# ---------------------------------------------------------------- fan-out
def fanout(path):
    rs = runs_of(path, "fanout")
    one = next((r for r in rs if r.get("mode") == "one"), None)
    head(["mode", "messages", "domains", "MX names", "conc", "queue msg/s", "drain s",
          "drain msg/s", "msg/s 10-90 %", "/ one (whole, 10-90 %)", "ringmta CPU ms/msg",
          "sink CPU ms/msg", "dnsmasq CPU s", "disk writes KiB/msg (ringmta / box)",
          "ctx switches/msg", "syscalls/msg", "peak RSS / RssAnon MiB", "peak sink sessions",
          "status"])
    for r in rs:
        ratio = "-"
        if one is not None and r is not one:
            ratio = pct(fnum(r.get("drain_msgs_per_sec")), fnum(one.get("drain_msgs_per_sec"))) \
                + " / " + pct(fnum(r.get("steady_msgs_per_sec")),
                              fnum(one.get("steady_msgs_per_sec")))
        st = r.get("status", "?")
        if r.get("exit_rc", "0") != "0":
            st += " rc=" + r["exit_rc"]
        if r.get("queued", "0") != "0":
            st += " queued=" + r.get("queued", "?")
        mib = lambda k: fnum(r.get(k)) / 1024 if fnum(r.get(k)) is not None else None
        row([r.get("mode", "?"), fmt(fnum(r.get("queued_before"))), r.get("domains", "?"),
             r.get("mx_names", "?"), r.get("conc", "?"), fmt(fnum(r.get("inject_msgs_per_sec"))),
             fmt(fnum(r.get("drain_s")), 1), fmt(fnum(r.get("drain_msgs_per_sec"))),
             fmt(fnum(r.get("steady_msgs_per_sec"))), ratio,
             fmt(per(r, "mta_cpu_s", scale=1000), 3), fmt(per(r, "sink_cpu_s", scale=1000), 3),
             fmt(fnum(r.get("dns_cpu_s")), 2),
             fmt(per(r, "mta_wbytes", scale=1 / 1024), 2) + " / " +
             fmt(per(r, "disk_wbytes", scale=1 / 1024), 2),
             fmt(per(r, "mta_ctxsw"), 2), fmt(per(r, "mta_syscalls"), 2),
             fmt(mib("peak_rss_kb")) + " / " + fmt(mib("peak_anon_kb")),
             fmt(fnum(r.get("peak_sinksess"))), st])
    # Memory per active site: from the engine's gauge when it has one (RssAnon at the
    # middle of the drain over the sites active then), else the difference of the modes.
    for r in rs:
        if r is one:
            continue
        s50, a50 = fnum(r.get("sites_at50")), fnum(r.get("anon_at50_kb"))
        if s50 and a50:
            print(f"\n{r['mode']}: RssAnon {a50 / 1024:,.0f} MiB with {s50:,.0f} active sites at "
                  f"mid-drain: {a50 * 1024 / s50:,.0f} bytes per site, all of ringmta's memory "
                  "included (an upper bound)")
        if one is not None:
            ia, io = fnum(r.get("anon_idle_kb")), fnum(one.get("anon_idle_kb"))
            sites = fnum(r.get("mx_names"))
            if ia is not None and io is not None and sites:
                print(f"\n{r['mode']}: RssAnon once the connections were closed "
                      f"({r.get('idle_after_s')} s after the drain) {ia / 1024:,.0f} MiB against "
                      f"{io / 1024:,.0f} MiB for one domain: {(ia - io) * 1024 / sites:,.0f} bytes "
                      "per destination it has seen, without connections (allocator caches "
                      "included)")
            pa, po = fnum(r.get("peak_anon_kb")), fnum(one.get("peak_anon_kb"))
            sites, conns = fnum(r.get("mx_names")), fnum(r.get("peak_sinksess"))
            if pa is not None and po is not None and sites:
                print(f"\n{r['mode']}: peak RssAnon {pa / 1024:,.0f} MiB against {po / 1024:,.0f} "
                      f"MiB for one domain: ({pa:,.0f} - {po:,.0f}) KiB / {sites:,.0f} "
                      f"destinations = {(pa - po) * 1024 / sites:,.0f} bytes per destination, "
                      f"its connections included (peak {fmt(conns)} open at the sink)")


# ---------------------------------------------------------------- deferring sink
def defer(path):
    head(["MTA", "messages", "deferred share", "window s", "attempts (MAIL)", "delivered",
          "attempts / delivered", "sessions / delivered", "delivered msg/s over the window",
          "s to 50 / 90 / 99 / 100 %", "421s sent", "MTA CPU ms/msg",
          "disk KiB/msg (MTA / box)", "ctx sw/msg", "syscalls/msg", "left queued"])
    for r in runs_of(path, "defer"):
        a, dl, s = fnum(r.get("d_mail")), fnum(r.get("d_messages")), fnum(r.get("d_sessions"))
        w = fnum(r.get("window_s"))
        row([r.get("label") or r.get("mta", "?"), fmt(fnum(r.get("messages"))),
             r.get("pct", "?") + " %", fmt(w), fmt(a), fmt(dl),
             fmt(a / dl, 3) if a and dl else "n/a", fmt(s / dl, 3) if s and dl else "n/a",
             fmt(dl / w, 1) if dl and w else "n/a",
             " / ".join(r.get(k, "NA") for k in ("t50", "t90", "t99", "t100")),
             fmt(fnum(r.get("d_data_4xx"))),
             fmt(per(r, "mta_cpu_s", "d_messages", 1000), 3),
             fmt(per(r, "mta_wbytes", "d_messages", 1 / 1024), 2) + " / " +
             fmt(per(r, "disk_wbytes", "d_messages", 1 / 1024), 2),
             fmt(per(r, "mta_ctxsw", "d_messages"), 1),
             fmt(per(r, "mta_syscalls", "d_messages"), 1), r.get("left", "NA")])


if __name__ == "__main__":
    a = sys.argv[1:]
    fn = {"ab": ab, "fanout": fanout, "defer": defer}.get(a[0] if a else "")
    if fn is None or len(a) != 2:
        print(__doc__)
        sys.exit(2)
    fn(a[1])
