"""HyperOptSearch specifics: modes, failures, points, argument errors."""

from __future__ import annotations

import math

import pytest

import tuner as tune
from searchers import HyperOptSearch
from tests.searchers.helpers import drive

SPACE = {"x": tune.uniform(-1.0, 1.0), "opt": tune.choice([{"name": "sgd", "lr": tune.uniform(0.1, 1.0)},
                                                          {"name": "adam"}])}


def losses(searcher):
    return [d["loss"] for d in searcher.state_dict()["docs"]]


def test_max_mode_is_told_as_a_negated_loss_and_failures_as_failed_trials():
    searcher = HyperOptSearch(space=SPACE, metric="acc", mode="max", seed=0)
    for trial_id in "abc":
        searcher.suggest(trial_id)
    searcher.on_trial_complete("a", {"acc": 0.75})
    searcher.on_trial_complete("b", {"acc": 0.5}, error=True)
    searcher.on_trial_complete("c", {"other": 1})
    assert losses(searcher) == [-0.75, None, None]
    assert [d["state"] for d in searcher.state_dict()["docs"]] == ["ok", "fail", "fail"]


def test_tpe_takes_over_after_n_initial_points():
    def run(n_initial_points):
        searcher = HyperOptSearch(space={"x": tune.uniform(-10.0, 10.0)}, metric="loss", mode="min", seed=0,
                                  n_initial_points=n_initial_points)
        return [c["x"] for c in drive(searcher, 14, objective=lambda c: (c["x"] - 3) ** 2)]

    random_only, tpe = run(100), run(10)
    assert random_only[:10] == tpe[:10]
    assert random_only[10:] != tpe[10:]


def test_points_may_not_set_a_choice_of_sub_spaces():
    with pytest.raises(ValueError, match=r"The value of `points_to_evaluate` sets `opt`, a choice of sub-spaces, "
                                         r"which HyperOptSearch can only draw; leave it out of the point"):
        HyperOptSearch(space=SPACE, metric="loss", mode="min", points_to_evaluate=[{"opt": {"name": "adam"}}])


def test_points_with_unknown_keys_fail_before_the_first_trial():
    searcher = HyperOptSearch(metric="loss", mode="min", points_to_evaluate=[{"x": 0.1}, {"y": 2}])
    with pytest.raises(ValueError, match=r"The value of `points_to_evaluate\[1\]` sets `y`, but must set only "
                                         r"parameters of the space \(x, opt\)"):
        searcher.set_search_properties(None, None, SPACE)


@pytest.mark.parametrize("kwargs, match", [
    ({"metric": ["a", "b"], "mode": ["min", "max"]},
     r"The value of `metric` is \['a', 'b'\], but must be a single metric: HyperOptSearch optimizes one objective"),
    ({"n_initial_points": -1},
     r"The value of `n_initial_points` is -1, but must be an integer `n_initial_points >= 0`"),
    ({"space": "x"}, r"The value of `space` is 'x', but must be a dict of tune.\* domains"),
    ({"mode": "up"}, r"The value of `mode` is 'up', but must be one of \('min', 'max'\)"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HyperOptSearch(**kwargs)


def test_several_metrics_from_tune_run_are_rejected_too():
    with pytest.raises(ValueError, match="must be a single metric: HyperOptSearch optimizes one objective"):
        HyperOptSearch(space=SPACE).set_search_properties(["a", "b"], ["min", "min"], None)


def test_missing_metric_and_space_say_the_fix():
    with pytest.raises(ValueError, match=r"HyperOptSearch was not given a `metric` and `mode`. Either pass them"):
        HyperOptSearch(space=SPACE).suggest("t0")
    with pytest.raises(ValueError, match=r"HyperOptSearch has no search space: pass `space=` or tune.run"):
        HyperOptSearch(metric="loss", mode="min").suggest("t0")


def test_a_native_hyperopt_space_is_read_as_tune_domains():
    from hyperopt import hp

    space = {"lr": hp.loguniform("lr", math.log(1e-4), math.log(1e-1)), "units": hp.randint("units", 8, 64),
             "width": hp.uniformint("width", 1, 4), "mom": hp.quniform("mom", 0.1, 0.9, 0.1),
             "opt": hp.choice("opt", [{"name": "sgd", "nesterov": hp.choice("nesterov", [True, False])},
                                      {"name": "adam"}]),
             "constant": 3}
    searcher = HyperOptSearch(space=space, metric="loss", mode="min", seed=0, n_initial_points=3)
    configs = drive(searcher, 8, objective=lambda c: c["lr"])
    for config in configs:
        assert 1e-4 <= config["lr"] <= 1e-1 and 8 <= config["units"] < 64 and 1 <= config["width"] <= 4
        assert config["opt"]["name"] in ("sgd", "adam") and config["constant"] == 3
        assert math.isclose(config["mom"] * 10, round(config["mom"] * 10))
    assert {c["opt"]["name"] for c in configs} == {"sgd", "adam"}


def test_a_native_hyperopt_expression_it_cannot_read_is_refused_by_key():
    from hyperopt import hp

    with pytest.raises(ValueError, match=r"The parameter space\['x'\] is a Hyperopt `lognormal` expression"):
        HyperOptSearch(space={"x": hp.lognormal("x", 0, 1)}, metric="loss", mode="min")
