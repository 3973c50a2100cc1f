#!/usr/bin/env bash
# Scale figures for the README ("Scale"), on qemu:///session: what `plan`
# of a 50-machine lab costs on a host crowded with 500 unrelated domains
# against the same plan on a host holding only the lab; `up --all` and
# `destroy --force` of 1 and of 10 blank-disk machines (real QEMU starts,
# TCG), with the CPU time the QEMUs had used when `up` returned (their
# start-up, the floor of `up` on a small machine); `plan` of a lab of
# 1000 defined machines.
#
# Usage: benches/scale.sh [--quick]
#   --quick   only the plan rows with and without the unrelated domains,
#             fewer runs (benches/check.sh --quick, so scripts/test.sh)
#   LVLAB_BIN=PATH  time this lvlab instead of a release build (--quick:
#             target/debug/lvlab, which `cargo test` has just built)
#   SCALE_UNRELATED, SCALE_LAB, SCALE_MANY, SCALE_BIG  the sizes (500, 50,
#             10, 1000), for a quick try of the script; the row keys name
#             them, so benches/check.sh finds its rows only with the defaults
#
# The unrelated domains have minimal definitions, are never started and
# are named `lvlab-scale-<PID>-<i>` (no `_`, so no lab's name); they and
# every lab machine are removed at the end, whatever happens. Prints
# `key = value unit  details` rows that benches/check.sh compares with the
# README's targets. Needs virsh and qemu-img (scripts/setup.sh). No
# network: the machines' NICs are user-mode.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = --quick ] && quick=1
unrelated=${SCALE_UNRELATED:-500}
small=${SCALE_LAB:-50}
many=${SCALE_MANY:-10}
big=${SCALE_BIG:-1000}
uri=qemu:///session
runs=$([ "$quick" = 1 ] && echo 5 || echo 10)

if [ -z "${LVLAB_BIN:-}" ]; then
    if [ "$quick" = 1 ]; then
        LVLAB_BIN=$PWD/target/debug/lvlab
    else
        cargo build --release --quiet
        LVLAB_BIN=$PWD/target/release/lvlab
    fi
fi
[ -x "$LVLAB_BIN" ] || { echo "benches/scale.sh: no lvlab at $LVLAB_BIN (build it first)" >&2; exit 1; }

work=$(mktemp -d /tmp/lvlab-scale.XXXXXX)
chmod 755 "$work" # QEMU opens the disks under it as its own user
tag=$$
labs=()        # manifests whose machines the cleanup destroys
defined=()     # the unrelated domains the cleanup undefines

lvlab() { # $1 manifest, then lvlab's arguments
    local manifest=$1
    shift
    env LVLAB_NO_HOST_CONFIG=1 LVLAB_STATE_DIR="$work/state" NO_COLOR=1 \
        "$LVLAB_BIN" -q -f "$manifest" "$@"
}

undefine_unrelated() {
    [ "${#defined[@]}" -gt 0 ] || return 0
    printf 'undefine %s\n' "${defined[@]}" | virsh -q -c "$uri" >/dev/null
    defined=()
}

cleanup() {
    local lab
    undefine_unrelated || true
    for lab in "${labs[@]}"; do
        lvlab "$lab" destroy --force >/dev/null 2>&1 ||
            echo "benches/scale.sh: could not destroy the machines of $lab" >&2
    done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/cache/cloud-images" "$work/state"
qemu-img create -q -f qcow2 "$work/tiny.qcow2" 64M
cp "$work/tiny.qcow2" "$work/cache/cloud-images/tiny.qcow2"

manifest() { # $1 environment, $2 machines: sets $lab to the manifest's path
    local path=$work/$1.yml i
    {
        cat <<YML
environment:
  - name: $1
    libvirt_uri: $uri
    config_defaults:
      os: tiny
      memory: 128
      cpu: 1
      domain_type: qemu
      disk_strategy: backing
      cloud_image_basedir: $work/cache
      disk_image_basedir: $work/vms
      interfaces: {network_type: user}
      cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench, password: false}
    machines:
YML
        for i in $(seq "$2"); do printf '      - vm_name: m%04d\n' "$i"; done
        cat <<YML
images:
  tiny:
    image_url: $work/tiny.qcow2
YML
    } > "$path"
    labs+=("$path")
    lab=$path
}

