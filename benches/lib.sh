# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts
# Shared by the scripts of benches/: building the servers, starting one
# on a free loopback port, stopping it. Source it; it defines functions and variables only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/bench"
# Where the echo servers are built; override to compare an experimental build. PEERS_FEATURES
# (e.g. "mimalloc") builds them with features of benches/peers/Cargo.toml; give such a build
# a PEERS_TARGET of its own.
PEERS_TARGET="${PEERS_TARGET:-$OUT/peers}"
PEERS_BIN="$PEERS_TARGET/release"
NODE_DIR="$ROOT/benches/peers/node"
SOCKWAY="$ROOT/target/release/sockway"
ALL_SERVERS="sockway sockway-loop tungstenite fastwebsockets tokio-websockets node"
# The servers whose library has permessage-deflate (the compressed cases run only these).
DEFLATE_SERVERS="sockway node sockway-baseline"
# The servers that can serve TLS (the TLS cases run only these; sockway-loop has none).
TLS_SERVERS="sockway tungstenite fastwebsockets tokio-websockets node sockway-baseline"
# Extra arguments for the next start_server (e.g. --compression); empty by default.
SERVER_FLAGS=""

# Builds the generator (sockway bench) and every echo server, release mode; installs the Node
# peer's pinned `ws` from its lockfile when it is missing or the lockfile changed.
build_all() {
  echo "building: sockway (generator), echo servers (benches/peers), node ws" >&2
  (cd "$ROOT" && cargo build --release --quiet -p sockway-cli)
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --target-dir "$PEERS_TARGET" \
    ${PEERS_FEATURES:+--features "$PEERS_FEATURES"})
  local stamp="$OUT/node.stamp" hash
  hash="$( (node --version; cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json") | sha256sum | cut -d' ' -f1)"
  if [[ ! -d "$NODE_DIR/node_modules/ws" || ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    mkdir -p "$OUT"
    echo "$hash" >"$stamp"
  fi
}

# The command line of server $1 with $2 worker threads, listening on a free port.
server_command() {
  case "$1" in
    sockway) echo "$PEERS_BIN/sockway-echo 0 $2" ;;
    # sockway's event-loop server (sockway::event_loop): callbacks, no task per connection.
    sockway-loop) echo "$PEERS_BIN/sockway-loop-echo 0 $2" ;;
    # An experiment, not in ALL_SERVERS: sockway-proto driven by io_uring (uring-echo.rs).
    uring) echo "$PEERS_BIN/uring-echo 0 $2" ;;
    tungstenite) echo "$PEERS_BIN/tungstenite-echo 0 $2" ;;
    fastwebsockets) echo "$PEERS_BIN/fastwebsockets-echo 0 $2" ;;
    tokio-websockets) echo "$PEERS_BIN/tokio-websockets-echo 0 $2" ;;
    node) echo "node $NODE_DIR/echo.js 0" ;;
    # Not a WebSocket server: a task and a socket per connection and nothing else, the floor
    # of idle memory for any task-per-connection tokio server (idle_memory.sh --fresh only).
    tokio-floor) echo "$PEERS_BIN/tokio-floor 0 $2" ;;
    # sockway's echo server built from another tree (BASELINE_BIN=that build's release
    # directory), to measure a change A/B under the same interleaving.
    sockway-baseline) echo "${BASELINE_BIN:?set BASELINE_BIN for sockway-baseline}/sockway-echo 0 $2" ;;
    *) echo "unknown server: $1" >&2; return 1 ;;
  esac
}

# Starts server $1 with $2 worker threads (optionally under the wrapper command in $3, e.g.
# valgrind); sets SERVER_PID, SERVER_PORT and SERVER_LINE (its startup line).
start_server() {
  local name="$1" threads="$2" wrapper="${3:-}" log
  log="$OUT/logs/$name.log"
  mkdir -p "$OUT/logs"
  # Emptied here, before the server starts, so that the wait below never reads the last run's
  # startup line.
  : >"$log"
  # shellcheck disable=SC2046,SC2086 # the command is a word list on purpose
  $wrapper $(server_command "$name" "$threads") $SERVER_FLAGS >>"$log" 2>&1 &
  SERVER_PID=$!
  if ! wait_for_line "$log" "listening on" "$SERVER_PID"; then
    echo "server $name did not start" >&2
    stop_server
    return 1
  fi
  SERVER_LINE="$(grep -m1 "listening on" "$log")"
  SERVER_PORT="$(echo "$SERVER_LINE" | sed -E 's/.*listening on [^ ]*:([0-9]+).*/\1/')"
}

# Stops the server started last (SIGTERM, then SIGKILL after 10 s) and waits for it.
stop_server() {
  stop_pid "${SERVER_PID:-}"
  SERVER_PID=""
}

# Waits up to 60 s for a line matching $2 in file $1 while process $3 lives; on failure says
# why (with the log when the process died) and returns 1.
wait_for_line() {
  local file="$1" pattern="$2" pid="$3" waited=0
  until grep -q "$pattern" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited; its log ($file):" >&2
      cat "$file" >&2
      return 1
    fi
    sleep 0.05
    waited=$((waited + 1))
    if ((waited > 1200)); then
      echo "no \"$pattern\" in $file within 60 s" >&2
      return 1
    fi
  done
}

# Stops process $1 if set (SIGTERM, then SIGKILL after 10 s) and waits for it.
stop_pid() {
  local pid="$1" waited=0
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < 200)); do
    sleep 0.05
    waited=$((waited + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The "name:..." specs of $ALL_CASES whose names are in $CASES (all when $CASES is empty).
selected_cases() {
  local spec
  for spec in $ALL_CASES; do
    if [[ -z "$CASES" || " $CASES " == *" ${spec%%:*} "* ]]; then
      echo "$spec"
    fi
  done
}

# Raises the open-files limit as far as allowed (each connection is a descriptor).
raise_fd_limit() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# Makes (once) a throwaway self-signed certificate for 127.0.0.1 in $OUT/tls (cert.pem,
# key.pem: ECDSA P-256, 30 days) for the TLS cases; prints the directory.
tls_dir() {
  local dir="$OUT/tls"
  if [[ ! -s "$dir/cert.pem" || ! -s "$dir/key.pem" ]]; then
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  fi
  echo "$dir"
}

# A short description of this machine for the reports.
machine_line() {
  local cpu
  cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "$(nproc) CPUs ($cpu), $(uname -sr), rustc $(rustc --version | cut -d' ' -f2), node $(node --version)"
}
