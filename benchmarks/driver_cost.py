"""The driver's own cost: CPU seconds the driver process spends per result and per trial.

On a cluster the driver is one process on the head node; everything else scales with
nodes. Its CPU time per event (not wall time, which the trials' own work sets) says how
many results and trial starts per second one driver can take, and so how large a sweep
one head node can drive (docs/scaling.md does the arithmetic).

    python benchmarks/driver_cost.py [--results 20000] [--trials 2000] [--repeats 3]

Two workloads on a local Ray (2 CPUs), trainables that only report:
    results: 20 trials reporting --results results in all (per-result cost: journal,
             scheduler, progress table, TensorBoard export);
    trials:  --trials trials of one result each (per-trial cost: searcher, launch,
             trial directory and files, actor reuse).
The driver's CPU time (user + system, this process only) is divided by the events.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, scratch_dir, start_ray, timed


def reporter(config):
    import tuner as tune

    for i in range(config["results"]):
        tune.report({"loss": float(i)})


def driver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(trials: int, results_per_trial: int, tensorboard: bool) -> tuple[float, float]:
    """(driver CPU seconds, wall seconds) of one sweep."""
    import tuner as tune

    before = driver_cpu()
    wall, _ = timed(lambda: tune.run(reporter, config={"results": results_per_trial}, num_samples=trials,
                                     storage_path=scratch_dir("driver"), verbose=0,
                                     log_to_tensorboard=tensorboard))
    return driver_cpu() - before, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start_ray(2)
    measure(2, 10, False)  # warm the worker pool and imports
    rows = []
    for label, trials, per_trial, events, unit in (
            ("results", 20, args.results // 20, args.results, "result"),
            ("trials", args.trials, 1, args.trials, "trial")):
        for tensorboard in (False, True):
            runs = [measure(trials, per_trial, tensorboard) for _ in range(args.repeats)]
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            rows.append([label, f"{trials} x {per_trial}", "on" if tensorboard else "off", f"{wall:.2f}",
                         f"{cpu:.2f}", f"{cpu / events * 1e3:.3f} ms per {unit}", f"{events / cpu:,.0f}"])
    print(markdown_table(["workload", "trials x results", "TensorBoard", "wall (s)", "driver CPU (s)",
                          "driver CPU per event", "events per driver-CPU-second"], rows))


if __name__ == "__main__":
    main()
