#!/usr/bin/env bash
# e2e.sh - end-to-end relay rate, ringmta against Postfix, with the same load and sink.
#
#   smtp-load --SMTP--> MTA (durable queue, fsync) --SMTP--> sink 127.0.0.1:2526
#
# For every message size and session count it injects N messages with bench/smtp-load
# into ringmta (fresh, empty queue each run, relayhost = the sink, delivering while it
# accepts) and then into the rig's Postfix (relayhost = the same sink, queue purged
# before each run), and times from the start of the injection until the sink has counted
# all N. It prints one table: end-to-end msg/s of each, the ratio, CPU ms per message
# (= CPU s per 1,000 messages) of each MTA's whole process tree (rig/rigutil.py, /proc),
# of the sink and of smtp-load. One run at a time; before each it waits for a quiet box.
#
# Usage: bench/e2e.sh                   (as root: Postfix needs it)
#        bench/e2e.sh --table RAW.log   re-print the table of an earlier run
#
# Environment (defaults in brackets):
#   SIZES ["1024 102400"]         message sizes in bytes (smtp-load -z, headers included)
#   SESSIONS ["50 1000"]          concurrent injecting sessions (smtp-load -c); 5000 works
#                                 (ulimit -n is raised to the hard limit; Postfix then gets
#                                 PROCESS_LIMIT = sessions + 100)
#   MSGS_RINGMTA [200,000 up to 4 KiB; 100,000 up to 32 KiB; 50,000 above]  messages per
#                                 ringmta run (10 to 20 s each on the 2-vCPU VM)
#   MSGS_POSTFIX [10,000 up to 32 KiB; 5,000 above]   messages per Postfix run
#   LOAD_OPTS [""]                more smtp-load options, e.g. "-m 0 -P" (connection reuse +
#                                 PIPELINING); default one connection per message
#   REPEATS [1]                   runs per scenario and MTA; the table shows medians
#   MTAS ["ringmta postfix"]      which MTAs, in this order
#   CONC ["20"]                   ringmta destination_concurrency_limit; several values
#                                 ("20 100") give one column each (ringmta-c20, ringmta-c100).
#                                 Postfix: the rig's smtp_destination_concurrency_limit
#                                 (SMTP_CONC, default 100)
#   SINK [ours]                   ours: build/bench/smtp-sink -w SINK_WORKERS (counts read
#                                 with SIGUSR1 every POLL s); postfix: the rig's sink.sh
#                                 (Postfix's smtp-sink, counter file after every message)
#   SINK_WORKERS [2]  POLL [0.1]  TIMEOUT [120] give up this many s after the start and
#                                 report what arrived (e2e_status=timeout)
#   PF_PROCESS_LIMIT [max(1100, sessions + 100)]   Postfix default_process_limit
#   QUIET [0.3] QUIET_WAIT [120]  before each run wait until the box's CPUs were at most QUIET
#                                 cores busy over one second, at most QUIET_WAIT s
#   RINGMTA [build/core/ringmta]  SMTP_LOAD [build/bench/smtp-load]  SMTP_SINK [build/bench/smtp-sink]
#   RINGMTA_OPTS [""]             more "-o key=value" for ringmta
#   COMMIT [git log -1 of this tree]  the commit the binaries were built from, for the log
#   RIG [/work/shared/rig]  OUT [/tmp/ringmta-bench] (raw log, queue, logs)
#   PF_EXTRA_PIDS [""]            more process trees whose CPU counts as Postfix's (its
#                                 milters: bench/dkim.sh passes OpenDKIM's pids)
#   SYSCALLS [0]                  1: count the MTA tree's system calls with perf stat
#                                 (raw_syscalls:sys_enter; costs the MTA a little per call)
#   PROBE [""]                    a command run as "PROBE MTA" right before each run's load
#                                 starts and right after the sink has everything; it prints
#                                 key=value words, added to the raw line as before_KEY=...
#                                 and after_KEY=... (bench/dkim.sh reads ringmta's metrics)
#
# Output: the table on stdout; one key=value line per run in $OUT/e2e-<time>.log
# (e2e_msgs_per_sec, delivered, e2e_status, msgs_per_sec = smtp-load's acceptance rate,
# mta_cpu_s, sink_cpu_s, cpu_s = smtp-load's, exit_rc and queued for ringmta, left for
# Postfix: queue files left once the sink had everything, and the counters below), and
# under the table a second one per delivered message: disk writes, context switches,
# system calls of the MTA's tree, and its RSS at the end.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
TABLE="$HERE/benchtable.py"

