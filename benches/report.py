#!/usr/bin/env python3
"""Summarises the runs of benches/compare.sh: medians per case and server, ratio tables
(sockway / each other server, and sockway-loop / each other server when it ran) printed as text,
the same ratios paired by repetition (each round's runs of two servers ran back to back, so
their ratio is steadier on a shared machine than the ratio of two medians), the same at a
fixed offered load when those runs are given (--fixed-runs), target/bench/compare.json, and an
SVG bar chart drawn by hand (target/bench/compare.svg). Standard library only."""

import argparse
import glob
import json
import os
import statistics
from collections import defaultdict
from xml.sax.saxutils import escape

SERVER_ORDER = ["sockway", "sockway-loop", "tungstenite", "fastwebsockets", "tokio-websockets", "node", "uws"]
CASE_ORDER = ["c100x20b", "c10x1k", "c200x16k", "c500x16k", "c100x20b-1t", "c10x1k-1t", "c200x16k-1t",
              "c500x16k-1t", "z10x1k", "z100x16k", "t100x20b", "t10x1k", "t200x16k"]
CASE_TITLES = {
    "c100x20b": "100 conns x 20 B",
    "c10x1k": "10 conns x 1 KiB",
    "c200x16k": "200 conns x 16 KiB",
    "c500x16k": "500 conns x 16 KiB",
    "c100x20b-1t": "100 x 20 B, 1 server thread",
    "c10x1k-1t": "10 x 1 KiB, 1 server thread",
    "c200x16k-1t": "200 x 16 KiB, 1 server thread",
    "c500x16k-1t": "500 x 16 KiB, 1 server thread",
    "z10x1k": "deflate 10 x 1 KiB JSON",
    "z100x16k": "deflate 100 x 16 KiB JSON",
    "t100x20b": "TLS 100 x 20 B",
    "t10x1k": "TLS 10 x 1 KiB",
    "t200x16k": "TLS 200 x 16 KiB",
}
COLORS = {
    "sockway": "#d9480f",
    "sockway-loop": "#f59f00",
    "tungstenite": "#1971c2",
    "fastwebsockets": "#2f9e44",
    "tokio-websockets": "#7048e8",
    "node": "#868e96",
    "uws": "#c2255c",
}


def order(items, preferred):
    """Items in the preferred order, unknown ones after them, sorted."""
    known = [i for i in preferred if i in items]
    return known + sorted(i for i in items if i not in preferred)


def load_runs(directory):
    """Every run's JSON, grouped by (case, server); file names are CASE.SERVER.REP.json. Each
    run also carries its repetition as "_rep", for the paired ratios."""
    runs = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        case, server, rep = os.path.basename(path)[: -len(".json")].rsplit(".", 2)
        with open(path, encoding="utf-8") as handle:
            run = json.load(handle)
        run["_rep"] = rep
        runs[(case, server)].append(run)
    return runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def latency_us(items, quantile):
    """The median of one latency quantile in microseconds; None when the generator measured
    none (uWebSockets' load_test)."""
    values = [(r.get("latency_ns") or {}).get(quantile) for r in items]
    return median([v / 1e3 for v in values if v is not None])


def summarise(runs):
    """Medians of the repetitions of each (case, server)."""
    summary = {}
    for (case, server), items in runs.items():
        cpu = [
            (r.get("server") or {}).get("cpu_seconds_per_million_messages") for r in items
        ]
        rates = [r["messages_per_second"] for r in items]
        kernel = [
            r["server"]["system_cpu_seconds"] / r["server"]["cpu_seconds"]
            for r in items
            if (r.get("server") or {}).get("cpu_seconds")
            and "system_cpu_seconds" in r["server"]
        ]
        summary[(case, server)] = {
            "repetitions": len(items),
            "messages_per_second": median(rates),
            "messages_per_second_min": min(rates),
            "messages_per_second_max": max(rates),
            "megabytes_per_second": median([r["megabytes_per_second"] for r in items]),
            "cpu_us_per_message": median(cpu),  # CPU s per million = CPU us per message
            # The part of that CPU time the kernel spent (system calls), from utime/stime.
            "kernel_share": median(kernel) if kernel else None,
            "p50_us": latency_us(items, "p50"),
            "p99_us": latency_us(items, "p99"),
            "p999_us": latency_us(items, "p999"),
            "errors": sum(r["errors"] for r in items),
            "server_rss_mib": median(
                [((r.get("server") or {}).get("rss_bytes") or 0) / 2**20 for r in items]
            ),
        }
    return summary


