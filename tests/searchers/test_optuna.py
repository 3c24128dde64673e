"""OptunaSearch: define-by-run, multi-objective, pruner, known rewards, argument errors."""

from __future__ import annotations

import json
from collections import deque

import optuna
import pytest

import tuner as tune
from searchers import OptunaSearch
from searchers.optuna_journal import journal_backend
from tests.searchers.helpers import drive, json_round_trip, quadratic

SPACE = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 4)}


def test_define_by_run_space_with_a_conditional_branch_and_constants():
    def space(trial):
        opt = trial.suggest_categorical("opt", ["sgd", "adam"])
        if opt == "sgd":
            trial.suggest_float("sgd/lr", 1e-3, 1.0, log=True)
        else:
            trial.suggest_float("adam/beta", 0.8, 0.99)
        return {"epochs": 3}

    searcher = OptunaSearch(space=space, metric="loss", mode="min", seed=0)
    configs = drive(searcher, 20, objective=lambda c: c.get("sgd", {}).get("lr", 0.5))
    assert {c["opt"] for c in configs} == {"sgd", "adam"}
    for c in configs:
        assert c["epochs"] == 3 and set(c) == {"opt", c["opt"], "epochs"}
        assert 1e-3 <= c["sgd"]["lr"] <= 1.0 if c["opt"] == "sgd" else 0.8 <= c["adam"]["beta"] <= 0.99


def test_define_by_run_state_round_trip_continues_exactly():
    def space(trial):
        trial.suggest_int("n", 1, 100, log=True)

    a = OptunaSearch(space=space, metric="loss", mode="min", seed=2)
    drive(a, 8, objective=lambda c: c["n"])
    b = OptunaSearch(space=space, metric="loss", mode="min", seed=2)
    b.load_state_dict(json_round_trip(a.state_dict()))
    assert drive(b, 5, objective=lambda c: c["n"], start=50) == drive(a, 5, objective=lambda c: c["n"], start=50)


def test_multi_objective_uses_nsga2_and_exposes_the_pareto_front():
    searcher = OptunaSearch(space=SPACE, metric=["acc", "cost"], mode=["max", "min"], seed=0)
    for i in range(30):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"acc": 1 - config["x"] ** 2, "cost": config["k"] + config["x"]})
    assert isinstance(searcher.study.sampler, optuna.samplers.NSGAIISampler)
    front = searcher.pareto_front()
    assert front and set(front) <= {f"t{i}" for i in range(30)}
    trials = {t.user_attrs["trial_id"]: t for t in searcher.study.trials}
    for trial_id in front:  # nobody dominates a front member
        a = trials[trial_id].values
        assert not any(t.values[0] >= a[0] and t.values[1] <= a[1] and t.values != a for t in trials.values())


def test_single_objective_uses_tpe_and_a_missing_metric_is_a_failed_trial():
    searcher = OptunaSearch(space=SPACE, metric="loss", mode="max", seed=0)
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.suggest("c")
    searcher.on_trial_complete("a", {"other": 1.0})
    searcher.on_trial_complete("b", {"loss": 2.0}, error=True)
    searcher.on_trial_complete("c", {"loss": 3.0})
    searcher.on_trial_complete("never-suggested", {"loss": 1.0})
    states = [t.state.name for t in searcher.study.trials]
    assert states == ["FAIL", "FAIL", "COMPLETE"]
    assert isinstance(searcher.study.sampler, optuna.samplers.TPESampler)
    assert searcher.study.best_value == 3.0  # mode="max" maximizes


