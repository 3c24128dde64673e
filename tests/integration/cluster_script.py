"""Run in a subprocess by test_cluster.py: a 2-node Ray cluster with fake GPUs.

Prints one JSON line with what the trials saw, for the test to check.
"""

from __future__ import annotations

import json
import os
import sys

import ray
from ray.cluster_utils import Cluster

import tuner as tune
from schedulers import PopulationBasedTraining
from tests.integration.test_pbt import checkpoint_counts
from tests.integration.trainables import introspect, pbt_counter


def main(storage: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    cluster.add_node(num_cpus=4, num_gpus=2, resources={"accel": 2})
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address  # joined through the environment, as users do
    out: dict = {}
    results = tune.run(introspect, config={"i": tune.grid_search(list(range(4))), "sleep": 1.5},
                       resources_per_trial={"cpu": 1, "gpu": 0.5}, storage_path=storage, verbose=0)
    out["gpu_trials"] = [
        {"gpu_ids": t.history[0]["gpu_ids"], "cuda": t.history[0]["cuda"], "start": t.history[0]["start"],
         "end": t.history[-1]["end"]}
        for t in results.trials
    ]
    results = tune.run(introspect, config={"i": tune.grid_search([0, 1])}, resources_per_trial={"cpu": 1, "accel": 1},
                       storage_path=storage, verbose=0)
    out["custom_ok"] = all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    try:
        tune.run(introspect, config={"i": 0}, resources_per_trial={"cpu": 1, "gpu": 3}, storage_path=storage,
                 verbose=0)
    except ValueError as exc:
        out["infeasible_error"] = str(exc)
    # PBT across the two nodes: 1 CPU on the head, 4 on the other; clones travel through the driver
    pbt = PopulationBasedTraining(perturbation_interval=3, quantile_fraction=0.5, seed=0,
                                  hyperparam_mutations={"inc": [1, 2, 3, 5, 10, 20]})
    results = tune.run(pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20, 3]), "sleep": 0.05,
                                                  "side_by_side": 5},
                       metric="count", mode="max", scheduler=pbt, stop={"training_iteration": 9},
                       resources_per_trial={"cpu": 1}, storage_path=storage, verbose=0, seed=0)
    node_of = {t.trial_id: {r["node"] for r in t.history} for t in results.trials}
    out["pbt_clones"] = [
        {"recipient_nodes": sorted(node_of[e["trial_id"]]), "donor_nodes": sorted(node_of[e["donor_id"]]),
         "expected": count + e["config"]["inc"],
         "after": next(r["count"] for r in results.trials[int(e["trial_id"][-5:])].history
                       if r["training_iteration"] == e["iteration"] + 1)}
        for e, count in checkpoint_counts(results.experiment_path)
    ]
    out["pbt_nodes"] = sorted({n for nodes in node_of.values() for n in nodes})
    print("RESULT " + json.dumps(out), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
