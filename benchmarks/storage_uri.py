"""A whole experiment on an object store against a local directory: wall time, PUT requests.

Starts a moto_server (S3-compatible) on 127.0.0.1, then runs the same sweep twice in
fresh driver processes, each starting its own local Ray (2 CPUs): TRIALS trials of
RESULTS results each, no sleep, storage_path a temporary directory, then
``s3://bench/<run>``. Counts the server's PUT requests per object kind from its log
(journal segments, per-trial views, everything else). Also times one journal
``sync`` (a segment rewrite) at several segment fills.

Usage: python benchmarks/storage_uri.py [--trials 4] [--results 500]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DRIVER = r"""
import json, sys, time
import ray
ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
         configure_logging=False)
import tuner as tune

def train(config):
    for i in range(config["n"]):
        tune.report({"loss": 1.0 / (i + 1), "x": config["x"]})

start = time.perf_counter()
results = tune.run(train, config={"x": tune.grid_search(list(range(int(sys.argv[2])))), "n": int(sys.argv[3])},
                   metric="loss", mode="min", storage_path=sys.argv[1], name="bench", verbose=0,
                   log_to_tensorboard=False)
wall = time.perf_counter() - start
assert sum(len(t.history) for t in results.trials) == int(sys.argv[2]) * int(sys.argv[3])
start = time.perf_counter()
loaded = tune.load(results.experiment_path)
print(json.dumps({"wall_s": wall, "load_s": time.perf_counter() - start,
                  "results": sum(len(t.history) for t in loaded.trials)}))
"""


def _moto(log_path: str) -> tuple[subprocess.Popen, dict[str, str]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(log_path, "w")  # noqa: SIM115 - the server writes it until stopped
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    import boto3

    deadline = time.time() + 60
    while True:
        try:
            boto3.client("s3").create_bucket(Bucket="bench")
            return proc, env
        except Exception:  # noqa: BLE001 - not listening yet
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def _puts(log_path: str, run: str) -> dict[str, int]:
    kinds: collections.Counter[str] = collections.Counter()
    with open(log_path) as f:
        for line in f:
            m = re.search(r'"PUT /bench/([^ ?]+)', line)
            if not m or not m.group(1).startswith(run):
                continue
            key = m.group(1)
            kind = ("journal segment" if "journal.jsonl.d/" in key else
                    "per-trial view" if re.search(r"(result\.jsonl|progress\.csv|params\.json)$", key) else "other")
            kinds[kind] += 1
    return dict(kinds)


def _sync_cost(repeats: int = 20) -> dict[int, float]:
    """Median ms of one journal sync (rewriting the current segment) at several segment fills."""
    from tuner.storage import append

    out = {}
    for fill_kb in (1, 64, 256, 1024):
        app = append.Appender(f"s3://bench/sync_{fill_kb}/journal.jsonl")
        app.write("x" * (fill_kb * 1024 - 100) + "\n")
        app.flush()
        times = []
        for _ in range(repeats):
            app.write('{"event":"result"}\n')
            start = time.perf_counter()
            app.flush()
            times.append((time.perf_counter() - start) * 1000)
        out[fill_kb] = sorted(times)[len(times) // 2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--results", type=int, default=500)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tuner_bench_uri_")
    log_path = os.path.join(tmp, "moto.log")
    proc, env = _moto(log_path)
    try:
        rows = []
        for label, storage in (("local directory", os.path.join(tmp, "results")), ("s3:// (moto_server)", "s3://bench/run")):
            out = subprocess.run([sys.executable, "-c", DRIVER, storage, str(args.trials), str(args.results)],
                                 cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, check=False)
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            rows.append((label, json.loads(out.stdout.strip().splitlines()[-1])))
        puts = _puts(log_path, "run/")
        sync = _sync_cost()
    finally:
        proc.terminate()
        proc.wait()
    total = args.trials * args.results
    print(f"{args.trials} trials x {args.results} results; load average {os.getloadavg()[0]:.1f}")
    for label, r in rows:
        print(f"{label}: wall {r['wall_s']:.2f} s, tune.load {r['load_s']:.2f} s, {r['results']} results")
    print(f"S3 PUTs: {puts} for {total} results ({sum(puts.values()) / total:.3f} per result)")
    print("journal sync (one segment rewrite), median ms by segment fill:",
          ", ".join(f"{kb} KiB: {ms:.1f}" for kb, ms in sync.items()))


if __name__ == "__main__":
    main()
