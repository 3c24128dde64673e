"""Searchers inside the real run loop (tune.run with the in-process executor: threads, no Ray)."""

from __future__ import annotations

import time

import tuner as tune
from searchers import BasicVariantGenerator, ConcurrencyLimiter, HyperOptSearch, OptunaSearch, Repeater
from tests.fakes import InProcessExecutor

SPACE = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 3)}


def train(config):
    time.sleep(0.02)  # long enough for trials to overlap when the executor has room
    tune.report({"loss": (config["x"] - 0.3) ** 2 + config["k"]})


def test_limiter_caps_running_trials_in_the_run_loop(storage):
    executor = InProcessExecutor(slots=4)
    results = tune.run(train, config=SPACE, num_samples=10, metric="loss", mode="min", storage_path=storage,
                       verbose=0, search_alg=ConcurrencyLimiter(BasicVariantGenerator(seed=0), max_concurrent=2),
                       _executor=executor)
    assert len(results.trials) == 10 and executor.max_running == 2  # 4 without the limiter


def test_seeded_sweeps_repeat_their_configs_through_tune_run(storage):
    def configs(make):
        results = tune.run(train, config=SPACE, num_samples=6, metric="loss", mode="min", storage_path=storage,
                           verbose=0, seed=7, search_alg=make(), _executor=InProcessExecutor(slots=1))
        return [t.config for t in results.trials]

    for make in (BasicVariantGenerator, OptunaSearch, lambda: HyperOptSearch(n_initial_points=3),
                 lambda: Repeater(OptunaSearch(), repeat=2)):
        first = configs(make)
        assert len(first) == 6 and first == configs(make)
