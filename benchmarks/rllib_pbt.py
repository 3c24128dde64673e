"""PBT on RLlib's PPO (CartPole-v1 or Acrobot-v1): this tuner against Ray Tune's PBT and random search, same env steps.

Every method runs the same RLlib algorithm with the settings of
``examples/rllib_pbt_cartpole.py`` (1 CPU a trial, ``num_env_runners=0``, greedy
evaluation episodes after every ``algo.train()``), a population of
``--population`` trials, ``--budget-steps`` environment steps in all (the same
number of iterations per trial), ``lr`` log-uniform in [1e-4, 3e-3] and
``entropy_coeff`` uniform in [0, 0.01]:

* tuner PBT (asynchronous; perturbation every 3 iterations, quantile 0.25), the
  trainable given as the ``PPOConfig`` (exploits in place);
* tuner random search (FIFO: the same seeded configs, left alone);
* Ray Tune's ``PopulationBasedTraining`` with the same settings on ``"PPO"``
  (``reuse_actors=True``), held to the same budget.

Per method, medians over ``--seeds`` seeds of: the best trial's final evaluation
return, the population's mean final evaluation return, the wall time, the
seconds from the start of the sweep to the first evaluation return >= 450, and
the env steps run.

    python benchmarks/rllib_pbt.py [--seeds 3] [--budget-steps 160000] [--population 4] [--env Acrobot-v1]
    python benchmarks/rllib_pbt.py --quick     # 1 seed, 2 trials x 2 iterations of 200 steps: a smoke run
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
                   "settings": {"vf_loss_coeff": 0.5, "gamma": 0.99}},
}
TARGET = ex.TARGET  # set from --env in main()
PERTURBATION_INTERVAL = 3
LR, ENTROPY = (1e-4, 3e-3), (0.0, 0.01)


def summarize(histories: list[list[dict[str, Any]]], started: float) -> dict[str, Any]:
    """``histories``: per trial, its results in order (RLlib's flattened keys, ``timestamp`` in seconds)."""
    finals = [h[-1].get(ex.EVAL_RETURN, float("nan")) for h in histories if h]
    reached = [r["timestamp"] for h in histories for r in h if r.get(ex.EVAL_RETURN, -math.inf) >= TARGET]
    return {"best_final": max(finals), "mean_final": statistics.mean(finals),
            "to_target": min(reached) - started if reached else None,
            "env_steps": sum(h[-1].get(ex.STEPS, 0) for h in histories if h),
            "ran": (min(map(len, histories)), max(map(len, histories)))}


def run_tuner(seed: int, population: int, iterations: int, method: str, settings: dict[str, Any]) -> dict[str, Any]:
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
        ex.ppo_config(**settings), num_samples=population, metric=ex.EVAL_RETURN, mode="max", scheduler=scheduler,
        stop={"training_iteration": iterations}, checkpoint_freq=1, keep_checkpoints_num=2, seed=seed, verbose=0,
        log_to_tensorboard=False, storage_path=scratch_dir(f"rllib_pbt_tuner_{method}")))
    histories = [t.history for t in results.trials]
    return {**summarize(histories, started), "wall": seconds, "exploits": len(results.pbt_lineage())}


