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
import statistics
import subprocess
import sys
import tempfile
import time


def run(tree: str, population: int, max_steps: int) -> float:
    with tempfile.TemporaryDirectory() as storage:
        env = {**os.environ, "PYTHONPATH": tree}
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "examples/pbt_cartpole.py", "--population", str(population),
                              "--max-steps", str(max_steps), "--storage", storage], cwd=tree, env=env,
                             capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    reported = re.search(r"env steps in all, (\d+) s wall", out.stdout)
    if reported is None:  # (a short run may end with the example's own "final eval_return < 475")
        sys.exit(out.stdout[-2000:] + out.stderr[-3000:])
    exploits = re.search(r"\((\d+) of (\d+) exploits", out.stdout)
    print(f"  {tree}: process {wall:.1f} s, tune.run {reported.group(1)} s, "
          f"{exploits.group(2) if exploits else '?'} exploits, load {os.getloadavg()[0]:.1f}", flush=True)
    return wall


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
