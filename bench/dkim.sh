#!/usr/bin/env bash
# dkim.sh - DKIM signing end to end: ringmta signing against Postfix signing through
# OpenDKIM as a milter, with the same load, sink and keys, in one run.
#
#   smtp-load -F bench.test --SMTP--> MTA (signs, queues with fsync) --SMTP--> sink
#
# It makes an RSA-2048 and an Ed25519 key (openssl genpkey, chmod 600), ringmta key tables
# ("[bench.test] keys = rsa1:RSA [ed1:ED25519]") and OpenDKIM configurations (Mode s,
# relaxed/relaxed, Domain + Selector + KeyFile, on 127.0.0.1). OpenDKIM 2.11 has one
# SignatureAlgorithm per process, so it runs one opendkim for RSA and one for Ed25519, and
# "rsa+ed25519" chains the two milters in Postfix. For each signing mode it runs
# bench/e2e.sh (one connection per message) with
#   ringmta: -o dkim_key_table=TABLE -o metrics_listen=METRICS [-o dkim_sign_threads=N]
#   Postfix: smtpd_milters = non_smtpd_milters = the opendkim(s), milter_default_action =
#            tempfail (postfix-up.sh's EXTRA_MAIN; taken out with postconf -X at the end),
#            and the CPU of the opendkim processes added to Postfix's (PF_EXTRA_PIDS)
#   smtp-load -F bench.test (From: and MAIL FROM in the signing domain)
# Before the timed runs of a mode, a check: CHECK messages of each size through each MTA
# into Postfix's smtp-sink -d (SINK=postfix), every signature verified with dkimpy against
# the test keys (bench/dkim_check.py); a message without a valid signature of each
# algorithm fails the check. After the runs, the box's raw signing rate from
# build/bench/dkim-bench (skipped, with a note, where that is not built).
# ringmta's signing-thread utilization = the growth of ringmta_dkim_sign_busy_seconds_total
# over the run / the run's wall time / the signing threads (read from metrics_listen
# before and after each run; "n/a" if the build has no such metric).
#
# Usage: bench/dkim.sh                      (as root: Postfix needs it)
#        SIZES="1024 102400" SIGN="rsa rsa+ed25519" bench/dkim.sh
#        bench/dkim.sh --table RAW.log      re-print the table of an earlier run
#
# Environment (defaults in brackets):
#   SIGN ["rsa rsa+ed25519"]     signing modes: rsa (RSA-2048), rsa+ed25519 (both signatures)
#   SIZES ["1024 102400"]  SESSIONS [50]  REPEATS [1]  MTAS ["ringmta postfix"]
#   MSGS_RINGMTA [20000]  MSGS_POSTFIX [5000]   messages per run (about 10 s each here)
#   DKIM_THREADS [""]            ringmta dkim_sign_threads (empty: not set, its default 0 =
#                                one per CPU; the utilization then divides by nproc)
#   CHECK [3]                    messages per size and MTA in the signature check (0: none)
#   METRICS [127.0.0.1:2627]     ringmta metrics_listen
#   MILTER_PORTS ["8891 8892"]   the RSA and the Ed25519 opendkim, on 127.0.0.1
#   DKIM_BENCH [build/bench/dkim-bench]  DKIM_BENCH_OPTS [""]
#   and e2e.sh's LOAD_OPTS, CONC (one value), QUIET, QUIET_WAIT, TIMEOUT, RINGMTA,
#   RINGMTA_OPTS, SMTP_LOAD, SMTP_SINK, RIG, OUT [/tmp/ringmta-bench]
#
# Output: the table on stdout; $OUT/dkim-<time>.log is the raw log (e2e.sh's key=value lines
# with sign=MODE, "# check" and "# dkim-bench" lines); keys, configurations, e2e.sh's logs
# and the checked messages in $OUT/dkim-<time>/.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
TABLE="$HERE/benchtable.py"
RIG=${RIG:-/work/shared/rig}
U="$RIG/rigutil.py"
METRICS=${METRICS:-127.0.0.1:2627}

