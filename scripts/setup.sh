#!/usr/bin/env bash
# Installs what lvlab needs on Debian 12 and starts the libvirt daemons.
# Idempotent: every step checks before it acts, and says what it does.
# Sourced by scripts/demo.sh and scripts/test.sh; runnable on its own.
set -euo pipefail

say() {
    if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
        printf '\033[1m==> %s\033[0m\n' "$*" >&2
    else
        printf '==> %s\n' "$*" >&2
    fi
}

# Runs a noisy command with its output in a log, shown only when it fails.
quietly() {
    local log
    log=$(mktemp -t lvlab-setup.XXXXXX)
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        say "failed: $* (full log: $log)"
        return 1
    fi
    rm -f "$log"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages. qemu-utils on these machines comes from bookworm-backports,
# so QEMU and libvirt must come from there too or their versions disagree.
BACKPORTS_PACKAGES=(
    qemu-system-x86 qemu-utils
    libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu
    libvirt-daemon-driver-network libvirt-daemon-config-network libvirt-clients
    libvirt-daemon-driver-storage
)
PACKAGES=(
    pkg-config gcc passt xorriso cloud-init osinfo-db libosinfo-bin dnsmasq-base
    gnupg curl ca-certificates openssh-client libssl-dev strace
)
# The remote-host tests reach this machine's libvirt through qemu+ssh:// to an
# sshd they start on loopback with their own keys.
REMOTE_PACKAGES=(
    openssh-server
)
# benches/remote.sh reads apply's JSON lines with jq.
BENCH_PACKAGES=(
    jq
)
# The completion and man page tests load the scripts in a real zsh and render
# the pages with man; the package tier's cargo-deb computes the .deb's
# dependencies with dpkg-shlibdeps.
PACKAGE_TOOLS=(
    zsh man-db dpkg-dev
)
# The real-guest tier builds its own Debian 12 image (scripts/e2e/build-image.sh).
E2E_PACKAGES=(
    mmdebstrap grub-pc-bin e2fsprogs fdisk
)

ensure_backports_source() {
    if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return
    fi
    say "adding bookworm-backports to apt's sources"
    as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    APT_UPDATED=no
}

# yes once apt's package lists were updated in this run; a new source sets
# it back to no.
APT_UPDATED=no

# apt_install [-t SUITE] PKG...: installs Debian packages without questions,
# updating apt's package lists first once per run.
apt_install() {
    local suite=()
    if [ "$1" = -t ]; then
        suite=(-t "$2")
        shift 2
    fi
    if [ "$APT_UPDATED" != yes ]; then
        say "apt-get update"
        quietly as_root apt-get update
        APT_UPDATED=yes
    fi
    say "installing${suite[1]:+ from ${suite[1]}}: $*"
    quietly as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends ${suite[@]+"${suite[@]}"} "$@"
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
    done
}

ensure_packages() {
    ensure_backports_source
    local missing_bpo missing
    missing_bpo=$(missing_packages "${BACKPORTS_PACKAGES[@]}")
    missing=$(missing_packages "${PACKAGES[@]}" "${PACKAGE_TOOLS[@]}" "${E2E_PACKAGES[@]}" "${REMOTE_PACKAGES[@]}" "${BENCH_PACKAGES[@]}")
    if [ -z "$missing_bpo" ] && [ -z "$missing" ]; then
        say "Debian packages: all present"
        return
    fi
    # shellcheck disable=SC2086
    if [ -n "$missing_bpo" ]; then apt_install -t bookworm-backports $missing_bpo; fi
    # shellcheck disable=SC2086
    if [ -n "$missing" ]; then apt_install $missing; fi
}

MIN_RUST=1.89

ensure_rust() {
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v cargo >/dev/null 2>&1; then
        say "installing Rust with rustup (https://rustup.rs)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
            || { say "cannot install Rust: install Rust $MIN_RUST or newer from https://rustup.rs"; return 1; }
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    local version
    version=$(cargo --version | awk '{print $2}')
    if [ "$(printf '%s\n%s\n' "$MIN_RUST" "$version" | sort -V | head -n1)" != "$MIN_RUST" ]; then
        say "Rust $version is older than $MIN_RUST: run 'rustup update'"
        return 1
    fi
    say "Rust: $(cargo --version)"
}

# Debian 12 has no virtiofsd that works with the backports QEMU; shared
# directories (virtiofs) need it, so it comes from crates.io.
ensure_virtiofsd() {
    local found
    for found in "$(command -v virtiofsd || true)" "$HOME/.cargo/bin/virtiofsd" \
        /usr/libexec/virtiofsd /usr/lib/qemu/virtiofsd; do
        if [ -n "$found" ] && [ -x "$found" ]; then
            say "virtiofsd: $found"
            return
        fi
    done
    local missing
    missing=$(missing_packages libseccomp-dev libcap-ng-dev)
    if [ -n "$missing" ]; then
        say "virtiofsd's build dependencies are missing"
        # shellcheck disable=SC2086
        apt_install $missing
    fi
    say "building virtiofsd (cargo install virtiofsd; a few minutes, once)"
    quietly cargo install --locked virtiofsd
}

# No udev here: /dev/kvm stays root-only, and libvirt then re-probes QEMU on
# every define (76 s each, measured). Apply Debian's udev rule by hand.
ensure_kvm_device() {
    [ -e /dev/kvm ] || { say "no /dev/kvm: guests run under TCG"; return; }
    getent group kvm >/dev/null || as_root groupadd --system kvm
    if [ "$(stat -c '%G:%a' /dev/kvm)" != "kvm:660" ]; then
        say "giving /dev/kvm to group kvm, mode 0660 (Debian's udev rule)"
        as_root chgrp kvm /dev/kvm
        as_root chmod 0660 /dev/kvm
    fi
}

daemon_running() { pgrep -x "$1" >/dev/null 2>&1; }

# Whether the running libvirtd answers storage pool calls (lvlab's pool
# storage and the remote-host tests need them).
storage_driver_loaded() {
    as_root virsh -q -c qemu:///system pool-list --all >/dev/null 2>&1
}

# No systemd here: start the system daemons by hand when they are not running.
# qemu:///session starts its own per-user daemon when first opened.
ensure_daemons() {
    if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
        say "not root: skipping system daemons (qemu:///session needs none)"
        return
    fi
    if ! daemon_running virtlogd; then
        say "starting virtlogd"
        as_root virtlogd -d
    fi
    if daemon_running libvirtd && ! storage_driver_loaded; then
        # A running libvirtd loads no driver installed after it started.
        say "restarting libvirtd: its storage driver was installed after it started"
        as_root pkill -x libvirtd
        for _ in $(seq 50); do daemon_running libvirtd || break; sleep 0.1; done
    fi
    if ! daemon_running libvirtd; then
        say "starting libvirtd"
        as_root libvirtd -d
    fi
    # The network driver writes each network's MAC list here when a guest
    # starts on it; systemd-tmpfiles makes it on other hosts, nothing here.
    if [ ! -d /var/lib/libvirt/dnsmasq ]; then
        say "creating /var/lib/libvirt/dnsmasq (libvirt's network state)"
        as_root install -d -m 0755 /var/lib/libvirt/dnsmasq
    fi
}

setup_all() {
    ensure_packages
    ensure_rust
    ensure_virtiofsd
    ensure_kvm_device
    ensure_daemons
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup_all
fi
