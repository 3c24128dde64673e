"""The run loop: asks the searcher for configs, launches trials when their
resources are free, consumes batches of results, asks the scheduler at decision
points and applies its decisions.

Order for every batch: results into memory, then the journal (results, then their
checkpoints), then per result the callbacks (``on_trial_result``, then ``on_trial_save``
for its checkpoint) and the searcher; only then the scheduler's decision is taken and
applied. A callback that sets ``should_checkpoint`` in a class trainable's result gets a
checkpoint of that iteration before the decision (Ray Tune's ``SHOULD_CHECKPOINT``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import secrets
import time
import warnings
from typing import Any

import numpy as np

from schedulers.base import Decision, TrialDecision, TrialScheduler
from searchers.base import FINISHED, Searcher
from tuner.storage import checkpoint as ckpt_lib
from tuner.storage import fs
from tuner.storage import journal
from tuner.storage import jsonio
from tuner.callbacks import Callback
from tuner.execution.resources import PerTrialResources, resources_for
from tuner.execution.protocol import Executor
from tuner.runtime.messages import Batch, Command, LaunchSpec, SessionState
from tuner.execution.status_index import StatusIndex
from tuner.storage.experiment import ExperimentStorage
from tuner.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)
_SEARCHER_STALL_S = 30.0
STOP_GRACE_S = 10.0  # a trial that has not stopped this long after the budget ran out is killed
#: Scheduler and searcher state is snapshot at most this often (and at the end); a resume replays the
#: journal past the last snapshot (``tuner.execution.replay``). ``TUNER_SNAPSHOT_EVERY_S`` overrides it.
SNAPSHOT_EVERY_S = 5.0
#: ... and never more often than keeps snapshots under this share of the run loop's time (large states).
SNAPSHOT_SHARE = 0.05


@dataclasses.dataclass
class RunSettings:
    """The knobs of one sweep that the run loop itself uses."""

    metric: Any = None
    mode: Any = None
    num_samples: int = 1
    stop: Any = None
    stopper: Any = None
    driver_stopper: Any = None
    fail_fast: Any = False
    trainable_name: str | None = None
    trial_name_creator: Any = None
    trial_dirname_creator: Any = None
    resources: Any = None
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    max_failures: int = 0
    seed: int | None = None
    checkpoint_freq: int = 0
    checkpoint_at_end: bool = False
    keep_checkpoints_num: int | None = None
    checkpoint_score_attr: str | None = None
    class_trainable: bool = False
    echo_output: bool = True  # trial stdout/stderr also to the console (besides trials/<id>/stdout.log)


def trial_seed(seed: int | None, index: int) -> int:
    """A distinct, reproducible seed per trial (random when the sweep has none)."""
    if seed is None:
        return secrets.randbelow(2**31)
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % 2**31)


def _checkpoint_goodness(iteration: int, metrics: dict[str, Any], score_attr: str | None) -> float:
    """Higher is better: ``score_attr`` in the metrics saved with it (``"min-loss"`` flips it),
    else the newest (a PBT clone is as new as the recipient's iteration it was copied at)."""
    if not score_attr:
        return float(iteration)
    attr = score_attr
    sign = 1.0
    if attr.startswith("min-"):
        attr, sign = attr[4:], -1.0
    value = metrics.get(attr)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return -math.inf
    return sign * value


def _created_name(creator: Any, trial: Trial, label: str) -> str:
    name = creator(trial)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{label} returned {name!r} for {trial.trial_id}, but must return a non-empty string.")
    return name


def _reached(point: float | None, value: Any) -> bool:
    """Whether a result at ``value`` of the time attribute is at the decision point ``point``."""
    if point is None or value is None:
        return True
    return not math.isinf(point) and value >= point


class TrialRunner:
    """Drives one sweep to its end. ``run()`` returns the list of trials."""

    def __init__(self, *, trainable_ref: Any, settings: RunSettings, searcher: Searcher,
                 scheduler: TrialScheduler, executor: Executor, storage: ExperimentStorage,
                 callbacks: list[Callback], reporter: Any = None, lock: Any = None) -> None:
        self.trainable_ref = trainable_ref
        self.settings = settings
        self.searcher = searcher
        self.scheduler = scheduler
        self.executor = executor
        self.storage = storage
        self.callbacks = callbacks
        self.reporter = reporter
        self.lock = lock
        self.trials: dict[str, Trial] = {}
        self._trial_list: list[Trial] = []  # the same trials in creation order, for the step hooks (no copy per turn)
        self.by_status = StatusIndex()
        self._closing: dict[str, TrialDecision] = {}
        self._exhausted = False
        self._stall_since: float | None = None
        self._max_trials = searcher.max_trials(settings.num_samples)
        self._deadline = math.inf
        self._out_of_time = False
        self._end_reason = "time budget reached"
        self._scheduler_points: dict[str, float | None] = {}
        self._sent_points: dict[str, tuple[Any, float | None]] = {}  # trial -> (after, point) its worker was sent
        self._warned_stop_keys = False
        self._aborted: set[str] = set()
        self._next_index = 0  # of the next new trial; on resume past every id ever used (journal.next_trial_index)
        self._failed_by_driver: dict[str, str] = {}  # trial id -> why the driver failed it (scheduler raised)
        self._snapshot_every_s = float(os.environ.get("TUNER_SNAPSHOT_EVERY_S", SNAPSHOT_EVERY_S))
        self._next_snapshot = time.monotonic() + self._snapshot_every_s
        self._idle_choice_at = -1  # journal size when "nothing to run" was last journaled
        self._resume_on_release: dict[str, TrialDecision | None] = {}
        # Trials that were running (or chosen) when the previous driver died: the scheduler chose them already, so
        # they restart before it is asked anything (as if they had never stopped), not when it would choose them.
        self._interrupted: dict[str, TrialDecision | None] = {}  # trial id -> the exploit to apply first
        self.time_used_before = 0.0  # seconds of time_budget_s the earlier runs of a resumed experiment used
        self._restoring: dict[str, str] = {}  # trial id -> the checkpoint it was launched from, until it answers
        self._wants_checkpoint: set[str] = set()  # a callback set should_checkpoint in its waiting result
        self._warned_checkpoint_request = False
        self._warned_callback_state: set[str] = set()
        self._unmet_request: dict[str, dict[str, Any]] = {}  # should_checkpoint on a result it did not wait at
        # Every result waits for the driver when a driver-side Stopper must see it, or when a callback may
        # ask a class trainable for a checkpoint at it (only a waiting trainable can still save that state).
        self._checkpoint_requests = any(getattr(cb, "may_request_checkpoints", False) for cb in callbacks)
        self._every_result = settings.driver_stopper is not None or (
            settings.class_trainable and self._checkpoint_requests)
        # The step hooks the callbacks really have, found once: the loop calls them every turn.
        self._step_hooks = {hook: [getattr(cb, hook) for cb in callbacks
                                   if getattr(getattr(cb, hook), "__func__", None) is not getattr(Callback, hook)]
                            for hook in ("on_step_begin", "on_step_end")}
        self.iteration = 0  # turns of the run loop (Ray Tune's callback ``iteration``)
        self.start_time = time.time()

    def restore(self, trials: dict[str, Trial], stopping: dict[str, str] | None = None, *,
                unfinished: str = "resume", errored: str = "keep", stopper_saw: dict[str, Any] | None = None,
                previous: Any = None) -> None:
        """Take over the trials of an interrupted run: finished ones stay finished, paused
        ones stay paused for the scheduler to resume, running ones restart from their latest
        checkpoint before the scheduler chooses anything (it chose them already). Trials in
        ``stopping`` (a STOP was decided, their end not journaled) end now instead.

        ``previous`` (the ``ComponentReplay`` that rebuilt them) says what the dead driver had
        decided without carrying it out; that is done first: trials stopped or paused, clones
        made, chosen trials launched, a decision point the scheduler never saw decided, a trial
        whose last result met its stop criterion ended (docs/reliability.md, "Resume equals no crash").

        ``unfinished="skip"`` ends every unfinished trial TERMINATED as it is instead;
        ``errored="resume"`` runs failed trials again from their latest checkpoint,
        ``"restart"`` from scratch (their checkpoints are deleted); ``"keep"`` leaves them failed
        (Ray Tune's ``Tuner.restore(resume_unfinished, resume_errored, restart_errored)``).

        A driver-side Stopper (its calls already replayed) sees now each continuing trial's
        latest result that it had not seen (the driver died before it could), as it would have."""
        if unfinished not in ("resume", "skip") or errored not in ("keep", "resume", "restart"):
            raise ValueError(f"restore(unfinished={unfinished!r}, errored={errored!r}): unfinished must be 'resume' "
                             "or 'skip', errored 'keep', 'resume' or 'restart'.")
        stopping = stopping or {}
        due = previous.due if previous is not None and unfinished == "resume" else {}
        chosen = previous.chosen if previous is not None and unfinished == "resume" else {}
        journaled = previous.due_journaled if previous is not None else set()
        skipped = []
        for trial in trials.values():
            rerun = trial.status is TrialStatus.ERROR and errored != "keep"
            if not trial.status.is_finished() or rerun:  # finished ones keep the shape the journal recorded
                trial.resources = resources_for(self.settings.resources, trial.config)
            if not trial.status.is_finished() and trial.trial_id not in stopping and unfinished == "skip":
                skipped.append(trial)
            trial.checkpoint_scores = {p: _checkpoint_goodness(trial.checkpoint_iterations[p], m,
                                                               self.settings.checkpoint_score_attr)
                                       for p, m in trial.checkpoint_metrics.items()}
        self.trials = dict(trials)
        self._trial_list = list(self.trials.values())
        self._next_index = journal.next_trial_index(self.storage.path, self.trials)
        if self._trial_list:
            self.storage.restore_trial_files(self._trial_list[-1])
        self.by_status = StatusIndex()
        for trial in self.trials.values():
            self.by_status.add(trial)
        saw = dict(stopper_saw or {})
        if unfinished == "resume":
            self._take_over_running(stopping, due, previous, saw)
        self.storage.event(journal.Resumed(time.time(), len(trials), self.time_used_before))
        for trial_id, reason in stopping.items():
            trial = self.trials[trial_id]
            trial.stop_reason = trial.stop_reason or reason
            self._finish(trial, TrialStatus.TERMINATED)
        for trial in skipped:
            trial.stop_reason = trial.stop_reason or "not resumed (resume_unfinished=False)"
            self._finish(trial, TrialStatus.TERMINATED)
        for trial_id, decision in due.items():
            if not self.trials[trial_id].status.is_finished():
                self._carry_out(self.trials[trial_id], decision, journaled=trial_id in journaled)
        for trial_id, exploit in chosen.items():
            if self.trials[trial_id].status.is_finished():
                continue
            if exploit is not None and trial_id not in journaled:
                self.storage.decision(self.trials[trial_id], exploit.action.value, exploit.reason, exploit.info)
            self._interrupted[trial_id] = exploit
        if errored != "keep":
            for trial in self._with(TrialStatus.ERROR):
                self._run_again(trial, from_scratch=errored == "restart")
        if self.settings.driver_stopper is not None:
            for trial in self._with(TrialStatus.PENDING) + self._with(TrialStatus.PAUSED):
                if self._stopper_missed(trial, saw):
                    self._finish(trial, TrialStatus.TERMINATED)

    def _stopper_missed(self, trial: Trial, saw: dict[str, Any]) -> bool:
        """Show the driver-side Stopper ``trial``'s latest result if it never saw it (``saw``: trial id ->
        the training_iteration it saw last, updated); True when it stopped the trial."""
        iteration = (trial.last_result or {}).get("training_iteration")
        if not trial.last_result or iteration == saw.get(trial.trial_id):
            return False
        saw[trial.trial_id] = iteration
        return self._stopper_ends(trial)

    def _take_over_running(self, stopping: dict[str, str], due: dict[str, Any], previous: Any,
                           stopper_saw: dict[str, Any]) -> None:
        """The trials the dead driver left RUNNING: their views made equal to the journal, rolled back to
        where they restart, then ended, decided on, or queued to restart first (``_interrupted``).
        A result the driver died on is decided as the run loop would have: shown to a driver-side
        Stopper it had not reached (``stopper_saw``), then, at a decision point, to the scheduler."""
        running = [t for t in self._with(TrialStatus.RUNNING) if t.trial_id not in stopping and t.trial_id not in due]
        for trial in self._with(TrialStatus.RUNNING):  # their views may lag the journal by a batch
            self.storage.rewrite_views(trial)
        for trial in running:  # back to where it restarts, so a missed decision is on that result
            restart = trial.checkpoint_iteration if trial.checkpoint_path else 0
            if trial.history and int((trial.last_result or {}).get("training_iteration", 0)) > restart:
                self._rollback(trial, restart)
        for trial in running:
            if self._ended_in_worker(trial):
                continue
            if self.settings.driver_stopper is not None and self._stopper_missed(trial, stopper_saw):
                self._finish(trial, TrialStatus.TERMINATED)
                continue
            if previous is None or not self._decide_missed_point(trial, previous.points.get(trial.trial_id)):
                self.by_status.set(trial, TrialStatus.PENDING)  # journaled by the Resumed record
                self._interrupted[trial.trial_id] = None

    def _carry_out(self, trial: Trial, decision: TrialDecision, journaled: bool) -> None:
        """A decision the previous driver took (STOP, PAUSE or EXPLOIT) whose effect it did not record."""
        if not journaled:
            self.storage.decision(trial, decision.action.value, decision.reason, decision.info)
        if decision.action is Decision.STOP:
            trial.stop_reason = decision.reason or "stopped by the scheduler"
            self._finish(trial, TrialStatus.TERMINATED)
        elif decision.action is Decision.PAUSE:
            self.by_status.set(trial, TrialStatus.PAUSED)
            self.storage.status(trial)
        else:  # EXPLOIT: it restarts from the donor's checkpoint
            self.by_status.set(trial, TrialStatus.PENDING)
            self._interrupted[trial.trial_id] = decision

    def _ended_in_worker(self, trial: Trial) -> bool:
        """The result the trial restarts from met its stop criterion (or said ``done``): its worker ended it
        there, before the driver died journaling so. End it now instead of running it past that."""
        last = trial.last_result
        if last is None:
            return False
        reason = self.settings.stopper(trial.trial_id, last) if self.settings.stopper is not None else None
        if not reason and not last.get("done"):
            return False
        trial.stop_reason = trial.stop_reason or reason
        self._finish(trial, TrialStatus.TERMINATED)
        return True

    def _decide_missed_point(self, trial: Trial, sent: Any) -> bool:
        """The previous driver journaled a result at ``trial``'s decision point and died before the
        scheduler saw it: decide now, as it would have (``sent``: (after, point) it was sent).
        True when the trial is not to be restarted (stopped, paused, cloned or failed)."""
        last = trial.last_result
        if sent is None or last is None:
            return False
        after, point = sent
        value = last.get(self.scheduler.time_attr)
        if value is None or value <= after or not _reached(point, value):
            return False
        try:
            decision = TrialDecision.of(self.scheduler.on_trial_result(trial, last))
        except Exception as exc:  # noqa: BLE001 - as in _decide: the trial fails, the sweep goes on
            decision = self._scheduler_failed(trial, exc)
        self.storage.event(journal.DecisionPoint(trial.trial_id))
        if decision.action is Decision.CONTINUE:
            return False
        if trial.trial_id in self._failed_by_driver:
            trial.error = self._failed_by_driver.pop(trial.trial_id)
            self._finish(trial, TrialStatus.ERROR)
        else:
            self._carry_out(trial, decision, journaled=False)
        return True

    def _run_again(self, trial: Trial, from_scratch: bool) -> None:
        """A failed trial of an earlier run goes back to PENDING: from its latest checkpoint (its
        failures still count against ``max_failures``), or from scratch as a new attempt (its
        checkpoints deleted, its results rolled back when it launches, its failures forgotten)."""
        if from_scratch:
            for path in list(trial.checkpoints):
                self.storage.delete_checkpoint(trial, path)
                trial.remove_checkpoint(path)
            trial.num_failures = 0
        trial.error = None
        trial.stop_reason = None
        self.by_status.set(trial, TrialStatus.PENDING)
        self.storage.status(trial)

    def _snapshot(self) -> None:
        """Scheduler and searcher state with the journal position it is current at."""
        started = time.perf_counter()
        state = {"version": 2, "journal_offset": self.storage.journal.offset(),
                 "searcher": self.searcher.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "trials": len(self.trials),
                 "points": {t.trial_id: self._sent_points.get(t.trial_id) for t in self._with(TrialStatus.RUNNING)}}
        state_of_stopper = getattr(self.settings.driver_stopper, "state_dict", None)
        if callable(state_of_stopper):
            state["stopper"] = state_of_stopper()
        callbacks = self._callback_states()
        if callbacks:
            state["callbacks"] = callbacks
        self.storage.write_state(state)
        took = time.perf_counter() - started
        self._next_snapshot = time.monotonic() + max(self._snapshot_every_s, took / SNAPSHOT_SHARE)

    def _callback_states(self) -> dict[str, Any]:
        """``get_state()`` of the callbacks that have state, by position and class (Ray Tune's
        ``Callback.get_state``); a state that is not plain JSON is left out, warned about once."""
        out = {}
        for index, cb in enumerate(self.callbacks):
            state = cb.get_state()
            if not state:
                continue
            name = type(getattr(cb, "inner", cb)).__name__
            if json.loads(jsonio.dumps(state)) != state:
                if name not in self._warned_callback_state:
                    self._warned_callback_state.add(name)
                    logger.warning("%s.get_state() returned state that is not plain JSON (a set, a tuple, an "
                                   "object?): it is not saved, and a resumed sweep starts that callback fresh. "
                                   "Return dicts, lists, strings and numbers.", name)
                continue
            out[f"{index}:{name}"] = state
        return out

    def restore_callbacks(self, states: dict[str, Any] | None) -> None:
        """Give each callback (passed again on resume) the state its position and class saved."""
        for index, cb in enumerate(self.callbacks):
            state = (states or {}).get(f"{index}:{type(getattr(cb, 'inner', cb)).__name__}")
            if state:
                cb.set_state(state)

    def _maybe_snapshot(self) -> None:
        if time.monotonic() >= self._next_snapshot:
            self._snapshot()

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> list[Trial]:
        if self.settings.time_budget_s is not None:
            self._deadline = time.monotonic() + self.settings.time_budget_s - self.time_used_before
        try:
            self._check_budget()  # a resumed experiment may have used its budget already
            over = False
            while not over:
                self._step_hook("on_step_begin")
                over = self._step()
                self.iteration += 1
                self._step_hook("on_step_end")
        except BaseException as exc:
            # Trials left RUNNING in the journal restart from their checkpoints on resume.
            # On a full disk this record cannot be written either: the original error is the one to see.
            self._while_failing(lambda: self.storage.event(journal.Interrupted(
                repr(exc), [t.trial_id for t in self._with(TrialStatus.RUNNING)])))
            self._close(failing=True)
            raise
        else:
            try:
                self._snapshot()
                self.storage.event(journal.ExperimentEnd(time.time()))
            except BaseException:
                self._close(failing=True)
                raise
        self._close(failing=False)
        return list(self.trials.values())

    def _step(self) -> bool:
        """One turn of the loop; True when the sweep is over."""
        self._check_lock()
        self._launch_what_fits()
        self._stop_paused_trials()  # choosing may close a rung: its stops come at once, not after a batch
        if self._is_over():
            return True
        for trial_id, batch in self.executor.wait(timeout=0.2):
            self._process(self.trials[trial_id], batch)
        self._stop_paused_trials()
        self._check_budget()
        self._maybe_snapshot()  # here every call made so far has its journal record
        self.storage.sync()  # an object store: this turn's records in one PUT
        if self.reporter is not None:
            self.reporter.update(self)
        return False

    def _step_hook(self, hook: str) -> None:
        """``on_step_begin`` / ``on_step_end`` of the callbacks that have them, with every trial."""
        for method in self._step_hooks[hook]:
            method(self.iteration, self._trial_list)

    def _close(self, failing: bool) -> None:
        """Stop the workers, end the callbacks, close the files: every step runs even when one
        fails. While an error is on its way out, their errors are logged, not raised over it."""
        steps = [self.executor.shutdown, lambda: [cb.on_experiment_end(list(self.trials.values()))
                                                  for cb in self.callbacks], self.storage.close]
        first: BaseException | None = None
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - reported below or logged
                if failing:
                    logger.warning("While ending the sweep after an error, this failed too: %r", exc)
                elif first is None:
                    first = exc
        if first is not None:
            raise first

    @staticmethod
    def _while_failing(step: Any) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the error already on its way out matters more
            logger.warning("While handling an error, this failed too: %r", exc)

    def _check_lock(self) -> None:
        """Another driver took the experiment over (this one looked dead): stop writing to it."""
        if self.lock is not None and self.lock.lost:
            from tuner.storage.lock import ExperimentLockedError, read_holder

            holder = read_holder(self.storage.path) or {}
            raise ExperimentLockedError(f"This driver lost the lock of {self.storage.path} to PID "
                                        f"{holder.get('pid')} on host {holder.get('host')!r}; stopping.", holder)

    def _is_over(self) -> bool:
        if self.executor.running():
            return False
        if self._with(TrialStatus.PENDING) and not self._out_of_time:
            return False
        if not (self._exhausted or self._out_of_time):
            return False
        for trial in self._with(TrialStatus.PAUSED) + self._with(TrialStatus.PENDING):
            trial.stop_reason = trial.stop_reason or (self._end_reason if self._out_of_time
                                                      else "still paused when the sweep ended")
            self._finish(trial, TrialStatus.TERMINATED)
        return True

    def _with(self, status: TrialStatus) -> list[Trial]:
        return self.by_status.of(status)

    # --- launching ------------------------------------------------------------------------
    def _launch_what_fits(self) -> None:
        limit = self.settings.max_concurrent_trials or math.inf
        if self._interrupted:
            self._relaunch_interrupted(limit)
        self._keep_one_waiting()
        self._choose_and_launch(limit)
        # A trial waiting for a turn exists as soon as one is launched, not at the next turn of the loop:
        # whether a scheduler (PBT) sees it at the launched trial's first decision must not depend on timing.
        self._keep_one_waiting()

    def _keep_one_waiting(self) -> None:
        if self.scheduler.wants_waiting_trial and not self._out_of_time and not self._with(TrialStatus.PENDING):
            self._create_trial()

    def _choose_and_launch(self, limit: float) -> None:
        # Ask the scheduler only when its choice can start at once: choosing has side
        # effects (a promotion is used up), so a choice must never be dropped. The
        # scheduler chooses among the trials whose shapes fit now (shapes may differ).
        fixed = None if isinstance(self.settings.resources, PerTrialResources) else self.settings.resources
        while not self._out_of_time and self.executor.running() < limit:
            if self._resume_on_release:
                # A paused trial chosen to restart waits for its worker to wind down: nothing chosen after
                # it starts before it does (synchronous PBT restarts its recipients first, so that every
                # donor is still at the generation's point when it is copied).
                return
            if fixed is not None and not self.executor.has_resources_for(fixed):
                return
            if not self._with(TrialStatus.PENDING):
                self._create_trial()
            candidates = [t for t in self._with(TrialStatus.PENDING) + self._with(TrialStatus.PAUSED)
                          if t.trial_id not in self._resume_on_release and t.trial_id not in self._interrupted]
            if fixed is None:
                candidates = [t for t in candidates if self.executor.has_resources_for(t.resources)]
            trial = self.scheduler.choose_trial_to_run(candidates) if candidates else None
            self._journal_choice(trial)
            if trial is None:
                return
            if trial.status is TrialStatus.PAUSED:
                exploit = self.scheduler.on_trial_resume(trial)
                if exploit is not None:
                    self.storage.decision(trial, exploit.action.value, exploit.reason, exploit.info)
                if trial.trial_id in self._closing:
                    # Paused, but its worker has not wound down yet: it restarts the moment it has.
                    self._resume_on_release[trial.trial_id] = exploit
                    continue
                if exploit is not None:
                    self._exploit(trial, exploit)
                    continue
            self._launch(trial)

    def _relaunch_interrupted(self, limit: float) -> None:
        """Restart the trials the previous driver was running or had chosen, before any new choice."""
        for trial_id, exploit in list(self._interrupted.items()):
            trial = self.trials[trial_id]
            if self._out_of_time or self.executor.running() >= limit:
                return
            if trial.status.is_finished():  # ended meanwhile
                del self._interrupted[trial_id]
            elif self.executor.has_resources_for(trial.resources):
                del self._interrupted[trial_id]
                if exploit is not None:
                    self._exploit(trial, exploit)
                else:
                    self._launch(trial)

    def _journal_choice(self, trial: Trial | None) -> None:
        """The resume replay repeats every choice (choosing may change the scheduler's state);
        "nothing to run" is journaled once until something else happens."""
        if trial is not None:
            self.storage.event(journal.Chosen(trial.trial_id))
        elif self._idle_choice_at != self.storage.journal.records_written:
            self.storage.event(journal.Chosen(None))
            self._idle_choice_at = self.storage.journal.records_written

    def _create_trial(self) -> None:
        if self._exhausted:
            return
        if self._max_trials is not None and len(self.trials) >= self._max_trials:
            self._exhausted = True
            return
        index = self._next_index
        trial_id = f"trial_{index:05d}"
        config = self.searcher.suggest(trial_id)
        if config is FINISHED:
            self._exhausted = True
            return
        if config is None:
            self._note_stall()
            return
        self._stall_since = None
        self._next_index += 1
        trial = Trial(trial_id, config, None, seed=trial_seed(self.settings.seed, index),
                      trainable_name=self.settings.trainable_name)
        unplaceable = self._resolve_resources(trial)
        self.trials[trial_id] = trial
        self._trial_list.append(trial)
        self.by_status.add(trial)
        self.storage.add_trial(trial, self._name_trial(trial))
        self.scheduler.on_trial_add(trial)
        if unplaceable:
            trial.error = unplaceable
            self._finish(trial, TrialStatus.ERROR)
            return

    def _resolve_resources(self, trial: Trial) -> str | None:
        """The trial's shape from its config; the reason it can never run, if so (it fails at once)."""
        try:
            trial.resources = resources_for(self.settings.resources, trial.config)
            if isinstance(self.settings.resources, PerTrialResources):
                self.executor.check_feasible(trial.resources)
        except ValueError as exc:
            return str(exc)
        return None

    def _name_trial(self, trial: Trial) -> str | None:
        """Apply ``trial_name_creator`` (the display name); return ``trial_dirname_creator``'s directory name."""
        naming, dirnaming = self.settings.trial_name_creator, self.settings.trial_dirname_creator
        if naming is not None:
            trial.name = _created_name(naming, trial, "trial_name_creator")
        if dirnaming is None:
            return None
        dirname = _created_name(dirnaming, trial, "trial_dirname_creator")
        if "/" in dirname or "\\" in dirname or dirname in (".", ".."):
            raise ValueError(f"trial_dirname_creator returned {dirname!r} for {trial.trial_id}; a directory name "
                             "has no path separator.")
        if any(t.path and fs.basename(t.path) == dirname for t in self.trials.values() if t is not trial):
            raise ValueError(f"trial_dirname_creator returned {dirname!r} for {trial.trial_id}, a name another "
                             "trial already has; include trial.trial_id in it.")
        return dirname

    def _note_stall(self) -> None:
        """A searcher that says "not now" while nothing runs would hang the sweep forever."""
        if self.executor.running():
            self._stall_since = None
            return
        now = time.monotonic()
        self._stall_since = self._stall_since or now
        if now - self._stall_since > _SEARCHER_STALL_S:
            warnings.warn(f"{type(self.searcher).__name__}.suggest returned None for {_SEARCHER_STALL_S:.0f}s "
                          "while no trial was running; ending the sweep.", stacklevel=2)
            self._exhausted = True

    def _launch(self, trial: Trial, checkpoint_path: str | None = None) -> None:
        restoring = self._existing_checkpoint(trial, checkpoint_path or trial.checkpoint_path)
        if restoring:
            # Results reported after the checkpoint come again: the record restarts where the trainable does.
            iteration = trial.checkpoint_iterations[restoring]
            if int((trial.last_result or {}).get("training_iteration", 0)) > iteration:
                self._rollback(trial, iteration)
        elif trial.history:
            self._rollback(trial, 0)
        last = trial.last_result or {}
        start_iteration = int(last.get("training_iteration", 0)) if restoring else 0
        after = last.get(self.scheduler.time_attr, 0) if restoring else 0
        spec = LaunchSpec(
            trial_id=trial.trial_id, trial_dir=trial.path, experiment_path=self.storage.path, seed=trial.seed,
            config=trial.config, time_attr=self.scheduler.time_attr, next_point=self._next_point(trial, after),
            stopper=self.settings.stopper, start_iteration=start_iteration,
            time_offset=float(last.get("time_total_s", 0.0)), resources=trial.resources.head,
            bundles=trial.resources.as_bundles(),
            placement_strategy=trial.resources.placement_strategy if trial.resources.uses_placement_group else None,
            checkpoint_freq=self.settings.checkpoint_freq, checkpoint_at_end=self.settings.checkpoint_at_end,
            storage_token=self.storage.token, echo_output=self.settings.echo_output,
        )
        self.executor.start(trial.trial_id, trial.resources, spec, self.trainable_ref, restoring or None)
        if restoring:
            self._restoring[trial.trial_id] = restoring
        else:
            self._restoring.pop(trial.trial_id, None)
        self.by_status.set(trial, TrialStatus.RUNNING)
        self.storage.status(trial)
        for cb in self.callbacks:
            cb.on_trial_start(trial)

    def _existing_checkpoint(self, trial: Trial, path: str | None) -> str | None:
        """``path``, or when its directory is gone (deleted by hand, lost with a disk) the latest
        earlier checkpoint that is still there, or None (restart from scratch); each missing one
        is journaled as deleted, so resume and ``tune.load`` agree."""
        while path is not None and not fs.isdir(path):
            logger.warning("Trial %s: its checkpoint %s is missing; restoring from %s instead.", trial.trial_id,
                           path, ([c for c in trial.checkpoints if c != path] or ["scratch"])[-1])
            trial.remove_checkpoint(path)
            self.storage.event(journal.CheckpointDeleted(trial.trial_id, path))
            path = trial.checkpoint_path
        return path

    def _rollback(self, trial: Trial, iteration: int) -> None:
        """Forget results past ``iteration``: the trial restarts from there."""
        trial.rollback(iteration)
        self.storage.rollback(trial, iteration)

    # --- consuming batches -----------------------------------------------------------------
    def _process(self, trial: Trial, batch: Batch) -> None:
        if not batch.started:
            self._never_began(trial)
            return
        restored = self._restoring.get(trial.trial_id)
        if restored is not None and (batch.results or batch.state is not SessionState.RUNNING):
            del self._restoring[trial.trial_id]
            if batch.results or batch.state is not SessionState.ERROR:  # it got past loading the checkpoint
                for cb in self.callbacks:
                    cb.on_trial_restore(trial, restored)
        if batch.results:
            self._record_results(trial, batch)
        for iteration, path in batch.checkpoints:  # saved at a CHECKPOINT command, after their result
            self._record_checkpoint(trial, path, iteration, self._result_at(trial, iteration))
            for cb in self.callbacks:
                cb.on_trial_save(trial, path)
            self._prune_checkpoints(trial)
        if batch.state is SessionState.RUNNING:
            self.executor.poll(trial.trial_id)
        elif batch.state is SessionState.WAITING:
            self._decide(trial)
        elif batch.state is SessionState.DONE:
            self._wants_checkpoint.discard(trial.trial_id)
            unmet = self._unmet_request.pop(trial.trial_id, None)
            if unmet is not None and batch.final_checkpoint is None:
                self._warn_unmet_checkpoint(trial, unmet)
            if batch.final_checkpoint is not None:
                last = trial.last_result or {}
                self._record_checkpoint(trial, batch.final_checkpoint, int(last.get("training_iteration", 0)), last)
                for cb in self.callbacks:
                    cb.on_trial_save(trial, batch.final_checkpoint)
                self._prune_checkpoints(trial)
            self._trial_ended(trial, batch)
        elif batch.state is SessionState.ERROR:
            self._trial_failed(trial, batch)

    def _record_results(self, trial: Trial, batch: Batch) -> None:
        results = [r for r, _ in batch.results]
        trial.last_result = results[-1]
        paths = [path for _, path in batch.results]  # the storage appends the results to the trial's history
        for result, path, metrics in zip(results, paths, self.storage.append_results(trial, results, paths)):
            if path is not None:  # journaled in the results' write: a crash never splits the pair
                self._add_checkpoint(trial, path, int(result.get("training_iteration", 0)), metrics)
        if not self._warned_stop_keys:
            self._warn_missing_keys(results[0])
        for result, path in batch.results:
            for cb in self.callbacks:
                cb.on_trial_result(trial, result)
            if path is not None:
                for cb in self.callbacks:
                    cb.on_trial_save(trial, path)
            self.searcher.on_trial_result(trial.trial_id, result)
        self._prune_checkpoints(trial)  # after the callbacks: each saw its checkpoint still in storage
        if self._checkpoint_requests:  # only a Ray-style callback sets should_checkpoint
            self._note_checkpoint_requests(trial, batch)

    def _note_checkpoint_requests(self, trial: Trial, batch: Batch) -> None:
        """A callback set ``should_checkpoint`` in results of this batch: the last one, where a class
        trainable waits, gets a checkpoint before the decision; any other is warned about."""
        unmet = self._unmet_request.pop(trial.trial_id, None)
        if unmet is not None:  # the trainable went on past a result a callback wanted a checkpoint of
            self._warn_unmet_checkpoint(trial, unmet)
        asked = [r for r, p in batch.results if p is None and r.get("should_checkpoint")]
        last = batch.results[-1][0]
        went_on = [r for r in asked if r is not last or not self.settings.class_trainable]
        if went_on:  # nothing saves a function's state; a class trainable went on past those results
            self._warn_unmet_checkpoint(trial, went_on[0])
        if self.settings.class_trainable and asked and asked[-1] is last and batch.final_checkpoint is None:
            if batch.state is SessionState.WAITING:
                self._wants_checkpoint.add(trial.trial_id)
            else:  # it did not wait there: only a final checkpoint (checkpoint_at_end) can still cover it
                self._unmet_request[trial.trial_id] = last

    def _warn_unmet_checkpoint(self, trial: Trial, result: dict[str, Any]) -> None:
        """``should_checkpoint`` set by a callback where no checkpoint can follow (warned once)."""
        if self._warned_checkpoint_request:
            return
        self._warned_checkpoint_request = True
        why = ("a function trainable checkpoints only what it reports (tune.report(..., checkpoint=...))"
               if not self.settings.class_trainable else
               "the trainable had gone on, or ended (checkpoint_at_end covers a trial's last result)")
        logger.warning("Trial %s: a callback set should_checkpoint on the result of iteration %s, but no "
                       "checkpoint was taken there: %s.", trial.trial_id, result.get("training_iteration"), why)

    @staticmethod
    def _result_at(trial: Trial, iteration: int) -> dict[str, Any]:
        """The trial's result of ``iteration`` (the latest one, usually)."""
        last = trial.last_result or {}
        if int(last.get("training_iteration", 0)) == iteration:
            return last  # without reading the history back from the journal
        for result in reversed(trial.history):
            if int(result.get("training_iteration", 0)) == iteration:
                return result
        return last

    def _record_checkpoint(self, trial: Trial, path: str, iteration: int, metrics_from: dict[str, Any]) -> None:
        """A worker published a checkpoint of ``iteration`` at ``path``: journal it with the metrics
        it was reported with."""
        self._add_checkpoint(trial, path, iteration, self.storage.checkpoint_saved(trial, path, iteration, metrics_from))

    def _add_checkpoint(self, trial: Trial, path: str, iteration: int, metrics: dict[str, Any]) -> None:
        """A journaled checkpoint becomes the trial's latest."""
        trial.add_checkpoint(path, iteration, metrics)
        trial.checkpoint_scores[path] = _checkpoint_goodness(iteration, metrics, self.settings.checkpoint_score_attr)

    def _prune_checkpoints(self, trial: Trial) -> None:
        """Keep the best ``keep_checkpoints_num`` by ``checkpoint_score_attr``, the latest always."""
        keep = self.settings.keep_checkpoints_num
        if not keep or len(trial.checkpoints) <= keep:
            return
        older = sorted(trial.checkpoints[:-1], key=lambda p: trial.checkpoint_scores.get(p, -math.inf),
                       reverse=True)
        for path in older[keep - 1:]:
            trial.remove_checkpoint(path)
            trial.checkpoint_scores.pop(path, None)
            self.storage.delete_checkpoint(trial, path)

    def _warn_missing_keys(self, result: dict[str, Any]) -> None:
        self._warned_stop_keys = True
        wanted = list(self.settings.stop) if isinstance(self.settings.stop, dict) else []
        metrics = self.settings.metric if isinstance(self.settings.metric, list) else [self.settings.metric]
        missing = [k for k in wanted + [m for m in metrics if m] if k not in result]
        if missing:
            warnings.warn(
                f"The first result has no {', '.join(repr(k) for k in dict.fromkeys(missing))} (named in "
                f"`stop`/`metric`); the trainable reported: {', '.join(sorted(result))}.", stacklevel=2)

    def _next_point(self, trial: Trial, after: float) -> float | None:
        """Where the trainable next waits for the driver: the scheduler's next decision point,
        or every result when a driver-side ``Stopper`` must see each one first."""
        point = self.scheduler.next_decision_point(trial, after)
        self._sent_points[trial.trial_id] = (after, point)  # snapshotted: a resume decides a point it missed
        if not self._every_result:
            return point
        self._scheduler_points[trial.trial_id] = point
        return None

    def _stopper_decides(self, trial: Trial) -> bool:
        """A driver-side Stopper sees the result before the scheduler; True when it stopped the trial."""
        if self._stopper_ends(trial):
            self._closing[trial.trial_id] = TrialDecision.stop(trial.stop_reason)
            self.executor.decide(trial.trial_id, Command.STOP, None)
            self._poll_stopper()
            return True
        return False

    def _stopper_ends(self, trial: Trial) -> bool:
        """Show the trial's latest result to the driver-side Stopper (journaled: a resume makes the
        call again); True, with the trial's stop reason set, when it or ``stop_all`` ends it."""
        stopper = self.settings.driver_stopper
        stopped = stopper(trial.trial_id, trial.last_result)
        self.storage.event(journal.StopperCalled(trial.trial_id))
        if stopped or self._poll_stopper():
            trial.stop_reason = trial.stop_reason or f"{type(stopper).__name__} stopped it"
            return True
        return False

    def _poll_stopper(self) -> bool:
        """End the experiment when the driver-side stopper's ``stop_all()`` says so; True
        while the experiment is ending (for this or another reason)."""
        stopper = self.settings.driver_stopper
        if stopper is None or self._out_of_time or not stopper.stop_all():
            return self._out_of_time
        self.storage.event(journal.StopperEndedExperiment(type(stopper).__name__, time.time()))
        self._end_early(f"{type(stopper).__name__} ended the experiment")
        return True

    def _decide(self, trial: Trial) -> None:
        if trial.trial_id in self._wants_checkpoint:  # saved first; the trial then waits here again
            self._wants_checkpoint.discard(trial.trial_id)
            self.executor.decide(trial.trial_id, Command.CHECKPOINT, None)
            return
        if self.settings.driver_stopper is not None and self._stopper_decides(trial):
            return
        if self._every_result and not _reached(self._scheduler_points.get(trial.trial_id),
                                               trial.last_result.get(self.scheduler.time_attr)):
            self.executor.decide(trial.trial_id, Command.CONTINUE, None)  # not the scheduler's point yet
            return
        try:
            decision = TrialDecision.of(self.scheduler.on_trial_result(trial, trial.last_result))
        except Exception as exc:  # noqa: BLE001 - one trial's result must not end the whole sweep
            decision = self._scheduler_failed(trial, exc)
        self.storage.event(journal.DecisionPoint(trial.trial_id))
        action = decision.action
        if action is Decision.CONTINUE:
            after = trial.last_result.get(self.scheduler.time_attr, 0)
            self.executor.decide(trial.trial_id, Command.CONTINUE, self._next_point(trial, after))
            return
        self.storage.decision(trial, action.value, decision.reason, decision.info)
        if action is Decision.EXPLOIT and self.settings.class_trainable and not self._reshapes(trial, decision.config):
            # In place on the warm worker: reset_config() (or a fresh object) and the donor's state.
            path, _ = self._adopt_donor_state(trial, decision)  # the shape is unchanged (_reshapes)
            after = trial.last_result.get(self.scheduler.time_attr, 0)
            self.executor.decide(trial.trial_id, Command.EXPLOIT, self._next_point(trial, after),
                                 (trial.config, path))
            return
        self._closing[trial.trial_id] = decision
        if action is Decision.STOP:
            trial.stop_reason = decision.reason or "stopped by the scheduler"
        elif action is Decision.PAUSE:
            # The decision and the status it implies are one step: from now on the scheduler sees
            # the trial PAUSED (a rung may close before its worker has wound down).
            self.by_status.set(trial, TrialStatus.PAUSED)
            self.storage.status(trial)
        self.executor.decide(trial.trial_id, Command.PAUSE if action is Decision.PAUSE else Command.STOP, None)

    def _scheduler_failed(self, trial: Trial, exc: Exception) -> TrialDecision:
        """The scheduler raised on this trial's result: the trial fails with that error (its
        worker is stopped), the sweep goes on."""
        message = (f"{type(self.scheduler).__name__}.on_trial_result raised on the result of {trial.trial_id} at "
                   f"iteration {trial.last_result.get('training_iteration')}: {type(exc).__name__}: {exc}")
        logger.warning("%s; the trial fails, the sweep goes on.", message)
        self._failed_by_driver[trial.trial_id] = message
        return TrialDecision.stop(message)

    def _stop_paused_trials(self) -> None:
        stops = self.scheduler.trials_to_stop()
        if stops:
            self.storage.event(journal.StopsPolled())
        for trial_id, decision in stops:
            trial = self.trials.get(trial_id)
            if trial is None or trial.status is not TrialStatus.PAUSED:
                continue
            self._resume_on_release.pop(trial_id, None)
            self.storage.decision(trial, Decision.STOP.value, decision.reason, decision.info)
            trial.stop_reason = decision.reason or "stopped by the scheduler"
            self._finish(trial, TrialStatus.TERMINATED)

    def _never_began(self, trial: Trial) -> None:
        """A trial started ahead (``RayExecutor``) that never ran: stopped while it waited for its
        worker, or its worker died first. It is pending again, unless the sweep is ending."""
        self.executor.release(trial.trial_id)
        self._restoring.pop(trial.trial_id, None)
        if trial.status.is_finished():
            return
        if self._out_of_time:
            trial.stop_reason = trial.stop_reason or self._end_reason
            self._finish(trial, TrialStatus.TERMINATED)
        else:
            self.by_status.set(trial, TrialStatus.PENDING)
            self.storage.status(trial)

    def _trial_ended(self, trial: Trial, batch: Batch) -> None:
        decision = self._closing.pop(trial.trial_id, None)
        self.executor.release(trial.trial_id, healthy=not batch.thread_alive)
        if trial.status.is_finished():  # stopped by the scheduler while its worker wound down
            return
        if decision is not None and decision.action is Decision.PAUSE:
            if trial.trial_id in self._resume_on_release:
                exploit = self._resume_on_release.pop(trial.trial_id)
                if exploit is not None:
                    self._exploit(trial, exploit)
                else:
                    self._launch(trial)
            return
        if decision is not None and decision.action is Decision.EXPLOIT:
            self._exploit(trial, decision)
            return
        if trial.trial_id in self._failed_by_driver:
            trial.error = self._failed_by_driver.pop(trial.trial_id)
            trial.stop_reason = None
            self._finish(trial, TrialStatus.ERROR)
            return
        if batch.stop_reason and not trial.stop_reason:
            trial.stop_reason = batch.stop_reason
        self._finish(trial, TrialStatus.TERMINATED)

    def _exploit(self, trial: Trial, decision: TrialDecision) -> None:
        """Restart ``trial`` from the donor's latest checkpoint with the explored config. With
        per-trial resources the new config's shape is reserved: a shape that does not fit now
        waits (PENDING) like a retry; one that can never fit fails the trial."""
        old_shape = trial.resources
        _, unplaceable = self._adopt_donor_state(trial, decision)
        if unplaceable:
            trial.error = unplaceable
            self._finish(trial, TrialStatus.ERROR)
        elif trial.resources != old_shape and not self.executor.has_resources_for(trial.resources):
            self.by_status.set(trial, TrialStatus.PENDING)
            self.storage.status(trial)
        else:
            self._launch(trial)

    def _reshapes(self, trial: Trial, config: dict[str, Any]) -> bool:
        """Whether per-trial resources give ``config`` another shape than the trial has now (or none:
        the callable fails), so an exploit cannot happen in place on the trial's worker."""
        if not isinstance(self.settings.resources, PerTrialResources):
            return False
        try:
            return resources_for(self.settings.resources, config) != trial.resources
        except ValueError:
            return True

    def _adopt_donor_state(self, trial: Trial, decision: TrialDecision) -> tuple[str, str | None]:
        """Record the new config and copy the donor's latest checkpoint, in storage, to the
        recipient's own (so that pruning the donor's cannot remove it). Returns its path, and
        why the new config's shape can never run (None if it can: ``trial.resources`` is now it)."""
        donor = self.trials[decision.donor_id]
        if donor.checkpoint_path is None:
            raise RuntimeError(f"EXPLOIT chose donor {donor.trial_id}, which has no checkpoint yet.")
        iteration = int((trial.last_result or {}).get("training_iteration", 0))
        destination = ckpt_lib.directory_for(trial.path, iteration)
        if destination in trial.checkpoints:  # its own of that iteration: never replaced (a crash midway would lose it)
            destination = f"{destination}-from-{donor.trial_id}-{secrets.token_hex(3)}"
        path = ckpt_lib.copy(donor.checkpoint_path, destination)
        metrics = donor.checkpoint_metrics.get(donor.checkpoint_path) or {}
        old, old_shape = trial.config, trial.resources
        trial.config = decision.config
        unplaceable = self._resolve_resources(trial) if isinstance(self.settings.resources, PerTrialResources) else None
        if unplaceable:
            trial.resources = old_shape
        # The new config and the copied state in one journal write: a crash never leaves one without the other.
        self.storage.config_changed(trial, donor, old, decision.info, checkpoint=(path, iteration, metrics),
                                    resources=str(trial.resources) if trial.resources != old_shape else None)
        self._add_checkpoint(trial, path, iteration, metrics)
        for cb in self.callbacks:
            cb.on_trial_config_change(trial, old, donor.trial_id)
        self._prune_checkpoints(trial)
        return path, unplaceable

    def _trial_failed(self, trial: Trial, batch: Batch) -> None:
        self._closing.pop(trial.trial_id, None)
        self._resume_on_release.pop(trial.trial_id, None)
        self.executor.release(trial.trial_id, healthy=not batch.thread_alive)
        if trial.status.is_finished():  # stopped by the scheduler while its worker wound down
            return
        if trial.trial_id in self._aborted:  # killed for not stopping at the time budget: not a failure
            self._aborted.discard(trial.trial_id)
            trial.stop_reason = "time budget reached (killed: it did not stop when asked)"
            self._finish(trial, TrialStatus.TERMINATED)
            return
        trial.num_failures += 1
        trial.error = batch.error
        self._wants_checkpoint.discard(trial.trial_id)
        self._unmet_request.pop(trial.trial_id, None)
        if trial.num_failures <= self.settings.max_failures:
            self.storage.event(journal.Retry(trial.trial_id, trial.num_failures, batch.error))
            if trial.checkpoint_path:
                self._rollback(trial, trial.checkpoint_iteration)
            self.by_status.set(trial, TrialStatus.PENDING)
            self.storage.status(trial)
            for cb in self.callbacks:
                cb.on_trial_recover(trial)
            return
        self._finish(trial, TrialStatus.ERROR)

    def _finish(self, trial: Trial, status: TrialStatus) -> None:
        self.by_status.set(trial, status)
        self.storage.status(trial)
        if status is TrialStatus.ERROR:
            if self.settings.fail_fast and not self._out_of_time:
                self._end_early(f"fail_fast: {trial.trial_id} failed")
            self.scheduler.on_trial_error(trial)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result, error=True)
            for cb in self.callbacks:
                cb.on_trial_error(trial)
        else:
            self.scheduler.on_trial_complete(trial, trial.last_result)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result)
            for cb in self.callbacks:
                cb.on_trial_complete(trial)

    def _end_early(self, reason: str) -> None:
        """Start no more trials and ask every running one to stop, for ``reason``."""
        self._out_of_time = True
        self._end_reason = reason
        for trial in self._with(TrialStatus.RUNNING):
            trial.stop_reason = trial.stop_reason or reason
            self.executor.request_stop(trial.trial_id)

    def _check_budget(self) -> None:
        self._poll_stopper()
        now = time.monotonic()
        if now < self._deadline:
            return
        if not self._out_of_time:
            self.storage.event(journal.TimeBudgetReached(self.settings.time_budget_s))
            self._end_early("time budget reached")
        elif now > self._deadline + STOP_GRACE_S:
            for trial in self._with(TrialStatus.RUNNING):
                self._aborted.add(trial.trial_id)
                self.executor.abort(trial.trial_id)
