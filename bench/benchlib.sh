# benchlib.sh - shell helpers shared by the bench scenarios (sourced, not run).
# The caller sets RAW (raw log), U (rig/rigutil.py), QUIET and QUIET_WAIT.

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
