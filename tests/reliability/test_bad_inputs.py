"""Bad values a trainable reports and bad inputs a user gives: a recorded per-trial problem or a
clear error before anything starts, never a crashed sweep or a raw traceback."""

from __future__ import annotations

import errno
import math
import os
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

import tuner as tune
from schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule, PopulationBasedTraining
from searchers import OptunaSearch
from tests.fakes import InProcessExecutor
from tests.reliability.helpers import ROOT, tmpfs
from tests.schedulers.fakes import trial as fake_trial
from tests.schedulers.test_contract import FACTORIES, drive
from tuner.trial import TrialStatus


class Opaque:
    pass


BAD_VALUES = {"none": None, "str": "abc", "list": [1, 2], "dict": {"a": 1}, "nan": math.nan, "bool": True,
              "object": Opaque(), "array": np.arange(3)}


@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_scheduler_takes_any_metric_value(name, bad):
    """Every third trial reports a bad metric at every decision point; no scheduler raises."""
    scheduler = FACTORIES[name]()
    scheduler.set_search_properties("loss", "min")
    trials = [fake_trial(i) for i in range(9)]
    for t in trials:
        scheduler.on_trial_add(t)
    rng = random.Random(0)
    seen = drive(scheduler, trials, 6, rng, lambda t, it: BAD_VALUES[bad] if int(t.trial_id[-1]) % 3 == 0
                 else rng.random() / it)
    assert all(isinstance(reason or "", str) for *_, reason in seen)
    scheduler.state_dict()


def bad_reporter(config):
    for i in range(1, 10):
        value = config["bad"] if config["which"] == 1 and i % 2 == 1 else float(i * config["x"])
        tune.report({"loss": value}, checkpoint={"i": i})


SCHEDULERS = {
    "asha": lambda: ASHAScheduler(max_t=9, grace_period=1, reduction_factor=2),
    "median": lambda: MedianStoppingRule(grace_period=1, min_samples_required=1),
    "hyperband": lambda: HyperBandScheduler(max_t=9, reduction_factor=3),
    "pbt": lambda: PopulationBasedTraining(perturbation_interval=2, hyperparam_mutations={"x": tune.uniform(0, 1)},
                                           seed=0),
}


@pytest.mark.parametrize("bad", ["none", "str", "list", "object"])
@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_a_sweep_with_bad_metric_values_ends_and_names_them(storage, scheduler, bad, capsys):
    results = tune.run(bad_reporter, config={"x": tune.uniform(0, 1), "which": tune.choice([0, 1]),
                                             "bad": BAD_VALUES[bad]},
                       num_samples=6, metric="loss", mode="min", stop={"training_iteration": 9},
                       scheduler=SCHEDULERS[scheduler](), seed=0, storage_path=storage, name="bad", verbose=1,
                       search_alg=None if scheduler == "pbt" else OptunaSearch(seed=0), _executor=InProcessExecutor())
    assert all(t.status is TrialStatus.TERMINATED for t in results.trials)
    bad_trials = {t.trial_id for t in results.trials if any(not isinstance(r["loss"], float) for r in t.history)}
    assert bad_trials and set(results.problems()) == bad_trials
    for tid in bad_trials:
        assert "loss=" in results.problems()[tid][0] and "not a number" in results.problems()[tid][0]
    assert "Warning: trial_" in capsys.readouterr().out
    assert set(tune.load(results.experiment_path).problems()) == bad_trials  # from the journal alone


def returns_a_dict(config):
    return {"loss": config["x"]}


def yields_dicts(config):
    for i in range(3):
        yield {"loss": config["x"] + i}


def never_reports(config):
    pass


def returns_a_number(config):
    return 5


def yields_a_number(config):
    yield 5


def test_returned_dict_is_the_final_report_and_yielded_dicts_are_results(storage):
    run = dict(config={"x": 1}, metric="loss", mode="min", storage_path=storage, verbose=0)
    (t,) = tune.run(returns_a_dict, **run, _executor=InProcessExecutor()).trials
    assert [r["loss"] for r in t.history] == [1] and t.status is TrialStatus.TERMINATED
    (t,) = tune.run(yields_dicts, **run, _executor=InProcessExecutor()).trials
    assert [r["loss"] for r in t.history] == [1, 2, 3]
    assert [r["training_iteration"] for r in t.history] == [1, 2, 3]


