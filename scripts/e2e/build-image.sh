#!/usr/bin/env bash
# Builds the small Debian 12 cloud image the real-guest tier boots, or finds
# it already built. Prints the image's path on stdout; progress on stderr.
#
#   scripts/e2e/build-image.sh            # build once, then reuse
#   LVLAB_E2E_CACHE=/elsewhere scripts/e2e/build-image.sh
#
# The result lives in $LVLAB_E2E_CACHE (default /var/cache/lvlab-e2e) under
# a folder named after this script's digest: change the script and the next
# run builds a new image. Beside the image: SHA512SUMS.
#
# What the image is: a 2 GiB disk with an MBR partition table, one ext4 root
# partition (label lvlab-root) from mmdebstrap of Debian 12 (bookworm, from
# the package mirror in this machine's apt sources), the cloud kernel,
# cloud-init (NoCloud, then None), openssh-server, qemu-guest-agent, sudo,
# systemd-networkd (cloud-init renders its network-config for networkd; no
# resolver runs, so no DNS query leaves the guest), and GRUB for BIOS boot with the console on ttyS0. No user, no
# password, no SSH key and no SSH host key is baked in; cloud-init makes
# only ed25519 and ecdsa host keys (RSA took 18 s under TCG).
#
# Needs root, mmdebstrap, grub-pc-bin, e2fsprogs, fdisk and qemu-utils
# (scripts/setup.sh installs them with E2E_PACKAGES). No loop device or
# mount: mkfs.ext4 -d fills the file system from the folder, and GRUB's boot
# sector and core image are written to the disk by hand (this machine's
# loop devices show no partitions, so grub-install cannot be used).
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }

# Only the image's path goes to standard output (callers capture it): every
# tool's chatter goes to standard error.
exec 3>&1 1>&2

NAME=lvlab-e2e-debian12
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
KEY=$(sha256sum "$SCRIPT" | cut -c1-16)
CACHE=${LVLAB_E2E_CACHE:-/var/cache/lvlab-e2e}/$KEY
IMAGE=$CACHE/$NAME.qcow2

if [ -f "$CACHE/SHA512SUMS" ] && (cd "$CACHE" && sha512sum --quiet -c SHA512SUMS >/dev/null 2>&1); then
    say "guest image: cached at $IMAGE"
    echo "$IMAGE" >&3
    exit 0
fi

[ "$(id -u)" -eq 0 ] || { say "building the guest image needs root"; exit 1; }
for tool in mmdebstrap grub-mkimage mkfs.ext4 sfdisk qemu-img; do
    command -v "$tool" >/dev/null || { say "missing $tool: run scripts/setup.sh"; exit 1; }
done

