"""Time to a good model: the tuner against Ray Tune and Optuna on a real training job.

Workload: a PyTorch MLP on scikit-learn's digits (as in examples/mlp.py) with learning
rate, width, depth, batch size, weight decay and dropout in the space; one epoch is one
unit of budget. Every method gets the same number of configurations, the same maximum
epochs per configuration, the same seeds and the same 2 CPUs:

    method          tuner / Ray Tune                        Optuna in-process (n_jobs=2)
    random + FIFO   default searcher, no scheduler           RandomSampler, no pruner
    ASHA random     ASHA(max_t, grace 1, rf 3)               RandomSampler + SuccessiveHalvingPruner
    ASHA TPE        ASHA + OptunaSearch(seed)                TPESampler + SuccessiveHalvingPruner
    HyperBand       HyperBand(max_t, rf 3), checkpoints      RandomSampler + HyperbandPruner

The tuner runs twice: on Ray workers (its default, like Ray Tune) and with
``in_process=True`` (two threads of the driver, like Optuna's ``n_jobs=2``).

    python benchmarks/time_to_accuracy.py            # 32 configs x 15 epochs, seeds 0-4
    python benchmarks/time_to_accuracy.py --quick    # smoke: 8 configs x 4 epochs, 1 seed
    python benchmarks/time_to_accuracy.py --workload rl [--seeds 3]   # PPO on Acrobot-v1, PBT

Prints, and (not with --quick) appends to docs/benchmarks_time_to_accuracy.md, a table of
the best validation accuracy at the budget, wall time, epochs trained, and the time each
method took to reach 95% of the best accuracy any method found; draws docs/img/tta_*.png:
best accuracy against wall time and against total epochs (median and inter-quartile band
over seeds).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, scratch_dir, start_ray
from benchmarks._plots import plot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A typical configuration: the in-process warm-up's epoch and the cold-start floor's trial.
TYPICAL = {"lr": 1e-2, "width": 64, "layers": 1, "batch_size": 32, "weight_decay": 1e-5, "dropout": 0.1,
           "epochs": 1, "checkpoint": False}
METHODS = ("random+FIFO", "ASHA random", "ASHA TPE", "HyperBand")


# --- the training job, the same for every tool ------------------------------------------------

def epochs(config, state=None):
    """Yields (epoch, validation accuracy, state) for one configuration, from ``state`` on."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from torch import nn

    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x_tr, x_val, y_tr, y_val = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
    x_tr, x_val = torch.tensor(x_tr, dtype=torch.float32), torch.tensor(x_val, dtype=torch.float32)
    y_tr, y_val = torch.tensor(y_tr), torch.tensor(y_val)
    torch.manual_seed(0)
    layers, width = [], 64
    for _ in range(config["layers"]):
        layers += [nn.Linear(width, config["width"]), nn.ReLU(), nn.Dropout(config["dropout"])]
        width = config["width"]
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        model.train()
        for idx in torch.randperm(len(x_tr)).split(config["batch_size"]):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            acc = (model(x_val).argmax(1) == y_val).float().mean().item()
        yield epoch, acc, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}


def tuner_trainable(config):
    import tuner as tune

    for _, acc, state in epochs(config, tune.get_checkpoint()):
        tune.report({"acc": acc, "wall": time.time()}, checkpoint=state if config["checkpoint"] else None)


def ray_trainable(config):
    import tempfile

    import torch
    from ray import tune as rtune

    state = None
    checkpoint = rtune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"))
    for _, acc, new_state in epochs(config, state):
        if not config["checkpoint"]:
            rtune.report({"acc": acc, "wall": time.time()})
            continue
        with tempfile.TemporaryDirectory() as d:
            torch.save(new_state, os.path.join(d, "state.pt"))
            rtune.report({"acc": acc, "wall": time.time()}, checkpoint=rtune.Checkpoint.from_directory(d))


# --- one run of one method through each tool: sorted (seconds since start, acc), one per epoch --

def space(domains, max_t: int, checkpoint: bool):
    return {"lr": domains.loguniform(1e-4, 1e-1), "width": domains.choice([32, 64, 128, 256]),
            "layers": domains.choice([1, 2, 3]), "batch_size": domains.choice([16, 32, 64, 128]),
            "weight_decay": domains.loguniform(1e-6, 1e-2), "dropout": domains.uniform(0.0, 0.5),
            "epochs": max_t, "checkpoint": checkpoint}


