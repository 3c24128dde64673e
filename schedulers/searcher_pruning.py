"""Lets a searcher with a pruner of its own (``OptunaSearch(use_pruner=True)``) stop trials.

A searcher only suggests configs; stopping is the run loop's business and is
asked of the scheduler. This scheduler forwards the question to the searcher's
``should_prune(trial_id)`` after every result, so Optuna's pruners decide.
"""

from __future__ import annotations

from typing import Any

from schedulers.base import Decision, TrialDecision, TrialScheduler
from tuner.trial import Trial


class SearcherPruningScheduler(TrialScheduler):
    """Stops a trial as soon as ``searcher.should_prune(trial_id)`` says so.

    Example::

        search = OptunaSearch(use_pruner=True, seed=0)
        tune.run(train, config=space, search_alg=search, scheduler=SearcherPruningScheduler(search),
                 metric="loss", mode="min", num_samples=50)
    """

    def __init__(self, searcher: Any, metric: str | None = None, mode: str | None = None,
                 time_attr: str = "training_iteration") -> None:
        if not callable(getattr(searcher, "should_prune", None)):
            raise ValueError(
                f"The value of `searcher` is {searcher!r}, but must have a should_prune(trial_id) method "
                "(e.g. OptunaSearch(use_pruner=True))."
            )
        super().__init__(metric, mode, time_attr)
        self.searcher = searcher

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        if self.searcher.should_prune(trial.trial_id):
            return TrialDecision.stop(f"pruned by {type(self.searcher).__name__}'s pruner at "
                                      f"{self.time_attr}={result.get(self.time_attr)}")
        return Decision.CONTINUE
