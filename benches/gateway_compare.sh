#!/usr/bin/env bash
# The gateway's cost: the same echo reached directly, through `sockway gateway`, and through
# Debian's nginx configured for WebSocket proxying, in one run, under one generator
# (`sockway bench`).
#
# One `sockway echo` backend serves every run. The gateway (an Http listener, one pool with
# the echo, requestTimeout 3600 s, relayBufferBytes 16384) and nginx (proxy_http_version 1.1,
# Upgrade/Connection headers, proxy_buffering off, proxy_buffer_size 16k, proxy_buffers
# 4 16k, read/send timeouts 3600 s) run side by side with the same number of workers
# (--proxy-threads: the gateway's tokio worker threads = nginx's worker_processes; default
# 1). Access logs are off for both (the gateway runs with RUST_LOG=warn plus its probe's
# health lines; nginx has access_log off). For every repetition and case the three targets
# run back to back (interleaved); each run connects, warms up (discarded), measures. The
# generator reads the proxy's CPU time from /proc around the measured window (the gateway's
# process, or the one nginx worker; with more than one nginx worker, nginx's CPU is not
# reported).
# Prints messages/s, the ratio to direct, p50/p99 round trips and what the proxy adds to
# them, proxy CPU us per message, and gateway/nginx ratios; writes
# target/bench/gateway_compare.json.
#
# Usage: benches/gateway_compare.sh [--quick] [--reps R] [--duration S] [--warmup S]
#                                   [--cases "c100x20b c10x1k c200x16k"] [--proxy-threads N]
#                                   [--no-build] [--instructions]
#   --quick: 1 repetition of 4 s (the default is 3 repetitions of 6 s + 2 s warm-up).
#   --instructions: then also count each proxy's instructions per message under callgrind
#     (valgrind; 1 worker, 10 connections x 20 B, `--count` 2000 and 12000 echoes, the
#     difference divided by the difference in echoes), which the load on a shared machine
#     does not change.
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
GENERATOR_THREADS=2
INSTRUCTIONS=0
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
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

WORK="$OUT/gateway_compare"
RUNS="$WORK/runs"
NGINX_DIR="$WORK/nginx"
BACKEND_PID=""
GATEWAY_PID=""
NGINX_PID=""

# Installs Debian's nginx with apt-get when it is not there (its service is not started:
# the script runs its own instance).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 && return 0
  [[ -x /usr/sbin/nginx ]] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "gateway_compare: nginx is missing and apt-get is not available; install nginx by hand" >&2
    return 1
  fi
  local sudo=()
  [[ "$(id -u)" != 0 ]] && sudo=(sudo)
  echo "installing nginx (apt-get)" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
}

nginx_bin() {
  command -v nginx 2>/dev/null || echo /usr/sbin/nginx
}

# A loopback port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_all() {
  stop_pid "$NGINX_PID"
  stop_pid "$GATEWAY_PID"
  stop_pid "$BACKEND_PID"
  NGINX_PID="" GATEWAY_PID="" BACKEND_PID=""
}

start_backend() {
  local log="$WORK/backend.log"
  : >"$log"
  RUST_LOG=warn,sockway::echo=info "$SOCKWAY" echo --listen 127.0.0.1:0 >"$log" 2>&1 &
  BACKEND_PID=$!
  wait_for_line "$log" "echo server listening" "$BACKEND_PID"
  BACKEND_PORT="$(grep -m1 "echo server listening" "$log" | sed -E 's|.*page=http://127\.0\.0\.1:([0-9]+)/.*|\1|')"
}

