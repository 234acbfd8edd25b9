#!/usr/bin/env python3
"""Totals for scripts/test.sh: "N passed, N failed, N skipped".

usage: count_tests.py COUNTS_DIR CTEST_LOG... [--extra-passed N] [--extra-failed N]

Each ctest entry counts once, except the pytest modules (integration.*): those count their cases
from the JSON that tests/integration/conftest.py writes into COUNTS_DIR, so a skipped case is
reported as skipped instead of disappearing inside a passing module. A module whose ctest entry
failed without a failing case on record (a crash, a timeout) still counts as one failure.
"""
import json
import os
import re
import sys

RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (\S+) \.*\s*(\S.*?)\s+[\d.]+ sec\s*$")


def main(argv):
    counts_dir, logs, extra = argv[0], [], {"passed": 0, "failed": 0}
    args = iter(argv[1:])
    for a in args:
        if a in ("--extra-passed", "--extra-failed"):
            extra[a[8:]] += int(next(args))
        else:
            logs.append(a)
    total = {"passed": extra["passed"], "failed": extra["failed"], "skipped": 0}
    reasons = {}
    for log in logs:
        seen = 0
        try:
            lines = open(log, errors="replace").read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            m = RESULT.match(line)
            if not m:
                continue
            seen += 1
            name, passed = m.group(1), m.group(2) == "Passed"
            path = os.path.join(counts_dir, "test_" + name.split(".", 1)[1] + ".py.json") \
                if name.startswith("integration.") else None
            if path and os.path.exists(path):
                c = json.load(open(path))
                for k in ("passed", "failed", "skipped"):
                    total[k] += c[k]
                if not passed and c["failed"] == 0:
                    total["failed"] += 1
                for reason, n in c["reasons"].items():
                    reasons.setdefault(reason, []).append((name, n))
            else:
                total["passed" if passed else "failed"] += 1
        if seen == 0:  # the run did not even report: count it as a failure, never as nothing
            total["failed"] += 1
    for reason, where in sorted(reasons.items()):
        names = ", ".join(f"{n} ({k})" for n, k in where)
        print(f"skipped: {reason}: {names}")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