# ---------------------------------------------------------------- table (python, stdlib)
print_table() {  # RAW.log
    python3 - "$1" <<'PY'
import re, statistics, sys
from collections import OrderedDict
runs, mtas = OrderedDict(), []
for line in open(sys.argv[1]):
    d = dict((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    if d.get("tool") != "e2e":
        continue
    runs.setdefault(d["scenario"], OrderedDict()).setdefault(d["mta"], []).append(d)
    if d["mta"] not in mtas:
        mtas.append(d["mta"])
def num(s):
    try: return float(s)
    except (TypeError, ValueError): return None
def med(rs, k, per=None):
    xs = []
    for r in rs:
        x = num(r.get(k))
        if x is not None and per:
            n = num(r.get(per))
            x = x * 1000 / n if n else None
        if x is not None: xs.append(x)
    return statistics.median(xs) if xs else None
def f(x, nd=0):
    if x is None: return "n/a"
    return f"{x:,.0f}" if nd == 0 else f"{x:.{nd}f}"
rm = [m for m in mtas if m.startswith("ringmta")]
pf = [m for m in mtas if not m.startswith("ringmta")]
hdr = ["scenario"] + [f"{m} msg/s" for m in mtas]
hdr += [f"ratio {a}/{b}" for a in rm for b in pf]
hdr += [f"{m} CPU ms/msg" for m in mtas]
hdr += ["sink CPU ms/msg (" + " / ".join(mtas) + ")", "smtp-load CPU ms/msg (" + " / ".join(mtas) + ")"]
hdr += ["inject msg/s (" + " / ".join(mtas) + ")", "runs", "delivered / status / errors"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for scen, by in runs.items():
    g = lambda m: by.get(m, [])
    rate = {m: med(g(m), "e2e_msgs_per_sec") for m in mtas}
    row = [scen] + [f(rate[m]) for m in mtas]
    for a in rm:
        for b in pf:
            row.append(f"{rate[a] / rate[b]:.1f}x" if rate[a] and rate[b] else "n/a")
    row += [f(med(g(m), "mta_cpu_s", "delivered"), 3) for m in mtas]
    row.append(" / ".join(f(med(g(m), "sink_cpu_s", "delivered"), 3) for m in mtas))
    row.append(" / ".join(f(med(g(m), "cpu_s", "ok"), 3) for m in mtas))
    row.append(" / ".join(f(med(g(m), "msgs_per_sec")) for m in mtas))
    row.append("/".join(str(len(g(m))) for m in mtas))
    bad = []
    for m in mtas:
        for r in g(m):
            s = f"{r.get('delivered')}/{r.get('messages')}"
            extra = [x for x in (r.get("e2e_status") != "ok" and r.get("e2e_status"),
                                 r.get("errors", "none") != "none" and r.get("errors"),
                                 r.get("exit_rc", "0") != "0" and "rc=" + r.get("exit_rc", ""),
                                 r.get("queued", "0") not in ("0",) and "queued=" + r.get("queued", ""),
                                 r.get("left", "0") not in ("0",) and "left=" + r.get("left", ""))
                     if x]
            if extra:
                bad.append(f"{m}: {s} " + " ".join(extra))
    row.append("; ".join(bad) if bad else "all delivered")
    print("| " + " | ".join(row) + " |")
# Per delivered message, medians: what the MTA tree wrote (and the whole disk), its
# context switches and system calls (SYSCALLS=1), its RSS at the end.
if any("mta_wbytes" in r for by in runs.values() for rs in by.values() for r in rs):
    print()
    hdr = ["scenario", "MTA", "MTA disk writes KiB/msg", "disk writes KiB/msg (whole box)",
           "disk I/Os per msg (whole box)", "context switches/msg", "syscalls/msg",
           "read+write syscalls/msg", "RSS MiB at end"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for scen, by in runs.items():
        for m in mtas:
            rs = by.get(m, [])
            if not rs:
                continue
            for r in rs:
                r["_rw"] = str(int(r.get("mta_syscr", 0)) + int(r.get("mta_syscw", 0))) \
                    if r.get("mta_syscr", "NA") != "NA" else "NA"
            kib = lambda k: (lambda x: None if x is None else x / 1024000)(med(rs, k, "delivered"))
            per = lambda k: (lambda x: None if x is None else x / 1000)(med(rs, k, "delivered"))
            rss = med(rs, "mta_rss_kb")
            print("| " + " | ".join([scen, m, f(kib("mta_wbytes"), 3), f(kib("disk_wbytes"), 3),
                                     f(per("disk_ios"), 3), f(per("mta_ctxsw"), 3),
                                     f(per("mta_syscalls"), 2), f(per("_rw"), 2),
                                     f(None if rss is None else rss / 1024, 1)]) + " |")
PY
}

if [ "${1:-}" = "--table" ]; then
    print_table "${2:?usage: e2e.sh --table RAW.log}"; exit
elif [ $# -gt 0 ]; then
    sed -n '2,57p' "$0"; exit 2
fi

SIZES=${SIZES:-"1024 102400"}
SESSIONS=${SESSIONS:-"50 1000"}
LOAD_OPTS=${LOAD_OPTS:-}
REPEATS=${REPEATS:-1}
MTAS=${MTAS:-"ringmta postfix"}
CONC=${CONC:-20}
SINK=${SINK:-ours}
SINK_WORKERS=${SINK_WORKERS:-2}
POLL=${POLL:-0.1}
TIMEOUT=${TIMEOUT:-120}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
RINGMTA_PORT=2625
SINK_ADDR=127.0.0.1:2526
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
SMTP_SINK=${SMTP_SINK:-$ROOT/build/bench/smtp-sink}
RIG=${RIG:-/work/shared/rig}
OUT=${OUT:-/tmp/ringmta-bench}
U="$RIG/rigutil.py"
PT="$HERE/proctree.py"
PF_ADDR=127.0.0.1:2525

die() { echo "e2e.sh: $*" >&2; exit 1; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
[ -x "$SMTP_LOAD" ] || die "no $SMTP_LOAD (ninja -C build)"
case $SINK in
ours) [ -x "$SMTP_SINK" ] || die "no $SMTP_SINK (ninja -C build)" ;;
postfix) command -v smtp-sink >/dev/null || die "Postfix's smtp-sink is not installed" ;;
*) die "SINK is ours or postfix" ;;
esac
case " $MTAS " in *" postfix "*)
    [ "$(id -u)" = 0 ] || die "Postfix runs need root"
    command -v postfix >/dev/null || die "postfix is not installed (see $RIG/README.md)" ;;
esac
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/e2e-$STAMP.log"
RUN="$OUT/e2e-run"; rm -rf "$RUN"; mkdir -p "$RUN"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
maxsess=0; for s in $SESSIONS; do [ "$s" -gt "$maxsess" ] && maxsess=$s; done
[ "$(ulimit -n)" -ge $((maxsess * 2 + 1000)) ] || die "ulimit -n is $(ulimit -n); $maxsess sessions need more"
PF_PROCESS_LIMIT=${PF_PROCESS_LIMIT:-$(( maxsess + 100 > 1100 ? maxsess + 100 : 1100 ))}

msgs_for() {  # MTA SIZE
    case $1 in
    ringmta*) if [ -n "${MSGS_RINGMTA:-}" ]; then echo "$MSGS_RINGMTA"
              elif [ "$2" -gt 32768 ]; then echo 50000; elif [ "$2" -gt 4096 ]; then echo 100000; else echo 200000; fi ;;
    *)        if [ -n "${MSGS_POSTFIX:-}" ]; then echo "$MSGS_POSTFIX"; elif [ "$2" -gt 32768 ]; then echo 5000; else echo 10000; fi ;;
    esac
}
. "$HERE/benchlib.sh"   # note, quiet, wait_port, sink_settled, counters_start/stop

