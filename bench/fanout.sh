#!/usr/bin/env bash
# fanout.sh - how fast ringmta drains a large queue spread over many domains, against the
# same queue for one domain (issue 10, "Fan-out"), and what an active site costs in memory.
#
#   1. queue:  smtp-load --SMTP--> ringmta (delivery = no: it only queues, fsync on)
#   2. drain:  ringmta restarted with delivery on --MX lookups (dnsmasq)--> smtp-sink
#
# dnsmasq on 127.0.0.1:$DNS_PORT answers for the domains d0.test .. d<DOMAINS-1>.test.
# MX=none (the default): each domain has no MX and an A record 127.0.1.<i % ADDRS + 1>
# (host-record), so it is its own mail host (RFC 5321 5.1, implicit MX) and its own site;
# MX=domain: each has an MX host mx<i>.d<i>.test with that address (one site per
# domain); MX=shared: the MX host is mx<i % ADDRS>.test, so MX rollup makes ADDRS sites.
# dnsmasq looks MX records (mx-host) up in a list, about 0.5 ms of its CPU per query with
# 10,000 of them on the 2-vCPU VM (host-records are hashed: 0.005 ms), so MX=domain and
# MX=shared make DNS cost CPU that a real resolver elsewhere would not; its CPU over the
# drain is in the raw log (dns_cpu_s). The first lookups come in a burst (one per domain),
# which the default 208 KiB socket buffers drop: for the run net.core.rmem_default and
# rmem_max are raised to DNS_RMEM (restored at exit). One bench/smtp-sink on
# 0.0.0.0:$SINK_PORT takes the# connections to all those loopback addresses (ringmta: smtp_port = SINK_PORT,
# smtp_allow_private_destinations = yes). For each mode, MSGS messages of SIZE bytes,
# one recipient each, are queued (mode fan: smtp-load -R DOMAINS, each domain the same
# share; mode one: every message to d0.test), ringmta is stopped (SIGTERM) and started
# again with delivery on, and the drain is timed from that start until the sink has
# counted MSGS. bench/drainwatch.py samples the sink's count, ringmta's RSS and RssAnon
# and, with a metrics endpoint, the engine's active-site gauge, every second.
#
# Usage: bench/fanout.sh                  (as root: dnsmasq and 127.0.1.x binds)
#        bench/fanout.sh --table RAW.log  re-print the table of an earlier run
#
# Environment (defaults in brackets):
#   MSGS [1000000]  DOMAINS [10000]  ADDRS [50]  SIZE [1024]  MX [none] (domain, shared)
#   DNS_RMEM [16777216]    socket receive buffers during the run (see above); 0: leave them
#   MODES ["fan one"]      in this order; the table's ratio is fan / one
#   SESSIONS [50]  INJECT_OPTS ["-m 0 -P"]   smtp-load's sessions and options while
#                          queueing (not timed: connection reuse makes it quicker)
#   CONC [20]              destination_concurrency_limit (mode one)
#   CONC_FAN [$CONC]       destination_concurrency_limit in mode fan: DOMAINS x CONC_FAN
#                          connections must fit in the open file limit (of ringmta and
#                          of the sink), else ringmta defers what it cannot connect for
#   RINGMTA_OPTS [""]      more "-o key=value" for ringmta (both phases), e.g. the rules
#   SITES_RE [^ringmta_.*sites?\b]  metric names whose sum is the count of active sites
#   SYSCALLS [1]           count ringmta's system calls over the drain with perf stat
#   TIMEOUT [1800]         give up a drain this many s after ringmta's start
#   LOG_LEVEL [warning]    ringmta's (its log: $OUT/fanout-<time>/ringmta.log)
#   KEEP [0]               1: keep each mode's queue after the drain (<mode>-queue)
#   NOFILE [1048576]       open file limit (soft and hard) for ringmta and the sink
#   POST [30]              after the drain, sample until ringmta has closed its idle
#                          connections (smtp_idle_timeout), at most this many s: the
#                          memory it keeps without them (drainwatch.py)
#   QUIET [0.3] QUIET_WAIT [120]  RINGMTA, SMTP_LOAD, SMTP_SINK, OUT [/tmp/ringmta-bench]
#   COMMIT [git log -1 of this tree]
#
# Output: the table; one key=value line per mode in $OUT/fanout-<time>.log, the samples
# (one line a second) in $OUT/fanout-<time>/<mode>.samples.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

