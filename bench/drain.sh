#!/usr/bin/env bash
# drain.sh - drain a held backlog to one next hop: outbound msg/s and round trips per message.
#
#   smtp-load --SMTP--> ringmta (delivery = no): N x SIZE queued once, kept as a copy
#   then per binary: ringmta on a fresh copy of that queue --SMTP--> smtp-sink 127.0.0.1:2530
#
# Every message is ready when delivery starts, so each reused session always has a next job:
# the case that pipelining the next transaction behind the final dot (RFC 2920 3.1) is for.
# Times from the start of the binary until ringmta_recipients_total{result="delivered"} = N
# (polled every 0.05 s), and reads ringmta_outbound_round_trips_total and
# ringmta_outbound_transactions_total (NA on a binary without them). Binaries alternate.
#
# With SINK_OPTS (smtp-sink options, e.g. "-r rcpt:5xx=10": a tenth of the recipients refused,
# each such transaction ending with RSET) the run ends when the queue is empty and nothing is in
# flight instead (the bounces are relayed to the sink too, and count as transactions), and
# msgs_per_sec is N over that time.
#
# Usage: BINS="/tmp/A/ringmta build/core/ringmta" bench/drain.sh   (no root; ports 2530-2533)
# Environment: N [30000] SIZE [1024] REPEATS [3] CONC [20] (destination_concurrency_limit)
#   SINK_OPTS [""] SMTP_LOAD [build/bench/smtp-load] SMTP_SINK [build/bench/smtp-sink]
#   OUT [/tmp/ringmta-drain]
# Output: one line per run: bin, delivered, seconds, msgs_per_sec, rt, txn, rt_per_msg, load1.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; ROOT="$(dirname "$HERE")"
N=${N:-30000}; SIZE=${SIZE:-1024}; REPEATS=${REPEATS:-3}; CONC=${CONC:-20}
BINS=${BINS:-$ROOT/build/core/ringmta}; OUT=${OUT:-/tmp/ringmta-drain}
LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}; SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
COMMON=(-o log_level=warning -o hostname=ringmta.bench -o dns_servers=127.0.0.1:9
        -o admin_listen=127.0.0.1:2533)
rm -rf "$OUT"; mkdir -p "$OUT"
SINK_OPTS=${SINK_OPTS:-}
"$SINK" -w 2 -q $SINK_OPTS 127.0.0.1:2530 & SP=$!
trap 'kill -TERM $SP 2>/dev/null' EXIT
set -- $BINS
"$1" -o listen=127.0.0.1:2531 -o "queue_dir=$OUT/q0" -o delivery=no "${COMMON[@]}" \
    > "$OUT/inject.log" 2>&1 & RP=$!
sleep 1
timeout 300 "$LOAD" -s 127.0.0.1:2531 -c 50 -n "$N" -z "$SIZE" -m 0 -P -q -j -t 10 > "$OUT/load.json" ||
    { echo "drain.sh: injection failed (see $OUT)" >&2; kill $RP; exit 1; }
kill -TERM $RP; wait $RP
metric() {
    /usr/bin/python3 -c 'import sys, urllib.request as u
for l in u.urlopen("http://127.0.0.1:2532/metrics", timeout=2).read().decode().splitlines():
    if l.startswith(sys.argv[1] + " "): print(int(float(l.split()[-1]))); break' "$1" 2>/dev/null
}
for i in $(seq "$REPEATS"); do
    for bin in $BINS; do
        rm -rf "$OUT/q"; cp -a "$OUT/q0" "$OUT/q"
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s.%N)
        "$bin" -o listen=127.0.0.1:2531 -o "queue_dir=$OUT/q" -o "relayhost=[127.0.0.1]:2530" \
            -o "destination_concurrency_limit=$CONC" -o smtp_reuse_limit=1000 \
            -o metrics_listen=127.0.0.1:2532 "${COMMON[@]}" >> "$OUT/run.log" 2>&1 & RP=$!
        got=0
        for _ in $(seq 1200); do
            got=$(metric 'ringmta_recipients_total{result="delivered"}'); got=${got:-0}
            if [ -n "$SINK_OPTS" ]; then
                ready=$(metric 'ringmta_queue_messages{state="ready"}')
                sched=$(metric 'ringmta_queue_messages{state="scheduled"}')
                fl=$(metric ringmta_deliveries_in_flight)
                [ "${ready:-1}" -eq 0 ] && [ "${sched:-1}" -eq 0 ] && [ "${fl:-1}" -eq 0 ] && break
            else
                [ "$got" -ge "$N" ] && break
            fi
            sleep 0.05
        done
        t1=$(date +%s.%N)
        rt=$(metric ringmta_outbound_round_trips_total); tx=$(metric ringmta_outbound_transactions_total)
        kill -TERM $RP; wait $RP
        rate_n=$got; [ -n "$SINK_OPTS" ] && rate_n=$N
        awk -v b="$bin" -v n="$got" -v rn="$rate_n" -v t0="$t0" -v t1="$t1" -v rt="${rt:-NA}" -v tx="${tx:-NA}" -v l="$load" \
            'BEGIN { printf "drain bin=%s delivered=%d seconds=%.2f msgs_per_sec=%.0f rt=%s txn=%s rt_per_msg=%s load1=%s\n",
                     b, n, t1 - t0, rn / (t1 - t0), rt, tx, (rt == "NA" ? "NA" : sprintf("%.3f", rt / tx)), l }'
    done
done
