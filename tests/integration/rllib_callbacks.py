"""RLlib callbacks the RLlib integration tests put in an algorithm's config (imported by the workers)."""

from __future__ import annotations

import os


def crash_once(algorithm, metrics_logger=None, result=None, *, marker: str, lr: float, iteration: int) -> None:
    """``callbacks_on_train_result``: kill the worker process the first time the trial with learning rate
    ``lr`` ends training iteration ``iteration`` (RLlib's own count)."""
    if algorithm.config.lr == lr and result["training_iteration"] == iteration and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)


def side_by_side(algorithm, metrics_logger=None, *, trials: int) -> None:
    """``callbacks_on_algorithm_init``: wait until ``trials`` trials have built their algorithm, so that a
    population that fits at once trains together however late Ray starts a worker."""
    from tests.integration.trainables import wait_side_by_side

    wait_side_by_side({"side_by_side": trials})
