#!/usr/bin/env bash
# The property tests (tests/properties.rs) with many more cases than the
# fast tier's 64 per property: the manifest loader, the YAML depth check,
# the checksum parser and the cloud-init YAML emitter, on random input.
#
#   scripts/soak.sh            # 10000 cases per property
#   PROPTEST_CASES=200000 scripts/soak.sh
#
# Not part of scripts/test.sh or CI. A failure prints the smallest input
# proptest found; nothing is written to the tree (no regression files).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"
echo "==> soak: tests/properties.rs, PROPTEST_CASES=$PROPTEST_CASES per property"
start=$(date +%s)
cargo test --test properties -- --test-threads 2
echo "==> soak: passed, $PROPTEST_CASES cases per property, in $(( $(date +%s) - start )) s"
