"""Search quality of the built-in searchers on standard synthetic functions.

Branin (2-D), Hartmann-6 (6-D) and Rosenbrock (10-D), no download needed; 100
trials per run, 10 seeds. For each searcher: the median over seeds of the best
value found, and the overhead per suggestion (time spent in ``suggest`` plus
``on_trial_complete``, the objective itself costs nothing here). Optuna used
directly (``study.optimize`` with the same TPE sampler and seed) is the
reference: ``OptunaSearch`` should match it, which shows the adapter loses
nothing.

The searchers are driven directly (suggest, evaluate, ``on_trial_complete``,
one trial at a time) rather than through ``tune.run``: what is measured is
search quality and the searcher's own cost, not the run loop or Ray.

    python benchmarks/searchers.py                      # prints a markdown table (or python -m benchmarks.searchers)
    python benchmarks/searchers.py --seeds 3 --out docs/benchmarks_searchers.md
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Any, Callable

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    # `python benchmarks/searchers.py` puts benchmarks/ first on the path, where this
    # file would shadow the `searchers` package: look from the repository root instead.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import optuna

import tuner as tune
from searchers import BasicVariantGenerator, HyperOptSearch, OptunaSearch, Searcher

# --- test functions (minimized) ------------------------------------------------------------------

HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(c: dict[str, float]) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + cc * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(c: dict[str, float]) -> float:
    x = np.array([c[f"x{i}"] for i in range(6)])
    return float(-np.sum(HARTMANN_ALPHA * np.exp(-np.sum(HARTMANN_A * (x - HARTMANN_P) ** 2, axis=1))))


def rosenbrock10(c: dict[str, float]) -> float:
    x = np.array([c[f"x{i}"] for i in range(10)])
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


PROBLEMS: dict[str, tuple[Callable[[dict], float], dict[str, tuple[float, float]], float]] = {
    "Branin (2-D)": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, 0.397887),
    "Hartmann-6 (6-D)": (hartmann6, {f"x{i}": (0.0, 1.0) for i in range(6)}, -3.32237),
    "Rosenbrock (10-D)": (rosenbrock10, {f"x{i}": (-5.0, 10.0) for i in range(10)}, 0.0),
}


# --- runners --------------------------------------------------------------------------------------


def run_searcher(searcher: Searcher, fn: Callable, bounds: dict, trials: int) -> tuple[float, float]:
    """Best value and seconds per suggestion (suggest + on_trial_complete) of one run."""
    space = {k: tune.uniform(lo, hi) for k, (lo, hi) in bounds.items()}
    searcher.set_search_properties("value", "min", space, num_samples=trials)
    best, spent = math.inf, 0.0
    for i in range(trials):
        start = time.perf_counter()
        config = searcher.suggest(f"t{i}")
        spent += time.perf_counter() - start
        value = fn(config)
        best = min(best, value)
        start = time.perf_counter()
        searcher.on_trial_complete(f"t{i}", {"value": value})
        spent += time.perf_counter() - start
    return best, spent / trials


def run_optuna_direct(seed: int, fn: Callable, bounds: dict, trials: int) -> tuple[float, float]:
    """The same TPE sampler and budget, through Optuna's own ``study.optimize``."""
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: optuna.Trial) -> float:
        return fn({k: trial.suggest_float(k, lo, hi) for k, (lo, hi) in bounds.items()})

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return study.best_value, (time.perf_counter() - start) / trials


METHODS: dict[str, Callable[[int, Callable, dict, int], tuple[float, float]]] = {
    "random (BasicVariantGenerator)": lambda s, f, b, n: run_searcher(BasicVariantGenerator(seed=s), f, b, n),
    "OptunaSearch (TPE)": lambda s, f, b, n: run_searcher(OptunaSearch(seed=s), f, b, n),
    "HyperOptSearch (TPE)": lambda s, f, b, n: run_searcher(HyperOptSearch(seed=s), f, b, n),
    "Optuna directly (TPE)": run_optuna_direct,
}


def benchmark(seeds: int, trials: int) -> list[dict[str, Any]]:
    rows = []
    for problem, (fn, bounds, optimum) in PROBLEMS.items():
        for method, runner in METHODS.items():
            bests, overheads = zip(*(runner(seed, fn, bounds, trials) for seed in range(seeds)))
            quartiles = statistics.quantiles(bests, n=4) if len(bests) > 1 else [bests[0]] * 3
            rows.append({"problem": problem, "optimum": optimum, "method": method,
                         "median": statistics.median(bests), "q1": quartiles[0], "q3": quartiles[2],
                         "overhead_ms": 1000 * statistics.median(overheads)})
    return rows


def table(rows: list[dict[str, Any]], seeds: int, trials: int, wall_s: float) -> str:
    lines = [
        f"Median best value over {seeds} seeds (0..{seeds - 1}), {trials} sequential trials each, minimizing; "
        "[q1, q3] the quartiles over seeds. Overhead: median milliseconds per suggestion spent in the searcher "
        "(suggest + on_trial_complete; for Optuna directly, study.optimize time per trial).",
        f"Measured with `python benchmarks/searchers.py --seeds {seeds} --trials {trials}` on "
        f"{platform.machine()} / Python {platform.python_version()}, optuna {optuna.__version__}, "
        f"in {wall_s:.0f} s.",
        "",
        "| function (optimum) | searcher | median best | [q1, q3] | overhead ms/suggestion |",
        "|---|---|---:|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['problem']} ({r['optimum']:g}) | {r['method']} | {r['median']:.4g} | "
                     f"[{r['q1']:.4g}, {r['q3']:.4g}] | {r['overhead_ms']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    start = time.perf_counter()
    rows = benchmark(args.seeds, args.trials)
    text = table(rows, args.seeds, args.trials, time.perf_counter() - start)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# Searcher benchmark\n\n" + text + "\n")


if __name__ == "__main__":
    main()
