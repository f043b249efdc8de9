#!/usr/bin/env bash
# Memory per idle connection of sockway and each peer.
#
# For every server: start it (2 worker threads), read its RSS, open N connections with
# `sockway bench --idle N` (each exchanges one 20-byte message first, so buffers allocated by
# a first read are counted; --fresh skips that), wait until the server's RSS is stable, and
# report (RSS after - RSS before) / N. The open-files limit is raised to its hard limit first.
#
# --sources K spreads the connections over the source addresses 127.0.0.1 .. 127.0.0.K
# (default 1): one source address has only as many connections to the server as ephemeral
# ports (net.ipv4.ip_local_port_range, about 28,000). 50,000 connections need
# `--connections 50000 --sources 2` or more, and an open-files hard limit above 50,000 for
# both the server and the generator (e.g. `ulimit -Hn 65536` as root, or LimitNOFILE).
#
# --servers may include tokio-floor (with --fresh): not a WebSocket server but a task and a
# registered socket per connection and nothing else, the floor under any task-per-connection
# tokio server.
#
# Usage: benches/idle_memory.sh [--connections N] [--sources K] [--servers "sockway node ..."]
#                               [--fresh] [--no-build]
# Writes target/bench/idle_memory.json and prints a table.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

CONNECTIONS=10000
SOURCES=1
SERVERS="$ALL_SERVERS"
BUILD=1
FRESH=()
while (($#)); do
  case "$1" in
    --connections) CONNECTIONS="$2"; shift ;;
    --sources) SOURCES="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    --fresh) FRESH=(--idle-fresh) ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! [[ "$SOURCES" =~ ^[0-9]+$ ]] || ((SOURCES < 1 || SOURCES > 254)); then
  echo "--sources must be 1 to 254" >&2
  exit 2
fi
LOCAL_ADDRESSES="$(seq -f '127.0.0.%g' -s , 1 "$SOURCES")"

trap 'stop_server' EXIT
raise_fd_limit
limit="$(ulimit -n)"
if [[ "$limit" != unlimited ]] && ((limit < CONNECTIONS + 256)); then
  echo "the open-files limit ($limit) is too low for $CONNECTIONS connections; lower --connections" >&2
  exit 1
fi
if ((BUILD)); then
  build_all
  if [[ " $SERVERS " == *" uws "* ]]; then
    build_uws
  fi
fi
DIR="$OUT/idle"
rm -rf "$DIR"
mkdir -p "$DIR"

echo "idle memory: $CONNECTIONS connections per server from $SOURCES source address(es)${FRESH:+ (fresh, no message exchanged)}; machine: $(machine_line)"
results="{"
separator=""
for server in $SERVERS; do
  if [[ "$server" == tokio-floor && ${#FRESH[@]} -eq 0 ]]; then
    echo "  tokio-floor       skipped: it does not echo, so it is measured with --fresh only"
    continue
  fi
  # uWebSockets is one process per thread: one process, so that its RSS is all of it.
  threads=2
  [[ "$server" == uws* ]] && threads=1
  start_server "$server" "$threads"
  # Let the server finish starting (lazy allocations, JIT warm-up) before the first sample.
  sleep 1
  if "$SOCKWAY" bench "ws://127.0.0.1:$SERVER_PORT/ws" --idle "$CONNECTIONS" "${FRESH[@]}" \
    --local-addresses "$LOCAL_ADDRESSES" --duration 20 --server-pid "$SERVER_PID" --label "$server" --connect-concurrency 128 \
    --json "$DIR/$server.json" >"$DIR/$server.txt" 2>&1; then
    per="$(jq '.rss_bytes_per_connection' "$DIR/$server.json")"
    opened="$(jq '.connected' "$DIR/$server.json")"
    printf '  %-17s %8.0f bytes per connection (%s connections open)\n' "$server" "$per" "$opened"
    results+="$separator\"$server\": $(cat "$DIR/$server.json")"
    separator=", "
  else
    echo "  $server: failed (see $DIR/$server.txt)" >&2
  fi
  stop_server
done
results+="}"
echo "{\"connections\": $CONNECTIONS, \"sources\": $SOURCES, \"fresh\": $([[ ${#FRESH[@]} -gt 0 ]] && echo true || echo false), \"machine\": \"$(machine_line)\", \"servers\": $results}" | jq . >"$OUT/idle_memory.json"
echo "wrote $OUT/idle_memory.json"
