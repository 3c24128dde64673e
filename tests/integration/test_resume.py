"""Crash safety: SIGKILL the driver mid-sweep, resume, and lose or repeat nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from tests.integration import trainables as tr
from tuner.storage import journal
from tuner.storage.journal import Event

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = """
import tuner as tune
from tests.integration.trainables import slow_counter
tune.run(slow_counter, config={{"n": 30, "w": tune.grid_search([1, 2, 3, 4])}}, storage_path={storage!r},
         name="crash", verbose=0, metric="score", mode="max")
"""


def _journal_results(path):
    return sum(1 for r in journal.read(path) if r.event is Event.RESULT)


@pytest.mark.usefixtures("ray_local")
def test_sigkill_then_resume_loses_and_repeats_nothing(storage):
    path = os.path.join(storage, "crash")
    proc = subprocess.Popen([sys.executable, "-c", SWEEP.format(storage=storage)], cwd=ROOT,
                            env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if journal.exists(path) and _journal_results(path) >= 25:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the sweep never got going")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = tune.load(path)
    reported_before = {t.trial_id: [r["step"] for r in t.history] for t in before.trials}
    assert any(t.status is tune.TrialStatus.RUNNING for t in before.trials), "killed mid-run"

    results = tune.resume(path, verbose=0)
    for trial in results.trials:
        steps = [r["step"] for r in trial.history]
        assert steps == list(range(1, 31)), (trial.trial_id, steps)
        assert [r["training_iteration"] for r in trial.history] == list(range(1, 31))
        kept = reported_before.get(trial.trial_id, [])
        # everything journaled before the kill up to the checkpoint survived unchanged
        assert steps[:len(kept)] == kept[:len(steps)]
    assert len(results.trials) == 4 and results.best_result["score"] == 120
    reloaded = tune.load(path)
    assert [[r["step"] for r in t.history] for t in reloaded.trials] == [list(range(1, 31))] * 4
    events = [r.event for r in journal.read(path)]
    assert events.count(Event.RESUMED) == 1


@pytest.mark.usefixtures("ray_local")
def test_resume_true_on_a_finished_experiment_runs_nothing_again(storage):
    first = tune.run(tr.quadratic, config={"x": tune.grid_search([1, 2]), "steps": 2}, storage_path=storage,
                     name="done", verbose=0)
    again = tune.run(tr.quadratic, config={"x": tune.grid_search([1, 2]), "steps": 2}, storage_path=storage,
                     name="done", verbose=0, resume=True)
    assert [t.history for t in again.trials] == [t.history for t in first.trials]
