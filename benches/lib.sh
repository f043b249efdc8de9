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
# The workspace's target directory (CARGO_TARGET_DIR when set, as cargo does).
SOCKWAY="${CARGO_TARGET_DIR:-$ROOT/target}/release/sockway"
# uWebSockets' peers (uws-echo, uws-broadcast, load_test, broadcast_test), built from the
# snapshot in ../shared/peers/uwebsockets (UWS_SOURCE) by build_uws: -march=native in UWS_DIR,
# and -march=x86-64-v3 in UWS_DIR-v3 for callgrind, which cannot run AVX-512.
UWS_SOURCE="${UWS_SOURCE:-$ROOT/../shared/peers/uwebsockets}"
UWS_DIR="${UWS_DIR:-$OUT/uws}"
# The uWebSockets build the servers run from (instructions.sh points it at the -v3 build).
UWS_BIN="${UWS_BIN:-$UWS_DIR}"
ALL_SERVERS="sockway sockway-loop tungstenite fastwebsockets tokio-websockets node uws"
# The servers whose library has permessage-deflate (the compressed cases run only these).
DEFLATE_SERVERS="sockway node sockway-baseline"
# The servers that can serve TLS (the TLS cases run only these). uws: uws-echo-tls, the echo
# as an SSLApp, built by build_uws with OpenSSL beside the plain peers.
TLS_SERVERS="sockway sockway-loop tungstenite fastwebsockets tokio-websockets node uws sockway-baseline sockway-loop-baseline"
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

# Installs what build_uws needs (g++, zlib headers) with apt-get when missing.
uws_prerequisites() {
  if command -v g++ >/dev/null && command -v gcc >/dev/null && [[ -f /usr/include/zlib.h ]] &&
    [[ -f /usr/include/openssl/ssl.h ]]; then
    return 0
  fi
  local sudo=""
  ((EUID == 0)) || sudo="sudo"
  echo "installing g++, zlib1g-dev and libssl-dev for uWebSockets" >&2
  $sudo apt-get update -qq >/dev/null &&
    $sudo apt-get install -y -qq g++ gcc zlib1g-dev libssl-dev >/dev/null
}

