"""Draws the README's two plots: python docs/img/make_plots.py (about 10 minutes on 2 CPUs).

ASHA against random search on the digits MLP (best accuracy so far against the epochs
spent), and PBT on CartPole (the population with its exploits and the best lineage).
"""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import tuner as tune  # noqa: E402
from examples.mlp import SPACE, train  # noqa: E402
from examples.pbt_cartpole import run_pbt  # noqa: E402
from schedulers import ASHAScheduler  # noqa: E402
from tuner import plots  # noqa: E402


def main() -> None:
    storage = tempfile.mkdtemp(prefix="tuner-plots-")
    space = {**SPACE, "epochs": 9}
    common = dict(config=space, num_samples=16, metric="acc", mode="max", seed=0, resources_per_trial={"cpu": 1},
                  storage_path=storage, verbose=1, log_to_tensorboard=False)
    asha = tune.run(train, scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3), **common)
    random_search = tune.run(train, **common)
    ax = plots.best_so_far({"ASHA": asha, "random search": random_search}, x="iterations")
    ax.set_title("Digits MLP, 16 configurations: ASHA against random search")
    ax.figure.savefig(os.path.join(ROOT, "docs", "img", "best_so_far_asha_vs_random.png"), dpi=110,
                      bbox_inches="tight")
    pbt = run_pbt(population=4, max_steps=12 * 1024, seed=0, storage_path=storage, name="pbt", verbose=1,
                  steps_per_iteration=1024, perturbation_interval=2, eval_episodes=3)
    ax = plots.pbt_population(pbt)
    ax.figure.savefig(os.path.join(ROOT, "docs", "img", "pbt_population.png"), dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
