"""A dead worker's error says how it died: the exit code it gave, the fatal signal it crashed with, or
that it was SIGKILLed (nothing could be noted), with its PID and node; Ray itself reports all three as
the same connection error."""

from __future__ import annotations

import os
import re
import signal

import pytest

import tuner as tune
from tests.reliability import sweeps

pytestmark = pytest.mark.ray


class KillByPid(tune.Callback):
    def on_trial_result(self, trial, result):
        if trial.config["how"] == "sigkill":
            os.kill(result["pid"], signal.SIGKILL)


def test_a_dead_workers_error_says_how_it_died(ray_local, storage):
    results = tune.run(sweeps.dies, config={"how": tune.grid_search(["exit", "segfault", "sigkill"])},
                       storage_path=storage, verbose=0, raise_on_failed_trial=False, log_to_tensorboard=False,
                       callbacks=[KillByPid()])
    errors = {t.config["how"]: t.error for t in results.trials}
    assert all(t.status is tune.TrialStatus.ERROR for t in results.trials), errors
    for error in errors.values():
        assert re.search(r"\(PID \d+ on node \S+ [0-9a-f]+\) died: ", error), error
    assert "it exited with code 3 (os._exit)" in errors["exit"]
    assert "it crashed with a fatal signal: Segmentation fault" in errors["segfault"]
    assert "sweeps.py" in errors["segfault"]  # where: the trainable's line
    assert "killed by a signal it could not note: SIGKILL" in errors["sigkill"]
