#!/usr/bin/env bash
# The gateway's cost: the same echo reached directly, through `sockway gateway`, and through
# Debian's nginx configured for WebSocket proxying, in one run, under one generator
# (`sockway bench`); both proxies on plain TCP and with a TLS front (the same self-signed
# ECDSA P-256 certificate, `wss://` from the generator; the backend stays plain).
#
# One `sockway echo` backend serves every run. The gateway (an Http listener, one pool with
# the echo, requestTimeout 3600 s, relayBufferBytes 16384) and nginx (proxy_http_version 1.1,
# Upgrade/Connection headers, proxy_buffering off, proxy_buffer_size 16k, proxy_buffers
# 4 16k, read/send timeouts 3600 s) run side by side with the same number of workers
# (--proxy-threads: the gateway's `--worker-threads` = nginx's worker_processes; default
# 1, which runs the gateway on one thread, a tokio current-thread runtime, like one nginx
# worker process). Access logs are off for both (the gateway runs with RUST_LOG=warn plus its probe's
# health lines; nginx has access_log off). For every repetition and case the targets (direct,
# gateway, nginx, gateway-tls, nginx-tls) run back to back (interleaved), each repetition
# starting with the next target in turn; each run connects, warms up (discarded), measures.
# The generator reads the proxy's CPU time from /proc around the measured window (the gateway's
# process, or the one nginx worker; with more than one nginx worker, nginx's CPU is not
# reported).
# Prints messages/s, the ratio to direct, p50/p99 round trips and what the proxy adds to
# them, proxy CPU us per message, and gateway/nginx ratios; writes
# target/bench/gateway_compare.json.
#
# Usage: benches/gateway_compare.sh [--quick] [--reps R] [--duration S] [--warmup S]
#                                   [--cases "c100x20b c10x1k c200x16k"] [--proxy-threads N]
#                                   [--no-build] [--no-tls] [--instructions] [--syscalls]
#                                   [--uring] [--generator sockway|load_test]
#   --quick: 1 repetition of 4 s (the default is 3 repetitions of 6 s + 2 s warm-up).
#   --no-tls: plain fronts only.
#   --instructions: then also count each proxy's instructions per message under callgrind
#     (valgrind; 1 worker, 10 connections x 20 B, `--count` 2000 and 12000 echoes, the
#     difference divided by the difference in echoes; plain, and TLS unless --no-tls),
#     which the load on a shared machine does not change. `--reps 0 --instructions` runs
#     only that part.
#   --syscalls: then also count each proxy's system calls per message with `strace -c -f`
#     attached to it (1 worker, 10 connections, each selected case's payload, `--count`
#     20000 echoes; plain fronts), as a table of the calls made at least 0.05 times per echo
#     plus the total. strace slows the proxy down, which the counts per echo barely show.
#     `--reps 0 --syscalls` runs only that part.
#   --uring: adds the target gateway-uring: a second gateway, the same build with
#     `"relayIoUring": true` in its limits (plain TCP sessions relayed on io_uring, relay
#     change 6 in docs/benchmarks/gateway-1.md; the default since relay change 11, while the target
#     gateway always runs the epoll relay, `"relayIoUring": false`), run interleaved with
#     the others on the plain front, and with a TLS front as gateway-uring-tls (a client's
#     TLS session on the ring, relay change 15),
#     and counted by --syscalls too (callgrind cannot run it: valgrind 3.19 stalls the
#     process while the ring's thread waits in io_uring_enter).
#   --generator load_test: uWebSockets' C generator (1 thread; built by lib.sh's build_uws,
#     or taken from UWS_DIR) through benches/load_test.py instead of `sockway bench` (2
#     threads). It costs less per message, so more of the 2 CPUs is left to the proxies and
#     they, not the generator, set the pace. Plain fronts only (load_test has no TLS); no
#     latencies (load_test measures none); printouts every 4 s, so --warmup and --duration
#     are rounded to multiples of 4 s. load_test asks for `/`, which `sockway echo` does not
#     serve: the backend is then the bench peers' `sockway-echo` (2 threads; BACKEND_BIN, by
#     default $PEERS_BIN/sockway-echo, built when missing).
# Every run also reports the CPU seconds of the generator (with /usr/bin/time, when
# installed), the backend and the proxy over the whole run (warm-up included) and their
# shares of the machine's CPUs: throughput is bound by the CPU the three share, so a proxy
# cheaper by a factor gives more throughput only in proportion to its share of the total. The
# report turns them into CPU us per message of each (medians) and the CPUs kept busy, and per
# front and case the proxy CPU per message that 1.2x nginx's throughput would take (with the
# machine as busy as in nginx's runs, and with every CPU busy).
# GATEWAY_BIN=path runs another build of `sockway` as the gateway (an A/B of a relay change).
# Needs nginx (Debian's `nginx` package): installed with apt-get when missing (as root or
# through sudo), like scripts/install-peers.sh does for its peers.
#
# Everything stays on 127.0.0.1; every run is bounded in time and connection count.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

