#!/usr/bin/env bash
# Publish/subscribe fan-out against uWebSockets, under its own generator `broadcast_test`:
# each of N clients sends one 20-byte message, the server publishes every message to every
# client (one topic), and an iteration ends when every client has received all N (N^2
# deliveries). Servers: uws-broadcast (uWebSockets' publish) and sockway-loop-broadcast (the
# event loop's Conn::publish), 1 server thread each by default; clients 100, 500 and 1,000.
#
# broadcast_test prints "Iterations/second (N clients): X" every 4 s; the first printout
# (connection set-up) is dropped and the next COUNT (default 3) are averaged. Deliveries per
# second = iterations/s x N^2.
#
# Usage: benches/broadcast.sh [--clients "100 500 1000"] [--servers "uws-broadcast ..."]
#                             [--threads T] [--printouts COUNT] [--no-build]
# Everything stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENTS="100 500 1000"
SERVERS="uws-broadcast sockway-loop-broadcast"
THREADS=1
COUNT=3
BUILD=1
while (($#)); do
  case "$1" in
    --clients) CLIENTS="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --printouts) COUNT="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

trap 'stop_server' EXIT
raise_fd_limit
if ((BUILD)); then
  build_all
  build_uws
fi
DIR="$OUT/broadcast"
mkdir -p "$DIR"
echo "machine: $(machine_line); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-24s %14s %18s\n' clients server iterations/s deliveries/s
for clients in $CLIENTS; do
  for server in $SERVERS; do
    start_server "$server" "$THREADS"
    log="$DIR/$server.$clients.txt"
    # The first printout plus COUNT more, each 4 s, and 60 s for connecting.
    timeout $((4 * (COUNT + 1) + 60)) stdbuf -oL "$UWS_DIR/broadcast_test" "$clients" 127.0.0.1 \
      "$SERVER_PORT" 0 2>&1 | grep --line-buffered -m $((COUNT + 1)) "Iterations/second" >"$log" || true
    stop_server
    rate="$(tail -n +2 "$log" | awk -F': ' '{ sum += $2; n++ } END { if (n) printf "%.2f", sum / n }')"
    if [[ -z "$rate" ]]; then
      printf '%-8s %-24s %14s\n' "$clients" "$server" "no result (see $log)"
      continue
    fi
    printf '%-8s %-24s %14s %18.0f\n' "$clients" "$server" "$rate" "$(echo "$rate * $clients * $clients" | bc -l)"
  done
done
