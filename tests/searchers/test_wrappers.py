"""ConcurrencyLimiter and Repeater around other searchers (unit level, no Ray)."""

from __future__ import annotations

import random

import pytest

import tuner as tune
from searchers import FINISHED, BasicVariantGenerator, ConcurrencyLimiter, OptunaSearch, Repeater, Searcher
from searchers.repeater import TRIAL_INDEX, mean_result
from tests.searchers.helpers import json_round_trip

SPACE = {"x": tune.uniform(-1.0, 1.0)}


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize("inner", ["basic", "optuna"])
def test_limiter_never_exceeds_its_limit_under_random_interleaving(limit, inner):
    searcher = BasicVariantGenerator(seed=0) if inner == "basic" else OptunaSearch(seed=0)
    limited = ConcurrencyLimiter(searcher, max_concurrent=limit)
    limited.set_search_properties("loss", "min", SPACE, num_samples=40)
    rng = random.Random(0)
    live, started, refused = [], 0, 0
    while started < 40:
        if rng.random() < 0.6:
            config = limited.suggest(f"t{started}")
            if config is None:
                refused += 1
                assert len(live) == limit
            else:
                live.append(f"t{started}")
                started += 1
            assert len(live) <= limit and limited.live_trials == len(live)
        elif live:
            done = live.pop(rng.randrange(len(live)))
            limited.on_trial_complete(done, {"loss": 1.0}, error=rng.random() < 0.2)
    assert refused > 0


def test_limiter_forwards_properties_results_and_finished():
    inner = BasicVariantGenerator(seed=0)
    limited = ConcurrencyLimiter(inner, max_concurrent=2)
    limited.set_search_properties("loss", "min", SPACE, num_samples=1)
    assert (inner.metric, inner.mode, inner.space) == ("loss", "min", SPACE) == (limited.metric, limited.mode, SPACE)
    assert limited.max_trials(1) is None
    assert isinstance(limited.suggest("a"), dict)
    assert limited.suggest("b") is FINISHED and limited.live_trials == 1
    assert limited.get_params() == {"searcher": inner,
                                    "max_concurrent": 2}


def test_limiter_state_keeps_live_trials_across_a_resume():
    limited = ConcurrencyLimiter(BasicVariantGenerator(seed=0), max_concurrent=1)
    limited.set_search_properties("loss", "min", SPACE, num_samples=5)
    limited.suggest("a")
    again = ConcurrencyLimiter(BasicVariantGenerator(seed=0), max_concurrent=1)
    again.set_search_properties("loss", "min", SPACE, num_samples=5)
    again.load_state_dict(json_round_trip(limited.state_dict()))
    assert again.suggest("b") is None
    again.on_trial_complete("a", {"loss": 1.0})
    assert again.suggest("b") == limited.searcher.suggest("b")


@pytest.mark.parametrize("kwargs, match", [
    ({"searcher": "optuna", "max_concurrent": 2}, r"The value of `searcher` is 'optuna', but must be a Searcher"),
    ({"max_concurrent": 0}, r"The value of `max_concurrent` is 0, but must be an integer `max_concurrent >= 1`"),
])
def test_limiter_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConcurrencyLimiter(**{"searcher": BasicVariantGenerator(), **kwargs})


class Recorder(Searcher):
    """Hands out x = 0, 1, 2... and records what it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple] = []
        self.count = 0

    def suggest(self, trial_id):
        self.count += 1
        return {"x": self.count - 1} if self.count <= 2 else FINISHED

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.told.append((trial_id, None if result is None else result.get("loss"), error))


def test_repeater_gives_each_config_k_times_with_an_index_and_tells_the_mean():
    inner = Recorder()
    repeater = Repeater(inner, repeat=3)
    repeater.set_search_properties("loss", "min", None)
    configs = [repeater.suggest(f"t{i}") for i in range(7)]
    assert configs[:6] == [{"x": x, TRIAL_INDEX: i} for x in (0, 1) for i in range(3)]
    assert configs[6] is FINISHED
    repeater.on_trial_complete("t0", {"loss": 1.0})
    repeater.on_trial_complete("t1", {"loss": 2.0})
    assert inner.told == []  # the group is not done yet
    repeater.on_trial_complete("t2", {"loss": 6.0})
    repeater.on_trial_complete("t3", None, error=True)
    repeater.on_trial_complete("t4", {"loss": 4.0})
    repeater.on_trial_complete("t5", {"other": 1})
    assert inner.told == [("t0", 3.0, False), ("t3", 4.0, False)]


def test_repeater_all_failed_is_an_error_and_set_index_false_keeps_the_config():
    inner = Recorder()
    repeater = Repeater(inner, repeat=2, set_index=False)
    repeater.set_search_properties("loss", "min", None)
    assert repeater.suggest("a") == repeater.suggest("b") == {"x": 0}
    repeater.on_trial_complete("a", None, error=True)
    repeater.on_trial_complete("b", {"loss": 1.0}, error=True)
    assert inner.told == [("a", None, True)]


def test_repeater_state_round_trip_mid_group():
    repeater = Repeater(BasicVariantGenerator(seed=0), repeat=2)
    repeater.set_search_properties("loss", "min", SPACE, num_samples=3)
    first = repeater.suggest("a")
    again = Repeater(BasicVariantGenerator(seed=0), repeat=2)
    again.set_search_properties("loss", "min", SPACE, num_samples=3)
    again.load_state_dict(json_round_trip(repeater.state_dict()))
    assert again.suggest("b") == {**first, TRIAL_INDEX: 1}
    assert again.suggest("c")["x"] != first["x"]


def test_mean_result_and_bad_arguments():
    assert mean_result([{"loss": 1.0, "it": 1}, {"loss": 3.0, "it": 2}], ["loss"]) == {"loss": 2.0, "it": 2}
    assert mean_result([{"acc": 1.0}], ["loss"]) is None
    with pytest.raises(ValueError, match=r"The value of `repeat` is 0, but must be an integer `repeat >= 1`"):
        Repeater(Recorder(), repeat=0)
    with pytest.raises(ValueError, match=r"The value of `searcher` is None, but must be a Searcher instance"):
        Repeater(None, repeat=2)
