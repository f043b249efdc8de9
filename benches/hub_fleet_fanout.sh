#!/usr/bin/env bash
# Fan-out across a fleet of hub servers sharing one Redis (docs/hub-scaleout.md, "Figures"),
# over WebSockets on loopback, with `hub_bench` (crates/sockway-hub/examples/hub_bench):
#
# 1. For N in --clients: N receivers in one group and one sender calling SendMessageToGroup
#    (up to 16 messages in flight, 1 s warm-up, then --seconds measured), on one server
#    without Redis and on three servers with Redis (receivers spread round-robin, the sender
#    on the first). Cases are interleaved: each round runs every case once, --runs rounds.
#    Prints deliveries per second at the receivers, latency p50/p99, and for the fleet the
#    backplane messages per message sent: published by the sender's server, received by each
#    other server (from the servers' counters, printed when they stop).
# 2. A Redis outage: --outage-clients receivers in one group over three servers, a sender at
#    --rate messages a second for 20 s; Redis is killed 5 s in and restarted 5 s later. Prints
#    the deliveries lost, late (over 1 s), duplicated and reordered, and the most messages the
#    sender's server held in its outage buffer, and how many it dropped. --runs times.
#
# Every process stops by itself. Needs redis-server (scripts/install-peers.sh).
#
# Usage: benches/hub_fleet_fanout.sh [--clients "300 3000"] [--runs 3] [--seconds 5]
#                                    [--rate 100] [--outage-clients 300] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="300 3000"
RUNS=3
SECONDS_PER_RUN=5
RATE=100
OUTAGE_CLIENTS=300
BUILD=1
while (($#)); do
  case "$1" in
    --clients) CLIENTS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --seconds) SECONDS_PER_RUN="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --outage-clients) OUTAGE_CLIENTS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/examples/hub_bench"
((BUILD)) && cargo build --release -p sockway-hub --example hub_bench
command -v redis-server >/dev/null || { echo "redis-server is missing: run scripts/install-peers.sh" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d)"
SERVERS=()
REDIS=""
cleanup() {
  for fd in 7 8 9; do eval "exec $fd>&-" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}" $REDIS; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

REDIS_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
start_redis() {
  # without the servers' standard inputs (fds 7-9), which must close when they stop
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --loglevel warning >/dev/null 2>&1 7>&- 8>&- 9>&- &
  REDIS=$!
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  echo "redis-server did not start" >&2; exit 1
}
stop_redis() { kill -9 "$REDIS" 2>/dev/null || true; wait "$REDIS" 2>/dev/null || true; REDIS=""; }

# start_servers COUNT [REDIS_URL]: servers on fds 7.., their addresses in ADDRS
start_servers() {
  local count="$1" redis="${2:-}"
  SERVERS=(); ADDRS=()
  for i in $(seq 0 $((count - 1))); do
    rm -f "$WORK/stdin$i" "$WORK/server$i.out"
    mkfifo "$WORK/stdin$i"
    # shellcheck disable=SC2086
    "$BIN" serve 127.0.0.1:0 $redis <"$WORK/stdin$i" >"$WORK/server$i.out" 2>/dev/null 7>&- 8>&- 9>&- &
    SERVERS+=($!)
    eval "exec $((7 + i))>\"$WORK/stdin$i\""
  done
  for i in $(seq 0 $((count - 1))); do
    for _ in $(seq 100); do
      grep -q listening "$WORK/server$i.out" 2>/dev/null && break
      sleep 0.1
    done
    ADDRS+=("$(awk '/listening/ {print $2}' "$WORK/server$i.out")")
    [[ -n "${ADDRS[$i]}" ]] || { echo "server $i did not start" >&2; exit 1; }
  done
  # a fleet server subscribes to Redis in the background: give it a moment
  [[ -n "$redis" ]] && sleep 1
  URLS="$(printf 'ws://%s/chatHub,' "${ADDRS[@]}")"
  URLS="${URLS%,}"
}

stop_servers() {
  local i
  for i in "${!SERVERS[@]}"; do eval "exec $((7 + i))>&-"; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVERS=()
}

# field NAME LINE
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# median and range of the numbers on stdin
summary() { sort -g | awk '{v[NR]=$1} END {printf "median %s (range %s-%s)", v[int((NR+1)/2)], v[1], v[NR]}'; }

echo "hub fleet fan-out: $RUNS interleaved rounds, ${SECONDS_PER_RUN}s measured per run; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
start_redis
for round in $(seq "$RUNS"); do
  for n in $CLIENTS; do
    for servers in 1 3; do
      if [[ $servers == 1 ]]; then start_servers 1; else start_servers 3 "redis://127.0.0.1:$REDIS_PORT/"; fi
      line="$(timeout 300 "$BIN" fanout "$URLS" "$n" json "$SECONDS_PER_RUN" room)"
      stop_servers
      extra=""
      if [[ $servers == 3 ]]; then
        sent="$(field sent "$line")"
        published="$(field published "$(grep backplane "$WORK/server0.out")")"
        received="$(cat "$WORK"/server[12].out | grep backplane | sed 's/.*received=\([0-9]*\).*/\1/' | paste -sd' ')"
        extra="$(awk -v s="$sent" -v p="$published" -v r="$received" 'BEGIN {split(r, a, " "); printf " published_per_message=%.3f received_per_message=%.3f,%.3f", p / s, a[1] / s, a[2] / s}')"
      fi
      echo "round $round N=$n servers=$servers: $line$extra" | tee -a "$WORK/results"
    done
  done
done
echo
for n in $CLIENTS; do
  for servers in 1 3; do
    lines="$(grep " N=$n servers=$servers:" "$WORK/results")"
    rate="$(while read -r l; do field deliveries_per_sec "$l"; done <<<"$lines" | summary)"
    p50="$(while read -r l; do field p50_us "$l"; done <<<"$lines" | summary)"
    p99="$(while read -r l; do field p99_us "$l"; done <<<"$lines" | summary)"
    echo "N=$n servers=$servers: deliveries/s $rate; p50 us $p50; p99 us $p99"
    if [[ $servers == 3 ]]; then
      per="$(while read -r l; do field published_per_message "$l"; done <<<"$lines" | summary)"
      echo "  backplane messages published per message sent: $per"
    fi
  done
done

echo
echo "Redis outage of 5 s: $OUTAGE_CLIENTS receivers over 3 servers, $RATE messages/s for 20 s"
for round in $(seq "$RUNS"); do
  start_servers 3 "redis://127.0.0.1:$REDIS_PORT/"
  timeout 300 "$BIN" steady "$URLS" "$OUTAGE_CLIENTS" json "$RATE" 20 >"$WORK/steady.out" 7>&- 8>&- 9>&- &
  steady=$!
  for _ in $(seq 600); do grep -q sending "$WORK/steady.out" 2>/dev/null && break; sleep 0.1; done
  sleep 5
  stop_redis
  sleep 5
  start_redis
  wait "$steady"
  stop_servers
  counters="$(grep backplane "$WORK/server0.out")"
  echo "round $round: $(grep '^steady' "$WORK/steady.out") sender_server: ${counters#backplane }"
done
stop_redis
