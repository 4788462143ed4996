#!/usr/bin/env bash
# The main job, end to end, on the embedded default: build the host and the
# example `kv` plugin, start `hume serve` on its RocksDB data directory,
# deploy the projection, append events and show the projection's state.
#
#   HUME_DATA  data directory (default ./hume-data; kept between runs)
#   HUME_PORT  port to listen on (default 7171)
#   KEEP=1     leave the server running at the end
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

data="${HUME_DATA:-$PWD/hume-data}"
port="${HUME_PORT:-7171}"
export HUME_URL="http://127.0.0.1:$port"

echo "== building the host (debug) and the kv plugin"
cargo build -p hume --bin hume
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
hume="$target_dir/debug/hume"
"$hume" build example-plugins/kv -o "$target_dir/kv.wasm"
"$hume" validate "$target_dir/kv.wasm"

serve_log="$target_dir/hume-serve.log"
echo "== starting hume serve --data $data (server log: $serve_log)"
"$hume" serve --data "$data" --listen "127.0.0.1:$port" 2>"$serve_log" &
server=$!
stop_server() { kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
if [ "${KEEP:-0}" != 1 ]; then trap stop_server EXIT; fi
for _ in $(seq 1 100); do
    "$hume" streams >/dev/null 2>&1 && break
    sleep 0.1
done

echo "== deploying kv (following streams config-*)"
if "$hume" status kv >/dev/null 2>&1; then
    echo "(kv is already deployed in $data: keeping it and its state)"
else
    "$hume" deploy kv "$target_dir/kv.wasm" --stream 'config-*'
fi

echo "== appending events"
"$hume" append config-app --kind add --data '{"key": "colour", "value": "blue"}'
"$hume" append config-app --kind add --data '{"key": "size", "value": 42}'
"$hume" append config-db --kind add --data '{"key": "pool", "value": {"min": 1, "max": 8}}'
"$hume" append config-app --kind remove --data '{"key": "size"}'

echo "== hume state kv"
"$hume" state kv
echo "== hume status"
"$hume" status
if [ "${KEEP:-0}" = 1 ]; then
    echo "server still running (pid $server) at $HUME_URL"
fi
