"""One contract over every built-in searcher: seeds, points_to_evaluate, state round trips."""

from __future__ import annotations

from collections import deque

import optuna
import pytest

import tuner as tune
from searchers import BasicVariantGenerator, ConcurrencyLimiter, HyperOptSearch, OptunaSearch, Repeater
from tests.searchers.helpers import drive, finish, json_round_trip, quadratic

SPACE = {
    "x": tune.uniform(-2.0, 2.0), "y": tune.loguniform(1e-3, 1.0), "k": tune.randint(0, 5),
    "c": tune.choice(["a", "b", "c"]), "model": {"width": tune.qrandint(16, 64, 16), "act": "relu"},
}

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

FACTORIES = {
    "basic": lambda seed, **kw: BasicVariantGenerator(seed=seed, **kw),
    "optuna-tpe": lambda seed, **kw: OptunaSearch(seed=seed, **kw),
    "optuna-random": lambda seed, **kw: OptunaSearch(sampler=optuna.samplers.RandomSampler(seed=seed), **kw),
    "optuna-qmc": lambda seed, **kw: OptunaSearch(
        sampler=optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False), **kw),
    "hyperopt": lambda seed, **kw: HyperOptSearch(seed=seed, n_initial_points=5, **kw),
    "limited-optuna": lambda seed, **kw: ConcurrencyLimiter(OptunaSearch(seed=seed, **kw), max_concurrent=2),
    "repeated-hyperopt": lambda seed, **kw: Repeater(HyperOptSearch(seed=seed, n_initial_points=3, **kw), repeat=2),
}


def build(name: str, seed: int | None, num_samples: int = 100, **kwargs):
    searcher = FACTORIES[name](seed, **kwargs)
    searcher.set_search_properties("loss", "min", SPACE, num_samples=num_samples)
    return searcher


def in_space(config: dict) -> bool:
    return (-2.0 <= config["x"] <= 2.0 and 1e-3 <= config["y"] <= 1.0 and config["k"] in range(5)
            and config["c"] in "abc" and config["model"]["width"] in (16, 32, 48, 64)
            and config["model"]["act"] == "relu")


@pytest.mark.parametrize("name", FACTORIES)
def test_same_seed_same_configs_other_seed_other_configs(name):
    first = drive(build(name, seed=1), 16, max_live=2)
    again = drive(build(name, seed=1), 16, max_live=2)
    other = drive(build(name, seed=2), 16, max_live=2)
    assert first == again
    assert first != other
    assert all(in_space(c) for c in first + other)


@pytest.mark.parametrize("name", ["basic", "optuna-tpe", "hyperopt"])
def test_tune_run_seed_is_used_when_the_searcher_has_none(name):
    def with_run_seed(seed):
        searcher = FACTORIES[name](None)
        searcher.set_search_properties("loss", "min", SPACE, num_samples=10, seed=seed)
        return drive(searcher, 6)

    assert with_run_seed(5) == with_run_seed(5) != with_run_seed(6)


@pytest.mark.parametrize("name", FACTORIES)
def test_points_to_evaluate_come_first_in_order_and_partial_ones_are_completed(name):
    points = [{"x": 0.5, "c": "b", "model": {"width": 32}}, {"x": -1.0}, {"y": 0.5, "k": 4}]
    searcher = build(name, seed=0, points_to_evaluate=points)
    configs = drive(searcher, 8, max_live=3)
    if name.startswith("repeated"):
        configs = configs[::2]  # each config twice
    assert (configs[0]["x"], configs[0]["c"], configs[0]["model"]["width"]) == (0.5, "b", 32)
    assert configs[1]["x"] == -1.0 and (configs[2]["y"], configs[2]["k"]) == (0.5, 4)
    assert all(in_space(c) for c in configs)
    assert len({c["y"] for c in configs[:2]}) == 2  # the missing keys are drawn, not defaulted


@pytest.mark.parametrize("name", FACTORIES)
def test_rebuilt_from_state_continues_exactly_without_repeating(name):
    original = build(name, seed=3)
    live: deque = deque()
    before = drive(original, 12, max_live=2, live=live)
    state = json_round_trip(original.state_dict())
    assert state["version"] == 1
    rebuilt = build(name, seed=3)
    rebuilt.load_state_dict(state)
    live_again = deque(live)
    finish(original, live)
    finish(rebuilt, live_again)
    after_original = drive(original, 10, start=100)
    after_rebuilt = drive(rebuilt, 10, start=100)
    assert after_rebuilt == after_original
    if not name.startswith("repeated"):
        assert not [c for c in after_rebuilt if c in before]


@pytest.mark.parametrize("name", ["optuna-tpe", "hyperopt"])
def test_model_based_searchers_beat_their_own_random_start(name):
    configs = drive(build(name, seed=0), 60)
    first, last = [quadratic(c) for c in configs[:15]], [quadratic(c) for c in configs[-15:]]
    assert sorted(last)[7] < sorted(first)[7]


def test_state_before_any_suggest_round_trips():
    for name in FACTORIES:
        searcher = build(name, seed=4)
        rebuilt = build(name, seed=4)
        rebuilt.load_state_dict(json_round_trip(searcher.state_dict()))
        assert drive(rebuilt, 5) == drive(searcher, 5), name
