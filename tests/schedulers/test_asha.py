"""ASHA and the median rule fed fake trials: which trial stops where, and why."""

from __future__ import annotations

import math

import pytest

from schedulers import ASHAScheduler, MedianStoppingRule
from schedulers.base import Decision, TrialDecision
from tests.schedulers.fakes import result, trial
from tuner.trial import TrialStatus


def asha(**kw):
    kw = {"metric": "loss", "mode": "min", "max_t": 27, "grace_period": 1, "reduction_factor": 3, **kw}
    return ASHAScheduler(**kw)


def decide(s, t, it, value):
    return TrialDecision.of(s.on_trial_result(t, result(it, value)))


def test_decision_points_are_the_rungs_then_max_t():
    s = asha()
    t = trial(0)
    s.on_trial_add(t)
    points, after = [], 0
    while not math.isinf(after):
        after = s.next_decision_point(t, after)
        points.append(after)
    assert points == [1, 3, 9, 27, math.inf]


def test_stop_variant_min_mode():
    s = asha()
    trials = [trial(i) for i in range(4)]
    for t in trials:
        s.on_trial_add(t)
    assert decide(s, trials[0], 1, 5.0).action is Decision.CONTINUE       # alone at the rung
    assert decide(s, trials[1], 1, 1.0).action is Decision.CONTINUE       # best so far
    stopped = decide(s, trials[2], 1, 3.0)                                # against 5 and 1 before it
    assert stopped.action is Decision.STOP
    # scores -5, -1 before it: the 2/3 quantile is -5 + 4 * 2/3, i.e. loss 2.333; 3 is worse
    assert stopped.info == {"rung": 1, "value": 3.0, "cutoff": pytest.approx(5 - 4 * 2 / 3), "recorded": 2}
    assert "rung 1: loss=3 is worse than the cutoff 2.33333 (top 1/3 of the 2 recorded before it)" == stopped.reason
    assert decide(s, trials[3], 1, math.nan).action is Decision.STOP      # NaN never goes on
    assert decide(s, trials[1], 27, 0.1).reason == "reached max_t=27"


def test_max_mode_and_missing_metric():
    s = asha(metric="acc", mode="max")
    a, b = trial(0), trial(1)
    s.on_trial_add(a)
    s.on_trial_add(b)
    assert TrialDecision.of(s.on_trial_result(a, result(1, 0.9, "acc"))).action is Decision.CONTINUE
    assert TrialDecision.of(s.on_trial_result(b, result(1, 0.1, "acc"))).action is Decision.STOP
    with pytest.raises(ValueError, match=r"metric 'acc' is not in the result; the trainable reported: loss, "
                                         r"training_iteration"):
        s.on_trial_result(a, {"training_iteration": 3, "loss": 1.0})


def test_promote_variant_promotes_at_most_floor_n_over_rf():
    s = asha(stop_or_promote="promote")
    trials = [trial(i) for i in range(6)]
    for t in trials:
        s.on_trial_add(t)
    for i, t in enumerate(trials[:2]):
        assert decide(s, t, 1, float(i)).action is Decision.PAUSE
        t.status = TrialStatus.PAUSED
    assert s.choose_trial_to_run(trials[:2]) is None          # 2 recorded: floor(2/3) = 0
    assert decide(s, trials[2], 1, 5.0).action is Decision.PAUSE
    trials[2].status = TrialStatus.PAUSED
    assert s.choose_trial_to_run(trials) is trials[0]         # loss 0 is the best of 3
    trials[0].status = TrialStatus.RUNNING
    pending_left = [t for t in trials if t.status is TrialStatus.PAUSED]
    assert s.choose_trial_to_run(pending_left) is None        # one promotion for three


