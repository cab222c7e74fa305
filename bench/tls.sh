#!/usr/bin/env bash
# tls.sh - inbound acceptance over STARTTLS, ringmta against Postfix with TLS,
# driven by the same load generator (smtp-load -T), plus TLS handshakes per
# second on one ringmta worker (smtp-load -S).
#
# Usage: bench/tls.sh            (as root: Postfix needs it)
# Environment: SIZES ["1024 102400"] SESSIONS [50] MESSAGES [4000]
#              REUSE ["1 0"]   smtp-load -m: 1 = a connection (and a full
#                              handshake) per message, 0 = one per session
#              RIG [/work/shared/rig] OUT [/tmp/ringmta-bench]
#              RINGMTA [build/core/ringmta] SMTP_LOAD [build/bench/smtp-load]
# Both MTAs fsync before the 250; Postfix accepts into its hold queue (no
# delivery), ringmta runs with delivery=no: acceptance only, like inbound.sh.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RIG=${RIG:-$ROOT/../shared/rig}
OUT=${OUT:-/tmp/ringmta-bench}
SIZES=${SIZES:-"1024 102400"}
SESSIONS=${SESSIONS:-50}
MESSAGES=${MESSAGES:-4000}
REUSE=${REUSE:-"1 0"}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
LOAD=${SMTP_LOAD:-$ROOT/build/bench/smtp-load}
U="$RIG/rigutil.py"
PORT=2625
mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null
KEY=$OUT/tls-key.pem CRT=$OUT/tls-cert.pem
[ -f "$CRT" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$KEY" -out "$CRT" -days 30 \
    -subj /CN=bench.localdomain >/dev/null 2>&1
chmod 644 "$KEY" "$CRT"
RM_PID=""
cleanup() { [ -n "$RM_PID" ] && kill -TERM "$RM_PID" 2>/dev/null; "$RIG/postfix-down.sh" --purge >/dev/null 2>&1; }
trap cleanup EXIT INT TERM

# run NAME PID PORT SIZE SESS REUSE -> prints one result line
run() {
    local name=$1 pid=$2 port=$3 size=$4 sess=$5 reuse=$6 c0 c1 out
    c0=$(python3 "$U" cpu "$pid")
    out=$("$LOAD" -s 127.0.0.1:"$port" -c "$sess" -n "$MESSAGES" -z "$size" -m "$reuse" -T -q -j 2>/dev/null)
    c1=$(python3 "$U" cpu "$pid")
    local ok rate hs
    ok=$(grep -o '"ok":[0-9]*' <<<"$out" | cut -d: -f2)
    rate=$(grep -o '"msgs_per_sec":[0-9.]*' <<<"$out" | cut -d: -f2)
    hs=$(grep -o '"handshakes":[0-9]*' <<<"$out" | cut -d: -f2)
    awk -v n="$name" -v s="$size" -v se="$sess" -v m="$reuse" -v ok="${ok:-0}" -v r="${rate:-0}" \
        -v h="${hs:-0}" -v c0="$c0" -v c1="$c1" 'BEGIN {
        printf "%-8s size=%-6d sessions=%-4d per_conn=%s ok=%d msgs_per_sec=%.0f handshakes=%d cpu_ms_per_msg=%.3f\n",
            n, s, se, m, ok, r, h, ok ? (c1 - c0) * 1000 / ok : 0 }'
}

echo "# $(date -u +%FT%TZ) commit $(git -C "$ROOT" log -1 --format=%h) $(nproc) CPUs"
for reuse in $REUSE; do
  for size in $SIZES; do
    for sess in $SESSIONS; do
      Q=$OUT/tls-queue; rm -rf "$Q"
      "$RINGMTA" -o listen=127.0.0.1:$PORT -o queue_dir="$Q" -o delivery=no -o log_level=warning \
          -o hostname=ringmta.bench -o tls_cert_file="$CRT" -o tls_key_file="$KEY" \
          -o queue_map_size=8G >"$OUT/tls-ringmta.log" 2>&1 &
      RM_PID=$!
      for i in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
      run ringmta "$RM_PID" $PORT "$size" "$sess" "$reuse"
      kill -TERM "$RM_PID"; wait "$RM_PID"; RM_PID=""; rm -rf "$Q"

      EXTRA_MAIN=$(printf 'smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_security_level = may\n' "$CRT" "$KEY") \
      PROCESS_LIMIT=$((sess + 100)) IN_FLOW_DELAY=0 MAILLOG=none "$RIG/postfix-up.sh" --purge >/dev/null 2>&1
      # Accept only (hold queue, still fsync'd), as inbound.sh does.
      postconf -e "smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject"
      postfix reload >/dev/null 2>&1; sleep 2
      run postfix "$(cat /var/spool/postfix/pid/master.pid | tr -d ' ')" 2525 "$size" "$sess" "$reuse"
      "$RIG/postfix-down.sh" --purge >/dev/null 2>&1
    done
  done
done

# Handshakes per second on one worker.
Q=$OUT/tls-queue; rm -rf "$Q"
"$RINGMTA" -o listen=127.0.0.1:$PORT -o queue_dir="$Q" -o delivery=no -o log_level=warning -o workers=1 \
    -o hostname=ringmta.bench -o tls_cert_file="$CRT" -o tls_key_file="$KEY" >"$OUT/tls-ringmta.log" 2>&1 &
RM_PID=$!
for i in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
c0=$(python3 "$U" cpu "$RM_PID")
hs=$("$LOAD" -s 127.0.0.1:$PORT -c 50 -n 5000 -S -q -j 2>/dev/null)
c1=$(python3 "$U" cpu "$RM_PID")
echo "handshakes one_worker $(grep -o '"handshakes_per_sec":[0-9.]*' <<<"$hs") ringmta_cpu_ms_per_handshake=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.3f", (b-a)*1000/5000}')"
kill -TERM "$RM_PID"; wait "$RM_PID"; RM_PID=""; rm -rf "$Q"
