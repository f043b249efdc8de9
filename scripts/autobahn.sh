#!/usr/bin/env bash
# Run the Autobahn WebSocket conformance cases (1.* - 10.*, and the 12.*/13.*
# permessage-deflate cases) against sockway in both roles, using kosoku
# (a native re-implementation of the Autobahn TestSuite runner) from the peers
# venv:
#
#   server role: kosoku -m fuzzingclient drives `sockway echo`;
#                reports in target/autobahn/server
#   event-loop role: the same against `sockway echo --event-loop
#                --compression` (the callback server of sockway::event_loop),
#                every case; reports in target/autobahn/event-loop
#   event-loop-tls role: the same over TLS (`--tls-self-signed`), kosoku
#                reaching it through scripts/tls_relay.py (kosoku speaks only
#                ws://); reports in target/autobahn/event-loop-tls
#   gateway role: kosoku drives `sockway echo --compression --whole-messages`
#                through `sockway gateway` (an Http listener, one pool with the
#                echo, the relay on its default, io_uring where the kernel has
#                it): the relay must carry every case's bytes and closes
#                unchanged; reports in target/autobahn/gateway. The echo answers
#                whole messages: kosoku does costly work for every frame it
#                receives, and a frame-by-frame echo of the compression cases'
#                256-octet fragments (a server role's job) tripled this role's
#                time without testing more of the relay
#   gateway-tls role: the same through the gateway's Https listener (a
#                throwaway certificate made by openssl), kosoku reaching it
#                through scripts/tls_relay.py (TLS 1.3 without ALPN: relayed on
#                io_uring as records where the kernel has it); reports in
#                target/autobahn/gateway-tls
#   client role: kosoku -m fuzzingserver is driven by the autobahn_client
#                example, AUTOBAHN_PARALLELISM cases at once; reports in
#                target/autobahn/client
#
# Then scripts/autobahn_summary.py judges both reports (strict: only OK and
# INFORMATIONAL pass) and this script exits non-zero on any failure.
#
# Builds nothing: expects scripts/install-peers.sh to have run and these to exist
# (scripts/test-all.sh builds them):
#   target/release/sockway                   cargo build --release -p sockway-cli
#   target/release/examples/autobahn_client  cargo build --release -p sockway --example autobahn_client
#
# Environment (all optional):
#   AUTOBAHN_CASES        cases to run instead of all, e.g. "1.* 5.1 9.7.*"
#                         (space or comma separated; each is passed as -i)
#   AUTOBAHN_ROLES        "server event-loop event-loop-tls gateway gateway-tls client"
#                         (default), or some of them
#   AUTOBAHN_PARALLELISM  concurrent cases in each role (default 4)
#   AUTOBAHN_TIMEOUT      seconds allowed per role (default 900)
#   SOCKWAY_BIN           server binary (default target/release/sockway)
#   AUTOBAHN_CLIENT_BIN   client binary (default target/release/examples/autobahn_client)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/target/peers/venv"
KOSOKU="$VENV/bin/kosoku"
OUT="$ROOT/target/autobahn"
SOCKWAY_BIN="${SOCKWAY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sockway}"
AUTOBAHN_CLIENT_BIN="${AUTOBAHN_CLIENT_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/autobahn_client}"
ROLES="${AUTOBAHN_ROLES:-server event-loop event-loop-tls gateway gateway-tls client}"
PARALLELISM="${AUTOBAHN_PARALLELISM:-4}"
ROLE_TIMEOUT="${AUTOBAHN_TIMEOUT:-900}"
STARTUP_TIMEOUT=30

# Background processes (each wrapped in `timeout`) still running on exit,
# whatever the reason, are stopped; `timeout` passes the TERM on to its child
# and SIGKILLs it 5 s later if needed. `jobs -p` lists only jobs not yet reaped.
cleanup() {
  local pids
  pids="$(jobs -p)"
  [[ -n "$pids" ]] || return 0
  # shellcheck disable=SC2086 # one PID per word
  kill -TERM $pids 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "autobahn: $*" >&2; }
die() { log "$*"; exit 1; }