# Called by e2e.sh (PROBE) before and after each run: "t=EPOCH" and, for ringmta, its
# signing counters; for Postfix, the CPU s of the opendkim processes (PF_EXTRA_PIDS).
if [ "${1:-}" = "--probe" ]; then
    now=$(date +%s.%N)
    case ${2:-} in
    ringmta*)
        /usr/bin/python3 -c 'import sys, urllib.request as u
sys.stdout.write(u.urlopen(sys.argv[1], timeout=2).read().decode())' "http://$METRICS/metrics" 2>/dev/null |
            awk -v t="$now" -v n="${DKIM_NTHREADS:-0}" '
                { gsub(/\{[^}]*\}/, "") }
                $1 == "ringmta_dkim_signed_total" { s += $2; hs = 1 }
                $1 == "ringmta_dkim_sign_busy_seconds_total" { b += $2; hb = 1 }
                END { printf "t=%s threads=%s", t, n
                      if (hs) printf " dkim_signed=%d", s
                      if (hb) printf " dkim_busy_s=%.4f", b
                      print "" }' ;;
    *)  # shellcheck disable=SC2086
        echo "t=$now milter_cpu_s=$("$U" cpu ${PF_EXTRA_PIDS:-0} | awk '{ for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s }')" ;;
    esac
    exit 0
elif [ "${1:-}" = "--table" ]; then
    "$TABLE" dkim "${2:?usage: dkim.sh --table RAW.log}"; exit
