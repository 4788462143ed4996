#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what it needs, then run
# every test (the host, the SDKs, the example plugins in every language, the
# end-to-end tests that build real plugins and drive the real `hume` binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
