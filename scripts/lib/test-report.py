"""Summarises `swift test` logs: which tests failed in which run, and the slowest tests.

    python3 scripts/lib/test-report.py RUN_LOG…

Reads Swift Testing's result lines (``✔ Test "…" passed after 1.2 seconds.``, ``✘ Test "…" failed after …``) and
XCTest's (``Test Case '…' failed (1.2 seconds)``), names the tests that started and never ended (a run stopped
by scripts/test's time budget, or a crash), and repeats what each failing test recorded (``✘ Test "…" recorded an
issue at File.swift:12:5: …`` and the lines that continue it, shortened), so a report that is all a reader has — CI's
tail — still says why. Exits 1 when any run had a failing test or no result line at all.
"""

import re
import sys
from collections import defaultdict

SWIFT_TESTING = re.compile(
    r'^[✔✘􀢄􁁛] Test (?!run with )(?P<name>.+?)(?: with \d+ test cases?)? (?P<outcome>passed|failed) after '
    r'(?P<seconds>[\d.]+) seconds')
STARTED = re.compile(r'^◇ Test (?!run |case )(?P<name>.+?) started\.$')
XCTEST = re.compile(r"^Test Case '(?P<name>.+)' (?P<outcome>passed|failed) \((?P<seconds>[\d.]+) seconds\)")
ISSUE = re.compile(r'^[✘􀢄] Test (?P<name>.+?) recorded an issue')
XCTEST_ISSUE = re.compile(r'^\S+:\d+: error: ')
NEXT_EVENT = re.compile(r'^([◇✔✘↳􀟈􀢄􁁛􀄵] |Test Case |Test Suite |\d{4}-\d\d-\d\dT)')  # or a log line
ISSUE_LINES, LINE_WIDTH = 8, 400


def parse(path):
    """The run's results by test name, the tests that started without a result, and the recorded issues' lines."""
    results, started, issues = {}, set(), []
    try:
        log = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:  # a run that never started
        return results, started, issues
    continuing = False
    with log:
        for raw in log:
            line = raw.strip()
            if match := SWIFT_TESTING.match(line) or XCTEST.match(line):
                results[match["name"]] = (match["outcome"], float(match["seconds"]))
            elif match := STARTED.match(line):
                started.add(match["name"])
            if ISSUE.match(line) or XCTEST_ISSUE.match(line):
                issues.append([line[:LINE_WIDTH]])
                continuing = True
            elif continuing and line and not NEXT_EVENT.match(line) and len(issues[-1]) < ISSUE_LINES:
                issues[-1].append(line[:LINE_WIDTH])
            else:
                continuing = False
    return results, started - results.keys(), issues


def main(paths):
    failures = defaultdict(list)
    unfinished = defaultdict(list)
    slowest = {}
    passed = 0
    recorded = []
    for number, path in enumerate(paths, start=1):
        results, running, issues = parse(path)
        recorded += [(number, lines) for lines in issues]
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
    if recorded:
        print("\nwhat the failing tests recorded (run: lines):")
        for number, lines in recorded[:20]:
            print(f"  {number}: " + "\n     ".join(lines))
        if len(recorded) > 20:
            print(f"  … and {len(recorded) - 20} more in the run logs")
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
