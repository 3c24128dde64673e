"""Run in a subprocess by test_lost_node.py: a sweep on a 3-node ``cluster_utils.Cluster``
loses one worker node mid-sweep (``remove_node``). Prints one JSON line for the test."""

from __future__ import annotations

import json
import sys
import threading

from ray.cluster_utils import Cluster

import tuner as tune
from tests.cluster.trainables import counter_on_node

STEPS = 30


class RemoveANodeMidSweep(tune.Callback):
    """Once every trial has reported a few results, remove the node the first trial runs on."""

    def __init__(self, cluster, nodes):
        self.cluster, self.nodes, self.removed, self.seen = cluster, nodes, None, {}

    def on_trial_result(self, trial, result):
        self.seen[trial.trial_id] = result
        if self.removed is None and len(self.seen) == 4 and all(r["step"] >= 4 for r in self.seen.values()):
            victim = result["node"]
            self.removed = victim
            node = next(n for n in self.nodes if n.node_id == victim)
            threading.Thread(target=self.cluster.remove_node, args=(node,), daemon=True).start()


def main(storage: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    remover = RemoveANodeMidSweep(cluster, nodes)
    results = tune.run(counter_on_node, config={"i": tune.grid_search([0, 1, 2, 3]), "n": STEPS, "sleep": 0.2},
                       resources_per_trial={"cpu": 1}, max_failures=2, storage_path=storage, verbose=0,
                       callbacks=[remover], address=cluster.address, raise_on_failed_trial=False)
    again = tune.load(results.experiment_path)
    print("RESULT " + json.dumps({
        "removed": remover.removed, "path": results.experiment_path,
        "trials": [{"id": t.trial_id, "status": t.status.value, "failures": t.num_failures, "error": t.error,
                    "steps": [r["step"] for r in t.history], "nodes": sorted({r["node"] for r in t.history})}
                   for t in again.trials],
    }))
    import ray

    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
