"""Stoppers: objects that end trials, or the whole experiment, from the driver.

A ``Stopper`` passed as ``stop=`` lives in the run loop, not in the workers: it
sees every trial's results in one place, so it can keep state across trials and
end the whole experiment (``stop_all``). Each result of a sweep with a stopper
is a decision point (the trainable waits for the driver's answer), so a trial
that a stopper ends never reports past that result. A dict or a plain function
``stop`` is still evaluated inside the worker (no round trip per result).

Example::

    stop = tune.stopper.CombinedStopper(
        tune.stopper.MaximumIterationStopper(max_iter=100),
        tune.stopper.TrialPlateauStopper(metric="loss", std=0.001),
    )
    tune.run(train, config=space, stop=stop)
"""

from __future__ import annotations

import abc
import datetime
import statistics
import time
from collections import defaultdict, deque
from typing import Any

from tuner.components import check_state_version, constructor_params
from tuner.validation import MODES, check_int, check_number, is_number


class Stopper(abc.ABC):
    """Base class: ``__call__(trial_id, result)`` ends one trial, ``stop_all()`` the experiment.

    The run loop calls ``__call__`` on the driver after every result and
    ``stop_all`` after every result and whenever it waits (so a timeout fires
    while trials are quiet).

    Across ``tune.resume`` / ``Tuner.restore`` a stopper keeps its state: it is rebuilt
    from its constructor arguments (kept as attributes of the same names; otherwise pass
    it again) and every ``__call__`` it saw is made again from the journal, in order.
    ``stop_all`` must not change its state (it is not replayed). What a replay cannot
    rebuild (time already spent) goes in ``state_dict``, saved with each snapshot.
    """

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments (read from the attributes of the same names)."""
        return constructor_params(self)

    def state_dict(self) -> dict[str, Any] | None:
        """What replaying its calls cannot rebuild, for the snapshot; None: nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Take ``state_dict``'s output back, after the replay."""

    @abc.abstractmethod
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """True to end ``trial_id`` after ``result``."""

    def stop_all(self) -> bool:
        """True to end every trial and start no more."""
        return False


class FunctionStopper(Stopper):
    """A plain ``(trial_id, result) -> bool`` as a driver-side stopper (for ``CombinedStopper``)."""

    def __init__(self, function: Any) -> None:
        if not callable(function):
            raise ValueError(f"The value of `function` is {function!r}, but must be callable (trial_id, result).")
        self.function = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self.function(trial_id, result))


class MaximumIterationStopper(Stopper):
    """Ends a trial at ``max_iter`` iterations (its ``training_iteration``)."""

    def __init__(self, max_iter: int) -> None:
        check_int(max_iter, "max_iter", 1)
        self.max_iter = max_iter

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return result.get("training_iteration", 0) >= self.max_iter


class TrialPlateauStopper(Stopper):
    """Ends a trial whose ``metric`` has flattened: the standard deviation of its last
    ``num_results`` values is below ``std``, after at least ``grace_period`` results.

    With ``metric_threshold`` the trial must also have passed it (``mode="min"``: be
    below it, ``"max"``: above it) before it can be stopped.
    """

    def __init__(self, metric: str, std: float = 0.01, num_results: int = 4, grace_period: int = 4,
                 metric_threshold: float | None = None, mode: str | None = None) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"The value of `metric` is {metric!r}, but must be a result key.")
        check_number(std, "std", "std >= 0", lambda v: v >= 0)
        for name, value in (("num_results", num_results), ("grace_period", grace_period)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"The value of `{name}` is {value!r}, but must be an integer >= 1.")
        if metric_threshold is not None and mode not in MODES:
            raise ValueError(f"The value of `mode` is {mode!r}, but must be 'min' or 'max' when "
                             "`metric_threshold` is given.")
        self.metric = metric
        self.std = std
        self.num_results = num_results
        self.grace_period = grace_period
        self.metric_threshold = metric_threshold
        self.mode = mode
        self._values: dict[str, deque] = defaultdict(lambda: deque(maxlen=self.num_results))
        self._seen: dict[str, int] = defaultdict(int)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self.metric)
        if not is_number(value):
            return False
        self._seen[trial_id] += 1
        values = self._values[trial_id]
        values.append(float(value))
        if self._seen[trial_id] < self.grace_period or len(values) < self.num_results:
            return False
        if self.metric_threshold is not None:
            passed = value < self.metric_threshold if self.mode == "min" else value > self.metric_threshold
            if not passed:
                return False
        return statistics.pstdev(values) < self.std


class ExperimentPlateauStopper(Stopper):
    """Ends the whole experiment when the ``top`` best values of ``metric`` seen so far
    (over every trial) have a standard deviation of at most ``std``, ``patience``
    results in a row."""

    def __init__(self, metric: str, std: float = 0.001, top: int = 10, mode: str = "min", patience: int = 0) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"The value of `metric` is {metric!r}, but must be a result key.")
        if mode not in MODES:
            raise ValueError(f"The value of `mode` is {mode!r}, but must be 'min' or 'max'.")
        check_number(std, "std", "std >= 0", lambda v: v >= 0)
        check_int(top, "top", 2)
        check_int(patience, "patience", 0)
        self.metric = metric
        self.std = std
        self.top = top
        self.mode = mode
        self.patience = patience
        self._best: list[float] = []
        self._flat_for = 0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self.metric)
        if not is_number(value):
            return False
        self._best = sorted(self._best + [float(value)], reverse=self.mode == "max")[:self.top]
        flat = len(self._best) == self.top and statistics.pstdev(self._best) <= self.std
        self._flat_for = self._flat_for + 1 if flat else 0
        return self.stop_all()

    def stop_all(self) -> bool:
        return self._flat_for > self.patience


class TimeoutStopper(Stopper):
    """Ends the whole experiment ``timeout`` seconds (or a ``timedelta``) after it first asks."""

    def __init__(self, timeout: float | datetime.timedelta) -> None:
        if isinstance(timeout, datetime.timedelta):
            timeout = timeout.total_seconds()
        check_number(timeout, "timeout", "timeout > 0 (seconds or a datetime.timedelta)", lambda v: v > 0)
        self.timeout = float(timeout)
        self._start: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        return now - self._start >= self.timeout

    def state_dict(self) -> dict[str, Any] | None:
        """The time spent so far: a resumed sweep gets only what is left of ``timeout``."""
        return None if self._start is None else {"version": 1, "elapsed": time.monotonic() - self._start}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            check_state_version(self, state)
            self._start = time.monotonic() - float(state["elapsed"])


class CombinedStopper(Stopper):
    """Ends a trial (or the experiment) when any of ``stoppers`` would."""

    def __init__(self, *stoppers: Stopper) -> None:
        for s in stoppers:
            if not isinstance(s, Stopper):
                raise ValueError(f"CombinedStopper takes Stopper objects; {s!r} is not one (wrap a function in "
                                 "FunctionStopper).")
        self.stoppers = stoppers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any([s(trial_id, result) for s in self.stoppers])  # a list: every stopper sees every result

    def stop_all(self) -> bool:
        return any([s.stop_all() for s in self.stoppers])

    def state_dict(self) -> dict[str, Any] | None:
        states = [s.state_dict() for s in self.stoppers]
        return {"version": 1, "stoppers": states} if any(st is not None for st in states) else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            check_state_version(self, state)
            for stopper, st in zip(self.stoppers, state["stoppers"]):
                stopper.load_state_dict(st)
