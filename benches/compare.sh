#!/usr/bin/env bash
# sockway against its peers, in one run, under one generator: `sockway bench` (the default)
# or uWebSockets' `load_test` (--generator load_test).
#
# Builds everything (release), then for every case runs every echo server (sockway,
# tokio-tungstenite, fastwebsockets, tokio-websockets, Node ws, uWebSockets) round-robin, R
# repetitions, each repetition starting with the next server in turn; each run: start the
# server, connect, warm up (discarded), measure, stop the server. The generator reads the
# server's CPU time from /proc around the measured window, so every run also gives the
# server's CPU seconds per million echoed messages. Then, unless
# --no-instructions, each server runs under callgrind twice with a fixed number of messages
# and the difference gives instructions per message (perf's hardware counters are not
# available in this VM). Prints ratio tables (sockway / each peer) and writes
# target/bench/compare.json and target/bench/compare.svg.
#
# Compressed cases (names starting with z) offer permessage-deflate with JSON-like payloads
# (`sockway bench --compression --payload-style json`) and run only the servers that have it
# (sockway, Node ws), each started with --compression: window 15, context takeover, level 1, every
# message compressed.
#
# TLS cases (names starting with t) run wss:// against the servers that have TLS (all of
# them), each started with --tls and a throwaway ECDSA P-256 certificate (openssl): the Rust
# servers share one rustls configuration (aws-lc-rs), Node uses its https module, uWebSockets
# OpenSSL (its SSLApp); the generator trusts the certificate (--ca-file; load_test checks
# none).
#
# uWebSockets (server `uws`: uws-echo, built with its generators from the snapshot in
# ../shared/peers/uwebsockets, g++ and zlib1g-dev installed with apt-get when missing) is
# single-threaded: a case with T server threads runs T uws-echo processes on one port
# (SO_REUSEPORT). Under sockway bench its CPU per message is given only with one process (the
# generator reads one process's CPU).
#
# --generator load_test: uWebSockets' C generator (the one the fastwebsockets and
# tokio-websockets benchmarks publish with; cheaper per message than sockway bench, so the
# servers set the pace) through benches/load_test.py: it prints a rate every 4 s, so the
# warm-up and the measured window are rounded to whole 4 s printouts; no latency, no fixed
# load (--fixed-load is ignored), no compressed cases (built without permessage-deflate); the
# TLS cases run its OpenSSL build (load_test-tls).
#
# --pin: a case with 1 server thread runs the server on CPU 0 and the generator on CPU 1
# (`taskset`), so neither waits for the other's CPU and the scheduler cannot move them.
# (On the shared 2-CPU host of docs/benchmarks.md this did not make single runs steadier.)
# Cases with more server threads stay unpinned (their threads share both CPUs with the
# generator by design).
#
# Usage: benches/compare.sh [--quick] [--reps R] [--duration S] [--warmup S]
#                           [--servers "sockway node ..."] [--cases "c100x20b c10x1k ..."]
#                           [--generator sockway|load_test] [--pin]
#                           [--no-build] [--no-instructions] [--fixed-load F]
#   --quick: 1 repetition, 5 s per case (the default is 3 repetitions of 6 s + 2 s warm-up).
#   --fixed-load F: after the saturation runs, run every case again with the load paced at
#     F (default 0.5; 0: skip) of the slowest server's median throughput, the same offered
#     load for every server (`sockway bench --rate`), and compare CPU per message there.
#
# Everything stays on 127.0.0.1; every run is bounded in time and connection count.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

REPS=3
DURATION=6
WARMUP=2
SERVERS="$ALL_SERVERS"
BUILD=1
INSTRUCTIONS=1
FIXED_LOAD=0.5
GENERATOR_THREADS=2
GENERATOR=sockway
PIN=0
# name:connections:payload:server-threads[:deflate]
ALL_CASES="c100x20b:100:20:2 c10x1k:10:1024:2 c200x16k:200:16384:2 c500x16k:500:16384:2 c100x20b-1t:100:20:1 c10x1k-1t:10:1024:1 c200x16k-1t:200:16384:1 c500x16k-1t:500:16384:1 z10x1k:10:1024:2:deflate z100x16k:100:16384:2:deflate t100x20b:100:20:2:tls t10x1k:10:1024:2:tls t200x16k:200:16384:2:tls"
CASES=""

