#!/usr/bin/env bash
# Fan-out through the hub over WebSockets on loopback: for N in --clients and each protocol,
# a fresh server (the sample chat hub, 2 worker threads) and `hub_bench fanout`: N receivers
# in one group (joined with the bench server's `Join`) and one sender on SendMessageToGroup
# (every member gets Send), up to 16
# messages in flight, 1 s warm-up, then --seconds measured. The cases are interleaved: --runs
# rounds, each running every case once, so a change in the machine's load spreads over all
# of them. Prints one line per run (deliveries per second counted at the N receivers, latency
# p50 and p99 in microseconds) and, per case, the median and range of its runs. With
# --baseline BIN (a hub_bench built from another tree), every run of a case runs that server
# too, the two in turns (each round starts with the other one), and the summary adds the
# paired ratio of deliveries per second, this build over the baseline. Every process stops by
# itself.
#
# Usage: benches/hub_fanout.sh [--clients "100 1000"] [--protocols "json messagepack"]
#                              [--runs 3] [--seconds 5] [--no-build] [--baseline BIN]
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="100 1000"
PROTOCOLS="json messagepack"
RUNS=3
SECONDS_PER_RUN=5
BUILD=1
BASELINE=""
# The group the receivers join.
GROUP=bench
while (($#)); do
  case "$1" in
    --clients) CLIENTS="$2"; shift ;;
    --protocols) PROTOCOLS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --seconds) SECONDS_PER_RUN="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --baseline) BASELINE="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/examples/hub_bench"
((BUILD)) && cargo build --release -p sockway-hub --example hub_bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d)"
cleanup() {
  exec 7>&- 2>/dev/null || true
  [[ -n "${SERVER:-}" ]] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts hub_bench $1 as the server.
start_server() {
  rm -f "$WORK/stdin" "$WORK/server.out"
  mkfifo "$WORK/stdin"
  "$1" serve 127.0.0.1:0 <"$WORK/stdin" >"$WORK/server.out" &
  SERVER=$!
  exec 7>"$WORK/stdin"
  for _ in $(seq 100); do
    grep -q listening "$WORK/server.out" 2>/dev/null && break
    sleep 0.1
  done
  ADDR="$(awk '/listening/ {print $2}' "$WORK/server.out")"
  [[ -n "$ADDR" ]] || { echo "the server did not start" >&2; exit 1; }
}

stop_server() {
  exec 7>&-
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

# median and range of the numbers on stdin
summary() { sort -n | awk '{v[NR]=$1} END {printf "median %s (range %s-%s)", v[int((NR+1)/2)], v[1], v[NR]}'; }

echo "hub fan-out: $RUNS runs of ${SECONDS_PER_RUN}s per case, the cases interleaved (every case once per round)${BASELINE:+, against the baseline $BASELINE}; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
# The servers of a round: this build, and the baseline when given, in turns.
servers() {
  if [[ -z "$BASELINE" ]]; then
    echo this
  elif (($1 % 2)); then
    echo this baseline
  else
    echo baseline this
  fi
}
for run in $(seq "$RUNS"); do
  for n in $CLIENTS; do
    for protocol in $PROTOCOLS; do
      for server in $(servers "$run"); do
        server_bin="$BIN"
        [[ "$server" == baseline ]] && server_bin="$BASELINE"
        start_server "$server_bin"
        line="$(timeout 120 "$BIN" fanout "ws://$ADDR/chatHub" "$n" "$protocol" "$SECONDS_PER_RUN" "$GROUP")"
        stop_server
        echo "  round $run, $server: $line (load $(cut -d' ' -f1 /proc/loadavg))"
        echo "$line" >>"$WORK/case-$n-$protocol-$server"
      done
    done
  done
done
rates() { sed 's/.*deliveries_per_sec=\([0-9]*\).*/\1/' "$1"; }
for n in $CLIENTS; do
  for protocol in $PROTOCOLS; do
    for server in $(servers 1); do
      case_file="$WORK/case-$n-$protocol-$server"
      rate="$(rates "$case_file" | summary)"
      p99="$(sed 's/.*p99_us=\([0-9]*\).*/\1/' "$case_file" | summary)"
      p50="$(sed 's/.*p50_us=\([0-9]*\).*/\1/' "$case_file" | summary)"
      label=""
      [[ -n "$BASELINE" ]] && label=" $server"
      echo "N=$n $protocol$label: deliveries/s $rate; p50 us $p50; p99 us $p99"
    done
    if [[ -n "$BASELINE" ]]; then
      ratio="$(paste <(rates "$WORK/case-$n-$protocol-this") <(rates "$WORK/case-$n-$protocol-baseline") |
        awk '{printf "%.3f\n", $1 / $2}' | summary)"
      echo "N=$n $protocol: this / baseline, paired by round: $ratio"
    fi
  done
done
