"""ASHA on a synthetic learning curve: this tuner against Ray Tune, same 2 CPUs.

64 trials, ASHA(max_t=100, grace_period=1, reduction_factor=3), a curve
``loss = 1/(0.1 + width*step/100) + 0.1*height`` with width in [0, 20] and
height in [-100, 100]; Ray Tune with ``reuse_actors=True``. Prints wall time,
total iterations run and the best loss for each, over a few seeds.

    python benchmarks/asha.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, scratch_dir, start_ray, timed

MAX_T, GRACE, RF, TRIALS = 100, 1, 3, 64


def curve(width: float, height: float, step: int) -> float:
    return 1.0 / (0.1 + width * step / 100) + 0.1 * height


def tuner_trainable(config):
    import tuner as tune

    for step in range(1, MAX_T + 1):
        tune.report({"loss": curve(config["width"], config["height"], step)})


def ray_trainable(config):
    from ray import tune as rtune

    for step in range(1, MAX_T + 1):
        rtune.report({"loss": curve(config["width"], config["height"], step)})


def run_tuner(seed: int, concurrency: int | None) -> tuple[float, int, float]:
    import tuner as tune
    from schedulers import ASHAScheduler

    seconds, out = timed(lambda: tune.run(
        tuner_trainable, config={"width": tune.uniform(0, 20), "height": tune.uniform(-100, 100)},
        num_samples=TRIALS, metric="loss", mode="min", seed=seed, verbose=0, log_to_tensorboard=False,
        max_concurrent_trials=concurrency, scheduler=ASHAScheduler(max_t=MAX_T, grace_period=GRACE, reduction_factor=RF),
        storage_path=scratch_dir("asha_tuner")))
    iterations = sum(len(t.history) for t in out.trials)
    return seconds, iterations, min(r["loss"] for t in out.trials for r in t.history)


def run_ray_tune(seed: int, concurrency: int | None) -> tuple[float, int, float]:
    from ray import tune as rtune
    from ray.tune.schedulers import ASHAScheduler as RayASHA
    from ray.tune.search.basic_variant import BasicVariantGenerator

    def go():
        tuner = rtune.Tuner(
            ray_trainable, param_space={"width": rtune.uniform(0, 20), "height": rtune.uniform(-100, 100)},
            tune_config=rtune.TuneConfig(
                num_samples=TRIALS, metric="loss", mode="min", reuse_actors=True,
                scheduler=RayASHA(max_t=MAX_T, grace_period=GRACE, reduction_factor=RF),
                # Ray Tune ignores max_concurrent_trials with its own generator: limit the generator
                search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=concurrency or 0)),
            run_config=rtune.RunConfig(storage_path=scratch_dir("asha_raytune"), verbose=0),
        )
        return tuner.fit()

    seconds, grid = timed(go)
    import pandas as pd

    # every reported row, from disk (Result.metrics_dataframe can come back short)
    frames = [pd.read_csv(os.path.join(r.path, "progress.csv")) for r in grid]
    iterations = sum(len(f) for f in frames if f is not None)
    best = min(f["loss"].min() for f in frames if f is not None and len(f))
    return seconds, iterations, best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    start_ray(2)
    runners = {"tuner ASHAScheduler": run_tuner}
    if ray_tune_available():
        runners["Ray Tune ASHAScheduler (reuse_actors=True)"] = run_ray_tune
    rows = []
    for concurrency, label in ((None, "2 at a time"), (1, "1 at a time")):
        walls, iterations = {}, {}
        for name, fn in runners.items():
            measured = [fn(seed, concurrency) for seed in range(args.seeds)]
            for seed, (s, it, best) in enumerate(measured):
                print(f"{name} {label} seed {seed}: {s:.2f}s {it} iterations best {best:.4f}", file=sys.stderr,
                      flush=True)
            walls[name] = statistics.median(m[0] for m in measured)
            iterations[name] = [m[1] for m in measured]
            rows.append([f"{name}, {label}", f"{walls[name]:.2f}", " / ".join(str(m[1]) for m in measured),
                         f"{statistics.median(m[2] for m in measured):.4f}"])
        if len(walls) == 2:
            ours, theirs = walls.values()
            rows[-2].append(f"{theirs / ours:.1f}x faster")
            rows[-1].append("")
    header = ["scheduler (64 trials, max_t=100, rf=3)", "wall time (s, median)",
              "total iterations (per seed)", "best loss (median)"] + (["speed-up"] if len(runners) == 2 else [])
    print(markdown_table(header, rows))
    print(f"\n{args.seeds} seeds; same search space, same 2 CPUs, one local Ray. One at a time, the arrival "
          "order at the rungs is fixed, so both must make the same decisions and run the same iterations.")


if __name__ == "__main__":
    main()
