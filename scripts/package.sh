#!/usr/bin/env bash
# Builds lvlab's Debian package with cargo-deb ([package.metadata.deb] in
# Cargo.toml): the release binary, its man pages and its bash, zsh and fish
# completions (made by running the built binary: `lvlab man`, `lvlab
# completions`), the README and the examples. Installs cargo-deb first when
# it is missing (`cargo install --locked`, once: it stays in ~/.cargo/bin).
# Prints the .deb's path as the last line on stdout; everything else goes to
# stderr. --no-setup skips scripts/setup.sh (the caller ran it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
[ "${1:-}" = --no-setup ] || setup_all

# Pinned, so that every machine packs the same way.
CARGO_DEB_VERSION=3.8.0

ensure_cargo_deb() {
    if cargo install --list | grep -qx "cargo-deb v$CARGO_DEB_VERSION:"; then
        return
    fi
    say "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked; a few minutes, once)"
    quietly cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
}

ensure_cargo_deb
release=${CARGO_TARGET_DIR:-target}/release
say "cargo build --release"
cargo build --release --locked --quiet

# cargo-deb's assets name these under target/release/lvlab-deb/.
generated=$release/lvlab-deb
rm -rf "$generated"
mkdir -p "$generated/man" "$generated/completions"
say "man pages and completion scripts from the built lvlab"
"$release/lvlab" man --dir "$generated/man" >/dev/null
# Debian policy: man pages are installed gzipped (-n: no name or time
# stamp, so the same pages give the same package).
gzip -9n "$generated"/man/*.1
"$release/lvlab" completions bash >"$generated/completions/lvlab"
"$release/lvlab" completions zsh >"$generated/completions/_lvlab"
"$release/lvlab" completions fish >"$generated/completions/lvlab.fish"

say "cargo deb --no-build"
cargo deb --no-build | tail -n 1
