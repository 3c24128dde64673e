"""What the trackers share: what a result's metrics are, and one background thread per
tracker so the run loop only enqueues.

Tracking calls block on the network (an MLflow client retries a dead server for
minutes; ``wandb.init`` starts a process). Run-loop callbacks must be quick, so
a callback puts each call in an ``Outbox``; a daemon thread makes the calls in
order. A failing call is logged and the ones after it still run; a full queue
drops new calls (logged once); at the end ``close`` waits at most
``flush_timeout_s`` and then lets the thread go, saying how many calls were
not sent. The journal has everything either way.
"""

from __future__ import annotations

import importlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from tuner.callbacks import Callback
from tuner.storage.experiment import flatten

logger = logging.getLogger("tuner.integrations")
_STOP = object()
# Keys every result carries that are not measurements (the step and the time are logged as such).
_NOT_METRICS = frozenset({"trial_id", "done", "timestamp", "training_iteration"})


def import_extra(module: str, who: str, extra: str) -> Any:
    """``module``, or an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{who} needs the `{module}` package: pip install 'tuner[{extra}]'.") from exc


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The finite numeric values of a result, nested keys as ``a/b`` (what a tracker can plot)."""
    return {k: float(v) for k, v in flatten(result).items()
            if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


class Outbox:
    """Calls made in order on a daemon thread, never raising into the caller."""

    def __init__(self, name: str, max_pending: int = 10_000, flush_timeout_s: float = 30.0) -> None:
        self.name = name
        self.flush_timeout_s = flush_timeout_s
        self.failures = 0  # calls that raised
        self.dropped = 0  # calls never made (queue full, or still queued at the deadline)
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._work, name=f"tuner-{name}", daemon=True)
        self._thread.start()
        self._closed = False

    def put(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Make ``fn(*args, **kwargs)`` later; ``what`` names it in the log if it fails."""
        if self._closed:
            return
        try:
            self._queue.put_nowait((what, fn, args, kwargs))
        except queue.Full:
            if not self.dropped:
                logger.warning("%s: %d calls are waiting (is the tracker down?); dropping new ones. "
                               "The journal keeps every result.", self.name, self._queue.qsize())
            self.dropped += 1

    def close(self) -> None:
        """Wait for the queued calls, at most ``flush_timeout_s``; log what was not sent."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.flush_timeout_s
        while True:  # the stop marker must get in even when the queue is full
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            left = self._queue.qsize()
            self.dropped += left
            logger.error("%s: gave up after %.0fs with %d calls not sent; the sweep's journal has them.",
                         self.name, self.flush_timeout_s, left)
        elif self.failures or self.dropped:
            logger.error("%s: %d calls failed and %d were dropped; the sweep's journal has everything.",
                         self.name, self.failures, self.dropped)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            what, fn, args, kwargs = item
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a tracker's failure must not reach the sweep
                self.failures += 1
                logger.warning("%s: %s failed: %s: %s", self.name, what, type(exc).__name__, exc)


class TrackerCallback(Callback):
    """What the tracker callbacks share: an ``Outbox`` opened in ``setup``, the trials
    whose run was started and ended (driver side), and the runs themselves (filled on
    the background thread)."""

    flush_timeout_s: float = 60.0

    def __init__(self) -> None:
        self._outbox: Outbox | None = None
        self._runs: dict[str, Any] = {}  # trial id -> the tracker's run (or its id)
        self._started: set[str] = set()
        self._ended: set[str] = set()

    def _open_outbox(self) -> None:
        self._outbox = Outbox(type(self).__name__, flush_timeout_s=self.flush_timeout_s)

    def _put(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        if self._outbox is not None:
            self._outbox.put(what, fn, *args)

    def _close_outbox(self) -> None:
        if self._outbox is not None:
            self._outbox.close()

    def _run(self, trial_id: str) -> Any:
        if trial_id not in self._runs:
            raise RuntimeError(f"{trial_id} has no {type(self).__name__} run (starting it failed; see above)")
        return self._runs[trial_id]