while (($#)); do
  case "$1" in
    --quick) REPS=1; DURATION=5 ;;
    --reps) REPS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    --cases) CASES="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --no-instructions) INSTRUCTIONS=0 ;;
    --fixed-load) FIXED_LOAD="$2"; shift ;;
    --generator) GENERATOR="$2"; shift ;;
    --pin) PIN=1 ;;
    -h|--help) sed -n '2,52p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$GENERATOR" in
  sockway) GENERATOR_NAME="sockway bench with $GENERATOR_THREADS threads" ;;
  load_test) GENERATOR_NAME="uWebSockets load_test (1 thread)"; FIXED_LOAD=0 ;;
  *) echo "unknown generator: $GENERATOR (sockway or load_test)" >&2; exit 2 ;;
esac

trap 'stop_server' EXIT
raise_fd_limit
if ((BUILD)); then
  build_all
  if [[ "$GENERATOR" == load_test || " $SERVERS " == *" uws "* ]]; then
    build_uws
  fi
fi
RUNS="$OUT/runs"
FIXED_RUNS="$OUT/runs-fixed"
rm -rf "$RUNS" "$FIXED_RUNS"
mkdir -p "$RUNS" "$FIXED_RUNS"
: >"$OUT/servers.txt"

started=$(date +%s)
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(machine_line); load average before: $load_start"
echo "plan: $REPS repetition(s), ${WARMUP} s warm-up + ${DURATION} s measured per run, generator: $GENERATOR_NAME"
((PIN)) && echo "pinned: 1-thread cases run the server on CPU 0 and the generator on CPU 1"
# Runs the generator against the server started last: scheme $1, $2 connections of $3-byte
# messages, labelled $4, writing JSON to $5; the rest are extra sockway bench flags. It runs
# under $GENERATOR_WRAPPER (a `taskset` with --pin) when that is set.
run_generator() {
  local scheme="$1" conns="$2" payload="$3" label="$4" json="$5"
  shift 5
  if [[ "$GENERATOR" == load_test ]]; then
    local binary=load_test tls=()
    [[ "$scheme" == wss ]] && binary=load_test-tls tls=(--tls)
    $GENERATOR_WRAPPER python3 "$(dirname "$0")/load_test.py" --load-test "$UWS_DIR/$binary" --port "$SERVER_PORT" \
      --connections "$conns" --payload "$payload" --warmup "$WARMUP" --duration "$DURATION" \
      --pids "${SERVER_PIDS// /,}" --label "$label" --json "$json" "${tls[@]}"
    return
  fi
  local pid=(--server-pid "$SERVER_PID")
  # The generator reads one process's CPU time: none rather than a part of it.
  [[ "$SERVER_PIDS" == *" "* ]] && pid=()
  $GENERATOR_WRAPPER "$SOCKWAY" bench "$scheme://127.0.0.1:$SERVER_PORT/ws" --connections "$conns" \
    --payload "$payload" --duration "$DURATION" --warmup "$WARMUP" \
    --threads "$GENERATOR_THREADS" "${pid[@]}" --label "$label" "$@" --json "$json"
}

