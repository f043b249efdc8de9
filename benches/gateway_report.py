#!/usr/bin/env python3
"""Summarises the runs of benches/gateway_compare.sh: medians of the repetitions per case and
target (direct, gateway, nginx, and the proxies with a TLS front: gateway-tls, nginx-tls; with
--uring, gateway-uring and gateway-uring-tls),
printed as a table with the ratio to direct, what each proxy adds to the p50/p99 round trip,
the proxy's CPU per message, and gateway/nginx ratios per front with their spread (the
lowest and highest ratio of the repetitions run back to back);
writes the JSON document. Reads the runs with benches/report.py's helpers. Standard library
only."""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import CASE_TITLES, fmt, load_runs, median, order, ratio, summarise  # noqa: E402

TARGETS = ["direct", "gateway", "gateway-uring", "nginx", "gateway-tls", "gateway-uring-tls", "nginx-tls"]
# Front name -> (gateway target, nginx target); "uring", "uring-tls": the gateway relaying
# on io_uring (gateway_compare.sh --uring), on the plain and the TLS front.
FRONTS = {
    "plain": ("gateway", "nginx"),
    "uring": ("gateway-uring", "nginx"),
    "tls": ("gateway-tls", "nginx-tls"),
    "uring-tls": ("gateway-uring-tls", "nginx-tls"),
}
CASES = ["c100x20b", "c10x1k", "c200x16k"]


def added(value, base):
    return None if value is None or base is None else value - base


def rate(run):
    return run.get("messages_per_second")


def cpu(run):
    return (run.get("server") or {}).get("cpu_seconds_per_million_messages")


def spread(runs, case, g_name, n_name, key):
    """[lowest, highest] gateway/nginx ratio over the repetitions (each repetition's two runs
    were back to back), or None."""
    ratios = []
    for g, n in zip(runs.get((case, g_name), []), runs.get((case, n_name), [])):
        value = ratio(key(g), key(n))
        if value is not None:
            ratios.append(value)
    return [min(ratios), max(ratios)] if ratios else None


def derive(summary, cases, runs):
    """Per case and target: the medians plus ratio to direct and added latency."""
    table = {}
    for case in cases:
        direct = summary.get((case, "direct"))
        rows = {}
        for target in TARGETS:
            s = summary.get((case, target))
            if not s:
                continue
            row = dict(s)
            if direct:
                row["throughput_ratio_to_direct"] = ratio(
                    s["messages_per_second"], direct["messages_per_second"]
                )
                row["added_p50_us"] = added(s["p50_us"], direct["p50_us"])
                row["added_p99_us"] = added(s["p99_us"], direct["p99_us"])
            rows[target] = row
        for front, (g_name, n_name) in FRONTS.items():
            gateway, nginx = rows.get(g_name), rows.get(n_name)
            if gateway and nginx:
                rows[f"gateway_over_nginx_{front}"] = {
                    "throughput": ratio(gateway["messages_per_second"], nginx["messages_per_second"]),
                    "cpu_per_message": ratio(gateway["cpu_us_per_message"], nginx["cpu_us_per_message"]),
                    "added_p50": ratio(gateway.get("added_p50_us"), nginx.get("added_p50_us")),
                    "throughput_spread": spread(runs, case, g_name, n_name, rate),
                    "cpu_spread": spread(runs, case, g_name, n_name, cpu),
                }
        table[case] = rows
    return table


SHARE = re.compile(r"CPU over ([\d.]+) s .*?generator ([\d.]+) s.*?backend ([\d.]+) s(?:.*?proxy ([\d.]+) s)?")
PARTS = ["generator", "backend", "proxy"]


def machine_costs(directory, runs):
    """Per case and target: the median CPU microseconds per message of the generator, the
    backend and the proxy, from each run's .share file (CPU over the whole run, warm-up
    included, divided by the run's throughput times its wall time: an approximation that is
    the same for every target). On CPUs shared by all three, throughput follows their sum,
    so this says how far a cheaper proxy can move it."""
    costs = {}
    for (case, target), items in runs.items():
        per_part = {part: [] for part in PARTS}
        for run in items:
            path = os.path.join(directory, f"{case}.{target}.{run['_rep']}.share")
            try:
                with open(path, encoding="utf-8") as handle:
                    match = SHARE.search(handle.read())
            except OSError:
                match = None
            messages = (rate(run) or 0) * float(match.group(1)) if match else 0
            if not messages:
                continue
            for part, value in zip(PARTS, match.groups()[1:]):
                if value is not None:
                    per_part[part].append(float(value) / messages * 1e6)
        costs[(case, target)] = {part: median(values) for part, values in per_part.items()}
    return costs


