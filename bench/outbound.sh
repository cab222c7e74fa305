#!/usr/bin/env bash
# outbound.sh - what CONNECTIONS outbound SMTP connections open at once cost ringmta.
#
#   1. CONNECTIONS messages are queued with delivery off (smtp-load, one recipient each).
#   2. bench/smtp-sink starts with a latency of HOLD_MS before each final DATA reply,
#      so every session it takes stays open in DATA for that long.
#   3. ringmta restarts on that queue with delivery on, relayhost the sink,
#      destination_concurrency_limit = CONNECTIONS: it opens one connection per
#      message. Once a second the script reads ringmta's VmRSS and RssAnon and its
#      connections to the sink (ESTABLISHED, from ss); when they stop growing (or
#      the sink's latency is half over) it takes the figures, then waits for every
#      message to arrive and stops ringmta (the queue must be empty).
#
# The growth from the sample before delivery to the peak, divided by the connections,
# is the cost of an outbound connection with its message in flight (session, buffers,
# the message's record and job); kernel socket buffers are not in it.
#
# Usage: bench/outbound.sh [CONNECTIONS [HOLD_MS]]      (defaults 5000 and 30000)
# Environment: RINGMTA_PORT [2625], SINK_PORT [2626], RINGMTA, SMTP_LOAD, SMTP_SINK
#   [build/...], OUT [/tmp/ringmta-bench], RINGMTA_OPTS [""] (more -o key=value).
# Writes OUT/outbound.samples: t_s rss_kb anon_kb connections.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CONNS=${1:-5000}
HOLD_MS=${2:-30000}
RINGMTA_PORT=${RINGMTA_PORT:-2625}
SINK_PORT=${SINK_PORT:-2626}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
SMTP_SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
OUT=${OUT:-/tmp/ringmta-bench}
RINGMTA_OPTS=${RINGMTA_OPTS:-}

die() { echo "outbound.sh: $*" >&2; exit 2; }
for b in "$RINGMTA" "$SMTP_LOAD" "$SMTP_SINK"; do [ -x "$b" ] || die "no $b (ninja -C build)"; done
[ "$CONNS" -le 10000 ] || die "destination_concurrency_limit is at most 10000"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"      # the sink holds CONNECTIONS sessions, ringmta as many
Q="$OUT/outbound-queue"
LOG="$OUT/outbound-ringmta.log"
RM_PID="" SINK_PID=""
cleanup() {
    trap - EXIT INT TERM
    [ -n "$RM_PID" ] && { kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID" 2>/dev/null; }
    [ -n "$SINK_PID" ] && { kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    rm -rf "$Q"
}
trap cleanup EXIT INT TERM
. "$HERE/benchlib.sh"   # wait_port, relay_start, proc_mem
ringmta_start() {  # DELIVERY(yes/no)
    # shellcheck disable=SC2086
    relay_start "$Q" "$RINGMTA_PORT" "$SINK_PORT" "$1" "$CONNS" "$LOG" \
        -o smtp_data_done_timeout=$((HOLD_MS / 1000 + 60)) $RINGMTA_OPTS ||
        die "ringmta did not listen (see $LOG)"
}
mem() { proc_mem "$1"; }
conns() { ss -Htn state established "( dport = :$SINK_PORT )" 2>/dev/null | wc -l; }

echo "outbound.sh: $(date -u +%FT%TZ) connections=$CONNS hold_ms=$HOLD_MS opts='$RINGMTA_OPTS'" \
     "load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/outbound.log"
rm -rf "$Q"
ringmta_start no
"$SMTP_LOAD" -s "127.0.0.1:$RINGMTA_PORT" -c 50 -m 0 -P -n "$CONNS" -q -j > "$OUT/outbound-load.json" \
    2> "$OUT/outbound-load.err"
kill -TERM "$RM_PID"; wait "$RM_PID"; RM_PID=""
queued=$("$RINGMTA" -o "queue_dir=$Q" queue count 2>/dev/null)
[ "$queued" = "$CONNS" ] || die "queued $queued of $CONNS (see $OUT/outbound-load.err)"

"$SMTP_SINK" -w 2 -L "$HOLD_MS" -t 0 -s "$OUT/outbound-sink.json" "127.0.0.1:$SINK_PORT" \
    > "$OUT/outbound-sink.out" 2> "$OUT/outbound-sink.err" &
SINK_PID=$!
wait_port 127.0.0.1 "$SINK_PORT" || die "smtp-sink did not listen"
t0=$(date +%s.%N)
ringmta_start yes
echo "t_s rss_kb anon_kb connections" > "$OUT/outbound.samples"
read -r rss0 anon0 <<<"$(mem "$RM_PID")"
peak_c=0 peak_at=0 rss1=0 anon1=0 still=0
for i in $(seq $((HOLD_MS / 2000))); do
    sleep 1
    read -r rss anon <<<"$(mem "$RM_PID")"; c=$(conns)
    echo "$i $rss $anon $c" >> "$OUT/outbound.samples"
    if [ "$c" -gt "$peak_c" ]; then peak_c=$c peak_at=$i rss1=$rss anon1=$anon still=0
    else still=$((still + 1)); fi
    [ "$rss" -gt "$rss1" ] && [ "$c" -ge "$peak_c" ] && { rss1=$rss anon1=$anon; }
    [ "$peak_c" -ge "$CONNS" ] && [ "$still" -ge 2 ] && break
done
# every message arrives once the latency is over
deadline=$(( $(date +%s) + HOLD_MS / 1000 + 120 ))
until grep -q "messages=$CONNS\b" "$OUT/outbound-sink.out" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; do
    kill -USR1 "$SINK_PID"; sleep 1
done
delivered=$(grep -o 'messages=[0-9]*' "$OUT/outbound-sink.out" | tail -1 | cut -d= -f2)
read -r rss2 anon2 <<<"$(mem "$RM_PID")"
kill -TERM "$RM_PID"; wait "$RM_PID"; rc=$?; RM_PID=""
left=$("$RINGMTA" -o "queue_dir=$Q" queue count 2>/dev/null)
awk -v n="$CONNS" -v c="$peak_c" -v at="$peak_at" -v r0="$rss0" -v a0="$anon0" -v r1="$rss1" -v a1="$anon1" \
    -v r2="$rss2" -v a2="$anon2" -v d="${delivered:-0}" -v rc="$rc" -v left="$left" 'BEGIN {
    printf "outbound connections: %d asked, %d open at once (%d s after the start)\n", n, c, at
    printf "%-34s %12s %12s\n", "", "VmRSS kB", "RssAnon kB"
    printf "%-34s %12d %12d\n", "delivery started", r0, a0
    printf "%-34s %12d %12d\n", "with " c " connections", r1, a1
    printf "%-34s %12d %12d\n", "all delivered", r2, a2
    if (c > 0)
        printf "%-34s %12.0f %12.0f\n", "per connection, bytes", (r1 - r0) * 1024 / c, (a1 - a0) * 1024 / c
    printf "delivered %d; ringmta exit %d; queue count after %s\n", d, rc, left
}' | tee -a "$OUT/outbound.log"
