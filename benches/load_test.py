#!/usr/bin/env python3
"""Runs uWebSockets' echo generator `load_test` against a server and writes the run as JSON
in the shape `sockway bench --json` uses (the fields benches/report.py reads), so that
compare.sh can run every case under either generator.

load_test opens CONNS connections, each sending one message and waiting for its echo, and
prints "Msg/sec: X" every 4 seconds (uSockets' timeout granularity): the echoes of the last
4 s divided by 4. The printouts that end within the warm-up are discarded (at least the
first, which includes the connection set-up); the measured window runs from the last
discarded printout to the last counted one, at least one printout long. The server's CPU time
(utime + stime of every process given with --pids, from /proc) is read at both ends of that
window, so CPU per message covers the same echoes as the rate. load_test measures no latency:
those fields are null. Standard library only."""

import argparse
import json
import os
import subprocess
import sys
import time

INTERVAL = 4.0  # seconds between load_test's printouts (LIBUS_TIMEOUT_GRANULARITY)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """(user, system) CPU seconds of the processes `pids`, or None when one is gone."""
    user = system = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        user += int(fields[11]) / TICKS
        system += int(fields[12]) / TICKS
    return user, system


def rss_bytes(pids):
    """Resident memory of the processes `pids` (0 for those gone)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--load-test", required=True, help="the load_test binary")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--payload", type=int, required=True)
    parser.add_argument("--tls", action="store_true",
                        help="connect over TLS (a load_test built with OpenSSL)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--pids", default="", help="the server's process ids, comma-separated")
    parser.add_argument("--label")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    pids = [int(p) for p in args.pids.split(",") if p]
    discard = max(1, round(args.warmup / INTERVAL))
    count = max(1, round(args.duration / INTERVAL))
    # Connecting and the discarded printouts, then the counted ones, with room to spare.
    deadline = time.monotonic() + 30 + INTERVAL * (discard + count + 2)
    command = ["stdbuf", "-oL", args.load_test, str(args.connections), "127.0.0.1",
               str(args.port), "1" if args.tls else "0", "0", str(args.payload)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    rates, start, end, errors, first_error = [], None, None, 0, None
    seen = 0
    try:
        for line in process.stdout:
            if time.monotonic() > deadline:
                first_error = first_error or "load_test gave too few printouts in time"
                errors += 1
                break
            line = line.strip()
            if line.startswith("Closed!") or line.startswith("ERROR"):
                errors += 1
                first_error = first_error or line
                continue
            if not line.startswith("Msg/sec:"):
                continue
            seen += 1
            now = (time.monotonic(), cpu_seconds(pids))
            if seen == discard:
                start = now
            elif seen > discard:
                rates.append(float(line.split(":", 1)[1]))
                end = now
                if len(rates) == count:
                    break
    finally:
        process.kill()
        process.wait()

    if not rates:
        print(f"load_test: no measured printout ({first_error or 'no output'})", file=sys.stderr)
        sys.exit(1)
    window = end[0] - start[0]
    messages = round(sum(rate * INTERVAL for rate in rates))
    rate = sum(rates) / len(rates)
    server = None
    if pids and start[1] and end[1]:
        user, system = end[1][0] - start[1][0], end[1][1] - start[1][1]
        server = {
            "pids": pids,
            "cpu_seconds": user + system,
            "system_cpu_seconds": system,
            "cpu_seconds_per_million_messages": (user + system) * 1e6 / messages if messages else None,
            "rss_bytes": rss_bytes(pids),
        }
    nulls = dict.fromkeys(["count", "min", "p50", "p90", "p99", "p999", "max", "mean"])
    report = {
        "mode": "load",
        "generator": "load_test",
        "label": args.label,
        "url": f"ws://127.0.0.1:{args.port}/",
        "connections": args.connections,
        "payload_bytes": args.payload,
        "kind": "binary",
        "warmup_printouts": discard,
        "window_seconds": window,
        "messages": messages,
        "messages_per_second": rate,
        "megabytes_per_second": rate * args.payload / 1e6,
        "latency_ns": nulls,
        "errors": errors,
        "first_error": first_error,
        "server": server,
    }
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    cost = "-" if not server or server["cpu_seconds_per_million_messages"] is None else \
        f"{server['cpu_seconds_per_million_messages']:.2f}"
    print(f"  throughput: {rate:.0f} msg/s over {len(rates)} printout(s), {window:.1f} s")
    print(f"  server cost: {cost} CPU us per message")


if __name__ == "__main__":
    main()
