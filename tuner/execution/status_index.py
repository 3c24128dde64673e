"""Trials by status, so the run loop finds the PENDING, PAUSED or RUNNING ones
without scanning every trial of the sweep (a scan per launch made a 100,000-trial
sweep slow down as it grew)."""

from __future__ import annotations

import itertools

from tuner.trial import Trial, TrialStatus


class StatusIndex:
    """Every trial under its current status; ``of(status)`` in creation order.

    The run loop changes a trial's status only through ``set``, so the index
    never goes stale. Lookups cost the size of that status' bucket, not the sweep's.
    """

    def __init__(self) -> None:
        self._order: dict[str, int] = {}
        self._status: dict[str, TrialStatus] = {}
        self._buckets: dict[TrialStatus, dict[str, Trial]] = {s: {} for s in TrialStatus}

    def add(self, trial: Trial) -> None:
        """A trial new to the index, under its current status."""
        self._order.setdefault(trial.trial_id, len(self._order))
        self._status[trial.trial_id] = trial.status
        self._buckets[trial.status][trial.trial_id] = trial

    def set(self, trial: Trial, status: TrialStatus) -> None:
        """Moves ``trial`` to ``status`` (also when ``trial.status`` was already changed: a journal replay)."""
        self._buckets[self._status.get(trial.trial_id, trial.status)].pop(trial.trial_id, None)
        trial.status = status
        self._status[trial.trial_id] = status
        self._buckets[status][trial.trial_id] = trial

    def of(self, status: TrialStatus) -> list[Trial]:
        """The trials now in ``status``, oldest trial first (as a scan of the sweep would list them)."""
        trials = list(self._buckets[status].values())
        if len(trials) > 1:
            trials.sort(key=lambda t: self._order[t.trial_id])
        return trials

    def recent(self, status: TrialStatus, n: int) -> list[Trial]:
        """The last ``n`` trials to enter ``status``, latest first (cost ``n``, not the bucket's size)."""
        return list(itertools.islice(reversed(self._buckets[status].values()), n))

    def count(self, status: TrialStatus) -> int:
        return len(self._buckets[status])

    def counts(self) -> dict[str, int]:
        """Trials per status value, statuses with none left out."""
        return {s.value: len(b) for s, b in self._buckets.items() if b}
