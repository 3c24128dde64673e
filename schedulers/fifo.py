"""The default scheduler: trials run first-in first-out and are never stopped early."""

from __future__ import annotations

import math
from typing import Any

from schedulers.base import Decision, TrialScheduler
from tuner.trial import Trial


class FIFOScheduler(TrialScheduler):
    """Runs every trial to the end, in the order they were created."""

    supports_multi_objective = True

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision:
        return Decision.CONTINUE

    def next_decision_point(self, trial: Trial, after: float) -> float | None:
        return math.inf