REPS=3
DURATION=6
WARMUP=2
BUILD=1
PROXY_THREADS=1
PROXY_TLS=1
GENERATOR_THREADS=2
INSTRUCTIONS=0
GENERATOR=sockway
URING=0
SYSCALLS=0
# name:connections:payload
ALL_CASES="c100x20b:100:20 c10x1k:10:1024 c200x16k:200:16384"
CASES=""
TARGETS="direct gateway nginx"

while (($#)); do
  case "$1" in
    --quick) REPS=1; DURATION=4; WARMUP=1 ;;
    --reps) REPS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --cases) CASES="$2"; shift ;;
    --proxy-threads) PROXY_THREADS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --instructions) INSTRUCTIONS=1 ;;
    --syscalls) SYSCALLS=1 ;;
    --no-tls) PROXY_TLS=0 ;;
    --generator) GENERATOR="$2"; shift ;;
    --uring) URING=1 ;;
    -h|--help) sed -n '2,56p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$GENERATOR" in
  sockway) GENERATOR_NAME="sockway bench, $GENERATOR_THREADS threads" ;;
  load_test) GENERATOR_NAME="uWebSockets load_test, 1 thread"; PROXY_TLS=0 ;;
  *) echo "unknown generator: $GENERATOR (sockway or load_test)" >&2; exit 2 ;;
esac

WORK="$OUT/gateway_compare"
RUNS="$WORK/runs"
# shellcheck source=benches/gateway_lib.sh
source "$(dirname "$0")/gateway_lib.sh"
((URING)) && TARGETS="direct gateway gateway-uring nginx"
((PROXY_TLS)) && TARGETS+=" gateway-tls nginx-tls"
((PROXY_TLS && URING)) && TARGETS+=" gateway-uring-tls"
URING_LIMITS="\"relayIoUring\": true${GATEWAY_LIMITS:+, $GATEWAY_LIMITS}"
# The target gateway is the epoll relay: io_uring is the default (the target gateway-uring),
# and callgrind (--instructions) cannot run a ring.
GATEWAY_LIMITS="\"relayIoUring\": false${GATEWAY_LIMITS:+, $GATEWAY_LIMITS}"

# Starts the io_uring gateway (under wrapper $1, if any); sets URING_PID and URING_PORT.
start_uring_gateway() {
  # A configuration file of its own: the gateway reloads it when it changes.
  local WORK="$WORK/uring"
  mkdir -p "$WORK"
  GATEWAY_LIMITS="$URING_LIMITS" start_gateway "${1:-}"
  URING_PID="$GATEWAY_PID" URING_PORT="$GATEWAY_PORT" URING_TLS_PORT="$GATEWAY_TLS_PORT"
  GATEWAY_PID=""
}

# Instructions per message of proxy $1 (gateway, nginx, gateway-tls or nginx-tls) under
# callgrind: two fixed runs of 10 connections x 20 B, the difference of instructions over
# the difference of echoes. Prints "PROXY INSTRUCTIONS_PER_MESSAGE" or nothing.
proxy_instructions() {
  local proxy="$1" count pid ir echoes results=()
  for count in 2000 12000; do
    local out="$WORK/callgrind/$proxy.$count"
    local wrapper="valgrind --tool=callgrind --callgrind-out-file=$out.callgrind"
    if [[ "$proxy" == gateway* ]]; then
      PROXY_THREADS=1 start_gateway "$wrapper"
      pid="$GATEWAY_PID"
    else
      PROXY_THREADS=1 start_nginx "$wrapper"
      pid="$NGINX_PID"
    fi
    target_url "$proxy"
    "$SOCKWAY" bench "$URL" "${URL_ARGS[@]}" --connections 10 --payload 20 --warmup 0 \
      --duration 300 --count "$count" --threads 1 --json "$out.json" >"$out.txt" 2>&1 || true
    stop_pid "$pid"
    GATEWAY_PID="" NGINX_PID=""
    ir="$(grep -E '^(summary|totals):' "$out.callgrind" | head -1 | awk '{print $2}')"
    echoes="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_echoes"])' "$out.json" 2>/dev/null || true)"
    [[ -n "$ir" && -n "$echoes" ]] || { echo "  $proxy: no callgrind result (see $out.*)" >&2; return 0; }
    results+=("$ir" "$echoes")
  done
  echo "$proxy $(( (results[2] - results[0]) / (results[3] - results[1]) ))"
}

