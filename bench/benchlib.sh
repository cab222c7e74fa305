# benchlib.sh - shell helpers shared by the bench scenarios (sourced, not run).
# The caller sets RAW (raw log), U (rig/rigutil.py), QUIET and QUIET_WAIT; for the
# counters also PT, OUT and RUN (see there).

# HOST PORT: wait until it accepts a connection (10 s at most).
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# bench/smtp-sink's message count once it has not moved for a second (earlier deliveries
# are done): SIGUSR1 makes the sink print its counters on its stdout, OUTFILE.
sink_settled() {  # PID OUTFILE
    local a b
    while :; do
        kill -USR1 "$1"; sleep 0.3
        a=$(tail -1 "$2" | grep -o 'messages=[0-9]*' | cut -d= -f2)
        sleep 0.7; kill -USR1 "$1"; sleep 0.3
        b=$(tail -1 "$2" | grep -o 'messages=[0-9]*' | cut -d= -f2)
        [ "${a:-x}" = "${b:-y}" ] && break
    done
    echo "$b"
}

# Note a line in the raw log and on stderr.
note() { echo "# $*" | tee -a "$RAW" >&2; }

# The box is shared: before a run, wait (at most QUIET_WAIT s) until the CPUs have been
# busier than QUIET cores for no full second; print the busy cores last seen.
quiet() {
    local a b busy waited=0
    while :; do
        a=$("$U" sys); sleep 1; b=$("$U" sys)
        busy=$(awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN{split(a,x," "); split(b,y," ");
            printf "%.2f", (y[2] > x[2]) ? n * (y[1] - x[1]) / (y[2] - x[2]) : 0}')
        awk -v b="$busy" -v q="$QUIET" 'BEGIN{exit !(b <= q)}' && break
        waited=$((waited + 1))
        [ "$waited" -ge "$QUIET_WAIT" ] && { echo "# busy $busy cores after ${waited}s, running anyway" >&2; break; }
    done
    echo "$busy"
}

# Besides CPU: what the MTA's process tree wrote to storage, its context switches and
# read/write-class system calls (bench/proctree.py, /proc), the disk's own counters
# (whole machine) and, with SYSCALLS=1, every system call the tree made (perf stat
# -e raw_syscalls:sys_enter, attached to the tree's processes and threads; children
# forked during the run inherit it). The keys: mta_wbytes, mta_ctxsw, mta_syscr,
# mta_syscw, mta_rss_kb (at the end), disk_wbytes, disk_ios, mta_syscalls.
# The caller sets PT (bench/proctree.py), OUT (a path on the disk to watch) and RUN (a
# scratch directory), and stops a leftover PERF_PID in its exit trap.
PERF_PID=""
counters_start() {  # "PID..."
    # shellcheck disable=SC2086
    CNT0=$("$PT" snap $1); DSK0=$("$PT" disk "$OUT")
    if [ "${SYSCALLS:-0}" = 1 ] && command -v perf >/dev/null; then
        # A process starting threads as perf lists them makes it give up ("Problems
        # finding threads of monitor"): try again, a few times.
        local try
        for try in 1 2 3 4 5; do
            PERF_OUT="$RUN/perf-$(date +%s%N).txt"
            # shellcheck disable=SC2086
            perf stat -x, -e raw_syscalls:sys_enter -p "$("$PT" pids $1)" -o "$PERF_OUT" \
                2> "$PERF_OUT.err" &
            PERF_PID=$!
            sleep 0.3   # attached before the load starts
            kill -0 "$PERF_PID" 2>/dev/null && break
            wait "$PERF_PID" 2>/dev/null; PERF_PID=""
        done
    fi
}
counters_stop() {  # "PID..." -> CNT (key=value words); not in a subshell: perf is our child
    local c1 d1 sc=NA
    # shellcheck disable=SC2086
    c1=$("$PT" snap $1); d1=$("$PT" disk "$OUT")
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; PERF_PID=""
        sc=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ { print $1 }' "$PERF_OUT" 2>/dev/null)
    fi
    CNT="$("$PT" diff "$CNT0" "$c1" mta_) $("$PT" diff "$DSK0" "$d1") mta_syscalls=${sc:-NA}"
}

# PID: "VmRSS_kB RssAnon_kB" of a process (bench/idle.sh, backlog.sh, outbound.sh).
proc_mem() {
    awk '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} END{print r+0, a+0}' "/proc/$1/status"
}

# ringmta relaying to a sink on loopback, in the background (bench/backlog.sh,
# outbound.sh): QUEUE_DIR PORT SINK_PORT DELIVERY(yes/no) CONC LOG [more args...];
# sets RM_PID and waits until it listens (returns 1 if it does not).
relay_start() {
    local q=$1 port=$2 sink=$3 dlv=$4 conc=$5 log=$6
    shift 6
    "$RINGMTA" -o "listen=127.0.0.1:$port" -o "queue_dir=$q" -o log_level=warning \
        -o "delivery=$dlv" -o "relayhost=[127.0.0.1]:$sink" -o dns_servers=127.0.0.1:9 \
        -o "destination_concurrency_limit=$conc" -o smtp_reuse_limit=1000 \
        -o hostname=ringmta.bench -o admin_listen= "$@" >> "$log" 2>&1 &
    RM_PID=$!
    wait_port 127.0.0.1 "$port"
}