# ---------------------------------------------------------------- sink
SINK_PID=""
sink_start() {
    case $SINK in
    ours)
        : > "$RUN/sink.out"
        "$SMTP_SINK" -w "$SINK_WORKERS" -s "$RUN/sink.json" "$SINK_ADDR" > "$RUN/sink.out" 2> "$RUN/sink.err" &
        SINK_PID=$!
        wait_port 127.0.0.1 "${SINK_ADDR##*:}" || die "smtp-sink did not listen (see $RUN/sink.err)" ;;
    postfix)
        RIG_RUN="$RUN" "$RIG/sink.sh" start "$SINK_ADDR" >&2 || die "sink.sh did not start"
        SINK_PID=$(cat "$RUN/sink.pid") ;;
    esac
}
sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    case $SINK in
    ours) kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null ;;
    postfix) RIG_RUN="$RUN" "$RIG/sink.sh" stop >&2 ;;
    esac
    SINK_PID=""
}

# Poll the sink until it has counted BASE + TARGET messages. Prints
# "epoch_of_the_count delivered status": ok, timeout (TIMEOUT s after T0), or short
# (smtp-load has finished, got fewer 250s than TARGET, and the sink reached those).
# Our sink: SIGUSR1 makes it print "... messages=N ..." on stdout; the count is taken
# as of the moment the signal was sent. Postfix's smtp-sink: its -c counter file.
sink_wait() {  # BASE TARGET T0 LOADJSON
    python3 - "$SINK" "$SINK_PID" "$RUN/sink.out" "$1" "$2" "$3" "$TIMEOUT" "$POLL" "$4" <<'PY'
import json, os, re, signal, sys, time
signal.signal(signal.SIGINT, lambda *a: sys.exit(130))     # Ctrl-C: no traceback
kind, pid, out, base, target, t0, timeout, poll, loadjs = sys.argv[1:]
pid, base, target, t0 = int(pid), int(base), int(target), float(t0)
timeout, poll = float(timeout), float(poll)
def tail():
    try:
        with open(out, "rb") as fh:
            fh.seek(0, 2); n = fh.tell(); fh.seek(max(0, n - 1024)); return fh.read()
    except OSError:
        return b""
def count_ours():
    for ln in reversed(tail().split(b"\n")[:-1]):
        m = re.search(rb"messages=(\d+)", ln)
        if m: return int(m.group(1))
    return None
def count_pf():
    for r in reversed(tail().split(b"\r")[:-1]):
        i = r.rfind(b"mesg=")
        if i >= 0: return int(r[i + 5:].split()[0])
    return 0
want, got = target, 0
while True:
    if kind == "ours":
        ts = time.time()
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            print(f"{ts:.6f} {got} sink-gone"); break
        time.sleep(poll)
        c = count_ours()
        if c is None:
            continue
    else:
        ts = time.time(); c = count_pf()
    got = c - base
    if os.path.exists(loadjs) and os.path.getsize(loadjs) > 0:
        try:
            ok = json.load(open(loadjs)).get("ok", target)
            want = min(target, ok)
        except ValueError:
            pass
    if got >= want:
        print(f"{ts:.6f} {got} {'ok' if want == target else 'short'}"); break
    if ts - t0 > timeout:
        print(f"{ts:.6f} {got} timeout"); break
    if kind != "ours":
        time.sleep(poll)
PY
}
sink_now() {   # current count (after one second without change: earlier deliveries done)
    case $SINK in
    ours) sink_settled "$SINK_PID" "$RUN/sink.out" ;;
    postfix) "$U" settle "$RUN/sink.out" 1 60 ;;
    esac
}

