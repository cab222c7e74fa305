#!/usr/bin/env bash
# inbound.sh - inbound acceptance, ringmta against Postfix, with the same load generator.
#
# For every message size and session count it runs bench/smtp-load against ringmta
# (fresh, empty queue each run) and then against the rig's Postfix (queue purged before
# each run), and prints one table: msg/s of each, the ratio, and CPU ms per accepted
# message of each MTA's process tree (from /proc, rig/rigutil.py) and of smtp-load.
# Both MTAs make every message durable before the 250: ringmta commits (and syncs) its
# LMDB queue, Postfix's cleanup fsyncs each queue file. One run at a time; nothing else
# of ours runs while a figure is taken.
#
# Usage: bench/inbound.sh                  (as root: Postfix needs it)
#        bench/inbound.sh --table RAW.log  re-print the table of an earlier run
#
# Environment (defaults in brackets):
#   SIZES ["1024 10240 102400"]  message sizes in bytes (smtp-load -z, headers included)
#   SESSIONS ["50 1000"]         concurrent sessions (smtp-load -c)
#   MESSAGES [20000; 10000 for sizes over 64 KiB]   messages per run (smtp-load -n) ...
#   DURATION [15]                ... or this many seconds, whichever ends first (-d)
#   LOAD_OPTS [""]               more smtp-load options, e.g. "-m 0 -P" (reuse + PIPELINING);
#                                the default is one connection per message, no PIPELINING
#   REPEATS [1]                  runs per scenario and MTA; the table shows medians
#   MTAS ["ringmta postfix"]     which to run; "postfix-deliver" adds Postfix with delivery
#   POSTFIX_MODE [hold]          how "postfix" runs:
#       hold     acceptance only, like ringmta (which does not deliver yet): every message
#                goes to Postfix's hold queue (check_client_access static:HOLD), still
#                fsync'd by cleanup; in_flow_delay = 0 (no queue manager hands out tokens)
#       deliver  the rig as it is: Postfix relays to the rig's smtp-sink while it accepts
#                (postfix-deliver in MTAS always means this)
#   CROSS [0]                    1: also drive each MTA with Postfix's smtp-source
#                                (rig/bench.sh, SRC_MESSAGES [5000]) for a cross-check
#   LOGGING [off]                on: ringmta log_level=info to a file, Postfix maillog on
#   QUIET [0.3] QUIET_WAIT [120] before each run wait until the box's CPUs were at most QUIET
#                                cores busy over one second (others share it), at most
#                                QUIET_WAIT s; the raw log keeps pre_busy_cores and other_cores
#   RINGMTA_PORT [2625]  RINGMTA [build/core/ringmta]  SMTP_LOAD [build/bench/smtp-load]
#   RINGMTA_OPTS [""]            more "-o key=value" for ringmta (delivery=no is added when
#                                the build knows the key: acceptance only, no DNS)
#   RIG [/work/shared/rig]  OUT [/tmp/ringmta-bench] (raw log, ringmta queue and log)
#
# Output: the table on stdout; one key=value line per run in $OUT/inbound-<time>.log.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
TABLE="$HERE/benchtable.py"

if [ "${1:-}" = "--table" ]; then
    exec "$TABLE" table "${2:?usage: inbound.sh --table RAW.log}"
elif [ $# -gt 0 ]; then
    sed -n '2,41p' "$0"; exit 2
fi

SIZES=${SIZES:-"1024 10240 102400"}
SESSIONS=${SESSIONS:-"50 1000"}
DURATION=${DURATION:-15}
LOAD_OPTS=${LOAD_OPTS:-}
REPEATS=${REPEATS:-1}
MTAS=${MTAS:-"ringmta postfix"}
POSTFIX_MODE=${POSTFIX_MODE:-hold}
CROSS=${CROSS:-0}
SRC_MESSAGES=${SRC_MESSAGES:-5000}
LOGGING=${LOGGING:-off}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
RINGMTA_PORT=${RINGMTA_PORT:-2625}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
RIG=${RIG:-/work/shared/rig}
OUT=${OUT:-/tmp/ringmta-bench}
U="$RIG/rigutil.py"
PF_ADDR=127.0.0.1:2525

die() { echo "inbound.sh: $*" >&2; exit 1; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
[ -x "$SMTP_LOAD" ] || die "no $SMTP_LOAD (ninja -C build)"
case " $MTAS " in *" postfix"*)
    [ "$(id -u)" = 0 ] || die "Postfix runs need root"
    command -v postfix >/dev/null || die "postfix is not installed (see $RIG/README.md)" ;;
esac
mkdir -p "$OUT"
RAW="$OUT/inbound-$(date -u +%Y%m%dT%H%M%SZ).log"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 4096 ] || die "ulimit -n is $(ulimit -n); 1000 sessions need more"

