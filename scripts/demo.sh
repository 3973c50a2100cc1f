#!/usr/bin/env bash
# Quick start, part one: install what is missing, build lvlab, and run it on
# the demo lab in examples/demo against the local libvirt (qemu:///session):
# validate, init (verified image), plan, up, status, plan again (no changes),
# destroy.
# Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_all

say "building lvlab"
cargo build --quiet
lvlab=target/debug/lvlab

demo=examples/demo
state=$demo/.lvlab
mkdir -p "$state/images"
if [ ! -f "$state/images/lvlab-demo.qcow2" ]; then
    say "making the demo's local image ($state/images/lvlab-demo.qcow2)"
    qemu-img create -q -f qcow2 "$state/images/lvlab-demo.qcow2" 1G
    (cd "$state/images" && sha256sum lvlab-demo.qcow2 > SHA256SUMS)
fi
if [ ! -f "$state/id_ed25519.pub" ]; then
    say "making the demo's SSH key ($state/id_ed25519)"
    ssh-keygen -q -t ed25519 -N '' -C lvlab-demo -f "$state/id_ed25519"
fi

run() {
    say "lvlab $*"
    "$lvlab" -f "$demo/Lvlab.yml" "$@"
}

run validate
run capabilities
run init
run plan
run up --all
run status
run plan --detailed-exitcode
run destroy --force
say "done: the demo lab was created, checked and removed again"
