#!/usr/bin/env bash
# The gateway's zero-downtime upgrade under load (issue #19 item 10, "Measured"): connection
# attempts refused (target 0) and relayed sessions lost (target 0) while `sockway gateway`
# is upgraded, --upgrades times, by starting a new one with the same configuration file.
#
# One `sockway echo` backend behind the gateway (one worker thread; shutdownTimeout long
# enough that the old processes relay their sessions until the load ends). Through it, for
# the whole run:
#   - `sockway bench` keeps --sessions WebSocket sessions relaying --rate messages/s of
#     --payload bytes; sessions lost = its failed connections (a session that broke, or
#     stopped answering, before the run ended);
#   - benches/gateway_connect_loop.py opens new sessions in a loop (2 clients: connect,
#     handshake, one echo, close); connections refused and other failed attempts counted.
# Every --interval seconds a new gateway takes over (socket hand-over; docs/gateway.md,
# "Zero-downtime upgrade"); the script waits for it to say the previous one stopped
# accepting. At the end it checks that every old process exited by itself once its sessions
# ended.
#
# Usage: benches/gateway_upgrade_load.sh [--upgrades K] [--interval S] [--sessions N]
#                                        [--rate MSGS] [--payload BYTES] [--no-build]
# Defaults: 3 upgrades 8 s apart, 100 sessions, 5,000 messages/s in all, 1 KiB payloads.
# GATEWAY_LIMITS (JSON members, e.g. `"relayIoUring": true`) is added to the gateway's limits.
# Prints the counts and writes target/bench/gateway_upgrade_load.json. Loopback only; every
# process ends by itself or is stopped at the end.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

UPGRADES=3
INTERVAL=8
SESSIONS=100
RATE=5000
PAYLOAD=1024
BUILD=1
while (($#)); do
  case "$1" in
    --upgrades) UPGRADES="$2"; shift ;;
    --interval) INTERVAL="$2"; shift ;;
    --sessions) SESSIONS="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --payload) PAYLOAD="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

WORK="$OUT/gateway_upgrade"
PROXY_THREADS=1
PROXY_TLS=0
DURATION=$(((UPGRADES + 1) * INTERVAL))
GATEWAY_LIMITS="\"shutdownTimeout\": $((DURATION + 60)), \"closeGrace\": 2${GATEWAY_LIMITS:+, $GATEWAY_LIMITS}"
# shellcheck source=benches/gateway_lib.sh
source "$(dirname "$0")/gateway_lib.sh"

OLD_PIDS=()
BENCH_PID=""
LOOP_PID=""
cleanup() {
  stop_pid "$BENCH_PID"
  stop_pid "$LOOP_PID"
  for pid in "${OLD_PIDS[@]}"; do stop_pid "$pid"; done
  stop_all
}
trap cleanup EXIT
raise_fd_limit
if ((BUILD)); then
  echo "building: sockway (release)" >&2
  (cd "$ROOT" && cargo build --release --quiet -p sockway-cli)
fi
rm -rf "$WORK"
mkdir -p "$WORK"