# Starts the gateway (under the wrapper command in $1, if any, e.g. valgrind); sets
# GATEWAY_PID and GATEWAY_PORT once its backend is healthy.
start_gateway() {
  local wrapper="${1:-}" log="$WORK/gateway.log" config="$WORK/gateway.json"
  GATEWAY_PORT="$(free_port)"
  cat >"$config" <<EOF
{
  "httpListeners": [{"name": "web", "protocol": "Http", "port": $GATEWAY_PORT, "bindAddress": "127.0.0.1"}],
  "backendAddressPools": [{"name": "echo", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": $BACKEND_PORT}]}],
  "backendHttpSettingsCollection": [{"name": "plain", "port": $BACKEND_PORT, "protocol": "Http",
    "requestTimeout": 3600, "probe": "page"}],
  "probes": [{"name": "page", "path": "/", "interval": 10, "timeout": 5}],
  "requestRoutingRules": [{"name": "all", "ruleType": "Basic", "httpListener": "web",
    "backendAddressPool": "echo", "backendHttpSettings": "plain"}],
  "limits": {"relayBufferBytes": 16384}
}
EOF
  : >"$log"
  # shellcheck disable=SC2086 # the wrapper is a word list on purpose
  TOKIO_WORKER_THREADS="$PROXY_THREADS" RUST_LOG=warn,sockway_gateway::probe=info \
    $wrapper "$SOCKWAY" gateway --config "$config" >"$log" 2>&1 &
  GATEWAY_PID=$!
  wait_for_line "$log" "backend is healthy" "$GATEWAY_PID"
}

# Starts nginx (under the wrapper command in $1, if any: then as one process, without a
# master); sets NGINX_PID, NGINX_WORKER (the process that relays) and NGINX_PORT.
start_nginx() {
  local wrapper="${1:-}" conf="$NGINX_DIR/nginx.conf" log="$NGINX_DIR/error.log" master=on
  [[ -n "$wrapper" ]] && master=off
  NGINX_PORT="$(free_port)"
  rm -rf "$NGINX_DIR"
  mkdir -p "$NGINX_DIR/temp"
  # Root-started workers run as nobody: let them use the temp directory.
  chmod 777 "$NGINX_DIR/temp"
  cat >"$conf" <<EOF
daemon off;
master_process $master;
worker_processes $PROXY_THREADS;
pid $NGINX_DIR/nginx.pid;
error_log $log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $NGINX_DIR/temp/body;
    proxy_temp_path $NGINX_DIR/temp/proxy;
    fastcgi_temp_path $NGINX_DIR/temp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/temp/uwsgi;
    scgi_temp_path $NGINX_DIR/temp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://127.0.0.1:$BACKEND_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
            proxy_buffer_size 16k;
            proxy_buffers 4 16k;
        }
    }
}
EOF
  : >"$log"
  # shellcheck disable=SC2086 # the wrapper is a word list on purpose
  $wrapper "$(nginx_bin)" -p "$NGINX_DIR" -c "$conf" -e "$log" >"$WORK/nginx.out" 2>&1 &
  NGINX_PID=$!
  # Ready once it accepts connections and the process that relays is known (the master's
  # one worker; under a wrapper, nginx itself).
  local waited=0
  NGINX_WORKER=""
  until [[ -n "$NGINX_WORKER" ]] &&
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $NGINX_PORT), 1).close()" 2>/dev/null; do
    if ! kill -0 "$NGINX_PID" 2>/dev/null || ((waited > 600)); then
      echo "nginx did not start:" >&2
      cat "$log" "$WORK/nginx.out" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
    if [[ -n "$wrapper" ]]; then
      NGINX_WORKER="$NGINX_PID"
    else
      NGINX_WORKER="$(ps -o pid= --ppid "$NGINX_PID" | head -1 | tr -d ' ')"
    fi
  done
}

