"""Start-ahead: when trials are very short, each worker is also handed the next few.

A one-result trial takes well under a millisecond of work, and a round trip
between the driver and a worker (Ray's actor call, its reply, the driver's
turn) costs more than that. So once the trials of a shape have lately lasted
under ``BELOW_S``, the executor gives each busy worker of that shape up to
``depth`` more trials, sent together in one call (``TrialWorker.start_after``):
the worker runs them one after the other and replies once for all of them.
The run loop sees each as running from the moment it is sent; the searcher
must not learn from results (random and grid search), so that its
suggestions come out the same as without it, and the trials must not wait at
decision points (a scheduler's rungs, a driver-side Stopper): FIFO, with or
without ``stop`` criteria (those are checked in the worker).

A trial sent ahead that never begins (it is asked to stop first, or the trial
in front of it goes on past its first report) comes back as ``Batch.started``
False, and the run loop makes it pending again. When a worker holding trials
sent ahead dies, which of them killed it cannot be told, and the ones that ran
to the end lost their reply with it: each of them comes back the same way,
once, and that shape is not started ahead again, so the trial that kills its
worker runs again alone and fails as its own.
"""

from __future__ import annotations

from typing import Any

#: Start ahead for a shape whose trials lately lasted under this long (the running mean).
BELOW_S = 0.05
#: Trials sent ahead to one worker fill about this much of its time.
WINDOW_S = 0.02
MAX_DEPTH = 8
_SEEN_BEFORE = 4  # trials of the shape that ended before their length is trusted
_WEIGHT = 0.2  # of the latest trial in the running mean of lengths


class StartAhead:
    """The bookkeeping of start-ahead for one executor: how deep, for which shapes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lengths: dict[Any, tuple[int, float]] = {}  # shape -> (trials ended, running mean of length)
        self._off: set[Any] = set()  # shapes that lost a worker
        self._stopping: set[Any] = set()  # shapes whose latest trial waits at decision points
        self._requeued: set[str] = set()  # trials given back as never begun (a second time counts)

    def depth(self, shape: Any) -> int:
        """How many trials a busy worker of ``shape`` may hold besides the one it runs (0: none)."""
        if not self.enabled or shape in self._off or shape in self._stopping:
            return 0
        seen, length = self._lengths.get(shape, (0, 0.0))
        if seen < _SEEN_BEFORE or length >= BELOW_S:
            return 0
        return max(1, min(MAX_DEPTH, int(WINDOW_S / max(length, 1e-6))))

    def note_points(self, shape: Any, next_point: float | None) -> None:
        """A trial of ``shape`` starts with this first decision point (``LaunchSpec.next_point``). One
        that waits at decision points (a scheduler's rungs, a driver-side Stopper) goes on past its first
        batch, and what was sent behind it would only come back unbegun: those are not started ahead."""
        if next_point is None or next_point != float("inf"):
            self._stopping.add(shape)
        else:
            self._stopping.discard(shape)

    def note_length(self, shape: Any, seconds: float) -> None:
        seen, length = self._lengths.get(shape, (0, 0.0))
        self._lengths[shape] = (seen + 1, seconds if seen == 0 else (1 - _WEIGHT) * length + _WEIGHT * seconds)

    def worker_died(self, shape: Any) -> None:
        self._off.add(shape)

    def give_back(self, trial_id: str) -> bool:
        """Whether a trial lost with a worker that held trials sent ahead goes back to pending
        (once: a second time its worker's death is its own error)."""
        if trial_id in self._requeued:
            return False
        self._requeued.add(trial_id)
        return True