def times(value):
    """A ratio as "1.23x", or "-" when it could not be taken (a value was not measured)."""
    return "-" if value is None else f"{value:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt(value, pattern="{:.2f}"):
    return "-" if value is None else pattern.format(value)


# sockway's own servers: each gets a ratio table against every other server that ran.
SUBJECTS = ["sockway", "sockway-loop"]


def ratio_table(summary, cases, servers, subject, cpu_only=False):
    """Lines of the table `subject` / each other server: throughput and CPU ratios (CPU
    ratios only when `cpu_only`, for runs at the same offered load)."""
    others = [s for s in servers if s != subject]
    if cpu_only:
        title = (f"{subject} / other at the same offered load: "
                 f"CPU-per-message ratio (<1: {subject} cheaper)")
    else:
        title = (f"{subject} / other: throughput ratio (>1: {subject} faster), "
                 f"CPU-per-message ratio (<1: {subject} cheaper)")
    lines = [title, f"{'case':<30}" + "".join(f"{p:>19}" for p in others)]
    for case in cases:
        mine = summary.get((case, subject))
        if not mine:
            continue
        row = f"{CASE_TITLES.get(case, case):<30}"
        for other in others:
            theirs = summary.get((case, other))
            if not theirs:
                cell = "-"
            else:
                t = ratio(mine["messages_per_second"], theirs["messages_per_second"])
                c = ratio(mine["cpu_us_per_message"], theirs["cpu_us_per_message"])
                cell = times(c) if cpu_only else f"{times(t)} / {times(c)}"
            row += f"{cell:>19}"
        lines.append(row)
    return lines


def throughput_of(run):
    return run.get("messages_per_second")


def cost_of(run):
    return (run.get("server") or {}).get("cpu_seconds_per_million_messages")


def paired(runs, case, subject, other, measure):
    """`subject` / `other` of `measure` (a function of a run) in each repetition both ran:
    the list of ratios."""
    theirs = {r["_rep"]: measure(r) for r in runs.get((case, other), [])}
    values = []
    for mine in runs.get((case, subject), []):
        value = ratio(measure(mine), theirs.get(mine["_rep"]))
        if value is not None:
            values.append(value)
    return values


def paired_ratios(runs, cases, servers, subject):
    """Per case and other server: the paired ratios' median, lowest and highest, of
    throughput and of CPU per message (only where at least two repetitions paired up)."""
    result = {}
    for case in cases:
        row = {}
        for other in servers:
            if other == subject:
                continue
            rates = paired(runs, case, subject, other, throughput_of)
            costs = paired(runs, case, subject, other, cost_of)
            if len(rates) >= 2:
                row[other] = {
                    "pairs": len(rates),
                    "throughput": [median(rates), min(rates), max(rates)],
                    "cpu_per_message": [median(costs), min(costs), max(costs)] if costs else None,
                }
        if row:
            result[case] = row
    return result


def paired_table(runs, cases, servers, subject):
    """Lines of the paired table: `subject` / each other server, median [lowest-highest] of
    the throughput ratios and the median of the CPU ratios of the repetitions."""
    table = paired_ratios(runs, cases, servers, subject)
    if not table:
        return []
    others = [s for s in servers if s != subject]
    lines = [f"{subject} / other, paired by repetition: throughput ratio median [lowest-highest], "
             f"CPU-per-message ratio median",
             f"{'case':<30}" + "".join(f"{p:>28}" for p in others)]
    for case in cases:
        if case not in table:
            continue
        row = f"{CASE_TITLES.get(case, case):<30}"
        for other in others:
            cell = "-"
            pair = table[case].get(other)
            if pair:
                middle, low, high = pair["throughput"]
                cost = pair["cpu_per_message"]
                cell = f"{times(middle)} [{low:.2f}-{high:.2f}] / {times(cost[0] if cost else None)}"
            row += f"{cell:>28}"
        lines.append(row)
    return lines


