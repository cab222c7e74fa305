#!/usr/bin/python3
"""deferwatch.py - follow bench/smtp-sink's counters over a fixed window (bench/defer.sh).

  deferwatch.py base SINK_PID SINK_OUT
  deferwatch.py SINK_PID SINK_OUT T0 WINDOW TARGET SAMPLES BASE

"base" prints the sink's counter line as it is now (take it before the load starts).
Then, every POLL (0.5) s until WINDOW s after T0, it sends the sink SIGUSR1, reads the
counter line it prints on SINK_OUT and writes "t_s key=value..." (growth since BASE;
cur_sessions as it is) to SAMPLES. It prints one key=value line: the counters at the
end less BASE, as deltas
(d_mail = transactions started, d_messages = messages accepted with 2xx, d_sessions,
d_data_4xx, d_rcpt_4xx ...), and the seconds after T0 when the delivered count first
reached 50, 90, 99 and 100 % of TARGET (t50, t90, t99, t100; NA when it did not).
It runs the whole window even when everything has arrived, so that attempts made late
(a message sent twice) are counted too.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drainwatch import tail  # noqa: E402  (the end of the sink's output)

POLL = float(os.environ.get("POLL", "0.5"))


def last_counters(path):
    for ln in reversed(tail(path).split(b"\n")[:-1]):
        if b"messages=" in ln:
            return {k.decode(): int(v) for k, v in re.findall(rb"(\w+)=(\d+)", ln)}
    return None


def read(pid, path):
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return None
    time.sleep(0.1)
    return last_counters(path)


def main(a):
    signal.signal(signal.SIGINT, lambda *x: sys.exit(130))
    if len(a) == 3 and a[0] == "base":
        c = read(int(a[1]), a[2])
        if c is None:
            return 1
        print(" ".join(f"{k}={v}" for k, v in c.items()))
        return 0
    if len(a) != 7:
        print(__doc__)
        return 2
    pid, path, t0, window, target, samples = int(a[0]), a[1], float(a[2]), float(a[3]), \
        int(a[4]), a[5]
    first = {k: int(v) for k, v in (x.split("=", 1) for x in a[6].split())}
    first["cur_sessions"] = first["peak_sessions"] = 0
    marks = {"t50": 0.5, "t90": 0.9, "t99": 0.99, "t100": 1.0}
    hit, cur, status = {}, first, "ok"
    with open(samples, "w") as sf:
        while True:
            ts = time.time()
            c = read(pid, path)
            if c is None:
                status = "sink-gone"
                break
            cur = c
            got = c["messages"] - first["messages"]
            for k, fr in marks.items():
                if k not in hit and got >= target * fr:
                    hit[k] = ts - t0
            sf.write(f"{ts - t0:.1f} " + " ".join(f"{k}={v - first.get(k, 0)}"
                                                    for k, v in c.items()) + "\n")
            sf.flush()
            if ts - t0 >= window:
                break
            time.sleep(max(0.0, POLL - (time.time() - ts)))
    d = " ".join(f"d_{k}={v - first.get(k, 0)}" for k, v in cur.items()
                 if k not in ("cur_sessions", "peak_sessions"))
    print(f"status={status} window_s={window:.0f} {d} " +
          " ".join(f"{k}={hit[k]:.1f}" if k in hit else f"{k}=NA" for k in marks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