# Runs every selected server once on every selected case, writing $1/CASE.SERVER.$2.json;
# $3, when given, names a file of "case rate" lines: those cases are paced at that rate.
run_round() {
  local dir="$1" rep="$2" rates="${3:-}" spec case conns payload threads mode server json rate scheme
  for spec in $(selected_cases); do
    IFS=: read -r case conns payload threads mode <<<"$spec"
    generator_flags=()
    SERVER_FLAGS=""
    scheme=ws
    if [[ "$mode" == deflate ]]; then
      generator_flags=(--compression --payload-style json)
      SERVER_FLAGS="--compression"
    elif [[ "$mode" == tls ]]; then
      scheme=wss
      generator_flags=(--ca-file "$(tls_dir)/cert.pem")
      SERVER_FLAGS="--tls $(tls_dir)"
    fi
    if [[ "$GENERATOR" == load_test && "$mode" == deflate ]]; then
      continue
    fi
    if [[ -n "$rates" ]]; then
      rate="$(awk -v c="$case" '$1 == c { print $2 }' "$rates")"
      [[ -n "$rate" ]] || continue
      generator_flags+=(--rate "$rate")
    fi
    SERVER_WRAPPER=""
    GENERATOR_WRAPPER=""
    if ((PIN)) && [[ "$threads" == 1 ]]; then
      SERVER_WRAPPER="taskset -c 0"
      GENERATOR_WRAPPER="taskset -c 1"
    fi
    for server in $(rotated "$rep" $SERVERS); do
      if [[ "$mode" == deflate && " $DEFLATE_SERVERS " != *" $server "* ]] ||
        [[ "$mode" == tls && " $TLS_SERVERS " != *" $server "* ]]; then
        continue
      fi
      start_server "$server" "$threads" "$SERVER_WRAPPER"
      grep -qF "$SERVER_LINE" "$OUT/servers.txt" || echo "$SERVER_LINE" >>"$OUT/servers.txt"
      json="$dir/$case.$server.$rep.json"
      if ! run_generator "$scheme" "$conns" "$payload" "$server" "$json" \
        "${generator_flags[@]}" >"${json%.json}.txt" 2>&1; then
        echo "  (run failed; see ${json%.json}.txt)" >&2
      fi
      stop_server
      printf '%-5s rep %s %-12s %-17s %s\n' "${rates:+fixed}" "$rep" "$case" "$server" \
        "$(grep -E 'throughput|server cost' "${json%.json}.txt" | sed -E 's/^ +//' | tr '\n' ' ' | cut -c1-150)"
    done
  done
}

for rep in $(seq 1 "$REPS"); do
  run_round "$RUNS" "$rep"
done

# The same work for every server: each case paced at FIXED_LOAD of the slowest server's
# median throughput above, so that CPU per message compares servers doing the same thing
# (at saturation each gets a different share of the two CPUs it shares with the generator).
fixed_report=()
if [[ "$FIXED_LOAD" != 0 ]]; then
  python3 - "$RUNS" "$FIXED_LOAD" >"$OUT/fixed-rates.txt" <<'PY'
import glob, json, os, statistics, sys
from collections import defaultdict
rates = defaultdict(lambda: defaultdict(list))
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    case, server, _ = os.path.basename(path)[:-5].rsplit(".", 2)
    with open(path, encoding="utf-8") as handle:
        rates[case][server].append(json.load(handle)["messages_per_second"])
for case, servers in sorted(rates.items()):
    slowest = min(statistics.median(r) for r in servers.values())
    print(case, round(slowest * float(sys.argv[2])))
PY
  echo "fixed load ($FIXED_LOAD of the slowest server's throughput): $(tr '\n' ' ' <"$OUT/fixed-rates.txt")"
  for rep in $(seq 1 "$REPS"); do
    run_round "$FIXED_RUNS" "$rep" "$OUT/fixed-rates.txt"
  done
  fixed_report=(--fixed-runs "$FIXED_RUNS")
fi

if ((INSTRUCTIONS)); then
  if command -v valgrind >/dev/null; then
    "$(dirname "$0")/instructions.sh" --servers "$SERVERS" || echo "instructions per message: failed (see above)" >&2
  else
    echo "instructions per message: valgrind is not installed (apt-get install -y valgrind); skipped" >&2
  fi
fi

# Instructions are reported only when measured in this run, never from an older file.
instructions_report=()
((INSTRUCTIONS)) && instructions_report=(--instructions "$OUT/instructions.json")
python3 "$(dirname "$0")/report.py" --runs "$RUNS" --out "$OUT" --machine "$(machine_line)" \
  --servers-file "$OUT/servers.txt" \
  "${instructions_report[@]}" "${fixed_report[@]}" \
  --plan "$REPS x (${WARMUP} s warm-up + ${DURATION} s), generator $GENERATOR_NAME$( ((PIN)) && echo ", 1-thread cases pinned")" \
  --load "before $load_start, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "total time: $(( $(date +%s) - started )) s"
