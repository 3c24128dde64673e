"""The functions a trainable calls: ``tune.report``, ``get_context``, ``get_checkpoint``."""

from __future__ import annotations

from typing import Any

from tuner.runtime import session as session_lib
from tuner.runtime.messages import Command
def report(metrics: dict[str, Any] | None = None, *, checkpoint: Any = None, **keyword_metrics: Any) -> None:
    """Hand one result (and optionally a checkpoint) to the tuner.

    Returns at once unless a scheduler must decide at this point; if the trial
    is stopped or paused here, this raises an internal exception that ends the
    trainable, so code after ``report`` does not run.

    Args:
        metrics: numbers (and other JSON-able values) for this iteration.
        checkpoint: any picklable object (a state dict) or a ``tune.Checkpoint``.
        keyword_metrics: metrics as keywords, as older Ray Tune code writes them
            (``tune.report(loss=0.1)``); merged into ``metrics``.
    """
    if keyword_metrics:
        metrics = {**(metrics or {}), **keyword_metrics}
    elif metrics is None:
        raise TypeError("tune.report needs metrics: tune.report({'loss': 0.1}) or tune.report(loss=0.1).")
    if session_lib.current().report(metrics, checkpoint) is Command.PAUSE:
        raise session_lib.StopTrial()


def get_context() -> session_lib.TrialContext:
    """The running trial's id, directory, GPU ids, seed and placement group."""
    return session_lib.current().context


def get_checkpoint() -> Any:
    """The checkpoint to resume from (None on a fresh start): the object that was
    reported, or a ``tune.Checkpoint`` for a directory checkpoint."""
    return session_lib.current().checkpoint
