"""Stop criteria, evaluated inside the worker right after each report.

Evaluating them where the result is produced makes them exact: a trial told to
stop at iteration 10 never runs iteration 11, and it costs no round trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from tuner.validation import is_number


class StopCriteria:
    """``stop`` of ``tune.run`` as a picklable callable returning a reason or None.

    A dict stops the trial when any key reaches its value (``>=``), except the
    tuned metric under ``mode="min"``, which stops at ``<=``, and a ``True``
    value, which stops when the result holds ``True`` there (``{"done": True}``). A callable
    ``(trial_id, result) -> bool`` stops when it returns True.
    """

    def __init__(self, stop: Mapping[str, Any] | Callable[[str, dict], bool],
                 metric: Any = None, mode: Any = None) -> None:
        self.stop = stop
        self.metric = metric
        self.mode = mode

    def __call__(self, trial_id: str, result: dict[str, Any]) -> str | None:
        if callable(self.stop):
            return f"stop criterion {getattr(self.stop, '__name__', 'callable')} returned True" \
                if self.stop(trial_id, result) else None
        for key, target in self.stop.items():
            value = result.get(key)
            if isinstance(target, bool):  # {"done": True}: a flag the trainable reports
                if target and value is True:
                    return f"{key}=True"
                continue
            if not is_number(value):
                continue
            if key == self.metric and self.mode == "min":
                if value <= target:
                    return f"{key}={value:g} <= {target:g}"
            elif value >= target:
                return f"{key}={value:g} >= {target:g}"
        return None


def validate_stop(stop: Any) -> None:
    if stop is None or callable(stop):
        return
    if not isinstance(stop, Mapping):
        raise ValueError(
            f"The value of `stop` is {stop!r}, but must be a dict like {{'training_iteration': 10}} "
            "or a callable (trial_id, result) -> bool."
        )
    for key, value in stop.items():
        if not isinstance(value, (int, float)):
            raise ValueError(f"The value of stop[{key!r}] is {value!r}, but must be a number (or True, for a "
                             "flag such as 'done').")


def stop_point(stop: Any, time_attr: str) -> float:
    """The value of ``time_attr`` at which ``stop`` ends every trial (inf if none)."""
    if isinstance(stop, Mapping) and time_attr in stop:
        return float(stop[time_attr])
    return math.inf
