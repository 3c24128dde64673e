"""Hooks for things that watch a sweep: loggers, TensorBoard, progress.

The run loop calls them on the driver, in order, after the journal has the
event. They must be quick: they run on the run loop's thread.
"""

from __future__ import annotations

from typing import Any

from tuner.trial import Trial


class Callback:
    """Base class; every hook does nothing by default."""

    def setup(self, experiment_path: str, space: dict[str, Any], metric: Any, mode: Any) -> None:
        """Called once before the first trial. ``space`` is ``tune.run``'s ``config``
        (with its search domains); ``metric``/``mode`` may be None or lists."""

    def on_trial_start(self, trial: Trial) -> None:
        """A trial starts (or restarts after a pause or a failure) on a worker."""

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        """A result arrived; ``trial.last_result`` is already ``result``."""

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        """``trial.config`` changed (PBT exploit from ``donor_id``)."""

    def on_trial_complete(self, trial: Trial) -> None:
        """A trial ended TERMINATED (finished, or stopped early: see ``trial.stop_reason``)."""

    def on_trial_error(self, trial: Trial) -> None:
        """A trial ended in ERROR; ``trial.error`` holds the traceback."""

    def on_experiment_end(self, trials: list[Trial]) -> None:
        """Called once after the last trial, also when the sweep is interrupted."""
