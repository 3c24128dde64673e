"""What the run loop and a worker say to each other, typed.

The driver starts a trial with a ``LaunchSpec``, answers a decision point with a
``Command``, and gets ``Batch`` es back whose ``state`` is a ``SessionState``.
They cross the executor (Ray actor calls, or the tests' in-process fakes) and
are consumed by the worker, the session and the class-trainable driver, so
they live in one module that both sides import.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
from typing import Any


class Command(str, enum.Enum):
    """The driver's answer at a decision point (``Session.decide``).

    CONTINUE: go on until the next decision point.
    CHECKPOINT: class trainables only: save a checkpoint now and wait at the same decision
        point for the next command (a callback set ``should_checkpoint`` in the result).
    EXPLOIT: class trainables only: go on in place with the payload
        ``(new config, packed donor checkpoint)`` (PBT on a warm worker).
    PAUSE: end now; a class trainable saves a final checkpoint to resume from.
    STOP: end now for good.
    """

    CONTINUE = "continue"
    CHECKPOINT = "checkpoint"
    EXPLOIT = "exploit"
    PAUSE = "pause"
    STOP = "stop"

    @property
    def ends_trial(self) -> bool:
        """Whether the trainable's thread ends after this command."""
        return self in (Command.PAUSE, Command.STOP)


class SessionState(str, enum.Enum):
    """Where a running trial's session is, as each ``Batch`` reports it.

    RUNNING: the trainable is between decision points; poll again.
    WAITING: it is blocked in ``report()`` at a decision point until a Command comes.
    DONE: it ended (returned, or was stopped/paused); the batch is its last.
    ERROR: it raised; ``Batch.error`` holds the traceback.
    """

    RUNNING = "running"
    WAITING = "waiting"
    DONE = "done"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class Shared:
    """An object the driver put in Ray's object store once per run (the trainable), sent by
    reference. Ray leaves a reference nested in an argument unresolved, so a warm worker fetches
    the object once (``TrialWorker``) instead of at every trial's start.

    ``key`` names the object; ``kept``: a worker keeps it for the rest of the run (a function or
    a class: each trial makes its own instance), so once a worker has it the executor sends the
    key alone (``ref`` None). A reference inside an argument makes the worker a borrower of it,
    bookkeeping Ray does at every call: about a fifth of a one-result trial's cost on 2 CPUs.
    """

    ref: Any
    key: bytes = b""
    kept: bool = False

    @classmethod
    def of(cls, ref: Any, obj: Any) -> Shared:
        return cls(ref, ref.binary(), kept_by_workers(obj))

    def without_ref(self) -> Shared:
        return Shared(None, self.key, self.kept)


def kept_by_workers(obj: Any) -> bool:
    """Whether a worker may reuse ``obj`` for every trial of the run: functions and classes. Any other
    callable object is fetched anew for each trial, so that no trial sees another's changes to it."""
    return isinstance(obj, (types.FunctionType, type))


class TrainableNotLoadedError(ImportError):
    """A worker could not import what the trainable needs (the executor ends the run on it)."""

    #: An import failure as Python words it, also inside the text of Ray's wrapping errors.
    PATTERN = re.compile(r"(ModuleNotFoundError|ImportError|AttributeError): ([^\n]*?)(?:\s{2,}|\n|$)")

    @classmethod
    def found_in(cls, exc: BaseException) -> TrainableNotLoadedError | None:
        """``exc`` (or the error Ray wrapped in it) as this error when it is an import failure, else None."""
        if isinstance(exc, cls):
            return exc
        if isinstance(exc, (ImportError, AttributeError)):
            return cls(f"{type(exc).__name__}: {exc}")
        found = cls.PATTERN.search(str(exc))
        return cls(f"{found.group(1)}: {found.group(2).strip()}") if found else None


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """Everything a worker needs to start (or restart) one trial, besides the trainable and
    the checkpoint. Built by the run loop (``TrialRunner._launch``), read by ``TrialWorker``.

    Attributes:
        trial_id, experiment_path: who and where.
        trial_dir: the trial's directory in storage (a local path or a URI); the worker makes the
            trainable's working directory from it (``tune.get_context().trial_dir``: its ``artifacts/``).
        seed: the trial's seed, set in ``random``, numpy and torch before it runs.
        config: the trial's current config.
        time_attr: the result key decision points are measured in.
        next_point: the first decision point (None: after every result; inf: never).
        stopper: the worker-side stop criterion (``StopCriteria``), or None.
        start_iteration: the ``training_iteration`` of the checkpoint it restarts from (0 fresh).
        time_offset: ``time_total_s`` already spent before that checkpoint.
        resources: the head bundle (what its own actor holds).
        bundles: the trial's gang (bundle 0 is its own actor), for ``tune.get_context()``.
        placement_strategy: the placement group's strategy when it uses one.
        checkpoint_freq, checkpoint_at_end: class trainables' checkpointing.
    """

    trial_id: str
    trial_dir: str
    experiment_path: str
    seed: int | None
    config: dict[str, Any]
    time_attr: str = "training_iteration"
    next_point: float | None = None
    stopper: Any = None
    start_iteration: int = 0
    time_offset: float = 0.0
    resources: dict[str, float] = dataclasses.field(default_factory=dict)
    bundles: list[dict[str, float]] = dataclasses.field(default_factory=list)
    placement_strategy: str | None = None
    checkpoint_freq: int = 0
    checkpoint_at_end: bool = False
    storage_token: str | None = None  # what the driver wrote in a local experiment directory (tuner.storage.relay)
    echo_output: bool = True  # the trial's stdout/stderr also to the console, besides its log files


@dataclasses.dataclass
class Batch:
    """What one call to the worker returns: results since the last call and the state.

    ``checkpoints``: ``(iteration, path)`` of checkpoints published after their result was
    handed over (a CHECKPOINT command), in order.
    """

    results: list[tuple[dict[str, Any], Any]]
    state: SessionState
    error: str | None = None
    stop_reason: str | None = None
    final_checkpoint: Any = None
    thread_alive: bool = False
    checkpoints: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    started: bool = True  # False: a trial sent ahead that never began (tuner.execution.start_ahead)

    def then(self, later: Batch) -> Batch:
        """This batch and the next of the same trial as one."""
        return dataclasses.replace(later, results=self.results + later.results,
                                   checkpoints=self.checkpoints + later.checkpoints)