# ---------------------------------------------------------------- one run
# "MTA_CPU SINK_CPU": CPU s of the trees rooted at the pids in the list $1, summed, and of the sink.
# shellcheck disable=SC2086
cpu_now() { "$U" cpu "$SINK_PID" $1 | awk '{ m = 0; for (i = 2; i <= NF; i++) m += $i; printf "%.2f %s\n", m, $1 }'; }
probe() {  # WHEN MTA
    [ -n "${PROBE:-}" ] || return 0
    $PROBE "$2" | awk -v w="$1" '{ for (i = 1; i <= NF; i++) if ($i ~ /=/) printf " %s_%s", w, $i }'
}
# Appends one key=value line to the raw log; MTA_EXTRA is added by the caller after.
measure() {  # MTA SCENARIO TARGET "PID..." SESSIONS SIZE
    local mta=$1 scen=$2 target=$3 pid=$4 sess=$5 size=$6 n base pre
    n=$(msgs_for "$mta" "$size")
    sync
    pre=$(quiet)
    base=$(sink_now)
    local js="$RUN/load.json"; rm -f "$js"
    local c0 c1 sys0 sys1 t0 tend got st pr0 pr1
    pr0=$(probe before "$mta")
    counters_start "$pid"
    read -r -a c0 < <(cpu_now "$pid")
    sys0=$("$U" sys); t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    ( "$SMTP_LOAD" -s "$target" -c "$sess" -n "$n" -z "$size" -q -j $LOAD_OPTS > "$js.tmp" 2> "$RUN/load.err" &
      echo $! > "$RUN/load.pid"; wait $!; mv "$js.tmp" "$js" ) &
    local lp=$!
    read -r tend got st < <(sink_wait "$base" "$n" "$t0" "$js")
    sys1=$("$U" sys)
    read -r -a c1 < <(cpu_now "$pid")
    counters_stop "$pid"; local cnt=$CNT
    pr1=$(probe after "$mta")
    wait "$lp"; rm -f "$RUN/load.pid"
    local kvs
    kvs=$("$TABLE" kv < "$js" 2>/dev/null) || kvs="ok=0 errors=no-summary"
    local lc; lc=$(grep -o ' cpu_s=[0-9.]*' <<<" $kvs" | cut -d= -f2)
    local line
    line=$(awk -v t0="$t0" -v t1="$tend" -v got="$got" -v m0="${c0[0]}" -v m1="${c1[0]}" \
               -v s0="${c0[1]}" -v s1="${c1[1]}" -v b0="${sys0% *}" -v T0="${sys0#* }" \
               -v b1="${sys1% *}" -v T1="${sys1#* }" -v n="$(nproc)" -v lc="${lc:-0}" 'BEGIN{
        d = t1 - t0; md = m1 - m0; sd = s1 - s0
        busy = (T1 > T0) ? n * (b1 - b0) / (T1 - T0) : 0
        printf "e2e_seconds=%.3f e2e_msgs_per_sec=%.1f mta_cpu_s=%.2f sink_cpu_s=%.2f", d, got / d, md, sd
        printf " mta_cpu_ms_per_msg=%s sys_busy_cores=%.2f other_cores=%.2f",
               (got > 0 ? sprintf("%.4f", md * 1000 / got) : "NA"), busy, busy - (md + sd + lc) / d }')
    echo "tool=e2e mta=$mta scenario=$scen size=$size sessions=$sess messages=$n load_opts=\"$LOAD_OPTS\" sink=$SINK delivered=$got e2e_status=$st $line $kvs pre_busy_cores=$pre $cnt$pr0$pr1" >> "$RAW"
    printf '  %-13s %-14s %9s msg/s e2e (inject %s)  mta %s ms/msg  %s/%s delivered %s %s\n' "$mta" "$scen" \
        "$(grep -o 'e2e_msgs_per_sec=[0-9.]*' <<<"$line" | cut -d= -f2)" \
        "$(grep -o ' msgs_per_sec=[0-9.]*' <<<" $kvs" | cut -d= -f2)" \
        "$(grep -o 'mta_cpu_ms_per_msg=[0-9.NA]*' <<<"$line" | cut -d= -f2)" \
        "$got" "$n" "$st" "$(grep -o ' errors=[^ ]*' <<<" $kvs")" >&2
}
add() { sed -i '$ s/$/ '"$*"'/' "$RAW"; }

