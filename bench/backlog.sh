#!/usr/bin/env bash
# backlog.sh - a large backlog: accepted with delivery off, then drained, with
# ringmta's memory sampled every second through both phases.
#
#   1. accept: ringmta with delivery=no takes MESSAGES messages of SIZE bytes from
#      smtp-load (SESSIONS sessions, connection reuse and PIPELINING), then stops
#      (SIGTERM); `ringmta queue count` says what was queued.
#   2. drain:  ringmta restarted on the same queue with delivery on, relayhost the
#      bench smtp-sink; bench/drainwatch.py counts the sink's messages and samples
#      ringmta's VmRSS, RssAnon and ringmta_deliveries_in_flight (metrics) once a second
#      until every queued message has arrived, then ringmta stops and the queue must
#      be empty.
#
#   live (PHASES=live, alone): delivery on while the messages arrive, to a sink slower
#      than the load (SINK_LATENCY_MS): the backlog builds up while it drains; the
#      same samples as the drain phase, in OUT/backlog-live.samples.
#
# The anonymous memory (RssAnon: heap, stacks, buffers) is what must stay flat while a
# backlog drains; VmRSS also counts the touched pages of the LMDB map (file-backed).
#
# Usage: bench/backlog.sh [MESSAGES [SIZE]]          (defaults 1000000 and 1024)
# Environment: PHASES ["accept drain"] (one of them alone reuses OUT/backlog-queue; "live"),
#   SESSIONS [100], CONC [100] (destination_concurrency_limit), SINK_LATENCY_MS [0],
#   RINGMTA_OPTS [""] (more -o key=value for both phases, e.g. -o delivery_inflight_max=1000),
#   TIMEOUT [1800] (drain), RINGMTA_PORT [2625], SINK_PORT [2626], METRICS_PORT [2627],
#   RINGMTA, SMTP_LOAD, SMTP_SINK [build/...], OUT [/tmp/ringmta-bench], KEEP [0]
#   (1: leave the queue in OUT/backlog-queue after the drain).
# Writes OUT/backlog-accept.samples and OUT/backlog-drain.samples (one line a second)
# and prints a summary: start, peak and end of VmRSS and RssAnon in each phase.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
MESSAGES=${1:-1000000}
SIZE=${2:-1024}
PHASES=${PHASES:-accept drain}
SESSIONS=${SESSIONS:-100}
CONC=${CONC:-100}
SINK_LATENCY_MS=${SINK_LATENCY_MS:-0}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
TIMEOUT=${TIMEOUT:-1800}
RINGMTA_PORT=${RINGMTA_PORT:-2625}
SINK_PORT=${SINK_PORT:-2626}
METRICS_PORT=${METRICS_PORT:-2627}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
SMTP_SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
OUT=${OUT:-/tmp/ringmta-bench}
KEEP=${KEEP:-0}

die() { echo "backlog.sh: $*" >&2; exit 2; }
for b in "$RINGMTA" "$SMTP_LOAD" "$SMTP_SINK"; do [ -x "$b" ] || die "no $b (ninja -C build)"; done
mkdir -p "$OUT"
Q="$OUT/backlog-queue"
LOG="$OUT/backlog-ringmta.log"
RM_PID="" SINK_PID="" SAMPLER="" LOAD_PID=""