START=$SECONDS
WORK=$(mktemp -d /var/tmp/lvlab-e2e-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root

# The guest's apt sources: this machine's Debian sources when it has them
# (the mirror it already reaches), else deb.debian.org.
sources() {
    local file=/etc/apt/sources.list.d/debian.sources
    if [ -f "$file" ] && grep -q '^Suites:.*bookworm' "$file"; then
        grep -v '^#' "$file"
    else
        printf 'deb http://deb.debian.org/debian bookworm main\n'
        printf 'deb http://deb.debian.org/debian bookworm-updates main\n'
        printf 'deb http://deb.debian.org/debian-security bookworm-security main\n'
    fi
}

PACKAGES=(
    systemd-sysv udev dbus kmod iproute2 netbase procps
    linux-image-cloud-amd64 initramfs-tools
    cloud-init cloud-guest-utils openssh-server qemu-guest-agent sudo
    systemd-resolved
)

say "mmdebstrap bookworm (${PACKAGES[*]})"
sources | mmdebstrap --variant=minbase --mode=root --quiet \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='force-unsafe-io' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    bookworm "$ROOT" - >&2

say "configuring the guest"
cat >"$ROOT/etc/fstab" <<'FSTAB'
LABEL=lvlab-root / ext4 rw,discard,errors=remount-ro 0 0
FSTAB
echo debian >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
HOSTS
echo 'LANG=C.UTF-8' >"$ROOT/etc/default/locale"

cat >"$ROOT/etc/cloud/cloud.cfg.d/90-lvlab-e2e.cfg" <<'CFG'
# lvlab e2e image: the seed comes from a NoCloud disk (cidata), or nothing.
datasource_list: [NoCloud, None]
# RSA host key generation takes some 18 s under TCG.
ssh_genkeytypes: [ed25519, ecdsa]
# Nothing to regenerate: C.UTF-8 is built in.
locale: C.UTF-8
# GRUB is not managed by dpkg in this image.
grub_dpkg:
  enabled: false
system_info:
  network:
    renderers: [networkd]
    activators: [networkd]
CFG

cat >"$ROOT/etc/ssh/sshd_config.d/lvlab-e2e.conf" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
UseDNS no
SSHD

# No DNS leaves the guest: passt would forward it to the host's resolver,
# which is not on loopback. A static resolv.conf that names only the guest
# itself (where nothing answers) replaces resolved's stub, and nothing that
# looks names up at boot (NTP) runs.
rm -f "$ROOT/etc/resolv.conf"
printf 'nameserver 127.0.0.1\n' >"$ROOT/etc/resolv.conf"
chroot "$ROOT" systemctl enable --quiet systemd-networkd
chroot "$ROOT" systemctl disable --quiet systemd-resolved 2>/dev/null || true
# Nothing that wakes up at boot to do maintenance under emulation.
chroot "$ROOT" systemctl mask --quiet \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-resolved.service systemd-timesyncd.service

# Nothing that identifies one machine: keys, machine id, logs, caches.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -rf "$ROOT"/var/lib/cloud/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
    "$ROOT"/var/log/*.log "$ROOT"/tmp/*

KERNEL=$(cd "$ROOT/boot" && ls vmlinuz-* | sort -V | tail -n1)
INITRD=initrd.img-${KERNEL#vmlinuz-}
[ -f "$ROOT/boot/$INITRD" ] || { say "no $INITRD in the guest's /boot"; exit 1; }
mkdir -p "$ROOT/boot/grub"
cat >"$ROOT/boot/grub/grub.cfg" <<GRUB
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry 'Debian 12 (lvlab e2e)' {
    linux /boot/$KERNEL root=LABEL=lvlab-root ro console=tty0 console=ttyS0,115200n8
    initrd /boot/$INITRD
}
GRUB

say "making the disk"
DISK=$WORK/disk.raw
SIZE_MIB=2048
# Partition 1 from 1 MiB to the end; the gap before it holds GRUB's core.
mkfs.ext4 -q -L lvlab-root -d "$ROOT" "$WORK/root.ext4" "$((SIZE_MIB - 1))M"
truncate -s "${SIZE_MIB}M" "$DISK"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$DISK"
dd if="$WORK/root.ext4" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none

# GRUB for BIOS by hand: boot.img's code in the MBR (its default points at
# sector 1), core.img from sector 1 with the modules it needs built in.
GRUB_DIR=/usr/lib/grub/i386-pc
grub-mkimage -O i386-pc -o "$WORK/core.img" -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 normal linux configfile echo test serial terminal
[ "$(stat -c %s "$WORK/core.img")" -lt $((2047 * 512)) ] || { say "core.img too big"; exit 1; }
dd if="$GRUB_DIR/boot.img" of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/core.img" of="$DISK" bs=512 seek=1 conv=notrunc status=none

say "converting to a compressed qcow2"
mkdir -p "$CACHE"
qemu-img convert -c -f raw -O qcow2 "$DISK" "$WORK/$NAME.qcow2"
mv "$WORK/$NAME.qcow2" "$IMAGE"
(cd "$CACHE" && sha512sum "$NAME.qcow2" >SHA512SUMS)
say "guest image built in $((SECONDS - START)) s: $IMAGE ($(du -h "$IMAGE" | cut -f1))"
echo "$IMAGE" >&3