# ---------------------------------------------------------------- ringmta
RM_PID=""; RM_Q="$RUN/ringmta-queue"
ringmta_start() {  # CONC
    rm -rf "$RM_Q"
    # shellcheck disable=SC2086
    "$RINGMTA" -o "listen=127.0.0.1:$RINGMTA_PORT" -o "queue_dir=$RM_Q" -o log_level=warning \
               -o "relayhost=[127.0.0.1]:${SINK_ADDR##*:}" -o dns_servers=127.0.0.1:9 \
               -o "destination_concurrency_limit=$1" -o smtp_reuse_limit=1000 \
               -o hostname=ringmta.bench -o admin_listen= $RINGMTA_OPTS \
               >> "$OUT/e2e-ringmta.log" 2>&1 &   # no admin API: 8025 may be taken
    RM_PID=$!
    wait_port 127.0.0.1 "$RINGMTA_PORT" || die "ringmta did not listen on $RINGMTA_PORT (see $OUT/e2e-ringmta.log)"
}
run_ringmta() {  # CONC SESSIONS SIZE SCENARIO
    local rc q t0 t1
    ringmta_start "$1"
    measure "ringmta-c$1" "$4" "127.0.0.1:$RINGMTA_PORT" "$RM_PID" "$2" "$3"
    t0=$(date +%s.%N)
    kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID"; rc=$?; RM_PID=""
    t1=$(date +%s.%N)
    q=$("$RINGMTA" -o "queue_dir=$RM_Q" queue count 2>/dev/null || echo NA)
    add "exit_rc=$rc queued=$q stop_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
    [ "$rc" = 0 ] || note "ringmta exited $rc after $4"
    [ "$q" = 0 ] || note "ringmta queue not empty after $4: $q"
    rm -rf "$RM_Q"
}

