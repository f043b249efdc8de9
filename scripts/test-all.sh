#!/usr/bin/env bash
# The one command that installs everything the tests need and runs every test
# (CI runs exactly this via .ci/run):
#
#   1. cargo fmt --check, clippy -D warnings and  (cheap, fail fast)
#      rustdoc -D warnings (every intra-doc link resolves, private items too)
#      and clippy of the library with each of its features alone (and none)
#   2. cargo check of the side workspaces        (fuzz/ and benches/peers/, outside the
#                                                 main build, so API changes reach them)
#   3. scripts/install-peers.sh                  (Python websockets + kosoku, Node ws,
#                                                 Chromium + playwright-core)
#   4. release builds of the sockway binary and the autobahn_client example
#   5. cargo test --workspace --all-targets      (unit, integration and interop tests)
#   6. scripts/autobahn.sh                       (Autobahn cases 1-13: async server, event
#                                                 loop plain and over TLS, the async server
#                                                 through the gateway's plain and TLS fronts,
#                                                 client)
#
# Every stage is timed; the durations are printed at the end (and on failure).
# Needs only cargo, python3 (with venv) and node/npm on PATH, plus network
# access to crates.io, PyPI and npm the first time.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOGS="$ROOT/target/test-all"
mkdir -p "$LOGS"

# Where the Rust tests find the peers and the binary under test.
export SOCKWAY_PEERS_PYTHON="$ROOT/target/peers/venv/bin/python"
export SOCKWAY_PEERS_NODE_DIR="$ROOT/tests/peers"
export SOCKWAY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sockway"
# A clean clone gains nothing from incremental files, and they doubled the debug target's
# size (2.2 GB of 5.6 GB); CI machines can be short of disk.
export CARGO_INCREMENTAL=0

STAGE_NAMES=()
STAGE_TIMES=()
CURRENT_STAGE=""

# Run "$@" as a named, timed stage.
stage() {
  local name="$1" start=$SECONDS
  shift
  CURRENT_STAGE="$name"
  echo "==> $name"
  "$@"
  STAGE_NAMES+=("$name")
  STAGE_TIMES+=("$((SECONDS - start))")
  echo "<== $name: $((SECONDS - start))s, $(disk_report)"
  CURRENT_STAGE=""
}

# How much the build holds and how much disk is left: a full disk fails a stage with a
# linker "Bus error" or "No space left on device", and this line says which it was.
disk_report() {
  local used free
  used=$(du -sh "$ROOT/target" 2>/dev/null | cut -f1)
  free=$(df -h --output=avail "$ROOT" 2>/dev/null | tail -1 | tr -d ' ')
  echo "target ${used:-?}, disk free ${free:-?}"
}

print_durations() {
  local i
  echo "---- stage durations ----"
  for i in "${!STAGE_NAMES[@]}"; do
    printf '  %-22s %5ss\n' "${STAGE_NAMES[$i]}" "${STAGE_TIMES[$i]}"
  done
  printf '  %-22s %5ss\n' total "$SECONDS"
  echo "  $(disk_report)"
}

on_exit() {
  local status=$?
  if ((status != 0)); then
    print_durations
    echo "test-all: FAILED in stage '${CURRENT_STAGE:-?}' (exit $status) after ${SECONDS}s"
  fi
}
trap on_exit EXIT

echo "test-all: starting with $(disk_report)"

# cargo test prints one "test result: ok. N passed; M failed; ..." line per
# test binary; keep its output to count the tests in the final summary.
# Output goes to a regular file and is printed afterwards: a child process (Node sets its
# stdio non-blocking) can leave a shared pipe in non-blocking mode, and a test that prints fast
# into a full pipe then fails with EAGAIN. A file never does.
run_logged() {
  local log="$1" status=0
  shift
  "$@" >"$log" 2>&1 || status=$?
  cat "$log" || true
  return "$status"
}

run_cargo_tests() {
  run_logged "$LOGS/cargo-test.log" cargo test --workspace --all-targets --no-fail-fast
}

run_autobahn() {
  run_logged "$LOGS/autobahn.log" ./scripts/autobahn.sh
}

# Sum "N passed" / "N failed" over cargo's per-binary result lines and the
# Autobahn summary's "autobahn: N passed, M failed" line.
count_results() {
  local file
  for file in "$LOGS/cargo-test.log" "$LOGS/autobahn.log"; do
    grep -hE '^(test result: |autobahn: |conformance: )[^0-9]*[0-9]+ passed' "$file" || true
  done | awk '{
      for (i = 1; i < NF; i++) {
        if ($(i + 1) ~ /^passed/) passed += $i
        if ($(i + 1) ~ /^failed/) failed += $i
      }
    } END { printf "%d passed, %d failed\n", passed, failed }'
}

# The fuzz targets and the benchmark's echo servers are workspaces of their own (kept out of
# the default build); type-check them so that a library change cannot silently break them.
# They share the main target directory and its dev profile, so the dependencies clippy checked
# are not checked again (104 s alone, 30 s shared).
check_side_workspaces() {
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  cargo check --quiet --manifest-path fuzz/Cargo.toml --target-dir "$target" --bins
  cargo check --quiet --manifest-path benches/peers/Cargo.toml --target-dir "$target"
}

# The library's features one at a time (and none): code used by one feature only must not
# leave warnings, or fail to build, where a user turns the others off.
check_feature_sets() {
  local features
  for features in "" client "client,tls" tls server event-loop; do
    cargo clippy --quiet -p sockway --lib --no-default-features --features "$features" \
      -- -D warnings
  done
}

stage "cargo fmt" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo doc" env RUSTDOCFLAGS="-D warnings" \
  cargo doc --workspace --no-deps --document-private-items --quiet
stage "clippy per feature set" check_feature_sets
stage "check fuzz + bench peers" check_side_workspaces
stage "install peers" ./scripts/install-peers.sh
stage "build sockway" cargo build --release -p sockway-cli
stage "build autobahn_client" cargo build --release -p sockway --example autobahn_client
stage "cargo test" run_cargo_tests
stage "autobahn" run_autobahn

print_durations
# Plain closing line: every cargo test plus every Autobahn case (both roles).
echo "test-all: $(count_results)"
