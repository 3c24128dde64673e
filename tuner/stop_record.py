"""``stop`` as experiment.json records it, both ways: a dict as it is, a driver-side Stopper by
its class and constructor arguments (rebuilt on resume; its calls are replayed from the journal),
a function by its repr (it must be passed again)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from tuner import components
from tuner.stopper import Stopper

#: experiment.json's ``stop`` for a driver-side Stopper: ``{STOPPER: components.describe(...)}``.
STOPPER = "__stopper__"


def describe_stop(stop: Any) -> Any:
    """``stop`` for experiment.json: a dict as it is, a Stopper by its class and constructor
    arguments (``tune.resume`` rebuilds it), a plain function by its repr (it must be passed again)."""
    if stop is None or isinstance(stop, Mapping):
        return stop
    if isinstance(stop, Stopper):
        try:
            if type(stop).__module__ == "__main__" or "<" in type(stop).__qualname__:
                raise AttributeError("defined where it cannot be imported again")
            return {STOPPER: components.describe(stop)}
        except AttributeError as exc:
            return {STOPPER: {components.NOT_JSON: f"{stop!r} ({exc})"}}
    return repr(stop)


def recorded_stop(recorded: Any, path: str) -> Any:
    """``stop`` as experiment.json recorded it: a dict, or a Stopper rebuilt from its constructor
    arguments (its calls are then replayed from the journal); a function cannot come back."""
    if isinstance(recorded, dict) and STOPPER in recorded:
        record = recorded[STOPPER]
        if components.NOT_JSON in record:
            raise components.NotRebuildableError(
                f"The experiment {path} stopped trials with {record[components.NOT_JSON]}, which tune.resume cannot "
                "rebuild from experiment.json; pass it again: tune.resume(path, stop=...) or Tuner.restore(path, "
                "trainable, run_config=tune.RunConfig(stop=...)). Its state comes back from the journal.")
        return components.rebuild(record, "stop")
    if isinstance(recorded, str):
        warnings.warn(f"The experiment {path} was run with stop={recorded}, a function experiment.json cannot "
                      "hold; this run has no stop criterion unless you pass it again: tune.resume(path, stop=...).",
                      stacklevel=3)
        return None
    return recorded
