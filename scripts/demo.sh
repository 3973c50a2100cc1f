#!/usr/bin/env bash
# Quick start, part one: install what is missing, build lvlab, and boot a
# real Debian 12 guest with it on the demo lab in examples/demo against the
# local libvirt (qemu:///session):
#
#   capabilities --probe, validate, init (from a local image server, its
#   SHA512SUMS signed), plan, up --all --wait, ssh web -- cat /etc/motd,
#   snapshot create, a change, snapshot revert, status,
#   plan --detailed-exitcode (no changes), destroy --force.
#
# The image is the real-guest tier's (scripts/e2e/build-image.sh: built
# once, about 2 minutes, then reused from /var/cache/lvlab-e2e). It is
# published on http://127.0.0.1:8470/ as an image server would publish it:
# the image, SHA512SUMS, a detached signature made with a throwaway OpenPGP
# key, and that key; the server and the key go when the script ends.
# Nothing leaves this machine but the package installs. Root (or sudo) only
# for the package install and the image build.
#
# Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_all

say "building lvlab"
cargo build --quiet
lvlab=$PWD/target/debug/lvlab

say "guest image (scripts/e2e/build-image.sh)"
if [ "$(id -u)" -eq 0 ]; then
    image=$(scripts/e2e/build-image.sh)
else
    # Found in the cache without root; built with it.
    image=$(scripts/e2e/build-image.sh 2>/dev/null) || image=$(as_root scripts/e2e/build-image.sh)
fi

demo=examples/demo
state=$demo/.lvlab
mkdir -p "$state"
if [ ! -f "$state/id_ed25519.pub" ]; then
    say "making the demo's SSH key ($state/id_ed25519)"
    ssh-keygen -q -t ed25519 -N '' -C lvlab-demo -f "$state/id_ed25519"
fi

# The image server: the port Lvlab.yml names. No proxy may stand between
# it and lvlab or curl.
port=8470
export NO_PROXY="127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1${no_proxy:+,$no_proxy}"
www=$(mktemp -d -t lvlab-demo-www.XXXXXX)
export GNUPGHOME
GNUPGHOME=$(mktemp -d -t lvlab-demo-gnupg.XXXXXX)
server=
stop_server() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    gpgconf --kill gpg-agent 2>/dev/null || true
    rm -rf "$www" "$GNUPGHOME"
}
trap stop_server EXIT

say "publishing the image on http://127.0.0.1:$port/ with a signed SHA512SUMS"
ln -s "$image" "$www/$(basename "$image")"
cp "$(dirname "$image")/SHA512SUMS" "$www/SHA512SUMS"
gpg_batch() { gpg --batch --yes --pinentry-mode loopback --passphrase '' "$@"; }
quietly gpg_batch --quick-gen-key 'lvlab demo image server' ed25519 sign never
gpg_batch --armor --export 'lvlab demo image server' >"$www/signer.asc"
quietly gpg_batch --detach-sign --output "$www/SHA512SUMS.gpg" "$www/SHA512SUMS"
python3 -m http.server --bind 127.0.0.1 --directory "$www" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/SHA512SUMS" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { say "the image server could not listen on 127.0.0.1:$port (in use?)"; exit 1; }
    sleep 0.2
done

run() {
    say "lvlab $*"
    "$lvlab" -f "$demo/Lvlab.yml" "$@"
}

# `lvlab ssh web -- CMD`, again while ssh cannot connect (exit 255: the
# guest may be busy for a moment after a snapshot is reverted); any other
# failure is the command's, and ends the demo.
in_web() {
    say "lvlab ssh web -- $*"
    local rc
    for _ in $(seq 30); do
        rc=0
        "$lvlab" -f "$demo/Lvlab.yml" ssh web -- "$@" || rc=$?
        [ "$rc" -ne 255 ] && return "$rc"
        sleep 2
    done
    return 255
}

start=$SECONDS
run capabilities --probe
run validate
run init
run plan
run up --all --wait
# SSH answers before cloud-init's last stage, which runs runcmd.
in_web cloud-init status --wait
in_web cat /etc/motd
run snapshot create --replace before-change web
in_web "echo 'changed after the snapshot' | sudo tee /etc/motd"
run snapshot revert before-change web
in_web cat /etc/motd
run status
run plan --detailed-exitcode
run destroy --force
say "done in $((SECONDS - start)) s: a real guest was created, logged into, snapshotted, reverted and removed"
