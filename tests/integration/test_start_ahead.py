"""Start-ahead on a real local Ray (``tuner.execution.start_ahead``): with random search and very short
trials each busy worker is also sent the next few trials, in one call. The sweep must come out as
without it (every trial, its config, its results), a trial sent ahead that never began must run later
or end with the sweep (never lost, never run twice), and a worker that dies must take none of the
trials queued behind it down as failures."""

from __future__ import annotations

import os
import time

import pytest

import tuner as tune
from searchers import OptunaSearch

pytestmark = pytest.mark.usefixtures("ray_local")


class MostRunning(tune.Callback):
    """How many trials were RUNNING at once, at most, as the run loop started them."""

    def __init__(self) -> None:
        self.most = 0
        self.running: set[str] = set()

    def on_trial_start(self, trial) -> None:
        self.running.add(trial.trial_id)
        self.most = max(self.most, len(self.running))

    def on_trial_complete(self, trial) -> None:
        self.running.discard(trial.trial_id)

    on_trial_error = on_trial_complete


def one_result(config):
    tune.report({"loss": (config["x"] - 1) ** 2, "pid": os.getpid()})


def five_ms(config):
    time.sleep(0.005)  # short enough to be sent ahead, four to a call: a stop finds some not yet begun
    tune.report({"loss": (config["x"] - 1) ** 2})


def some_go_on(config):
    """Most trials report once; every 25th reports 4 times over 0.2 s (trials queued behind it wait)."""
    reports = 4 if config["i"] % 25 == 0 else 1
    for step in range(reports):
        if reports > 1:
            time.sleep(0.05)
        tune.report({"i": config["i"], "step": step + 1})


def one_kills_its_worker(config):
    if config["i"] == 300:
        os._exit(3)  # the worker process dies, with the trials sent ahead to it
    tune.report({"i": config["i"]})


def _run(trainable, tmp_path, name, **kwargs):
    kwargs.setdefault("config", {"x": tune.uniform(-5, 5)})
    return tune.run(trainable, storage_path=str(tmp_path), name=name, metric=kwargs.pop("metric", "loss"),
                    mode="min", seed=0, verbose=0, trial_files=False, **kwargs)


def test_short_trials_are_sent_ahead_and_the_sweep_is_the_same(tmp_path):
    ahead = MostRunning()
    results = _run(one_result, tmp_path, "ahead", num_samples=600, callbacks=[ahead])
    assert ahead.most > 2, "with 2 CPUs, trials were sent ahead to busy workers"
    assert len({t.last_result["pid"] for t in results.trials}) == 2, "on the two warm workers, none more"

    # The same sweep with a searcher that learns from results is never started ahead; the configs of the
    # default searcher are the same trial by trial, so the results must be too.
    alone = MostRunning()
    points = [{"x": t.config["x"]} for t in sorted(results.trials, key=lambda t: t.trial_id)]
    again = _run(one_result, tmp_path, "alone", num_samples=len(points), callbacks=[alone],
                 search_alg=OptunaSearch(points_to_evaluate=points, seed=0))
    assert alone.most <= 2
    assert sorted(t.last_result["loss"] for t in again.trials) == sorted(t.last_result["loss"] for t in results.trials)
    for trial in results.trials:
        assert trial.status == "TERMINATED" and len(trial.history) == 1
        assert trial.last_result["loss"] == (trial.config["x"] - 1) ** 2
    loaded = tune.load(str(tmp_path / "ahead"))
    assert {t.trial_id: len(t.history) for t in loaded.trials} == {t.trial_id: 1 for t in results.trials}


def test_trials_behind_one_that_goes_on_run_later_each_exactly_once(tmp_path):
    results = _run(some_go_on, tmp_path, "mixed", metric="step", num_samples=1,
                   config={"i": tune.grid_search(list(range(200)))})
    assert len(results.trials) == 200
    for trial in results.trials:
        expected = 4 if trial.config["i"] % 25 == 0 else 1
        assert trial.status == "TERMINATED", (trial.trial_id, trial.status, trial.error)
        assert [r["step"] for r in trial.history] == list(range(1, expected + 1)), trial.trial_id
        assert all(r["i"] == trial.config["i"] for r in trial.history)


def test_the_time_budget_ends_trials_sent_ahead_without_running_them(tmp_path):
    """Whether any trial sent ahead is still waiting when the budget runs out depends on timing (on an
    idle machine some are, under load the workers may have begun them all): the sweep must come out
    whole either way. The worker's side of a stop before a trial began: tests/tuner/test_start_ahead.py."""
    results = _run(five_ms, tmp_path, "budget", num_samples=100_000, time_budget_s=4.0)
    ran = [t for t in results.trials if t.history]
    assert 0 < len(ran) <= len(results.trials) < 100_000
    assert all(len(t.history) == 1 for t in ran)
    never = [t for t in results.trials if not t.history]
    for trial in results.trials:
        assert trial.status == "TERMINATED", (trial.trial_id, trial.status)
    for trial in never:
        assert trial.stop_reason == "time budget reached"
    loaded = tune.load(str(tmp_path / "budget"))
    assert {t.trial_id: len(t.history) for t in loaded.trials} == {t.trial_id: len(t.history) for t in results.trials}


def test_a_driver_side_stopper_or_a_scheduler_turns_start_ahead_off(tmp_path):
    from schedulers import ASHAScheduler

    class Never(tune.Stopper):
        def __call__(self, trial_id, result):
            return False

    for name, kwargs in (("stopper", {"stop": Never()}), ("asha", {"scheduler": ASHAScheduler(max_t=1)})):
        most = MostRunning()
        results = _run(one_result, tmp_path, name, num_samples=200, callbacks=[most], **kwargs)
        assert most.most <= 2, name
        assert all(t.status == "TERMINATED" and len(t.history) == 1 for t in results.trials)


def test_a_worker_that_dies_fails_its_own_trial_only(tmp_path):
    results = _run(one_kills_its_worker, tmp_path, "death", metric="i", num_samples=1,
                   config={"i": tune.grid_search(list(range(600)))}, raise_on_failed_trial=False)
    by_i = {t.config["i"]: t for t in results.trials}
    assert len(by_i) == 600
    assert by_i[300].status == "ERROR" and "exit" in (by_i[300].error or "").lower()
    for i, trial in by_i.items():
        if i != 300:
            assert trial.status == "TERMINATED", (i, trial.status, trial.error)
            assert [r["i"] for r in trial.history] == [i]
