"""PBT on PPO CartPole-v1: this tuner against random search and Ray Tune, same env steps.

The trainable is ``examples/pbt_cartpole.py``'s PPO agent (2048 env steps per
iteration, then 10 greedy evaluation episodes). Each method gets a population
of ``--population`` trials, ``--budget-steps`` environment steps in all (the
same number of iterations per trial), ``lr`` log-uniform in [1e-5, 1e-2] and
``entropy_coef`` uniform in [0, 0.05]:

* tuner PBT, synchronous generations and asynchronous (perturbation every 4
  iterations, quantile 0.25, resample probability 0.25, factors 1.2/0.8);
* tuner random search (FIFO: the same seeded initial configs as the tuner's PBT,
  left alone);
* Ray Tune's ``PopulationBasedTraining`` with the same settings,
  ``reuse_actors=True``, on a ``ray.tune.Trainable`` wrapper of the same agent.

Per method, medians over ``--seeds`` seeds of: the best trial's final eval
return, the population's mean final eval return, the env steps the population
had simulated when some evaluation first reached 475, the env steps run in all
and the wall time.

    python benchmarks/pbt.py [--seeds 3] [--budget-steps 491520] [--population 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, run_seeds, scratch_dir, start_ray, timed
from examples import pbt_cartpole as ex

TARGET = 475.0
PERTURBATION_INTERVAL = 4
STEPS_PER_ITERATION = ex.PPO_DEFAULTS["steps_per_iteration"]
LR, ENTROPY = (1e-5, 1e-2), (0.0, 0.05)


def _pickle_examples_by_value() -> None:
    """Ray workers import the trainable's module by name, but ``examples`` is no installed
    package: ship its code with the trainable instead, whatever the workers' sys.path."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(ex)


