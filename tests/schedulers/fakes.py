"""Fake trials and results for scheduler unit tests (no Ray, no run loop)."""

from __future__ import annotations

from tuner.trial import Trial, TrialStatus


def trial(i: int, status: TrialStatus = TrialStatus.RUNNING) -> Trial:
    return Trial(f"t{i:03d}", {"i": i}, status=status)


def result(t: float, value: float, metric: str = "loss", time_attr: str = "training_iteration") -> dict:
    return {time_attr: t, metric: value}
