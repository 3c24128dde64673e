"""Stoppers live in the driver: exact per-trial stops, state across trials, ending the whole
experiment. The run loop against an in-process executor; the rules on plain results. No Ray."""

from __future__ import annotations

import datetime

import pytest

import tuner as tune
from tests.fakes import InProcessExecutor
from tuner.stopper import (CombinedStopper, ExperimentPlateauStopper, FunctionStopper, MaximumIterationStopper,
                           Stopper, TimeoutStopper, TrialPlateauStopper)
from tuner.trial import TrialStatus


def steps(config):
    for step in range(1, 21):
        tune.report({"loss": config.get("base", 1.0) + 1.0 / step, "step": step})


def run(stop, storage, **kwargs):
    return tune.run(steps, stop=stop, storage_path=storage, verbose=0, log_to_tensorboard=False,
                    _executor=InProcessExecutor(slots=2), **kwargs)


def test_maximum_iteration_stopper_stops_each_trial_exactly(storage):
    results = run(MaximumIterationStopper(4), storage, num_samples=3)
    assert [len(t.history) for t in results.trials] == [4, 4, 4]
    assert all(t.stop_reason == "MaximumIterationStopper stopped it" for t in results.trials)


class ResultBudget(Stopper):
    """Stateful across trials: the whole experiment gets ``budget`` results."""

    def __init__(self, budget):
        self.budget, self.seen, self.trials = budget, 0, set()

    def __call__(self, trial_id, result):
        self.seen += 1
        self.trials.add(trial_id)
        return False

    def stop_all(self):
        return self.seen >= self.budget


def test_a_stateful_stopper_ends_the_whole_experiment(storage):
    stopper = ResultBudget(10)
    results = run(stopper, storage, num_samples=6, max_concurrent_trials=2)
    assert stopper.trials <= {t.trial_id for t in results.trials}
    # every trial waits at each result: past the 10th, only the other running trial's pending one arrives
    assert 10 <= sum(len(t.history) for t in results.trials) <= 11
    assert all(t.status is TrialStatus.TERMINATED for t in results.trials)
    assert len(results.trials) <= 3, "no trial started after the stopper ended the experiment"
    assert all(t.stop_reason in ("ResultBudget ended the experiment", "ResultBudget stopped it")
               for t in results.trials if len(t.history) < 20)


def test_stopper_leaves_scheduler_decision_points_intact(storage):
    from schedulers import ASHAScheduler

    results = run(CombinedStopper(MaximumIterationStopper(9), FunctionStopper(lambda tid, r: False)), storage,
                  config={"base": tune.grid_search([1.0, 2.0, 3.0, 4.0])}, metric="loss", mode="min",
                  scheduler=ASHAScheduler(max_t=20, grace_period=3, reduction_factor=2), max_concurrent_trials=1)
    lengths = [len(t.history) for t in results.trials]
    assert lengths[0] == 9 and max(lengths) == 9 and min(lengths) == 3  # ASHA still stopped the worse at 3
    assert {d["iteration"] for d in results.decisions()} == {3}


def test_trial_plateau_stopper_waits_for_grace_and_threshold():
    stopper = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=4, metric_threshold=1.0, mode="min")
    flat = [stopper("a", {"loss": 2.0}) for _ in range(5)]
    assert flat == [False] * 5  # flat but never below the threshold
    assert [stopper("b", {"loss": v}) for v in (0.5, 0.5, 0.5, 0.5)] == [False, False, False, True]
    assert [stopper("c", {"loss": v}) for v in (0.5, 0.9, 0.1, 0.5, 0.3)] == [False] * 5


def test_experiment_plateau_stopper_needs_top_values_flat_for_patience():
    stopper = ExperimentPlateauStopper("acc", std=0.001, top=3, mode="max", patience=1)
    answers = [stopper(f"t{i}", {"acc": v}) for i, v in enumerate([0.5, 0.9, 0.9, 0.9, 0.2])]
    assert answers == [False, False, False, False, True] and stopper.stop_all()


def test_timeout_stopper_accepts_a_timedelta_and_refuses_nonsense():
    assert TimeoutStopper(datetime.timedelta(seconds=30)).timeout == 30.0
    assert not TimeoutStopper(60).stop_all()
    with pytest.raises(ValueError, match=r"The value of `timeout` is -1, but must be `timeout > 0"):
        TimeoutStopper(-1)
    with pytest.raises(ValueError, match=r"CombinedStopper takes Stopper objects; 3 is not one"):
        CombinedStopper(MaximumIterationStopper(2), 3)


def test_timeout_stopper_ends_a_sweep_whose_trials_are_quiet(storage):
    import time

    def slow(config):
        for step in range(1, 100):
            time.sleep(0.05)
            tune.report({"step": step})

    results = tune.run(slow, stop=TimeoutStopper(0.5), num_samples=4, storage_path=storage, verbose=0,
                       log_to_tensorboard=False, _executor=InProcessExecutor(slots=2))
    assert all(len(t.history) < 99 for t in results.trials)
    assert any(t.stop_reason == "TimeoutStopper ended the experiment" for t in results.trials)


