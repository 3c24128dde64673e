"""What a sweep's result histories cost the driver's memory, and what reading them back costs.

    python benchmarks/history_memory.py [--trials 2000] [--results 100] [--layout compact|default]

One sweep of ``--trials`` trials reporting ``--results`` results each, without Ray (the
in-process executor of the tests, so the driver's memory is not mixed with Ray's), in a
process of its own; then ``tune.load`` of that directory in another. Each prints the
process's peak RSS and its RSS when done (the results object still held), and how long
``dataframe(all_results=True)`` takes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reporter(config):
    import tuner as tune

    for i in range(config["results"]):
        tune.report({"loss": config["x"] / (i + 1), "acc": 1.0 - 1.0 / (i + 2), "step": i})


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> tuple[float, float]:
    """(peak, current) RSS of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak, current


def child_run(path: str, trials: int, results: int, compact: bool) -> dict:
    import tuner as tune
    from tests.fakes import InProcessExecutor

    start, cpu = time.perf_counter(), _cpu_s()
    out = tune.run(reporter, config={"x": tune.uniform(0, 1), "results": results}, num_samples=trials,
                   metric="loss", mode="min", storage_path=os.path.dirname(path), name=os.path.basename(path),
                   seed=0, verbose=0, trial_files=not compact, log_to_tensorboard=False,
                   _executor=InProcessExecutor())
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
    peak, current = _rss_mb()
    start = time.perf_counter()
    rows = len(out.dataframe(all_results=True))
    frame = time.perf_counter() - start
    assert rows == trials * results, rows
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak, "rss_mb": current, "dataframe_s": frame}


def child_load(path: str, trials: int, results: int) -> dict:
    import tuner as tune

    start = time.perf_counter()
    out = tune.load(path)
    wall = time.perf_counter() - start
    peak, current = _rss_mb()
    start = time.perf_counter()
    rows = len(out.dataframe(all_results=True))
    frame = time.perf_counter() - start
    assert rows == trials * results, rows
    return {"load_s": wall, "peak_mb": peak, "rss_mb": current, "dataframe_s": frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--results", type=int, default=100)
    parser.add_argument("--layout", choices=["compact", "default"], default="compact")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        who, path, trials, results = args.child
        out = (child_run(path, int(trials), int(results), args.layout == "compact") if who == "run"
               else child_load(path, int(trials), int(results)))
        print(json.dumps(out))
        return
    root = tempfile.mkdtemp(prefix="bench_history_")
    path = os.path.join(root, "exp")
    try:
        for who in ("run", "load"):
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--layout", args.layout,
                                   "--child", who, path, str(args.trials), str(args.results)],
                                  check=True, capture_output=True, text=True)
            print(who, done.stdout.strip().splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
