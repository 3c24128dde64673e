"""A user-written searcher in about 30 lines works with the tuner's space and wrappers."""

from __future__ import annotations

from collections import deque

import numpy as np

import tuner as tune
from searchers import FINISHED, ConcurrencyLimiter, Searcher
from tests.searchers.helpers import drive, finish, json_round_trip


class HillClimber(Searcher):
    """Random start, then Gaussian steps around the best config so far (floats only)."""

    def __init__(self, step: float = 0.1, budget: int = 50, seed: int | None = None, metric=None, mode=None):
        super().__init__(metric, mode)
        self.step, self.budget, self.seed = step, budget, seed
        self._rng = np.random.default_rng(seed)
        self._best: tuple[float, dict] | None = None
        self._asked: dict[str, dict] = {}
        self._count = 0

    def suggest(self, trial_id):
        if self._count >= self.budget:
            return FINISHED
        self._count += 1
        if self._best is None:
            config = tune.space.resolve(self.space, self._rng)
        else:
            config = {k: float(np.clip(v + self._rng.normal(0, self.step), self.space[k].lower, self.space[k].upper))
                      for k, v in self._best[1].items()}
        self._asked[trial_id] = config
        return config

    def on_trial_complete(self, trial_id, result=None, error=False):
        config = self._asked.pop(trial_id)
        if not error and result and self.metric in result:
            score = result[self.metric] if self.mode == "min" else -result[self.metric]
            if self._best is None or score < self._best[0]:
                self._best = (score, config)

    def state_dict(self):
        return {"version": 1, "count": self._count, "best": self._best, "asked": self._asked,
                "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        self._count, self._best = state["count"], state["best"] and tuple(state["best"])
        self._asked = state["asked"]
        self._rng.bit_generator.state = state["rng"]


SPACE = {"x": tune.uniform(-5.0, 5.0), "y": tune.uniform(-5.0, 5.0)}


def sphere(config):
    return (config["x"] - 1) ** 2 + (config["y"] + 2) ** 2


def test_custom_searcher_improves_and_finishes():
    searcher = HillClimber(step=0.5, budget=40, seed=0)
    searcher.set_search_properties("loss", "min", SPACE, num_samples=40)
    configs = drive(searcher, 100, objective=sphere)
    assert len(configs) == 40 and searcher.suggest("more") is FINISHED
    best = min(sphere(c) for c in configs)
    assert best < sphere(configs[0]) and best < 0.2


def test_custom_searcher_works_inside_the_limiter_and_resumes_from_its_state():
    def build():
        limited = ConcurrencyLimiter(HillClimber(seed=1), max_concurrent=2)
        limited.set_search_properties("loss", "min", SPACE, num_samples=50)
        return limited

    limited, live = build(), deque()
    drive(limited, 10, objective=sphere, max_live=3, live=live)
    assert len(live) == 2 and limited.suggest("x1") is None  # two live: the limit
    state = json_round_trip(limited.state_dict())
    assert state["searcher"]["count"] == 10 and state["live"] == ["t008", "t009"]
    rebuilt = build()
    rebuilt.load_state_dict(state)
    live_again = deque(live)
    finish(limited, live, objective=sphere)
    finish(rebuilt, live_again, objective=sphere)
    assert drive(rebuilt, 5, objective=sphere, start=20) == drive(limited, 5, objective=sphere, start=20)
