#!/usr/bin/env bash
# Instructions per echoed message of each echo server, counted by callgrind (valgrind), for
# machines whose perf has no hardware counters (`perf stat -e instructions true` says
# "<not supported>" in this VM).
#
# Each server runs twice under `valgrind --tool=callgrind` with one worker thread, serving
# `sockway bench --count N` over 10 connections of 20-byte messages, once with N=$SMALL and
# once with N=$LARGE; instructions per message = (Ir_large - Ir_small) / (echoes_large -
# echoes_small), which cancels start-up, handshakes and shutdown. Deterministic up to
# scheduling (how many messages each wake-up finds), so repeat runs agree within a few %.
#
# --payload B and --connections C change the message size and the connection count. uws
# (uWebSockets) runs its -march=x86-64-v3 build, as valgrind cannot run AVX-512.
#
# A/B of a change: server sockway-baseline is sockway-echo from BASELINE_BIN (lib.sh); for
# any other server, PEERS_TARGET=DIR runs the build in DIR/release (e.g. a copy of
# sockway-loop-echo built before the change), one run per build. The callgrind files stay
# in target/bench/callgrind-PAYLOAD/SERVER.N.callgrind for callgrind_annotate.
#
# Usage: benches/instructions.sh [--servers "sockway node ..."] [--small N] [--large N]
#                                [--payload B] [--connections C]
# Writes target/bench/instructions.json (instructions-PAYLOAD.json when --payload is given)
# and prints a table.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

SERVERS="$ALL_SERVERS"
RESULT="$OUT/instructions.json"
SMALL=2000
LARGE=12000
CONNECTIONS=10
PAYLOAD=20
while (($#)); do
  case "$1" in
    --servers) SERVERS="$2"; shift ;;
    --small) SMALL="$2"; shift ;;
    --large) LARGE="$2"; shift ;;
    --payload) PAYLOAD="$2"; RESULT="$OUT/instructions-$2.json"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --build) build_all ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)" >&2; exit 1; }

if [[ " $SERVERS " == *" uws "* ]]; then
  build_uws
  UWS_BIN="$UWS_DIR-v3"
fi

trap 'stop_server' EXIT
DIR="$OUT/callgrind-$PAYLOAD"
rm -rf "$DIR"
mkdir -p "$DIR"

# Runs server $1 under callgrind for $2 messages; prints "IR ECHOES".
measure() {
  local server="$1" count="$2" out="$DIR/$1.$2"
  start_server "$server" 1 "valgrind --tool=callgrind --callgrind-out-file=$out.callgrind --trace-children=no"
  "$SOCKWAY" bench "ws://127.0.0.1:$SERVER_PORT/ws" --connections "$CONNECTIONS" --payload "$PAYLOAD" \
    --warmup 0 --duration 300 --count "$count" --threads 1 --json "$out.json" >"$out.txt" 2>&1
  stop_server
  local ir echoes
  ir="$(grep -E '^(summary|totals):' "$out.callgrind" | head -1 | awk '{print $2}')"
  echoes="$(jq '.total_echoes' "$out.json")"
  echo "$ir $echoes"
}

echo "instructions per message (callgrind, 1 worker thread, $CONNECTIONS connections x $PAYLOAD B, N = $SMALL and $LARGE):"
results="{"
separator=""
for server in $SERVERS; do
  read -r ir1 n1 <<<"$(measure "$server" "$SMALL")"
  read -r ir2 n2 <<<"$(measure "$server" "$LARGE")"
  if [[ -z "$ir1" || -z "$ir2" || "$n2" -le "$n1" ]]; then
    echo "  $server: no result (see $DIR/$server.*)" >&2
    continue
  fi
  per=$(( (ir2 - ir1) / (n2 - n1) ))
  printf '  %-17s %8d instructions per message\n' "$server" "$per"
  results+="$separator\"$server\": {\"instructions_per_message\": $per, \"ir_small\": $ir1, \"echoes_small\": $n1, \"ir_large\": $ir2, \"echoes_large\": $n2}"
  separator=", "
done
results+="}"
echo "{\"method\": \"callgrind Ir difference of two fixed runs (1 worker thread, $CONNECTIONS connections, $PAYLOAD-byte binary messages)\", \"servers\": $results}" | jq . >"$RESULT"
echo "wrote $RESULT"