# Starts a gateway on the configuration file of the first (GATEWAY_PORT is kept); $1 names
# its log. The first one waits for its backend to be healthy, later ones for the hand-over.
start_generation() {
  local log="$WORK/gateway.$1.log" config="$WORK/gateway.json"
  : >"$log"
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn,sockway_gateway=info \
    "${GATEWAY_BIN:-$SOCKWAY}" gateway --config "$config" >"$log" 2>&1 &
  GATEWAY_PID=$!
  if (($1 == 0)); then
    wait_for_line "$log" "backend is healthy" "$GATEWAY_PID"
  else
    wait_for_line "$log" "previous gateway stopped accepting\|did not confirm" "$GATEWAY_PID"
  fi
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
start_backend
GATEWAY_PORT="$(free_port)"
write_gateway_config "$WORK/gateway.json"
start_generation 0
echo "upgrade under load: $UPGRADES upgrade(s) ${INTERVAL} s apart; $SESSIONS sessions relaying $RATE messages/s of $PAYLOAD B; a connect loop (2 clients); $(proxy_versions)"
echo "machine: $(machine_line); load average before: $load_start"

"$SOCKWAY" bench "ws://127.0.0.1:$GATEWAY_PORT/ws" --connections "$SESSIONS" --payload "$PAYLOAD" \
  --rate "$RATE" --warmup 1 --duration "$DURATION" --threads 1 --label upgrade \
  --json "$WORK/bench.json" >"$WORK/bench.txt" 2>&1 &
BENCH_PID=$!
python3 "$(dirname "$0")/gateway_connect_loop.py" 127.0.0.1 "$GATEWAY_PORT" "$((DURATION + 1))" 2 \
  >"$WORK/connect_loop.json" 2>"$WORK/connect_loop.err" &
LOOP_PID=$!

handovers=()
for generation in $(seq 1 "$UPGRADES"); do
  sleep "$INTERVAL"
  OLD_PIDS+=("$GATEWAY_PID")
  began=$(date +%s.%N)
  start_generation "$generation"
  took="$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$began" "$(date +%s.%N)")"
  handovers+=("$took")
  echo "  upgrade $generation: pid ${OLD_PIDS[-1]} -> $GATEWAY_PID in $took s" \
    "($(grep -c . "$WORK/gateway.$generation.log") log lines; $(grep -o 'did not confirm' "$WORK/gateway.$generation.log" || echo confirmed))"
done

bench_ok=1
wait "$BENCH_PID" || bench_ok=0
BENCH_PID=""
wait "$LOOP_PID" || true
LOOP_PID=""

# Old processes end by themselves once their sessions have (the bench closed them).
lingering=0
for pid in "${OLD_PIDS[@]}"; do
  waited=0
  while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -0 "$pid" 2>/dev/null && lingering=$((lingering + 1))
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/bench.json" "$WORK/connect_loop.json" "$OUT/gateway_upgrade_load.json" \
  "$bench_ok" "$lingering" "${handovers[*]}" "$(machine_line)" \
  "before $load_start, after $load_end" "$UPGRADES" <<'EOF'
import json, sys

bench_path, loop_path, out, bench_ok, lingering, handovers, machine, load, upgrades = sys.argv[1:]
try:
    bench = json.load(open(bench_path, encoding="utf-8"))
except (OSError, ValueError):
    bench = {}
try:
    loop = json.load(open(loop_path, encoding="utf-8"))
except (OSError, ValueError):
    loop = {}
lost = (bench.get("connect_errors") or 0) + (bench.get("connection_errors") or 0)
result = {
    "upgrades": int(upgrades),
    "handover_seconds": [float(x) for x in handovers.split()],
    "sessions": bench.get("connected"),
    "sessions_lost": lost if bench else None,
    "relayed_messages_per_second": bench.get("messages_per_second"),
    "relay_errors": bench.get("errors"),
    "connect_attempts": loop.get("attempts"),
    "connections_refused": loop.get("refused"),
    "connect_attempts_failed": loop.get("failed"),
    "first_problems": loop.get("first_problems"),
    "old_processes_still_running": int(lingering),
    "bench_exit_ok": bench_ok == "1",
    "machine": machine,
    "load_average": load,
}
print(f"\nload average {load} (1, 5, 15 min; 2 CPUs shared)")
print(f"sessions relaying: {result['sessions']} open, lost {result['sessions_lost']}"
      f" (target 0), {result['relayed_messages_per_second'] or 0:.0f} messages/s, errors {result['relay_errors']}")
print(f"connect loop: {result['connect_attempts']} attempts, refused {result['connections_refused']}"
      f" (target 0), other failures {result['connect_attempts_failed']}")
for problem in result["first_problems"] or []:
    print(f"  {problem}")
print(f"old gateways still running after their sessions ended: {lingering}")
with open(out, "w", encoding="utf-8") as handle:
    json.dump(result, handle, indent=1)
print(f"wrote {out}")
EOF
