"""PBT on RLlib's PPO (CartPole-v1 or Acrobot-v1): this tuner against Ray Tune's PBT and random search, same env steps.

Every method runs the same RLlib algorithm with the settings of
``examples/rllib_pbt_cartpole.py`` (``num_env_runners=0``), a population of
``--population`` trials, ``--budget-steps`` environment steps in all (the same
number of iterations per trial), ``lr`` log-uniform in [1e-4, 3e-3] and
``entropy_coeff`` uniform in [0, 0.01]. Two settings differ from the example, the
same for every method:

* ``--cpus-per-trial`` (default 0.5): RLlib's own resource request, which both
  tools read, so that the whole population of 4 runs at once on 2 CPUs in both
  (no time-sharing, no pause or resume in either);
* ``--eval-steps`` (default 1000): the greedy evaluation after every
  ``algo.train()`` plays a fixed number of env steps instead of 5 episodes, so a
  better policy (longer episodes) costs no more evaluation time.

* tuner PBT (asynchronous; perturbation every 3 iterations, quantile 0.25), the
  trainable given as the ``PPOConfig`` (exploits in place);
* tuner random search (FIFO: the same seeded configs, left alone);
* Ray Tune's ``PopulationBasedTraining`` with the same settings on ``"PPO"``, held
  to the same budget. ``reuse_actors=False`` (Ray Tune's default): RLlib's
  ``Algorithm`` has no ``reset_config``, so with ``reuse_actors=True`` every trial
  that Ray Tune tries to start on a cached actor fails with "Trainable runner reuse
  requires reset_config() to be implemented and return True" (that is why only 1-2
  of 4 trials ran in the runs of 2026-12-02).

Per method, medians over ``--seeds`` seeds of: the best trial's final evaluation
return, the population's mean final evaluation return, the wall time, the
seconds from the start of the sweep to the first evaluation return >= 450, and
the env steps run.

    python benchmarks/rllib_pbt.py [--seeds 3] [--budget-steps 160000] [--population 4] [--env Acrobot-v1]
    python benchmarks/rllib_pbt.py --quick     # 1 seed, 4 trials x 4 iterations of 200 steps: a smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, run_seeds, scratch_dir, start_ray, timed
from benchmarks.pbt import _budget_stopper, _median
from examples import rllib_pbt_cartpole as ex

#: The tasks: the target return, the network and PPO settings for each (the rest as in the example).
#: CartPole saturates at 500 for every method; Acrobot (-500 .. about -60, "solved" at -100)
#: needs a real network and keeps separating methods longer.
TASKS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {"target": ex.TARGET, "model": ex.MODEL, "settings": {}},
    "Acrobot-v1": {"target": -100.0, "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"},
                   "settings": {"vf_loss_coeff": 0.5, "gamma": 0.99},
                   "quick_eval_steps": 500},  # an episode lasts up to 500 steps: fewer report no return
}
TARGET = ex.TARGET  # set from --env in main()
PERTURBATION_INTERVAL = 3
LR, ENTROPY = (1e-4, 3e-3), (0.0, 0.01)
#: Checkpoints kept per trial, both tools. With 2, Ray Tune's PBT (which warns about it) failed a
#: trial whose donor's checkpoint had been deleted before the exploit restored it.
KEEP = 4


TRAIN_STEPS = "env_runners/num_env_steps_sampled"  # this iteration's training env steps
EVAL_STEPS = "evaluation/env_runners/num_env_steps_sampled"  # this iteration's evaluation env steps


def summarize(histories: list[list[dict[str, Any]]], started: float) -> dict[str, Any]:
    """``histories``: per trial, its results in order (RLlib's flattened keys, ``timestamp`` in seconds)."""
    finals = [h[-1].get(ex.EVAL_RETURN, float("nan")) for h in histories if h]
    reached = [r["timestamp"] for h in histories for r in h if r.get(ex.EVAL_RETURN, -math.inf) >= TARGET]

    def steps(key: str) -> float:
        return sum(r.get(key, 0) for h in histories for r in h if r.get(key) == r.get(key))  # NaN: none

    return {"best_final": max(finals), "mean_final": statistics.mean(finals), "finals": sorted(finals),
            "curve": curve(histories, started), "to_target": min(reached) - started if reached else None,
            "env_steps": steps(TRAIN_STEPS), "eval_steps": steps(EVAL_STEPS),
            "ran": (min(map(len, histories)), max(map(len, histories)))}


def curve(histories: list[list[dict[str, Any]]], started: float) -> list[tuple[float, float, float]]:
    """(seconds since the start, training env steps so far, best evaluation return so far) after each
    result of the whole population, in time order: what the plots draw."""
    events = sorted((r["timestamp"] - started, r.get(TRAIN_STEPS, 0), r.get(ex.EVAL_RETURN, math.nan))
                    for h in histories for r in h)
    out, steps, best = [], 0.0, -math.inf
    for seconds, step, value in events:
        steps += step if step == step else 0
        best = max(best, value) if value == value else best
        if best > -math.inf:
            out.append((seconds, steps, best))
    return out


def algo_config(settings: dict[str, Any], cpus: float, eval_steps: int) -> Any:
    """The example's ``PPOConfig`` with this benchmark's CPUs per trial and fixed-length evaluation."""
    config = ex.ppo_config(**settings)
    # RLlib's request for num_env_runners=0, num_learners=0 is max(main process, local learner) CPUs.
    config.resources(num_cpus_for_main_process=cpus).learners(num_cpus_per_learner=cpus)
    if eval_steps:
        config.evaluation(evaluation_duration=eval_steps, evaluation_duration_unit="timesteps")
    return config


def _tuner_budget_stopper(iterations: int, total_iterations: int) -> Any:
    """The rule of ``benchmarks.pbt._budget_stopper`` for this tuner: a trial ends at ``iterations``,
    the whole run once ``total_iterations`` results came in (a PBT exploit that goes back to a
    donor's earlier iteration would otherwise buy a trial extra iterations)."""
    from tuner.stopper import Stopper

    class BudgetStopper(Stopper):
        def __init__(self, iterations: int, total_iterations: int) -> None:
            self.iterations, self.total_iterations, self.seen = iterations, total_iterations, 0

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.seen += 1
            return result["training_iteration"] >= self.iterations

        def stop_all(self) -> bool:
            return self.seen >= self.total_iterations

    return BudgetStopper(iterations, total_iterations)


def run_tuner(seed: int, population: int, iterations: int, method: str, config: Any) -> dict[str, Any]:
    import tuner as tune
    from schedulers import FIFOScheduler, PopulationBasedTraining

    if method == "random":
        scheduler = FIFOScheduler()
    else:
        scheduler = PopulationBasedTraining(
            perturbation_interval=PERTURBATION_INTERVAL, quantile_fraction=0.25, seed=seed,
            hyperparam_mutations={"lr": tune.loguniform(*LR), "entropy_coeff": tune.uniform(*ENTROPY)})
    started = time.time()
    seconds, results = timed(lambda: tune.run(
        config, num_samples=population, metric=ex.EVAL_RETURN, mode="max", scheduler=scheduler,
        stop=_tuner_budget_stopper(iterations, population * iterations), checkpoint_freq=1,
        keep_checkpoints_num=KEEP, seed=seed, verbose=0,
        log_to_tensorboard=False, storage_path=scratch_dir(f"rllib_pbt_tuner_{method}")))
    histories = [t.history for t in results.trials]
    failed = sum(t.status == "ERROR" for t in results.trials)
    INITIAL[seed] = initial_configs(results.experiment_path)
    return {**summarize(histories, started), "wall": seconds, "exploits": len(results.pbt_lineage()),
            "failed": failed, "initial": INITIAL[seed]}


#: The tuner's initial population by seed (lr, entropy_coeff as first drawn), for ``--paired``.
INITIAL: dict[int, list[dict[str, float]]] = {}
PAIRED = False  # set from --paired in main()


def initial_configs(experiment_dir: str) -> list[dict[str, float]]:
    """The searched keys of each trial as it was added (before any exploit changed them), from the journal."""
    from tuner.storage import journal

    return [{k: r.config[k] for k in ("lr", "entropy_coeff")}
            for r in journal.read(experiment_dir) if isinstance(r, journal.TrialAdded)]


def run_ray_tune(seed: int, population: int, iterations: int, config: Any) -> dict[str, Any]:
    import random

    import pandas as pd
    from ray import tune as rtune
    from ray.tune.schedulers import PopulationBasedTraining as RayPBT
    from ray.tune.search.basic_variant import BasicVariantGenerator

    random.seed(seed)  # Ray's PBT explores with the module-level random
    mutations = {"lr": rtune.loguniform(*LR), "entropy_coeff": rtune.uniform(*ENTROPY)}
    pbt = RayPBT(time_attr="training_iteration", perturbation_interval=PERTURBATION_INTERVAL,
                 hyperparam_mutations=mutations, quantile_fraction=0.25)
    space = config.to_dict()
    space.update(mutations)
    # --paired: the same initial population as the tuner's run of this seed (which runs first).
    points = INITIAL.get(seed) if PAIRED else None
    if PAIRED and not points:
        raise RuntimeError(f"--paired: the tuner's PBT must run seed {seed} before Ray Tune's (methods pbt,ray)")
    started = time.time()

    def go():
        tuner = rtune.Tuner(
            "PPO", param_space=space,
            tune_config=rtune.TuneConfig(num_samples=population, metric=ex.EVAL_RETURN, mode="max", scheduler=pbt,
                                         reuse_actors=False,
                                         search_alg=BasicVariantGenerator(random_state=seed,
                                                                          points_to_evaluate=points)),
            run_config=rtune.RunConfig(storage_path=scratch_dir("rllib_pbt_raytune"), verbose=0,
                                       stop=_budget_stopper(iterations, population * iterations),
                                       checkpoint_config=rtune.CheckpointConfig(checkpoint_frequency=1,
                                                                                num_to_keep=KEEP)),
        )
        return tuner.fit()

    seconds, grid = timed(go)
    # progress.csv keeps one row per iteration run, with RLlib's keys flattened by "/" as here.
    # A trial that failed before its first result has none; it is counted under "failed".
    histories = [pd.read_csv(os.path.join(r.path, "progress.csv")).to_dict("records")
                 if os.path.exists(os.path.join(r.path, "progress.csv")) else [] for r in grid]
    failed = sum(r.error is not None for r in grid)
    return {**summarize(histories, started), "wall": seconds, "exploits": None, "failed": failed,
            "initial": points}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run are first-seed .. first-seed + seeds - 1 (to add seeds to an earlier run)")
    parser.add_argument("--budget-steps", type=int, default=4 * 20 * ex.BATCH,
                        help="environment steps for the whole population (default 160000)")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--cpus-per-trial", type=float, default=0.5,
                        help="RLlib's CPU request per trial, read by both tools (0.5: 4 trials at once on 2 CPUs)")
    parser.add_argument("--eval-steps", type=int, default=1000,
                        help="greedy evaluation env steps after each iteration (0: the example's 5 episodes)")
    parser.add_argument("--env", choices=sorted(TASKS), default="CartPole-v1")
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials x 4 iterations of 200 steps")
    parser.add_argument("--methods", default="pbt,random,ray",
                        help="comma-separated, of: pbt (the tuner's PBT), random (the tuner's random search), "
                             "ray (Ray Tune's PBT)")
    parser.add_argument("--paired", action="store_true",
                        help="Ray Tune's PBT starts from the tuner's initial population of the same seed "
                             "(points_to_evaluate), so seeds compare the two PBTs from the same start")
    parser.add_argument("--plots", metavar="PREFIX", help="draw PREFIX_time.png and PREFIX_steps.png: the best "
                        "evaluation return so far against wall time and env steps (median, inter-quartile band)")
    args = parser.parse_args(argv)
    global TARGET, PAIRED
    PAIRED = args.paired
    task = TASKS[args.env]
    TARGET = task["target"]
    settings: dict[str, Any] = {"env": args.env, "model": task["model"], **task["settings"]}
    batch = ex.BATCH
    if args.quick:
        args.seeds = 1
        settings.update({k: v for k, v in ex.QUICK.items() if k not in ("population", "max_steps")})
        batch, args.budget_steps = settings["train_batch_size"], args.population * 4 * settings["train_batch_size"]
        args.eval_steps = min(args.eval_steps, task.get("quick_eval_steps", 200))
    iterations = max(1, args.budget_steps // (args.population * batch))
    config = algo_config(settings, args.cpus_per_trial, args.eval_steps)
    start_ray(2)
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(ex)  # `examples` is no installed package: ship its code
    runners = {
        "tuner PBT (async)": lambda s: run_tuner(s, args.population, iterations, "pbt", config),
        "tuner random search (FIFO)": lambda s: run_tuner(s, args.population, iterations, "random", config),
    }
    if ray_tune_available():
        runners["Ray Tune PBT"] = lambda s: run_ray_tune(s, args.population, iterations, config)
    chosen = {"pbt": "tuner PBT (async)", "random": "tuner random search (FIFO)", "ray": "Ray Tune PBT"}
    wanted = {chosen[m.strip()] for m in args.methods.split(",") if m.strip()}
    runners = {name: fn for name, fn in runners.items() if name in wanted}
    measured = run_seeds(runners, args.seeds, lambda m: (
        f"{m['wall']:.1f}s best final {m['best_final']:.1f} mean final {m['mean_final']:.1f} "
        f"(members {', '.join(f'{v:.1f}' for v in m['finals'])}) s to {TARGET:g}: "
        f"{m['to_target']} env steps {m['env_steps']:.0f} eval steps {m['eval_steps']:.0f} exploits "
        f"{m['exploits']} failed trials {m['failed']} iterations per trial {m['ran']}"), args.first_seed)
    by_seed = {name: {args.first_seed + i: m for i, m in enumerate(ms)} for name, ms in measured.items()}
    if args.plots:
        import json

        with open(f"{args.plots}.json", "w") as f:  # every run's figures and curve, to read or draw again
            json.dump({"env": args.env, "runs": by_seed}, f, default=_plain)
    evaluation = f"{args.eval_steps} env steps" if args.eval_steps else "5 episodes"
    report(by_seed, f"{args.env}, {args.population} trials x {iterations} iterations of {batch} steps, "
                    f"{args.cpus_per_trial:g} CPU a trial, eval {evaluation}", args.env, args.plots)


def _plain(value: Any) -> Any:
    """numpy and pandas numbers (Ray Tune's progress.csv) as JSON numbers."""
    return value.item() if hasattr(value, "item") else str(value)


def report(by_seed: dict[str, dict[int, dict[str, Any]]], setting: str, env: str, plots: str | None) -> None:
    """The table (medians over each method's seeds) and, with ``plots`` (a path prefix), the two figures."""
    rows = [[name, _median([m["best_final"] for m in ms], ".1f"), _median([m["mean_final"] for m in ms], ".1f"),
             _median([m["wall"] for m in ms], ".0f"), _median([m["to_target"] for m in ms], ".0f"),
             _median([m["env_steps"] for m in ms], ".0f"), _median([m["eval_steps"] for m in ms], ".0f"),
             _median([m["exploits"] for m in ms], ".0f", "n/a"), str(sum(m["failed"] for m in ms)),
             f"{min(m['ran'][0] for m in ms)}-{max(m['ran'][1] for m in ms)}",
             ", ".join(str(seed) for seed in sorted(runs))]
            for name, runs in by_seed.items() for ms in [list(runs.values())]]
    header = [f"method ({setting})", "best final eval return", "mean final eval return", "wall time (s)",
              f"seconds to first eval >= {TARGET:g}", "training env steps run", "eval env steps run", "exploits",
              "failed trials (all seeds)", "results of one trial", "seeds"]
    print(markdown_table(header, rows))
    print("\nMedians over each method's seeds; same 2 CPUs, one local Ray.")
    if plots:
        from benchmarks._plots import plot

        curves = {(name, env, seed): m["curve"] for name, runs in by_seed.items() for seed, m in runs.items()}
        for axis, label, suffix in ((0, "wall time (s)", "time"), (1, "training env steps (all trials)", "steps")):
            plot(curves, list(by_seed), axis, label, f"{plots}_{suffix}.png", methods=(env,),
                 ylabel="best evaluation return so far", ylim=None)
        print(f"plots: {plots}_time.png, {plots}_steps.png")


def combine(paths: list[str], plots: str | None) -> None:
    """The table and figures of earlier runs' JSON files together; a later file's run of a method on
    a seed replaces an earlier file's (to re-run one method after a fix)."""
    import json

    global TARGET
    by_seed: dict[str, dict[int, dict[str, Any]]] = {}
    env = None
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        env = saved["env"]
        for name, runs in saved["runs"].items():
            if isinstance(runs, list):  # the first format: a list from first_seed on
                runs = {saved.get("first_seed", 0) + i: m for i, m in enumerate(runs)}
            by_seed.setdefault(name, {}).update({int(seed): m for seed, m in runs.items()})
    TARGET = TASKS[env]["target"]
    report(by_seed, f"{env}, combined from {', '.join(os.path.basename(p) for p in paths)}", env, plots)


def from_dirs(out: str, env: str, specs: list[str]) -> None:
    """Measure finished runs again from their experiment directories, into a JSON file for ``combine``:
    each spec is ``METHOD|SEED|DIR|WALL`` with DIR the ``bench_rllib_pbt_*`` scratch directory (its
    creation is the run's start, to the second) and WALL the wall time the run printed."""
    import glob
    import json
    import subprocess

    import pandas as pd

    import tuner as tune

    global TARGET
    TARGET = TASKS[env]["target"]
    by_seed: dict[str, dict[int, dict[str, Any]]] = {}
    for spec in specs:
        method, seed, path, wall = spec.split("|")
        started = float(subprocess.run(["stat", "-c", "%W", path], capture_output=True, text=True,
                                       check=True).stdout)
        (experiment,) = glob.glob(os.path.join(path, "PPO_*"))
        if method.startswith("tuner"):
            results = tune.load(experiment)
            histories = [t.history for t in results.trials]
            extra = {"exploits": len(results.pbt_lineage()),
                     "failed": sum(t.status == "ERROR" for t in results.trials)}
        else:
            trials = sorted(d for d in glob.glob(os.path.join(experiment, "PPO_*")) if os.path.isdir(d))
            histories = [pd.read_csv(os.path.join(d, "progress.csv")).to_dict("records")
                         if os.path.exists(os.path.join(d, "progress.csv")) else [] for d in trials]
            policy_log = os.path.join(experiment, "pbt_global.txt")
            extra = {"exploits": sum(1 for _ in open(policy_log)) if os.path.exists(policy_log) else 0,
                     "failed": sum(os.path.exists(os.path.join(d, "error.txt")) for d in trials)}
        by_seed.setdefault(method, {})[int(seed)] = {**summarize(histories, started), "wall": float(wall), **extra}
    with open(out, "w") as f:
        json.dump({"env": env, "runs": by_seed}, f, default=_plain)


if __name__ == "__main__":
    if sys.argv[1:2] == ["from-dirs"]:  # python benchmarks/rllib_pbt.py from-dirs OUT.json ENV SPEC...
        from_dirs(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1:2] == ["combine"]:  # python benchmarks/rllib_pbt.py combine A.json B.json [--plots PREFIX]
        rest = sys.argv[2:]
        prefix = rest[rest.index("--plots") + 1] if "--plots" in rest else None
        combine([p for i, p in enumerate(rest) if p != "--plots" and (i == 0 or rest[i - 1] != "--plots")], prefix)
    else:
        main()
