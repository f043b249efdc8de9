#!/usr/bin/env bash
# Memory per idle proxied WebSocket: `sockway gateway` against Debian's nginx, in front of the
# same `sockway echo` backend, in one run (issue #19, "Measured").
#
# Each round starts a fresh proxy per target (the gateway, then nginx; with --tls also both
# with a TLS front), reads the proxy's RSS, opens N sessions through it with
# `sockway bench --idle N` (each exchanges one 20-byte message first, so buffers a first
# message allocates are counted), waits until the proxy's RSS is stable, and reports
# (RSS after - RSS before) / N of the proxy's process only: the gateway's, or nginx's one
# worker (its master holds no session). The backend and the generator are not counted.
# Rounds are interleaved (gateway, nginx, gateway, nginx, ...); the report gives each round,
# the medians and gateway / nginx.
#
# Both proxies run one worker (the gateway's TOKIO_WORKER_THREADS=1, nginx's
# worker_processes 1), the settings of gateway_compare.sh (16 KiB relay buffers; nginx
# proxy_buffer_size 16k, proxy_buffering off), plus what N sessions need: the gateway's
# maxConnections and maxConnectionsPerClient, nginx's worker_connections (2 N plus a sixteenth:
# nginx starts closing fresh connections when fewer than 1/16 are free). A proxy holds two
# sockets per session, so the open-files limit must exceed 2 N + 100: with the usual hard
# limit of 20,000 that is --sessions 9900 at most (the script says so if the limit is too low).
#
# Usage: benches/gateway_idle_memory.sh [--sessions N] [--rounds R] [--tls] [--no-build]
# GATEWAY_LIMITS (JSON members, e.g. `"relayIoUring": true`) is added to the gateway's limits.
# Writes target/bench/gateway_idle_memory.json and prints a table. Loopback only; every run
# ends by itself (the generator holds the sessions until the RSS is stable, at most 20 s).
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

SESSIONS=10000
ROUNDS=3
BUILD=1
TARGETS="gateway nginx"
while (($#)); do
  case "$1" in
    --sessions) SESSIONS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --tls) TARGETS+=" gateway-tls nginx-tls" ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

WORK="$OUT/gateway_idle"
PROXY_THREADS=1
PROXY_TLS=0
[[ "$TARGETS" == *tls* ]] && PROXY_TLS=1
GATEWAY_LIMITS="\"maxConnections\": $((SESSIONS + 100)), \"maxConnectionsPerClient\": $((SESSIONS + 100))${GATEWAY_LIMITS:+, $GATEWAY_LIMITS}"
# nginx starts closing connections it may reuse (fresh ones waiting for their request) once
# fewer than 1/16 of worker_connections are free, so it gets a sixteenth more than it holds.
NGINX_CONNECTIONS=$(((2 * SESSIONS + 100) * 17 / 16))
# shellcheck source=benches/gateway_lib.sh
source "$(dirname "$0")/gateway_lib.sh"

trap 'stop_all' EXIT
raise_fd_limit
limit="$(ulimit -n)"
if [[ "$limit" != unlimited ]] && ((limit < 2 * SESSIONS + 100)); then
  echo "the open-files limit ($limit) is too low for $SESSIONS sessions (a proxy holds 2 sockets" \
    "per session): use --sessions $(((limit - 100) / 2)) or raise the hard limit" >&2
  exit 1
fi
ensure_nginx
if ((BUILD)); then
  echo "building: sockway (release)" >&2
  (cd "$ROOT" && cargo build --release --quiet -p sockway-cli)
fi
rm -rf "$WORK"
mkdir -p "$WORK/runs"

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
start_backend
echo "idle memory per proxied session: $SESSIONS sessions, $ROUNDS round(s); $(proxy_versions)"
echo "machine: $(machine_line); load average before: $load_start"
for round in $(seq 1 "$ROUNDS"); do
  for target in $TARGETS; do
    if [[ "$target" == gateway* ]]; then
      start_gateway
      pid="$GATEWAY_PID"
    else
      start_nginx
      pid="$NGINX_WORKER"
    fi
    target_url "$target"
    # Let the proxy finish starting (its first probe, lazy allocations) before the first sample.
    sleep 1
    base="$WORK/runs/$target.$round"
    if "$SOCKWAY" bench "$URL" "${URL_ARGS[@]}" --idle "$SESSIONS" --duration 20 \
      --server-pid "$pid" --label "$target" --connect-concurrency 128 \
      --json "$base.json" >"$base.txt" 2>&1; then
      printf '  round %s %-12s %8.0f bytes per session (%s open)\n' "$round" "$target" \
        "$(jq '.rss_bytes_per_connection' "$base.json")" "$(jq '.connected' "$base.json")"
    else
      echo "  round $round $target: failed (see $base.txt)" >&2
    fi
    stop_pid "$NGINX_PID"
    stop_pid "$GATEWAY_PID"
    NGINX_PID="" GATEWAY_PID=""
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_all

python3 - "$WORK/runs" "$OUT/gateway_idle_memory.json" "$SESSIONS" "$(machine_line)" \
  "$(proxy_versions)" "before $load_start, after $load_end" <<'EOF'
import glob, json, os, statistics, sys

runs_dir, out, sessions, machine, versions, load = sys.argv[1:]
per = {}
for path in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
    target, _round = os.path.basename(path)[: -len(".json")].rsplit(".", 1)
    with open(path, encoding="utf-8") as handle:
        run = json.load(handle)
    per.setdefault(target, []).append(
        {"bytes_per_session": run.get("rss_bytes_per_connection"), "open": run.get("connected")}
    )
summary = {}
for target, items in per.items():
    values = [i["bytes_per_session"] for i in items if i["bytes_per_session"] is not None]
    summary[target] = {
        "median_bytes_per_session": statistics.median(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "rounds": items,
    }
print(f"\nload average {load} (1, 5, 15 min; 2 CPUs shared)")
for target, s in summary.items():
    if s["median_bytes_per_session"] is not None:
        print(f"  {target:<12} median {s['median_bytes_per_session']:8.0f} bytes per session"
              f" (rounds {s['min']:.0f} to {s['max']:.0f})")
for g, n in (("gateway", "nginx"), ("gateway-tls", "nginx-tls")):
    a, b = summary.get(g, {}), summary.get(n, {})
    if a.get("median_bytes_per_session") and b.get("median_bytes_per_session"):
        print(f"  {g} / {n}: {a['median_bytes_per_session'] / b['median_bytes_per_session']:.2f}x")
document = {"sessions": int(sessions), "machine": machine, "versions": versions,
            "load_average": load, "targets": summary}
with open(out, "w", encoding="utf-8") as handle:
    json.dump(document, handle, indent=1)
print(f"wrote {out}")
EOF
