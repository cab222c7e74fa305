#!/usr/bin/env bash
# rules-ab.sh - what loaded traffic-shaping rules cost ringmta (issue 10, "Shaping costs
# nothing visible"): bench/e2e.sh's relay run with the shipped rules plus OVERRIDES
# generated domain overrides (B) against the same run without any rules (A), in one
# sitting, interleaved A B A B ... (PAIRS pairs), so that the box's drift hits both.
#
#   A: -o shaping_builtin_rules=no                       (no rules at all)
#   B: -o shaping_builtin_rules=yes -o shaping_rules=FILE (the shipped rules + FILE)
#
# FILE has a "domains:" section with OVERRIDES entries in conf/shaping.yaml's format:
# the first is the domain the load sends to (example.com, smtp-load's default) with
# limits that match A's (max_connections = CONC, max_messages_per_connection = 1000, as
# e2e.sh's destination_concurrency_limit and smtp_reuse_limit), so every message meets a
# rule and the limits stay the same; the others (d1.rules.test ...) set connections, rates
# and timeouts that no message uses. e2e.sh relays through the relayhost, as always.
# The build must know shaping_rules (ringmta --check), else the script stops.
#
# Usage: bench/rules-ab.sh                  (e2e.sh's needs: ringmta, the sink, smtp-load)
#        bench/rules-ab.sh --table RAW.log  re-print the tables of an earlier run
#
# Environment (defaults in brackets):
#   PAIRS [2]  OVERRIDES [1000]  SIZES [1024]  SESSIONS [50]  CONC [20]
#   MSGS_RINGMTA [e2e.sh's: 200,000 at 1 KiB]  LOAD_OPTS [""]  SYSCALLS [1]
#   RINGMTA_OPTS [""] (both variants)  QUIET, QUIET_WAIT, RINGMTA, SMTP_LOAD, SMTP_SINK,
#   OUT [/tmp/ringmta-bench]
#
# Output: the tables (every run, then medians and B / A); the raw log
# $OUT/rules-ab-<time>.log holds e2e.sh's lines with variant= and pair= added; the rules
# file and e2e.sh's own logs are in $OUT/rules-ab-<time>/.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

if [ "${1:-}" = "--table" ]; then
    "$HERE/shapetable.py" ab "${2:?usage: rules-ab.sh --table RAW.log}"; exit
elif [ $# -gt 0 ]; then
    sed -n '2,31p' "$0"; exit 2
fi

PAIRS=${PAIRS:-2}
OVERRIDES=${OVERRIDES:-1000}
CONC=${CONC:-20}
RINGMTA=${RINGMTA:-$ROOT/build/core/ringmta}
RINGMTA_OPTS=${RINGMTA_OPTS:-}
OUT=${OUT:-/tmp/ringmta-bench}
export SIZES=${SIZES:-1024} SESSIONS=${SESSIONS:-50} SYSCALLS=${SYSCALLS:-1} CONC

die() { echo "rules-ab.sh: $*" >&2; exit 1; }
[ -x "$RINGMTA" ] || die "no $RINGMTA (ninja -C build)"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/rules-ab-$STAMP.log"
DIR="$OUT/rules-ab-$STAMP"; mkdir -p "$DIR"
RULES="$DIR/overrides.yaml"

# The overrides: entry 0 is the load's domain, the rest vary the fields a little.
awk -v n="$OVERRIDES" -v conc="$CONC" 'BEGIN {
    print "# bench/rules-ab.sh: " n " domain overrides (conf/shaping.yaml format)"
    print "domains:"
    print "  example.com:"
    print "    max_connections: " conc
    print "    max_messages_per_connection: 1000"
    for (i = 1; i < n; i++) {
        printf "  d%d.rules.test:\n", i
        printf "    max_connections: %d\n", i % 20 + 1
        if (i % 3 == 0) printf "    message_rate: \"%d/s\"\n", i % 500 + 10
        else if (i % 3 == 1) printf "    message_rate: \"%d/h burst %d\"\n", i * 10, i % 7 + 1
        else printf "    connection_rate: \"%d/m\"\n", i % 60 + 1
        if (i % 4 == 0) printf "    max_recipients: %d\n", i % 100 + 1
        if (i % 5 == 0) print "    idle_timeout: 5s"
    }
}' > "$RULES"
A_OPTS="-o shaping_builtin_rules=no"
B_OPTS="-o shaping_builtin_rules=yes -o shaping_rules=$RULES"
# shellcheck disable=SC2086
"$RINGMTA" $B_OPTS $RINGMTA_OPTS --check > "$DIR/check.out" 2>&1 ||
    die "ringmta --check refuses the rules (a build without shaping_rules?): $(head -3 "$DIR/check.out")"

{ echo "# rules-ab.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') host=$(hostname) nproc=$(nproc)" \
       "pairs=$PAIRS overrides=$OVERRIDES sizes=\"$SIZES\" sessions=\"$SESSIONS\" conc=$CONC" \
       "commit=${COMMIT:-$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)}"
  echo "# A: $A_OPTS $RINGMTA_OPTS"
  echo "# B: $B_OPTS $RINGMTA_OPTS ($(grep -c '^  [^ ]' "$RULES") domains)"; } | tee -a "$RAW" >&2

for p in $(seq "$PAIRS"); do
    for v in A B; do
        if [ "$v" = A ]; then opts="$A_OPTS"; else opts="$B_OPTS"; fi
        o="$DIR/$v$p"; mkdir -p "$o"
        echo "pair $p, $v" >&2
        MTAS=ringmta REPEATS=1 OUT="$o" RINGMTA="$RINGMTA" RINGMTA_OPTS="$opts $RINGMTA_OPTS" \
            "$HERE/e2e.sh" > "$o/e2e.out" 2> "$o/e2e.err" || echo "e2e.sh exited $? (see $o)" >&2
        grep -h '^tool=e2e ' "$o"/e2e-*.log | sed "s/^tool=e2e /tool=e2e variant=$v pair=$p /" >> "$RAW"
        grep -h '^# ' "$o"/e2e-*.log | sed "s/^# /# $v$p: /" >> "$RAW"
    done
done
echo
echo "raw log: $RAW"
"$HERE/shapetable.py" ab "$RAW"