elif [ $# -gt 0 ]; then
    sed -n '2,46p' "$0"; exit 2
fi

SIGN=${SIGN:-"rsa rsa+ed25519"}
SIZES=${SIZES:-"1024 102400"}
SESSIONS=${SESSIONS:-50}
REPEATS=${REPEATS:-1}
MTAS=${MTAS:-"ringmta postfix"}
MSGS_RINGMTA=${MSGS_RINGMTA:-20000}
MSGS_POSTFIX=${MSGS_POSTFIX:-5000}
DKIM_THREADS=${DKIM_THREADS:-}
CHECK=${CHECK:-3}
MILTER_PORTS=${MILTER_PORTS:-"8891 8892"}
LOAD_OPTS=${LOAD_OPTS:-}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
DKIM_BENCH=${DKIM_BENCH:-$ROOT/build/bench/dkim-bench}
DKIM_BENCH_OPTS=${DKIM_BENCH_OPTS:-}
QUIET=${QUIET:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
OUT=${OUT:-/tmp/ringmta-bench}
export RIG RINGMTA QUIET QUIET_WAIT METRICS

die() { echo "dkim.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (Postfix, and opendkim reading root's keys)"
for c in openssl opendkim postconf; do command -v $c >/dev/null || die "no $c (tests/deps.sh --test)"; done
/usr/bin/python3 -c 'import dkim, nacl' 2>/dev/null || die "no dkimpy/nacl for /usr/bin/python3 (python3-dkim python3-nacl)"
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
read -r RSA_PORT ED_PORT <<<"$MILTER_PORTS"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/dkim-$STAMP.log"
DIR="$OUT/dkim-$STAMP"
mkdir -p "$DIR" && chmod 755 "$DIR"
. "$HERE/benchlib.sh"   # note, quiet

# ---------------------------------------------------------------- keys and tables
K="$DIR/keys"; mkdir -m 700 "$K"
if ! openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa2048.pem" 2>/dev/null ||
   ! openssl genpkey -algorithm ed25519 -out "$K/ed25519.pem"; then
    die "openssl genpkey failed"
fi
chmod 600 "$K"/*.pem
{   echo "rsa1._domainkey.bench.test v=DKIM1; k=rsa; p=$(openssl pkey -in "$K/rsa2048.pem" -pubout -outform DER | base64 -w0)"
    # the raw 32-byte Ed25519 key is the end of its SubjectPublicKeyInfo (RFC 8463)
    echo "ed1._domainkey.bench.test v=DKIM1; k=ed25519; p=$(openssl pkey -in "$K/ed25519.pem" -pubout -outform DER | tail -c 32 | base64 -w0)"
} > "$DIR/dns.txt"
CANON="canonicalization = relaxed/relaxed"
table_for() {  # MODE: ringmta's key table for it
    local t="$DIR/keys-$1.conf" keys="rsa1:$K/rsa2048.pem"
    [ "$1" = rsa+ed25519 ] && keys="$keys ed1:$K/ed25519.pem"
    printf '[bench.test]\nkeys = %s\n%s\n' "$keys" "$CANON" > "$t"
    echo "$t"
}
for mode in $SIGN; do
    case $mode in rsa|rsa+ed25519) ;; *) die "SIGN: rsa or rsa+ed25519, not '$mode'" ;; esac
done

# ringmta: does this build sign? (dkim_key_table accepted by --check)
ringmta_check() { printf 'dkim_key_table = %s\n' "$(table_for rsa)" > "$DIR/check.conf"
                  "$RINGMTA" --check -c "$DIR/check.conf" 2>&1; }
if [[ " $MTAS " == *" ringmta "* ]]; then
    if err=$(ringmta_check); then
        :
    elif CANON="" && ringmta_check >/dev/null; then
        note "ringmta: its key table refuses canonicalization ($(tr '\n' ' ' <<<"$err")): left at its default"
    else
        note "ringmta skipped: this build does not sign (--check of dkim_key_table: $(tr '\n' ' ' <<<"$err"))"
        MTAS=$(tr ' ' '\n' <<<"$MTAS" | grep -vx ringmta | tr '\n' ' ')
    fi
fi
[ -n "${MTAS// /}" ] || die "nothing to run"
DKIM_NTHREADS=${DKIM_THREADS:-0}; [ "$DKIM_NTHREADS" = 0 ] && DKIM_NTHREADS=$(nproc)
export DKIM_NTHREADS

# ---------------------------------------------------------------- OpenDKIM
declare -A OD_PID=()
od_start() {  # NAME SELECTOR KEY PORT ALG
    # one key per opendkim, loaded once at its start (KeyFile); RequireSafeKeys: the keys
    # live under /tmp, which others may write
    cat > "$DIR/od-$1.conf" <<EOF
Syslog no
Mode s
Domain bench.test
Selector $2
KeyFile $3
SignatureAlgorithm $5
Canonicalization relaxed/relaxed
RequireSafeKeys no
Socket inet:$4@127.0.0.1
UserID root
EOF
    opendkim -f -x "$DIR/od-$1.conf" >> "$DIR/opendkim.log" 2>&1 &
    OD_PID[$1]=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$4") 2>/dev/null && return 0; sleep 0.1; done
    die "opendkim ($1) did not listen on $4 (see $DIR/opendkim.log)"
}
cleanup() {
    trap - EXIT INT TERM
    local p
    for p in "${OD_PID[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    # the rig's main.cf again without our milters (e2e.sh has stopped Postfix)
    postconf -X smtpd_milters non_smtpd_milters milter_default_action 2>/dev/null
}
trap cleanup EXIT
trap 'echo "dkim.sh: interrupted" >&2; exit 130' INT TERM

note "dkim.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
     "sign=\"$SIGN\" sizes=\"$SIZES\" sessions=\"$SESSIONS\" repeats=$REPEATS mtas=\"$MTAS\"" \
     "msgs_ringmta=$MSGS_RINGMTA msgs_postfix=$MSGS_POSTFIX dkim_threads=${DKIM_THREADS:-default}" \
     "nthreads=$DKIM_NTHREADS load_opts=\"$LOAD_OPTS\" commit=${COMMIT:-$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)}"
note "ringmta $("$RINGMTA" --version 2>&1 | head -1); postfix $(postconf -h mail_version 2>/dev/null);" \
     "$(opendkim -V 2>&1 | head -1); keys: RSA-2048 s=rsa1, Ed25519 s=ed1, d=bench.test, relaxed/relaxed"
od_start rsa rsa1 "$K/rsa2048.pem" "$RSA_PORT" rsa-sha256
[[ " $SIGN " == *" rsa+ed25519 "* ]] && od_start ed ed1 "$K/ed25519.pem" "$ED_PORT" ed25519-sha256

# ---------------------------------------------------------------- per signing mode
for mode in $SIGN; do
    milters="inet:127.0.0.1:$RSA_PORT"; want=rsa-sha256; pids=${OD_PID[rsa]}
    if [ "$mode" = rsa+ed25519 ]; then
        milters="$milters, inet:127.0.0.1:$ED_PORT"; want=$want,ed25519-sha256; pids="$pids ${OD_PID[ed]}"
    fi
    export EXTRA_MAIN="smtpd_milters = $milters
non_smtpd_milters = $milters
milter_default_action = tempfail"
    export PF_EXTRA_PIDS=$pids
    rmopts="-o dkim_key_table=$(table_for "$mode") -o metrics_listen=$METRICS"
    [ -n "$DKIM_THREADS" ] && rmopts="$rmopts -o dkim_sign_threads=$DKIM_THREADS"
    rmopts="$rmopts $RINGMTA_OPTS"
    lopts="-F bench.test $LOAD_OPTS"

    if [ "$CHECK" -gt 0 ]; then
        dump="$DIR/check-$mode"; mkdir -p "$dump"; chown postfix "$dump"
        echo "== $mode: signature check, $CHECK messages per size and MTA" >&2
        OUT="$DIR/check-$mode-e2e" SINK=postfix SINK_OPTS="-d $dump/%M." SIZES="$SIZES" \
            SESSIONS=1 REPEATS=1 MTAS="$MTAS" MSGS_RINGMTA="$CHECK" MSGS_POSTFIX="$CHECK" \
            QUIET_WAIT=3 LOAD_OPTS="$lopts" RINGMTA_OPTS="$rmopts" PROBE='' \
            "$HERE/e2e.sh" > "$DIR/check-$mode-e2e.out" 2>&1
        for m in $MTAS; do
            # Postfix's messages carry its Received field; the rest came through ringmta
            if [ "$m" = postfix ]; then files=$(grep -l '(Postfix) with ESMTP' "$dump"/* 2>/dev/null)
            else files=$(grep -L '(Postfix) with ESMTP' "$dump"/* 2>/dev/null); fi
            n=$(wc -w <<<"$files")
            # shellcheck disable=SC2086
            if out=$(/usr/bin/python3 "$HERE/dkim_check.py" "$DIR/dns.txt" "$want" $files 2>&1); then r=ok
            else r=FAILED; fi
            printf '%s\n' "$out" > "$DIR/check-$mode-$m.txt"
            note "check sign=$mode mta=$m result=$r: $(grep -c '^ok ' <<<"$out") of $n messages" \
                 "with valid $want; first: $(head -1 <<<"$out" | sed "s|$dump/||")"
        done
    fi

    echo "== $mode: timed runs" >&2
    OUT="$DIR/$mode" SINK=ours SIZES="$SIZES" SESSIONS="$SESSIONS" REPEATS="$REPEATS" MTAS="$MTAS" \
        MSGS_RINGMTA="$MSGS_RINGMTA" MSGS_POSTFIX="$MSGS_POSTFIX" LOAD_OPTS="$lopts" \
        RINGMTA_OPTS="$rmopts" PROBE="$HERE/dkim.sh --probe" \
        "$HERE/e2e.sh" > "$DIR/$mode-e2e.out" || note "e2e.sh exited $? for $mode (see $DIR/$mode-e2e.out)"
    sed "s/^tool=e2e /tool=e2e sign=$mode /; s/^# /# $mode: /" "$DIR/$mode"/e2e-*.log >> "$RAW"
done

# ---------------------------------------------------------------- raw signing rate
if [ -x "$DKIM_BENCH" ]; then
    quiet >/dev/null
    # shellcheck disable=SC2086
    "$DKIM_BENCH" $DKIM_BENCH_OPTS > "$DIR/dkim-bench.out" 2>&1 || note "dkim-bench exited $?"
    sed 's/^/# dkim-bench: /' "$DIR/dkim-bench.out" >> "$RAW"
else
    note "dkim-bench: skipped: no $DKIM_BENCH (bench/dkim-bench.c, from branch dkim-core, is not built here)"
fi

echo
echo "raw log: $RAW"
"$TABLE" dkim "$RAW"
