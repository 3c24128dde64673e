"""Run in a subprocess by test_cluster.py: DDP gangs on a 3-node Ray (a head without CPUs and
two 2-CPU worker nodes), one trial per placement strategy.

Prints one JSON line: per strategy, each rank's node and its bundle's node.
"""

from __future__ import annotations

import json
import os
import sys
import time

import ray
from ray.cluster_utils import Cluster

import tuner as tune
from tests.integration import ddp_trainables as ddp


def _wait_until_all_cpus_free(total: float, timeout: float = 120.0) -> None:
    """SPREAD and PACK are best effort in Ray: a gang placed while the last trial's placement group is
    still being removed sees one node full and lands wherever the CPUs are. Wait for the removal first."""
    if not ray.is_initialized():
        return
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.2)


def main(storage: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    out: dict = {"worker_nodes": sorted(n.node_id for n in workers)}
    for strategy in ("PACK", "SPREAD"):
        _wait_until_all_cpus_free(4)
        gang = tune.PlacementGroupFactory([{"cpu": 1}, {"cpu": 1}], strategy=strategy)
        results = tune.run(ddp.ddp_linear, config={"lr": 0.05, "epochs": 2}, resources_per_trial=gang,
                           storage_path=storage, verbose=0)
        trial = results.trials[0]
        starts = ddp.records(trial.path, "start")
        table = ray.util.placement_group_table()[starts[0]["pg"]]
        out[strategy] = {
            "status": trial.status.value, "rank_nodes": [s["node"] for s in starts],
            "bundle_nodes": [table["bundles_to_node_id"][i] for i in range(len(starts))],
            "same_params": [f["params"] for f in ddp.records(trial.path, "final")],
            "local_ranks": [s["local_rank"] for s in starts], "pg_state": table["state"],
        }
    try:
        tune.run(ddp.ddp_linear, config={"lr": 0.05, "epochs": 1}, storage_path=storage, verbose=0,
                 resources_per_trial=tune.PlacementGroupFactory([{"cpu": 1}] * 3, strategy="STRICT_SPREAD"))
    except ValueError as exc:
        out["infeasible_error"] = str(exc)
    print("RESULT " + json.dumps(out), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
