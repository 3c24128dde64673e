"""Snapshots are taken on a time budget; a driver killed between two of them
resumes by replaying the journal past the last one, and the sweep goes on
making the decisions an uninterrupted run makes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import tuner as tune
from schedulers import ASHAScheduler
from searchers import OptunaSearch
from tests.integration import trainables as tr
from tuner.storage import journal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRIALS = 36
SWEEP = """
import tuner as tune
from schedulers import ASHAScheduler
from searchers import OptunaSearch
from tests.integration.trainables import slow_quadratic
tune.run(slow_quadratic, config={{"x": tune.uniform(0, 6), "steps": 9, "sleep": 0.1}}, num_samples={trials}, metric="loss",
         mode="min", scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3),
         search_alg=OptunaSearch(seed=0), max_concurrent_trials=1, seed=0, storage_path={storage!r},
         name="killed", verbose=0, log_to_tensorboard=False)
"""


def _added_after_snapshot(path):
    """Trials the journal holds past the last snapshot (-1 while there is no snapshot)."""
    try:
        with open(os.path.join(path, "state.json")) as f:
            offset = json.load(f)["journal_offset"]
    except (OSError, ValueError, KeyError):
        return -1
    return sum(1 for at, record in journal.read_with_offsets(path)
               if at >= offset and record.event is journal.Event.TRIAL_ADDED)


def _decisions(results):
    """What the scheduler and searcher decided, trial by trial."""
    return [(t.trial_id, t.config["x"], t.status.value, t.stop_reason,
             [r["loss"] for r in t.history][-1:]) for t in results.trials]


def test_kill_between_snapshots_resumes_to_the_uninterrupted_decisions(ray_local, storage):
    whole = tune.run(tr.slow_quadratic, config={"x": tune.uniform(0, 6), "steps": 9, "sleep": 0.1}, num_samples=TRIALS,
                     metric="loss", mode="min", scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3),
                     search_alg=OptunaSearch(seed=0), max_concurrent_trials=1, seed=0, storage_path=storage,
                     name="whole", verbose=0, log_to_tensorboard=False)
    path = os.path.join(storage, "killed")
    # the killed driver joins the session's Ray: starting a second one is slow on a loaded machine
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address, "TUNER_SNAPSHOT_EVERY_S": "3"}
    proc = subprocess.Popen([sys.executable, "-c", SWEEP.format(trials=TRIALS, storage=storage)], cwd=ROOT, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        # past the first snapshot, with TPE (10 random trials first) deciding, and 3 trials past it
        while not (_added_after_snapshot(path) >= 3 and len(tune.load(path).trials) > 14):
            assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _added_after_snapshot(path) >= 3, "killed between two snapshots"
    assert len(tune.load(path).trials) < TRIALS

    resumed = tune.resume(path, verbose=0)
    assert _decisions(resumed) == _decisions(whole)
    stops = [(d["trial_id"], d["reason"]) for d in resumed.decisions()]
    assert stops == [(d["trial_id"], d["reason"]) for d in whole.decisions()]
    assert any("cutoff" in reason for _, reason in stops)  # ASHA did stop trials at rungs
