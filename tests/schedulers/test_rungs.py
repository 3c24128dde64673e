"""Rung arithmetic and cutoffs, hand-computed; properties checked with hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedulers import _rungs


def test_milestones():
    assert _rungs.rung_milestones(1, 3, 100) == [1, 3, 9, 27, 81]
    assert _rungs.rung_milestones(1, 3, 100, bracket=2) == [9, 27, 81]
    assert _rungs.rung_milestones(2, 4, 32) == [2, 8]
    assert _rungs.rung_milestones(5, 2, 5) == []


def test_score_orients_and_makes_nan_worst():
    assert _rungs.score(2.0, "max") == 2.0 and _rungs.score(2.0, "min") == -2.0
    assert _rungs.score(math.nan, "min") == -math.inf and _rungs.score(None, "max") == -math.inf


@pytest.mark.parametrize(("scores", "rf", "expected"), [
    ([1.0, 2.0, 3.0, 4.0], 4, 3.25),       # 0.75 quantile of 1..4: pos 2.25
    ([1.0, 2.0, 3.0], 3, 2.0 + 1 / 3),     # 2/3 quantile: pos 1.333
    ([5.0], 3, 5.0),                       # one value: it is the cutoff, so it survives
    ([2.0, 2.0, 2.0, 2.0], 2, 2.0),        # ties
    ([-math.inf, 1.0, 3.0], 2, 2.0),       # NaN scores are left out of the quantile
    ([-math.inf], 2, -math.inf),
])
def test_cutoff(scores, rf, expected):
    assert _rungs.cutoff(scores, rf) == pytest.approx(expected)


def test_survives_ties_go_on_and_nan_never_does():
    assert _rungs.survives(2.0, _rungs.cutoff([2.0, 2.0, 2.0], 3))
    assert not _rungs.survives(-math.inf, _rungs.cutoff([-math.inf], 3))
    assert not _rungs.survives(1.0, _rungs.cutoff([3.0, 5.0], 3))   # fewer-than-rf company still ranks: 1 < 4.33
    assert not _rungs.survives(4.0, _rungs.cutoff([3.0, 5.0], 3))   # 4 < 3 + 2 * 2/3
    assert _rungs.survives(5.0, _rungs.cutoff([3.0, 5.0], 3))
    assert _rungs.survives(0.5, _rungs.cutoff([], 3))               # the first at a rung goes on


def test_promotable_top_floor_n_over_rf():
    recorded = {"a": 1.0, "b": 5.0, "c": 3.0, "d": 4.0, "e": -math.inf, "f": 2.0, "g": 0.0}
    assert _rungs.promotable(recorded, set(), 3) == ["b", "d"]        # floor(7/3) = 2
    assert _rungs.promotable(recorded, {"b"}, 3) == ["d"]
    assert _rungs.promotable({"a": 1.0, "b": 2.0}, set(), 3) == []     # fewer than rf: nobody yet
    assert _rungs.promotable({"a": 1.0, "b": 1.0, "c": 0.0}, set(), 3) == ["a"]  # ties: by id


scores_st = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=40)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # slow on a loaded machine
@given(scores_st, st.integers(min_value=2, max_value=6))
def test_best_at_a_rung_is_never_stopped(earlier, rf):
    for arriving in (max(earlier), max(earlier) + 1.0):  # tying the best, or beating it
        assert _rungs.survives(arriving, _rungs.cutoff(earlier, rf))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # slow on a loaded machine
@given(scores_st, st.integers(min_value=2, max_value=6), st.data())
def test_never_more_than_floor_n_over_rf_promoted(scores, rf, data):
    promoted: set[str] = set()
    recorded: dict[str, float] = {}
    for i, s in enumerate(scores):           # trials arrive one by one, promotions happen in between
        recorded[f"t{i}"] = s
        for tid in _rungs.promotable(recorded, promoted, rf)[: data.draw(st.integers(0, 2))]:
            promoted.add(tid)
        assert len(promoted) <= math.floor(len(recorded) / rf)
