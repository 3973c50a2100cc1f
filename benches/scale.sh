#!/usr/bin/env bash
# Scale figures for the README ("Scale"), on qemu:///session: what `plan`
# of a 50-machine lab costs on a host crowded with 500 unrelated domains
# against the same plan on a host holding only the lab; `up --all` and
# `destroy --force` of 1 and of 10 blank-disk machines (real QEMU starts,
# TCG), with the CPU time the QEMUs had used when `up` returned (their
# start-up, the floor of `up` on a small machine), the median of several
# rounds; how long this machine leaves an exited process unreaped (what
# a power-off waits for, see `zombie_ms`); `plan` of a lab of 1000
# defined machines.
#
# Usage: benches/scale.sh [--quick]
#   --quick   only the plan rows with and without the unrelated domains,
#             fewer runs (benches/check.sh --quick, so scripts/test.sh)
#   LVLAB_BIN=PATH  time this lvlab instead of a release build (--quick:
#             target/debug/lvlab, which `cargo test` has just built)
#   SCALE_UNRELATED, SCALE_LAB, SCALE_MANY, SCALE_BIG  the sizes (500, 50,
#             10, 1000), for a quick try of the script; the row keys name
#             them, so benches/check.sh finds its rows only with the defaults
#   SCALE_RUNS  rounds of up and destroy of 1 and of SCALE_MANY machines
#             (5); their rows are medians, every sample in their details
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
rounds=${SCALE_RUNS:-5}

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

# shellcheck source=benches/support/lib.sh
. benches/support/lib.sh

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

# Milliseconds an orphaned process stays a zombie once it has exited: the
# reaping by PID 1 (or a subreaper). libvirt's power-off waits for it, as
# it polls the QEMU's PID (every 200 ms) until the PID is gone, and QEMU
# is an orphan (libvirt daemonizes it). An init that reaps on SIGCHLD
# makes this about 0; one that reaps on a timer makes it the floor of
# every `destroy`.
zombie_ms() {
    local pid state start
    pid=$(sh -c 'sleep 0.01 >/dev/null 2>&1 & echo $!')
    while read -r _ _ state _ 2>/dev/null <"/proc/$pid/stat" && [ "$state" != Z ]; do sleep 0.001; done
    start=$(now_ms)
    while [ -e "/proc/$pid" ]; do sleep 0.002; done
    echo $(($(now_ms) - start))
}

# The samples of the rounds below: a file per figure and size (machines,
# or `host`), a line per round.
sample() { echo "$3" >>"$work/samples/$1.$2"; } # $1 figure, $2 size, $3 value
samples() { paste -sd ' ' "$work/samples/$1.$2"; }
last() { tail -n 1 "$work/samples/$1.$2"; }
median_of() { median <"$work/samples/$1.$2"; }
median_row() { # $1 key, $2 unit, $3 figure, $4 size, $5 details
    row "$1" "$(median_of "$3" "$4")" "$2" "median of $rounds ($(samples "$3" "$4")), $5"
}

# `up --all` then `destroy --force` of manifest $1's $3 machines
# (environment $2): one sample of each.
up_destroy() {
    sample up "$3" "$(timed "$1" up --all)"
    sample qemu_cpu "$3" "$(qemu_cpu "$2")"
    sample destroy "$3" "$(timed "$1" destroy --force)"
}

# Rounds of up and destroy of 1 and of $many machines, both sizes in each
# round so that they see the same load. One sample settles nothing: a
# power-off's time moves by up to a second with the moment it lands in
# (see zombie_ms).
mkdir -p "$work/samples"
manifest "sc${tag}u1" 1
lab_one=$lab
manifest "sc${tag}u$many" "$many"
lab_many=$lab
for round in $(seq "$rounds"); do
    up_destroy "$lab_one" "sc${tag}u1" 1
    up_destroy "$lab_many" "sc${tag}u$many" "$many"
    sample destroy_ratio "$many" "$(ratio "$(last destroy "$many")" "$(last destroy 1)")"
    sample zombie host "$(zombie_ms)"
    echo "benches/scale.sh: round $round of $rounds done" >&2
done

for n in 1 "$many"; do
    median_row "scale.up$n" ms up "$n" "up --all, $n blank-disk machines (backing, TCG), QEMU started"
    median_row "scale.up$n.qemu_cpu" s qemu_cpu "$n" "CPU time the $n QEMUs had used when up returned"
    # Spread over the cores, but one QEMU's start keeps about one busy.
    row "scale.up$n.floor" "$(awk -v c="$(median_of qemu_cpu "$n")" -v n="$(nproc)" -v m="$n" 'BEGIN { printf "%.0f", 1000 * c / (m < n ? m : n) }')" ms \
        "that CPU time over min($n machines, $(nproc) cores): the least up of $n can take"
    median_row "scale.destroy$n" ms destroy "$n" "destroy --force, the $n running machines"
done
median_row scale.zombie_reap ms zombie host "how long an exited orphan stays unreaped here: each power-off waits for it"
row "scale.up${many}_vs_up1" "$(ratio "$(median_of up "$many")" "$(median_of up 1)")" x "the medians: up of $many against up of 1"
row "scale.destroy${many}_vs_destroy1" "$(ratio "$(median_of destroy "$many")" "$(median_of destroy 1)")" x \
    "the medians: destroy of $many against destroy of 1 (round by round: $(samples destroy_ratio "$many"))"

# `plan` of a big lab, defined (stopped).
manifest "sc${tag}b" "$big"
lvlab "$lab" apply --auto-approve --target stopped >/dev/null
row "scale.plan$big.deployed" "$(plan_ms "$lab")" ms "median of $runs, plan of $big stopped machines"
