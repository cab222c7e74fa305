#!/usr/bin/env bash
# inject.sh - HTTP injection (POST /api/v1/inject) against SMTP injection, same daemon,
# same message, one run.
#
# For every session count it starts ringmta (fresh, empty queue, delivery=no,
# log_level=warning, http_listen on), then alternately drives it REPEATS times with
# bench/smtp-load over SMTP (LOAD_OPTS, by default "-m 0 -P": sessions reused, PIPELINING)
# and with bench/http-inject-load over HTTP (keep-alive, one request per message, the same
# message as a raw "content" string of SIZE bytes, one recipient), and prints msg/s of
# each (medians), the ratio HTTP/SMTP and ringmta's CPU ms per message in each mode
# (/proc/PID/stat). Both answer only after the group commit is synced (fsync on).
#
# Usage: bench/inject.sh
# Environment (defaults in brackets):
#   SIZE [1024]  SESSIONS ["50 200"]  MESSAGES [20000]  REPEATS [3]
#   LOAD_OPTS ["-m 0 -P"]  more smtp-load options for the SMTP runs ("" = a connection
#                          per message, no PIPELINING)
#   QUIET [0.3] QUIET_WAIT [60]  wait for an idle box before each run (rig/rigutil.py)
#   RINGMTA [build/core/ringmta]  SMTP_LOAD [build/bench/smtp-load]
#   HTTP_LOAD [build/bench/http-inject-load]  RIG [/work/shared/rig]
#   OUT [/tmp/ringmta-bench-inject]  (raw log, queue, ringmta log)
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
[ $# -gt 0 ] && { sed -n '2,22p' "$0"; exit 2; }

SIZE=${SIZE:-1024}
SESSIONS=${SESSIONS:-"50 200"}
MESSAGES=${MESSAGES:-20000}
REPEATS=${REPEATS:-3}
LOAD_OPTS=${LOAD_OPTS--m 0 -P}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-60}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
HTTP_LOAD=${HTTP_LOAD:-$ROOT/build/bench/http-inject-load}
RIG=${RIG:-/work/shared/rig}
OUT=${OUT:-/tmp/ringmta-bench-inject}
U="$RIG/rigutil.py"
SMTP_PORT=2626
HTTP_PORT=2680

die() { echo "inject.sh: $*" >&2; exit 1; }
for b in "$RINGMTA" "$SMTP_LOAD" "$HTTP_LOAD"; do [ -x "$b" ] || die "no $b (ninja -C build)"; done
mkdir -p "$OUT"
RAW="$OUT/inject-$(date -u +%Y%m%dT%H%M%S).log"
. "$HERE/benchlib.sh"   # note, quiet, wait_port
[ -x "$U" ] || quiet() { echo NA; }

RM_PID=""
trap '[ -n "$RM_PID" ] && kill -TERM "$RM_PID" 2>/dev/null' EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

note "inject.sh $(date -u) size=$SIZE sessions=[$SESSIONS] messages=$MESSAGES repeats=$REPEATS" \
     "smtp_opts=[$LOAD_OPTS] nproc=$(nproc) commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
for s in $SESSIONS; do
    q="$OUT/queue"; rm -rf "$q"
    "$RINGMTA" -o "listen=127.0.0.1:$SMTP_PORT" -o "http_listen=127.0.0.1:$HTTP_PORT" \
               -o "queue_dir=$q" -o log_level=warning -o workers=0 -o hostname=ringmta.bench \
               -o delivery=no -o "http_max_connections=$((s + 16))" >> "$OUT/ringmta.log" 2>&1 &
    RM_PID=$!
    wait_port 127.0.0.1 "$SMTP_PORT" && wait_port 127.0.0.1 "$HTTP_PORT" ||
        die "ringmta did not listen (see $OUT/ringmta.log)"
    for r in $(seq "$REPEATS"); do
        for mode in smtp http; do
            busy=$(quiet)
            t0=$(cpu_ticks "$RM_PID")
            if [ "$mode" = smtp ]; then
                # shellcheck disable=SC2086
                rate=$("$SMTP_LOAD" -s "127.0.0.1:$SMTP_PORT" -c "$s" -n "$MESSAGES" -z "$SIZE" \
                       $LOAD_OPTS -q -j 2>/dev/null | grep -o '"msgs_per_sec":[0-9.]*' | cut -d: -f2)
            else
                rate=$("$HTTP_LOAD" -s "127.0.0.1:$HTTP_PORT" -c "$s" -n "$MESSAGES" -z "$SIZE" -j |
                       grep -o '"msg_per_s":[0-9.]*' | cut -d: -f2)
            fi
            t1=$(cpu_ticks "$RM_PID")
            cpu=$(awk -v t="$((t1 - t0))" -v n="$MESSAGES" -v hz="$(getconf CLK_TCK)" \
                  'BEGIN{printf "%.4f", t * 1000 / hz / n}')
            echo "mode=$mode sessions=$s run=$r msg_per_s=${rate:-NA} ringmta_cpu_ms_per_msg=$cpu other_cores=$busy" | tee -a "$RAW"
        done
    done
    kill -TERM "$RM_PID"; wait "$RM_PID"; rc=$?; RM_PID=""
    queued=$("$RINGMTA" -o "queue_dir=$q" queue count 2>/dev/null || echo NA)
    echo "# sessions=$s exit_rc=$rc queued=$queued (expected $((2 * REPEATS * MESSAGES)))" | tee -a "$RAW"
    rm -rf "$q"
done
echo
python3 - "$RAW" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "mode" in kv and kv.get("msg_per_s", "NA") != "NA":
        rows.setdefault((int(kv["sessions"]), kv["mode"]), []).append(
            (float(kv["msg_per_s"]), float(kv["ringmta_cpu_ms_per_msg"])))
print("| sessions | SMTP msg/s | HTTP msg/s | HTTP/SMTP | ringmta CPU ms/msg SMTP | HTTP |")
print("|---:|---:|---:|---:|---:|---:|")
for s in sorted({k[0] for k in rows}):
    sm, ht = rows.get((s, "smtp"), []), rows.get((s, "http"), [])
    if not sm or not ht:
        continue
    a = statistics.median(r for r, _ in sm); b = statistics.median(r for r, _ in ht)
    ca = statistics.median(c for _, c in sm); cb = statistics.median(c for _, c in ht)
    print("| %d | %.0f | %.0f | %.2f | %.3f | %.3f |" % (s, a, b, b / a, ca, cb))
PY
echo "raw: $RAW"
