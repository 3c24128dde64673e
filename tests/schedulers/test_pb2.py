"""PB2 without Ray: the numpy GP, the UCB choice, bounds, data collection and state."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest

from schedulers import PB2
from schedulers import _pbt_gp as gp
from schedulers.base import Decision, TrialDecision
from tests.schedulers.fakes import trial
from tuner.storage import jsonio as jsonutil
def test_gp_interpolates_its_data_and_is_unsure_far_from_it():
    x = np.linspace(0, 0.5, 12)[:, None]
    y = np.sin(6 * x[:, 0])
    mean, sd = gp.posterior(x, y, np.array([[0.25], [0.95]]))
    standardized = (np.sin(1.5) - y.mean()) / y.std()
    assert mean[0] == pytest.approx(standardized, abs=0.1)
    assert sd[0] < 0.3 < sd[1]


def test_length_scale_is_picked_by_marginal_likelihood():
    x = np.linspace(0, 1, 30)[:, None]
    smooth = x[:, 0] * 2.0
    wiggly = np.sin(40 * x[:, 0])
    standardize = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    assert gp.fit_length_scale(x, standardize(smooth)) > gp.fit_length_scale(x, standardize(wiggly))


def test_ucb_picks_the_best_region():
    rng = np.random.default_rng(0)
    x = rng.random((40, 1))
    y = -((x[:, 0] - 0.7) ** 2)
    candidates = np.linspace(0, 1, 101)[:, None]
    assert candidates[gp.ucb_argmax(x, y, candidates, kappa=0.1), 0] == pytest.approx(0.7, abs=0.1)


def pb2(**kwargs):
    kwargs.setdefault("hyperparam_bounds", {"lr": [0.0, 1.0]})
    return PB2(metric="score", mode="max", perturbation_interval=1, **kwargs)


def run_population(s, steps=12, n=8, best_lr=0.7):
    """Scores grow at a rate that peaks at lr = best_lr; returns the exploits seen."""
    trials, scores = population(s, n)
    return advance(s, trials, scores, range(1, steps + 1), best_lr)


def population(s, n):
    rng = random.Random(0)
    trials, scores = [], {}
    for i in range(n):
        t = trial(i)
        t.config = {"lr": rng.random(), "keep": i}
        t.checkpoint_path = f"/ckpt/{i}"
        s.on_trial_add(t)
        trials.append(t)
        scores[t.trial_id] = 0.0
    return trials, scores


def advance(s, trials, scores, iterations, best_lr=0.7):
    exploits = []
    for it in iterations:
        for t in trials:
            scores[t.trial_id] += 1.0 - (t.config["lr"] - best_lr) ** 2 * 4
            t.last_result = {"training_iteration": it, "score": scores[t.trial_id]}
            d = TrialDecision.of(s.on_trial_result(t, t.last_result))
            if d.action is Decision.EXPLOIT:
                donor = next(x for x in trials if x.trial_id == d.donor_id)
                assert d.config["keep"] == donor.config["keep"]  # the donor's other keys are kept
                exploits.append((it, t.trial_id, d))
                t.config = d.config
                scores[t.trial_id] = scores[d.donor_id]
    return exploits


def test_pb2_explores_towards_the_better_region_inside_the_bounds():
    exploits = run_population(pb2(seed=0))
    assert len(exploits) > 5
    for _, tid, d in exploits:
        assert 0.0 <= d.config["lr"] <= 1.0
        assert "lr" in d.info["new"] and d.info["new"]["lr"] == d.config["lr"]


@pytest.mark.parametrize("seed", range(5))
def test_pb2_picks_the_lr_whose_score_grew_fastest(seed):
    s = pb2(seed=seed)
    trials = [trial(i) for i in range(8)]
    for t, lr in zip(trials, np.linspace(0, 1, 8)):
        t.config = {"lr": float(lr)}
        s.on_trial_add(t)
    for it in range(1, 7):
        for t in reversed(trials):  # no checkpoints before 6, so nobody is exploited: only data is gathered
            t.checkpoint_path = f"/ckpt/{t.trial_id}" if it == 6 else None
            rate = 1.0 - 4 * (t.config["lr"] - 0.7) ** 2
            d = TrialDecision.of(s.on_trial_result(t, {"training_iteration": it, "score": rate * it}))
    assert d.action is Decision.EXPLOIT  # the last to report (lr=0) is the worst
    assert d.config["lr"] == pytest.approx(0.7, abs=0.1)


def test_pb2_without_data_draws_uniformly_within_bounds():
    s = pb2(seed=3, hyperparam_bounds={"opt": {"lr": [1e-4, 1e-2]}, "wd": [0.0, 0.1]})
    a, b = trial(0), trial(1)
    for t, lr in ((a, 1e-3), (b, 5e-3)):
        t.config = {"opt": {"lr": lr}, "wd": 0.05}
        t.checkpoint_path = "/ckpt"
        s.on_trial_add(t)
    b.last_result = {"training_iteration": 1, "score": 2.0}
    assert s.on_trial_result(b, b.last_result) is Decision.CONTINUE
    d = s.on_trial_result(a, {"training_iteration": 1, "score": 1.0})
    assert d.action is Decision.EXPLOIT
    assert 1e-4 <= d.config["opt"]["lr"] <= 1e-2 and 0.0 <= d.config["wd"] <= 0.1


def test_pb2_is_seeded_and_its_data_survives_a_state_round_trip():
    def decisions(seed):
        return [(it, tid, d.donor_id, d.config) for it, tid, d in run_population(pb2(seed=seed), steps=8)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)
    s = pb2(seed=0)
    trials, scores = population(s, 8)
    advance(s, trials, scores, range(1, 7))
    state = json.loads(jsonutil.dumps(s.state_dict()))  # as state.json is written
    assert state["version"] == 1 and len(state["rows"]) > 10
    other = pb2(seed=9)
    other.load_state_dict(state)
    assert other.state_dict() == s.state_dict()
    twins, twin_scores = copy.deepcopy(trials), dict(scores)
    later = [(it, tid, d.donor_id, d.config) for it, tid, d in advance(other, twins, twin_scores, range(7, 13))]
    assert later and later == [(it, tid, d.donor_id, d.config) for it, tid, d in advance(s, trials, scores, range(7, 13))]


def test_pb2_params_are_its_own():
    params = PB2(hyperparam_bounds={"lr": [0.1, 0.2]}, seed=1).get_params()
    assert params["hyperparam_bounds"] == {"lr": [0.1, 0.2]} and params["seed"] == 1
    assert not {"hyperparam_mutations", "resample_probability", "perturbation_factors"} & set(params)
    assert PB2(**params).hyperparam_bounds == {"lr": [0.1, 0.2]}


@pytest.mark.parametrize("bounds, match", [
    (None, r"The value of `hyperparam_bounds` is None, but must be a non-empty dict"),
    ({}, r"The value of `hyperparam_bounds` is \{\}, but must be a non-empty dict"),
    ({"lr": [0.1]}, r"The value of `hyperparam_bounds\['lr'\]` is \[0.1\], but must be \[lower, upper\]"),
    ({"lr": [0.2, 0.1]}, r"The value of `hyperparam_bounds\['lr'\]` is \[0.2, 0.1\], but must be \[lower, upper\] "
                         r"with finite numbers and lower < upper"),
    ({"lr": ["a", "b"]}, r"The value of `hyperparam_bounds\['lr'\]` is \['a', 'b'\]"),
    ({"lr": [0, float("inf")]}, r"The value of `hyperparam_bounds\['lr'\]` is \[0, inf\]"),
    ({"opt": {"lr": (1, 1)}}, r"The value of `hyperparam_bounds\['opt'\]\['lr'\]` is \(1, 1\)"),
    ({"opt": {}}, r"The value of `hyperparam_bounds\['opt'\]` is \{\}, but must be a non-empty dict"),
])
def test_bounds_are_checked(bounds, match):
    with pytest.raises(ValueError, match=match):
        PB2(hyperparam_bounds=bounds)


def test_other_arguments_are_checked_as_for_pbt():
    with pytest.raises(ValueError, match=r"The value of `quantile_fraction` is 0.9, but must be"):
        PB2(hyperparam_bounds={"lr": [0, 1]}, quantile_fraction=0.9)