print_table() { "$HERE/shapetable.py" fanout "$1"; }   # RAW.log

if [ "${1:-}" = "--table" ]; then
    print_table "${2:?usage: fanout.sh --table RAW.log}"; exit
elif [ $# -gt 0 ]; then
    sed -n '2,54p' "$0"; exit 2
fi

MSGS=${MSGS:-1000000}
DOMAINS=${DOMAINS:-10000}
ADDRS=${ADDRS:-50}
SIZE=${SIZE:-1024}
MX=${MX:-none}
DNS_RMEM=${DNS_RMEM:-16777216}
MODES=${MODES:-"fan one"}
SESSIONS=${SESSIONS:-50}
INJECT_OPTS=${INJECT_OPTS:-"-m 0 -P"}
CONC=${CONC:-20}
CONC_FAN=${CONC_FAN:-$CONC}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
SITES_RE=${SITES_RE:-'^ringmta_.*sites?\b'}
SYSCALLS=${SYSCALLS:-1}
TIMEOUT=${TIMEOUT:-1800}
LOG_LEVEL=${LOG_LEVEL:-warning}
KEEP=${KEEP:-0}
NOFILE=${NOFILE:-1048576}
POST=${POST:-30}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
SMTP_SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
RIG=${RIG:-/work/shared/rig}
OUT=${OUT:-/tmp/ringmta-bench}
U="$RIG/rigutil.py"
PT="$HERE/proctree.py"
DNS_PORT=5399
SINK_PORT=2527
RINGMTA_PORT=2625
METRICS=127.0.0.1:2628

die() { echo "fanout.sh: $*" >&2; exit 1; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
[ -x "$SMTP_LOAD" ] || die "no $SMTP_LOAD (ninja -C build)"
[ -x "$SMTP_SINK" ] || die "no $SMTP_SINK (ninja -C build)"
[ -x /usr/sbin/dnsmasq ] || die "no /usr/sbin/dnsmasq (apt-get install dnsmasq-base)"
[ "$(id -u)" = 0 ] || die "run as root (dnsmasq)"
case $MX in none|domain|shared) ;; *) die "MX is none, domain or shared" ;; esac
[ "$ADDRS" -ge 1 ] && [ "$ADDRS" -le 254 ] || die "ADDRS is 1 to 254"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/fanout-$STAMP.log"
DIR="$OUT/fanout-$STAMP"; mkdir -p "$DIR"
RUN="$DIR"
# ringmta opens up to CONC connections per domain: with thousands of domains that can be
# more descriptors than the limit (20,000 on the VM, and the hard limit cannot be raised
# there without CAP_SYS_RESOURCE), hence CONC_FAN
ulimit -Hn "$NOFILE" 2>/dev/null; ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. "$HERE/benchlib.sh"   # note, quiet, wait_port, sink_settled, counters_start/stop

add() { sed -i '$ s/$/ '"$*"'/' "$RAW"; }

# ---------------------------------------------------------------- DNS and sink
DNS_PID=""; SINK_PID=""; RM_PID=""
dns_start() {
    local conf="$DIR/dnsmasq.conf"
    awk -v n="$DOMAINS" -v a="$ADDRS" -v mx="$MX" 'BEGIN {
        for (i = 0; i < n; i++) {
            if (mx == "none") {
                printf "host-record=d%d.test,127.0.1.%d\n", i, i % a + 1
            } else if (mx == "domain") {
                printf "mx-host=d%d.test,mx%d.d%d.test,10\n", i, i, i
                printf "host-record=mx%d.d%d.test,127.0.1.%d\n", i, i, i % a + 1
            } else {
                printf "mx-host=d%d.test,mx%d.test,10\n", i, i % a
            }
        }
        if (mx == "shared")
            for (k = 0; k < a; k++) printf "host-record=mx%d.test,127.0.1.%d\n", k, k + 1
    }' > "$conf"
    /usr/sbin/dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --conf-file="$conf" --pid-file= \
        --local=/test/ --local-ttl=3600 --log-facility=- --user=root --cache-size=10000 \
        > "$DIR/dnsmasq.out" 2>&1 &
    DNS_PID=$!
    # an answer for the last domain (its MX, or with MX=none its A record): dnsmasq is
    # up and has read every line
    local last="d$((DOMAINS - 1)).test" qt=15
    [ "$MX" = none ] && qt=1
    for _ in $(seq 100); do
        /usr/bin/python3 - "$DNS_PORT" "$last" "$qt" <<'PY' && return 0
