"""Wrapper components (ConcurrencyLimiter, Repeater, a scheduler holding the searcher) and
HyperOptSearch are rebuilt from experiment.json after a SIGKILL of the driver, and the resumed
sweep makes the decisions an uninterrupted one makes (issue 11's resume contract, through a
real tune.resume; tests/reliability/test_resume_exact.py does the same for the schedulers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from schedulers import ASHAScheduler, SearcherPruningScheduler
from searchers import ConcurrencyLimiter, HyperOptSearch, OptunaSearch, Repeater
from tests.integration import trainables as tr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRIALS = 14

# name -> (scheduler, search_alg) as Python source, evaluated here and in the killed driver alike
SETUPS = {
    "limiter": ("ASHAScheduler(max_t=6, grace_period=1, reduction_factor=3)",
                "ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=1)"),
    "repeater": ("ASHAScheduler(max_t=6, grace_period=1, reduction_factor=3)",
                 "Repeater(OptunaSearch(seed=0), repeat=2)"),
    "pruning": ("SearcherPruningScheduler(SEARCH)", "SEARCH"),
    "hyperopt": ("ASHAScheduler(max_t=6, grace_period=1, reduction_factor=3)", "HyperOptSearch(seed=0)"),
}
SWEEP = """
import tuner as tune
from schedulers import ASHAScheduler, SearcherPruningScheduler
from searchers import ConcurrencyLimiter, HyperOptSearch, OptunaSearch, Repeater
from tests.integration.trainables import slow_quadratic
SEARCH = OptunaSearch(seed=0, use_pruner=True)
tune.run(slow_quadratic, config={{"x": tune.uniform(0, 6), "steps": 6, "sleep": 0.05}}, num_samples={trials}, metric="loss",
         mode="min", scheduler={scheduler}, search_alg={search}, max_concurrent_trials=1, seed=0,
         storage_path={storage!r}, name="killed", verbose=0, log_to_tensorboard=False)
"""


def decisions(results):
    return [(t.trial_id, t.config, t.status.value, t.stop_reason, len(t.history)) for t in results.trials]


@pytest.mark.parametrize("setup", list(SETUPS))
def test_wrapper_components_resume_after_sigkill_to_the_uninterrupted_decisions(setup, ray_local, storage):
    scheduler_src, search_src = SETUPS[setup]
    names = {"ASHAScheduler": ASHAScheduler, "SearcherPruningScheduler": SearcherPruningScheduler,
             "ConcurrencyLimiter": ConcurrencyLimiter, "OptunaSearch": OptunaSearch, "Repeater": Repeater,
             "HyperOptSearch": HyperOptSearch}
    names["SEARCH"] = OptunaSearch(seed=0, use_pruner=True)
    whole = tune.run(tr.slow_quadratic, config={"x": tune.uniform(0, 6), "steps": 6, "sleep": 0.05}, num_samples=TRIALS,
                     metric="loss", mode="min", scheduler=eval(scheduler_src, names),
                     search_alg=eval(search_src, names), max_concurrent_trials=1, seed=0, storage_path=storage,
                     name="whole", verbose=0, log_to_tensorboard=False)

    path = os.path.join(storage, "killed")
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address, "TUNER_SNAPSHOT_EVERY_S": "2"}
    proc = subprocess.Popen([sys.executable, "-c", SWEEP.format(trials=TRIALS, storage=storage,
                                                                scheduler=scheduler_src, search=search_src)],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (os.path.exists(os.path.join(path, "journal.jsonl")) and len(tune.load(path).trials) >= 11):
            assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(tune.load(path).trials) < TRIALS, "killed mid-sweep"

    resumed = tune.resume(path, verbose=0)  # rebuilds the wrappers and what they wrap from experiment.json
    assert decisions(resumed) == decisions(whole)
    stops = [(d["trial_id"], d["reason"]) for d in resumed.decisions()]
    assert stops == [(d["trial_id"], d["reason"]) for d in whole.decisions()]
    assert stops, "the scheduler stopped no trial: the test would not see a wrong decision"
