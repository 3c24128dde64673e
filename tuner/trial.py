"""The trial: one configuration being trained, as the run loop, schedulers and
searchers see it. Plain data; the run loop owns every change of status."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from tuner.result_history import ResultHistory


class TrialStatus(str, enum.Enum):
    """Where a trial is in its life.

    PENDING: waiting for resources (new, or chosen to resume after a PAUSE).
    RUNNING: its trainable runs in a worker actor.
    PAUSED: stopped by a scheduler's PAUSE with its latest checkpoint kept; the
        scheduler may choose it again later (``choose_trial_to_run``).
    TERMINATED: finished normally or stopped early; it will not run again.
    ERROR: its trainable raised (after ``max_failures`` retries).
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    def is_finished(self) -> bool:
        return self in (TrialStatus.TERMINATED, TrialStatus.ERROR)


@dataclasses.dataclass
class Trial:
    """One configuration of the sweep and everything known about it.

    Attributes:
        trial_id: unique inside the experiment, ``trial_00000`` counting up in creation
            order; also the trial's directory name.
        config: the concrete hyperparameters (no search-space domains left). For
            PBT this is the *current* config, after every exploit.
        resources: what the trial asked for, normalized (see ``tuner.execution.resources``).
        status: see ``TrialStatus``.
        last_result: the latest result dict, or None before the first one.
        history: every result in order (a ``ResultHistory``: where a local journal holds them, they
            are read back from it on demand; see ``tuner.result_history``). A list given is held in memory.
        error: the full traceback text of the last failure, if any.
        num_failures: how many times the trainable raised.
        stop_reason: why it stopped early (scheduler decision or stop criterion).
        checkpoint_path: directory of the latest persisted checkpoint, if any.
        checkpoints: every persisted checkpoint directory still in storage, oldest first (local
            paths or URIs).
        checkpoint_iterations: the ``training_iteration`` each of them holds (from the
            journal's ``checkpoint`` events, never parsed from directory names).
        checkpoint_metrics: for each of them, the metrics recorded with it (the result it was
            reported with; a PBT clone's are its donor's).
        path: the trial directory.
        seed: the per-trial seed handed to the trainable.
        name: the display name ``trial_name_creator`` gave it (None: the trial id).
        trainable_name: the trainable's name (Ray Tune's ``Trial.trainable_name``).
    """

    trial_id: str
    config: dict[str, Any]
    resources: Any = None
    status: TrialStatus = TrialStatus.PENDING
    last_result: dict[str, Any] | None = None
    history: ResultHistory = dataclasses.field(default_factory=ResultHistory)
    error: str | None = None
    num_failures: int = 0
    stop_reason: str | None = None
    checkpoint_path: str | None = None
    checkpoints: list[str] = dataclasses.field(default_factory=list)
    checkpoint_iterations: dict[str, int] = dataclasses.field(default_factory=dict, repr=False)
    checkpoint_metrics: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, repr=False)
    checkpoint_scores: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    path: str | None = None
    seed: int | None = None
    name: str | None = None
    trainable_name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.history, ResultHistory):
            self.history = ResultHistory(results=self.history)

    def add_checkpoint(self, path: str, iteration: int, metrics: dict[str, Any] | None = None) -> None:
        """``path`` (holding ``iteration``, saved with ``metrics``) is now the latest checkpoint. One
        rewritten in place (a PBT exploit adopts the donor's state at the recipient's own iteration)
        moves to the end instead of standing twice."""
        if path in self.checkpoints:
            self.checkpoints.remove(path)
        self.checkpoints.append(path)
        self.checkpoint_iterations[path] = iteration
        self.checkpoint_path = path
        self.checkpoint_metrics[path] = dict(metrics or {})

    def remove_checkpoint(self, path: str) -> None:
        """``path`` was deleted from disk; the latest before it takes its place if it was the latest."""
        self.checkpoints = [c for c in self.checkpoints if c != path]
        self.checkpoint_iterations.pop(path, None)
        self.checkpoint_metrics.pop(path, None)
        if self.checkpoint_path == path:
            self.checkpoint_path = self.checkpoints[-1] if self.checkpoints else None

    @property
    def checkpoint_iteration(self) -> int | None:
        """The iteration the latest checkpoint holds (None without one)."""
        return self.checkpoint_iterations.get(self.checkpoint_path) if self.checkpoint_path else None

    def rollback(self, iteration: int) -> None:
        """Forget results past ``iteration``: the trial restarts from there (its checkpoint, or 0).
        The run loop applies it and journals it; the journal's replay applies it again."""
        self.history.keep_through(iteration)
        self.last_result = self.history[-1] if self.history else None

    def metric(self, name: str, default: float = math.nan) -> Any:
        """The latest value of ``name`` (nan if never reported)."""
        if not self.last_result:
            return default
        return self.last_result.get(name, default)

    def best_value(self, name: str, mode: str) -> float:
        """The best value of ``name`` over the whole history (nan if never reported)."""
        return self.history.best(name, mode)

    @property
    def local_path(self) -> str | None:
        """The trial directory (Ray Tune's name for it)."""
        return self.path

    def __str__(self) -> str:
        return self.name or self.trial_id

    def __repr__(self) -> str:
        return f"Trial({self.trial_id}, {self.status.value})"
