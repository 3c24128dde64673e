"""Pure maths of successive halving: rung milestones, cutoffs, promotions.

Values are "scores" where higher is better (``mode="min"`` metrics are negated
before they get here) and NaN is the worst possible score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def rung_milestones(grace_period: float, reduction_factor: float, max_t: float, bracket: int = 0) -> list[float]:
    """Milestones of a bracket, ascending and below ``max_t``: grace * rf^(k + bracket)."""
    milestones = []
    k = bracket
    while (t := grace_period * reduction_factor**k) < max_t:
        milestones.append(t)
        k += 1
    return milestones


def score(value: float, mode: str) -> float:
    """Higher is better; NaN (or a non-number) is the worst score."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return -math.inf
    return float(value) if mode == "max" else -float(value)


def cutoff(scores: Sequence[float], reduction_factor: float) -> float:
    """The score a trial needs to be in the top ``1/rf`` of ``scores`` (linear quantile).

    With fewer than ``rf`` recorded scores the best score still passes (the cutoff
    never exceeds the maximum), so the first trials at a rung are not stopped
    for lack of company.
    """
    return sorted_cutoff(sorted(s for s in scores if s != -math.inf), reduction_factor)


def sorted_cutoff(finite: Sequence[float], reduction_factor: float) -> float:
    """``cutoff`` of scores already sorted ascending, -inf left out: a rung's running record, so a
    decision costs no sort of every score recorded there (quadratic over a sweep)."""
    if not finite:
        return -math.inf
    q = 1.0 - 1.0 / reduction_factor
    pos = q * (len(finite) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return finite[lo] + (finite[hi] - finite[lo]) * (pos - lo)


def survives(value_score: float, cut: float) -> bool:
    """Stop variant: a trial arriving at a rung goes on when its score is not below ``cut``, the
    ``cutoff`` of the scores recorded there before it (ties go on; the first goes on); NaN never does."""
    return value_score != -math.inf and value_score >= cut


def promotable(recorded: dict[str, float], promoted: set[str], reduction_factor: float) -> list[str]:
    """Promote variant: trial ids in the top ``floor(n / rf)`` of a rung not yet promoted,
    best first (ties broken by trial id, so the choice is reproducible).

    The ranking can shift as trials arrive, so a trial promoted early may fall out
    of the top later; the count of promotions is still capped at ``floor(n / rf)``.
    """
    k = math.floor(len(recorded) / reduction_factor)
    ranked = sorted(recorded, key=lambda tid: (-recorded[tid], tid))
    fresh = [tid for tid in ranked[:k] if tid not in promoted and recorded[tid] != -math.inf]
    return fresh[:max(0, k - len(promoted))]
