#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time each (default 60 s), starting from the
# hand-made seeds under fuzz/seeds/ (committed) and the corpus grown by earlier runs under
# fuzz/corpus/ (not committed). Crashes land in fuzz/artifacts/<target>/; each one found
# becomes a regression test in the crate it concerns.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain builds the sanitizer
# instrumentation with RUSTC_BOOTSTRAP=1, which is what cargo fuzz's -Z flags need.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_PER_TARGET="${1:-60}"
shift || true
cd "$ROOT/fuzz"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi

status=0
for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${SECONDS_PER_TARGET}s"
  mkdir -p "corpus/$target"
  if ! cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=200000 \
      -print_final_stats=1 2>&1 | tail -n 12; then
    echo "fuzz: $target FAILED (see fuzz/artifacts/$target)"
    status=1
  fi
done
exit "$status"
