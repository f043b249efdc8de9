#!/usr/bin/env bash
# Runs a hub fleet on one machine: one redis-server, three `sockway hub --redis` servers
# (5001-5003, metrics on 9101-9103) and `sockway gateway` on 8080 balancing round-robin over
# them with no cookie affinity (gateway.json; its metrics on 9090). Ctrl-C stops everything.
#
# Usage: examples/hub-fleet/run.sh   (from the repository root, after
#        `cargo build --release -p sockway-cli`)
# Env:   SOCKWAY=path/to/sockway     another build of the binary
#        SIGNALR_JS=path/to/signalr.js  serve this copy of the SignalR client to the chat page
#                                       instead of loading it from cdnjs (offline machines)
#        REDIS_PORT=6380             another port for Redis (6379 by default)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SOCKWAY="${SOCKWAY:-$ROOT/target/release/sockway}"
REDIS_PORT="${REDIS_PORT:-6379}"
WORK="$(mktemp -d)"

if [[ ! -x "$SOCKWAY" ]]; then
  echo "no sockway binary at $SOCKWAY: run cargo build --release -p sockway-cli" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null; then
  echo "redis-server is missing: sudo apt-get install redis-server" >&2
  exit 1
fi

PAGE_FLAGS=()
if [[ -n "${SIGNALR_JS:-}" ]]; then
  PAGE_FLAGS=(--signalr-js "$SIGNALR_JS")
fi

PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 0' INT TERM

# One Redis, in memory only.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --loglevel warning &
PIDS+=($!)

# The key every server signs connection tokens with, so each accepts the others' tokens.
head -c 48 /dev/urandom | base64 > "$WORK/fleet.secret"

for i in 1 2 3; do
  "$SOCKWAY" hub --listen "127.0.0.1:500$i" \
    --redis "redis://127.0.0.1:$REDIS_PORT/" \
    --token-secret-file "$WORK/fleet.secret" \
    --metrics-listen "127.0.0.1:910$i" "${PAGE_FLAGS[@]}" &
  PIDS+=($!)
done

"$SOCKWAY" gateway --config "$HERE/gateway.json" &
PIDS+=($!)

echo "chat page: http://127.0.0.1:8080/   (Ctrl-C stops the fleet)" >&2
# Runs until Ctrl-C, or until one process of the fleet exits (a port in use, say).
wait -n || true
echo "a process of the fleet exited; stopping the others" >&2
