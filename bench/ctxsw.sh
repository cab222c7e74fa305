#!/usr/bin/env bash
# ctxsw.sh - where ringmta's context switches come from, thread by thread, and what a
# lone message waits for its 250.
#
#   smtp-load --SMTP--> ringmta (durable queue, fsync) --SMTP--> smtp-sink
#
# For each binary in BINS (alternated REPEATS times: A B A B ..., the box is shared),
# starts ringmta on a fresh queue relaying to the sink (the options of e2e.sh), snapshots
# every thread's voluntary and involuntary context switches (/proc/PID/task/*/status,
# bench/threadcs.py), injects N messages with smtp-load, waits until the sink has them
# all, snapshots again and prints the table per thread and per message, the e2e msg/s
# and ringmta's CPU ms per message. Then, on the same daemon, LOW messages from one
# session (one at a time: the queue is idle before each), then from 4, for the 250
# latency at low load.
#
# Usage: bench/ctxsw.sh      (no root needed; ports 2725 and 2726 unless told)
# Environment: BINS [build/core/ringmta]  REPEATS [1]  N [20000]  SESSIONS [50]
#   SIZE [1024]  LOW [1000]  LOW_SESSIONS ["1 4"] (one low-load run each)  PORT [2725]  SINK_PORT [2726]  OUT [/tmp/ringmta-ctxsw]
#   RINGMTA_OPTS [""] more -o key=value
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
BINS=${BINS:-$ROOT/build/core/ringmta}
REPEATS=${REPEATS:-1}
N=${N:-20000}
SESSIONS=${SESSIONS:-50}
SIZE=${SIZE:-1024}
LOW=${LOW:-1000}
LOW_SESSIONS=${LOW_SESSIONS:-"1 4"}
PORT=${PORT:-2725}
SINK_PORT=${SINK_PORT:-2726}
OUT=${OUT:-/tmp/ringmta-ctxsw}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
LOAD=$ROOT/build/bench/smtp-load
SINK=$ROOT/build/bench/smtp-sink
TCS=$HERE/threadcs.py
RAW=$OUT/ctxsw.log
. "$HERE/benchlib.sh"   # wait_port

mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SP="" RP=""
cleanup() {
    [ -n "$RP" ] && { kill -TERM "$RP" 2>/dev/null; wait "$RP" 2>/dev/null; }
    [ -n "$SP" ] && { kill -TERM "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; }
}
trap cleanup EXIT
"$SINK" -w 2 "127.0.0.1:$SINK_PORT" > "$OUT/sink.out" 2> "$OUT/sink.err" &
SP=$!
wait_port 127.0.0.1 "$SINK_PORT" || { echo "ctxsw.sh: no sink" >&2; exit 1; }

commits() {  # ringmta_queue_commits_total from the metrics listener
    python3 -c 'import sys, urllib.request as u
for ln in u.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode().splitlines():
    if ln.startswith("ringmta_queue_commits_total "): print(ln.split()[1])' $((PORT + 3))
}
sink_count() {
    kill -USR1 "$SP"; sleep 0.05
    tail -1 "$OUT/sink.out" | grep -o 'messages=[0-9]*' | cut -d= -f2
}
sink_wait() {  # TARGET: poll until the sink has counted it (120 s at most)
    local c
    for _ in $(seq 1200); do
        c=$(sink_count); [ "${c:-0}" -ge "$1" ] && return 0; sleep 0.05
    done
    return 1
}

echo "# ctxsw.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') n=$N sessions=$SESSIONS size=$SIZE" \
     "low=$LOW commit=$(git -C "$ROOT" log -1 --format=%h 2>/dev/null) load=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RAW"
for _ in $(seq "$REPEATS"); do for bin in $BINS; do
    rm -rf "$OUT/q"
    # shellcheck disable=SC2086
    "$bin" -o "listen=127.0.0.1:$PORT" -o "queue_dir=$OUT/q" -o log_level=warning \
           -o "relayhost=[127.0.0.1]:$SINK_PORT" -o dns_servers=127.0.0.1:9 \
           -o destination_concurrency_limit=20 -o smtp_reuse_limit=1000 \
           -o hostname=ringmta.bench -o "admin_listen=127.0.0.1:$((PORT + 2))" \
           -o "metrics_listen=127.0.0.1:$((PORT + 3))" $RINGMTA_OPTS >> "$OUT/ringmta.log" 2>&1 &
    RP=$!
    wait_port 127.0.0.1 "$PORT" || { echo "ctxsw.sh: ringmta did not listen" >&2; exit 1; }
    sleep 0.5
    base=$(sink_count)
    a=$("$TCS" snap "$RP"); c0=$(commits); t0=$(date +%s.%N)
    "$LOAD" -s "127.0.0.1:$PORT" -c "$SESSIONS" -n "$N" -z "$SIZE" -q -j > "$OUT/load.json" 2> "$OUT/load.err"
    sink_wait $((base + N)) || echo "ctxsw.sh: the sink did not get all $N" >&2
    t1=$(date +%s.%N)
    b=$("$TCS" snap "$RP"); c1=$(commits)
    echo "## $bin: $N x $SIZE B, $SESSIONS sessions, e2e $(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN{printf "%.0f", n/(b-a)}') msg/s (within 50 ms)" | tee -a "$RAW"
    "$TCS" diff "$a" "$b" "$N" | tee -a "$RAW"
    echo "commits=$((c1 - c0)) items_per_commit=$(awk -v c=$((c1 - c0)) -v n="$N" 'BEGIN{printf "%.1f", c ? 2 * n / c : 0}') (a message and its delivery result: 2 items)" | tee -a "$RAW"
    for ls in $LOW_SESSIONS; do
        base=$(sink_count)
        a=$("$TCS" snap "$RP")
        "$LOAD" -s "127.0.0.1:$PORT" -c "$ls" -n "$LOW" -z "$SIZE" -q -j > "$OUT/low.json" 2> "$OUT/low.err"
        sink_wait $((base + LOW)) || echo "ctxsw.sh: the sink did not get all $LOW" >&2
        b=$("$TCS" snap "$RP")
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); l=j["lat_ms"]
print("low load (%s sessions, %d msgs, %.0f msg/s): 250 latency ms p50=%s p90=%s p99=%s max=%s"
      % (sys.argv[2], j["ok"], j["msgs_per_sec"], l["p50"], l["p90"], l["p99"], l["max"]))' \
            "$OUT/low.json" "$ls" | tee -a "$RAW"
        "$TCS" diff "$a" "$b" "$LOW" | tail -1 | sed "s/^/low load ($ls): /" | tee -a "$RAW"
    done
    kill -TERM "$RP"; wait "$RP"; RP=""
done; done