import socket, struct, sys
port, name, qt = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(
    bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00" + struct.pack(">HH", qt, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
try:
    s.sendto(q, ("127.0.0.1", port)); r = s.recv(512)
except OSError:
    sys.exit(1)
sys.exit(0 if struct.unpack(">H", r[6:8])[0] > 0 else 1)   # an answer record
PY
        sleep 0.1
    done
    die "dnsmasq did not answer for $last (see $DIR/dnsmasq.out)"
}
sink_start() {
    "$SMTP_SINK" -w 2 -s "$DIR/sink.json" "0.0.0.0:$SINK_PORT" > "$DIR/sink.out" 2> "$DIR/sink.err" &
    SINK_PID=$!
    wait_port 127.0.1.1 "$SINK_PORT" || die "smtp-sink did not listen (see $DIR/sink.err)"
}

# ---------------------------------------------------------------- ringmta
RM_Q="$DIR/queue"
ringmta_start() {  # DELIVERY(yes/no) CONC
    # shellcheck disable=SC2086
    "$RINGMTA" -o "listen=127.0.0.1:$RINGMTA_PORT" -o "queue_dir=$RM_Q" -o "log_level=$LOG_LEVEL" \
               -o "delivery=$1" -o "dns_servers=127.0.0.1:$DNS_PORT" -o "smtp_port=$SINK_PORT" \
               -o smtp_allow_private_destinations=yes -o "destination_concurrency_limit=$2" \
               -o smtp_reuse_limit=1000 -o hostname=ringmta.bench -o "metrics_listen=$METRICS" \
               $RINGMTA_OPTS >> "$DIR/ringmta.log" 2>&1 &
    RM_PID=$!
}
ringmta_stop() {  # -> RC, STOP_S
    local t0; t0=$(date +%s.%N)
    kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID"; RC=$?; RM_PID=""
    STOP_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
}
qcount() { "$RINGMTA" -o "queue_dir=$RM_Q" queue count 2>/dev/null || echo NA; }

