#!/usr/bin/env bash
# Hunts flaky tests: runs every test binary of `cargo test --workspace --all-targets`
# PASSES times, each from its package's directory with the environment test-all.sh sets,
# while LOAD busy loops take CPU away (a 2-core CI machine under load is where timing
# assumptions break). Failing runs keep their output under target/stress/.
#
#   scripts/stress-tests.sh [PASSES (default 10)] [LOAD (default 2)]
#
# Needs the peers installed (scripts/install-peers.sh) and `cargo build --release -p
# sockway-cli` for the tests that run the release binary. Not part of test-all.
set -euo pipefail

PASSES=${1:-10}
LOAD=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/stress"
export SOCKWAY_PEERS_PYTHON="$ROOT/target/peers/venv/bin/python"
export SOCKWAY_PEERS_NODE_DIR="$ROOT/tests/peers"
export SOCKWAY_BIN="$ROOT/target/release/sockway"

mkdir -p "$OUT"
cd "$ROOT"
# executable, package directory, target name, target kind: one line per test binary.
cargo test --workspace --all-targets --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"], os.path.dirname(m["manifest_path"]), m["target"]["name"], m["target"]["kind"][0])
' >"$OUT/binaries.txt"

spinners=()
for _ in $(seq 1 "$LOAD"); do
  (while :; do :; done) &
  spinners+=($!)
done
trap 'kill "${spinners[@]}" 2>/dev/null || true' EXIT

failures=0
for pass in $(seq 1 "$PASSES"); do
  while read -r exe dir name kind; do
    log="$OUT/$name-$kind-$pass.log"
    if (cd "$dir" && timeout 400 "$exe" >"$log" 2>&1); then
      rm -f "$log"
    else
      failures=$((failures + 1))
      echo "pass $pass: $name ($kind) failed, see $log"
    fi
  done <"$OUT/binaries.txt"
  echo "pass $pass of $PASSES done, $failures failed runs so far"
done
echo "stress-tests: $PASSES passes, load $LOAD, $failures failed runs"
[ "$failures" -eq 0 ]