def costs_table(costs, summary, cases):
    """The whole machine's CPU per message and how many of its CPUs that kept busy
    (throughput times the total); per front, what it bounds: the proxy CPU per message at
    which the gateway would reach 1.2x nginx's throughput, with the machine as busy as in
    nginx's runs and with every CPU busy, the generator and backend costing what they cost
    in the gateway's runs."""
    cpus = os.cpu_count() or 1
    lines = ["whole machine, CPU us per message (median; from the .share files): generator,"
             " backend, proxy, total; busy CPUs (throughput x total)"]
    busy = {}
    for case in cases:
        for target in TARGETS:
            c, s = costs.get((case, target)), summary.get((case, target))
            if not c or not s or None in (c["generator"], c["backend"]):
                continue
            total = sum(v for v in c.values() if v is not None)
            busy[(case, target)] = s["messages_per_second"] * total / 1e6
            lines.append(f"{CASE_TITLES.get(case, case):<20}{target:<18}{c['generator']:>7.2f}"
                         f"{c['backend']:>7.2f}{fmt(c['proxy']):>7}{total:>8.2f}"
                         f"{busy[(case, target)]:>7.2f}")
    lines.append("proxy CPU us per message for 1.2x nginx's throughput: as busy as nginx's runs;"
                 f" all {cpus} CPUs busy (ratio to nginx's proxy CPU)")
    for front, (g_name, n_name) in FRONTS.items():
        for case in cases:
            g, n = costs.get((case, g_name)), costs.get((case, n_name))
            if (case, g_name) not in busy or (case, n_name) not in busy or n["proxy"] is None:
                continue
            others = g["generator"] + g["backend"]
            target_rate = 1.2 * summary[(case, n_name)]["messages_per_second"]
            as_busy = busy[(case, n_name)] / target_rate * 1e6 - others
            all_busy = cpus / target_rate * 1e6 - others
            lines.append(
                f"{front:<10}{CASE_TITLES.get(case, case):<20}{as_busy:>6.2f} us"
                f" ({as_busy / n['proxy']:.2f}x); {all_busy:>6.2f} us ({all_busy / n['proxy']:.2f}x);"
                f" the gateway's {g['proxy']:.2f} us, {busy[(case, g_name)]:.2f} CPUs busy"
            )
    return "\n".join(lines)


def span(pair):
    return "[-]" if not pair else f"[{fmt(pair[0])}-{fmt(pair[1])}]"


def text_table(table):
    lines = [
        "medians of the repetitions; CPU: us per message of the process named (the backend for"
        " direct, the proxy otherwise)",
        f"{'case':<20}{'target':<18}{'msg/s':>9}{'x direct':>10}{'p50 us':>9}{'p99 us':>9}"
        f"{'+p50 us':>9}{'+p99 us':>9}{'CPU us':>8}{'errors':>8}",
    ]
    for case, rows in table.items():
        for target in TARGETS:
            r = rows.get(target)
            if not r:
                continue
            lines.append(
                f"{CASE_TITLES.get(case, case):<20}{target:<18}"
                f"{r['messages_per_second']:>9.0f}"
                f"{fmt(r.get('throughput_ratio_to_direct')):>10}"
                f"{fmt(r['p50_us'], '{:.0f}'):>9}{fmt(r['p99_us'], '{:.0f}'):>9}"
                f"{fmt(r.get('added_p50_us'), '{:+.0f}'):>9}{fmt(r.get('added_p99_us'), '{:+.0f}'):>9}"
                f"{fmt(r['cpu_us_per_message']):>8}{r['errors']:>8}"
            )
    lines.append("")
    lines.append("gateway / nginx: throughput (>1: gateway faster), CPU per message (<1: gateway cheaper),"
                 " added p50 (<1: gateway adds less); [lowest-highest] of the repetitions")
    for front in FRONTS:
        for case, rows in table.items():
            g = rows.get(f"gateway_over_nginx_{front}")
            if g:
                lines.append(
                    f"{front:<10}{CASE_TITLES.get(case, case):<20}throughput {fmt(g['throughput'])}x "
                    f"{span(g['throughput_spread'])}, CPU {fmt(g['cpu_per_message'])}x "
                    f"{span(g['cpu_spread'])}, added p50 {fmt(g['added_p50'])}x"
                )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--machine", default="")
    parser.add_argument("--versions", default="")
    parser.add_argument("--plan", default="")
    parser.add_argument("--load", default="")
    parser.add_argument("--proxy-threads", default="")
    parser.add_argument("--instructions", default="", help="'gateway N,nginx M,': callgrind counts")
    args = parser.parse_args()

    runs = load_runs(args.runs)
    if not runs:
        raise SystemExit(f"no runs in {args.runs}")
    summary = summarise(runs)
    cases = order({c for c, _ in summary}, CASES)
    table = derive(summary, cases, runs)
    print()
    if args.load:
        print(f"load average {args.load} (1, 5, 15 min; {os.cpu_count()} CPUs shared by generator,"
              " proxy and backend)")
    print(text_table(table))
    costs = machine_costs(args.runs, runs)
    print()
    print(costs_table(costs, summary, cases))
    instructions = {}
    for item in filter(None, args.instructions.split(",")):
        proxy, count = item.split()
        instructions[proxy] = int(count)
    if instructions:
        print("\ninstructions per message (callgrind, 1 worker, 10 x 20 B): " + ", ".join(
            f"{proxy} {count}" for proxy, count in instructions.items()))
    document = {
        "machine": args.machine,
        "versions": args.versions,
        "plan": args.plan,
        "proxy_threads": args.proxy_threads,
        "load_average": args.load,
        "cases": table,
        "instructions_per_message": instructions,
        "machine_cpu_us_per_message": {f"{c}.{t}": v for (c, t), v in sorted(costs.items())},
        "runs": {f"{c}.{t}": items for (c, t), items in sorted(runs.items())},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