messages_for() { if [ -n "${MESSAGES:-}" ]; then echo "$MESSAGES"; elif [ "$1" -gt 65536 ]; then echo 10000; else echo 20000; fi; }
. "$HERE/benchlib.sh"   # note, quiet, wait_port

# One smtp-load run against TARGET, CPU taken of the process tree at PID.
# Appends a key=value line to the raw log.
measure() {  # MTA SCENARIO TARGET PID SESSIONS SIZE [extra key=value...]
    local mta=$1 scen=$2 target=$3 pid=$4 sess=$5 size=$6; shift 6
    local n cpu0 cpu1 sys0 sys1 t0 t1 js kvs
    n=$(messages_for "$size")
    sync                 # earlier runs' writeback is not charged to this one
    local pre; pre=$(quiet)
    cpu0=$("$U" cpu "$pid"); sys0=$("$U" sys); t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    js=$("$SMTP_LOAD" -s "$target" -c "$sess" -n "$n" -d "$DURATION" -z "$size" -q -j $LOAD_OPTS)
    t1=$(date +%s.%N); sys1=$("$U" sys); cpu1=$("$U" cpu "$pid")
    kvs=$(printf '%s' "$js" | "$TABLE" kv) || kvs="ok=0 errors=no-summary"
    local ok; ok=$(grep -o ' ok=[0-9]*' <<<" $kvs" | cut -d= -f2)
    local load_cpu; load_cpu=$(grep -o ' cpu_s=[0-9.]*' <<<" $kvs" | cut -d= -f2)
    local line
    line=$(awk -v c0="$cpu0" -v c1="$cpu1" -v ok="${ok:-0}" -v b0="${sys0% *}" -v T0="${sys0#* }" \
               -v b1="${sys1% *}" -v T1="${sys1#* }" -v n="$(nproc)" -v t0="$t0" -v t1="$t1" \
               -v lc="${load_cpu:-0}" 'BEGIN{
        d = c1 - c0; busy = (T1 > T0) ? n * (b1 - b0) / (T1 - T0) : 0
        printf "mta_cpu_s=%.2f mta_cpu_ms_per_msg=%s sys_busy_cores=%.2f other_cores=%.2f",
               d, (ok > 0 ? sprintf("%.4f", d * 1000 / ok) : "NA"), busy, busy - (d + lc) / (t1 - t0) }')
    echo "tool=smtp-load mta=$mta scenario=$scen size=$size sessions=$sess load_opts=\"$LOAD_OPTS\" $kvs $line pre_busy_cores=$pre $*" >> "$RAW"
    printf '  %-16s %-14s %9s msg/s  cpu %s ms/msg  %s\n' "$mta" "$scen" \
        "$(grep -o ' msgs_per_sec=[0-9.]*' <<<" $kvs" | cut -d= -f2)" \
        "$(grep -o 'mta_cpu_ms_per_msg=[0-9.NA]*' <<<"$line" | cut -d= -f2)" \
        "$(grep -o ' errors=[^ ]*' <<<" $kvs")" >&2
}

# smtp-source through the rig's bench.sh, for the cross-check column of the raw log.
cross() {  # MTA SCENARIO TARGET PID SESSIONS SIZE
    local mta=$1 scen=$2 target=$3 pid=$4 sess=$5 size=$6 l
    sync; quiet >/dev/null
    l=$(CPU_TREES="mta:$pid" LABEL="$mta/$scen" "$RIG/bench.sh" "$target" "$sess" "$SRC_MESSAGES" "$size" 1 2>&1 | tail -1)
    echo "tool=smtp-source mta=$mta scenario=$scen $l" >> "$RAW"
    echo "  smtp-source $mta $scen: $l" >&2
}