# ---------------------------------------------------------------- Postfix
PF_RUNNING=""
pf_up() {
    PROCESS_LIMIT=$PF_PROCESS_LIMIT MAILLOG=none RELAY="[127.0.0.1]:${SINK_ADDR##*:}" \
        "$RIG/postfix-up.sh" --purge >&2 || die "postfix-up.sh failed"
    PF_RUNNING=1
    postconf default_process_limit smtp_destination_concurrency_limit in_flow_delay relayhost maillog_file |
        sed 's/^/# postfix: /' >> "$RAW"
}
pf_down() { "$RIG/postfix-down.sh" --purge >&2; PF_RUNNING=""; }
pf_purge() { postsuper -d ALL >/dev/null 2>&1 || true; }
pf_queued() { find /var/spool/postfix/{incoming,active,deferred,hold,maildrop} -type f 2>/dev/null | wc -l; }
run_postfix() {  # SESSIONS SIZE SCENARIO
    local pid
    pf_purge
    pid=$(tr -d ' ' < /var/spool/postfix/pid/master.pid)
    measure postfix "$3" "$PF_ADDR" "$pid${PF_EXTRA_PIDS:+ $PF_EXTRA_PIDS}" "$1" "$2"
    local left; left=$(pf_queued)
    sleep 1
    add "left=$left left_after_1s=$(pf_queued)"
}

cleanup() {
    trap - EXIT INT TERM
    [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; }
    [ -n "$RM_PID" ] && { kill -TERM "$RM_PID" 2>/dev/null; wait "$RM_PID" 2>/dev/null; }
    [ -n "$PF_RUNNING" ] && pf_down >/dev/null 2>&1
    sink_stop >/dev/null 2>&1
    # an smtp-load still running (Ctrl-C): by its recorded pid, if it is still ours
    local lp; lp=$(cat "$RUN/load.pid" 2>/dev/null)
    if [ -n "$lp" ] && [ "$(readlink "/proc/$lp/exe" 2>/dev/null)" = "$(readlink -f "$SMTP_LOAD")" ]; then
        kill -TERM "$lp" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$lp" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap cleanup EXIT
trap 'echo "e2e.sh: interrupted" >&2; exit 130' INT TERM

note "e2e.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc)" \
     "kernel=$(uname -r) sizes=\"$SIZES\" sessions=\"$SESSIONS\" load_opts=\"$LOAD_OPTS\"" \
     "repeats=$REPEATS mtas=\"$MTAS\" conc=\"$CONC\" sink=$SINK sink_workers=$SINK_WORKERS" \
     "pf_process_limit=$PF_PROCESS_LIMIT commit=${COMMIT:-$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)}"
note "ringmta $("$RINGMTA" --version 2>&1 | head -1); $(postconf -h mail_version 2>/dev/null | sed 's/^/postfix /')"
sink_start

for mta in $MTAS; do
    case $mta in
    ringmta)
        for sess in $SESSIONS; do for size in $SIZES; do for c in $CONC; do for _ in $(seq "$REPEATS"); do
            run_ringmta "$c" "$sess" "$size" "$((size / 1024))KiB-c$sess"
        done; done; done; done ;;
    postfix)
        pf_up
        for sess in $SESSIONS; do for size in $SIZES; do for _ in $(seq "$REPEATS"); do
            run_postfix "$sess" "$size" "$((size / 1024))KiB-c$sess"
        done; done; done
        pf_down ;;
    *) die "unknown MTA '$mta' (ringmta, postfix)" ;;
    esac
done
sink_stop
echo "# sink: $(tail -c 300 "$RUN/sink.out" 2>/dev/null | tr '\r' '\n' | grep . | tail -1)" >> "$RAW"

echo
echo "raw log: $RAW"
print_table "$RAW"
