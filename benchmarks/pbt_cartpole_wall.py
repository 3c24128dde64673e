"""The PBT CartPole example's wall time with several checkouts of the tuner, runs alternated.

Each run is ``python examples/pbt_cartpole.py`` in a fresh process with that checkout
first on PYTHONPATH (its own local Ray, 2 CPUs), storage in a temporary directory.
Usage: python benchmarks/pbt_cartpole_wall.py DIR [DIR...] [--repeats 2]
[--population 4] [--max-steps 20000]. Get a DIR for a commit with
``git archive <commit> | tar -x -C DIR``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def run(tree: str, population: int, max_steps: int) -> float:
    with tempfile.TemporaryDirectory() as storage:
        env = {**os.environ, "PYTHONPATH": tree}
        started, cpu = time.perf_counter(), _children_cpu()
        out = subprocess.run([sys.executable, "examples/pbt_cartpole.py", "--population", str(population),
                              "--max-steps", str(max_steps), "--storage", storage], cwd=tree, env=env,
                             capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    reported = re.search(r"env steps in all, (\d+) s wall", out.stdout)
    if reported is None:  # (a short run may end with the example's own "final eval_return < 475")
        sys.exit(out.stdout[-2000:] + out.stderr[-3000:])
    exploits = re.search(r"\((\d+) of (\d+) exploits", out.stdout)
    print(f"  {tree}: process {wall:.1f} s, CPU {cpu:.1f} s, tune.run {reported.group(1)} s, "
          f"{exploits.group(2) if exploits else '?'} exploits, load {os.getloadavg()[0]:.1f}", flush=True)
    return wall


def _children_cpu() -> float:
    """User + system CPU seconds of the waited-for descendants (the example's process, the Ray
    processes it started and reaped, and theirs): less sensitive to other jobs than wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=20_000)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for _ in range(args.repeats):
        for tree in args.trees:
            walls[tree].append(run(tree, args.population, args.max_steps))
    for tree, values in walls.items():
        print(f"{tree}: median {statistics.median(values):.1f} s of {[round(v, 1) for v in values]}")


if __name__ == "__main__":
    main()