def summarize(histories: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """``histories``: per trial, its results in order; each result is one iteration run.

    The population's steps to the target count every iteration that finished (by wall
    clock) up to the first evaluation >= TARGET, across all trials.
    """
    finals = [h[-1]["eval_return"] for h in histories if h]
    events = sorted((r["wall_clock"], r["eval_return"]) for h in histories for r in h)
    to_target = next((STEPS_PER_ITERATION * (i + 1) for i, (_, ret) in enumerate(events) if ret >= TARGET), None)
    return {"best_final": max(finals), "mean_final": statistics.mean(finals), "steps_to_target": to_target,
            "env_steps": STEPS_PER_ITERATION * len(events), "ran": (min(map(len, histories)), max(map(len, histories)))}


def _tuner_histories(results) -> list[list[dict[str, Any]]]:
    return [[{**r, "wall_clock": r["timestamp"]} for r in t.history] for t in results.trials]


def run_tuner(seed: int, population: int, iterations: int, method: str) -> dict[str, Any]:
    import tuner as tune
    from schedulers import FIFOScheduler, PopulationBasedTraining

    space = {"lr": tune.loguniform(*LR), "entropy_coef": tune.uniform(*ENTROPY)}
    if method == "random":
        scheduler = FIFOScheduler()
    else:
        scheduler = PopulationBasedTraining(perturbation_interval=PERTURBATION_INTERVAL, hyperparam_mutations=space,
                                            quantile_fraction=0.25, resample_probability=0.25,
                                            perturbation_factors=(1.2, 0.8), synch=method == "synch", seed=seed)
    seconds, results = timed(lambda: tune.run(
        ex.PPOTrainable, config=space, num_samples=population, metric="eval_return", mode="max",
        scheduler=scheduler, stop={"training_iteration": iterations}, resources_per_trial={"cpu": 1},
        checkpoint_freq=1, keep_checkpoints_num=2, seed=seed, verbose=0, log_to_tensorboard=False,
        storage_path=scratch_dir(f"pbt_tuner_{method}")))
    return {**summarize(_tuner_histories(results)), "wall": seconds, "exploits": len(results.pbt_lineage())}


def _ray_ppo_class():
    from ray import tune as rtune

    class RayPPO(rtune.Trainable):
        """The same PPO agent behind Ray Tune's class API (directory checkpoints)."""

        def setup(self, config):
            import torch

            torch.set_num_threads(1)
            self._build(config)

        def _build(self, config):
            # seeded by the benchmark seed and the trial's index, like the tuner's per-trial seeds
            index = int(self.trial_id.rsplit("_", 1)[-1])
            self.agent = ex.PPOAgent(config, seed=config["bench_seed"] * 1000 + index)

        def step(self):
            stats = self.agent.train_iteration()
            return {**stats, "eval_return": self.agent.evaluate(), "wall_clock": time.time()}

        def save_checkpoint(self, checkpoint_dir):
            import torch

            torch.save(self.agent.state_dict(), os.path.join(checkpoint_dir, "ppo.pt"))

        def load_checkpoint(self, checkpoint_dir):
            import torch

            self.agent.load_state_dict(torch.load(os.path.join(checkpoint_dir, "ppo.pt")))

        def reset_config(self, new_config):
            # Ray calls this both for an exploit (a restore follows) and to start another trial on
            # this actor (none follows): a fresh agent is right for both, the restore brings the weights.
            self._build(new_config)
            return True

    return RayPPO


def _budget_stopper(iterations: int, total_iterations: int):
    """Stops a trial at ``iterations`` and the whole run once ``total_iterations`` results came in.

    The second rule holds Ray Tune to the same env-step budget as the others: when every score
    ties (CartPole saturates at 500), its PBT exploits the same two trials again and again, each
    time back to a donor's older checkpoint, so ``training_iteration`` alone never ends the run.
    """
    from ray import tune as rtune

    class BudgetStopper(rtune.Stopper):
        def __init__(self) -> None:
            self.seen = 0

        def __call__(self, trial_id, result):
            self.seen += 1
            return result["training_iteration"] >= iterations

        def stop_all(self):
            return self.seen >= total_iterations

    return BudgetStopper()


def run_ray_tune(seed: int, population: int, iterations: int, method: str = "pbt") -> dict[str, Any]:
    import random

    from ray import tune as rtune
    from ray.tune.schedulers import PopulationBasedTraining as RayPBT
    from ray.tune.search.basic_variant import BasicVariantGenerator

    random.seed(seed)  # Ray's PBT explores with the module-level random
    mutations = {"lr": rtune.loguniform(*LR), "entropy_coef": rtune.uniform(*ENTROPY)}
    pbt = RayPBT(time_attr="training_iteration", perturbation_interval=PERTURBATION_INTERVAL,
                 hyperparam_mutations=mutations, quantile_fraction=0.25, resample_probability=0.25,
                 perturbation_factors=(1.2, 0.8))

    def go():
        tuner = rtune.Tuner(
            rtune.with_resources(_ray_ppo_class(), {"cpu": 1}),
            param_space={**mutations, "bench_seed": seed},
            tune_config=rtune.TuneConfig(num_samples=population, metric="eval_return", mode="max",
                                         scheduler=pbt, reuse_actors=True,
                                         search_alg=BasicVariantGenerator(random_state=seed)),
            run_config=rtune.RunConfig(storage_path=scratch_dir("pbt_raytune"), verbose=0,
                                       stop=_budget_stopper(iterations, population * iterations)),
        )
        return tuner.fit()

    import pandas as pd

    seconds, grid = timed(go)
    # Each trial's progress.csv keeps one row per iteration run, also after PBT restored a donor's
    # state (read from disk: Result.metrics_dataframe came back short for some trials).
    histories = [pd.read_csv(os.path.join(r.path, "progress.csv")).to_dict("records") for r in grid]
    # the exploit count is not reported: Tuner works on a copy of the scheduler object
    return {**summarize(histories), "wall": seconds, "exploits": None}


def _median(values: list[Any], fmt: str, missing: str = "not reached") -> str:
    known = [v for v in values if v is not None]
    if not known:
        return missing
    text = format(statistics.median(known), fmt)
    return text if len(known) == len(values) else f"{text} ({len(known)}/{len(values)} reached)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-steps", type=int, default=8 * 30 * STEPS_PER_ITERATION,
                        help="environment steps for the whole population (default 491520)")
    parser.add_argument("--population", type=int, default=8)
    args = parser.parse_args(argv)
    iterations = max(1, args.budget_steps // (args.population * STEPS_PER_ITERATION))
    start_ray(2)
    runners = {
        "tuner PBT (synch)": lambda s: run_tuner(s, args.population, iterations, "synch"),
        "tuner PBT (async)": lambda s: run_tuner(s, args.population, iterations, "async"),
        "tuner random search (FIFO)": lambda s: run_tuner(s, args.population, iterations, "random"),
    }
    if ray_tune_available():
        runners["Ray Tune PBT (reuse_actors=True)"] = lambda s: run_ray_tune(s, args.population, iterations)
    _pickle_examples_by_value()
    measured = run_seeds(runners, args.seeds, lambda m: (
        f"{m['wall']:.1f}s best final {m['best_final']:.1f} mean final {m['mean_final']:.1f} steps to {TARGET:g}: "
        f"{m['steps_to_target']} env steps {m['env_steps']} exploits {m['exploits']} iterations per trial {m['ran']}"))
    rows = [[name, _median([m["best_final"] for m in ms], ".1f"), _median([m["mean_final"] for m in ms], ".1f"),
             _median([m["steps_to_target"] for m in ms], ".0f"), _median([m["env_steps"] for m in ms], ".0f"),
             _median([m["wall"] for m in ms], ".1f"), _median([m["exploits"] for m in ms], ".0f", "n/a"),
             f"{min(m['ran'][0] for m in ms)}-{max(m['ran'][1] for m in ms)}"] for name, ms in measured.items()]
    header = [f"method ({args.population} trials x {iterations} iterations)", "best final eval return",
              "mean final eval return", f"population env steps to first eval >= {TARGET:g}", "env steps run",
              "wall time (s)", "exploits", "iterations run by one trial (min-max)"]
    print(markdown_table(header, rows))
    print(f"\nMedians over {args.seeds} seeds; {iterations * STEPS_PER_ITERATION} env steps per trial; "
          "same 2 CPUs, one local Ray.")


if __name__ == "__main__":
    main()
