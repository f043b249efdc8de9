#!/usr/bin/env bash
# Two builds of the gateway side by side: an A/B of a relay change that the noise of a
# shared machine would hide in gateway_compare.sh's ratios to nginx. Both gateways run in
# front of one `sockway echo` backend, with the same configuration (gateway_lib.sh's, plus
# GATEWAY_LIMITS, by default `"relayIoUring": true`) and `--worker-threads 1`; `sockway
# bench` (2 threads) then alternates between them, R rounds per case, each run 1 s of
# warm-up and S s measured, reading the gateway's CPU time from /proc. Prints every run, then
# for each case the ratio B / A of the two runs of each round: throughput and the proxy's CPU
# per message, median [lowest-highest].
#
# Usage: benches/gateway_ab.sh A_BIN B_BIN [--rounds R] [--duration S] [--tls]
#                               [--cases "c100x20b c10x1k c200x16k"]
#   A_BIN, B_BIN: two `sockway` binaries (e.g. main's build and a branch's).
#   --tls: the clients connect to the gateways' TLS front (wss://, ALPN http/1.1, lib.sh's
#     throwaway certificate) instead of the plain one.
#
# Everything stays on 127.0.0.1; every run is bounded in time and connection count.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
WORK="$OUT/gateway_ab"
# shellcheck source=benches/gateway_lib.sh
source "$(dirname "$0")/gateway_lib.sh"

(($# >= 2)) || { sed -n '2,16p' "$0"; exit 2; }
BINS=("$1" "$2")
shift 2
ROUNDS=6
DURATION=5
CASES="c100x20b c10x1k"
while (($#)); do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --cases) CASES="$2"; shift ;;
    --tls) PROXY_TLS=1 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
GATEWAY_LIMITS="${GATEWAY_LIMITS:-\"relayIoUring\": true}"
ALL_CASES="c100x20b:100:20 c10x1k:10:1024 c200x16k:200:16384"

mkdir -p "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  stop_pid "$BACKEND_PID"
}
trap cleanup EXIT
start_backend
PORTS=()
for i in 0 1; do
  WORK="$OUT/gateway_ab/$i"
  mkdir -p "$WORK"
  GATEWAY_BIN="${BINS[$i]}" start_gateway
  PIDS+=("$GATEWAY_PID")
  if ((PROXY_TLS)); then
    PORTS+=("$GATEWAY_TLS_PORT")
  else
    PORTS+=("$GATEWAY_PORT")
  fi
done
echo "A ${BINS[0]} (pid ${PIDS[0]}), B ${BINS[1]} (pid ${PIDS[1]}); $(machine_line)"
SCHEME=ws
TLS_ARGS=()
((PROXY_TLS)) && SCHEME=wss TLS_ARGS=(--insecure)

RUNS="$OUT/gateway_ab/runs.txt"
: >"$RUNS"
for spec in $ALL_CASES; do
  IFS=: read -r name conns payload <<<"$spec"
  [[ " $CASES " == *" $name "* ]] || continue
  for round in $(seq "$ROUNDS"); do
    for i in 0 1; do
      json="$OUT/gateway_ab/run.json"
      "$SOCKWAY" bench "$SCHEME://127.0.0.1:${PORTS[$i]}/ws" "${TLS_ARGS[@]}" --connections "$conns" \
        --payload "$payload" --duration "$DURATION" --warmup 1 --threads 2 \
        --server-pid "${PIDS[$i]}" --label "$name" --json "$json" >/dev/null 2>&1
      python3 - "$json" "$name" "$round" "$i" >>"$RUNS" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
print(sys.argv[2], sys.argv[3], "AB"[int(sys.argv[4])], round(run["messages_per_second"]),
      run["server"]["cpu_seconds_per_million_messages"])
PY
      tail -1 "$RUNS"
    done
  done
done
python3 - "$RUNS" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    case, rnd, side, rate, cpu = line.split()
    runs[(case, rnd)][side] = (float(rate), float(cpu))
by_case = collections.defaultdict(list)
for (case, _), pair in runs.items():
    if len(pair) == 2:
        by_case[case].append((pair["B"][0] / pair["A"][0], pair["B"][1] / pair["A"][1]))
print("B / A, median [lowest-highest] of the rounds' pairs")
for case, pairs in by_case.items():
    t = [p[0] for p in pairs]
    c = [p[1] for p in pairs]
    print(f"{case:10} throughput {statistics.median(t):.3f}x [{min(t):.3f}-{max(t):.3f}], "
          f"CPU per message {statistics.median(c):.3f}x [{min(c):.3f}-{max(c):.3f}], {len(pairs)} rounds")
PY