# kosoku's case selection: every case (sections 11 and 14+ do not exist);
# AUTOBAHN_CASES narrows the run for quick local checks, and
# AUTOBAHN_NO_COMPRESSION=1 leaves out the 12.*/13.* permessage-deflate cases.
case_args() {
  local c list="${AUTOBAHN_CASES:-}" selected=()
  # read -a splits without glob-expanding patterns like 9.* against files.
  read -ra selected <<<"${list//,/ }"
  for c in "${selected[@]}"; do printf -- '-i\n%s\n' "$c"; done
  if [[ -n "${AUTOBAHN_NO_COMPRESSION:-}" ]]; then
    printf -- '-x\n12.*\n-x\n13.*\n'
  fi
}

# An unused loopback port (tiny race between close and reuse; fine on CI).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until 127.0.0.1:$1 accepts TCP connections, failing early if process
# $2 died (e.g. a bad flag) and giving up after STARTUP_TIMEOUT seconds.
wait_for_port() {
  local port="$1" pid="$2" deadline=$((SECONDS + STARTUP_TIMEOUT))
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Wait up to $2 seconds for process $1 to exit.
wait_for_exit() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Print the port kosoku fuzzingserver bound, read from its startup line
# "fuzzingserver listening on ws://127.0.0.1:PORT" in log file $1; fail if
# process $2 dies or STARTUP_TIMEOUT passes first.
kosoku_port() {
  local logfile="$1" pid="$2" port deadline=$((SECONDS + STARTUP_TIMEOUT))
  while true; do
    port="$(sed -n 's|^fuzzingserver listening on ws://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$logfile" || true)"
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.1
  done
}

show_log() {
  log "---- last lines of $1 ----"
  tail -n 30 "$1" >&2 || true
}

# kosoku exits 0 (all passed) or 1 (some case failed: the summary reports
# which); anything else (timeout, crash) means the run itself went wrong.
check_kosoku_status() {
  local status="$1" what="$2" logfile="$3"
  if ((status != 0 && status != 1)); then
    show_log "$logfile"
    die "$what: kosoku exited with status $status (124 = timed out after ${ROLE_TIMEOUT}s)"
  fi
}

# Starts `sockway echo` with flags "$@" on a free port, logging to $1/sockway.log; sets
# ECHO_PORT and ECHO_PID once it listens.
start_echo() {
  local dir="$1"
  shift
  [[ -x "$SOCKWAY_BIN" ]] || die "missing $SOCKWAY_BIN (cargo build --release -p sockway-cli)"
  ECHO_PORT="$(free_port)"
  timeout -k 5 "$ROLE_TIMEOUT" "$SOCKWAY_BIN" echo --listen "127.0.0.1:$ECHO_PORT" \
    --max-message-size 16777216 "$@" >"$dir/sockway.log" 2>&1 &
  ECHO_PID=$!
  wait_for_port "$ECHO_PORT" "$ECHO_PID" ||
    { show_log "$dir/sockway.log"; die "sockway echo did not start listening on $ECHO_PORT"; }
}

# Dies, showing log file $2, unless process $1 (named $3) is still running: a crash would
# otherwise only show up as a pile of failed cases.
check_alive() {
  kill -0 "$1" 2>/dev/null || { show_log "$2"; die "$3 exited during the run"; }
}

# Stops the processes "$@" (empty words are skipped) and waits for them.
stop_all() {
  local pids=() pid
  for pid in "$@"; do [[ -n "$pid" ]] && pids+=("$pid"); done
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}

# Runs kosoku's fuzzing client for role $1 against ws://127.0.0.1:$3/ws, reports in $2.
run_fuzzingclient() {
  local role="$1" dir="$2" port="$3" status=0 cases
  log "$role role: kosoku fuzzingclient -> ws://127.0.0.1:$port/ws (-p $PARALLELISM)"
  mapfile -t cases < <(case_args)
  timeout -k 5 "$ROLE_TIMEOUT" "$KOSOKU" -m fuzzingclient "ws://127.0.0.1:$port/ws" \
    "${cases[@]}" -p "$PARALLELISM" -o "$dir" >"$dir/kosoku.log" 2>&1 || status=$?
  check_kosoku_status "$status" "$role role" "$dir/kosoku.log"
}