def ratios(summary, cases, servers, subject):
    """`subject` / each other server per case, for the JSON document."""
    return {
        case: {
            other: {
                "throughput": ratio(
                    summary[(case, subject)]["messages_per_second"],
                    summary[(case, other)]["messages_per_second"],
                ),
                "cpu_per_message": ratio(
                    summary[(case, subject)]["cpu_us_per_message"],
                    summary[(case, other)]["cpu_us_per_message"],
                ),
            }
            for other in servers
            if other != subject and (case, other) in summary
        }
        for case in cases
        if (case, subject) in summary
    }


def rate_and_cost_rows(summary, cases, servers):
    """A header and one row per case: messages/s and CPU us per message of each server."""
    rows = [f"{'case':<30}" + "".join(f"{s:>19}" for s in servers)]
    for case in cases:
        row = f"{CASE_TITLES.get(case, case):<30}"
        for server in servers:
            s = summary.get((case, server))
            cell = "-" if not s else f"{s['messages_per_second']:.0f} / {fmt(s['cpu_us_per_message'])}"
            row += f"{cell:>19}"
        rows.append(row)
    return rows


def text_tables(summary, runs, cases, servers, instructions):
    """The tables printed at the end of the run."""
    lines = []
    lines.append("throughput, messages/s (median of repetitions) and server CPU us per message")
    lines.extend(rate_and_cost_rows(summary, cases, servers))
    for subject in SUBJECTS:
        if subject in servers and len(servers) > 1:
            lines.append("")
            lines.extend(ratio_table(summary, cases, servers, subject))
    for subject in SUBJECTS:
        if subject in servers and len(servers) > 1:
            table = paired_table(runs, cases, servers, subject)
            if table:
                lines.append("")
                lines.extend(table)
    if any(v.get("kernel_share") is not None for v in summary.values()):
        lines.append("")
        lines.append("share of each server's CPU time spent in the kernel (system calls)")
        lines.append(f"{'case':<30}" + "".join(f"{s:>19}" for s in servers))
        for case in cases:
            row = f"{CASE_TITLES.get(case, case):<30}"
            for server in servers:
                s = summary.get((case, server))
                share = s.get("kernel_share") if s else None
                cell = "-" if share is None else f"{100 * share:.0f} %"
                row += f"{cell:>19}"
            lines.append(row)
    if instructions:
        lines.append("")
        lines.append("instructions per message (callgrind): " + ", ".join(
            f"{name} {data['instructions_per_message']}" for name, data in instructions.items()
        ))
    errors = {k: v["errors"] for k, v in summary.items() if v["errors"]}
    if errors:
        lines.append("")
        lines.append("errors: " + ", ".join(f"{c}/{s}: {n}" for (c, s), n in sorted(errors.items())))
    return "\n".join(lines)


def fixed_load_tables(summary, cases, servers):
    """The tables of the paced runs: every server got the same offered load, so CPU per
    message compares the work each does for it."""
    lines = ["at the same offered load (paced: sockway bench --rate): messages/s and server CPU us per message"]
    lines.extend(rate_and_cost_rows(summary, cases, servers))
    for subject in SUBJECTS:
        if subject in servers and len(servers) > 1:
            lines.append("")
            lines.extend(ratio_table(summary, cases, servers, subject, cpu_only=True))
    return "\n".join(lines)


