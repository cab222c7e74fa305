#!/usr/bin/python3
"""benchtable.py - helpers for bench/inbound.sh and bench/idle.sh (system python3, stdlib only).

  benchtable.py kv                read smtp-load's JSON summary on stdin, print key=value
  benchtable.py table RAW.log     the inbound comparison table (markdown) from a raw log
                                  written by inbound.sh; medians when a scenario ran more
                                  than once
  benchtable.py dkim RAW.log      the signing table of bench/dkim.sh (e2e.sh's lines with
                                  sign=MODE), then its "# check" and "# dkim-bench" lines

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


def parse(line):
    return dict((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line))


def delta(r, key, per=None):
    """after_KEY - before_KEY of a run (the PROBE values e2e.sh adds), over per's value."""
    a, b = fnum(r.get("after_" + key)), fnum(r.get("before_" + key))
    if a is None or b is None:
        return None
    if per is None:
        return a - b
    n = fnum(r.get(per))
    return (a - b) / n if n else None


def dkim(path):
    runs = OrderedDict()        # (sign, size) -> "ringmta"/"postfix" -> list of dicts
    notes = []
    for line in open(path):
        if line.startswith(("# check ", "# dkim-bench", "# ringmta skipped")):
            notes.append(line[2:].rstrip())
        d = parse(line)
        if d.get("tool") != "e2e":
            continue
        m = "ringmta" if d["mta"].startswith("ringmta") else d["mta"]
        runs.setdefault((d.get("sign", "?"), d["size"]), OrderedDict()).setdefault(m, []).append(d)
    hdr = ["signing", "size", "ringmta msg/s", "Postfix+OpenDKIM msg/s", "ratio ringmta/Postfix",
           "ringmta CPU ms/msg", "Postfix+OpenDKIM CPU ms/msg", "of which OpenDKIM",
           "CPU ratio Postfix/ringmta", "ringmta signing threads busy", "ringmta signed / delivered", "runs",
           "status"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for (sign, size), by in runs.items():
        rm, pf = by.get("ringmta", []), by.get("postfix", [])
        rate = [med([fnum(r.get("e2e_msgs_per_sec")) for r in x]) for x in (rm, pf)]
        cpu = [med([fnum(r.get("mta_cpu_ms_per_msg")) for r in x]) for x in (rm, pf)]
        od = med([1000 * x if x is not None else None
                  for x in (delta(r, "milter_cpu_s", "delivered") for r in pf)])
        busy = med([delta(r, "dkim_busy_s") / delta(r, "t") / fnum(r.get("after_threads"))
                    if delta(r, "dkim_busy_s") is not None and delta(r, "t")
                    and fnum(r.get("after_threads")) else None for r in rm])
        signed = med([delta(r, "dkim_signed", "delivered") for r in rm])
        bad = [f"{m}: {r.get('delivered')}/{r.get('messages')} {r.get('e2e_status')} "
               f"errors={r.get('errors', 'none')}"
               for m, x in (("ringmta", rm), ("postfix", pf)) for r in x
               if r.get("e2e_status") != "ok" or r.get("errors", "none") != "none"
               or r.get("exit_rc", "0") != "0"]
        ratio = lambda a, b: fmt(a / b, 1) + "x" if a and b else "n/a"
        kib = fnum(size)
        row = [sign, f"{kib / 1024:g} KiB" if kib else size, fmt(rate[0]), fmt(rate[1]),
               ratio(rate[0], rate[1]), fmt(cpu[0], 3), fmt(cpu[1], 3), fmt(od, 3),
               ratio(cpu[1], cpu[0]), f"{busy * 100:.0f} %" if busy is not None else "n/a",
               fmt(signed, 2), f"{len(rm)}/{len(pf)}", "; ".join(bad) or "all delivered"]
        print("| " + " | ".join(row) + " |")
    if notes:
        print()
        for n in notes:
            print(n)


def table(path):
    runs = OrderedDict()        # scenario -> mta -> list of dicts
    cross = OrderedDict()       # the same for smtp-source runs
    mtas = []
    for line in open(path):
        d = parse(line)
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
    elif a[:1] == ["dkim"] and len(a) == 2:
        dkim(a[1])
    else:
        print(__doc__)
        sys.exit(2)
