"""Summarises `swift test` logs: which tests failed in which run, and the slowest tests.

    python3 scripts/lib/test-report.py RUN_LOG…

Reads Swift Testing's result lines (``✔ Test "…" passed after 1.2 seconds.``, ``✘ Test "…" failed after …``) and
XCTest's (``Test Case '…' failed (1.2 seconds)``), and names the tests that started and never ended (a run stopped
by scripts/test's time budget, or a crash). Exits 1 when any run had a failing test or no result line at all.
"""

import re
import sys
from collections import defaultdict

SWIFT_TESTING = re.compile(
    r'^[✔✘􀢄􁁛] Test (?!run with )(?P<name>.+?)(?: with \d+ test cases?)? (?P<outcome>passed|failed) after '
    r'(?P<seconds>[\d.]+) seconds')
STARTED = re.compile(r'^◇ Test (?!run |case )(?P<name>.+?) started\.$')
XCTEST = re.compile(r"^Test Case '(?P<name>.+)' (?P<outcome>passed|failed) \((?P<seconds>[\d.]+) seconds\)")


def parse(path):
    """The run's results by test name, and the tests that started without a result."""
    results, started = {}, set()
    try:
        log = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:  # a run that never started
        return results, started
    with log:
        for line in map(str.strip, log):
            if match := SWIFT_TESTING.match(line) or XCTEST.match(line):
                results[match["name"]] = (match["outcome"], float(match["seconds"]))
            elif match := STARTED.match(line):
                started.add(match["name"])
    return results, started - results.keys()


def main(paths):
    failures = defaultdict(list)
    unfinished = defaultdict(list)
    slowest = {}
    passed = 0
    for number, path in enumerate(paths, start=1):
        results, running = parse(path)
        for name in running:
            unfinished[name].append(number)
        failed = sorted(name for name, (outcome, _) in results.items() if outcome == "failed")
        for name in failed:
            failures[name].append(number)
        for name, (_, seconds) in results.items():
            slowest[name] = max(seconds, slowest.get(name, 0.0))
        verdict = "passed" if results and not failed else ("no results" if not results else f"{len(failed)} failed")
        if running:
            verdict = f"{len(running)} never ended" + ("" if verdict == "passed" else f", {verdict}")
        passed += bool(results) and not failed and not running
        print(f"run {number}: {len(results)} tests, {verdict}")
    print(f"\n{passed} of {len(paths)} runs passed")
    if failures:
        print("\nfailing tests (runs):")
        for name, runs in sorted(failures.items()):
            print(f"  {name}: {', '.join(map(str, runs))}")
    if unfinished:
        print("\ntests that started and never ended (runs):")
        for name, runs in sorted(unfinished.items()):
            print(f"  {name}: {', '.join(map(str, runs))}")
    print("\nslowest tests (longest time over all runs):")
    for name, seconds in sorted(slowest.items(), key=lambda item: -item[1])[:10]:
        print(f"  {seconds:8.1f} s  {name}")
    return 0 if passed == len(paths) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