# Builds uWebSockets' peers (see UWS_DIR) once; again when the snapshot changes.
build_uws() {
  local stamp="$UWS_DIR/stamp" hash
  hash="$(cat "$UWS_SOURCE"/build.sh "$UWS_SOURCE"/uwebsockets-*.tar.gz | sha256sum | cut -d' ' -f1)"
  if [[ -x "$UWS_DIR/load_test" && -x "$UWS_DIR/load_test-tls" && -x "$UWS_DIR-v3/uws-echo" &&
    -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    return 0
  fi
  uws_prerequisites
  echo "building: uWebSockets peers and load_test ($UWS_SOURCE)" >&2
  "$UWS_SOURCE/build.sh" "$UWS_DIR" >/dev/null
  # The same script with the portable flags, run from the snapshot's directory.
  local v3
  v3="$(mktemp)"
  sed "s/-march=native/-march=x86-64-v3/g; s|^here=.*|here=\"$UWS_SOURCE\"|" "$UWS_SOURCE/build.sh" >"$v3"
  bash "$v3" "$UWS_DIR-v3" >/dev/null
  rm -f "$v3"
  build_uws_tls
  echo "$hash" >"$stamp"
}

# The TLS peers beside the plain ones in UWS_DIR, from the same snapshot with uSockets' OpenSSL
# support (WITH_OPENSSL=1): uws-echo-tls PORT --tls DIR (the echo as an SSLApp with DIR/cert.pem
# and DIR/key.pem, as the Rust peers take --tls) and load_test-tls (load_test whose SSL
# argument works).
build_uws_tls() {
  local work
  work="$(mktemp -d)"
  tar xzf "$UWS_SOURCE"/uwebsockets-*.tar.gz -C "$work"
  (
    cd "$work/uWebSockets" || exit 1
    make -s -C uSockets WITH_OPENSSL=1 >/dev/null 2>&1
    # The echo's App becomes an SSLApp whose files come from argv[3] (after "--tls").
    sed -e 's|uWS::App()|uWS::SSLApp({.key_file_name = key.c_str(), .cert_file_name = cert.c_str()})|' \
      -e 's|^\( *int port = .*\)$|\1\n    std::string dir = argc > 3 ? argv[3] : ".", cert = dir + "/cert.pem", key = dir + "/key.pem";|' \
      -e 's|(1 thread, no compression)|(1 thread, no compression, TLS)|' \
      EchoServerPort.cpp >EchoServerTls.cpp
    g++ -O3 -march=native -std=c++2b -Isrc -IuSockets/src -w -DLIBUS_USE_OPENSSL \
      EchoServerTls.cpp uSockets/uSockets.a -lz -lssl -lcrypto -o "$UWS_DIR/uws-echo-tls"
    gcc -O3 -march=native -DLIBUS_USE_OPENSSL -IuSockets/src benchmarks/load_test.c \
      uSockets/uSockets.a -lz -lssl -lcrypto -lstdc++ -o "$UWS_DIR/load_test-tls"
  )
  rm -rf "$work"
}

# A free TCP port on 127.0.0.1 (for servers that cannot be given port 0, like uws-echo,
# which prints the port it was given).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $1 distinct free ports on 127.0.0.1, on one line (all bound at once, so two calls of
# free_port in a row cannot hand out the same port twice).
free_ports() {
  python3 -c 'import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$1"
}

# The words after $1, rotated left by $1 - 1 places: repetition $1 of an interleaved run
# starts each case with a different server, so that none always runs first or last (after
# the others' sockets and caches) and a drift in the machine's load does not land on one
# server every time.
rotated() {
  local rep="$1"
  shift
  local words=("$@") by
  by=$(((rep - 1) % $#))
  echo "${words[@]:by}" "${words[@]:0:by}"
}

# The command line of server $1 with $2 worker threads, listening on a free port.
server_command() {
  case "$1" in
    sockway) echo "$PEERS_BIN/sockway-echo 0 $2" ;;
    # sockway's event-loop server (sockway::event_loop): callbacks, no task per connection.
    sockway-loop) echo "$PEERS_BIN/sockway-loop-echo 0 $2" ;;
    # The same echo server with one single-threaded runtime per worker thread, each on its own
    # SO_REUSEPORT listener (uWebSockets' layout): no task ever moves between threads.
    sockway-percore) echo "$PEERS_BIN/sockway-echo 0 $2 --per-core" ;;
    # One single-threaded runtime per worker thread on one listener, thread 0 dealing each
    # connection to the thread with the fewest (Server::serve_threads), as the event loop does.
    sockway-dealt) echo "$PEERS_BIN/sockway-echo 0 $2 --dealt" ;;
    # The event loop with a SO_REUSEPORT listener per worker (start_per_worker), the kernel
    # spreading the connections as over uWebSockets' processes, instead of dealing them.
    sockway-loop-percore) echo "$PEERS_BIN/sockway-loop-echo 0 $2 --per-core" ;;
    # An experiment, not in ALL_SERVERS: sockway-proto driven by io_uring (uring-echo.rs).
    uring) echo "$PEERS_BIN/uring-echo 0 $2" ;;
    tungstenite) echo "$PEERS_BIN/tungstenite-echo 0 $2" ;;
    fastwebsockets) echo "$PEERS_BIN/fastwebsockets-echo 0 $2" ;;
    tokio-websockets) echo "$PEERS_BIN/tokio-websockets-echo 0 $2" ;;
    node) echo "node $NODE_DIR/echo.js 0" ;;
    # uWebSockets: one thread per process; with $2 > 1, start_server starts $2 processes on
    # one port (uSockets sets SO_REUSEPORT, so the kernel spreads the connections).
    # Over TLS (SERVER_FLAGS --tls DIR, which start_server appends), its SSLApp build.
    uws)
      local binary=uws-echo
      [[ "$SERVER_FLAGS" == --tls* ]] && binary=uws-echo-tls
      echo "$UWS_BIN/$binary ${UWS_PORT:-$(free_port)}"
      ;;
    uws-broadcast) echo "$UWS_BIN/uws-broadcast ${UWS_PORT:-$(free_port)}" ;;
    # Fan-out peers for broadcast.sh: every message published to every client (one topic).
    sockway-loop-broadcast) echo "$PEERS_BIN/sockway-loop-broadcast 0 $2" ;;
    # Not a WebSocket server: a task and a socket per connection and nothing else, the floor
    # of idle memory for any task-per-connection tokio server (idle_memory.sh --fresh only).
    tokio-floor) echo "$PEERS_BIN/tokio-floor 0 $2" ;;
    # sockway's echo servers built from another tree (BASELINE_BIN=that build's release
    # directory), to measure a change A/B under the same interleaving.
    sockway-baseline) echo "${BASELINE_BIN:?set BASELINE_BIN for sockway-baseline}/sockway-echo 0 $2" ;;
    sockway-loop-baseline) echo "${BASELINE_BIN:?set BASELINE_BIN for sockway-loop-baseline}/sockway-loop-echo 0 $2" ;;
    *) echo "unknown server: $1" >&2; return 1 ;;
  esac
}

# Starts server $1 with $2 worker threads (optionally under the wrapper command in $3, e.g.
# valgrind); sets SERVER_PID, SERVER_PORT and SERVER_LINE (its startup line), and SERVER_PIDS
# (every process of it: uWebSockets' servers run one process per thread on one port).
start_server() {
  local name="$1" threads="$2" wrapper="${3:-}" log processes=1 index
  [[ "$name" == uws* ]] && processes="$threads"
  SERVER_PIDS=""
  UWS_PORT=""
  for ((index = 0; index < processes; index++)); do
    log="$OUT/logs/$name.log"
    ((index == 0)) || log="$OUT/logs/$name.$index.log"
    mkdir -p "$OUT/logs"
    # Emptied here, before the server starts, so that the wait below never reads the last
    # run's startup line.
    : >"$log"
    # shellcheck disable=SC2046,SC2086 # the command is a word list on purpose
    $wrapper $(server_command "$name" "$threads") $SERVER_FLAGS >>"$log" 2>&1 &
    SERVER_PIDS+="${SERVER_PIDS:+ }$!"
    ((index == 0)) && SERVER_PID=$!
    if ! wait_for_line "$log" "listening on" "$!"; then
      echo "server $name did not start" >&2
      stop_server
      return 1
    fi
    if ((index == 0)); then
      SERVER_LINE="$(grep -m1 "listening on" "$log")"
      SERVER_PORT="$(echo "$SERVER_LINE" | sed -E 's/.*listening on [^ ]*:([0-9]+).*/\1/')"
      UWS_PORT="$SERVER_PORT"
    fi
  done
  UWS_PORT=""
  ((processes == 1)) || SERVER_LINE="$SERVER_LINE x $processes processes (SO_REUSEPORT)"
}

# Stops the server started last, every process of it (SIGTERM, then SIGKILL after 10 s),
# and waits for it.
stop_server() {
  local pid
  for pid in ${SERVER_PIDS:-${SERVER_PID:-}}; do
    stop_pid "$pid"
  done
  SERVER_PID=""
  SERVER_PIDS=""
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
