"""What a fresh worker per trial costs next to a warm one, for a trainable that imports torch.

GPU trials do not reuse workers (docs/scaling.md says why: a process's exit is the only
release of all the CUDA memory a trial held). This measures the price of that choice on
this machine: the wall time of N one-result trials, one at a time, with warm workers and
with a fresh worker per trial. A real GPU trial also pays CUDA's start-up in each fresh
process, which needs a GPU to measure.

    python benchmarks/worker_reuse.py [--trials 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, scratch_dir, start_ray, timed


def torch_trainable(config):
    import torch

    import tuner as tune

    tune.report({"loss": float(torch.zeros(1).sum()) + config["i"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start_ray()
    import tuner as tune

    walls: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for reuse in (True, False):
            wall, _ = timed(lambda: tune.run(torch_trainable, config={"i": tune.grid_search(list(range(args.trials)))},
                                             max_concurrent_trials=1, reuse_actors=reuse, verbose=0,
                                             storage_path=scratch_dir("reuse"), resources_per_trial={"cpu": 1}))
            walls[reuse].append(wall)
    warm, fresh = statistics.median(walls[True]), statistics.median(walls[False])
    print(markdown_table(["workers", "wall (s, median)", "per trial (s)"],
                         [["warm (reused)", f"{warm:.2f}", f"{warm / args.trials:.3f}"],
                          ["fresh per trial", f"{fresh:.2f}", f"{fresh / args.trials:.3f}"]]))
    print(f"\nA fresh worker costs {(fresh - warm) / args.trials:.2f} s per trial more "
          f"({args.trials} trials, {args.repeats} repeats, load {os.getloadavg()[0]:.1f}).")


if __name__ == "__main__":
    main()