def test_a_trainable_that_never_reports_is_warned_about(storage, capsys):
    results = tune.run(never_reports, config={"x": 1}, metric="loss", mode="min", storage_path=storage,
                       _executor=InProcessExecutor())
    assert list(results.problems().values()) == [[
        "ended without reporting any result: call tune.report({...}) in the trainable, yield result dicts, or "
        "return one"]]
    assert "Warning: trial_00000 ended without reporting any result" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (returns_a_number, "The trainable 'returns_a_number' returned 5 (int); return nothing, or a dict of metrics"),
    (yields_a_number, "The generator trainable 'yields_a_number' yielded 5 (int); yield a dict of metrics"),
])
def test_other_return_values_are_a_trial_error_naming_them(storage, fn, message):
    results = tune.run(fn, config={"x": 1}, storage_path=storage, verbose=0, raise_on_failed_trial=False,
                       _executor=InProcessExecutor())
    assert message in results.trials[0].error


class RaisesOnOdd(ASHAScheduler):
    def on_trial_result(self, trial, result):
        if trial.config["i"] % 2:
            raise KeyError("boom")
        return super().on_trial_result(trial, result)


def counts(config):
    for i in range(1, 4):
        tune.report({"loss": config["i"] + i})


def test_a_scheduler_raising_on_one_trial_fails_that_trial_not_the_sweep(storage):
    results = tune.run(counts, config={"i": tune.grid_search([0, 1, 2, 3])}, metric="loss", mode="min",
                       scheduler=RaisesOnOdd(max_t=3, grace_period=1), storage_path=storage, verbose=0,
                       raise_on_failed_trial=False, _executor=InProcessExecutor())
    by_i = {t.config["i"]: t for t in results.trials}
    assert [by_i[i].status for i in range(4)] == [TrialStatus.TERMINATED, TrialStatus.ERROR] * 2
    assert "RaisesOnOdd.on_trial_result raised on the result of" in by_i[1].error
    assert "KeyError: 'boom'" in by_i[1].error
    assert len(by_i[0].history) == 3


@pytest.mark.parametrize("config, message", [
    ({"e": {"f": 1}, "e/f": 2}, "The config key 'e/f' contains '/', which the tuner uses to join nested keys"),
    ({"opt": {"lr/x": tune.uniform(0, 1)}}, "The config key 'lr/x' \\(under 'opt'\\) contains '/'"),
])
def test_a_slash_in_a_config_key_is_refused_up_front(storage, config, message):
    with pytest.raises(ValueError, match=message):
        tune.run(never_reports, config=config, storage_path=storage, name="slash", verbose=0,
                 _executor=InProcessExecutor())
    assert not os.path.exists(os.path.join(storage, "slash"))


def test_an_unpicklable_config_value_is_named_by_key_before_anything_starts(storage):
    with pytest.raises(TypeError, match=r"The value of config\['a'\]\[1\]\['b'\] \(lock\) cannot be pickled"):
        tune.run(never_reports, config={"a": [1, {"b": threading.Lock()}]}, storage_path=storage, name="p",
                 verbose=0)
    assert not os.path.exists(os.path.join(storage, "p"))


def test_duplicate_keys_in_a_sweep_file_are_an_error_with_line_numbers(tmp_path):
    sweep = tmp_path / "dup.yaml"
    sweep.write_text("trainable: examples.quadratic:train\nconfig:\n  x: {uniform: [0, 1]}\n  y: 1\n  x: 3\n")
    out = subprocess.run([sys.executable, "-m", "tuner.cli", "sweep", str(sweep), "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"{sweep}: the key 'x' appears twice in one mapping, on line 3 and line 5" in out.stderr


def fills_the_disk(config):
    for i in range(1, 10_000):
        tune.report({"loss": 1.0 / i, "padding": "x" * 20_000})


def test_on_a_full_disk_the_original_error_is_raised_not_one_from_closing(capsys):
    with tmpfs("size=1m") as path:
        with pytest.raises(OSError) as raised:
            tune.run(fills_the_disk, config={"x": 1}, storage_path=path, name="full", verbose=0,
                     log_to_tensorboard=False, _executor=InProcessExecutor())
    assert raised.value.errno == errno.ENOSPC
    frames = [f.name for f in __import__("traceback").extract_tb(raised.value.__traceback__)]
    assert "close" not in frames[-1] and "_close" not in frames
    assert not isinstance(raised.value.__context__, OSError)  # not raised while handling the first one
