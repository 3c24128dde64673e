"""Bad input to tune.run fails before anything starts, with a message naming the value."""

from __future__ import annotations

import threading

import pytest

import tuner as tune
from tests.fakes import InProcessExecutor
from tuner.execution.resources import normalize_resources


def train(config):
    tune.report({"loss": 1.0})


def run(**kwargs):
    kwargs.setdefault("config", {"x": 1})
    return tune.run(train, verbose=0, _executor=InProcessExecutor(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "loss", "mode": "maximum"}, r"The value of `mode` is 'maximum', but must be one of \('min', 'max'\)"),
        ({"mode": "min"}, r"`mode='min'` was given without a `metric`"),
        ({"metric": "loss"}, r"`metric='loss'` was given without a `mode`"),
        ({"config": [1, 2]}, r"The value of `config` is \[1, 2\], but must be a dict"),
        ({"num_samples": -1}, r"The value of `num_samples` is -1, but must be an integer >= 1"),
        ({"resources_per_trial": {"cpus": 1}}, r"has the key 'cpus'; use 'cpu' or 'gpu'"),
        ({"resources_per_trial": {"cpu": -1}}, r"resources_per_trial\['cpu'\] is -1, but must be a number >= 0"),
        ({"stop": "iter"}, r"The value of `stop` is 'iter', but must be a dict"),
        ({"max_concurrent_trials": 0}, r"`max_concurrent_trials` is 0, but must be an integer >= 1"),
        ({"time_budget_s": -5}, r"`time_budget_s` is -5, but must be a number > 0"),
        ({"time_budget_s": True}, r"`time_budget_s` is True, but must be a number > 0"),
        ({"time_budget_s": float("nan")}, r"`time_budget_s` is nan, but must be a number > 0"),
        ({"max_failures": True}, r"`max_failures` is True, but must be an integer >= 0"),
        ({"scheduler": "asha"}, r"The value of `scheduler` is 'asha', but must be a TrialScheduler"),
    ],
)
def test_bad_arguments_are_named(kwargs, message, storage):
    with pytest.raises(ValueError, match=message):
        run(storage_path=storage, **kwargs)


def test_trainable_must_be_callable_with_a_config(storage):
    with pytest.raises(TypeError, match="The trainable 42 is not callable"):
        tune.run(42, verbose=0, storage_path=storage)
    with pytest.raises(TypeError, match="cannot be called with one config dict"):
        tune.run(lambda a, b: None, verbose=0, storage_path=storage)
    with pytest.raises(TypeError, match="is a class but not a subclass of tune.Trainable"):
        tune.run(dict, verbose=0, storage_path=storage)


def test_unpicklable_trainable_names_the_culprit(storage):
    lock = threading.Lock()

    def uses_lock(config):
        with lock:
            tune.report({"x": 1})

    with pytest.raises(TypeError, match=r"cannot be pickled: the captured variable 'lock' \(lock"):
        tune.run(uses_lock, verbose=0, storage_path=storage)


def test_stop_key_never_reported_warns_once(storage):
    with pytest.warns(UserWarning, match=r"The first result has no 'acc'.*reported: loss, "):
        run(stop={"acc": 0.9}, storage_path=storage, num_samples=2)


def test_resources_normalize():
    res = normalize_resources({"cpu": 2, "gpu": 0.5, "memory": 2**30, "accel": 1})
    assert res.head == {"CPU": 2.0, "GPU": 0.5, "memory": 2**30, "accel": 1.0}
    assert normalize_resources({"cpu": 1}) == normalize_resources({"CPU": 1.0})
    pg = normalize_resources([{"cpu": 1}, {"cpu": 2, "gpu": 1}])
    assert pg.uses_placement_group and pg.total() == {"CPU": 3.0, "GPU": 1.0}
    with pytest.raises(ValueError, match="asks for nothing"):
        normalize_resources({"cpu": 0})
