#!/usr/bin/env bash
# Cluster mode end to end on one machine: a three-server NATS JetStream
# cluster (configuration files in a temporary directory, `sync_interval:
# always`, so an acknowledged append is fsynced on a majority of servers)
# and three `hume serve --cluster` nodes on loopback. It deploys `kv` and
# `bank`, appends through one node, reads the states, kills the node that
# runs `bank` with SIGKILL, shows `bank` failing over to another node (and
# how long that took), reads again, and stops everything it started.
#
#   PROFILE=release   build and run the release binary (default: debug)
#   LEASE_TTL=MS      the nodes' --lease-ttl (default 2000; Hume's own default is 6000)
#   KEEP_DIR=1        keep the temporary directory (configurations, logs)
#
# Reads: each projection runs on one node. The script reads a state from
# the node that owns it (found in each node's `GET /projections?local=true`:
# what that node runs itself), and also through every other node, which
# forwards the read to the owner and answers with the same state.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
tools="${HUME_TOOLS:-$PWD/.hume-tools}"
nats_server="$tools/venv/bin/nats-server"
lease_ttl="${LEASE_TTL:-2000}"
profile="${PROFILE:-debug}"

echo "== building the host ($profile) and the kv and bank plugins"
if [ "$profile" = release ]; then
    cargo build --release -p hume --bin hume
else
    cargo build -p hume --bin hume
fi
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
hume="$target_dir/$profile/hume"
work="$(mktemp -d "${TMPDIR:-/tmp}/hume-cluster-demo.XXXXXX")"
"$hume" build example-plugins/kv -o "$work/kv.wasm" >/dev/null
"$hume" build example-plugins/bank -o "$work/bank.wasm" >/dev/null

pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${KEEP_DIR:-0}" = 1 ]; then
        echo "(kept $work)"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

# Nine free loopback ports (bound, then released), and three for Hume.
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(12)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()')"

# GET a URL, print the body (JSON); empty on failure.
get() { python3 - "$1" <<'EOF' 2>/dev/null || true
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
EOF
}
# The HTTP status of a GET.
status_of() { python3 - "$1" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }

echo "== starting three nats-server processes as one JetStream cluster (in $work)"
routes=""
for i in 0 1 2; do routes="$routes\"nats-route://127.0.0.1:${ports[$((i * 3 + 1))]}\", "; done
nats_urls=()
for i in 0 1 2; do
    name="n$((i + 1))"
    client="${ports[$((i * 3))]}" route="${ports[$((i * 3 + 1))]}" monitor="${ports[$((i * 3 + 2))]}"
    mkdir -p "$work/$name"
    cat >"$work/$name/nats.conf" <<EOF
server_name: $name
listen: "127.0.0.1:$client"
http: "127.0.0.1:$monitor"
log_file: "$work/$name/nats.log"
jetstream {
  store_dir: "$work/$name/jetstream"
  sync_interval: always
}
cluster {
  name: hume-demo
  listen: "127.0.0.1:$route"
  routes: [${routes%, }]
}
EOF
    "$nats_server" -c "$work/$name/nats.conf" >/dev/null 2>&1 &
    pids+=($!)
    nats_urls+=("nats://127.0.0.1:$client")
