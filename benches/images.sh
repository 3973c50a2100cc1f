#!/usr/bin/env bash
# Image pipeline figures for the README ("Performance"): peak memory of
# `lvlab init` for a large image from a local server, what verification adds
# to the download, and hash throughput against `openssl dgst`. The server is
# Python's http.server answering with sendfile(2), so that it takes little of
# the CPU that the client and its hasher share with it.
# Usage: benches/images.sh [SIZE]   (default 2G; needs python3 and openssl)
# Prints `key = value unit` rows that benches/check.sh compares with the
# README's targets. Not part of `cargo test`. Traffic stays on 127.0.0.1.
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
sums() { # $1 directory holding big.qcow2: its SHA256SUMS and SHA512SUMS
    (cd "$1" && sha256sum big.qcow2 > SHA256SUMS && sha512sum big.qcow2 > SHA512SUMS)
}
sums "$work/www"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Paths under /paced/ are sent at most at what a 1 Gbit/s link carries.
python3 - "$port" "$work/www" <<'PY' >/dev/null 2>&1 &
import functools, http.server, sys, time
PACE = 117_000_000  # bytes per second
class Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        self.paced = path.startswith("/paced/")
        return super().translate_path(path.removeprefix("/paced"))
    def copyfile(self, source, outputfile):
        self.wfile.flush()
        if not self.paced:
            self.connection.sendfile(source)
            return
        start, sent = time.monotonic(), 0
        while (n := self.connection.sendfile(source, sent, 1 << 20)) > 0:
            sent += n
            time.sleep(max(0.0, sent / PACE - (time.monotonic() - start)))
root = functools.partial(Handler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), root).serve_forever()
PY
server_pid=$!
sleep 1

manifest() { # $1 URL of the image and its checksum files, $2 checksum type or none
    local sums=""
    [ "$2" != none ] && sums="    checksum_url: $1/${2^^}SUMS
    checksum_type: $2"
    cat > "$work/Lvlab.yml" <<YML
environment:
  - name: bench
    libvirt_uri: test:///default
    config_defaults:
      cloud_image_basedir: $work/base
      cloud_init: {pubkey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench"}
    machines: [{vm_name: m, os: big}]
images:
  big:
    image_url: $1/big.qcow2
$sums
YML
}

run() { # $1 label
    rm -rf "$work/base"
    /usr/bin/time -f "%e %M" -o "$work/time" \
        env NO_PROXY='*' "$lvlab" -q -f "$work/Lvlab.yml" init >/dev/null
    read -r secs kib < "$work/time"
    echo "$1 $secs $kib"
}

measure() { # $1 key (loopback, paced), $2 label, $3 URL, $4 rounds
    local results=() round algorithm
    for round in $(seq "$4"); do
        for algorithm in none sha256 sha512; do
            manifest "$3" "$algorithm"
            results+=("$(run "$algorithm")")
        done
    done
    printf '%s\n' "${results[@]}" | python3 -c '
import sys, collections
key, label, rounds = sys.argv[1:]
best = collections.defaultdict(lambda: (1e9, 0))
for line in sys.stdin:
    algorithm, secs, kib = line.split()
    s, k = best[algorithm]
    best[algorithm] = (min(s, float(secs)), max(k, int(kib)))
plain = best["none"][0]
for algorithm in ("none", "sha256", "sha512"):
    print(f"init.{key}.{algorithm} = {best[algorithm][0]:.3f} s  best of {rounds}, {label}")
for algorithm in ("sha256", "sha512"):
    adds = 100 * (best[algorithm][0] - plain) / plain
    print(f"init.{key}.verify_adds.{algorithm} = {adds:.3f} %  what verification adds, {label}")
rss = max(k for _, k in best.values())
print(f"init.{key}.rss = {rss / 1024:.3f} MiB  peak RSS of init, {label}")
' "$1" "$2" "$4"
}

measure loopback "$size over loopback" "http://127.0.0.1:$port" 5
# A smaller file for the paced link, so that the runs stay short.
mkdir "$work/www/small"
head -c 512M "$work/www/big.qcow2" > "$work/www/small/big.qcow2"
sums "$work/www/small"
measure paced "$(numfmt --to=iec "$(stat -c %s "$work/www/small/big.qcow2")") at 1 Gbit/s" "http://127.0.0.1:$port/paced/small" 3
cargo bench --quiet --bench hash -- "$work/www/big.qcow2"