def svg_chart(summary, cases, servers, title, subtitle):
    """Two panels of grouped bars (throughput, CPU per message), one group per case and one bar
    per server; each group is scaled to its own largest value and every bar is labelled."""
    bar, gap, group_gap, left, top = 22, 4, 36, 60, 70
    panel_height, label_room = 220, 30
    group_width = len(servers) * (bar + gap) - gap
    legend_width = sum(14 + 7 * len(server) + 20 for server in servers)
    width = max(left + len(cases) * (group_width + group_gap), left + legend_width) + 20
    height = top + 2 * (panel_height + label_room + 40) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="42" fill="#495057">{escape(subtitle)}</text>',
    ]
    x = left
    for server in servers:
        out.append(f'<rect x="{x}" y="52" width="10" height="10" fill="{COLORS.get(server, "#495057")}"/>')
        out.append(f'<text x="{x + 14}" y="61">{escape(server)}</text>')
        x += 14 + 7 * len(server) + 20
    panels = [
        ("messages/s (higher is better)", "messages_per_second", "{:.0f}"),
        ("server CPU us per message (lower is better)", "cpu_us_per_message", "{:.2f}"),
    ]
    y0 = top + 20
    for name, key, pattern in panels:
        base = y0 + panel_height
        out.append(f'<text x="{left}" y="{y0 - 6}" font-size="13" font-weight="bold">{escape(name)}</text>')
        out.append(f'<line x1="{left - 5}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#adb5bd"/>')
        for index, case in enumerate(cases):
            gx = left + index * (group_width + group_gap)
            values = [(summary.get((case, s)) or {}).get(key) for s in servers]
            peak = max([v for v in values if v] or [1])
            for position, (server, value) in enumerate(zip(servers, values)):
                bx = gx + position * (bar + gap)
                if value is None:
                    continue
                h = max(1.0, (panel_height - 24) * value / peak)
                color = COLORS.get(server, "#495057")
                out.append(
                    f'<rect x="{bx}" y="{base - h:.1f}" width="{bar}" height="{h:.1f}" fill="{color}">'
                    f"<title>{escape(server)}: {pattern.format(value)}</title></rect>"
                )
                label = pattern.format(value if value < 1e4 else value / 1e3)
                label += "k" if value >= 1e4 else ""
                out.append(
                    f'<text x="{bx + bar / 2}" y="{base - h - 4:.1f}" font-size="9" '
                    f'text-anchor="middle">{escape(label)}</text>'
                )
            out.append(
                f'<text x="{gx + group_width / 2}" y="{base + 16}" text-anchor="middle">'
                f"{escape(CASE_TITLES.get(case, case))}</text>"
            )
        y0 = base + label_room + 40
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--machine", default="")
    parser.add_argument("--plan", default="")
    parser.add_argument("--load", default="", help="load averages around the run (other work on the machine)")
    parser.add_argument("--servers-file")
    parser.add_argument("--instructions")
    parser.add_argument("--fixed-runs", help="runs paced at the same offered load (compare.sh --fixed-load)")
    args = parser.parse_args()

    runs = load_runs(args.runs)
    if not runs:
        raise SystemExit(f"no runs in {args.runs}")
    summary = summarise(runs)
    cases = order({c for c, _ in summary}, CASE_ORDER)
    servers = order({s for _, s in summary}, SERVER_ORDER)
    instructions = {}
    if args.instructions and os.path.exists(args.instructions):
        with open(args.instructions, encoding="utf-8") as handle:
            instructions = json.load(handle).get("servers", {})
    server_lines = []
    if args.servers_file and os.path.exists(args.servers_file):
        with open(args.servers_file, encoding="utf-8") as handle:
            server_lines = [line.strip() for line in handle if line.strip()]

    print()
    if args.load:
        print(f"load average {args.load} (1, 5, 15 min; above 2 means other work shared the 2 CPUs)")
    print(text_tables(summary, runs, cases, servers, instructions))
    fixed = {}
    if args.fixed_runs:
        fixed_runs = load_runs(args.fixed_runs)
        fixed = summarise(fixed_runs) if fixed_runs else {}
    if fixed:
        fixed_cases = order({c for c, _ in fixed}, CASE_ORDER)
        fixed_servers = order({s for _, s in fixed}, SERVER_ORDER)
        print()
        print(fixed_load_tables(fixed, fixed_cases, fixed_servers))
    document = {
        "machine": args.machine,
        "plan": args.plan,
        "load_average": args.load,
        "servers": server_lines,
        "cases": {
            case: {
                server: summary[(case, server)]
                for server in servers
                if (case, server) in summary
            }
            for case in cases
        },
        "ratios_sockway_over_peer": ratios(summary, cases, servers, "sockway"),
        "ratios_sockway_loop_over_peer": ratios(summary, cases, servers, "sockway-loop"),
        "paired_ratios_sockway_over_peer": paired_ratios(runs, cases, servers, "sockway"),
        "paired_ratios_sockway_loop_over_peer": paired_ratios(runs, cases, servers, "sockway-loop"),
        "instructions_per_message": instructions,
        "fixed_load": {
            case: {server: value for (c, server), value in fixed.items() if c == case}
            for case in {c for c, _ in fixed}
        },
        "runs": {f"{c}.{s}": items for (c, s), items in sorted(runs.items())},
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "compare.json"), "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    with open(os.path.join(args.out, "compare.svg"), "w", encoding="utf-8") as handle:
        handle.write(svg_chart(summary, cases, servers, "sockway and its peers: echo benchmark", args.plan))
    print(f"\nwrote {args.out}/compare.json and {args.out}/compare.svg")


if __name__ == "__main__":
    main()
