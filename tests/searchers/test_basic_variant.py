"""BasicVariantGenerator: the default random + grid searcher."""

from __future__ import annotations

import pytest

import tuner as tune
from searchers import FINISHED, BasicVariantGenerator
from tests.searchers.helpers import json_round_trip

GRID_SPACE = {"a": tune.grid_search([1, 2]), "b": tune.grid_search(["x", "y"]), "lr": tune.loguniform(1e-4, 1e-1)}


def suggest_all(searcher, limit=100):
    out = []
    for i in range(limit):
        config = searcher.suggest(f"t{i}")
        if config is FINISHED:
            return out
        out.append(config)
        searcher.on_trial_complete(f"t{i}", {"loss": 0.0})
    raise AssertionError("never FINISHED")


def test_grid_times_num_samples_then_finished_and_max_trials_is_none():
    searcher = BasicVariantGenerator(seed=0)
    searcher.set_search_properties(None, None, GRID_SPACE, num_samples=3)
    configs = suggest_all(searcher)
    assert [(c["a"], c["b"]) for c in configs] == [(1, "x"), (2, "x"), (1, "y"), (2, "y")] * 3
    assert len({c["lr"] for c in configs}) == 12
    assert searcher.max_trials(3) is None
    assert searcher.suggest("again") is FINISHED


def test_points_take_the_place_of_samples_and_expand_the_grids_they_do_not_fix():
    searcher = BasicVariantGenerator(points_to_evaluate=[{"a": 2, "b": "y", "lr": 0.05}, {"lr": 0.01}], seed=0)
    searcher.set_search_properties(None, None, GRID_SPACE, num_samples=3)
    configs = suggest_all(searcher)
    assert configs[0] == {"a": 2, "b": "y", "lr": 0.05}
    assert [(c["a"], c["b"], c["lr"]) for c in configs[1:5]] == [(1, "x", 0.01), (2, "x", 0.01), (1, "y", 0.01),
                                                                  (2, "y", 0.01)]
    assert len(configs) == 1 + 4 + 4  # two points, then num_samples - 2 full grids


def test_constant_config_and_empty_config():
    searcher = BasicVariantGenerator()
    searcher.set_search_properties(None, None, {"epochs": 3}, num_samples=2)
    assert suggest_all(searcher) == [{"epochs": 3}, {"epochs": 3}]
    empty = BasicVariantGenerator()
    empty.set_search_properties(None, None, {}, num_samples=2)
    assert suggest_all(empty) == [{}, {}]


def test_its_own_max_concurrent_holds_back_suggestions():
    searcher = BasicVariantGenerator(seed=0, max_concurrent=2)
    searcher.set_search_properties(None, None, {"x": tune.uniform(0, 1)}, num_samples=5)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a", {"loss": 1.0})
    assert isinstance(searcher.suggest("c"), dict)


def test_state_after_a_resume_skips_what_was_handed_out():
    first = BasicVariantGenerator()  # no seed anywhere: a random one, kept in the state
    first.set_search_properties(None, None, GRID_SPACE, num_samples=2)
    head = [first.suggest(f"t{i}") for i in range(3)]
    second = BasicVariantGenerator()
    second.set_search_properties(None, None, GRID_SPACE, num_samples=2)
    second.load_state_dict(json_round_trip(first.state_dict()))
    rest = suggest_all(second)
    assert len(head + rest) == 8 and not [c for c in rest if c in head]
    assert rest == suggest_all(first)


def test_a_resume_at_any_position_goes_on_without_drawing_the_earlier_configs_again():
    """The state holds the random stream where it stood: a resumed generator draws only what it
    hands out (a 100,000-trial resume used to draw 100,000 configs again), and the configs are
    those of an uninterrupted run, points with grids included. A state without the stream (an
    older snapshot) still resumes by drawing up to its position."""
    drawn = []

    def space():
        return {**GRID_SPACE, "tag": tune.sample_from(lambda spec: drawn.append(1) or len(drawn))}

    def generator():
        g = BasicVariantGenerator(points_to_evaluate=[{"a": 2}, {"lr": 0.01, "a": 1, "b": "x"}], seed=3)
        g.set_search_properties(None, None, space(), num_samples=4)
        return g

    whole = [{k: v for k, v in c.items() if k != "tag"} for c in suggest_all(generator())]
    assert len(whole) == 2 + 1 + 4 * 2
    for position in range(len(whole) + 1):
        first = generator()
        for i in range(position):
            first.suggest(f"t{i}")
        state = json_round_trip(first.state_dict())
        for old_format in (False, True):
            second = generator()
            second.load_state_dict({k: v for k, v in state.items() if not (old_format and k == "rng")})
            del drawn[:]
            rest = [{k: v for k, v in c.items() if k != "tag"} for c in suggest_all(second)]
            assert rest == whole[position:]
            assert len(drawn) == (len(whole) if old_format else len(whole) - position)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_concurrent": -1}, r"The value of `max_concurrent` is -1, but must be an integer `max_concurrent >= 0`"),
    ({"seed": "1"}, r"The value of `seed` is '1', but must be an integer or None"),
    ({"points_to_evaluate": [1]}, r"The value of `points_to_evaluate` is \[1\], but must be a list of dicts"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BasicVariantGenerator(**kwargs)
