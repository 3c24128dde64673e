"""The median stopping rule (Golovin et al. 2017, Google Vizier)."""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from schedulers import _rungs
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tuner.trial import Trial
from tuner.components import check_state_version
from tuner.validation import BadValueError


class MedianStoppingRule(TrialScheduler):
    """Stops a trial whose running mean is worse than the median of the other
    trials' running means at the same ``time_attr``.

    It decides after every result (no decision points), since the running mean
    moves with each one.

    Args:
        time_attr, metric, mode: see ``TrialScheduler``.
        grace_period: no trial is stopped before this much ``time_attr``.
        min_samples_required: other trials with results at that time needed to judge.
        hard_stop: stop the trial (True) or pause it (False).
    """

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 grace_period: float = 1.0, min_samples_required: int = 3, hard_stop: bool = True) -> None:
        super().__init__(metric, mode, time_attr)
        if isinstance(grace_period, bool) or not isinstance(grace_period, (int, float)) or grace_period < 0:
            raise BadValueError("grace_period", grace_period, "`grace_period >= 0`")
        if isinstance(min_samples_required, bool) or not isinstance(min_samples_required, int) \
                or min_samples_required < 1:
            raise BadValueError("min_samples_required", min_samples_required, ""
                                "`min_samples_required >= 1`")
        self.grace_period = grace_period
        self.min_samples_required = min_samples_required
        self.hard_stop = hard_stop
        self._times: dict[str, list[float]] = {}
        self._means: dict[str, list[float]] = {}  # running mean of the score after each result

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        self._require_metric()
        _, t = self._metric_and_time(result)
        times = self._times.setdefault(trial.trial_id, [])
        means = self._means.setdefault(trial.trial_id, [])
        value = _rungs.score(result[self.metric], self.mode)
        means.append(value if not means else means[-1] + (value - means[-1]) / (len(means) + 1))
        times.append(t)
        if t < self.grace_period:
            return Decision.CONTINUE
        others = [self._mean_at(tid, t) for tid in self._times if tid != trial.trial_id]
        others = [m for m in others if m is not None]
        if len(others) < self.min_samples_required:
            return Decision.CONTINUE
        median = statistics.median(others)
        if means[-1] >= median:
            return Decision.CONTINUE
        shown = (lambda s: s if self.mode == "max" else -s)
        reason = (f"running mean {self.metric}={shown(means[-1]):g} is worse than the median {shown(median):g} "
                  f"of {len(others)} other trials at {self.time_attr}={t:g}")
        info = {"median": shown(median), "running_mean": shown(means[-1]), "time": t}
        return TrialDecision.stop(reason, **info) if self.hard_stop else TrialDecision.pause(reason, **info)

    def _mean_at(self, trial_id: str, t: float) -> float | None:
        i = bisect.bisect_right(self._times[trial_id], t)
        return self._means[trial_id][i - 1] if i else None

    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "times": self._times, "means": self._means}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._times = {k: list(v) for k, v in state["times"].items()}
        self._means = {k: list(v) for k, v in state["means"].items()}