# ---------------------------------------------------------------- ringmta
RM_PID=""
# Inbound only: builds with outbound delivery get delivery=no (no DNS, no relaying
# while we measure acceptance); builds before it have no such key.
ringmta_nodelivery() {
    "$RINGMTA" -o delivery=no --check >/dev/null 2>&1 && echo "-o delivery=no"
}
ringmta_start() {
    local q="$OUT/ringmta-queue" lvl=warning
    [ "$LOGGING" = on ] && lvl=info
    rm -rf "$q"
    # shellcheck disable=SC2046
    "$RINGMTA" -o "listen=127.0.0.1:$RINGMTA_PORT" -o "queue_dir=$q" -o "log_level=$lvl" \
               -o workers=0 -o hostname=ringmta.bench $(ringmta_nodelivery) $RINGMTA_OPTS \
               >> "$OUT/ringmta.log" 2>&1 &
    RM_PID=$!
    wait_port 127.0.0.1 "$RINGMTA_PORT" || die "ringmta did not listen on $RINGMTA_PORT (see $OUT/ringmta.log)"
}
RM_RC=""; RM_QUEUED=""
ringmta_stop() {  # sets RM_RC (exit status after SIGTERM) and RM_QUEUED (queue count)
    kill -TERM "$RM_PID" 2>/dev/null
    wait "$RM_PID"; RM_RC=$?; RM_PID=""
    RM_QUEUED=$("$RINGMTA" -o "queue_dir=$OUT/ringmta-queue" queue count 2>/dev/null || echo NA)
    rm -rf "$OUT/ringmta-queue"     # up to a few GiB after the 100 KiB runs
}
run_ringmta() {  # SESSIONS SIZE SCENARIO
    ringmta_start
    measure ringmta "$3" "127.0.0.1:$RINGMTA_PORT" "$RM_PID" "$1" "$2"
    ringmta_stop
    # every message answered 250 must be in the queue after a clean stop
    sed -i '$ s/$/ exit_rc='"$RM_RC"' queued='"$RM_QUEUED"'/' "$RAW"
    [ "$RM_RC" = 0 ] || note "ringmta exited $RM_RC after $3"
    if [ "$CROSS" = 1 ]; then
        ringmta_start; cross ringmta "$3" "127.0.0.1:$RINGMTA_PORT" "$RM_PID" "$1" "$2"; ringmta_stop
    fi
}

# ---------------------------------------------------------------- Postfix
pf_up() {  # MODE
    local ifd=1s log=none
    [ "$1" = hold ] && ifd=0
    [ "$1" = deliver ] && { "$RIG/sink.sh" start >&2 || die "sink did not start"; }
    [ "$LOGGING" = on ] && log=/var/log/postfix-rig.log
    PROCESS_LIMIT=1100 MAILLOG=$log IN_FLOW_DELAY=$ifd \
        "$RIG/postfix-up.sh" --purge >&2 || die "postfix-up.sh failed"
    if [ "$1" = hold ]; then
        # edit in place (EXTRA_MAIN would add a second, overriding entry)
        postconf -e "smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject"
        postfix reload >/dev/null 2>&1; sleep 2
        wait_port 127.0.0.1 2525 || die "postfix did not come back after reload"
    fi
    postconf smtpd_recipient_restrictions in_flow_delay default_process_limit maillog_file |
        sed 's/^/# postfix: /' >> "$RAW"
}
pf_down() {
    "$RIG/postfix-down.sh" --purge >&2
    "$RIG/sink.sh" stop >/dev/null 2>&1 || true
}
pf_purge() {
    postsuper -d ALL >/dev/null 2>&1 || true
    postsuper -d ALL hold >/dev/null 2>&1 || true
}
pf_queued() { find /var/spool/postfix/{incoming,active,deferred,hold} -type f 2>/dev/null | wc -l; }
run_postfix() {  # MTA-LABEL SESSIONS SIZE SCENARIO
    local pid
    pf_purge
    pid=$(tr -d ' ' < /var/spool/postfix/pid/master.pid)
    measure "$1" "$4" "$PF_ADDR" "$pid" "$2" "$3"
    sed -i '$ s/$/ queued='"$(pf_queued)"'/' "$RAW"
    if [ "$CROSS" = 1 ]; then pf_purge; cross "$1" "$4" "$PF_ADDR" "$pid" "$2" "$3"; fi
}

trap '[ -n "$RM_PID" ] && kill -TERM $RM_PID 2>/dev/null; [ -n "${PF_RUNNING:-}" ] && pf_down >/dev/null 2>&1' EXIT

note "inbound.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc)" \
     "cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\"" \
     "kernel=$(uname -r) sizes=\"$SIZES\" sessions=\"$SESSIONS\" duration=$DURATION" \
     "load_opts=\"$LOAD_OPTS\" repeats=$REPEATS mtas=\"$MTAS\" postfix_mode=$POSTFIX_MODE"
note "ringmta $("$RINGMTA" --version 2>&1 | head -1); $(postconf -h mail_version 2>/dev/null | sed 's/^/postfix /')"

for mta in $MTAS; do
    case $mta in
    ringmta)
        for sess in $SESSIONS; do for size in $SIZES; do for _ in $(seq "$REPEATS"); do
            run_ringmta "$sess" "$size" "$((size / 1024))KiB-c$sess"
        done; done; done ;;
    postfix|postfix-deliver)
        mode=$POSTFIX_MODE; [ "$mta" = postfix-deliver ] && mode=deliver
        pf_up "$mode"; PF_RUNNING=1
        for sess in $SESSIONS; do for size in $SIZES; do for _ in $(seq "$REPEATS"); do
            run_postfix "$mta" "$sess" "$size" "$((size / 1024))KiB-c$sess"
        done; done; done
        pf_down; PF_RUNNING="" ;;
    *) die "unknown MTA '$mta' (ringmta, postfix, postfix-deliver)" ;;
    esac
done

echo
echo "raw log: $RAW"
"$TABLE" table "$RAW"
