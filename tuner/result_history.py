"""A trial's results in order, held in memory up to a budget, then read back from the journal.

The journal already has every result (it is the source of truth), so a trial's history
keeps, per result, where its line lies in the journal (offset and length) and its
``training_iteration`` (a rollback drops the results past one): 24 bytes. The results
themselves are held too, while the experiment's histories hold fewer than
``$TUNER_RESULTS_IN_MEMORY`` results together (10,000 by default); past that the histories
of the oldest trials let theirs go, and read them back from the journal when asked for (a
results object's dataframe, a plot, ``Result.metrics_dataframe``). Every trial's latest
result stays in memory (it is ``Trial.last_result``), and so does the best value of each
metric someone asked for (the live table's "best" column). Without a journal to read from
(an object store, a trial built by hand) the results are all held, as before.
"""

from __future__ import annotations

import collections
import math
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from tuner.validation import is_number

#: Results the histories of one experiment hold in memory together, by default.
DEFAULT_RESULTS_IN_MEMORY = 10_000
_MISSING = object()
# An iteration that no rollback keeps (a result whose training_iteration is NaN or infinite).
_NEVER_KEPT = 2**62


class ResultSource(Protocol):
    """Where a ``ResultHistory`` reads its results back (``tuner.storage.journal.ResultReader``)."""

    def read(self, trial_id: str, offsets: Sequence[int], lengths: Sequence[int]) -> list[dict[str, Any]]:
        """The results whose journal lines start at ``offsets`` and are ``lengths`` bytes long, in order."""


class MetricSummary(NamedTuple):
    """What ``problems()`` asks of a trial's results for one metric: how many reported it as something
    other than a number (and the first such value, with its ``training_iteration``), and how many
    did not report it."""

    not_numbers: int
    first: tuple[Any, Any] | None
    missing: int


class ResultBudget:
    """What the histories of one experiment (a driver's run, or a ``tune.load``) keep in memory.

    ``limit``: how many results they hold together. Past it, the histories that started holding first
    let theirs go (the oldest trials: mostly finished ones). ``watch``: the experiment's metrics, whose
    ``MetricSummary`` each history keeps as results arrive (``problems()`` needs no read back)."""

    def __init__(self, limit: int | None = None, watch: Iterable[str] = ()) -> None:
        if limit is None:
            limit = _limit_from_env()
        self.limit = limit
        self.watch = tuple(watch)
        self.held = 0
        self._holders: collections.deque[ResultHistory] = collections.deque()

    def _holding(self, history: ResultHistory) -> None:
        self._holders.append(history)

    def _evict(self) -> None:
        while self.held > self.limit and self._holders:
            oldest = self._holders.popleft()
            if oldest._held is not None:
                self.held -= len(oldest._held)
                oldest._held = None


def _limit_from_env() -> int:
    text = os.environ.get("TUNER_RESULTS_IN_MEMORY", "")
    if not text:
        return DEFAULT_RESULTS_IN_MEMORY
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(f"The value of $TUNER_RESULTS_IN_MEMORY is {text!r}, but must be an integer >= 0 (how many "
                         "results the driver holds in memory; the rest are read back from the journal).")
    return limit