# System calls per message of proxy $1 (gateway or nginx) for payload $2: `strace -c -f`
# attached while 10 connections echo 20000 messages. Prints "PROXY PAYLOAD calls/echo ...".
proxy_syscalls() {
  local proxy="$1" payload="$2" pid out="$WORK/strace/$1.$2" echoes
  if [[ "$proxy" == gateway-uring ]]; then
    PROXY_THREADS=1 start_uring_gateway
    pid="$URING_PID"
  elif [[ "$proxy" == gateway ]]; then
    PROXY_THREADS=1 start_gateway
    pid="$GATEWAY_PID"
  else
    PROXY_THREADS=1 start_nginx
    pid="$NGINX_WORKER"
  fi
  target_url "$proxy"
  strace -c -f -q -o "$out.strace" -p "$pid" &
  local tracer=$!
  sleep 1
  "$SOCKWAY" bench "$URL" --connections 10 --payload "$payload" --warmup 0 --duration 300 \
    --count 20000 --threads 1 --json "$out.json" >"$out.txt" 2>&1 || true
  kill -INT "$tracer" 2>/dev/null || true
  wait "$tracer" 2>/dev/null || true
  stop_pid "$GATEWAY_PID"
  stop_pid "$URING_PID"
  stop_pid "$NGINX_PID"
  GATEWAY_PID="" NGINX_PID="" URING_PID=""
  echoes="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_echoes"])' "$out.json" 2>/dev/null || true)"
  [[ -n "$echoes" && -s "$out.strace" ]] || { echo "  $proxy $payload B: no strace result (see $out.*)" >&2; return 0; }
  python3 - "$out.strace" "$echoes" "$proxy" "$payload" <<'PY'
import sys
path, echoes, proxy, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = {}
for line in open(path):
    parts = line.split()
    # "% time seconds usecs/call calls [errors] syscall"
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
        calls[parts[-1]] = int(parts[3])
total = sum(calls.values()) / echoes
shown = ", ".join(f"{name} {n / echoes:.2f}" for name, n in sorted(calls.items(), key=lambda c: -c[1]) if n / echoes >= 0.05)
print(f"{proxy} {payload} B: {total:.2f} calls per echo ({shown}; {echoes} echoes)")
PY
}

# CPU seconds (user + system) process $1 has used so far, or nothing once it is gone.
cpu_seconds() {
  [[ -n "$1" && -r "/proc/$1/stat" ]] || return 0
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# Runs the generator against target $1 (URL, URL_ARGS and PID_ARGS set by target_url):
# $2 connections of $3-byte messages, writing $4.json and $4.txt, and $4.share: the CPU
# seconds of generator, backend and proxy over the whole run, the run's wall seconds.
run_target() {
  local target="$1" conns="$2" payload="$3" base="$4" port proxy_pid backend_before
  local proxy_before started timer=()
  port="${URL#*://127.0.0.1:}"
  port="${port%%/*}"
  proxy_pid="${PID_ARGS[1]:-}"
  [[ "$target" == direct ]] && proxy_pid=""
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "%U %S" -o "$base.time")
  backend_before="$(cpu_seconds "$BACKEND_PID")"
  proxy_before="$(cpu_seconds "$proxy_pid")"
  started="$(date +%s.%N)"
  if [[ "$GENERATOR" == load_test ]]; then
    "${timer[@]}" python3 "$(dirname "$0")/load_test.py" --load-test "$UWS_DIR/load_test" \
      --port "$port" --connections "$conns" --payload "$payload" --warmup "$WARMUP" \
      --duration "$DURATION" --pids "${PID_ARGS[1]:-}" --label "$target" --json "$base.json" \
      >"$base.txt" 2>&1
  else
    "${timer[@]}" "$SOCKWAY" bench "$URL" "${URL_ARGS[@]}" --connections "$conns" \
      --payload "$payload" --duration "$DURATION" --warmup "$WARMUP" \
      --threads "$GENERATOR_THREADS" "${PID_ARGS[@]}" --label "$target" \
      --json "$base.json" >"$base.txt" 2>&1
  fi
  local status=$?
  python3 - "$started" "$(date +%s.%N)" "$base.time" "$backend_before" \
    "$(cpu_seconds "$BACKEND_PID")" "$proxy_before" "$(cpu_seconds "$proxy_pid")" >"$base.share" <<'PY'
import os
import sys
start, end, timing, b0, b1, p0, p1 = sys.argv[1:]
wall = float(end) - float(start)
try:
    generator = sum(float(x) for x in open(timing).read().split()[-2:])
except (OSError, ValueError):
    generator = None
backend = float(b1) - float(b0) if b0 and b1 else None
proxy = float(p1) - float(p0) if p0 and p1 else None
parts = [("generator", generator), ("backend", backend), ("proxy", proxy)]
cpus = os.cpu_count() or 1
shown = ", ".join(f"{name} {v:.2f} s ({v / wall / cpus:.0%})" for name, v in parts if v is not None)
print(f"CPU over {wall:.1f} s (share of {cpus} CPUs): {shown}")
PY
  return "$status"
}

