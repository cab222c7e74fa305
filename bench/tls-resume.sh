#!/usr/bin/env bash
# tls-resume.sh - outbound TLS with one connection per message: what
# client-side session resumption saves. A sending ringmta (delivery=yes,
# relayhost = a receiving ringmta with STARTTLS, smtp_reuse_limit=1, one
# worker) takes MESSAGES messages over one reused cleartext session while
# the relayhost's domain is suspended (admin API), then resumes it and
# relays them all; the receiver keeps them (delivery=no). Only the relay
# is measured: from the resume to the last delivery. Arms, alternated:
#   on   smtp_tls_session_cache_size=1000 (the default): the 2nd and later
#        handshakes resume the session (TLS 1.3 ticket)
#   off  smtp_tls_session_cache_size=0: every handshake is a full one
# Reports the sender's and the receiver's CPU per message (utime+stime
# from /proc, their threads included) and the handshakes, full/resumed.
#
# Usage: bench/tls-resume.sh    (no root needed; ports 2735-2739)
# Environment: MESSAGES [2000] SIZE [1024] REPEATS [3] ARMS ["on off"]
#              KEYTYPE [rsa] (the receiver's key: rsa = RSA-2048, ec = P-256)
#              BUILD [build-m] OUT [/tmp/ringmta-bench]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/ringmta-bench}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-1024}
REPEATS=${REPEATS:-3}
ARMS=${ARMS:-"on off"}
BUILD=${BUILD:-build-m}
RINGMTA=$ROOT/$BUILD/core/ringmta
LOAD=$ROOT/$BUILD/bench/smtp-load
SPORT=2735 RPORT=2736 MPORT=2737 APORT=2738
mkdir -p "$OUT"
KEYTYPE=${KEYTYPE:-rsa}
KEY=$OUT/tlsr-$KEYTYPE-key.pem CRT=$OUT/tlsr-$KEYTYPE-cert.pem
case $KEYTYPE in
rsa) NEWKEY=(-newkey rsa:2048) ;;
ec)  NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
*)   echo "KEYTYPE: rsa or ec" >&2; exit 2 ;;
esac
[ -f "$CRT" ] || openssl req -x509 "${NEWKEY[@]}" -nodes -keyout "$KEY" -out "$CRT" -days 30 \
    -subj /CN=bench.localdomain >/dev/null 2>&1
S_PID="" R_PID=""
cleanup() { for p in $S_PID $R_PID; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM

cpu_s() {	# utime+stime of a process, seconds
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
metric() {	# metric NAME_WITH_LABELS
    curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
wait_port() { for i in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }

run() {	# run ARM
    local arm=$1 size=1000 c0 r0 c1 r1 sent t0 t1
    [ "$arm" = off ] && size=0
    rm -rf "$OUT/tlsr-s" "$OUT/tlsr-r"
    "$RINGMTA" -o listen=127.0.0.1:$RPORT -o queue_dir="$OUT/tlsr-r" -o delivery=no \
        -o log_level=warning -o workers=1 -o hostname=receiver.bench -o queue_map_size=1G \
        -o tls_cert_file="$CRT" -o tls_key_file="$KEY" -o admin_listen=127.0.0.1:2739 \
        >"$OUT/tlsr-r.log" 2>&1 &
    R_PID=$!
    "$RINGMTA" -o listen=127.0.0.1:$SPORT -o queue_dir="$OUT/tlsr-s" -o delivery=yes \
        -o log_level=warning -o workers=1 -o hostname=sender.bench -o queue_map_size=1G \
        -o relayhost="[127.0.0.1]:$RPORT" -o smtp_reuse_limit=1 -o dns_servers=127.0.0.1:9 \
        -o smtp_allow_private_destinations=yes -o smtp_tls_session_cache_size=$size \
        -o metrics_listen=127.0.0.1:$MPORT -o admin_listen=127.0.0.1:$APORT \
        >"$OUT/tlsr-s.log" 2>&1 &
    S_PID=$!
    wait_port $RPORT; wait_port $SPORT; wait_port $MPORT; wait_port $APORT
    "$RINGMTA" -o admin_listen=127.0.0.1:$APORT suspend --domain example.com --duration 1h >/dev/null
    "$LOAD" -s 127.0.0.1:$SPORT -c 4 -m 0 -n "$MESSAGES" -z "$SIZE" -q -j >"$OUT/tlsr-load.json" 2>/dev/null
    c0=$(cpu_s $S_PID) r0=$(cpu_s $R_PID) t0=$(date +%s.%N)
    "$RINGMTA" -o admin_listen=127.0.0.1:$APORT resume --domain example.com >/dev/null
    for i in $(seq 1200); do
        sent=$(metric 'ringmta_recipients_total{result="delivered"}')
        [ "${sent:-0}" -ge "$MESSAGES" ] && break
        sleep 0.1
    done
    c1=$(cpu_s $S_PID) r1=$(cpu_s $R_PID) t1=$(date +%s.%N)
    local full res
    full=$(metric 'ringmta_tls_outbound_handshakes_total{session="full"}')
    res=$(metric 'ringmta_tls_outbound_handshakes_total{session="resumed"}')
    awk -v a="$arm" -v n="$sent" -v c0="$c0" -v c1="$c1" -v r0="$r0" -v r1="$r1" -v t0="$t0" \
        -v t1="$t1" -v f="$full" -v r="$res" 'BEGIN {
        printf "%-3s delivered=%d full=%d resumed=%d sender_cpu_ms_per_msg=%.3f receiver_cpu_ms_per_msg=%.3f msgs_per_sec=%.0f\n",
            a, n, f, r, (c1 - c0) * 1000 / n, (r1 - r0) * 1000 / n, n / (t1 - t0) }'
    cleanup; S_PID="" R_PID=""
}

echo "# $(date -u +%FT%TZ) commit $(git -C "$ROOT" log -1 --format=%h) $(nproc) CPUs" \
     "load $(cut -d' ' -f1-3 /proc/loadavg) messages=$MESSAGES size=$SIZE key=$KEYTYPE"
for i in $(seq "$REPEATS"); do
    for arm in $ARMS; do run "$arm"; done
done
