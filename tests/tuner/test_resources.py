"""Resource requests without Ray: placement strategies, per-trial callables, and the
feasibility check that makes a gang that can never fit fail at once."""

from __future__ import annotations

import pytest

import tuner as tune
from tuner.execution.resources import (PerTrialResources, check_feasible, normalize_resources, resource_request,
                                       resources_for, resources_worth_showing)

TWO_NODES = [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}]


class RayStyleFactory:
    """What Ray Tune's PlacementGroupFactory looks like from outside: bundles, strategy, and callable."""

    def __init__(self, bundles, strategy):
        self.bundles, self.strategy = bundles, strategy

    def __call__(self):
        raise AssertionError("never called: it is a fixed request")


def test_factory_and_lookalikes_normalize_with_their_strategy():
    res = normalize_resources(tune.PlacementGroupFactory([{"cpu": 1}, {"cpu": 1, "gpu": 1}], strategy="SPREAD"))
    assert res.strategy == "SPREAD" and res.uses_placement_group and res.total() == {"CPU": 2.0, "GPU": 1.0}
    assert str(res) == "{CPU=1} + {CPU=1, GPU=1} SPREAD"
    assert normalize_resources(RayStyleFactory([{"CPU": 1}, {"CPU": 1}], "STRICT_PACK")).strategy == "STRICT_PACK"
    assert resource_request(RayStyleFactory([{"CPU": 1}], "PACK")).uses_placement_group
    assert normalize_resources(res.to_json()) == res, "the JSON form in experiment.json reads back the same"
    plain = normalize_resources([{"cpu": 1}, {"cpu": 1}])
    assert plain.placement_strategy == "PACK" and plain.to_json() == [{"CPU": 1.0}, {"CPU": 1.0}]
    assert not normalize_resources({"cpu": 1}).uses_placement_group


@pytest.mark.parametrize("bundles, strategy, message", [
    ([{"cpu": 1}], "BALANCED", r"The placement strategy is 'BALANCED', but must be one of PACK, SPREAD, STRICT_PACK"),
    ([], "PACK", r"The bundles of the placement group are \[\], but must be a non-empty list"),
    ([{"cpus": 1}], "PACK", r"has the key 'cpus'; use 'cpu' or 'gpu'"),
])
def test_factory_rejects_bad_input_with_the_fix(bundles, strategy, message):
    with pytest.raises(ValueError, match=message):
        tune.PlacementGroupFactory(bundles, strategy=strategy)


def test_per_trial_callable_is_resolved_per_config_with_clear_errors():
    def by_size(config):
        return {"cpu": 1, "gpu": 2 if config["size"] == "big" else 0}

    request = resource_request(by_size)
    assert isinstance(request, PerTrialResources)
    assert str(resources_for(request, {"size": "big"})) == "{CPU=1, GPU=2}"
    assert str(resources_for(request, {"size": "small"})) == "{CPU=1}"
    assert request.to_json() == {"per_trial": None}, "defined inside a test: not importable for resume"
    with pytest.raises(ValueError, match=r"\(by_size\) raised KeyError\('size'\) for the config \{\}"):
        resources_for(request, {})
    with pytest.raises(ValueError, match=r"returned the callable"):
        resources_for(resource_request(lambda config: by_size), {})


@pytest.mark.parametrize("request_, ok", [
    (tune.PlacementGroupFactory([{"cpu": 2}, {"cpu": 2}], strategy="STRICT_SPREAD"), True),
    (tune.PlacementGroupFactory([{"cpu": 1}] * 3, strategy="STRICT_SPREAD"), False),
    (tune.PlacementGroupFactory([{"cpu": 1}, {"cpu": 1}], strategy="STRICT_PACK"), True),
    (tune.PlacementGroupFactory([{"cpu": 1, "gpu": 1}] * 2, strategy="STRICT_PACK"), False),
    (tune.PlacementGroupFactory([{"cpu": 1, "gpu": 1}] * 2, strategy="PACK"), True),
    ([{"cpu": 1.5}] * 3, False),  # every bundle fits a node, but two never fit one node together
    ([{"cpu": 1}] * 4, True),
])
def test_gang_feasibility_follows_the_strategy(request_, ok):
    resources = normalize_resources(request_)
    if ok:
        check_feasible(resources, TWO_NODES)
    else:
        with pytest.raises(ValueError, match=r"can never be met: the cluster cannot hold its \d bundles at once "
                                             r"with the \w+ strategy .*The cluster's nodes have: \[CPU=2, GPU=1; "
                                             r"CPU=2, GPU=1\]\. Change `resources_per_trial`"):
            check_feasible(resources, TWO_NODES)