def test_pruner_sees_intermediate_results_and_the_trial_is_told_pruned():
    searcher = OptunaSearch(space=SPACE, metric="loss", mode="min", seed=0,
                            use_pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    searcher.suggest("good")
    searcher.suggest("bad")
    for step in (1, 2, 2):  # a repeated step is reported once
        searcher.on_trial_result("good", {"loss": 0.5, "training_iteration": step})
        searcher.on_trial_result("bad", {"loss": 5.0, "training_iteration": step})
    assert not searcher.should_prune("good") and searcher.should_prune("bad")
    searcher.on_trial_complete("good", {"loss": 0.4})
    searcher.on_trial_complete("bad", {"loss": 5.0})
    assert [t.state.name for t in searcher.study.trials] == ["COMPLETE", "PRUNED"]
    assert searcher.study.trials[1].intermediate_values == {1: 5.0, 2: 5.0}


def test_evaluated_rewards_are_told_without_running_the_points():
    points = [{"x": 0.1, "k": 1}, {"x": -0.5, "k": 2}]
    searcher = OptunaSearch(space=SPACE, metric="loss", mode="min", seed=0, points_to_evaluate=points,
                            evaluated_rewards=[0.3, 0.9])
    first = searcher.suggest("t0")
    assert first not in points
    told = [(t.params, t.value) for t in searcher.study.trials if t.state.name == "COMPLETE"]
    assert told == [({"x": 0.1, "k": 1}, 0.3), ({"x": -0.5, "k": 2}, 0.9)]


def test_space_constants_from_tune_run_merge_into_its_own_space():
    searcher = OptunaSearch(space=SPACE, seed=0)
    searcher.set_search_properties("loss", "min", {"epochs": 5, "model": {"act": "relu"}})
    config = searcher.suggest("t0")
    assert config["epochs"] == 5 and config["model"] == {"act": "relu"} and set(config) == {"x", "k", "epochs", "model"}


@pytest.mark.parametrize("kwargs, match", [
    ({"sampler": optuna.samplers.RandomSampler(), "seed": 1},
     r"The value of `seed` is 1, but must be None when `sampler` is given; seed the sampler itself"),
    ({"sampler": "tpe"}, r"The value of `sampler` is 'tpe', but must be an optuna.samplers sampler"),
    ({"points_to_evaluate": [{"x": 0.1}], "evaluated_rewards": [1, 2]},
     r"The value of `evaluated_rewards` has 2 entries, but must have one per point of `points_to_evaluate` \(1\)"),
    ({"space": lambda trial: None, "points_to_evaluate": [{"x": 0.1}], "evaluated_rewards": [1.0]},
     r"The value of `evaluated_rewards` is given, but must be None with a define-by-run space"),
    ({"space": [1]}, r"The value of `space` is \[1\], but must be a dict of tune.\* domains or a define-by-run"),
    ({"mode": "best"}, r"The value of `mode` is 'best', but must be one of \('min', 'max'\)"),
    ({"metric": ["a", "b"], "mode": ["max"]}, r"The value of `mode` is \['max'\], but must name one mode per metric"),
    ({"seed": 1.5}, r"The value of `seed` is 1.5, but must be an integer or None"),
    ({"use_pruner": "median"}, r"The value of `use_pruner` is 'median', but must be a bool or an optuna.pruners"),
    ({"points_to_evaluate": {"x": 1}}, r"The value of `points_to_evaluate` is \{'x': 1\}, but must be a list of dicts"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptunaSearch(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({}, r"OptunaSearch was not given a `metric` and `mode`. Either pass them when building the OptunaSearch, or "
         r"pass them to tune.run\(metric=..., mode=...\)"),
    ({"metric": ["a", "b"], "mode": ["min", "min"], "use_pruner": True},
     r"The value of `use_pruner` is True, but must be False with several metrics"),
])
def test_errors_found_when_the_study_starts(kwargs, match):
    searcher = OptunaSearch(space=SPACE, **kwargs)
    with pytest.raises(ValueError, match=match):
        searcher.suggest("t0")


@pytest.mark.parametrize("points, match", [
    ([{"z": 1}],
     r"The value of `points_to_evaluate\[0\]` sets `z`, but must set only parameters of the space \(x, k\)"),
    ([{"x": 0.5}, {"x": 7}], r"The value of `x` in points_to_evaluate is 7, but must be a number in \[-1.0, 1.0\]"),
])
def test_bad_points_fail_as_soon_as_the_space_is_known(points, match):
    with pytest.raises(ValueError, match=match):
        OptunaSearch(space=SPACE, points_to_evaluate=points)
    with pytest.raises(ValueError, match=match):
        OptunaSearch(points_to_evaluate=points).set_search_properties("loss", "min", SPACE)


def test_no_space_anywhere_and_two_spaces_are_errors():
    with pytest.raises(ValueError, match=r"OptunaSearch has no search space: pass `space=` or tune.run\(config=...\)"):
        OptunaSearch(metric="loss", mode="min").suggest("t0")
    with pytest.raises(ValueError, match="OptunaSearch already has a search space, and tune.run got `config` with"):
        OptunaSearch(space=SPACE).set_search_properties("loss", "min", {"y": tune.uniform(0, 1)})


def test_get_params_lists_the_constructor_arguments():
    params = OptunaSearch(seed=3, use_pruner=True).get_params()
    assert params["seed"] == 3 and params["use_pruner"] is True and params["sampler"] is None
    assert not any(k.startswith("_") for k in params) and "space" not in params


def test_study_in_the_experiment_directory_resumes_exactly_from_a_constant_size_state(tmp_path):
    """With ``tune.run``'s experiment directory the study is Optuna's journal there: the
    state snapshot holds no trials, and a searcher rebuilt from it, with trials still
    running, goes on exactly as the first one does."""
    def searcher():
        s = OptunaSearch(metric="loss", mode="min", seed=4)
        s.set_search_properties(None, None, SPACE, seed=None, experiment_path=str(tmp_path))
        return s

    a, running = searcher(), deque()
    drive(a, 14, max_live=2, live=running)
    state = json_round_trip(a.state_dict())
    assert "trials" not in state and len(json.dumps(state)) < 1000

    b = searcher()
    b.load_state_dict(state)
    assert [b.suggest(trial_id) for trial_id, _ in running] == [c for _, c in running]  # known, not asked anew
    for s in (a, b):
        for trial_id, config in running:
            s.on_trial_complete(trial_id, {"loss": quadratic(config)})
    assert drive(b, 6, start=40) == drive(a, 6, start=40)
    assert len(json.dumps(a.state_dict())) == len(json.dumps(state))


def test_the_study_journal_drops_a_torn_last_line(tmp_path):
    path = str(tmp_path / "study.jsonl")
    journal_backend(path).append_logs([{"op_code": 0, "n": 1}, {"op_code": 0, "n": 2}])
    with open(path, "a") as f:
        f.write('{"op_code": 0, "n"')  # the driver died mid-write
    again = journal_backend(path)
    assert [log["n"] for log in again.read_logs(0)] == [1, 2]
    again.append_logs([{"op_code": 0, "n": 3}])
    assert [log["n"] for log in journal_backend(path).read_logs(0)] == [1, 2, 3]
