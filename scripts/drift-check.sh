#!/bin/sh
# Does the lab still match its manifest? The CI drift check of docs/ci.md.
#
#   scripts/drift-check.sh [--artifacts DIR] [LVLAB_OPTION...]
#
# Runs `lvlab plan --detailed-exitcode --json` with the options given
# (-f FILE, -C DIR, --env NAME, --connect URI, --config FILE, ...), keeps
# the plan as DIR/plan.json (default DIR: drift-check) for the CI job to
# upload, and on drift prints the same plan as text for the job's log.
#
# Exits 0 when the lab matches the manifest, 2 when it drifted (the plan
# has changes), 1 when the check could not run (a broken manifest, an
# unreachable host, ...; lvlab's error is on stderr and no plan.json is
# left). LVLAB names the lvlab binary (default: lvlab on PATH).
set -u

lvlab=${LVLAB:-lvlab}
artifacts=drift-check
if [ "${1-}" = --artifacts ]; then
    if [ $# -lt 2 ]; then
        echo "drift-check: --artifacts needs a directory" >&2
        exit 1
    fi
    artifacts=$2
    shift 2
fi
mkdir -p "$artifacts" || exit 1
plan=$artifacts/plan.json

"$lvlab" plan --detailed-exitcode --json "$@" >"$plan"
code=$?
case $code in
0)
    echo "drift-check: no drift: the lab matches its manifest (plan: $plan)"
    ;;
2)
    echo "drift-check: drift: the lab differs from its manifest (plan: $plan)"
    # The same plan for a person; its own exit code says nothing new.
    "$lvlab" plan "$@" || true
    ;;
*)
    rm -f "$plan"
    echo "drift-check: lvlab plan failed (exit $code): the check did not run" >&2
    exit 1
    ;;
esac
exit "$code"
