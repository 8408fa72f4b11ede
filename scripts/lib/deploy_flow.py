"""The end-to-end walk scripts/deploy-check takes through a running compose deployment.

Everything a user and an operator do, through the published port and `podman exec`, never around the system:
operator key → dataset upload → register → verify (the link from the auth log, as no SMTP relay is set) → activate
→ download and verify → a WebSocket watcher → session and submit → board → the watcher saw the diff → a service
restarted (and Redis emptied) → the board is still right and a new submit still ranks.

    deploy_flow.py --base http://127.0.0.1:PORT --binary PATH --project NAME --auth SERVICE --dataset SERVICE
                   --restart SERVICE [--restart SERVICE …] --work DIRECTORY
Prints one line per step with its timing; exits non-zero at the first failure.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

from websockets.sync.client import connect

args = argparse.ArgumentParser()
args.add_argument("--base", required=True)
args.add_argument("--binary", required=True)
args.add_argument("--project", required=True)
args.add_argument("--auth", required=True, help="compose service running auth (its log holds the mails)")
args.add_argument("--dataset", required=True, help="compose service running dataset (admin upload runs there)")
args.add_argument("--restart", action="append", default=[], help="compose services to restart mid-way")
args.add_argument("--work", required=True)
options = args.parse_args()
started = time.monotonic()


def step(text):
    print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)


def fail(text):
    print(f"deploy-check FAILED: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def container(service):
    names = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=com.docker.compose.project={options.project}",
         "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}"],
        check=True, capture_output=True, text=True).stdout.split()
    if len(names) != 1:
        fail(f"expected one container for {service}, found {names}")
    return names[0]


def run(command, timeout=300):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}{result.stdout[-1000:]}")
    return result.stdout


def cli(*arguments):
    return run([options.binary, *arguments])


unavailable = []  # (path, seconds) of each stretch of 503s a read waited out


def get(path, expect=200):
    """GET, as a client does: a 503 (with Retry-After) is waited out for up to 30 s; any other surprise fails."""
    begun = time.monotonic()
    waited = False
    while True:
        try:
            with urllib.request.urlopen(options.base + path, timeout=15) as response:
                status, body, retry = response.status, response.read(), None
        except urllib.error.HTTPError as error:
            status, body, retry = error.code, error.read(), error.headers.get("Retry-After")
        if status == 503 and expect == 200 and time.monotonic() - begun < 30:
            if retry is None:
                fail(f"GET {path} answered 503 without Retry-After")
            waited = True
            time.sleep(0.5)
            continue
        if waited:
            unavailable.append((path, time.monotonic() - begun))
        if expect is not None and status != expect:
            fail(f"GET {path} answered {status}: {body[:500]!r}")
        return status, body


def wait_ready(what, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if get("/health/ready", expect=None)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    fail(f"not ready within {limit} s after {what}")


def wait_healthy(service, limit=180):
    name = container(service)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = subprocess.run(["podman", "inspect", "--format", "{{.State.Health.Status}}", name],
                               capture_output=True, text=True).stdout.strip()
        if state == "healthy":
            return
        time.sleep(1)
    fail(f"{service} not healthy within {limit} s (last: {state})")


def board_ids():
    _, body = get("/api/v1/benchmarks?limit=50")
    return [entry["record_id"] for entry in json.loads(body).get("records", [])]


os.makedirs(options.work, exist_ok=True)

# --- operator -----------------------------------------------------------------------------------------------------
created = json.loads(run(["podman", "exec", container(options.auth), "leaderboard", "admin", "keys", "create",
                          "--name", "deploy-check", "--permission", "admin", "--json"]))
operator_key = created["secret"]
step("operator key created inside the auth container (leaderboard admin keys create)")

lines = [json.dumps({"prompt": f"question {index} {os.urandom(8).hex()}"}) for index in range(3000)]
dataset = os.path.join(options.work, "prompts.jsonl")
with open(dataset, "w") as handle:
    handle.write("\n".join(lines) + "\n")
checksum = hashlib.sha256(open(dataset, "rb").read()).hexdigest()
dataset_container = container(options.dataset)
run(["podman", "cp", dataset, f"{dataset_container}:/tmp/prompts.jsonl"])
run(["podman", "exec", dataset_container, "leaderboard", "admin", "datasets", "upload", "/tmp/prompts.jsonl",
     "--version", "deploy-1", "--activate", "--chunk-size", "65536", "--dataset-address", "127.0.0.1:9090",
     "--operator-key", operator_key])
step(f"dataset deploy-1 uploaded and activated ({os.path.getsize(dataset)} bytes, sha256 {checksum[:12]}…)")

# --- a device, as a benchmark client ------------------------------------------------------------------------------
credentials = os.path.join(options.work, "device.json")
registered = cli("client", "register", "--server", options.base, "--credentials", credentials,
                 "--email", "operator@example.org", "--hardware-hash", hashlib.sha256(os.urandom(16)).hexdigest())
if "a verification link was sent" not in registered:
    fail(f"register: {registered}")
logs = subprocess.run(["podman", "logs", container(options.auth)], capture_output=True, text=True)
links = re.findall(r"/verify/confirm\?token=[A-Za-z0-9_-]+", logs.stdout + logs.stderr)
if not links:
    fail("no verification link in the auth log")
status, page = get(links[-1])
if b"is verified" not in page:
    fail(f"the verification link answered {status}: {page[:300]!r}")
if "activated" not in cli("client", "activate", "--credentials", credentials):
    fail("activate")
step("device registered, verified through the emailed link (auth log), activated")

downloaded = cli("client", "datasets", "download", "--credentials", credentials,
                 "--out", os.path.join(options.work, "dataset.jsonl"))
if f"sha256 {checksum} verified" not in downloaded:
    fail(f"download: {downloaded}")
step("dataset downloaded, decrypted and verified")

# --- a watcher, a submit, the board -------------------------------------------------------------------------------
seen = []
ws_base = options.base.replace("http://", "ws://").replace("https://", "wss://")


def watch():
    with connect(ws_base + "/api/v1/ws/leaderboard", open_timeout=15) as socket:
        for message in socket:
            seen.append(json.loads(message))


threading.Thread(target=watch, daemon=True).start()
deadline = time.monotonic() + 15
while not seen and time.monotonic() < deadline:
    time.sleep(0.1)
if not seen or seen[0].get("type") != "snapshot":
    fail(f"no WebSocket snapshot: {seen[:1]}")
step("WebSocket watcher connected (snapshot received)")


def submit(framework):
    output = cli("client", "run-synthetic", "--credentials", credentials, "--tps", "140", "--duration", "4",
                 "--framework", framework, "--display-name", f"deploy-check {framework}")
    match = re.search(r"accepted: record ([0-9a-f]+), rank #(\d+)", output)
    if not match:
        fail(f"run-synthetic: {output}")
    return match.group(1), int(match.group(2))


record, rank = submit("vllm")
step(f"session started, metrics reported, submitted: record {record} at rank #{rank}")
if record not in board_ids():
    fail(f"record {record} is not on the board")
deadline = time.monotonic() + 15
while time.monotonic() < deadline and not any(m.get("type") == "accepted" and record in json.dumps(m) for m in seen):
    time.sleep(0.1)
if not any(m.get("type") == "accepted" and record in json.dumps(m) for m in seen):
    fail(f"the watcher saw no 'accepted' diff for {record}: {seen[-3:]}")
step("board lists the record; the watcher received its 'accepted' diff")

# --- restarts -----------------------------------------------------------------------------------------------------
for service in options.restart:
    begun = time.monotonic()
    run(["podman", "restart", "--time", "40", container(service)])
    wait_healthy(service)
    wait_ready(f"restarting {service}")
    step(f"{service} restarted (SIGTERM, drained) and healthy again after {time.monotonic() - begun:.1f} s")
    if record not in board_ids():
        fail(f"record {record} left the board after restarting {service}")

redis = container("redis")


def record_rank():
    _, body = get(f"/api/v1/benchmarks/{record}")
    return json.loads(body).get("rank")


def sentinel():
    return run(["podman", "exec", redis, "redis-cli", "--scan", "--pattern", "*index:filled"]).strip()


run(["podman", "exec", redis, "redis-cli", "FLUSHALL"])
begun = time.monotonic()
lost = record_rank()
while time.monotonic() - begun < 30:
    if record_rank() == 1 and sentinel():
        break
    time.sleep(0.25)
else:
    fail(f"the boards were not rebuilt within 30 s after Redis lost everything (rank {record_rank()})")
step(f"Redis emptied (FLUSHALL; the record's rank read {lost!r} just after): RankingService rebuilt the boards "
     f"from PostgreSQL without an operator in {time.monotonic() - begun:.1f} s")

second, rank = submit("llama.cpp")
ids = board_ids()
if record not in ids or second not in ids:
    fail(f"after the restarts the board holds {ids}, not both {record} and {second}")
step(f"a new submit after the restarts ranks (#{rank}); both records on the board")
if unavailable:
    longest = max(seconds for _, seconds in unavailable)
    step(f"reads answered 503 (with Retry-After) during {len(unavailable)} outage(s), the longest {longest:.1f} s")
print(f"deploy-check: all steps passed in {time.monotonic() - started:.1f} s", flush=True)