#: The searched keys, and the configurations the tuner drew for (method, seed): with --paired, Ray Tune
#: (points_to_evaluate) and Optuna (enqueue_trial) run the same ones in the same order, so that a seed
#: compares the tools on the same models. ASHA TPE cannot be paired: its suggestions follow its results.
SEARCHED = ("lr", "width", "layers", "batch_size", "weight_decay", "dropout")
DRAWN: dict[tuple[str, int], list[dict]] = {}
PAIRED = False  # set from --paired in main()


def drawn(method: str, seed: int) -> list[dict] | None:
    """The tuner's configurations for this run when it is paired, else None (each tool draws its own)."""
    if not PAIRED or method == "ASHA TPE":
        return None
    if (method, seed) not in DRAWN:
        raise RuntimeError(f"--paired: the tuner must run {method} seed {seed} first (--tools starts with tuner)")
    return DRAWN[(method, seed)]


def run_tuner(method: str, n: int, max_t: int, seed: int, in_process: bool = False) -> list[tuple[float, float]]:
    import tuner as tune
    from schedulers import ASHAScheduler, HyperBandScheduler
    from searchers import OptunaSearch

    scheduler = {"ASHA random": ASHAScheduler(max_t=max_t, grace_period=1, reduction_factor=3),
                 "ASHA TPE": ASHAScheduler(max_t=max_t, grace_period=1, reduction_factor=3),
                 "HyperBand": HyperBandScheduler(max_t=max_t, reduction_factor=3)}.get(method)
    search = OptunaSearch(seed=seed) if method == "ASHA TPE" else None
    start = time.time()
    results = tune.run(tuner_trainable, config=space(tune, max_t, method == "HyperBand"), num_samples=n,
                       metric="acc", mode="max", scheduler=scheduler, search_alg=search, seed=seed, verbose=0,
                       storage_path=scratch_dir("tta"), log_to_tensorboard=False, in_process=in_process,
                       max_concurrent_trials=2 if in_process else None)  # the 2 CPUs Ray is given
    DRAWN[(method, seed)] = [{k: t.config[k] for k in SEARCHED} for t in results.trials]  # in trial-id order
    return sorted((r["wall"] - start, r["acc"]) for t in results.trials for r in t.history)


def run_tuner_in_process(method: str, n: int, max_t: int, seed: int) -> list[tuple[float, float]]:
    """The tuner with ``in_process=True``: trials in two threads of this process, as Optuna runs them."""
    return run_tuner(method, n, max_t, seed, in_process=True)


def run_ray_tune(method: str, n: int, max_t: int, seed: int) -> list[tuple[float, float]]:
    import pandas as pd
    from ray import tune as rtune
    from ray.tune.schedulers import AsyncHyperBandScheduler, HyperBandScheduler
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    scheduler = {"ASHA random": AsyncHyperBandScheduler(max_t=max_t, grace_period=1, reduction_factor=3),
                 "ASHA TPE": AsyncHyperBandScheduler(max_t=max_t, grace_period=1, reduction_factor=3),
                 "HyperBand": HyperBandScheduler(max_t=max_t, reduction_factor=3)}.get(method)
    # Ray Tune ignores max_concurrent_trials with its own BasicVariantGenerator: limit the generator
    search = (OptunaSearch(seed=seed) if method == "ASHA TPE"
              else BasicVariantGenerator(random_state=seed, max_concurrent=2, points_to_evaluate=drawn(method, seed)))
    start = time.time()
    tuner = rtune.Tuner(ray_trainable, param_space=space(rtune, max_t, method == "HyperBand"),
                        tune_config=rtune.TuneConfig(metric="acc", mode="max", num_samples=n, scheduler=scheduler,
                                                     search_alg=search, reuse_actors=True,
                                                     max_concurrent_trials=2 if method == "ASHA TPE" else None),
                        run_config=rtune.RunConfig(storage_path=scratch_dir("tta_ray"), verbose=0))
    events = []
    for result in tuner.fit():
        progress = os.path.join(result.path, "progress.csv")
        if os.path.exists(progress):  # its metrics_dataframe can come back short (seen before)
            frame = pd.read_csv(progress)
            events += [(w - start, a) for w, a in zip(frame["wall"], frame["acc"])]
    return sorted(events)