run_mode() {  # MODE
    local mode=$1 domopt t0 t1 js="$DIR/$1-inject.json" queued conc
    case $mode in
    fan) domopt="-R $DOMAINS"; conc=$CONC_FAN ;;
    one) domopt="-R 1"; conc=$CONC ;;
    *) die "unknown mode '$mode' (fan, one)" ;;
    esac
    rm -rf "$RM_Q"
    # 1. queue, delivery off
    ringmta_start no "$conc"
    wait_port 127.0.0.1 "$RINGMTA_PORT" || die "ringmta did not listen (see $DIR/ringmta.log)"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$SMTP_LOAD" -s "127.0.0.1:$RINGMTA_PORT" -c "$SESSIONS" -n "$MSGS" -z "$SIZE" $domopt \
        $INJECT_OPTS -q -j > "$js" 2> "$DIR/$mode-inject.err"
    t1=$(date +%s.%N)
    ringmta_stop
    queued=$(qcount)
    note "$mode: queued $queued of $MSGS in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s" \
         "(ringmta exit $RC after ${STOP_S}s)"
    [ "$queued" -gt 0 ] 2>/dev/null || die "nothing queued (see $DIR/$mode-inject.err, $DIR/ringmta.log)"
    local inj; inj=$("$HERE/benchtable.py" kv < "$js" 2>/dev/null | grep -o ' msgs_per_sec=[0-9.]*' | cut -d= -f2)
    sync
    # 2. drain, delivery on
    local pre base c0 c1 t_start w
    pre=$(quiet)
    base=$(sink_settled "$SINK_PID" "$DIR/sink.out")
    read -r -a c0 < <("$U" cpu "$SINK_PID" "$DNS_PID")
    t_start=$(date +%s.%N)
    ringmta_start yes "$conc"
    counters_start "$RM_PID"
    w=$(POST="$POST" "$HERE/drainwatch.py" "$SINK_PID" "$DIR/sink.out" "$base" "$queued" "$t_start" "$TIMEOUT" \
        "$RM_PID" "$DIR/$mode.samples" "http://$METRICS/metrics" "$SITES_RE")
    local mcpu scpu dcpu
    read -r mcpu scpu dcpu < <("$U" cpu "$RM_PID" "$SINK_PID" "$DNS_PID")
    counters_stop "$RM_PID"
    ringmta_stop
    local left; left=$(qcount)
    local line
    line=$(awk -v w="$w" -v t0="$t_start" -v q="$queued" -v s0="${c0[0]}" -v mc="$mcpu" -v sc="$scpu" \
               -v d0="${c0[1]}" -v dc="$dcpu" 'BEGIN {
        n = split(w, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
        d = v["end"] - t0
        printf "drain_s=%.2f drain_msgs_per_sec=%.1f", d, (d > 0 ? v["delivered"] / d : 0)
        if (v["t10"] != "NA" && v["t90"] != "NA" && v["t90"] > v["t10"])
            printf " steady_msgs_per_sec=%.1f", (int(q * 9 / 10) - int(q / 10)) / (v["t90"] - v["t10"])
        else printf " steady_msgs_per_sec=NA"
        printf " mta_cpu_s=%.2f sink_cpu_s=%.2f dns_cpu_s=%.2f", mc, sc - s0, dc - d0 }')
    echo "tool=fanout mode=$mode msgs=$MSGS queued_before=$queued domains=$([ "$mode" = fan ] && echo "$DOMAINS" || echo 1)" \
         "mx_names=$([ "$mode" = one ] && echo 1 || { [ "$MX" = shared ] && echo "$ADDRS" || echo "$DOMAINS"; })" \
         "addrs=$ADDRS mx=$MX size=$SIZE conc=$conc inject_msgs_per_sec=${inj:-NA} $w $line $CNT" \
         "exit_rc=$RC stop_s=$STOP_S queued=$left pre_busy_cores=$pre" >> "$RAW"
    printf '  %-4s drained %s in %s\n' "$mode" "$(grep -o 'delivered=[0-9]*' <<<"$w")" \
        "$(grep -o 'drain_s=[0-9.]*' <<<"$line") $(grep -o 'drain_msgs_per_sec=[0-9.]*' <<<"$line")" >&2
    [ "$RC" = 0 ] || note "ringmta exited $RC after the $mode drain"
    [ "$left" = 0 ] || note "queue not empty after the $mode drain: $left"
    [ "$KEEP" = 1 ] && mv "$RM_Q" "$DIR/$mode-queue"
    rm -rf "$RM_Q"
}

cleanup() {
    trap - EXIT INT TERM
    [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; }
    [ -n "$RM_PID" ] && { kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID" 2>/dev/null; }
    [ -n "$SINK_PID" ] && { kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    [ -n "$DNS_PID" ] && { kill -TERM "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null; }
    rm -rf "$RM_Q"
    if [ -n "$RMEM_SAVED" ]; then
        set -- $RMEM_SAVED
        sysctl -qw net.core.rmem_default="$1" net.core.rmem_max="$2"
    fi
}
RMEM_SAVED=""
trap cleanup EXIT
trap 'echo "fanout.sh: interrupted" >&2; exit 130' INT TERM

note "fanout.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
     "msgs=$MSGS domains=$DOMAINS addrs=$ADDRS mx=$MX size=$SIZE modes=\"$MODES\" sessions=$SESSIONS" \
     "inject_opts=\"$INJECT_OPTS\" conc=$CONC conc_fan=$CONC_FAN ringmta_opts=\"$RINGMTA_OPTS\" nofile=$(ulimit -n)" \
     "commit=${COMMIT:-$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)}"
note "ringmta $("$RINGMTA" --version 2>&1 | head -1)"
if [ "$DNS_RMEM" != 0 ]; then
    RMEM_SAVED="$(sysctl -n net.core.rmem_default) $(sysctl -n net.core.rmem_max)"
    sysctl -qw net.core.rmem_default="$DNS_RMEM" net.core.rmem_max="$DNS_RMEM" ||
        die "cannot raise net.core.rmem_default"
    note "net.core.rmem_default and rmem_max raised from $RMEM_SAVED to $DNS_RMEM for the run"
fi
dns_start
sink_start
for m in $MODES; do run_mode "$m"; done
echo
echo "raw log: $RAW"
print_table "$RAW"