# Starts scripts/tls_relay.py from a free plain port to the TLS port $2, logging to
# $1/relay.log; sets RELAY_PORT and RELAY_PID once it listens.
start_tls_relay() {
  local dir="$1" target="$2"
  RELAY_PORT="$(free_port)"
  timeout -k 5 "$ROLE_TIMEOUT" python3 "$ROOT/scripts/tls_relay.py" "$RELAY_PORT" "$target" \
    >"$dir/relay.log" 2>&1 &
  RELAY_PID=$!
  wait_for_port "$RELAY_PORT" "$RELAY_PID" ||
    { show_log "$dir/relay.log"; die "the TLS relay did not start listening on $RELAY_PORT"; }
}

# Server roles: kosoku connects to ws://127.0.0.1:PORT/ws once per case. $1 is the
# role: "server" (the async runner), "event-loop", or "event-loop-tls" (the event
# loop over TLS, kosoku's plain connections carried to it by scripts/tls_relay.py);
# compression on for all.
run_server_role() {
  local role="$1" dir="$OUT/$1" port server_pid flags=(--compression)
  local relay_pid=""
  if [[ "$role" == event-loop* ]]; then flags+=(--event-loop); fi
  if [[ "$role" == event-loop-tls ]]; then flags+=(--tls-self-signed); fi
  rm -rf "$dir" && mkdir -p "$dir"
  start_echo "$dir" "${flags[@]}"
  server_pid="$ECHO_PID"
  port="$ECHO_PORT"
  if [[ "$role" == event-loop-tls ]]; then
    start_tls_relay "$dir" "$ECHO_PORT"
    port="$RELAY_PORT"
    relay_pid="$RELAY_PID"
  fi

  run_fuzzingclient "$role" "$dir" "$port"
  check_alive "$server_pid" "$dir/sockway.log" "sockway echo"
  stop_all "$server_pid" "$relay_pid"
}

