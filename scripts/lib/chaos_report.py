#!/usr/bin/env python3
"""The checks and the document of scripts/chaos.

    chaos_report.py board --base URL --version V --psql "COMMAND"
        Reads the whole global board of dataset version V through the gateway and compares it, in order, with the
        ranked records PostgreSQL holds; prints one JSON object.
    chaos_report.py report RESULTS --machine M --versions V --quick 0|1 --deadline-ms N --soak-warmup S
                           --build B --output PATH
        Turns the run's files (journals, fault windows, watcher connections, samples) into docs/RELIABILITY.md,
        followed by the hand-written docs/RELIABILITY-NOTES.md.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import urllib.request


def board(args):
    rest, cursor = [], None
    while True:
        url = f"{args.base}/api/v1/benchmarks?limit=100" + (f"&cursor={cursor}" if cursor else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            page = json.load(response)
        rest += [record["record_id"] for record in page["records"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    query = ("SELECT record_id FROM ranking.records WHERE dataset_version = '%s' AND ranked = 1 "
             "ORDER BY rank_key DESC, record_id DESC" % args.version.replace("'", "''"))
    stored = subprocess.run(shlex.split(args.psql) + ["-c", query], check=True, capture_output=True,
                            text=True).stdout.split()
    print(json.dumps({"board": len(rest), "stored": len(stored), "same_records": set(rest) == set(stored),
                      "same_order": rest == stored, "total": page.get("total")}))


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def classify(entries, deadline_ms):
    """Counts of a set of journal entries by what they mean for a client."""
    counts = {"requests": len(entries), "ok": 0, "503_retry_after": 0, "503_bare": 0, "other_5xx": 0, "4xx": 0,
              "refused_connection": 0, "client_timeout": 0, "past_deadline": 0, "codes": {}}
    for entry in entries:
        status = entry["status"]
        if 200 <= status < 300:
            counts["ok"] += 1
        elif status == 503:
            counts["503_retry_after" if entry["retry_after"] else "503_bare"] += 1
        elif status >= 500:
            counts["other_5xx"] += 1
        elif status >= 400:
            counts["4xx"] += 1
        elif status == 0:
            counts["refused_connection"] += 1
        else:
            counts["client_timeout"] += 1
        if status == -1 or entry["ms"] > deadline_ms + 1000:
            counts["past_deadline"] += 1
        if not 200 <= status < 300:
            key = f"{entry['kind']} {status} {entry['code'][:60]}"
            counts["codes"][key] = counts["codes"].get(key, 0) + 1
    return counts


def report(args):
    results = args.results
    load = json.load(open(os.path.join(results, "faults-load.json")))
    board_check = json.load(open(os.path.join(results, "board.json")))
    storm = json.load(open(os.path.join(results, "storm.json")))
    storm_db = open(os.path.join(results, "storm-db.txt")).read().split()
    soak = json.load(open(os.path.join(results, "soak-load.json")))
    journal = lines(os.path.join(results, "faults-journal.jsonl"))
    watchers = lines(os.path.join(results, "faults-watchers.jsonl"))
    faults = lines(os.path.join(results, "faults.jsonl"))
    soak_journal = lines(os.path.join(results, "soak-journal.jsonl"))
    soak_watchers = lines(os.path.join(results, "soak-watchers.jsonl"))
    samples = lines(os.path.join(results, "soak-samples.jsonl"))
    deadline = args.deadline_ms

    rows = []
    findings = []
    for fault in faults:
        window = [e for e in journal if fault["killed"] <= e["start"] < fault["end"]]
        counts = classify(window, deadline)
        failures = [e for e in window if not 200 <= e["status"] < 300]
        last_failure = max((e["start"] + e["ms"] / 1000 for e in failures), default=None)
        recovered = max(0.0, last_failure - fault["restarted"]) if last_failure else 0.0
        after_ready = max(0.0, last_failure - fault["ready"]) if last_failure else 0.0
        connections = [c for c in watchers if c["opened"] < fault["end"] and (c["closed"] or 1e12) > fault["killed"]]
        closed = [c for c in watchers if fault["killed"] <= c["closed"] < fault["end"]]
        gaps = sum(c["gaps"] for c in connections)
        duplicates = sum(c["duplicates"] for c in connections)
        rows.append((fault["part"], counts, recovered, after_ready, fault["ready"] - fault["restarted"], len(closed),
                     gaps, duplicates))
        if counts["other_5xx"] or counts["503_bare"] or counts["past_deadline"] or counts["4xx"]:
            findings.append((fault["part"], counts["codes"]))

    def pct(a, b):
        return f"{(a - b) / b:+.1%}" if b else "n/a"

    parts = ["auth", "dataset", "ranking", "interaction", "gateway", "gateway2"]
    warm = [s for s in samples if s["t"] >= samples[0]["t"] + args.soak_warmup] if samples else []
    memory_rows = []
    for part in parts:
        if not warm:
            break
        first, last = warm[0][part], warm[-1][part]
        peak_fds = max(s[part]["fds"] for s in warm)
        memory_rows.append((part, first["rss_kib"], last["rss_kib"], pct(last["rss_kib"], first["rss_kib"]),
                            first["fds"], last["fds"], peak_fds))
    soak_counts = classify(soak_journal, deadline)

    out = []
    w = out.append
    w("# Reliability: faults under load")
    w("")
    w(f"Written by `scripts/chaos` on {datetime.date.today().isoformat()} ({args.build} build). "
      "Do not edit by hand: change the script and run it again.")
    w("")
    w(f"- **Machine:** {args.machine}")
    w(f"- **Versions:** {args.versions}")
    w("")
    w("## Method")
    w("")
    w("Six processes on loopback: AuthService, DatasetService, RankingService and InteractionService, each on its own,")
    w("and two gateways in front of them, all on one throwaway PostgreSQL and one Redis (no persistence: a restarted")
    w(f"Redis is empty). The gateways' request deadline is {deadline} ms. A steady mixed load runs through both")
    w("gateways, alternating:")
    w("")
    w("- 6 benchmark clients: start a session, report, submit with an `Idempotency-Key` (retried with the same key")
    w("  every 200 ms until answered, as the SDK does), comment on the new record, like another;")
    w("- 4 readers: the board, a known record, its comments; 1 downloader: the dataset and a ciphertext chunk;")
    w("- 20 WebSocket watchers of the global board, reconnecting when a stream ends; on each connection every diff")
    w("  must carry the sequence after the one before it (from the snapshot's).")
    w("")
    w(f"After a warm-up, each part in turn is killed with SIGKILL, left down {'3' if args.quick else '5'} s, started")
    w("again (the same ports; PostgreSQL on the same data directory, so it runs crash recovery), and watched until")
    w("the window ends. Afterwards every acknowledged record and comment is read back through the gateway, and the")
    w("whole board is compared, in order, with what PostgreSQL holds.")
    w("")
    w("Each request opens its own connection, so a killed gateway costs the requests sent to it while it is down")
    w("(counted as refused connections) and nothing else.")
    w("")
    missing_total = len(load["missing_submits"]) + len(load["missing_comments"])
    unclear = sum(c["other_5xx"] + c["503_bare"] + c["4xx"] for _, c, *_ in rows)
    late = sum(c["past_deadline"] + c["client_timeout"] for _, c, *_ in rows)
    slowest = max((recovered for _, _, recovered, *_ in rows), default=0.0)
    gaps_total = load["watcher_gaps"] + load["watcher_duplicates"] + soak["watcher_gaps"] + soak["watcher_duplicates"]
    storm_ok = (storm["keys_with_one_record"] == storm["keys"] == storm["keys_with_identical_answers"]
                and storm_db[0] == storm_db[1] == str(storm["keys"]))
    soak_growth = max((float(r[3].rstrip("%")) for r in memory_rows if r[3] != "n/a"), default=0.0)
    soak_fds = max((r[5] - r[4] for r in memory_rows), default=0)
    w("## Goals")
    w("")
    w("| goal | measured | |")
    w("|---|---|---|")
    w(f"| R3: no acknowledged write lost when any part is killed | {missing_total} lost of "
      f"{load['acknowledged_submits'] + load['acknowledged_comments']:,} acknowledged | "
      f"{'met' if missing_total == 0 else '**missed**'} |")
    w(f"| R4: a clear 503 with `Retry-After` within the deadline, never a hang | {unclear} other errors, {late} "
      f"answers past the {deadline} ms deadline | {'met' if unclear == 0 and late == 0 else '**missed**'} |")
    w(f"| R5: service back within 5 s of the part; boards resume without gaps or repeats | errors end at most "
      f"{slowest:.1f} s after a restart; {gaps_total} gaps or repeats | "
      f"{'met' if slowest <= 5 and gaps_total == 0 else '**missed**'} |")
    w(f"| idempotency storm: one record and one answer per key | {storm['keys_with_one_record']:,} of "
      f"{storm['keys']:,} keys; {storm_db[0]} rows | {'met' if storm_ok else '**missed**'} |")
    w(f"| soak: no errors, memory growth < 10 % after warm-up, no descriptor growth | "
      f"{soak_counts['requests'] - soak_counts['ok']} errors, at most {soak_growth:+.1f} % memory, "
      f"{soak_fds:+d} descriptors | "
      f"{'met' if soak_counts['requests'] == soak_counts['ok'] and soak_growth < 10 and soak_fds <= 2 else '**missed**'} |")
    w("")
    w("Refused connections (a killed gateway cannot answer at all) count against no goal: in production a load")
    w("balancer stops sending to it, and here the client's retry goes to the other gateway. Descriptors may differ")
    w("by the requests in flight when a sample is taken; more than 2 above the first sample counts as growth.")
    w("")
    w("## Kill -9 under load")
    w("")
    w("| part killed | requests | ok | 503 + Retry-After | other 5xx / bare 503 | 4xx | refused connections "
      "| past the deadline | errors end after restart | restart → ready | watcher streams ended | diff gaps / repeats |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for part, c, recovered, after_ready, ready, closed, gaps, duplicates in rows:
        w(f"| {part} | {c['requests']:,} | {c['ok']:,} | {c['503_retry_after']:,} | "
          f"{c['other_5xx']} / {c['503_bare']} | {c['4xx']} | {c['refused_connection']:,} | "
          f"{c['past_deadline'] + c['client_timeout']} | {recovered:.1f} s | {ready:.1f} s | {closed} | "
          f"{gaps} / {duplicates} |")
    w("")
    missing = len(load["missing_submits"]) + len(load["missing_comments"])
    w(f"- **Acknowledged writes lost: {missing}.** {load['acknowledged_submits']:,} submits answered `accepted` and "
      f"{load['acknowledged_comments']:,} comments answered 201 during the run; every one was read back afterwards "
      f"({len(load['missing_submits'])} records and {len(load['missing_comments'])} comments missing).")
    w(f"- **Board after the faults:** {board_check['board']:,} records through the gateway, {board_check['stored']:,} "
      f"ranked in PostgreSQL; same records: {'yes' if board_check['same_records'] else '**no**'}, same order: "
      f"{'yes' if board_check['same_order'] else '**no**'}.")
    w(f"- **Watchers:** {load['watcher_connections']} connections, {load['watcher_diffs']:,} diffs received, "
      f"{load['watcher_gaps']} gaps, {load['watcher_duplicates']} repeats.")
    w(f"- **Requests in all:** {load['requests']:,} in {load['seconds']:.0f} s; submits refused or unanswered: "
      f"{load['refused_submits']}; held for review: {load['held_for_review']}.")
    if findings:
        w("")
        w("What failed in each window, by request kind, status and code:")
        w("")
        for part, codes in findings:
            w(f"- {part}: " + "; ".join(f"`{k}` × {v}" for k, v in sorted(codes.items(), key=lambda kv: -kv[1])[:8]))
    w("")
    w("## Idempotency storm")
    w("")
    w(f"{storm['keys']:,} sessions, each submitted {storm['requests'] // max(1, storm['keys'])} times at once with one "
      f"key, alternately through both gateways ({storm['requests']:,} requests in {storm['seconds']:.1f} s, "
      f"p50 {storm['latency']['p50_ms']:.0f} ms, p99 {storm['latency']['p99_ms']:.0f} ms):")
    w("")
    w(f"- keys whose every copy was answered 2xx: {storm['keys_all_answered']:,} of {storm['keys']:,};")
    w(f"- keys whose answers name one record: {storm['keys_with_one_record']:,}; byte-identical answers: "
      f"{storm['keys_with_identical_answers']:,}; answers marked `Idempotent-Replayed`: {storm['replayed_answers']:,};")
    w(f"- records in PostgreSQL for the storm's sessions: {storm_db[0]} rows for {storm_db[1]} sessions "
      f"({storm['distinct_records']:,} distinct record ids answered).")
    w(f"- statuses: " + ", ".join(f"`{k}` × {v:,}" for k, v in sorted(storm["statuses"].items())))
    w("")
    w("## Soak")
    w("")
    w(f"{soak['seconds']:.0f} s of the same mixed load with no faults: {soak_counts['requests']:,} requests, "
      f"{soak_counts['requests'] - soak_counts['ok']} not 2xx, {soak_counts['past_deadline']} past the deadline; "
      f"{soak['acknowledged_submits']:,} submits and {soak['acknowledged_comments']:,} comments acknowledged, "
      f"{len(soak['missing_submits']) + len(soak['missing_comments'])} missing; watchers saw "
      f"{soak['watcher_diffs']:,} diffs with {soak['watcher_gaps']} gaps and {soak['watcher_duplicates']} repeats.")
    if soak_counts["codes"]:
        w("")
        w("Not 2xx: " + "; ".join(f"`{k}` × {v}" for k, v in sorted(soak_counts["codes"].items())))
    w("")
    w(f"Resident memory and open descriptors, from the first sample after a {args.soak_warmup} s warm-up to the last:")
    w("")
    w("| process | RSS after warm-up | RSS at the end | growth | descriptors after warm-up | at the end | peak |")
    w("|---|---|---|---|---|---|---|")
    for part, first, last, growth, fds_first, fds_last, fds_peak in memory_rows:
        w(f"| {part} | {first / 1024:.1f} MiB | {last / 1024:.1f} MiB | {growth} | {fds_first} | {fds_last} | "
          f"{fds_peak} |")
    w("")
    stop_path = os.path.join(results, "stop.json")
    if os.path.exists(stop_path):
        stopped = json.load(open(stop_path))
        w("## Graceful stop")
        w("")
        w("At the end every process gets SIGTERM at once, as a rollout does, and 40 s to exit (its shutdown grace is")
        w("30 s); one that is still running then is killed. Seconds from SIGTERM to exit (whole seconds):")
        w("")
        w("| " + " | ".join(parts) + " |")
        w("|" + "---|" * len(parts))
        w("| " + " | ".join("**did not exit**" if stopped.get(p, 0) is None else f"{stopped.get(p, 0)} s"
                            for p in parts) + " |")
        w("")
    text = "\n".join(out) + "\n"
    # What each failure mode does and why is written by hand in docs/RELIABILITY-NOTES.md and copied in below.
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "RELIABILITY-NOTES.md")
    if os.path.exists(notes):
        text += "\n" + open(notes).read()
    with open(args.output, "w") as f:
        f.write(text)


parser = argparse.ArgumentParser()
commands = parser.add_subparsers(dest="command", required=True)
board_parser = commands.add_parser("board")
board_parser.add_argument("--base", required=True)
board_parser.add_argument("--version", required=True)
board_parser.add_argument("--psql", required=True)
report_parser = commands.add_parser("report")
report_parser.add_argument("results")
for name in ("machine", "versions", "build", "output"):
    report_parser.add_argument("--" + name, required=True)
for name in ("quick", "deadline-ms", "soak-warmup"):
    report_parser.add_argument("--" + name, type=int, required=True)
arguments = parser.parse_args()
board(arguments) if arguments.command == "board" else report(arguments)