cleanup() {
    trap - EXIT INT TERM
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    [ -n "$LOAD_PID" ] && kill -TERM "$LOAD_PID" 2>/dev/null
    [ -n "$RM_PID" ] && { kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID" 2>/dev/null; }
    [ -n "$SINK_PID" ] && { kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
}
trap cleanup EXIT INT TERM

. "$HERE/benchlib.sh"   # wait_port, relay_start
ringmta_start() {  # DELIVERY(yes/no)
    # shellcheck disable=SC2086
    relay_start "$Q" "$RINGMTA_PORT" "$SINK_PORT" "$1" "$CONC" "$LOG" \
        -o "metrics_listen=127.0.0.1:$METRICS_PORT" $RINGMTA_OPTS || die "ringmta did not listen (see $LOG)"
}
ringmta_stop() {  # -> RC
    kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID"; RC=$?; RM_PID=""
}
qcount() { "$RINGMTA" -o "queue_dir=$Q" queue count 2>/dev/null || echo NA; }
# One line a second: seconds since start, VmRSS kB, RssAnon kB.
sampler() {  # PID FILE
    local t0; t0=$(date +%s.%N)
    echo "t_s rss_kb anon_kb" > "$2"
    while [ -r "/proc/$1/status" ]; do
        awk -v t="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" \
            '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} END{if (r) print t, r, a}' "/proc/$1/status" >> "$2"
        sleep 1
    done
}
# start, peak and end of a samples file's columns rss_kb and anon_kb
summary() {  # FILE LABEL
    awk -v l="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { r = $c["rss_kb"]; a = $c["anon_kb"]; if (r == 0) next
          if (!n++) { r0 = r; a0 = a }; r1 = r; a1 = a; if (r > rp) rp = r; if (a > ap) ap = a }
        END { printf "%-7s %5d samples  VmRSS kB start %d peak %d end %d   RssAnon kB start %d peak %d end %d\n",
                     l, n, r0, rp, r1, a0, ap, a1 }' "$1"
}
# in-flight deliveries (the drain samples' last column): peak
inflight_peak() { awk 'NR > 1 && $6 != "NA" && $6 > p { p = $6 } END { print p + 0 }' "$1"; }

echo "backlog.sh: $(date -u +%FT%TZ) messages=$MESSAGES size=$SIZE sessions=$SESSIONS conc=$CONC" \
     "sink_latency_ms=$SINK_LATENCY_MS opts='$RINGMTA_OPTS' load $(cut -d' ' -f1-3 /proc/loadavg)" \
     "disk $(df -h --output=avail "$OUT" | tail -1 | tr -d ' ') free" | tee -a "$OUT/backlog.log"

if [[ " $PHASES " == *" accept "* ]]; then
    rm -rf "$Q"
    ringmta_start no
    sampler "$RM_PID" "$OUT/backlog-accept.samples" & SAMPLER=$!
    t0=$(date +%s.%N)
    "$SMTP_LOAD" -s "127.0.0.1:$RINGMTA_PORT" -c "$SESSIONS" -m 0 -P -n "$MESSAGES" -z "$SIZE" -q -j \
        > "$OUT/backlog-load.json" 2> "$OUT/backlog-load.err"
    t1=$(date +%s.%N)
    sleep 2
    ringmta_stop
    wait "$SAMPLER" 2>/dev/null; SAMPLER=""
    queued=$(qcount)
    echo "accept: $queued queued in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s;" \
         "smtp-load $(grep -o '"ok":[0-9]*,"failed":[0-9]*' "$OUT/backlog-load.json");" \
         "ringmta exit $RC; queue $(du -sh "$Q" | cut -f1) on disk" | tee -a "$OUT/backlog.log"
    summary "$OUT/backlog-accept.samples" accept | tee -a "$OUT/backlog.log"
fi

sink_start() {
    "$SMTP_SINK" -w 2 -L "$SINK_LATENCY_MS" -s "$OUT/backlog-sink.json" "127.0.0.1:$SINK_PORT" \
        > "$OUT/backlog-sink.out" 2> "$OUT/backlog-sink.err" &
    SINK_PID=$!
    wait_port 127.0.0.1 "$SINK_PORT" || die "smtp-sink did not listen (see $OUT/backlog-sink.err)"
}
# until the sink has N messages: W (drainwatch.py's line), samples in FILE
watch_sink() {  # N FILE T0
    w=$("$HERE/drainwatch.py" "$SINK_PID" "$OUT/backlog-sink.out" 0 "$1" "$3" "$TIMEOUT" \
        "$RM_PID" "$2" "http://127.0.0.1:$METRICS_PORT/metrics" '^ringmta_deliveries_in_flight$')
}

if [[ " $PHASES " == *" live "* ]]; then
    rm -rf "$Q"
    sink_start
    t0=$(date +%s.%N)
    ringmta_start yes
    "$SMTP_LOAD" -s "127.0.0.1:$RINGMTA_PORT" -c "$SESSIONS" -m 0 -P -n "$MESSAGES" -z "$SIZE" -q -j \
        > "$OUT/backlog-load.json" 2> "$OUT/backlog-load.err" &
    LOAD_PID=$!
    watch_sink "$MESSAGES" "$OUT/backlog-live.samples" "$t0"
    wait "$LOAD_PID"; LOAD_PID=""
    ringmta_stop
    kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; SINK_PID=""
    echo "live: smtp-load $(grep -o '"ok":[0-9]*,"failed":[0-9]*,"seconds":[0-9.]*' "$OUT/backlog-load.json");" \
         "sink $(grep -o 'delivered=[0-9]* status=[a-z-]*' <<<"$w"); peak in flight" \
         "$(inflight_peak "$OUT/backlog-live.samples"); ringmta exit $RC; queue count after: $(qcount)" |
        tee -a "$OUT/backlog.log"
    summary "$OUT/backlog-live.samples" live | tee -a "$OUT/backlog.log"
    rm -rf "$Q"
fi

if [[ " $PHASES " == *" drain "* ]]; then
    [ -d "$Q" ] || die "no queue in $Q (run the accept phase first)"
    queued=$(qcount)
    [ "$queued" -gt 0 ] 2>/dev/null || die "the queue in $Q is empty"
    sink_start
    t0=$(date +%s.%N)
    ringmta_start yes
    watch_sink "$queued" "$OUT/backlog-drain.samples" "$t0"
    ringmta_stop
    kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; SINK_PID=""
    left=$(qcount)
    echo "drain: $(grep -o 'delivered=[0-9]* status=[a-z-]*' <<<"$w") of $queued in" \
         "$(awk -v a="$t0" -v w="$w" 'BEGIN{match(w, /end=[0-9.]+/); printf "%.1f", substr(w, RSTART + 4, RLENGTH - 4) - a}') s;" \
         "peak in flight $(inflight_peak "$OUT/backlog-drain.samples"); ringmta exit $RC; queue count after: $left" |
        tee -a "$OUT/backlog.log"
    summary "$OUT/backlog-drain.samples" drain | tee -a "$OUT/backlog.log"
    [ "$KEEP" = 1 ] || rm -rf "$Q"
fi
