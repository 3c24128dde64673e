"""Ray Tune's names and signatures on the tuner: callbacks with Ray's hook signatures, the
LoggerCallback base, keyword tune.report, qrandn / qlograndint, AsyncHyperBandScheduler,
verbose=False, and the configuration objects' checks. In-process executor, no Ray."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import tuner as tune
from schedulers import AsyncHyperBandScheduler
from tests.fakes import InProcessExecutor
from tuner.space import config as sp


def keyword_reports(config):
    for step in range(1, 4):
        tune.report(loss=config["x"] / step, step=step)


def run(trainable, storage, **kwargs):
    return tune.run(trainable, storage_path=storage, verbose=False, log_to_tensorboard=False,
                    _executor=InProcessExecutor(), **kwargs)


class RayStyle(tune.Callback):
    """Hooks as Ray Tune code writes them."""

    def __init__(self):
        self.calls = []
        self.iterations = []

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.calls.append(("setup", sorted(info)))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.calls.append(("start", trial.trial_id))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.calls.append(("result", len(trials), result["step"]))
        self.iterations.append(iteration)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.calls.append(("complete", trial.trial_id))

    def on_experiment_end(self, trials, **info):
        self.calls.append(("end", len(trials)))


class Lines(tune.LoggerCallback):
    def __init__(self):
        super().__init__()
        self.lines = []
        self.iterations = []

    def log_trial_start(self, trial):
        self.lines.append(f"start {trial.trial_id}")

    def log_trial_result(self, iteration, trial, result):
        self.lines.append(f"{trial.trial_id} {result['loss']:g}")
        self.iterations.append(iteration)

    def log_trial_end(self, trial, failed=False):
        self.lines.append(f"end {trial.trial_id} failed={failed}")


def test_ray_style_callbacks_and_logger_callback_get_their_arguments(storage):
    ray_style, lines = RayStyle(), Lines()
    results = run(keyword_reports, storage, config={"x": 6.0}, callbacks=[ray_style, lines])
    assert [r["loss"] for r in results.trials[0].history] == [6.0, 3.0, 2.0]
    assert ray_style.calls == [("setup", ["experiment_path", "metric", "mode"]), ("start", "trial_00000"),
                               ("result", 1, 1), ("result", 1, 2), ("result", 1, 3),
                               ("complete", "trial_00000"), ("end", 1)]
    assert ray_style.iterations == sorted(ray_style.iterations)  # the run loop's turns
    assert lines.lines == ["start trial_00000", "trial_00000 6", "trial_00000 3", "trial_00000 2",
                           "end trial_00000 failed=False"]
    assert lines.iterations == ray_style.iterations  # both get the run loop's turn


def test_report_needs_metrics():
    with pytest.raises(TypeError, match=r"tune.report needs metrics: tune.report\({'loss': 0.1}\)"):
        tune.report()


def test_qrandn_and_qlograndint_round_to_q():
    rng = np.random.default_rng(0)
    normals = [tune.qrandn(0.0, 10.0, 0.5).sample(rng) for _ in range(200)]
    assert all(math.isclose(v * 2, round(v * 2)) for v in normals)
    ints = [tune.qlograndint(1, 1000, 5).sample(rng) for _ in range(300)]
    assert all(v % 5 == 0 and 5 <= v <= 1000 for v in ints) and max(ints) > 500
    assert sp.space_from_json(sp.space_to_json({"n": tune.qlograndint(1, 1000, 5)}))["n"].to_json() == \
        tune.qlograndint(1, 1000, 5).to_json()


def steps(config):
    for step in range(1, 9):
        tune.report({"loss": config["x"] + 1.0 / step})


@pytest.mark.parametrize("stop_last_trials, length", [(True, 4), (False, 8)])
def test_async_hyperband_scheduler_is_asha_with_stop_last_trials(storage, stop_last_trials, length):
    scheduler = AsyncHyperBandScheduler(max_t=4, grace_period=2, reduction_factor=2,
                                        stop_last_trials=stop_last_trials)
    (trial,) = run(steps, storage, config={"x": 1.0}, metric="loss", mode="min", scheduler=scheduler).trials
    assert len(trial.history) == length


def test_config_objects_check_their_arguments():
    with pytest.raises(ValueError, match="`checkpoint_score_order` is 'best', but must be 'max' or 'min'"):
        tune.CheckpointConfig(checkpoint_score_order="best")
    with pytest.raises(TypeError, match="sync_config"):
        tune.RunConfig(sync_config=object())
    with pytest.raises(ValueError, match=r"The value of `run_config` is \{\}, but must be a tune.RunConfig"):
        tune.Tuner(steps, run_config={})
    with pytest.raises(RuntimeError, match="This Tuner has not been fitted; call fit\\(\\) first"):
        tune.Tuner(steps).get_results()
    assert tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="loss",
                                 checkpoint_score_order="min").run_kwargs()["checkpoint_score_attr"] == "min-loss"


def named(trial):
    return f"{trial.trainable_name}_{trial.trial_id}_x{trial.config['x']:g}"


def test_trial_name_and_dirname_creators(storage):
    results = run(keyword_reports, storage, config={"x": tune.grid_search([1.0, 2.0])},
                  trial_name_creator=named, trial_dirname_creator=lambda t: f"dir_{t.trial_id}")
    assert [str(t) for t in results.trials] == ["keyword_reports_trial_00000_x1", "keyword_reports_trial_00001_x2"]
    assert [os.path.basename(t.path) for t in results.trials] == ["dir_trial_00000", "dir_trial_00001"]
    assert all(os.path.exists(os.path.join(t.path, "result.jsonl")) for t in results.trials)
    again = tune.load(results.experiment_path)
    assert [(t.name, t.path) for t in again.trials] == [(t.name, t.path) for t in results.trials]
    with pytest.raises(ValueError, match="trial_dirname_creator returned 'same' for trial_00001, a name another "
                                         "trial already has"):
        run(keyword_reports, storage, config={"x": tune.grid_search([1.0, 2.0])},
            trial_dirname_creator=lambda t: "same")


def test_ray_tune_module_paths_are_the_tuner_packages():
    import schedulers
    import searchers
    from tuner.logger import LoggerCallback
    from tuner.schedulers import AsyncHyperBandScheduler as Aliased
    from tuner.schedulers.pb2 import PB2
    from tuner.search import ConcurrencyLimiter
    from tuner.search.optuna import OptunaSearch

    assert Aliased is schedulers.ASHAScheduler and PB2 is schedulers.PB2
    assert ConcurrencyLimiter is searchers.ConcurrencyLimiter and OptunaSearch is searchers.OptunaSearch
    assert LoggerCallback is tune.LoggerCallback
    with pytest.raises(ModuleNotFoundError, match="tuner.search.bayesopt"):
        import tuner.search.bayesopt  # noqa: F401 - no such searcher here


class AsksForCheckpoints(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        result["should_checkpoint"] = True


def test_a_checkpoint_request_a_function_trainable_cannot_meet_is_warned_once(storage, caplog):
    with caplog.at_level("WARNING", logger="tuner.execution.runner"):
        results = run(keyword_reports, storage, config={"x": 1.0}, callbacks=[AsksForCheckpoints()])
    assert results.trials[0].checkpoints == []
    warned = [r.getMessage() for r in caplog.records if "should_checkpoint" in r.getMessage()]
    assert warned == ["Trial trial_00000: a callback set should_checkpoint on the result of iteration 1, but no "
                      "checkpoint was taken there: a function trainable checkpoints only what it reports "
                      "(tune.report(..., checkpoint=...))."]


class CountsStarts(tune.Callback):
    """Ray Tune's get_state / set_state example, with JSON state."""

    def __init__(self, interrupt=False):
        self.trial_ids = []
        self.interrupt = interrupt

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trial_ids.append(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.interrupt and result["step"] == 2 and trial.trial_id == "trial_00001":
            raise KeyboardInterrupt  # Ctrl-C on the driver

    def get_state(self):
        return {"trial_ids": list(self.trial_ids)}

    def set_state(self, state):
        self.trial_ids = state["trial_ids"]


class SetState(tune.Callback):
    def on_trial_start(self, iteration, trials, trial, **info):
        pass

    def get_state(self):
        return {"seen": {"a"}}


def test_callback_state_comes_back_on_resume(storage, monkeypatch, caplog):
    monkeypatch.setenv("TUNER_SNAPSHOT_EVERY_S", "0")  # a snapshot every turn of the loop
    with pytest.raises(KeyboardInterrupt), caplog.at_level("WARNING", logger="tuner.execution.runner"):
        run(keyword_reports, storage, config={"x": tune.grid_search([1.0, 2.0, 3.0])}, name="cb",
            max_concurrent_trials=1, callbacks=[CountsStarts(interrupt=True), SetState()])
    assert [r.getMessage().split(":")[0] for r in caplog.records if "get_state" in r.getMessage()] == [
        "SetState.get_state() returned state that is not plain JSON (a set, a tuple, an object?)"]
    again = CountsStarts()
    tune.resume(f"{storage}/cb", callbacks=[again], verbose=0, log_to_tensorboard=False,
                _executor=InProcessExecutor())
    # trial_00000 ran only before the interruption: it comes from the last snapshot (which may or may not
    # have seen trial_00001 start); the resumed run starts trial_00001 again, then trial_00002
    assert again.trial_ids[0] == "trial_00000" and again.trial_ids[-2:] == ["trial_00001", "trial_00002"]
