"""PBT without Ray: quantiles, explore, decisions at perturbation points,
synchronous generations, state, validation and the replayed config schedule."""

from __future__ import annotations

import json
import math
import random
import threading

import pytest

import tuner as tune
from schedulers import PopulationBasedTraining
from schedulers import _pbt_explore as ex
from schedulers.base import Decision, TrialDecision
from schedulers.pbt import ancestry, config_at, replay
from tests.schedulers.fakes import trial
from tuner.storage import journal
from tuner.storage import jsonio as jsonutil
from tuner.trial import TrialStatus


# --- quantiles ----------------------------------------------------------------------------------------
def test_quantiles_take_the_fraction_of_each_end():
    assert ex.quantiles({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, 0.25) == (["a"], ["d"])
    scores = {f"t{i}": float(i) for i in range(10)}
    assert ex.quantiles(scores, 0.25) == (["t0", "t1", "t2"], ["t7", "t8", "t9"])  # ceil(2.5) = 3


def test_quantiles_with_few_trials():
    assert ex.quantiles({}, 0.25) == ([], [])
    assert ex.quantiles({"a": 1.0}, 0.5) == ([], [])
    assert ex.quantiles({"a": 1.0, "b": 0.0}, 0.1) == (["b"], ["a"])
    # never more than half in a quantile, so no trial is in both
    assert ex.quantiles({"a": 1.0, "b": 2.0, "c": 3.0}, 0.5) == (["a"], ["c"])


def test_quantiles_with_ties():
    assert ex.quantiles({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}, 0.5) == ([], ["c", "d"])
    # b ties the worst of the top: as good as a donor, so not exploited
    assert ex.quantiles({"a": 1.0, "b": 2.0, "c": 2.0, "d": 3.0}, 0.5) == (["a"], ["c", "d"])
    # ties break by id, the same every time
    assert ex.quantiles({"b": 0.0, "a": 0.0, "c": 5.0, "d": 5.0}, 0.25) == (["a"], ["d"])
    assert ex.quantiles({"a": -math.inf, "b": 0.0, "c": 1.0, "d": -math.inf}, 0.5) == (["a", "d"], ["b", "c"])


# --- explore ------------------------------------------------------------------------------------------
def _value(value, spec, p=0.0, factors=(1.2, 0.8), seed=0):
    return ex.explore_value(value, True, ex.parse_mutations({"x": spec})["x"], random.Random(seed), p, factors)


def test_numeric_perturbation_is_clipped_to_the_domain():
    assert _value(0.95, tune.uniform(0, 1), factors=(1.2,)) == 1.0
    assert _value(0.5, tune.uniform(0, 1), factors=(0.8,)) == pytest.approx(0.4)
    assert _value(0.09, tune.loguniform(1e-4, 1e-1), factors=(1.2,)) == 0.1
    assert _value(2e-4, tune.loguniform(1e-4, 1e-1), factors=(0.2,)) == 1e-4


def test_integer_and_quantized_domains_keep_their_grid():
    assert _value(8, tune.randint(1, 10), factors=(1.2,)) == 9  # 9.6 rounds to 10, clipped to 9 (upper excluded)
    assert _value(1, tune.randint(1, 10), factors=(0.5,)) == 1
    assert isinstance(_value(5, tune.randint(1, 10)), int)
    for seed in range(30):
        v = _value(50, tune.qrandint(0, 100, 10), factors=(1.3, 0.7, 2.5), seed=seed)
        assert isinstance(v, int) and v % 10 == 0 and 0 <= v <= 100
        q = _value(0.5, tune.quniform(0, 1, 0.1), seed=seed)
        assert q in (0.4, 0.6)


def test_choice_lists_move_to_a_neighbour_and_stay_in_the_list():
    choices = [1, 2, 4, 8, 16]
    for seed in range(40):
        v = _value(4, choices, seed=seed)
        assert v in (2, 8)
        assert _value(1, choices, seed=seed) == 2  # the only neighbour at an end
        assert _value(16, tune.choice(choices), seed=seed) == 8
        assert _value(3, choices, seed=seed) in choices  # not in the list: drawn from it


def test_resample_probability_one_always_resamples_zero_never():
    domain = tune.uniform(0, 1)
    perturbed = {round(_value(0.5, domain, p=0.0, seed=s), 12) for s in range(100)}
    assert perturbed == {0.6, 0.4}
    resampled = [_value(0.5, domain, p=1.0, seed=s) for s in range(100)]
    assert all(0 <= v < 1 and v not in (0.4, 0.6) for v in resampled)
    assert len(set(resampled)) == 100
    far = [_value(8, list(range(20)), p=1.0, seed=s) for s in range(100)]
    assert any(abs(v - 8) > 1 for v in far)
    assert all(abs(_value(8, list(range(20)), p=0.0, seed=s) - 8) == 1 for s in range(100))


def test_callables_resample_or_perturb_numbers():
    assert _value(3, lambda: 42, p=1.0) == 42
    assert _value(3, lambda rng: rng.randint(100, 200), p=1.0) in range(100, 201)
    assert _value(10, lambda: 42, p=0.0, factors=(1.2,)) == 12
    assert _value("adam", lambda: "sgd", p=0.0) == "sgd"  # not a number: nothing to multiply


def test_explore_follows_nested_keys_and_leaves_the_rest():
    config = {"opt": {"lr": 0.5, "momentum": 0.9}, "batch": 32, "name": "x"}
    mutations = ex.parse_mutations({"opt": {"lr": tune.uniform(0, 1)}, "batch": [16, 32, 64], "new": [7]})
    new = ex.explore(config, mutations, random.Random(0), 0.0, (1.2, 0.8))
    assert round(new["opt"]["lr"], 12) in (0.6, 0.4)
    assert new["opt"]["momentum"] == 0.9 and new["name"] == "x" and new["batch"] in (16, 64)
    assert new["new"] == 7  # a key the config lacks is drawn
    assert config == {"opt": {"lr": 0.5, "momentum": 0.9}, "batch": 32, "name": "x"}  # not mutated


def test_explored_values_stay_inside_their_domains():
    mutations = ex.parse_mutations({
        "f": tune.uniform(-1, 1), "l": tune.loguniform(1e-3, 1), "i": tune.randint(0, 5),
        "q": tune.qrandint(2, 20, 2), "c": tune.choice(["a", "b", "c"]), "lst": [0.1, 0.2]})
    rng = random.Random(1)
    config = {"f": 0.9, "l": 0.9, "i": 4, "q": 20, "c": "a", "lst": 0.2}
    for _ in range(300):
        config = ex.explore(config, mutations, rng, 0.3, (2.0, 0.5, 1.2))
        assert -1 <= config["f"] <= 1 and 1e-3 <= config["l"] <= 1
        assert isinstance(config["i"], int) and 0 <= config["i"] <= 4
        assert config["q"] % 2 == 0 and 2 <= config["q"] <= 20
        assert config["c"] in "abc" and config["lst"] in (0.1, 0.2)


# --- the scheduler ------------------------------------------------------------------------------------
def pbt(**kwargs):
    kwargs.setdefault("hyperparam_mutations", {"lr": [0.001, 0.01, 0.1, 1.0]})
    kwargs.setdefault("perturbation_interval", 2)
    s = PopulationBasedTraining(metric="score", mode="max", **kwargs)
    return s


def population(s, n, checkpoints=True):
    trials = []
    for i in range(n):
        t = trial(i)
        t.config = {"lr": 0.01, "i": i}
        t.checkpoint_path = f"/ckpt/{t.trial_id}" if checkpoints else None
        s.on_trial_add(t)
        trials.append(t)
    return trials


def report(s, t, it, score):
    t.last_result = {"training_iteration": it, "score": score}
    return TrialDecision.of(s.on_trial_result(t, t.last_result))


def test_decision_points_follow_interval_and_burn_in():
    s = pbt(perturbation_interval=4, burn_in_period=6)
    (t,) = population(s, 1)
    assert s.next_decision_point(t, 0) == 6
    assert report(s, t, 6, 1.0).action is Decision.CONTINUE  # alone: nobody to copy
    assert s.next_decision_point(t, 6) == 10
    assert s.next_decision_point(t, 11) == pytest.approx(11)  # past its point: decide at the next result
    s2 = pbt(perturbation_interval=4)
    (t2,) = population(s2, 1)
    assert s2.next_decision_point(t2, 0) == 4
    assert report(s2, t2, 3, 1.0).action is Decision.CONTINUE


def test_bottom_trial_copies_a_top_trial_and_says_why():
    s = pbt(seed=0)
    trials = population(s, 4)
    for t, score in zip(trials[1:], (5.0, 7.0, 9.0)):
        assert report(s, t, 2, score).action is Decision.CONTINUE
    d = report(s, trials[0], 2, 1.0)
    assert d.action is Decision.EXPLOIT and d.donor_id == "t003"
    assert d.config["i"] == 3 and d.config["lr"] in (0.001, 0.1)  # the donor's config, explored
    assert d.info["score"] == 1.0 and d.info["donor_score"] == 9.0 and d.info["at"] == 2
    assert d.info["old"] == {"lr": 0.01, "i": 0} and d.info["new"] == {"lr": d.config["lr"], "i": 3}
    assert "score=1 in the bottom 1 of 4" in d.reason and "cloned t003" in d.reason
    # the recipient keeps its own score (1.0) until its next decision point: t001 at 5.5 is not the bottom
    assert report(s, trials[1], 4, 5.5).action is Decision.CONTINUE


def test_a_fresh_clone_is_not_a_donor_on_its_donors_old_score():
    """Seen on Acrobot (stop 24): trials that had cloned the leader at iteration 3 still held the
    leader's -130 of iteration 3 when the best trial (-167) reached iteration 6, so it ranked last and
    copied a clone whose own model had fallen to -400. Now a clone keeps its own score until its next
    decision point, as in Ray Tune's PBT."""
    s = pbt(perturbation_interval=3, seed=0)
    leader, clone, best = population(s, 3)
    assert report(s, leader, 3, -130.0).action is Decision.CONTINUE
    assert report(s, clone, 3, -500.0).donor_id == leader.trial_id
    # the clone (t001) used to tie the leader at -130 and win the tie: the best trial then copied it
    assert report(s, best, 3, -173.0).action is Decision.CONTINUE


def test_min_mode_ranks_low_values_best():
    s = PopulationBasedTraining(metric="loss", mode="min", perturbation_interval=1, seed=0,
                                hyperparam_mutations={"lr": [0.1, 0.2]})
    trials = population(s, 2)
    trials[0].last_result = {"training_iteration": 1, "loss": 0.1}
    assert s.on_trial_result(trials[0], trials[0].last_result) is Decision.CONTINUE
    trials[1].last_result = {"training_iteration": 1, "loss": 3.0}
    d = s.on_trial_result(trials[1], trials[1].last_result)
    assert d.donor_id == "t000" and d.info["score"] == 3.0 and d.info["donor_score"] == 0.1


def test_trials_without_checkpoint_are_never_donors():
    for seed in range(20):
        s = pbt(seed=seed, quantile_fraction=0.5)
        trials = population(s, 6)
        trials[4].checkpoint_path = None
        for t, score in zip(trials[1:], (3.0, 4.0, 8.0, 9.0, 7.0)):
            report(s, t, 2, score)
        d = report(s, trials[0], 2, 0.0)
        assert d.donor_id in ("t003", "t005")
    s = pbt(seed=0)
    trials = population(s, 2, checkpoints=False)
    report(s, trials[1], 2, 9.0)
    assert report(s, trials[0], 2, 0.0).action is Decision.CONTINUE


def test_finished_trials_leave_the_population():
    s = pbt(seed=0)
    trials = population(s, 3)
    report(s, trials[2], 2, 9.0)
    s.on_trial_complete(trials[2], trials[2].last_result)
    report(s, trials[1], 2, 5.0)
    assert report(s, trials[0], 2, 1.0).donor_id == "t001"


def test_a_trial_yields_at_its_point_to_waiting_trials_and_exploits_when_it_restarts():
    s = pbt(seed=0)
    trials = population(s, 4)
    waiting = trials[3]
    waiting.status = TrialStatus.PENDING  # a trial waiting for a CPU
    assert s.wants_waiting_trial
    assert report(s, trials[1], 1, 5.0).action is Decision.CONTINUE  # not at its point: no yield
    top = report(s, trials[2], 2, 9.0)
    assert top.action is Decision.PAUSE and top.reason == "training_iteration=2: yields to 1 waiting trial(s)"
    trials[2].status = TrialStatus.PAUSED
    low = report(s, trials[0], 2, 1.0)  # the bottom: it will clone t002 when it restarts
    assert low.action is Decision.PAUSE and "yields to 2 waiting trial(s); then score=1 in the bottom" in low.reason
    trials[0].status = TrialStatus.PAUSED
    # the least advanced waiting trial runs next: the one that never ran, then by progress and order
    assert s.choose_trial_to_run([waiting, trials[0], trials[2]]) is waiting
    assert s.choose_trial_to_run([trials[0], trials[2]]) is trials[0]
    exploit = s.on_trial_resume(trials[0])
    assert exploit.action is Decision.EXPLOIT and exploit.donor_id == "t002" and exploit.config["i"] == 2
    assert s.on_trial_resume(trials[0]) is None and s.on_trial_resume(trials[2]) is None
    waiting.status = TrialStatus.TERMINATED
    s.on_trial_complete(waiting, None)
    trials[0].status = trials[2].status = TrialStatus.RUNNING
    assert report(s, trials[2], 4, 9.5).action is Decision.CONTINUE  # nobody waits now: no yield


def _sweep(seed, n=8, steps=6):
    s = pbt(seed=seed, resample_probability=0.5)
    trials = population(s, n)
    rng = random.Random(7)
    out = []
    for it in range(2, 2 * steps + 1, 2):
        for t in trials:
            d = report(s, t, it, rng.random() * t.config["lr"])
            if d.action is Decision.EXPLOIT:
                t.config = d.config
            out.append((t.trial_id, it, d.action.value, d.donor_id, json.dumps(d.config)))
    return out


def test_seeded_pbt_makes_the_same_decisions():
    assert _sweep(3) == _sweep(3)
    assert any(a[2] == "EXPLOIT" for a in _sweep(3))
    assert _sweep(3) != _sweep(4)


def test_custom_explore_fn_runs_after_explore():
    s = pbt(seed=0, custom_explore_fn=lambda c: {**c, "lr": min(c["lr"], 0.05), "extra": 1})
    trials = population(s, 2)
    report(s, trials[1], 2, 9.0)
    d = report(s, trials[0], 2, 0.0)
    assert d.config["extra"] == 1 and d.config["lr"] <= 0.05
    bad = pbt(seed=0, custom_explore_fn=lambda c: None)
    trials = population(bad, 2)
    report(bad, trials[1], 2, 9.0)
    with pytest.raises(TypeError, match="custom_explore_fn must return the new config dict, but returned None"):
        report(bad, trials[0], 2, 0.0)


def test_missing_metric_names_what_was_reported():
    s = pbt()
    (t,) = population(s, 1)
    with pytest.raises(ValueError, match=r"metric 'score' is not in the result; the trainable reported: "
                                         r"loss, training_iteration"):
        s.on_trial_result(t, {"training_iteration": 2, "loss": 1.0})


# --- synchronous generations --------------------------------------------------------------------------
def _pause(s, t, it, score):
    d = report(s, t, it, score)
    assert d.action is Decision.PAUSE and d.info == {"generation": s.state_dict()["generation"], "point": s.state_dict()["point"]}
    t.status = TrialStatus.PAUSED
    return d


def test_synch_nobody_is_exploited_until_the_whole_population_reached_the_point():
    s = pbt(synch=True, seed=0)
    trials = population(s, 4)
    assert report(s, trials[0], 1, 0.0).action is Decision.CONTINUE  # before the point
    assert [s.next_decision_point(t, 1) for t in trials] == [2, 2, 2, 2]
    for t, score in zip(trials[:3], (1.0, 5.0, 9.0)):
        _pause(s, t, 2, score)
        assert s.choose_trial_to_run([x for x in trials if x.status is TrialStatus.PAUSED]) is None
    # the last one paused, but its batch has not come back yet (still RUNNING): not complete
    assert report(s, trials[3], 2, 7.0).action is Decision.PAUSE
    assert s.choose_trial_to_run(trials[:3]) is None
    trials[3].status = TrialStatus.PAUSED
    order = []
    while (chosen := s.choose_trial_to_run([t for t in trials if t.status is TrialStatus.PAUSED])) is not None:
        order.append((chosen.trial_id, s.on_trial_resume(chosen)))
        chosen.status = TrialStatus.RUNNING
    assert [tid for tid, _ in order] == ["t000", "t001", "t002", "t003"]  # the recipient first
    recipient, exploit = order[0]
    assert exploit.action is Decision.EXPLOIT and exploit.donor_id == "t002"
    assert exploit.info["generation"] == 0 and exploit.info["score"] == 1.0 and exploit.info["donor_score"] == 9.0
    assert all(e is None for _, e in order[1:])
    assert [s.next_decision_point(t, 2) for t in trials] == [4, 4, 4, 4]


def test_synch_waits_for_pending_trials_and_ignores_finished_ones():
    s = pbt(synch=True, seed=0)
    trials = population(s, 3)
    trials[2].status = TrialStatus.PENDING
    _pause(s, trials[0], 2, 1.0)
    _pause(s, trials[1], 2, 5.0)
    assert s.choose_trial_to_run(trials) is trials[2]  # the pending trial starts; nobody resumes
    trials[2].status = TrialStatus.RUNNING
    report(s, trials[2], 1, 3.0)
    trials[2].status = TrialStatus.TERMINATED
    s.on_trial_complete(trials[2], trials[2].last_result)
    chosen = s.choose_trial_to_run(trials[:2])
    assert chosen is trials[0] and s.on_trial_resume(chosen).donor_id == "t001"


def test_synch_generation_survives_a_state_round_trip():
    s = pbt(synch=True, seed=5)
    trials = population(s, 4)
    for t, score in zip(trials, (1.0, 5.0, 9.0, 7.0)):
        _pause(s, t, 2, score)
    assert s.choose_trial_to_run(trials) is trials[0]
    state = json.loads(jsonutil.dumps(s.state_dict()))  # as state.json is written
    restored = pbt(synch=True, seed=99)
    restored.load_state_dict(state)
    expected = s.on_trial_resume(trials[0])
    assert restored.on_trial_resume(trials[0]) == expected
    assert [restored.choose_trial_to_run(trials) for _ in range(3)] == trials[1:]
    assert restored.next_decision_point(trials[0], 2) == 4


def test_state_round_trip_keeps_the_rng_and_nan_scores():
    s = pbt(seed=1)
    trials = population(s, 4)
    report(s, trials[3], 2, float("nan"))
    state = json.loads(jsonutil.dumps(s.state_dict()))  # as state.json is written
    assert state["version"] == 1 and state["trials"]["t003"]["score"] == -math.inf
    other = pbt(seed=2)
    other.load_state_dict(state)
    assert other.state_dict() == s.state_dict()

    def decisions(scheduler):  # explore draws from the scheduler's random stream
        out = []
        for step in (4, 6, 8):
            for i, t in enumerate(trials):
                d = report(scheduler, t, step, float((i + step) % 4))
                out.append((d.action, d.config, d.donor_id))
        return out

    made = decisions(other)
    assert made == decisions(s)  # the same stream: the same explores
    assert sum(action is Decision.EXPLOIT for action, _, _ in made) >= 2
    with pytest.raises(ValueError, match="state version 7 is not supported"):
        other.load_state_dict({**state, "version": 7})


def test_params_are_json_and_rebuild_the_scheduler():
    from tuner import components

    s = PopulationBasedTraining(perturbation_interval=3, seed=4, hyperparam_mutations={
        "lr": tune.loguniform(1e-4, 1e-1), "opt": {"m": tune.uniform(0.8, 0.99)}, "b": [16, 32]})
    record = json.loads(json.dumps(components.describe(s)))
    rebuilt = components.rebuild(record, "scheduler")
    assert components.describe(rebuilt) == components.describe(s)
    assert rebuilt.seed == 4 and rebuilt.perturbation_interval == 3


# --- validation ---------------------------------------------------------------------------------------
MUT = {"lr": [0.1, 0.2]}


@pytest.mark.parametrize("kwargs, match", [
    ({"perturbation_interval": 0}, r"The value of `perturbation_interval` is 0, but must be "
                                   r"`perturbation_interval > 0`"),
    ({"perturbation_interval": "5"}, r"The value of `perturbation_interval` is '5', but must be"),
    ({"burn_in_period": -1}, r"The value of `burn_in_period` is -1, but must be `burn_in_period >= 0`"),
    ({"quantile_fraction": 0.6}, r"The value of `quantile_fraction` is 0.6, but must be "
                                 r"`0 < quantile_fraction <= 0.5`"),
    ({"quantile_fraction": 0}, r"The value of `quantile_fraction` is 0, but must be"),
    ({"resample_probability": 1.5}, r"The value of `resample_probability` is 1.5, but must be "
                                    r"`0 <= resample_probability <= 1`"),
    ({"perturbation_factors": ()}, r"The value of `perturbation_factors` is \(\), but must be a non-empty sequence"),
    ({"perturbation_factors": (1.2, -1)}, r"The value of `perturbation_factors` is \(1.2, -1\), but must be"),
    ({"custom_explore_fn": 3}, r"The value of `custom_explore_fn` is 3, but must be callable or None"),
    ({"synch": "yes"}, r"The value of `synch` is 'yes', but must be True or False"),
    ({"seed": 1.5}, r"The value of `seed` is 1.5, but must be an integer or None"),
    ({"mode": "up"}, r"The value of `mode` is 'up', but must be one of \('min', 'max'\)"),
    ({"hyperparam_mutations": {}}, r"The value of `hyperparam_mutations` is \{\}, but must name at least one "
                                   r"hyperparameter when `custom_explore_fn` is None"),
    ({"hyperparam_mutations": None}, r"The value of `hyperparam_mutations` is None, but must name at least one"),
    ({"hyperparam_mutations": [1, 2]}, r"The value of `hyperparam_mutations` is \[1, 2\], but must be a dict"),
    ({"hyperparam_mutations": {"lr": []}}, r"The value of `hyperparam_mutations\['lr'\]` is \[\], but must be a "
                                           r"non-empty list"),
    ({"hyperparam_mutations": {"lr": 0.1}}, r"The value of `hyperparam_mutations\['lr'\]` is 0.1, but must be a "
                                            r"list of choices, a tune.\* domain, a callable"),
    ({"hyperparam_mutations": {"opt": {"lr": "fast"}}}, r"The value of `hyperparam_mutations\['opt'\]\['lr'\]` is "
                                                       r"'fast', but must be"),
    ({"hyperparam_mutations": {"opt": {}}}, r"The value of `hyperparam_mutations\['opt'\]` is \{\}, but must be a "
                                            r"non-empty dict"),
])
def test_arguments_are_checked(kwargs, match):
    kwargs = {"hyperparam_mutations": MUT, **kwargs}
    with pytest.raises(ValueError, match=match):
        PopulationBasedTraining(**kwargs)


def test_custom_explore_fn_alone_is_enough():
    s = PopulationBasedTraining(custom_explore_fn=lambda c: c)
    assert s.hyperparam_mutations is None


def test_needs_metric_and_mode():
    with pytest.raises(ValueError, match=r"PopulationBasedTraining needs a `metric` and a `mode`"):
        PopulationBasedTraining(hyperparam_mutations=MUT).on_trial_add(trial(0))


# --- replay ---------------------------------------------------------------------------------------------
def _journal(tmp_path, records):
    writer = journal.JournalWriter(str(tmp_path))
    writer.write_many(records)
    writer.close()
    return str(tmp_path)


def _added(tid, inc):
    return journal.TrialAdded(tid, {"inc": inc})


def _exploit(tid, donor, iteration, donor_iteration, old, new):
    # the donor checkpoint's directory name says nothing: its iteration comes from the record
    return journal.ConfigChanged(tid, {"inc": new}, iteration=iteration, donor_id=donor, old_config={"inc": old},
                                 donor_checkpoint=f"/x/trials/{donor}/checkpoints/latest",
                                 donor_iteration=donor_iteration)


def test_ancestry_follows_donors_back_in_time():
    lineage = [{"trial_id": "b", "donor_id": "a"}, {"trial_id": "c", "donor_id": "b"},
               {"trial_id": "a", "donor_id": "d"}, {"trial_id": "b", "donor_id": "c"}]
    assert ancestry(lineage, "b") == [lineage[0], lineage[1], lineage[3]]
    assert ancestry(lineage, "a") == [lineage[2]]
    assert ancestry(lineage, "d") == []


def test_replay_follows_donors_back_through_the_lineage(tmp_path):
    path = _journal(tmp_path, [
        _added("a", 1), _added("b", 2), _added("c", 3),
        _exploit("b", "a", 4, 4, 2, 10),     # b: a's 1..4, then 10 from 5
        _exploit("c", "b", 8, 8, 3, 20),     # c: b's schedule up to 8, then 20 from 9
        _exploit("b", "c", 12, 12, 10, 30),  # b again: c's schedule up to 12, then 30
    ])
    assert replay(path, "a") == [(1, {"inc": 1})]
    assert replay(path, "c") == [(1, {"inc": 1}), (5, {"inc": 10}), (9, {"inc": 20})]
    schedule = replay(path, "b")
    assert schedule == [(1, {"inc": 1}), (5, {"inc": 10}), (9, {"inc": 20}), (13, {"inc": 30})]
    assert [config_at(schedule, i)["inc"] for i in (1, 4, 5, 8, 9, 12, 13, 99)] == [1, 1, 10, 10, 20, 20, 30, 30]


def test_replay_counts_the_steps_of_a_donor_checkpoint_from_another_iteration(tmp_path):
    # b (at its iteration 6) copies a's checkpoint from a's iteration 4: b's state went through
    # 4 steps of a, then its own iterations 7, 8... are steps 5, 6...; c then copies b at b's 9 (step 7)
    path = _journal(tmp_path, [_added("a", 1), _added("b", 2), _added("c", 3),
                               _exploit("b", "a", 6, 4, 2, 10), _exploit("c", "b", 9, 9, 3, 20)])
    assert replay(path, "b") == [(1, {"inc": 1}), (5, {"inc": 10})]
    assert replay(path, "c") == [(1, {"inc": 1}), (5, {"inc": 10}), (8, {"inc": 20})]


def test_replay_errors_name_the_fix(tmp_path):
    path = _journal(tmp_path, [_added("a", 1)])
    with pytest.raises(ValueError, match=r"The value of `trial_id` is 'zz', but must be a trial of .*: a"):
        replay(path, "zz")
    with pytest.raises(FileNotFoundError, match="is not an experiment directory"):
        replay(str(tmp_path / "nope"), "a")
    with pytest.raises(ValueError, match=r"The value of `schedule` is \[\]"):
        config_at([], 1)


# --- through the run loop, in process (no Ray) ----------------------------------------------------------
def test_synch_pbt_through_the_run_loop_replaces_configs_and_replays(storage):
    from tests.fakes import InProcessExecutor
    from tests.integration.trainables import pbt_counter

    scheduler = PopulationBasedTraining(perturbation_interval=3, synch=True, seed=0, quantile_fraction=0.5,
                                        hyperparam_mutations={"inc": [1, 2, 5, 10, 20]})
    results = tune.run(pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20])}, metric="count", mode="max",
                       scheduler=scheduler, stop={"training_iteration": 12}, storage_path=storage, verbose=0,
                       _executor=InProcessExecutor())
    lineage = results.pbt_lineage()
    assert len(lineage) >= 2 and {e["generation"] for e in lineage} <= {0, 1, 2}  # points 3, 6, 9 (12 stops)
    for t in results.trials:
        assert [r["training_iteration"] for r in t.history] == list(range(1, 13))
        last = [e for e in lineage if e["trial_id"] == t.trial_id]
        if last:
            assert t.config == last[-1]["config"]  # the run loop's trial holds the explored config
            assert t.last_result["inc"] == t.config["inc"]
        schedule = replay(results.experiment_path, t.trial_id)
        assert config_at(schedule, 12) == t.config
        assert sum(config_at(schedule, i)["inc"] for i in range(1, 13)) == t.last_result["count"]
    loaded = tune.load(results.experiment_path)
    assert [t.config for t in loaded.trials] == [t.config for t in results.trials]
    # the donor's state copied at an exploit goes beside the recipient's own checkpoint of that iteration
    # (never over it: a crash midway would lose both); listed the same when read back
    assert [t.checkpoints for t in loaded.trials] == [t.checkpoints for t in results.trials]
    assert all(len(t.checkpoints) == 12 + sum(e["trial_id"] == t.trial_id for e in lineage) for t in loaded.trials)
    # what tune.resume reads: the scheduler rebuilt from experiment.json, its state from state.json
    from tuner import components
    from tuner.storage import jsonio as jsonutil

    spec = jsonutil.read(f"{results.experiment_path}/experiment.json")
    rebuilt = components.rebuild(spec["scheduler"], "scheduler")
    rebuilt.set_search_properties("count", "max")
    rebuilt.load_state_dict(jsonutil.read(f"{results.experiment_path}/state.json")["scheduler"])
    assert rebuilt.state_dict() == json.loads(json.dumps(scheduler.state_dict()))
    assert components.describe(rebuilt) == components.describe(scheduler) and rebuilt.synch


