#!/usr/bin/python3
"""threadcs.py - context switches of one process, thread by thread (stdlib only;
bench/ctxsw.sh uses it).

  threadcs.py snap PID         one JSON line: {"cpu_ticks": N, "threads": {TID:
                               [comm, voluntary, nonvoluntary]}} from /proc/PID/task/*
                               (ringmta names its threads: rm-worker0.., rm-commit,
                               rm-sched; the main thread is "ringmta")
  threadcs.py diff A B MSGS    the table of B - A grouped by thread name (workers
                               summed into "rm-worker*"), each per message too;
                               then one key=value line: cs_vol, cs_invol, cs_per_msg,
                               vol_per_msg, cpu_ms_per_msg

Threads that ended between the snapshots are lost; ringmta's live for the run.
"""
import json
import os
import re
import sys


def snap(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)
        except OSError:
            continue
        out[tid] = [st["Name"], int(st["voluntary_ctxt_switches"]),
                    int(st["nonvoluntary_ctxt_switches"])]
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    v = s[s.rfind(")") + 2:].split()
    return {"cpu_ticks": int(v[11]) + int(v[12]), "threads": out}


def diff(a, b, msgs):
    groups = {}
    for tid, (name, vol, inv) in b["threads"].items():
        _, vol0, inv0 = a["threads"].get(tid, (name, 0, 0))
        g = re.sub(r"\d+$", "*", name) if name.startswith("rm-worker") else name
        r = groups.setdefault(g, [0, 0, 0])
        r[0] += 1
        r[1] += vol - vol0
        r[2] += inv - inv0
    print("| thread | n | voluntary | involuntary | voluntary/msg | all/msg |")
    print("|---|---|---|---|---|---|")
    tv = ti = 0
    for g, (n, vol, inv) in sorted(groups.items(), key=lambda x: -x[1][1] - x[1][2]):
        tv += vol
        ti += inv
        print(f"| {g} | {n} | {vol} | {inv} | {vol / msgs:.3f} | {(vol + inv) / msgs:.3f} |")
    print(f"| total | | {tv} | {ti} | {tv / msgs:.3f} | {(tv + ti) / msgs:.3f} |")
    hz = os.sysconf("SC_CLK_TCK")
    cpu = (b["cpu_ticks"] - a["cpu_ticks"]) / hz
    print(f"cs_vol={tv} cs_invol={ti} cs_per_msg={(tv + ti) / msgs:.3f}"
          f" vol_per_msg={tv / msgs:.3f} cpu_ms_per_msg={cpu * 1000 / msgs:.4f}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snap":
        print(json.dumps(snap(int(sys.argv[2]))))
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