def test_brackets_are_seeded():
    picks = []
    for _ in range(2):
        s = asha(brackets=3, seed=5)
        for i in range(20):
            s.on_trial_add(trial(i))
        picks.append(s.state_dict()["bracket"])
    assert picks[0] == picks[1] and len(set(picks[0].values())) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"reduction_factor": 1}, r"The value of `reduction_factor` is 1, but must be `reduction_factor > 1`"),
    ({"grace_period": 0}, r"The value of `grace_period` is 0, but must be `0 < grace_period <= max_t`"),
    ({"max_t": -1}, r"The value of `max_t` is -1, but must be `max_t > 0`"),
    ({"brackets": 0}, r"The value of `brackets` is 0, but must be an integer >= 1"),
    ({"stop_or_promote": "halve"}, r"The value of `stop_or_promote` is 'halve', but must be 'stop' or 'promote'"),
    ({"mode": "best"}, r"The value of `mode` is 'best', but must be one of \('min', 'max'\)"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        asha(**kwargs)


def test_median_rule():
    s = MedianStoppingRule(metric="loss", mode="min", grace_period=2, min_samples_required=2)
    trials = [trial(i) for i in range(4)]
    for it in (1, 2, 3):
        for i, t in enumerate(trials[:3]):
            assert s.on_trial_result(t, result(it, float(i))) is Decision.CONTINUE or i == 2
    late = trials[3]
    assert s.on_trial_result(late, result(1, 10.0)) is Decision.CONTINUE      # inside the grace period
    verdict = TrialDecision.of(s.on_trial_result(late, result(2, 10.0)))
    # running means at iteration 2: 0, 1, 2 -> median 1
    assert verdict.action is Decision.STOP and verdict.info["median"] == pytest.approx(1.0)


def test_hyperband_bracket_plan_matches_the_paper():
    from schedulers.hyperband import bracket_plan

    assert bracket_plan(81, 3) == [(4, 81, 1.0), (3, 34, 3.0), (2, 15, 9.0), (1, 8, 27.0), (0, 5, 81)]


def test_hyperband_pauses_a_bracket_then_keeps_the_top_third():
    from schedulers import HyperBandScheduler

    s = HyperBandScheduler(metric="loss", mode="min", max_t=9, reduction_factor=3)
    trials = [trial(i, TrialStatus.PENDING) for i in range(9)]   # bracket s=2: 9 trials, milestones 1, 3, 9
    for t in trials:
        s.on_trial_add(t)
    for i, t in enumerate(trials):
        assert s.choose_trial_to_run([t]) is t
        t.status = TrialStatus.RUNNING
        assert s.next_decision_point(t, 0) == 1
        assert TrialDecision.of(s.on_trial_result(t, result(1, float(i)))).action is Decision.PAUSE
        t.status = TrialStatus.PAUSED
    chosen = s.choose_trial_to_run(trials)
    assert chosen is trials[0]
    stopped = s.trials_to_stop()
    assert sorted(tid for tid, _ in stopped) == [f"t{i:03d}" for i in range(3, 9)]
    assert stopped[0][1].reason == "bracket 2 rung 1: not in the top 3 of 9"
    assert s.next_decision_point(chosen, 1) == 3


def test_the_running_record_decides_as_sorting_every_score_again():
    """ASHA keeps each rung's scores sorted as they arrive (no sort of the whole rung per decision): its
    decisions and cutoffs equal ``_rungs.cutoff`` of every score recorded before, ties, NaN and None
    included, also after a state round trip half way."""
    import random

    from schedulers import _rungs

    rng = random.Random(7)
    s = asha(max_t=9)
    seen: dict[int, list[float]] = {1: [], 3: []}
    trials = [trial(i) for i in range(300)]
    for i, t in enumerate(trials):
        if i == 150:
            again = asha(max_t=9)
            again.load_state_dict(s.state_dict())
            s = again
        s.on_trial_add(t)
        for rung in (1, 3):
            value = rng.choice([math.nan, None, 1.0, 2.0, rng.random(), rng.random() * 10])
            got = decide(s, t, rung, value)
            scored = _rungs.score(value, "min")
            expected_cut = _rungs.cutoff(seen[rung], 3)
            survives = _rungs.survives(scored, expected_cut)
            seen[rung].append(scored)
            assert (got.action is Decision.CONTINUE) == survives
            if not survives:
                assert got.info["cutoff"] == -expected_cut and got.info["recorded"] == len(seen[rung]) - 1
                break