def test_resources_column_only_when_shapes_differ_or_are_gangs():
    one = normalize_resources({"cpu": 1})
    assert not resources_worth_showing([one, one])
    assert resources_worth_showing([one, normalize_resources({"cpu": 2})])
    assert str(normalize_resources([{"cpu": 1}, {"cpu": 1}, {"cpu": 2}])) == "{CPU=1} x2 + {CPU=2} PACK"
    assert resources_worth_showing([str(normalize_resources([{"cpu": 1}, {"cpu": 1}]))])
    assert resources_worth_showing(["{CPU=1} SPREAD"])


def _train(config):
    tune.report({"x": 1.0})


class _BigModel(tune.Trainable):
    default_resources_per_trial = {"cpu": 2}

    def step(self):
        return {"x": 1.0, "done": True}


def test_a_trainables_own_request_has_one_path():
    """tune.with_resources, tune.distributed and a Trainable class attribute are all the trainable's
    ``default_resources_per_trial``; ``resources_per_trial`` given to the run replaces it."""
    from tuner.execution.resources import trainable_resources

    assert trainable_resources(_train) is None
    wrapped = tune.with_resources(_train, {"cpu": 2})
    assert wrapped.default_resources_per_trial == {"cpu": 2} == trainable_resources(wrapped)
    assert trainable_resources(wrapped, [{"cpu": 1}]) == [{"cpu": 1}], "resources_per_trial wins"
    gang = tune.distributed(_train, num_workers=3)
    assert normalize_resources(trainable_resources(gang)).bundles == normalize_resources([{"cpu": 1}] * 3).bundles
    regang = tune.with_resources(gang, tune.PlacementGroupFactory([{"cpu": 1}] * 2, strategy="SPREAD"))
    assert normalize_resources(trainable_resources(regang)).strategy == "SPREAD", "with_resources replaces the gang"
    assert trainable_resources(_BigModel) == {"cpu": 2}
    smaller = tune.with_resources(_BigModel, {"cpu": 1})
    assert issubclass(smaller, _BigModel) and trainable_resources(smaller) == {"cpu": 1}
    assert trainable_resources(_BigModel) == {"cpu": 2}, "the class itself is untouched"


@pytest.mark.parametrize("trainable, expected", [
    (tune.with_resources(_train, {"cpu": 2}), "{CPU=2}"),
    (_BigModel, "{CPU=2}"),
    (tune.with_resources(_BigModel, [{"cpu": 1}, {"cpu": 1}]), "{CPU=1} x2 PACK"),
    (tune.with_resources(_train, lambda config: {"cpu": config["cpus"]}), "{CPU=3}"),
], ids=["with_resources", "class_attribute", "with_resources_on_class", "per_trial"])
def test_tune_run_and_sweep_files_read_the_same_request(trainable, expected, tmp_path):
    from tests.fakes import InProcessExecutor
    from tuner.cli.launch import resolve_adapted

    space = {"cpus": 3}
    results = tune.run(trainable, config=space, storage_path=str(tmp_path), verbose=0, log_to_tensorboard=False,
                       _executor=InProcessExecutor())
    assert [str(t.resources) for t in results.trials] == [expected]
    kwargs = {"config": space}
    resolve_adapted(trainable, kwargs, "sweep.yaml")  # what `tuner sweep` passes on to tune.run
    assert str(resources_for(resource_request(kwargs["resources_per_trial"]), space)) == expected
