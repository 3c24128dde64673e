"""Checks and small helpers shared by the built-in searchers."""

from __future__ import annotations

import math
import random
from typing import Any

from searchers.base import Searcher
from tuner.space import config as sp
from tuner.validation import BadValueError, check_mode
def check_points(points: Any) -> list[dict[str, Any]]:
    """``points_to_evaluate`` as a list of dicts (a copy)."""
    if points is None:
        return []
    if not isinstance(points, (list, tuple)) or not all(isinstance(p, dict) for p in points):
        raise BadValueError("points_to_evaluate", points, "a list of dicts "
                            "(one partial or full config each)")
    return [dict(p) for p in points]


def check_metric_mode(metric: Any, mode: Any) -> None:
    """Single metric with "min"/"max", or equal-length lists of them (multi-objective)."""
    for m in mode if isinstance(mode, (list, tuple)) else [mode]:
        check_mode(m)
    if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
        n_metric = len(metric) if isinstance(metric, (list, tuple)) else 1
        n_mode = len(mode) if isinstance(mode, (list, tuple)) else 1
        if metric is not None and mode is not None and n_metric != n_mode:
            raise ValueError(f"The value of `mode` is {mode!r}, but must name one mode per metric "
                             f"({n_metric} metrics: {metric!r}).")


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def require_metric_mode(searcher: Any) -> None:
    """Raises the error that tells the fix when metric or mode was never given."""
    if searcher.metric is None or searcher.mode is None:
        name = type(searcher).__name__
        raise ValueError(f"{name} was not given a `metric` and `mode`. Either pass them when building the "
                         f"{name}, or pass them to tune.run(metric=..., mode=...).")


def require_space(searcher: Any) -> None:
    """Raises the error that tells the fix when no search space was given."""
    if searcher.space is None:
        raise ValueError(f"{type(searcher).__name__} has no search space: pass `space=` or tune.run(config=...).")


def objective(result: dict[str, Any] | None, metric: str) -> float | None:
    """The finite value of ``metric`` in ``result`` (nested keys as ``a/b``), None when absent."""
    if not result:
        return None
    found, value = (True, result[metric]) if metric in result else sp.lookup(result, tuple(str(metric).split("/")))
    if not found or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def resolve_seed(own: int | None, spec: dict[str, Any]) -> int:
    """The searcher's own seed, else ``tune.run``'s, else a fresh random one (stored in state for resume)."""
    if own is not None:
        return own
    if spec.get("seed") is not None:
        return int(spec["seed"])
    return random.SystemRandom().randrange(2**31)


def adopt_space(searcher: Any, metric: Any, mode: Any, config: dict[str, Any] | None, spec: dict[str, Any]) -> None:
    """``set_search_properties`` for adapters that may hold their own space.

    When the adapter was built with ``space=`` and ``tune.run``'s config holds
    only constants, the constants are kept (``searcher._constants``) and merged
    into every suggested config instead of being an error.
    """
    own = searcher.space
    given_has_domains = bool(config) and sp.has_domains(config)
    if own is not None and config and not given_has_domains:
        searcher._constants = config
        config = None
    Searcher.set_search_properties(searcher, metric, mode, config, **spec)
    check_metric_mode(searcher.metric, searcher.mode)


def point_values(point: dict[str, Any], params: list[Any], index: int) -> dict[str, Any]:
    """The backend values a (partial) ``points_to_evaluate`` entry fixes, by
    parameter name; a key that is no parameter of the space is an error.

    ``params`` have ``path``, ``name`` and ``encode`` (config value -> backend value).
    """
    paths = {p.path for p in params}
    for leaf in _leaf_paths(point, ()):
        if not any(leaf[:n] in paths for n in range(1, len(leaf) + 1)):
            names = ", ".join(p.name for p in params)
            raise ValueError(f"The value of `points_to_evaluate[{index}]` sets `{sp.path_name(leaf)}`, but must set "
                             f"only parameters of the space ({names}).")
    out = {}
    for p in params:
        found, value = sp.lookup(point, p.path)
        if found:
            out[p.name] = p.encode(value)
    return out


def _leaf_paths(node: Any, path: tuple) -> list[tuple]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaf_paths(v, path + (k,))]
    return [path]
