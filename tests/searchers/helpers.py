"""Drives searchers without Ray: suggest, fake a result, complete."""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any, Callable

from searchers import FINISHED, Searcher


def quadratic(config: dict[str, Any]) -> float:
    """A smooth objective over the shared test space (minimum near x=0.3, y=0.01)."""
    value = (config.get("x", 0.0) - 0.3) ** 2 + abs(math.log10(config.get("y", 0.01)) + 2)
    return value + 0.1 * config.get("k", 0) + (0.0 if config.get("c", "a") == "a" else 0.5)


def drive(searcher: Searcher, n: int, objective: Callable[[dict[str, Any]], float] = quadratic,
          metric: str = "loss", max_live: int = 1, prefix: str = "t", start: int = 0,
          live: deque | None = None) -> list[dict[str, Any]]:
    """Asks for ``n`` configs, keeping up to ``max_live`` trials open; the oldest
    live trial completes first. Returns the configs in order. Trials still live
    at the end stay in ``live`` (when given) instead of being completed."""
    configs: list[dict[str, Any]] = []
    live = deque() if live is None else live
    index = start
    while len(configs) < n:
        trial_id = f"{prefix}{index:03d}"
        config = searcher.suggest(trial_id) if len(live) < max_live else None
        if config is FINISHED:
            break
        if config is None:
            if not live:
                raise AssertionError("searcher returned None while no trial was live")
            done_id, done_config = live.popleft()
            searcher.on_trial_complete(done_id, {metric: objective(done_config), "training_iteration": 1})
            continue
        index += 1
        configs.append(config)
        live.append((trial_id, config))
    return configs


def finish(searcher: Searcher, live: deque, objective: Callable = quadratic, metric: str = "loss") -> None:
    while live:
        trial_id, config = live.popleft()
        searcher.on_trial_complete(trial_id, {metric: objective(config)})


def json_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """What ``state_dict`` becomes after a trip through experiment storage."""
    return json.loads(json.dumps(state))
