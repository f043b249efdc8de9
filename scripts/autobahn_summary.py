#!/usr/bin/env python3
"""Summarise Autobahn-format reports and fail on anything short of a clean pass.

Usage:
    scripts/autobahn_summary.py DIR [DIR...]

Each DIR holds an `index.json` as written by kosoku (or the Autobahn
TestSuite): {agent: {case_id: {"behavior": ..., "behaviorClose": ..., ...}}}.

For every DIR prints the count of each `behavior` and `behaviorClose` verdict,
then every case where either verdict is not OK or INFORMATIONAL; finally one
line "autobahn: N passed, M failed" over all DIRs (a DIR without a usable
index.json counts as one failure). This is stricter than kosoku's own
pass/fail: NON-STRICT and UNIMPLEMENTED count as failures here, because
sockway aims for exact conformance.

Exit status: 0 if every case in every DIR passed; 1 if any case failed, or a
DIR has no (or an empty / unreadable) index.json.
"""

import json
import os
import sys
from collections import Counter

PASSING = {"OK", "INFORMATIONAL"}


def case_sort_key(case_id):
    """Order "9.10.2" after "9.2.1" (numeric, not lexical)."""
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def load_index(directory):
    path = os.path.join(directory, "index.json")
    try:
        with open(path) as f:
            index = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"{directory}: cannot read index.json: {exc}")
        return None
    if not index or not any(index.values()):
        print(f"{directory}: index.json lists no cases")
        return None
    return index


def summarise(directory):
    """Print the summary of one report DIR; return (passed, failed) counts,
    or None if DIR has no usable index.json."""
    index = load_index(directory)
    if index is None:
        return None
    passed = failed = 0
    for agent, cases in sorted(index.items()):
        behaviors = Counter(c.get("behavior", "MISSING") for c in cases.values())
        closes = Counter(c.get("behaviorClose", "MISSING") for c in cases.values())
        failures = [
            (cid, c.get("behavior", "MISSING"), c.get("behaviorClose", "MISSING"))
            for cid, c in cases.items()
            if c.get("behavior") not in PASSING or c.get("behaviorClose") not in PASSING
        ]
        print(
            f"{directory}: agent {agent!r}: {len(cases)} cases, {len(failures)} failing"
        )
        print(
            "  behavior:      "
            + ", ".join(f"{k}={v}" for k, v in sorted(behaviors.items()))
        )
        print(
            "  behaviorClose: "
            + ", ".join(f"{k}={v}" for k, v in sorted(closes.items()))
        )
        for cid, behavior, close in sorted(failures, key=lambda f: case_sort_key(f[0])):
            report = cases[cid].get("reportfile", "")
            print(f"  FAIL {cid}: behavior={behavior} behaviorClose={close} {report}")
        failed += len(failures)
        passed += len(cases) - len(failures)
    return passed, failed


def main(argv):
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = [summarise(d) for d in argv]
    passed = sum(r[0] for r in results if r)
    # A DIR without a usable report counts as one failure, so the closing
    # line never says "0 failed" when the exit status is 1.
    failed = sum(r[1] if r else 1 for r in results)
    # Plain closing line, counting each case of each role once.
    print(f"autobahn: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
