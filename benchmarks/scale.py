"""Scale: the cost of a trial at 1,000 to 100,000 trials, and model-based search at 1,000+.

    python benchmarks/scale.py [--optuna-sizes 1000,3000] [--sizes 1000,10000,100000] [--skip-ray-tune]

(1) ASHA (max_t=9, grace 1, rf 3) + OptunaSearch(seed=0) against Optuna used in
    one process (TPE seed 0, SuccessiveHalvingPruner rf 3), same objective, 9 steps.
(2) One-result trials (random search): wall time, driver peak RSS, experiment
    directory size and file count, then `tune.load`, `tuner show` and
    `tune.resume` of the finished directory; ``--compact-sizes`` again in the
    compact layout (``trial_files=False``).
(3) Ray Tune with reuse_actors=True on the 1,000-trial rows, for reference.

Every run is its own process (its peak RSS is its own) on a local Ray with 2
CPUs, the tuner with its defaults (TensorBoard export on, verbose=1: a status
line). Prints markdown tables and writes the per-trial cost against the trial
count to docs/img/scale_per_trial.png.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, ROOT)

from benchmarks._common import markdown_table  # noqa: E402

PLOT = os.path.join(ROOT, "docs", "img", "scale_per_trial.png")
CURVES = os.path.join(ROOT, "docs", "img", "scale_per_trial.json")  # the plot's data; runs merge into it
STEPS = 9


def loss(x: float, step: int) -> float:
    return (x - 1.0) ** 2 + 1.0 / step


def nine_steps(config):
    import tuner as tune

    for step in range(1, STEPS + 1):
        tune.report({"loss": loss(config["x"], step)})


def one_result(config):
    import tuner as tune

    tune.report({"loss": loss(config["x"], 1)})


def ray_nine_steps(config):
    from ray import tune as rtune

    for step in range(1, STEPS + 1):
        rtune.report({"loss": loss(config["x"], step), "step": step})


def ray_one_result(config):
    from ray import tune as rtune

    rtune.report({"loss": loss(config["x"], 1)})


# --- one measurement, in its own process ------------------------------------------------------
def _start_ray(attempts: int = 8) -> None:
    """A local Ray of its own; its start is retried (a loaded machine can miss Ray's 30 s start-up limit)."""
    import ray

    for attempt in range(attempts):
        try:
            ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            return
        except Exception:  # noqa: BLE001 - Ray raises a bare Exception when its node times out
            ray.shutdown()
            if attempt == attempts - 1:
                raise


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _per_trial_curve(starts: list[float], points: int = 20) -> list[tuple[int, float]]:
    """(trials done, ms per trial over the window ending there), from each trial's start time."""
    starts = sorted(starts)
    width = max(1, len(starts) // points)
    return [(i, 1000 * (starts[i] - starts[i - width]) / width) for i in range(width, len(starts), width)]


def _journal_starts(path: str) -> list[float]:
    """When each trial's first result was journaled (``timestamp`` of its first result)."""
    first: dict[str, float] = {}
    with open(os.path.join(path, "journal.jsonl"), "rb") as f:
        for line in f:
            if line.startswith(b'{"event":"result"'):
                event = json.loads(line)
                first.setdefault(event["trial_id"], event["result"]["timestamp"])
    return list(first.values())


def _dir_stats(path: str) -> tuple[float, int]:
    size, files = 0, 0
    for root, _, names in os.walk(path):
        files += len(names)
        size += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return size / 2**20, files


def child_tuner(kind: str, n: int, storage: str) -> dict:
    import tuner as tune

    _start_ray()
    if kind == "asha-optuna":
        from schedulers import ASHAScheduler
        from searchers import OptunaSearch

        kwargs = dict(scheduler=ASHAScheduler(max_t=STEPS, grace_period=1, reduction_factor=3),
                      search_alg=OptunaSearch(seed=0))
        trainable = nine_steps
    else:
        kwargs, trainable = {"trial_files": kind != "one-compact"}, one_result
    started = time.perf_counter()
    results = tune.run(trainable, config={"x": tune.uniform(-5, 5)}, num_samples=n, metric="loss", mode="min",
                       storage_path=storage, name="sweep", seed=0, verbose=1, **kwargs)
    wall = time.perf_counter() - started
    out = {"wall": wall, "rss_mb": _rss_mb(), "best": results.best_result["loss"]}
    path = results.experiment_path
    del results
    out["dir_mb"], out["files"] = _dir_stats(path)
    out["load_s"] = _timed(lambda: tune.load(path))
    out["show_s"] = _timed(lambda: subprocess.run([sys.executable, "-m", "tuner.cli", "show", path],
                                                  cwd=ROOT, check=True, capture_output=True))
    out["resume_s"] = _timed(lambda: tune.resume(path, trainable=trainable, verbose=0))
    out["curve"] = _per_trial_curve(_journal_starts(path))
    return out


def child_optuna(n: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    starts: list[float] = []

    def objective(trial):
        starts.append(time.time())
        x = trial.suggest_float("x", -5, 5)
        for step in range(1, STEPS + 1):
            value = loss(x, step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    started = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return {"wall": time.perf_counter() - started, "rss_mb": _rss_mb(), "best": study.best_value,
            "curve": _per_trial_curve(starts)}


def child_ray_tune(kind: str, n: int, storage: str) -> dict:
    from ray import tune as rtune

    _start_ray()
    kwargs: dict = {}
    trainable = ray_one_result
    if kind == "asha-optuna":
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        kwargs = dict(scheduler=ASHAScheduler(time_attr="step", max_t=STEPS, grace_period=1, reduction_factor=3),
                      search_alg=OptunaSearch(seed=0))
        trainable = ray_nine_steps
    tuner = rtune.Tuner(trainable, param_space={"x": rtune.uniform(-5, 5)},
                        tune_config=rtune.TuneConfig(num_samples=n, metric="loss", mode="min", reuse_actors=True,
                                                     **kwargs),
                        run_config=rtune.RunConfig(storage_path=storage, name="sweep", verbose=0))
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    return {"wall": wall, "rss_mb": _rss_mb(), "best": grid.get_best_result().metrics["loss"]}


def layout_cost(n: int, repeats: int) -> str:
    """Driver time per one-result trial in the default and the compact layout, without Ray (the
    in-process executor of the tests), so that what the files cost is not lost in Ray's latency."""
    import statistics

    import tuner as tune
    from tests.fakes import InProcessExecutor

    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for trial_files in (True, False):  # alternating, so that a noisy moment hits both
            storage = tempfile.mkdtemp(prefix="bench_scale_layout_")
            times[trial_files].append(_timed(lambda: tune.run(
                one_result, config={"x": tune.uniform(-5, 5)}, num_samples=n, metric="loss", mode="min",
                storage_path=storage, seed=0, verbose=0, trial_files=trial_files, _executor=InProcessExecutor())))
            shutil.rmtree(storage, ignore_errors=True)
    rows = [[label, f"{statistics.median(times[flag]):.1f}", f"{1000 * statistics.median(times[flag]) / n:.2f}"]
            for label, flag in (("default (per-trial files)", True), ("compact (trial_files=False)", False))]
    return markdown_table([f"{n:,} one-result trials, no Ray, median of {repeats}", "wall (s)", "ms/trial"], rows)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- the driver ---------------------------------------------------------------------------------
def measure(who: str, kind: str, n: int, timeout: float) -> dict | None:
    storage = tempfile.mkdtemp(prefix=f"bench_scale_{who}_")
    out_file = os.path.join(storage, "out.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", who, kind, str(n), storage, out_file]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, check=True, stdout=subprocess.DEVNULL)
        with open(out_file) as f:
            out = json.load(f)
    except subprocess.TimeoutExpired:
        out = _partial(os.path.join(storage, "sweep"))
        print(f"{who} {kind} {n}: stopped after {timeout:.0f} s", file=sys.stderr, flush=True)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"{who} {kind} {n}: failed ({exc})", file=sys.stderr, flush=True)
        out = None
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    print(f"{who} {kind} {n}: {out and {k: v for k, v in out.items() if k != 'curve'}}", file=sys.stderr, flush=True)
    return out


def _partial(path: str) -> dict | None:
    """What a run stopped at the time limit got through, from its journal."""
    try:
        starts = _journal_starts(path)
    except OSError:
        return None
    if len(starts) < 2:
        return None
    return {"partial": True, "trials_done": len(starts), "wall": max(starts) - min(starts),
            "curve": _per_trial_curve(starts)}


def plot(curves: dict[str, list[tuple[int, float]]]) -> None:
    """Adds ``curves`` to the saved ones (a curve measured again replaces its old self) and draws them all."""
    import matplotlib

    saved = {}
    if os.path.exists(CURVES):
        with open(CURVES) as f:
            saved = json.load(f)
    curves = {**saved, **{k: v for k, v in curves.items() if v}}
    os.makedirs(os.path.dirname(CURVES), exist_ok=True)
    with open(CURVES, "w") as f:
        json.dump(curves, f, indent=0)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves.items():
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("trials done")
    ax.set_ylabel("ms per trial (window of 1/20 of the run)")
    ax.set_ylim(bottom=0)
    ax.set_title("Per-trial cost along a sweep (2 CPUs, shared machine)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(PLOT), exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optuna-sizes", default="1000,3000")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--compact-sizes", default="10000",
                        help="one-result sizes also run in the compact layout (trial_files=False)")
    parser.add_argument("--layout-trials", type=int, default=3000,
                        help="trials of the Ray-free default-vs-compact layout comparison (0 skips)")
    parser.add_argument("--skip-ray-tune", action="store_true")
    parser.add_argument("--ray-tune-optuna", action="store_true",
                        help="also Ray Tune's ASHA + OptunaSearch at 1,000 trials (slow: minutes)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to one run")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        who, kind, n, storage, out_file = args.child
        out = (child_optuna(int(n)) if who == "optuna" else child_ray_tune(kind, int(n), storage)
               if who == "raytune" else child_tuner(kind, int(n), storage))
        with open(out_file, "w") as f:
            json.dump(out, f)
        return

    curves: dict[str, list] = {}
    rows = []
    for n in [int(s) for s in args.optuna_sizes.split(",") if s]:
        ours = measure("tuner", "asha-optuna", n, args.timeout)
        peer = measure("optuna", "asha-optuna", n, args.timeout)
        ray_tune = (measure("raytune", "asha-optuna", n, args.timeout)
                    if n <= 1000 and args.ray_tune_optuna and not args.skip_ray_tune else None)
        curves[f"ASHA + OptunaSearch, {n:,} trials"] = ours and ours["curve"]
        curves[f"Optuna in-process, {n:,} trials"] = peer and peer["curve"]
        fmt = lambda r, k="wall": "n/a" if not r else f"{r[k]:.1f}"  # noqa: E731
        rows.append([f"{n:,}", fmt(ours), fmt(peer), "n/a" if not (ours and peer) else f"{ours['wall'] / peer['wall']:.2f}x",
                     fmt(ray_tune), f"{ours['best']:.4g}" if ours else "n/a", f"{peer['best']:.4g}" if peer else "n/a"])
    if rows:
        print(markdown_table(["trials", "tuner ASHA+OptunaSearch (s)", "Optuna in-process TPE+SHA (s)",
                              "tuner / Optuna", "Ray Tune ASHA+OptunaSearch, reuse_actors (s)",
                              "tuner best loss", "Optuna best loss"], rows))
        print()
    rows = []
    runs = [(int(s), "one") for s in args.sizes.split(",") if s]
    runs += [(int(s), "one-compact") for s in args.compact_sizes.split(",") if s]
    for n, kind in runs:
        ours = measure("tuner", kind, n, args.timeout)
        ray_tune = (measure("raytune", "one", n, args.timeout) if n <= 1000 and kind == "one"
                    and not args.skip_ray_tune else None)
        label = f"{n:,}" + (" compact" if kind == "one-compact" else "")
        curves[f"one-result trials, {label}"] = ours and ours["curve"]
        if ours is None:
            rows.append([label] + ["failed"] * 9)
            continue
        if ours.get("partial"):
            done = ours["trials_done"]
            rows.append([f"{label} (stopped at {done:,})", f"{ours['wall']:.1f}",
                         f"{1000 * ours['wall'] / done:.2f}"] + ["n/a"] * 7)
            continue
        rows.append([label, f"{ours['wall']:.1f}", f"{1000 * ours['wall'] / n:.2f}", f"{ours['rss_mb']:.0f}",
                     f"{ours['dir_mb']:.0f}", f"{ours['files']:,}", f"{ours['load_s']:.2f}", f"{ours['show_s']:.2f}",
                     f"{ours['resume_s']:.2f}", "" if not ray_tune else f"{ray_tune['wall']:.1f}"])
    if rows:
        print(markdown_table(["trials", "wall (s)", "ms/trial", "driver peak RSS (MB)", "dir (MB)", "files",
                              "tune.load (s)", "tuner show (s)", "tune.resume (s)",
                              "Ray Tune reuse_actors (s)"], rows))
    if args.layout_trials:
        print()
        print(layout_cost(args.layout_trials, repeats=3))
    plot(curves)


if __name__ == "__main__":
    main()
