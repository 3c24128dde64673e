"""Every scheduler through the same lifecycle, and a JSON state round trip that
must leave its decisions unchanged."""

from __future__ import annotations

import json
import math
import random

import pytest

from schedulers import (PB2, ASHAScheduler, FIFOScheduler, HyperBandScheduler, MedianStoppingRule,
                        PopulationBasedTraining)
from schedulers.base import Decision, TrialDecision
from tests.schedulers.fakes import trial
from tuner.trial import TrialStatus

FACTORIES = {
    "fifo": FIFOScheduler,
    "asha-stop": lambda: ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3),
    "asha-promote": lambda: ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3, stop_or_promote="promote"),
    "asha-brackets": lambda: ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3, brackets=3, seed=1),
    "median": lambda: MedianStoppingRule(grace_period=2, min_samples_required=2),
    "hyperband": lambda: HyperBandScheduler(max_t=9, reduction_factor=3),
    "pbt": lambda: PopulationBasedTraining(perturbation_interval=2, seed=0,
                                           hyperparam_mutations={"i": list(range(9)), "lr": [0.1, 0.01]}),
    "pbt-synch": lambda: PopulationBasedTraining(perturbation_interval=2, synch=True, seed=0,
                                                 hyperparam_mutations={"i": list(range(9))}),
    "pb2": lambda: PB2(perturbation_interval=2, seed=0, hyperparam_bounds={"i": [0, 8]}),
    "pb2-synch": lambda: PB2(perturbation_interval=2, synch=True, seed=0, hyperparam_bounds={"i": [0, 8]}),
}


def drive(scheduler, trials, rounds, rng, metric_value=None):
    """A little run loop: trials report at decision points; returns the decisions seen.
    ``metric_value(trial, iteration)`` gives the reported loss (default: random, shrinking)."""
    seen = []
    for _ in range(rounds):
        while (chosen := scheduler.choose_trial_to_run(
                [t for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)])) is not None:
            exploit = scheduler.on_trial_resume(chosen) if chosen.status is TrialStatus.PAUSED else None
            if exploit is not None:
                chosen.config = exploit.config
                seen.append((chosen.trial_id, None, exploit.action.value, exploit.reason))
            chosen.status = TrialStatus.RUNNING
        for tid, d in scheduler.trials_to_stop():
            next(x for x in trials if x.trial_id == tid).status = TrialStatus.TERMINATED
            seen.append((tid, None, d.action.value, d.reason))
        for t in list(trials):
            if t.status is not TrialStatus.RUNNING:
                continue
            after = (t.last_result or {}).get("training_iteration", 0)
            point = scheduler.next_decision_point(t, after)
            it = after + 1 if point is None else point
            if math.isinf(it):
                t.status = TrialStatus.TERMINATED
                scheduler.on_trial_complete(t, t.last_result)
                continue
            loss = metric_value(t, it) if metric_value else rng.random() / it
            t.last_result = {"training_iteration": it, "loss": loss}
            t.checkpoint_path = f"/checkpoints/{t.trial_id}/{it}"
            d = TrialDecision.of(scheduler.on_trial_result(t, t.last_result))
            seen.append((t.trial_id, it, d.action.value, d.reason))
            if d.action is Decision.EXPLOIT:
                t.config = d.config
            if d.action is Decision.STOP:
                t.status = TrialStatus.TERMINATED
                scheduler.on_trial_complete(t, t.last_result)
            elif d.action is Decision.PAUSE:
                t.status = TrialStatus.PAUSED
    return seen


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_lifecycle_and_state_round_trip(name):
    schedulers, runs = [], []
    for restore in (False, True):
        s = FACTORIES[name]()
        s.set_search_properties("loss", "min")
        trials = [trial(i) for i in range(9)]
        for t in trials:
            s.on_trial_add(t)
            assert s.choose_trial_to_run([t]) in (t, None)
        rng = random.Random(0)
        first = drive(s, trials, 2, rng)
        if restore:
            state = json.loads(json.dumps(s.state_dict()))
            assert state["version"] == 1
            s = FACTORIES[name]()
            s.set_search_properties("loss", "min")
            s.load_state_dict(state)
        runs.append(first + drive(s, trials, 10, rng))
        schedulers.append(s)
    assert runs[0] == runs[1]
    actions = {action for _, _, action, _ in runs[0]}
    if name == "fifo":
        assert actions <= {"CONTINUE"}, actions
    elif name.startswith(("pbt", "pb2")):
        assert "EXPLOIT" in actions and "STOP" not in actions, actions
        assert ("PAUSE" in actions) == name.endswith("synch"), actions
    else:
        assert actions & {"STOP", "PAUSE"}, actions


def test_mismatched_metric_is_a_clear_error():
    s = ASHAScheduler(metric="acc", mode="max")
    with pytest.raises(ValueError, match=r"ASHAScheduler was built with metric='acc' but tune.run got "
                                         r"metric='loss'; pass `metric` in one place only"):
        s.set_search_properties("loss", "min")
    with pytest.raises(ValueError, match=r"ranks trials on one metric, but `metric` is \['a', 'b'\]"):
        ASHAScheduler().set_search_properties(["a", "b"], ["max", "min"])


def test_scheduler_without_metric_explains_the_fix():
    with pytest.raises(ValueError, match=r"ASHAScheduler needs a `metric` and a `mode`. Either pass them when "
                                         r"building the scheduler, or pass them to tune.run"):
        ASHAScheduler().on_trial_add(trial(0))
