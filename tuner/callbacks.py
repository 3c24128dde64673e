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

    def on_step_begin(self, iteration: int, trials: list[Trial]) -> None:
        """A turn of the run loop begins (``iteration`` turns so far; ``trials``: every trial).
        The loop turns at least every 0.2 s while it waits for results."""

    def on_step_end(self, iteration: int, trials: list[Trial]) -> None:
        """A turn of the run loop ended; ``iteration`` already counts it."""

    def on_trial_start(self, trial: Trial) -> None:
        """A trial starts (or restarts after a pause or a failure) on a worker."""

    def on_trial_restore(self, trial: Trial, checkpoint_path: str) -> None:
        """A trial started from ``checkpoint_path`` has restored it (its first result or its
        end arrived); called before that batch's results."""

    def on_trial_save(self, trial: Trial, checkpoint_path: str) -> None:
        """The trial published a checkpoint at ``checkpoint_path`` (after ``on_trial_result``
        for the result it was taken with). A PBT clone's copy is not a save."""

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        """A result arrived; ``trial.last_result`` is already ``result``."""

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        """``trial.config`` changed (PBT exploit from ``donor_id``)."""

    def on_trial_complete(self, trial: Trial) -> None:
        """A trial ended TERMINATED (finished, or stopped early: see ``trial.stop_reason``)."""

    def on_trial_recover(self, trial: Trial) -> None:
        """A trial failed and will be retried (``max_failures``); ``trial.error`` holds the traceback."""

    def on_trial_error(self, trial: Trial) -> None:
        """A trial ended in ERROR; ``trial.error`` holds the traceback."""

    def on_experiment_end(self, trials: list[Trial]) -> None:
        """Called once after the last trial, also when the sweep is interrupted."""

    def get_state(self) -> dict[str, Any] | None:
        """State to keep across a resume (plain JSON), saved with each snapshot; None: none."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """On resume, what ``get_state`` returned at the last snapshot (the callback given again)."""
