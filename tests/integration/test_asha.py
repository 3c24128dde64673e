"""ASHA through tune.run on the shared local Ray: exact stops at rungs, reasons on
record, the same decisions on every seeded run, and promotion from checkpoints."""

from __future__ import annotations

import pytest

import tuner as tune
from schedulers import ASHAScheduler
from tests.integration import trainables as tr

pytestmark = pytest.mark.usefixtures("ray_local")
SPACE = {"width": tune.uniform(0, 20), "height": tune.uniform(-100, 100)}


def _sweep(storage, num_samples=12, **kwargs):
    scheduler = ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3, **kwargs)
    return tune.run(tr.learning_curve, config=SPACE, num_samples=num_samples, metric="loss", mode="min", seed=3,
                    scheduler=scheduler, storage_path=storage, verbose=0, max_concurrent_trials=1)


def test_asha_stops_exactly_at_rungs_and_says_why(storage):
    results = _sweep(storage)
    rungs = {1, 3, 9}
    for trial in results.trials:
        last = trial.last_result["training_iteration"]
        assert [r["training_iteration"] for r in trial.history] == list(range(1, last + 1))
        assert last in rungs | {27}, "a trial reported past the rung it was stopped at"
    stops = [d for d in results.decisions() if d["action"] == "STOP"]
    early = [d for d in stops if d["info"]["rung"] != 27]
    assert early and all(d["iteration"] == d["info"]["rung"] for d in early)
    assert all(d["info"]["value"] > d["info"]["cutoff"] for d in early)
    assert all(t.stop_reason for t in results.trials)
    assert sum(t.last_result["training_iteration"] for t in results.trials) < 12 * 27


def test_seeded_asha_makes_the_same_decisions(storage):
    runs = [_sweep(storage) for _ in range(2)]
    decisions = [[(d["trial_id"], d["iteration"], d["action"]) for d in r.decisions()] for r in runs]
    assert decisions[0] == decisions[1]


def test_promote_variant_resumes_paused_trials_from_checkpoints(storage):
    results = _sweep(storage, num_samples=27, stop_or_promote="promote")
    pauses = [d for d in results.decisions() if d["action"] == "PAUSE"]
    assert pauses
    for trial in results.trials:
        steps = [r["training_iteration"] for r in trial.history]
        assert steps == list(range(1, len(steps) + 1)), "a resumed trial lost or repeated iterations"
    reached = {rung: sum(t.last_result["training_iteration"] >= rung for t in results.trials) for rung in (3, 9, 27)}
    # 27 trials, rf=3: floor(n/rf) promoted at each rung, so exactly 9, 3 and 1 go on
    assert reached == {3: 9, 9: 3, 27: 1}
    best = min(results.trials, key=lambda t: t.history[0]["loss"])
    assert best.last_result["training_iteration"] >= 3  # the best at the first rung was promoted


def test_hyperband_keeps_a_third_per_rung_and_resumes_from_checkpoints(storage):
    from schedulers import HyperBandScheduler

    results = tune.run(tr.learning_curve, config=SPACE, num_samples=9, metric="loss", mode="min", seed=3,
                       scheduler=HyperBandScheduler(max_t=9, reduction_factor=3), storage_path=storage,
                       verbose=0)
    # one bracket of 9 (s=2): milestones 1, 3, 9 keep 9 -> 3 -> 1
    reached = {rung: sum(t.last_result["training_iteration"] >= rung for t in results.trials) for rung in (1, 3, 9)}
    assert reached == {1: 9, 3: 3, 9: 1}
    for trial in results.trials:
        steps = [r["training_iteration"] for r in trial.history]
        assert steps == list(range(1, len(steps) + 1))
        assert trial.status is tune.TrialStatus.TERMINATED
    first_rung = sorted(results.trials, key=lambda t: t.history[0]["loss"])
    assert {t.trial_id for t in first_rung[:3]} == {t.trial_id for t in results.trials
                                                    if t.last_result["training_iteration"] >= 3}
