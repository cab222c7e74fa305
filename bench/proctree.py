#!/usr/bin/python3
"""proctree.py - what a process tree cost, from /proc, for the bench scripts
(stdlib only; the CPU of a tree is rig/rigutil.py's job).

  proctree.py snap PID...     one line of key=value, summed over the process
                              trees rooted at the PIDs: wbytes (bytes the tree
                              caused to be written to storage, /proc/PID/io
                              write_bytes, less cancelled_write_bytes), rbytes,
                              syscr + syscw (read- and write-class system calls;
                              io_uring operations are not system calls), ctxsw
                              (voluntary + involuntary context switches of every
                              thread), rss_kb and anon_kb (VmRSS, RssAnon), procs
  proctree.py pids PID...     the PIDs of the trees, comma separated (perf stat -p)
  proctree.py disk PATH       disk_wbytes= disk_rbytes= disk_ios=: the counters of
                              the block device holding PATH (/proc/diskstats,
                              whole machine: journal and other writers included)
  proctree.py diff A B [PFX]  the keys of two such lines: B - A, each name prefixed
                              with PFX (rss_kb, anon_kb and procs: B's values)

/proc/PID/io of a process counts its live threads, the threads that ended and
the children it reaped; a child still running is counted through the tree.
Context switches of threads that ended are lost (ringmta's threads live for the
run; Postfix's processes are long-lived except the ones that exit in a run).
"""
import os
import sys


def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(roots):
    kids, out, seen = _children(), [], set()
    stack = [int(r) for r in roots]
    while stack:
        p = stack.pop()
        if p in seen or not os.path.exists(f"/proc/{p}"):
            continue
        seen.add(p)
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def _kv(path, sep=":"):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(sep)
                d[k.strip()] = v.split()[0] if v.split() else "0"
    except OSError:
        pass
    return d


def snap(roots):
    t = {"wbytes": 0, "rbytes": 0, "syscr": 0, "syscw": 0, "ctxsw": 0,
         "rss_kb": 0, "anon_kb": 0, "procs": 0}
    for p in tree(roots):
        io = _kv(f"/proc/{p}/io")
        if io:
            t["wbytes"] += int(io.get("write_bytes", 0)) - int(io.get("cancelled_write_bytes", 0))
            t["rbytes"] += int(io.get("read_bytes", 0))
            t["syscr"] += int(io.get("syscr", 0))
            t["syscw"] += int(io.get("syscw", 0))
        st = _kv(f"/proc/{p}/status")
        t["rss_kb"] += int(st.get("VmRSS", 0))
        t["anon_kb"] += int(st.get("RssAnon", 0))
        t["procs"] += 1
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            tasks = []
        for tid in tasks:
            ts = _kv(f"/proc/{p}/task/{tid}/status")
            t["ctxsw"] += int(ts.get("voluntary_ctxt_switches", 0)) + \
                int(ts.get("nonvoluntary_ctxt_switches", 0))
    return " ".join(f"{k}={v}" for k, v in t.items())


def disk(path):
    st = os.stat(path)
    maj, mino = os.major(st.st_dev), os.minor(st.st_dev)
    with open("/proc/diskstats") as f:
        for line in f:
            v = line.split()
            if int(v[0]) == maj and int(v[1]) == mino:
                # fields: reads completed, merged, sectors read, ms; writes completed,
                # merged, sectors written, ms ... (sectors are 512 bytes)
                return (f"disk_wbytes={int(v[9]) * 512} disk_rbytes={int(v[5]) * 512} "
                        f"disk_ios={int(v[3]) + int(v[7])}")
    return "disk_wbytes=NA disk_rbytes=NA disk_ios=NA"


def diff(a, b, pfx=""):
    da = dict(x.split("=", 1) for x in a.split())
    db = dict(x.split("=", 1) for x in b.split())
    out = []
    for k, v in db.items():
        if k in ("rss_kb", "anon_kb", "procs"):
            out.append(f"{pfx}{k}={v}")
            continue
        try:
            out.append(f"{pfx}{k}={int(v) - int(da[k])}")
        except (KeyError, ValueError):
            out.append(f"{pfx}{k}=NA")
    return " ".join(out)


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        sys.exit(2)
    if a[0] == "snap":
        print(snap(a[1:]))
    elif a[0] == "pids":
        print(",".join(str(p) for p in tree(a[1:])))
    elif a[0] == "disk" and len(a) == 2:
        print(disk(a[1]))
    elif a[0] == "diff" and len(a) in (3, 4):
        print(diff(a[1], a[2], a[3] if len(a) == 4 else ""))
    else:
        print(__doc__)
        sys.exit(2)
