"""The scheduler interface the run loop calls.

A scheduler looks at trials and their results and answers with a decision; it
never touches actors, files or the run loop. The run loop applies decisions.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from tuner.objective import inherit_objective
from tuner.trial import Trial, TrialStatus
from tuner.validation import BadValueError, MODES, check_mode

VALID_MODES = MODES  # the name Ray Tune users may import


class Decision(str, enum.Enum):
    """What the run loop should do with a trial after a result.

    CONTINUE: keep training.
    PAUSE: stop training now but keep the trial: its latest checkpoint is kept,
        its resources are released, and the scheduler may resume it later by
        returning it from ``choose_trial_to_run``. Unlike STOP, a paused trial is
        not finished.
    STOP: end the trial now (TERMINATED); it never reports again.
    EXPLOIT: (PBT) replace the trial's state with a donor's latest checkpoint and
        continue with a new config; carried by ``TrialDecision.exploit``.
    """

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    EXPLOIT = "EXPLOIT"


@dataclasses.dataclass(frozen=True)
class TrialDecision:
    """A decision plus why it was taken, so a user can see why a trial stopped.

    Attributes:
        action: the ``Decision``.
        reason: one human-readable line ("rung 3: loss 0.81 > cutoff 0.52").
        info: structured details for the journal (e.g. ``{"rung": 3, "cutoff": 0.52}``).
        donor_id: EXPLOIT only: the trial whose checkpoint is copied in.
        config: EXPLOIT only: the recipient's new config.
    """

    action: Decision
    reason: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    donor_id: str | None = None
    config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.action, Decision):
            raise BadValueError("action", self.action, "a Decision")
        is_exploit = self.action is Decision.EXPLOIT
        if is_exploit and (self.donor_id is None or self.config is None):
            raise ValueError("An EXPLOIT decision needs both `donor_id` and `config`.")
        if not is_exploit and (self.donor_id is not None or self.config is not None):
            raise ValueError(f"`donor_id` and `config` belong to EXPLOIT only, not {self.action.value}.")

    @classmethod
    def of(cls, value: Decision | TrialDecision) -> TrialDecision:
        """Normalize what ``on_trial_result`` returned."""
        return value if isinstance(value, TrialDecision) else cls(Decision(value))

    @classmethod
    def cont(cls) -> TrialDecision:
        return cls(Decision.CONTINUE)

    @classmethod
    def stop(cls, reason: str = "", **info: Any) -> TrialDecision:
        return cls(Decision.STOP, reason, info)

    @classmethod
    def pause(cls, reason: str = "", **info: Any) -> TrialDecision:
        return cls(Decision.PAUSE, reason, info)

    @classmethod
    def exploit(cls, donor_id: str, config: dict[str, Any], reason: str = "", **info: Any) -> TrialDecision:
        return cls(Decision.EXPLOIT, reason, info, donor_id=donor_id, config=config)


class TrialScheduler(abc.ABC):
    """Base of every scheduler. Subclasses implement ``on_trial_result``.

    Args:
        metric: the result key to optimize; inherited from ``tune.run`` when None.
        mode: "min" or "max"; inherited from ``tune.run`` when None.
        time_attr: the result key that measures progress (monotonic), used for
            decision points.

    Example, a scheduler that stops every trial whose loss exceeds 10::

        class StopDivergent(TrialScheduler):
            def on_trial_result(self, trial, result):
                if result["loss"] > 10:
                    return TrialDecision.stop("diverged")
                return Decision.CONTINUE
    """

    #: Whether this scheduler can rank trials on several metrics at once.
    supports_multi_objective = False
    #: Whether the run loop keeps one trial PENDING before resources are free, so that the
    #: scheduler sees a trial waiting for its turn (PBT time-shares the CPUs among a
    #: population larger than what runs at once). Off by default: a model-based searcher
    #: then suggests each config as late as possible, with the most results known.
    wants_waiting_trial = False

    def __init__(self, metric: str | None = None, mode: str | None = None,
                 time_attr: str = "training_iteration") -> None:
        check_mode(mode)
        if not isinstance(time_attr, str) or not time_attr:
            raise BadValueError("time_attr", time_attr, "a non-empty string")
        self.metric = metric
        self.mode = mode
        self.time_attr = time_attr

    def set_search_properties(self, metric: str | list[str] | None, mode: str | list[str] | None) -> None:
        """Called by ``tune.run`` before the sweep: fills in ``metric``/``mode``.

        Raises ValueError when the scheduler was built with a different metric or
        mode than ``tune.run`` was given, or when it cannot handle several metrics.
        """
        if isinstance(metric, (list, tuple)) and not self.supports_multi_objective:
            raise ValueError(
                f"{type(self).__name__} ranks trials on one metric, but `metric` is {list(metric)}. "
                "Use FIFOScheduler for multi-objective sweeps, or tune a single metric."
            )
        inherit_objective(self, metric, mode)

    def _require_metric(self) -> None:
        """Raise the standard error when a scheduler that ranks trials has no metric/mode."""
        if self.metric is None or self.mode is None:
            raise ValueError(
                f"{type(self).__name__} needs a `metric` and a `mode`. Either pass them when building "
                "the scheduler, or pass them to tune.run(metric=..., mode=...)."
            )

    def _metric_and_time(self, result: dict[str, Any]) -> tuple[Any, Any]:
        """The result's metric and time values, or the standard error naming what was reported."""
        for key in (self.metric, self.time_attr):
            if key not in result:
                raise ValueError(f"{type(self).__name__}: metric {key!r} is not in the result; the trainable "
                                 f"reported: {', '.join(sorted(result))}.")
        return result[self.metric], result[self.time_attr]

    def on_trial_add(self, trial: Trial) -> None:
        """Called when a trial is created (before it runs)."""

    @abc.abstractmethod
    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        """Called by the run loop for each result at a decision point.

        Returns:
            a ``Decision`` or a ``TrialDecision`` (to give a reason or EXPLOIT).
        """

    def on_trial_complete(self, trial: Trial, result: dict[str, Any] | None) -> None:
        """Called when a trial ends normally or is stopped (TERMINATED)."""

    def on_trial_error(self, trial: Trial) -> None:
        """Called when a trial ends in ERROR."""

    def choose_trial_to_run(self, trials: Sequence[Trial]) -> Trial | None:
        """Pick which PENDING or PAUSED trial gets the next free resources.

        Called by the run loop only when a trial can start at once (resources are
        free), so the trial returned is always started. The default runs
        PENDING trials first-in first-out and never resumes a PAUSED one; a
        scheduler that pauses trials overrides this to resume them.
        """
        for trial in trials:
            if trial.status is TrialStatus.PENDING:
                return trial
        return None

    def trials_to_stop(self) -> list[tuple[str, TrialDecision]]:
        """Ids of PAUSED trials this scheduler has now decided to end, with the decision.

        Polled by the run loop after every decision; for synchronous schedulers
        (HyperBand) whose verdict on a waiting trial comes when *another* trial
        reports. The default ends none.
        """
        return []

    def on_trial_resume(self, trial: Trial) -> TrialDecision | None:
        """Called right before a PAUSED trial chosen by ``choose_trial_to_run`` restarts.

        Return ``TrialDecision.exploit(donor_id, config)`` to restart it from the
        donor's latest checkpoint with a new config (synchronous PBT), or None to
        restart it from its own checkpoint.
        """
        return None

    def next_decision_point(self, trial: Trial, after: float) -> float | None:
        """The smallest value of ``time_attr`` greater than ``after`` at which this
        scheduler must see the result before the trial goes on.

        The trainable streams results without waiting between decision points and
        waits in ``report()`` only at them, so decisions are exact and cheap.
        Returns None to be asked after every result (the safe default for
        user-written schedulers), or ``math.inf`` when no decision is left.
        """
        return None

    def debug_string(self) -> str:
        """One line for the progress display."""
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state for resume, with a ``version`` key."""
        return {"version": 1}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (overrides check the version the same way)."""
        from tuner.components import check_state_version

        check_state_version(self, state)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the attributes of the same names (experiment.json,
        repr, ``tuner.components.rebuild``)."""
        from tuner.components import constructor_params

        return constructor_params(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
