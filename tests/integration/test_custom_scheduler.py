"""A user-written scheduler (the one in docs/schedulers.md) and the median stopping
rule, through tune.run on the shared local Ray."""

from __future__ import annotations

import math

import pytest

import tuner as tune
from schedulers import Decision, MedianStoppingRule, TrialDecision, TrialScheduler
from tests.integration import trainables as tr

pytestmark = pytest.mark.usefixtures("ray_local")


class StopSlowLearners(TrialScheduler):
    """Stops, at iteration `at`, every trial whose loss is still above `threshold`."""

    def __init__(self, threshold: float, at: int = 5) -> None:
        super().__init__(metric="loss", mode="min")
        self.threshold = threshold
        self.at = at
        self.seen: list[int] = []

    def next_decision_point(self, trial, after):
        return self.at if after < self.at else math.inf

    def on_trial_result(self, trial, result):
        self.seen.append(result["training_iteration"])
        if result["loss"] > self.threshold:
            return TrialDecision.stop(f"loss {result['loss']:.3g} > {self.threshold} at {self.at}",
                                      threshold=self.threshold)
        return Decision.CONTINUE


def test_custom_scheduler_stops_exactly_where_it_said(storage):
    scheduler = StopSlowLearners(threshold=2.0, at=5)
    # learning_curve: loss = 1 / (0.1 + width * step / 100) + 0.1 * height
    config = {"width": tune.grid_search([1.0, 20.0]), "height": 0.0}
    results = tune.run(tr.learning_curve, config=config, scheduler=scheduler, storage_path=storage, verbose=0,
                       metric="loss", mode="min", stop={"training_iteration": 12})
    slow, fast = results.trials
    assert scheduler.seen == [5, 5], "the scheduler is asked only at its decision point"
    assert slow.last_result["training_iteration"] == 5 and slow.stop_reason.startswith("loss ")
    assert fast.last_result["training_iteration"] == 12 and fast.status is tune.TrialStatus.TERMINATED
    (decision,) = results.decisions()
    assert (decision["trial_id"], decision["action"], decision["iteration"]) == (slow.trial_id, "STOP", 5)
    assert decision["info"] == {"threshold": 2.0}


def test_median_stopping_rule_stops_the_worse_half(storage):
    heights = [-50.0, -40.0, -30.0, 30.0, 40.0, 50.0]
    results = tune.run(tr.learning_curve, config={"width": 5.0, "height": tune.grid_search(heights)},
                       scheduler=MedianStoppingRule(grace_period=2, min_samples_required=3), metric="loss",
                       mode="min", storage_path=storage, verbose=0, max_concurrent_trials=1,
                       stop={"training_iteration": 8})
    by_height = {t.config["height"]: t for t in results.trials}
    for h in heights[:3]:  # the better trials run first, with too few others to be judged
        assert by_height[h].last_result["training_iteration"] == 8
    for h in heights[3:]:
        trial = by_height[h]
        assert trial.last_result["training_iteration"] == 2, "stopped at the grace period, not later"
        assert "worse than the median" in trial.stop_reason
