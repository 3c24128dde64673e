"""Searchers through tune.run on the shared local Ray: limits, pruning, multi-objective."""

from __future__ import annotations

import pytest

import tuner as tune
from schedulers.searcher_pruning import SearcherPruningScheduler
from searchers import ConcurrencyLimiter, OptunaSearch
from tests.integration import trainables as tr

pytestmark = pytest.mark.usefixtures("ray_local")


def _max_overlap(results):
    spans = [(t.history[0]["timestamp"] - t.history[0]["time_total_s"], t.history[-1]["timestamp"])
             for t in results.trials]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


def test_concurrency_limiter_never_exceeds_its_limit(storage):
    search = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=1)
    results = tune.run(tr.slow_quadratic, config={"x": tune.uniform(0, 6), "steps": 5}, num_samples=4,
                       metric="loss", mode="min", search_alg=search, storage_path=storage, verbose=0)
    assert len(results.trials) == 4
    assert _max_overlap(results) == 1


def test_optuna_pruner_stops_trials(storage):
    search = OptunaSearch(seed=0, use_pruner=True)
    results = tune.run(tr.slow_quadratic, config={"x": tune.uniform(-20, 20), "steps": 10}, num_samples=12,
                       metric="loss", mode="min", search_alg=search, scheduler=SearcherPruningScheduler(search),
                       storage_path=storage, verbose=0, max_concurrent_trials=1)
    pruned = [t for t in results.trials if t.stop_reason and t.stop_reason.startswith("pruned by OptunaSearch")]
    assert pruned, "the median pruner stopped no trial"
    assert all(len(t.history) < 10 for t in pruned)


def test_multi_objective_pareto_front(storage):
    results = tune.run(tr.two_objectives, config={"size": tune.grid_search([1, 2, 3]), "waste": tune.grid_search([0, 5])},
                       metric=["acc", "latency"], mode=["max", "min"], storage_path=storage, verbose=0)
    front = sorted((t.config["size"], t.config["waste"]) for t in results.pareto_front())
    assert front == [(1, 0), (2, 0), (3, 0)]
    search = OptunaSearch(seed=0)
    results = tune.run(tr.two_objectives, config={"size": tune.randint(1, 10), "waste": tune.choice([0, 5])},
                       metric=["acc", "latency"], mode=["max", "min"], search_alg=search, num_samples=8,
                       storage_path=storage, verbose=0)
    front = results.pareto_front()
    sizes_without_waste = {t.config["size"] for t in results.trials if t.config["waste"] == 0}
    assert front
    # a wasteful trial is on the front only where no trial of its size wastes nothing
    assert all(t.config["size"] not in sizes_without_waste for t in front if t.config["waste"] == 5)
