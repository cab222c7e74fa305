#!/usr/bin/env bash
# idle.sh - what idle SMTP sessions cost ringmta in memory.
#
# Starts ringmta (fresh queue, its own port), opens SESSIONS sessions with
# `smtp-load -I` (each reads the greeting, sends EHLO, then idles), and reads
# ringmta's memory from /proc/PID/status before, while all sessions idle, and
# after they have said QUIT. VmRSS includes the pages of the LMDB map that
# were touched (file-backed, shared); RssAnon is the heap, stacks and buffers,
# which is where per-session memory shows.
#
# With ACTIVE=1 the sessions are not idle: each sends mail over and over on its
# connection (`smtp-load -m 0`, 1 KiB messages, delivery off), so at any moment most
# are inside a transaction; memory is read once ringmta holds every session
# (its descriptor count) and again HOLD/2 later, and the larger is reported.
#
# Usage: bench/idle.sh [SESSIONS] [HOLD_SECONDS]     (defaults 10000 and 20)
# Environment: RINGMTA_PORT [2625], RINGMTA [build/core/ringmta],
#   SMTP_LOAD [build/bench/smtp-load], OUT [/tmp/ringmta-bench], RINGMTA_OPTS [""]
#   (more "-o key=value" for ringmta, e.g. "-o workers=1").
# Prints a small report; exits 1 if not every session reached the idle state.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SESSIONS=${1:-10000}
HOLD=${2:-20}
RINGMTA_PORT=${RINGMTA_PORT:-2625}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
SMTP_LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
OUT=${OUT:-/tmp/ringmta-bench}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
ACTIVE=${ACTIVE:-0}

die() { echo "idle.sh: $*" >&2; exit 2; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
[ -x "$SMTP_LOAD" ] || die "no $SMTP_LOAD (ninja -C build)"
mkdir -p "$OUT"
# Both ends need a descriptor per session (smtp-load raises its own limit; ringmta
# inherits ours).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# smtp-load keeps its sockets in its ring's file table and needs no descriptors;
# so does ringmta (each worker's table has up to max_connections slots, at most
# RLIMIT_NOFILE), falling back to a descriptor per session when it cannot.

. "$HERE/benchlib.sh"   # proc_mem
mem() { proc_mem "$1"; }  # PID -> "VmRSS_kB RssAnon_kB"
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# established TCP connections on ringmta's port (with ACTIVE=1 smtp-load's errors,
# greeting:timeout, name those never accepted)
held() { ss -Htn state established "( sport = :$RINGMTA_PORT )" 2>/dev/null | wc -l; }

Q="$OUT/idle-queue"; rm -rf "$Q"
# delivery=no where the build has outbound delivery (no DNS, nothing relayed)
NODELIVERY=""
"$RINGMTA" -o delivery=no --check >/dev/null 2>&1 && NODELIVERY="-o delivery=no"
# shellcheck disable=SC2086
"$RINGMTA" -o "listen=127.0.0.1:$RINGMTA_PORT" -o "queue_dir=$Q" -o log_level=warning $NODELIVERY \
    -o hostname=ringmta.bench -o admin_listen= $RINGMTA_OPTS > "$OUT/idle-ringmta.log" 2>&1 &
RM=$!
LOADPID=""
trap 'kill -TERM $LOADPID $RM 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$RINGMTA_PORT") 2>/dev/null && break; sleep 0.1; done
kill -0 "$RM" 2>/dev/null || die "ringmta did not start (see $OUT/idle-ringmta.log)"
sleep 1
read -r rss0 anon0 <<<"$(mem "$RM")"; fd0=$(fds "$RM")

MODE="-I"; [ "$ACTIVE" = 1 ] && MODE="-m 0 -n 2000000000"
# shellcheck disable=SC2086
"$SMTP_LOAD" -s "127.0.0.1:$RINGMTA_PORT" $MODE -c "$SESSIONS" -d "$HOLD" -q -j \
    > "$OUT/idle-load.json" 2> "$OUT/idle-load.err" &
LOADPID=$!
t0=$(date +%s.%N)
# Settled: smtp-load says every session is idle, or every session is established,
# or their count has not grown for 5 s (some are kept out).
last=0 still=0 t1=$t0
until grep -q '^smtp-load: idle:' "$OUT/idle-load.err"; do
    kill -0 "$LOADPID" 2>/dev/null || break
    sleep 0.1
    n=$(held)
    if [ "$n" -gt "$last" ]; then last=$n still=0; t1=$(date +%s.%N); else still=$((still + 1)); fi
    [ "$n" -ge "$SESSIONS" ] && break
    [ "$still" -ge 50 ] && [ "$n" -gt 0 ] && break
done
grep -q '^smtp-load: idle:' "$OUT/idle-load.err" && t1=$(date +%s.%N)
sleep 2        # let the last EHLO replies and any lazy allocation settle
read -r rss1 anon1 <<<"$(mem "$RM")"; fd1=$(fds "$RM"); established=$(held)
if [ "$ACTIVE" = 1 ]; then
    sleep $((HOLD / 2))
    read -r r a <<<"$(mem "$RM")"
    [ "$a" -gt "$anon1" ] && { rss1=$r anon1=$a; }
fi
wait "$LOADPID"; LOADPID=""
# ss also counts connections the kernel completed in the listen backlog, which
# ringmta never accepted: in idle mode smtp-load's count of answered EHLOs decides.
[ "$ACTIVE" = 1 ] || established=$(grep -o '"idle_established":[0-9]*' "$OUT/idle-load.json" | cut -d: -f2)
sleep 2
read -r rss2 anon2 <<<"$(mem "$RM")"; fd2=$(fds "$RM")
kill -TERM "$RM"; wait "$RM"; rc=$?; RM=""
rm -rf "$Q"
trap - EXIT

awk -v n="$SESSIONS" -v e="${established:-0}" -v r0="$rss0" -v a0="$anon0" -v r1="$rss1" -v a1="$anon1" \
    -v r2="$rss2" -v a2="$anon2" -v f0="$fd0" -v f1="$fd1" -v f2="$fd2" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
    -v rc="$rc" -v m="$([ "$ACTIVE" = 1 ] && echo active || echo idle)" 'BEGIN{
    printf "%s sessions: %d asked, %d held by ringmta, all connected after %.2f s\n", m, n, e, t
    printf "ringmta open descriptors: %d before, %d with the sessions, %d after\n", f0, f1, f2
    printf "%-28s %12s %12s\n", "", "VmRSS kB", "RssAnon kB"
    printf "%-28s %12d %12d\n", "before", r0, a0
    printf "%-28s %12d %12d\n", "with " e " " m " sessions", r1, a1
    printf "%-28s %12d %12d\n", "after they quit", r2, a2
    printf "%-28s %12d %12d\n", "growth", r1 - r0, a1 - a0
    if (e > 0)
        printf "%-28s %12.0f %12.0f\n", "per " m " session, bytes", (r1 - r0) * 1024 / e, (a1 - a0) * 1024 / e
    printf "ringmta exit status after SIGTERM: %d\n", rc
}'
echo "smtp-load: $(cat "$OUT/idle-load.json")"
[ "${established:-0}" = "$SESSIONS" ] || exit 1
