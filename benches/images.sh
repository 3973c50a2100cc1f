#!/usr/bin/env bash
# Image pipeline figures for the README ("Performance"): peak memory of
# `lvlab init` for a large image from a local server, what verification adds
# to the download, and hash throughput against `openssl dgst`. The server is
# Python's http.server answering with sendfile(2), so that it takes little of
# the CPU that the client and its hasher share with it.
# Usage: benches/images.sh [SIZE]   (default 2G; needs python3 and openssl)
# Not part of `cargo test`. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
work=$(mktemp -d /tmp/lvlab-bench.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet
lvlab=$PWD/target/release/lvlab

mkdir -p "$work/www"
echo "making a $size image of random bytes" >&2
head -c "$size" /dev/urandom > "$work/www/big.qcow2"
(cd "$work/www" && sha256sum big.qcow2 > SHA256SUMS && sha512sum big.qcow2 > SHA512SUMS)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" "$work/www" <<'PY' >/dev/null 2>&1 &
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile):
        self.wfile.flush()
        self.connection.sendfile(source)
root = functools.partial(Handler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), root).serve_forever()
PY
server_pid=$!
sleep 1
url=http://127.0.0.1:$port

manifest() { # $1 extra image keys
    cat > "$work/Lvlab.yml" <<YML
environment:
  - name: bench
    libvirt_uri: test:///default
    config_defaults:
      cloud_image_basedir: $work/base
      cloud_init: {pubkey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+y bench"}
    machines: [{vm_name: m, os: big}]
images:
  big:
    image_url: $url/big.qcow2
$1
YML
}

run() { # $1 label
    rm -rf "$work/base"
    /usr/bin/time -f "%e %M" -o "$work/time" \
        env NO_PROXY='*' "$lvlab" -q -f "$work/Lvlab.yml" init >/dev/null
    read -r secs kib < "$work/time"
    echo "$1 $secs $kib"
}

results=()
for round in 1 2 3 4 5; do
    manifest ""
    results+=("$(run plain)")
    manifest "    checksum_url: $url/SHA256SUMS
    checksum_type: sha256"
    results+=("$(run sha256)")
    manifest "    checksum_url: $url/SHA512SUMS
    checksum_type: sha512"
    results+=("$(run sha512)")
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, collections
best = collections.defaultdict(lambda: (1e9, 0))
for line in sys.stdin:
    label, secs, kib = line.split()
    s, k = best[label]
    best[label] = (min(s, float(secs)), max(k, int(kib)))
plain = best["plain"][0]
for label in ("plain", "sha256", "sha512"):
    s, k = best[label]
    extra = "" if label == "plain" else f"  verification adds {100 * (s - plain) / plain:+.1f}%"
    print(f"init {label:7} best of 5: {s:6.2f} s   peak RSS {k / 1024:5.1f} MiB{extra}")
'
cat "$work/www/big.qcow2" > /dev/null
cargo bench --quiet --bench hash -- "$work/www/big.qcow2"