trap 'stop_pid "$URING_PID"; stop_all' EXIT
raise_fd_limit
ensure_nginx
if [[ "$GENERATOR" == load_test ]]; then
  [[ -x "$UWS_DIR/load_test" ]] || build_uws
  BACKEND_BIN="${BACKEND_BIN:-$PEERS_BIN/sockway-echo}"
  if [[ ! -x "$BACKEND_BIN" ]]; then
    echo "building: the bench peers' sockway-echo (release)" >&2
    cargo build --release --quiet --manifest-path "$ROOT/benches/peers/Cargo.toml" \
      --target-dir "$PEERS_TARGET" --bin sockway-echo
  fi
fi
if ((BUILD)); then
  echo "building: sockway (release)" >&2
  (cd "$ROOT" && cargo build --release --quiet -p sockway-cli)
fi
rm -rf "$RUNS"
mkdir -p "$RUNS"

started=$(date +%s)
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
start_backend
URING_PID=""
((URING)) && start_uring_gateway
start_gateway
start_nginx
versions="$(proxy_versions)"
echo "machine: $(machine_line); load average before: $load_start"
fronts="plain"
((PROXY_TLS)) && fronts="plain :$GATEWAY_PORT / :$NGINX_PORT, TLS :$GATEWAY_TLS_PORT / :$NGINX_TLS_PORT"
echo "targets: direct 127.0.0.1:$BACKEND_PORT, gateway :$GATEWAY_PORT (pid $GATEWAY_PID), nginx :$NGINX_PORT (worker pid $NGINX_WORKER); fronts: $fronts; $versions"
echo "plan: $REPS repetition(s), ${WARMUP} s warm-up + ${DURATION} s measured per run; proxy workers: $PROXY_THREADS; generator: $GENERATOR_NAME; gateway limits: {${GATEWAY_LIMITS}}"
for rep in $(seq 1 "$REPS"); do
  for spec in $(selected_cases); do
    IFS=: read -r case conns payload <<<"$spec"
    for target in $(rotated "$rep" $TARGETS); do
      target_url "$target"
      base="$RUNS/$case.$target.$rep"
      if ! run_target "$target" "$conns" "$payload" "$base"; then
        echo "  (run failed; see $base.txt)" >&2
      fi
      printf 'rep %s %-9s %-11s %s\n' "$rep" "$case" "$target" \
        "$(grep -E 'throughput|server cost|Msg/sec|msg/s' "$base.txt" | sed -E 's/^ +//' | tr '\n' ' ' | cut -c1-140)"
      printf '    %s\n' "$(cat "$base.share")"
    done
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_pid "$URING_PID"
URING_PID=""
stop_pid "$GATEWAY_PID"
stop_pid "$NGINX_PID"
GATEWAY_PID="" NGINX_PID=""

instructions=""
if ((INSTRUCTIONS)); then
  if command -v valgrind >/dev/null; then
    rm -rf "$WORK/callgrind"
    mkdir -p "$WORK/callgrind"
    echo "instructions per message (callgrind, 1 worker, 10 connections x 20 B):"
    proxies="gateway nginx"
    ((PROXY_TLS)) && proxies+=" gateway-tls nginx-tls"
    for proxy in $proxies; do
      line="$(proxy_instructions "$proxy")"
      [[ -n "$line" ]] && echo "  $line" && instructions+="$line,"
    done
  else
    echo "instructions per message: valgrind is not installed (apt-get install -y valgrind); skipped" >&2
  fi
fi
if ((SYSCALLS)); then
  if command -v strace >/dev/null; then
    rm -rf "$WORK/strace"
    mkdir -p "$WORK/strace"
    echo "system calls per message (strace -c -f, 1 worker, 10 connections):"
    for spec in $(selected_cases); do
      IFS=: read -r _ _ payload <<<"$spec"
      for proxy in gateway $( ((URING)) && echo gateway-uring) nginx; do
        echo "  $(proxy_syscalls "$proxy" "$payload")"
      done
    done
  else
    echo "system calls per message: strace is not installed (apt-get install -y strace); skipped" >&2
  fi
fi
stop_all

python3 "$(dirname "$0")/gateway_report.py" --runs "$RUNS" --out "$OUT/gateway_compare.json" \
  --machine "$(machine_line)" --versions "$versions" --proxy-threads "$PROXY_THREADS" \
  --instructions "$instructions" \
  --plan "$REPS x (${WARMUP} s warm-up + ${DURATION} s), generator $GENERATOR_NAME" \
  --load "before $load_start, after $load_end"
echo "total time: $(( $(date +%s) - started )) s"