# Wait until log file $1 has a line matching $2, failing early if process $3 died or
# STARTUP_TIMEOUT passes.
wait_for_line() {
  local logfile="$1" pattern="$2" pid="$3" deadline=$((SECONDS + STARTUP_TIMEOUT))
  until grep -q "$pattern" "$logfile" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Gateway roles: kosoku connects to ws://127.0.0.1:PORT/ws on `sockway gateway`, which relays
# each case to `sockway echo --compression --whole-messages` (the async server); $1 is
# "gateway" (an Http listener) or "gateway-tls" (an Https listener, kosoku's plain
# connections carried to it by scripts/tls_relay.py). The request timeout, the gateway's idle limit for WebSocket
# sessions, is 60 s, so its own keep-alive pings (after 30 s of quiet) stay out of the
# cases' frame sequences.
run_gateway_role() {
  local role="$1" dir="$OUT/$1" port echo_pid gateway_pid listener relay_pid=""
  rm -rf "$dir" && mkdir -p "$dir"
  start_echo "$dir" --compression --whole-messages
  echo_pid="$ECHO_PID"
  port="$(free_port)"
  listener="\"protocol\": \"Http\""
  if [[ "$role" == gateway-tls ]]; then
    command -v openssl >/dev/null || die "missing openssl (run scripts/install-peers.sh)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl.log" ||
      { show_log "$dir/openssl.log"; die "openssl could not make the gateway's certificate"; }
    listener="\"protocol\": \"Https\", \"certificateFile\": \"$dir/cert.pem\", \"keyFile\": \"$dir/key.pem\""
  fi
  cat >"$dir/gateway.json" <<CONFIG
{
  "httpListeners": [{"name": "web", $listener, "port": $port, "bindAddress": "127.0.0.1"}],
  "backendAddressPools": [{"name": "echo",
    "backendAddresses": [{"ipAddress": "127.0.0.1", "port": $ECHO_PORT}]}],
  "backendHttpSettingsCollection": [{"name": "plain", "port": $ECHO_PORT, "protocol": "Http",
    "requestTimeout": 60, "probe": "page"}],
  "probes": [{"name": "page", "path": "/", "interval": 10, "timeout": 5}],
  "requestRoutingRules": [{"name": "all", "ruleType": "Basic", "httpListener": "web",
    "backendAddressPool": "echo", "backendHttpSettings": "plain"}]
}
CONFIG
  RUST_LOG=warn,sockway_gateway::probe=info timeout -k 5 "$ROLE_TIMEOUT" "$SOCKWAY_BIN" \
    gateway --config "$dir/gateway.json" >"$dir/gateway.log" 2>&1 &
  gateway_pid=$!
  wait_for_line "$dir/gateway.log" "backend is healthy" "$gateway_pid" ||
    { show_log "$dir/gateway.log"; die "sockway gateway did not find its backend healthy"; }
  if [[ "$role" == gateway-tls ]]; then
    start_tls_relay "$dir" "$port"
    port="$RELAY_PORT"
    relay_pid="$RELAY_PID"
  fi

  run_fuzzingclient "$role" "$dir" "$port"
  check_alive "$gateway_pid" "$dir/gateway.log" "sockway gateway"
  check_alive "$echo_pid" "$dir/sockway.log" "sockway echo"
  stop_all "$gateway_pid" "$echo_pid" "$relay_pid"
}

# Client role: kosoku listens; the client fetches /getCaseCount, runs
# /runCase?case=N&agent=sockway for each case, then /updateReports?agent=sockway,
# after which kosoku writes its reports and exits by itself.
run_client_role() {
  local dir="$OUT/client" port kosoku_pid status=0 client_status=0 cases
  [[ -x "$AUTOBAHN_CLIENT_BIN" ]] || die "missing $AUTOBAHN_CLIENT_BIN (cargo build --release -p sockway --example autobahn_client)"
  rm -rf "$dir" && mkdir -p "$dir"
  mapfile -t cases < <(case_args)
  : >"$dir/kosoku.log" # exists before the background job opens it
  # Port 0: kosoku binds a free port and prints it, so there is no race.
  timeout -k 5 "$ROLE_TIMEOUT" "$KOSOKU" -m fuzzingserver 127.0.0.1:0 \
    "${cases[@]}" -o "$dir" >"$dir/kosoku.log" 2>&1 &
  kosoku_pid=$!
  port="$(kosoku_port "$dir/kosoku.log" "$kosoku_pid")" ||
    { show_log "$dir/kosoku.log"; die "kosoku fuzzingserver did not start"; }

  log "client role: autobahn_client -> kosoku fuzzingserver ws://127.0.0.1:$port (-p $PARALLELISM)"
  timeout -k 5 "$ROLE_TIMEOUT" "$AUTOBAHN_CLIENT_BIN" "ws://127.0.0.1:$port" sockway \
    "$PARALLELISM" >"$dir/client.log" 2>&1 || client_status=$?
  if ((client_status != 0)); then
    show_log "$dir/client.log"
    die "autobahn_client exited with status $client_status"
  fi

  # /updateReports ends the run: kosoku should now write reports and exit.
  # A bounded wait guards against a client that never sent it.
  wait_for_exit "$kosoku_pid" 60 ||
    { show_log "$dir/kosoku.log"; die "kosoku fuzzingserver did not finish (did the client call /updateReports?)"; }
  wait "$kosoku_pid" || status=$?
  check_kosoku_status "$status" "client role" "$dir/kosoku.log"
}

main() {
  [[ -x "$KOSOKU" ]] || die "missing $KOSOKU (run scripts/install-peers.sh)"
  local role dirs=() start
  for role in $ROLES; do
    start=$SECONDS
    case "$role" in
      server | event-loop | event-loop-tls) run_server_role "$role" ;;
      gateway | gateway-tls) run_gateway_role "$role" ;;
      client) run_client_role ;;
      *) die "unknown role '$role' in AUTOBAHN_ROLES" ;;
    esac
    log "$role role finished in $((SECONDS - start))s"
    dirs+=("$OUT/$role")
  done
  "$VENV/bin/python" "$ROOT/scripts/autobahn_summary.py" "${dirs[@]}"
}

main "$@"
