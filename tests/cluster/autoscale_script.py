"""Run in a subprocess by test_nodes_come_and_go.py: a trial asks for a resource no node has;
with TUNER_AUTOSCALING=1 it waits, its shape is handed to Ray's autoscaler as a resource request,
and this script plays the autoscaler: it reads the request and adds a node that fits."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from ray.cluster_utils import Cluster

import tuner as tune
from tests.integration.trainables import quadratic


def requested() -> list:
    from ray.experimental.internal_kv import _internal_kv_get

    from ray.autoscaler.v2.utils import is_autoscaler_v2

    if is_autoscaler_v2():
        from ray.autoscaler.v2.sdk import get_cluster_status
        import ray

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        return [d.bundles_by_count for d in status.resource_demands.cluster_constraint_demand]
    raw = _internal_kv_get(b"autoscaler_resource_request")
    return json.loads(raw) if raw else []


def main(storage: str) -> None:
    """The sweep runs in a thread; the main thread plays the autoscaler (Ray adds nodes only
    from the main thread): it waits for the request, then adds a node that fits."""
    os.environ["TUNER_AUTOSCALING"] = "1"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.wait_for_nodes()
    out: dict = {}

    def sweep() -> None:
        results = tune.run(quadratic, config={"x": 1, "steps": 2}, resources_per_trial={"cpu": 1, "late": 1},
                           storage_path=storage, verbose=0, address=cluster.address)
        out["status"] = [t.status.value for t in results.trials]

    runner = threading.Thread(target=sweep, daemon=True)
    runner.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "request" not in out:
        try:
            demand = requested()
        except Exception:  # noqa: BLE001 - Ray not connected yet
            demand = []
        if any("late" in json.dumps(d, default=str) for d in demand):
            out["request"] = demand
            cluster.add_node(num_cpus=1, resources={"late": 1})
        time.sleep(0.5)
    runner.join(300)
    print("RESULT " + json.dumps({"request": out.get("request"), "status": out.get("status")}, default=str))
    import ray

    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
