"""Callbacks written for Ray Tune, run by the tuner's run loop.

Ray Tune's hooks take the loop's step count and every trial besides the one
concerned (``on_trial_result(iteration, trials, trial, result, **info)``); the
tuner's take the trial alone. ``adapt`` wraps a callback whose hooks use Ray's
signature so the run loop calls them with those arguments; one with the
tuner's own signatures is used as it is. ``LoggerCallback`` is Ray Tune's base
for per-trial loggers.
"""

from __future__ import annotations

import inspect
from typing import Any

from tuner.callbacks import Callback
from tuner.trial import Trial

_RAY_HOOKS = ("on_trial_start", "on_trial_result", "on_trial_complete", "on_trial_error")


def _ray_style(callback: Callback, hook: str) -> bool:
    """Whether ``callback.hook`` is overridden with Ray Tune's ``(iteration, trials, trial, ...)``."""
    method = getattr(type(callback), hook, None)
    if method is None or method is getattr(Callback, hook):
        return False
    params = list(inspect.signature(method).parameters)[1:]
    return bool(params) and params[0] == "iteration"


def _ray_setup(callback: Callback) -> bool:
    method = type(callback).setup
    if method is Callback.setup:
        return False
    params = inspect.signature(method).parameters
    return "experiment_path" not in params and (
        any(p in params for p in ("stop", "num_samples", "total_num_samples"))
        or any(p.kind is p.VAR_KEYWORD for p in params.values()))


def adapt(callback: Callback) -> Callback:
    """``callback`` itself, or a wrapper calling its Ray Tune-style hooks."""
    if _ray_setup(callback) or any(_ray_style(callback, hook) for hook in _RAY_HOOKS):
        return RayCallbackAdapter(callback)
    return callback


class RayCallbackAdapter(Callback):
    """Calls a Ray Tune-style callback's hooks with ``iteration`` (results seen so far) and
    ``trials`` (every trial started so far); ``on_step_begin``/``on_step_end``,
    ``on_trial_save``/``on_trial_restore`` and ``on_checkpoint`` are not called."""

    def __init__(self, inner: Callback) -> None:
        self.inner = inner
        self.iteration = 0
        self._trials: dict[str, Trial] = {}

    def __getattr__(self, name: str) -> Any:  # the wrapped callback's own attributes
        return getattr(self.inner, name)

    def setup(self, experiment_path: str, space: dict[str, Any], metric: Any, mode: Any) -> None:
        if _ray_setup(self.inner):
            offered = {"stop": None, "num_samples": None, "total_num_samples": None,
                       "experiment_path": experiment_path, "metric": metric, "mode": mode}
            params = inspect.signature(self.inner.setup).parameters
            takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
            self.inner.setup(**{k: v for k, v in offered.items() if takes_all or k in params})
        else:
            self.inner.setup(experiment_path, space, metric, mode)

    def _call(self, hook: str, trial: Trial, *extra: Any) -> None:
        self._trials[trial.trial_id] = trial
        if _ray_style(self.inner, hook):
            getattr(self.inner, hook)(self.iteration, list(self._trials.values()), trial, *extra)
        else:
            getattr(self.inner, hook)(trial, *extra)

    def on_trial_start(self, trial: Trial) -> None:
        self._call("on_trial_start", trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        self.iteration += 1
        self._call("on_trial_result", trial, result)

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        self.inner.on_trial_config_change(trial, old_config, donor_id)

    def on_trial_complete(self, trial: Trial) -> None:
        self._call("on_trial_complete", trial)

    def on_trial_error(self, trial: Trial) -> None:
        self._call("on_trial_error", trial)

    def on_experiment_end(self, trials: list[Trial]) -> None:
        self.inner.on_experiment_end(trials)


class LoggerCallback(Callback):
    """Base for a logger that writes each trial's results somewhere (Ray Tune's hooks).

    Override ``log_trial_start``, ``log_trial_result`` and ``log_trial_end``.

    Example::

        class PrintLogger(tune.LoggerCallback):
            def log_trial_result(self, iteration, trial, result):
                print(trial.trial_id, result["loss"])
    """

    def __init__(self) -> None:
        self._iteration = 0

    def log_trial_start(self, trial: Trial) -> None:
        """A trial starts (or restarts) on a worker."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        """A result; ``iteration`` counts every result of the experiment so far."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """A trial ended (``failed``: in ERROR)."""

    def on_trial_start(self, trial: Trial) -> None:
        self.log_trial_start(trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        self._iteration = getattr(self, "_iteration", 0) + 1  # subclasses may skip __init__
        self.log_trial_result(self._iteration, trial, result)

    def on_trial_complete(self, trial: Trial) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, trial: Trial) -> None:
        self.log_trial_end(trial, failed=True)
