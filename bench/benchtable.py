#!/usr/bin/python3
"""benchtable.py - helpers for bench/inbound.sh and bench/idle.sh (system python3, stdlib only).

  benchtable.py kv                read smtp-load's JSON summary on stdin, print key=value
  benchtable.py table RAW.log     the inbound comparison table (markdown) from a raw log
                                  written by inbound.sh; medians when a scenario ran more
                                  than once

Raw log lines are key=value (values without blanks, or "quoted"); inbound.sh writes one
line per run with at least: mta scenario msgs_per_sec mta_cpu_ms_per_msg.
"""
import json
import re
import statistics
import sys
from collections import OrderedDict


def kv():
    d = json.load(sys.stdin)
    out = []
    for k, v in d.items():
        if k == "lat_ms":
            for p, x in v.items():
                out.append(f"lat_{p}_ms={x}")
        elif k == "errors":
            errs = ",".join(f"{e}:{n}" for e, n in v.items()) or "none"
            out.append(f"errors={errs}")
        elif isinstance(v, bool):
            out.append(f"{k}={'yes' if v else 'no'}")
        else:
            out.append(f"{k}={v}")
    print(" ".join(out))


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0):
    if x is None:
        return "n/a"
    if nd == 0:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def table(path):
    runs = OrderedDict()        # scenario -> mta -> list of dicts
    cross = OrderedDict()       # the same for smtp-source runs
    mtas = []
    for line in open(path):
        d = dict((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        if "scenario" not in d or "mta" not in d:
            continue
        if d.get("tool", "smtp-load") != "smtp-load":
            cross.setdefault(d["scenario"], OrderedDict()).setdefault(d["mta"], []).append(d)
            continue
        runs.setdefault(d["scenario"], OrderedDict()).setdefault(d["mta"], []).append(d)
        if d["mta"] not in mtas:
            mtas.append(d["mta"])
    base = "ringmta" if "ringmta" in mtas else mtas[0]
    others = [m for m in mtas if m != base]
    hdr = ["scenario", f"{base} msg/s"] + [f"{m} msg/s" for m in others] + \
          [f"ratio {base}/{m}" for m in others] + \
          [f"{m} CPU ms/msg" for m in [base] + others] + ["load-gen CPU ms/msg"] + \
          [f"{m} p50/p99 ms" for m in [base] + others] + ["runs", "errors"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for scen, by in runs.items():
        rate = {m: med([fnum(r.get("msgs_per_sec")) for r in by.get(m, [])]) for m in mtas}
        cpu = {m: med([fnum(r.get("mta_cpu_ms_per_msg")) for r in by.get(m, [])]) for m in mtas}
        lcpu = {m: med([fnum(r.get("cpu_ms_per_msg")) for r in by.get(m, [])]) for m in mtas}
        nruns = "/".join(str(len(by.get(m, []))) for m in mtas)
        errs = sorted({r.get("errors", "none") for m in mtas for r in by.get(m, [])} - {"none"})
        row = [scen, fmt(rate[base])] + [fmt(rate[m]) for m in others]
        for m in others:
            row.append(fmt(rate[base] / rate[m], 1) + "x" if rate[base] and rate[m] else "n/a")
        row += [fmt(cpu[m], 3) for m in [base] + others]
        row.append(" / ".join(fmt(lcpu[m], 3) for m in [base] + others))
        for m in [base] + others:
            p50 = med([fnum(r.get("lat_p50_ms")) for r in by.get(m, [])])
            p99 = med([fnum(r.get("lat_p99_ms")) for r in by.get(m, [])])
            row.append(f"{fmt(p50, 1)} / {fmt(p99, 1)}")
        row += [nruns, " ".join(errs) if errs else "none"]
        print("| " + " | ".join(row) + " |")
    if not cross:
        return
    print()
    print("Cross-check with Postfix's smtp-source (rig/bench.sh, one connection per message):")
    print()
    print("| scenario | MTA | smtp-source msg/s | smtp-load msg/s | MTA CPU ms/msg (smtp-source run) "
          "| smtp-source CPU ms/msg | smtp-load CPU ms/msg |")
    print("|---|---|---|---|---|---|---|")
    for scen, by in cross.items():
        for m, rs in by.items():
            n = [fnum(r.get("messages")) for r in rs]
            rate = med([fnum(r.get("msgs_per_sec")) for r in rs])
            mcpu = med([fnum(r.get("cpu_mta")) * 1000 / x if fnum(r.get("cpu_mta")) is not None and x
                        else None for r, x in zip(rs, n)])
            scpu = med([fnum(r.get("src_cpu")) * 1000 / x if fnum(r.get("src_cpu")) is not None and x
                        else None for r, x in zip(rs, n)])
            own = runs.get(scen, {}).get(m, [])
            lrate = med([fnum(r.get("msgs_per_sec")) for r in own])
            lcpu = med([fnum(r.get("cpu_ms_per_msg")) for r in own])
            print(f"| {scen} | {m} | {fmt(rate)} | {fmt(lrate)} | {fmt(mcpu, 3)} | {fmt(scpu, 3)} "
                  f"| {fmt(lcpu, 3)} |")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["kv"]:
        kv()
    elif a[:1] == ["table"] and len(a) == 2:
        table(a[1])
    else:
        print(__doc__)
        sys.exit(2)
