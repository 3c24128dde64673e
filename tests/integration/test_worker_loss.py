"""One trial's worker process killed by PID (SIGKILL): that trial resumes from its checkpoint on
a new worker, counted against max_failures; the other trials are untouched."""

from __future__ import annotations

import os
import signal

import pytest

import tuner as tune
from tests.cluster.trainables import counter_on_node

pytestmark = pytest.mark.ray


class KillOneWorker(tune.Callback):
    def __init__(self):
        self.killed = None

    def on_trial_result(self, trial, result):
        if self.killed is None and trial.config["i"] == 0 and result["step"] == 5:
            self.killed = result["pid"]
            os.kill(result["pid"], signal.SIGKILL)


def test_killed_worker_pid_resumes_from_checkpoint(ray_local, storage):
    killer = KillOneWorker()
    results = tune.run(counter_on_node, config={"i": tune.grid_search([0, 1]), "n": 12, "sleep": 0.1},
                       max_failures=2, storage_path=storage, verbose=0, callbacks=[killer])
    assert killer.killed
    for trial in results.trials:
        assert trial.status is tune.TrialStatus.TERMINATED
        assert [r["step"] for r in trial.history] == list(range(1, 13))
        pids = {r["pid"] for r in trial.history}
        if trial.config["i"] == 0:
            assert trial.num_failures == 1 and killer.killed in pids and len(pids) == 2
            assert "died" in trial.error
        else:
            assert trial.num_failures == 0 and killer.killed not in pids
