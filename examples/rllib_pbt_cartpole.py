"""RLlib's PPO on CartPole-v1, tuned by Population Based Training (no download).

The trainable is RLlib's own ``PPO``, given as a ``PPOConfig`` whose ``lr`` and
``entropy_coeff`` hold search spaces. Each trial builds the algorithm on its
worker (1 CPU: ``num_env_runners=0``, sampling and learning in one process);
every iteration is one ``algo.train()`` followed by greedy evaluation episodes.
At a perturbation point PBT copies a top trial's RLlib checkpoint (weights,
optimizer, connector state) into a bottom one and perturbs the two
coefficients, which the warm algorithm takes in place. With a population of 4
on 2 CPUs, asynchronous PBT time-shares the CPUs between the trials.

    python examples/rllib_pbt_cartpole.py            # population 4 x 40k env steps on 2 CPUs
    python examples/rllib_pbt_cartpole.py --quick    # a smoke run: 2 trials, 2 short iterations

The same sweep from the shell: ``tuner sweep examples/rllib_pbt_cartpole.yaml``.
Prints the best trial's final evaluation return, when a trial first reached 450,
and the best trial's lineage; exits non-zero when no trial reached 450.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tuner as tune

TARGET = 450.0
EVAL_RETURN = "evaluation/env_runners/episode_return_mean"
STEPS = "num_env_steps_sampled_lifetime"
BATCH = 2000  # env steps per training iteration

#: PPO settings for CartPole (RLlib's tuned example: a small linear network sharing the value layers),
#: with a larger learning rate and a smaller batch so that the population moves in few iterations.
SETTINGS: dict[str, Any] = {
    "train_batch_size": BATCH, "minibatch_size": 250, "num_epochs": 6, "gamma": 0.99, "vf_loss_coeff": 0.01,
}
MODEL = {"fcnet_hiddens": [32], "fcnet_activation": "linear", "vf_share_layers": True}
QUICK = {"population": 2, "max_steps": 2 * 200, "train_batch_size": 200, "minibatch_size": 100}


def ppo_config(env: str = "CartPole-v1", model: dict[str, Any] | None = None, **settings: Any) -> Any:
    """The PPOConfig: fixed settings, ``lr`` and ``entropy_coeff`` as search spaces."""
    from ray.rllib.algorithms.ppo import PPOConfig

    settings = {**SETTINGS, **settings}
    return (PPOConfig()
            .environment(env)
            .env_runners(num_env_runners=0)
            .training(lr=tune.loguniform(1e-4, 3e-3), entropy_coeff=tune.uniform(0.0, 0.01), **settings)
            .rl_module(model_config=model or MODEL)
            .evaluation(evaluation_interval=1, evaluation_duration=5, evaluation_duration_unit="episodes",
                        evaluation_config={"explore": False}))


def run_pbt(population: int = 4, seed: int = 0, max_steps: int = 40_000, storage_path: str | None = None,
            name: str | None = None, perturbation_interval: int = 3, verbose: int = 1,
            **settings: Any) -> tune.ExperimentResults:
    """One PBT sweep: ``population`` PPO trials of ``max_steps`` env steps each."""
    from schedulers import PopulationBasedTraining

    batch = settings.get("train_batch_size", BATCH)
    pbt = PopulationBasedTraining(perturbation_interval=perturbation_interval, quantile_fraction=0.25, seed=seed,
                                  hyperparam_mutations={"lr": tune.loguniform(1e-4, 3e-3),
                                                        "entropy_coeff": tune.uniform(0.0, 0.01)})
    return tune.run(ppo_config(**settings), num_samples=population, metric=EVAL_RETURN, mode="max", scheduler=pbt,
                    stop={"training_iteration": max(1, max_steps // batch)}, checkpoint_freq=1,
                    keep_checkpoints_num=2, seed=seed, storage_path=storage_path,
                    name=name or f"rllib-pbt-cartpole-seed{seed}-{int(time.time())}", verbose=verbose)


def first_reached(results: tune.ExperimentResults, target: float = TARGET) -> tuple[float, str, dict] | None:
    """``(timestamp, trial_id, result)`` of the first result at or above ``target``, or None."""
    return min(((r["timestamp"], t.trial_id, r) for t in results.trials for r in t.history
                if r.get(EVAL_RETURN, -1) >= target), default=None, key=lambda x: x[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=4, help="PBT population size (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=40_000, help="environment steps per trial")
    parser.add_argument("--storage", default=None, help="storage_path (default ~/tuner_results)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 trials, 2 iterations of 200 steps")
    args = parser.parse_args(argv)
    settings: dict[str, Any] = {}
    if args.quick:
        args.population, args.max_steps = QUICK["population"], QUICK["max_steps"]
        settings = {k: v for k, v in QUICK.items() if k not in ("population", "max_steps")}
    started, started_at = time.perf_counter(), time.time()
    results = run_pbt(args.population, args.seed, args.max_steps, args.storage, **settings)
    wall = time.perf_counter() - started
    best = results.best_trial
    final = best.last_result[EVAL_RETURN]
    total = sum(t.last_result.get(STEPS, 0) for t in results.trials if t.last_result)
    print(f"\nbest trial {best.trial_id}: final evaluation return {final:.1f}; "
          f"lr={best.config['lr']:.3g} entropy_coeff={best.config['entropy_coeff']:.3g}")
    print(f"{len(results.trials)} trials, {total:.0f} env steps in all, {wall:.0f} s wall")
    first = first_reached(results)
    if first:
        stamp, trial_id, result = first
        print(f"first evaluation return >= {TARGET:g}: {trial_id} at its iteration "
              f"{result['training_iteration']} ({result[STEPS]:.0f} of its env steps, {stamp - started_at:.0f} s "
              "into the run)")
    from schedulers.pbt import ancestry

    lineage = results.pbt_lineage()
    chain = ancestry(lineage, best.trial_id)
    print(f"lineage of {best.trial_id} ({len(chain)} of {len(lineage)} exploits in the sweep):")
    for record in chain:
        new = record.get("new") or {}
        changes = ", ".join(f"{k} -> {v:.3g}" if isinstance(v, float) else f"{k} -> {v!r}" for k, v in new.items())
        print(f"  iteration {record.get('iteration')}: {record['trial_id']} cloned {record['donor_id']}; "
              f"{changes or 'no change'}")
    if args.quick or first:
        return 0
    print(f"FAILED: no trial reached an evaluation return of {TARGET:g}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