done
cluster="$(IFS=,; echo "${nats_urls[*]}")"
leader=""
for _ in $(seq 1 300); do
    leader="$(get "http://127.0.0.1:${ports[2]}/jsz" | json 'v.get("meta_cluster", {}).get("leader", "")' 2>/dev/null || true)"
    [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || { echo "the NATS servers elected no JetStream leader; logs in $work/n*/nats.log" >&2; KEEP_DIR=1; exit 1; }
echo "JetStream meta leader: $leader; client URLs: $cluster"

echo "== starting three hume nodes (--lease-ttl $lease_ttl)"
node_url=()
node_pid=()
# One at a time: nodes starting together on a fresh cluster race to create
# Hume's streams, and a node whose JetStream request times out meanwhile
# exits (start it again).
for i in 0 1 2; do
    port="${ports[$((9 + i))]}"
    "$hume" serve --data "$work/h$((i + 1))" --listen "127.0.0.1:$port" \
        --cluster "$cluster" --node-id "h$((i + 1))" --lease-ttl "$lease_ttl" \
        >/dev/null 2>"$work/h$((i + 1)).log" &
    pids+=($!)
    node_pid+=($!)
    node_url+=("http://127.0.0.1:$port")
    for _ in $(seq 1 300); do
        [ "$(status_of "${node_url[$i]}/health")" = 200 ] && break
        sleep 0.1
    done
    [ "$(status_of "${node_url[$i]}/health")" = 200 ] || { echo "node h$((i + 1)) did not start; see $work/h$((i + 1)).log" >&2; KEEP_DIR=1; exit 1; }
    echo "h$((i + 1)) at ${node_url[$i]}"
done
replicas="$(get "http://127.0.0.1:${ports[2]}/jsz?streams=true&config=true" | json '[s["config"]["num_replicas"] for a in v.get("account_details", []) for s in a.get("stream_detail", []) if s["name"] == "HUME_LOG"]')"
echo "HUME_LOG replicas: $replicas"

export HUME_URL="${node_url[0]}"
echo "== deploying kv (config-*) and bank (account-*) through h1"
"$hume" deploy kv "$work/kv.wasm" --stream 'config-*'
"$hume" deploy bank "$work/bank.wasm" --stream 'account-*'

echo "== appending through h1"
"$hume" append config-app --kind add --data '{"key": "colour", "value": "blue"}'
"$hume" append config-app --kind add --data '{"key": "size", "value": 42}'
"$hume" append account-1 --kind opened --data '{"account": "alice"}'
"$hume" append account-1 --kind deposited --data '{"account": "alice", "amount": 100}'
"$hume" append account-2 --kind opened --data '{"account": "bob"}'
"$hume" append account-2 --kind deposited --data '{"account": "bob", "amount": 30}'

# The index (0-2) of the live node that runs projection $1, or nothing.
owner_of() {
    local i
    for i in "${alive[@]}"; do
        if get "${node_url[$i]}/projections?local=true" | json "'$1' in [p['name'] for p in v['projections']]" 2>/dev/null | grep -qx True; then
            echo "$i"
            return
        fi
    done
}
# Read projection $1's state from its owner, and ask the other live nodes.
show() {
    local name="$1" owner i code
    owner="$(owner_of "$name")"
    if [ -z "$owner" ]; then
        echo "$name: no live node runs it yet"
        return
    fi
    echo "$name runs on h$((owner + 1)); its state there: $(get "${node_url[$owner]}/projections/$name/state")"
    for i in "${alive[@]}"; do
        [ "$i" = "$owner" ] && continue
        code="$(status_of "${node_url[$i]}/projections/$name/state")"
        if [ "$code" = 200 ]; then
            echo "  through h$((i + 1)): $(get "${node_url[$i]}/projections/$name/state") (forwarded)"
        else
            echo "  through h$((i + 1)): HTTP $code (not forwarded: the projection is moving?)"
        fi
    done
}
alive=(0 1 2)
echo "== where each projection runs, and its state"
for _ in $(seq 1 300); do
    [ -n "$(owner_of kv)" ] && [ -n "$(owner_of bank)" ] && break
    sleep 0.1
done
show kv
show bank

bank_owner="$(owner_of bank)"
if [ -z "$bank_owner" ]; then
    for i in 0 1 2; do echo "h$((i + 1)) runs: $(get "${node_url[$i]}/projections?local=true" | json '[p["name"] + ":" + p["state"] for p in v["projections"]]')"; done
    echo "no node runs bank after 30 s; node logs in $work" >&2
    KEEP_DIR=1
    exit 1
fi
victim="h$((bank_owner + 1))"
echo "== kill -9 $victim (it runs bank)"
kill -KILL "${node_pid[$bank_owner]}"
wait "${node_pid[$bank_owner]}" 2>/dev/null || true
killed_at="$(date +%s.%N)"
alive=()
for i in 0 1 2; do [ "$i" != "$bank_owner" ] && alive+=("$i"); done
survivor="${alive[0]}"
export HUME_URL="${node_url[$survivor]}"
echo "appending through h$((survivor + 1)) while bank has no owner"
"$hume" append account-1 --kind withdrawn --data '{"account": "alice", "amount": 25}'
head="$(get "${node_url[$survivor]}/streams" | json 'sum(s["revision"] for s in v["streams"])')"
new_owner=""
for _ in $(seq 1 600); do
    new_owner="$(owner_of bank)"
    if [ -n "$new_owner" ]; then
        st="$(get "${node_url[$new_owner]}/projections/bank")"
        if echo "$st" | json "v['state'] == 'running' and v['offset'] >= $head" 2>/dev/null | grep -qx True; then
            break
        fi
    fi
    sleep 0.05
done
now="$(date +%s.%N)"
if [ -z "$new_owner" ]; then
    echo "bank did not fail over within 30 s; node logs in $work" >&2
    KEEP_DIR=1
    exit 1
fi
printf 'bank failed over from %s to h%d, running and caught up, %.2f s after the kill (lease TTL %s ms)\n' \
    "$victim" "$((new_owner + 1))" "$(python3 -c "print($now - $killed_at)")" "$lease_ttl"

echo "== states after the failover"
show kv
show bank
echo "== hume status on h$((survivor + 1))"
"$hume" status
echo "== done; stopping the nodes and the NATS servers"
