#!/usr/bin/env bash
# The Debian package tier: builds the .deb (scripts/package.sh), installs it
# on this machine with dpkg -i (its dependencies must be installed: setup.sh
# does), and checks what it installed as a user would meet it: `lvlab
# --version` names the commit and the libvirt library, `lvlab validate`
# accepts the packaged demo example, `man lvlab-plan` shows plan's examples,
# and bash loads the completion script from its standard place. The package
# is removed again at the end. --no-setup skips scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
[ "${1:-}" = --no-setup ] || setup_all

started=$SECONDS
deb=$(bash scripts/package.sh --no-setup | tail -n 1)
work=$(mktemp -d -t lvlab-package.XXXXXX)
cleanup() {
    as_root dpkg -r lvlab >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
say "dpkg -i $deb"
quietly as_root dpkg -i "$deb"
say "installed: $(dpkg-query -W -f='${Package} ${Version}; depends: ${Depends}; recommends: ${Recommends}' lvlab)"

fail() {
    say "package tier failed: $*"
    exit 1
}

say "lvlab --version"
version=$(/usr/bin/lvlab --version)
printf '%s\n' "$version" >&2
grep -Eq '^commit: [0-9a-f]{7,}$' <<<"$version" || fail "no commit in --version"
grep -Eq '^libvirt: [0-9]+\.[0-9]+\.[0-9]+$' <<<"$version" || fail "no libvirt version in --version"

say "lvlab validate on /usr/share/doc/lvlab/examples/demo"
cp -r /usr/share/doc/lvlab/examples/demo "$work/demo"
# The demo names its SSH key under .lvlab/ (scripts/demo.sh makes it).
mkdir -p "$work/demo/.lvlab"
ssh-keygen -q -t ed25519 -N '' -C lvlab-package-test -f "$work/demo/.lvlab/id_ed25519"
LVLAB_NO_HOST_CONFIG=1 /usr/bin/lvlab -C "$work/demo" validate >&2

say "man lvlab-plan"
[ -f /usr/share/man/man1/lvlab-plan.1.gz ] || fail "the man pages are not installed gzipped"
page=$(MANWIDTH=80 man lvlab-plan 2>&1) || fail "man lvlab-plan: $page"
grep -q 'lvlab plan --detailed-exitcode' <<<"$page" || fail "man lvlab-plan shows no examples"

say "bash completion from /usr/share/bash-completion/completions/lvlab"
bash -c 'source /usr/share/bash-completion/completions/lvlab && complete -p lvlab' >&2 ||
    fail "bash does not load the packaged completion"

say "Debian package tier: passed in $((SECONDS - started)) s"
