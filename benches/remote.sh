#!/usr/bin/env bash
# Remote-host figures for the README ("Remote hosts"), on this machine's
# libvirtd reached through an sshd the bench starts on 127.0.0.1 with its
# own host key and client key (as tests/support/remote_host.rs does), so
# `qemu+ssh://root@127.0.0.1:PORT/system` really crosses libvirt's remote
# protocol over SSH:
#   - the upload of a 1 GiB image of incompressible bytes (a qcow2 holding
#     1 GiB of random data, already in lvlab's cache) into the host's
#     images pool, against `scp` of the same file over the same sshd, in
#     the same round; the median of REMOTE_ROUNDS rounds;
#   - `plan` of 50 defined (stopped) machines spread over two hosts, 25 on
#     qemu:///session and 25 on the remote URI, against the same 50 on
#     qemu:///session alone; the same through a shared SSH connection
#     (ControlPersist), and what one SSH login through the sshd costs.
#
# Usage: benches/remote.sh
#   LVLAB_BIN=PATH  time this lvlab instead of a release build
#   REMOTE_ROUNDS   upload rounds (3); REMOTE_RUNS: plans timed per lab (10)
#   REMOTE_IMAGE_MIB  the image's size (1024), for a quick try of the
#             script; the rows keep their keys whatever the size
#
# Needs root (the sshd logs in as root, as qemu:///system needs),
# /usr/sbin/sshd, scp, virsh, qemu-img and jq (scripts/setup.sh), and about
# 4 GiB free under /var/lib/libvirt and /var/tmp. Everything it makes is
# removed at the end, whatever happens: the machines of both hosts (lvlab
# destroy --force, then any domain left with the bench's environment
# names), the storage pools under its directory, its directories, the
# sshd. Prints `key = value unit  details` rows that benches/check.sh
# compares with the README's targets. No network off loopback.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

rounds=${REMOTE_ROUNDS:-3}
runs=${REMOTE_RUNS:-10}
image_mib=${REMOTE_IMAGE_MIB:-1024}
tag=$$
local_uri=qemu:///session

[ "$(id -u)" = 0 ] || { echo "benches/remote.sh: run it as root (its sshd logs in as root)" >&2; exit 1; }
for tool in /usr/sbin/sshd scp virsh qemu-img jq; do
    command -v "$tool" >/dev/null || { echo "benches/remote.sh: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done
if [ -z "${LVLAB_BIN:-}" ]; then
    cargo build --release --quiet
    LVLAB_BIN=$PWD/target/release/lvlab
fi
[ -x "$LVLAB_BIN" ] || { echo "benches/remote.sh: no lvlab at $LVLAB_BIN (build it first)" >&2; exit 1; }

# The bench directory holds what the "remote" host's qemu:///system uses
# (its pools), so it is under /var/lib/libvirt where libvirt's QEMU user
# reaches; the image (big) is under /var/tmp.
work=/var/lib/libvirt/lvlab-bench-$tag
scratch=
labs=()     # manifests whose machines the cleanup destroys
envs=()     # their environment names: domains left with them are removed
sshd_pid=

# shellcheck source=benches/support/lib.sh
. benches/support/lib.sh

# Domains of the bench's environments left on a host (a destroy that
# failed): undefined, never left behind. Their names end in `_<env>`.
remove_domains() { # $1 URI
    local name env
    for name in $(virsh -q -c "$1" list --all --name 2>/dev/null); do
        for env in "${envs[@]}"; do
            case $name in
            *_"$env")
                virsh -q -c "$1" destroy "$name" >/dev/null 2>&1 || true
                virsh -q -c "$1" undefine --nvram "$name" >/dev/null 2>&1 ||
                    virsh -q -c "$1" undefine "$name" >/dev/null 2>&1 || true
                ;;
            esac
        done
    done
}

