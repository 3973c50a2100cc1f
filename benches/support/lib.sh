# Shared by benches/scale.sh and benches/remote.sh (sourced, not run): how
# they run lvlab, time it and print rows. Uses the caller's $work (the
# bench directory), $LVLAB_BIN and $runs.

lvlab() { # $1 manifest, then lvlab's arguments
    local manifest=$1
    shift
    env LVLAB_NO_HOST_CONFIG=1 LVLAB_STATE_DIR="$work/state" NO_COLOR=1 \
        "$LVLAB_BIN" -q -f "$manifest" "$@"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

timed() { # milliseconds `lvlab MANIFEST ARGS...` takes
    local start
    start=$(now_ms)
    lvlab "$@" >/dev/null
    echo $(($(now_ms) - start))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

plan_ms() { # $1 manifest: median of $runs plans of the stopped lab (after one untimed)
    local i
    lvlab "$1" plan --target stopped >/dev/null
    for i in $(seq "$runs"); do timed "$1" plan --target stopped; done | median
}

row() { printf '%s = %s %s  %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
