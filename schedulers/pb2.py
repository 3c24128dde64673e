"""PB2: Population Based Bandits (Parker-Holder et al. 2020)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from schedulers import _pbt_gp as gp
from schedulers.pbt import PopulationBasedTraining
from tuner.space.domains import Float
from tuner.space.config import assign, lookup
from tuner.validation import is_finite_number

MAX_ROWS = 256  # the GP sees the latest rows only: O(n^3) stays small
NUM_CANDIDATES = 256
KAPPA = 2.0


class PB2(PopulationBasedTraining):
    """PBT whose explore step is a GP bandit instead of random perturbations.

    Every time a trial reaches a perturbation point, the change of its score per
    unit of ``time_attr`` since its previous point is recorded with the time and
    its config (scaled to the unit box). When a bottom-quantile trial copies a
    donor, a Gaussian process (RBF kernel over time and the hyperparameters,
    length-scale fitted by marginal likelihood) is fitted to that data from all
    trials, and the new values of the ``hyperparam_bounds`` keys are the
    candidate with the highest upper confidence bound among random candidates
    drawn with the seeded RNG, at the current time. The donor's other keys are
    kept. With fewer than two data points the values are drawn uniformly.

    Args:
        hyperparam_bounds: ``{"lr": [1e-4, 1e-1], ...}`` (nested dicts for nested
            keys): continuous ``[lower, upper]`` with ``lower < upper``.
        The others: see ``PopulationBasedTraining``.

    Example::

        pb2 = PB2(perturbation_interval=4, hyperparam_bounds={"lr": [1e-4, 1e-1]}, seed=0)
        tune.run(train, config={"lr": tune.loguniform(1e-4, 1e-1)}, num_samples=8, metric="acc",
                 mode="max", scheduler=pb2, stop={"training_iteration": 40})
    """

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 perturbation_interval: float = 60.0, burn_in_period: float = 0.0,
                 hyperparam_bounds: dict[str, Any] | None = None, quantile_fraction: float = 0.25,
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 synch: bool = False, seed: int | None = None) -> None:
        self._bounds = _parse_bounds(hyperparam_bounds)
        mutations: dict[str, Any] = {}
        for path, (low, high) in self._bounds:
            assign(mutations, path, Float(low, high))
        super().__init__(time_attr, metric, mode, perturbation_interval, burn_in_period, mutations,
                         quantile_fraction, 0.0, (1.0,), custom_explore_fn, synch, seed)
        self.hyperparam_bounds = hyperparam_bounds
        self._rows: list[list[float]] = []  # [time, x_1..x_d (unit box), score change per unit of time]
        self._prev: dict[str, list[float]] = {}  # id -> [time, score, x_1..x_d] at its latest point

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        for key in ("hyperparam_mutations", "resample_probability", "perturbation_factors"):
            params.pop(key, None)
        return params

    def _unit(self, config: dict[str, Any]) -> list[float] | None:
        """The config's bounded values scaled to [0, 1], or None when one is missing or not a number."""
        out = []
        for path, (low, high) in self._bounds:
            _, value = lookup(config, path)
            if not is_finite_number(value):
                return None
            out.append((float(value) - low) / (high - low))
        return out

    def _observe(self, trial_id: str, t: float, score: float, config: dict[str, Any]) -> None:
        x = self._unit(config)
        prev = self._prev.get(trial_id)
        if x is None or not math.isfinite(score):
            self._prev.pop(trial_id, None)
            return
        if prev is not None and prev[2:] == x and t > prev[0] and math.isfinite(prev[1]):
            self._rows.append([float(t), *x, (score - prev[1]) / (t - prev[0])])
            del self._rows[:-MAX_ROWS]
        self._prev[trial_id] = [float(t), score, *x]

    def _after_exploit(self, trial_id: str, t: float, donor_score: float, new_config: dict[str, Any]) -> None:
        x = self._unit(new_config)
        if x is None or not math.isfinite(donor_score):
            self._prev.pop(trial_id, None)
        else:
            self._prev[trial_id] = [float(t), donor_score, *x]

    def _explore_config(self, donor_config: dict[str, Any], t: float) -> dict[str, Any]:
        values = self._select(float(t))
        new = copy.deepcopy(donor_config)
        for (path, (low, high)), u in zip(self._bounds, values):
            assign(new, path, float(min(max(low + u * (high - low), low), high)))
        return new

    def _select(self, t: float) -> list[float]:
        """The next point of the unit box: GP-UCB at time ``t`` over seeded random candidates."""
        d = len(self._bounds)
        candidates = np.array([[self._rng.random() for _ in range(d)] for _ in range(NUM_CANDIDATES)])
        if len(self._rows) < 2:
            return candidates[0].tolist()
        data = np.array(self._rows)
        times, y = data[:, 0], data[:, -1]
        t_low, t_span = times.min(), max(times.max(), t) - times.min()
        scale = (lambda v: (v - t_low) / t_span) if t_span > 0 else (lambda v: v * 0.0)
        x = np.column_stack([scale(times), data[:, 1:-1]])
        queries = np.column_stack([np.full(NUM_CANDIDATES, scale(t)), candidates])
        return candidates[gp.ucb_argmax(x, y, queries, KAPPA)].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rows": [list(r) for r in self._rows],
                "prev": {k: list(v) for k, v in self._prev.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._rows = [list(r) for r in state.get("rows", [])]
        self._prev = {k: list(v) for k, v in state.get("prev", {}).items()}


def _parse_bounds(bounds: Any, path: tuple = ()) -> list[tuple[tuple, tuple[float, float]]]:
    """``[(path, (lower, upper)), ...]`` from ``hyperparam_bounds``, checked."""
    name = "hyperparam_bounds" + "".join(f"[{k!r}]" for k in path)
    if not isinstance(bounds, Mapping) or not bounds:
        raise ValueError(f"The value of `{name}` is {bounds!r}, but must be a non-empty dict of hyperparameter "
                         "names to [lower, upper] (nested dicts for nested keys).")
    out = []
    for key, value in bounds.items():
        if isinstance(value, Mapping):
            out.extend(_parse_bounds(value, path + (key,)))
            continue
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(is_finite_number(v) for v in value)
              and value[0] < value[1])
        if not ok:
            raise ValueError(f"The value of `{name}[{key!r}]` is {value!r}, but must be [lower, upper] with finite "
                             "numbers and lower < upper (PB2 tunes continuous hyperparameters only).")
        out.append((path + (key,), (float(value[0]), float(value[1]))))
    return out