def test_an_in_place_exploit_does_not_wait_for_the_trainable_to_end(tmp_path, monkeypatch):
    """Regression: the worker joined the trainable's thread after "exploit" as after "stop", so every
    class trainable exploited in place stalled the trial until the join timed out."""
    from tests.integration.trainables import PBTCounter
    from tuner.storage import checkpoint as ckpt_lib
    from tuner.runtime.messages import Command, LaunchSpec
    from tuner.runtime.messages import SessionState as S
    from tuner.runtime.worker import TrialWorker

    worker = TrialWorker(chdir=False)
    spec = LaunchSpec("t", str(tmp_path), str(tmp_path), seed=0, config={"inc": 1}, next_point=3, checkpoint_freq=1)
    results, batch = [], worker.start(spec, PBTCounter, None)
    while True:
        results += [r for r, _ in batch.results]
        if batch.state is S.WAITING:
            break
        batch = worker.poll("t")
    joins = []
    thread = next(t for t in threading.enumerate() if t.name == "trial-t")  # the trainable's thread
    real_join = thread.join
    monkeypatch.setattr(thread, "join", lambda timeout=None: (joins.append(timeout), real_join(timeout)))
    donor = ckpt_lib.save({"count": 100}, str(tmp_path / "donor"))
    batch = worker.decide("t", Command.EXPLOIT, 5, ({"inc": 10}, donor))
    while batch.state is not S.WAITING:
        results += [r for r, _ in batch.results]
        batch = worker.poll("t")
    results += [r for r, _ in batch.results]
    assert joins == []
    assert [(r["training_iteration"], r["count"], r["resets"]) for r in results] == [
        (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 110, 1), (5, 120, 1)]
    assert worker.decide("t", Command.STOP, None).state is S.DONE and len(joins) == 1