def run_optuna(method: str, n: int, max_t: int, seed: int) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed) if method == "ASHA TPE" else optuna.samplers.RandomSampler(seed)
    halving = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    pruner = {"ASHA random": halving, "ASHA TPE": halving,
              "HyperBand": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_t, reduction_factor=3),
              }.get(method, optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    for config in drawn(method, seed) or []:
        study.enqueue_trial(config)
    events: list[tuple[float, float]] = []
    start = time.time()

    def objective(trial):
        config = {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
                  "width": trial.suggest_categorical("width", [32, 64, 128, 256]),
                  "layers": trial.suggest_categorical("layers", [1, 2, 3]),
                  "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128]),
                  "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
                  "dropout": trial.suggest_float("dropout", 0.0, 0.5), "epochs": max_t}
        acc = 0.0
        for epoch, acc, _ in epochs(config):
            events.append((time.time() - start, acc))
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc

    study.optimize(objective, n_trials=n, n_jobs=2)  # the same 2 CPUs, as two threads
    return sorted(events)


TOOLS = {"tuner": run_tuner, "tuner in-process": run_tuner_in_process, "Ray Tune": run_ray_tune,
         "Optuna": run_optuna}


def cold_start_floor(config: dict, repeats: int = 3) -> dict[str, float]:
    """What any tool that runs a trial in a fresh Ray worker pays before its first result, measured
    on a bare Ray actor (no tuner): the actor's start, the trainable's imports (torch, scikit-learn)
    and its first epoch (data load and torch's first use included). Medians of ``repeats``."""
    import ray

    @ray.remote(num_cpus=1)
    class Bare:
        def ping(self) -> float:
            return time.time()

        def first_epoch(self) -> tuple[float, float, float]:
            began = time.time()
            import sklearn.model_selection  # noqa: F401
            import torch  # noqa: F401

            imported = time.time()
            next(epochs(config))
            return began, imported, time.time()

    parts: dict[str, list[float]] = {"actor start": [], "imports": [], "first epoch": [], "first result": []}
    for _ in range(repeats):
        created = time.time()
        actor = Bare.remote()
        ready = ray.get(actor.ping.remote())
        began, imported, done = ray.get(actor.first_epoch.remote())
        ray.kill(actor)
        for key, value in (("actor start", ready - created), ("imports", imported - began),
                           ("first epoch", done - imported), ("first result", done - created)):
            parts[key].append(value)
        time.sleep(1.0)  # the killed actor's CPU back before the next one
    return {key: statistics.median(values) for key, values in parts.items()}


# --- reading the runs -------------------------------------------------------------------------

def best_so_far(events: list[tuple[float, float]]) -> list[tuple[float, int, float]]:
    """(seconds, epochs trained so far, best accuracy so far) after each epoch, in time order."""
    out, best = [], 0.0
    for i, (t, acc) in enumerate(events, start=1):
        best = max(best, acc)
        out.append((t, i, best))
    return out


def time_to(curve: list[tuple[float, int, float]], target: float, axis: int = 0) -> float | None:
    """When the curve first reaches ``target``: in seconds (axis 0) or epochs trained (axis 1)."""
    return next((point[axis] for point in curve if point[2] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 configs x 4 epochs, 1 seed (a smoke run)")
    parser.add_argument("--configs", type=int, default=32)
    parser.add_argument("--max-t", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated: tuner,tuner in-process,Ray Tune,Optuna")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"))
    parser.add_argument("--paired", action="store_true",
                        help="Ray Tune and Optuna run the tuner's drawn configurations of each seed, in its order "
                             "(all methods but ASHA TPE): a seed then compares the tools on the same models")
    parser.add_argument("--workload", choices=["digits", "rl"], default="digits",
                        help="rl: PPO on Acrobot-v1 with PBT vs Ray Tune's PBT vs random search "
                             "(benchmarks/rllib_pbt.py --env Acrobot-v1; --seeds and --quick pass on)")
    args = parser.parse_args()
    if args.workload == "rl":
        from benchmarks import rllib_pbt

        suffix = "_quick" if args.quick else ""
        rllib_pbt.main(["--env", "Acrobot-v1", "--seeds", str(args.seeds),
                        "--plots", os.path.join(args.out, "img", f"tta_rl_acrobot{suffix}")]
                       + (["--quick"] if args.quick else []))
        return
    global PAIRED
    PAIRED = args.paired
    n, max_t, seeds = (8, 4, 1) if args.quick else (args.configs, args.max_t, args.seeds)
    tools = [t for t in args.tools.split(",") if t != "Ray Tune" or ray_tune_available()]
    start_ray(2)
    # The in-process tools train in this process: its one-time costs (importing torch and scikit-learn,
    # torch's first use, the first data load: 2-3 s) are paid once here, before any clock starts, so that
    # whichever in-process tool runs first is not charged them; Ray workers pay them in every run.
    next(epochs(TYPICAL))

    runs: dict = {}
    walls: dict = {}
    for seed in range(seeds):
        for method in METHODS:
            for tool in tools:  # alternating tools, so load drifts hit each alike
                began = time.perf_counter()
                runs[(tool, method, seed)] = best_so_far(TOOLS[tool](method, n, max_t, seed))
                walls[(tool, method, seed)] = time.perf_counter() - began
                print(f"seed {seed} {method:12s} {tool:8s} {walls[(tool, method, seed)]:6.1f} s  "
                      f"best {runs[(tool, method, seed)][-1][2]:.4f}", flush=True)
    floor = cold_start_floor(TYPICAL)  # its first epoch is all it measures
    firsts = {tool: statistics.median(c[0][0] for k, c in runs.items() if k[0] == tool and c) for tool in tools}
    floor_line = ("Cold start, medians: a bare Ray actor (no tuner) has its first digits epoch "
                  f"{floor['first result']:.2f} s after it is created (actor start {floor['actor start']:.2f} s, "
                  f"torch + scikit-learn imports {floor['imports']:.2f} s, first epoch with the data load "
                  f"{floor['first epoch']:.2f} s); the first result of a sweep came after "
                  + ", ".join(f"{firsts[t]:.2f} s ({t})" for t in tools) + ".")
    top = max(c[-1][2] for c in runs.values() if c)
    rows = []
    for method in METHODS:
        for tool in tools:
            keys = [k for k in runs if k[0] == tool and k[1] == method]
            reached = [r for r in (time_to(runs[k], 0.95 * top) for k in keys) if r is not None]
            epochs_to = [e for e in (time_to(runs[k], 0.95 * top, axis=1) for k in keys) if e is not None]
            rows.append([method, tool, f"{statistics.median(runs[k][-1][2] for k in keys):.4f}",
                         f"{statistics.median(walls[k] for k in keys):.1f}",
                         f"{statistics.median(runs[k][-1][1] for k in keys):.0f}",
                         f"{statistics.median(reached):.2f}" if reached else "never",
                         f"{statistics.median(epochs_to):.0f}" if epochs_to else "never", f"{len(reached)}/{len(keys)}"])
    suffix = "_quick" if args.quick else ""
    os.makedirs(os.path.join(args.out, "img"), exist_ok=True)
    for axis, label, name in ((0, "wall time (s)", "time"), (1, "epochs trained (all trials)", "epochs")):
        plot(runs, tools, axis, label, os.path.join(args.out, "img", f"tta_digits_{name}{suffix}.png"), METHODS)
    import ray
    import torch

    header = (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}, Ray {ray.__version__}, torch {torch.__version__}; "
              f"{n} configurations x {max_t} epochs, seeds 0-{seeds - 1}, every run in one invocation")
    if PAIRED:
        header += "; paired: Ray Tune and Optuna ran the tuner's configurations (but for ASHA TPE)"
    table = markdown_table(["method", "tool", "best acc at budget (median)", "wall (s, median)",
                            "epochs trained (median)", f"time to 95% of {top:.4f} (s, median)",
                            "epochs trained by then (median)", "runs reaching it"], rows)
    print(header)
    print(table)
    print(floor_line)
    if not args.quick:
        import json

        with open(os.path.join(args.out, "img", "tta_digits_runs.json"), "w") as f:  # every curve, to read again
            json.dump({"header": header, "walls": {" | ".join(map(str, k)): v for k, v in walls.items()},
                       "runs": {" | ".join(map(str, k)): c for k, c in runs.items()}}, f)
        with open(os.path.join(args.out, "benchmarks_time_to_accuracy.md"), "a") as f:
            f.write(f"\n## {header}\n\n{table}\n\n{floor_line}\n")


if __name__ == "__main__":
    main()
