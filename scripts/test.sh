#!/usr/bin/env bash
# Quick start, part two: install what is missing, start the libvirt daemons,
# and run the whole test suite (format, lints, unit and integration tests,
# the quick rows of benches/check.sh),
# then the Debian package tier (scripts/package-test.sh: a release build, the
# .deb installed with dpkg -i and run; LVLAB_SKIP_PACKAGE=1 skips it), the
# fault-injection tier (scripts/faults.sh; LVLAB_SKIP_FAULTS=1 skips
# it) and the real-guest tier (scripts/e2e.sh; LVLAB_SKIP_E2E=1 skips it),
# one after the other: the faults tier kills libvirtd.
# Idempotent. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_all

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
say "cargo test"
cargo test --quiet
say "benches/check.sh --quick (the README's quick performance rows)"
bash benches/check.sh --quick

if [ "${LVLAB_SKIP_PACKAGE:-0}" = 1 ]; then
    say "Debian package tier skipped (LVLAB_SKIP_PACKAGE=1)"
else
    bash scripts/package-test.sh --no-setup
fi

if [ "${LVLAB_SKIP_FAULTS:-0}" = 1 ]; then
    say "fault-injection tier skipped (LVLAB_SKIP_FAULTS=1)"
else
    bash scripts/faults.sh --no-setup
fi

if [ "${LVLAB_SKIP_E2E:-0}" = 1 ]; then
    say "real-guest tier skipped (LVLAB_SKIP_E2E=1)"
else
    bash scripts/e2e.sh --no-setup
fi
