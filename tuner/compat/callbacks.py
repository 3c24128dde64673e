"""Callbacks written for Ray Tune, run by the tuner's run loop.

Ray Tune's hooks take the loop's step count and every trial besides the one
concerned (``on_trial_result(iteration, trials, trial, result, **info)``); the
tuner's take the trial alone (and a checkpoint's path in storage). ``adapt`` wraps a callback whose hooks use Ray's
signature so the run loop calls them with those arguments; one with the
tuner's own signatures is used as it is. ``LoggerCallback`` is Ray Tune's base
for per-trial loggers.
"""

from __future__ import annotations

import inspect
from typing import Any

from tuner.callbacks import Callback
from tuner.storage.checkpoint import Checkpoint
from tuner.trial import Trial

_RAY_HOOKS = ("on_trial_start", "on_trial_restore", "on_trial_save", "on_trial_result", "on_trial_complete",
              "on_trial_recover", "on_trial_error")
_RAY_ONLY = ("on_checkpoint",)  # Ray Tune hooks the tuner's Callback does not have


def _overrides(callback: Callback, hook: str) -> bool:
    method = getattr(type(callback), hook, None)
    return method is not None and method is not getattr(Callback, hook, None)


def _ray_style(callback: Callback, hook: str) -> bool:
    """Whether ``callback.hook`` is overridden with Ray Tune's ``(iteration, trials, trial, ...)``."""
    if not _overrides(callback, hook):
        return False
    params = list(inspect.signature(getattr(type(callback), hook)).parameters.values())[1:]
    return bool(params) and (params[0].name == "iteration" or params[0].kind is params[0].VAR_KEYWORD)


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
    if (_ray_setup(callback) or any(_ray_style(callback, hook) for hook in _RAY_HOOKS)
            or any(_overrides(callback, hook) for hook in _RAY_ONLY)):
        return RayCallbackAdapter(callback)
    return callback


class RayCallbackAdapter(Callback):
    """Calls a Ray Tune-style callback's hooks with Ray's arguments: ``iteration`` is the run
    loop's turn (as given to ``on_step_begin``/``on_step_end``), ``trials`` every trial of the
    experiment. A saved checkpoint calls ``on_checkpoint(..., checkpoint=tune.Checkpoint)``
    and then ``on_trial_save``, after ``on_trial_result`` for its result, as Ray Tune does.

    ``may_request_checkpoints``: its ``on_trial_result`` may set ``should_checkpoint`` in the
    result, so a class trainable waits for the driver at every result (see the run loop).
    """

    def __init__(self, inner: Callback) -> None:
        self.inner = inner
        self.iteration = 0
        self._trials: list[Trial] = []
        self._known: set[str] = set()
        self.may_request_checkpoints = _ray_style(inner, "on_trial_result")

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

    def _see(self, trials: list[Trial]) -> None:
        if len(trials) != len(self._known):
            for trial in trials:
                self._add(trial)

    def _add(self, trial: Trial) -> None:
        if trial.trial_id not in self._known:
            self._known.add(trial.trial_id)
            self._trials.append(trial)

    def on_step_begin(self, iteration: int, trials: list[Trial]) -> None:
        self.iteration = iteration
        self._see(trials)
        self.inner.on_step_begin(iteration=iteration, trials=self._trials)

    def on_step_end(self, iteration: int, trials: list[Trial]) -> None:
        self.iteration = iteration
        self._see(trials)
        self.inner.on_step_end(iteration=iteration, trials=self._trials)

    def _call(self, hook: str, trial: Trial, **extra: Any) -> None:
        """Ray Tune calls hooks with keywords; a tuner-style hook gets its positional arguments."""
        self._add(trial)
        if _ray_style(self.inner, hook):
            getattr(self.inner, hook)(iteration=self.iteration, trials=self._trials, trial=trial, **extra)
        else:
            getattr(self.inner, hook)(trial, *extra.values())

    def on_trial_start(self, trial: Trial) -> None:
        self._call("on_trial_start", trial)

    def on_trial_restore(self, trial: Trial, checkpoint_path: str) -> None:
        if _ray_style(self.inner, "on_trial_restore"):
            self._call("on_trial_restore", trial)
        else:
            self.inner.on_trial_restore(trial, checkpoint_path)

    def on_trial_save(self, trial: Trial, checkpoint_path: str) -> None:
        if _overrides(self.inner, "on_checkpoint"):
            self._add(trial)
            self.inner.on_checkpoint(iteration=self.iteration, trials=self._trials, trial=trial,
                                     checkpoint=Checkpoint.from_directory(checkpoint_path))
        if _ray_style(self.inner, "on_trial_save"):
            self._call("on_trial_save", trial)
        else:
            self.inner.on_trial_save(trial, checkpoint_path)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        self._call("on_trial_result", trial, result=result)

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        self.inner.on_trial_config_change(trial, old_config, donor_id)

    def on_trial_complete(self, trial: Trial) -> None:
        self._call("on_trial_complete", trial)

    def on_trial_recover(self, trial: Trial) -> None:
        self._call("on_trial_recover", trial)

    def on_trial_error(self, trial: Trial) -> None:
        self._call("on_trial_error", trial)

    def on_experiment_end(self, trials: list[Trial]) -> None:
        self.inner.on_experiment_end(trials)

    def get_state(self) -> dict[str, Any] | None:
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.inner.set_state(state)


class LoggerCallback(Callback):
    """Base for a logger that writes each trial's results somewhere (Ray Tune's hooks).

    Override ``log_trial_start``, ``log_trial_restore``, ``log_trial_save``,
    ``log_trial_result`` and ``log_trial_end``.

    Example::

        class PrintLogger(tune.LoggerCallback):
            def log_trial_result(self, iteration, trial, result):
                print(trial.trial_id, result["loss"])
    """

    def __init__(self) -> None:
        self._iteration = 0

    def log_trial_start(self, trial: Trial) -> None:
        """A trial starts (or restarts) on a worker."""

    def log_trial_restore(self, trial: Trial) -> None:
        """A trial started from a checkpoint has restored it."""

    def log_trial_save(self, trial: Trial) -> None:
        """A trial saved a checkpoint (``trial.checkpoint_path``)."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        """A result; ``iteration`` is the run loop's turn (as in Ray Tune)."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """A trial ended (``failed``: in ERROR)."""

    def on_step_begin(self, iteration: int, trials: list[Trial]) -> None:
        self._iteration = iteration

    def on_trial_start(self, trial: Trial) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(self, trial: Trial, checkpoint_path: str) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, trial: Trial, checkpoint_path: str) -> None:
        self.log_trial_save(trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        self.log_trial_result(getattr(self, "_iteration", 0), trial, result)  # subclasses may skip __init__

    def on_trial_complete(self, trial: Trial) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, trial: Trial) -> None:
        self.log_trial_end(trial, failed=True)