def run_ray_tune(seed: int, population: int, iterations: int, settings: dict[str, Any]) -> dict[str, Any]:
    import random

    import pandas as pd
    from ray import tune as rtune
    from ray.tune.schedulers import PopulationBasedTraining as RayPBT
    from ray.tune.search.basic_variant import BasicVariantGenerator

    random.seed(seed)  # Ray's PBT explores with the module-level random
    mutations = {"lr": rtune.loguniform(*LR), "entropy_coeff": rtune.uniform(*ENTROPY)}
    pbt = RayPBT(time_attr="training_iteration", perturbation_interval=PERTURBATION_INTERVAL,
                 hyperparam_mutations=mutations, quantile_fraction=0.25)
    space = ex.ppo_config(**settings).to_dict()
    space.update(mutations)
    started = time.time()

    def go():
        tuner = rtune.Tuner(
            "PPO", param_space=space,
            tune_config=rtune.TuneConfig(num_samples=population, metric=ex.EVAL_RETURN, mode="max", scheduler=pbt,
                                         reuse_actors=True, search_alg=BasicVariantGenerator(random_state=seed)),
            run_config=rtune.RunConfig(storage_path=scratch_dir("rllib_pbt_raytune"), verbose=0,
                                       stop=_budget_stopper(iterations, population * iterations),
                                       checkpoint_config=rtune.CheckpointConfig(checkpoint_frequency=1,
                                                                                num_to_keep=2)),
        )
        return tuner.fit()

    seconds, grid = timed(go)
    # progress.csv keeps one row per iteration run, with RLlib's keys flattened by "/" as here.
    # A trial that never started has no progress.csv: with more trials than CPUs, Ray Tune's PBT
    # keeps exploiting among the running ones and the waiting ones may never get a turn.
    histories = [pd.read_csv(os.path.join(r.path, "progress.csv")).to_dict("records")
                 if os.path.exists(os.path.join(r.path, "progress.csv")) else [] for r in grid]
    return {**summarize(histories, started), "wall": seconds, "exploits": None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-steps", type=int, default=4 * 20 * ex.BATCH,
                        help="environment steps for the whole population (default 160000)")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--env", choices=sorted(TASKS), default="CartPole-v1")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 trials x 2 iterations of 200 steps")
    args = parser.parse_args(argv)
    global TARGET
    task = TASKS[args.env]
    TARGET = task["target"]
    settings: dict[str, Any] = {"env": args.env, "model": task["model"], **task["settings"]}
    batch = ex.BATCH
    if args.quick:
        args.seeds, args.population = 1, ex.QUICK["population"]
        settings.update({k: v for k, v in ex.QUICK.items() if k not in ("population", "max_steps")})
        batch, args.budget_steps = settings["train_batch_size"], ex.QUICK["population"] * ex.QUICK["max_steps"]
    iterations = max(1, args.budget_steps // (args.population * batch))
    start_ray(2)
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(ex)  # `examples` is no installed package: ship its code
    runners = {
        "tuner PBT (async)": lambda s: run_tuner(s, args.population, iterations, "pbt", settings),
        "tuner random search (FIFO)": lambda s: run_tuner(s, args.population, iterations, "random", settings),
    }
    if ray_tune_available():
        runners["Ray Tune PBT (reuse_actors=True)"] = lambda s: run_ray_tune(s, args.population, iterations, settings)
    measured = run_seeds(runners, args.seeds, lambda m: (
        f"{m['wall']:.1f}s best final {m['best_final']:.1f} mean final {m['mean_final']:.1f} s to {TARGET:g}: "
        f"{m['to_target']} env steps {m['env_steps']:.0f} exploits {m['exploits']} iterations per trial {m['ran']}"))
    rows = [[name, _median([m["best_final"] for m in ms], ".1f"), _median([m["mean_final"] for m in ms], ".1f"),
             _median([m["wall"] for m in ms], ".0f"), _median([m["to_target"] for m in ms], ".0f"),
             _median([m["env_steps"] for m in ms], ".0f"), _median([m["exploits"] for m in ms], ".0f", "n/a"),
             f"{min(m['ran'][0] for m in ms)}-{max(m['ran'][1] for m in ms)}"] for name, ms in measured.items()]
    header = [f"method ({args.env}, {args.population} trials x {iterations} iterations of {batch} steps)",
              "best final eval return", "mean final eval return", "wall time (s)",
              f"seconds to first eval >= {TARGET:g}", "env steps run", "exploits", "iterations run by one trial"]
    print(markdown_table(header, rows))
    print(f"\nMedians over {args.seeds} seeds; same 2 CPUs, one local Ray.")


if __name__ == "__main__":
    main()
