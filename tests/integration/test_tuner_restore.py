"""``Tuner.restore`` after a real crash: a driver running three trials (one failed, two
unfinished) is SIGKILLed, then the experiment is restored with Ray Tune's flags:
``resume_unfinished``, ``resume_errored`` and ``restart_errored``; a stateful stopper
(a result budget for the whole experiment) counts on where it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from tests.integration import trainables as tr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 8
DRIVER = """
import tuner as tune
from tests.integration.trainables import fails_once
space = {{"steps": {steps}, "marker": {marker!r}, "sleep": 0.3, "crash_at": tune.grid_search([2, None, None])}}
tune.Tuner(fails_once, param_space=space,
           run_config=tune.RunConfig(name="crashed", storage_path={storage!r}, verbose=0)).fit()
"""


def _crash(ray_local, storage, marker):
    """Run the driver in a subprocess and SIGKILL it once the first trial has failed and
    another has at least two checkpoints; returns the experiment path."""
    path = os.path.join(storage, "crashed")
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER.format(steps=STEPS, marker=marker, storage=storage)],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None and time.time() < deadline, "the driver ended before it could be killed"
            if tune.Tuner.can_restore(path):
                trials = tune.load(path).trials
                if (trials and trials[0].status.value == "ERROR"
                        and any(len(t.checkpoints) >= 2 for t in trials[1:])):
                    break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    trials = tune.load(path).trials
    assert [t.status.value for t in trials][0] == "ERROR"
    assert any(t.status.value in ("RUNNING", "PENDING") for t in trials[1:]), "killed with trials unfinished"
    return path


def _steps(result):
    return list(result.metrics_dataframe["step"])


def test_restore_continues_unfinished_and_resumes_errored_from_checkpoints(ray_local, storage, tmp_path):
    path = _crash(ray_local, storage, str(tmp_path / "marker"))
    unfinished = {t.trial_id: t.checkpoint_iteration for t in tune.load(path).trials[1:]}

    grid = tune.Tuner.restore(path, tr.fails_once, resume_errored=True).fit()
    assert grid.num_errors == 0 and len(grid) == 3
    by_id = {os.path.basename(r.path): r for r in grid}
    failed = by_id["trial_00000"]
    assert _steps(failed) == list(range(1, STEPS + 1))  # gap-free: 1 before the failure, 2.. after
    assert failed.metrics_dataframe["restored_from"].iloc[-1] == 1  # from its checkpoint of step 1
    for trial_id, checkpointed in unfinished.items():
        result = by_id[trial_id]
        assert _steps(result) == list(range(1, STEPS + 1))
        assert result.metrics_dataframe["restored_from"].iloc[-1] == (checkpointed or 0)


def test_restore_skips_unfinished_and_restarts_errored_from_scratch(ray_local, storage, tmp_path):
    path = _crash(ray_local, storage, str(tmp_path / "marker"))
    before = {t.trial_id: (len(t.history), t.checkpoints[:]) for t in tune.load(path).trials}
    old_checkpoints = before["trial_00000"][1]
    assert old_checkpoints and all(os.path.isdir(p) for p in old_checkpoints)

    grid = tune.Tuner.restore(path, tr.fails_once, resume_unfinished=False, restart_errored=True).fit()
    by_id = {os.path.basename(r.path): r for r in grid}
    assert grid.num_errors == 0
    restarted = by_id["trial_00000"]
    assert _steps(restarted) == list(range(1, STEPS + 1))
    assert set(restarted.metrics_dataframe["restored_from"]) == {0}  # no checkpoint loaded
    trials = {t.trial_id: t for t in tune.load(path).trials}
    assert trials["trial_00000"].num_failures == 0
    for trial_id in ("trial_00001", "trial_00002"):  # ended as they were, not run again
        assert trials[trial_id].status.value == "TERMINATED"
        assert trials[trial_id].stop_reason == "not resumed (resume_unfinished=False)"
        assert len(trials[trial_id].history) == before[trial_id][0]
    # the restart's own checkpoints only (the old ones were deleted before it began)
    assert [p for p in trials["trial_00000"].checkpoints] and all(os.path.isdir(p)
                                                                  for p in trials["trial_00000"].checkpoints)
    assert len(trials["trial_00000"].checkpoints) == STEPS


def test_both_errored_flags_are_refused(storage):
    with pytest.raises(ValueError, match="`resume_errored` and `restart_errored` are both True; pass one"):
        tune.Tuner.restore(storage, tr.fails_once, resume_errored=True, restart_errored=True)


BUDGET_DRIVER = """
import tuner as tune
from tests.integration.trainables import ResultBudget, fails_once
tune.Tuner(fails_once, param_space={{"steps": 12, "marker": {marker!r}, "sleep": 0.2}},
           tune_config=tune.TuneConfig(num_samples=4, max_concurrent_trials=1),
           run_config=tune.RunConfig(name="budget", storage_path={storage!r}, verbose=0,
                                     stop=ResultBudget(20))).fit()
"""


def test_a_stateful_stopper_counts_on_after_a_sigkill(ray_local, storage, tmp_path):
    path = os.path.join(storage, "budget")
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-c", BUDGET_DRIVER.format(marker=str(tmp_path / "m"), storage=storage)],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (tune.Tuner.can_restore(path) and sum(len(t.history) for t in tune.load(path).trials) >= 7):
            assert proc.poll() is None and time.time() < deadline, "the driver ended before it could be killed"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = sum(len(t.history) for t in tune.load(path).trials)
    assert 7 <= before < 20

    grid = tune.Tuner.restore(path, tr.fails_once).fit()  # the stopper comes back from experiment.json
    assert sum(len(r.metrics_dataframe) for r in grid if r.metrics) == 20  # not `before` + 20
    assert {r.metrics["step"] for r in grid if r.metrics} <= set(range(1, 13))
