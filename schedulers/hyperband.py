"""HyperBand (Li et al. 2017): synchronous successive halving in several brackets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from schedulers import _rungs
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tuner.trial import Trial, TrialStatus
from tuner.validation import check_number
from tuner.components import check_state_version


def bracket_plan(max_t: float, reduction_factor: float) -> list[tuple[int, int, float]]:
    """``(s, n_s, r_s)`` for s = s_max..0: bracket size and first milestone (Li et al., Alg. 1)."""
    s_max = int(math.floor(math.log(max_t) / math.log(reduction_factor) + 1e-9))
    return [(s, math.ceil((s_max + 1) / (s + 1) * reduction_factor**s), max_t * reduction_factor**-s)
            for s in range(s_max, -1, -1)]


class HyperBandScheduler(TrialScheduler):
    """Trials fill brackets in turn; in a bracket every trial trains to the rung's
    milestone and pauses; when the rung is complete the top ``floor(n/rf)`` (at
    least one) resume from their checkpoints and the others stop.

    A rung is complete when every member of the bracket has reached it (or
    ended), and either the bracket is full or no other trial is running or
    waiting to start (so a sweep smaller than a bracket still finishes).

    Args:
        time_attr, metric, mode: see ``TrialScheduler``.
        max_t: the most ``time_attr`` a trial gets (``R``).
        reduction_factor: ``eta``: the fraction ``1/eta`` of a rung goes on.
    """

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 max_t: float = 81, reduction_factor: float = 3) -> None:
        super().__init__(metric, mode, time_attr)
        check_number(max_t, "max_t", "max_t >= 1", lambda v: v >= 1)
        check_number(reduction_factor, "reduction_factor", "reduction_factor > 1", lambda v: v > 1)
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self._plan = bracket_plan(max_t, reduction_factor)
        self._brackets: list[dict[str, Any]] = []
        self._bracket_of: dict[str, int] = {}
        self._running: set[str] = set()
        self._resume: list[str] = []
        self._to_stop: list[tuple[str, str, dict[str, Any]]] = []

    # --- bracket bookkeeping ------------------------------------------------------------------------
    def on_trial_add(self, trial: Trial) -> None:
        self._require_metric()
        if not self._brackets or len(self._brackets[-1]["members"]) >= self._brackets[-1]["size"]:
            s, size, r0 = self._plan[len(self._brackets) % len(self._plan)]
            self._brackets.append({"s": s, "size": size, "r0": r0, "rung": 0, "members": [], "scores": {},
                                   "ended": []})
        self._brackets[-1]["members"].append(trial.trial_id)
        self._bracket_of[trial.trial_id] = len(self._brackets) - 1

    def _milestone(self, bracket: dict[str, Any]) -> float:
        return min(self.max_t, bracket["r0"] * self.reduction_factor ** bracket["rung"])

    def next_decision_point(self, trial: Trial, after: float) -> float | None:
        milestone = self._milestone(self._brackets[self._bracket_of[trial.trial_id]])
        return milestone if after < milestone else math.inf

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        self._metric_and_time(result)
        bracket = self._brackets[self._bracket_of[trial.trial_id]]
        milestone = self._milestone(bracket)
        self._running.discard(trial.trial_id)
        if result[self.time_attr] >= self.max_t:
            return TrialDecision.stop(f"reached max_t={self.max_t:g}", rung=self.max_t)
        if result[self.time_attr] < milestone:
            self._running.add(trial.trial_id)
            return Decision.CONTINUE
        bracket["scores"][trial.trial_id] = _rungs.score(result[self.metric], self.mode)
        return TrialDecision.pause(f"waits for bracket {bracket['s']} to complete rung {milestone:g}",
                                   bracket=bracket["s"], rung=milestone)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any] | None) -> None:
        self._ended(trial)

    def on_trial_error(self, trial: Trial) -> None:
        self._ended(trial)

    def _ended(self, trial: Trial) -> None:
        self._running.discard(trial.trial_id)
        bracket = self._brackets[self._bracket_of[trial.trial_id]]
        if trial.trial_id not in bracket["ended"]:
            bracket["ended"].append(trial.trial_id)

    def choose_trial_to_run(self, trials: Sequence[Trial]) -> Trial | None:
        pending_exists = any(t.status is TrialStatus.PENDING for t in trials)
        for bracket in self._brackets:
            self._close_rung_if_complete(bracket, pending_exists)
        by_id = {t.trial_id: t for t in trials}
        while self._resume:
            tid = self._resume.pop(0)
            if tid in by_id and by_id[tid].status is TrialStatus.PAUSED:
                self._running.add(tid)
                return by_id[tid]
        chosen = super().choose_trial_to_run(trials)
        if chosen is not None:
            self._running.add(chosen.trial_id)
        return chosen

    def _close_rung_if_complete(self, bracket: dict[str, Any], pending_exists: bool) -> None:
        live = [tid for tid in bracket["members"] if tid not in bracket["ended"]]
        waiting = [tid for tid in live if tid in bracket["scores"]]
        if not waiting or len(waiting) < len(live):
            return
        full = len(bracket["members"]) >= bracket["size"]
        if not full and (pending_exists or self._running):
            return
        keep = max(1, math.floor(len(waiting) / self.reduction_factor))
        ranked = sorted(waiting, key=lambda tid: (-bracket["scores"][tid], tid))
        milestone = self._milestone(bracket)
        for tid in ranked[keep:]:
            bracket["ended"].append(tid)
            self._to_stop.append((tid, f"bracket {bracket['s']} rung {milestone:g}: not in the top {keep} of "
                                       f"{len(waiting)}", {"bracket": bracket["s"], "rung": milestone,
                                                           "kept": keep, "of": len(waiting)}))
        self._resume.extend(ranked[:keep])
        bracket["scores"] = {}
        bracket["rung"] += 1

    def trials_to_stop(self) -> list[tuple[str, TrialDecision]]:
        out, self._to_stop = self._to_stop, []
        return [(tid, TrialDecision.stop(reason, **info)) for tid, reason, info in out]

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "brackets": self._brackets, "bracket_of": self._bracket_of,
                "running": sorted(self._running), "resume": self._resume, "to_stop": self._to_stop}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._brackets = [dict(b) for b in state["brackets"]]
        self._bracket_of = dict(state["bracket_of"])
        self._running = set(state["running"])
        self._resume = list(state["resume"])
        self._to_stop = [tuple(x) for x in state["to_stop"]]