define_unrelated() { # $1 how many
    local arch i name
    arch=$(uname -m)
    mkdir -p "$work/unrelated"
    for i in $(seq "$1"); do
        name=lvlab-scale-$tag-$i
        echo "<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='$arch'>hvm</type></os></domain>" \
            > "$work/unrelated/$i.xml"
        defined+=("$name")
    done
    # One virsh for them all; it goes on after a failed command, so count.
    printf 'define %s\n' "$work"/unrelated/*.xml | virsh -q -c "$uri" >/dev/null
    [ "$(virsh -q -c "$uri" list --all --name | grep -c "^lvlab-scale-$tag-")" = "$1" ] ||
        { echo "benches/scale.sh: could not define $1 domains on $uri" >&2; exit 1; }
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Milliseconds `lvlab MANIFEST ARGS...` takes.
timed() {
    local start
    start=$(now_ms)
    lvlab "$@" >/dev/null
    echo $(($(now_ms) - start))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Median of $runs plans of the stopped lab (after one untimed plan).
plan_ms() { # $1 manifest
    local i
    lvlab "$1" plan --target stopped >/dev/null
    for i in $(seq "$runs"); do timed "$1" plan --target stopped; done | median
}

row() { printf '%s = %s %s  %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# `plan` of $small defined (stopped) machines, without and with the
# unrelated domains on the host.
manifest "sc${tag}p" "$small"
lvlab "$lab" apply --auto-approve --target stopped >/dev/null
empty=$(plan_ms "$lab")
define_unrelated "$unrelated"
crowded=$(plan_ms "$lab")
undefine_unrelated
lvlab "$lab" destroy --force >/dev/null
row "scale.plan$small.empty" "$empty" ms "median of $runs, plan of $small stopped machines, a host with only the lab"
row "scale.plan$small.crowded" "$crowded" ms "median of $runs, the same with $unrelated unrelated domains defined"
row "scale.plan$small.crowded_vs_empty" "$(ratio "$crowded" "$empty")" x "what $unrelated unrelated domains cost a plan of $small"
[ "$quick" = 1 ] && exit 0

# CPU seconds (user + system) the QEMUs of environment $1 have used.
qemu_cpu() {
    local pid ticks=0
    for pid in $(ps -eo pid=,args= | awk -v env="_$1," '$2 ~ /qemu-system/ && index($0, "guest=") && index($0, env) { print $1 }'); do
        ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# `up --all` and `destroy --force` of $1 machines: their rows.
up_destroy() {
    local up cpu destroy
    manifest "sc${tag}u$1" "$1"
    up=$(timed "$lab" up --all)
    cpu=$(qemu_cpu "sc${tag}u$1")
    destroy=$(timed "$lab" destroy --force)
    row "scale.up$1" "$up" ms "up --all, $1 blank-disk machines (backing, TCG), QEMU started"
    row "scale.up$1.qemu_cpu" "$cpu" s "CPU time the $1 QEMUs had used when up returned"
    # Spread over the cores, but one QEMU's start keeps about one busy.
    row "scale.up$1.floor" "$(awk -v c="$cpu" -v n="$(nproc)" -v m="$1" 'BEGIN { printf "%.0f", 1000 * c / (m < n ? m : n) }')" ms \
        "that CPU time over min($1 machines, $(nproc) cores): the least up of $1 can take"
    row "scale.destroy$1" "$destroy" ms "destroy --force, the $1 running machines"
    echo "$up $destroy" > "$work/updown$1"
}
up_destroy 1
up_destroy "$many"
read -r up1 destroy1 < "$work/updown1"
read -r up_many destroy_many < "$work/updown$many"
row "scale.up${many}_vs_up1" "$(ratio "$up_many" "$up1")" x "up of $many against up of 1"
row "scale.destroy${many}_vs_destroy1" "$(ratio "$destroy_many" "$destroy1")" x "destroy of $many against destroy of 1"

# `plan` of a big lab, defined (stopped).
manifest "sc${tag}b" "$big"
lvlab "$lab" apply --auto-approve --target stopped >/dev/null
row "scale.plan$big.deployed" "$(plan_ms "$lab")" ms "median of $runs, plan of $big stopped machines"
