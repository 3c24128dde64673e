"""Resume between two snapshots of scheduler and searcher state.

Snapshots (``state.json``) are taken on a time budget, not after every event, so
the driver may die after events the last snapshot does not hold. The journal
has them all: a resume loads the snapshot, then makes again, in journal order,
every call the run loop made to the scheduler and searcher after it. The run
loop journals a marker for each call that no other record implies
(``decision_point``: ``on_trial_result`` at a decision point; ``chosen``:
``choose_trial_to_run``; ``stops_polled``: ``trials_to_stop`` that returned
trials), so the scheduler and searcher end exactly where they were when the
driver stopped. With no snapshot at all the whole journal is replayed into new
components. A driver-side ``Stopper`` has no snapshot of its own: each of its
calls (``stopper_called``) is made again on a fresh one from the journal's start,
then the snapshot's ``stopper`` entry (what replay cannot rebuild) is loaded.

The driver may also die between a scheduler call and the records of what it
decided. The replay keeps what it needs to finish such a step on resume: the
decision a replayed ``on_trial_result`` returned whose effect (a trial paused,
stopped or cloned) was not journaled (``due``), and each running trial's next
decision point (``points``), so that a result journaled at a decision point the
scheduler never saw is decided before the trial goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from tuner.execution.status_index import StatusIndex
from tuner.storage import journal
from tuner.storage.journal import Event
from tuner.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)


class ComponentReplay:
    """A journal observer that re-makes the run loop's scheduler and searcher calls.

    Called with each journal record after it was applied to the trials
    (``tuner.storage.journal.replay``); records before ``start_offset`` (already in
    the snapshot) only keep the status index up to date.

    Attributes:
        stopping: trials a STOP decision was journaled for but whose end was not:
            trial id -> reason. The run loop ends them on resume instead of
            running them again.
        diverged: replayed calls whose answer differed from the journal's
            (an unseeded searcher suggesting another config, say).
    """

    def __init__(self, scheduler: Any, searcher: Any, start_offset: int = 0, stopper: Any = None,
                 points: dict[str, Any] | None = None) -> None:
        self.scheduler = scheduler
        self.searcher = searcher
        self.stopper = stopper  # a driver-side Stopper: every call it saw is made again (from the start)
        self.stopper_saw: dict[str, Any] = {}  # trial id -> training_iteration of the last result it saw
        self.callback_states: dict[str, Any] = {}  # the snapshot's callback states, for TrialRunner.restore_callbacks
        self.start_offset = start_offset
        # running trial -> (the time_attr value its next decision point was computed after, that point)
        self.points: dict[str, tuple[float, float | None]] = {k: tuple(v) for k, v in (points or {}).items()}
        self.due: dict[str, Any] = {}  # trial -> a TrialDecision whose effect the journal does not hold
        self.due_journaled: set[str] = set()  # ... of which the decision record itself was written
        self.resumed: journal.Resumed | None = None  # the latest resume's record
        self.last_write: float | None = None  # when the journal was last written (by the driver that died)
        self.chosen: dict[str, Any] = {}  # chosen to run, not launched yet -> the exploit to apply (or None)
        self.index = StatusIndex()
        self.trials: dict[str, Trial] = {}  # the replayed trials, once the journal is read
        self.lineage: list[Any] = []  # and the earlier runs' config changes and decisions
        self.stopping: dict[str, str] = {}
        self.diverged = 0

    def __call__(self, record: journal.Record, trials: dict[str, Trial], offset: int) -> None:
        kind = record.event
        trial = trials.get(getattr(record, "trial_id", None) or "")
        live = offset >= self.start_offset
        if kind is Event.TRIAL_ADDED and trial is not None:
            self.index.add(trial)
            if live:
                self._suggest(trial)
                self.scheduler.on_trial_add(trial)
        elif kind is Event.RESUMED:
            self.resumed = record
            # What was decided and not carried out stays due until its own record says it was done
            # (the driver that resumed may have died before doing it); running trials start afresh.
            self.points.clear()
            for running in self.index.of(TrialStatus.RUNNING):
                self.index.set(running, TrialStatus.PENDING)  # what TrialRunner.restore did
        elif trial is None:
            if kind is Event.CHOSEN and live:
                self._choose(None)
            elif kind is Event.STOPS_POLLED and live:
                for trial_id, decision in self.scheduler.trials_to_stop():
                    stopped = trials.get(trial_id)
                    if stopped is not None and stopped.status is TrialStatus.PAUSED:
                        self.due[trial_id] = decision  # resolved by its status record
        elif kind is Event.STATUS:
            self.index.set(trial, trial.status)
            self.stopping.pop(trial.trial_id, None)
            self._resolved(trial.trial_id)
            if live and trial.status.is_finished():
                self._finished(trial)
            if live and trial.status is TrialStatus.RUNNING:  # launched: the run loop sent it its next point
                last = trial.last_result or {}
                self._point_after(trial, last.get(self.scheduler.time_attr, 0))
        elif kind is Event.CONFIG:  # the exploit was carried out (its checkpoint in the same write)
            launch = trial.trial_id in self.chosen
            self._resolved(trial.trial_id)
            if launch:
                self.chosen[trial.trial_id] = None  # chosen: still to be launched
        elif kind is Event.STOPPER_CALLED:
            self.stopper_saw[trial.trial_id] = (trial.last_result or {}).get("training_iteration")
            if self.stopper is not None:
                self.stopper(trial.trial_id, trial.last_result)
        elif isinstance(record, journal.DecisionMade):
            if record.action == "STOP" and trial.status is TrialStatus.RUNNING:
                self.stopping[trial.trial_id] = record.reason or "stopped by the scheduler"
                self._resolved(trial.trial_id)
            elif trial.trial_id in self.chosen or trial.trial_id in self.due:
                self.due_journaled.add(trial.trial_id)
        elif not live:
            return
        elif isinstance(record, journal.Result):
            self.searcher.on_trial_result(trial.trial_id, record.result)
        elif kind is Event.DECISION_POINT:
            self._decision_point(trial)
        elif kind is Event.CHOSEN:
            self._choose(trial)

    def _decision_point(self, trial: Trial) -> None:
        from schedulers.base import Decision, TrialDecision

        try:
            decision = TrialDecision.of(self.scheduler.on_trial_result(trial, trial.last_result))
        except Exception as exc:  # noqa: BLE001 - the run loop failed the trial for it
            decision = TrialDecision.stop(f"{type(self.scheduler).__name__}.on_trial_result raised: {exc!r}")
        if decision.action is Decision.CONTINUE:
            self._point_after(trial, trial.last_result.get(self.scheduler.time_attr, 0))
        elif trial.status is TrialStatus.RUNNING:
            self.due[trial.trial_id] = decision

    def _point_after(self, trial: Trial, after: Any) -> None:
        """The scheduler's next decision point for ``trial`` as the run loop computed it (``TrialRunner._next_point``)."""
        self.points[trial.trial_id] = (after, self.scheduler.next_decision_point(trial, after))

    def _resolved(self, trial_id: str) -> None:
        self.chosen.pop(trial_id, None)
        self.due.pop(trial_id, None)
        self.due_journaled.discard(trial_id)

    def _suggest(self, trial: Trial) -> None:
        if not self.searcher.replay_suggest(trial.trial_id, trial.config):
            self._diverged(f"{type(self.searcher).__name__} suggested another config for {trial.trial_id}")

    def _choose(self, expected: Trial | None) -> None:
        candidates = self.index.of(TrialStatus.PENDING) + self.index.of(TrialStatus.PAUSED)
        chosen = self.scheduler.choose_trial_to_run(candidates) if candidates else None
        if (chosen and chosen.trial_id) != (expected and expected.trial_id):
            self._diverged(f"{type(self.scheduler).__name__} chose {chosen} instead of {expected}")
        if expected is None:
            return
        self.chosen[expected.trial_id] = None
        if expected.status is TrialStatus.PAUSED:
            exploit = self.scheduler.on_trial_resume(expected)
            if exploit is not None:
                self.chosen[expected.trial_id] = exploit

    def _finished(self, trial: Trial) -> None:
        if trial.status is TrialStatus.ERROR:
            self.scheduler.on_trial_error(trial)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result, error=True)
        else:
            self.scheduler.on_trial_complete(trial, trial.last_result)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result)

    def _diverged(self, what: str) -> None:
        self.diverged += 1
        if self.diverged == 1:
            logger.warning("Resume: %s than before the interruption; the sweep goes on from the journal, but "
                           "it may not repeat the uninterrupted run's decisions (unseeded components do not).",
                           what)