# Instructions per message of proxy $1 (gateway or nginx) under callgrind: two fixed runs of
# 10 connections x 20 B, the difference of instructions over the difference of echoes.
# Prints "PROXY INSTRUCTIONS_PER_MESSAGE" or nothing.
proxy_instructions() {
  local proxy="$1" count port pid ir echoes results=()
  for count in 2000 12000; do
    local out="$WORK/callgrind/$proxy.$count"
    local wrapper="valgrind --tool=callgrind --callgrind-out-file=$out.callgrind"
    if [[ "$proxy" == gateway ]]; then
      PROXY_THREADS=1 start_gateway "$wrapper"
      port="$GATEWAY_PORT" pid="$GATEWAY_PID"
    else
      PROXY_THREADS=1 start_nginx "$wrapper"
      port="$NGINX_PORT" pid="$NGINX_PID"
    fi
    "$SOCKWAY" bench "ws://127.0.0.1:$port/ws" --connections 10 --payload 20 --warmup 0 \
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

trap 'stop_all' EXIT
raise_fd_limit
ensure_nginx
if ((BUILD)); then
  echo "building: sockway (release)" >&2
  (cd "$ROOT" && cargo build --release --quiet -p sockway-cli)
fi
rm -rf "$RUNS"
mkdir -p "$RUNS"

started=$(date +%s)
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
start_backend
start_gateway
start_nginx
versions="$("$SOCKWAY" --version), $("$(nginx_bin)" -v 2>&1 | sed 's|nginx version: ||')"
echo "machine: $(machine_line); load average before: $load_start"
echo "targets: direct 127.0.0.1:$BACKEND_PORT, gateway :$GATEWAY_PORT (pid $GATEWAY_PID), nginx :$NGINX_PORT (worker pid $NGINX_WORKER); $versions"
echo "plan: $REPS repetition(s), ${WARMUP} s warm-up + ${DURATION} s measured per run; proxy workers: $PROXY_THREADS; generator: sockway bench, $GENERATOR_THREADS threads"
for rep in $(seq 1 "$REPS"); do
  for spec in $(selected_cases); do
    IFS=: read -r case conns payload <<<"$spec"
    for target in $TARGETS; do
      case "$target" in
        direct) port="$BACKEND_PORT"; pid_args=(--server-pid "$BACKEND_PID") ;;
        gateway) port="$GATEWAY_PORT"; pid_args=(--server-pid "$GATEWAY_PID") ;;
        nginx)
          port="$NGINX_PORT"
          pid_args=()
          ((PROXY_THREADS == 1)) && pid_args=(--server-pid "$NGINX_WORKER")
          ;;
      esac
      base="$RUNS/$case.$target.$rep"
      if ! "$SOCKWAY" bench "ws://127.0.0.1:$port/ws" --connections "$conns" \
        --payload "$payload" --duration "$DURATION" --warmup "$WARMUP" \
        --threads "$GENERATOR_THREADS" "${pid_args[@]}" --label "$target" \
        --json "$base.json" >"$base.txt" 2>&1; then
        echo "  (run failed; see $base.txt)" >&2
      fi
      printf 'rep %s %-9s %-8s %s\n' "$rep" "$case" "$target" \
        "$(grep -E 'throughput|server cost' "$base.txt" | sed -E 's/^ +//' | tr '\n' ' ' | cut -c1-140)"
    done
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_pid "$GATEWAY_PID"
stop_pid "$NGINX_PID"
GATEWAY_PID="" NGINX_PID=""

instructions=""
if ((INSTRUCTIONS)); then
  if command -v valgrind >/dev/null; then
    rm -rf "$WORK/callgrind"
    mkdir -p "$WORK/callgrind"
    echo "instructions per message (callgrind, 1 worker, 10 connections x 20 B):"
    for proxy in gateway nginx; do
      line="$(proxy_instructions "$proxy")"
      [[ -n "$line" ]] && echo "  $line" && instructions+="$line,"
    done
  else
    echo "instructions per message: valgrind is not installed (apt-get install -y valgrind); skipped" >&2
  fi
fi
stop_all

python3 "$(dirname "$0")/gateway_report.py" --runs "$RUNS" --out "$OUT/gateway_compare.json" \
  --machine "$(machine_line)" --versions "$versions" --proxy-threads "$PROXY_THREADS" \
  --instructions "$instructions" \
  --plan "$REPS x (${WARMUP} s warm-up + ${DURATION} s), generator sockway bench with $GENERATOR_THREADS threads" \
  --load "before $load_start, after $load_end"
echo "total time: $(( $(date +%s) - started )) s"
