"""Directory checkpoints: tuner against Ray Tune, wall time and the driver's peak RSS.

2 trials x 5 directory checkpoints of SIZE MB, keep_checkpoints_num=2 (Ray Tune:
CheckpointConfig(num_to_keep=2)), one local Ray with 2 CPUs. Each run is a fresh
driver process, so its peak RSS (ru_maxrss: the driver only, not the workers) is
its own. Usage: python benchmarks/checkpoints.py [--sizes 30 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks._common import markdown_table  # noqa: E402

DRIVER = r"""
import json, os, resource, sys, tempfile, time
size_mb, which, storage = int(sys.argv[1]), sys.argv[2], sys.argv[3]
import ray
ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
         configure_logging=False)

def payload(directory, step):
    with open(os.path.join(directory, "weights.bin"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size_mb):
            f.write(chunk)
    with open(os.path.join(directory, "step.txt"), "w") as f:
        f.write(str(step))

if which == "tuner":
    import tuner as tune

    def train(config):
        for step in range(1, 6):
            with tempfile.TemporaryDirectory() as tmp:
                payload(tmp, step)
                tune.report({"score": step}, checkpoint=tune.Checkpoint.from_directory(tmp))

    start = time.perf_counter()
    tune.run(train, config={"i": tune.grid_search([0, 1])}, keep_checkpoints_num=2, storage_path=storage,
             verbose=0, log_to_tensorboard=False)
else:
    from ray import tune as ray_tune

    def train(config):
        for step in range(1, 6):
            with tempfile.TemporaryDirectory() as tmp:
                payload(tmp, step)
                ray_tune.report({"score": step}, checkpoint=ray_tune.Checkpoint.from_directory(tmp))

    start = time.perf_counter()
    ray_tune.Tuner(train, param_space={"i": ray_tune.grid_search([0, 1])},
                   run_config=ray_tune.RunConfig(storage_path=storage, verbose=0,
                                                 checkpoint_config=ray_tune.CheckpointConfig(num_to_keep=2))
                   ).fit()
wall = time.perf_counter() - start
print("RESULT " + json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(size_mb: int, which: str) -> dict:
    import tempfile

    storage = tempfile.mkdtemp(prefix=f"bench_ckpt_{which}_")
    env = {**os.environ, "PYTHONPATH": ROOT, "RAY_ADDRESS": "", "RAY_DEDUP_LOGS": "0"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(size_mb), which, storage], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{which} at {size_mb} MB failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    subprocess.run(["rm", "-rf", storage])
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--peers", nargs="+", default=["tuner", "ray_tune"])
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        seen: dict[str, list[dict]] = {p: [] for p in args.peers}
        for _ in range(args.repeats):
            for peer in args.peers:
                seen[peer].append(run(size, peer))
        for peer in args.peers:
            walls = sorted(r["wall"] for r in seen[peer])
            rss = max(r["rss_mb"] for r in seen[peer])
            rows.append([f"{size} MB", peer, f"{walls[len(walls) // 2]:.1f}", f"{rss:,.0f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["checkpoint", "peer", "wall (s, median)", "driver peak RSS (MB)"], rows))


if __name__ == "__main__":
    main()
