"""HyperOptSearch specifics: modes, failures, points, argument errors."""

from __future__ import annotations

import json
import math
from collections import deque

import pytest

import tuner as tune
from searchers import HyperOptSearch
from searchers.hyperopt import DOCS_FILE
from tests.searchers.helpers import drive, finish, json_round_trip

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


def test_docs_in_the_experiment_directory_resume_exactly_from_a_constant_size_state(tmp_path):
    """With ``tune.run``'s experiment directory the trial docs are a log there: the snapshot
    holds no docs, a searcher rebuilt from it cuts what was logged after it, and once the
    calls made after the snapshot are made again (the resume replay) it goes on exactly as
    an uninterrupted one, down to the log's bytes."""
    def searcher(directory):
        directory.mkdir(exist_ok=True)
        s = HyperOptSearch(metric="loss", mode="min", seed=4, n_initial_points=3)
        s.set_search_properties(None, None, SPACE, seed=None, experiment_path=str(directory))
        return s

    def objective(config):
        return (config["x"] - 0.3) ** 2 + (0.0 if config["opt"]["name"] == "adam" else config["opt"]["lr"])

    def after_snapshot(s, running):
        finish(s, running, objective)
        return drive(s, 6, objective, max_live=2, start=40, live=deque())

    a, running = searcher(tmp_path / "a"), deque()
    drive(a, 12, objective, max_live=2, live=running)
    state = json_round_trip(a.state_dict())
    assert "docs" not in state and len(json.dumps(state)) < 1500
    replayed_calls = deque(running)
    first_run = after_snapshot(a, running)  # logged, then the driver dies before the next snapshot

    b = searcher(tmp_path / "a")
    b.load_state_dict(state)
    assert after_snapshot(b, replayed_calls) == first_run
    uninterrupted, live = searcher(tmp_path / "c"), deque()
    drive(uninterrupted, 12, objective, max_live=2, live=live)
    after_snapshot(uninterrupted, live)
    assert drive(b, 8, objective, start=80) == drive(uninterrupted, 8, objective, start=80)
    assert (tmp_path / "a" / DOCS_FILE).read_bytes() == (tmp_path / "c" / DOCS_FILE).read_bytes()
    assert len(json.dumps(b.state_dict())) < 1500


def test_a_shortened_docs_log_is_an_error_naming_it_and_the_fix(tmp_path):
    s = HyperOptSearch(metric="loss", mode="min", seed=1)
    s.set_search_properties(None, None, SPACE, seed=None, experiment_path=str(tmp_path))
    drive(s, 3, lambda c: c["x"])
    state = json_round_trip(s.state_dict())
    (tmp_path / DOCS_FILE).write_text("")
    again = HyperOptSearch(metric="loss", mode="min", seed=1)
    again.set_search_properties(None, None, SPACE, seed=None, experiment_path=str(tmp_path))
    again.load_state_dict(state)
    with pytest.raises(ValueError, match=r"hyperopt_docs.jsonl holds 0 bytes.*Delete state.json"):
        again.suggest("t9")
