"""Asynchronous successive halving (ASHA, Li et al. 2020), stop and promote variants."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from typing import Any

from schedulers import _rungs
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tuner.trial import Trial, TrialStatus
from tuner.validation import BadValueError, check_int, check_number, check_seed, show_value
from tuner.components import check_state_version

STOP, PROMOTE = "stop", "promote"


class ASHAScheduler(TrialScheduler):
    """Stops (or pauses) trials that are not in the top ``1/reduction_factor`` at a rung.

    Rungs sit at ``grace_period * reduction_factor**k`` below ``max_t``; a trial
    that reaches ``max_t`` stops. The trainable pauses in ``report()`` only at
    rungs (``next_decision_point``), so a stopped trial never reports past its rung.

    Variants:
        ``stop_or_promote="stop"`` (the asynchronous rule most users know): a trial
        arriving at a rung is stopped when its score is below the ``1 - 1/rf``
        quantile of the scores recorded at that rung before it (the first to arrive
        goes on; ties go on; a NaN metric always stops). This is the rule Ray Tune's
        ASHA applies, so both make the same decisions in the same arrival order.
        ``"promote"`` (the ASHA paper's rule): a trial arriving at a rung pauses;
        ``choose_trial_to_run`` resumes a paused trial from its checkpoint when it
        ranks in the top ``floor(n/rf)`` of the ``n`` recorded at its rung, so
        never more than that many are promoted. Trials still paused when the
        sweep runs out of work end there.

    Args:
        time_attr, metric, mode: see ``TrialScheduler``.
        max_t: the most ``time_attr`` any trial gets.
        grace_period: the first rung.
        reduction_factor: keep the top ``1/reduction_factor`` at each rung.
        brackets: number of brackets (bracket ``s`` starts at ``grace_period * rf**s``),
            trials assigned at random, weighted by the brackets' budgets.
        stop_or_promote: "stop" or "promote".
        seed: seeds the bracket assignment.
        stop_last_trials: stop trials at ``max_t`` (False: they train on to their own end).

    Example::

        tune.run(train, config=space, num_samples=64, metric="loss", mode="min",
                 scheduler=ASHAScheduler(max_t=100, grace_period=1, reduction_factor=3))
    """

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 max_t: float = 100, grace_period: float = 1, reduction_factor: float = 4, brackets: int = 1,
                 stop_or_promote: str = STOP, seed: int | None = None, stop_last_trials: bool = True) -> None:
        super().__init__(metric, mode, time_attr)
        check_number(max_t, "max_t", "max_t > 0", lambda v: v > 0)
        check_number(grace_period, "grace_period", "0 < grace_period <= max_t", lambda v: 0 < v <= max_t)
        check_number(reduction_factor, "reduction_factor", "reduction_factor > 1", lambda v: v > 1)
        check_int(brackets, "brackets", 1)
        if stop_or_promote not in (STOP, PROMOTE):
            raise BadValueError("stop_or_promote", stop_or_promote, "'stop' or 'promote'")
        check_seed(seed)
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.brackets = brackets
        self.stop_or_promote = stop_or_promote
        self.seed = seed
        self.stop_last_trials = bool(stop_last_trials)
        self._rng = random.Random(seed)
        self._milestones = [_rungs.rung_milestones(grace_period, reduction_factor, max_t, s) for s in range(brackets)]
        self._bracket: dict[str, int] = {}
        self._recorded: list[dict[float, dict[str, float]]] = [{m: {} for m in ms} for ms in self._milestones]
        self._finite = self._sorted_finite()  # each rung's recorded scores but -inf, ascending
        self._promoted: list[dict[float, list[str]]] = [{m: [] for m in ms} for ms in self._milestones]
        self._rung_of: dict[str, float] = {}  # promote variant: the rung a paused trial waits at

    # --- lifecycle ----------------------------------------------------------------------------------
    def on_trial_add(self, trial: Trial) -> None:
        self._require_metric()
        weights = [len(ms) + 1 for ms in self._milestones]
        self._bracket[trial.trial_id] = self._rng.choices(range(self.brackets), weights=weights)[0]

    def next_decision_point(self, trial: Trial, after: float) -> float | None:
        milestones = self._milestones[self._bracket.get(trial.trial_id, 0)]
        for m in milestones:
            if m > after:
                return m
        return self.max_t if after < self.max_t else math.inf

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        value, t = self._metric_and_time(result)
        if t >= self.max_t:
            if not self.stop_last_trials:
                return Decision.CONTINUE  # past the last rung it trains on, to its own end
            return TrialDecision.stop(f"reached max_t={self.max_t:g}", rung=self.max_t)
        bracket = self._bracket.setdefault(trial.trial_id, 0)
        rung = max((m for m in self._milestones[bracket] if m <= t), default=None)
        if rung is None or trial.trial_id in self._recorded[bracket][rung]:
            return Decision.CONTINUE
        recorded = self._recorded[bracket][rung]
        finite = self._finite[bracket][rung]
        earlier = len(recorded)
        cut = _rungs.sorted_cutoff(finite, self.reduction_factor)  # of the scores recorded before it
        recorded[trial.trial_id] = own = _rungs.score(value, self.mode)
        if own != -math.inf:
            bisect.insort(finite, own)
        if self.stop_or_promote == PROMOTE:
            self._rung_of[trial.trial_id] = rung
            return TrialDecision.pause(f"waits at rung {rung:g} for promotion", rung=rung, value=value)
        if _rungs.survives(own, cut):
            return Decision.CONTINUE
        shown = cut if self.mode == "max" else -cut
        return TrialDecision.stop(
            f"rung {rung:g}: {self.metric}={show_value(value)} is worse than the cutoff {shown:g} "
            f"(top 1/{self.reduction_factor:g} of the {earlier} recorded before it)",
            rung=rung, value=value, cutoff=shown, recorded=earlier)

    def choose_trial_to_run(self, trials: Sequence[Trial]) -> Trial | None:
        """Promote variant: first a paused trial that earned promotion (highest rung first)."""
        if self.stop_or_promote == PROMOTE:
            paused = {t.trial_id: t for t in trials if t.status is TrialStatus.PAUSED}
            for bracket, milestones in enumerate(self._milestones):
                for rung in reversed(milestones):
                    promoted = self._promoted[bracket][rung]
                    for tid in _rungs.promotable(self._recorded[bracket][rung], set(promoted), self.reduction_factor):
                        if tid in paused and self._rung_of.get(tid) == rung:
                            promoted.append(tid)
                            return paused[tid]
        return super().choose_trial_to_run(trials)

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "version": 1, "rng": [version, list(internal), gauss], "bracket": dict(self._bracket),
            # milestones as floats, as load_state_dict reads them, so a reloaded state writes the same keys
            "recorded": [{repr(float(m)): v for m, v in rungs.items()} for rungs in self._recorded],
            "promoted": [{repr(float(m)): v for m, v in rungs.items()} for rungs in self._promoted],
            "rung_of": dict(self._rung_of),
        }

    def _sorted_finite(self) -> list[dict[float, list[float]]]:
        return [{m: sorted(s for s in scores.values() if s != -math.inf) for m, scores in rungs.items()}
                for rungs in self._recorded]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._bracket = dict(state["bracket"])
        self._recorded = [{float(m): dict(v) for m, v in rungs.items()} for rungs in state["recorded"]]
        self._finite = self._sorted_finite()
        self._promoted = [{float(m): list(v) for m, v in rungs.items()} for rungs in state["promoted"]]
        self._rung_of = {k: float(v) for k, v in state["rung_of"].items()}

    def debug_string(self) -> str:
        counts = [sum(len(r) for r in rungs.values()) for rungs in self._recorded]
        return f"ASHA ({self.stop_or_promote}): {counts} results recorded at rungs per bracket"
