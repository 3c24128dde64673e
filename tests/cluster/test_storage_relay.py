"""A node that cannot see a local ``storage_path``: its trials' checkpoints, restores, logs and
artifacts go through the StorageRelay on the driver's node, and nothing is lost.

The worker node is a real ``ray start`` node in a mount namespace of its own, where an empty
tmpfs covers the storage directory (root only; skipped elsewhere): its processes truly do not
see the driver's directory. The head has no CPUs, so every trial runs on that node. Afterwards
the node's own view of the directory (through ``/proc/<its raylet>/root``) is still empty:
every file in storage arrived through the relay."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import tuner as tune
from tests.cluster.conftest import ROOT, can_hide_directories, ray_start
from tuner.storage import checkpoint as ckpt_lib

pytestmark = pytest.mark.cluster

SWEEP = """
import json, ray
import tuner as tune
from tests.integration.trainables import directory_checkpoints
ray.init(address={gcs!r})
head = next(n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"])
tune.run(directory_checkpoints, config={{"peak": tune.grid_search([2, 4]), "steps": 5, "fail_at": 3}},
         metric="score", mode="max", max_failures=1, storage_path={storage!r}, name="relay", verbose=0,
         log_to_tensorboard=False)
print("NODES", json.dumps({{"driver": ray.get_runtime_context().get_node_id(), "head": head}}))
"""


def _raylet_pid(port: int) -> int:
    out = subprocess.run(["pgrep", "-f", f"raylet.*node_manager_port={port}"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 1, out
    return pids[0]


def test_a_node_that_cannot_see_the_storage_path_goes_through_the_relay(tmp_path):
    if os.geteuid() != 0 or not can_hide_directories():
        pytest.skip("hiding the storage from a node needs a mount namespace and tmpfs mounts (root, CAP_SYS_ADMIN)")
    storage = str(tmp_path / "results")
    os.makedirs(storage)
    with ray_start(workers={"hidden": {"cpus": 2, "gpus": 0, "hide": [storage]}}, head_cpus=0) as cluster:
        out = subprocess.run([sys.executable, "-c", SWEEP.format(gcs=cluster.gcs, storage=storage)], cwd=ROOT,
                             env={**cluster.env, "RAY_ADDRESS": cluster.gcs}, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        nodes = json.loads(out.stdout.split("NODES", 1)[1])
        assert nodes["driver"] == nodes["head"]  # the relay lives on the driver's node, which sees the storage
        hidden_view = f"/proc/{_raylet_pid(cluster.worker_raylet_ports[0])}/root{storage}"
        assert os.listdir(hidden_view) == []  # the node's own view: empty, nothing was written there

    results = tune.load(os.path.join(storage, "relay"))
    assert len(results.trials) == 2
    for trial in results.trials:
        assert trial.status.value == "TERMINATED" and trial.num_failures == 1
        assert [r["step"] for r in trial.history] == [1, 2, 3, 4, 5]  # no gap, no duplicate
        assert {r["node"] for r in trial.history} - {nodes["head"]} == {r["node"] for r in trial.history}
        assert trial.history[-1]["restored_from"] == 3  # the retry restored checkpoint 3 through the relay
        for path in trial.checkpoints:  # published through the relay, complete, restorable here
            assert ckpt_lib.is_complete(path)
            with open(os.path.join(ckpt_lib.load(path).to_directory(), "state.txt")) as f:
                assert int(f.read()) == ckpt_lib.iteration_of(path)
        with open(os.path.join(trial.path, "artifacts", "notes.txt")) as f:
            assert f.read() == "started at 0\nstarted at 3\n"
        with open(os.path.join(trial.path, "stdout.log")) as f:
            log = f.read()
        assert f"stdout of {trial.trial_id} from 0" in log and f"stdout of {trial.trial_id} from 3" in log


LATE = """
import ray
import tuner as tune
from tests.integration.trainables import directory_checkpoints
ray.init(address={gcs!r})
results = tune.run(directory_checkpoints, config={{"peak": 1, "steps": 2}}, storage_path={storage!r}, name="late",
                   verbose=0, log_to_tensorboard=False, raise_on_failed_trial=False)
print("STATUS", results.trials[0].status.value)
"""


def test_a_node_that_joined_after_the_start_and_cannot_see_the_storage_fails_its_trial_naming_the_fix(tmp_path):
    if os.geteuid() != 0 or not can_hide_directories():
        pytest.skip("hiding the storage from a node needs a mount namespace and tmpfs mounts (root, CAP_SYS_ADMIN)")
    from tests.cluster.conftest import add_worker
    from tests.reliability.helpers import wait_for
    from tuner.storage import journal

    storage = str(tmp_path / "results")
    os.makedirs(storage)
    path = os.path.join(storage, "late")
    with ray_start(workers={}, head_cpus=0) as cluster:  # one node at the start: no relay
        # the trial waits for a node that fits (as with an autoscaler) instead of failing fast
        env = {**cluster.env, "RAY_ADDRESS": cluster.gcs, "TUNER_AUTOSCALING": "1"}
        proc = subprocess.Popen([sys.executable, "-c", LATE.format(gcs=cluster.gcs, storage=storage)], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The journal appears milliseconds before tune.run decides whether it needs a relay (trials are
            # only made once they fit); a node takes seconds to join, and the error below names the case.
            def started():
                assert proc.poll() is None, proc.communicate()
                return journal.exists(path)

            wait_for(started, 180, "the sweep to start")
            add_worker(cluster, "late", {"cpus": 2, "gpus": 0, "hide": [storage]})
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            proc.kill()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "STATUS ERROR" in stdout
    (trial,) = tune.load(path).trials
    assert "cannot see the storage_path" in trial.error and storage in trial.error
    assert "no storage relay is running" in trial.error
    assert "a shared mount" in trial.error and "s3://bucket/prefix" in trial.error
    assert trial.checkpoints == []  # nothing recorded that is not in storage

