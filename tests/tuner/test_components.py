"""The resume contract of every scheduler and searcher, wrappers included: described
from its constructor, written as JSON, rebuilt through the one function, then its state
round-trips; arguments JSON cannot hold are flagged by name; versions are checked."""

from __future__ import annotations

import json

import optuna
import pytest

import tuner as tune
from schedulers import (PB2, ASHAScheduler, AsyncHyperBandScheduler, FIFOScheduler, HyperBandScheduler,
                        MedianStoppingRule, PopulationBasedTraining)
from schedulers.searcher_pruning import SearcherPruningScheduler
from searchers import BasicVariantGenerator, ConcurrencyLimiter, HyperOptSearch, OptunaSearch, Repeater
from tests.schedulers.fakes import result, trial
from tuner import components
from tuner.storage import jsonio

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
SPACE = {"x": tune.uniform(-2.0, 2.0), "c": tune.choice(["a", "b"])}

SEARCHERS = {
    "basic": lambda: BasicVariantGenerator(seed=1),
    "optuna": lambda: OptunaSearch(seed=1),
    "optuna-pruner": lambda: OptunaSearch(seed=1, use_pruner=True),
    "hyperopt": lambda: HyperOptSearch(seed=1, n_initial_points=2),
    "limited-optuna": lambda: ConcurrencyLimiter(OptunaSearch(seed=1), max_concurrent=2),
    "repeated-optuna": lambda: Repeater(OptunaSearch(seed=1), repeat=2),
    "limited-repeated-basic": lambda: ConcurrencyLimiter(Repeater(BasicVariantGenerator(seed=2), repeat=2), 3),
}
SCHEDULERS = {
    "fifo": lambda s: FIFOScheduler(),
    "asha": lambda s: ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3, seed=1),
    "async-hyperband": lambda s: AsyncHyperBandScheduler(max_t=9, seed=1),
    "hyperband": lambda s: HyperBandScheduler(max_t=9, reduction_factor=3),
    "median": lambda s: MedianStoppingRule(grace_period=1, min_samples_required=1),
    "pbt": lambda s: PopulationBasedTraining(perturbation_interval=2, seed=1,
                                             hyperparam_mutations={"x": tune.uniform(-2, 2), "c": ["a", "b"]}),
    "pb2": lambda s: PB2(perturbation_interval=2, hyperparam_bounds={"x": [-2.0, 2.0]}, seed=1),
    "searcher-pruning": lambda s: SearcherPruningScheduler(s),
}


def _as_written(record):
    return json.loads(jsonio.dumps(record))  # what experiment.json holds


def _exercised_searcher(searcher):
    searcher.set_search_properties("loss", "min", SPACE, num_samples=8)
    for i in range(3):
        searcher.suggest(f"trial_{i:05d}")
    searcher.on_trial_complete("trial_00000", {"loss": 1.0, "training_iteration": 1})
    return searcher


@pytest.mark.parametrize("name", SEARCHERS)
def test_every_searcher_rebuilds_from_json_and_takes_its_state_back(name):
    original = _exercised_searcher(SEARCHERS[name]())
    record = _as_written(components.describe(original))
    assert components.not_rebuildable(record, "search_alg") == []
    rebuilt = components.rebuild(record, "search_alg")
    assert type(rebuilt) is type(original) and components.describe(rebuilt) == record
    rebuilt.set_search_properties("loss", "min", SPACE, num_samples=8)
    state = _as_written(original.state_dict())
    rebuilt.load_state_dict(state)
    # Optuna and Hyperopt restore lazily, at the next suggest: the rebuilt one goes on as the original
    for trial_id in ("trial_00003", "trial_00004", "trial_00005"):
        assert rebuilt.suggest(trial_id) == original.suggest(trial_id)
    with pytest.raises(ValueError, match=rf"{type(rebuilt).__name__} state version 99 is not supported"):
        rebuilt.load_state_dict({**state, "version": 99})


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_rebuilds_from_json_and_takes_its_state_back(name):
    searcher = OptunaSearch(seed=1, use_pruner=True)
    original = SCHEDULERS[name](searcher)
    original.set_search_properties("loss", "min")
    trials = [trial(i) for i in range(3)]
    for t in trials:
        t.config = {"x": 0.5, "c": "a"}
        original.on_trial_add(t)
    record = _as_written(components.describe(original, searcher))
    assert components.not_rebuildable(record, "scheduler") == []
    rebuilt = components.rebuild(record, "scheduler", searcher)
    assert type(rebuilt) is type(original) and components.describe(rebuilt, searcher) == record
    rebuilt.set_search_properties("loss", "min")
    state = _as_written(original.state_dict())
    rebuilt.load_state_dict(state)
    assert _as_written(rebuilt.state_dict()) == state
    with pytest.raises(ValueError, match=rf"{type(rebuilt).__name__} state version 99 is not supported"):
        rebuilt.load_state_dict({**state, "version": 99})


def test_a_scheduler_holding_the_sweeps_searcher_gets_the_rebuilt_one_back():
    searcher = OptunaSearch(seed=1, use_pruner=True)
    record = _as_written(components.describe(SearcherPruningScheduler(searcher), searcher))
    assert record["params"]["searcher"] == {"__search_alg__": True}
    again = OptunaSearch(seed=1, use_pruner=True)
    assert components.rebuild(record, "scheduler", again).get_params()["searcher"] is again


@pytest.mark.parametrize("make, where, arg", [
    (lambda: OptunaSearch(sampler=optuna.samplers.RandomSampler(seed=0)), "search_alg", "search_alg.sampler"),
    (lambda: ConcurrencyLimiter(OptunaSearch(sampler=optuna.samplers.TPESampler(seed=0)), 2),
     "search_alg", "search_alg.searcher.sampler"),
    (lambda: PopulationBasedTraining(custom_explore_fn=lambda c: c), "scheduler", "scheduler.custom_explore_fn"),
])
def test_arguments_json_cannot_hold_are_flagged_and_asked_for_by_name(make, where, arg):
    record = _as_written(components.describe(make()))
    assert components.not_rebuildable(record, where) == [arg]
    with pytest.raises(components.NotRebuildableError,
                       match=rf"tune.resume cannot rebuild {arg} from experiment.json: it was <.*>, which JSON does "
                             rf"not hold. Pass the {where} again with it: tune.resume\(path, {where}=...\)"):
        components.rebuild(record, where)


def test_a_recorded_argument_the_constructor_does_not_take_is_an_error_not_dropped():
    record = _as_written(components.describe(ASHAScheduler(max_t=9)))
    record["params"]["max_tt"] = 3
    with pytest.raises(ValueError, match=r"experiment.json records scheduler argument 'max_tt', which ASHAScheduler "
                                         r"does not take \(it takes time_attr, metric, .*\); pass the scheduler again"):
        components.rebuild(record, "scheduler")
