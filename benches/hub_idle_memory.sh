#!/usr/bin/env bash
# Memory per idle hub connection over WebSockets, measured as benches/idle_memory.sh measures
# the plain WebSocket servers: start the server (the sample chat hub, 2 worker threads), read
# its RSS, open N connections (each: WebSocket without negotiation, JSON handshake, one Echo
# of 20 bytes, then idle with a hub Ping every 10 s), wait until the RSS is stable (4 samples
# 0.5 s apart within 0.5 %), and report (RSS after - RSS before) / N. Loopback only; every
# process stops by itself (the client after --hold seconds, the server when its stdin closes).
#
# Usage: benches/hub_idle_memory.sh [--connections N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=10000
BUILD=1
while (($#)); do
  case "$1" in
    --connections) CONNECTIONS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/examples/hub_bench"
((BUILD)) && cargo build --release -p sockway-hub --example hub_bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < CONNECTIONS + 256 )); then
  echo "the open-files limit ($(ulimit -n)) is too low for $CONNECTIONS connections" >&2
  exit 1
fi

WORK="$(mktemp -d)"
FIFO="$WORK/stdin"
mkfifo "$FIFO"
cleanup() {
  exec 7>&- 2>/dev/null || true
  [[ -n "${CLIENT:-}" ]] && kill "$CLIENT" 2>/dev/null || true
  [[ -n "${SERVER:-}" ]] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve 127.0.0.1:0 <"$FIFO" >"$WORK/server.out" &
SERVER=$!
exec 7>"$FIFO"
for _ in $(seq 100); do
  grep -q listening "$WORK/server.out" 2>/dev/null && break
  sleep 0.1
done
ADDR="$(awk '/listening/ {print $2}' "$WORK/server.out")"
[[ -n "$ADDR" ]] || { echo "the server did not start" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$SERVER/status"; }
stable_rss() {
  local samples=() value
  while true; do
    value="$(rss)"
    samples+=("$value")
    if ((${#samples[@]} >= 4)); then
      local last4=("${samples[@]: -4}") min max
      min="$(printf '%s\n' "${last4[@]}" | sort -n | head -1)"
      max="$(printf '%s\n' "${last4[@]}" | sort -n | tail -1)"
      if (( (max - min) * 200 <= max )); then
        echo "$max"
        return
      fi
    fi
    sleep 0.5
  done
}

sleep 1
BEFORE="$(rss)"
"$BIN" idle "ws://$ADDR/chatHub" "$CONNECTIONS" 60 >"$WORK/client.out" 2>&1 &
CLIENT=$!
for _ in $(seq 600); do
  grep -q ready "$WORK/client.out" 2>/dev/null && break
  kill -0 "$CLIENT" 2>/dev/null || { cat "$WORK/client.out" >&2; exit 1; }
  sleep 0.1
done
grep -q ready "$WORK/client.out" || { echo "the clients did not connect in time" >&2; exit 1; }
AFTER="$(timeout 30 bash -c "$(declare -f rss stable_rss); SERVER=$SERVER; stable_rss")"
PER=$(( (AFTER - BEFORE) / CONNECTIONS ))
echo "hub idle memory: $CONNECTIONS connections, RSS before $BEFORE B, after $AFTER B: $PER bytes per connection ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