# The storage pools whose directory is under the bench's: stopped and
# undefined (their directories go with the bench's).
remove_pools() {
    local pool
    for pool in $(virsh -q -c qemu:///system pool-list --all --name 2>/dev/null); do
        case $(virsh -c qemu:///system pool-dumpxml "$pool" 2>/dev/null | sed -n 's:.*<path>\(.*\)</path>.*:\1:p' | head -n 1) in
        "$work"/*)
            virsh -q -c qemu:///system pool-destroy "$pool" >/dev/null 2>&1 || true
            virsh -q -c qemu:///system pool-undefine "$pool" >/dev/null 2>&1 || true
            ;;
        esac
    done
}

# Ends the shared SSH connection of the plan part, if it runs.
mux_exit() {
    [ -n "${port:-}" ] || return 0
    ssh -o ControlPath="$work/mux-%C" -O exit -p "$port" root@127.0.0.1 >/dev/null 2>&1 || true
}

cleanup() {
    local lab
    set +e
    for lab in "${labs[@]}"; do
        lvlab "$lab" destroy --force >/dev/null 2>&1 ||
            echo "benches/remote.sh: could not destroy the machines of $lab (removing its domains)" >&2
    done
    if [ "${#envs[@]}" -gt 0 ]; then
        remove_domains "$local_uri"
        remove_domains qemu:///system
    fi
    remove_pools
    mux_exit
    [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
    rm -rf "$work" ${scratch:+"$scratch"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM
scratch=$(mktemp -d /var/tmp/lvlab-remote-bench.XXXXXX)
mkdir -p "$work"
chmod 755 "$work"

# The sshd: its own host key, a client key that logs in as root.
mkdir -p "$work/sshd" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/client_key"
cp "$work/sshd/client_key.pub" "$work/sshd/authorized_keys"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/sshd/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $work/sshd/host_key
PidFile none
AuthorizedKeysFile $work/sshd/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
/usr/sbin/sshd -D -f "$work/sshd/sshd_config" -E "$work/sshd/sshd.log" </dev/null &
sshd_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
    { echo "benches/remote.sh: the sshd did not listen on 127.0.0.1:$port; its log:" >&2; cat "$work/sshd/sshd.log" >&2; exit 1; }
key=$work/sshd/client_key
remote_uri="qemu+ssh://root@127.0.0.1:$port/system?keyfile=$key&no_verify=1"
logins() { grep -c 'Accepted publickey for root' "$work/sshd/sshd.log" || true; }

mib_per_s() { awk -v bytes="$1" -v ms="$2" 'BEGIN { printf "%.1f", bytes / 1048576 / (ms / 1000) }'; } # $1 bytes, $2 ms

# One environment of `count` machines named `m<i>` on `uri`, all booting
# the image `os` as a qcow2 overlay, TCG, 128 MiB, no NIC, never started.
environment() { # $1 name, $2 uri, $3 os, $4 count
    envs+=("$1")
    cat <<YML
  - name: $1
    libvirt_uri: "$2"
    config_defaults:
      os: $3
      memory: 128
      cpu: 1
      domain_type: qemu
      disk_strategy: backing
      cloud_image_basedir: $work/cache
      disk_image_basedir: $work/vms
      pool_basedir: $work/pools
      cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench, password: false}
    machines:
YML
    for i in $(seq "$4"); do printf '      - {vm_name: m%02d, interfaces: []}\n' "$i"; done
}

images() { # pairs of key and file
    echo "images:"
    while [ $# -gt 0 ]; do
        printf '  %s:\n    image_url: %s\n' "$1" "$2"
        shift 2
    done
}

# The image: a qcow2 holding $image_mib MiB of random bytes (as a cloud
# image, it is all data; random, so no compression on the way helps).
image=$scratch/big.qcow2
head -c "${image_mib}M" /dev/urandom >"$scratch/big.raw"
qemu-img convert -q -f raw -O qcow2 "$scratch/big.raw" "$image"
rm -f "$scratch/big.raw"
image_bytes=$(stat -c %s "$image")

# One machine on the remote URI booting it: its apply uploads the image.
upload_lab=$work/upload.yml
{
    echo "environment:"
    environment "rb${tag}u" "$remote_uri" big 1
    images big "$image"
} >"$upload_lab"
labs+=("$upload_lab")

# Milliseconds of `scp` of the image to a directory on the sshd's side.
scp_ms() {
    local start ms
    mkdir -p "$work/scp"
    start=$(now_ms)
    scp -q -i "$key" -P "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR "$image" "root@127.0.0.1:$work/scp/big.qcow2"
    ms=$(($(now_ms) - start))
    cmp -s "$image" "$work/scp/big.qcow2" || { echo "benches/remote.sh: scp's copy differs" >&2; exit 1; }
    rm -rf "$work/scp"
    echo "$ms"
}

# Milliseconds of lvlab's upload step (the upload and its check on
# arrival), as the apply's JSON stream reports it; then the machine and
# the uploaded volume are removed, so that the next round uploads again.
lvlab_upload_ms() {
    local stream seconds
    stream=$(lvlab "$upload_lab" apply --json --auto-approve --target stopped)
    seconds=$(jq -r 'select(.type == "apply_complete" and .hook.action == "upload_image")
        | .hook.elapsed_seconds' <<<"$stream")
    [ -n "$seconds" ] || { echo "benches/remote.sh: the apply uploaded nothing:" >&2; echo "$stream" >&2; exit 1; }
    lvlab "$upload_lab" destroy --force >/dev/null
    virsh -q -c qemu:///system vol-delete "$work/pools/images/big.qcow2" >/dev/null
    awk -v s="$seconds" 'BEGIN { printf "%.0f", s * 1000 }'
}

# The image in lvlab's cache first, and on disk: a copy still being
# written back would slow whichever transfer came next.
lvlab "$upload_lab" init >/dev/null
mkdir -p "$work/samples"
before=$(logins)
for round in $(seq "$rounds"); do
    sync
    scp=$(scp_ms)
    sync
    up=$(lvlab_upload_ms)
    echo "$(mib_per_s "$image_bytes" "$scp")" >>"$work/samples/scp"
    echo "$(mib_per_s "$image_bytes" "$up")" >>"$work/samples/lvlab"
    ratio "$scp" "$up" >>"$work/samples/ratio"
    echo >>"$work/samples/ratio"
    echo "benches/remote.sh: upload round $round of $rounds done (scp $scp ms, lvlab $up ms)" >&2
done
[ "$(logins)" -gt "$before" ] || { echo "benches/remote.sh: no login went through the bench's sshd" >&2; exit 1; }
samples() { paste -sd ' ' "$work/samples/$1"; }
size_mib=$((image_bytes / 1048576))
row remote.upload.scp "$(median <"$work/samples/scp")" MiB/s \
    "median of $rounds ($(samples scp)), scp of a $size_mib MiB qcow2 of random bytes over a loopback sshd"
row remote.upload.lvlab "$(median <"$work/samples/lvlab")" MiB/s \
    "median of $rounds ($(samples lvlab)), lvlab's upload step of the same file to qemu+ssh://127.0.0.1 through that sshd, its check on arrival included"
row remote.upload.lvlab_vs_scp "$(median <"$work/samples/ratio")" x \
    "median of the rounds' ratios ($(samples ratio)): lvlab's throughput over scp's in the same round"

# `plan` of 50 stopped machines: on one host, and 25 and 25 on two.
tiny=$scratch/tiny.qcow2
qemu-img create -q -f qcow2 "$tiny" 64M
one_lab=$work/one.yml
{
    echo "environment:"
    environment "rb${tag}o" "$local_uri" tiny 50
    images tiny "$tiny"
} >"$one_lab"
two_lab=$work/two.yml
{
    echo "environment:"
    environment "rb${tag}l" "$local_uri" tiny 25
    environment "rb${tag}r" "$remote_uri" tiny 25
    images tiny "$tiny"
} >"$two_lab"
labs+=("$one_lab" "$two_lab")


# The same two-host lab through a shared SSH connection (what
# `ControlMaster auto` with `ControlPersist` in ~/.ssh/config gives a user):
# libvirt runs the URI's `command` instead of `ssh`, here ssh with those
# options. Each lvlab still opens a session through it, but logs in once.
mux_lab=$work/two-mux.yml
printf '#!/bin/sh\nexec ssh -o ControlMaster=auto -o ControlPath=%s/mux-%%C -o ControlPersist=60 "$@"\n' \
    "$work" >"$work/ssh-mux"
chmod +x "$work/ssh-mux"
sed "s|no_verify=1\"|no_verify=1\&command=$work/ssh-mux\"|" "$two_lab" >"$mux_lab"

# Milliseconds of an SSH login through the bench's sshd running `true`,
# median of $runs: what each lvlab run pays to reach the remote host.
login_ms() { # $1 ssh, or the shared connection's wrapper
    local i start
    for i in $(seq "$runs"); do
        start=$(now_ms)
        "$1" -p "$port" -i "$key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o LogLevel=ERROR root@127.0.0.1 true
        echo $(($(now_ms) - start))
    done | median
}

lvlab "$one_lab" apply --auto-approve --target stopped >/dev/null
lvlab "$two_lab" apply --auto-approve --target stopped >/dev/null
one=$(plan_ms "$one_lab")
two=$(plan_ms "$two_lab")
shared=$(plan_ms "$mux_lab")
login=$(login_ms ssh)
shared_login=$(login_ms "$work/ssh-mux")
mux_exit
row remote.plan50.one_host "$one" ms "median of $runs, plan of 50 stopped machines on qemu:///session"
row remote.plan50.two_hosts "$two" ms "median of $runs, plan of 50 stopped machines, 25 on qemu:///session and 25 on qemu+ssh://127.0.0.1 (pool storage)"
row remote.plan50.two_hosts_vs_one "$(ratio "$two" "$one")" x "what spreading the 50 over a second, remote host costs a plan"
row remote.plan50.two_hosts_shared_ssh "$shared" ms "median of $runs, the same two-host plan through a shared SSH connection (ControlPersist)"
row remote.plan50.two_hosts_shared_ssh_vs_one "$(ratio "$shared" "$one")" x "that against the one-host plan"
row remote.ssh.login "$login" ms "median of $runs, ssh root@127.0.0.1 true through the bench's sshd: what any lvlab run on the remote URI pays first"
row remote.ssh.shared "$shared_login" ms "median of $runs, the same through the shared connection"
