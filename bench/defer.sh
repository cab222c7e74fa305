#!/usr/bin/env bash
# defer.sh - ringmta against Postfix relaying to a sink that defers a share of messages
# with Gmail's rate reply (issue 10, "Against Postfix"): SMTP attempts per delivered
# message, and how fast the mail gets through, over a fixed window.
#
#   smtp-load --SMTP--> MTA (durable queue) --SMTP--> smtp-sink -r data:421=PCT 127.0.0.1:2526
#
# The sink answers PCT % of messages, after their data, with a two-line
# "421-4.7.28 ... unusual rate of unsolicited mail ..." and closes the session (bench/
# smtp-sink -r data:421); the rest get 250. Each MTA in turn (started fresh, empty queue,
# relayhost = the sink) gets MSGS messages of SIZE bytes from smtp-load (SESSIONS
# sessions, one connection per message), and bench/deferwatch.py reads the sink's
# counters for WINDOW seconds from the start of the load: attempts = transactions the
# sink saw start (MAIL accepted: its "mail" counter), delivered = messages it accepted;
# attempts per delivered = the first over the second (1 / (1 - PCT/100) = 1.11 for 10 %
# when each attempt fails independently and every message gets through). Both MTAs
# retry after RETRY, doubling:
#   ringmta: retry_min = RETRY, retry_max at its default (4h), destination_concurrency_limit
#            = CONC, smtp_reuse_limit = 1000 (as e2e.sh);
#   Postfix: the rig's, with minimal_backoff_time = RETRY, queue_run_delay = RETRY (it
#            scans the deferred queue that often), maximal_backoff_time = 4000s (default),
#            SMTP_CONC from the rig (100).
# ringmta's shaping (automation rules that act on 4.7.28, its built-in Gmail rule) is
# whatever the build and RINGMTA_OPTS turn on; the raw log records the options. The
# shipped Gmail rule belongs to the provider "gmail" (MX hosts under .google.com), so
# the MTA "ringmta-gmail" sends to gmail.test instead, through MX lookups: a dnsmasq on
# 127.0.0.1:5399 answers MX aspmx.l.google.com for it, and A 127.0.0.1 for that host
# (smtp_port = the sink's, smtp_allow_private_destinations = yes): the same sink, seen
# as Gmail. Postfix and "ringmta" use the relayhost; so does "ringmta-before", another
# ringmta binary (RINGMTA_BEFORE: a build before shaping), to compare in the same run.
#
# Usage: bench/defer.sh                  (as root: Postfix needs it)
#        bench/defer.sh --table RAW.log  re-print the table of an earlier run
#
# Environment (defaults in brackets):
#   MSGS [5000]  SIZE [1024]  SESSIONS [50]  PCT [10]  WINDOW [180] (s)  RETRY [20s]
#   MTAS ["ringmta ringmta-gmail postfix"]  CONC [20]  RINGMTA_OPTS [""]  SYSCALLS [1]
#   RINGMTA_BEFORE [""]  the binary of MTA "ringmta-before"
#   QUIET [0.3] QUIET_WAIT [120]  RINGMTA, SMTP_LOAD, SMTP_SINK, RIG, OUT [/tmp/ringmta-bench]
#
# Output: the table; one key=value line per MTA in $OUT/defer-<time>.log; the sink's
# counters every half second in $OUT/defer-<time>/<mta>.samples.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

print_table() { "$HERE/shapetable.py" defer "$1"; }   # RAW.log

if [ "${1:-}" = "--table" ]; then
    print_table "${2:?usage: defer.sh --table RAW.log}"; exit
