#!/usr/bin/env bash
# Runs the benches and compares each README figure with its target, one row
# each: `PASS|FAIL  name  figure  target` (INFO for a figure with no target).
# Exits non-zero when a row fails or a figure is missing.
#
#   benches/check.sh           every row, release builds (cargo bench, then
#                              benches/images.sh [SIZE], default 2G,
#                              benches/scale.sh and, as root,
#                              benches/remote.sh: minutes)
#   benches/check.sh --quick   the quick rows, for CI (scripts/test.sh): the
#                              benches in their short form, built in the test
#                              profile `cargo test` has just built (a release
#                              build takes minutes); about a minute
#
# The figures are timings on whatever else the machine is doing: a FAIL on
# a loaded machine may be the load, so run it again before believing it.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
out=$(mktemp /tmp/lvlab-check.XXXXXX)
trap 'rm -f "$out"' EXIT

# The targets: key, comparison, target, unit, and whether the quick run
# checks it. Where each comes from is in README.md, "Performance".
targets() {
    cat <<'EOF'
seed.render_iso.first           <  5     ms    quick
seed.render_iso.later           <  5     ms    quick
plan50.seeds.first              <  250   ms    quick
plan50.live.deployed            <  250   ms    quick
plan50.live.new                 <  250   ms    full
hash.lvlab_vs_openssl.sha256    >  0.85  x     quick
hash.lvlab_vs_openssl.sha512    >  0.85  x     quick
init.loopback.rss               <  64    MiB   full
init.loopback.verify_adds.sha256 < 5     %     full
init.loopback.verify_adds.sha512 < 5     %     full
init.paced.verify_adds.sha256   <  5     %     full
init.paced.verify_adds.sha512   <  5     %     full
scale.plan50.crowded_vs_empty   <  1.2   x     quick
scale.up10_vs_up1               <  3     x     full
scale.destroy10_vs_destroy1     <  1.3   x     full
scale.plan1000.deployed         <  500   ms    full
remote.upload.lvlab_vs_scp      >  0.8   x     full
remote.plan50.two_hosts_vs_one  <  2     x     full
EOF
}

bench() { # $1 bench name
    if [ "$quick" = 1 ]; then
        cargo test --quiet --bench "$1" -- --quick
    else
        cargo bench --quiet --bench "$1"
    fi
}

if [ "$quick" = 1 ]; then
    for name in seed reconcile hash; do bench "$name" || exit 1; done | tee "$out"
    bash benches/scale.sh --quick | tee -a "$out"
else
    for name in seed reconcile; do bench "$name" || exit 1; done | tee "$out"
    bash benches/images.sh "$@" | tee -a "$out"
    bash benches/scale.sh | tee -a "$out"
    bash benches/remote.sh | tee -a "$out"
fi

[ -s "$out" ] || { echo "benches/check.sh: the benches printed no figure" >&2; exit 1; }
echo
awk -v quick="$quick" '
    # The figures: "key = value unit  details".
    FNR == NR { if ($2 == "=") { value[$1] = $3; unit[$1] = $4 } ; next }
    # The targets.
    quick == 1 && $5 != "quick" { next }
    {
        checked[$1] = 1
        if (!($1 in value)) {
            printf "FAIL  %-34s %14s  %s %s %s\n", $1, "missing", $2, $3, $4
            failed++
            next
        }
        pass = ($2 == "<") ? value[$1] < $3 + 0 : value[$1] > $3 + 0
        printf "%s  %-34s %10.3f %-3s  %s %s %s\n", pass ? "PASS" : "FAIL", $1, value[$1], unit[$1], $2, $3, $4
        if (!pass) failed++
    }
    END {
        for (key in value) if (!(key in checked))
            printf "INFO  %-34s %10.3f %-3s  -\n", key, value[key], unit[key] | "sort -k2"
        close("sort -k2")
        exit failed > 0
    }
' "$out" <(targets) || { echo "benches/check.sh: some rows failed (see above)" >&2; exit 1; }
echo "benches/check.sh: every row passed"
