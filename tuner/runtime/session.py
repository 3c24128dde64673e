"""The trainable's side of a running trial, inside the worker actor.

``tune.report`` lands here. Results are buffered and streamed to the driver in
batches; the trainable waits only at a scheduler's decision points (and when a
stop criterion is met it ends right there), so decisions are exact and a trial
never reports past the point where it was stopped.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any, Callable

from tuner.runtime.messages import Batch, Command, SessionState
from tuner.storage import checkpoint as ckpt_lib

#: After a result, how long ``collect`` waits for the trainable to end (or report again) before
#: answering: a one-result trial then needs one round trip from the driver, not two.
LINGER_S = 0.002
#: A trial whose trainable finished: how long ``collect`` gives its thread to exit, so that a
#: healthy worker is not taken for one with a thread still running.
FINISHING_S = 0.1


class StopTrial(BaseException):
    """Raised inside ``report()`` to unwind a trainable that must end.

    A BaseException, so that a trainable's own ``except Exception`` does not
    swallow it.
    """


@dataclasses.dataclass
class TrialContext:
    """What a running trainable can ask about itself (``tune.get_context()``)."""

    trial_id: str
    trial_dir: str
    experiment_path: str
    gpu_ids: list = dataclasses.field(default_factory=list)
    seed: int | None = None
    node_id: str | None = None
    placement_group: Any = None
    resources: dict = dataclasses.field(default_factory=dict)
    bundles: list = dataclasses.field(default_factory=list)  # the trial's gang, bundle 0 its own actor
    placement_strategy: str | None = None
    world_rank: int = 0  # tune.distributed: this worker's rank; 0 everywhere else
    world_size: int = 1
    local_rank: int = 0

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_dir(self) -> str:
        return self.trial_dir


class Session:
    """The buffer between a trainable thread and the driver's calls."""

    def __init__(self, *, trial_id: str, context: TrialContext, checkpoint: Any,
                 time_attr: str, next_point: float | None, stopper: Callable | None,
                 start_iteration: int = 0, time_offset: float = 0.0,
                 persist: Callable[[Any, int], str] | None = None,
                 restore: Callable[[str], Any] | None = None) -> None:
        self.trial_id = trial_id
        self.persist = persist or _no_storage  # (checkpoint, iteration) -> its path in storage
        self.restore = restore or ckpt_lib.load  # path in storage -> object or local Checkpoint
        self._saved: tuple[int, str] | None = None
        self.context = context
        self.checkpoint = checkpoint
        self.time_attr = time_attr
        self.next_point = next_point
        self.stopper = stopper
        self.iteration = start_iteration
        self.time_offset = time_offset
        self._start = time.time()
        self._last = self._start
        self._cond = threading.Condition()
        self._buffer: list[tuple[dict[str, Any], Any]] = []
        self._state = SessionState.RUNNING
        self._command: Command | None = None
        self._stop_requested = False
        self._error: str | None = None
        self._stop_reason: str | None = None
        self._final_checkpoint: Any = None
        self._late: list[tuple[int, str]] = []  # checkpoints published after their result (CHECKPOINT)
        self.payload: Any = None

    # --- called from the trainable thread -------------------------------------------------
    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> Command:
        """Record one result; returns CONTINUE, EXPLOIT or PAUSE, or raises StopTrial."""
        if not isinstance(metrics, dict):
            raise TypeError(f"tune.report takes a dict of metrics, got {type(metrics).__name__}: {metrics!r}")
        if self._stop_requested:
            raise StopTrial()
        now = time.time()
        self.iteration += 1
        result = dict(metrics)
        result.update(
            training_iteration=self.iteration,
            time_this_iter_s=now - self._last,
            time_total_s=self.time_offset + now - self._start,
            timestamp=now,
            trial_id=self.trial_id,
        )
        self._last = now
        # Written to storage here, in the trainable's thread: only the path travels to the driver.
        saved = self.save(checkpoint) if checkpoint is not None else None
        stop_reason = self.stopper(self.trial_id, result) if self.stopper else None
        finished = bool(result.get("done", False))  # the trainable says it is done (a class's step() or a function)
        at_point = stop_reason is None and not finished and self._at_decision_point(result)
        with self._cond:
            self._buffer.append((result, saved))
            if stop_reason:
                result["done"] = True
                self._stop_reason = stop_reason
            elif at_point:
                command = self._wait_for_command()
            self._cond.notify_all()
        if stop_reason or finished or (at_point and command is Command.STOP):
            raise StopTrial()
        return command if at_point else Command.CONTINUE

    def _wait_for_command(self) -> Command:
        """At a decision point (``self._cond`` held): tell the driver, block until its command."""
        self._state = SessionState.WAITING
        self._command = None
        self._cond.notify_all()
        while self._command is None:
            self._cond.wait()
        return self._command

    def checkpointed(self, path: str) -> Command:
        """Hand over ``path``, the checkpoint saved at a CHECKPOINT command, and wait at the same
        decision point for the next command; returns it as ``report`` would."""
        with self._cond:
            self._late.append((self.iteration, path))
            command = self._wait_for_command()
        if command is Command.STOP:
            raise StopTrial()
        return command

    def save(self, checkpoint: Any) -> str:
        """Publish ``checkpoint`` as the one of the current iteration; returns its path."""
        path = self.persist(checkpoint, self.iteration)
        self._saved = (self.iteration, path)
        return path

    def saved_path(self) -> str | None:
        """The checkpoint already published at the current iteration, if any (publishing the same
        state again would rewrite a directory that the driver may be copying for a PBT clone)."""
        return self._saved[1] if self._saved and self._saved[0] == self.iteration else None

    def _at_decision_point(self, result: dict[str, Any]) -> bool:
        if self.next_point is None:
            return True
        if math.isinf(self.next_point):
            return False
        value = result.get(self.time_attr)
        return value is None or value >= self.next_point

    def finish(self, error: str | None = None, final_checkpoint: Any = None) -> None:
        """The trial ended; the first error wins (a distributed trial's failed rank, not its echo on rank 0)."""
        with self._cond:
            if self._state is SessionState.ERROR:
                return
            self._state = SessionState.ERROR if error else SessionState.DONE
            self._error = error
            if final_checkpoint is not None:
                self._final_checkpoint = final_checkpoint
            self._cond.notify_all()

    # --- called from the actor's RPC threads ---------------------------------------------
    def collect(self, timeout: float, thread: threading.Thread | None = None) -> Batch:
        """Wait until there is something to say (or ``timeout``), then hand it over."""
        with self._cond:
            self._cond.wait_for(lambda: self._buffer or self._state is not SessionState.RUNNING, timeout)
            if self._buffer and self._state is SessionState.RUNNING:
                # A trainable that just reported often ends (or reports again) within microseconds:
                # a moment's wait saves the driver a round trip per short trial.
                self._cond.wait_for(lambda: self._state is not SessionState.RUNNING, LINGER_S)
            out, self._buffer = self._buffer, []
            late, self._late = self._late, []
            state, error, stop_reason, final = self._state, self._error, self._stop_reason, self._final_checkpoint
        if (thread is not None and state in (SessionState.DONE, SessionState.ERROR) and thread.is_alive()
                and thread is not threading.current_thread()):
            thread.join(FINISHING_S)  # finish() is its last call: it is on its way out
        return Batch(out, state, error, stop_reason, final, thread_alive=bool(thread and thread.is_alive()),
                     checkpoints=late)

    def decide(self, command: Command, next_point: float | None = None, payload: Any = None) -> None:
        """Answer a decision point (see ``Command``): CONTINUE and EXPLOIT go on until
        ``next_point`` (EXPLOIT with ``payload`` = (new config, checkpoint path))."""
        command = Command(command)
        with self._cond:
            if command.ends_trial:
                self._stop_requested = True
            else:
                self.next_point = next_point
                self.payload = payload
            if self._state is SessionState.WAITING:
                self._state = SessionState.RUNNING
                self._command = command
            self._cond.notify_all()

    def request_stop(self) -> None:
        """Ask a running trainable to end at its next report (driver-side stop)."""
        self.decide(Command.STOP)


def _no_storage(checkpoint: Any, iteration: int) -> str:
    raise RuntimeError("This session has no checkpoint storage; the worker sets one up for every trial.")


_local = threading.local()
_process_current: Session | None = None


def current() -> Session:
    """The session of the calling trainable (its thread's, else the process's latest)."""
    session = getattr(_local, "session", None) or _process_current
    if session is None:
        raise RuntimeError(
            "tune.report / tune.get_context / tune.get_checkpoint were called outside a trial. "
            "Call them from the trainable that tune.run runs."
        )
    return session


def set_current(session: Session | None) -> None:
    """Bind ``session`` to this thread, and to the process for threads the trainable starts."""
    global _process_current
    _local.session = session
    _process_current = session