class ResultHistory(Sequence):
    """Every result of one trial, oldest first, as a read-only sequence of dicts.

    With a ``source`` each result is appended with where the journal holds it (``append(result,
    at=(offset, length))``), held while ``budget`` allows, and read back from the journal after that
    (without a budget: never held). Without a source every result is held. Results read back are the
    journal's JSON form (numpy scalars as numbers, tuples as lists), as ``tune.load`` gives them; the
    latest one is always the object that was reported.
    """

    __slots__ = ("_source", "_trial_id", "_held", "_where", "_last", "_best", "_budget", "_watched", "_odd")

    def __init__(self, source: ResultSource | None = None, trial_id: str | None = None,
                 results: Iterable[dict[str, Any]] = (), budget: ResultBudget | None = None) -> None:
        self._source = source
        self._trial_id = trial_id
        self._where = array("q")  # (offset, length, iteration) per result, with a source
        self._last: dict[str, Any] | None = None  # the latest result, with a source
        self._best: dict[tuple[str, str], tuple[int, float]] | None = None  # (results seen, best) per metric
        self._budget = budget if source is not None else None
        # The budget's metrics, summarised as results arrive (the summaries only where something was odd).
        self._watched = self._budget.watch if self._budget is not None else ()
        self._odd: dict[str, list[Any]] | None = None
        self._held: list[dict[str, Any]] | None = None
        if source is None:
            self._held = list(results)
            return
        if budget is not None:
            self._held = []
            budget._holding(self)
        for result in results:
            raise ValueError("A ResultHistory that reads from the journal takes each result with where "
                             f"it lies there (append(result, at=...)); got {result!r} without one.")

    @property
    def in_journal(self) -> bool:
        """True when each result is appended with where it lies in the journal (and can be read back)."""
        return self._source is not None

    @property
    def in_memory(self) -> bool:
        """True while every result is held in memory; False once they are read back from the journal."""
        return self._held is not None

    # --- growing and shrinking (the run loop and the journal's replay) ----------------------------
    def append(self, result: dict[str, Any], at: tuple[int, int] | None = None) -> None:
        """``result`` is the trial's newest; ``at``: (offset, length) of its line in the journal."""
        self.extend([result], None if at is None else [at])

    def extend(self, results: Sequence[dict[str, Any]], at: Sequence[tuple[int, int]] | None = None) -> None:
        """``append`` of each result (a batch: this runs for every result of the sweep)."""
        if not results:
            return
        if self._source is not None:
            if at is None or len(at) != len(results):
                raise ValueError(f"Trial {self._trial_id}: its results are read back from the journal, so each "
                                 f"is appended with where it lies there; got {len(results)} results and "
                                 f"{'no' if at is None else len(at)} places.")
            where = self._where
            for result, place in zip(results, at):
                iteration = result.get("training_iteration", 0)
                if type(iteration) is not int or not -_NEVER_KEPT < iteration < _NEVER_KEPT:
                    iteration = _iteration(result)
                where.extend(place)
                where.append(iteration)
            self._last = results[-1]
            if self._watched:
                self._watch(results)
        if self._held is not None:
            self._held.extend(results)
            budget = self._budget
            if budget is not None:
                budget.held += len(results)
                if budget.held > budget.limit:
                    budget._evict()

    def keep_through(self, iteration: int) -> None:
        """Forget the results whose ``training_iteration`` is past ``iteration`` (a restart from there)."""
        self._best = None
        self._watched, self._odd = (), None  # summaries are read back from now on
        if self._held is not None:
            before = len(self._held)
            self._held[:] = [r for r in self._held if r.get("training_iteration", 0) <= iteration]
            if self._budget is not None:
                self._budget.held -= before - len(self._held)
        if self._source is None:
            return
        where = self._where
        kept = array("q")
        for i in range(0, len(where), 3):
            if where[i + 2] <= iteration:
                kept.extend(where[i:i + 3])
        if len(kept) != len(where):
            self._where = kept
            self._last = self._held[-1] if self._held else None  # else read back when asked for

    # --- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._held) if self._source is None else len(self._where) // 3

    def __getitem__(self, index: Any) -> Any:
        if self._held is not None:
            return self._held[index]
        if isinstance(index, slice):
            return self._read(range(len(self))[index])
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"result {index} of trial {self._trial_id}, which has {n}")
        if index == n - 1 and self._last is not None:
            return self._last
        return self._read([index])[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._held is not None:
            return iter(self._held)
        return iter(self._read(range(len(self))))

    def __reversed__(self) -> Iterator[dict[str, Any]]:
        return reversed(self._held if self._held is not None else self._read(range(len(self))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (ResultHistory, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the list it replaces

    def __repr__(self) -> str:
        where = "in memory" if self._held is not None else "in the journal"
        return f"ResultHistory({self._trial_id}, {len(self)} results {where})"

    def best(self, name: str, mode: str) -> float:
        """The best value of ``name`` over every result (nan if never reported as a number); each result
        is read once per metric asked for, then only the newer ones."""
        n = len(self)
        seen, best = (self._best or {}).get((name, mode), (0, math.nan))
        if seen < n:
            newer = [self[-1]] if seen == n - 1 else self[seen:]
            values = [r[name] for r in newer if is_number(r.get(name))]
            if not math.isnan(best):
                values.insert(0, best)
            if values:
                best = max(values) if mode == "max" else min(values)
            if self._best is None:
                self._best = {}
            self._best[(name, mode)] = (n, best)
        return best

    def summary(self, name: str) -> MetricSummary:
        """``MetricSummary`` of ``name`` over every result: kept as results arrived for the experiment's
        metrics, else (another metric, or after a rollback) read back from the results."""
        if name in self._watched:
            odd = (self._odd or {}).get(name)
            return MetricSummary(odd[0], odd[1], odd[2]) if odd else MetricSummary(0, None, 0)
        bad = [r for r in self if name in r and not is_number(r[name])]
        missing = sum(1 for r in self if name not in r)
        first = (bad[0][name], bad[0].get("training_iteration")) if bad else None
        return MetricSummary(len(bad), first, missing)

    def _watch(self, results: Sequence[dict[str, Any]]) -> None:
        for name in self._watched:
            for result in results:
                value = result.get(name, _MISSING)
                if type(value) is float and value == value or type(value) is int or (
                        value is not _MISSING and is_number(value)):
                    continue
                if self._odd is None:
                    self._odd = {}
                odd = self._odd.setdefault(name, [0, None, 0])
                if value is _MISSING:
                    odd[2] += 1
                else:
                    odd[0] += 1
                    if odd[1] is None:
                        odd[1] = (value, result.get("training_iteration"))

    def _read(self, indexes: Sequence[int]) -> list[dict[str, Any]]:
        if not indexes:
            return []
        where = self._where
        if isinstance(indexes, range) and indexes.step == 1:  # the common case: all of them, in order
            out = self._source.read(self._trial_id, where[3 * indexes.start:3 * indexes.stop:3],
                                    where[3 * indexes.start + 1:3 * indexes.stop:3])
            if self._last is not None and indexes.stop == len(self):
                out[-1] = self._last  # the object that was reported
            return out
        wanted = sorted(set(indexes))  # the reader goes through the journal forwards
        read = dict(zip(wanted, self._source.read(self._trial_id, [where[3 * i] for i in wanted],
                                                  [where[3 * i + 1] for i in wanted])))
        if self._last is not None:
            read[len(self) - 1] = self._last  # the object that was reported
        return [read[i] for i in indexes]

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _iteration(result: dict[str, Any]) -> int:
    """What a rollback compares: ``training_iteration`` rounded down (``t <= i`` iff ``floor(t) <= i`` for
    an integer ``i``), 0 when missing, as ``Trial.rollback`` reads it."""
    value = result.get("training_iteration", 0)
    if type(value) is int and -_NEVER_KEPT < value < _NEVER_KEPT:
        return value
    if isinstance(value, int):
        return max(-_NEVER_KEPT, min(value, _NEVER_KEPT))
    if isinstance(value, float):
        if math.isnan(value) or value == math.inf:
            return _NEVER_KEPT
        return -_NEVER_KEPT if value == -math.inf else math.floor(value)
    return 0