def fails_when_told(config):
    for step in range(1, 30):
        if config["fail"] and step == 2:
            raise RuntimeError("boom")
        tune.report({"step": step})


@pytest.mark.parametrize("fail_fast", [True, "raise"])
def test_fail_fast_ends_the_experiment_at_the_first_failure(storage, fail_fast):
    kwargs = dict(config={"fail": tune.grid_search([True, False, False, False])}, fail_fast=fail_fast,
                  max_concurrent_trials=1, storage_path=storage, verbose=0, log_to_tensorboard=False,
                  raise_on_failed_trial=False, _executor=InProcessExecutor(slots=1))
    if fail_fast == "raise":
        with pytest.raises(tune.TuneError, match="1 trial\\(s\\) failed: trial_00000"):
            tune.run(fails_when_told, **kwargs)
        return
    results = tune.run(fails_when_told, **kwargs)
    assert [t.status for t in results.trials] == [TrialStatus.ERROR]  # no other trial started


def test_fail_fast_is_checked():
    with pytest.raises(ValueError, match="The value of `fail_fast` is 'yes', but must be True, False or 'raise'"):
        tune.run(fails_when_told, fail_fast="yes", _executor=InProcessExecutor())


def checkpointed_steps(config):
    checkpoint = tune.get_checkpoint()
    for step in range((checkpoint or {}).get("step", 0) + 1, 21):
        tune.report({"loss": 1.0 / step, "step": step}, checkpoint={"step": step})


class InterruptAt(tune.Callback):
    """Ctrl-C on the driver at the ``at``-th result."""

    def __init__(self, at):
        self.at, self.seen = at, 0

    def on_trial_result(self, trial, result):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("again", [None, "tune.resume", "Tuner.restore"])
def test_a_stateful_stopper_keeps_its_state_across_a_resume(storage, again):
    """Interrupted after 7 results, the budget of 25 counts them: 25 results in all (a fresh
    stopper would allow 7 + 25). Rebuilt from experiment.json, or given again."""
    with pytest.raises(KeyboardInterrupt):
        tune.run(checkpointed_steps, stop=ResultBudget(25), num_samples=4, max_concurrent_trials=1, name="budget",
                 storage_path=storage, verbose=0, log_to_tensorboard=False, callbacks=[InterruptAt(7)],
                 _executor=InProcessExecutor(slots=1))
    path = f"{storage}/budget"
    assert sum(len(t.history) for t in tune.load(path).trials) == 7
    common = {"verbose": 0, "log_to_tensorboard": False, "_executor": InProcessExecutor(slots=1)}
    if again == "Tuner.restore":  # the stopper is rebuilt; Tuner.restore passes no stop of its own
        from tuner.resuming import resume

        results = resume(path, resume_unfinished=True, **common)
    else:
        results = tune.resume(path, **({"stop": ResultBudget(25)} if again else {}), **common)
    assert sum(len(t.history) for t in results.trials) == 25
    assert all(t.stop_reason in (None, "ResultBudget ended the experiment", "ResultBudget stopped it")
               for t in results.trials)


def test_a_stopper_that_cannot_be_rebuilt_is_asked_for(storage):
    from tuner.components import NotRebuildableError

    with pytest.raises(KeyboardInterrupt):
        tune.run(checkpointed_steps, stop=FunctionStopper(lambda trial_id, result: False), name="fn",
                 storage_path=storage, verbose=0, log_to_tensorboard=False, callbacks=[InterruptAt(2)],
                 _executor=InProcessExecutor(slots=1))
    with pytest.raises(NotRebuildableError, match=r"cannot rebuild stop.function .* Pass the stop again with it: tune.resume\(path, stop=...\)"):
        tune.resume(f"{storage}/fn", verbose=0, _executor=InProcessExecutor(slots=1))


def test_stoppers_round_trip_through_experiment_json_and_time_spent_survives():
    from tuner import components

    stopper = CombinedStopper(MaximumIterationStopper(3), TimeoutStopper(60),
                              TrialPlateauStopper("loss", std=0.5, mode="min", metric_threshold=1.0))
    again = components.rebuild(components.describe(stopper), "stop")
    assert [type(s).__name__ for s in again.stoppers] == ["MaximumIterationStopper", "TimeoutStopper",
                                                          "TrialPlateauStopper"]
    assert [s.get_params() for s in again.stoppers] == [s.get_params() for s in stopper.stoppers]
    assert stopper.state_dict() is None  # the timeout has not started
    stopper.stop_all()
    state = stopper.state_dict()
    again.load_state_dict({"version": 1, "stoppers": [None, {"version": 1, "elapsed": 59.0}, None]})
    assert state["stoppers"][1]["elapsed"] >= 0 and not again.stop_all()
    again.load_state_dict({"version": 1, "stoppers": [None, {"version": 1, "elapsed": 61.0}, None]})
    assert again.stop_all()