elif [ $# -gt 0 ]; then
    sed -n '2,42p' "$0"; exit 2
fi

MSGS=${MSGS:-5000}
SIZE=${SIZE:-1024}
SESSIONS=${SESSIONS:-50}
PCT=${PCT:-10}
WINDOW=${WINDOW:-180}
RETRY=${RETRY:-20s}
MTAS=${MTAS:-"ringmta ringmta-gmail postfix"}
CONC=${CONC:-20}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
SYSCALLS=${SYSCALLS:-1}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
SMTP_SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
RIG=${RIG:-/work/shared/rig}
OUT=${OUT:-/tmp/ringmta-bench}
U="$RIG/rigutil.py"
PT="$HERE/proctree.py"
SINK_ADDR=127.0.0.1:2526
RINGMTA_PORT=2625
PF_ADDR=127.0.0.1:2525

die() { echo "defer.sh: $*" >&2; exit 1; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
[ -x "$SMTP_LOAD" ] || die "no $SMTP_LOAD (ninja -C build)"
[ -x "$SMTP_SINK" ] || die "no $SMTP_SINK (ninja -C build)"
case " $MTAS " in *" postfix "*)
    [ "$(id -u)" = 0 ] || die "Postfix runs need root"
    command -v postfix >/dev/null || die "postfix is not installed (see $RIG/README.md)" ;;
esac
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/defer-$STAMP.log"
DIR="$OUT/defer-$STAMP"; mkdir -p "$DIR"
RUN="$DIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. "$HERE/benchlib.sh"   # note, quiet, wait_port, counters_start/stop

SINK_PID=""; RM_PID=""; PF_RUNNING=""
sink_start() {
    "$SMTP_SINK" -w 2 -r "data:421=$PCT" -s "$DIR/sink.json" "$SINK_ADDR" > "$DIR/sink.out" \
        2> "$DIR/sink.err" &
    SINK_PID=$!
    wait_port 127.0.0.1 "${SINK_ADDR##*:}" || die "smtp-sink did not listen (see $DIR/sink.err)"
}

# One MTA's run: the load starts at T0, the sink is read until T0 + WINDOW.
measure() {  # MTA TARGET "PID..."
    local mta=$1 target=$2 pids=$3 pre t0 w c0 c1 js="$DIR/$1-load.json"
    pre=$(quiet)
    # shellcheck disable=SC2086
    read -r c0 < <("$U" cpu $pids | awk '{ m = 0; for (i = 1; i <= NF; i++) m += $i; print m }')
    local base; base=$("$HERE/deferwatch.py" base "$SINK_PID" "$DIR/sink.out") || die "no counters from the sink"
    counters_start "$pids"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$SMTP_LOAD" -s "$target" -c "$SESSIONS" -n "$MSGS" -z "$SIZE" -D "$LOAD_DOMAIN" -q -j > "$js" 2> "$DIR/$mta-load.err" &
    local lp=$!
    w=$("$HERE/deferwatch.py" "$SINK_PID" "$DIR/sink.out" "$t0" "$WINDOW" "$MSGS" "$DIR/$mta.samples" "$base")
    wait "$lp"
    # shellcheck disable=SC2086
    read -r c1 < <("$U" cpu $pids | awk '{ m = 0; for (i = 1; i <= NF; i++) m += $i; print m }')
    counters_stop "$pids"
    local kvs; kvs=$("$HERE/benchtable.py" kv < "$js" 2>/dev/null | grep -o ' ok=[0-9]*\| msgs_per_sec=[0-9.]*\| errors=[^ ]*' | tr -d '\n')
    echo "tool=defer mta=$mta messages=$MSGS size=$SIZE sessions=$SESSIONS pct=$PCT retry=$RETRY" \
         "conc=$CONC $w mta_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')$kvs $CNT" \
         "pre_busy_cores=$pre" >> "$RAW"
    printf '  %-8s %s\n' "$mta" "$(grep -o 'd_mail=[0-9]* \|d_messages=[0-9]*\|t100=[^ ]*' <<<"$w" | tr '\n' ' ')" >&2
}
add() { sed -i '$ s/$/ '"$*"'/' "$RAW"; }

DNS_PID=""
dns_start() {   # gmail.test MX aspmx.l.google.com, A 127.0.0.1
    [ -n "$DNS_PID" ] && return 0
    /usr/sbin/dnsmasq --keep-in-foreground --port=5399 --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null --pid-file= \
        --local=/test/ --local=/google.com/ --local-ttl=3600 --log-facility=- --user=root \
        --mx-host=gmail.test,aspmx.l.google.com,10 --host-record=aspmx.l.google.com,127.0.0.1 \
        > "$DIR/dnsmasq.out" 2>&1 &
    DNS_PID=$!
    sleep 0.5
    kill -0 "$DNS_PID" 2>/dev/null || die "dnsmasq did not start (see $DIR/dnsmasq.out)"
}
run_ringmta() {  # LABEL: ringmta, ringmta-before (relayhost) or ringmta-gmail (gmail.test by MX)
    local q="$DIR/ringmta-queue" rc route bin=$RINGMTA
    rm -rf "$q"
    if [ "$1" = ringmta-before ]; then
        bin=${RINGMTA_BEFORE:?ringmta-before needs RINGMTA_BEFORE}
        note "ringmta-before: $bin, $("$bin" --version 2>&1 | head -1)"
    fi
    if [ "$1" = ringmta-gmail ]; then
        dns_start
        route="-o dns_servers=127.0.0.1:5399 -o smtp_port=${SINK_ADDR##*:} -o smtp_allow_private_destinations=yes"
        LOAD_DOMAIN=gmail.test
    else
        route="-o relayhost=[127.0.0.1]:${SINK_ADDR##*:} -o dns_servers=127.0.0.1:9"
        LOAD_DOMAIN=example.com
    fi
    # shellcheck disable=SC2086
    "$bin" -o "listen=127.0.0.1:$RINGMTA_PORT" -o "queue_dir=$q" -o log_level=warning \
               $route -o "destination_concurrency_limit=$CONC" -o smtp_reuse_limit=1000 \
               -o "retry_min=$RETRY" -o hostname=ringmta.bench $RINGMTA_OPTS \
               >> "$DIR/ringmta.log" 2>&1 &
    RM_PID=$!
    wait_port 127.0.0.1 "$RINGMTA_PORT" || die "ringmta did not listen (see $DIR/ringmta.log)"
    measure "$1" "127.0.0.1:$RINGMTA_PORT" "$RM_PID"
    kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID"; rc=$?; RM_PID=""
    add "exit_rc=$rc left=$("$bin" -o "queue_dir=$q" queue count 2>/dev/null || echo NA)"
    rm -rf "$q"
}

pf_queued() { find /var/spool/postfix/{incoming,active,deferred,hold,maildrop} -type f 2>/dev/null | wc -l; }
run_postfix() {
    PROCESS_LIMIT=1100 MAILLOG=none RELAY="[127.0.0.1]:${SINK_ADDR##*:}" \
        EXTRA_MAIN="minimal_backoff_time = $RETRY
maximal_backoff_time = 4000s
queue_run_delay = $RETRY" "$RIG/postfix-up.sh" --purge >&2 || die "postfix-up.sh failed"
    PF_RUNNING=1
    postconf minimal_backoff_time maximal_backoff_time queue_run_delay \
        smtp_destination_concurrency_limit default_process_limit | sed 's/^/# postfix: /' >> "$RAW"
    measure postfix "$PF_ADDR" "$(tr -d ' ' < /var/spool/postfix/pid/master.pid)"
    add "left=$(pf_queued)"
    "$RIG/postfix-down.sh" --purge >&2; PF_RUNNING=""
}

cleanup() {
    trap - EXIT INT TERM
    [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; }
    [ -n "$RM_PID" ] && { kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID" 2>/dev/null; }
    [ -n "$PF_RUNNING" ] && "$RIG/postfix-down.sh" --purge >/dev/null 2>&1
    [ -n "$SINK_PID" ] && { kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    [ -n "$DNS_PID" ] && { kill -TERM "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null; }
}
trap cleanup EXIT
trap 'echo "defer.sh: interrupted" >&2; exit 130' INT TERM

note "defer.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
     "msgs=$MSGS size=$SIZE sessions=$SESSIONS pct=$PCT window=$WINDOW retry=$RETRY mtas=\"$MTAS\"" \
     "conc=$CONC ringmta_opts=\"$RINGMTA_OPTS\" commit=${COMMIT:-$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)}"
note "ringmta $("$RINGMTA" --version 2>&1 | head -1); $(postconf -h mail_version 2>/dev/null | sed 's/^/postfix /')"
sink_start
for m in $MTAS; do
    case $m in
    ringmta|ringmta-gmail|ringmta-before) run_ringmta "$m" ;;
    postfix) LOAD_DOMAIN=example.com; run_postfix ;;
    *) die "unknown MTA '$m' (ringmta, ringmta-gmail, ringmta-before, postfix)" ;;
    esac
done
echo
echo "raw log: $RAW"
print_table "$RAW"
